//! The cost of one change, where it used to grow with the size of what it
//! touched (issue 8), timed in process on the updater (event applied to
//! the model and the DNS index, so the next query sees it):
//! 1. N Services sharing one reverse name (tenants bound to one external
//!    address) loaded in one batch and one by one;
//! 2. one endpoint changed in a headless Service of 10,000 endpoints in
//!    100 slices.
//!
//! `cargo bench --bench updates` (prints figures; asserts nothing: the
//! answers are held by the tests in `records::index`).

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clusterdns::model::*;
use clusterdns::records::{PodMode, Updater, ZoneConfig, ZoneIndex};
use clusterdns::source::ALL_KINDS;

fn ns(name: &str) -> Object {
    Object::new_namespace(name.into())
}

fn headless(namespace: &str, name: &str) -> Object {
    Object::Service(Arc::new(Service {
        namespace: namespace.into(),
        name: name.into(),
        kind: ServiceKind::Headless,
        ports: Arc::new([ServicePort { name: "http".into(), protocol: Protocol::Tcp, port: 80, target_port: None }]),
        selector: None,
        publish_not_ready: false,
    }))
}

fn slice(namespace: &str, svc: &str, name: &str, ips: &[IpAddr]) -> Object {
    Object::EndpointSlice(Arc::new(EndpointSlice {
        namespace: namespace.into(),
        name: name.into(),
        service: Some(svc.into()),
        group: EndpointGroup {
            endpoints: ips.iter().map(|ip| Endpoint::new(vec![*ip].into(), true, None, None)).collect(),
            ports: Arc::new([EndpointPort { name: "http".into(), protocol: Protocol::Tcp, port: 8080 }]),
        },
    }))
}

fn updater() -> (Arc<ZoneIndex>, Updater) {
    let index = ZoneIndex::new(ZoneConfig::new("cluster.local", 5, PodMode::Disabled).unwrap());
    let u = Updater::new(index.clone(), Cluster::new());
    (index, u)
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

/// `n` tenants' Services, each with a slice holding the one shared address.
fn shared_name(n: usize) {
    let ip: IpAddr = "203.0.113.7".parse().unwrap();
    let tenant = |i: usize| [headless("t", &format!("s{i}")), slice("t", &format!("s{i}"), &format!("s{i}-x"), &[ip])];
    let (_, mut u) = updater();
    let objects: Vec<Object> = std::iter::once(ns("t")).chain((0..n).flat_map(tenant)).collect();
    let t = Instant::now();
    u.apply(vec![Event::Reset { kinds: ALL_KINDS.to_vec(), objects }]);
    let batch = t.elapsed();
    let (_, mut u) = updater();
    u.apply(vec![Event::Reset { kinds: ALL_KINDS.to_vec(), objects: vec![ns("t")] }]);
    let t = Instant::now();
    for i in 0..n {
        u.apply(tenant(i).into_iter().map(Event::Apply).collect());
    }
    let one_by_one = t.elapsed();
    println!(
        "{n:>5} Services sharing one PTR name: loaded in one batch {}, one by one {} ({} per Service)",
        ms(batch),
        ms(one_by_one),
        ms(one_by_one / n as u32)
    );
}

fn big_headless() {
    let (index, mut u) = updater();
    let ip =
        |i: usize| -> IpAddr { format!("10.{}.{}.{}", 100 + i / 65536, (i / 256) % 256, i % 256).parse().unwrap() };
    let slices = |k: usize, shift: usize| {
        let ips: Vec<IpAddr> = (k * 100..k * 100 + 100).map(|i| ip(i + shift)).collect();
        slice("big", "db", &format!("db-{k:03}"), &ips)
    };
    let mut objects = vec![ns("big"), headless("big", "db")];
    objects.extend((0..100).map(|k| slices(k, 0)));
    let t = Instant::now();
    u.apply(vec![Event::Reset { kinds: ALL_KINDS.to_vec(), objects }]);
    println!("headless Service of 10,000 endpoints in 100 slices: loaded in {}", ms(t.elapsed()));
    let rounds: usize = std::env::var("ROUNDS").ok().and_then(|r| r.parse().ok()).unwrap_or(20);
    let mut times = Vec::new();
    for round in 0..rounds {
        // One endpoint of slice `round` gets a new address.
        let k = round % 100;
        let mut ips: Vec<IpAddr> = (k * 100..k * 100 + 100).map(ip).collect();
        ips[7] = format!("10.200.{}.{}", round / 256, round % 256).parse().unwrap();
        let changed = slice("big", "db", &format!("db-{k:03}"), &ips);
        let t = Instant::now();
        u.apply(vec![Event::Apply(changed)]);
        times.push(t.elapsed());
    }
    times.sort();
    println!(
        "  one endpoint changed: median {}, max {} ({rounds} changes; {} names)",
        ms(times[times.len() / 2]),
        ms(times[times.len() - 1]),
        index.len()
    );
}

fn main() {
    // `ROUNDS=2000 cargo bench --bench updates -- big` (for a profiler).
    if std::env::args().any(|a| a == "big") {
        return big_headless();
    }
    for n in [250, 1000, 2000] {
        shared_name(n);
    }
    big_headless();
}
