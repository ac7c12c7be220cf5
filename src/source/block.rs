//! A fast path for the YAML that manifests are nearly always written in:
//! block mappings and sequences, plain scalars on one line, quoted scalars
//! on one line without escapes, flow collections on one line, literal block
//! scalars (`|`, `|-`), comments. libyaml (through yaml_serde)
//! reads about 27 MB a second on one core here, and a 100k-Service
//! cluster's 90 MB file was three quarters of the start-up; this reads the
//! same documents to the same values in a fraction of that time.
//!
//! Anything outside that subset gives `None`, and the document goes to
//! libyaml, which stays the only judge of it: anchors, aliases, tags,
//! folded block scalars, literal ones with an indicator or a blank line,
//! escapes, other scalars and flow collections over several lines,
//! directives, tabs, CR, bytes that are not printable ASCII, duplicate keys,
//! and anything libyaml would refuse. This path never reports an error of
//! its own, so messages are libyaml's.
//!
//! What it builds is what `parse::Bounded` builds from libyaml's events:
//! the same scalar resolution (yaml_serde's: YAML 1.2 `null`, `true` and
//! `false`, decimal integers, the rest strings) and the same budget.
//! `tests::agrees_with_libyaml` compares the two on generated documents.

use serde_json::{Map, Value};

/// What a parsed value and a mapping key cost against the budget, beyond
/// their text (`parse::VALUE_COST`, `parse::KEY_COST`).
#[derive(Clone, Copy)]
pub(super) struct Costs {
    pub value: usize,
    pub key: usize,
}

/// Deeper than this goes to libyaml (which refuses past 128 levels).
const MAX_DEPTH: usize = 64;
/// libyaml looks for a simple key's `:` at most 1024 characters on (in
/// block and flow mappings alike).
const MAX_KEY: usize = 1000;

/// `doc` parsed, when it is in the subset and takes at most `budget` bytes.
pub(super) fn parse(doc: &str, budget: usize, costs: Costs) -> Option<Value> {
    let s = doc.as_bytes();
    // Printable ASCII and line feeds only: no tab, CR, BOM, Unicode line
    // break or control character can then change what a line is.
    if !s.iter().all(|&b| (0x20..0x7f).contains(&b) || b == b'\n') {
        return None;
    }
    let mut r = Reader { s, next: 0, line: None, budget, costs, depth: 0 };
    r.advance()?;
    let top = r.line?;
    let at = top.start + top.indent;
    // A manifest is a mapping; other documents are libyaml's.
    if r.is_dash(at, top.end) || r.key_end(at, top.end).is_none() {
        return None;
    }
    let value = r.map(at, top.indent)?;
    // Anything left is less indented than the top mapping: not this subset.
    r.line.is_none().then_some(value)
}

/// A line with content (not blank, not only a comment).
#[derive(Clone, Copy)]
struct Line {
    start: usize,
    /// Spaces before the content.
    indent: usize,
    /// Where the line ends (its `\n` or the end of the text).
    end: usize,
}

struct Reader<'a> {
    s: &'a [u8],
    /// Where the line after [`Reader::line`] starts.
    next: usize,
    /// The line being read; `None` at the end of the document.
    line: Option<Line>,
    budget: usize,
    costs: Costs,
    depth: usize,
}

