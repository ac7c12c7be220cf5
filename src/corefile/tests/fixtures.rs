//! The stock Corefiles of tests/fixtures/corefiles, kept verbatim: each
//! parses once its run-time placeholders are filled (NodeLocal's
//! `__PILLAR__*__` with loopback IPs) and its host paths point into a
//! temporary folder (`/etc/resolv.conf`, k3s's `/etc/coredns/`).

use std::net::IpAddr;
use std::time::Duration;

use super::*;

const NAMESERVERS: &str = "nameserver 10.0.0.10\nnameserver 10.0.0.11\n";

/// The stock file with its placeholders filled, in a fresh folder.
fn prepare(name: &str) -> (Dir, String) {
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/corefiles").join(name);
    let text = std::fs::read_to_string(&src).unwrap();
    let d = Dir::new();
    let resolv = d.write("resolv.conf", NAMESERVERS);
    let etc_coredns = format!("{}/", d.path("etc-coredns").display());
    let text = text
        .replace("/etc/resolv.conf", &resolv.display().to_string())
        .replace("/etc/coredns/", &etc_coredns)
        .replace("__PILLAR__LOCAL__DNS__", "127.0.0.10")
        .replace("__PILLAR__DNS__SERVER__", "127.0.0.11")
        .replace("__PILLAR__CLUSTER__DNS__", "127.0.0.12")
        .replace("__PILLAR__UPSTREAM__SERVERS__", "127.0.0.13 127.0.0.14");
    assert!(!text.contains("__PILLAR__"), "{name}");
    (d, text)
}

fn stock(name: &str) -> (Dir, Corefile) {
    let (d, text) = prepare(name);
    let c = parse_str(&text, &d.path(name), &opts()).unwrap_or_else(|e| panic!("{name}: {e}"));
    (d, c)
}

fn find<'a>(b: &'a ServerBlock, name: &str) -> &'a Plugin {
    &b.plugins.iter().find(|d| d.plugin.name() == name).unwrap_or_else(|| panic!("no {name}")).plugin
}

fn zones(z: &[&str]) -> Vec<String> {
    z.iter().map(|s| s.to_string()).collect()
}

const KUBE_ZONES: &[&str] = &["cluster.local.", "in-addr.arpa.", "ip6.arpa."];
const REVERSE: &[&str] = &["in-addr.arpa.", "ip6.arpa."];

/// The `kubernetes` stanza every distribution ships.
fn check_kubernetes(b: &ServerBlock, ttl: u32) {
    let Plugin::Kubernetes(k) = find(b, "kubernetes") else { panic!() };
    assert_eq!((k.zones.clone(), k.pods, k.ttl), (zones(KUBE_ZONES), Pods::Insecure, ttl));
    assert_eq!(k.fallthrough, Some(zones(REVERSE)));
}

fn check_forward_resolv(b: &ServerBlock) {
    let Plugin::Forward(f) = find(b, "forward") else { panic!() };
    assert_eq!(f.from, ".");
    assert_eq!(f.to, ["10.0.0.10:53".parse().unwrap(), "10.0.0.11:53".parse().unwrap()]);
}

fn lameduck(b: &ServerBlock) -> Duration {
    let Plugin::Health(h) = find(b, "health") else { panic!() };
    h.lameduck
}

fn prometheus(b: &ServerBlock) -> String {
    let Plugin::Prometheus(a) = find(b, "prometheus") else { panic!() };
    a.to_string()
}

const CHAIN: &[&str] =
    &["reload", "ready", "health", "prometheus", "errors", "loadbalance", "cache", "kubernetes", "loop", "forward"];

#[test]
fn all_stock_corefiles_parse() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/corefiles");
    let mut n = 0;
    for e in std::fs::read_dir(dir).unwrap() {
        let name = e.unwrap().file_name().into_string().unwrap();
        if name.ends_with(".Corefile") {
            stock(&name);
            n += 1;
        }
    }
    assert_eq!(n, 7);
}

