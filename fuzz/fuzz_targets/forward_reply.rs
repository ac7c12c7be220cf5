//! Arbitrary bytes as an upstream's reply to a known question, through
//! what the forwarder does with a reply: the check that it answers our
//! question (`forward::Expect`), the cache (`Cache::store`, then a hit
//! served from it), the relay to the client (`forward::relay_with`, cut to
//! the client's size), and the merge behind an ExternalName's CNAME
//! (`chase::merge`).
//!
//! The first byte of the input chooses the client: UDP or TCP, its EDNS
//! size (none, small, 512, 1232, 4096), DO and CD; the rest is the reply.
//!
//! Invariants: nothing panics; a reply the check accepts has our ID, QR,
//! opcode QUERY and our question; everything the client gets fits what it
//! takes, carries its ID and its question as it wrote it, and parses
//! (hickory) whenever the upstream's reply did.

#![no_main]

#[path = "common.rs"]
mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::LazyLock;

use clusterdns::corefile::{self, Plugin};
use clusterdns::plugins::chase;
use clusterdns::plugins::forward::{Expect, Reply, Ttl, relay_with};
use clusterdns::plugins::message::{self, Parsed};
use clusterdns::plugins::{Cache, Request};
use hickory_proto::op::Message;
use libfuzzer_sys::fuzz_target;

/// The ID we sent upstream.
const UPSTREAM_ID: u16 = 0x5eed;
/// The client's ID.
const CLIENT_ID: u16 = 0xbeef;
/// The question as the client wrote it (0x20 case).
const QNAME: &[u8] = b"\x03wWw\x07eXample\x03com\x00";
/// The cluster name whose CNAME points at it (an ExternalName).
const CNAME_OWNER: &[u8] = b"\x03ext\x07default\x03svc\x07cluster\x05local\x00";

/// `cache 30 { serve_stale; prefetch }`, parsed once; each input gets a
/// fresh cache of it.
static CACHE: LazyLock<corefile::Cache> = LazyLock::new(|| {
    let env = |_: &str| None;
    let opts = corefile::Options { default_port: 53, env: &env };
    let text = ".:53 {\n cache 30 {\n  serve_stale 1h immediate\n  prefetch 1 10s 10%\n }\n forward . 192.0.2.53\n}\n";
    let cf = corefile::parse_str(text, Path::new("/fuzz/Corefile"), &opts).expect("the Corefile parses");
    cf.blocks[0]
        .plugins
        .iter()
        .find_map(|d| match &d.plugin {
            Plugin::Cache(c) => Some(c.clone()),
            _ => None,
        })
        .expect("a cache")
});

static METRICS: LazyLock<clusterdns::metrics::Metrics> = LazyLock::new(Default::default);

fn cache() -> Cache {
    Cache::new(&CACHE, METRICS.cache_stats("dns://:53".into(), ".".into()))
}

/// The client's query: our question, with the chosen EDNS size, DO and CD.
fn client_query(qtype: u16, edns: Option<u16>, dnssec_ok: bool, cd: bool) -> Vec<u8> {
    let mut q = Vec::new();
    let flags = message::FLAG_RD | if cd { message::FLAG_CD } else { 0 };
    message::header(&mut q, CLIENT_ID, flags, [1, 0, 0, u16::from(edns.is_some())]);
    q.extend_from_slice(QNAME);
    q.extend_from_slice(&qtype.to_be_bytes());
    q.extend_from_slice(&message::CLASS_IN.to_be_bytes());
    if let Some(size) = edns {
        q.extend_from_slice(&[0, 0, 41]);
        q.extend_from_slice(&size.to_be_bytes());
        q.extend_from_slice(&[0, 0, if dnssec_ok { 0x80 } else { 0 }, 0, 0, 0]);
    }
    q
}

