//! `loop`: finds a forwarding loop at start, as CoreDNS's `loop` plugin: a
//! question `<random>.<random>.<zone>` of type HINFO is sent to the server
//! itself; if it comes through the chain more than twice, `forward` sends
//! it back to us (a resolv.conf pointing at this server is the classic
//! cause).
//!
//! CoreDNS then exits, and every replica crash-loops with it, taking the
//! cluster zone down too. Here the loop is logged once, shown on `/ready`
//! (503) and in `clusterdns_loop_detected`, and only forwarded names fail
//! (SERVFAIL, which also stops the looping probe); the cluster zone keeps
//! answering.

use crate::metrics::Source;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::message::{self, CLASS_IN, Done, TYPE_HINFO};
use super::{Request, zone_key};

/// Probes sent before giving up on an answer. A probe is sent again only
/// when no answer came at all within [`WAIT`], longer than a forwarded
/// question can take (5 s): a resent probe passes the chain again and
/// would count toward a loop.
const PROBES: u32 = 5;
const WAIT: Duration = Duration::from_secs(7);

pub struct Loop {
    zone: String,
    /// The current probe's name (text, lookup key): a new one for every
    /// probe sent, so a probe resent after a lost answer starts counting
    /// afresh. Locked only for HINFO questions.
    probe: Mutex<(String, Box<[u8]>)>,
    seen: AtomicU32,
    /// This block's finding: only its forwarded names fail.
    detected: AtomicBool,
    /// Any block's finding, for `/ready` and the metric.
    any_detected: Arc<AtomicBool>,
}

fn probe_name(zone: &str) -> (String, Box<[u8]>) {
    let name = format!("{}.{}.{zone}", rand::random::<u32>(), rand::random::<u32>());
    let key = zone_key(&name).unwrap_or_else(|| Box::new([0]));
    (name, key)
}

impl Loop {
    /// A detector for the block of `zone`; `any_detected` is shared with
    /// the metrics and `/ready` (the wiring clears it on a reload, whose new
    /// detectors probe again).
    pub fn new(zone: &str, any_detected: Arc<AtomicBool>) -> Arc<Self> {
        let zone = match zone.trim_end_matches('.') {
            "" => String::new(),
            z => format!("{z}."),
        };
        let probe = Mutex::new(probe_name(&zone));
        Arc::new(Loop { zone, probe, seen: AtomicU32::new(0), detected: AtomicBool::new(false), any_detected })
    }

    pub fn detected(&self) -> bool {
        self.detected.load(Ordering::Relaxed)
    }

    /// Counts the probe on its way through; once it has come round more
    /// than twice, answers it SERVFAIL (ending the loop) and says so.
    pub fn inspect(&self, req: &Request, out: &mut Vec<u8>) -> Option<Done> {
        if req.q.qtype != TYPE_HINFO {
            return None;
        }
        let name = match self.probe.lock() {
            Ok(p) if req.key == &p.1[..] => p.0.clone(),
            _ => return None,
        };
        let seen = self.seen.fetch_add(1, Ordering::AcqRel) + 1;
        if seen <= 2 {
            return None;
        }
        self.any_detected.store(true, Ordering::Release);
        if !self.detected.swap(true, Ordering::AcqRel) {
            tracing::error!(
                probe = %name,
                "plugin/loop: forwarding loop detected ({seen} passes of the probe): forwarded names answer SERVFAIL; \
                 the cluster zone keeps answering. Point forward at a resolver that does not send questions back here."
            );
        }
        message::empty_reply(out, &req.q, message::RCODE_SERVFAIL);
        Some(Done { qtype: req.q.qtype, rcode: message::RCODE_SERVFAIL.into(), plugin: Source::Loop })
    }

    /// Sends the probe to the server at `addr` until an answer comes back
    /// (or a loop is found). Blocking: run it off the runtime.
    pub fn probe(&self, addr: SocketAddr) {
        let target = match addr.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), addr.port()),
            IpAddr::V6(ip) if ip.is_unspecified() => SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), addr.port()),
            _ => addr,
        };
        let local: SocketAddr =
            if target.is_ipv6() { (Ipv6Addr::LOCALHOST, 0).into() } else { (Ipv4Addr::LOCALHOST, 0).into() };
        let Ok(sock) = UdpSocket::bind(local) else { return };
        let _ = sock.set_read_timeout(Some(WAIT));
        let mut query = Vec::with_capacity(300);
        let mut buf = [0u8; 512];
        for _ in 0..PROBES {
            let probe = probe_name(&self.zone);
            let key = probe.1.clone();
            if let Ok(mut p) = self.probe.lock() {
                *p = probe;
                self.seen.store(0, Ordering::Release);
            }
            let id: u16 = rand::random();
            query.clear();
            message::header(&mut query, id, message::FLAG_RD, [1, 0, 0, 0]);
            query.extend_from_slice(&key);
            query.extend_from_slice(&TYPE_HINFO.to_be_bytes());
            query.extend_from_slice(&CLASS_IN.to_be_bytes());
            if sock.send_to(&query, target).is_err() {
                return;
            }
            match sock.recv_from(&mut buf) {
                Ok((n, _)) if message::u16_at(&buf[..n], 0) == Some(id) => return,
                _ if self.detected() => return,
                _ => {}
            }
        }
    }
}
