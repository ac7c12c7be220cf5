//! A fake upstream resolver for the forwarder's tests: UDP and TCP on a
//! loopback address, answering from a small in-memory zone, with switches
//! for the faults a forwarder must survive (silence, slowness, truncation,
//! a wrong ID, a wrong question, a reply from another address).

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, CNAME, PTR, SOA};
use hickory_proto::rr::{Name, RData, Record, RecordType};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    None,
    /// Reads and never answers.
    Silent,
    /// Answers after this long.
    Slow(Duration),
    /// UDP answers carry TC and no records (TCP answers whole).
    Truncate,
    /// Answers with another ID first, then the right one.
    WrongIdFirst,
    /// Answers with another question first, then the right one.
    WrongQuestionFirst,
    /// Answers from another socket (another source port) first, then right.
    OtherSourceFirst,
    /// Answers REFUSED.
    Refuse,
}

struct State {
    records: HashMap<(String, RecordType), Vec<Record>>,
    /// Names that exist (for NODATA vs NXDOMAIN).
    names: Vec<String>,
    soa_minimum: u32,
    fault: Fault,
}

pub struct Upstream {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
    /// Questions received (UDP and TCP), health probes included.
    pub received: Arc<AtomicUsize>,
    /// Questions by name (lowercase, no trailing dot).
    pub asked: Arc<Mutex<Vec<String>>>,
    /// Questions received over TCP.
    pub tcp_received: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

fn name(s: &str) -> Name {
    Name::from_ascii(s).unwrap()
}

fn key(s: &str) -> String {
    s.trim_end_matches('.').to_ascii_lowercase()
}

impl Upstream {
    /// Serves on `ip` (a loopback address) and `port` (0: any).
    pub fn start(ip: &str, port: u16) -> Upstream {
        let ip: IpAddr = ip.parse().unwrap();
        let udp = UdpSocket::bind((ip, port)).expect("upstream udp bind");
        let addr = udp.local_addr().unwrap();
        let tcp = TcpListener::bind(addr).expect("upstream tcp bind");
        let state = Arc::new(Mutex::new(State {
            records: HashMap::new(),
            names: Vec::new(),
            soa_minimum: 60,
            fault: Fault::None,
        }));
        let received = Arc::new(AtomicUsize::new(0));
        let asked = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        udp.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
        {
            let (state, received, asked, stop) = (state.clone(), received.clone(), asked.clone(), stop.clone());
            std::thread::spawn(move || udp_loop(udp, ip, &state, &received, &asked, &stop));
        }
        let tcp_received = Arc::new(AtomicUsize::new(0));
        {
            let (state, received, asked, stop) = (state.clone(), received.clone(), asked.clone(), stop.clone());
            let tcp_received = tcp_received.clone();
            tcp.set_nonblocking(true).unwrap();
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match tcp.accept() {
                        Ok((conn, _)) => {
                            let (state, received, asked) = (state.clone(), received.clone(), asked.clone());
                            let tcp_received = tcp_received.clone();
                            std::thread::spawn(move || tcp_conn(conn, &state, &received, &asked, &tcp_received));
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(10)),
                    }
                }
            });
        }
        Upstream { addr, state, received, asked, tcp_received, stop }
    }

    pub fn set_fault(&self, fault: Fault) {
        self.state.lock().unwrap().fault = fault;
    }

    pub fn set_soa_minimum(&self, min: u32) {
        self.state.lock().unwrap().soa_minimum = min;
    }

    fn add(&self, owner: &str, ttl: u32, data: RData) {
        let mut st = self.state.lock().unwrap();
        let rtype = data.record_type();
        st.records.entry((key(owner), rtype)).or_default().push(Record::from_rdata(name(owner), ttl, data));
        // The name and its ancestors exist.
        let mut n = key(owner);
        loop {
            if !st.names.contains(&n) {
                st.names.push(n.clone());
            }
            match n.split_once('.') {
                Some((_, rest)) => n = rest.to_string(),
                None => break,
            }
        }
    }

    pub fn a(&self, owner: &str, ttl: u32, ip: &str) -> &Self {
        self.add(owner, ttl, RData::A(A(ip.parse().unwrap())));
        self
    }

    pub fn aaaa(&self, owner: &str, ttl: u32, ip: &str) -> &Self {
        self.add(owner, ttl, RData::AAAA(AAAA(ip.parse().unwrap())));
        self
    }

    pub fn cname(&self, owner: &str, ttl: u32, target: &str) -> &Self {
        self.add(owner, ttl, RData::CNAME(CNAME(name(target))));
        self
    }

    pub fn ptr(&self, owner: &str, ttl: u32, target: &str) -> &Self {
        self.add(owner, ttl, RData::PTR(PTR(name(target))));
        self
    }

    /// The internet, as the tests' upstream knows it: an address with both
    /// families, a CNAME chain to it, and its reverse name.
    pub fn internet(&self) -> &Self {
        self.a("h1.example.com.", 300, "203.0.113.1")
            .aaaa("h1.example.com.", 300, "2001:db8::1")
            .cname("www.example.com.", 300, "h2.example.com.")
            .cname("h2.example.com.", 300, "h1.example.com.")
            .ptr("9.113.0.203.in-addr.arpa.", 300, "h1.example.com.")
    }

    /// Questions received for `qname` so far.
    pub fn count(&self, qname: &str) -> usize {
        let k = key(qname);
        self.asked.lock().unwrap().iter().filter(|n| **n == k).count()
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// The answer to `query` from the zone (CNAMEs followed inside it).
fn answer(st: &State, query: &Message) -> Message {
    let mut reply = Message::new(query.metadata.id, MessageType::Response, query.metadata.op_code);
    reply.metadata.recursion_desired = query.metadata.recursion_desired;
    reply.metadata.recursion_available = true;
    let Some(q) = query.queries.first() else {
        reply.metadata.response_code = ResponseCode::FormErr;
        return reply;
    };
    reply.add_query(q.clone());
    if let Some(e) = &query.edns {
        reply.set_edns(e.clone());
    }
    if st.fault == Fault::Refuse {
        reply.metadata.response_code = ResponseCode::Refused;
        return reply;
    }
    let mut current = key(&q.name().to_ascii());
    for _ in 0..8 {
        if let Some(rrs) = st.records.get(&(current.clone(), q.query_type())) {
            reply.answers.extend(rrs.iter().cloned());
            return reply;
        }
        match st.records.get(&(current.clone(), RecordType::CNAME)) {
            Some(rrs) if q.query_type() != RecordType::CNAME => {
                reply.answers.extend(rrs.iter().cloned());
                let RData::CNAME(target) = &rrs[0].data else { break };
                current = key(&target.0.to_ascii());
            }
            _ => break,
        }
    }
    if !reply.answers.is_empty() && !st.names.contains(&current) {
        // A chain that ends outside what we know: NOERROR with the chain.
        return reply;
    }
    let exists = st.names.contains(&current);
    reply.metadata.response_code = if exists { ResponseCode::NoError } else { ResponseCode::NXDomain };
    let apex = current.rsplitn(3, '.').take(2).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join(".");
    let origin = if apex.is_empty() { ".".to_string() } else { format!("{apex}.") };
    let under = |label: &str| if origin == "." { format!("{label}.") } else { format!("{label}.{origin}") };
    let soa = SOA::new(name(&under("ns")), name(&under("hostmaster")), 1, 7200, 1800, 86400, st.soa_minimum);
    reply.authorities.push(Record::from_rdata(name(&origin), 300, RData::SOA(soa)));
    reply
}

fn respond(
    st: &Mutex<State>,
    packet: &[u8],
    received: &AtomicUsize,
    asked: &Mutex<Vec<String>>,
) -> Option<(Message, Fault)> {
    let query = Message::from_vec(packet).ok()?;
    received.fetch_add(1, Ordering::Relaxed);
    if let Some(q) = query.queries.first() {
        asked.lock().unwrap().push(key(&q.name().to_ascii()));
    }
    let st = st.lock().unwrap();
    Some((answer(&st, &query), st.fault))
}

fn udp_loop(
    sock: UdpSocket,
    ip: IpAddr,
    state: &Mutex<State>,
    received: &AtomicUsize,
    asked: &Mutex<Vec<String>>,
    stop: &AtomicBool,
) {
    let mut buf = vec![0u8; 65535];
    let other = UdpSocket::bind((ip, 0)).unwrap();
    while !stop.load(Ordering::Relaxed) {
        let Ok((n, peer)) = sock.recv_from(&mut buf) else { continue };
        let Some((mut reply, fault)) = respond(state, &buf[..n], received, asked) else { continue };
        let send = |m: &Message, from: &UdpSocket| {
            let _ = from.send_to(&m.to_vec().unwrap(), peer);
        };
        match fault {
            Fault::Silent => continue,
            Fault::Slow(d) => std::thread::sleep(d),
            Fault::Truncate => {
                reply.answers.clear();
                reply.authorities.clear();
                reply.metadata.truncation = true;
            }
            Fault::WrongIdFirst => {
                let mut wrong = reply.clone();
                wrong.metadata.id = reply.metadata.id.wrapping_add(1);
                send(&wrong, &sock);
            }
            Fault::WrongQuestionFirst => {
                let mut wrong = reply.clone();
                wrong.queries[0].set_name(name("wrong.example."));
                wrong.answers.clear();
                send(&wrong, &sock);
            }
            Fault::OtherSourceFirst => send(&reply, &other),
            Fault::None | Fault::Refuse => {}
        }
        send(&reply, &sock);
    }
}

fn tcp_conn(
    mut conn: TcpStream,
    state: &Mutex<State>,
    received: &AtomicUsize,
    asked: &Mutex<Vec<String>>,
    tcp_received: &AtomicUsize,
) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
    loop {
        let mut len = [0u8; 2];
        if conn.read_exact(&mut len).is_err() {
            return;
        }
        let mut buf = vec![0u8; u16::from_be_bytes(len) as usize];
        if conn.read_exact(&mut buf).is_err() {
            return;
        }
        let Some((reply, fault)) = respond(state, &buf, received, asked) else { return };
        tcp_received.fetch_add(1, Ordering::Relaxed);
        match fault {
            Fault::Silent => continue,
            Fault::Slow(d) => std::thread::sleep(d),
            _ => {}
        }
        let bytes = reply.to_vec().unwrap();
        let mut framed = (bytes.len() as u16).to_be_bytes().to_vec();
        framed.extend_from_slice(&bytes);
        if conn.write_all(&framed).is_err() {
            return;
        }
    }
}