impl Reader<'_> {
    /// Moves to the next line with content. `None`: a document marker,
    /// which the splitter should have taken (not this subset).
    fn advance(&mut self) -> Option<()> {
        while self.next < self.s.len() {
            let start = self.next;
            let end = memchr::memchr(b'\n', &self.s[start..]).map_or(self.s.len(), |i| start + i);
            self.next = end + 1;
            let indent = self.s[start..end].iter().take_while(|&&b| b == b' ').count();
            if start + indent == end || self.s[start + indent] == b'#' {
                continue;
            }
            let text = &self.s[start..end];
            if indent == 0 && (text.starts_with(b"---") || text.starts_with(b"...")) {
                return None;
            }
            self.line = Some(Line { start, indent, end });
            return Some(());
        }
        self.line = None;
        Some(())
    }

    fn charge(&mut self, bytes: usize) -> Option<()> {
        self.budget = self.budget.checked_sub(bytes)?;
        Some(())
    }

    /// Whether a block sequence entry starts at `at`: `-` then a space or
    /// the line's end.
    fn is_dash(&self, at: usize, end: usize) -> bool {
        self.s[at] == b'-' && (at + 1 == end || self.s[at + 1] == b' ')
    }

    /// Where the `:` of a mapping key starting at `at` is; `None` when the
    /// line from `at` is no plain key (a scalar).
    fn key_end(&self, at: usize, end: usize) -> Option<usize> {
        if matches!(self.s[at], b'"' | b'\'' | b'[' | b'{') {
            // A quoted scalar or a flow collection; as a key (not read
            // here), refused when the `:` after it shows.
            return None;
        }
        (at..end)
            .take_while(|&i| !(self.s[i] == b'#' && i > at && self.s[i - 1] == b' '))
            .find(|&i| self.s[i] == b':' && (i + 1 == end || self.s[i + 1] == b' '))
    }

    /// A node that starts at `at` on the current line, at column `col`.
    fn node(&mut self, at: usize, col: usize) -> Option<Value> {
        let line = self.line?;
        if self.is_dash(at, line.end) {
            self.seq(at, col)
        } else if self.key_end(at, line.end).is_some() {
            self.map(at, col)
        } else {
            let v = self.scalar(at, line.end);
            self.advance()?;
            v
        }
    }

    /// Enters a collection, one level deeper: charged as a value, and
    /// refused past [`MAX_DEPTH`] levels (every mapping and sequence counts,
    /// as in yaml_serde's recursion limit).
    fn open(&mut self) -> Option<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return None;
        }
        self.charge(self.costs.value)
    }

    /// A block mapping whose first key starts at `at`, at column `col`.
    fn map(&mut self, at: usize, col: usize) -> Option<Value> {
        self.open()?;
        let value = self.map_entries(at, col);
        self.depth -= 1;
        value
    }

    /// A block sequence whose first `-` is at `at`, at column `col`.
    fn seq(&mut self, at: usize, col: usize) -> Option<Value> {
        self.open()?;
        let value = self.seq_entries(at, col);
        self.depth -= 1;
        value
    }

    /// The value of a key or entry whose line ends after its indicator:
    /// a node on the lines below, more indented than `col`; else null.
    /// `indentless`: a sequence at `col` itself may follow (a mapping's
    /// value, as `key:` then `- item` under it).
    fn below(&mut self, col: usize, indentless: bool) -> Option<Value> {
        self.advance()?;
        match self.line {
            Some(l) if l.indent > col => self.node(l.start + l.indent, l.indent),
            Some(l) if indentless && l.indent == col && self.is_dash(l.start + col, l.end) => {
                self.seq(l.start + col, col)
            }
            _ => {
                self.charge(self.costs.value)?;
                Some(Value::Null)
            }
        }
    }

    /// Where the content after an indicator (`:` or `-`) starts, and
    /// whether the line ends there (nothing, or only a comment).
    fn after(&self, mut p: usize, end: usize) -> (usize, bool) {
        let spaced = p < end && self.s[p] == b' ';
        while p < end && self.s[p] == b' ' {
            p += 1;
        }
        (p, p == end || (spaced && self.s[p] == b'#'))
    }

    fn map_entries(&mut self, mut at: usize, col: usize) -> Option<Value> {
        let mut out = Map::new();
        loop {
            let line = self.line?;
            let colon = self.key_end(at, line.end)?;
            let key = &self.s[at..colon];
            let plain_key =
                key.first().is_some_and(|&b| key_start(b)) && key.iter().all(|&b| key_byte(b)) && key.len() <= MAX_KEY;
            if !plain_key {
                return None;
            }
            // ASCII, checked above.
            let key = std::str::from_utf8(key).ok()?;
            self.charge(self.costs.key + key.len())?;
            let (p, bare) = self.after(colon + 1, line.end);
            let value = if bare {
                self.below(col, true)?
            } else if self.s[p] == b'|' {
                self.literal(p, line.end, col)?
            } else {
                let v = self.scalar(p, line.end)?;
                self.advance()?;
                v
            };
            // A key given twice: libyaml's path says so.
            if out.contains_key(key) {
                return None;
            }
            out.insert(key.to_string(), value);
            match self.line {
                Some(l) if l.indent == col && !self.is_dash(l.start + col, l.end) => at = l.start + col,
                Some(l) if l.indent >= col => return None,
                _ => return Some(Value::Object(out)),
            }
        }
    }

    fn seq_entries(&mut self, mut at: usize, col: usize) -> Option<Value> {
        let mut items = Vec::new();
        loop {
            let line = self.line?;
            let (p, bare) = self.after(at + 1, line.end);
            let item = if bare {
                self.below(col, false)?
            } else if self.is_dash(p, line.end) {
                return None;
            } else if self.s[p] == b'|' {
                self.literal(p, line.end, col)?
            } else {
                self.node(p, col + (p - at))?
            };
            items.push(item);
            match self.line {
                Some(l) if l.indent == col && self.is_dash(l.start + col, l.end) => at = l.start + col,
                Some(l) if l.indent > col => return None,
                _ => return Some(Value::Array(items)),
            }
        }
    }

    /// A literal block scalar (`|` or `|-`, as kubectl writes the
    /// last-applied-configuration annotation) whose indicator is at `at`,
    /// in a collection at column `parent`: the lines below that are
    /// indented past `parent`, as written. Left to libyaml: an indentation
    /// or keep indicator, a blank line anywhere in it (chomping and the
    /// indentation guess then have rules of their own), and a last line
    /// without a line break.
    fn literal(&mut self, at: usize, end: usize, parent: usize) -> Option<Value> {
        let s = self.s;
        let strip = at + 1 < end && s[at + 1] == b'-';
        let (_, bare) = self.after(at + 1 + usize::from(strip), end);
        if !bare {
            return None;
        }
        let mut text = String::new();
        let mut indent = None;
        let mut pos = self.next;
        while pos < s.len() {
            let line_end = pos + memchr::memchr(b'\n', &s[pos..])?;
            let spaces = s[pos..line_end].iter().take_while(|&&b| b == b' ').count();
            if pos + spaces == line_end {
                return None;
            }
            // The first line sets the indentation; a line less indented ends it.
            let n = *indent.get_or_insert(spaces);
            if n <= parent {
                return None;
            }
            if spaces < n {
                break;
            }
            text.push_str(std::str::from_utf8(&s[pos + n..line_end]).ok()?);
            text.push('\n');
            pos = line_end + 1;
        }
        indent?;
        if strip {
            text.pop();
        }
        self.next = pos;
        self.advance()?;
        self.charge(self.costs.value + text.len())?;
        Some(Value::String(text))
    }

    /// A scalar, or a flow collection, from `at` to the line's end (or its
    /// comment).
    fn scalar(&mut self, at: usize, end: usize) -> Option<Value> {
        let (value, rest) = match self.s[at] {
            b'"' | b'\'' => self.quoted(at, end)?,
            b'[' | b'{' => self.flow(at, end)?,
            _ => return self.plain(at, end),
        };
        // After it: spaces, then the line's end or a comment (`after` takes
        // a `#` for one only behind a space).
        self.after(rest, end).1.then_some(value)
    }

    /// A quoted scalar on one line, without escapes; and where it ends.
    fn quoted(&mut self, at: usize, end: usize) -> Option<(Value, usize)> {
        let s = self.s;
        let (text, rest) = if s[at] == b'"' {
            let close = at + 1 + memchr::memchr(b'"', &s[at + 1..end])?;
            let body = &s[at + 1..close];
            // An escape, or a line break folded into a space: libyaml's.
            if body.contains(&b'\\') {
                return None;
            }
            (std::str::from_utf8(body).ok()?.to_string(), close + 1)
        } else {
            let mut body = String::new();
            let mut i = at + 1;
            loop {
                let q = i + memchr::memchr(b'\'', &s[i..end])?;
                body.push_str(std::str::from_utf8(&s[i..q]).ok()?);
                // `''` is one quote inside.
                if q + 1 < end && s[q + 1] == b'\'' {
                    body.push('\'');
                    i = q + 2;
                } else {
                    break (body, q + 1);
                }
            }
        };
        self.charge(self.costs.value + text.len())?;
        Some((Value::String(text), rest))
    }

    /// A flow collection (`[a, b]`, `{k: v}`) on one line, nested or not;
    /// and where it ends. Plain scalars in it hold no `:`, `#` or quote,
    /// and there is no trailing comma and no key without a value.
    fn flow(&mut self, at: usize, end: usize) -> Option<(Value, usize)> {
        let s = self.s;
        self.open()?;
        let is_map = s[at] == b'{';
        let close = if is_map { b'}' } else { b']' };
        let skip = |mut i: usize| {
            while i < end && s[i] == b' ' {
                i += 1;
            }
            i
        };
        let (mut items, mut map) = (Vec::new(), Map::new());
        let mut i = skip(at + 1);
        if i < end && s[i] == close {
            i += 1;
        } else {
            loop {
                if i == end {
                    return None;
                }
                if is_map {
                    let k = i + s[i..end].iter().take_while(|&&b| key_byte(b)).count();
                    let plain_key = k > i && k - i <= MAX_KEY && key_start(s[i]);
                    if !(plain_key && s.get(k) == Some(&b':') && s.get(k + 1) == Some(&b' ')) {
                        return None;
                    }
                    let key = std::str::from_utf8(&s[i..k]).ok()?;
                    self.charge(self.costs.key + key.len())?;
                    let (value, next) = self.flow_item(skip(k + 1), end)?;
                    if map.insert(key.to_string(), value).is_some() {
                        return None;
                    }
                    i = next;
                } else {
                    let (value, next) = self.flow_item(i, end)?;
                    items.push(value);
                    i = next;
                }
                i = skip(i);
                match s.get(i) {
                    Some(b',') if i < end => {
                        i = skip(i + 1);
                        // A trailing comma: libyaml's.
                        if i < end && s[i] == close {
                            return None;
                        }
                    }
                    Some(&b) if i < end && b == close => {
                        i += 1;
                        break;
                    }
                    _ => return None,
                }
            }
        }
        self.depth -= 1;
        let value = if is_map { Value::Object(map) } else { Value::Array(items) };
        Some((value, i))
    }

    /// An item of a flow collection from `at`, and where it ends.
    fn flow_item(&mut self, at: usize, end: usize) -> Option<(Value, usize)> {
        let s = self.s;
        match *s.get(at).filter(|_| at < end)? {
            b'"' | b'\'' => self.quoted(at, end),
            b'[' | b'{' => self.flow(at, end),
            _ => {
                let stop =
                    at + s[at..end].iter().take_while(|b| !matches!(b, b',' | b'[' | b']' | b'{' | b'}')).count();
                let mut raw = &s[at..stop];
                while let [rest @ .., b' '] = raw {
                    raw = rest;
                }
                if raw.iter().any(|b| matches!(b, b':' | b'#' | b'"' | b'\'')) {
                    return None;
                }
                let value = resolve(std::str::from_utf8(raw).ok()?)?;
                self.charge(self.cost(&value))?;
                Some((value, stop))
            }
        }
    }

    fn cost(&self, value: &Value) -> usize {
        match value {
            Value::String(t) => self.costs.value + t.len(),
            _ => self.costs.value,
        }
    }

    /// A plain scalar from `at`, resolved as yaml_serde resolves one.
    fn plain(&mut self, at: usize, end: usize) -> Option<Value> {
        let s = self.s;
        let mut stop = end;
        for i in at + 1..end {
            if s[i] == b'#' && s[i - 1] == b' ' {
                stop = i;
                break;
            }
        }
        let mut raw = &s[at..stop];
        while let [rest @ .., b' '] = raw {
            raw = rest;
        }
        // `a: b` as a value, or a trailing `:`: not a scalar at all.
        if raw.ends_with(b":") || raw.windows(2).any(|w| w == b": ") {
            return None;
        }
        let raw = std::str::from_utf8(raw).ok()?;
        let value = resolve(raw)?;
        self.charge(self.cost(&value))?;
        Some(value)
    }
}

