//! The binary's command line: clear one-line errors and non-zero exits,
//! never a panic; `zone` prints the snapshot.

use std::process::{Command, Output};

fn clusterdns(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_clusterdns")).args(args).env_remove("RUST_LOG").output().unwrap()
}

fn stderr_lines(out: &Output) -> Vec<String> {
    String::from_utf8_lossy(&out.stderr).lines().filter(|l| !l.trim().is_empty()).map(String::from).collect()
}

fn fails_with_one_line(args: &[&str], code: i32, needle: &str) {
    let out = clusterdns(args);
    let lines = stderr_lines(&out);
    assert_eq!(out.status.code(), Some(code), "{args:?}: {lines:?}");
    assert_eq!(lines.len(), 1, "{args:?}: want one line, got {lines:?}");
    assert!(lines[0].contains(needle), "{args:?}: {:?} lacks {needle:?}", lines[0]);
    assert!(!lines[0].contains("panicked"), "{args:?}: {lines:?}");
}

#[test]
fn wrong_flags_are_one_clear_line() {
    fails_with_one_line(&["serve", "--bogus"], 2, "--bogus");
    fails_with_one_line(&["serve", "--manifests", "x", "--ttl", "4000"], 2, "4000");
    fails_with_one_line(&["serve", "--manifests", "x", "--pods", "maybe"], 2, "maybe");
    fails_with_one_line(&["serve", "--manifests", "x", "--listen", "nowhere"], 2, "nowhere");
    fails_with_one_line(&["serve", "--manifests", "x", "--service-cidr", "10.0.0.0/99"], 2, "10.0.0.0/99");
    fails_with_one_line(&["frobnicate"], 2, "frobnicate");
    fails_with_one_line(&["serve", "--manifests", "x", "--health", "nowhere"], 2, "nowhere");
}

#[test]
fn unreadable_path_and_port_in_use() {
    fails_with_one_line(&["serve", "--manifests", "/no/such/dir", "--listen", "127.0.0.1:0"], 1, "/no/such/dir");
    fails_with_one_line(&["zone", "--manifests", "/no/such/file.yaml"], 1, "/no/such/file.yaml");
    fails_with_one_line(
        &["serve", "--manifests", ".", "--zone", "bad..zone", "--listen", "127.0.0.1:0"],
        1,
        "bad..zone",
    );
    let taken = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");
    fails_with_one_line(&["serve", "--manifests", fixtures, "--listen", &addr], 1, &addr);
}

#[test]
fn no_source_names_both_ways() {
    // No manifests and no API configuration anywhere: one line naming both.
    let out = Command::new(env!("CARGO_BIN_EXE_clusterdns"))
        .args(["serve", "--listen", "127.0.0.1:0", "--health", "off", "--ready", "off", "--metrics", "off"])
        .env_remove("RUST_LOG")
        .env_remove("KUBECONFIG")
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env("HOME", "/nonexistent")
        .output()
        .unwrap();
    let lines = stderr_lines(&out);
    assert_eq!(out.status.code(), Some(1), "{lines:?}");
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].contains("--manifests") && lines[0].contains("--kubeconfig"), "{lines:?}");
}

#[test]
fn help_documents_every_flag() {
    let out = clusterdns(&["serve", "--help"]);
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    let flags = [
        "--manifests",
        "--listen",
        "--zone",
        "--ttl",
        "--pods",
        "--service-cidr",
        "--kubeconfig",
        "--namespaces",
        "--labels",
        "--health",
        "--ready",
        "--metrics",
        "--lameduck",
        "--explain",
    ];
    for flag in flags {
        assert!(help.contains(flag), "serve --help lacks {flag}");
    }
    let out = clusterdns(&["--help"]);
    let help = String::from_utf8_lossy(&out.stdout);
    for cmd in ["serve", "zone", "demo", "explain", "check"] {
        assert!(help.contains(cmd), "--help lacks {cmd}");
    }
}

#[test]
fn zone_prints_the_snapshot_and_reports_broken_documents() {
    let root = env!("CARGO_MANIFEST_DIR");
    let out = clusterdns(&["zone", "--manifests", &format!("{root}/tests/fixtures/seeds.yaml")]);
    assert!(out.status.success());
    let want = std::fs::read_to_string(format!("{root}/zones/seeds.zone")).unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), want);

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("mixed.yaml");
    std::fs::write(
        &file,
        "apiVersion: v1\nkind: Service\nmetadata: {name: ok, namespace: t}\nspec: {clusterIP: 10.96.9.9}\n---\nkind: [broken\n---\napiVersion: v1\nkind: Service\nmetadata: {name: bad}\nspec: {ports: [{port: 70000}]}\n",
    )
    .unwrap();
    let out = clusterdns(&["zone", "--manifests", file.to_str().unwrap()]);
    assert!(out.status.success());
    let lines = stderr_lines(&out);
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(lines[0].contains("mixed.yaml: document 2"), "{lines:?}");
    assert!(lines[1].contains("mixed.yaml: document 3") && lines[1].contains("Service default/bad"), "{lines:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("ok.t.svc 5 IN A 10.96.9.9"));
}

