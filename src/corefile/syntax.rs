//! The Caddyfile grammar as Caddy v1 reads it: server blocks of keys and a
//! braced body of directives, each directive a line of arguments with an
//! optional `{ ... }` block of option lines. `import` splices in files
//! (glob patterns allowed, relative to the importing file's folder) or
//! snippets defined at the top level as `(name) { ... }`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use super::CorefileError;
use super::lexer::{Token, tokenize};

/// Imports nested deeper than this are refused (a cycle through snippets
/// and globs would otherwise only end when memory does).
const MAX_IMPORT_DEPTH: usize = 64;

/// Imports carried out, at most, and tokens handed out once they are
/// spliced in: a snippet imported twice by one imported twice by... grows
/// exponentially.
const MAX_IMPORTS: usize = 10_000;
const MAX_TOKENS: usize = 1_000_000;

/// One server block before its keys and directives are interpreted.
#[derive(Debug)]
pub(crate) struct RawBlock {
    /// Each key once commas are split off; the first is where the block is.
    pub keys: Vec<Token>,
    pub directives: Vec<RawDirective>,
}

/// A directive as written: its name, the arguments on its line, and its
/// block's lines (each the option keyword followed by its arguments).
#[derive(Debug)]
pub(crate) struct RawDirective {
    pub name: Token,
    pub args: Vec<Token>,
    pub body: Option<Body>,
}

#[derive(Debug)]
pub(crate) struct Body {
    pub open: Token,
    /// Never an empty line: each starts with its option keyword.
    pub lines: Vec<Vec<Token>>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Origin {
    File(PathBuf),
    Snippet(String),
}

struct Frame {
    toks: Rc<[Token]>,
    idx: usize,
    /// The imports that led here, outermost first (for cycle detection).
    chain: Rc<Vec<Origin>>,
}

/// Tokens of the top-level file with imports spliced in as they are met.
struct Stream<'a> {
    frames: Vec<Frame>,
    snippets: HashMap<String, Rc<[Token]>>,
    /// File and last line of the token handed out last.
    prev: Option<(Rc<PathBuf>, usize)>,
    /// The next token starts a line whatever its line number (it follows
    /// an import or comes from one).
    force_nl: bool,
    /// Tokens handed out and imports carried out so far.
    count: usize,
    imports: usize,
    env: &'a dyn Fn(&str) -> Option<String>,
}

impl<'a> Stream<'a> {
    fn peek_raw(&self) -> Option<(&Token, bool)> {
        for (depth, f) in self.frames.iter().rev().enumerate() {
            if let Some(t) = f.toks.get(f.idx) {
                return Some((t, depth > 0));
            }
        }
        None
    }

    fn starts_line(&self, tok: &Token, crossed: bool) -> bool {
        if self.force_nl || crossed {
            return true;
        }
        match &self.prev {
            None => true,
            Some((file, end)) => file != &tok.file || *end < tok.line,
        }
    }

    /// The next token without consuming it (imports not expanded).
    fn peek(&self) -> Option<Token> {
        let (t, crossed) = self.peek_raw()?;
        let mut t = t.clone();
        t.nl = self.starts_line(&t, crossed);
        Some(t)
    }

    fn take_raw(&mut self) -> Option<(Token, Rc<Vec<Origin>>)> {
        let mut crossed = false;
        loop {
            let f = self.frames.last_mut()?;
            if let Some(t) = f.toks.get(f.idx) {
                let mut t = t.clone();
                f.idx += 1;
                let chain = f.chain.clone();
                t.nl = self.starts_line(&t, crossed);
                return Some((t, chain));
            }
            self.frames.pop();
            crossed = true;
        }
    }

    fn hand_out(&mut self, tok: Token) -> Token {
        self.count += 1;
        self.force_nl = false;
        self.prev = Some((tok.file.clone(), tok.end_line));
        tok
    }

