//! A fake Kubernetes API server for tests: HTTP on 127.0.0.1, serving list
//! and watch for services, endpointslices, namespaces and pods the way
//! kube-apiserver does (resourceVersion, paginated lists with `continue`,
//! chunked JSON watch events, bookmarks, 410 Gone for compacted versions),
//! with faults on demand: refused connections, 5xx, watches closed by the
//! server. The real kube client talks to it through a kubeconfig.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};

/// The four resources clusterdns watches: (plural, list path, kind, apiVersion).
const RESOURCES: [(&str, &str, &str, &str); 4] = [
    ("services", "/api/v1/services", "Service", "v1"),
    ("endpointslices", "/apis/discovery.k8s.io/v1/endpointslices", "EndpointSlice", "discovery.k8s.io/v1"),
    ("namespaces", "/api/v1/namespaces", "Namespace", "v1"),
    ("pods", "/api/v1/pods", "Pod", "v1"),
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    None,
    /// Every request gets 503 with a Status body.
    ServerError,
    /// Watches get their headers and then nothing, ever (lists still work).
    HangWatches,
}

struct Stored {
    /// resource plural, namespace, name -> object
    objects: BTreeMap<(String, String, String), Value>,
    /// Every change: (resourceVersion, plural, ADDED|MODIFIED|DELETED,
    /// object, the version it replaced)
    log: Vec<(u64, String, &'static str, Value, Option<Value>)>,
    rv: u64,
    /// Watches from a version below this get 410 Gone.
    compacted: u64,
    fault: Fault,
    /// Lists are cut into pages of at most this many items.
    page: usize,
    requests: usize,
    /// 410 Gone answers given to watches.
    gone: usize,
    /// The streams of the watches served (closed once the client hangs up).
    watches: Vec<tokio::sync::mpsc::Sender<Bytes>>,
}

pub struct FakeApi {
    pub addr: SocketAddr,
    state: Arc<Mutex<Stored>>,
    changed: Arc<Notify>,
    /// Bumped to make the server end every open watch.
    generation: watch::Sender<u64>,
    /// Whether the listener is up (false: connections are refused).
    up: watch::Sender<bool>,
}

fn key_of(plural: &str, obj: &Value) -> (String, String, String) {
    let meta = &obj["metadata"];
    let ns = if plural == "namespaces" { "" } else { meta["namespace"].as_str().unwrap_or("default") };
    (plural.to_string(), ns.to_string(), meta["name"].as_str().unwrap_or("").to_string())
}

fn status(code: u16, reason: &str, message: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
           "message": message, "reason": reason, "code": code})
}

type Body = BoxBody<Bytes, Infallible>;

fn full(code: StatusCode, v: &Value) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from(v.to_string())).boxed());
    *r.status_mut() = code;
    r.headers_mut().insert("content-type", "application/json".parse().unwrap());
    r
}