#[test]
fn zone_ttl_and_service_cidr_flags_shape_the_answers() {
    let seeds = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/seeds.yaml");
    let args =
        ["zone", "--manifests", seeds, "--zone", "Corp.Example.", "--ttl", "600", "--service-cidr", "172.20.0.0/16"];
    let out = clusterdns(&args);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let zone = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = zone.lines().collect();
    assert_eq!(lines[0], "$ORIGIN corp.example.");
    // SPEC.md R11: the SOA's own TTL is min(ttl, 300), its minimum the TTL.
    assert_eq!(lines[1], "@ 300 IN SOA ns.dns.corp.example. hostmaster.corp.example. 0 7200 1800 86400 600");
    assert_eq!(lines[2], "@ 600 IN NS ns.dns.corp.example.");
    assert!(lines.contains(&"dns-version 28800 IN TXT \"1.1.0\""), "{zone}");
    // Services without a clusterIP get one from the given CIDR.
    let kafka = lines.iter().find(|l| l.starts_with("kafka.default.svc 600 IN A ")).expect("kafka's address");
    let ip: std::net::Ipv4Addr = kafka.rsplit(' ').next().unwrap().parse().unwrap();
    assert_eq!(ip.octets()[..2], [172, 20], "{kafka}");
    assert!(lines.contains(&"_kafka._tcp.kafka.default.svc 600 IN SRV 0 100 9092 kafka.default.svc.corp.example."));
}

/// An admin address in use fails the start with a line that names the flag
/// (under `serve`) or the Corefile plugin that set it.
#[test]
fn an_admin_port_in_use_names_its_flag_or_plugin() {
    let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/workloads.yaml");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let failure = |out: Output| {
        let lines = stderr_lines(&out);
        assert_eq!(out.status.code(), Some(1), "{lines:?}");
        lines.into_iter().find(|l| l.contains(&addr)).unwrap_or_else(|| panic!("no line names {addr}"))
    };
    for (flag, path) in [("--health", "/health"), ("--ready", "/ready"), ("--metrics", "/metrics")] {
        let mut args = vec!["serve", "--manifests", fixtures, "--listen", "127.0.0.1:0"];
        for other in ["--health", "--ready", "--metrics"] {
            args.extend([other, if other == flag { addr.as_str() } else { "off" }]);
        }
        let line = failure(clusterdns(&args));
        assert!(line.contains(path) && line.contains(&format!("{flag} ADDR")), "{flag}: {line}");
    }
    let dir = tempfile::tempdir().unwrap();
    for (plugin, directive) in [("health", format!("health {addr}")), ("prometheus", format!("prometheus {addr}"))] {
        let corefile = dir.path().join("Corefile");
        let text = format!(
            ".:0 {{\n    bind 127.0.0.1\n    {directive}\n    kubernetes cluster.local {{\n        manifests {fixtures}\n    }}\n}}\n"
        );
        std::fs::write(&corefile, text).unwrap();
        let line = failure(clusterdns(&["-conf", &corefile.display().to_string()]));
        assert!(line.contains(&format!("`{plugin}`")), "{plugin}: {line}");
    }
}

/// Seed 000's manual Endpoints named `mysql-ep` for the Service `mysql-svc`:
/// `explain` says in one sentence why it does not bind and what to rename,
/// in text and in JSON.
#[test]
fn explain_says_why_the_manual_endpoints_do_not_bind() {
    let root = env!("CARGO_MANIFEST_DIR");
    let seeds = format!("{root}/tests/fixtures/seeds.yaml");
    let out = clusterdns(&["explain", "mysql-svc.default.svc.cluster.local", "--manifests", &seeds]);
    assert!(out.status.success(), "{:?}", stderr_lines(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with(";; mysql-svc.default.svc.cluster.local. IN A: NXDOMAIN"), "{text}");
    let sentence = "The Endpoints default/mysql-ep does not bind to Service mysql-svc because its name differs from the Service's (an Endpoints object belongs to the Service of the same name): if it is meant for this Service, rename it to mysql-svc.";
    assert!(text.contains(sentence), "{text}");
    let out = clusterdns(&[
        "explain",
        "mysql-svc.default.svc.cluster.local",
        "SRV",
        "--manifests",
        &seeds,
        "--format",
        "json",
    ]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["type"], "SRV");
    assert_eq!(json["status"], "NXDOMAIN");
    assert!(json["why"].as_array().unwrap().iter().any(|w| w.as_str() == Some(sentence)), "{json}");
    // An unknown type is one clear line.
    fails_with_one_line(&["explain", "x.cluster.local", "BOGUS", "--manifests", &seeds], 1, "unknown record type");
}

/// `check` lists what leaves names unanswered in the seed examples and
/// exits 1; a clean cluster gives exit 0.
#[test]
fn check_finds_the_seed_problems_and_none_in_a_clean_cluster() {
    let root = env!("CARGO_MANIFEST_DIR");
    let seeds = format!("{root}/tests/fixtures/seeds.yaml");
    let out = clusterdns(&["check", "--manifests", &seeds, "--format", "json"]);
    assert_eq!(out.status.code(), Some(1), "{:?}", stderr_lines(&out));
    assert_eq!(stderr_lines(&out), vec!["3 problems found".to_string()]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let objects: Vec<&str> = json.as_array().unwrap().iter().filter_map(|f| f["object"].as_str()).collect();
    assert_eq!(objects, ["Endpoints default/my-endpoint", "Endpoints default/mysql-ep", "Service default/mysql-svc"]);
    let out = clusterdns(&["check", "--manifests", &format!("{root}/tests/fixtures/cluster-dns.yaml")]);
    assert_eq!(out.status.code(), Some(0), "{:?}", stderr_lines(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "no problems found\n");
}