#[test]
fn kubeadm() {
    let (_, c) = stock("kubeadm.Corefile");
    assert_eq!(keys(&c), [vec![(".".to_string(), 53)]]);
    let b = &c.blocks[0];
    assert_eq!(names(b), CHAIN);
    check_kubernetes(b, 30);
    check_forward_resolv(b);
    let Plugin::Forward(f) = find(b, "forward") else { panic!() };
    assert_eq!(f.max_concurrent, 1000);
    let Plugin::Cache(cache) = find(b, "cache") else { panic!() };
    assert_eq!(cache.zones, ["."]);
    assert_eq!((cache.success.max_ttl, cache.denial.max_ttl), (Duration::from_secs(30), Duration::from_secs(30)));
    assert_eq!(cache.success.disabled, ["cluster.local."]);
    assert_eq!(cache.denial.disabled, ["cluster.local."]);
    assert_eq!((lameduck(b), prometheus(b)), (Duration::from_secs(5), "0.0.0.0:9153".to_string()));
}

#[test]
fn eks_and_helm() {
    let (_, c) = stock("eks.Corefile");
    let b = &c.blocks[0];
    assert_eq!(names(b), CHAIN);
    check_kubernetes(b, 5);
    check_forward_resolv(b);
    assert_eq!(lameduck(b), Duration::from_secs(5));
    let (_, c) = stock("helm.Corefile");
    let b = &c.blocks[0];
    assert_eq!(names(b), CHAIN);
    check_kubernetes(b, 30);
    assert_eq!((lameduck(b), prometheus(b)), (Duration::from_secs(10), "0.0.0.0:9153".to_string()));
}

#[test]
fn k3s() {
    let (d, c) = stock("k3s.Corefile");
    assert_eq!(c.blocks.len(), 1);
    let b = &c.blocks[0];
    check_kubernetes(b, 5);
    let Plugin::Hosts(h) = find(b, "hosts") else { panic!() };
    assert_eq!(h.file, d.path("etc-coredns/NodeHosts"));
    assert_eq!((h.zones.clone(), h.ttl, h.reload), (zones(&["."]), 60, Duration::from_secs(15)));
    assert_eq!((h.fallthrough.clone(), h.inline.len()), (Some(zones(&["."])), 0));
    let Plugin::Health(health) = find(b, "health") else { panic!() };
    assert_eq!(health.addr.to_string(), "0.0.0.0:8080");

    // The coredns-custom ConfigMap: a server file and an override file.
    let (d, text) = prepare("k3s.Corefile");
    d.write("etc-coredns/custom/a.server", "example.com:53 {\n  forward . 10.1.1.1\n}\n");
    d.write("etc-coredns/custom/log.override", "log\n");
    let c = parse_str(&text, &d.path("k3s.Corefile"), &opts()).unwrap();
    assert_eq!(keys(&c), [vec![(".".to_string(), 53)], vec![("example.com.".to_string(), 53)]]);
    assert!(names(&c.blocks[0]).contains(&"log"));
}

#[test]
fn aks() {
    let (_, c) = stock("aks.Corefile");
    assert_eq!(c.blocks.len(), 1);
    let b = &c.blocks[0];
    check_kubernetes(b, 30);
    let templates: Vec<&Template> = b
        .plugins
        .iter()
        .filter_map(|d| match &d.plugin {
            Plugin::Template(t) => Some(t),
            _ => None,
        })
        .collect();
    assert_eq!(templates.len(), 2);
    let (t1, t2) = (templates[0], templates[1]);
    assert_eq!((t1.class, t1.qtype, t1.zones.clone()), (None, None, zones(&["internal.cloudapp.net."])));
    assert_eq!((t1.rcode, t1.fallthrough.clone()), (3, Some(zones(&["."]))));
    assert_eq!(t1.matches[0].as_str(), r"^(?:[^.]+\.){4,}internal\.cloudapp\.net\.$");
    assert!(t1.matches[0].is_match("a.b.c.d.internal.cloudapp.net."));
    assert!(!t1.matches[0].is_match("vm.internal.cloudapp.net."));
    assert_eq!((t2.zones.clone(), t2.rcode, t2.fallthrough.clone()), (zones(&["reddog.microsoft.com."]), 3, None));
    assert_eq!(t2.matches[0].as_str(), ".*");
    // Templates sit between minimal's place and hosts', before kubernetes.
    let order = names(b);
    let at = |n: &str| order.iter().position(|x| *x == n).unwrap();
    assert!(at("cache") < at("template") && at("template") < at("kubernetes"));
}

