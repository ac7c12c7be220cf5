//! Kubernetes label selectors as written in `kubectl -l`, CoreDNS's `labels`
//! and `namespace_labels`: `k=v`, `k==v`, `k!=v`, `k in (a,b)`,
//! `k notin (a,b)`, `k`, `!k`, joined by commas. The API server evaluates
//! them for watches; manifests are evaluated here, with the same meaning.

use std::fmt;
use std::str::FromStr;

use super::objects::Labels;

#[derive(Clone, Debug, PartialEq, Eq)]
enum Requirement {
    Exists(String),
    Absent(String),
    Equals(String, String),
    Differs(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
}

/// A parsed selector; keeps its text for the API server's `labelSelector`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Selector {
    text: String,
    requirements: Vec<Requirement>,
}

impl Selector {
    /// Parses a selector; the error says what is wrong with which part.
    pub fn parse(text: &str) -> Result<Selector, String> {
        let mut parts = Vec::new();
        let (mut depth, mut start) = (0i32, 0usize);
        for (i, c) in text.char_indices() {
            match c {
                '(' => depth += 1,
                ')' => depth -= 1,
                ',' if depth == 0 => {
                    parts.push(&text[start..i]);
                    start = i + 1;
                }
                _ => {}
            }
            if depth < 0 {
                return Err("unbalanced ')'".into());
            }
        }
        if depth != 0 {
            return Err("unclosed '('".into());
        }
        parts.push(&text[start..]);
        let requirements = parts.into_iter().map(|p| requirement(p.trim())).collect::<Result<_, _>>()?;
        Ok(Selector { text: text.trim().to_string(), requirements })
    }

    /// The selector as written, for the API server.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Whether `labels` satisfies every requirement (as the API server
    /// decides it: `!=` and `notin` hold for a missing key).
    pub fn matches(&self, labels: &Labels) -> bool {
        self.requirements.iter().all(|r| match r {
            Requirement::Exists(k) => labels.get(k).is_some(),
            Requirement::Absent(k) => labels.get(k).is_none(),
            Requirement::Equals(k, v) => labels.get(k) == Some(v.as_str()),
            Requirement::Differs(k, v) => labels.get(k) != Some(v.as_str()),
            Requirement::In(k, set) => labels.get(k).is_some_and(|l| set.iter().any(|v| v == l)),
            Requirement::NotIn(k, set) => labels.get(k).is_none_or(|l| !set.iter().any(|v| v == l)),
        })
    }
}

impl FromStr for Selector {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Selector::parse(s)
    }
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

fn requirement(r: &str) -> Result<Requirement, String> {
    if let Some(key) = r.strip_prefix('!') {
        return Ok(Requirement::Absent(label_key(key.trim())?));
    }
    for op in ["==", "!=", "="] {
        if let Some((k, v)) = r.split_once(op) {
            let (k, v) = (label_key(k.trim())?, label_value(v.trim())?);
            return Ok(if op == "!=" { Requirement::Differs(k, v) } else { Requirement::Equals(k, v) });
        }
    }
    for op in [" notin ", " in "] {
        if let Some((k, set)) = r.split_once(op) {
            let k = label_key(k.trim())?;
            let set = set.trim();
            let Some(inner) = set.strip_prefix('(').and_then(|s| s.strip_suffix(')')) else {
                return Err(format!("expected '(' values ')' in \"{r}\""));
            };
            let values = inner.split(',').map(|v| label_value(v.trim())).collect::<Result<_, _>>()?;
            return Ok(if op == " in " { Requirement::In(k, values) } else { Requirement::NotIn(k, values) });
        }
    }
    Ok(Requirement::Exists(label_key(r)?))
}

fn label_key(k: &str) -> Result<String, String> {
    let name = k.rsplit_once('/').map_or(k, |(_, n)| n);
    let ok_name = !name.is_empty() && name.len() <= 63 && label_chars(name);
    let ok_prefix = k.rsplit_once('/').is_none_or(|(p, _)| !p.is_empty() && p.len() <= 253 && label_chars(p));
    if ok_name && ok_prefix { Ok(k.to_string()) } else { Err(format!("invalid label key \"{k}\"")) }
}

fn label_value(v: &str) -> Result<String, String> {
    if v.is_empty() || (v.len() <= 63 && label_chars(v)) {
        Ok(v.to_string())
    } else {
        Err(format!("invalid label value \"{v}\""))
    }
}

fn label_chars(s: &str) -> bool {
    s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && s.starts_with(|c: char| c.is_ascii_alphanumeric())
        && s.ends_with(|c: char| c.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_as_the_api_server() {
        let labels: Labels = [("app", "web"), ("tier", "front")].into_iter().collect();
        let rows = [
            ("app=web", true),
            ("app==web", true),
            ("app=db", false),
            ("app!=db", true),
            ("team!=a", true),
            ("app", true),
            ("team", false),
            ("!team", true),
            ("!app", false),
            ("tier in (front, back)", true),
            ("tier in (back)", false),
            ("team in (a)", false),
            ("tier notin (back)", true),
            ("team notin (a)", true),
            ("tier notin (front)", false),
            ("app=web, tier in (front),!legacy", true),
            ("app=web,tier=back", false),
        ];
        for (text, want) in rows {
            let sel = Selector::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(sel.matches(&labels), want, "{text}");
        }
    }

    #[test]
    fn refuses_what_the_api_server_refuses() {
        for text in ["a=(", "a in b", "-a=b", "a=b c", "a in (b", "a)", "x/=y", "a=" /* empty value is fine */] {
            let r = Selector::parse(text);
            assert_eq!(r.is_ok(), text == "a=", "{text}: {r:?}");
        }
    }
}
