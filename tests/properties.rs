//! Property tests: the invariants the fuzzers check (`fuzz/`), held over
//! real sockets for generated queries. The fixture cluster, served in
//! process with the stock plugins that answer in place, is asked over UDP:
//! names from the fixtures and mutations of them (case, labels added,
//! dropped, made up, lengthened), any type and class, EDNS sizes 0 and
//! 512..=4096 or none, DO, any flags and opcodes, and now and then bytes
//! that are no query at all.
//!
//! Every reply parses, carries the query's ID, fits what the client takes
//! (512 bytes without EDNS, its EDNS size, never under 512 nor over our
//! 1232), and echoes the question as asked, case included; garbage gets no
//! reply or a well-formed one; the server answers afterwards.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::{Transport, ask, exchange_within, serve};
use hickory_proto::op::Message;
use hickory_proto::rr::RecordType;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

/// Names the fixtures serve, a few each plugin answers, and some nobody does.
const NAMES: &[&str] = &[
    "kafka.default.svc.cluster.local",
    "_kafka._tcp.kafka.default.svc.cluster.local",
    "kube-dns.kube-system.svc.cluster.local",
    "_dns._udp.kube-dns.kube-system.svc.cluster.local",
    "10-244-5-2.dual-headless.dual.svc.cluster.local",
    "_http._tcp.dual-headless.dual.svc.cluster.local",
    "dual.dual.svc.cluster.local",
    "outside.ext.svc.cluster.local",
    "chain.ext.svc.cluster.local",
    "dangling.ext.svc.cluster.local",
    "nginx.web.svc.cluster.local",
    "1-2-3-4.default.pod.cluster.local",
    "default.svc.cluster.local",
    "cluster.local",
    "dns-version.cluster.local",
    "10.0.96.10.in-addr.arpa",
    "a.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.6.9.0.0.0.1.0.0.0.0.d.f.ip6.arpa",
    "inline.example",
    "host.example.test",
    // 204 bytes: two records of it go past 512.
    "a-label-of-sixty-three-bytes-to-make-the-name-long-enough-xxxxx.another-label-of-sixty-three-bytes-to-make-the-name-long-xxxxxx.a-third-label-of-sixty-three-bytes-to-make-the-name-long-xxxxxx.long.test",
    "version.bind",
    "example.com",
    "",
];

/// The stock chain over the fixture cluster, with the plugins that answer
/// without an upstream.
fn corefile() -> String {
    common::kube_corefile(
        r#"    any
    chaos clusterdns-test Alice Bob
    loadbalance
    rewrite name suffix .corp.example. .svc.cluster.local. answer auto
    template IN ANY example.test {
        match "^(?P<host>[a-z0-9-]+)\.example\.test\.$"
        answer "{{ .Name }} 60 IN A 10.1.2.3"
        authority "example.test. 60 IN NS ns.example.test."
        additional "ns.{{ .Group.host }}.example.test. 60 IN A 10.1.2.4"
    }
    template IN ANY long.test {
        answer "{{ .Name }} 60 IN A 10.1.2.5"
        answer "{{ .Name }} 60 IN A 10.1.2.6"
    }
    hosts /nonexistent/hosts {
        10.9.9.9 inline.example
        fallthrough
    }"#,
    )
}

#[derive(Clone, Debug)]
enum Case {
    Query { name: Vec<Vec<u8>>, qtype: u16, qclass: u16, flags: u16, edns: Option<(u16, bool)>, id: u16 },
    Garbage(Vec<u8>),
}

/// A label: made up of anything, or of what hostnames are made of.
fn label() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => "[a-zA-Z0-9-]{1,20}".prop_map(String::into_bytes),
        1 => prop::collection::vec(any::<u8>(), 1..=63),
    ]
}

/// A fixture name, mutated: case flipped at random, labels added in front,
/// dropped from the front, or replaced.
fn name() -> impl Strategy<Value = Vec<Vec<u8>>> {
    let base = prop::sample::select(NAMES)
        .prop_map(|n| n.split('.').filter(|l| !l.is_empty()).map(|l| l.as_bytes().to_vec()).collect::<Vec<_>>());
    (base, prop::collection::vec(label(), 1..3), 0usize..3, any::<u64>(), 0u8..8).prop_map(
        |(mut labels, extra, drop, case, how)| {
            match how {
                0 | 1 => {
                    labels.splice(0..0, extra);
                }
                2 => {
                    labels.drain(..drop.min(labels.len()));
                }
                3 if !labels.is_empty() => labels[0] = extra[0].clone(),
                _ => {}
            }
            for (i, b) in labels.iter_mut().flatten().enumerate() {
                if case >> (i % 64) & 1 == 1 {
                    b.make_ascii_uppercase();
                }
            }
            // Lengthened past 255 bytes: the server must refuse, not break.
            if how == 7 {
                labels.extend(std::iter::repeat_n(vec![b'x'; 63], 4));
            }
            labels
        },
    )
}

