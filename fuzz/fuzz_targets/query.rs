//! Arbitrary bytes as a client's message through the real path of the
//! server: `plugins::handle` (parse, route, the chain), over UDP and TCP,
//! against the fixture cluster and every stock plugin that answers without
//! the network (forward is configured, so the upstream path and the cache
//! are reached, but what would go upstream is dropped unsent).
//!
//! Invariants: nothing panics; every response parses (hickory), is a
//! response with the client's ID, and fits what the client takes (512
//! bytes over UDP without EDNS, its EDNS size up to 1232 with it); a query
//! with one question the server accepted gets that question back byte for
//! byte (case included).

#![no_main]

#[path = "common.rs"]
mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, LazyLock};
use std::time::Instant;

use clusterdns::model::Event;
use clusterdns::plugins::message::{self, Parsed};
use clusterdns::plugins::{Flow, Router, handle};
use clusterdns::records::Updater;
use clusterdns::source::manifests::Manifests;
use libfuzzer_sys::fuzz_target;

/// The chain under test: CoreDNS's plugin order, every stage that answers
/// in place. `forward` points at TEST-NET-1 and is never contacted.
const COREFILE: &str = r#"
example.net:53 {
    template IN ANY example.net {
        match "^(?P<host>[a-z0-9-]+)\.example\.net\.$"
        answer "{{ .Name }} 30 IN A 192.0.2.7"
        additional "ns.{{ .Group.host }}.example.net. 30 IN AAAA 2001:db8::7"
        authority "example.net. 30 IN NS ns.example.net."
    }
}
.:53 {
    any
    chaos clusterdns-fuzz Alice Bob
    loadbalance
    rewrite name exact old.example.com. kafka.default.svc.cluster.local.
    rewrite name suffix .corp.example. .svc.cluster.local. answer auto
    cache 30
    minimal
    template ANY ANY reddog.microsoft.com {
        rcode NXDOMAIN
    }
    template IN A example.test {
        match "^(?P<host>[a-z0-9-]+)\.example\.test\.$"
        answer "{{ .Name }} 60 IN A 10.1.2.3"
    }
    hosts /nonexistent/hosts {
        10.9.9.9 inline.example
        2001:db8::9 inline.example
        ttl 60
        fallthrough
    }
    kubernetes cluster.local in-addr.arpa ip6.arpa {
        manifests FIXTURES
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
    }
    loop
    forward . 192.0.2.53
}
"#;

static ROUTER: LazyLock<Router> = LazyLock::new(|| {
    let fixtures = common::fixtures();
    let text = COREFILE.replace("FIXTURES", &fixtures.display().to_string());
    let env = |_: &str| None;
    let opts = clusterdns::corefile::Options { default_port: 53, env: &env };
    let cf = clusterdns::corefile::parse_str(&text, Path::new("/fuzz/Corefile"), &opts).expect("the Corefile parses");
    let metrics = Arc::new(clusterdns::metrics::Metrics::default());
    let chains = clusterdns::app::build_chains(&cf, &metrics).expect("the chains build");
    // The kubernetes zone loaded from the fixtures, as the manifest source
    // would load it, but here and now.
    let [index] = &chains.indexes[..] else { panic!("one kubernetes zone") };
    let cidr = "10.96.0.0/12".parse().expect("cidr");
    let mut manifests = Manifests::new(vec![fixtures], cidr, Default::default());
    let (objects, _) = manifests.load(true).expect("fixtures load").expect("fixtures");
    let kinds = clusterdns::source::ALL_KINDS.to_vec();
    let mut updater = Updater::new(index.clone(), clusterdns::model::Cluster::new());
    updater.apply(vec![Event::Reset { kinds, objects }]);
    index.set_loaded();
    let [router] = chains.routers.into_values().collect::<Vec<_>>().try_into().ok().expect("one address");
    router
});

fn check(raw: &[u8], udp: bool) {
    let peer: SocketAddr = "10.244.1.5:40000".parse().expect("peer");
    let mut out = Vec::new();
    let what = if udp { "udp" } else { "tcp" };
    let Some((_, flow)) = handle(&ROUTER, raw, udp, peer, &mut out, Instant::now()) else {
        // Nothing sent: only for what is not a query at all.
        assert!(raw.len() < 12 || raw[2] & 0x80 != 0, "{what}: a message with a query header got no response");
        return;
    };
    match flow {
        Flow::Done(_) | Flow::Refresh(..) => {}
        // Would go upstream: nothing is written for the client yet.
        Flow::Forward(_) => return,
    }
    let id = u16::from_be_bytes([raw[0], raw[1]]);
    let parsed = message::parse(raw);
    let edns = match parsed {
        Parsed::Query(_) => common::edns_payload(raw),
        _ => None,
    };
    let limit = common::client_limit(edns, udp, message::UDP_EDNS_MAX);
    let msg = common::check_response(&out, id, limit, what);
    match parsed {
        Parsed::Query(q) => {
            // The question as asked, byte for byte.
            assert_eq!(msg.queries.len(), 1, "{what}: one question");
            let asked = &raw[12..q.question_end()];
            assert_eq!(common::question(&out), Some(asked), "{what}: the question echoed as asked");
            assert_eq!(msg.edns.is_some(), edns.is_some(), "{what}: EDNS answered with EDNS");
        }
        Parsed::Error { .. } => assert!(msg.queries.is_empty() && msg.answers.is_empty(), "{what}: a bare header"),
        Parsed::Drop => panic!("{what}: a dropped message was answered"),
    }
}

fuzz_target!(|data: &[u8]| {
    check(data, true);
    check(data, false);
});
