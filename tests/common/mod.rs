//! Shared test helpers: start a server on 127.0.0.1:0 from fixtures, and
//! ask it questions over real UDP and TCP sockets.
#![allow(dead_code)] // each test binary uses a different part

pub mod fake_api;
pub mod upstream;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::PathBuf;
use std::time::Duration;

use clusterdns::app::{Running, serve_manifests};
use clusterdns::config::ZoneFlags;
use clusterdns::records::PodMode;
use clusterdns::server::Listeners;
use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, RData, RecordType};

pub fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

pub fn flags(pods: PodMode) -> ZoneFlags {
    ZoneFlags { zone: "cluster.local".into(), ttl: 5, pods, service_cidr: "10.96.0.0/12".parse().unwrap() }
}

/// Serves `paths` on 127.0.0.1 (port chosen by the kernel), loaded.
pub async fn start(paths: Vec<PathBuf>, pods: PodMode) -> Running {
    let listen: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let running = serve_manifests(paths, Default::default(), &flags(pods), Listeners::bind(&[listen]).unwrap())
        .await
        .expect("server starts");
    assert!(running.wait_loaded(Duration::from_secs(30)).await, "manifests load");
    running
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
}

pub fn make_query(name: &str, qtype: RecordType, edns: Option<u16>) -> Vec<u8> {
    let mut msg = Message::new(rand_id(), MessageType::Query, OpCode::Query);
    msg.metadata.recursion_desired = true;
    msg.add_query(Query::query(Name::from_ascii(name).unwrap(), qtype));
    if let Some(size) = edns {
        let mut e = Edns::new();
        e.set_max_payload(size);
        msg.set_edns(e);
    }
    msg.to_vec().unwrap()
}

fn rand_id() -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    static NEXT: AtomicU16 = AtomicU16::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// Sends raw bytes and returns the raw reply (None on timeout).
pub fn exchange(addr: SocketAddr, packet: &[u8], transport: Transport) -> Option<Vec<u8>> {
    exchange_within(addr, packet, transport, Duration::from_secs(2))
}

/// [`exchange`] waiting up to `wait` for the reply.
pub fn exchange_within(addr: SocketAddr, packet: &[u8], transport: Transport, wait: Duration) -> Option<Vec<u8>> {
    match transport {
        Transport::Udp => {
            let sock = UdpSocket::bind(if addr.is_ipv6() { "[::1]:0" } else { "127.0.0.1:0" }).unwrap();
            sock.set_read_timeout(Some(wait)).unwrap();
            sock.send_to(packet, addr).unwrap();
            let mut buf = vec![0u8; 65535];
            let (n, _) = sock.recv_from(&mut buf).ok()?;
            buf.truncate(n);
            Some(buf)
        }
        Transport::Tcp => {
            let mut s = TcpStream::connect(addr).unwrap();
            s.set_read_timeout(Some(wait)).unwrap();
            let mut framed = (packet.len() as u16).to_be_bytes().to_vec();
            framed.extend_from_slice(packet);
            s.write_all(&framed).unwrap();
            let mut len = [0u8; 2];
            s.read_exact(&mut len).ok()?;
            let mut buf = vec![0u8; u16::from_be_bytes(len) as usize];
            s.read_exact(&mut buf).ok()?;
            Some(buf)
        }
    }
}

pub fn ask(addr: SocketAddr, name: &str, qtype: RecordType, transport: Transport, edns: Option<u16>) -> Message {
    ask_within(addr, name, qtype, transport, edns, Duration::from_secs(2))
}

/// [`ask`] waiting up to `wait` (forwarded questions may take seconds).
pub fn ask_within(
    addr: SocketAddr,
    name: &str,
    qtype: RecordType,
    transport: Transport,
    edns: Option<u16>,
    wait: Duration,
) -> Message {
    let packet = make_query(name, qtype, edns);
    let reply =
        exchange_within(addr, &packet, transport, wait).unwrap_or_else(|| panic!("no answer to {name} {qtype}"));
    let msg = Message::from_vec(&reply).unwrap_or_else(|e| panic!("bad reply to {name} {qtype}: {e}"));
    assert_eq!(msg.metadata.id, u16::from_be_bytes([packet[0], packet[1]]), "reply id");
    msg
}

/// A record as `name TYPE rdata`, lower case, for comparing with tables.
pub fn show(r: &hickory_proto::rr::Record) -> String {
    let rdata = match &r.data {
        RData::TXT(t) => {
            t.txt_data.iter().map(|s| format!("\"{}\"", String::from_utf8_lossy(s))).collect::<Vec<_>>().join(" ")
        }
        other => other.to_string(),
    };
    format!("{} {} {}", r.name.to_ascii().to_ascii_lowercase(), r.record_type(), rdata)
}

