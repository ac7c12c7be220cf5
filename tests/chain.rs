//! The stock chain's plugins over real sockets, from Corefile text: hosts,
//! template, chaos, rewrite, loadbalance, any, minimal, bufsize, loop, the
//! ExternalName chased upstream, Kubernetes's ConfigMap scenarios (a stub
//! domain, reverse look-ups forwarded), and reload.

mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::upstream::Upstream;
use common::{Transport, WAIT, answers, ask_within, make_query, query, serve};
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{DNSClass, RecordType};

fn kube(extra: &str) -> String {
    common::kube_corefile(extra)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configmap_scenarios_stub_domain_reverse_and_external_name() {
    // Kubernetes's e2e dns_configmap.go: a stub domain, the upstream for
    // the rest, reverse look-ups forwarded, an ExternalName outside the
    // cluster answered with its CNAME and the target's address.
    let stub = Upstream::start("127.0.0.20", 0);
    stub.a("dns-test.acme.local.", 30, "10.10.10.10");
    let up = Upstream::start("127.0.0.21", 0);
    up.a("my.database.example.com.", 300, "203.0.113.50").ptr("7.100.51.198.in-addr.arpa.", 300, "host.example.net.");
    let text = format!(
        "acme.local:0 {{\n bind 127.0.0.1\n forward . {}\n}}\n{}",
        stub.addr,
        kube(&format!("    forward . {}\n    cache 30", up.addr))
    );
    let (inst, metrics) = serve(&text).await;
    let dns = inst.addrs()[0];
    let m = query(dns, "dns-test.acme.local.", RecordType::A).await;
    assert_eq!(answers(&m), vec!["dns-test.acme.local. A 10.10.10.10"]);
    // Counted under its block's zone and the plugin that answered.
    let body = metrics.render();
    let server = format!("dns://{dns}");
    for line in [
        format!(
            "coredns_dns_responses_total{{server=\"{server}\",zone=\"acme.local.\",view=\"\",rcode=\"NOERROR\",plugin=\"forward\"}} 1"
        ),
        format!(
            "coredns_dns_request_size_bytes_count{{server=\"{server}\",zone=\"acme.local.\",view=\"\",proto=\"udp\"}} 1"
        ),
        format!(
            "coredns_dns_response_size_bytes_bucket{{server=\"{server}\",zone=\"acme.local.\",view=\"\",proto=\"udp\",le=\"100\"}} 1"
        ),
    ] {
        assert!(body.contains(&line), "{line} not in\n{body}");
    }
    assert_eq!(up.count("dns-test.acme.local."), 0, "the stub domain goes to its own server only");
    let m = query(dns, "7.100.51.198.in-addr.arpa.", RecordType::PTR).await;
    assert_eq!(answers(&m), vec!["7.100.51.198.in-addr.arpa. PTR host.example.net."]);
    // R9: CNAME first, then the target's records from upstream.
    let m = query(dns, "outside.ext.svc.cluster.local.", RecordType::A).await;
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    let got: Vec<String> = m.answers.iter().map(common::show).collect();
    assert_eq!(
        got,
        vec![
            "outside.ext.svc.cluster.local. CNAME my.database.example.com.",
            "my.database.example.com. A 203.0.113.50"
        ]
    );
    // The CNAME alone when that is what was asked.
    let m = query(dns, "outside.ext.svc.cluster.local.", RecordType::CNAME).await;
    assert_eq!(answers(&m), vec!["outside.ext.svc.cluster.local. CNAME my.database.example.com."]);
    // The target has no AAAA: the CNAME alone, NOERROR.
    let m = query(dns, "outside.ext.svc.cluster.local.", RecordType::AAAA).await;
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert_eq!(m.answers.len(), 1);
    // The target does not exist: still NOERROR (the name asked exists; an
    // NXDOMAIN would send clients down their search path), as Unbound says.
    let m = query(dns, "db.ext2.svc.cluster.local.", RecordType::A).await;
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert_eq!(answers(&m), vec!["db.ext2.svc.cluster.local. CNAME gone.example.com."]);
    inst.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hosts_inline_and_file_with_fallthrough() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("NodeHosts");
    std::fs::write(&file, "172.18.0.2 agent-1\n172.18.0.3 agent-2 agent-2.lan\n").unwrap();
    let text = kube(&format!(
        "    hosts {} {{\n        10.9.9.9 inline.example\n        ttl 60\n        reload 100ms\n        fallthrough\n    }}",
        file.display()
    ));
    let (inst, metrics) = serve(&text).await;
    let dns = inst.addrs()[0];
    let m = query(dns, "agent-1.", RecordType::A).await;
    assert_eq!(answers(&m), vec!["agent-1. A 172.18.0.2"]);
    assert_eq!(m.answers[0].ttl, 60);
    assert!(m.metadata.authoritative);
    assert_eq!(answers(&query(dns, "inline.example.", RecordType::A).await), vec!["inline.example. A 10.9.9.9"]);
    assert_eq!(
        answers(&query(dns, "3.0.18.172.in-addr.arpa.", RecordType::PTR).await),
        vec!["3.0.18.172.in-addr.arpa. PTR agent-2.", "3.0.18.172.in-addr.arpa. PTR agent-2.lan."]
    );
    // In the table without that type: NODATA. Not in it: on to kubernetes.
    let m = query(dns, "agent-1.", RecordType::AAAA).await;
    assert_eq!((m.metadata.response_code, m.answers.len()), (ResponseCode::NoError, 0));
    let m = query(dns, "kafka.default.svc.cluster.local.", RecordType::A).await;
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert!(!m.answers.is_empty());
    // The file changes: read again.
    std::fs::write(&file, "172.18.0.9 agent-1\n").unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if answers(&query(dns, "agent-1.", RecordType::A).await) == vec!["agent-1. A 172.18.0.9"] {
            break;
        }
        assert!(Instant::now() < deadline, "hosts file not reloaded");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(metrics.render().contains("coredns_hosts_entries 2"), "{}", metrics.render());
    inst.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aks_templates_and_an_answer_template() {
    // AKS's two templates, verbatim, and one that makes an answer.
    let extra = r#"    template ANY ANY internal.cloudapp.net {
      match "^(?:[^.]+\.){4,}internal\.cloudapp\.net\.$"
      rcode NXDOMAIN
      fallthrough
    }
    template ANY ANY reddog.microsoft.com {
      rcode NXDOMAIN
    }
    template IN A example.test {
      match "^(?P<host>[a-z0-9-]+)\.example\.test\.$"
      answer "{{ .Name }} 60 IN A 10.1.2.3"
    }"#;
    let up = Upstream::start("127.0.0.22", 0);
    up.a("vm1.internal.cloudapp.net.", 300, "10.0.0.4");
    let (inst, metrics) = serve(&kube(&format!("{extra}\n    forward . {}", up.addr))).await;
    let dns = inst.addrs()[0];
    let m = query(dns, "a.b.c.d.internal.cloudapp.net.", RecordType::A).await;
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    assert_eq!(up.count("a.b.c.d.internal.cloudapp.net."), 0);
    // Fewer labels: no match, falls through to forward.
    let m = query(dns, "vm1.internal.cloudapp.net.", RecordType::A).await;
    assert_eq!(answers(&m), vec!["vm1.internal.cloudapp.net. A 10.0.0.4"]);
    let m = query(dns, "anything.reddog.microsoft.com.", RecordType::AAAA).await;
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    let m = query(dns, "web.example.test.", RecordType::A).await;
    assert_eq!(answers(&m), vec!["web.example.test. A 10.1.2.3"]);
    assert!(m.metadata.authoritative);
    // In its zone, no regex matches, no fallthrough: SERVFAIL (CoreDNS).
    let m = query(dns, "a.b.example.test.", RecordType::A).await;
    assert_eq!(m.metadata.response_code, ResponseCode::ServFail);
    assert!(metrics.render().contains("coredns_template_matches_total{server="));
    inst.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_any_minimal_and_bufsize() {
    let (inst, _) = serve(&kube("    chaos clusterdns-test Alice Bob\n    any\n    minimal\n    bufsize 512")).await;
    let dns = inst.addrs()[0];
    let ask_ch = |name: &'static str| {
        let mut q = Message::query();
        q.metadata.id = 7;
        let mut question =
            hickory_proto::op::Query::query(hickory_proto::rr::Name::from_ascii(name).unwrap(), RecordType::TXT);
        question.set_query_class(DNSClass::CH);
        q.add_query(question);
        let bytes = q.to_vec().unwrap();
        move || {
            let reply = common::exchange(dns, &bytes, Transport::Udp).unwrap();
            Message::from_vec(&reply).unwrap()
        }
    };
    let m = tokio::task::spawn_blocking(ask_ch("version.bind.")).await.unwrap();
    assert_eq!(answers(&m), vec!["version.bind. TXT \"clusterdns-test\""]);
    let m = tokio::task::spawn_blocking(ask_ch("authors.bind.")).await.unwrap();
    assert_eq!(answers(&m), vec!["authors.bind. TXT \"Alice\"", "authors.bind. TXT \"Bob\""]);
    let m = tokio::task::spawn_blocking(ask_ch("hostname.bind.")).await.unwrap();
    assert_eq!(m.answers.len(), 1);
    // any: HINFO "RFC8482".
    let m = query(dns, "kafka.default.svc.cluster.local.", RecordType::ANY).await;
    assert_eq!(m.answers.len(), 1);
    assert_eq!(m.answers[0].record_type(), RecordType::HINFO);
    // minimal: an SRV answer without the targets' addresses.
    let m = query(dns, "_web._tcp.nginx.web.svc.cluster.local.", RecordType::SRV).await;
    assert_eq!(m.answers.len(), 2);
    assert!(m.additionals.is_empty(), "{m:?}");
    // bufsize 512: a client offering 4096 gets at most 512 bytes.
    let packet = make_query("headless-svc.jobs.svc.cluster.local.", RecordType::A, Some(4096));
    let reply =
        tokio::task::spawn_blocking(move || common::exchange(dns, &packet, Transport::Udp).unwrap()).await.unwrap();
    assert!(reply.len() <= 512);
    inst.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loadbalance_rotates_and_rewrite_is_invisible() {
    let up = Upstream::start("127.0.0.23", 0);
    up.a("h1.example.com.", 300, "203.0.113.1");
    let extra = format!(
        "    loadbalance\n    rewrite name exact old.example.com. h1.example.com.\n    rewrite name suffix .corp.example. .svc.cluster.local. answer auto\n    forward . {}",
        up.addr
    );
    let (inst, _) = serve(&kube(&extra)).await;
    let dns = inst.addrs()[0];
    let mut firsts = HashSet::new();
    for _ in 0..8 {
        let m = query(dns, "headless-svc.jobs.svc.cluster.local.", RecordType::A).await;
        assert_eq!(m.answers.len(), 4);
        firsts.insert(common::show(&m.answers[0]));
    }
    assert!(firsts.len() >= 2, "the first address changes: {firsts:?}");
    // rewrite: the client sees its own question and names.
    let m = query(dns, "old.example.com.", RecordType::A).await;
    assert_eq!(m.queries[0].name().to_ascii(), "old.example.com.");
    assert_eq!(answers(&m), vec!["old.example.com. A 203.0.113.1"]);
    let m = query(dns, "kafka.default.corp.example.", RecordType::A).await;
    assert_eq!(m.queries[0].name().to_ascii(), "kafka.default.corp.example.");
    assert!(!m.answers.is_empty());
    assert!(m.answers.iter().all(|r| r.name.to_ascii() == "kafka.default.corp.example."), "{m:?}");
    inst.shutdown().await;
}

use common::free_port;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forwarding_loop_fails_only_forwarded_names() {
    // The server forwards to itself: CoreDNS would exit (and crash-loop).
    let port = free_port();
    let text = format!(
        ".:{port} {{
    bind 127.0.0.1
    kubernetes cluster.local {{
        manifests {{fixtures}}
    }}
    forward . 127.0.0.1:{port}
    loop
}}"
    );
    let (inst, metrics) = serve(&text).await;
    let dns = inst.addrs()[0];
    let deadline = Instant::now() + Duration::from_secs(10);
    while !metrics.render().contains("clusterdns_loop_detected 1") {
        assert!(Instant::now() < deadline, "loop not detected: {}", metrics.render());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let m = query(dns, "example.com.", RecordType::A).await;
    assert_eq!(m.metadata.response_code, ResponseCode::ServFail);
    let m = query(dns, "kafka.default.svc.cluster.local.", RecordType::A).await;
    assert_eq!(m.metadata.response_code, ResponseCode::NoError, "the cluster zone keeps answering");
    inst.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_switches_upstream_and_drops_no_question() {
    let old = Upstream::start("127.0.0.24", 0);
    old.a("h1.example.com.", 300, "203.0.113.1");
    let new = Upstream::start("127.0.0.25", 0);
    new.a("h1.example.com.", 300, "198.51.100.1");
    let (inst, _) = serve(&kube(&format!("    forward . {}", old.addr))).await;
    let dns = inst.addrs()[0];
    let inst = Arc::new(tokio::sync::Mutex::new(inst));
    // A client asks throughout, cluster and external names alike.
    let stop = Arc::new(AtomicBool::new(false));
    let (asked, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let client = {
        let (stop, asked, failed) = (stop.clone(), asked.clone(), failed.clone());
        tokio::task::spawn_blocking(move || {
            while !stop.load(Ordering::Relaxed) {
                for (name, t) in
                    [("kafka.default.svc.cluster.local.", RecordType::A), ("h1.example.com.", RecordType::A)]
                {
                    let m = ask_within(dns, name, t, Transport::Udp, None, Duration::from_secs(3));
                    asked.fetch_add(1, Ordering::Relaxed);
                    if m.metadata.response_code != ResponseCode::NoError || m.answers.is_empty() {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let text =
        kube(&format!("    forward . {}", new.addr)).replace("{fixtures}", &common::fixtures().display().to_string());
    let env = |_: &str| None;
    let cf = clusterdns::corefile::parse_str(
        &text,
        std::path::Path::new("Corefile"),
        &clusterdns::corefile::Options { default_port: 53, env: &env },
    )
    .unwrap();
    inst.lock().await.apply(&cf).await.unwrap();
    assert_eq!(inst.lock().await.addrs(), vec![dns], "same listener kept");
    tokio::time::sleep(Duration::from_millis(300)).await;
    // A kubernetes option changes: a new zone index, loaded before it
    // answers (the old one serves until then).
    let changed = text.replace("pods insecure", "pods insecure\n        ttl 30");
    let env2 = |_: &str| None;
    let opts = clusterdns::corefile::Options { default_port: 53, env: &env2 };
    let cf2 = clusterdns::corefile::parse_str(&changed, std::path::Path::new("Corefile"), &opts).unwrap();
    inst.lock().await.apply(&cf2).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    client.await.unwrap();
    assert!(asked.load(Ordering::Relaxed) > 20);
    assert_eq!(failed.load(Ordering::Relaxed), 0, "no question failed across the reload");
    let m = query(dns, "h1.example.com.", RecordType::A).await;
    assert_eq!(answers(&m), vec!["h1.example.com. A 198.51.100.1"], "the new upstream answers");
    let m = query(dns, "kafka.default.svc.cluster.local.", RecordType::A).await;
    assert!(m.answers.iter().all(|r| r.ttl == 30), "the new kubernetes options: {m:?}");
    // A Corefile that parses but cannot start (its new address is taken by
    // the upstream): the reload fails and the running one stays.
    let bad = format!("{changed}\n.:{} {{\n bind 127.0.0.25\n forward . 127.0.0.1:1\n}}\n", new.addr.port());
    let cf3 = clusterdns::corefile::parse_str(&bad, std::path::Path::new("Corefile"), &opts).unwrap();
    assert!(inst.lock().await.apply(&cf3).await.is_err(), "the address is in use");
    let m = query(dns, "h1.example.com.", RecordType::A).await;
    assert_eq!(answers(&m), vec!["h1.example.com. A 198.51.100.1"]);
    Arc::try_unwrap(inst).ok().unwrap().into_inner().shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubernetes_endpoint_and_kubeconfig_context() {
    let api = common::fake_api::FakeApi::start().await;
    api.apply("apiVersion: v1\nkind: Namespace\nmetadata: {name: team}\n");
    api.apply(
        "apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: team}\n\
         spec: {clusterIP: 10.96.0.30, clusterIPs: [10.96.0.30], ports: [{port: 80}]}\n",
    );
    // `endpoint URL`: the API server reached directly (kubectl proxy style).
    let text = format!(".:0 {{\n bind 127.0.0.1\n kubernetes cluster.local {{\n endpoint http://{}\n }}\n}}", api.addr);
    let (inst, _) = serve(&text).await;
    let m = query(inst.addrs()[0], "web.team.svc.cluster.local.", RecordType::A).await;
    assert_eq!(answers(&m), vec!["web.team.svc.cluster.local. A 10.96.0.30"]);
    inst.shutdown().await;
    // `kubeconfig PATH CONTEXT`: the named context, not the current one
    // (which points nowhere).
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kubeconfig");
    let kubeconfig = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: dead\n  cluster: {{server: 'http://127.0.0.1:1'}}\n\
         - name: fake\n  cluster: {{server: 'http://{}'}}\nusers:\n- name: u\n  user: {{}}\ncontexts:\n\
         - name: dead\n  context: {{cluster: dead, user: u}}\n- name: fake\n  context: {{cluster: fake, user: u}}\n\
         current-context: dead\n",
        api.addr
    );
    std::fs::write(&path, kubeconfig).unwrap();
    let text =
        format!(".:0 {{\n bind 127.0.0.1\n kubernetes cluster.local {{\n kubeconfig {} fake\n }}\n}}", path.display());
    let (inst, _) = serve(&text).await;
    let m = query(inst.addrs()[0], "web.team.svc.cluster.local.", RecordType::A).await;
    assert_eq!(answers(&m), vec!["web.team.svc.cluster.local. A 10.96.0.30"]);
    inst.shutdown().await;
}

/// A reload that replaces a zone stops the old zone's source: its watches
/// close (they would otherwise pile up on the API server, one set per
/// reload), and so does every source at shutdown.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replaced_zone_stops_watching() {
    let api = common::fake_api::FakeApi::start().await;
    api.apply("apiVersion: v1\nkind: Namespace\nmetadata: {name: team}\n");
    let text = |ttl: u32| {
        format!(
            ".:0 {{\n bind 127.0.0.1\n kubernetes cluster.local {{\n endpoint http://{}\n ttl {ttl}\n }}\n}}",
            api.addr
        )
    };
    let settle = |want: usize| {
        let api = &api;
        async move {
            let deadline = Instant::now() + WAIT;
            while api.open_watches() != want && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            api.open_watches()
        }
    };
    let (mut inst, _) = serve(&text(5)).await;
    // Namespaces, Services, EndpointSlices.
    assert_eq!(settle(3).await, 3);
    let env = |_: &str| None;
    let opts = clusterdns::corefile::Options { default_port: 53, env: &env };
    for ttl in [6, 7, 8] {
        let cf = clusterdns::corefile::parse_str(&text(ttl), std::path::Path::new("Corefile"), &opts).unwrap();
        inst.apply(&cf).await.unwrap();
        assert_eq!(settle(3).await, 3, "after the reload to ttl {ttl}");
    }
    let m = query(inst.addrs()[0], "team.svc.cluster.local.", RecordType::A).await;
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    inst.shutdown().await;
    assert_eq!(settle(0).await, 0, "watches left open after shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn noendpoints_and_ignore_empty_service() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("cluster.yaml"),
        "apiVersion: v1\nkind: Service\nmetadata: {name: lonely, namespace: t}\n\
         spec: {clusterIP: 10.96.0.77, ports: [{port: 80}]}\n---\n\
         apiVersion: v1\nkind: Service\nmetadata: {name: busy, namespace: t}\n\
         spec: {clusterIP: 10.96.0.78, ports: [{name: http, port: 80}]}\n---\n\
         apiVersion: v1\nkind: Service\nmetadata: {name: open, namespace: t}\nspec: {clusterIP: None}\n---\n\
         apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: busy-1\n  namespace: t\n\
         \x20 labels: {kubernetes.io/service-name: busy}\naddressType: IPv4\n\
         endpoints: [{addresses: [10.244.0.5]}]\nports: [{name: http, port: 80}]\n---\n\
         apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: open-1\n  namespace: t\n\
         \x20 labels: {kubernetes.io/service-name: open}\naddressType: IPv4\n\
         endpoints: [{addresses: [10.244.0.6]}]\n",
    )
    .unwrap();
    let block = |option: &str| {
        format!(
            ".:0 {{\n bind 127.0.0.1\n kubernetes cluster.local in-addr.arpa {{\n manifests {}\n {option}\n }}\n}}",
            dir.path().display()
        )
    };
    // ignore empty_service: the Service without a ready endpoint is gone.
    let (inst, _) = serve(&block("ignore empty_service")).await;
    let dns = inst.addrs()[0];
    let m = query(dns, "lonely.t.svc.cluster.local.", RecordType::A).await;
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    let m = query(dns, "busy.t.svc.cluster.local.", RecordType::A).await;
    assert_eq!(answers(&m), vec!["busy.t.svc.cluster.local. A 10.96.0.78"]);
    inst.shutdown().await;
    // noendpoints: no names from endpoints; ClusterIPs still answer.
    let (inst, _) = serve(&block("noendpoints")).await;
    let dns = inst.addrs()[0];
    let m = query(dns, "busy.t.svc.cluster.local.", RecordType::A).await;
    assert_eq!(answers(&m), vec!["busy.t.svc.cluster.local. A 10.96.0.78"]);
    let m = query(dns, "10-244-0-5.busy.t.svc.cluster.local.", RecordType::A).await;
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    let m = query(dns, "open.t.svc.cluster.local.", RecordType::A).await;
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain, "headless Services do not resolve");
    let m = query(dns, "5.0.244.10.in-addr.arpa.", RecordType::PTR).await;
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    // Without either, all of them answer.
    inst.shutdown().await;
    let (inst, _) = serve(&block("")).await;
    let dns = inst.addrs()[0];
    for name in ["lonely.t.svc.cluster.local.", "10-244-0-5.busy.t.svc.cluster.local.", "open.t.svc.cluster.local."] {
        assert_eq!(query(dns, name, RecordType::A).await.metadata.response_code, ResponseCode::NoError, "{name}");
    }
    inst.shutdown().await;
}

/// `namespaces`, `labels`, `namespace_labels` and `endpoint_pod_names`
/// from manifests, as CoreDNS applies them to the API's objects.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubernetes_scope_options_and_endpoint_pod_names() {
    let dir = tempfile::tempdir().unwrap();
    let svc = |ns: &str, name: &str, ip: &str, labels: &str| {
        format!(
            "apiVersion: v1\nkind: Service\nmetadata: {{name: {name}, namespace: {ns}, labels: {{{labels}}}}}\n\
             spec: {{clusterIP: {ip}, ports: [{{name: http, port: 80}}]}}\n---\n"
        )
    };
    let mut text = String::new();
    text += "apiVersion: v1\nkind: Namespace\nmetadata: {name: a, labels: {dns: \"on\"}}\n---\n";
    text += "apiVersion: v1\nkind: Namespace\nmetadata: {name: b, labels: {dns: \"off\"}}\n---\n";
    text += &svc("a", "web", "10.96.0.10", "expose: \"yes\"");
    text += &svc("a", "quiet", "10.96.0.11", "");
    text += &svc("b", "web", "10.96.0.12", "expose: \"yes\"");
    text += &svc("c", "web", "10.96.0.13", "expose: \"yes\"");
    // A headless Service whose slice names its Pods (one with a hostname,
    // one with a name too long for a label, one without a targetRef).
    let long = "p".repeat(64);
    text += "apiVersion: v1\nkind: Service\nmetadata: {name: db, namespace: a, labels: {expose: \"yes\"}}\n\
             spec: {clusterIP: None, ports: [{name: sql, port: 5432}]}\n---\n";
    text += &format!(
        "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: db-1\n  namespace: a\n\
         \x20 labels: {{kubernetes.io/service-name: db, expose: \"yes\"}}\naddressType: IPv4\nports: [{{name: sql, port: 5432}}]\n\
         endpoints:\n\
         - {{addresses: [10.244.0.1], targetRef: {{kind: Pod, name: db-7f9c-x2x, namespace: a}}}}\n\
         - {{addresses: [10.244.0.2], hostname: db-0, targetRef: {{kind: Pod, name: db-0-pod, namespace: a}}}}\n\
         - {{addresses: [10.244.0.3], targetRef: {{kind: Pod, name: {long}, namespace: a}}}}\n\
         - {{addresses: [10.244.0.4]}}\n"
    );
    std::fs::write(dir.path().join("cluster.yaml"), text).unwrap();
    let block = |options: &str| {
        format!(
            ".:0 {{\n bind 127.0.0.1\n kubernetes cluster.local in-addr.arpa {{\n manifests {}\n {options}\n }}\n}}",
            dir.path().display()
        )
    };
    let rc = |m: &Message| m.metadata.response_code;
    let a = RecordType::A;

    let (inst, _) = serve(&block("namespaces a c")).await;
    let dns = inst.addrs()[0];
    for (name, want) in [
        ("web.a.svc.cluster.local.", ResponseCode::NoError),
        ("quiet.a.svc.cluster.local.", ResponseCode::NoError),
        ("web.b.svc.cluster.local.", ResponseCode::NXDomain),
        ("b.svc.cluster.local.", ResponseCode::NXDomain),
        ("web.c.svc.cluster.local.", ResponseCode::NoError),
    ] {
        assert_eq!(rc(&query(dns, name, a).await), want, "namespaces: {name}");
    }
    inst.shutdown().await;

    let (inst, _) = serve(&block("labels expose=yes")).await;
    let dns = inst.addrs()[0];
    assert_eq!(rc(&query(dns, "quiet.a.svc.cluster.local.", a).await), ResponseCode::NXDomain);
    for name in ["web.a.svc.cluster.local.", "web.b.svc.cluster.local.", "db.a.svc.cluster.local."] {
        assert_eq!(rc(&query(dns, name, a).await), ResponseCode::NoError, "labels: {name}");
    }
    inst.shutdown().await;

    // Only a Namespace object whose labels match makes a namespace; `c`
    // has no Namespace object at all.
    let (inst, _) = serve(&block("namespace_labels dns in (on)")).await;
    let dns = inst.addrs()[0];
    for (name, want) in [
        ("web.a.svc.cluster.local.", ResponseCode::NoError),
        ("a.svc.cluster.local.", ResponseCode::NoError),
        ("web.b.svc.cluster.local.", ResponseCode::NXDomain),
        ("b.svc.cluster.local.", ResponseCode::NXDomain),
        ("web.c.svc.cluster.local.", ResponseCode::NXDomain),
        ("12.0.96.10.in-addr.arpa.", ResponseCode::NXDomain),
    ] {
        assert_eq!(rc(&query(dns, name, RecordType::PTR).await), want, "namespace_labels: {name}");
    }
    inst.shutdown().await;

    // endpoint_pod_names: hostname first, then the Pod's name, then the
    // dashed IP (no targetRef, or a name longer than a label).
    let names = |m: &Message| {
        let mut v: Vec<String> = answers(m);
        v.sort();
        v
    };
    let (inst, _) = serve(&block("endpoint_pod_names")).await;
    let dns = inst.addrs()[0];
    let m = query(dns, "db-7f9c-x2x.db.a.svc.cluster.local.", a).await;
    assert_eq!(answers(&m), vec!["db-7f9c-x2x.db.a.svc.cluster.local. A 10.244.0.1"]);
    let m = query(dns, "1.0.244.10.in-addr.arpa.", RecordType::PTR).await;
    assert_eq!(answers(&m), vec!["1.0.244.10.in-addr.arpa. PTR db-7f9c-x2x.db.a.svc.cluster.local."]);
    let m = query(dns, "_sql._tcp.db.a.svc.cluster.local.", RecordType::SRV).await;
    let srv = names(&m).join("\n");
    for target in ["db-7f9c-x2x", "db-0", "10-244-0-3", "10-244-0-4"] {
        assert!(srv.contains(&format!(" {target}.db.a.svc.cluster.local.")), "{target} in\n{srv}");
    }
    assert!(!srv.contains("db-0-pod"), "a hostname wins over the Pod's name:\n{srv}");
    inst.shutdown().await;
    // Without it, the dashed IP.
    let (inst, _) = serve(&block("")).await;
    let dns = inst.addrs()[0];
    assert_eq!(rc(&query(dns, "db-7f9c-x2x.db.a.svc.cluster.local.", a).await), ResponseCode::NXDomain);
    let m = query(dns, "10-244-0-1.db.a.svc.cluster.local.", a).await;
    assert_eq!(answers(&m), vec!["10-244-0-1.db.a.svc.cluster.local. A 10.244.0.1"]);
    inst.shutdown().await;
}

/// A reload that changes a kubernetes option builds a new zone; it takes
/// over only once loaded (20,000 Services take seconds to read here), so
/// not one question meets an empty zone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_kubernetes_zone_takes_over_once_loaded() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("cluster.yaml"), common::many_services(20_000)).unwrap();
    let corefile = |option: &str| {
        format!(
            ".:0 {{\n bind 127.0.0.1\n kubernetes cluster.local {{\n manifests {}\n startup_timeout 60s\n {option}\n }}\n}}",
            dir.path().join("cluster.yaml").display()
        )
    };
    let (inst, _) = serve(&corefile("")).await;
    let dns = inst.addrs()[0];
    let inst = Arc::new(tokio::sync::Mutex::new(inst));
    let stop = Arc::new(AtomicBool::new(false));
    let client = {
        let stop = stop.clone();
        tokio::task::spawn_blocking(move || {
            let mut bad = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let m = ask_within(dns, "svc-7.default.svc.cluster.local.", RecordType::A, Transport::Udp, None, WAIT);
                if m.metadata.response_code != ResponseCode::NoError {
                    bad.push(m.metadata.response_code);
                }
            }
            bad
        })
    };
    let env = |_: &str| None;
    let opts = clusterdns::corefile::Options { default_port: 53, env: &env };
    let cf = clusterdns::corefile::parse_str(&corefile("ttl 30"), std::path::Path::new("Corefile"), &opts).unwrap();
    inst.lock().await.apply(&cf).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.store(true, Ordering::Relaxed);
    let bad = client.await.unwrap();
    assert!(bad.is_empty(), "{} questions met an unloaded zone (first: {:?})", bad.len(), bad.first());
    let m = query(dns, "svc-7.default.svc.cluster.local.", RecordType::A).await;
    assert_eq!(m.answers[0].ttl, 30, "the new options answer");
    Arc::try_unwrap(inst).ok().unwrap().into_inner().shutdown().await;
}
