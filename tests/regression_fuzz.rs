//! Regressions found by the fuzzers (`fuzz/`), each named after what broke,
//! over real sockets. The inputs that found them are kept in
//! `fuzz/regressions/`.

mod common;

use common::{Transport, exchange, make_query, serve};
use hickory_proto::op::Message;
use hickory_proto::rr::RecordType;

/// A template whose records name the zone twice: hickory compressed each
/// record against its own buffer, so the copied pointer pointed at offset
/// 0 of the response (the header) and the response did not parse.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn template_records_are_not_compressed_against_their_own_buffer() {
    let text = r#"example.net:0 {
    bind 127.0.0.1
    template IN ANY example.net {
        match "^(?P<host>[a-z0-9-]+)\.example\.net\.$"
        answer "{{ .Name }} 30 IN A 192.0.2.7"
        authority "example.net. 30 IN NS ns.example.net."
        additional "ns.{{ .Group.host }}.example.net. 30 IN AAAA 2001:db8::7"
    }
}"#;
    let (inst, _) = serve(text).await;
    let addr = inst.addrs()[0];
    for qtype in [RecordType::A, RecordType::ANY] {
        let reply = tokio::task::spawn_blocking(move || {
            exchange(addr, &make_query("foo.example.net.", qtype, None), Transport::Udp)
        })
        .await
        .unwrap()
        .expect("a reply");
        let msg = Message::from_vec(&reply).unwrap_or_else(|e| panic!("{qtype}: the response parses: {e}"));
        assert_eq!(msg.answers.len(), 1, "{qtype}");
        assert_eq!(msg.authorities[0].data.to_string(), "ns.example.net.", "{qtype}");
        assert_eq!(msg.additionals.len(), 1, "{qtype}");
    }
    inst.shutdown().await;
}

/// A template answer for a long name, over UDP without EDNS: the response
/// went past 512 bytes (templates wrote every record whatever the size).
/// Now whole records are cut and TC is set, as for every other answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn template_answers_fit_the_clients_size() {
    let text = r#"example.test:0 {
    bind 127.0.0.1
    template IN A example.test {
        answer "{{ .Name }} 60 IN A 10.1.2.3"
        answer "{{ .Name }} 60 IN A 10.1.2.4"
        additional "{{ .Name }} 60 IN A 10.1.2.5"
    }
}"#;
    let (inst, _) = serve(text).await;
    let addr = inst.addrs()[0];
    // 4 labels of 50 + example.test.: a 218-byte name, written out in full
    // in each record.
    let long = format!("{0}.{0}.{0}.{0}.example.test.", "a".repeat(50));
    let cases = [(None, 512, true), (Some(1232), 1232, false), (Some(600), 600, true)];
    for (edns, limit, tc) in cases {
        let packet = make_query(&long, RecordType::A, edns);
        let reply =
            tokio::task::spawn_blocking(move || exchange(addr, &packet, Transport::Udp)).await.unwrap().expect("reply");
        assert!(reply.len() <= limit, "EDNS {edns:?}: {} bytes past {limit}", reply.len());
        let msg = Message::from_vec(&reply).expect("parses");
        assert_eq!(msg.metadata.truncation, tc, "EDNS {edns:?}: TC");
        assert!(!msg.answers.is_empty(), "EDNS {edns:?}: the answers that fit");
    }
    // Over TCP all of it.
    let packet = make_query(&long, RecordType::A, None);
    let reply = tokio::task::spawn_blocking(move || exchange(addr, &packet, Transport::Tcp)).await.unwrap().unwrap();
    let msg = Message::from_vec(&reply).unwrap();
    assert_eq!((msg.answers.len(), msg.additionals.len(), msg.metadata.truncation), (2, 1, false));
    inst.shutdown().await;
}

/// An upstream on 127.0.0.1 that answers each question with the replies
/// `replies` makes of it (raw bytes, sent in order), for as long as the
/// test runs.
fn raw_upstream(replies: impl Fn(&[u8]) -> Vec<Vec<u8>> + Send + 'static) -> std::net::SocketAddr {
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = sock.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok((n, from)) = sock.recv_from(&mut buf) {
            for reply in replies(&buf[..n]) {
                let _ = sock.send_to(&reply, from);
            }
        }
    });
    addr
}

/// The start of a reply to the forwarder's `query`: its ID, QR RD RA, the
/// counts given, its question.
fn reply_head(query: &[u8], counts: [u16; 4]) -> Vec<u8> {
    let qend = 12 + query[12..].iter().position(|&b| b == 0).unwrap() + 1 + 4;
    let mut r = query[..2].to_vec();
    r.extend_from_slice(&[0x81, 0x80]);
    for c in counts {
        r.extend_from_slice(&c.to_be_bytes());
    }
    r.extend_from_slice(&query[12..qend]);
    r
}

/// A record: owner bytes, type A, class IN, TTL 60, the address.
fn a_record(owner: &[u8], ip: [u8; 4]) -> Vec<u8> {
    [owner, &[0, 1, 0, 1, 0, 0, 0, 60, 0, 4], &ip].concat()
}

async fn forward_corefile(upstream: std::net::SocketAddr) -> clusterdns::app::Instance {
    serve(&format!(".:0 {{\n    bind 127.0.0.1\n    forward . {upstream}\n}}")).await.0
}