    /// The next token, without import processing (snippet bodies).
    fn next_raw(&mut self) -> Option<Token> {
        let (t, _) = self.take_raw()?;
        Some(self.hand_out(t))
    }

    /// The next token; an unquoted `import` that starts a line (or stands
    /// where a directive starts, `at_start`) is replaced by what it names.
    fn next(&mut self, at_start: bool) -> Result<Option<Token>, CorefileError> {
        loop {
            let Some((tok, chain)) = self.take_raw() else { return Ok(None) };
            if !tok.quoted && tok.text == "import" && (at_start || tok.nl) {
                self.import(&tok, &chain)?;
                continue;
            }
            if self.count >= MAX_TOKENS {
                return Err(tok.err(format!("more than {MAX_TOKENS} tokens once imports are expanded")));
            }
            return Ok(Some(self.hand_out(tok)));
        }
    }

    /// The argument of `import` must be on its line.
    fn same_line_arg(&mut self, after: &Token) -> Option<Token> {
        let (t, crossed) = self.peek_raw()?;
        if crossed || t.file != after.file || t.line > after.end_line {
            return None;
        }
        self.take_raw().map(|(t, _)| t)
    }

    fn import(&mut self, tok: &Token, chain: &Rc<Vec<Origin>>) -> Result<(), CorefileError> {
        let Some(arg) = self.same_line_arg(tok) else {
            return Err(tok.err("import needs a file, a glob pattern or a snippet name"));
        };
        if let Some(extra) = self.same_line_arg(&arg) {
            return Err(extra.err("import takes only one argument (a file, a glob pattern or a snippet name)"));
        }
        if arg.text.is_empty() {
            return Err(arg.err("import needs a non-empty file path"));
        }
        self.imports += 1;
        if self.imports > MAX_IMPORTS {
            return Err(tok.err(format!("more than {MAX_IMPORTS} imports carried out")));
        }
        if chain.len() >= MAX_IMPORT_DEPTH {
            return Err(tok.err(format!("imports nested more than {MAX_IMPORT_DEPTH} deep")));
        }
        self.force_nl = true;
        if let Some(toks) = self.snippets.get(&arg.text) {
            let origin = Origin::Snippet(arg.text.clone());
            if chain.contains(&origin) {
                return Err(tok.err(format!("import cycle: snippet '{}' imports itself", arg.text)));
            }
            let mut c = chain.as_ref().clone();
            c.push(origin);
            self.frames.push(Frame { toks: toks.clone(), idx: 0, chain: Rc::new(c) });
            return Ok(());
        }
        let files = import_files(tok, &arg.text)?;
        let mut frames = Vec::with_capacity(files.len());
        for path in files {
            let id = Origin::File(canonical(&path));
            if chain.contains(&id) {
                return Err(tok.err(format!("import cycle: {} is already being imported", path.display())));
            }
            if path.is_dir() {
                return Err(tok.err(format!("could not import {}: is a directory", path.display())));
            }
            let text = std::fs::read_to_string(&path)
                .map_err(|e| tok.err(format!("could not import {}: {e}", path.display())))?;
            let toks = tokenize(&text, &Rc::new(path), self.env)?;
            let mut c = chain.as_ref().clone();
            c.push(id);
            frames.push(Frame { toks: toks.into(), idx: 0, chain: Rc::new(c) });
        }
        // The first match is read first: it goes on top.
        self.frames.extend(frames.into_iter().rev());
        Ok(())
    }
}

fn canonical(p: &Path) -> PathBuf {
    std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf())
}

