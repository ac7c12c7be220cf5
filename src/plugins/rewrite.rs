//! `rewrite [continue|stop] name [exact|prefix|suffix|substring|regex] FROM
//! TO [answer auto | answer name FROM TO | answer value FROM TO]`, `rewrite
//! type FROM TO`, `rewrite class FROM TO`: the question is changed before
//! the rest of the chain sees it, and the response is changed back so the
//! client sees its own question (CoreDNS's `rewrite` plugin).
//!
//! Rules apply in the order written; `stop` (the default) ends at the first
//! rule that matched, `continue` goes on. A rewritten question is a new
//! message (an allocation, only for questions a rule matches). The answer's
//! names are given back: those equal to the rewritten name always (as
//! CoreDNS does for `exact`), the others as `answer` says.

use hickory_proto::op::{Message, Query};
use hickory_proto::rr::{Name, RData, Record};

use crate::corefile::{AnswerRewrite, NameMatch, Rewrite, RewriteRule};

/// What it takes to turn the response back.
pub struct Revert {
    /// The client's question, as written.
    original: Query,
    /// The name the chain answered for (lowercase text, final dot), when
    /// the name was rewritten.
    rewritten: Option<String>,
    /// `answer` rules of every name rule that applied, last first.
    answers: Vec<(AnswerRewrite, Option<(String, String)>)>,
}

/// Replaces `{N}` in `to` with the groups of `caps`.
fn expand(to: &str, caps: &regex::Captures) -> String {
    let mut out = to.to_string();
    for i in (0..caps.len()).rev() {
        out = out.replace(&format!("{{{i}}}"), caps.get(i).map_or("", |m| m.as_str()));
    }
    out
}

fn fqdn(mut s: String) -> String {
    if !s.ends_with('.') {
        s.push('.');
    }
    s
}

/// The new name when `m` matches `name` (lowercase, final dot).
fn rewrite_name(m: &NameMatch, to: &str, name: &str) -> Option<String> {
    let to_l = to.to_ascii_lowercase();
    let out = match m {
        NameMatch::Exact(from) => (name == fqdn(from.to_ascii_lowercase())).then(|| to_l.clone())?,
        NameMatch::Prefix(from) => {
            let from = from.to_ascii_lowercase();
            name.strip_prefix(from.as_str()).map(|rest| format!("{to_l}{rest}"))?
        }
        NameMatch::Suffix(from) => {
            let from = from.to_ascii_lowercase();
            name.strip_suffix(from.as_str()).map(|head| format!("{head}{to_l}"))?
        }
        NameMatch::Substring(from) => {
            let from = from.to_ascii_lowercase();
            name.contains(from.as_str()).then(|| name.replace(from.as_str(), &to_l))?
        }
        NameMatch::Regex(re) => re.captures(name).map(|c| expand(to, &c))?,
    };
    Some(fqdn(out.to_ascii_lowercase()))
}

/// Applies the rules to `raw` (the client's message). Returns the new
/// message and what reverts it, or `None` when no rule matched.
pub fn apply(rules: &[Rewrite], raw: &[u8]) -> Option<(Vec<u8>, Revert)> {
    let mut msg = Message::from_vec(raw).ok()?;
    let original = msg.queries.first()?.clone();
    let mut q = original.clone();
    let mut revert = Revert { original: original.clone(), rewritten: None, answers: Vec::new() };
    let mut matched = false;
    for rule in rules {
        let hit = match &rule.rule {
            RewriteRule::Name { matcher, to, answer } => {
                let name = q.name().to_lowercase().to_ascii();
                match rewrite_name(matcher, to, &fqdn(name.clone())) {
                    Some(new) => {
                        let parsed = Name::from_ascii(&new).ok()?;
                        q.set_name(parsed);
                        revert.rewritten = Some(new.clone());
                        for a in answer {
                            revert.answers.insert(0, (a.clone(), Some((name.clone(), new.clone()))));
                        }
                        if answer.is_empty() {
                            revert.answers.insert(0, (AnswerRewrite::Default, Some((fqdn(name), new))));
                        }
                        true
                    }
                    None => false,
                }
            }
            RewriteRule::Type { from, to } => {
                let hit = u16::from(q.query_type()) == *from;
                if hit {
                    q.set_query_type((*to).into());
                }
                hit
            }
            RewriteRule::Class { from, to } => {
                let hit = u16::from(q.query_class()) == *from;
                if hit {
                    q.set_query_class((*to).into());
                }
                hit
            }
        };
        matched |= hit;
        if hit && !rule.continue_after {
            break;
        }
    }
    if !matched {
        return None;
    }
    msg.queries = vec![q];
    let bytes = msg.to_vec().ok()?;
    Some((bytes, revert))
}

