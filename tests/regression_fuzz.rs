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