/// The files an import pattern names, relative to the importing file's
/// folder: a glob (at most one `*`, one `?`, no `[...]`, as Caddy allows)
/// may match nothing; a plain path must exist.
fn import_files(tok: &Token, pattern: &str) -> Result<Vec<PathBuf>, CorefileError> {
    let base = tok.file.parent().unwrap_or(Path::new(""));
    let is_abs = Path::new(pattern).is_absolute();
    let full = if is_abs { PathBuf::from(pattern) } else { base.join(pattern) };
    let wild = pattern.contains(['*', '?', '[', ']']);
    if !wild {
        if !full.exists() {
            return Err(tok.err(format!("file to import not found: {}", full.display())));
        }
        return Ok(vec![full]);
    }
    if pattern.matches('*').count() > 1
        || pattern.matches('?').count() > 1
        || (pattern.contains('[') && pattern.contains(']'))
    {
        return Err(tok.err(format!("glob pattern may only contain one wildcard (*), but has others: {pattern}")));
    }
    let glob_text = if is_abs {
        pattern.to_string()
    } else {
        let Some(b) = base.to_str() else {
            return Err(tok.err(format!("folder {} is not UTF-8: cannot glob in it", base.display())));
        };
        if b.is_empty() { pattern.to_string() } else { format!("{}/{}", glob::Pattern::escape(b), pattern) }
    };
    let paths = glob::glob(&glob_text).map_err(|e| tok.err(format!("bad import pattern {pattern}: {}", e.msg)))?;
    let mut out = Vec::new();
    for p in paths {
        out.push(p.map_err(|e| tok.err(format!("import {pattern}: {e}")))?);
    }
    Ok(out)
}

/// Parses `text` (from `file`) into raw server blocks. `check_directive`
/// vets a directive name where it is met.
pub(crate) fn parse_blocks(
    text: &str,
    file: &Path,
    env: &dyn Fn(&str) -> Option<String>,
    check_directive: &dyn Fn(&Token) -> Result<(), CorefileError>,
) -> Result<Vec<RawBlock>, CorefileError> {
    let file = Rc::new(file.to_path_buf());
    let toks = tokenize(text, &file, env)?;
    let chain = Rc::new(vec![Origin::File(canonical(&file))]);
    let mut s = Stream {
        frames: vec![Frame { toks: toks.into(), idx: 0, chain }],
        snippets: HashMap::new(),
        prev: None,
        force_nl: false,
        count: 0,
        imports: 0,
        env,
    };
    let mut blocks = Vec::new();
    while let Some(first) = s.next(true)? {
        if first.is_close() {
            return Err(first.err("unexpected '}': no block is open"));
        }
        if first.is_open() {
            return Err(first.err("a server block needs a key (zone[:port]) before '{'"));
        }
        let (keys, braced) = keys(&mut s, first.clone())?;
        if keys.is_empty() {
            return Err(first.err("a server block needs a key (zone[:port]), not an empty string"));
        }
        if keys.len() == 1 && keys[0].text.starts_with('(') && keys[0].text.ends_with(')') {
            let name = keys[0].text[1..keys[0].text.len() - 1].to_string();
            snippet(&mut s, &keys[0], name, braced)?;
            continue;
        }
        let open = if braced {
            true
        } else if s.peek().is_some_and(|t| t.is_open()) {
            s.next(false)?;
            true
        } else {
            false
        };
        let directives = directives(&mut s, open.then(|| keys[0].clone()), check_directive)?;
        blocks.push(RawBlock { keys, directives });
    }
    Ok(blocks)
}

/// The keys of a server block: on the first line, and on following lines
/// while a key ends in a comma. Returns whether the `{` was met.
fn keys(s: &mut Stream, first: Token) -> Result<(Vec<Token>, bool), CorefileError> {
    let mut keys = Vec::new();
    let mut expecting = false;
    let mut tok = first;
    loop {
        if tok.is_open() {
            if expecting {
                return Err(tok.err("expected another key after ',' but found '{'"));
            }
            return Ok((keys, true));
        }
        if tok.is_close() {
            return Err(tok.err("unexpected '}' among server block keys"));
        }
        expecting = tok.text.ends_with(',');
        for part in tok.text.split(',').filter(|p| !p.is_empty()) {
            let mut k = tok.clone();
            k.text = part.to_string();
            keys.push(k);
        }
        match s.peek() {
            None if expecting => return Err(tok.err("expected another key after ',' but the file ends")),
            None => return Ok((keys, false)),
            Some(p) if p.nl && !expecting => return Ok((keys, false)),
            Some(p) => match s.next(p.nl)? {
                Some(t) => tok = t,
                None if expecting => return Err(tok.err("expected another key after ',' but the file ends")),
                None => return Ok((keys, false)),
            },
        }
    }
}

