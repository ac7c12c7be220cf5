//! The chain beyond the cluster zone: `forward` to a fake upstream on
//! 127.0.0.x (faults included) and `cache` in front of it, over real
//! sockets, from Corefile text.

mod common;

use std::time::{Duration, Instant};

use common::upstream::{Fault, Upstream};
use common::{answers, query, query_tcp, serve};
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;

fn ttls(msg: &Message) -> Vec<u32> {
    msg.answers.iter().map(|r| r.ttl).collect()
}

fn kube_block(forward: &str, cache: &str) -> String {
    common::kube_corefile(&format!("    {forward}\n    {cache}"))
}

fn external_zone(up: &Upstream) {
    up.internet();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_names_stay_local_and_the_rest_is_forwarded_and_cached() {
    let up = Upstream::start("127.0.0.2", 0);
    external_zone(&up);
    let (inst, metrics) = serve(&kube_block(&format!("forward . {}", up.addr), "cache 30")).await;
    let dns = inst.addrs()[0];

    // A cluster name: answered here, never asked upstream.
    let m = query(dns, "kafka.default.svc.cluster.local.", RecordType::A).await;
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert!(!m.answers.is_empty());
    let m = query(dns, "nope.default.svc.cluster.local.", RecordType::A).await;
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain, "no fallthrough for the cluster domain");
    assert_eq!(up.received.load(std::sync::atomic::Ordering::Relaxed), 0, "{:?}", up.asked);

    // An external name, then a CNAME chain from upstream.
    let m = query(dns, "h1.example.com.", RecordType::A).await;
    assert_eq!(answers(&m), vec!["h1.example.com. A 203.0.113.1"]);
    assert!(m.metadata.recursion_available);
    let m = query(dns, "WWW.Example.com.", RecordType::A).await;
    assert_eq!(m.queries[0].name().to_ascii(), "WWW.Example.com.", "question echoed as asked");
    assert_eq!(
        answers(&m),
        vec![
            "h1.example.com. A 203.0.113.1",
            "h2.example.com. CNAME h1.example.com.",
            "www.example.com. CNAME h2.example.com."
        ]
    );
    // A reverse name outside the cluster falls through to forward.
    let m = query(dns, "9.113.0.203.in-addr.arpa.", RecordType::PTR).await;
    assert_eq!(answers(&m), vec!["9.113.0.203.in-addr.arpa. PTR h1.example.com."]);
    // NXDOMAIN from upstream passes through with its SOA.
    let m = query(dns, "missing.example.com.", RecordType::A).await;
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    assert_eq!(m.authorities.len(), 1);

    // Cached: asked again, upstream sees nothing new; TTLs count down.
    let before = up.count("h1.example.com.");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let m = query(dns, "h1.example.com.", RecordType::A).await;
    assert_eq!(up.count("h1.example.com."), before, "served from the cache");
    assert_eq!(answers(&m), vec!["h1.example.com. A 203.0.113.1"]);
    assert!(ttls(&m)[0] < 30, "TTL capped at 30 and counting down: {:?}", ttls(&m));
    // Over TCP too, and AAAA is its own entry.
    let m = query_tcp(dns, "h1.example.com.", RecordType::AAAA).await;
    assert_eq!(answers(&m), vec!["h1.example.com. AAAA 2001:db8::1"]);
    assert_eq!(up.count("h1.example.com."), before + 1);

    let body = metrics.render();
    let to = up.addr.to_string();
    assert!(body.contains(&format!("coredns_forward_requests_total{{to=\"{to}\"}} 5")), "{body}");
    assert!(body.contains("coredns_cache_hits_total{server="), "{body}");
    inst.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_upstream_is_skipped_and_health_checked() {
    let dead = Upstream::start("127.0.0.3", 0);
    dead.set_fault(Fault::Silent);
    let live = Upstream::start("127.0.0.4", 0);
    external_zone(&live);
    let fwd = format!("forward . {} {} {{\n policy sequential\n health_check 100ms\n }}", dead.addr, live.addr);
    let (inst, metrics) = serve(&kube_block(&fwd, "")).await;
    let dns = inst.addrs()[0];
    // The first question waits out the dead one's read timeout (2 s), then
    // the live one answers.
    let started = Instant::now();
    let m = query_tcp(dns, "h1.example.com.", RecordType::A).await;
    assert_eq!(answers(&m), vec!["h1.example.com. A 203.0.113.1"]);
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    // Health checks mark it down (more than max_fails=2 failed probes, each
    // waiting 1 s for an answer)...
    let failures = format!("coredns_forward_healthcheck_failures_total{{to=\"{}\"}} ", dead.addr);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let body = metrics.render();
        let n: f64 = body.lines().find_map(|l| l.strip_prefix(&failures)).unwrap_or("0").parse().unwrap();
        if n >= 3.0 {
            break;
        }
        assert!(Instant::now() < deadline, "{body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // ...so it is skipped at once now.
    let started = Instant::now();
    let m = query(dns, "www.example.com.", RecordType::A).await;
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert!(started.elapsed() < Duration::from_millis(500), "{:?}", started.elapsed());
    inst.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_upstream_answers_servfail_in_bounded_time() {
    let dead = Upstream::start("127.0.0.5", 0);
    dead.set_fault(Fault::Silent);
    let (inst, _) = serve(&kube_block(&format!("forward . {}", dead.addr), "")).await;
    let dns = inst.addrs()[0];
    let started = Instant::now();
    let m = query_tcp(dns, "h1.example.com.", RecordType::A).await;
    assert_eq!(m.metadata.response_code, ResponseCode::ServFail);
    assert!(started.elapsed() < Duration::from_secs(6), "{:?}", started.elapsed());
    // The cluster zone is untouched by it.
    let m = query(dns, "kafka.default.svc.cluster.local.", RecordType::A).await;
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    inst.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_replies_are_retried_over_tcp() {
    let up = Upstream::start("127.0.0.6", 0);
    external_zone(&up);
    up.set_fault(Fault::Truncate);
    let (inst, _) = serve(&kube_block(&format!("forward . {}", up.addr), "")).await;
    let m = query(inst.addrs()[0], "h1.example.com.", RecordType::A).await;
    assert_eq!(answers(&m), vec!["h1.example.com. A 203.0.113.1"]);
    assert!(!m.metadata.truncation);
    assert_eq!(up.count("h1.example.com."), 2, "once over UDP, once over TCP");
    inst.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spoofed_replies_are_ignored_and_counted() {
    let up = Upstream::start("127.0.0.7", 0);
    external_zone(&up);
    let (inst, metrics) = serve(&kube_block(&format!("forward . {}", up.addr), "")).await;
    let dns = inst.addrs()[0];
    for (fault, name) in [
        (Fault::WrongIdFirst, "h1.example.com."),
        (Fault::WrongQuestionFirst, "www.example.com."),
        (Fault::OtherSourceFirst, "h2.example.com."),
    ] {
        up.set_fault(fault);
        let m = query(dns, name, RecordType::A).await;
        assert_eq!(m.metadata.response_code, ResponseCode::NoError, "{fault:?}");
        assert!(answers(&m).contains(&"h1.example.com. A 203.0.113.1".to_string()), "{fault:?}: {m:?}");
    }
    let body = metrics.render();
    let line = format!("clusterdns_forward_mismatched_replies_total{{to=\"{}\"}} 3", up.addr);
    assert!(body.contains(&line), "{body}");
    inst.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_concurrent_overflow_is_refused() {
    let up = Upstream::start("127.0.0.8", 0);
    external_zone(&up);
    up.set_fault(Fault::Slow(Duration::from_millis(1500)));
    let fwd = format!("forward . {} {{\n max_concurrent 2\n }}", up.addr);
    let (inst, metrics) = serve(&kube_block(&fwd, "")).await;
    let dns = inst.addrs()[0];
    let asks: Vec<_> = (0..6)
        .map(|i| {
            let name = format!("q{i}.example.com.");
            tokio::spawn(async move { query(dns, &name, RecordType::A).await })
        })
        .collect();
    let mut refused = 0;
    for a in asks {
        if a.await.unwrap().metadata.response_code == ResponseCode::Refused {
            refused += 1;
        }
    }
    assert_eq!(refused, 4, "two in flight, four refused");
    assert!(metrics.render().contains("coredns_forward_max_concurrent_rejects_total 4"));
    inst.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn negative_answers_are_cached_by_the_soa_minimum() {
    let up = Upstream::start("127.0.0.9", 0);
    external_zone(&up);
    up.set_soa_minimum(1);
    let cache = "cache 30 {\n denial 9984 30 1\n }";
    let (inst, _) = serve(&kube_block(&format!("forward . {}", up.addr), cache)).await;
    let dns = inst.addrs()[0];
    for _ in 0..3 {
        let m = query(dns, "gone.example.com.", RecordType::A).await;
        assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    }
    assert_eq!(up.count("gone.example.com."), 1, "cached for min(SOA TTL, SOA MINIMUM) = 1 s");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    query(dns, "gone.example.com.", RecordType::A).await;
    assert_eq!(up.count("gone.example.com."), 2, "expired after 1 s");
    inst.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cache_disable_and_serve_stale() {
    let up = Upstream::start("127.0.0.10", 0);
    external_zone(&up);
    up.a("short.example.net.", 1, "198.51.100.9");
    let cache = "cache 30 {\n success 9984 30 1\n disable denial example.com\n serve_stale 1h\n }";
    let (inst, metrics) = serve(&kube_block(&format!("forward . {}", up.addr), cache)).await;
    let dns = inst.addrs()[0];
    for _ in 0..2 {
        query(dns, "gone.example.com.", RecordType::A).await;
    }
    assert_eq!(up.count("gone.example.com."), 2, "denial disabled for example.com");
    let m = query(dns, "short.example.net.", RecordType::A).await;
    assert_eq!(answers(&m), vec!["short.example.net. A 198.51.100.9"]);
    // Expired, and the upstream is gone: the stale answer, TTL 0.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    up.set_fault(Fault::Silent);
    let m = query_tcp(dns, "short.example.net.", RecordType::A).await;
    assert_eq!(answers(&m), vec!["short.example.net. A 198.51.100.9"]);
    assert_eq!(ttls(&m), vec![0]);
    assert!(metrics.render().contains("coredns_cache_served_stale_total{server="));
    inst.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prefetch_refreshes_a_popular_entry_before_it_expires() {
    let up = Upstream::start("127.0.0.11", 0);
    up.a("hot.example.com.", 300, "203.0.113.7");
    // Entries live 2 s; fetched again once 2 hits came and 50% is left.
    let cache = "cache 30 {\n success 9984 2 1\n prefetch 2 1m 50%\n }";
    let (inst, metrics) = serve(&kube_block(&format!("forward . {}", up.addr), cache)).await;
    let dns = inst.addrs()[0];
    for _ in 0..3 {
        query(dns, "hot.example.com.", RecordType::A).await;
    }
    assert_eq!(up.count("hot.example.com."), 1);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    // Under half the TTL left: answered from the cache, fetched behind it.
    let m = query(dns, "hot.example.com.", RecordType::A).await;
    assert_eq!(answers(&m), vec!["hot.example.com. A 203.0.113.7"]);
    let deadline = Instant::now() + Duration::from_secs(2);
    while up.count("hot.example.com.") < 2 {
        assert!(Instant::now() < deadline, "no prefetch");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Past the first entry's life, still a hit: the prefetched one.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    query(dns, "hot.example.com.", RecordType::A).await;
    assert_eq!(up.count("hot.example.com."), 2, "served from the prefetched entry");
    assert!(
        metrics.render().contains("coredns_cache_prefetch_total{server=\"dns://127.0.0.1:0\",zones=\".\",view=\"\"} 1")
    );
    inst.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_stale_immediate_answers_at_once_and_refreshes_behind() {
    let up = Upstream::start("127.0.0.12", 0);
    up.a("short.example.net.", 1, "198.51.100.9");
    let cache = "cache 30 {\n success 9984 30 1\n serve_stale 1h immediate\n }";
    let (inst, _) = serve(&kube_block(&format!("forward . {}", up.addr), cache)).await;
    let dns = inst.addrs()[0];
    query(dns, "short.example.net.", RecordType::A).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    // Expired: the stale answer at once (TTL 0), the upstream asked behind it.
    up.set_fault(Fault::Slow(Duration::from_millis(800)));
    let started = Instant::now();
    let m = query(dns, "short.example.net.", RecordType::A).await;
    assert!(started.elapsed() < Duration::from_millis(500), "not waiting for the upstream");
    assert_eq!(ttls(&m), vec![0]);
    let deadline = Instant::now() + Duration::from_secs(3);
    while up.count("short.example.net.") < 2 {
        assert!(Instant::now() < deadline, "no refresh");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(900)).await;
    let m = query(dns, "short.example.net.", RecordType::A).await;
    assert_eq!(ttls(&m), vec![1], "the refreshed entry");
    inst.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cache_is_bounded_and_evicts() {
    let up = Upstream::start("127.0.0.13", 0);
    // CoreDNS's smallest capacity: 1024 entries.
    let cache = "cache 30 {\n denial 1024\n }";
    let (inst, metrics) = serve(&kube_block(&format!("forward . {}", up.addr), cache)).await;
    let dns = inst.addrs()[0];
    tokio::task::spawn_blocking(move || {
        for i in 0..1600 {
            let packet = common::make_query(&format!("n{i}.example.org."), RecordType::A, None);
            common::exchange(dns, &packet, common::Transport::Udp).expect("answered");
        }
    })
    .await
    .unwrap();
    let body = metrics.render();
    let value = |prefix: &str| -> f64 {
        body.lines().find(|l| l.starts_with(prefix)).and_then(|l| l.rsplit(' ').next()?.parse().ok()).unwrap_or(-1.0)
    };
    let entries = value("coredns_cache_entries{server=\"dns://127.0.0.1:0\",type=\"denial\"");
    let evicted = value("coredns_cache_evictions_total{server=\"dns://127.0.0.1:0\",type=\"denial\"");
    assert!(entries > 0.0 && entries <= 1100.0, "bounded near 1024: {entries}\n{body}");
    assert!(evicted >= 400.0, "1,600 names into 1,024 places: {evicted} evicted\n{body}");
    inst.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_stale_verify_answers_stale_when_the_upstream_fails() {
    let up = Upstream::start("127.0.0.14", 0);
    up.a("short.example.net.", 1, "198.51.100.9");
    let cache = "cache 30 {\n success 9984 30 1\n serve_stale 1h verify\n }";
    let (inst, _) = serve(&kube_block(&format!("forward . {}", up.addr), cache)).await;
    let dns = inst.addrs()[0];
    query(dns, "short.example.net.", RecordType::A).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    // verify: the upstream is asked first; its REFUSED is no answer.
    up.set_fault(Fault::Refuse);
    let m = query(dns, "short.example.net.", RecordType::A).await;
    assert_eq!(answers(&m), vec!["short.example.net. A 198.51.100.9"]);
    assert_eq!(ttls(&m), vec![0]);
    assert_eq!(up.count("short.example.net."), 2, "asked before the stale answer");
    inst.shutdown().await;
}

/// Without `max_concurrent` (CoreDNS: unlimited), a flood of distinct
/// names towards an upstream that never answers would hold a task per
/// question for 5 s each, without bound: past 4,096 in flight the rest is
/// REFUSED at once and counted, as `max_concurrent` would.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_upstream_holds_at_most_4096_questions_without_max_concurrent() {
    use std::net::UdpSocket;
    // A socket per question in flight, as the binary allows itself.
    if clusterdns::server::raise_file_limit() < 4096 + 512 {
        eprintln!("skipped: the open-file limit is below 4,608");
        return;
    }
    // Bound and never read: every question to it stays in flight.
    let silent = UdpSocket::bind("127.0.0.15:0").unwrap();
    let (inst, metrics) = serve(&kube_block(&format!("forward . {}", silent.local_addr().unwrap()), "")).await;
    let dns = inst.addrs()[0];
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    client.set_read_timeout(Some(Duration::from_millis(1500))).unwrap();
    // The refusals come at once (the held questions only after 5 s): read
    // them as they come, or the client's own buffer would drop some.
    let reader = client.try_clone().unwrap();
    let refusals = std::thread::spawn(move || {
        let mut refused = 0;
        let mut buf = [0u8; 512];
        while let Ok(n) = reader.recv(&mut buf) {
            let m = Message::from_vec(&buf[..n]).unwrap();
            assert_eq!(m.metadata.response_code, ResponseCode::Refused, "{m:?}");
            refused += 1;
        }
        refused
    });
    const SENT: usize = 4400;
    for i in 0..SENT {
        let q = common::make_query(&format!("q{i}.flood.example."), RecordType::A, None);
        client.send_to(&q, dns).unwrap();
        if i % 50 == 49 {
            // Paced (4,400 in about a second, well within the 4 s the held
            // ones are held), so the server's receive buffer drops nothing
            // even on a busy machine.
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    let refused = refusals.join().unwrap();
    assert_eq!(refused, SENT - 4096, "4,096 held, the rest refused");
    let line = format!("coredns_forward_max_concurrent_rejects_total {refused}");
    assert!(metrics.render().contains(&line), "{line}");
    drop(silent);
    inst.shutdown().await;
}
