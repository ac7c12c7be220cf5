//! Kubernetes manifests to trimmed objects: multi-document YAML, JSON,
//! `kind: List`, `kubectl get -o yaml` output. A broken document is reported
//! with its file and number; the others still load. What one document may
//! cost in memory is bounded by its length (an alias bomb is refused before
//! it is built), and a document whose text did not change since the last
//! parse is not parsed again.

use std::cell::Cell;
use std::hash::BuildHasher;
use std::num::NonZeroU64;
use std::path::Path;

use k8s_openapi::api::core::v1 as core;
use k8s_openapi::api::discovery::v1 as discovery;
use serde_json::Value;

use crate::model::{
    EndpointSlice, Endpoints, Kind, Labels, Namespace, Object, ObjectKey, Pod, PortLists, Selector, Service,
};

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
    /// The object the problem is about, when the document says which:
    /// its last good version can then be kept.
    pub key: Option<ObjectKey>,
}

/// The objects of one document, and what identifies its text.
#[derive(Clone, Debug, Default)]
pub struct Doc {
    /// A hash of the document's text; `None` for a document that had
    /// problems (parsed again next time, so they are reported again).
    /// Never 0, so that the option takes no word of its own (200,000
    /// documents at 100k Services).
    pub hash: Option<NonZeroU64>,
    pub objects: DocObjects,
}

/// A document's objects: one, nearly always, held inline (200,000
/// documents at 100k Services are 200,000 allocations fewer).
pub type DocObjects = smallvec::SmallVec<[Object; 1]>;

const _: () = assert!(std::mem::size_of::<Doc>() == 32);

/// A document's text hash: the key under which its objects are reused.
fn text_hash(doc: &str) -> NonZeroU64 {
    let h = foldhash::quality::FixedState::with_seed(0x636c_7573_7465_7264).hash_one(doc);
    NonZeroU64::new(h).unwrap_or(NonZeroU64::MIN)
}

/// The documents of a YAML stream: split at `---` lines so that one broken
/// document cannot hide the others, each with its 1-based number.
fn documents(text: &str) -> impl Iterator<Item = (usize, usize, &str)> {
    let bytes = text.as_bytes();
    let mut docs = Vec::new();
    let mut n = 1;
    let mut start = 0;
    // Only a line that starts with `-` or `.` can be a marker: the others
    // (most of a big file) are passed over by `memmem`'s vector search.
    let mut dashes = memchr::memmem::find_iter(bytes, b"\n-").map(|i| i + 1).peekable();
    let mut dots = memchr::memmem::find_iter(bytes, b"\n.").map(|i| i + 1).peekable();
    let merged = std::iter::from_fn(|| match (dashes.peek(), dots.peek()) {
        (Some(a), Some(b)) if a < b => dashes.next(),
        (Some(_), None) => dashes.next(),
        _ => dots.next(),
    });
    let first = matches!(bytes.first(), Some(b'-' | b'.')).then_some(0);
    for offset in first.into_iter().chain(merged) {
        let end = memchr::memchr(b'\n', &bytes[offset..]).map_or(bytes.len(), |i| offset + i + 1);
        if let Some(next) = marker(&text[offset..end]) {
            if !text[start..offset].trim().is_empty() {
                docs.push((n, start, offset));
            }
            n += 1;
            start = offset + next;
        }
    }
    if !text[start..].trim().is_empty() {
        docs.push((n, start, text.len()));
    }
    let mut line = 1;
    let mut seen = 0;
    docs.into_iter().map(move |(n, a, b)| {
        line += memchr::memchr_iter(b'\n', &bytes[seen..a]).count();
        seen = a;
        (n, line, &text[a..b])
    })
}

/// Whether `line` (with its line break) ends a document: `---` or `...`
/// alone on it. Then where the next document starts, from the line's start:
/// after the line, or after the `---` of `--- key: value`.
fn marker(line: &str) -> Option<usize> {
    let bare = line.trim_end_matches(['\n', '\r']);
    let dashes = bare.starts_with("---") && bare[3..].chars().next().is_none_or(char::is_whitespace);
    if dashes && !bare[3..].trim().is_empty() {
        return Some(3);
    }
    (dashes || bare.trim_end() == "...").then_some(line.len())
}

