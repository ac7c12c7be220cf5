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

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;

use crate::config::ZoneFlags;
use crate::corefile::{self, Corefile, Plugin};
use crate::metrics::Metrics;
use crate::plugins::{Cache, Chain, Chaos, Forward, Hosts, Kubernetes, Log, Loop, Router, Template, zone_key};
use crate::records::{BadZone, PodMode, ZoneConfig, ZoneIndex, render_zone};
use crate::server::{Routes, ServeError, Server};
use crate::source::kube::{KubeError, KubeOptions, client, spawn_watchers};
use crate::source::manifests::{ManifestError, Manifests};
use crate::source::{SourceMsg, spawn_updater, watch_manifests};

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
    let chain = Chain { kubernetes: Some(Kubernetes::new(index.clone(), zones, Vec::new())), ..Default::default() };
    let root: Box<[u8]> = Box::new([0]);
    Arc::new(ArcSwap::from_pointee(Router::new(vec![(root, Arc::new(chain))])))
}

/// Binds the listeners first (queries get SERVFAIL, never NXDOMAIN, until
/// the manifests are loaded), then loads the manifests and watches them.
pub async fn serve_manifests(
    paths: Vec<PathBuf>,
    flags: &ZoneFlags,
    listen: &[SocketAddr],
) -> Result<Running, AppError> {
    let cfg = zone_config(flags)?;
    check_paths(&paths)?;
    let index = ZoneIndex::new(cfg);
    let metrics = Arc::new(Metrics::default());
    let server = Server::bind(single_zone_routes(&index), listen, &metrics).await?;
    start_manifests(paths, flags.service_cidr, index.clone(), metrics.clone()).await?;
    Ok(Running { server, index, metrics })
}

fn check_paths(paths: &[PathBuf]) -> Result<(), AppError> {
    for p in paths {
        // Fail fast and clearly on a path that is not there at all.
        std::fs::metadata(p).map_err(|error| ManifestError::Read { path: p.clone(), error })?;
    }
    Ok(())
}

