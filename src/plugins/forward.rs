//! `forward FROM TO... { except; force_tcp; prefer_udp; expire; max_fails;
//! health_check; policy; max_concurrent }`: a proxy to upstream resolvers,
//! as CoreDNS's `forward` plugin.
//!
//! Each upstream question gets a fresh random ID and goes out from a socket
//! bound to a kernel-chosen (random) port; sockets and TCP connections are
//! kept for reuse until idle for `expire`. A reply counts only when it comes
//! from the upstream's address with our ID and our question; anything else
//! is dropped and counted. UDP first (TCP when the client came over TCP,
//! unless `prefer_udp`; always with `force_tcp`), again over TCP when the
//! reply is truncated. A failed exchange starts health checks of that
//! upstream (`. IN NS` every `health_check`); after more than `max_fails`
//! failed checks it is down and skipped until a check succeeds. When every
//! upstream is down one is tried at random. No answer within 5 s: SERVFAIL;
//! more than `max_concurrent` questions in flight: REFUSED.

use crate::metrics::Source;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

use super::message::{self, Done, Walk};
use super::{Request, in_zone, in_zones, zone_key};
use crate::corefile;
use crate::metrics::{ForwardStats, UpstreamStats};

/// The whole time a question may take, over every upstream tried
/// (CoreDNS's `defaultTimeout`).
const TOTAL_TIMEOUT: Duration = Duration::from_secs(5);
/// Replies larger than this are not expected: we ask with EDNS 1232.
const UDP_BUF: usize = 4096;

/// Questions in flight upstream when `max_concurrent` is not set: past it,
/// REFUSED (counted as `max_concurrent` rejects). A few KiB each.
pub const MAX_IN_FLIGHT: usize = 4096;

#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    #[error("max_concurrent reached")]
    Overloaded,
    #[error("no upstream answered in time")]
    NoAnswer,
}

impl ForwardError {
    /// What the client is told.
    pub fn rcode(&self) -> u8 {
        match self {
            ForwardError::Overloaded => message::RCODE_REFUSED,
            ForwardError::NoAnswer => message::RCODE_SERVFAIL,
        }
    }
}

/// A validated upstream reply.
pub struct Reply {
    pub bytes: Vec<u8>,
    pub walk: Walk,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Proto {
    Udp,
    Tcp,
}

struct Pooled<T> {
    conn: T,
    used: Instant,
}

struct Upstream {
    addr: SocketAddr,
    /// Failed health checks in a row.
    fails: AtomicU32,
    checking: AtomicBool,
    udp: Mutex<Vec<Pooled<UdpSocket>>>,
    tcp: Mutex<Vec<Pooled<TcpStream>>>,
    stats: Arc<UpstreamStats>,
}

pub struct Forward {
    from: Box<[u8]>,
    except: Vec<Box<[u8]>>,
    upstreams: Vec<Arc<Upstream>>,
    cfg: corefile::Forward,
    health_probe_name: Box<[u8]>,
    in_flight: AtomicUsize,
    next: AtomicUsize,
    stats: Arc<ForwardStats>,
}

/// The upstream's address as CoreDNS labels it (`to`).
fn label(addr: &SocketAddr) -> String {
    addr.to_string()
}

impl Forward {
    pub fn new(cfg: corefile::Forward, stats: Arc<ForwardStats>) -> Self {
        let from = zone_key(&cfg.from).unwrap_or_else(|| Box::new([0]));
        let except = cfg.except.iter().filter_map(|z| zone_key(z)).collect();
        let upstreams = cfg
            .to
            .iter()
            .map(|addr| {
                Arc::new(Upstream {
                    addr: *addr,
                    fails: AtomicU32::new(0),
                    checking: AtomicBool::new(false),
                    udp: Mutex::new(Vec::new()),
                    tcp: Mutex::new(Vec::new()),
                    stats: stats.upstream(&label(addr)),
                })
            })
            .collect();
        let health_probe_name = zone_key(&cfg.health_check_domain).unwrap_or_else(|| Box::new([0]));
        Forward {
            from,
            except,
            upstreams,
            cfg,
            health_probe_name,
            in_flight: AtomicUsize::new(0),
            next: AtomicUsize::new(0),
            stats,
        }
    }

    /// Whether this forwarder takes the name (FROM, minus `except`).
    pub fn serves(&self, key: &[u8]) -> bool {
        in_zone(key, &self.from) && !in_zones(key, &self.except)
    }

