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

/// Counters of one query path (a UDP thread, or the TCP tasks).
#[derive(Debug)]
pub struct QueryStats {
    proto: &'static str,
    server: String,
    /// [family v4/v6][type]
    requests: [[AtomicU64; TYPES.len()]; 2],
    responses: [AtomicU64; RCODES.len()],
    /// [type][bucket], plus the count above the last bound in `BUCKETS`.
    duration: [[AtomicU64; BUCKETS + 1]; TYPES.len()],
    duration_sum_ns: [AtomicU64; TYPES.len()],
}

impl QueryStats {
    pub fn new(proto: &'static str, server: String) -> Self {
        QueryStats {
            proto,
            server,
            requests: Default::default(),
            responses: Default::default(),
            duration: Default::default(),
            duration_sum_ns: Default::default(),
        }
    }

    /// Records one answered query.
    pub fn record(&self, v6: bool, qtype: u16, rcode: u16, took: Duration) {
        let t = type_index(qtype);
        self.requests[usize::from(v6)][t].fetch_add(1, Ordering::Relaxed);
        self.responses[rcode_index(rcode)].fetch_add(1, Ordering::Relaxed);
        self.duration[t][bucket_of(took)].fetch_add(1, Ordering::Relaxed);
        self.duration_sum_ns[t].fetch_add(took.as_nanos() as u64, Ordering::Relaxed);
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
    /// From a batch of cluster events to the new answers being served.
    pub update: Histogram,
    /// CoreDNS's `coredns_kubernetes_dns_programming_duration_seconds`: from
    /// an endpoint change in the cluster to the answer served, for headless
    /// Services with and without a selector.
    pub programming_selector: Histogram,
    pub programming_no_selector: Histogram,
}

/// Every metric: the query paths' stats and the shared state.
#[derive(Debug, Default)]
pub struct Metrics {
    queries: Mutex<Vec<Arc<QueryStats>>>,
    pub state: State,
}

impl Metrics {
    /// A new query path to count (one per UDP thread, one for TCP).
    pub fn query_stats(&self, proto: &'static str, server: String) -> Arc<QueryStats> {
        let stats = Arc::new(QueryStats::new(proto, server));
        if let Ok(mut q) = self.queries.lock() {
            q.push(stats.clone());
        }
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

type Labels = Vec<(&'static str, String)>;

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
        // Sum the query paths per (server, proto).
        let mut requests: Vec<(Labels, u64)> = Vec::new();
        let mut responses: Vec<(Labels, u64)> = Vec::new();
        let mut durations: Vec<(Labels, Vec<u64>, u64)> = Vec::new();
        let base =
            |q: &QueryStats| vec![("server", q.server.clone()), ("zone", ".".to_string()), ("view", String::new())];
        let add = |rows: &mut Vec<(Labels, u64)>, labels: Labels, v: u64| match rows.iter_mut().find(|r| r.0 == labels)
        {
            Some(r) => r.1 += v,
            None => rows.push((labels, v)),
        };
        for q in &queries {
            for (f, family) in ["1", "2"].iter().enumerate() {
                for (t, (_, tname)) in TYPES.iter().enumerate() {
                    let v = q.requests[f][t].load(Ordering::Relaxed);
                    if v > 0 {
                        let mut l = base(q);
                        l.extend([
                            ("proto", q.proto.to_string()),
                            ("family", family.to_string()),
                            ("type", tname.to_string()),
                        ]);
                        add(&mut requests, l, v);
                    }
                }
            }
            for (r, (_, rname)) in RCODES.iter().enumerate() {
                let v = q.responses[r].load(Ordering::Relaxed);
                if v > 0 {
                    let mut l = base(q);
                    l.extend([("rcode", rname.to_string()), ("plugin", "kubernetes".to_string())]);
                    add(&mut responses, l, v);
                }
            }
            for (t, (_, tname)) in TYPES.iter().enumerate() {
                let counts: Vec<u64> = q.duration[t].iter().map(|c| c.load(Ordering::Relaxed)).collect();
                if counts.iter().all(|c| *c == 0) {
                    continue;
                }
                let sum = q.duration_sum_ns[t].load(Ordering::Relaxed);
                let mut l = base(q);
                l.push(("type", tname.to_string()));
                match durations.iter_mut().find(|d| d.0 == l) {
                    Some(d) => {
                        d.1.iter_mut().zip(&counts).for_each(|(a, b)| *a += b);
                        d.2 += sum;
                    }
                    None => durations.push((l, counts, sum)),
                }
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
        gauge(
            &mut enc,
            "clusterdns_ready",
            "1 once the cluster state is loaded and the server is not shutting down.",
            &[(vec![], st.ready.load(Ordering::Relaxed) as i64)],
        )?;
        Ok(())
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