/// What one document may cost once parsed, relative to its text: a parsed
/// Kubernetes manifest takes 4 to 8 times its text (a value is 32 bytes, a
/// key a few dozen), so 16 times leaves room for any real document, among
/// them `kubectl get -A -o yaml` of a 100k-Service cluster as one List,
/// while anchors and aliases that expand past it are refused.
const EXPANSION: usize = 16;
/// ... plus this much for any document, however short.
const EXPANSION_BASE: usize = 1 << 20;
/// The estimated cost of one value and of one mapping key, beyond its text.
const VALUE_COST: usize = 32;
const KEY_COST: usize = 48;

thread_local! {
    /// Bytes the document being parsed on this thread may still take.
    static BUDGET: Cell<usize> = const { Cell::new(usize::MAX) };
}

/// A `serde_json::Value` built under [`BUDGET`]: the check happens as the
/// value grows, so a refused document never takes more than its budget
/// (a bomb refused at the end would have taken its full size first).
struct Bounded(Value);

fn charge<E: serde::de::Error>(bytes: usize) -> Result<(), E> {
    BUDGET.with(|left| match left.get().checked_sub(bytes) {
        Some(rest) => {
            left.set(rest);
            Ok(())
        }
        None => Err(E::custom(format_args!(
            "refused: the document expands to more than {EXPANSION} times its text (anchors and aliases?)"
        ))),
    })
}

impl<'de> serde::Deserialize<'de> for Bounded {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(BoundedVisitor)
    }
}

struct BoundedVisitor;

