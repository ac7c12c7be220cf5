//! `template CLASS TYPE [ZONES...] { ... }` as plugin/template/setup.go
//! reads it, with the RR texts' Go-template fields parsed into pieces.

use regex::Regex;

use super::CorefileError;
use super::config::*;
use super::plugins::{Ctx, arg_err, lines, unknown, unsupported};
use super::syntax::RawDirective;
use super::values;

/// CoreDNS refuses longer patterns.
const MAX_REGEX_LEN: usize = 10_000;

pub(crate) fn parse(d: &RawDirective, cx: &Ctx) -> Result<Template, CorefileError> {
    let [class, qtype, zones @ ..] = d.args.as_slice() else {
        return Err(arg_err(d, &d.name, "CLASS TYPE [ZONES...]"));
    };
    let class = match values::rr_class(&class.text) {
        Some(255) => None,
        Some(c) => Some(c),
        None => return Err(class.err(format!("template: invalid query class {}", class.text))),
    };
    let qtype = match values::rr_type(&qtype.text) {
        Some(255) => None,
        Some(t) => Some(t),
        None => return Err(qtype.err(format!("template: invalid RR type {}", qtype.text))),
    };
    let mut t = Template {
        class,
        qtype,
        zones: values::zones_or_block(zones, cx.zones)?,
        matches: Vec::new(),
        answer: Vec::new(),
        additional: Vec::new(),
        authority: Vec::new(),
        rcode: 0,
        fallthrough: None,
    };
    for line in lines(d) {
        let (opt, args) = (&line[0], &line[1..]);
        match opt.as_str() {
            "match" => {
                if args.is_empty() {
                    return Err(arg_err(d, opt, "at least one regular expression"));
                }
                for a in args {
                    if a.text.len() > MAX_REGEX_LEN {
                        return Err(
                            a.err(format!("template: regex pattern too long: {} > {MAX_REGEX_LEN}", a.text.len()))
                        );
                    }
                    let re = Regex::new(&a.text).map_err(|e| {
                        a.err(format!("template: could not parse regex: {}, {}", a.text, values::regex_error(&e)))
                    })?;
                    t.matches.push(re);
                }
            }
            section @ ("answer" | "additional" | "authority") => {
                if args.is_empty() {
                    return Err(arg_err(d, opt, "at least one RR template"));
                }
                let list = match section {
                    "answer" => &mut t.answer,
                    "additional" => &mut t.additional,
                    _ => &mut t.authority,
                };
                for a in args {
                    list.push(pieces(&a.text).map_err(|e| a.err(format!("template: {section}: {e}")))?);
                }
            }
            "rcode" => {
                let [r] = args else { return Err(arg_err(d, opt, "one rcode")) };
                t.rcode = values::rcode(&r.text).ok_or_else(|| r.err(format!("template: unknown rcode {}", r.text)))?;
            }
            "fallthrough" => t.fallthrough = Some(values::fallthrough(args)?),
            // Accepted and ignored by CoreDNS ("remove soon").
            "upstream" => {}
            "ederror" | "var" | "expr" => return Err(unsupported(d, opt)),
            _ => return Err(unknown(d, opt)),
        }
    }
    if t.matches.is_empty() {
        t.matches.push(Regex::new(".*").map_err(|e| d.name.err(e.to_string()))?);
    }
    Ok(t)
}

/// Splits a Go text/template into literal text and the fields clusterdns
/// fills in. Trim markers (`{{-`, `-}}`), comments and string literals are
/// understood; any other action is an error naming it.
pub(crate) fn pieces(text: &str) -> Result<Vec<TemplatePiece>, String> {
    let mut out: Vec<TemplatePiece> = Vec::new();
    let mut rest = text;
    let mut trim_next = false;
    while !rest.is_empty() {
        let Some(open) = rest.find("{{") else {
            push_text(&mut out, rest, trim_next);
            break;
        };
        let mut inner = &rest[open + 2..];
        let trim_prev = inner.starts_with("- ") || inner.starts_with("-\t") || inner.starts_with("-\n");
        let lit = &rest[..open];
        push_text(&mut out, if trim_prev { lit.trim_end() } else { lit }, trim_next);
        if trim_prev {
            inner = &inner[1..];
        }
        let Some(close) = inner.find("}}") else {
            return Err(format!("unclosed action in \"{text}\""));
        };
        let mut action = &inner[..close];
        rest = &inner[close + 2..];
        trim_next = action.ends_with(" -") || action.ends_with("\t-") || action.ends_with("\n-");
        if trim_next {
            action = &action[..action.len() - 1];
        }
        if let Some(p) = field(action.trim())? {
            out.push(p);
        }
    }
    Ok(out)
}

fn push_text(out: &mut Vec<TemplatePiece>, s: &str, trim_start: bool) {
    let s = if trim_start { s.trim_start() } else { s };
    if s.is_empty() {
        return;
    }
    if let Some(TemplatePiece::Text(prev)) = out.last_mut() {
        prev.push_str(s);
    } else {
        out.push(TemplatePiece::Text(s.to_string()));
    }
}

/// One action's content: a field, a string literal, or a comment (None).
fn field(a: &str) -> Result<Option<TemplatePiece>, String> {
    if a.starts_with("/*") && a.ends_with("*/") && a.len() >= 4 {
        return Ok(None);
    }
    if let Some(s) = string_literal(a) {
        return Ok(Some(TemplatePiece::Text(s)));
    }
    let words: Vec<&str> = a.split_whitespace().collect();
    let piece = match words.as_slice() {
        [".Name"] => TemplatePiece::Name,
        [".Zone"] => TemplatePiece::Zone,
        [".Class"] => TemplatePiece::Class,
        [".Type"] => TemplatePiece::Type,
        [".Remote"] => TemplatePiece::Remote,
        ["index", ".Match", n] => {
            TemplatePiece::Match(n.parse().map_err(|_| format!("bad index {n} of .Match in {{{{ {a} }}}}"))?)
        }
        ["index", ".Group", g] => match string_literal(g) {
            Some(name) => TemplatePiece::Group(name),
            None => return Err(format!("bad key {g} of .Group in {{{{ {a} }}}}")),
        },
        [g] if g.starts_with(".Group.") && g.len() > ".Group.".len() => {
            TemplatePiece::Group(g[".Group.".len()..].to_string())
        }
        _ => {
            return Err(format!(
                "unknown template field {{{{ {a} }}}} (clusterdns knows .Name .Zone .Class .Type .Remote, index .Match N and .Group.NAME)"
            ));
        }
    };
    Ok(Some(piece))
}

/// A Go string literal: `"..."` with simple escapes, or a raw `` `...` ``.
fn string_literal(s: &str) -> Option<String> {
    if s.len() >= 2 && s.starts_with('`') && s.ends_with('`') {
        return Some(s[1..s.len() - 1].to_string());
    }
    let inner = s.strip_prefix('"')?.strip_suffix('"')?;
    let mut out = String::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next()? {
            'n' => out.push('\n'),
            't' => out.push('\t'),
            c @ ('\\' | '"') => out.push(c),
            _ => return None,
        }
    }
    Some(out)
}