impl Revert {
    /// Rewrites the response in `out` back for the client.
    pub fn apply(&self, out: &mut Vec<u8>) {
        let Ok(mut msg) = Message::from_vec(out) else { return };
        msg.queries = vec![self.original.clone()];
        let original = self.original.name().clone();
        for section in [&mut msg.answers, &mut msg.authorities, &mut msg.additionals] {
            for rr in section.iter_mut() {
                self.revert_record(rr, &original);
            }
        }
        if let Ok(bytes) = msg.to_vec() {
            *out = bytes;
        }
    }

    fn revert_record(&self, rr: &mut Record, original: &Name) {
        let owner = rr.name.to_lowercase().to_ascii();
        if self.rewritten.as_deref() == Some(owner.as_str()) {
            rr.name = original.clone();
        }
        for (rule, names) in &self.answers {
            match rule {
                AnswerRewrite::Default => {}
                AnswerRewrite::Auto => {
                    // Best effort: what the rule changed, changed back.
                    let owner = rr.name.to_lowercase().to_ascii();
                    if let Some((orig, new)) = names
                        && let Some(n) = common_suffix_swap(&owner, new, orig)
                        && let Ok(n) = Name::from_ascii(&n)
                    {
                        rr.name = n;
                    }
                }
                AnswerRewrite::Name { from, to } => {
                    let owner = rr.name.to_lowercase().to_ascii();
                    if let Some(c) = from.captures(&owner)
                        && let Ok(n) = Name::from_ascii(fqdn(expand(to, &c)))
                    {
                        rr.name = n;
                    }
                }
                AnswerRewrite::Value { from, to } => {
                    let swap = |n: &Name| -> Option<Name> {
                        let text = n.to_lowercase().to_ascii();
                        let c = from.captures(&text)?;
                        Name::from_ascii(fqdn(expand(to, &c))).ok()
                    };
                    match &mut rr.data {
                        RData::CNAME(c) => {
                            if let Some(n) = swap(&c.0) {
                                c.0 = n;
                            }
                        }
                        RData::PTR(p) => {
                            if let Some(n) = swap(&p.0) {
                                p.0 = n;
                            }
                        }
                        RData::NS(p) => {
                            if let Some(n) = swap(&p.0) {
                                p.0 = n;
                            }
                        }
                        RData::SRV(s) => {
                            if let Some(n) = swap(&s.target) {
                                s.target = n;
                            }
                        }
                        RData::MX(m) => {
                            if let Some(n) = swap(&m.exchange) {
                                m.exchange = n;
                            }
                        }
                        _ => {}
                    }
                }
            }
        }
    }
}

/// For `answer auto` after a suffix or substring rewrite: an owner that
/// ends with the new text gets the original text back in its place.
fn common_suffix_swap(owner: &str, new: &str, orig: &str) -> Option<String> {
    // The part both names share at their ends is what the rule left alone;
    // what differs is what it changed.
    let shared = new.chars().rev().zip(orig.chars().rev()).take_while(|(a, b)| a == b).count();
    let new_part = &new[..new.len() - shared];
    let orig_part = &orig[..orig.len() - shared];
    let rest = &new[new.len() - shared..];
    let head = owner.strip_suffix(rest)?.strip_suffix(new_part)?;
    Some(format!("{head}{orig_part}{rest}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_matches_rewrite_as_coredns_documents() {
        let re = regex::Regex::new(r"(.*)-(us-west-1)\.example\.org\.").unwrap();
        let cases = [
            (NameMatch::Exact("a.example.org.".into()), "b.example.org.", "a.example.org.", Some("b.example.org.")),
            (NameMatch::Exact("a.example.org.".into()), "b.example.org.", "x.example.org.", None),
            (
                NameMatch::Suffix(".schmoogle.com.".into()),
                ".google.com.",
                "www.schmoogle.com.",
                Some("www.google.com."),
            ),
            (NameMatch::Prefix("api.".into()), "web.", "api.example.org.", Some("web.example.org.")),
            (
                NameMatch::Substring("service.us-west-1.example.org".into()),
                "service.us-west-1.consul",
                "ftp.service.us-west-1.example.org.",
                Some("ftp.service.us-west-1.consul."),
            ),
            (
                NameMatch::Regex(re),
                "{1}.service.{2}.consul",
                "ftp-us-west-1.example.org.",
                Some("ftp.service.us-west-1.consul."),
            ),
        ];
        for (m, to, name, want) in cases {
            assert_eq!(rewrite_name(&m, to, name).as_deref(), want, "{m:?} {name}");
        }
        assert_eq!(
            common_suffix_swap("www.google.com.", ".google.com.", ".schmoogle.com.").as_deref(),
            Some("www.schmoogle.com.")
        );
    }
}
