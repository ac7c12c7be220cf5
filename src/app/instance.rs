//! A Corefile running: its chains, routers and listeners, the zone indexes
//! of its `kubernetes` directives, and what changes when it is reloaded.
//!
//! Building is separate from binding: a reload builds every chain of the new
//! Corefile first (reusing the zone index of any `kubernetes` whose options
//! did not change, so no relist and no gap), binds the addresses that are
//! new, then swaps each listener's router in one step. A question is
//! answered by the old chains or by the new ones, never by none.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use arc_swap::ArcSwap;
use tokio_util::sync::CancellationToken;

use super::{AppError, check_paths, spawn_updater, start_manifests};
use crate::corefile::{self, Corefile, Plugin};
use crate::metrics::Metrics;
use crate::plugins::{Cache, Chain, Chaos, Forward, Hosts, Kubernetes, Log, Loop, Router, Template, zone_key};
use crate::records::{PodMode, ZoneConfig, ZoneIndex};
use crate::server::{Routes, Server};
use crate::source::Scope;
use crate::source::kube::{KubeOptions, client, spawn_watchers};

/// What a Corefile runs.
pub struct Instance {
    /// Per listening address (as configured): its listener and router.
    servers: BTreeMap<SocketAddr, (Server, Routes)>,
    /// One zone index per distinct `kubernetes` configuration, kept across
    /// reloads while the configuration stays the same.
    kube: Vec<Zone>,
    pub metrics: Arc<Metrics>,
    /// `health` (address, lame duck), `ready`, `prometheus` addresses.
    pub health: Option<corefile::Health>,
    pub ready: Option<SocketAddr>,
    pub prometheus: Vec<SocketAddr>,
    /// `reload`: how often to look at the Corefile.
    pub reload: Option<corefile::Reload>,
    /// Stops the background tasks of the current chains (hosts reloads).
    cancel: CancellationToken,
}

/// A `kubernetes` configuration, its zone index, and what stops the
/// source that fills it (when a reload drops it, or a reload fails).
#[derive(Clone)]
struct Zone {
    config: corefile::Kubernetes,
    index: Arc<ZoneIndex>,
    stop: CancellationToken,
}

/// Chains built from a Corefile, not yet serving.
struct Built {
    routers: BTreeMap<SocketAddr, Router>,
    hosts: Vec<Arc<Hosts>>,
    /// (port, detector): each sends its probe to the server on that port.
    loops: Vec<(u16, Arc<Loop>)>,
    health: Option<corefile::Health>,
    ready: Option<SocketAddr>,
    prometheus: Vec<SocketAddr>,
    reload: Option<corefile::Reload>,
    /// The `kubernetes` configurations the chains use.
    used: Vec<corefile::Kubernetes>,
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
    let mut cfg = ZoneConfig::new(zone, k.ttl, pods)?;
    cfg.noendpoints = k.noendpoints;
    cfg.ignore_empty_service = k.ignore_empty_service;
    cfg.endpoint_pod_names = k.endpoint_pod_names;
    Ok(cfg)
}

