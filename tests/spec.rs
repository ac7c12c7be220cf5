//! Every row of SPEC.md, as a table of questions and the answers the server
//! must give, asked over real UDP and TCP sockets (CoreDNS `handler_test.go`
//! style: a new behaviour is a new row).

mod common;

use clusterdns::records::PodMode;
use common::{Transport, answers, ask, fixtures, start};
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType::{self, *};

const NX: ResponseCode = ResponseCode::NXDomain;
const OK: ResponseCode = ResponseCode::NoError;

struct Case {
    /// The SPEC.md row or section the case holds the server to.
    row: &'static str,
    q: &'static str,
    t: RecordType,
    rcode: ResponseCode,
    /// `name TYPE rdata`, any order.
    ans: &'static [&'static str],
    /// Whether the authority section carries the zone's SOA.
    soa: bool,
}

const fn c(
    row: &'static str,
    q: &'static str,
    t: RecordType,
    rcode: ResponseCode,
    ans: &'static [&'static str],
) -> Case {
    // Negative answers (NXDOMAIN, and NODATA: no answer) carry the SOA.
    let soa = !matches!(rcode, ResponseCode::NoError) || ans.is_empty();
    Case { row, q, t, rcode, ans, soa }
}

const CL: &str = "cluster.local.";

fn cases() -> Vec<Case> {
    vec![
        c("R1", "dns-version.cluster.local.", TXT, OK, &["dns-version.cluster.local. TXT \"1.1.0\""]),
        // R2: ClusterIP, NodePort, LoadBalancer; dual-stack; with or without endpoints.
        c("R2", "dual.dual.svc.cluster.local.", A, OK, &["dual.dual.svc.cluster.local. A 10.96.100.1"]),
        c("R2", "dual.dual.svc.cluster.local.", AAAA, OK, &["dual.dual.svc.cluster.local. AAAA fd00:10:96::100"]),
        c(
            "R2",
            "external-webserver-cka03-svcn.kube-public.svc.cluster.local.",
            A,
            OK,
            &["external-webserver-cka03-svcn.kube-public.svc.cluster.local. A 10.43.109.238"],
        ),
        c(
            "R2",
            "app-lb-service.default.svc.cluster.local.",
            A,
            OK,
            &["app-lb-service.default.svc.cluster.local. A 10.107.165.143"],
        ),
        c("R2", "bare.ports.svc.cluster.local.", A, OK, &["bare.ports.svc.cluster.local. A 10.96.7.3"]),
        c("R2", "two-ports.ports.svc.cluster.local.", AAAA, OK, &[]),
        // R2, stable allocation: a manifest Service without clusterIP.
        c("R2", "kafka.default.svc.cluster.local.", A, OK, &["kafka.default.svc.cluster.local. A 10.101.170.191"]),
        // R3: headless: ready endpoints of the family, deduplicated.
        c(
            "R3",
            "dual-headless.dual.svc.cluster.local.",
            A,
            OK,
            &[
                "dual-headless.dual.svc.cluster.local. A 10.244.5.1",
                "dual-headless.dual.svc.cluster.local. A 10.244.5.2",
            ],
        ),
        c(
            "R3",
            "dual-headless.dual.svc.cluster.local.",
            AAAA,
            OK,
            &[
                "dual-headless.dual.svc.cluster.local. AAAA fd00:10:244::5:1",
                "dual-headless.dual.svc.cluster.local. AAAA fd00:10:244::5:2",
            ],
        ),
        c(
            "R3",
            "split.ports.svc.cluster.local.",
            A,
            OK,
            &[
                "split.ports.svc.cluster.local. A 10.244.7.10",
                "split.ports.svc.cluster.local. A 10.244.7.11",
                "split.ports.svc.cluster.local. A 10.244.7.12",
            ],
        ),
        c(
            "R3",
            "mixed.ready.svc.cluster.local.",
            A,
            OK,
            &["mixed.ready.svc.cluster.local. A 10.244.6.1", "mixed.ready.svc.cluster.local. A 10.244.6.4"],
        ),
        c(
            "R3",
            "publish.ready.svc.cluster.local.",
            A,
            OK,
            &["publish.ready.svc.cluster.local. A 10.244.6.20", "publish.ready.svc.cluster.local. A 10.244.6.21"],
        ),
        c("R3", "from-pods.ready.svc.cluster.local.", A, OK, &["from-pods.ready.svc.cluster.local. A 10.244.6.30"]),
        c("R3", "none-ready.ready.svc.cluster.local.", A, NX, &[]),
        c("R3", "none-ready.ready.svc.cluster.local.", SRV, NX, &[]),
        // Seed 000: Endpoints bind by equal name only.
        c("R3", "mysql-svc.default.svc.cluster.local.", A, NX, &[]),
        c("R3", "my-endpoint.default.svc.cluster.local.", A, NX, &[]),
        // R4: endpoint labels, headless and ClusterIP alike.
        c(
            "R4",
            "db-0.dual-headless.dual.svc.cluster.local.",
            A,
            OK,
            &["db-0.dual-headless.dual.svc.cluster.local. A 10.244.5.1"],
        ),
        c(
            "R4",
            "db-0.dual-headless.dual.svc.cluster.local.",
            AAAA,
            OK,
            &["db-0.dual-headless.dual.svc.cluster.local. AAAA fd00:10:244::5:1"],
        ),
        c(
            "R4",
            "10-244-5-2.dual-headless.dual.svc.cluster.local.",
            A,
            OK,
            &["10-244-5-2.dual-headless.dual.svc.cluster.local. A 10.244.5.2"],
        ),
        c(
            "R4",
            "fd00-10-244--5-2.dual-headless.dual.svc.cluster.local.",
            AAAA,
            OK,
            &["fd00-10-244--5-2.dual-headless.dual.svc.cluster.local. AAAA fd00:10:244::5:2"],
        ),
        c(
            "R4",
            "example-job-0.headless-svc.jobs.svc.cluster.local.",
            A,
            OK,
            &["example-job-0.headless-svc.jobs.svc.cluster.local. A 10.244.3.10"],
        ),
        c(
            "R4",
            "example-job-2.headless-svc.jobs.svc.cluster.local.",
            A,
            OK,
            &["example-job-2.headless-svc.jobs.svc.cluster.local. A 10.244.3.12"],
        ),
        c("R4", "web-1.nginx.web.svc.cluster.local.", A, OK, &["web-1.nginx.web.svc.cluster.local. A 10.244.4.6"]),
        c(
            "R4",
            "192-168-10-23.kafka.default.svc.cluster.local.",
            A,
            OK,
            &["192-168-10-23.kafka.default.svc.cluster.local. A 192.168.10.23"],
        ),
        c(
            "R4",
            "etcd-0.publish.ready.svc.cluster.local.",
            A,
            OK,
            &["etcd-0.publish.ready.svc.cluster.local. A 10.244.6.20"],
        ),
        // A Pod's hostname counts only when its subdomain names the Service.
        c("R4", "stray-0.headless-svc.jobs.svc.cluster.local.", A, NX, &[]),
        c(
            "R4",
            "10-244-3-20.headless-svc.jobs.svc.cluster.local.",
            A,
            OK,
            &["10-244-3-20.headless-svc.jobs.svc.cluster.local. A 10.244.3.20"],
        ),
        // Not ready, terminating: no name.
        c("R4", "10-244-6-2.mixed.ready.svc.cluster.local.", A, NX, &[]),
        c("R4", "10-244-6-3.mixed.ready.svc.cluster.local.", A, NX, &[]),
        c("R4", "10-244-6-31.from-pods.ready.svc.cluster.local.", A, NX, &[]),
        c("R4", "10-244-6-33.from-pods.ready.svc.cluster.local.", A, NX, &[]),
        // R5: named ports.
        c(
            "R5",
            "_http._tcp.dual.dual.svc.cluster.local.",
            SRV,
            OK,
            &["_http._tcp.dual.dual.svc.cluster.local. SRV 0 100 80 dual.dual.svc.cluster.local."],
        ),
        c(
            "R5",
            "_http._tcp.dual-headless.dual.svc.cluster.local.",
            SRV,
            OK,
            &[
                "_http._tcp.dual-headless.dual.svc.cluster.local. SRV 0 33 8080 10-244-5-2.dual-headless.dual.svc.cluster.local.",
                "_http._tcp.dual-headless.dual.svc.cluster.local. SRV 0 33 8080 db-0.dual-headless.dual.svc.cluster.local.",
                "_http._tcp.dual-headless.dual.svc.cluster.local. SRV 0 33 8080 fd00-10-244--5-2.dual-headless.dual.svc.cluster.local.",
            ],
        ),
        c(
            "R5",
            "_dns._udp.split.ports.svc.cluster.local.",
            SRV,
            OK,
            &[
                "_dns._udp.split.ports.svc.cluster.local. SRV 0 33 5353 10-244-7-10.split.ports.svc.cluster.local.",
                "_dns._udp.split.ports.svc.cluster.local. SRV 0 33 5353 10-244-7-11.split.ports.svc.cluster.local.",
                "_dns._udp.split.ports.svc.cluster.local. SRV 0 33 5353 10-244-7-12.split.ports.svc.cluster.local.",
            ],
        ),
        c(
            "R5",
            "_sig._sctp.split.ports.svc.cluster.local.",
            SRV,
            OK,
            &[
                "_sig._sctp.split.ports.svc.cluster.local. SRV 0 33 5060 10-244-7-10.split.ports.svc.cluster.local.",
                "_sig._sctp.split.ports.svc.cluster.local. SRV 0 33 5060 10-244-7-11.split.ports.svc.cluster.local.",
                "_sig._sctp.split.ports.svc.cluster.local. SRV 0 33 5060 10-244-7-12.split.ports.svc.cluster.local.",
            ],
        ),
        c(
            "R5",
            "_web._tcp.nginx.web.svc.cluster.local.",
            SRV,
            OK,
            &[
                "_web._tcp.nginx.web.svc.cluster.local. SRV 0 50 80 web-0.nginx.web.svc.cluster.local.",
                "_web._tcp.nginx.web.svc.cluster.local. SRV 0 50 80 web-1.nginx.web.svc.cluster.local.",
            ],
        ),
        c(
            "R5",
            "_kafka._tcp.kafka.default.svc.cluster.local.",
            SRV,
            OK,
            &["_kafka._tcp.kafka.default.svc.cluster.local. SRV 0 100 9092 kafka.default.svc.cluster.local."],
        ),
        c("R5", "_http._udp.dual.dual.svc.cluster.local.", SRV, NX, &[]),
        c("R5", "_nope._tcp.dual.dual.svc.cluster.local.", SRV, NX, &[]),
        c("R5", "_dns._tcp.split.ports.svc.cluster.local.", SRV, NX, &[]),
        // R6: the Service name's SRV covers every port, named or not.
        c(
            "R6",
            "unnamed.ports.svc.cluster.local.",
            SRV,
            OK,
            &["unnamed.ports.svc.cluster.local. SRV 0 100 8080 unnamed.ports.svc.cluster.local."],
        ),
        c(
            "R6",
            "two-ports.ports.svc.cluster.local.",
            SRV,
            OK,
            &[
                "two-ports.ports.svc.cluster.local. SRV 0 50 80 two-ports.ports.svc.cluster.local.",
                "two-ports.ports.svc.cluster.local. SRV 0 50 9090 two-ports.ports.svc.cluster.local.",
            ],
        ),
        c("R6", "portless.ports.svc.cluster.local.", SRV, OK, &[]),
        c("R6", "bare.ports.svc.cluster.local.", SRV, OK, &[]),
        c("R6", "portless.ports.svc.cluster.local.", A, OK, &["portless.ports.svc.cluster.local. A 10.244.7.1"]),
        // R7: reverse of ClusterIPs.
        c("R7", "1.100.96.10.in-addr.arpa.", PTR, OK, &["1.100.96.10.in-addr.arpa. PTR dual.dual.svc.cluster.local."]),
        c(
            "R7",
            "0.0.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.6.9.0.0.0.1.0.0.0.0.d.f.ip6.arpa.",
            PTR,
            OK,
            &[
                "0.0.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.6.9.0.0.0.1.0.0.0.0.d.f.ip6.arpa. PTR dual.dual.svc.cluster.local.",
            ],
        ),
        // R8: reverse of endpoints, for every Service that has the address.
        c(
            "R8",
            "1.5.244.10.in-addr.arpa.",
            PTR,
            OK,
            &["1.5.244.10.in-addr.arpa. PTR db-0.dual-headless.dual.svc.cluster.local."],
        ),
        c(
            "R8",
            "11.7.244.10.in-addr.arpa.",
            PTR,
            OK,
            &["11.7.244.10.in-addr.arpa. PTR 10-244-7-11.split.ports.svc.cluster.local."],
        ),
        c(
            "R8",
            "10.7.244.10.in-addr.arpa.",
            PTR,
            OK,
            &[
                "10.7.244.10.in-addr.arpa. PTR 10-244-7-10.split.ports.svc.cluster.local.",
                "10.7.244.10.in-addr.arpa. PTR twin.split-twin.ports.svc.cluster.local.",
            ],
        ),
        c(
            "R8",
            "22.10.168.192.in-addr.arpa.",
            PTR,
            OK,
            &["22.10.168.192.in-addr.arpa. PTR 192-168-10-22.kafka.default.svc.cluster.local."],
        ),
        c("R8", "2.6.244.10.in-addr.arpa.", PTR, NX, &[]),
        c("R8", "9.9.9.10.in-addr.arpa.", PTR, NX, &[]),
        // Empty non-terminal above PTR names (RFC 8020).
        c("R8", "7.244.10.in-addr.arpa.", PTR, OK, &[]),
        // R9: ExternalName.
        c(
            "R9",
            "outside.ext.svc.cluster.local.",
            A,
            OK,
            &["outside.ext.svc.cluster.local. CNAME my.database.example.com."],
        ),
        c(
            "R9",
            "outside.ext.svc.cluster.local.",
            CNAME,
            OK,
            &["outside.ext.svc.cluster.local. CNAME my.database.example.com."],
        ),
        c(
            "R9",
            "inside.ext.svc.cluster.local.",
            A,
            OK,
            &[
                "backend.ext.svc.cluster.local. A 10.96.8.1",
                "inside.ext.svc.cluster.local. CNAME backend.ext.svc.cluster.local.",
            ],
        ),
        c(
            "R9",
            "inside.ext.svc.cluster.local.",
            CNAME,
            OK,
            &["inside.ext.svc.cluster.local. CNAME backend.ext.svc.cluster.local."],
        ),
        c(
            "R9",
            "chain.ext.svc.cluster.local.",
            A,
            OK,
            &[
                "backend.ext.svc.cluster.local. A 10.96.8.1",
                "chain.ext.svc.cluster.local. CNAME inside.ext.svc.cluster.local.",
                "inside.ext.svc.cluster.local. CNAME backend.ext.svc.cluster.local.",
            ],
        ),
        Case {
            row: "R9",
            q: "inside.ext.svc.cluster.local.",
            t: AAAA,
            rcode: OK,
            ans: &["inside.ext.svc.cluster.local. CNAME backend.ext.svc.cluster.local."],
            soa: true,
        },
        Case {
            row: "R9",
            q: "dangling.ext.svc.cluster.local.",
            t: A,
            rcode: NX,
            ans: &["dangling.ext.svc.cluster.local. CNAME gone.ext.svc.cluster.local."],
            soa: true,
        },
        c("R9", "literal.ext.svc.cluster.local.", A, NX, &[]),
        c("R9", "sub.outside.ext.svc.cluster.local.", A, NX, &[]),
        // R10, pods disabled (default).
        c("R10", "10-244-3-10.jobs.pod.cluster.local.", A, NX, &[]),
        // R11, R12: the apex.
        c("R12", "cluster.local.", NS, OK, &["cluster.local. NS ns.dns.cluster.local."]),
        c("R12", "ns.dns.cluster.local.", A, OK, &["ns.dns.cluster.local. A 10.96.0.10"]),
        // Section 3: NXDOMAIN versus NODATA.
        c("3", CL, A, OK, &[]),
        c("3", "svc.cluster.local.", A, OK, &[]),
        c("3", "pod.cluster.local.", A, OK, &[]),
        c("3", "svc.cluster.local.", SOA, OK, &[]),
        c("3", "jobs.svc.cluster.local.", A, OK, &[]),
        c("3", "kube-public.svc.cluster.local.", SRV, OK, &[]),
        c("3", "jobs.pod.cluster.local.", A, NX, &[]),
        c("3", "nope.svc.cluster.local.", A, NX, &[]),
        c("3", "nope.jobs.svc.cluster.local.", A, NX, &[]),
        c("3", "nope.nginx.web.svc.cluster.local.", A, NX, &[]),
        c("3", "a.b.kafka.default.svc.cluster.local.", A, NX, &[]),
        c("3", "a.web-0.nginx.web.svc.cluster.local.", A, NX, &[]),
        c("3", "foo.cluster.local.", A, NX, &[]),
        c("3", "_tcp.dual.dual.svc.cluster.local.", SRV, OK, &[]),
        c("3", "_tcp.dual.dual.svc.cluster.local.", A, OK, &[]),
        c("3", "dns-version.cluster.local.", A, OK, &[]),
        c("3", "kafka.default.svc.cluster.local.", TXT, OK, &[]),
        c("3", "kafka.default.svc.cluster.local.default.svc.cluster.local.", A, NX, &[]),
        c("3", "kafka.default.svc.cluster.local.svc.cluster.local.", A, NX, &[]),
        c("3", "kafka.default.svc.cluster.local.cluster.local.", A, NX, &[]),
        // Case-insensitive; the question's case is echoed.
        c(
            "notation",
            "KaFkA.DeFaUlT.svc.Cluster.Local.",
            A,
            OK,
            &["kafka.default.svc.cluster.local. A 10.101.170.191"],
        ),
    ]
}

