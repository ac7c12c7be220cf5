//! Prometheus metrics, with CoreDNS's names where the meaning is the same
//! (`coredns_dns_requests_total`, `coredns_dns_responses_total`,
//! `coredns_dns_request_duration_seconds`, ...) so dashboards and alerts
//! made for CoreDNS keep working, plus clusterdns's own.
//!
//! The query path only bumps relaxed atomics in a [`QueryStats`] owned by
//! its UDP thread (or shared by the TCP tasks): no lock, no label lookup,
//! no allocation. A scrape sums them up and encodes them with
//! `prometheus-client`.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

/// The `server` label of a listening address, as CoreDNS writes it:
/// `dns://:53` when bound to every address, `dns://127.0.0.1:53` with `bind`.
pub fn server_label(addr: std::net::SocketAddr) -> String {
    if addr.ip().is_unspecified() { format!("dns://:{}", addr.port()) } else { format!("dns://{addr}") }
}

/// The query types CoreDNS counts by name; the rest are "other".
const TYPES: [(u16, &str); 10] = [
    (1, "A"),
    (28, "AAAA"),
    (33, "SRV"),
    (12, "PTR"),
    (5, "CNAME"),
    (6, "SOA"),
    (2, "NS"),
    (16, "TXT"),
    (255, "ANY"),
    (0, "other"),
];
/// Response codes by name (CoreDNS's `rcode` label values).
const RCODES: [(u16, &str); 8] = [
    (0, "NOERROR"),
    (1, "FORMERR"),
    (2, "SERVFAIL"),
    (3, "NXDOMAIN"),
    (4, "NOTIMP"),
    (5, "REFUSED"),
    (16, "BADVERS"),
    (u16::MAX, "other"),
];
/// CoreDNS's duration buckets: 0.25 ms doubling to 8.192 s.
const BUCKETS: usize = 16;

fn bucket_bound(i: usize) -> f64 {
    0.00025 * f64::from(1u32 << i)
}

/// The first bucket whose bound holds `took` (`le` semantics), or
/// `BUCKETS` for +Inf: integer arithmetic, as this runs for every query.
fn bucket_of(took: Duration) -> usize {
    // Bounds are 250 µs * 2^i: the bucket is ceil(log2(ceil(ns / 250 µs))).
    let q = took.as_nanos().div_ceil(250_000);
    let i = if q <= 1 { 0 } else { (u128::BITS - (q - 1).leading_zeros()) as usize };
    i.min(BUCKETS)
}

fn type_index(qtype: u16) -> usize {
    TYPES.iter().position(|(t, _)| *t == qtype).unwrap_or(TYPES.len() - 1)
}

fn rcode_index(rcode: u16) -> usize {
    RCODES.iter().position(|(r, _)| *r == rcode).unwrap_or(RCODES.len() - 1)
}

/// Panics anywhere in the process (`coredns_panics_total`): the binary's
/// panic hook counts them. A panic in a query's task or a watcher ends that
/// task only; this makes it visible.
pub static PANICS: AtomicU64 = AtomicU64::new(0);

/// What wrote a response: CoreDNS's `plugin` label, or the server itself
/// (FORMERR, REFUSED outside the zones: an empty label).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Source {
    Server,
    Kubernetes,
    Forward,
    Cache,
    Hosts,
    Template,
    Chaos,
    Any,
    Loop,
}

/// The label of each [`Source`], in its order.
const PLUGINS: [&str; 9] = ["", "kubernetes", "forward", "cache", "hosts", "template", "chaos", "any", "loop"];

/// CoreDNS's size buckets (bytes), for request and response sizes.
const SIZES: [u64; 14] = [0, 100, 200, 300, 400, 511, 1023, 2047, 4095, 8291, 16000, 32000, 48000, 64000];

fn size_bucket(len: usize) -> usize {
    // Most DNS messages fall in the first few buckets: test those first.
    match len {
        0 => 0,
        1..=100 => 1,
        101..=200 => 2,
        201..=300 => 3,
        301..=400 => 4,
        401..=511 => 5,
        _ => SIZES.iter().position(|b| len as u64 <= *b).unwrap_or(SIZES.len()),
    }
}

/// Server blocks counted apart per listener; a router with more puts the
/// rest in the last slot.
pub const BLOCKS: usize = 8;