/// An upstream reply with a record whose owner points into the header
/// (offset 11, ARCOUNT's low byte: the root while it is 0). The relay
/// rewrote the header (our OPT made it 1), so the client got a response
/// that no longer parsed. Such a reply is now dropped as malformed, and
/// the good reply after it is relayed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forward_drops_replies_whose_pointers_point_into_the_header() {
    let upstream = raw_upstream(|q| {
        let mut bad = reply_head(q, [1, 2, 0, 0]);
        bad.extend(a_record(&[0xC0, 0x0C], [10, 0, 0, 1]));
        bad.extend(a_record(&[0xC0, 0x0B], [10, 0, 0, 2]));
        let mut good = reply_head(q, [1, 1, 0, 0]);
        good.extend(a_record(&[0xC0, 0x0C], [10, 0, 0, 3]));
        vec![bad, good]
    });
    let inst = forward_corefile(upstream).await;
    let addr = inst.addrs()[0];
    for edns in [Some(1232), None] {
        let msg = ask_www(addr, edns).await;
        assert_eq!(common::answers(&msg), vec!["www.example.com. A 10.0.0.3"], "EDNS {edns:?}: the good reply");
    }
    inst.shutdown().await;
}

/// `www.example.com. A` over UDP, with or without EDNS: the reply, which
/// must parse.
async fn ask_www(addr: std::net::SocketAddr, edns: Option<u16>) -> Message {
    let packet = make_query("www.example.com.", RecordType::A, edns);
    let reply =
        tokio::task::spawn_blocking(move || exchange(addr, &packet, Transport::Udp)).await.unwrap().expect("reply");
    Message::from_vec(&reply).unwrap_or_else(|e| panic!("EDNS {edns:?}: the response parses: {e}"))
}

/// An upstream reply with its OPT first in the additional section and
/// records after it that point at one another: dropping the OPT moved
/// them back 11 bytes and their pointers hit the wrong bytes. The relay
/// now ends at the OPT (additional records may always be left out).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forward_relay_stays_well_formed_when_the_opt_is_not_last() {
    let upstream = raw_upstream(|q| {
        let mut r = reply_head(q, [1, 1, 0, 3]);
        r.extend(a_record(&[0xC0, 0x0C], [10, 0, 0, 1]));
        r.extend_from_slice(&[0, 0, 41, 4, 0xD0, 0, 0, 0, 0, 0, 0]); // OPT
        let ns = r.len() as u16;
        r.extend(a_record(b"\x02ns\x07example\x03com\x00", [192, 0, 2, 1]));
        r.extend(a_record(&(0xC000 | ns).to_be_bytes(), [192, 0, 2, 2]));
        vec![r]
    });
    let inst = forward_corefile(upstream).await;
    let addr = inst.addrs()[0];
    for edns in [Some(1232), None] {
        let msg = ask_www(addr, edns).await;
        assert_eq!(common::answers(&msg), vec!["www.example.com. A 10.0.0.1"], "EDNS {edns:?}");
        assert_eq!(msg.edns.is_some(), edns.is_some(), "EDNS {edns:?}: ours, only when asked");
        for rr in &msg.additionals {
            assert_eq!(rr.name.to_ascii(), "ns.example.com.", "EDNS {edns:?}: what is kept is intact");
        }
    }
    inst.shutdown().await;
}

/// An upstream reply with a TSIG whose algorithm name points into the TTL
/// of the answer before it. With `cache`, the relay writes the cache's TTL
/// there, and the client's decoder (which reads names in TSIG, as in
/// NAPTR, SVCB, RRSIG...) read garbage. Pointers in the RDATA of those
/// types are checked now too: the reply is dropped, the good one relayed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forward_drops_replies_with_rdata_names_pointing_into_a_ttl() {
    let upstream = raw_upstream(|q| {
        let mut bad = reply_head(q, [1, 1, 0, 1]);
        let answer = bad.len();
        // TTL 256: its last byte, 0, reads as the root name.
        bad.extend([&[0xC0, 0x0C][..], &[0, 1, 0, 1, 0, 0, 1, 0, 0, 4, 10, 0, 0, 1]].concat());
        // TSIG: algorithm name "x" + a pointer at that byte, which the
        // cache's TTL (30) turns into a label length.
        let ttl = (answer + 9) as u16;
        let rdata = [&[1, b'x'][..], &(0xC000 | ttl).to_be_bytes(), &[0; 16]].concat();
        bad.extend(
            [&[0xC0, 0x0C][..], &[0, 250, 0, 255, 0, 0, 0, 0], &(rdata.len() as u16).to_be_bytes(), &rdata].concat(),
        );
        let mut good = reply_head(q, [1, 1, 0, 0]);
        good.extend(a_record(&[0xC0, 0x0C], [10, 0, 0, 3]));
        vec![bad, good]
    });
    let text = format!(".:0 {{\n    bind 127.0.0.1\n    cache 30\n    forward . {upstream}\n}}");
    let inst = serve(&text).await.0;
    let addr = inst.addrs()[0];
    let packet = make_query("www.example.com.", RecordType::A, None);
    let reply = tokio::task::spawn_blocking(move || exchange(addr, &packet, Transport::Udp)).await.unwrap().unwrap();
    let msg = Message::from_vec(&reply).unwrap_or_else(|e| panic!("the response parses: {e}"));
    assert_eq!(common::answers(&msg), vec!["www.example.com. A 10.0.0.3"]);
    inst.shutdown().await;
}