/// Loads manifests into `index` and keeps watching them.
async fn start_manifests(
    paths: Vec<PathBuf>,
    cidr: ipnet::IpNet,
    index: Arc<ZoneIndex>,
    metrics: Arc<Metrics>,
) -> Result<(), AppError> {
    let tx = spawn_updater(index, metrics);
    let mut manifests = Manifests::new(paths, cidr);
    let loaded = tokio::task::spawn_blocking(move || {
        let first = manifests.load(true);
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
    watch_manifests(manifests, tx).map_err(|e| AppError::Other(format!("cannot start the file watcher: {e}")))
}

/// A server answering from the Kubernetes API. The DNS port is bound first:
/// until every kind is listed, misses are SERVFAIL (never NXDOMAIN).
pub async fn serve_api(opts: &KubeOptions, flags: &ZoneFlags, listen: &[SocketAddr]) -> Result<Running, AppError> {
    let cfg = zone_config(flags)?;
    let index = ZoneIndex::new(cfg);
    let metrics = Arc::new(Metrics::default());
    let server = Server::bind(single_zone_routes(&index), listen, &metrics).await?;
    if let Err(e) = start_api(opts, index.clone(), metrics.clone()).await {
        server.shutdown().await;
        return Err(e);
    }
    Ok(Running { server, index, metrics })
}

async fn start_api(opts: &KubeOptions, index: Arc<ZoneIndex>, metrics: Arc<Metrics>) -> Result<(), AppError> {
    let client = client(opts).await?;
    let tx = spawn_updater(index, metrics.clone());
    spawn_watchers(client, opts, tx, metrics);
    Ok(())
}

/// The zone snapshot of a set of manifests; the errors found are returned
/// beside it so the caller can report them.
pub fn zone_snapshot(paths: Vec<PathBuf>, flags: &ZoneFlags) -> Result<(String, Vec<String>), AppError> {
    let cfg = zone_config(flags)?;
    let mut manifests = Manifests::new(paths, flags.service_cidr);
    let (objects, errors) = manifests.load(true)?.unwrap_or_default();
    let mut cluster = crate::model::Cluster::new();
    for obj in objects {
        cluster.apply(obj);
    }
    Ok((render_zone(&cluster, &cfg), errors.iter().map(ToString::to_string).collect()))
}

/// What a Corefile runs: its listeners, the zone indexes of its
/// `kubernetes` directives, and the admin endpoints it asks for.
pub struct Instance {
    pub servers: Vec<Server>,
    pub indexes: Vec<Arc<ZoneIndex>>,
    pub metrics: Arc<Metrics>,
    /// `health` (address, lame duck), `ready`, `prometheus` addresses.
    pub health: Option<corefile::Health>,
    pub ready: Option<SocketAddr>,
    pub prometheus: Vec<SocketAddr>,
    /// `reload`: how often to look at the Corefile.
    pub reload: Option<corefile::Reload>,
    /// Stops the instance's background tasks (hosts reloads).
    cancel: tokio_util::sync::CancellationToken,
}

impl Instance {
    /// Every bound DNS address.
    pub fn addrs(&self) -> Vec<SocketAddr> {
        self.servers.iter().flat_map(|s| s.local_addrs().to_vec()).collect()
    }

    pub async fn shutdown(self) {
        self.cancel.cancel();
        for s in self.servers {
            s.shutdown().await;
        }
    }
}

fn config_error(pos: &corefile::Pos, message: impl Into<String>) -> AppError {
    AppError::Config { pos: pos.clone(), message: message.into() }
}

fn keys(zones: &[String]) -> Vec<Box<[u8]>> {
    zones.iter().filter_map(|z| zone_key(z)).collect()
}

fn is_reverse(zone: &str) -> bool {
    zone.ends_with("in-addr.arpa.") || zone.ends_with("ip6.arpa.")
}

/// The cluster zone of a `kubernetes` directive: its one forward zone.
fn kubernetes_zone(k: &corefile::Kubernetes, pos: &corefile::Pos) -> Result<ZoneConfig, AppError> {
    let forward: Vec<&String> = k.zones.iter().filter(|z| !is_reverse(z)).collect();
    let [zone] = forward[..] else {
        return Err(config_error(
            pos,
            format!("kubernetes needs exactly one cluster domain among its zones (has {forward:?})"),
        ));
    };
    if zone == "." {
        return Err(config_error(pos, "kubernetes cannot serve the root zone: name the cluster domain"));
    }
    let pods = match k.pods {
        corefile::Pods::Disabled => PodMode::Disabled,
        corefile::Pods::Insecure => PodMode::Insecure,
        corefile::Pods::Verified => PodMode::Verified,
    };
    ZoneConfig::new(zone, k.ttl, pods).map_err(AppError::from)
}

/// Options of `kubernetes` that the model does not implement yet: refused
/// at start-up rather than silently ignored.
fn check_kubernetes(k: &corefile::Kubernetes, pos: &corefile::Pos) -> Result<(), AppError> {
    let unsupported = [
        ("namespace_labels", k.namespace_labels.is_some()),
        ("endpoint_pod_names", k.endpoint_pod_names),
        ("ignore empty_service", k.ignore_empty_service),
        ("noendpoints", k.noendpoints),
        ("endpoint", k.endpoint.is_some()),
        ("kubeconfig CONTEXT", k.kubeconfig.as_ref().is_some_and(|(_, c)| c.is_some())),
    ];
    match unsupported.iter().find(|(_, set)| *set) {
        Some((name, _)) => Err(config_error(pos, format!("kubernetes option '{name}' is not implemented yet"))),
        None => Ok(()),
    }
}

/// Starts what a Corefile describes: indexes first (empty: SERVFAIL until
/// loaded), then the listeners, then the sources that fill the indexes.
pub async fn serve_corefile(cf: &Corefile, metrics: Arc<Metrics>) -> Result<Instance, AppError> {
    // One index per distinct kubernetes configuration (blocks on several
    // ports usually share one).
    let mut kube: Vec<(corefile::Kubernetes, Arc<ZoneIndex>)> = Vec::new();
    let mut by_addr: BTreeMap<SocketAddr, Vec<(Box<[u8]>, Arc<Chain>)>> = BTreeMap::new();
    let (mut health, mut ready, mut prometheus, mut reload) = (None, None, Vec::new(), None);
    let mut hosts_all = Vec::new();
    let mut loops: Vec<(u16, Arc<Loop>)> = Vec::new();
    for block in &cf.blocks {
        let mut chain = Chain::default();
        let mut bind: Vec<IpAddr> = Vec::new();
        let zones_label = block.zones().join(" ");
        let server_label = block.keys.first().map(|k| format!("dns://:{}", k.port)).unwrap_or_default();
        for d in &block.plugins {
            for zone in block.zones() {
                metrics
                    .row(
                        "coredns_plugin_enabled",
                        "A metric that indicates whether a plugin is enabled on per server and zone basis.",
                        true,
                        vec![
                            ("server", server_label.clone()),
                            ("zone", zone),
                            ("view", String::new()),
                            ("name", d.plugin.name().to_string()),
                        ],
                    )
                    .store(1, std::sync::atomic::Ordering::Relaxed);
            }
            match &d.plugin {
                Plugin::Kubernetes(k) => {
                    check_kubernetes(k, &d.pos)?;
                    let index = match kube.iter().find(|(c, _)| c == k) {
                        Some((_, index)) => index.clone(),
                        None => {
                            let index = ZoneIndex::new(kubernetes_zone(k, &d.pos)?);
                            kube.push((k.clone(), index.clone()));
                            index
                        }
                    };
                    let fall = k.fallthrough.as_deref().map(keys).unwrap_or_default();
                    chain.kubernetes = Some(Kubernetes::new(index, keys(&k.zones), fall));
                }
                Plugin::Forward(f) => chain.forwards.push(Arc::new(Forward::new(f.clone(), metrics.forward.clone()))),
                Plugin::Cache(c) => {
                    let server = block.keys.first().map(|k| format!("dns://:{}", k.port)).unwrap_or_default();
                    chain.cache = Some(Cache::new(c, metrics.cache_stats(server, zones_label.clone())));
                }
                Plugin::Bind(ips) => bind.extend(ips),
                Plugin::Health(h) => health = Some(h.clone()),
                Plugin::Ready(addr) => ready = Some(*addr),
                Plugin::Prometheus(addr) => {
                    if !prometheus.contains(addr) {
                        prometheus.push(*addr);
                    }
                }
                Plugin::Errors => chain.errors = true,
                Plugin::Log(l) => chain.log = Some(Log::new(l)),
                Plugin::Any => chain.any = true,
                Plugin::Chaos(c) => chain.chaos = Some(Chaos::new(c)),
                Plugin::Loadbalance => chain.loadbalance = true,
                Plugin::Rewrite(r) => chain.rewrites.push(r.clone()),
                Plugin::Minimal => chain.minimal = true,
                Plugin::Bufsize(n) => chain.bufsize = Some(*n),
                Plugin::Template(t) => {
                    let class = t.class.map_or("ANY".to_string(), |c| hickory_proto::rr::DNSClass::from(c).to_string());
                    let qtype =
                        t.qtype.map_or("ANY".to_string(), |q| hickory_proto::rr::RecordType::from(q).to_string());
                    let labels = |zone: &str| {
                        vec![
                            ("server", server_label.clone()),
                            ("zone", zone.to_string()),
                            ("view", String::new()),
                            ("class", class.clone()),
                            ("type", qtype.clone()),
                        ]
                    };
                    let zone = t.zones.first().cloned().unwrap_or_default();
                    let matches = metrics.row(
                        "coredns_template_matches",
                        "Counter of template regex matches.",
                        false,
                        labels(&zone),
                    );
                    let failures = metrics.row(
                        "coredns_template_rr_failures",
                        "Counter of template resource record failures.",
                        false,
                        labels(&zone),
                    );
                    chain.templates.push(Template::new(t, matches, failures));
                }
                Plugin::Hosts(h) => {
                    let entries = metrics.row(
                        "coredns_hosts_entries",
                        "The combined number of entries in hosts and Corefile.",
                        true,
                        vec![],
                    );
                    let hosts = Hosts::new(h, entries);
                    hosts_all.push(hosts.clone());
                    chain.hosts = Some(hosts);
                }
                Plugin::Loop => {
                    let zone = block.zones().first().cloned().unwrap_or_else(|| ".".to_string());
                    let l = Loop::new(&zone, metrics.state.loop_detected.clone());
                    loops.push((block.keys.first().map_or(0, |k| k.port), l.clone()));
                    chain.loop_check = Some(l);
                }
                Plugin::Reload(r) => reload = Some(r.clone()),
            }
        }
        if bind.is_empty() {
            bind.push(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        }
        let chain = Arc::new(chain);
        for key in &block.keys {
            let zone = zone_key(&key.zone).ok_or_else(|| config_error(&block.pos, "bad zone"))?;
            for ip in &bind {
                by_addr.entry(SocketAddr::new(*ip, key.port)).or_default().push((zone.clone(), chain.clone()));
            }
        }
    }
    let mut servers = Vec::new();
    for (addr, blocks) in by_addr {
        let routes = Arc::new(ArcSwap::from_pointee(Router::new(blocks)));
        match Server::bind(routes, &[addr], &metrics).await {
            Ok(s) => servers.push(s),
            Err(e) => {
                for s in servers {
                    s.shutdown().await;
                }
                return Err(e.into());
            }
        }
    }
    // The loop probes go to this server's own address on each block's port.
    let bound: Vec<SocketAddr> = servers.iter().flat_map(|s| s.local_addrs().to_vec()).collect();
    for (port, l) in loops {
        let Some(addr) = bound.iter().find(|a| a.port() == port || port == 0).copied() else { continue };
        tokio::task::spawn_blocking(move || l.probe(addr));
    }
    let cancel = tokio_util::sync::CancellationToken::new();
    crate::plugins::hosts::spawn_reloads(hosts_all, cancel.clone());
    let mut indexes = Vec::new();
    for (k, index) in kube {
        let started = if k.manifests.is_empty() {
            let opts = KubeOptions {
                kubeconfig: k.kubeconfig.as_ref().map(|(p, _)| p.clone()),
                namespaces: k.namespaces.clone(),
                labels: k.labels.clone(),
                pods: k.pods == corefile::Pods::Verified,
                ..Default::default()
            };
            start_api(&opts, index.clone(), metrics.clone()).await
        } else {
            match check_paths(&k.manifests) {
                Ok(()) => start_manifests(k.manifests.clone(), k.service_cidr, index.clone(), metrics.clone()).await,
                Err(e) => Err(e),
            }
        };
        if let Err(e) = started {
            for s in servers {
                s.shutdown().await;
            }
            return Err(e);
        }
        indexes.push(index);
    }
    Ok(Instance { servers, indexes, metrics, health, ready, prometheus, reload, cancel })
}
