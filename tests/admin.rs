//! Admin endpoints: /health, /ready (503 until synced and during the lame
//! duck), CoreDNS-compatible /metrics, and SIGTERM handling of the binary.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use clusterdns::admin::{self, Admin};
use clusterdns::app::serve_api;
use clusterdns::records::PodMode;
use clusterdns::server::Listeners;
use clusterdns::source::kube::KubeOptions;
use common::fake_api::FakeApi;
use common::{Transport, ask, fixtures, flags, start};
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use tokio_util::sync::CancellationToken;

/// A plain HTTP/1.1 GET: (status, body). None when nothing listens.
fn get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n").ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let code = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    Some((code, body))
}

fn metric(body: &str, prefix: &str) -> Option<f64> {
    body.lines().find(|l| l.starts_with(prefix)).and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_ready_and_coredns_metrics() {
    let running = start(vec![fixtures()], PodMode::Disabled).await;
    let dns = running.addr();
    let admin = Admin::new(running.index.clone(), running.metrics.clone());
    let cancel = CancellationToken::new();
    let bound = admin::serve(admin.clone(), &["127.0.0.1:0".parse().unwrap()], cancel.clone()).await.unwrap();
    let http = bound[0];
    for _ in 0..3 {
        ask(dns, "kafka.default.svc.cluster.local.", RecordType::A, Transport::Udp, None);
    }
    ask(dns, "nope.default.svc.cluster.local.", RecordType::A, Transport::Udp, None);
    ask(dns, "kafka.default.svc.cluster.local.", RecordType::SRV, Transport::Tcp, None);
    let body = tokio::task::spawn_blocking(move || {
        assert_eq!(get(http, "/health").unwrap().0, 200);
        assert_eq!(get(http, "/ready").unwrap().0, 200);
        assert_eq!(get(http, "/nope").unwrap().0, 404);
        get(http, "/metrics").unwrap()
    })
    .await
    .unwrap();
    assert_eq!(body.0, 200);
    let m = body.1;
    let server = format!("dns://{dns}");
    let req = |proto: &str, t: &str| {
        format!(
            "coredns_dns_requests_total{{server=\"{server}\",zone=\".\",view=\"\",proto=\"{proto}\",family=\"1\",type=\"{t}\"}}"
        )
    };
    assert_eq!(metric(&m, &req("udp", "A")), Some(4.0), "{m}");
    assert_eq!(metric(&m, &req("tcp", "SRV")), Some(1.0), "{m}");
    let resp = |rcode: &str| {
        format!(
            "coredns_dns_responses_total{{server=\"{server}\",zone=\".\",view=\"\",rcode=\"{rcode}\",plugin=\"kubernetes\"}}"
        )
    };
    assert_eq!(metric(&m, &resp("NXDOMAIN")), Some(1.0), "{m}");
    let count =
        format!("coredns_dns_request_duration_seconds_count{{server=\"{server}\",zone=\".\",view=\"\",type=\"A\"}}");
    assert_eq!(metric(&m, &count), Some(4.0), "{m}");
    // The histogram line by line: 16 bounds and +Inf, cumulative (never
    // falling), every one of the 4 A queries under the last bound (8.192 s),
    // +Inf equal to _count (buckets were once accumulated twice: +Inf read
    // far more than _count).
    let prefix = format!(
        "coredns_dns_request_duration_seconds_bucket{{server=\"{server}\",zone=\".\",view=\"\",type=\"A\",le=\""
    );
    let buckets: Vec<(String, f64)> = m
        .lines()
        .filter_map(|l| l.strip_prefix(&prefix))
        .map(|rest| {
            let (le, value) = rest.split_once("\"} ").unwrap();
            (le.to_string(), value.parse().unwrap())
        })
        .collect();
    assert_eq!(buckets.len(), 17, "{m}");
    assert_eq!(buckets[0].0, "0.00025", "{m}");
    assert_eq!(buckets[15].0, "8.192", "{m}");
    assert_eq!(buckets[16], ("+Inf".to_string(), 4.0), "{m}");
    assert!(buckets.windows(2).all(|w| w[0].1 <= w[1].1), "not cumulative: {buckets:?}");
    assert_eq!(buckets[15].1, 4.0, "{buckets:?}");
    assert!(metric(&m, "clusterdns_objects{kind=\"Service\"}").unwrap() > 10.0, "{m}");
    assert!(metric(&m, "clusterdns_names ").unwrap() > 100.0, "{m}");
    assert_eq!(metric(&m, "clusterdns_ready "), Some(1.0), "{m}");
    assert!(metric(&m, "clusterdns_last_sync_timestamp_seconds ").unwrap() > 1.7e9, "{m}");
    assert!(metric(&m, "clusterdns_update_duration_seconds_count ").unwrap() >= 1.0, "{m}");
    // The lame duck: not ready, still healthy.
    admin.lame_duck.store(true, std::sync::atomic::Ordering::Release);
    let codes = tokio::task::spawn_blocking(move || (get(http, "/ready").unwrap().0, get(http, "/health").unwrap().0))
        .await
        .unwrap();
    assert_eq!(codes, (503, 200));
    cancel.cancel();
    running.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_ready_until_the_api_is_synced() {
    let api = FakeApi::start().await;
    api.apply("apiVersion: v1\nkind: Namespace\nmetadata: {name: team}\n");
    api.set_up(false).await;
    let dir = tempfile::tempdir().unwrap();
    let opts = KubeOptions { kubeconfig: Some(api.kubeconfig(dir.path())), ..Default::default() };
    let running =
        serve_api(&opts, &flags(PodMode::Disabled), Listeners::bind(&["127.0.0.1:0".parse().unwrap()]).unwrap())
            .await
            .unwrap();
    let admin = Admin::new(running.index.clone(), running.metrics.clone());
    let bound = admin::serve(admin, &["127.0.0.1:0".parse().unwrap()], CancellationToken::new()).await.unwrap();
    let http = bound[0];
    let codes = tokio::task::spawn_blocking(move || (get(http, "/ready").unwrap().0, get(http, "/health").unwrap().0))
        .await
        .unwrap();
    assert_eq!(codes, (503, 200), "API down at start: not ready, healthy");
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let m = tokio::task::spawn_blocking(move || get(http, "/metrics").unwrap().1).await.unwrap();
    assert!(metric(&m, "clusterdns_watch_restarts_total ").unwrap() >= 1.0, "{m}");
    api.set_up(true).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let code = tokio::task::spawn_blocking(move || get(http, "/ready").unwrap().0).await.unwrap();
        if code == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "never ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let msg = ask(running.addr(), "team.svc.cluster.local.", RecordType::A, Transport::Udp, None);
    assert_eq!(msg.metadata.response_code, ResponseCode::NoError);
    running.server.shutdown().await;
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[test]
fn sigterm_is_a_lame_duck_then_exit_zero() {
    let (dns, ready, health) = (free_port(), free_port(), free_port());
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");
    let mut child = Command::new(env!("CARGO_BIN_EXE_clusterdns"))
        .args(["serve", "--manifests", dir, "--listen", &format!("127.0.0.1:{dns}")])
        .args(["--ready", &format!("127.0.0.1:{ready}"), "--health", &format!("127.0.0.1:{health}")])
        .args(["--metrics", "off", "--lameduck", "2"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let ready_addr: SocketAddr = format!("127.0.0.1:{ready}").parse().unwrap();
    let dns_addr: SocketAddr = format!("127.0.0.1:{dns}").parse().unwrap();
    let start = Instant::now();
    while get(ready_addr, "/ready").map(|r| r.0) != Some(200) {
        assert!(start.elapsed() < Duration::from_secs(30), "never ready");
        std::thread::sleep(Duration::from_millis(50));
    }
    let term = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(term.success());
    std::thread::sleep(Duration::from_millis(300));
    // Lame duck: /ready says 503, DNS still answers.
    assert_eq!(get(ready_addr, "/ready").map(|r| r.0), Some(503));
    let msg = ask(dns_addr, "kafka.default.svc.cluster.local.", RecordType::A, Transport::Udp, None);
    assert_eq!(msg.answers.len(), 1);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "did not exit");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_fails_when_the_updater_stops() {
    use clusterdns::records::{ZoneConfig, ZoneIndex};
    let index = ZoneIndex::new(ZoneConfig::new("cluster.local", 5, PodMode::Disabled).unwrap());
    let metrics = std::sync::Arc::new(clusterdns::metrics::Metrics::default());
    let admin = Admin::new(index.clone(), metrics.clone());
    let bound = admin::serve(admin, &["127.0.0.1:0".parse().unwrap()], CancellationToken::new()).await.unwrap();
    let http = bound[0];
    let health = move || tokio::task::spawn_blocking(move || get(http, "/health").unwrap().0);
    let tx = clusterdns::app::spawn_updater(index.clone(), metrics, &Default::default());
    assert_eq!(health().await.unwrap(), 200);
    // Every source gone: the updater thread ends, answers would go stale.
    drop(tx);
    let deadline = Instant::now() + Duration::from_secs(10);
    while index.writer_alive() {
        assert!(Instant::now() < deadline, "updater still running");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(health().await.unwrap(), 503);
}

/// Starts `clusterdns serve` on `dir` with the metrics port (and `extra`
/// flags); returns the child and the metrics address once it serves.
fn serve_with_metrics(dir: &std::path::Path, extra: &[&str]) -> (std::process::Child, SocketAddr) {
    let (dns, metrics) = (free_port(), free_port());
    let child = Command::new(env!("CARGO_BIN_EXE_clusterdns"))
        .args(["serve", "--manifests", dir.to_str().unwrap(), "--listen", &format!("127.0.0.1:{dns}")])
        .args(["--metrics", &format!("127.0.0.1:{metrics}"), "--health", "off", "--ready", "off", "--lameduck", "0"])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let addr: SocketAddr = format!("127.0.0.1:{metrics}").parse().unwrap();
    let start = Instant::now();
    while get(addr, "/metrics").map(|r| r.0) != Some(200) {
        assert!(start.elapsed() < Duration::from_secs(30), "never served /metrics");
        std::thread::sleep(Duration::from_millis(50));
    }
    (child, addr)
}

/// `serve --explain` answers /explain beside /metrics from the live state
/// (a fix written while it runs shows), and `clusterdns explain --server`
/// asks it; without the flag there is no /explain.
#[test]
fn a_running_server_explains_itself_only_when_asked_to() {
    let dir = tempfile::tempdir().unwrap();
    let seeds = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/seeds.yaml");
    std::fs::copy(seeds, dir.path().join("seeds.yaml")).unwrap();
    let (mut child, addr) = serve_with_metrics(dir.path(), &["--explain"]);
    let question = "/explain?name=mysql-svc.default.svc.cluster.local&type=A";
    let (code, body) = get(addr, question).unwrap();
    assert_eq!(code, 200, "{body}");
    let e: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(e["status"], "NXDOMAIN");
    let binds = "The Endpoints default/mysql-ep does not bind to Service mysql-svc";
    assert!(e["why"].as_array().unwrap().iter().any(|w| w.as_str().unwrap().starts_with(binds)), "{body}");
    // The command asks the running process.
    let out = Command::new(env!("CARGO_BIN_EXE_clusterdns"))
        .args(["explain", "mysql-svc.default.svc.cluster.local", "--server", &addr.to_string()])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains(binds));
    // A question without a name, or with a bad type, is a 400.
    assert_eq!(get(addr, "/explain?type=A").map(|r| r.0), Some(400));
    assert_eq!(get(addr, "/explain?name=x&type=BOGUS").map(|r| r.0), Some(400));
    // The fix, written while it runs: the live answer follows.
    let fix = "apiVersion: v1\nkind: Endpoints\nmetadata: {name: mysql-svc, namespace: default}\nsubsets:\n- addresses: [{ip: 114.32.146.154}]\n  ports: [{name: default-ep, port: 3306}]\n";
    std::fs::write(dir.path().join("fix.yaml"), fix).unwrap();
    let start = Instant::now();
    loop {
        let (_, body) = get(addr, question).unwrap();
        let e: serde_json::Value = serde_json::from_str(&body).unwrap();
        if e["status"] == "NOERROR" {
            assert_eq!(e["answer"][0], "mysql-svc.default.svc.cluster.local. 5 IN A 114.32.146.154", "{body}");
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(20), "the fix never showed: {body}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
    // Off by default.
    let (mut child, addr) = serve_with_metrics(dir.path(), &[]);
    assert_eq!(get(addr, question).map(|r| r.0), Some(404));
    let out = Command::new(env!("CARGO_BIN_EXE_clusterdns"))
        .args(["explain", "mysql-svc.default.svc.cluster.local", "--server", &addr.to_string()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not serve /explain"));
    let _ = child.kill();
    let _ = child.wait();
}
