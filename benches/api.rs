//! Measures, against the tests' fake Kubernetes API server:
//! 1. the time from a watch event to the changed DNS answer (p50, p99 over
//!    1,000 changes at up to 1,000 a second, the answer asked without pause
//!    meanwhile), in process: with 1,000 Services, then with the whole
//!    cluster of step 2 loaded beside;
//! 2. the time to ready and the RSS of the `clusterdns` binary for 100,000
//!    Services and their EndpointSlices delivered by the API;
//! 3. then a relist of every kind forced by 410 Gone (the log compacted and
//!    every watch closed) while a client asks 200 of the names without
//!    pause: the peak RSS of the relist against the steady state (VmHWM
//!    reset through /proc/PID/clear_refs first), and every answer compared
//!    with the one before the relist.
//!
//! `cargo bench --bench api` (add `-- --services N` to change the size,
//! `-- --start-only` to skip step 1). With `BENCH_LOG=1` (and `RUST_LOG`)
//! the binary's log of step 2 and 3 shows, and the CPU time that the binary
//! and this process (the fake API) took to ready.

#[path = "../tests/common/fake_api.rs"]
#[allow(dead_code)]
mod fake_api;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use clusterdns::app::serve_api;
use clusterdns::config::ZoneFlags;
use clusterdns::records::PodMode;
use clusterdns::server::Listeners;
use clusterdns::source::kube::KubeOptions;
use fake_api::FakeApi;

fn svc(ns: &str, name: &str, ip: &str) -> String {
    format!(
        "{{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{{\"name\":\"{name}\",\"namespace\":\"{ns}\"}},\"spec\":{{\"clusterIP\":\"{ip}\",\"clusterIPs\":[\"{ip}\"],\"ports\":[{{\"name\":\"http\",\"port\":80,\"protocol\":\"TCP\"}}]}}}}"
    )
}

fn headless(ns: &str, name: &str) -> String {
    format!(
        "{{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{{\"name\":\"{name}\",\"namespace\":\"{ns}\"}},\"spec\":{{\"clusterIP\":\"None\",\"ports\":[{{\"name\":\"http\",\"port\":80,\"protocol\":\"TCP\"}}]}}}}"
    )
}

fn slice(ns: &str, svc: &str, ips: &[String]) -> String {
    let eps: Vec<String> = ips
        .iter()
        .enumerate()
        .map(|(i, ip)| {
            format!("{{\"addresses\":[\"{ip}\"],\"conditions\":{{\"ready\":true}},\"hostname\":\"{svc}-{i}\"}}")
        })
        .collect();
    format!(
        "{{\"apiVersion\":\"discovery.k8s.io/v1\",\"kind\":\"EndpointSlice\",\"metadata\":{{\"name\":\"{svc}-abcde\",\"namespace\":\"{ns}\",\"labels\":{{\"kubernetes.io/service-name\":\"{svc}\"}}}},\"addressType\":\"IPv4\",\"ports\":[{{\"name\":\"http\",\"port\":8080,\"protocol\":\"TCP\"}}],\"endpoints\":[{}]}}",
        eps.join(",")
    )
}