/// Builds the chains of `cf`. Zone indexes come from `kube` when their
/// configuration is there; new ones are added to it (empty, no source yet).
fn build(cf: &Corefile, kube: &mut Vec<Zone>, metrics: &Arc<Metrics>) -> Result<Built, AppError> {
    // Per listening address: (zone key, chain) of each block on it.
    type Blocks = Vec<(Box<[u8]>, Arc<Chain>)>;
    let mut routers: BTreeMap<SocketAddr, Blocks> = BTreeMap::new();
    let mut b = Built {
        routers: BTreeMap::new(),
        hosts: Vec::new(),
        loops: Vec::new(),
        health: None,
        ready: None,
        prometheus: Vec::new(),
        reload: None,
        used: Vec::new(),
    };
    for block in &cf.blocks {
        let mut chain = Chain::default();
        let zones = block.zones();
        let port = block.keys.first().map_or(0, |k| k.port);
        let mut bind: Vec<IpAddr> = Vec::new();
        for d in &block.plugins {
            if let Plugin::Bind(ips) = &d.plugin {
                bind.extend(ips);
            }
        }
        if bind.is_empty() {
            // Every address, IPv4 and IPv6 (CoreDNS's `:53`).
            bind.push(IpAddr::V6(Ipv6Addr::UNSPECIFIED));
        }
        // CoreDNS's `server` label names the block's first address.
        let server = crate::metrics::server_label(SocketAddr::new(bind[0], port));
        for d in &block.plugins {
            for zone in &zones {
                metrics
                    .row(
                        "coredns_plugin_enabled",
                        "A metric that indicates whether a plugin is enabled on per server and zone basis.",
                        true,
                        vec![
                            ("server", server.clone()),
                            ("zone", zone.clone()),
                            ("view", String::new()),
                            ("name", d.plugin.name().to_string()),
                        ],
                    )
                    .store(1, Ordering::Relaxed);
            }
            match &d.plugin {
                Plugin::Kubernetes(k) => {
                    let index = match kube.iter().find(|z| z.config == *k) {
                        Some(z) => z.index.clone(),
                        None => {
                            let index = ZoneIndex::new(kubernetes_zone(k, &d.pos)?);
                            kube.push(Zone { config: k.clone(), index: index.clone(), stop: CancellationToken::new() });
                            index
                        }
                    };
                    if !b.used.contains(k) {
                        b.used.push(k.clone());
                    }
                    let fall = k.fallthrough.as_deref().map(keys).unwrap_or_default();
                    chain.kubernetes = Some(Kubernetes::new(index, keys(&k.zones), fall));
                }
                Plugin::Forward(f) => chain.forwards.push(Arc::new(Forward::new(f.clone(), metrics.forward.clone()))),
                Plugin::Cache(c) => {
                    chain.cache = Some(Cache::new(c, metrics.cache_stats(server.clone(), zones.join(","))))
                }
                Plugin::Bind(_) => {}
                Plugin::Health(h) => b.health = Some(h.clone()),
                Plugin::Ready(addr) => b.ready = Some(*addr),
                Plugin::Prometheus(addr) => {
                    if !b.prometheus.contains(addr) {
                        b.prometheus.push(*addr);
                    }
                }
                Plugin::Errors => chain.errors = true,
                Plugin::Log(l) => chain.log = Some(Log::new(l)),
                Plugin::Any => chain.any = true,
                Plugin::Chaos(c) => chain.chaos = Some(Chaos::new(c)),
                Plugin::Loadbalance => chain.loadbalance = true,
                Plugin::Rewrite(r) => chain.rewrites.push(r.clone()),
                Plugin::Minimal => chain.minimal = true,
                Plugin::Transfer(t) => chain.transfer = Some(Arc::new(t.clone())),
                Plugin::Bufsize(n) => chain.bufsize = Some(*n),
                Plugin::Template(t) => {
                    let name = |v: Option<u16>, f: fn(u16) -> String| v.map_or("ANY".to_string(), f);
                    let labels = vec![
                        ("server", server.clone()),
                        ("zone", t.zones.first().cloned().unwrap_or_default()),
                        ("view", String::new()),
                        ("class", name(t.class, |c| hickory_proto::rr::DNSClass::from(c).to_string())),
                        ("type", name(t.qtype, |q| hickory_proto::rr::RecordType::from(q).to_string())),
                    ];
                    let help = "Counter of template regex matches.";
                    let matches = metrics.row("coredns_template_matches", help, false, labels.clone());
                    let help = "Counter of template resource record failures.";
                    let failures = metrics.row("coredns_template_rr_failures", help, false, labels);
                    chain.templates.push(Template::new(t, matches, failures));
                }
                Plugin::Hosts(h) => {
                    let help = "The combined number of entries in hosts and Corefile.";
                    let hosts = Hosts::new(h, metrics.row("coredns_hosts_entries", help, true, vec![]));
                    b.hosts.push(hosts.clone());
                    chain.hosts = Some(hosts);
                }
                Plugin::Loop => {
                    let zone = zones.first().cloned().unwrap_or_else(|| ".".to_string());
                    let l = Loop::new(&zone, metrics.state.loop_detected.clone());
                    b.loops.push((port, l.clone()));
                    chain.loop_check = Some(l);
                }
                Plugin::Reload(r) => b.reload = Some(r.clone()),
            }
        }
        let chain = chain.sealed();
        for key in &block.keys {
            let zone = zone_key(&key.zone).ok_or_else(|| config_error(&block.pos, "bad zone"))?;
            for ip in &bind {
                routers.entry(SocketAddr::new(*ip, key.port)).or_default().push((zone.clone(), chain.clone()));
            }
        }
    }
    b.routers = routers.into_iter().map(|(addr, blocks)| (addr, Router::new(blocks))).collect();
    Ok(b)
}

