//! Corefile tokens, the way Caddy v1's caddyfile lexer splits them: words
//! separated by whitespace, `#` starting a comment that runs to the end of
//! the line, and double-quoted strings (which may span lines) where `\"` is
//! the only escape. Environment references (`{$VAR}`, `{%VAR%}`) are
//! replaced inside every token once it is cut, so a value with spaces
//! stays one token.

use std::path::PathBuf;
use std::rc::Rc;

use super::CorefileError;
use super::config::Pos;

/// One token and where it was written.
#[derive(Clone, Debug)]
pub(crate) struct Token {
    pub text: String,
    /// Written in double quotes: never a brace, never `import`.
    pub quoted: bool,
    pub file: Rc<PathBuf>,
    /// The line the token starts on (1-based).
    pub line: usize,
    /// The line it ends on (later than `line` for a multi-line quoted string).
    pub end_line: usize,
    /// First token of a line, set by the token stream when the token is
    /// handed out (a token right after an import counts as a new line).
    pub nl: bool,
}

impl Token {
    pub fn pos(&self) -> Pos {
        Pos { file: self.file.as_ref().clone(), line: self.line }
    }

    pub fn err(&self, message: impl Into<String>) -> CorefileError {
        CorefileError { pos: self.pos(), message: message.into() }
    }

    /// An unquoted `{`.
    pub fn is_open(&self) -> bool {
        !self.quoted && self.text == "{"
    }

    /// An unquoted `}`.
    pub fn is_close(&self) -> bool {
        !self.quoted && self.text == "}"
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }
}

/// Cuts `text` into tokens; `env` looks up the environment references.
pub(crate) fn tokenize(
    text: &str,
    file: &Rc<PathBuf>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<Token>, CorefileError> {
    let mut out = Vec::new();
    let mut line = 1usize;
    let mut chars = text.strip_prefix('\u{feff}').unwrap_or(text).chars().peekable();
    let mut val = String::new();
    let mut start_line = 0usize;
    let mut in_token = false;
    let mut comment = false;

    let push = |val: &mut String, quoted: bool, start: usize, end: usize, out: &mut Vec<Token>| {
        let text = substitute_env(val, env);
        out.push(Token { text, quoted, file: file.clone(), line: start, end_line: end, nl: false });
        val.clear();
    };

    while let Some(ch) = chars.next() {
        if comment {
            if ch == '\n' {
                comment = false;
                line += 1;
            }
            continue;
        }
        if ch.is_whitespace() {
            if in_token {
                push(&mut val, false, start_line, line, &mut out);
                in_token = false;
            }
            if ch == '\n' {
                line += 1;
            }
            continue;
        }
        if ch == '#' {
            // Caddy v1: a `#` starts a comment even in the middle of a word.
            if in_token {
                push(&mut val, false, start_line, line, &mut out);
                in_token = false;
            }
            comment = true;
            continue;
        }
        if !in_token && ch == '"' {
            let start = line;
            let mut closed = false;
            while let Some(c) = chars.next() {
                match c {
                    // Only `\"` and `\<newline>` are escapes; any other
                    // backslash pair is kept as written (both characters).
                    '\\' => match chars.next() {
                        Some('"') => val.push('"'),
                        Some('\n') => {
                            line += 1;
                            val.push('\n');
                        }
                        Some(other) => {
                            val.push('\\');
                            val.push(other);
                        }
                        None => val.push('\\'),
                    },
                    '"' => {
                        closed = true;
                        break;
                    }
                    '\r' if chars.peek() == Some(&'\n') => {}
                    c => {
                        if c == '\n' {
                            line += 1;
                        }
                        val.push(c);
                    }
                }
            }
            if !closed {
                return Err(CorefileError {
                    pos: Pos { file: file.as_ref().clone(), line: start },
                    message: "unterminated quoted string".into(),
                });
            }
            push(&mut val, true, start, line, &mut out);
            continue;
        }
        if !in_token {
            in_token = true;
            start_line = line;
        }
        val.push(ch);
    }
    if in_token {
        push(&mut val, false, start_line, line, &mut out);
    }
    Ok(out)
}

/// Replaces `{%VAR%}` and `{$VAR}` (a missing variable is the empty
/// string, as in Caddy). One left-to-right pass: a value is never scanned
/// again, so a variable whose value names itself cannot loop.
pub(crate) fn substitute_env(s: &str, env: &dyn Fn(&str) -> Option<String>) -> String {
    let s = substitute_refs(s, "{%", "%}", env);
    substitute_refs(&s, "{$", "}", env)
}

fn substitute_refs(s: &str, open: &str, close: &str, env: &dyn Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find(open) {
        let after = &rest[i + open.len()..];
        let Some(j) = after.find(close) else { break };
        if j == 0 {
            // `{$}`: Caddy stops replacing here.
            break;
        }
        out.push_str(&rest[..i]);
        out.push_str(&env(&after[..j]).unwrap_or_default());
        rest = &after[j + close.len()..];
    }
    out.push_str(rest);
    out
}