    fn down(&self, up: &Upstream) -> bool {
        self.cfg.max_fails > 0 && up.fails.load(Ordering::Relaxed) > self.cfg.max_fails
    }

    /// The upstreams in the order `policy` tries them.
    fn order(&self) -> Vec<usize> {
        let n = self.upstreams.len();
        let mut order: Vec<usize> = (0..n).collect();
        match self.cfg.policy {
            corefile::Policy::Sequential => {}
            corefile::Policy::RoundRobin => order.rotate_left(self.next.fetch_add(1, Ordering::Relaxed) % n.max(1)),
            corefile::Policy::Random => {
                for i in (1..n).rev() {
                    order.swap(i, rand::random_range(0..=i));
                }
            }
        }
        order
    }

    /// Sends the question upstream and returns the first valid reply.
    pub async fn exchange(self: &Arc<Self>, req: &Request<'_>) -> Result<Reply, ForwardError> {
        // Without `max_concurrent` (CoreDNS: no limit) a flood towards a
        // dead upstream would hold a task per question for 5 s each: the
        // built-in cap bounds that memory.
        let max = if self.cfg.max_concurrent > 0 { self.cfg.max_concurrent } else { MAX_IN_FLIGHT };
        if self.in_flight.fetch_add(1, Ordering::AcqRel) >= max {
            self.in_flight.fetch_sub(1, Ordering::AcqRel);
            self.stats.max_concurrent_rejects.fetch_add(1, Ordering::Relaxed);
            return Err(ForwardError::Overloaded);
        }
        struct InFlight<'a>(&'a AtomicUsize);
        impl Drop for InFlight<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::AcqRel);
            }
        }
        let _slot = InFlight(&self.in_flight);
        let deadline = Instant::now() + TOTAL_TIMEOUT;
        let order = self.order();
        let all_down = order.iter().all(|&i| self.down(&self.upstreams[i]));
        let tries: Vec<usize> = if all_down {
            // Health checking has failed as a mechanism: try one at random.
            self.stats.healthcheck_broken.fetch_add(1, Ordering::Relaxed);
            vec![order[rand::random_range(0..order.len())]]
        } else {
            order.into_iter().filter(|&i| !self.down(&self.upstreams[i])).collect()
        };
        let first = if self.cfg.force_tcp || (!req.udp && !self.cfg.prefer_udp) { Proto::Tcp } else { Proto::Udp };
        // Each upstream twice over (a lost packet is not a dead upstream),
        // as long as the deadline allows, as CoreDNS does.
        for &i in tries.iter().chain(tries.iter()) {
            let up = &self.upstreams[i];
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            let timeout = self.cfg.read_timeout.min(deadline - now);
            let started = Instant::now();
            up.stats.requests.fetch_add(1, Ordering::Relaxed);
            let mut result = self.try_once(up, req, first, timeout).await;
            if first == Proto::Udp && matches!(&result, Ok(r) if r.walk.truncated()) {
                let timeout = self.cfg.read_timeout.min(deadline.saturating_duration_since(Instant::now()));
                result = self.try_once(up, req, Proto::Tcp, timeout).await;
            }
            match result {
                Ok(reply) => {
                    up.stats.observe(reply.walk.rcode().into(), started.elapsed());
                    return Ok(reply);
                }
                Err(e) => {
                    tracing::debug!(upstream = %up.addr, error = %e, "forward exchange failed");
                    self.start_health_check(up);
                }
            }
        }
        Err(ForwardError::NoAnswer)
    }

    async fn try_once(
        &self,
        up: &Upstream,
        req: &Request<'_>,
        proto: Proto,
        timeout: Duration,
    ) -> std::io::Result<Reply> {
        let q = &req.q;
        let id: u16 = rand::random();
        let mut msg = Vec::with_capacity(q.qname.len() + 32);
        message::header(&mut msg, id, q.flags & (message::FLAG_RD | message::FLAG_CD), [1, 0, 0, 1]);
        msg.extend_from_slice(q.qname);
        msg.extend_from_slice(&q.qtype.to_be_bytes());
        msg.extend_from_slice(&q.qclass.to_be_bytes());
        message::push_opt(&mut msg, 0, q.dnssec_ok());
        let opt_size = msg.len() - 8;
        msg[opt_size..opt_size + 2].copy_from_slice(&req.cap.to_be_bytes());
        let expect = Expect { id, qname: q.qname, qtype: q.qtype, qclass: q.qclass };
        let deadline = tokio::time::Instant::now() + timeout;
        match proto {
            Proto::Udp => self.udp(up, &msg, &expect, deadline).await,
            Proto::Tcp => self.tcp(up, &msg, &expect, deadline).await,
        }
    }

    /// A pooled connection not idle for `expire` yet (older ones close).
    fn take<T>(&self, pool: &Mutex<Vec<Pooled<T>>>) -> Option<T> {
        let mut pool = pool.lock().ok()?;
        while let Some(p) = pool.pop() {
            if p.used.elapsed() < self.cfg.expire {
                return Some(p.conn);
            }
        }
        None
    }

    /// Puts a connection back for reuse.
    fn give<T>(pool: &Mutex<Vec<Pooled<T>>>, conn: T) {
        if let Ok(mut p) = pool.lock() {
            p.push(Pooled { conn, used: Instant::now() });
        }
    }

    async fn udp(
        &self,
        up: &Upstream,
        msg: &[u8],
        expect: &Expect<'_>,
        deadline: tokio::time::Instant,
    ) -> std::io::Result<Reply> {
        let sock = match self.take(&up.udp) {
            Some(s) => s,
            None => {
                let local: SocketAddr = if up.addr.is_ipv6() { "[::]:0" } else { "0.0.0.0:0" }
                    .parse()
                    .map_err(|_| std::io::Error::other("local address"))?;
                UdpSocket::bind(local).await?
            }
        };
        sock.send_to(msg, up.addr).await?;
        let mut buf = vec![0u8; UDP_BUF];
        loop {
            let (n, from) = tokio::time::timeout_at(deadline, sock.recv_from(&mut buf))
                .await
                .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "read timeout"))??;
            if from != up.addr {
                up.stats.mismatched.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            buf.truncate(n);
            match expect.check(&buf) {
                Some(walk) => {
                    Self::give(&up.udp, sock);
                    return Ok(Reply { bytes: buf, walk });
                }
                None => {
                    up.stats.mismatched.fetch_add(1, Ordering::Relaxed);
                    buf.resize(UDP_BUF, 0);
                }
            }
        }
    }

    async fn tcp(
        &self,
        up: &Upstream,
        msg: &[u8],
        expect: &Expect<'_>,
        deadline: tokio::time::Instant,
    ) -> std::io::Result<Reply> {
        let timed_out = || std::io::Error::new(std::io::ErrorKind::TimedOut, "read timeout");
        let mut framed = Vec::with_capacity(msg.len() + 2);
        framed.extend_from_slice(&(msg.len() as u16).to_be_bytes());
        framed.extend_from_slice(msg);
        // A pooled connection may have been closed by the upstream: then
        // once more on a new one.
        for attempt in 0..2 {
            let pooled = if attempt == 0 { self.take(&up.tcp) } else { None };
            let reused = pooled.is_some();
            let mut conn = match pooled {
                Some(c) => c,
                None => {
                    tokio::time::timeout_at(deadline, TcpStream::connect(up.addr)).await.map_err(|_| timed_out())??
                }
            };
            let _ = conn.set_nodelay(true);
            let exchange = async {
                conn.write_all(&framed).await?;
                loop {
                    let mut len = [0u8; 2];
                    conn.read_exact(&mut len).await?;
                    let mut buf = vec![0u8; u16::from_be_bytes(len) as usize];
                    conn.read_exact(&mut buf).await?;
                    match expect.check(&buf) {
                        Some(walk) => return Ok::<_, std::io::Error>(Reply { bytes: buf, walk }),
                        None => {
                            up.stats.mismatched.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            };
            match tokio::time::timeout_at(deadline, exchange).await {
                Ok(Ok(reply)) => {
                    Self::give(&up.tcp, conn);
                    return Ok(reply);
                }
                Ok(Err(e)) if reused => {
                    tracing::debug!(error = %e, upstream = %up.addr, "pooled connection failed; new one");
                    continue;
                }
                Ok(Err(e)) => return Err(e),
                Err(_) => return Err(timed_out()),
            }
        }
        Err(std::io::Error::other("no connection"))
    }

    /// Probes `up` until it answers: each failed probe counts toward
    /// `max_fails`; a success clears it.
    fn start_health_check(self: &Arc<Self>, up: &Arc<Upstream>) {
        // `health_check 0` turns checking off, as `max_fails 0` does.
        if self.cfg.max_fails == 0 || self.cfg.health_check.is_zero() || up.checking.swap(true, Ordering::AcqRel) {
            return;
        }
        // Weak: a forwarder gone with a reload ends its checks.
        let (weak, up) = (Arc::downgrade(self), up.clone());
        tokio::spawn(async move {
            let mut probe = Vec::new();
            loop {
                let Some(fwd) = weak.upgrade() else { return };
                let flags = if fwd.cfg.health_check_no_rec { 0 } else { message::FLAG_RD };
                let id: u16 = rand::random();
                probe.clear();
                message::header(&mut probe, id, flags, [1, 0, 0, 0]);
                probe.extend_from_slice(&fwd.health_probe_name);
                probe.extend_from_slice(&message::TYPE_NS.to_be_bytes());
                probe.extend_from_slice(&message::CLASS_IN.to_be_bytes());
                let expect = Expect { id, qname: &fwd.health_probe_name, qtype: message::TYPE_NS, qclass: 1 };
                let deadline = tokio::time::Instant::now() + fwd.cfg.read_timeout.min(Duration::from_secs(1));
                let proto = if fwd.cfg.force_tcp { Proto::Tcp } else { Proto::Udp };
                let ok = match proto {
                    Proto::Udp => fwd.udp(&up, &probe, &expect, deadline).await.is_ok(),
                    Proto::Tcp => fwd.tcp(&up, &probe, &expect, deadline).await.is_ok(),
                };
                if ok {
                    up.fails.store(0, Ordering::Relaxed);
                    up.checking.store(false, Ordering::Release);
                    return;
                }
                up.fails.fetch_add(1, Ordering::Relaxed);
                up.stats.healthcheck_failures.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(fwd.cfg.health_check).await;
            }
        });
    }
}

/// What a reply must carry to count as the answer to our question: our ID,
/// QR set, opcode QUERY, and our question (the name in any case). Public
/// for the fuzzer, which feeds it arbitrary replies.
pub struct Expect<'a> {
    /// The ID we sent.
    pub id: u16,
    /// The question name as we sent it (wire form).
    pub qname: &'a [u8],
    pub qtype: u16,
    pub qclass: u16,
}

impl Expect<'_> {
    /// The reply walked, when it is a well-formed answer to our question;
    /// `None` when it must be dropped (and counted as mismatched).
    pub fn check(&self, reply: &[u8]) -> Option<Walk> {
        let walk = message::walk(reply)?;
        let qend = walk.question_end;
        let ok = walk.id == self.id
            && walk.flags & message::FLAG_QR != 0
            && (walk.flags >> 11) & 0xF == 0
            && message::same_name(&reply[12..qend - 4], self.qname)
            && message::u16_at(reply, qend - 4) == Some(self.qtype)
            && message::u16_at(reply, qend - 2) == Some(self.qclass);
        ok.then_some(walk)
    }
}

