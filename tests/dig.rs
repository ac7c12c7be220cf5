//! The real `dig` against the built binary, as a user runs it: the demo
//! (the README's first command) and `serve` over UDP and TCP.

use std::io::{BufRead, BufReader};
use std::net::UdpSocket;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    // Good enough for a test: the kernel's pick, released right away.
    UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Runs dig; `None` when it got no answer (exit status 9: no server reached).
fn try_dig(port: u16, args: &[&str]) -> Option<String> {
    let out = Command::new("dig")
        .args(["@127.0.0.1", "-p", &port.to_string(), "+time=2", "+tries=2"])
        .args(args)
        .output()
        .expect("dig runs (install dnsutils: apt-get install dnsutils)");
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

fn dig(port: u16, args: &[&str]) -> String {
    try_dig(port, args).unwrap_or_else(|| panic!("dig {args:?}: no answer from port {port}"))
}

/// Stopped as a user stops it (SIGTERM: the demo removes its folder), and
/// killed if it does not go.
struct Killed(Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.0.id().to_string()]).status();
        let start = std::time::Instant::now();
        while start.elapsed() < Duration::from_secs(5) {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_answering(port: u16, log: &std::path::Path) {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(30) {
        if try_dig(port, &["+short", "+time=1", "+tries=1", "dns-version.cluster.local", "TXT"])
            .is_some_and(|o| o.contains("1.1.0"))
        {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let said = std::fs::read_to_string(log).unwrap_or_default();
    panic!("server on port {port} did not answer; it said:\n{said}");
}

#[test]
fn demo_answers_as_the_readme_shows() {
    // A folder left by a demo that was killed (no such process): the next
    // demo removes it.
    let stale = std::env::temp_dir().join("clusterdns-demo-999999999");
    std::fs::create_dir_all(&stale).unwrap();
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_clusterdns"))
        .args(["demo", "--listen", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut child = Killed(child);
    let stdout = child.0.stdout.take().unwrap();
    let mut printed = String::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        printed.push_str(&line);
        printed.push('\n');
        if line.contains("Ctrl-C stops") {
            break;
        }
    }
    assert!(printed.contains(&format!("dig @127.0.0.1 -p {port}")), "{printed}");
    // Every dig line the demo prints gets an answer (NOERROR) but the last,
    // which shows an NXDOMAIN.
    for line in printed.lines().filter(|l| l.trim_start().starts_with("dig ")) {
        let args: Vec<&str> = line.split_whitespace().skip(4).collect();
        let out = dig(port, &args);
        if line.contains("nope.") {
            assert!(out.contains("status: NXDOMAIN"), "{line}: {out}");
        } else {
            assert!(!out.trim().is_empty(), "{line}: empty answer");
        }
    }
    let job = dig(port, &["+short", "comprehensive-computation-0.compute-service.default.svc.cluster.local"]);
    assert_eq!(job.trim(), "10.244.1.10");
    let sts = dig(port, &["+short", "web-1.nginx.default.svc.cluster.local"]);
    assert_eq!(sts.trim(), "10.244.2.6");
    let mysql = dig(port, &["+short", "mysql-svc.default.svc.cluster.local"]);
    assert_eq!(mysql.trim(), "114.32.146.154");
    let ptr = dig(port, &["+short", "-x", "10.244.2.5"]);
    assert_eq!(ptr.trim(), "web-0.nginx.default.svc.cluster.local.");
    let pod = dig(port, &["+short", "10-244-1-10.default.pod.cluster.local"]);
    assert_eq!(pod.trim(), "10.244.1.10", "demo runs with --pods insecure");
    assert!(!stale.exists(), "a dead demo's folder is removed");
    // Stopped as a user stops it, the demo leaves no folder behind.
    let dir = printed.split("serving the cluster in ").nth(1).and_then(|s| s.split(" on ").next()).unwrap().to_string();
    assert!(std::path::Path::new(&dir).exists(), "{dir}");
    drop(child);
    assert!(!std::path::Path::new(&dir).exists(), "the demo left {dir} behind");
}

#[test]
fn serve_over_udp_and_tcp_with_dig() {
    let port = free_port();
    let log = tempfile::NamedTempFile::new().unwrap();
    let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");
    let child = Command::new(env!("CARGO_BIN_EXE_clusterdns"))
        .args(["serve", "--manifests", fixtures, "--listen", &format!("127.0.0.1:{port}")])
        // No admin endpoints: their default ports are shared by every run.
        .args(["--health", "off", "--ready", "off", "--metrics", "off"])
        .stdout(Stdio::null())
        .stderr(Stdio::from(log.reopen().unwrap()))
        .spawn()
        .unwrap();
    let _child = Killed(child);
    wait_answering(port, log.path());
    for transport in ["+notcp", "+tcp"] {
        let out = dig(port, &[transport, "+short", "example-job-1.headless-svc.jobs.svc.cluster.local"]);
        assert_eq!(out.trim(), "10.244.3.11", "{transport}");
        let out = dig(port, &[transport, "+short", "_web._tcp.nginx.web.svc.cluster.local", "SRV"]);
        let mut lines: Vec<&str> = out.lines().collect();
        lines.sort();
        assert_eq!(
            lines,
            vec!["0 50 80 web-0.nginx.web.svc.cluster.local.", "0 50 80 web-1.nginx.web.svc.cluster.local.",]
        );
        let out = dig(port, &[transport, "nope.jobs.svc.cluster.local"]);
        assert!(out.contains("status: NXDOMAIN") && out.contains("flags: qr aa rd"), "{out}");
        assert!(out.contains("cluster.local.\t\t5\tIN\tSOA\tns.dns.cluster.local. hostmaster.cluster.local."), "{out}");
    }
}

/// The records of one zone as `dig` prints them, in one form: owner
/// lowercase, fields single-spaced, the SOA serial 0; sorted, repeats gone
/// (AXFR ends with the SOA it began with).
fn normal(lines: impl Iterator<Item = String>) -> Vec<String> {
    let mut out: Vec<String> = lines
        .map(|l| {
            let mut f: Vec<String> = l.split_whitespace().map(str::to_string).collect();
            f[0] = f[0].to_ascii_lowercase();
            if f.get(3).is_some_and(|t| t == "SOA") {
                f[6] = "0".into();
            }
            f.join(" ")
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

/// `transfer { to ... }`: `dig AXFR` of the cluster zone gives the records
/// `clusterdns zone` prints for the same manifests, to an allowed address
/// only (127.0.0.2 here; 127.0.0.1 is refused).
#[test]
fn axfr_gives_the_zone_snapshot_to_allowed_clients_only() {
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let seeds = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/seeds.yaml");
    let corefile = dir.path().join("Corefile");
    std::fs::write(
        &corefile,
        format!(
            ".:{port} {{\n    bind 127.0.0.1\n    kubernetes cluster.local in-addr.arpa ip6.arpa {{\n        manifests {seeds}\n    }}\n    transfer {{\n        to 127.0.0.2\n    }}\n}}\n"
        ),
    )
    .unwrap();
    let log = dir.path().join("server.log");
    let _server = Killed(
        Command::new(env!("CARGO_BIN_EXE_clusterdns"))
            .args(["-conf", corefile.to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    wait_answering(port, &log);
    let axfr = dig(port, &["-b", "127.0.0.2", "AXFR", "cluster.local", "+noall", "+answer"]);
    let zone = Command::new(env!("CARGO_BIN_EXE_clusterdns")).args(["zone", "--manifests", seeds]).output().unwrap();
    let zone = String::from_utf8_lossy(&zone.stdout).to_string();
    // The cluster.local section of the snapshot, owners made absolute.
    let mut origin = String::new();
    let mut snapshot = Vec::new();
    for line in zone.lines() {
        if let Some(o) = line.strip_prefix("$ORIGIN ") {
            origin = o.to_string();
        } else if origin == "cluster.local." && !line.is_empty() {
            let (owner, rest) = line.split_once(' ').unwrap();
            let owner = if owner == "@" { origin.clone() } else { format!("{owner}.{origin}") };
            snapshot.push(format!("{owner} {rest}"));
        }
    }
    let transferred = normal(axfr.lines().filter(|l| !l.trim().is_empty()).map(str::to_string));
    assert!(transferred.len() > 10, "{axfr}");
    assert_eq!(transferred, normal(snapshot.into_iter()));
    // From an address not in `to`: refused, no records.
    let refused = try_dig(port, &["AXFR", "cluster.local"]).unwrap_or_default();
    assert!(refused.contains("Transfer failed"), "{refused}");
    assert!(!refused.contains("IN\tSOA"), "{refused}");
}