fn check(addr: std::net::SocketAddr, cases: &[Case]) {
    let mut failures = Vec::new();
    for case in cases {
        for transport in [Transport::Udp, Transport::Tcp] {
            let msg = ask(addr, case.q, case.t, transport, Some(1232));
            let got = answers(&msg);
            let mut want: Vec<String> = case.ans.iter().map(|s| s.to_string()).collect();
            want.sort();
            let soa = msg.authorities.iter().any(|r| r.record_type() == SOA);
            let rc = msg.metadata.response_code;
            if rc != case.rcode || got != want || soa != case.soa || !msg.metadata.authoritative {
                failures.push(format!(
                    "{} {} {} over {transport:?}: want {:?} {want:?} soa={} aa, got {rc:?} {got:?} soa={soa} aa={}",
                    case.row, case.q, case.t, case.rcode, case.soa, msg.metadata.authoritative
                ));
            }
            // `answers` compares lower case: the case of the echo and of
            // the owners that name the question is checked here, exactly.
            let echoed = msg.queries.first().map(|q| q.name().to_ascii());
            if echoed.as_deref() != Some(case.q) {
                failures.push(format!("{} {}: question echoed as {echoed:?}", case.row, case.q));
            }
            for r in msg.answers.iter().filter(|r| r.name.to_ascii().eq_ignore_ascii_case(case.q)) {
                if r.name.to_ascii() != case.q {
                    failures.push(format!("{} {}: answer owner written {}", case.row, case.q, r.name));
                }
            }
            if !msg.authorities.is_empty() && !case.soa {
                failures.push(format!("{} {}: authority section not empty on a positive answer", case.row, case.q));
            }
        }
    }
    assert!(failures.is_empty(), "{} cases failed:\n{}", failures.len(), failures.join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_spec_row_over_udp_and_tcp() {
    let running = start(vec![fixtures()], PodMode::Disabled).await;
    check(running.addr(), &cases());
    running.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ttls_follow_the_spec() {
    let running = start(vec![fixtures()], PodMode::Disabled).await;
    let addr = running.addr();
    let ttl =
        |name: &str, t| ask(addr, name, t, Transport::Udp, None).answers.iter().map(|r| r.ttl).collect::<Vec<_>>();
    assert_eq!(ttl("dns-version.cluster.local.", TXT), vec![28800], "R1");
    assert_eq!(ttl("kafka.default.svc.cluster.local.", A), vec![5]);
    // R11: serial = time of the last change; the SOA's own TTL is min(ttl, 300).
    let soa = ask(addr, "cluster.local.", SOA, Transport::Udp, None);
    assert_eq!(soa.answers.len(), 1);
    let rec = &soa.answers[0];
    assert_eq!(rec.ttl, 5);
    let hickory_proto::rr::RData::SOA(s) = &rec.data else { panic!("not an SOA: {rec}") };
    assert_eq!(s.mname.to_ascii(), "ns.dns.cluster.local.");
    assert_eq!(s.rname.to_ascii(), "hostmaster.cluster.local.");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as u32;
    assert!(s.serial > now - 120 && s.serial <= now + 5, "serial {} is not the time of the load ({now})", s.serial);
    assert_eq!((s.refresh, s.retry, s.expire, s.minimum), (7200, 1800, 86400, 5));
    // R12: the NS target's address in the additional section.
    let ns = ask(addr, "cluster.local.", NS, Transport::Udp, None);
    let glue: Vec<String> = ns.additionals.iter().map(common::show).collect();
    assert_eq!(glue, vec!["ns.dns.cluster.local. A 10.96.0.10"]);
    // R5: the SRV targets' addresses in the additional section.
    let srv = ask(addr, "_http._tcp.dual-headless.dual.svc.cluster.local.", SRV, Transport::Udp, Some(1232));
    let mut extra: Vec<String> = srv.additionals.iter().map(common::show).collect();
    extra.sort();
    assert_eq!(
        extra,
        vec![
            "10-244-5-2.dual-headless.dual.svc.cluster.local. A 10.244.5.2",
            "db-0.dual-headless.dual.svc.cluster.local. A 10.244.5.1",
            "db-0.dual-headless.dual.svc.cluster.local. AAAA fd00:10:244::5:1",
            "fd00-10-244--5-2.dual-headless.dual.svc.cluster.local. AAAA fd00:10:244::5:2",
        ]
    );
    // An endpoint in two slices of a Service: one SRV record, one address.
    let srv = ask(addr, "_dns._udp.split.ports.svc.cluster.local.", SRV, Transport::Udp, Some(1232));
    let mut extra: Vec<String> = srv.additionals.iter().map(common::show).collect();
    extra.sort();
    assert_eq!(
        extra,
        vec![
            "10-244-7-10.split.ports.svc.cluster.local. A 10.244.7.10",
            "10-244-7-11.split.ports.svc.cluster.local. A 10.244.7.11",
            "10-244-7-12.split.ports.svc.cluster.local. A 10.244.7.12",
        ]
    );
    let srv = ask(addr, "_http._tcp.dual.dual.svc.cluster.local.", SRV, Transport::Udp, Some(1232));
    let mut extra: Vec<String> = srv.additionals.iter().map(common::show).collect();
    extra.sort();
    assert_eq!(
        extra,
        vec!["dual.dual.svc.cluster.local. A 10.96.100.1", "dual.dual.svc.cluster.local. AAAA fd00:10:96::100"]
    );
    running.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pod_names_insecure() {
    let running = start(vec![fixtures()], PodMode::Insecure).await;
    check(
        running.addr(),
        &[
            c("R10", "10-1-2-3.jobs.pod.cluster.local.", A, OK, &["10-1-2-3.jobs.pod.cluster.local. A 10.1.2.3"]),
            c("R10", "fd00--7.jobs.pod.cluster.local.", AAAA, OK, &["fd00--7.jobs.pod.cluster.local. AAAA fd00::7"]),
            c("R10", "10-1-2-3.jobs.pod.cluster.local.", AAAA, OK, &[]),
            c("R10", "10-1-2-3.nope.pod.cluster.local.", A, NX, &[]),
            c("R10", "not-an-ip.jobs.pod.cluster.local.", A, NX, &[]),
            c("R10", "a.10-1-2-3.jobs.pod.cluster.local.", A, NX, &[]),
            c("3", "jobs.pod.cluster.local.", A, OK, &[]),
        ],
    );
    running.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pod_names_verified() {
    let running = start(vec![fixtures()], PodMode::Verified).await;
    check(
        running.addr(),
        &[
            c(
                "R10",
                "10-244-3-10.jobs.pod.cluster.local.",
                A,
                OK,
                &["10-244-3-10.jobs.pod.cluster.local. A 10.244.3.10"],
            ),
            c("R10", "10-1-2-3.jobs.pod.cluster.local.", A, NX, &[]),
            c("R10", "10-244-3-10.web.pod.cluster.local.", A, NX, &[]),
            c("3", "web.pod.cluster.local.", A, OK, &[]),
        ],
    );
    running.server.shutdown().await;
}