/// How the TTLs of a relayed reply are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ttl {
    /// As received.
    Keep,
    /// This value for every record (a cached reply's remaining life, or
    /// 0 for a stale one).
    Fixed(u32),
}

/// Writes an upstream reply (or a cached one) as the response to `req`: the
/// client's ID and question case, our OPT instead of the upstream's (or
/// none when the client sent none), TTLs as `ttl` says, and no more than the
/// client may take: answer records that do not fit are dropped with TC
/// set, authority and additional ones without (SPEC.md 4).
pub fn relay_with(req: &Request, reply: &[u8], walk: &Walk, ttl: Ttl, out: &mut Vec<u8>) -> Done {
    let q = &req.q;
    let max = req.max_size();
    let reserve = if q.edns.is_some() { message::OPT_LEN } else { 0 };
    out.clear();
    out.extend_from_slice(&reply[..walk.question_end]);
    out[0..2].copy_from_slice(&q.id.to_be_bytes());
    // The question as the client wrote it (same name, maybe other case).
    out[12..12 + q.qname.len()].copy_from_slice(q.qname);
    let mut counts = [1u16, 0, 0, 0];
    let mut truncated = walk.truncated();
    for rr in &walk.rrs {
        if rr.rtype == message::TYPE_OPT {
            // Ours replaces it. What follows it would move back by its
            // length and pointers into it would miss: additional records
            // may always be left out, so the relay ends here.
            break;
        }
        if out.len() + (rr.end - rr.start) + reserve > max {
            // Records are copied as they are, compression pointers and all:
            // a later record may point into this one, so nothing after it
            // is kept either. Only the answer section decides TC.
            truncated |= rr.section == 0;
            break;
        }
        let at = out.len();
        out.extend_from_slice(&reply[rr.start..rr.end]);
        let t = match ttl {
            Ttl::Keep => None,
            Ttl::Fixed(v) => Some(v),
        };
        if let Some(t) = t {
            let off = at + (rr.ttl_at - rr.start);
            out[off..off + 4].copy_from_slice(&t.to_be_bytes());
        }
        counts[1 + rr.section as usize] += 1;
    }
    message::set_counts(out, counts);
    let mut flags = walk.flags & !message::FLAG_TC;
    if truncated {
        flags |= message::FLAG_TC;
    }
    out[2..4].copy_from_slice(&flags.to_be_bytes());
    message::add_opt(out, q, 0);
    Done { qtype: q.qtype, rcode: walk.rcode().into(), plugin: Source::Forward }
}

