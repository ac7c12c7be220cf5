//! The Kubernetes API as the source, against a fake API server that speaks
//! the real protocol to the real kube client; every scenario is checked
//! with DNS queries to the running server.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use clusterdns::app::{Running, serve_api};
use clusterdns::records::PodMode;
use clusterdns::server::Listeners;
use clusterdns::source::Scope;
use clusterdns::source::kube::KubeOptions;
use common::fake_api::{FakeApi, Fault};
use common::{Transport, answers, ask, flags};
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;

fn ns(name: &str) -> String {
    format!("apiVersion: v1\nkind: Namespace\nmetadata: {{name: {name}}}\n")
}

fn svc(ns: &str, name: &str, ip: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Service\nmetadata: {{name: {name}, namespace: {ns}}}\nspec:\n  clusterIP: {ip}\n  clusterIPs: [{ip}]\n  ports: [{{name: http, port: 80, protocol: TCP}}]\n"
    )
}

fn external(ns: &str, name: &str, target: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Service\nmetadata: {{name: {name}, namespace: {ns}}}\nspec:\n  type: ExternalName\n  externalName: {target}\n"
    )
}

fn slice(ns: &str, name: &str, svc: &str, ips: &[&str]) -> String {
    let eps: String = ips
        .iter()
        .enumerate()
        .map(|(i, ip)| format!("- addresses: [\"{ip}\"]\n  conditions: {{ready: true}}\n  hostname: {svc}-{i}\n"))
        .collect();
    format!(
        "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: {name}\n  namespace: {ns}\n  labels: {{kubernetes.io/service-name: {svc}}}\naddressType: IPv4\nports: [{{name: http, port: 8080, protocol: TCP}}]\nendpoints:\n{eps}"
    )
}

/// A slice whose endpoints are (IP, hostname) pairs.
fn slice_hosts(ns: &str, name: &str, svc: &str, eps: &[(&str, &str)]) -> String {
    let eps: String = eps
        .iter()
        .map(|(ip, host)| format!("- addresses: [\"{ip}\"]\n  conditions: {{ready: true}}\n  hostname: {host}\n"))
        .collect();
    format!(
        "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: {name}\n  namespace: {ns}\n  labels: {{kubernetes.io/service-name: {svc}}}\naddressType: IPv4\nports: [{{name: http, port: 8080, protocol: TCP}}]\nendpoints:\n{eps}"
    )
}

fn pod(ns: &str, name: &str, ip: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, namespace: {ns}, labels: {{app: x}}}}\nspec:\n  containers: [{{name: c, image: x}}]\nstatus:\n  phase: Running\n  podIP: {ip}\n  podIPs: [{{ip: {ip}}}]\n"
    )
}

async fn start(api: &FakeApi, dir: &std::path::Path, pods: PodMode) -> Running {
    let opts = KubeOptions {
        kubeconfig: Some(api.kubeconfig(dir)),
        pods: pods == PodMode::Verified,
        // Short watches, so that a hung one is noticed within seconds.
        watch_timeout: 1,
        ..Default::default()
    };
    let listen: SocketAddr = "127.0.0.1:0".parse().unwrap();
    serve_api(&opts, &flags(pods), Listeners::bind(&[listen]).unwrap()).await.expect("serve_api")
}

fn q(addr: SocketAddr, name: &str, t: RecordType) -> (ResponseCode, Vec<String>) {
    let msg = ask(addr, name, t, Transport::Udp, Some(1232));
    (msg.metadata.response_code, answers(&msg))
}