impl FakeApi {
    pub async fn start() -> FakeApi {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(Stored {
            objects: BTreeMap::new(),
            log: Vec::new(),
            rv: 100,
            compacted: 0,
            fault: Fault::None,
            page: 2,
            requests: 0,
            gone: 0,
            watches: Vec::new(),
        }));
        let (generation, _) = watch::channel(0u64);
        let (up, _) = watch::channel(true);
        let api = FakeApi { addr, state, changed: Arc::new(Notify::new()), generation, up };
        api.serve(listener);
        api
    }

    fn serve(&self, listener: TcpListener) {
        let (state, changed, generation) = (self.state.clone(), self.changed.clone(), self.generation.clone());
        let mut up = self.up.subscribe();
        tokio::spawn(async move {
            loop {
                let conn = tokio::select! {
                    c = listener.accept() => c,
                    _ = up.wait_for(|u| !*u) => return, // listener dropped: refused
                };
                let Ok((stream, _)) = conn else { continue };
                let (state, changed, generation) = (state.clone(), changed.clone(), generation.clone());
                let mut up = up.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req| {
                        let (state, changed, generation) = (state.clone(), changed.clone(), generation.clone());
                        async move { Ok::<_, Infallible>(handle(req, state, changed, generation).await) }
                    });
                    let conn = http1::Builder::new().serve_connection(TokioIo::new(stream), svc);
                    tokio::select! {
                        _ = conn => {}
                        _ = up.wait_for(|u| !*u) => {} // going down: drop the connection
                    }
                });
            }
        });
    }

    /// Writes a kubeconfig that points the kube client here.
    pub fn kubeconfig(&self, dir: &Path) -> PathBuf {
        let path = dir.join("kubeconfig");
        let text = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: http://{}\nusers:\n- name: test\n  user: {{}}\ncontexts:\n- name: fake\n  context:\n    cluster: fake\n    user: test\ncurrent-context: fake\n",
            self.addr
        );
        std::fs::write(&path, text).unwrap();
        path
    }

    /// Creates or replaces an object (YAML or JSON text of one object).
    pub fn apply(&self, yaml: &str) {
        let mut obj: Value = yaml_serde::from_str(yaml).unwrap();
        let plural = RESOURCES.iter().find(|r| r.2 == obj["kind"].as_str().unwrap_or("")).unwrap().0;
        let mut s = self.state.lock().unwrap();
        s.rv += 1;
        let rv = s.rv;
        obj["metadata"]["resourceVersion"] = json!(rv.to_string());
        if plural != "namespaces" && obj["metadata"]["namespace"].is_null() {
            obj["metadata"]["namespace"] = json!("default");
        }
        let key = key_of(plural, &obj);
        let kind = if s.objects.contains_key(&key) { "MODIFIED" } else { "ADDED" };
        let prev = s.objects.insert(key, obj.clone());
        s.log.push((rv, plural.to_string(), kind, obj, prev));
        drop(s);
        self.changed.notify_waiters();
    }

    pub fn delete(&self, plural: &str, namespace: &str, name: &str) {
        let mut s = self.state.lock().unwrap();
        let key = (plural.to_string(), namespace.to_string(), name.to_string());
        if let Some(mut obj) = s.objects.remove(&key) {
            s.rv += 1;
            let rv = s.rv;
            obj["metadata"]["resourceVersion"] = json!(rv.to_string());
            s.log.push((rv, plural.to_string(), "DELETED", obj, None));
        }
        drop(s);
        self.changed.notify_waiters();
    }

    /// How many watches a client holds open now.
    #[allow(dead_code)]
    pub fn open_watches(&self) -> usize {
        let mut s = self.state.lock().unwrap();
        s.watches.retain(|w| !w.is_closed());
        s.watches.len()
    }

    /// Forgets the change log: watches from before now get 410 Gone.
    pub fn compact(&self) {
        let mut s = self.state.lock().unwrap();
        s.compacted = s.rv + 1;
        s.log.clear();
    }

    /// Lists are cut into pages of at most `n` items (default 2).
    pub fn set_page(&self, n: usize) {
        self.state.lock().unwrap().page = n;
    }

    /// Applies many objects at once (one notification).
    pub fn apply_many(&self, docs: impl Iterator<Item = String>) {
        let mut s = self.state.lock().unwrap();
        for yaml in docs {
            let mut obj: Value = yaml_serde::from_str(&yaml).unwrap();
            let plural = RESOURCES.iter().find(|r| r.2 == obj["kind"].as_str().unwrap_or("")).unwrap().0;
            s.rv += 1;
            let rv = s.rv;
            obj["metadata"]["resourceVersion"] = json!(rv.to_string());
            let key = key_of(plural, &obj);
            s.objects.insert(key, obj.clone());
            s.log.push((rv, plural.to_string(), "ADDED", obj, None));
        }
        drop(s);
        self.changed.notify_waiters();
    }

    pub fn set_fault(&self, fault: Fault) {
        self.state.lock().unwrap().fault = fault;
    }

    /// Ends every open watch from the server side.
    pub fn close_watches(&self) {
        self.generation.send_modify(|g| *g += 1);
    }

    /// Takes the listener down (connections refused) or back up on the same port.
    pub async fn set_up(&self, up: bool) {
        if up == *self.up.borrow() {
            return;
        }
        if up {
            let listener = loop {
                match TcpListener::bind(self.addr).await {
                    Ok(l) => break l,
                    Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
                }
            };
            self.up.send_replace(true);
            self.serve(listener);
        } else {
            self.up.send_replace(false);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn gone(&self) -> usize {
        self.state.lock().unwrap().gone
    }

    pub fn requests(&self) -> usize {
        self.state.lock().unwrap().requests
    }
}

fn query(req: &Request<Incoming>) -> BTreeMap<String, String> {
    req.uri()
        .query()
        .unwrap_or("")
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), percent_decode(v)))
        .collect()
}

fn percent_decode(v: &str) -> String {
    let b = v.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match (b[i], b.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok())) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

