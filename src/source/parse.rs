//! Kubernetes manifests to trimmed objects: multi-document YAML, JSON,
//! `kind: List`, `kubectl get -o yaml` output. A broken document is reported
//! with its file and number; the others still load.

use std::path::Path;

use k8s_openapi::api::core::v1 as core;
use k8s_openapi::api::discovery::v1 as discovery;
use serde_json::Value;

use crate::model::{EndpointSlice, Endpoints, Labels, Namespace, Object, Pod, Selector, Service};

/// One problem in one document.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: document {doc} (from line {line}): {message}")]
pub struct DocError {
    pub file: String,
    pub doc: usize,
    /// The file line the document starts on.
    pub line: usize,
    pub message: String,
    /// Not valid YAML/JSON at all (the file may be half written).
    pub syntax: bool,
}

/// The documents of a YAML stream: split at `---` lines so that one broken
/// document cannot hide the others, each with its 1-based number.
fn documents(text: &str) -> impl Iterator<Item = (usize, usize, &str)> {
    let mut docs = Vec::new();
    let mut n = 1;
    let mut start = 0;
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let bare = line.trim_end_matches(['\n', '\r']);
        let marker = bare.starts_with("---") && bare[3..].chars().next().is_none_or(char::is_whitespace);
        if marker || bare.trim_end() == "..." {
            if !text[start..offset].trim().is_empty() {
                docs.push((n, start, offset));
            }
            n += 1;
            // `--- key: value` starts a document on the marker line.
            start = if marker && !bare[3..].trim().is_empty() { offset + 3 } else { offset + line.len() };
        }
        offset += line.len();
    }
    if !text[start..].trim().is_empty() {
        docs.push((n, start, text.len()));
    }
    let mut line = 1;
    let mut seen = 0;
    docs.into_iter().map(move |(n, a, b)| {
        line += text[seen..a].matches('\n').count();
        seen = a;
        (n, line, &text[a..b])
    })
}

fn yaml_value(doc: &str) -> Result<Value, String> {
    // Lists from `kubectl get -A -o yaml` of a big cluster are one document
    // of millions of nodes: lift the per-document budget accordingly.
    let options = serde_saphyr::options! {
        budget: serde_saphyr::budget! {
            max_events: 200_000_000,
            max_nodes: 100_000_000,
            max_total_scalar_bytes: 1 << 31,
        },
    };
    // The parser's message comes with a source snippet; its first line has
    // the position, which is what a log line needs.
    serde_saphyr::from_str_with_options::<Value>(doc, options)
        .map_err(|e| e.to_string().lines().next().unwrap_or("invalid YAML").to_string())
}

/// Parses one file's text into objects and per-document errors. `labels`:
/// only Services and EndpointSlices with these labels are kept (CoreDNS's
/// `labels`; trimming drops their labels, so it is decided here).
pub fn parse_text(path: &Path, text: &str, labels: Option<&Selector>) -> (Vec<Object>, Vec<DocError>) {
    let file = path.display().to_string();
    let is_json = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("json"));
    // One document at a time: a parsed document is many times its text, so
    // a big file is never held parsed as a whole. Big files are split over
    // the cores; results keep the file's order.
    let docs: Vec<(usize, usize, &str)> = if is_json { vec![(1, 1, text)] } else { documents(text).collect() };
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1).min(8);
    let parse_part = |part: &[(usize, usize, &str)]| {
        let mut objects = Vec::new();
        let mut errors = Vec::new();
        for &(doc, line, body) in part {
            let value = if is_json { serde_json::from_str(body).map_err(|e| e.to_string()) } else { yaml_value(body) };
            match value {
                Err(message) => errors.push(DocError { file: file.clone(), doc, line, message, syntax: true }),
                Ok(v) => objects_of(v, labels, &mut objects, &mut |message| {
                    errors.push(DocError { file: file.clone(), doc, line, message, syntax: false })
                }),
            }
        }
        (objects, errors)
    };
    if docs.len() < 2000 || threads == 1 {
        return parse_part(&docs);
    }
    let parts: Vec<(Vec<Object>, Vec<DocError>)> = std::thread::scope(|s| {
        let chunks = docs.chunks(docs.len().div_ceil(threads));
        let handles: Vec<_> = chunks.map(|part| (part[0], s.spawn(move || parse_part(part)))).collect();
        handles
            .into_iter()
            .map(|((doc, line, _), h)| {
                // A parser bug must not lose data silently: report it as a
                // broken file, which keeps the file's last good version.
                h.join().unwrap_or_else(|_| {
                    let message = "the YAML parser failed on these documents".to_string();
                    (Vec::new(), vec![DocError { file: file.clone(), doc, line, message, syntax: true }])
                })
            })
            .collect()
    });
    let mut objects = Vec::new();
    let mut errors = Vec::new();
    for (o, e) in parts {
        objects.extend(o);
        errors.extend(e);
    }
    (objects, errors)
}

