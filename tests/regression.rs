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

// ---- Clients and the network -------------------------------------------

mod net {
    use std::io::{Read, Write};
    use std::net::{IpAddr, SocketAddr, TcpStream};
    use std::time::{Duration, Instant};

    use clusterdns::server::{Server, TcpLimits};
    use hickory_proto::op::ResponseCode;
    use hickory_proto::rr::RecordType;
    use socket2::{Domain, Socket, Type};

    use super::common::{Transport, ask_within, make_query};

    /// A zone with its apex records, served with `limits` on `listen`.
    pub async fn zone_server(listen: &[SocketAddr], limits: TcpLimits) -> Server {
        use clusterdns::model::Cluster;
        use clusterdns::records::{PodMode, Updater, ZoneConfig, ZoneIndex};
        let index = ZoneIndex::new(ZoneConfig::new("cluster.local", 5, PodMode::Disabled).unwrap());
        Updater::new(index.clone(), Cluster::new()).apply(vec![]);
        index.set_loaded();
        let routes = clusterdns::app::single_zone_routes(&index);
        Server::bind_with(routes, listen, &Default::default(), limits).await.unwrap()
    }

    /// A TCP connection to `to` from the loopback address `from`.
    pub fn connect_from(from: &str, to: SocketAddr) -> std::io::Result<TcpStream> {
        let s = Socket::new(Domain::for_address(to), Type::STREAM, None)?;
        let from: IpAddr = from.parse().unwrap();
        s.bind(&SocketAddr::new(from, 0).into())?;
        s.connect_timeout(&to.into(), Duration::from_secs(2))?;
        Ok(s.into())
    }

    pub fn framed(name: &str) -> Vec<u8> {
        let q = make_query(name, RecordType::SOA, None);
        let mut f = (q.len() as u16).to_be_bytes().to_vec();
        f.extend_from_slice(&q);
        f
    }

    /// One SOA question over TCP from `from`: answered or not.
    pub fn tcp_ok(from: &str, to: SocketAddr) -> bool {
        let Ok(mut s) = connect_from(from, to) else { return false };
        let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
        if s.write_all(&framed("cluster.local.")).is_err() {
            return false;
        }
        let mut len = [0u8; 2];
        s.read_exact(&mut len).is_ok()
    }

    /// Until `deadline`, whether a TCP question from `from` gets answered.
    pub fn tcp_ok_within(from: &str, to: SocketAddr, deadline: Duration) -> bool {
        let start = Instant::now();
        while start.elapsed() < deadline {
            if tcp_ok(from, to) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    }

    /// A client that sends questions and never reads: its replies pile up.
    pub fn slow_reader(from: &str, to: SocketAddr) -> Option<TcpStream> {
        let s = Socket::new(Domain::for_address(to), Type::STREAM, None).ok()?;
        s.set_recv_buffer_size(4096).ok()?;
        s.bind(&SocketAddr::new(from.parse().unwrap(), 0).into()).ok()?;
        s.connect_timeout(&to.into(), Duration::from_secs(2)).ok()?;
        let mut s: TcpStream = s.into();
        s.set_write_timeout(Some(Duration::from_millis(500))).ok()?;
        let burst: Vec<u8> = (0..200).flat_map(|_| framed("cluster.local.")).collect();
        for _ in 0..50 {
            if s.write_all(&burst).is_err() {
                break; // the server stopped reading: its replies are stuck
            }
        }
        Some(s)
    }

    /// A client that stopped reading held its TCP slot for as long as it
    /// liked: `write_all` had no timeout. Now the reply times out and the
    /// slot frees.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_client_that_stops_reading_held_its_tcp_slot() {
        let limits =
            TcpLimits { total: 1, per_client: 1, read: Duration::from_secs(30), write: Duration::from_secs(1) };
        let server = zone_server(&["127.0.0.1:0".parse().unwrap()], limits).await;
        let addr = server.local_addrs()[0];
        let freed = tokio::task::spawn_blocking(move || {
            let hostile = slow_reader("127.0.0.2", addr).expect("connects");
            // Its replies cannot be delivered: within a few write timeouts
            // the one slot is free for someone else.
            let freed = tcp_ok_within("127.0.0.3", addr, Duration::from_secs(8));
            drop(hostile);
            freed
        })
        .await
        .unwrap();
        assert!(freed, "the slot of a client that does not read was never freed");
        server.shutdown().await;
    }