/// The counters of one server block on one query path.
#[derive(Debug, Default)]
struct BlockStats {
    /// [family v4/v6][type]
    requests: [[AtomicU64; TYPES.len()]; 2],
    /// [plugin][rcode]
    responses: [[AtomicU64; RCODES.len()]; PLUGINS.len()],
    /// [type][bucket], plus the count above the last bound in `BUCKETS`.
    duration: [[AtomicU64; BUCKETS + 1]; TYPES.len()],
    duration_sum_ns: [AtomicU64; TYPES.len()],
    /// [bucket] of SIZES and above, and the sums.
    request_size: [AtomicU64; SIZES.len() + 1],
    response_size: [AtomicU64; SIZES.len() + 1],
    request_bytes: AtomicU64,
    response_bytes: AtomicU64,
}

/// What one answered question was, for [`QueryStats::record`].
#[derive(Clone, Copy, Debug)]
pub struct Answered {
    pub v6: bool,
    /// The server block's slot in the listener's router.
    pub block: usize,
    pub qtype: u16,
    pub rcode: u16,
    pub plugin: Source,
    pub took: Duration,
    pub request_len: usize,
    pub response_len: usize,
}

/// Counters of one query path (a UDP thread, or the TCP tasks).
#[derive(Debug)]
pub struct QueryStats {
    proto: &'static str,
    server: String,
    /// One thread writes (a UDP thread): counters are bumped with a plain
    /// load and store, no locked instruction. TCP tasks share theirs.
    single_writer: bool,
    /// The zone label of each block slot (set when the router changes).
    zones: Mutex<Vec<String>>,
    blocks: Box<[BlockStats; BLOCKS]>,
}

impl QueryStats {
    pub fn new(proto: &'static str, server: String, single_writer: bool) -> Self {
        QueryStats { proto, server, single_writer, zones: Mutex::new(vec![".".to_string()]), blocks: Box::default() }
    }

    /// Names the block slots (the router's zones, in slot order).
    pub fn set_zones(&self, zones: Vec<String>) {
        if let Ok(mut z) = self.zones.lock() {
            *z = zones;
        }
    }

    #[inline]
    fn bump(&self, c: &AtomicU64, v: u64) {
        if self.single_writer {
            c.store(c.load(Ordering::Relaxed).wrapping_add(v), Ordering::Relaxed);
        } else {
            c.fetch_add(v, Ordering::Relaxed);
        }
    }

    /// Records one answered query.
    pub fn record(&self, a: Answered) {
        let b = &self.blocks[a.block.min(BLOCKS - 1)];
        let t = type_index(a.qtype);
        self.bump(&b.requests[usize::from(a.v6)][t], 1);
        self.bump(&b.responses[a.plugin as usize][rcode_index(a.rcode)], 1);
        self.bump(&b.duration[t][bucket_of(a.took)], 1);
        self.bump(&b.duration_sum_ns[t], a.took.as_nanos() as u64);
        self.bump(&b.request_size[size_bucket(a.request_len)], 1);
        self.bump(&b.response_size[size_bucket(a.response_len)], 1);
        self.bump(&b.request_bytes, a.request_len as u64);
        self.bump(&b.response_bytes, a.response_len as u64);
    }
}

/// A histogram kept as plain counts, for metrics filled off the query path.
#[derive(Debug, Default)]
pub struct Histogram {
    counts: [AtomicU64; BUCKETS + 1],
    sum_ns: AtomicU64,
}

impl Histogram {
    pub fn observe(&self, took: Duration) {
        self.counts[bucket_of(took)].fetch_add(1, Ordering::Relaxed);
        self.sum_ns.fetch_add(took.as_nanos() as u64, Ordering::Relaxed);
    }

    fn snapshot(&self) -> (f64, u64, Vec<(f64, u64)>) {
        let counts: Vec<u64> = self.counts.iter().map(|c| c.load(Ordering::Relaxed)).collect();
        per_bucket(&counts, self.sum_ns.load(Ordering::Relaxed))
    }
}

/// (sum in seconds, count, (upper bound, count in that bucket alone)):
/// prometheus-client accumulates the buckets itself when it encodes them,
/// so they must not be cumulative here (they were, and `+Inf` read 3,558
/// for a `_count` of 212).
fn per_bucket(counts: &[u64], sum_ns: u64) -> (f64, u64, Vec<(f64, u64)>) {
    let buckets = counts
        .iter()
        .enumerate()
        .map(|(i, c)| (if i < BUCKETS { bucket_bound(i) } else { f64::INFINITY }, *c))
        .collect();
    (sum_ns as f64 / 1e9, counts.iter().sum(), buckets)
}