/// The first character of a key this subset reads.
fn key_start(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// A character of a key this subset reads (label keys among them).
fn key_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'/' | b'-')
}

/// A plain scalar's value, as yaml_serde's `visit_untagged_scalar` has it;
/// `None` for the forms this subset leaves to it (floats, hexadecimal,
/// leading zeros, `~`, `.inf`, a first character that is an indicator).
fn resolve(raw: &str) -> Option<Value> {
    match raw {
        "null" | "Null" | "NULL" => return Some(Value::Null),
        "true" | "True" | "TRUE" => return Some(Value::Bool(true)),
        "false" | "False" | "FALSE" => return Some(Value::Bool(false)),
        _ => {}
    }
    let b = raw.as_bytes();
    let first = *b.first()?;
    // No number starts with a letter (Rust's float grammar has only `inf`,
    // `infinity` and `nan` there, none of them finite, so strings).
    if first.is_ascii_alphabetic() || first == b'_' || first == b'/' {
        return Some(Value::String(raw.to_string()));
    }
    let negative = first == b'-' && b.get(1).is_some_and(u8::is_ascii_digit);
    if !first.is_ascii_digit() && !negative {
        return None;
    }
    let digits = if negative { &b[1..] } else { b };
    let short_decimal = digits.len() <= 18 && digits.iter().all(u8::is_ascii_digit);
    if short_decimal && (digits[0] != b'0' || (digits.len() == 1 && !negative)) {
        return if negative {
            raw.parse::<i64>().ok().map(Value::from)
        } else {
            raw.parse::<u64>().ok().map(Value::from)
        };
    }
    // yaml_serde reads a number only in one of Rust's integer forms (after
    // an optional sign: decimal, or hexadecimal, octal or binary behind
    // `0x`, `0o`, `0b`) or as a Rust float, and every decimal integer is a
    // float too. So a scalar that is neither is a string: an IP address,
    // `80/TCP`, `80-8080`, `500m`, `5Gi`. The numbers left are libyaml's.
    let unsigned = &raw[usize::from(negative)..];
    let radix = ["0x", "0o", "0b"].iter().any(|p| unsigned.starts_with(p));
    if radix || unsigned.parse::<f64>().is_ok() {
        return None;
    }
    Some(Value::String(raw.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const COSTS: Costs = Costs { value: 32, key: 48 };

    /// What libyaml (yaml_serde) makes of `doc`, as `parse` builds it.
    fn libyaml(doc: &str) -> Result<Value, String> {
        super::super::parse::yaml_value_full(doc)
    }

    fn fast(doc: &str) -> Option<Value> {
        parse(doc, usize::MAX, COSTS)
    }

    #[test]
    fn reads_a_manifest() {
        let doc = "apiVersion: v1\nkind: Service\nmetadata:\n  name: web # the front\n  namespace: shop\n  labels:\n    app.kubernetes.io/name: web\n    tier: \"1\"\nspec:\n  clusterIP: 10.96.0.10\n  ports:\n  - name: http\n    port: 80\n    targetPort: 8080\n  -   name: 'dns''s'\n      port: -53\n      protocol: UDP\n  selector:\n    app: web\n  externalIPs:\n    - 192.0.2.1\n  publishNotReadyAddresses: true\n  empty:\n";
        let v = fast(doc).expect("in the subset");
        assert_eq!(Ok(v.clone()), libyaml(doc));
        assert_eq!(v["spec"]["ports"][1]["name"], "dns's");
        assert_eq!(v["spec"]["ports"][0]["port"], 80);
        assert_eq!(v["metadata"]["labels"]["tier"], "1");
        assert_eq!(v["spec"]["empty"], Value::Null);
    }

    /// Forms left to libyaml give `None`, never a value of their own.
    #[test]
    fn leaves_the_rest_to_libyaml() {
        for doc in [
            "a: [1, 2,]\n",
            "a: {b}\n",
            "a: [1,\n  2]\n",
            "a: [b: c]\n",
            "a: &x 1\nb: *x\n",
            "a: !!str 1\n",
            "a: |2\n  text\n",
            "a: |+\n  text\n",
            "a: >\n  text\n",
            "a: |\n  text\n\n  more\n",
            "a: |\n  text",
            "a: |\nb: 1\n",
            "a: \"esc\\n\"\n",
            "a: two\n  lines\n",
            "a: 1.5\n",
            "a: 0x1F\n",
            "a: 012\n",
            "a: ~\n",
            "a:\tb\n",
            "a: b\r\n",
            "a: caf\u{e9}\n",
            "a: 1\na: 2\n",
            "- a\n- b\n",
            "just text\n",
            "\"a\": 1\n",
            "a: b: c\n",
            "a:\n- - x\n",
            "  a: 1\nb: 2\n",
            "a: 1\n  b: 2\n",
            "%YAML 1.2\n---\na: 1\n",
        ] {
            assert_eq!(fast(doc), None, "{doc:?}");
        }
        // Past libyaml's limits, found in review: 1,025 characters of key in
        // a flow mapping, and nesting that counts an indentless sequence.
        let long = format!("a: {{{}: 1}}\n", "k".repeat(1025));
        assert!(libyaml(&long).is_err());
        assert_eq!(fast(&long), None);
        let mut deep = "a:\n".to_string();
        for i in 0..64 {
            deep.push_str(&format!("{}- a:{}\n", "  ".repeat(i), if i == 63 { " x" } else { "" }));
        }
        assert!(libyaml(&deep).is_err(), "{:?}", libyaml(&deep));
        assert_eq!(fast(&deep), None);
    }

    /// Every document of the repository's fixtures, deploy/ manifests and
    /// demo cluster that the fast path reads, it reads as libyaml does;
    /// most of them it reads.
    #[test]
    fn agrees_on_the_fixtures() {
        let mut files = Vec::new();
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut dirs = vec![root.join("tests/fixtures"), root.join("deploy"), root.join("src/demo")];
        while let Some(d) = dirs.pop() {
            for e in std::fs::read_dir(&d).expect("fixtures").flatten() {
                let p = e.path();
                if p.is_dir() {
                    dirs.push(p);
                } else if p.extension().is_some_and(|x| x == "yaml" || x == "yml") {
                    files.push(p);
                }
            }
        }
        let (mut read, mut all) = (0, 0);
        for f in files {
            let text = std::fs::read_to_string(&f).expect("fixture");
            for doc in text.split("\n---\n") {
                all += 1;
                if let Some(v) = fast(doc) {
                    read += 1;
                    assert_eq!(Ok(v), libyaml(doc), "{}: {doc}", f.display());
                }
            }
        }
        assert!(all > 50 && read * 5 > all * 4, "read {read} of {all}");
    }

    /// Random block documents built of pieces that sit on the subset's
    /// edges: whenever the fast path gives a value, libyaml gives the same.
    #[test]
    fn agrees_with_libyaml() {
        let scalars = [
            "abc",
            "a b",
            "true",
            "True",
            "tRue",
            "FALSE",
            "null",
            "NULL",
            "nUll",
            "~",
            "0",
            "00",
            "01",
            "7",
            "-1",
            "-0",
            "+1",
            "-01",
            "1.5",
            "10.0.0.1",
            "1e3",
            "1E3",
            "0x1F",
            "0o7",
            "0b1",
            ".inf",
            "-.inf",
            ".nan",
            "inf",
            "nan",
            "Infinity",
            "a#b",
            "a #b",
            "a: b",
            "a:b",
            "a:",
            "http://x:80/p",
            "-a",
            "- a",
            "-",
            "[a]",
            "a]",
            "{a}",
            "a,b",
            "&x",
            "*x",
            "!x",
            "|",
            ">",
            "'q'",
            "'it''s'",
            "''",
            "'a' b",
            "'a'#c",
            "\"d\"",
            "\"\"",
            "\"a\\\"b\"",
            "\"a'b\"",
            "\"a #b\"",
            "\"a\": 1",
            "yes",
            "no",
            "on",
            "off",
            "y",
            "1_000",
            "123456789012345678",
            "1234567890123456789",
            "12345678901234567890123",
            "-9223372036854775808",
            "-922337203685477580",
            "18446744073709551616",
            "80/TCP",
            "2024-01-01",
            "2024-01-01T00:00:00Z",
            "12:30",
            "1:2",
            "1.2.3",
            "1..2",
            "1.",
            ".5",
            "+.5",
            "1e",
            "e1",
            "_x",
            "/p",
            "%x",
            "@x",
            "`x",
            "?x",
            "? x",
            "x?",
            "a\tb",
            "\u{e9}",
            "1-2",
            "1+2",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "ab cd # comment",
            "# c",
            "#",
            "a  ",
            "[a, b]",
            "[]",
            "{}",
            "[ ]",
            "{a: 1}",
            "{a: 1, a: 2}",
            "[a, [b, {c: d}]]",
            "[a,]",
            "{a}",
            "[a: b]",
            "{a:1}",
            "[ 10.0.0.1 ]",
            "[\"x\", 'y']",
            "[a #c]",
            "{a: [1, 2], b: x}",
            "[a,b]",
            "{a: }",
            "[,]",
            "{a: 1} x",
            "[1]#c",
            "[1] #c",
            "[true, null, -5, 0.5]",
            "{k: 'v''s'}",
            "[a b, c]",
            "{a: {b: {c: []}}}",
        ];
        let keys = [
            "a",
            "b",
            "name",
            "app.kubernetes.io/name",
            "true",
            "null",
            "80",
            "1.5",
            "_k",
            "-k",
            "k-",
            "a b",
            "a:b",
            "\"q\"",
            "'q'",
            "?",
            "a#",
            "kind",
            "a",
        ];
        let mut next = crate::source::xorshift(0x9e37_79b9_7f4a_7c15u64);
        type Next<'a> = &'a mut dyn FnMut(usize) -> usize;
        /// A block mapping whose keys are at column `col`.
        fn map(out: &mut String, col: usize, depth: usize, keys: &[&str], scalars: &[&str], next: Next) {
            for _ in 0..1 + next(3) {
                out.push_str(&" ".repeat(col));
                out.push_str(keys[next(keys.len())]);
                out.push(':');
                match next(4) {
                    0 => {
                        out.push('\n');
                        // Indentless (a sequence at the key's column) or indented.
                        let c = if next(3) == 0 { col } else { col + [1, 2, 4][next(3)] };
                        node(out, c, depth + 1, keys, scalars, next);
                    }
                    1 => out.push('\n'),
                    _ => {
                        out.push_str(&" ".repeat(1 + next(2)));
                        inline(out, col, scalars, next);
                    }
                }
            }
        }
        /// A scalar after `key: ` or `- ` in a collection at column `col`;
        /// a literal block scalar gets lines below it.
        fn inline(out: &mut String, col: usize, scalars: &[&str], next: Next) {
            let scalar = scalars[next(scalars.len())];
            out.push_str(scalar);
            out.push('\n');
            if scalar.starts_with('|') {
                let body = ["text", "# not a comment", "a: b", "- z", "  more", "", "   ", "x  ", "{\"j\": 1}"];
                let indent = col + [0, 1, 2, 2, 4][next(5)];
                for _ in 0..next(4) {
                    out.push_str(&" ".repeat(indent));
                    out.push_str(body[next(body.len())]);
                    out.push('\n');
                }
            }
        }
        /// A mapping, a sequence or a scalar at column `col`.
        fn node(out: &mut String, col: usize, depth: usize, keys: &[&str], scalars: &[&str], next: Next) {
            match if depth > 3 { 2 } else { next(3) } {
                0 => map(out, col, depth, keys, scalars, next),
                1 => {
                    for _ in 0..1 + next(3) {
                        out.push_str(&" ".repeat(col));
                        out.push('-');
                        match next(4) {
                            0 => {
                                out.push('\n');
                                node(out, col + [1, 2, 3][next(3)], depth + 1, keys, scalars, next);
                            }
                            1 => {
                                // A compact mapping: its keys line up after `- `.
                                let pad = 1 + next(2);
                                let mut inner = String::new();
                                map(&mut inner, col + 1 + pad, depth + 1, keys, scalars, next);
                                out.push_str(&" ".repeat(pad));
                                out.push_str(&inner[col + 1 + pad..]);
                            }
                            _ => {
                                out.push(' ');
                                inline(out, col, scalars, next);
                            }
                        }
                    }
                }
                _ => {
                    out.push_str(&" ".repeat(col));
                    out.push_str(scalars[next(scalars.len())]);
                    out.push('\n');
                }
            }
        }
        // All the pieces, then plain ones with literal block scalars among
        // them (which the first pass meets too rarely to test).
        let plain = ["abc", "7", "|", "|-", "|", "|-", "'q'", "[a, 1]", "x y"];
        for (pass, scalars) in [(0, &scalars[..]), (1, &plain[..])] {
            let (mut read, mut total, mut literals) = (0, 0, 0);
            for _ in 0..[40_000, 10_000][pass] {
                let mut doc = String::new();
                map(&mut doc, 0, 0, &keys, scalars, &mut next);
                // Now and then a line added or a character changed.
                match next(4) {
                    0 => {
                        let mut lines: Vec<&str> = doc.lines().collect();
                        let extra = ["# note", "", "   ", "  # indented note", "x", "  y: 1", "- z", "---", "..."];
                        lines.insert(next(lines.len() + 1), extra[next(extra.len())]);
                        doc = lines.join("\n") + "\n";
                    }
                    1 => {
                        let mut at = next(doc.len() + 1);
                        while !doc.is_char_boundary(at) {
                            at -= 1;
                        }
                        let c = [" ", "-", ":", "#", "'", "\"", "\n", "a", "1"][next(9)];
                        if next(2) == 0 && at < doc.len() {
                            doc.remove(at);
                        } else {
                            doc.insert_str(at, c);
                        }
                    }
                    _ => {}
                }
                let full = libyaml(&doc);
                total += full.is_ok() as usize;
                if let Some(v) = fast(&doc) {
                    read += 1;
                    literals += doc.contains("|\n") as usize + doc.contains("|-\n") as usize;
                    assert_eq!(Ok(v), full, "{doc}");
                }
            }
            // The generator reaches the fast path often enough to test it.
            assert!(read * 5 > total, "read {read} of the {total} that libyaml read");
            assert!(pass == 0 || literals > 200, "{literals} literal block scalars read");
        }
    }
}