async fn handle(
    req: Request<Incoming>,
    state: Arc<Mutex<Stored>>,
    changed: Arc<Notify>,
    generation: watch::Sender<u64>,
) -> Response<Body> {
    let path = req.uri().path().to_string();
    let q = query(&req);
    let Some(&(plural, _, kind, api_version)) = RESOURCES.iter().find(|r| r.1 == path) else {
        return full(StatusCode::NOT_FOUND, &status(404, "NotFound", &format!("no route {path}")));
    };
    {
        let mut s = state.lock().unwrap();
        s.requests += 1;
        if s.fault == Fault::ServerError {
            return full(StatusCode::SERVICE_UNAVAILABLE, &status(503, "ServiceUnavailable", "etcd is sad"));
        }
    }
    let selector = q.get("labelSelector").cloned();
    let matches = move |obj: &Value| match &selector {
        None => true,
        Some(sel) => sel.split(',').all(|term| match term.split_once('=') {
            Some((k, v)) => obj["metadata"]["labels"][k].as_str() == Some(v),
            None => true,
        }),
    };
    let hang = state.lock().unwrap().fault == Fault::HangWatches;
    if std::env::var_os("FAKE_API_LOG").is_some() {
        eprintln!("fake api: {} {:?} hang={hang}", req.uri(), std::time::SystemTime::now());
    }
    if hang && q.get("watch").is_some_and(|w| w == "true" || w == "1") {
        let stream = futures::stream::pending::<Result<Frame<Bytes>, Infallible>>();
        return Response::new(BodyExt::boxed(StreamBody::new(stream)));
    }
    if q.get("watch").is_some_and(|w| w == "true" || w == "1") {
        let from: u64 = q.get("resourceVersion").and_then(|v| v.parse().ok()).unwrap_or(0);
        let bookmarks = q.get("allowWatchBookmarks").is_some_and(|v| v == "true");
        let timeout = q.get("timeoutSeconds").and_then(|v| v.parse().ok()).unwrap_or(290u64);
        let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(64);
        state.lock().unwrap().watches.push(tx.clone());
        let mut gen_rx = generation.subscribe();
        tokio::spawn(async move {
            let line = |v: Value| Bytes::from(format!("{v}\n"));
            let expired = {
                let mut s = state.lock().unwrap();
                let expired = from < s.compacted;
                s.gone += usize::from(expired);
                expired
            };
            if expired {
                let gone = status(410, "Expired", &format!("too old resource version: {from}"));
                let _ = tx.send(line(json!({"type": "ERROR", "object": gone}))).await;
                return;
            }
            let deadline = tokio::time::Instant::now() + Duration::from_secs(timeout);
            let mut seen = from;
            loop {
                let notified = changed.notified();
                let (events, rv) = {
                    let s = state.lock().unwrap();
                    // As the API server's watch cache: an object that
                    // enters the selector is ADDED, one that leaves it DELETED.
                    // The log is in version order: start at the first
                    // entry after `seen` (a scan of the whole log per change
                    // made each change cost the size of the cluster).
                    let start = s.log.partition_point(|(rv, ..)| *rv <= seen);
                    let ev: Vec<Value> = s.log[start..]
                        .iter()
                        .filter(|(rv, p, ..)| *rv > seen && p == plural)
                        .filter_map(|(_, _, t, o, prev)| {
                            let was = prev.as_ref().is_some_and(&matches);
                            let t = match (was, matches(o)) {
                                (_, true) if *t == "MODIFIED" && !was => "ADDED",
                                (_, true) => t,
                                (true, false) => "DELETED",
                                (false, false) => return None,
                            };
                            Some(json!({"type": t, "object": o}))
                        })
                        .collect();
                    (ev, s.rv)
                };
                for e in events {
                    if tx.send(line(e)).await.is_err() {
                        return;
                    }
                }
                seen = seen.max(rv);
                let bookmark = tokio::time::sleep(Duration::from_millis(500));
                tokio::select! {
                    _ = notified => {}
                    _ = bookmark, if bookmarks => {
                        let b = json!({"type": "BOOKMARK", "object": {"kind": kind, "apiVersion": api_version,
                            "metadata": {"resourceVersion": seen.to_string()}}});
                        if tx.send(line(b)).await.is_err() { return; }
                    }
                    _ = tokio::time::sleep_until(deadline) => return,
                    _ = gen_rx.changed() => return,
                }
            }
        });
        let stream = futures::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|b| (Ok::<_, Infallible>(Frame::data(b)), rx))
        });
        let mut r = Response::new(BodyExt::boxed(StreamBody::new(stream)));
        r.headers_mut().insert("content-type", "application/json".parse().unwrap());
        return r;
    }
    // A list: a page of what is stored now. The continue token is the last
    // key sent (namespace/name), so a page costs its own size, not the list's.
    let s = state.lock().unwrap();
    let limit: usize = q.get("limit").and_then(|v| v.parse().ok()).unwrap_or(usize::MAX).min(s.page);
    let after = q.get("continue").and_then(|c| c.split_once('/')).map(|(ns, n)| (ns.to_string(), n.to_string()));
    let from = match &after {
        Some((ns, n)) => std::ops::Bound::Excluded((plural.to_string(), ns.clone(), n.clone())),
        None => std::ops::Bound::Included((plural.to_string(), String::new(), String::new())),
    };
    let mut items = s
        .objects
        .range((from, std::ops::Bound::Unbounded))
        .take_while(|(k, _)| k.0 == plural)
        .filter(|(_, o)| matches(o));
    let page: Vec<(&(String, String, String), &Value)> = items.by_ref().take(limit).collect();
    let more = items.next().is_some();
    let mut meta = json!({"resourceVersion": s.rv.to_string()});
    if more && let Some((k, _)) = page.last() {
        meta["continue"] = json!(format!("{}/{}", k.1, k.2));
    }
    // Written straight from the stored objects: a `json!` of the page would
    // copy every object into a new tree first, under the lock, making the
    // fake the slowest part of a 100k list.
    let mut body =
        format!("{{\"kind\":\"{kind}List\",\"apiVersion\":\"{api_version}\",\"metadata\":{meta},\"items\":[")
            .into_bytes();
    for (i, (_, o)) in page.into_iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        serde_json::to_writer(&mut body, o).unwrap();
    }
    body.extend_from_slice(b"]}");
    drop(s);
    let mut r = Response::new(Full::new(Bytes::from(body)).boxed());
    r.headers_mut().insert("content-type", "application/json".parse().unwrap());
    r
}