/// Values the rest of the server sets; read at scrape time.
#[derive(Debug, Default)]
pub struct State {
    /// Objects per kind in the model, names in the index.
    pub objects: Mutex<Vec<(&'static str, u64)>>,
    pub names: AtomicU64,
    /// Watch streams that failed and were retried.
    pub watch_restarts: AtomicU64,
    /// Unix time of the last complete list of every kind (0: never).
    pub last_sync: AtomicU64,
    pub ready: AtomicU64,
    /// Set by `loop` when it finds a forwarding loop (`/ready` says 503).
    pub loop_detected: Arc<std::sync::atomic::AtomicBool>,
    /// Corefile reloads that failed (`coredns_reload_failed_total`).
    pub reload_failed: AtomicU64,

    /// From a batch of cluster events to the new answers being served.
    pub update: Histogram,
    /// CoreDNS's `coredns_kubernetes_dns_programming_duration_seconds`: from
    /// an endpoint change in the cluster to the answer served, for headless
    /// Services with and without a selector.
    pub programming_selector: Histogram,
    pub programming_no_selector: Histogram,
}

/// One upstream of `forward` (CoreDNS's `to` label).
#[derive(Debug, Default)]
pub struct UpstreamStats {
    pub to: String,
    pub requests: AtomicU64,
    /// [rcode] of the replies, with their durations.
    responses: [Histogram; RCODES.len()],
    pub healthcheck_failures: AtomicU64,
    /// Replies dropped: another source address, ID or question.
    pub mismatched: AtomicU64,
}

impl UpstreamStats {
    pub fn observe(&self, rcode: u16, took: Duration) {
        self.responses[rcode_index(rcode)].observe(took);
    }
}

/// Every `forward` of every block: CoreDNS's metrics are per upstream.
#[derive(Debug, Default)]
pub struct ForwardStats {
    upstreams: Mutex<Vec<Arc<UpstreamStats>>>,
    pub healthcheck_broken: AtomicU64,
    pub max_concurrent_rejects: AtomicU64,
}

impl ForwardStats {
    /// The counters of upstream `to` (shared by every forwarder using it).
    pub fn upstream(&self, to: &str) -> Arc<UpstreamStats> {
        let Ok(mut ups) = self.upstreams.lock() else {
            return Arc::new(UpstreamStats { to: to.to_string(), ..Default::default() });
        };
        if let Some(u) = ups.iter().find(|u| u.to == to) {
            return u.clone();
        }
        let u = Arc::new(UpstreamStats { to: to.to_string(), ..Default::default() });
        ups.push(u.clone());
        u
    }
}

/// One `cache` (CoreDNS labels: server, zones, type).
#[derive(Debug, Default)]
pub struct CacheStats {
    pub server: String,
    pub zones: String,
    pub hits_success: AtomicU64,
    pub hits_denial: AtomicU64,
    pub misses: AtomicU64,
    pub served_stale: AtomicU64,
    pub prefetch: AtomicU64,
    pub evictions_success: Arc<AtomicU64>,
    pub evictions_denial: Arc<AtomicU64>,
    pub entries_success: AtomicU64,
    pub entries_denial: AtomicU64,
}

/// One series of a simple counter or gauge family, registered by the
/// stage that bumps it (a plugin's own metric).
#[derive(Debug)]
struct Row {
    name: &'static str,
    help: &'static str,
    gauge: bool,
    labels: Labels,
    value: Arc<AtomicU64>,
}

/// Every metric: the query paths' stats and the shared state.
#[derive(Debug, Default)]
pub struct Metrics {
    queries: Mutex<Vec<Arc<QueryStats>>>,
    pub state: State,
    pub forward: Arc<ForwardStats>,
    caches: Mutex<Vec<Arc<CacheStats>>>,
    rows: Mutex<Vec<Row>>,
}

impl Metrics {
    /// A new query path to count (one per UDP thread, one for TCP).
    pub fn query_stats(&self, proto: &'static str, server: String) -> Arc<QueryStats> {
        self.query_stats_with(proto, server, proto == "udp")
    }

