//! The seven stock Corefiles (tests/fixtures/corefiles/, verbatim from the
//! distributions) run by the real binary with CoreDNS's command line
//! (`-conf`), with only ports, paths and NodeLocal's placeholders rewritten.
//! The cluster comes from the tests' fake API server (KUBECONFIG), so the
//! `kubernetes` blocks stay as the distributions wrote them; the upstream is
//! a fake resolver on 127.0.0.x port 53, where the rewritten resolv.conf
//! points. Also: bad Corefiles fail with one line naming file and line, and
//! a ConfigMap-style symlink swap reloads without a restart.

mod common;

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::fake_api::FakeApi;
use common::upstream::Upstream;
use common::{Transport, answers, ask_within};
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{DNSClass, RecordType};

type Server = common::Process;

use common::free_port;

fn stock(name: &str) -> String {
    std::fs::read_to_string(common::fixtures().join("corefiles").join(format!("{name}.Corefile"))).unwrap()
}

/// Ports and paths only: DNS on `port`, admin endpoints on free loopback
/// ports, `/etc/resolv.conf` and `/etc/coredns/...` under `dir`.
fn rewrite(text: &str, port: u16, dir: &Path) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let t = line.trim();
        let indent = &line[..line.len() - line.trim_start().len()];
        let line = if t.ends_with('{') && (t.contains(":53 ") || t.contains(":5353 ")) && !t.starts_with("health") {
            t.replace(":5353 ", &format!(":{port} ")).replace(":53 ", &format!(":{port} "))
        } else if t == "health" || t == "ready" {
            format!("{indent}{t} 127.0.0.1:{}", free_port())
        } else if t == "health {" {
            format!("{indent}health 127.0.0.1:{} {{", free_port())
        } else if t.starts_with("prometheus ") || t.starts_with("health __PILLAR__") {
            let word = t.split_whitespace().next().unwrap_or_default();
            format!("{indent}{word} 127.0.0.1:{}", free_port())
        } else {
            line.to_string()
        };
        out.push_str(&line);
        out.push('\n');
    }
    let etc = dir.display().to_string();
    out.replace("/etc/resolv.conf", &format!("{etc}/resolv.conf")).replace("/etc/coredns/", &format!("{etc}/"))
}

/// The cluster every stock Corefile serves.
async fn cluster() -> FakeApi {
    let api = FakeApi::start().await;
    for ns in ["default", "kube-system"] {
        api.apply(&format!("apiVersion: v1\nkind: Namespace\nmetadata: {{name: {ns}}}\n"));
    }
    api.apply(
        "apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: default}\n\
         spec: {clusterIP: 10.96.0.20, clusterIPs: [10.96.0.20], ports: [{name: http, port: 80, protocol: TCP}]}\n",
    );
    api.apply(
        "apiVersion: v1\nkind: Service\nmetadata: {name: kube-dns, namespace: kube-system}\n\
         spec: {clusterIP: 10.96.0.10, clusterIPs: [10.96.0.10], ports: [{name: dns, port: 53, protocol: UDP}]}\n",
    );
    api
}

/// The internet, as the upstream knows it.
fn internet(up: &Upstream) {
    up.internet();
}

fn start(corefile: &Path, dir: &Path, kubeconfig: Option<&Path>) -> Server {
    let stderr = dir.join("server.log");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_clusterdns"));
    cmd.args(["-conf", &corefile.display().to_string()])
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&stderr).unwrap());
    if let Some(k) = kubeconfig {
        cmd.env("KUBECONFIG", k);
    }
    Server { child: cmd.spawn().expect("the binary starts"), log: stderr, dir: None }
}

fn ask(addr: SocketAddr, name: &str, qtype: RecordType) -> Message {
    ask_within(addr, name, qtype, Transport::Udp, None, Duration::from_secs(8))
}