fn case() -> impl Strategy<Value = Case> {
    let qtype = prop_oneof![
        5 => prop::sample::select(vec![1u16, 28, 33, 255]),
        2 => prop::sample::select(vec![2u16, 5, 6, 12, 15, 16, 35, 41, 252]),
        1 => any::<u16>(),
    ];
    let qclass = prop_oneof![8 => Just(1u16), 1 => Just(3u16), 1 => Just(255u16), 1 => any::<u16>()];
    // Mostly plain RD queries; sometimes any flags but QR (opcodes too).
    let flags = prop_oneof![4 => Just(0x0100u16), 1 => any::<u16>().prop_map(|f| f & 0x7FFF)];
    let size = prop_oneof![1 => Just(0u16), 4 => 512u16..=4096];
    let edns = prop::option::weighted(0.6, (size, any::<bool>()));
    let query = (name(), qtype, qclass, flags, edns, any::<u16>())
        .prop_map(|(name, qtype, qclass, flags, edns, id)| Case::Query { name, qtype, qclass, flags, edns, id });
    prop_oneof![12 => query, 1 => prop::collection::vec(any::<u8>(), 0..120).prop_map(Case::Garbage)]
}

/// The wire form of a query case, and where its question ends.
fn packet(
    name: &[Vec<u8>],
    qtype: u16,
    qclass: u16,
    flags: u16,
    edns: Option<(u16, bool)>,
    id: u16,
) -> (Vec<u8>, usize) {
    let mut p = Vec::new();
    p.extend_from_slice(&id.to_be_bytes());
    p.extend_from_slice(&flags.to_be_bytes());
    p.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, u8::from(edns.is_some())]);
    for l in name {
        let l = &l[..l.len().min(63)];
        p.push(l.len() as u8);
        p.extend_from_slice(l);
    }
    p.push(0);
    p.extend_from_slice(&qtype.to_be_bytes());
    p.extend_from_slice(&qclass.to_be_bytes());
    let question_end = p.len();
    if let Some((size, dnssec_ok)) = edns {
        p.extend_from_slice(&[0, 0, 41]);
        p.extend_from_slice(&size.to_be_bytes());
        p.extend_from_slice(&[0, 0, if dnssec_ok { 0x80 } else { 0 }, 0, 0, 0]);
    }
    (p, question_end)
}

fn check(addr: SocketAddr, case: &Case) -> Result<(), TestCaseError> {
    // A socket per question (`exchange_within`): a late reply cannot pass
    // for the next one's.
    match case {
        Case::Garbage(bytes) => {
            let header = bytes.len() >= 12 && bytes[2] & 0x80 == 0;
            let wait = Duration::from_millis(if header { 2000 } else { 100 });
            if let Some(reply) = exchange_within(addr, bytes, Transport::Udp, wait) {
                prop_assert!(header, "no reply to what has no query header");
                let msg = Message::from_vec(&reply);
                prop_assert!(msg.is_ok(), "the reply to garbage parses: {msg:?}");
                prop_assert_eq!(&reply[..2], &bytes[..2], "the garbage's ID");
            } else {
                prop_assert!(!header, "a message with a query header is answered");
            }
        }
        Case::Query { name, qtype, qclass, flags, edns, id } => {
            let (p, qend) = packet(name, *qtype, *qclass, *flags, *edns, *id);
            let reply = exchange_within(addr, &p, Transport::Udp, Duration::from_secs(2));
            let Some(reply) = reply else { return Err(TestCaseError::fail("no reply to a query")) };
            let limit = match edns {
                None => 512,
                Some((size, _)) => usize::from(*size).clamp(512, 1232),
            };
            prop_assert!(reply.len() <= limit, "{} bytes, the client takes {}", reply.len(), limit);
            let msg = Message::from_vec(&reply);
            prop_assert!(msg.is_ok(), "the reply parses: {:?}\n{:02x?}", msg.err(), reply);
            prop_assert_eq!(u16::from_be_bytes([reply[0], reply[1]]), *id, "the query's ID");
            prop_assert!(reply[2] & 0x80 != 0, "QR");
            let name_len: usize = name.iter().map(|l| l.len().min(63) + 1).sum::<usize>() + 1;
            let opcode = (flags >> 11) & 0xF;
            // A QUERY with a name the protocol allows gets its question back,
            // byte for byte; anything else a bare FORMERR/NOTIMP header.
            if opcode == 0 && name_len <= 255 {
                prop_assert_eq!(&reply[4..6], &[0, 1], "one question");
                prop_assert_eq!(reply.get(12..qend), Some(&p[12..qend]), "the question as asked");
                prop_assert_eq!(msg.unwrap().edns.is_some(), edns.is_some(), "EDNS answered with EDNS");
            } else {
                let rcode = reply[3] & 0xF;
                prop_assert!(rcode == 1 || rcode == 4, "FORMERR or NOTIMP, got {}", rcode);
            }
        }
    }
    Ok(())
}

#[test]
fn every_udp_reply_parses_fits_and_echoes_the_question() {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let (inst, _) = runtime.block_on(serve(&corefile()));
    let addr = inst.addrs()[0];
    // Fixed seed: the same 512 cases each run (a failure reproduces).
    let config = Config { cases: 512, failure_persistence: None, ..Config::default() };
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &[7; 32]);
    let mut runner = TestRunner::new_with_rng(config, rng);
    let result = runner.run(&case(), |c| check(addr, &c));
    // Still answering, whatever came before.
    let msg = ask(addr, "kafka.default.svc.cluster.local.", RecordType::A, Transport::Udp, None);
    assert_eq!(msg.answers.len(), 1, "the server still answers");
    runtime.block_on(inst.shutdown());
    if let Err(e) = result {
        panic!("{e}");
    }
}
