//! SPEC.md section 4, the wire: sizes and truncation, EDNS, malformed and
//! hostile packets, ANY, classes, and SERVFAIL before the state is loaded.

mod common;

use std::fmt::Write as _;
use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use clusterdns::model::{Cluster, Event, Kind, Object};
use clusterdns::records::{PodMode, Updater, ZoneConfig, ZoneIndex};
use clusterdns::server::{Server, TcpLimits};
use common::{Transport, ask, exchange, fixtures, make_query, start};
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;

const BIG: &str = "big.wide.svc.cluster.local.";

/// A headless Service with `n` ready endpoints.
fn wide_service(n: usize) -> String {
    let mut y = String::from(
        "apiVersion: v1\nkind: Service\nmetadata: {name: big, namespace: wide}\nspec:\n  clusterIP: None\n  ports: [{name: http, port: 80}]\n---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: big-1\n  namespace: wide\n  labels: {kubernetes.io/service-name: big}\naddressType: IPv4\nports: [{name: http, port: 80}]\nendpoints:\n",
    );
    for i in 0..n {
        let _ = writeln!(y, "- addresses: [10.250.{}.{}]", i / 200, i % 200 + 1);
    }
    y
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncation_drops_whole_records_and_tcp_gets_all() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("wide.yaml"), wide_service(120)).unwrap();
    let running = start(vec![dir.path().to_path_buf()], PodMode::Disabled).await;
    let addr = running.addr();
    for (transport, edns, limit, whole) in [
        (Transport::Udp, None, 512, false),
        (Transport::Udp, Some(4096), 1232, false), // EDNS capped at 1232
        (Transport::Udp, Some(600), 600, false),
        (Transport::Tcp, None, 65535, true),
        (Transport::Tcp, Some(4096), 65535, true),
    ] {
        let packet = make_query(BIG, RecordType::A, edns);
        let raw = exchange(addr, &packet, transport).unwrap();
        assert!(raw.len() <= limit, "{transport:?} {edns:?}: {} bytes > {limit}", raw.len());
        let msg = Message::from_vec(&raw).unwrap();
        assert_eq!(msg.metadata.response_code, ResponseCode::NoError);
        if whole {
            assert!(!msg.metadata.truncation, "{transport:?} {edns:?}: TC set");
            assert_eq!(msg.answers.len(), 120, "{transport:?} {edns:?}");
        } else {
            assert!(msg.metadata.truncation, "{transport:?} {edns:?}: TC not set");
            assert!(!msg.answers.is_empty() && msg.answers.len() < 120);
            // Whole records only: every answer parsed and is an A of the set.
            assert!(msg.answers.iter().all(|r| r.record_type() == RecordType::A));
        }
        assert_eq!(msg.edns.is_some(), edns.is_some(), "EDNS echoed only when sent");
        if let Some(e) = &msg.edns {
            assert_eq!(e.max_payload(), 1232);
        }
    }
    // SRV with 120 targets and their addresses: the answer fits over TCP with
    // the additional section; over UDP the SRV records are truncated.
    let srv = ask(addr, "_http._tcp.big.wide.svc.cluster.local.", RecordType::SRV, Transport::Tcp, None);
    assert_eq!((srv.answers.len(), srv.additionals.len()), (120, 120));
    let srv = ask(addr, "_http._tcp.big.wide.svc.cluster.local.", RecordType::SRV, Transport::Udp, Some(1232));
    assert!(srv.metadata.truncation);
    running.server.shutdown().await;
}

fn header(id: u16, flags: u16, counts: [u16; 4]) -> Vec<u8> {
    let mut p = Vec::new();
    p.extend_from_slice(&id.to_be_bytes());
    p.extend_from_slice(&flags.to_be_bytes());
    for c in counts {
        p.extend_from_slice(&c.to_be_bytes());
    }
    p
}