/// The chains of a Corefile, built but not serving.
pub struct Chains {
    /// Per listening address: the router of its server blocks.
    pub routers: BTreeMap<SocketAddr, Router>,
    /// The zone index of each distinct `kubernetes` configuration, in the
    /// order the Corefile first names them.
    pub indexes: Vec<Arc<ZoneIndex>>,
}

/// Builds every chain of `cf` as a start or a reload would, without binding
/// a socket or starting a source: the zone indexes stay empty and not
/// loaded (their names SERVFAIL) until the caller fills them (a fuzzer, a
/// check of a Corefile). Files the directives name (`hosts`) are read.
pub fn build_chains(cf: &Corefile, metrics: &Arc<Metrics>) -> Result<Chains, AppError> {
    let mut kube = Vec::new();
    let built = build(cf, &mut kube, metrics)?;
    Ok(Chains { routers: built.routers, indexes: kube.into_iter().map(|z| z.index).collect() })
}

/// The source of a `kubernetes` directive's index, checked and ready to
/// run: what can fail (a kubeconfig, a missing path) fails here, before
/// any listener answers with the new configuration.
enum Source {
    Api(kube::Client, KubeOptions),
    Manifests(Vec<std::path::PathBuf>, ipnet::IpNet, Scope),
}

fn scope(k: &corefile::Kubernetes) -> Scope {
    Scope { namespaces: k.namespaces.clone(), labels: k.labels.clone(), namespace_labels: k.namespace_labels.clone() }
}

async fn prepare_source(k: &corefile::Kubernetes) -> Result<Source, AppError> {
    if k.manifests.is_empty() {
        let opts = KubeOptions {
            kubeconfig: k.kubeconfig.as_ref().map(|(p, _)| p.clone()),
            context: k.kubeconfig.as_ref().and_then(|(_, c)| c.clone()),
            endpoint: k.endpoint.clone(),
            scope: scope(k),
            pods: k.pods == corefile::Pods::Verified,
            ..Default::default()
        };
        Ok(Source::Api(client(&opts).await?, opts))
    } else {
        check_paths(&k.manifests)?;
        Ok(Source::Manifests(k.manifests.clone(), k.service_cidr, scope(k)))
    }
}

/// Starts filling `index` in the background: until it is loaded its names
/// are SERVFAIL (never NXDOMAIN, never REFUSED).
fn run_source(source: Source, index: Arc<ZoneIndex>, metrics: Arc<Metrics>, stop: CancellationToken) {
    match source {
        Source::Api(client, opts) => {
            let tx = spawn_updater(index, metrics.clone(), &opts.scope);
            spawn_watchers(client, &opts, tx, metrics, stop);
        }
        Source::Manifests(paths, cidr, scope) => {
            tokio::spawn(async move {
                if let Err(e) = start_manifests(paths, cidr, scope, index, metrics, stop).await {
                    tracing::error!("kubernetes: cannot load the manifests: {e}");
                }
            });
        }
    }
}

/// Starts what a Corefile describes: indexes first (empty: SERVFAIL until
/// loaded), then the listeners, then the sources that fill the indexes.
pub async fn serve_corefile(cf: &Corefile, metrics: Arc<Metrics>) -> Result<Instance, AppError> {
    let mut kube = Vec::new();
    let built = build(cf, &mut kube, &metrics)?;
    let mut instance = Instance {
        servers: BTreeMap::new(),
        kube: Vec::new(),
        metrics,
        health: None,
        ready: None,
        prometheus: Vec::new(),
        reload: None,
        cancel: CancellationToken::new(),
    };
    let result = instance.switch(built, kube).await;
    match result {
        Ok(()) => Ok(instance),
        Err(e) => {
            instance.shutdown().await;
            Err(e)
        }
    }
}

impl Instance {
    /// Every bound DNS address.
    pub fn addrs(&self) -> Vec<SocketAddr> {
        self.servers.values().flat_map(|(s, _)| s.local_addrs().to_vec()).collect()
    }

