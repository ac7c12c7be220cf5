//! `rewrite [continue|stop] RULE` as plugin/rewrite (setup.go, rewrite.go,
//! name.go, type.go, class.go) reads it: `name`, `type` and `class` rules.

use regex::Regex;

use super::CorefileError;
use super::config::*;
use super::lexer::Token;
use super::plugins::{arg_err, lines};
use super::syntax::RawDirective;
use super::values;

/// CoreDNS refuses longer patterns.
const MAX_REGEX_LEN: usize = 10_000;

pub(crate) fn parse(d: &RawDirective) -> Result<Rewrite, CorefileError> {
    let mut args: Vec<&Token> = d.args.iter().collect();
    if args.len() < 2 {
        // The rule written in a block: its lines read as one list of words.
        args.extend(lines(d).iter().flatten());
    } else if let Some(line) = lines(d).first() {
        return Err(line[0].err("rewrite: a rule written on the directive's line takes no block"));
    }
    let Some(first) = args.first() else {
        return Err(d.name.err("rewrite: no rule type specified for rewrite"));
    };
    let (continue_after, rule_args) = match first.text.to_ascii_lowercase().as_str() {
        m @ ("continue" | "stop") => {
            if args.len() < 2 {
                return Err(first.err(format!("rewrite: {m} rule must begin with a rule type")));
            }
            (m == "continue", &args[1..])
        }
        _ => (false, &args[..]),
    };
    let kind = rule_args[0];
    let rest = &rule_args[1..];
    let rule = match kind.text.to_ascii_lowercase().as_str() {
        "answer" => return Err(kind.err("rewrite: response rewrites must begin with a name rule")),
        "name" => name_rule(kind, rest)?,
        k @ ("type" | "class") => {
            let [from, to] = rest else {
                return Err(arg_err(d, kind, &format!("{k} rules must have exactly two arguments")));
            };
            let lookup = |t: &Token| {
                let up = t.text.to_ascii_uppercase();
                let v = if k == "type" { values::rr_type(&up) } else { values::rr_class(&up) };
                v.ok_or_else(|| t.err(format!("rewrite: invalid {k} \"{up}\"")))
            };
            let (from, to) = (lookup(from)?, lookup(to)?);
            if k == "type" { RewriteRule::Type { from, to } } else { RewriteRule::Class { from, to } }
        }
        k @ ("edns0" | "ttl" | "cname" | "rcode") => {
            return Err(kind.err(format!("rewrite: rule type '{k}' is not supported by clusterdns")));
        }
        _ => return Err(kind.err(format!("rewrite: invalid rule type \"{}\"", kind.text))),
    };
    Ok(Rewrite { continue_after, rule })
}

/// A Go-compatible pattern whose `{N}` references in `to` stay within its groups.
fn pattern(from: &Token, to: &str) -> Result<Regex, CorefileError> {
    if from.text.len() > MAX_REGEX_LEN {
        return Err(from.err(format!("rewrite: regex pattern too long: {} > {MAX_REGEX_LEN}", from.text.len())));
    }
    let re = Regex::new(&from.text).map_err(|e| {
        from.err(format!("rewrite: invalid regex matching pattern: {}: {}", from.text, values::regex_error(&e)))
    })?;
    let used = (0..=100).filter(|i| to.contains(&format!("{{{i}}}"))).count();
    if used > re.captures_len() - 1 {
        return Err(from.err(format!(
            "rewrite: the rewrite regex pattern ({to}) uses more subexpressions than its corresponding matching regex pattern ({})",
            from.text
        )));
    }
    Ok(re)
}

/// `name [exact|prefix|suffix|substring|regex] FROM TO [answer ...]...`
fn name_rule(kind: &Token, args: &[&Token]) -> Result<RewriteRule, CorefileError> {
    if args.len() < 2 {
        return Err(kind.err("rewrite: too few arguments for a name rule"));
    }
    if args.len() == 2 {
        return Ok(RewriteRule::Name {
            matcher: NameMatch::Exact(values::fqdn(&args[0].text)),
            to: values::fqdn(&args[1].text),
            answer: vec![AnswerRewrite::Default],
        });
    }
    let match_type = args[0].text.to_ascii_lowercase();
    let (from, to_tok) = (args[1], args[2]);
    let answer = if args.len() > 3 { answers(&match_type, &args[3..])? } else { vec![AnswerRewrite::Default] };
    let matcher = match match_type.as_str() {
        "exact" => NameMatch::Exact(values::fqdn(&from.text)),
        "prefix" => NameMatch::Prefix(values::fqdn(&from.text)),
        "suffix" => NameMatch::Suffix(values::fqdn(&from.text)),
        "substring" => NameMatch::Substring(values::fqdn(&from.text)),
        "regex" => NameMatch::Regex(pattern(from, &to_tok.text)?),
        other => {
            return Err(args[0].err(format!(
                "rewrite: name rule supports only exact, prefix, suffix, substring, and regex name matching, received: {other}"
            )));
        }
    };
    Ok(RewriteRule::Name { matcher, to: values::fqdn(&to_tok.text), answer })
}

/// `answer auto | answer name FROM TO | answer value FROM TO`, repeated;
/// after the first, the word `answer` may be left out.
fn answers(match_type: &str, args: &[&Token]) -> Result<Vec<AnswerRewrite>, CorefileError> {
    let err = |t: &Token, m: String| t.err(format!("rewrite: {m}"));
    if args.len() < 2 {
        return Err(err(args[0], format!("invalid arguments for {match_type} rule")));
    }
    let mut out = Vec::new();
    let mut i = 0;
    let mut started = false;
    let (mut auto, mut names) = (false, 0);
    while i < args.len() {
        if !started && args[i].text != "answer" {
            return Err(err(
                args[i],
                format!("exceeded the number of arguments for a non-answer rule argument for {match_type} rule"),
            ));
        }
        if args[i].text == "answer" {
            i += 1;
        }
        let Some(what) = args.get(i) else {
            return Err(err(args[i - 1], format!("type missing for answer rule for {match_type} rule")));
        };
        started = true;
        i += 1;
        match what.as_str() {
            "auto" => {
                auto = true;
                out.push(AnswerRewrite::Auto);
            }
            w @ ("name" | "value") => {
                let (Some(from), Some(to)) = (args.get(i), args.get(i + 1)) else {
                    return Err(err(what, format!("{w} answer rule for {match_type} rule: 2 arguments required")));
                };
                let re = pattern(from, &to.text)?;
                let to = values::fqdn(&to.text);
                if w == "name" {
                    names += 1;
                    out.push(AnswerRewrite::Name { from: re, to });
                } else {
                    out.push(AnswerRewrite::Value { from: re, to });
                }
                i += 2;
            }
            other => return Err(err(what, format!("invalid type \"{other}\" for answer rule for {match_type} rule"))),
        }
    }
    if auto && names > 0 {
        return Err(err(args[0], "auto name answer rule cannot be combined with explicit name answer rules".into()));
    }
    Ok(out)
}