/// Our CNAME answer for the ExternalName, as the kubernetes zone writes
/// it: the client asked `ext.default.svc.cluster.local`.
fn cname_prefix(qtype: u16, edns: bool) -> Vec<u8> {
    let mut p = Vec::new();
    message::header(&mut p, CLIENT_ID, message::FLAG_QR | message::FLAG_AA | message::FLAG_RD, [1, 1, 0, 0]);
    p.extend_from_slice(CNAME_OWNER);
    p.extend_from_slice(&qtype.to_be_bytes());
    p.extend_from_slice(&message::CLASS_IN.to_be_bytes());
    let target = QNAME.to_ascii_lowercase();
    message::push_record(&mut p, &[0xC0, 12], message::TYPE_CNAME, message::CLASS_IN, 5, &target);
    if edns {
        message::push_opt(&mut p, 0, false);
        message::set_counts(&mut p, [1, 1, 0, 1]);
    }
    p
}

fn check(data: &[u8]) {
    let Some((&choice, reply)) = data.split_first() else { return };
    let udp = choice & 1 == 0;
    let edns = [None, Some(100), Some(512), Some(1232), Some(4096), Some(1400), None, Some(65535)]
        [usize::from(choice >> 1 & 7)];
    let dnssec_ok = choice & 0x10 != 0;
    let cd = choice & 0x20 != 0;
    let qtype = [message::TYPE_A, message::TYPE_AAAA, 33, message::TYPE_TXT][usize::from(choice >> 6)];
    let query = client_query(qtype, edns, dnssec_ok, cd);
    let Parsed::Query(q) = message::parse(&query) else { panic!("our query parses") };
    let key = QNAME.to_ascii_lowercase();
    let peer: SocketAddr = "10.244.1.5:40000".parse().expect("peer");
    let req = Request { q, key: &key, udp, peer, cap: message::UDP_EDNS_MAX };
    let limit = common::client_limit(edns, udp, message::UDP_EDNS_MAX);

    // The forwarder asked with the client's name (case kept) and its own ID.
    let expect = Expect { id: UPSTREAM_ID, qname: QNAME, qtype, qclass: message::CLASS_IN };
    let Some(walk) = expect.check(reply) else { return };
    assert_eq!(u16::from_be_bytes([reply[0], reply[1]]), UPSTREAM_ID, "accepted: our ID");
    assert!(reply[2] & 0x80 != 0 && (reply[2] >> 3) & 0xF == 0, "accepted: a response to a QUERY");
    let asked = &reply[12..walk.question_end];
    assert!(asked.len() == QNAME.len() + 4 && asked[..QNAME.len()].eq_ignore_ascii_case(QNAME), "accepted: our name");
    assert_eq!(&asked[QNAME.len()..], &[(qtype >> 8) as u8, qtype as u8, 0, 1], "accepted: our type and class");
    let upstream_parses = Message::from_vec(reply).is_ok();
    let check_out = |out: &[u8], what: &str| {
        if upstream_parses {
            common::check_response(out, CLIENT_ID, limit, what);
        } else {
            assert!(out.len() <= limit, "{what}: {} bytes, the client takes {limit}", out.len());
            assert_eq!(&out[..2], &CLIENT_ID.to_be_bytes(), "{what}: the client's ID");
        }
        assert_eq!(common::question(out), Some(&query[12..q.question_end()]), "{what}: the question as asked");
    };

    let reply = Reply { bytes: reply.to_vec(), walk };
    let cache = cache();
    let ttl = cache.store(&req, &reply).map_or(Ttl::Keep, Ttl::Fixed);
    let mut out = Vec::new();
    relay_with(&req, &reply.bytes, &reply.walk, ttl, &mut out);
    check_out(&out, "relayed");
    out.clear();
    if cache.lookup(&req, &mut out).is_some() {
        check_out(&out, "from the cache");
    }
    out.clear();
    if cache.stale(&req, &mut out).is_some() {
        check_out(&out, "stale from the cache");
    }

    // Behind an ExternalName's CNAME.
    let prefix = cname_prefix(qtype, edns.is_some());
    out.clear();
    chase::merge(&prefix, Some(&reply.bytes), limit, &mut out);
    let merged = common::check_response(&out, CLIENT_ID, limit, "merged behind the CNAME");
    assert_eq!(merged.queries.len(), 1, "merged: the question");
    assert_eq!(common::question(&out), common::question(&prefix), "merged: the client's question");
}

fuzz_target!(|data: &[u8]| check(data));