    /// [`Metrics::query_stats`] for counters that several threads bump
    /// (a UDP socket's forwarded replies, finished on the runtime).
    pub fn query_stats_shared(&self, proto: &'static str, server: String) -> Arc<QueryStats> {
        self.query_stats_with(proto, server, false)
    }

    fn query_stats_with(&self, proto: &'static str, server: String, single_writer: bool) -> Arc<QueryStats> {
        let stats = Arc::new(QueryStats::new(proto, server, single_writer));
        if let Ok(mut q) = self.queries.lock() {
            q.push(stats.clone());
        }
        stats
    }

    /// The value of series `name{labels}` (registered on first use, shared
    /// after): a counter, or a gauge when `gauge`.
    pub fn row(&self, name: &'static str, help: &'static str, gauge: bool, labels: Labels) -> Arc<AtomicU64> {
        let Ok(mut rows) = self.rows.lock() else { return Arc::default() };
        if let Some(r) = rows.iter().find(|r| r.name == name && r.labels == labels) {
            return r.value.clone();
        }
        let value = Arc::new(AtomicU64::new(0));
        rows.push(Row { name, help, gauge, labels, value: value.clone() });
        value
    }

    /// The counters of a new `cache` (one per block that has one).
    /// A reloaded Corefile's cache with the same labels counts on (one
    /// series per label set, as Prometheus requires).
    pub fn cache_stats(&self, server: String, zones: String) -> Arc<CacheStats> {
        let Ok(mut caches) = self.caches.lock() else {
            return Arc::new(CacheStats { server, zones, ..Default::default() });
        };
        if let Some(c) = caches.iter().find(|c| c.server == server && c.zones == zones) {
            return c.clone();
        }
        let stats = Arc::new(CacheStats { server, zones, ..Default::default() });
        caches.push(stats.clone());
        stats
    }

    /// The Prometheus text exposition.
    pub fn render(self: &Arc<Self>) -> String {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(self.clone()));
        let mut out = String::new();
        if prometheus_client::encoding::prometheus_text::encode(&mut out, &registry).is_err() {
            out.clear();
        }
        out
    }
}