pub fn answers(msg: &Message) -> Vec<String> {
    let mut v: Vec<String> = msg.answers.iter().map(show).collect();
    v.sort();
    v
}

/// Longer than any forwarder timeout, so a late answer is seen as late.
pub const WAIT: Duration = Duration::from_secs(8);

/// Starts a Corefile (text) in process and waits for its zones to load;
/// `{fixtures}` stands for the fixture manifests.
pub async fn serve(text: &str) -> (clusterdns::app::Instance, std::sync::Arc<clusterdns::metrics::Metrics>) {
    let text = text.replace("{fixtures}", &fixtures().display().to_string());
    let env = |_: &str| None;
    let opts = clusterdns::corefile::Options { default_port: 53, env: &env };
    let cf = clusterdns::corefile::parse_str(&text, std::path::Path::new("Corefile"), &opts)
        .unwrap_or_else(|e| panic!("{e}\n{text}"));
    let metrics = std::sync::Arc::new(clusterdns::metrics::Metrics::default());
    let instance = clusterdns::app::serve_corefile(&cf, metrics.clone()).await.unwrap_or_else(|e| panic!("{e}"));
    let loaded = clusterdns::app::wait_loaded(&instance.indexes(), Duration::from_secs(30)).await;
    assert!(loaded, "zones loaded");
    (instance, metrics)
}

/// Asks over UDP off the runtime's threads (the server's tasks need them).
pub async fn query(addr: SocketAddr, name: &str, qtype: RecordType) -> Message {
    let name = name.to_string();
    tokio::task::spawn_blocking(move || ask_within(addr, &name, qtype, Transport::Udp, None, WAIT)).await.unwrap()
}

/// [`query`] over TCP.
pub async fn query_tcp(addr: SocketAddr, name: &str, qtype: RecordType) -> Message {
    let name = name.to_string();
    tokio::task::spawn_blocking(move || ask_within(addr, &name, qtype, Transport::Tcp, None, WAIT)).await.unwrap()
}

/// A server process of the tests, killed when the test ends however it ends.
pub struct Process {
    pub child: std::process::Child,
    /// Where its stderr goes.
    pub log: PathBuf,
    /// A folder of its own (the log's), removed after the process is gone.
    pub dir: Option<tempfile::TempDir>,
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Process {
    /// What it wrote to stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// A port free for UDP and TCP, for a server the test starts itself.
///
/// Not one the kernel picks: those come from the ephemeral range
/// (32768-60999), where every outgoing connection of every process takes
/// its port, so a picked-and-released port could be taken again before the
/// server binds it. These come from below that range, each handed out once
/// per test binary, starting at a point that differs between binaries.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    const LOW: u32 = 20_000;
    const SPAN: u32 = 12_000;
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let start = std::process::id().wrapping_mul(7919) % SPAN;
    loop {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        assert!(n < SPAN, "no free port left below the ephemeral range");
        let port = (LOW + (start + n) % SPAN) as u16;
        let free = UdpSocket::bind(("0.0.0.0", port)).is_ok()
            && std::net::TcpListener::bind(("0.0.0.0", port)).is_ok()
            && UdpSocket::bind(("::", port)).is_ok();
        if free {
            return port;
        }
    }
}

/// One block on 127.0.0.1 (a kernel-chosen port) with the fixture cluster
/// as kubeadm configures `kubernetes`, then `extra` directives.
pub fn kube_corefile(extra: &str) -> String {
    format!(
        ".:0 {{
    bind 127.0.0.1
    kubernetes cluster.local in-addr.arpa ip6.arpa {{
        manifests {{fixtures}}
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
    }}
{extra}
}}"
    )
}

/// One HTTP/1.1 GET: the whole response (status line, headers, body).
#[allow(dead_code)]
pub fn http_get(addr: SocketAddr, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    Some(text)
}

/// `n` Services `svc-0`... in namespace `default`, ClusterIPs left to the
/// manifest source: a cluster big enough that loading it takes seconds.
pub fn many_services(n: usize) -> String {
    let mut yaml = String::from("apiVersion: v1\nkind: Namespace\nmetadata: {name: default}\n");
    for i in 0..n {
        yaml.push_str(&format!(
            "---\napiVersion: v1\nkind: Service\nmetadata: {{name: svc-{i}, namespace: default}}\nspec: {{ports: [{{port: 80}}]}}\n"
        ));
    }
    yaml
}
