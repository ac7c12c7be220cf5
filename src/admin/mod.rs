//! Admin endpoints, as CoreDNS's `health`, `ready` and `prometheus`
//! plugins serve them: `/health` (200 while the process can answer with
//! current data: the listeners and the updater thread run),
//! `/ready` (200 only once the cluster state is loaded and the server is not
//! shutting down), `/metrics` (Prometheus text); and, when the wiring
//! gives it an [`ExplainHook`] (`serve --explain`), `/explain` beside
//! `/metrics`.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;
use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::server::Slots;

pub use crate::metrics::Metrics;

/// What the endpoints ask of a zone: implemented by the wiring for the
/// zone indexes, so this stage needs nothing from the records stage.
pub trait Zone: Send + Sync {
    /// Loaded completely once (until then misses are SERVFAIL).
    fn loaded(&self) -> bool;
    /// Its writer still runs (else its answers would go stale for good).
    fn writer_alive(&self) -> bool;
    /// Names it answers.
    fn names(&self) -> u64;
}

/// Answers `/explain?name=NAME&type=TYPE&from=NAMESPACE` (type and from
/// optional) with a JSON body. Given by the wiring, which can ask the model.
pub type ExplainHook = Arc<dyn Fn(&str, &str, Option<&str>) -> Result<String, ExplainError> + Send + Sync>;

/// Why `/explain` has no answer.
#[derive(Debug, thiserror::Error)]
pub enum ExplainError {
    /// The question is wrong (400).
    #[error("{0}")]
    Question(String),
    /// The server cannot answer now: not loaded, busy, its updater stopped (503).
    #[error("{0}")]
    Unavailable(String),
}

/// What the endpoints report on.
pub struct Admin {
    /// The zone indexes of every `kubernetes` in the Corefile (replaced
    /// when a reload changes them).
    pub indexes: ArcSwap<Vec<Arc<dyn Zone>>>,
    pub metrics: Arc<Metrics>,
    /// Set on SIGTERM: `/ready` says 503 while DNS still answers.
    pub lame_duck: AtomicBool,
    /// `/explain`, served where `/metrics` is once set (off by default: it
    /// tells whoever reaches the port the names and labels of the objects).
    pub explain: std::sync::OnceLock<ExplainHook>,
}

impl Admin {
    pub fn new(index: Arc<dyn Zone>, metrics: Arc<Metrics>) -> Arc<Self> {
        Self::for_indexes(vec![index], metrics)
    }

    pub fn for_indexes(indexes: Vec<Arc<dyn Zone>>, metrics: Arc<Metrics>) -> Arc<Self> {
        Arc::new(Admin {
            indexes: ArcSwap::from_pointee(indexes),
            metrics,
            lame_duck: AtomicBool::new(false),
            explain: std::sync::OnceLock::new(),
        })
    }

    pub fn ready(&self) -> bool {
        self.indexes.load().iter().all(|i| i.loaded())
            && !self.lame_duck.load(Ordering::Acquire)
            && !self.metrics.state.loop_detected.load(Ordering::Acquire)
    }

