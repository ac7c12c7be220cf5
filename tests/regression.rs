//! One test per way clusterdns was found to break (issue 7), named after
//! what broke, each over real sockets. A comment on each says what used to
//! happen.

mod common;

use std::net::SocketAddr;

use clusterdns::records::PodMode;
use common::{Transport, exchange, fixtures, make_query, start};
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;
use hickory_proto::rr::rdata::opt::EdnsCode;

const NAME: &str = "example-job-0.headless-svc.jobs.svc.cluster.local.";

async fn server() -> (clusterdns::app::Running, SocketAddr) {
    let running = start(vec![fixtures().join("workloads.yaml")], PodMode::Disabled).await;
    let addr = running.addr();
    (running, addr)
}

/// The raw query with the OPT's flags (DO) and an option appended to its rdata.
fn with_option(name: &str, dnssec: bool, option: Option<(u16, &[u8])>) -> Vec<u8> {
    let mut q = make_query(name, RecordType::A, Some(1232));
    // make_query's OPT is last: root, type, class, ttl (4), rdlen (2).
    let n = q.len();
    assert_eq!(&q[n - 11..n - 8], &[0, 0, 41], "OPT last");
    if dnssec {
        q[n - 4] |= 0x80;
    }
    if let Some((code, data)) = option {
        let mut rdata = code.to_be_bytes().to_vec();
        rdata.extend_from_slice(&(data.len() as u16).to_be_bytes());
        rdata.extend_from_slice(data);
        q[n - 2..].copy_from_slice(&(rdata.len() as u16).to_be_bytes());
        q.extend_from_slice(&rdata);
    }
    q
}

fn reply(addr: SocketAddr, q: &[u8]) -> Message {
    let raw = exchange(addr, q, Transport::Udp).expect("a reply");
    Message::from_vec(&raw).expect("the reply parses")
}

/// NOTIFY and UPDATE were answered NOTIMP without the OPT record the
/// question carried (SPEC.md 4: every answer to an OPT question has OPT).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notimp_kept_the_opt_record() {
    let (running, addr) = server().await;
    for opcode in [4u8, 5] {
        let mut q = with_option("cluster.local.", true, None);
        q[2] = (q[2] & 0x87) | (opcode << 3);
        let m = reply(addr, &q);
        assert_eq!(m.metadata.response_code, ResponseCode::NotImp, "opcode {opcode}");
        let edns = m.edns.as_ref().unwrap_or_else(|| panic!("opcode {opcode}: no OPT in the NOTIMP"));
        assert!(edns.flags().dnssec_ok, "DO copied");
        assert_eq!(u8::from(m.metadata.op_code), opcode, "opcode echoed");
    }
    // Without OPT in the question, none in the answer.
    let mut q = make_query("cluster.local.", RecordType::SOA, None);
    q[2] = (q[2] & 0x87) | (5 << 3);
    let m = reply(addr, &q);
    assert_eq!(m.metadata.response_code, ResponseCode::NotImp);
    assert!(m.edns.is_none());
    running.server.shutdown().await;
}

/// A FORMERR (no question) to a message with OPT lost the OPT too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn formerr_kept_the_opt_record() {
    let (running, addr) = server().await;
    let mut q = with_option(NAME, true, None);
    // QDCOUNT 0: the question's bytes go, the OPT stays.
    let question_end = 12 + NAME.len() + 1 + 4;
    q.drain(12..question_end);
    q[5] = 0;
    let m = reply(addr, &q);
    assert_eq!(m.metadata.response_code, ResponseCode::FormErr);
    assert!(m.edns.as_ref().is_some_and(|e| e.flags().dnssec_ok), "{m:?}");
    running.server.shutdown().await;
}

/// A COOKIE option of a length RFC 7873 does not allow was answered
/// NOERROR; it is FORMERR (SPEC.md 4). Well-formed cookies still answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_cookie_was_answered() {
    let (running, addr) = server().await;
    let cookie = u16::from(EdnsCode::Cookie);
    for len in [0usize, 1, 7, 9, 15, 41, 60] {
        let m = reply(addr, &with_option(NAME, false, Some((cookie, &vec![7u8; len]))));
        assert_eq!(m.metadata.response_code, ResponseCode::FormErr, "cookie of {len} bytes");
        assert!(m.edns.is_some(), "the FORMERR carries OPT");
    }
    for len in [8usize, 16, 24, 40] {
        let m = reply(addr, &with_option(NAME, false, Some((cookie, &vec![7u8; len]))));
        assert_eq!(m.metadata.response_code, ResponseCode::NoError, "cookie of {len} bytes");
        assert_eq!(m.answers.len(), 1);
    }
    // An option whose length runs past the record is malformed too.
    let mut q = with_option(NAME, false, Some((cookie, &[7u8; 8])));
    let n = q.len();
    q[n - 9] = 20; // the option says 20 bytes, 8 follow
    assert_eq!(reply(addr, &q).metadata.response_code, ResponseCode::FormErr);
    running.server.shutdown().await;
}

/// QCLASS ANY was answered as if it were IN; CoreDNS refuses every class
/// but IN (and CH for `chaos`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qclass_any_was_answered_as_in() {
    let (running, addr) = server().await;
    let mut q = make_query(NAME, RecordType::A, None);
    let n = q.len();
    q[n - 2..].copy_from_slice(&255u16.to_be_bytes());
    let m = reply(addr, &q);
    assert_eq!(m.metadata.response_code, ResponseCode::Refused);
    assert!(m.answers.is_empty());
    // The same question in class IN answers.
    assert_eq!(reply(addr, &make_query(NAME, RecordType::A, None)).answers.len(), 1);
    running.server.shutdown().await;
}

/// The DO bit of the question is copied into the answer's OPT, on the
/// cluster path and on an error alike (RFC 3225).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_do_bit_is_copied_into_every_answer() {
    let (running, addr) = server().await;
    for (name, dnssec) in [(NAME, true), (NAME, false), ("nope.jobs.svc.cluster.local.", true), ("a.example.", true)] {
        let m = reply(addr, &with_option(name, dnssec, None));
        let edns = m.edns.as_ref().unwrap_or_else(|| panic!("{name}: no OPT"));
        assert_eq!(edns.flags().dnssec_ok, dnssec, "{name}");
    }
    running.server.shutdown().await;
}