/// Polls until the answer is as wanted (the bound is generous: latency is
/// measured in benchmarks, not asserted).
async fn until(addr: SocketAddr, name: &str, t: RecordType, want: impl Fn(ResponseCode, &[String]) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (rc, ans) = q(addr, name, t);
        if want(rc, &ans) {
            return;
        }
        assert!(Instant::now() < deadline, "{name} {t}: still {rc:?} {ans:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until every watched kind has been listed once.
async fn synced(running: &Running) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !running.index.is_loaded() {
        assert!(Instant::now() < deadline, "never synced");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn has(ip: &'static str) -> impl Fn(ResponseCode, &[String]) -> bool {
    move |rc, ans| rc == ResponseCode::NoError && ans.len() == 1 && ans[0].ends_with(&format!(" {ip}"))
}

fn nx(rc: ResponseCode, _: &[String]) -> bool {
    rc == ResponseCode::NXDomain
}

const A: RecordType = RecordType::A;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_then_every_kind_changes() {
    let api = FakeApi::start().await;
    api.apply(&ns("team"));
    api.apply(&svc("team", "web", "10.96.1.1"));
    api.apply(&svc("team", "db", "None"));
    api.apply(&slice("team", "db-abcde", "db", &["10.244.1.1", "10.244.1.2"]));
    // A selector-less Service bound by a hand-made slice (seed 004).
    api.apply(&svc("team", "ext", "10.43.109.238"));
    api.apply(&slice("team", "ext-manual", "ext", &["192.168.141.31"]));
    for i in 0..5 {
        api.apply(&svc("team", &format!("filler-{i}"), &format!("10.96.2.{i}")));
    }
    let dir = tempfile::tempdir().unwrap();
    let running = start(&api, dir.path(), PodMode::Disabled).await;
    let addr = running.addr();
    until(addr, "web.team.svc.cluster.local.", A, has("10.96.1.1")).await;
    // Lists are paginated (2 per page here): everything arrived.
    until(addr, "filler-4.team.svc.cluster.local.", A, has("10.96.2.4")).await;
    until(addr, "db-1.db.team.svc.cluster.local.", A, has("10.244.1.2")).await;
    until(addr, "ext-0.ext.team.svc.cluster.local.", A, has("192.168.141.31")).await;
    until(addr, "31.141.168.192.in-addr.arpa.", RecordType::PTR, |rc, a| {
        rc == ResponseCode::NoError && a == ["31.141.168.192.in-addr.arpa. PTR ext-0.ext.team.svc.cluster.local."]
    })
    .await;
    // Every kind listed (the Synced message may trail the last list's answers).
    synced(&running).await;

    // Modify a Service, a slice; delete a slice, a Service; a Namespace.
    api.apply(&svc("team", "web", "10.96.1.2"));
    until(addr, "web.team.svc.cluster.local.", A, has("10.96.1.2")).await;
    api.apply(&slice("team", "db-abcde", "db", &["10.244.1.1", "10.244.1.2", "10.244.1.3"]));
    until(addr, "db.team.svc.cluster.local.", A, |rc, a| rc == ResponseCode::NoError && a.len() == 3).await;
    api.delete("endpointslices", "team", "db-abcde");
    until(addr, "db.team.svc.cluster.local.", A, nx).await;
    api.delete("services", "team", "web");
    until(addr, "web.team.svc.cluster.local.", A, nx).await;
    api.apply(&ns("quiet"));
    until(addr, "quiet.svc.cluster.local.", A, |rc, a| rc == ResponseCode::NoError && a.is_empty()).await;
    api.delete("namespaces", "", "quiet");
    until(addr, "quiet.svc.cluster.local.", A, nx).await;

    // ExternalName to ClusterIP and back (Kubernetes's ExternalName conformance test).
    api.apply(&external("team", "flip", "db.example.com"));
    until(addr, "flip.team.svc.cluster.local.", A, |rc, a| {
        rc == ResponseCode::NoError && a == ["flip.team.svc.cluster.local. CNAME db.example.com."]
    })
    .await;
    api.apply(&svc("team", "flip", "10.96.1.9"));
    until(addr, "flip.team.svc.cluster.local.", A, has("10.96.1.9")).await;
    api.apply(&external("team", "flip", "db.example.com"));
    until(addr, "flip.team.svc.cluster.local.", A, |rc, a| {
        rc == ResponseCode::NoError && a == ["flip.team.svc.cluster.local. CNAME db.example.com."]
    })
    .await;
    running.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_are_watched_under_verified() {
    let api = FakeApi::start().await;
    api.apply(&ns("team"));
    api.apply(&pod("team", "p1", "10.244.9.1"));
    let dir = tempfile::tempdir().unwrap();
    let running = start(&api, dir.path(), PodMode::Verified).await;
    let addr = running.addr();
    until(addr, "10-244-9-1.team.pod.cluster.local.", A, has("10.244.9.1")).await;
    api.apply(&pod("team", "p2", "10.244.9.2"));
    until(addr, "10-244-9-2.team.pod.cluster.local.", A, has("10.244.9.2")).await;
    api.delete("pods", "team", "p1");
    until(addr, "10-244-9-1.team.pod.cluster.local.", A, nx).await;
    running.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_down_at_start_is_servfail_never_nxdomain() {
    let api = FakeApi::start().await;
    api.apply(&ns("team"));
    api.apply(&svc("team", "web", "10.96.1.1"));
    api.set_up(false).await;
    let dir = tempfile::tempdir().unwrap();
    let running = start(&api, dir.path(), PodMode::Disabled).await;
    let addr = running.addr();
    let until_t = Instant::now() + Duration::from_millis(1500);
    while Instant::now() < until_t {
        for name in ["web.team.svc.cluster.local.", "nope.team.svc.cluster.local."] {
            let (rc, _) = q(addr, name, A);
            assert_eq!(rc, ResponseCode::ServFail, "{name} while the API is down");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Then 5xx instead of refusals: still SERVFAIL.
    api.set_fault(Fault::ServerError);
    api.set_up(true).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(q(addr, "nope.team.svc.cluster.local.", A).0, ResponseCode::ServFail);
    assert!(!running.index.is_loaded());
    api.set_fault(Fault::None);
    until(addr, "web.team.svc.cluster.local.", A, has("10.96.1.1")).await;
    until(addr, "nope.team.svc.cluster.local.", A, nx).await;
    running.server.shutdown().await;
}

/// Queries `name` until stopped; counts answers that are not `ip`.
fn hammer(
    addr: SocketAddr,
    name: &'static str,
    ip: &'static str,
) -> (Arc<AtomicBool>, Arc<AtomicUsize>, Arc<AtomicUsize>, std::thread::JoinHandle<()>) {
    let stop = Arc::new(AtomicBool::new(false));
    let bad = Arc::new(AtomicUsize::new(0));
    let asked = Arc::new(AtomicUsize::new(0));
    let (s, b, a) = (stop.clone(), bad.clone(), asked.clone());
    let h = std::thread::spawn(move || {
        while !s.load(Ordering::Relaxed) {
            let (rc, ans) = q(addr, name, A);
            a.fetch_add(1, Ordering::Relaxed);
            if !has(ip)(rc, &ans) {
                b.fetch_add(1, Ordering::Relaxed);
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    });
    (stop, bad, asked, h)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_down_after_sync_changes_nothing() {
    let api = FakeApi::start().await;
    api.apply(&ns("team"));
    api.apply(&svc("team", "web", "10.96.1.1"));
    let dir = tempfile::tempdir().unwrap();
    let running = start(&api, dir.path(), PodMode::Disabled).await;
    let addr = running.addr();
    until(addr, "web.team.svc.cluster.local.", A, has("10.96.1.1")).await;
    // Synced: every kind listed, so a miss is NXDOMAIN (a name can answer
    // before then; the API must not go down before the sync it is after).
    until(addr, "nope.team.svc.cluster.local.", A, |rc, _| rc == ResponseCode::NXDomain).await;
    let (stop, bad, asked, h) = hammer(addr, "web.team.svc.cluster.local.", "10.96.1.1");
    // Refused connections, then 5xx, then watches closed by the server.
    api.set_up(false).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(q(addr, "nope.team.svc.cluster.local.", A).0, ResponseCode::NXDomain, "still synced");
    api.set_fault(Fault::ServerError);
    api.set_up(true).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    api.set_fault(Fault::None);
    api.close_watches();
    tokio::time::sleep(Duration::from_millis(500)).await;
    // The watches resumed: changes flow again.
    api.apply(&svc("team", "later", "10.96.1.5"));
    until(addr, "later.team.svc.cluster.local.", A, has("10.96.1.5")).await;
    stop.store(true, Ordering::Relaxed);
    h.join().unwrap();
    assert!(asked.load(Ordering::Relaxed) > 100);
    assert_eq!(bad.load(Ordering::Relaxed), 0, "an answer changed while the API was away");
    running.server.shutdown().await;
}

/// The relist forwards only what changed since the watch last sent it (a
/// hash per object): a deletion, an addition and a change made while the
/// API was away all arrive; what did not change stays answered throughout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relist_after_410_carries_deletions() {
    let api = FakeApi::start().await;
    api.apply(&ns("team"));
    api.apply(&svc("team", "stays", "10.96.1.1"));
    api.apply(&svc("team", "goes", "10.96.1.2"));
    api.apply(&svc("team", "moves", "10.96.1.4"));
    let dir = tempfile::tempdir().unwrap();
    let running = start(&api, dir.path(), PodMode::Disabled).await;
    let addr = running.addr();
    until(addr, "goes.team.svc.cluster.local.", A, has("10.96.1.2")).await;
    let (stop, bad, _, h) = hammer(addr, "stays.team.svc.cluster.local.", "10.96.1.1");
    // While the API is away, one Service is deleted, one added, and the
    // history compacted: the watch's version is gone (410), a relist follows.
    api.set_up(false).await;
    api.delete("services", "team", "goes");
    api.apply(&svc("team", "new", "10.96.1.3"));
    api.apply(&svc("team", "moves", "10.96.1.6"));
    api.compact();
    let before = api.requests();
    api.set_up(true).await;
    until(addr, "goes.team.svc.cluster.local.", A, nx).await;
    until(addr, "new.team.svc.cluster.local.", A, has("10.96.1.3")).await;
    until(addr, "moves.team.svc.cluster.local.", A, has("10.96.1.6")).await;
    assert!(api.requests() > before);
    assert!(api.gone() > 0, "the watch was not answered 410 Gone");
    stop.store(true, Ordering::Relaxed);
    h.join().unwrap();
    assert_eq!(bad.load(Ordering::Relaxed), 0, "a name present before and after the relist failed");
    running.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relist_moves_an_endpoint_between_slices_without_a_gap() {
    let api = FakeApi::start().await;
    api.set_page(500);
    api.apply(&ns("team"));
    api.apply(&svc("team", "mover", "10.96.1.1"));
    api.apply(&svc("team", "filler", "10.96.1.2"));
    let filler = |n: u32| {
        (0..600).map(move |i| {
            let ip = format!("10.245.{}.{}", i / 250 + n, i % 250 + 1);
            slice_hosts("team", &format!("mover-a{i:04}"), "filler", &[(&ip, &format!("f{i}"))])
        })
    };
    api.apply(&slice_hosts("team", "mover-a", "mover", &[("10.244.0.5", "web")]));
    api.apply_many(filler(0));
    api.apply(&slice_hosts("team", "mover-b", "mover", &[("10.244.0.7", "other")]));
    let dir = tempfile::tempdir().unwrap();
    let running = start(&api, dir.path(), PodMode::Disabled).await;
    let addr = running.addr();
    until(addr, "web.mover.team.svc.cluster.local.", A, has("10.244.0.5")).await;
    until(addr, "f599.filler.team.svc.cluster.local.", A, has("10.245.2.100")).await;
    // While the API is away the two slices swap their endpoints, and 600
    // slices listed between them change: a relist brings it all, and the
    // name `web` must answer throughout (applied a page at a time, the
    // first slice's change would show before the second's).
    api.set_up(false).await;
    api.apply(&slice_hosts("team", "mover-a", "mover", &[("10.244.0.7", "other")]));
    api.apply_many(filler(10));
    api.apply(&slice_hosts("team", "mover-b", "mover", &[("10.244.0.5", "web")]));
    api.compact();
    let (stop, bad, asked, h) = hammer(addr, "web.mover.team.svc.cluster.local.", "10.244.0.5");
    api.set_up(true).await;
    until(addr, "f599.filler.team.svc.cluster.local.", A, has("10.245.12.100")).await;
    stop.store(true, Ordering::Relaxed);
    h.join().unwrap();
    assert!(api.gone() > 0, "the watch was not answered 410 Gone");
    assert!(asked.load(Ordering::Relaxed) > 0);
    assert_eq!(bad.load(Ordering::Relaxed), 0, "`web` missed during the relist");
    until(addr, "other.mover.team.svc.cluster.local.", A, has("10.244.0.7")).await;
    running.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_objects_are_skipped_and_big_lists_load() {
    let api = FakeApi::start().await;
    api.set_page(500);
    api.apply(&ns("team"));
    api.apply(&svc("team", "good", "10.96.1.1"));
    // A field this server does not know: fine.
    api.apply("apiVersion: v1\nkind: Service\nmetadata: {name: newer, namespace: team}\nspec:\n  clusterIP: 10.96.1.2\n  futureField: {x: 1}\n");
    // Malformed: a spec that is not an object; an IP that is not one.
    api.apply("apiVersion: v1\nkind: Service\nmetadata: {name: broken, namespace: team}\nspec: not-an-object\n");
    api.apply(&svc("team", "badip", "10.96.1.999"));
    api.apply_many((0..3000).map(|i| svc("team", &format!("bulk-{i}"), &format!("10.97.{}.{}", i / 250, i % 250 + 1))));
    let dir = tempfile::tempdir().unwrap();
    let running = start(&api, dir.path(), PodMode::Disabled).await;
    let addr = running.addr();
    until(addr, "good.team.svc.cluster.local.", A, has("10.96.1.1")).await;
    until(addr, "newer.team.svc.cluster.local.", A, has("10.96.1.2")).await;
    until(addr, "bulk-2999.team.svc.cluster.local.", A, has("10.97.11.250")).await;
    until(addr, "broken.team.svc.cluster.local.", A, nx).await;
    until(addr, "badip.team.svc.cluster.local.", A, nx).await;
    // A malformed update is skipped too; a fixed one is taken.
    api.apply("apiVersion: v1\nkind: Service\nmetadata: {name: good, namespace: team}\nspec: [1, 2]\n");
    api.apply(&svc("team", "broken", "10.96.1.3"));
    until(addr, "broken.team.svc.cluster.local.", A, has("10.96.1.3")).await;
    let (rc, ans) = q(addr, "good.team.svc.cluster.local.", A);
    assert!(has("10.96.1.1")(rc, &ans), "the malformed update replaced a good object: {rc:?} {ans:?}");
    // A relist that still holds the malformed version keeps the last good
    // one too (it is listed, so not deleted), and takes the other changes.
    // More changes than a page, and a delete: one batch at the list's end.
    api.set_up(false).await;
    api.apply(&svc("team", "after", "10.96.1.4"));
    api.apply_many((0..1200).map(|i| svc("team", &format!("bulk-{i}"), &format!("10.98.{}.{}", i / 250, i % 250 + 1))));
    api.delete("services", "team", "bulk-2999");
    api.compact();
    let gone = api.gone();
    api.set_up(true).await;
    until(addr, "after.team.svc.cluster.local.", A, has("10.96.1.4")).await;
    until(addr, "bulk-1199.team.svc.cluster.local.", A, has("10.98.4.200")).await;
    until(addr, "bulk-2999.team.svc.cluster.local.", A, nx).await;
    let (rc, ans) = q(addr, "bulk-0.team.svc.cluster.local.", A);
    assert!(has("10.98.0.1")(rc, &ans), "a changed Service of the relist: {rc:?} {ans:?}");
    assert!(api.gone() > gone, "the watch was not answered 410 Gone");
    let (rc, ans) = q(addr, "good.team.svc.cluster.local.", A);
    assert!(has("10.96.1.1")(rc, &ans), "a relist dropped the last good version: {rc:?} {ans:?}");
    running.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespaces_and_labels_narrow_what_is_served() {
    let api = FakeApi::start().await;
    for n in ["team", "hidden"] {
        api.apply(&ns(n));
    }
    api.apply(&svc("team", "web", "10.96.1.1"));
    api.apply(&svc("hidden", "web", "10.96.1.2"));
    api.apply("apiVersion: v1\nkind: Service\nmetadata: {name: shown, namespace: team, labels: {expose: \"yes\"}}\nspec: {clusterIP: 10.96.1.3}\n");
    let dir = tempfile::tempdir().unwrap();
    let listen: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let opts = KubeOptions {
        kubeconfig: Some(api.kubeconfig(dir.path())),
        scope: Scope {
            namespaces: vec!["team".into()],
            labels: Some("expose=yes".parse().unwrap()),
            namespace_labels: None,
        },
        ..Default::default()
    };
    let running = serve_api(&opts, &flags(PodMode::Disabled), Listeners::bind(&[listen]).unwrap()).await.unwrap();
    let addr = running.addr();
    until(addr, "shown.team.svc.cluster.local.", A, has("10.96.1.3")).await;
    until(addr, "web.team.svc.cluster.local.", A, nx).await; // no label
    until(addr, "web.hidden.svc.cluster.local.", A, nx).await; // other namespace
    until(addr, "hidden.svc.cluster.local.", A, nx).await;
    until(addr, "team.svc.cluster.local.", A, |rc, a| rc == ResponseCode::NoError && a.is_empty()).await;
    running.server.shutdown().await;
}

/// CoreDNS's `namespace_labels`: only namespaces whose labels match exist;
/// relabelling one shows or hides everything in it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespace_labels_follow_the_namespaces_labels() {
    let api = FakeApi::start().await;
    let labelled = |n: &str, dns: &str| {
        format!("apiVersion: v1\nkind: Namespace\nmetadata: {{name: {n}, labels: {{dns: \"{dns}\"}}}}\n")
    };
    api.apply(&labelled("team", "on"));
    api.apply(&labelled("other", "off"));
    api.apply(&svc("team", "web", "10.96.1.1"));
    api.apply(&svc("other", "web", "10.96.1.2"));
    let dir = tempfile::tempdir().unwrap();
    let listen: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let scope = Scope { namespace_labels: Some("dns=on".parse().unwrap()), ..Default::default() };
    let opts = KubeOptions { kubeconfig: Some(api.kubeconfig(dir.path())), scope, ..Default::default() };
    let running = serve_api(&opts, &flags(PodMode::Insecure), Listeners::bind(&[listen]).unwrap()).await.unwrap();
    let addr = running.addr();
    let nodata = |rc, a: &[String]| rc == ResponseCode::NoError && a.is_empty();
    until(addr, "web.team.svc.cluster.local.", A, has("10.96.1.1")).await;
    until(addr, "web.other.svc.cluster.local.", A, nx).await;
    until(addr, "other.svc.cluster.local.", A, nx).await;
    until(addr, "10-0-0-1.other.pod.cluster.local.", A, nx).await;
    until(addr, "10-0-0-1.team.pod.cluster.local.", A, has("10.0.0.1")).await;
    // `other` starts matching: its names appear without a change to them.
    api.apply(&labelled("other", "on"));
    until(addr, "web.other.svc.cluster.local.", A, has("10.96.1.2")).await;
    until(addr, "other.svc.cluster.local.", A, nodata).await;
    // `team` stops matching: the API server sends a delete; its names go.
    api.apply(&labelled("team", "off"));
    until(addr, "web.team.svc.cluster.local.", A, nx).await;
    until(addr, "team.svc.cluster.local.", A, nx).await;
    let (rc, ans) = q(addr, "web.other.svc.cluster.local.", A);
    assert!(has("10.96.1.2")(rc, &ans), "{rc:?} {ans:?}");
    running.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dns_programming_latency_is_measured_like_coredns() {
    let api = FakeApi::start().await;
    api.apply(&ns("team"));
    api.apply("apiVersion: v1\nkind: Service\nmetadata: {name: db, namespace: team}\nspec:\n  clusterIP: None\n  selector: {app: db}\n");
    let dir = tempfile::tempdir().unwrap();
    let running = start(&api, dir.path(), PodMode::Disabled).await;
    let addr = running.addr();
    // Every kind listed: the slice below arrives as a watch event, not in
    // the initial list (which the metric, like CoreDNS's, leaves out).
    synced(&running).await;
    // The slice controller stamps when the change happened: 2 s ago.
    let at = jiff::Timestamp::now() - jiff::SignedDuration::from_secs(2);
    let with_trigger = slice("team", "db-1", "db", &["10.244.3.1"]).replacen(
        "  labels:",
        &format!("  annotations: {{endpoints.kubernetes.io/last-change-trigger-time: \"{at}\"}}\n  labels:"),
        1,
    );
    api.apply(&with_trigger);
    until(addr, "db.team.svc.cluster.local.", A, has("10.244.3.1")).await;
    let line =
        |m: &str, p: &str| m.lines().find(|l| l.starts_with(p)).and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok());
    let count = "coredns_kubernetes_dns_programming_duration_seconds_count{service_kind=\"headless_with_selector\"}";
    // The observation follows the answer by one updater batch at most.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut m = running.metrics.render();
    while line(&m, count) != Some(1.0) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
        m = running.metrics.render();
    }
    let line = |p: &str| line(&m, p);
    let kind = "{service_kind=\"headless_with_selector\"}";
    assert_eq!(line(&format!("coredns_kubernetes_dns_programming_duration_seconds_count{kind}")), Some(1.0), "{m}");
    let sum = line(&format!("coredns_kubernetes_dns_programming_duration_seconds_sum{kind}")).unwrap();
    assert!((2.0..10.0).contains(&sum), "{sum}");
    running.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_watch_is_replaced() {
    let api = FakeApi::start().await;
    api.apply(&ns("team"));
    api.apply(&svc("team", "web", "10.96.1.1"));
    let dir = tempfile::tempdir().unwrap();
    let running = start(&api, dir.path(), PodMode::Disabled).await;
    let addr = running.addr();
    until(addr, "web.team.svc.cluster.local.", A, has("10.96.1.1")).await;
    // From now on watches are accepted and then say nothing, never ending.
    api.set_fault(Fault::HangWatches);
    api.close_watches();
    tokio::time::sleep(Duration::from_millis(300)).await;
    api.apply(&svc("team", "web", "10.96.1.2"));
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert!(
        has("10.96.1.1")(q(addr, "web.team.svc.cluster.local.", A).0, &q(addr, "web.team.svc.cluster.local.", A).1),
        "the last state keeps serving"
    );
    api.set_fault(Fault::None);
    // The watcher drops the silent watch (1 s + kube's 5 s margin) and watches again.
    until(addr, "web.team.svc.cluster.local.", A, has("10.96.1.2")).await;
    running.server.shutdown().await;
}

/// `clusterdns zone` with the API as source renders the same snapshot as
/// the same objects given as manifests.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_zone_of_a_live_cluster_is_the_zone_of_its_objects() {
    let api = FakeApi::start().await;
    let objects = [
        ns("team"),
        svc("team", "web", "10.96.1.1"),
        svc("team", "db", "None"),
        slice("team", "db-abcde", "db", &["10.244.1.1", "10.244.1.2"]),
        external("team", "out", "db.example.com"),
        svc("team", "ext", "10.43.109.238"),
        slice("team", "ext-manual", "ext", &["192.168.141.31"]),
    ];
    for o in &objects {
        api.apply(o);
    }
    let dir = tempfile::tempdir().unwrap();
    let opts = KubeOptions { kubeconfig: Some(api.kubeconfig(dir.path())), ..Default::default() };
    let live = clusterdns::app::zone_from_api(&opts, &flags(PodMode::Disabled), Duration::from_secs(30)).await.unwrap();
    let file = dir.path().join("cluster.yaml");
    std::fs::write(&file, objects.join("---\n")).unwrap();
    let (from_files, errors) = clusterdns::app::zone_snapshot(vec![file], &flags(PodMode::Disabled)).unwrap();
    assert!(errors.is_empty(), "{errors:?}");
    assert!(live.contains("db.team.svc 5 IN A 10.244.1.2"), "{live}");
    assert_eq!(live, from_files);
}

/// `explain` and `check` with the API as source (no manifests): the Pods
/// are listed too, so an empty slice is explained by what its Service's
/// selector matches.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_and_check_ask_the_live_cluster() {
    let api = FakeApi::start().await;
    api.apply(&ns("team"));
    let headless = "apiVersion: v1\nkind: Service\nmetadata: {name: db, namespace: team}\nspec:\n  clusterIP: None\n  selector: {app: db}\n  ports: [{name: sql, port: 5432}]\n";
    api.apply(headless);
    api.apply(&slice("team", "db-abcde", "db", &[]));
    api.apply(&pod("team", "db-0", "10.244.9.1"));
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = api.kubeconfig(dir.path());
    let run = move |args: Vec<String>| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_clusterdns")).args(args).output().unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stdout).to_string())
    };
    let k = kubeconfig.to_string_lossy().to_string();
    let args = vec!["explain".into(), "db.team.svc.cluster.local".into(), "--kubeconfig".into(), k.clone()];
    let (code, text) = tokio::task::spawn_blocking(move || run(args)).await.unwrap();
    assert_eq!(code, Some(0), "{text}");
    assert!(text.starts_with(";; db.team.svc.cluster.local. IN A: NXDOMAIN"), "{text}");
    assert!(
        text.contains("The selector app=db of Service team/db matches no Pod in team. Pod db-0 has labels app=x."),
        "{text}"
    );
    let args = vec!["check".into(), "--kubeconfig".into(), k, "--format".into(), "json".into()];
    let (code, text) = tokio::task::spawn_blocking(move || run(args)).await.unwrap();
    assert_eq!(code, Some(1), "{text}");
    let found: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(found[0]["object"], "Service team/db", "{text}");
}