fn rcode_of(addr: SocketAddr, packet: &[u8]) -> Option<u8> {
    exchange(addr, packet, Transport::Udp).map(|r| {
        assert!(r.len() >= 12, "short reply");
        assert_eq!(&r[..2], &packet[..2], "reply id");
        assert!(r[2] & 0x80 != 0, "QR set");
        r[3] & 0x0F
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_and_hostile_packets() {
    let running = start(vec![fixtures()], PodMode::Disabled).await;
    let addr = running.addr();
    let good = make_query("kafka.default.svc.cluster.local.", RecordType::A, None);
    let question = &good[12..];

    // Not a DNS header: dropped, no reply.
    assert_eq!(rcode_of(addr, &[]), None, "empty");
    assert_eq!(rcode_of(addr, &[1, 2, 3, 4, 5]), None, "short header");
    // A response instead of a query: dropped (no reflection loops).
    let mut response = good.clone();
    response[2] |= 0x80;
    assert_eq!(rcode_of(addr, &response), None, "response");

    let formerr = [
        ("no question", header(1, 0x0100, [0, 0, 0, 0])),
        ("two questions", [header(2, 0x0100, [2, 0, 0, 0]), question.to_vec(), question.to_vec()].concat()),
        ("truncated question", [header(3, 0x0100, [1, 0, 0, 0]), question[..10].to_vec()].concat()),
        ("pointer loop in qname", [header(4, 0x0100, [1, 0, 0, 0]), vec![0xC0, 0x0C, 0, 1, 0, 1]].concat()),
        (
            "pointer in qname",
            [header(5, 0x0100, [1, 0, 0, 0]), vec![3, b'f', b'o', b'o', 0xC0, 0x0C, 0, 1, 0, 1]].concat(),
        ),
        ("reserved label type", [header(6, 0x0100, [1, 0, 0, 0]), vec![0x41, b'x', 0, 0, 1, 0, 1]].concat()),
        ("answer count without answers", [header(7, 0x0100, [1, 5, 0, 0]), question.to_vec()].concat()),
        ("additional count without records", [header(8, 0x0100, [1, 0, 0, 65535]), question.to_vec()].concat()),
        (
            "two OPT records",
            [
                header(9, 0x0100, [1, 0, 0, 2]),
                question.to_vec(),
                vec![0, 0, 41, 4, 0, 0, 0, 0, 0, 0, 0],
                vec![0, 0, 41, 4, 0, 0, 0, 0, 0, 0, 0],
            ]
            .concat(),
        ),
        (
            "OPT not at the root",
            [header(10, 0x0100, [1, 0, 0, 1]), question.to_vec(), vec![1, b'a', 0, 0, 41, 4, 0, 0, 0, 0, 0, 0, 0]]
                .concat(),
        ),
        (
            "name longer than 255",
            [
                header(11, 0x0100, [1, 0, 0, 0]),
                [vec![63u8]; 1].concat(),
                vec![b'a'; 63],
                vec![63],
                vec![b'a'; 63],
                vec![63],
                vec![b'a'; 63],
                vec![63],
                vec![b'a'; 63],
                vec![0, 0, 1, 0, 1],
            ]
            .concat(),
        ),
    ];
    for (what, packet) in &formerr {
        assert_eq!(rcode_of(addr, packet), Some(1), "{what}: FORMERR");
    }
    // Opcodes other than QUERY: NOTIMP.
    for opcode in [1u16, 2, 4, 5] {
        let mut p = good.clone();
        p[2] = (p[2] & 0x87) | ((opcode as u8) << 3);
        assert_eq!(rcode_of(addr, &p), Some(4), "opcode {opcode}: NOTIMP");
    }
    // EDNS version 1: BADVERS (extended rcode 16 = 1 in the OPT's upper bits).
    let mut p = [header(12, 0x0100, [1, 0, 0, 1]), question.to_vec()].concat();
    p.extend_from_slice(&[0, 0, 41, 4, 0, 0, 1, 0, 0, 0, 0]);
    let reply = exchange(addr, &p, Transport::Udp).unwrap();
    let msg = Message::from_vec(&reply).unwrap();
    assert_eq!(u16::from(msg.metadata.response_code), 16, "BADVERS");
    // Other classes and zone transfers: REFUSED.
    let mut chaos = good.clone();
    let n = chaos.len();
    chaos[n - 1] = 3;
    assert_eq!(rcode_of(addr, &chaos), Some(5), "CH class");
    assert_eq!(rcode_of(addr, &make_query("cluster.local.", RecordType::AXFR, None)), Some(5), "AXFR");

    // Random packets, each followed by a good query (the marker) on the
    // same socket: what arrives before the marker's reply is the packet's.
    // A packet without a query header gets nothing; one with it gets one
    // reply that parses and carries its ID.
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let mut seed = 0x2545F4914F6CDD1Du64;
    let mut buf = vec![0u8; 65535];
    for i in 0..3000u16 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let len = (seed % 80) as usize;
        let mut p: Vec<u8> = (0..len).map(|j| (seed >> (j % 56)) as u8 ^ j as u8).collect();
        // Half of them look like queries, so that they get past the header.
        if i % 2 == 0 && p.len() > 12 {
            p[2] &= 0x07;
            p[4] = 0;
            p[5] = 1;
        }
        let mut marker = good.clone();
        marker[..2].copy_from_slice(&(!i).to_be_bytes());
        sock.send_to(&p, addr).unwrap();
        sock.send_to(&marker, addr).unwrap();
        let mut replies = Vec::new();
        loop {
            let (n, _) =
                sock.recv_from(&mut buf).unwrap_or_else(|e| panic!("packet {i} {p:02x?}: no reply to the marker: {e}"));
            if n >= 12 && buf[..2] == marker[..2] && buf[12..n].starts_with(question) {
                break;
            }
            replies.push(buf[..n].to_vec());
        }
        let header = p.len() >= 12 && p[2] & 0x80 == 0;
        match &replies[..] {
            [] => assert!(!header, "packet {i} {p:02x?}: a query header, no reply"),
            [reply] => {
                assert!(header, "packet {i} {p:02x?}: answered without a query header");
                assert_eq!(reply[..2], p[..2], "packet {i} {p:02x?}: its ID");
                if let Err(e) = Message::from_vec(reply) {
                    panic!("packet {i} {p:02x?}: the reply does not parse: {e}\n{reply:02x?}");
                }
            }
            more => panic!("packet {i} {p:02x?}: {} replies", more.len()),
        }
    }
    // TCP: garbage on a connection closes that connection only.
    {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        s.write_all(&[0, 3, 1, 2, 3]).unwrap();
        let mut buf = [0u8; 16];
        assert!(matches!(s.read(&mut buf), Ok(0) | Err(_)), "connection closed");
        // (A length whose body never comes: tests/regression.rs holds the
        // connection open until the server's read limit closes it.)
    }
    // Still serving, over both transports.
    for t in [Transport::Udp, Transport::Tcp] {
        let msg = ask(addr, "kafka.default.svc.cluster.local.", RecordType::A, t, None);
        assert_eq!(msg.answers.len(), 1);
    }
    running.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_is_minimal_and_outside_names_are_refused() {
    let running = start(vec![fixtures()], PodMode::Disabled).await;
    let addr = running.addr();
    // RFC 8482: one RRset, never the whole name.
    let msg = ask(addr, "dual.dual.svc.cluster.local.", RecordType::ANY, Transport::Udp, None);
    assert_eq!(msg.metadata.response_code, ResponseCode::NoError);
    let types: std::collections::BTreeSet<RecordType> = msg.answers.iter().map(|r| r.record_type()).collect();
    assert_eq!(types.len(), 1, "ANY answered with {types:?}");
    // Outside the served zones, with no upstream: REFUSED, not authoritative.
    let msg = ask(addr, "example.com.", RecordType::A, Transport::Udp, None);
    assert_eq!(msg.metadata.response_code, ResponseCode::Refused);
    assert!(!msg.metadata.authoritative);
    // The question is echoed as asked, case included (0x20 randomisation).
    let msg = ask(addr, "KAFKA.default.SVC.cluster.local.", RecordType::A, Transport::Udp, None);
    assert_eq!(msg.queries[0].name().to_ascii(), "KAFKA.default.SVC.cluster.local.");
    running.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn servfail_until_loaded_never_nxdomain() {
    let cfg = ZoneConfig::new("cluster.local", 5, PodMode::Disabled).unwrap();
    let index = ZoneIndex::new(cfg);
    let routes = clusterdns::app::single_zone_routes(&index);
    let server = Server::bind(routes, &["127.0.0.1:0".parse().unwrap()], &Default::default()).await.unwrap();
    let addr = server.local_addrs()[0];
    for t in [Transport::Udp, Transport::Tcp] {
        let msg = ask(addr, "web.team.svc.cluster.local.", RecordType::A, t, None);
        assert_eq!(msg.metadata.response_code, ResponseCode::ServFail, "{t:?} before load");
    }
    let mut updater = Updater::new(index.clone(), Cluster::new());
    updater.apply(vec![Event::Reset {
        kinds: vec![Kind::Namespace],
        objects: vec![Object::new_namespace("team".into())],
    }]);
    // Loaded into the index but not yet declared complete: still SERVFAIL.
    let msg = ask(addr, "web.team.svc.cluster.local.", RecordType::A, Transport::Udp, None);
    assert_eq!(msg.metadata.response_code, ResponseCode::ServFail);
    let msg = ask(addr, "team.svc.cluster.local.", RecordType::A, Transport::Udp, None);
    assert_eq!(msg.metadata.response_code, ResponseCode::NoError, "known names answer meanwhile");
    index.set_loaded();
    let msg = ask(addr, "web.team.svc.cluster.local.", RecordType::A, Transport::Udp, None);
    assert_eq!(msg.metadata.response_code, ResponseCode::NXDomain);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_connections_are_capped_and_udp_keeps_serving() {
    use std::io::{Read, Write};
    let cfg = ZoneConfig::new("cluster.local", 5, PodMode::Disabled).unwrap();
    let index = ZoneIndex::new(cfg);
    Updater::new(index.clone(), Cluster::new()).apply(vec![]); // the apex records
    index.set_loaded();
    let routes = clusterdns::app::single_zone_routes(&index);
    let limits = TcpLimits { total: 4, per_client: 4, ..TcpLimits::default() };
    let server =
        Server::bind_with(routes, &["127.0.0.1:0".parse().unwrap()], &Default::default(), limits).await.unwrap();
    let addr = server.local_addrs()[0];
    tokio::task::spawn_blocking(move || {
        // Four idle connections take every slot.
        let idle: Vec<std::net::TcpStream> = (0..4).map(|_| std::net::TcpStream::connect(addr).unwrap()).collect();
        std::thread::sleep(Duration::from_millis(200));
        // A fifth is closed at once.
        let mut extra = std::net::TcpStream::connect(addr).unwrap();
        extra.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let packet = make_query("cluster.local.", RecordType::SOA, None);
        let mut framed = (packet.len() as u16).to_be_bytes().to_vec();
        framed.extend_from_slice(&packet);
        let _ = extra.write_all(&framed);
        let mut buf = [0u8; 2];
        assert!(matches!(extra.read(&mut buf), Ok(0) | Err(_)), "over the limit: closed");
        // UDP is not affected.
        assert_eq!(ask(addr, "cluster.local.", RecordType::SOA, Transport::Udp, None).answers.len(), 1);
        // A freed slot serves the next connection.
        drop(idle);
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(ask(addr, "cluster.local.", RecordType::SOA, Transport::Tcp, None).answers.len(), 1);
    })
    .await
    .unwrap();
    server.shutdown().await;
}

/// Questions sent back to back reach the server's UDP threads in batches
/// (up to 32 per receive on Linux): each is answered once, to the socket
/// that asked it, with its own ID and question; a broken datagram among
/// them costs only itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn questions_sent_back_to_back_are_each_answered_to_their_sender() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("many.yaml"), common::many_services(60)).unwrap();
    let running = start(vec![dir.path().to_path_buf()], PodMode::Disabled).await;
    let addr = running.addr();
    let clients: Vec<UdpSocket> = (0..4).map(|_| UdpSocket::bind("127.0.0.1:0").unwrap()).collect();
    let mut asked = std::collections::HashMap::new();
    // Round robin, so that one batch holds several clients' questions.
    for i in 0..60 {
        for (c, sock) in clients.iter().enumerate() {
            let name = format!("svc-{i}.default.svc.cluster.local.");
            let mut packet = make_query(&name, RecordType::A, None);
            let id = (c * 1000 + i) as u16;
            packet[..2].copy_from_slice(&id.to_be_bytes());
            asked.insert((c, id), name);
            sock.send_to(&packet, addr).unwrap();
            if i == 30 {
                sock.send_to(&[0xde, 0xad, 0xbe], addr).unwrap();
            }
        }
    }
    for (c, sock) in clients.iter().enumerate() {
        sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut buf = [0u8; 1500];
        let mut got = 0;
        while got < 60 {
            let Ok(len) = sock.recv(&mut buf) else { break };
            let msg = Message::from_vec(&buf[..len]).unwrap();
            let name = asked
                .remove(&(c, msg.metadata.id))
                .unwrap_or_else(|| panic!("client {c}: unasked ID {}", msg.metadata.id));
            assert_eq!(msg.queries[0].name().to_ascii(), name);
            assert_eq!(msg.metadata.response_code, ResponseCode::NoError, "{name}");
            assert_eq!(msg.answers.len(), 1, "{name}");
            got += 1;
        }
        assert_eq!(got, 60, "client {c} got {got} of its 60 answers");
    }
    assert!(asked.is_empty());
    running.server.shutdown().await;
}

/// The owners of SRV targets' addresses are written as pointers into the
/// question (they are the Service's name or one label below it), the SRV
/// targets whole (RFC 2782): they must read back as the right names in any
/// case the client asked in, and after a CNAME, where they point into the
/// CNAME's target instead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn srv_targets_point_into_the_question_and_follow_a_cname() {
    let dir = tempfile::tempdir().unwrap();
    let docs = [
        "apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: app}\nspec:\n  clusterIP: None\n  ports: [{name: http, port: 80}]\n",
        "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: web-1\n  namespace: app\n  labels: {kubernetes.io/service-name: web}\naddressType: IPv4\nports: [{name: http, port: 8080}]\nendpoints:\n- addresses: [10.1.0.1]\n  hostname: w0\n- addresses: [10.1.0.2]\n",
        "apiVersion: v1\nkind: Service\nmetadata: {name: api, namespace: app}\nspec:\n  clusterIP: 10.96.5.5\n  ports: [{name: http, port: 80}]\n",
        "apiVersion: v1\nkind: Service\nmetadata: {name: alias, namespace: app}\nspec:\n  type: ExternalName\n  externalName: web.app.svc.cluster.local\n",
        "apiVersion: v1\nkind: Service\nmetadata: {name: alias2, namespace: other}\nspec:\n  type: ExternalName\n  externalName: api.app.svc.cluster.local\n",
        "apiVersion: v1\nkind: Service\nmetadata: {name: kube-dns, namespace: kube-system}\nspec:\n  clusterIP: 10.96.0.10\n  ports: [{name: dns, port: 53, protocol: UDP}]\n",
        "apiVersion: v1\nkind: Service\nmetadata: {name: apex, namespace: other}\nspec:\n  type: ExternalName\n  externalName: cluster.local\n",
    ];
    std::fs::write(dir.path().join("app.yaml"), docs.join("---\n")).unwrap();
    let running = start(vec![dir.path().to_path_buf()], PodMode::Disabled).await;
    let addr = running.addr();
    tokio::task::spawn_blocking(move || {
        let additional = |m: &Message| {
            let mut v: Vec<String> = m.additionals.iter().map(common::show).collect();
            v.sort();
            v
        };
        let web = [
            "_http._tcp.web.app.svc.cluster.local. SRV 0 50 8080 10-1-0-2.web.app.svc.cluster.local.",
            "_http._tcp.web.app.svc.cluster.local. SRV 0 50 8080 w0.web.app.svc.cluster.local.",
        ];
        let web_addresses =
            ["10-1-0-2.web.app.svc.cluster.local. A 10.1.0.2", "w0.web.app.svc.cluster.local. A 10.1.0.1"];
        for (name, transport) in [
            ("_http._tcp.web.app.svc.cluster.local.", Transport::Udp),
            ("_HTTP._Tcp.WEB.app.Svc.cluster.LOCAL.", Transport::Tcp),
        ] {
            let packet = make_query(name, RecordType::SRV, None);
            let reply = exchange(addr, &packet, transport).expect("a reply");
            // The Service's name is written in the question and in the two
            // SRV targets, not in the addresses' owners.
            let times = reply.windows(8).filter(|w| w.eq_ignore_ascii_case(b"\x03web\x03app")).count();
            assert_eq!(times, 3, "{name}: {reply:?}");
            let msg = Message::from_vec(&reply).unwrap();
            assert_eq!(common::answers(&msg), web, "{name}");
            assert_eq!(additional(&msg), web_addresses, "{name}");
        }
        // The Service's own name: its SRV target is the question itself.
        let msg = ask(addr, "api.app.svc.cluster.local.", RecordType::SRV, Transport::Udp, None);
        assert_eq!(common::answers(&msg), ["api.app.svc.cluster.local. SRV 0 100 80 api.app.svc.cluster.local."]);
        assert_eq!(additional(&msg), ["api.app.svc.cluster.local. A 10.96.5.5"]);
        // Through a CNAME: the pointers move to the CNAME's target.
        let msg = ask(addr, "alias.app.svc.cluster.local.", RecordType::SRV, Transport::Udp, None);
        let mut want = vec!["alias.app.svc.cluster.local. CNAME web.app.svc.cluster.local.".to_string()];
        want.extend(web.iter().map(|s| s.replace("_http._tcp.", "")));
        want.sort();
        assert_eq!(common::answers(&msg), want);
        assert_eq!(additional(&msg), web_addresses);
        let msg = ask(addr, "alias2.other.svc.cluster.local.", RecordType::SRV, Transport::Udp, None);
        assert_eq!(
            common::answers(&msg),
            [
                "alias2.other.svc.cluster.local. CNAME api.app.svc.cluster.local.",
                "api.app.svc.cluster.local. SRV 0 100 80 api.app.svc.cluster.local."
            ]
        );
        assert_eq!(additional(&msg), ["api.app.svc.cluster.local. A 10.96.5.5"]);
        // The NS target's address, its owner below the apex, directly and
        // through a CNAME to the apex.
        let ns = ["ns.dns.cluster.local. A 10.96.0.10"];
        let msg = ask(addr, "Cluster.Local.", RecordType::NS, Transport::Udp, None);
        assert_eq!(common::answers(&msg), ["cluster.local. NS ns.dns.cluster.local."]);
        assert_eq!(additional(&msg), ns);
        let msg = ask(addr, "apex.other.svc.cluster.local.", RecordType::NS, Transport::Udp, None);
        assert_eq!(
            common::answers(&msg),
            ["apex.other.svc.cluster.local. CNAME cluster.local.", "cluster.local. NS ns.dns.cluster.local."]
        );
        assert_eq!(additional(&msg), ns);
    })
    .await
    .unwrap();
    running.server.shutdown().await;
}