    /// The zone indexes in use.
    pub fn indexes(&self) -> Vec<Arc<ZoneIndex>> {
        self.kube.iter().map(|z| z.index.clone()).collect()
    }

    /// Replaces the running configuration with `cf`. On an error nothing
    /// changes (the old chains keep serving).
    pub async fn apply(&mut self, cf: &Corefile) -> Result<(), AppError> {
        let mut kube = self.kube.clone();
        let built = build(cf, &mut kube, &self.metrics)?;
        self.switch(built, kube).await
    }

    async fn switch(&mut self, built: Built, kube: Vec<Zone>) -> Result<(), AppError> {
        // Sources of new indexes, checked before anything switches.
        let mut sources = Vec::new();
        for z in kube.iter().filter(|z| !self.kube.iter().any(|o| o.config == z.config)) {
            match prepare_source(&z.config).await {
                Ok(source) => sources.push((source, z.clone())),
                Err(e) => return Err(e),
            }
        }
        // New addresses first: if one cannot be bound, nothing changes.
        let mut fresh = BTreeMap::new();
        for (addr, router) in built.routers.iter().filter(|(a, _)| !self.servers.contains_key(a)) {
            // A new address answers with its new chains from the start.
            let routes: Routes = Arc::new(ArcSwap::from_pointee(router.clone()));
            match Server::bind(routes.clone(), &[*addr], &self.metrics).await {
                Ok(s) => {
                    fresh.insert(*addr, (s, routes));
                }
                Err(e) => {
                    shutdown_all(fresh).await;
                    return Err(e.into());
                }
            }
        }
        // On a reload, a zone whose kubernetes options changed is loaded
        // before it answers: the old one keeps serving until then (up to
        // `startup_timeout`, else the reload fails and the old stays).
        let reloading = !self.servers.is_empty();
        let started: Vec<Zone> = sources.iter().map(|(_, z)| z.clone()).collect();
        let waiting: Vec<Arc<ZoneIndex>> = started.iter().map(|z| z.index.clone()).collect();
        let timeout = started.iter().map(|z| z.config.startup_timeout).max().unwrap_or_default();
        for (source, z) in std::mem::take(&mut sources) {
            run_source(source, z.index, self.metrics.clone(), z.stop);
        }
        if reloading && !waiting.is_empty() && !super::wait_loaded(&waiting, timeout).await {
            started.iter().for_each(|z| z.stop.cancel());
            shutdown_all(fresh).await;
            return Err(AppError::Other(format!(
                "the new kubernetes zone did not load within {timeout:?} (startup_timeout): the running configuration stays"
            )));
        }
        // The switch: every router in one pass, then the addresses that are
        // no longer configured close.
        self.servers.extend(fresh);
        let mut routers = built.routers;
        let mut gone = BTreeMap::new();
        for (addr, served) in std::mem::take(&mut self.servers) {
            match routers.remove(&addr) {
                Some(router) => {
                    served.0.set_zones(router.zones());
                    served.1.store(Arc::new(router));
                    self.servers.insert(addr, served);
                }
                None => {
                    gone.insert(addr, served);
                }
            }
        }
        shutdown_all(gone).await;
        self.cancel.cancel();
        self.cancel = CancellationToken::new();
        crate::plugins::hosts::spawn_reloads(built.hosts, self.cancel.clone());
        // The new chains' loop detectors probe afresh: a loop found under
        // the old configuration no longer holds `/ready` at 503.
        self.metrics.state.loop_detected.store(false, Ordering::Release);
        let bound = self.addrs();
        for (port, l) in built.loops {
            let Some(addr) = bound.iter().find(|a| a.port() == port || port == 0).copied() else { continue };
            tokio::task::spawn_blocking(move || l.probe(addr));
        }
        // Only the indexes the new chains use stay; the sources of the
        // others stop (their watches close, their updater threads end).
        let (used, dropped): (Vec<Zone>, Vec<Zone>) = kube.into_iter().partition(|z| built.used.contains(&z.config));
        dropped.iter().for_each(|z| z.stop.cancel());
        self.kube = used;
        self.health = built.health;
        self.ready = built.ready;
        self.prometheus = built.prometheus;
        self.reload = built.reload;
        Ok(())
    }

    pub async fn shutdown(mut self) {
        self.stop().await;
    }