fn a_record(sock: &UdpSocket, server: SocketAddr, name: &str, id: u16) -> Option<[u8; 4]> {
    let mut q = vec![(id >> 8) as u8, id as u8, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
    for label in name.trim_end_matches('.').split('.') {
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.extend_from_slice(&[0, 0, 1, 0, 1]);
    sock.send_to(&q, server).ok()?;
    let mut buf = [0u8; 512];
    let (n, _) = loop {
        let got = sock.recv_from(&mut buf).ok()?;
        // A late reply to an earlier question is not this one's.
        if got.0 >= 2 && buf[..2] == id.to_be_bytes() {
            break got;
        }
    };
    let ancount = u16::from_be_bytes([buf[6], buf[7]]);
    (ancount == 1 && n >= 4).then(|| [buf[n - 4], buf[n - 3], buf[n - 2], buf[n - 1]])
}

fn flags() -> ZoneFlags {
    ZoneFlags {
        zone: "cluster.local".into(),
        ttl: 5,
        pods: PodMode::Disabled,
        service_cidr: "10.96.0.0/12".parse().unwrap(),
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// Times `changes` changes of a Service, each from the API's write to the
/// changed answer, asked without pause meanwhile; with `background` more
/// Services and their slices loaded beside (the cluster's size), and the
/// changes at most 1,000 a second.
async fn event_to_answer(changes: usize, background: usize) {
    let api = FakeApi::start().await;
    api.set_page(500);
    if background > 0 {
        api.apply_many(cluster_docs(background).into_iter());
    }
    api.apply("{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":{\"name\":\"bench\"}}");
    api.apply_many((0..1000).map(|i| svc("bench", &format!("s{i}"), &format!("10.96.{}.{}", i / 200, i % 200 + 1))));
    let dir = tempfile::tempdir().unwrap();
    let opts = KubeOptions { kubeconfig: Some(api.kubeconfig(dir.path())), ..Default::default() };
    let running =
        serve_api(&opts, &flags(), Listeners::bind(&["127.0.0.1:0".parse().unwrap()]).unwrap()).await.unwrap();
    let addr = running.addr();
    while !running.index.is_loaded() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    let mut took = Vec::with_capacity(changes);
    for n in 0..changes {
        let i = n % 1000;
        let ip = [10, 98, (n / 250 % 250) as u8, (n % 250 + 1) as u8];
        let name = format!("s{i}.bench.svc.cluster.local");
        let started = Instant::now();
        api.apply(&svc("bench", &format!("s{i}"), &format!("{}.{}.{}.{}", ip[0], ip[1], ip[2], ip[3])));
        let sock = &sock;
        let deadline = started + Duration::from_secs(10);
        let t = tokio::task::block_in_place(|| {
            loop {
                if a_record(sock, addr, &name, n as u16) == Some(ip) {
                    break started.elapsed();
                }
                assert!(Instant::now() < deadline, "change {n} never showed");
            }
        });
        took.push(t);
        // At most 1,000 changes a second.
        let next = started + Duration::from_millis(1);
        tokio::time::sleep_until(next.into()).await;
    }
    took.sort();
    println!(
        "event to answer over {changes} Service changes at up to 1,000 a second ({} Services): p50 {:?}, p90 {:?}, p99 {:?}, max {:?}",
        background + 1000,
        percentile(&took, 0.5),
        percentile(&took, 0.9),
        percentile(&took, 0.99),
        took[took.len() - 1]
    );
    running.server.shutdown().await;
}

fn get(addr: SocketAddr, path: &str) -> Option<u16> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n").ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    text.split_whitespace().nth(1)?.parse().ok()
}

fn rss_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with(field)).and_then(|l| l.split_whitespace().nth(1)?.parse().ok()))
        .unwrap_or(0)
}

/// A cluster of `services` Services in 100 namespaces, 70% with a cluster
/// IP and the rest headless, each with a slice of three endpoints.
fn cluster_docs(services: usize) -> Vec<String> {
    let namespaces = 100;
    let mut docs: Vec<String> = (0..namespaces)
        .map(|n| format!("{{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":{{\"name\":\"ns-{n}\"}}}}"))
        .collect();
    let mut pod = 0u32;
    for i in 0..services {
        let ns = format!("ns-{}", i % namespaces);
        let name = format!("svc-{i}");
        let ips: Vec<String> = (0..3)
            .map(|_| {
                pod += 1;
                format!("10.{}.{}.{}", 128 + (pod >> 16) % 64, (pod >> 8) & 255, pod & 255)
            })
            .collect();
        if i % 10 < 7 {
            let c = i as u32 + 16;
            docs.push(svc(&ns, &name, &format!("10.{}.{}.{}", 96 + (c >> 16), (c >> 8) & 255, c & 255)));
        } else {
            docs.push(headless(&ns, &name));
        }
        docs.push(slice(&ns, &name, &ips));
    }
    docs
}

async fn big_start(services: usize) {
    let api = FakeApi::start().await;
    api.set_page(500);
    api.apply_many(cluster_docs(services).into_iter());
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = api.kubeconfig(dir.path());
    let dns = UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let ready: SocketAddr = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_clusterdns"))
        .args(["serve", "--kubeconfig", kubeconfig.to_str().unwrap(), "--listen", &dns.to_string()])
        .args(["--ready", &ready.to_string(), "--health", "off", "--metrics", "off"])
        .stdout(Stdio::null())
        .stderr(if std::env::var_os("BENCH_LOG").is_some() { Stdio::inherit() } else { Stdio::null() })
        .spawn()
        .unwrap();
    let pid = child.id();
    loop {
        if tokio::task::block_in_place(|| get(ready, "/ready")) == Some(200) {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(600), "never ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let to_ready = started.elapsed();
    if std::env::var_os("BENCH_LOG").is_some() {
        // utime and stime: fields 14 and 15 of /proc/PID/stat, counted
        // after the command's closing parenthesis.
        let cpu = |pid: &str| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let f: Vec<String> = stat.rsplit(')').next().unwrap_or("").split_whitespace().map(String::from).collect();
            (f.get(11).cloned().unwrap_or_default(), f.get(12).cloned().unwrap_or_default())
        };
        let (child, me) = (cpu(&pid.to_string()), cpu("self"));
        eprintln!(
            "CPU ticks to ready: clusterdns user {} system {}; bench (the fake API) user {} system {}",
            child.0, child.1, me.0, me.1
        );
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let steady = rss_kib(pid, "VmRSS:");
    println!(
        "{services} Services + {services} EndpointSlices from the API (pages of 500): ready after {:.2} s, VmRSS {} MiB, VmHWM {} MiB",
        to_ready.as_secs_f64(),
        steady / 1024,
        rss_kib(pid, "VmHWM:") / 1024
    );
    relist(&api, pid, dns, services, steady).await;
    let _ = child.kill();
    let _ = child.wait();
}

/// Forces a relist of every kind while a client asks names, and reports
/// the relist's peak memory and any answer that changed.
async fn relist(api: &FakeApi, pid: u32, dns: SocketAddr, services: usize, steady: u64) {
    let names: Vec<String> =
        (0..200).map(|k| k * services / 200).map(|i| format!("svc-{i}.ns-{}.svc.cluster.local", i % 100)).collect();
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    let before: Vec<Option<[u8; 4]>> =
        names.iter().enumerate().map(|(k, n)| a_record(&sock, dns, n, k as u16)).collect();
    // VmHWM from here on is the relist's.
    let _ = std::fs::write(format!("/proc/{pid}/clear_refs"), "5");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let asker = {
        let (stop, names, before) = (stop.clone(), names.clone(), before.clone());
        std::thread::spawn(move || {
            let (mut asked, mut differed) = (0u64, 0u64);
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                for (k, n) in names.iter().enumerate() {
                    asked += 1;
                    if a_record(&sock, dns, n, k as u16) != before[k] {
                        differed += 1;
                    }
                }
            }
            (asked, differed)
        })
    };
    let gone = api.gone();
    let started = Instant::now();
    api.compact();
    // A change after the compaction: a list then returns a version that can
    // be watched (the fake API expires every version below the compaction).
    api.apply("{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":{\"name\":\"relisted\"}}");
    api.close_watches();
    // Every kind's watch gets 410 and lists again; done when the API has
    // had no request for two seconds.
    let mut last = (api.requests(), Instant::now());
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = api.requests();
        if now != last.0 {
            last = (now, Instant::now());
        } else if api.gone() > gone && last.1.elapsed() > Duration::from_secs(2) {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(600), "relist never finished");
    }
    let took = last.1 - started;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (asked, differed) = asker.join().unwrap();
    let peak = rss_kib(pid, "VmHWM:");
    println!(
        "relist of every kind forced by 410 Gone ({} watches expired; the API quiet for 2 s after {:.1} s): peak VmRSS {} MiB = {:+.1}% over the steady {} MiB; {asked} answers asked meanwhile, {differed} differed from before",
        api.gone() - gone,
        took.as_secs_f64(),
        peak / 1024,
        (peak as f64 / steady as f64 - 1.0) * 100.0,
        steady / 1024
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let services =
        args.iter().position(|a| a == "--services").and_then(|i| args.get(i + 1)?.parse().ok()).unwrap_or(100_000);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    // `--start-only`: just the time to ready and the relist (step 2 and 3).
    let start_only = args.iter().any(|a| a == "--start-only");
    rt.block_on(async {
        if !start_only {
            event_to_answer(1000, 0).await;
            event_to_answer(1000, services).await;
        }
        big_start(services).await;
    });
}