fn describe(v: &Value) -> String {
    let kind = v.get("kind").and_then(Value::as_str).unwrap_or("object");
    let meta = v.get("metadata");
    let ns = meta.and_then(|m| m.get("namespace")).and_then(Value::as_str).unwrap_or("default");
    let name = meta.and_then(|m| m.get("name")).and_then(Value::as_str).unwrap_or("?");
    format!("{kind} {ns}/{name}")
}

/// Adds the objects of one document (a `List` gives its items).
fn objects_of(v: Value, labels: Option<&Selector>, out: &mut Vec<Object>, err: &mut dyn FnMut(String)) {
    if v.is_null() {
        return;
    }
    let kind = v.get("kind").and_then(Value::as_str).unwrap_or("").to_string();
    let api = v.get("apiVersion").and_then(Value::as_str).unwrap_or("").to_string();
    if kind == "List" || (kind.ends_with("List") && v.get("items").is_some()) {
        if let Value::Object(mut map) = v
            && let Some(Value::Array(items)) = map.remove("items")
        {
            for item in items {
                objects_of(item, labels, out, err);
            }
        }
        return;
    }
    let what = describe(&v);
    if let Some(sel) = labels
        && matches!(kind.as_str(), "Service" | "EndpointSlice")
        && !sel.matches(&labels_of(&v))
    {
        return;
    }
    let result: Result<Option<Object>, String> = match (kind.as_str(), api.as_str()) {
        ("Namespace", "v1") => {
            convert::<core::Namespace, _>(v, |n| Namespace::from_meta(&n.metadata).map(|n| Some(Object::Namespace(n))))
        }
        ("Service", "v1") => {
            convert::<core::Service, _>(v, |s| Service::trim(s).map(|s| Some(Object::Service(s.into()))))
        }
        ("Endpoints", "v1") => {
            convert::<core::Endpoints, _>(v, |e| Endpoints::trim(e).map(|e| Some(Object::Endpoints(e.into()))))
        }
        ("Pod", "v1") => convert::<core::Pod, _>(v, |p| Pod::trim(p).map(|p| Some(Object::Pod(p.into())))),
        ("EndpointSlice", "discovery.k8s.io/v1") => convert::<discovery::EndpointSlice, _>(v, |s| {
            EndpointSlice::trim(s).map(|s| s.map(|s| Object::EndpointSlice(s.into())))
        }),
        _ => {
            tracing::debug!(kind, api, "skipping a kind DNS does not use");
            Ok(None)
        }
    };
    match result {
        Ok(Some(obj)) => out.push(obj),
        Ok(None) => {}
        Err(e) => err(format!("{what}: {e}")),
    }
}

/// `metadata.labels` of a raw object (values that are not strings ignored).
fn labels_of(v: &Value) -> Labels {
    let map = v.get("metadata").and_then(|m| m.get("labels")).and_then(Value::as_object);
    map.into_iter().flatten().filter_map(|(k, v)| Some((k.as_str(), v.as_str()?))).collect()
}

fn convert<T, F>(v: Value, trim: F) -> Result<Option<Object>, String>
where
    T: serde::de::DeserializeOwned,
    F: FnOnce(T) -> Result<Option<Object>, crate::model::TrimError>,
{
    let typed: T = serde_json::from_value(v).map_err(|e| e.to_string())?;
    trim(typed).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broken_document_does_not_hide_others() {
        let text = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: a\n---\nkind: [unclosed\n---\napiVersion: v1\nkind: Service\nmetadata:\n  name: s\nspec:\n  ports:\n  - port: nope\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: b}\n";
        let (objs, errs) = parse_text(Path::new("x.yaml"), text, None);
        assert_eq!(objs.len(), 2, "{objs:?}");
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert_eq!((errs[0].doc, errs[0].line, errs[0].syntax), (2, 6, true));
        assert_eq!((errs[1].doc, errs[1].syntax), (3, false));
        assert!(errs[1].message.contains("Service default/s"), "{}", errs[1].message);
    }

    #[test]
    fn lists_and_json() {
        let json = r#"{"apiVersion":"v1","kind":"List","items":[{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"x"}},{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"d"}}]}"#;
        let (objs, errs) = parse_text(Path::new("x.json"), json, None);
        assert_eq!((objs.len(), errs.len()), (1, 0));
    }
}