    /// Closes every listener and stops the background tasks.
    pub async fn stop(&mut self) {
        self.cancel.cancel();
        self.kube.iter().for_each(|z| z.stop.cancel());
        shutdown_all(std::mem::take(&mut self.servers)).await;
    }
}

async fn shutdown_all(servers: BTreeMap<SocketAddr, (Server, Routes)>) {
    for (_, (s, _)) in servers {
        s.shutdown().await;
    }
}

/// Reads the Corefile every `reload` interval (plus up to `jitter`) and
/// applies it when what it says changed: its text, an imported file (k3s's
/// and AKS's `coredns-custom`), a resolv.conf of `forward`; the ConfigMap's
/// `..data` symlink swap included, since the path is read afresh each time. A Corefile that does
/// not parse or start keeps the running configuration, is logged, and counts
/// `coredns_reload_failed_total`. `on_change` gets the new zone indexes.
/// `now` asks for a look at once (SIGHUP), with or without `reload`: a
/// look that finds nothing changed says so.
pub fn spawn_reload(
    path: std::path::PathBuf,
    default_port: u16,
    instance: Arc<tokio::sync::Mutex<Instance>>,
    now: Arc<tokio::sync::Notify>,
    on_change: impl Fn(Vec<Arc<ZoneIndex>>) + Send + 'static,
) {
    use std::hash::{Hash, Hasher};
    let digest = |text: &str| {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        text.hash(&mut h);
        h.finish()
    };
    // What a Corefile says once its imports (and the resolv.conf files of
    // `forward`) are read: a change in any of them counts, as in CoreDNS.
    let read = move |path: &std::path::Path| -> Result<(u64, corefile::Corefile), (u64, String)> {
        let env = |name: &str| std::env::var(name).ok();
        let opts = corefile::Options { default_port, env: &env };
        match corefile::parse_file(path, &opts) {
            Ok(cf) => Ok((digest(&format!("{cf:?}")), cf)),
            Err(e) => Err((digest(&e.to_string()), e.to_string())),
        }
    };
    tokio::spawn(async move {
        let mut last = match read(&path) {
            Ok((sum, _)) | Err((sum, _)) => sum,
        };
        loop {
            let every = instance.lock().await.reload.clone();
            let asked = match every {
                Some(every) => {
                    let jitter = every.jitter.as_millis() as u64;
                    let wait = every.interval + std::time::Duration::from_millis(rand::random_range(0..=jitter));
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => false,
                        _ = now.notified() => true,
                    }
                }
                None => {
                    now.notified().await;
                    true
                }
            };
            let parsed = tokio::task::spawn_blocking({
                let path = path.clone();
                move || read(&path)
            })
            .await
            .unwrap_or_else(|e| Err((0, e.to_string())));
            let sum = match &parsed {
                Ok((sum, _)) | Err((sum, _)) => *sum,
            };
            if sum == last {
                if asked {
                    tracing::info!(file = %path.display(), "SIGHUP: the Corefile has not changed");
                }
                continue;
            }
            last = sum;
            let parsed = parsed.map(|(_, cf)| cf).map_err(|(_, e)| e);
            let mut inst = instance.lock().await;
            let admin_before = (inst.health.as_ref().map(|h| h.addr), inst.ready, inst.prometheus.clone());
            let result = match parsed {
                Ok(cf) => inst.apply(&cf).await,
                Err(e) => Err(AppError::Other(e)),
            };
            let admin_after = (inst.health.as_ref().map(|h| h.addr), inst.ready, inst.prometheus.clone());
            if result.is_ok() && admin_before != admin_after {
                // The admin listeners are bound once, at start.
                tracing::warn!(
                    before = ?admin_before,
                    after = ?admin_after,
                    "plugin/reload: health, ready or prometheus moved: the old addresses keep serving until a restart"
                );
            }
            match result {
                Ok(()) => {
                    tracing::info!(file = %path.display(), "plugin/reload: Reloading complete");
                    on_change(inst.indexes());
                }
                Err(e) => {
                    inst.metrics.state.reload_failed.fetch_add(1, Ordering::Relaxed);
                    tracing::error!(
                        "plugin/reload: Corefile changed but reload failed: {e} (the running configuration stays)"
                    );
                }
            }
        }
    });
}