#[test]
fn openshift() {
    let (_, c) = stock("openshift.Corefile");
    assert_eq!(keys(&c), [vec![(".".to_string(), 5353)], vec![("hostname.bind.".to_string(), 5353)]]);
    let b = &c.blocks[0];
    assert!(matches!(find(b, "bufsize"), Plugin::Bufsize(1232)));
    let Plugin::Log(l) = find(b, "log") else { panic!() };
    assert_eq!(l.names, ["."]);
    assert_eq!(l.classes, LogClasses { success: false, denial: false, error: true });
    let Plugin::Forward(f) = find(b, "forward") else { panic!() };
    assert_eq!(f.policy, Policy::Sequential);
    let Plugin::Cache(cache) = find(b, "cache") else { panic!() };
    assert_eq!((cache.success.max_ttl, cache.denial.max_ttl), (Duration::from_secs(900), Duration::from_secs(30)));
    assert_eq!((cache.success.capacity, cache.denial.capacity), (9984, 9984));
    assert_eq!((lameduck(b), prometheus(b)), (Duration::from_secs(20), "127.0.0.1:9153".to_string()));
    let Plugin::Chaos(ch) = find(&c.blocks[1], "chaos") else { panic!() };
    assert!(ch.version.starts_with("clusterdns-"));
}

#[test]
fn nodelocal() {
    let (_, c) = stock("nodelocal.Corefile");
    let zones_by_block: Vec<Vec<String>> = c.blocks.iter().map(|b| b.zones()).collect();
    assert_eq!(
        zones_by_block,
        [zones(&["cluster.local."]), zones(&["in-addr.arpa."]), zones(&["ip6.arpa."]), zones(&["."])]
    );
    let bound: Vec<IpAddr> = vec!["127.0.0.10".parse().unwrap(), "127.0.0.11".parse().unwrap()];
    for (i, b) in c.blocks.iter().enumerate() {
        assert_eq!(b.keys[0].port, 53);
        assert!(matches!(find(b, "bind"), Plugin::Bind(ips) if *ips == bound));
        assert_eq!(prometheus(b), "0.0.0.0:9253");
        let Plugin::Forward(f) = find(b, "forward") else { panic!() };
        if i < 3 {
            assert!(f.force_tcp, "block {i}");
            assert_eq!(f.to, ["127.0.0.12:53".parse().unwrap()]);
        } else {
            assert!(!f.force_tcp);
            assert_eq!(f.to, ["127.0.0.13:53".parse().unwrap(), "127.0.0.14:53".parse().unwrap()]);
        }
    }
    let first = &c.blocks[0];
    let Plugin::Cache(cache) = find(first, "cache") else { panic!() };
    assert_eq!((cache.success.capacity, cache.success.max_ttl), (9984, Duration::from_secs(30)));
    assert_eq!((cache.denial.capacity, cache.denial.max_ttl), (9984, Duration::from_secs(5)));
    let Plugin::Health(h) = find(first, "health") else { panic!() };
    assert_eq!(h.addr.to_string(), "127.0.0.10:8080");
    assert_eq!(names(first), ["reload", "bind", "health", "prometheus", "errors", "cache", "loop", "forward"]);
}