impl<'de> serde::de::Visitor<'de> for BoundedVisitor {
    type Value = Bounded;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a YAML value")
    }
    fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Bounded, E> {
        charge(VALUE_COST).map(|()| Bounded(Value::Bool(v)))
    }
    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Bounded, E> {
        charge(VALUE_COST).map(|()| Bounded(Value::from(v)))
    }
    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Bounded, E> {
        charge(VALUE_COST).map(|()| Bounded(Value::from(v)))
    }
    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Bounded, E> {
        charge(VALUE_COST).map(|()| Bounded(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number)))
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Bounded, E> {
        charge(VALUE_COST + v.len()).map(|()| Bounded(Value::String(v.to_string())))
    }
    fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Bounded, E> {
        charge(VALUE_COST + v.len()).map(|()| Bounded(Value::String(v)))
    }
    fn visit_none<E: serde::de::Error>(self) -> Result<Bounded, E> {
        charge(VALUE_COST).map(|()| Bounded(Value::Null))
    }
    fn visit_unit<E: serde::de::Error>(self) -> Result<Bounded, E> {
        charge(VALUE_COST).map(|()| Bounded(Value::Null))
    }
    fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Bounded, D::Error> {
        serde::Deserialize::deserialize(d)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Bounded, A::Error> {
        charge(VALUE_COST)?;
        let mut items = Vec::new();
        while let Some(Bounded(v)) = seq.next_element()? {
            items.push(v);
        }
        Ok(Bounded(Value::Array(items)))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Bounded, A::Error> {
        charge(VALUE_COST)?;
        let mut out = serde_json::Map::new();
        while let Some(key) = map.next_key::<String>()? {
            charge(KEY_COST + key.len())?;
            let Bounded(v) = map.next_value()?;
            // A key given twice is refused, as the API server's decoder
            // refuses it (strict decoding), not read as the last one.
            if out.contains_key(&key) {
                return Err(serde::de::Error::custom(format_args!("duplicate key {key:?}")));
            }
            out.insert(key, v);
        }
        Ok(Bounded(Value::Object(out)))
    }
}

fn yaml_value(doc: &str) -> Result<Value, String> {
    // Most manifests are plain block YAML, which the fast path reads several
    // times faster than libyaml, to the same value; it leaves the rest, and
    // every error, to libyaml.
    match super::block::parse(doc, budget(doc), BLOCK_COSTS) {
        Some(v) => Ok(v),
        None => yaml_value_full(doc),
    }
}

/// What one document may take once parsed (see [`EXPANSION`]).
fn budget(doc: &str) -> usize {
    doc.len().saturating_mul(EXPANSION).saturating_add(EXPANSION_BASE)
}

const BLOCK_COSTS: super::block::Costs = super::block::Costs { value: VALUE_COST, key: KEY_COST };

/// `doc` read by libyaml alone.
pub(super) fn yaml_value_full(doc: &str) -> Result<Value, String> {
    // libyaml's parser (yaml_serde): 2.7 times the speed of serde-saphyr on
    // a 100k-Service cluster (2.1 s against 5.6 s for its 90 MB, one core).
    // It refuses nesting past 128 levels and alias jumps past 100 times the
    // document's events; what the document may take once built is
    // [`Bounded`]'s budget. YAML 1.2 scalars: `yes` and `on` are strings.
    BUDGET.with(|b| b.set(budget(doc)));
    let value = yaml_serde::from_str::<Bounded>(doc).map(|b| b.0).map_err(|e| e.to_string());
    BUDGET.with(|b| b.set(usize::MAX));
    value
}

/// One document read both ways, for the fuzzer that holds the fast path to
/// libyaml: the fast path's value (`None`: left to libyaml) and libyaml's.
#[doc(hidden)]
pub fn yaml_both_ways(doc: &str) -> (Option<Value>, Result<Value, String>) {
    (super::block::parse(doc, budget(doc), BLOCK_COSTS), yaml_value_full(doc))
}

/// Parses one file's text into objects and per-document errors. `labels`:
/// only Services and EndpointSlices with these labels are kept (CoreDNS's
/// `labels`; trimming drops their labels, so it is decided here).
pub fn parse_text(path: &Path, text: &str, labels: Option<&Selector>) -> (Vec<Object>, Vec<DocError>) {
    let (docs, errors) = parse_docs(path, text, labels, &|_| None);
    (docs.into_iter().flat_map(|d| d.objects).collect(), errors)
}

/// [`parse_text`] per document; `known` gives the objects of a document
/// already parsed from the same text (by [`Doc::hash`]), which are reused
/// rather than parsed again: an edit to one document of a big file costs
/// that document, and unchanged objects keep their allocation (shared with
/// the model, not held twice).
pub fn parse_docs(
    path: &Path,
    text: &str,
    labels: Option<&Selector>,
    known: &(dyn Fn(NonZeroU64) -> Option<DocObjects> + Sync),
) -> (Vec<Doc>, Vec<DocError>) {
    let file = path.display().to_string();
    let is_json = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("json"));
    // One document at a time: a parsed document is many times its text, so
    // a big file is never held parsed as a whole. Big files are split over
    // the cores; results keep the file's order.
    let docs: Vec<(usize, usize, &str)> = if is_json { vec![(1, 1, text)] } else { documents(text).collect() };
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1).min(8);
    let parse_part = |part: &[(usize, usize, &str)]| {
        let mut docs = Vec::with_capacity(part.len());
        let mut errors = Vec::new();
        let mut ports = PortLists::default();
        for &(doc, line, body) in part {
            let hash = text_hash(body);
            if let Some(objects) = known(hash) {
                docs.push(Doc { hash: Some(hash), objects });
                continue;
            }
            let value = if is_json { serde_json::from_str(body).map_err(|e| e.to_string()) } else { yaml_value(body) };
            let mut objects = Vec::new();
            let before = errors.len();
            match value {
                Err(message) => {
                    errors.push(DocError { file: file.clone(), doc, line, message, syntax: true, key: None })
                }
                Ok(v) => objects_of(v, labels, &mut objects, &mut |message, key| {
                    errors.push(DocError { file: file.clone(), doc, line, message, syntax: false, key })
                }),
            }
            for obj in objects.iter_mut() {
                ports.intern(obj);
            }
            // Kept as long as the file is: inline when one, else no growth
            // slack (a Vec's first push makes room for four).
            objects.shrink_to_fit();
            let objects = DocObjects::from_vec(objects);
            docs.push(Doc { hash: (errors.len() == before).then_some(hash), objects });
        }
        (docs, errors)
    };
    if docs.len() < 2000 || threads == 1 {
        return parse_part(&docs);
    }
    let parts: Vec<(Vec<Doc>, Vec<DocError>)> = std::thread::scope(|s| {
        let chunks = docs.chunks(docs.len().div_ceil(threads));
        let handles: Vec<_> = chunks.map(|part| (part[0], s.spawn(move || parse_part(part)))).collect();
        handles
            .into_iter()
            .map(|((doc, line, _), h)| {
                // A parser bug must not lose data silently: report it as a
                // broken file, which keeps the file's last good version.
                h.join().unwrap_or_else(|_| {
                    let message = "the YAML parser failed on these documents".to_string();
                    (Vec::new(), vec![DocError { file: file.clone(), doc, line, message, syntax: true, key: None }])
                })
            })
            .collect()
    });
    let mut docs = Vec::with_capacity(parts.iter().map(|p| p.0.len()).sum());
    let mut errors = Vec::new();
    for (d, e) in parts {
        docs.extend(d);
        errors.extend(e);
    }
    (docs, errors)
}

