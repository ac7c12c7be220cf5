//! Wiring: a Corefile (or the command line's equivalent of one) becomes
//! zone indexes kept current by their sources, a chain per server block, a
//! router per listening address, and the listeners. `main.rs` and the tests
//! both start here.
//!
//! `clusterdns serve --manifests PATH --listen ADDR` stands for this
//! Corefile (the admin ports as their flags say):
//!
//! ```text
//! .:PORT {
//!     bind IP
//!     kubernetes cluster.local in-addr.arpa ip6.arpa {
//!         manifests PATH
//!         pods disabled
//!         ttl 5
//!     }
//! }
//! ```
//!
//! Without `forward`, names outside the cluster zone are REFUSED.

mod instance;
mod updater;

pub use instance::{Chains, Instance, build_chains, serve_corefile, spawn_reload};
pub use updater::spawn_updater;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use tokio_util::sync::CancellationToken;

use crate::config::ZoneFlags;
use crate::corefile;
use crate::metrics::Metrics;
use crate::plugins::{Chain, Kubernetes, Router, zone_key};
use crate::records::{BadZone, ZoneConfig, ZoneIndex, render_zone};
use crate::server::{Listeners, Routes, ServeError, Server, TcpLimits};
use crate::source::kube::{KubeError, KubeOptions, client, spawn_watchers};
use crate::source::manifests::{ManifestError, Manifests};
use crate::source::{Scope, SourceMsg, watch_manifests};

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Zone(#[from] BadZone),
    #[error(transparent)]
    Serve(#[from] ServeError),
    #[error(transparent)]
    Manifests(#[from] ManifestError),
    #[error(transparent)]
    Kube(#[from] KubeError),
    #[error("{pos}: {message}")]
    Config { pos: corefile::Pos, message: String },
    #[error("{0}")]
    Other(String),
}

pub fn zone_config(flags: &ZoneFlags) -> Result<ZoneConfig, BadZone> {
    ZoneConfig::new(&flags.zone, flags.ttl, flags.pods)
}

/// A running server: listeners, the index they answer from, its metrics.
pub struct Running {
    pub server: Server,
    pub index: Arc<ZoneIndex>,
    pub metrics: Arc<Metrics>,
    /// The updater's queue, for questions about its model ([`SourceMsg::Ask`]).
    pub updater: std::sync::mpsc::Sender<SourceMsg>,
}

impl Running {
    /// The first bound address.
    pub fn addr(&self) -> SocketAddr {
        self.server.local_addrs()[0]
    }

    /// Waits until the first load is in the index (tests, the demo).
    pub async fn wait_loaded(&self, timeout: Duration) -> bool {
        wait_loaded(std::slice::from_ref(&self.index), timeout).await
    }
}

/// The admin endpoints see a zone index through [`crate::admin::Zone`].
impl crate::admin::Zone for ZoneIndex {
    fn loaded(&self) -> bool {
        self.is_loaded()
    }
    fn writer_alive(&self) -> bool {
        ZoneIndex::writer_alive(self)
    }
    fn names(&self) -> u64 {
        self.len() as u64
    }
}

/// The zone indexes as the admin endpoints take them.
pub fn admin_zones(indexes: Vec<Arc<ZoneIndex>>) -> Vec<Arc<dyn crate::admin::Zone>> {
    indexes.into_iter().map(|i| i as Arc<dyn crate::admin::Zone>).collect()
}

/// Waits until every index has its first load.
pub async fn wait_loaded(indexes: &[Arc<ZoneIndex>], timeout: Duration) -> bool {
    let start = Instant::now();
    while !indexes.iter().all(|i| i.is_loaded()) {
        if start.elapsed() > timeout {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    true
}

/// One block `.` whose chain is the cluster zone alone.
pub fn single_zone_routes(index: &Arc<ZoneIndex>) -> Routes {
    let cfg = index.config();
    let zones = cfg.apexes().iter().filter_map(|n| zone_key(&n.to_ascii())).collect();
    let mut chain = Chain::default();
    chain.kubernetes = Some(Kubernetes::new(index.clone(), zones, Vec::new()));
    let root: Box<[u8]> = Box::new([0]);
    Arc::new(ArcSwap::from_pointee(Router::new(vec![(root, chain.sealed())])))
}

/// Answers on `listeners`, bound before (queries get SERVFAIL, never
/// NXDOMAIN, until the manifests are loaded), then loads the manifests and
/// watches them.
pub async fn serve_manifests(
    paths: Vec<PathBuf>,
    scope: Scope,
    flags: &ZoneFlags,
    listeners: Listeners,
) -> Result<Running, AppError> {
    let cfg = zone_config(flags)?;
    check_paths(&paths)?;
    let index = ZoneIndex::new(cfg);
    let metrics = Arc::new(Metrics::default());
    let server = Server::start(listeners, single_zone_routes(&index), &metrics, TcpLimits::default()).await?;
    let updater =
        start_manifests(paths, flags.service_cidr, scope, index.clone(), metrics.clone(), CancellationToken::new())
            .await?;
    Ok(Running { server, index, metrics, updater })
}

fn check_paths(paths: &[PathBuf]) -> Result<(), AppError> {
    for p in paths {
        // Fail fast and clearly on a path that is not there at all.
        std::fs::metadata(p).map_err(|error| ManifestError::Read { path: p.clone(), error })?;
    }
    Ok(())
}

/// Loads manifests into `index` and keeps watching them; returns the
/// updater's queue.
async fn start_manifests(
    paths: Vec<PathBuf>,
    cidr: ipnet::IpNet,
    scope: Scope,
    index: Arc<ZoneIndex>,
    metrics: Arc<Metrics>,
    stop: CancellationToken,
) -> Result<std::sync::mpsc::Sender<SourceMsg>, AppError> {
    let tx = spawn_updater(index, metrics, &scope);
    let updater = tx.clone();
    let mut manifests = Manifests::new(paths, cidr, scope);
    let loaded = tokio::task::spawn_blocking(move || {
        let first = manifests.load(true);
        // What the parse freed on this thread, purged before the updater
        // tells the allocator to purge at once (which ends scheduled purges).
        crate::source::release_free_memory();
        (manifests, first)
    });
    let (manifests, first) = loaded.await.map_err(|e| AppError::Other(e.to_string()))?;
    let (objects, errors) = first?.unwrap_or_default();
    tracing::debug!(objects = objects.len(), rss_kib = crate::source::rss_kib(), "manifests parsed");
    for e in errors {
        tracing::warn!("{e}");
    }
    let kinds = crate::source::ALL_KINDS.to_vec();
    let _ = tx.send(SourceMsg::Events(vec![crate::model::Event::Reset { kinds, objects }]));
    let _ = tx.send(SourceMsg::Synced);
    watch_manifests(manifests, tx, stop).map_err(|e| AppError::Other(format!("cannot start the file watcher: {e}")))?;
    Ok(updater)
}

/// A server answering from the Kubernetes API on `listeners`, bound before:
/// until every kind is listed, misses are SERVFAIL (never NXDOMAIN).
pub async fn serve_api(opts: &KubeOptions, flags: &ZoneFlags, listeners: Listeners) -> Result<Running, AppError> {
    let cfg = zone_config(flags)?;
    let index = ZoneIndex::new(cfg);
    let metrics = Arc::new(Metrics::default());
    let server = Server::start(listeners, single_zone_routes(&index), &metrics, TcpLimits::default()).await?;
    match start_api(opts, index.clone(), metrics.clone()).await {
        Ok(updater) => Ok(Running { server, index, metrics, updater }),
        Err(e) => {
            server.shutdown().await;
            Err(e)
        }
    }
}

/// Starts the watches and their updater; returns the updater's queue.
async fn start_api(
    opts: &KubeOptions,
    index: Arc<ZoneIndex>,
    metrics: Arc<Metrics>,
) -> Result<std::sync::mpsc::Sender<SourceMsg>, AppError> {
    let client = client(opts).await?;
    let tx = spawn_updater(index, metrics.clone(), &opts.scope);
    spawn_watchers(client, opts, tx.clone(), metrics, CancellationToken::new());
    Ok(tx)
}

/// `/explain` questions in flight at most: each is a scan of the model on
/// the updater thread, which cluster changes wait behind.
const EXPLAIN_IN_FLIGHT: usize = 4;

/// `/explain` for a running server: each question is asked on its updater
/// thread, of the model as it is, through its queue; it waits up to 10 s,
/// and a question given up on is skipped when its turn comes.
pub fn explain_hook(running: &Running) -> crate::admin::ExplainHook {
    use crate::admin::ExplainError::{Question, Unavailable};
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    let (updater, index) = (running.updater.clone(), running.index.clone());
    let in_flight = Arc::new(AtomicUsize::new(0));
    Arc::new(move |name: &str, qtype: &str, from: Option<&str>| {
        let qtype = crate::explain::parse_qtype(qtype).map_err(Question)?;
        if !index.is_loaded() {
            return Err(Unavailable("the cluster state is not loaded yet".into()));
        }
        if in_flight.fetch_add(1, Ordering::AcqRel) >= EXPLAIN_IN_FLIGHT {
            in_flight.fetch_sub(1, Ordering::AcqRel);
            return Err(Unavailable(format!("{EXPLAIN_IN_FLIGHT} questions are being answered; ask again")));
        }
        struct Done(Arc<AtomicUsize>);
        impl Drop for Done {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::AcqRel);
            }
        }
        let _done = Done(in_flight.clone());
        let given_up = Arc::new(AtomicBool::new(false));
        let (tx, rx) = std::sync::mpsc::channel();
        let (name, from, index, skip) = (name.to_string(), from.map(str::to_string), index.clone(), given_up.clone());
        let question = move |cluster: &crate::model::Cluster| {
            if skip.load(Ordering::Acquire) {
                return;
            }
            let view = crate::explain::Explain::new(cluster, &index);
            let json = match from {
                Some(ns) => serde_json::to_string_pretty(&view.search(&name, qtype, &ns)),
                None => serde_json::to_string_pretty(&view.explain(&name, qtype)),
            };
            let _ = tx.send(json.map_err(|e| e.to_string()));
        };
        updater.send(SourceMsg::Ask(Box::new(question))).map_err(|_| Unavailable("the updater has stopped".into()))?;
        match rx.recv_timeout(std::time::Duration::from_secs(10)) {
            Ok(answer) => answer.map_err(Unavailable),
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                given_up.store(true, Ordering::Release);
                Err(Unavailable("no answer from the updater within 10 s".into()))
            }
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                Err(Unavailable("the updater dropped the question (it stopped, or the question failed)".into()))
            }
        }
    })
}

/// Lists every kind the API serves (waiting up to `wait`), then runs `f` on
/// the updater thread with the model and index built from it: `zone`,
/// `explain` and `check` on a live cluster.
pub async fn with_live_cluster<T: Send + 'static>(
    opts: &KubeOptions,
    flags: &ZoneFlags,
    wait: Duration,
    f: impl FnOnce(&crate::model::Cluster, &ZoneIndex) -> T + Send + 'static,
) -> Result<T, AppError> {
    let index = ZoneIndex::new(zone_config(flags)?);
    let updater = start_api(opts, index.clone(), Arc::new(Metrics::default())).await?;
    let start = Instant::now();
    while !index.is_loaded() {
        if !index.writer_alive() {
            return Err(AppError::Other("the updater stopped before the cluster was listed".into()));
        }
        if start.elapsed() > wait {
            return Err(AppError::Other(format!(
                "the API did not list every kind within {} s (see the log for the watches that failed)",
                wait.as_secs()
            )));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (tx, rx) = tokio::sync::oneshot::channel();
    let ask = move |cluster: &crate::model::Cluster| {
        let _ = tx.send(f(cluster, &index));
    };
    updater.send(SourceMsg::Ask(Box::new(ask))).map_err(|_| AppError::Other("the updater stopped".into()))?;
    rx.await.map_err(|_| AppError::Other("the updater stopped".into()))
}

/// The zone snapshot of the cluster the API serves, rendered from the model
/// as `clusterdns zone` renders manifests.
pub async fn zone_from_api(opts: &KubeOptions, flags: &ZoneFlags, wait: Duration) -> Result<String, AppError> {
    with_live_cluster(opts, flags, wait, |cluster, index| render_zone(cluster, index.config())).await
}

/// Loads `paths` for `clusterdns explain`; the errors found are returned
/// beside it.
pub fn explainer(paths: Vec<PathBuf>, flags: &ZoneFlags) -> Result<(crate::explain::Explainer, Vec<String>), AppError> {
    let (cfg, objects, errors) = load_once(paths, flags)?;
    Ok((crate::explain::Explainer::new(cfg, objects), errors))
}

/// The zone's configuration and the objects of `paths`, read once (the
/// one-shot commands), with the errors found.
fn load_once(
    paths: Vec<PathBuf>,
    flags: &ZoneFlags,
) -> Result<(ZoneConfig, Vec<crate::model::Object>, Vec<String>), AppError> {
    let cfg = zone_config(flags)?;
    let mut manifests = Manifests::new(paths, flags.service_cidr, Scope::default());
    let (objects, errors) = manifests.load(true)?.unwrap_or_default();
    Ok((cfg, objects, errors.iter().map(ToString::to_string).collect()))
}

/// The zone snapshot of a set of manifests; the errors found are returned
/// beside it so the caller can report them.
pub fn zone_snapshot(paths: Vec<PathBuf>, flags: &ZoneFlags) -> Result<(String, Vec<String>), AppError> {
    let (cfg, objects, errors) = load_once(paths, flags)?;
    let mut cluster = crate::model::Cluster::new();
    for obj in objects {
        cluster.apply(obj);
    }
    Ok((render_zone(&cluster, &cfg), errors))
}