/// `(name) { ... }`: the tokens are kept as written (imports inside run
/// where the snippet is used).
fn snippet(s: &mut Stream, key: &Token, name: String, braced: bool) -> Result<(), CorefileError> {
    if !braced {
        match s.next_raw() {
            Some(t) if t.is_open() => {}
            _ => return Err(key.err(format!("snippet {} needs a '{{ ... }}' body", key.text))),
        }
    }
    if s.snippets.contains_key(&name) {
        return Err(key.err(format!("redeclaration of previously declared snippet {name}")));
    }
    let mut depth = 1usize;
    let mut toks = Vec::new();
    loop {
        let Some(t) = s.next_raw() else {
            return Err(key.err(format!("snippet {} is never closed with '}}'", key.text)));
        };
        if t.is_open() {
            depth += 1;
        } else if t.is_close() {
            depth -= 1;
            if depth == 0 {
                break;
            }
        }
        toks.push(t);
    }
    s.snippets.insert(name, toks.into());
    Ok(())
}

/// The directives of a server block: up to its `}` when `open` (the block's
/// first key, for the error when it never closes), else to the end.
fn directives(
    s: &mut Stream,
    open: Option<Token>,
    check: &dyn Fn(&Token) -> Result<(), CorefileError>,
) -> Result<Vec<RawDirective>, CorefileError> {
    let mut out = Vec::new();
    loop {
        let Some(name) = s.next(true)? else {
            if let Some(k) = open {
                return Err(k.err(format!("server block {} is not closed: '}}' missing", k.text)));
            }
            return Ok(out);
        };
        if name.is_close() {
            if open.is_some() {
                return Ok(out);
            }
            return Err(name.err("unexpected '}': no block is open"));
        }
        if name.is_open() {
            return Err(name.err("unexpected '{': a block must follow a directive on its line"));
        }
        check(&name)?;
        out.push(directive(s, name)?);
    }
}

fn directive(s: &mut Stream, name: Token) -> Result<RawDirective, CorefileError> {
    let mut args = Vec::new();
    loop {
        match s.peek() {
            None => break,
            Some(p) if p.nl => break,
            Some(_) => {}
        }
        let Some(tok) = s.next(false)? else { break };
        if tok.is_close() {
            return Err(
                tok.err(format!("unexpected '}}' after '{}': a closing brace must start its own line", name.text))
            );
        }
        if tok.is_open() {
            let body = body(s, &name, tok)?;
            if let Some(p) = s.peek().filter(|p| !p.nl) {
                return Err(p.err(format!("unexpected '{}' after the block of '{}'", p.text, name.text)));
            }
            return Ok(RawDirective { name, args, body: Some(body) });
        }
        args.push(tok);
    }
    Ok(RawDirective { name, args, body: None })
}

fn body(s: &mut Stream, name: &Token, open: Token) -> Result<Body, CorefileError> {
    let mut lines: Vec<Vec<Token>> = Vec::new();
    loop {
        let Some(tok) = s.next(false)? else {
            return Err(open.err(format!("the block of '{}' is not closed: '}}' missing", name.text)));
        };
        if tok.is_close() {
            return Ok(Body { open, lines });
        }
        if tok.is_open() {
            return Err(tok.err(format!("unexpected '{{' inside the block of '{}'", name.text)));
        }
        match lines.last_mut() {
            Some(line) if !tok.nl => line.push(tok),
            _ => lines.push(vec![tok]),
        }
    }
}