fn describe(v: &Value) -> String {
    let kind = v.get("kind").and_then(Value::as_str).unwrap_or("object");
    let meta = v.get("metadata");
    let ns = meta.and_then(|m| m.get("namespace")).and_then(Value::as_str).filter(|n| !n.is_empty());
    let name = meta.and_then(|m| m.get("name")).and_then(Value::as_str).unwrap_or("?");
    if kind == "Namespace" {
        return format!("{kind} {name}");
    }
    format!("{kind} {}/{name}", ns.unwrap_or("default"))
}

/// The key of a raw object of a kind DNS uses, when it names itself.
fn key_of(v: &Value) -> Option<ObjectKey> {
    let kind = match v.get("kind").and_then(Value::as_str)? {
        "Namespace" => Kind::Namespace,
        "Service" => Kind::Service,
        "EndpointSlice" => Kind::EndpointSlice,
        "Endpoints" => Kind::Endpoints,
        "Pod" => Kind::Pod,
        _ => return None,
    };
    let meta = v.get("metadata")?;
    let name = meta.get("name").and_then(Value::as_str)?.to_string();
    let namespace = match (kind, meta.get("namespace").and_then(Value::as_str)) {
        (Kind::Namespace, _) => String::new(),
        (_, Some(ns)) if !ns.is_empty() => ns.to_string(),
        _ => "default".to_string(),
    };
    Some(ObjectKey { kind, namespace, name })
}