    /// A query whose length arrives but whose body never does: the test of
    /// this closed its connection at once, so the server's body timeout was
    /// never exercised. Held open here, the connection is closed by the
    /// server after the read limit, and its slot serves the next client.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_length_whose_body_never_came_held_its_connection() {
        let limits =
            TcpLimits { total: 1, per_client: 1, read: Duration::from_millis(500), write: Duration::from_secs(1) };
        let server = zone_server(&["127.0.0.1:0".parse().unwrap()], limits).await;
        let addr = server.local_addrs()[0];
        tokio::task::spawn_blocking(move || {
            let mut s = connect_from("127.0.0.2", addr).unwrap();
            s.write_all(&[0xFF, 0xFF, 1, 2]).unwrap(); // 65,535 bytes announced, 2 sent
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let start = Instant::now();
            let mut b = [0u8; 1];
            assert!(matches!(s.read(&mut b), Ok(0) | Err(_)));
            let took = start.elapsed();
            assert!(took < Duration::from_secs(4), "closed after {took:?}");
            assert!(tcp_ok_within("127.0.0.3", addr, Duration::from_secs(3)), "the slot is free again");
        })
        .await
        .unwrap();
        server.shutdown().await;
    }

    /// The 1,024 TCP slots were global: one address could take them all
    /// and lock every other client out of TCP. Now each address has its own
    /// share.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_client_address_took_every_tcp_slot() {
        let limits = TcpLimits { total: 8, per_client: 2, ..TcpLimits::for_file_limit(1 << 20) };
        let server = zone_server(&["127.0.0.1:0".parse().unwrap()], limits).await;
        let addr = server.local_addrs()[0];
        tokio::task::spawn_blocking(move || {
            let idle: Vec<TcpStream> = (0..8).filter_map(|_| connect_from("127.0.0.2", addr).ok()).collect();
            std::thread::sleep(Duration::from_millis(200));
            // Two of its connections are served, the others closed at once.
            let open = idle
                .iter()
                .filter(|s| {
                    let _ = s.set_read_timeout(Some(Duration::from_millis(300)));
                    let mut b = [0u8; 1];
                    !matches!((&**s).read(&mut b), Ok(0))
                })
                .count();
            assert_eq!(open, 2, "connections kept from one address");
            assert!(tcp_ok("127.0.0.3", addr), "another address is served");
        })
        .await
        .unwrap();
        server.shutdown().await;
    }

    /// A thousand hostile connections (idle, slow writers, slow readers)
    /// from ten addresses, with the limits the process really runs with:
    /// another client's every question over UDP and TCP is answered.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_thousand_hostile_connections_leave_other_clients_served() {
        let files = clusterdns::server::raise_file_limit();
        assert!(files >= 4096, "the hard file limit here is {files}: too low for this test");
        let server = zone_server(&["127.0.0.1:0".parse().unwrap()], TcpLimits::default()).await;
        let addr = server.local_addrs()[0];
        let bad = tokio::task::spawn_blocking(move || {
            let mut hostile = Vec::new();
            for n in 0..1000 {
                let from = format!("127.0.0.{}", 2 + n % 10);
                let conn = match n % 3 {
                    0 => connect_from(&from, addr).ok(),
                    1 => connect_from(&from, addr).ok().map(|mut s| {
                        let _ = s.write_all(&[0]); // half a length, then nothing
                        s
                    }),
                    _ => slow_reader(&from, addr),
                };
                hostile.extend(conn);
            }
            let mut bad = Vec::new();
            for i in 0..200 {
                let t = if i % 4 == 0 { Transport::Tcp } else { Transport::Udp };
                let m = ask_within(addr, "cluster.local.", RecordType::SOA, t, None, Duration::from_secs(3));
                if m.metadata.response_code != ResponseCode::NoError || m.answers.len() != 1 {
                    bad.push((i, t));
                }
            }
            drop(hostile);
            bad
        })
        .await
        .unwrap();
        assert!(bad.is_empty(), "unanswered while hostile connections were held: {bad:?}");
        server.shutdown().await;
    }

    /// `[::]` alone refused IPv4 over UDP (v6-only) but took it over TCP,
    /// and `127.0.0.1:P` beside `[::]:P` did not start. Now `[::]` takes
    /// both families on both protocols, and an IPv4 address listed on the
    /// same port makes it IPv6 only.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn ipv4_and_ipv6_on_one_port_did_not_work() {
        let limits = TcpLimits::default();
        let server = zone_server(&["[::]:0".parse().unwrap()], limits).await;
        let port = server.local_addrs()[0].port();
        for ip in ["127.0.0.1", "::1"] {
            let to = SocketAddr::new(ip.parse().unwrap(), port);
            for t in [Transport::Udp, Transport::Tcp] {
                let m = ask_within(to, "cluster.local.", RecordType::SOA, t, None, Duration::from_secs(2));
                assert_eq!(m.answers.len(), 1, "[::] over {t:?} from {ip}");
            }
        }
        server.shutdown().await;
        // Both listed on one port: both start, each family answers.
        let mut started = None;
        for _ in 0..20 {
            let port = super::common::free_port();
            let listen: Vec<SocketAddr> = vec![([127, 0, 0, 1], port).into(), format!("[::]:{port}").parse().unwrap()];
            let routes = {
                use clusterdns::model::Cluster;
                use clusterdns::records::{PodMode, Updater, ZoneConfig, ZoneIndex};
                let index = ZoneIndex::new(ZoneConfig::new("cluster.local", 5, PodMode::Disabled).unwrap());
                Updater::new(index.clone(), Cluster::new()).apply(vec![]);
                index.set_loaded();
                clusterdns::app::single_zone_routes(&index)
            };
            match Server::bind_with(routes, &listen, &Default::default(), limits).await {
                Ok(s) => {
                    started = Some((s, port));
                    break;
                }
                Err(e) if e.to_string().contains("in use") => continue, // the port was taken meanwhile
                Err(e) => panic!("127.0.0.1:{port} with [::]:{port}: {e}"),
            }
        }
        let (server, port) = started.expect("a free port");
        for ip in ["127.0.0.1", "::1"] {
            let to = SocketAddr::new(ip.parse().unwrap(), port);
            for t in [Transport::Udp, Transport::Tcp] {
                let m = ask_within(to, "cluster.local.", RecordType::SOA, t, None, Duration::from_secs(2));
                assert_eq!(m.answers.len(), 1, "both listed, over {t:?} from {ip}");
            }
        }
        server.shutdown().await;
    }
}