pub type Labels = Vec<(&'static str, String)>;

fn counter(enc: &mut DescriptorEncoder, name: &str, help: &str, rows: &[(Labels, u64)]) -> fmt::Result {
    let mut m = enc.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (labels, v) in rows {
        ConstCounter::new(*v).encode(m.encode_family(labels)?)?;
    }
    Ok(())
}

fn gauge(enc: &mut DescriptorEncoder, name: &str, help: &str, rows: &[(Labels, i64)]) -> fmt::Result {
    let mut m = enc.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (labels, v) in rows {
        ConstGauge::new(*v).encode(m.encode_family(labels)?)?;
    }
    Ok(())
}

type HistogramRow = (Labels, (f64, u64, Vec<(f64, u64)>));

fn histogram(enc: &mut DescriptorEncoder, name: &str, help: &str, rows: &[HistogramRow]) -> fmt::Result {
    let mut m = enc.encode_descriptor(name, help, None, MetricType::Histogram)?;
    for (labels, (sum, count, buckets)) in rows {
        m.encode_family(labels)?.encode_histogram::<Labels>(*sum, *count, buckets, None)?;
    }
    Ok(())
}

impl Collector for Metrics {
    fn encode(&self, mut enc: DescriptorEncoder) -> fmt::Result {
        let queries: Vec<Arc<QueryStats>> = self.queries.lock().map(|q| q.clone()).unwrap_or_default();
        // Sum the query paths per (server, zone, proto, ...).
        let mut requests: Vec<(Labels, u64)> = Vec::new();
        let mut responses: Vec<(Labels, u64)> = Vec::new();
        let mut durations: Vec<(Labels, Vec<u64>, u64)> = Vec::new();
        let mut req_sizes: Vec<(Labels, Vec<u64>, u64)> = Vec::new();
        let mut resp_sizes: Vec<(Labels, Vec<u64>, u64)> = Vec::new();
        let add = |rows: &mut Vec<(Labels, u64)>, labels: Labels, v: u64| match rows.iter_mut().find(|r| r.0 == labels)
        {
            Some(r) => r.1 += v,
            None => rows.push((labels, v)),
        };
        let add_hist = |rows: &mut Vec<(Labels, Vec<u64>, u64)>, labels: Labels, counts: Vec<u64>, sum: u64| {
            if counts.iter().all(|c| *c == 0) {
                return;
            }
            match rows.iter_mut().find(|d| d.0 == labels) {
                Some(d) => {
                    d.1.iter_mut().zip(&counts).for_each(|(a, b)| *a += b);
                    d.2 += sum;
                }
                None => rows.push((labels, counts, sum)),
            }
        };
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        for q in &queries {
            let zones = q.zones.lock().map(|z| z.clone()).unwrap_or_default();
            for (slot, b) in q.blocks.iter().enumerate() {
                let zone = zones.get(slot).or(zones.last()).cloned().unwrap_or_else(|| ".".to_string());
                let base = || vec![("server", q.server.clone()), ("zone", zone.clone()), ("view", String::new())];
                for (f, family) in ["1", "2"].iter().enumerate() {
                    for (t, (_, tname)) in TYPES.iter().enumerate() {
                        let v = load(&b.requests[f][t]);
                        if v > 0 {
                            let mut l = base();
                            l.extend([
                                ("proto", q.proto.to_string()),
                                ("family", family.to_string()),
                                ("type", tname.to_string()),
                            ]);
                            add(&mut requests, l, v);
                        }
                    }
                }
                for (p, plugin) in PLUGINS.iter().enumerate() {
                    for (r, (_, rname)) in RCODES.iter().enumerate() {
                        let v = load(&b.responses[p][r]);
                        if v > 0 {
                            let mut l = base();
                            l.extend([("rcode", rname.to_string()), ("plugin", plugin.to_string())]);
                            add(&mut responses, l, v);
                        }
                    }
                }
                for (t, (_, tname)) in TYPES.iter().enumerate() {
                    let mut l = base();
                    l.push(("type", tname.to_string()));
                    add_hist(&mut durations, l, b.duration[t].iter().map(load).collect(), load(&b.duration_sum_ns[t]));
                }
                let mut l = base();
                l.push(("proto", q.proto.to_string()));
                add_hist(&mut req_sizes, l.clone(), b.request_size.iter().map(load).collect(), load(&b.request_bytes));
                add_hist(&mut resp_sizes, l, b.response_size.iter().map(load).collect(), load(&b.response_bytes));
            }
        }
        counter(
            &mut enc,
            "coredns_dns_requests",
            "Counter of DNS requests made per zone, protocol and family.",
            &requests,
        )?;
        counter(&mut enc, "coredns_dns_responses", "Counter of response status codes.", &responses)?;
        let rows: Vec<HistogramRow> = durations.into_iter().map(|(l, c, s)| (l, per_bucket(&c, s))).collect();
        histogram(
            &mut enc,
            "coredns_dns_request_duration_seconds",
            "Histogram of the time (in seconds) each request took.",
            &rows,
        )?;
        let sizes = |rows: Vec<(Labels, Vec<u64>, u64)>| -> Vec<HistogramRow> {
            rows.into_iter()
                .map(|(l, c, sum)| {
                    let buckets = c
                        .iter()
                        .enumerate()
                        .map(|(i, n)| (SIZES.get(i).map_or(f64::INFINITY, |b| *b as f64), *n))
                        .collect();
                    (l, (sum as f64, c.iter().sum(), buckets))
                })
                .collect()
        };
        histogram(
            &mut enc,
            "coredns_dns_request_size_bytes",
            "Size of the EDNS0 UDP buffer in bytes (64K for TCP).",
            &sizes(req_sizes),
        )?;
        histogram(
            &mut enc,
            "coredns_dns_response_size_bytes",
            "Size of the returned response in bytes.",
            &sizes(resp_sizes),
        )?;
        self.encode_forward(&mut enc)?;
        self.encode_cache(&mut enc)?;
        self.encode_rows(&mut enc)?;
        let st = &self.state;
        histogram(
            &mut enc,
            "coredns_kubernetes_dns_programming_duration_seconds",
            "Histogram of the time (in seconds) it took to program a dns instance.",
            &[
                (vec![("service_kind", "headless_with_selector".to_string())], st.programming_selector.snapshot()),
                (
                    vec![("service_kind", "headless_without_selector".to_string())],
                    st.programming_no_selector.snapshot(),
                ),
            ],
        )?;
        histogram(
            &mut enc,
            "clusterdns_update_duration_seconds",
            "Time from a batch of cluster events arriving to its answers being served.",
            &[(vec![], st.update.snapshot())],
        )?;
        let objects: Vec<(Labels, i64)> = st
            .objects
            .lock()
            .map(|o| o.iter().map(|(k, v)| (vec![("kind", k.to_string())], *v as i64)).collect())
            .unwrap_or_default();
        gauge(&mut enc, "clusterdns_objects", "Objects in the cluster model, per kind.", &objects)?;
        gauge(
            &mut enc,
            "clusterdns_names",
            "Names the server answers (empty non-terminals included).",
            &[(vec![], st.names.load(Ordering::Relaxed) as i64)],
        )?;
        counter(
            &mut enc,
            "clusterdns_watch_restarts",
            "Kubernetes API watches that failed and were retried.",
            &[(vec![], st.watch_restarts.load(Ordering::Relaxed))],
        )?;
        gauge(
            &mut enc,
            "clusterdns_last_sync_timestamp_seconds",
            "Unix time every watched kind was last listed completely.",
            &[(vec![], st.last_sync.load(Ordering::Relaxed) as i64)],
        )?;
        counter(
            &mut enc,
            "coredns_reload_failed",
            "Counter of the number of failed reload attempts.",
            &[(vec![], st.reload_failed.load(Ordering::Relaxed))],
        )?;
        counter(
            &mut enc,
            "coredns_panics",
            "A metrics that counts the number of panics.",
            &[(vec![], PANICS.load(Ordering::Relaxed))],
        )?;
        gauge(
            &mut enc,
            "coredns_build_info",
            "A metric with a constant '1' value labeled by version, revision, and goversion from which CoreDNS was built.",
            &[(
                vec![
                    ("version", env!("CARGO_PKG_VERSION").to_string()),
                    ("revision", String::new()),
                    ("goversion", "rust".to_string()),
                ],
                1,
            )],
        )?;
        gauge(
            &mut enc,
            "clusterdns_loop_detected",
            "1 once the loop plugin has found a forwarding loop (forwarded names then get SERVFAIL).",
            &[(vec![], i64::from(st.loop_detected.load(Ordering::Relaxed)))],
        )?;
        gauge(
            &mut enc,
            "clusterdns_ready",
            "1 once the cluster state is loaded and the server is not shutting down.",
            &[(vec![], st.ready.load(Ordering::Relaxed) as i64)],
        )?;
        Ok(())
    }
}

impl Metrics {
    fn encode_rows(&self, enc: &mut DescriptorEncoder) -> fmt::Result {
        let Ok(rows) = self.rows.lock() else { return Ok(()) };
        let mut names: Vec<&'static str> = Vec::new();
        for r in rows.iter() {
            if !names.contains(&r.name) {
                names.push(r.name);
            }
        }
        for name in names {
            let family: Vec<&Row> = rows.iter().filter(|r| r.name == name).collect();
            let (help, gauge) = (family[0].help, family[0].gauge);
            if gauge {
                let values: Vec<(Labels, i64)> =
                    family.iter().map(|r| (r.labels.clone(), r.value.load(Ordering::Relaxed) as i64)).collect();
                self::gauge(enc, name, help, &values)?;
            } else {
                let values: Vec<(Labels, u64)> =
                    family.iter().map(|r| (r.labels.clone(), r.value.load(Ordering::Relaxed))).collect();
                counter(enc, name, help, &values)?;
            }
        }
        Ok(())
    }

    fn encode_forward(&self, enc: &mut DescriptorEncoder) -> fmt::Result {
        let ups: Vec<Arc<UpstreamStats>> = self.forward.upstreams.lock().map(|u| u.clone()).unwrap_or_default();
        let to = |u: &UpstreamStats| vec![("to", u.to.clone())];
        let per =
            |f: &dyn Fn(&UpstreamStats) -> u64| -> Vec<(Labels, u64)> { ups.iter().map(|u| (to(u), f(u))).collect() };
        counter(
            enc,
            "coredns_forward_requests",
            "Counter of requests made per upstream.",
            &per(&|u| u.requests.load(Ordering::Relaxed)),
        )?;
        let mut responses = Vec::new();
        let mut durations = Vec::new();
        for u in &ups {
            for (r, (_, rname)) in RCODES.iter().enumerate() {
                let (sum, count, buckets) = u.responses[r].snapshot();
                if count > 0 {
                    let mut l = to(u);
                    l.push(("rcode", rname.to_string()));
                    responses.push((l.clone(), count));
                    durations.push((l, (sum, count, buckets)));
                }
            }
        }
        counter(enc, "coredns_forward_responses", "Counter of responses received per upstream.", &responses)?;
        histogram(
            enc,
            "coredns_forward_request_duration_seconds",
            "Histogram of the time each request took.",
            &durations,
        )?;
        counter(
            enc,
            "coredns_forward_healthcheck_failures",
            "Counter of the number of failed healthchecks.",
            &per(&|u| u.healthcheck_failures.load(Ordering::Relaxed)),
        )?;
        counter(
            enc,
            "clusterdns_forward_mismatched_replies",
            "Upstream replies dropped: wrong source address, ID or question.",
            &per(&|u| u.mismatched.load(Ordering::Relaxed)),
        )?;
        counter(
            enc,
            "coredns_forward_healthcheck_broken",
            "Counter of the number of complete failures of the healthchecks.",
            &[(vec![], self.forward.healthcheck_broken.load(Ordering::Relaxed))],
        )?;
        counter(
            enc,
            "coredns_forward_max_concurrent_rejects",
            "Counter of the number of queries rejected because the concurrent queries were at maximum.",
            &[(vec![], self.forward.max_concurrent_rejects.load(Ordering::Relaxed))],
        )
    }

    fn encode_cache(&self, enc: &mut DescriptorEncoder) -> fmt::Result {
        let caches: Vec<Arc<CacheStats>> = self.caches.lock().map(|c| c.clone()).unwrap_or_default();
        if caches.is_empty() {
            return Ok(());
        }
        let base =
            |c: &CacheStats| vec![("server", c.server.clone()), ("zones", c.zones.clone()), ("view", String::new())];
        let typed = |c: &CacheStats, t: &str| {
            let mut l = base(c);
            l.insert(1, ("type", t.to_string()));
            l
        };
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let mut entries = Vec::new();
        let mut hits = Vec::new();
        let mut evictions = Vec::new();
        for c in &caches {
            entries.push((typed(c, "success"), load(&c.entries_success) as i64));
            entries.push((typed(c, "denial"), load(&c.entries_denial) as i64));
            hits.push((typed(c, "success"), load(&c.hits_success)));
            hits.push((typed(c, "denial"), load(&c.hits_denial)));
            evictions.push((typed(c, "success"), load(&c.evictions_success)));
            evictions.push((typed(c, "denial"), load(&c.evictions_denial)));
        }
        let each =
            |f: &dyn Fn(&CacheStats) -> u64| -> Vec<(Labels, u64)> { caches.iter().map(|c| (base(c), f(c))).collect() };
        gauge(enc, "coredns_cache_entries", "The number of elements in the cache.", &entries)?;
        counter(enc, "coredns_cache_hits", "The count of cache hits.", &hits)?;
        counter(enc, "coredns_cache_misses", "The count of cache misses.", &each(&|c| load(&c.misses)))?;
        counter(
            enc,
            "coredns_cache_prefetch",
            "The number of times the cache has prefetched a cached item.",
            &each(&|c| load(&c.prefetch)),
        )?;
        counter(
            enc,
            "coredns_cache_served_stale",
            "The number of requests served from stale cache entries.",
            &each(&|c| load(&c.served_stale)),
        )?;
        counter(enc, "coredns_cache_evictions", "The count of cache evictions.", &evictions)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_hold_their_upper_bound() {
        let us = Duration::from_micros;
        let cases = [(us(0), 0), (us(1), 0), (us(250), 0), (us(251), 1), (us(500), 1), (us(501), 2), (us(1000), 2)];
        for (took, want) in cases {
            assert_eq!(bucket_of(took), want, "{took:?}");
        }
        // Every bucket against the float bounds it is printed with.
        for i in 0..BUCKETS {
            let bound = Duration::from_secs_f64(bucket_bound(i));
            assert_eq!(bucket_of(bound), i, "bound {i}");
            assert_eq!(bucket_of(bound + Duration::from_nanos(1)), i + 1, "above bound {i}");
        }
        assert_eq!(bucket_of(Duration::from_secs(60)), BUCKETS);
    }
}