#[cfg(test)]
mod tests {
    use hickory_proto::op::{Message, MessageType, OpCode, Query};
    use hickory_proto::rr::rdata::{A, NS};
    use hickory_proto::rr::{Name, RData, Record, RecordType};

    use super::*;
    use crate::plugins::message::{Parsed, parse};

    /// A reply whose additional records are compressed against its
    /// authority section: dropping some must not leave a pointer dangling.
    #[test]
    fn relayed_replies_cut_at_a_record_and_stay_well_formed() {
        let name = |s: &str| Name::from_ascii(s).unwrap();
        let mut query = Message::new(7, MessageType::Query, OpCode::Query);
        query.add_query(Query::query(name("www.example.com."), RecordType::A));
        let qbytes = query.to_vec().unwrap();
        let mut reply = query.clone();
        reply.metadata.message_type = MessageType::Response;
        // 28 answers fill 481 bytes; the NS record (50) does not fit in 512,
        // its glue (16, its owner a pointer into the NS record) would.
        for i in 0..28 {
            reply.answers.push(Record::from_rdata(name("www.example.com."), 60, RData::A(A::new(10, 0, 0, i))));
        }
        let ns = name("ns0.a-rather-long-name-server-label.example.com.");
        reply.authorities.push(Record::from_rdata(name("example.com."), 60, RData::NS(NS(ns.clone()))));
        reply.additionals.push(Record::from_rdata(ns, 60, RData::A(A::new(192, 0, 2, 1))));
        let bytes = reply.to_vec().unwrap();
        assert!(bytes.len() > 512, "the reply must need cutting: {}", bytes.len());
        let walk = message::walk(&bytes).unwrap();
        let Parsed::Query(q) = parse(&qbytes) else { panic!() };
        let key = b"\x03www\x07example\x03com\x00";
        let req = Request { q, key, udp: true, peer: "127.0.0.1:5353".parse().unwrap(), cap: 1232 };
        let mut out = Vec::new();
        relay_with(&req, &bytes, &walk, Ttl::Keep, &mut out);
        assert!(out.len() <= 512);
        let got = Message::from_vec(&out).expect("well formed");
        assert_eq!(got.answers.len(), 28, "every answer fits");
        assert!(!got.metadata.truncation, "only the answer section decides TC");
        for rr in got.additionals.iter() {
            assert!(rr.name.to_ascii().ends_with(".a-rather-long-name-server-label.example.com."), "{rr:?}");
        }
        // A client that takes less than the answers: TC, answers cut whole.
        let mut many = reply.clone();
        for i in 28..60 {
            many.answers.push(Record::from_rdata(name("www.example.com."), 60, RData::A(A::new(10, 0, 1, i))));
        }
        let bytes = many.to_vec().unwrap();
        let walk = message::walk(&bytes).unwrap();
        relay_with(&req, &bytes, &walk, Ttl::Keep, &mut out);
        let got = Message::from_vec(&out).expect("well formed");
        assert!(got.metadata.truncation);
        assert!(got.answers.len() < 60 && got.authorities.is_empty() && got.additionals.is_empty());
    }
}