// ---- Admin ports and signals (the real binary) ---------------------------

mod process {
    use std::io::{Read, Write};
    use std::net::SocketAddr;
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    use hickory_proto::rr::RecordType;

    use super::common::{Process, Transport, ask_within, fixtures, free_port, http_get};
    use super::net::{connect_from, tcp_ok};

    /// `clusterdns serve` on 127.0.0.1 with /health on its own port, under
    /// `ulimit -n files` (soft and hard), started and healthy.
    fn serve(files: u32, extra: &[&str]) -> (Process, SocketAddr, SocketAddr) {
        let (dns, health) = (free_port(), free_port());
        let dir = tempfile::tempdir().unwrap().keep();
        let log = dir.join("server.log");
        let fixture = fixtures().join("workloads.yaml");
        let mut args: Vec<String> = vec![
            "serve".into(),
            "--manifests".into(),
            fixture.display().to_string(),
            "--listen".into(),
            format!("127.0.0.1:{dns}"),
            "--health".into(),
            format!("127.0.0.1:{health}"),
            "--ready".into(),
            "off".into(),
            "--metrics".into(),
            "off".into(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        let child = Command::new("sh")
            .arg("-c")
            .arg(format!("ulimit -n {files} && exec \"$0\" \"$@\""))
            .arg(env!("CARGO_BIN_EXE_clusterdns"))
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let p = Process { child, log };
        let health: SocketAddr = ([127, 0, 0, 1], health).into();
        let start = Instant::now();
        while !http_get(health, "/health").is_some_and(|r| r.starts_with("HTTP/1.1 200")) {
            assert!(start.elapsed() < Duration::from_secs(20), "never healthy:\n{}", p.log());
            std::thread::sleep(Duration::from_millis(50));
        }
        (p, ([127, 0, 0, 1], dns).into(), health)
    }

    /// CPU seconds the process has used.
    fn cpu(pid: u32) -> f64 {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let fields: Vec<&str> = stat.rsplit(')').next().unwrap_or("").split_whitespace().collect();
        let ticks: u64 = fields.get(11..13).map_or(0, |f| f.iter().filter_map(|v| v.parse::<u64>().ok()).sum());
        ticks as f64 / 100.0
    }

    /// 400 idle connections to /health under `ulimit -n 256` took 65% of a
    /// core (the accept loop spun on EMFILE) and stopped DNS over TCP. Now
    /// one address holds at most a few admin connections and accept errors
    /// back off.
    #[test]
    fn idle_admin_connections_spun_a_core_and_stopped_dns_over_tcp() {
        let (p, dns, health) = serve(256, &[]);
        let before = cpu(p.child.id());
        let idle: Vec<_> = (0..400).filter_map(|_| connect_from("127.0.0.2", health).ok()).collect();
        std::thread::sleep(Duration::from_secs(2));
        let used = cpu(p.child.id()) - before;
        assert!(used < 0.5, "{used:.2} CPU seconds while idle admin connections were opened:\n{}", p.log());
        let probe = http_get(health, "/health").unwrap_or_default();
        assert!(probe.starts_with("HTTP/1.1 200"), "the probe: {probe:?}");
        assert!(tcp_ok("127.0.0.3", dns), "DNS over TCP:\n{}", p.log());
        let m = ask_within(dns, "cluster.local.", RecordType::SOA, Transport::Udp, None, Duration::from_secs(2));
        assert_eq!(m.answers.len(), 1);
        drop(idle);
    }

    /// A request whose headers never end held its admin connection forever
    /// (no header timeout). Now it is closed within seconds.
    #[test]
    fn a_half_sent_admin_request_was_kept_open() {
        let (_p, _dns, health) = serve(1024, &[]);
        let mut s = connect_from("127.0.0.2", health).unwrap();
        s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n").unwrap();
        s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
        let start = Instant::now();
        let mut buf = Vec::new();
        let _ = s.read_to_end(&mut buf);
        assert!(start.elapsed() < Duration::from_secs(12), "still open after {:?}", start.elapsed());
    }

    fn signal(p: &Process, sig: &str) {
        assert!(Command::new("kill").args([sig, &p.child.id().to_string()]).status().unwrap().success());
    }

    /// SIGHUP killed the process without a word, and a second Ctrl-C was
    /// ignored while the lame duck ran its course.
    #[test]
    fn sighup_killed_the_server_and_a_second_ctrl_c_was_ignored() {
        let (mut p, dns, _) = serve(1024, &["--lameduck", "30"]);
        signal(&p, "-HUP");
        std::thread::sleep(Duration::from_millis(500));
        assert!(p.child.try_wait().unwrap().is_none(), "SIGHUP ended it:\n{}", p.log());
        let m = ask_within(dns, "cluster.local.", RecordType::SOA, Transport::Udp, None, Duration::from_secs(2));
        assert_eq!(m.answers.len(), 1, "answers after SIGHUP");
        assert!(p.log().contains("SIGHUP"), "SIGHUP is logged:\n{}", p.log());
        signal(&p, "-INT");
        std::thread::sleep(Duration::from_millis(300));
        assert!(p.child.try_wait().unwrap().is_none(), "the lame duck runs after one SIGINT");
        signal(&p, "-INT");
        let start = Instant::now();
        let status = loop {
            if let Some(s) = p.child.try_wait().unwrap() {
                break s;
            }
            assert!(start.elapsed() < Duration::from_secs(5), "a second SIGINT did not stop it:\n{}", p.log());
            std::thread::sleep(Duration::from_millis(50));
        };
        assert!(status.success(), "{status}:\n{}", p.log());
    }
}