/// Waits until `name` answers NOERROR (the server is up and loaded).
fn wait_answer(server: &Server, addr: SocketAddr, name: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let packet = common::make_query(name, RecordType::A, None);
        if let Some(reply) = common::exchange(addr, &packet, Transport::Udp)
            && Message::from_vec(&reply).is_ok_and(|m| m.metadata.response_code == ResponseCode::NoError)
        {
            return;
        }
        assert!(Instant::now() < deadline, "no answer to {name}; server log:\n{}", server.log());
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// What every stock Corefile must answer.
fn common_answers(addr: SocketAddr) {
    let m = ask(addr, "web.default.svc.cluster.local.", RecordType::A);
    assert_eq!(answers(&m), vec!["web.default.svc.cluster.local. A 10.96.0.20"]);
    let m = ask(addr, "h1.example.com.", RecordType::A);
    assert_eq!(answers(&m), vec!["h1.example.com. A 203.0.113.1"], "forwarded");
    let m = ask(addr, "www.example.com.", RecordType::A);
    assert_eq!(
        answers(&m),
        vec![
            "h1.example.com. A 203.0.113.1",
            "h2.example.com. CNAME h1.example.com.",
            "www.example.com. CNAME h2.example.com."
        ],
        "a CNAME chain from upstream"
    );
    let m = ask(addr, "9.113.0.203.in-addr.arpa.", RecordType::PTR);
    assert_eq!(answers(&m), vec!["9.113.0.203.in-addr.arpa. PTR h1.example.com."], "reverse outside the cluster");
    let m = ask(addr, "nope.default.svc.cluster.local.", RecordType::A);
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
}

/// Runs one stock Corefile; `upstream_ip` is a loopback address of its own
/// (port 53 is fixed by resolv.conf). Returns the server, its address and
/// its folder for the Corefile's own checks.
async fn run_stock(name: &str, upstream_ip: &str) -> (Server, SocketAddr, tempfile::TempDir, [Upstream; 2], FakeApi) {
    let up = Upstream::start(upstream_ip, 53);
    internet(&up);
    let api = cluster().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("resolv.conf"), format!("nameserver {upstream_ip}\n")).unwrap();
    std::fs::write(dir.path().join("NodeHosts"), "172.18.0.2 agent-1\n").unwrap();
    let port = free_port();
    // What a k3s or AKS user drops into coredns-custom: a stub domain.
    let stub = Upstream::start(upstream_ip, 0);
    stub.a("dns-test.acme.local.", 30, "10.10.10.10");
    std::fs::create_dir_all(dir.path().join("custom")).unwrap();
    let custom = format!("acme.local:{port} {{\n    forward . {}\n}}\n", stub.addr);
    std::fs::write(dir.path().join("custom").join("acme.server"), custom).unwrap();
    let corefile = dir.path().join("Corefile");
    std::fs::write(&corefile, rewrite(&stock(name), port, dir.path())).unwrap();
    let kubeconfig = api.kubeconfig(dir.path());
    let server = start(&corefile, dir.path(), Some(&kubeconfig));
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let s = &server;
    tokio::task::block_in_place(|| wait_answer(s, addr, "web.default.svc.cluster.local."));
    (server, addr, dir, [up, stub], api)
}