    /// `/explain`: the question from the query string, asked through the
    /// hook off the async threads (it waits for the updater).
    async fn explain(self: Arc<Self>, query: Option<String>) -> Response<Full<Bytes>> {
        let Some(hook) = self.explain.get().cloned() else {
            return text(StatusCode::NOT_FOUND, "not found".into(), "text/plain");
        };
        let mut name = None;
        let mut qtype = "A".to_string();
        let mut from = None;
        for (k, v) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
            match &*k {
                "name" => name = Some(v.into_owned()),
                "type" => qtype = v.into_owned(),
                "from" => from = Some(v.into_owned()),
                _ => {}
            }
        }
        let Some(name) = name else {
            return text(
                StatusCode::BAD_REQUEST,
                "ask /explain?name=NAME[&type=TYPE][&from=NAMESPACE]\n".into(),
                "text/plain",
            );
        };
        let asked = tokio::task::spawn_blocking(move || hook(&name, &qtype, from.as_deref())).await;
        match asked {
            Ok(Ok(json)) => text(StatusCode::OK, json, "application/json"),
            Ok(Err(e @ ExplainError::Question(_))) => text(StatusCode::BAD_REQUEST, format!("{e}\n"), "text/plain"),
            Ok(Err(e @ ExplainError::Unavailable(_))) => {
                text(StatusCode::SERVICE_UNAVAILABLE, format!("{e}\n"), "text/plain")
            }
            Err(_) => text(StatusCode::INTERNAL_SERVER_ERROR, "the question failed\n".into(), "text/plain"),
        }
    }

    fn healthy(&self) -> bool {
        self.indexes.load().iter().all(|i| i.writer_alive())
    }

    fn respond(&self, path: &str, serves: Endpoints) -> Response<Full<Bytes>> {
        let allowed = match path {
            "/health" => serves.health,
            "/ready" => serves.ready,
            "/metrics" => serves.metrics,
            _ => false,
        };
        let path = if allowed { path } else { "" };
        let (code, body, ctype) = match path {
            // Healthy while DNS can answer with current data: a dead
            // updater would leave every answer stale, so restart then.
            "/health" if self.healthy() => (StatusCode::OK, "OK".to_string(), "text/plain"),
            "/health" => (StatusCode::SERVICE_UNAVAILABLE, "updater stopped".to_string(), "text/plain"),
            "/ready" if self.ready() => (StatusCode::OK, "OK".to_string(), "text/plain"),
            "/ready" => (StatusCode::SERVICE_UNAVAILABLE, "not ready".to_string(), "text/plain"),
            "/metrics" => {
                let st = &self.metrics.state;
                st.names.store(self.indexes.load().iter().map(|i| i.names()).sum(), Ordering::Relaxed);
                st.ready.store(u64::from(self.ready()), Ordering::Relaxed);
                (StatusCode::OK, self.metrics.render(), "text/plain; version=0.0.4; charset=utf-8")
            }
            _ => (StatusCode::NOT_FOUND, "not found".to_string(), "text/plain"),
        };
        text(code, body, ctype)
    }
}

fn text(code: StatusCode, body: String, ctype: &str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = code;
    if let Ok(v) = ctype.parse() {
        r.headers_mut().insert("content-type", v);
    }
    r
}

#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {addr} for {serves}: {error}")]
pub struct AdminBindError {
    pub addr: SocketAddr,
    /// What the address was for (`/health`, `/ready`, `/metrics`).
    pub serves: Endpoints,
    pub error: std::io::Error,
}

/// Connections one admin address serves at once, and from one client
/// address: probes and scrapes need a handful, and a client that hoards
/// connections cannot starve the kubelet's probes. Past either, a new
/// connection is closed at once.
const ADMIN_CONNECTIONS: usize = 256;
const ADMIN_CONNECTIONS_PER_CLIENT: usize = 16;
/// A request's headers must arrive within this long.
const ADMIN_HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// A connection (kept alive or not) lasts at most this long; scrapers
/// reconnect.
const ADMIN_CONNECTION_LIFE: Duration = Duration::from_secs(60);

/// Binds each address (every path is served on each, so one address may
/// carry all three) and serves until `cancel`. Returns the bound addresses.
/// Which paths one address serves.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Endpoints {
    pub health: bool,
    pub ready: bool,
    pub metrics: bool,
}

impl Endpoints {
    /// The name, among `[health, ready, metrics]`, of the first endpoint
    /// served here (what the operator set: a flag or a Corefile plugin).
    pub fn first_of<'a>(&self, [health, ready, metrics]: [&'a str; 3]) -> &'a str {
        if self.health {
            health
        } else if self.ready {
            ready
        } else {
            metrics
        }
    }
}

impl std::fmt::Display for Endpoints {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let paths = [(self.health, "/health"), (self.ready, "/ready"), (self.metrics, "/metrics")];
        let named: Vec<&str> = paths.iter().filter(|(on, _)| *on).map(|(_, p)| *p).collect();
        f.write_str(&named.join(", "))
    }
}