/// Adds the objects of one document (a `List` gives its items); `err` gets
/// each problem with the key of the object it is about, when known.
fn objects_of(
    v: Value,
    labels: Option<&Selector>,
    out: &mut Vec<Object>,
    err: &mut dyn FnMut(String, Option<ObjectKey>),
) {
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
    let key = key_of(&v);
    if let Some(sel) = labels
        && matches!(kind.as_str(), "Service" | "EndpointSlice")
        && !sel.matches(&labels_of(&v))
    {
        return;
    }
    let result: Result<Option<Object>, String> = match (kind.as_str(), api.as_str()) {
        ("Namespace", "v1") => convert::<core::Namespace, _>(v, |n| {
            Namespace::from_meta(&n.metadata).map(|n| Some(Object::Namespace(std::sync::Arc::new(n))))
        }),
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
        Err(e) => err(format!("{what}: {e}"), key),
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
    use std::sync::Arc;

    /// The splitter as it was, every line asked: what the vector search,
    /// which asks only the lines that can be markers, must give on any text.
    fn documents_line_by_line(text: &str) -> Vec<(usize, usize, &str)> {
        let mut docs = Vec::new();
        let (mut n, mut start, mut offset) = (1, 0, 0);
        for line in text.split_inclusive('\n') {
            if let Some(next) = marker(line) {
                if !text[start..offset].trim().is_empty() {
                    docs.push((n, start, offset));
                }
                n += 1;
                start = offset + next;
            }
            offset += line.len();
        }
        if !text[start..].trim().is_empty() {
            docs.push((n, start, text.len()));
        }
        let (mut line, mut seen) = (1, 0);
        docs.into_iter()
            .map(|(n, a, b)| {
                line += text[seen..a].matches('\n').count();
                seen = a;
                (n, line, &text[a..b])
            })
            .collect()
    }

    #[test]
    fn documents_split_as_line_by_line() {
        let pieces = [
            "---", "--- a: 1", "---\t", "---x", "----", " ---", "...", "... ", "..x", "-", ".", "- item", ".hidden",
            "a: 1", "", "  b: 2", "\r", "--- |", "#c",
        ];
        let mut next = crate::source::xorshift(0x2545_f491_4f6c_dd1du64);
        for _ in 0..5000 {
            let mut text = String::new();
            for _ in 0..next(12) {
                text.push_str(pieces[next(pieces.len())]);
                text.push_str(["\n", "\r\n", "\n\n"][next(3)]);
            }
            if next(2) == 0 {
                text.push_str(pieces[next(pieces.len())]);
            }
            let got: Vec<_> = documents(&text).collect();
            assert_eq!(got, documents_line_by_line(&text), "{text:?}");
        }
    }

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

    /// Equal port lists of a file's Services and slices are one allocation;
    /// a different list stays its own, and each object keeps its ports.
    #[test]
    fn equal_port_lists_are_shared() {
        let svc = |name: &str, port: u16| {
            format!(
                "apiVersion: v1\nkind: Service\nmetadata: {{name: {name}}}\nspec:\n  ports: [{{name: http, port: {port}, targetPort: web}}]\n---\n"
            )
        };
        let slice = |name: &str, port: u16| {
            format!(
                "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {{name: {name}-x, labels: {{kubernetes.io/service-name: {name}}}}}\naddressType: IPv4\nports: [{{name: http, port: {port}}}]\nendpoints: []\n---\n"
            )
        };
        let text =
            [svc("a", 80), svc("b", 80), svc("c", 81), slice("a", 8080), slice("b", 8080), slice("c", 8081)].concat();
        let (objs, errs) = parse_text(Path::new("x.yaml"), &text, None);
        assert!(errs.is_empty(), "{errs:?}");
        let services: Vec<&Service> =
            objs.iter().filter_map(|o| if let Object::Service(s) = o { Some(&**s) } else { None }).collect();
        let slices: Vec<&EndpointSlice> =
            objs.iter().filter_map(|o| if let Object::EndpointSlice(s) = o { Some(&**s) } else { None }).collect();
        assert_eq!((services.len(), slices.len()), (3, 3));
        assert!(Arc::ptr_eq(&services[0].ports, &services[1].ports));
        assert!(!Arc::ptr_eq(&services[0].ports, &services[2].ports));
        assert_eq!((services[0].ports[0].port, services[2].ports[0].port), (80, 81));
        assert!(Arc::ptr_eq(&slices[0].group.ports, &slices[1].group.ports));
        assert!(!Arc::ptr_eq(&slices[0].group.ports, &slices[2].group.ports));
        assert_eq!(slices[2].group.ports[0].port, 8081);
    }

    /// A key given twice is a broken document (as serde-saphyr and the API
    /// server's strict decoding have it), not silently its last value.
    #[test]
    fn a_key_given_twice_is_refused() {
        let text = "apiVersion: v1\nkind: Service\nmetadata:\n  name: s\n  name: t\nspec:\n  ports: [{port: 80}]\n";
        let (objs, errs) = parse_text(Path::new("x.yaml"), text, None);
        assert!(objs.is_empty(), "{objs:?}");
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(errs[0].message.contains("duplicate key \"name\""), "{}", errs[0].message);
    }

    #[test]
    fn lists_and_json() {
        let json = r#"{"apiVersion":"v1","kind":"List","items":[{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"x"}},{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"d"}}]}"#;
        let (objs, errs) = parse_text(Path::new("x.json"), json, None);
        assert_eq!((objs.len(), errs.len()), (1, 0));
    }
}