/// The stub domain of `custom/acme.server` (imported by k3s and AKS).
fn stub_domain(addr: SocketAddr) {
    let m = ask(addr, "dns-test.acme.local.", RecordType::A);
    assert_eq!(answers(&m), vec!["dns-test.acme.local. A 10.10.10.10"], "custom/*.server imported");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubeadm() {
    let (_server, addr, _dir, _up, _api) = run_stock("kubeadm", "127.0.0.31").await;
    tokio::task::block_in_place(|| common_answers(addr));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eks() {
    let (_server, addr, _dir, _up, _api) = run_stock("eks", "127.0.0.32").await;
    tokio::task::block_in_place(|| common_answers(addr));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helm_and_rke2() {
    let (_server, addr, _dir, _up, _api) = run_stock("helm", "127.0.0.33").await;
    tokio::task::block_in_place(|| common_answers(addr));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn k3s_with_node_hosts_and_a_custom_server_block() {
    let (server, addr, dir, _up, _api) = run_stock("k3s", "127.0.0.34").await;
    tokio::task::block_in_place(|| {
        common_answers(addr);
        let m = ask(addr, "agent-1.", RecordType::A);
        assert_eq!(answers(&m), vec!["agent-1. A 172.18.0.2"], "NodeHosts");
        stub_domain(addr);
        let _ = (&server, &dir);
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aks_templates() {
    let (_server, addr, _dir, _up, _api) = run_stock("aks", "127.0.0.35").await;
    tokio::task::block_in_place(|| {
        common_answers(addr);
        let m = ask(addr, "a.b.c.d.internal.cloudapp.net.", RecordType::A);
        assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
        let m = ask(addr, "x.reddog.microsoft.com.", RecordType::A);
        assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
        stub_domain(addr);
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openshift_with_hostname_bind() {
    let (_server, addr, _dir, _up, _api) = run_stock("openshift", "127.0.0.36").await;
    tokio::task::block_in_place(|| {
        common_answers(addr);
        let mut q = Message::query();
        q.metadata.id = 9;
        let mut question = hickory_proto::op::Query::query(
            hickory_proto::rr::Name::from_ascii("hostname.bind.").unwrap(),
            RecordType::TXT,
        );
        question.set_query_class(DNSClass::CH);
        q.add_query(question);
        let reply = common::exchange(addr, &q.to_vec().unwrap(), Transport::Udp).unwrap();
        let m = Message::from_vec(&reply).unwrap();
        assert_eq!(m.answers.len(), 1, "hostname.bind CH TXT: {m:?}");
        assert_eq!(m.answers[0].record_type(), RecordType::TXT);
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodelocal_forces_tcp_to_the_cluster_dns() {
    // NodeLocal DNSCache: no kubernetes plugin; cluster.local and the
    // reverse zones go to the cluster DNS over TCP, the rest upstream.
    let cluster_dns = Upstream::start("127.0.0.37", 0);
    cluster_dns.a("web.default.svc.cluster.local.", 5, "10.96.0.20");
    cluster_dns.ptr("9.113.0.203.in-addr.arpa.", 300, "h1.example.com.");
    let up = Upstream::start("127.0.0.38", 0);
    internet(&up);
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let text = rewrite(&stock("nodelocal"), port, dir.path())
        .replace("__PILLAR__LOCAL__DNS__", "127.0.0.39")
        .replace("__PILLAR__DNS__SERVER__", "127.0.0.40")
        .replace("__PILLAR__CLUSTER__DNS__", &cluster_dns.addr.to_string())
        .replace("__PILLAR__UPSTREAM__SERVERS__", &up.addr.to_string());
    let corefile = dir.path().join("Corefile");
    std::fs::write(&corefile, &text).unwrap();
    let server = start(&corefile, dir.path(), None);
    for ip in [[127, 0, 0, 39], [127, 0, 0, 40]] {
        let addr: SocketAddr = (ip, port).into();
        tokio::task::block_in_place(|| {
            wait_answer(&server, addr, "web.default.svc.cluster.local.");
            let m = ask(addr, "h1.example.com.", RecordType::A);
            assert_eq!(answers(&m), vec!["h1.example.com. A 203.0.113.1"]);
            let m = ask(addr, "9.113.0.203.in-addr.arpa.", RecordType::PTR);
            assert_eq!(answers(&m), vec!["9.113.0.203.in-addr.arpa. PTR h1.example.com."]);
            let m = ask(addr, "nope.default.svc.cluster.local.", RecordType::A);
            assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
        });
    }
    let total = cluster_dns.received.load(std::sync::atomic::Ordering::Relaxed);
    let tcp = cluster_dns.tcp_received.load(std::sync::atomic::Ordering::Relaxed);
    assert!(total > 0 && tcp == total, "force_tcp: {tcp} of {total} over TCP");
    assert_eq!(up.count("h1.example.com."), 1, "asked through both addresses, cached after one");
    let _ = server.log();
}

/// Every bad Corefile: a non-zero exit and one line naming file and line.
#[test]
fn bad_corefiles_fail_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&str, &str, usize); 7] = [
        ("unknown directive", ".:1053 {\n    errors\n    frobnicate\n}\n", 3),
        ("unknown option", ".:1053 {\n    forward . 127.0.0.1 {\n        fast_please\n    }\n}\n", 3),
        ("unclosed block", ".:1053 {\n    errors\n", 1),
        ("bad address", ".:1053 {\n    forward . 300.1.1.1\n}\n", 2),
        ("bad regex", ".:1053 {\n    template IN A example.org {\n        match \"([a-z\"\n    }\n}\n", 3),
        ("missing import", ".:1053 {\n    import nothere.conf\n}\n", 2),
        ("duplicate directive", ".:1053 {\n    cache 30\n    cache 60\n}\n", 3),
    ];
    for (what, text, line) in cases {
        let path = dir.path().join("Corefile");
        std::fs::write(&path, text).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_clusterdns"))
            .args(["-conf", &path.display().to_string()])
            .output()
            .unwrap();
        assert!(!out.status.success(), "{what}: must fail");
        let stderr = String::from_utf8_lossy(&out.stderr);
        let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(lines.len(), 1, "{what}: one line, got {stderr}");
        assert!(lines[0].contains(&format!("{}:{line}", path.display())), "{what}: file and line in {stderr:?}");
    }
}

/// A ConfigMap volume: `Corefile -> ..data/Corefile`, `..data -> ..<ts>`;
/// an update writes a new `..<ts>` folder and swaps `..data` atomically.
fn configmap_write(dir: &Path, version: &str, text: &str) {
    let ts = dir.join(format!("..{version}"));
    std::fs::create_dir_all(&ts).unwrap();
    std::fs::write(ts.join("Corefile"), text).unwrap();
    let tmp = dir.join("..data_tmp");
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(format!("..{version}"), &tmp).unwrap();
    std::fs::rename(&tmp, dir.join("..data")).unwrap();
    if !dir.join("Corefile").exists() {
        std::os::unix::fs::symlink("..data/Corefile", dir.join("Corefile")).unwrap();
    }
}

#[test]
fn configmap_symlink_swap_reloads_and_a_broken_one_keeps_serving() {
    let first = Upstream::start("127.0.0.41", 0);
    first.a("h1.example.com.", 300, "203.0.113.1");
    let second = Upstream::start("127.0.0.42", 0);
    second.a("h1.example.com.", 300, "198.51.100.1");
    let dir = tempfile::tempdir().unwrap();
    let (port, metrics) = (free_port(), free_port());
    let corefile = |up: SocketAddr| {
        format!(
            ".:{port} {{\n    bind 127.0.0.1\n    prometheus 127.0.0.1:{metrics}\n    forward . {up}\n    reload 2s 1s\n}}\n"
        )
    };
    configmap_write(dir.path(), "2026_11_26_1", &corefile(first.addr));
    let server = start(&dir.path().join("Corefile"), dir.path(), None);
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    wait_answer(&server, addr, "h1.example.com.");
    // A client asks throughout; not one question may go unanswered.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let client = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut failures = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let packet = common::make_query("h1.example.com.", RecordType::A, None);
                match common::exchange(addr, &packet, Transport::Udp).map(|r| Message::from_vec(&r)) {
                    Some(Ok(m)) if m.metadata.response_code == ResponseCode::NoError => {}
                    other => failures.push(format!("{other:?}")),
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            failures
        })
    };
    configmap_write(dir.path(), "2026_11_26_2", &corefile(second.addr));
    let deadline = Instant::now() + Duration::from_secs(10);
    while answers(&ask(addr, "h1.example.com.", RecordType::A)) != vec!["h1.example.com. A 198.51.100.1"] {
        assert!(Instant::now() < deadline, "not reloaded; log:\n{}", server.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    // A broken Corefile: logged, counted, the running one stays.
    configmap_write(dir.path(), "2026_11_26_3", ".:1053 {\n    forward . 127.0.0.1 {\n        nonsense\n    }\n");
    let deadline = Instant::now() + Duration::from_secs(10);
    let metrics_addr: SocketAddr = ([127, 0, 0, 1], metrics).into();
    loop {
        let body = common::http_get(metrics_addr, "/metrics").unwrap_or_default();
        if body.contains("coredns_reload_failed_total 1") {
            break;
        }
        assert!(Instant::now() < deadline, "reload failure not counted:\n{body}\n{}", server.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(answers(&ask(addr, "h1.example.com.", RecordType::A)), vec!["h1.example.com. A 198.51.100.1"]);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let failures = client.join().unwrap();
    assert!(failures.is_empty(), "questions lost during reloads: {failures:?}");
    let log = server.log();
    let reader = BufReader::new(log.as_bytes());
    assert!(reader.lines().any(|l| l.is_ok_and(|l| l.contains("reload failed"))), "{log}");
}

/// Regression: the listeners of a Corefile once answered REFUSED (an empty
/// router) while the manifests were still being read. Until the zone is
/// loaded its names are SERVFAIL, then they answer.
#[test]
fn servfail_until_loaded_never_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("cluster.yaml"), common::many_services(20_000)).unwrap();
    let port = free_port();
    let text = format!(
        ".:{port} {{\n    bind 127.0.0.1\n    kubernetes cluster.local {{\n        manifests {}\n    }}\n}}\n",
        dir.path().join("cluster.yaml").display()
    );
    let corefile = dir.path().join("Corefile");
    std::fs::write(&corefile, text).unwrap();
    let server = start(&corefile, dir.path(), None);
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
    let packet = common::make_query("svc-19999.default.svc.cluster.local.", RecordType::A, None);
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        assert!(Instant::now() < deadline, "never answered; seen {seen:?}\n{}", server.log());
        sock.send_to(&packet, addr).unwrap();
        let mut buf = [0u8; 512];
        let Ok((n, _)) = sock.recv_from(&mut buf) else { continue };
        let m = Message::from_vec(&buf[..n]).unwrap();
        let code = m.metadata.response_code;
        if code == ResponseCode::NoError {
            break;
        }
        assert_eq!(code, ResponseCode::ServFail, "before the load: {seen:?}");
        seen.push(code);
    }
    assert!(!seen.is_empty(), "the load was too quick to observe the window");
}

/// `log` writes CoreDNS's line per question (only its classes), `errors`
/// a line per failure of the chain.
#[test]
fn log_and_errors_write_coredns_lines() {
    let dead = Upstream::start("127.0.0.43", 0);
    dead.set_fault(common::upstream::Fault::Silent);
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let text = format!(
        ".:{port} {{\n    bind 127.0.0.1\n    errors\n    log . {{\n        class denial error\n    }}\n    \
         kubernetes cluster.local {{\n        manifests {}\n    }}\n    forward . {} {{\n        max_fails 0\n    }}\n}}\n",
        common::fixtures().display(),
        dead.addr
    );
    let corefile = dir.path().join("Corefile");
    std::fs::write(&corefile, text).unwrap();
    let stdout = dir.path().join("stdout");
    let stderr = dir.path().join("server.log");
    let child = Command::new(env!("CARGO_BIN_EXE_clusterdns"))
        .args(["-conf", &corefile.display().to_string(), "-quiet"])
        .stdout(std::fs::File::create(&stdout).unwrap())
        .stderr(std::fs::File::create(&stderr).unwrap())
        .spawn()
        .unwrap();
    let server = Server { child, log: stderr, dir: None };
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    wait_answer(&server, addr, "kafka.default.svc.cluster.local.");
    ask(addr, "kafka.default.svc.cluster.local.", RecordType::A); // success: not logged
    ask(addr, "nope.default.svc.cluster.local.", RecordType::A); // denial
    let m = ask(addr, "h1.example.com.", RecordType::A); // error: the upstream is silent
    assert_eq!(m.metadata.response_code, ResponseCode::ServFail);
    std::thread::sleep(Duration::from_millis(200));
    let out = std::fs::read_to_string(&stdout).unwrap();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "denial and error only:\n{out}");
    let line = lines[0];
    assert!(line.starts_with("[INFO] 127.0.0.1:"), "{line}");
    assert!(line.contains(" \"A IN nope.default.svc.cluster.local. udp "), "{line}");
    assert!(line.contains("\" NXDOMAIN qr,aa,rd "), "{line}");
    assert!(line.ends_with('s'), "a duration last: {line}");
    assert!(lines[1].contains("h1.example.com.") && lines[1].contains("SERVFAIL"), "{}", lines[1]);
    let log = server.log();
    assert!(log.contains("plugin/errors: 2 h1.example.com. A:"), "{log}");
}

/// k3s's and AKS's customisation: a new file in the imported folder is
/// picked up by `reload` (the Corefile's own text does not change).
#[test]
fn reload_picks_up_a_new_imported_file() {
    let up = Upstream::start("127.0.0.44", 0);
    let stub = Upstream::start("127.0.0.44", 0);
    stub.a("dns-test.acme.local.", 30, "10.10.10.10");
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("custom")).unwrap();
    let port = free_port();
    let corefile = dir.path().join("Corefile");
    std::fs::write(
        &corefile,
        format!(
            ".:{port} {{\n    bind 127.0.0.1\n    forward . {}\n    reload 2s 1s\n}}\nimport custom/*.server\n",
            up.addr
        ),
    )
    .unwrap();
    let server = start(&corefile, dir.path(), None);
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let deadline = Instant::now() + Duration::from_secs(20);
    while common::exchange(addr, &common::make_query("x.example.", RecordType::A, None), Transport::Udp).is_none() {
        assert!(Instant::now() < deadline, "not up:\n{}", server.log());
    }
    assert_eq!(ask(addr, "dns-test.acme.local.", RecordType::A).metadata.response_code, ResponseCode::NXDomain);
    std::fs::write(
        dir.path().join("custom").join("acme.server"),
        format!("acme.local:{port} {{\n    bind 127.0.0.1\n    forward . {}\n}}\n", stub.addr),
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while answers(&ask(addr, "dns-test.acme.local.", RecordType::A)) != vec!["dns-test.acme.local. A 10.10.10.10"] {
        assert!(Instant::now() < deadline, "the imported file was not applied:\n{}", server.log());
        std::thread::sleep(Duration::from_millis(100));
    }
}