impl Endpoints {
    pub const ALL: Endpoints = Endpoints { health: true, ready: true, metrics: true };
    pub const HEALTH: Endpoints = Endpoints { health: true, ready: false, metrics: false };
    pub const READY: Endpoints = Endpoints { health: false, ready: true, metrics: false };
    pub const METRICS: Endpoints = Endpoints { health: false, ready: false, metrics: true };
}

/// Binds each address with every path on it (tests, and one port for
/// all). Returns the bound addresses.
pub async fn serve(
    admin: Arc<Admin>,
    addrs: &[SocketAddr],
    cancel: CancellationToken,
) -> Result<Vec<SocketAddr>, AdminBindError> {
    let each: Vec<(SocketAddr, Endpoints)> = addrs.iter().map(|a| (*a, Endpoints::ALL)).collect();
    serve_each(admin, &each, cancel).await
}

/// Binds each address with its own paths, as CoreDNS's `health`, `ready`
/// and `prometheus` each serve theirs on their own port (the same address
/// given twice serves both sets). Serves until `cancel`; returns the bound
/// addresses in the order given, without repeats.
pub async fn serve_each(
    admin: Arc<Admin>,
    endpoints: &[(SocketAddr, Endpoints)],
    cancel: CancellationToken,
) -> Result<Vec<SocketAddr>, AdminBindError> {
    let mut merged: Vec<(SocketAddr, Endpoints)> = Vec::new();
    for (addr, e) in endpoints {
        match merged.iter_mut().find(|(a, _)| a == addr && addr.port() != 0) {
            Some((_, m)) => {
                m.health |= e.health;
                m.ready |= e.ready;
                m.metrics |= e.metrics;
            }
            None => merged.push((*addr, *e)),
        }
    }
    let mut bound = Vec::new();
    for (addr, serves) in merged {
        let err = |error| AdminBindError { addr, serves, error };
        let listener = TcpListener::bind(addr).await.map_err(err)?;
        bound.push(listener.local_addr().map_err(err)?);
        tokio::spawn(accept(listener, admin.clone(), serves, cancel.clone()));
    }
    Ok(bound)
}

/// Serves one admin address: at most [`ADMIN_CONNECTIONS`] at once, each
/// with a header timeout and a bounded life; accept errors (out of file
/// descriptors) back off instead of spinning.
async fn accept(listener: TcpListener, admin: Arc<Admin>, serves: Endpoints, cancel: CancellationToken) {
    let slots = Slots::new(ADMIN_CONNECTIONS, ADMIN_CONNECTIONS_PER_CLIENT);
    let mut backoff = Duration::ZERO;
    loop {
        let conn = tokio::select! {
            _ = cancel.cancelled() => return,
            c = listener.accept() => c,
        };
        let (stream, peer) = match conn {
            Ok(accepted) => accepted,
            Err(e) => {
                backoff = (backoff * 2).clamp(Duration::from_millis(5), Duration::from_secs(1));
                tracing::warn!(error = %e, ?backoff, "admin accept");
                tokio::time::sleep(backoff).await;
                continue;
            }
        };
        backoff = Duration::ZERO;
        let Some(slot) = slots.take(peer.ip()) else {
            drop(stream); // too many open: closed at once
            continue;
        };
        let admin = admin.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let svc = service_fn(move |req: Request<hyper::body::Incoming>| {
                let admin = admin.clone();
                let (path, query) = (req.uri().path().to_string(), req.uri().query().map(str::to_string));
                async move {
                    let r = if path == "/explain" && serves.metrics {
                        admin.explain(query).await
                    } else {
                        admin.respond(&path, serves)
                    };
                    Ok::<_, Infallible>(r)
                }
            });
            let conn = http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(ADMIN_HEADER_TIMEOUT)
                .serve_connection(TokioIo::new(stream), svc);
            let _ = tokio::time::timeout(ADMIN_CONNECTION_LIFE, conn).await;
        });
    }
}
