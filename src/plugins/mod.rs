//! The Corefile's chain: what happens to a question between the socket and
//! the answer. One file per directive, each deciding "answer, or pass to
//! the next" with the miss as a value (`None`), run in CoreDNS's plugin
//! order (`plugin.cfg`):
//!
//! ```text
//! log · any · chaos · loadbalance · rewrite · cache · minimal · template · hosts · kubernetes · loop · forward
//! ```
//!
//! Every stage but `forward` answers in place, on the thread that received
//! the question, into the caller's buffer: the cluster zone's path stays a
//! lookup and a copy (no allocation, no lock). `forward` needs the network,
//! so the chain then returns [`Flow::Forward`] and the server finishes the
//! question on the runtime. `cache` sits where CoreDNS puts it, but holds
//! only what comes from upstream: the cluster zone's answers are prepared
//! already and always current, so caching them would only make them stale.

use crate::metrics::Source;

pub mod any;
pub mod cache;
pub mod chaos;
pub mod chase;
pub mod forward;
pub mod hosts;
pub mod kubernetes;
pub mod loadbalance;
pub mod log;
pub mod loop_detect;
pub mod message;
pub mod minimal;
pub mod rewrite;
pub mod template;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use crate::corefile;
use crate::records::name::lowercase_key;
use message::{Done, Parsed, Query};

pub use cache::Cache;
pub use chaos::Chaos;
pub use forward::Forward;
pub use hosts::Hosts;
pub use kubernetes::Kubernetes;
pub use log::Log;
pub use loop_detect::Loop;
pub use template::Template;

/// One question on its way through a chain.
#[derive(Clone, Copy)]
pub struct Request<'a> {
    pub q: Query<'a>,
    /// The question name, lowercase wire form.
    pub key: &'a [u8],
    /// Arrived over UDP (answers are size-limited, SPEC.md 4).
    pub udp: bool,
    pub peer: SocketAddr,
    /// The largest EDNS size used, to clients and upstreams: 1232, or what
    /// `bufsize` sets.
    pub cap: u16,
}

impl Request<'_> {
    /// The most the response may take.
    pub fn max_size(&self) -> usize {
        message::max_size(&self.q, self.udp, self.cap)
    }
}

/// What a chain did with a question.
pub enum Flow {
    /// The response is in the output buffer.
    Done(Done),
    /// The response is in the output buffer, and this question should go
    /// upstream behind it to refresh the cache (prefetch, stale entries):
    /// run the [`Pending`] and discard its output.
    Refresh(Done, Box<Pending>),
    /// It must go upstream: finish it with [`Pending::run`] off the
    /// receiving thread.
    Forward(Box<Pending>),
}

/// A question that goes upstream, owned so it can wait for the network.
pub struct Pending {
    chain: Arc<Chain>,
    forward: usize,
    /// The message as the chain sees it (rewritten, if a rule applied).
    query: Vec<u8>,
    /// The client's message size, for the log.
    query_len: usize,
    revert: Option<rewrite::Revert>,
    /// For an ExternalName chased upstream: the response so far (the
    /// CNAME), to which the target's records are added.
    chase: Option<Vec<u8>>,
    /// Only to refresh the cache: no client waits, nothing is logged.
    refresh: bool,
    udp: bool,
    peer: SocketAddr,
    cap: u16,
    started: Instant,
}

impl Pending {
    /// Forwards the question and writes the response into `out`.
    pub async fn run(self, out: &mut Vec<u8>) -> Option<Done> {
        let Parsed::Query(q) = message::parse(&self.query) else {
            return None;
        };
        let mut key = [0u8; 256];
        let klen = lowercase_key(q.qname, &mut key)?;
        let req = Request { q, key: &key[..klen], udp: self.udp, peer: self.peer, cap: self.cap };
        let chain = &self.chain;
        let fwd = chain.forwards.get(self.forward)?;
        if let Some(prefix) = &self.chase {
            let reply = fwd.exchange(&req).await;
            if let Ok(reply) = &reply {
                chain.cache.as_ref().map(|c| c.store(&req, reply));
            }
            let done = chase::merge(prefix, reply.as_ref().ok().map(|r| &r.bytes[..]), req.max_size(), out);
            let client = message::parse(prefix);
            if let Parsed::Query(cq) = client {
                let creq = Request { q: cq, ..req };
                chain.finish(&creq, self.query_len, out, self.revert.as_ref(), self.started);
            }
            return Some(done);
        }
        if self.refresh {
            let reply = fwd.exchange(&req).await;
            if let Some(cache) = &chain.cache {
                match &reply {
                    Ok(reply) => drop(cache.store(&req, reply)),
                    Err(_) => cache.refresh_failed(&req),
                }
            }
            return None;
        }
        let reply = fwd.exchange(&req).await;
        // An upstream that fails (SERVFAIL, REFUSED) is no better than none
        // for `serve_stale`: a stale answer beats its failure.
        if let Ok(r) = &reply
            && matches!(r.walk.rcode(), message::RCODE_SERVFAIL | message::RCODE_REFUSED)
            && let Some(done) = chain.cache.as_ref().and_then(|c| c.stale(&req, out))
        {
            chain.finish(&req, self.query_len, out, self.revert.as_ref(), self.started);
            return Some(done);
        }
        let done = match reply {
            Ok(reply) => {
                let ttl = chain.cache.as_ref().and_then(|c| c.store(&req, &reply));
                let ttl = ttl.map_or(forward::Ttl::Keep, forward::Ttl::Fixed);
                forward::relay_with(&req, &reply.bytes, &reply.walk, ttl, out)
            }
            Err(e) => {
                if chain.errors {
                    let name = self::log::name_of(q.qname);
                    let qtype = hickory_proto::rr::RecordType::from(q.qtype);
                    tracing::error!("plugin/errors: {} {name} {qtype}: {e}", e.rcode());
                }
                match chain.cache.as_ref().and_then(|c| c.stale(&req, out)) {
                    Some(done) => done,
                    None => {
                        let rcode = e.rcode();
                        message::empty_reply(out, &req.q, rcode);
                        Done { qtype: req.q.qtype, rcode: rcode.into(), plugin: Source::Forward }
                    }
                }
            }
        };
        chain.finish(&req, self.query_len, out, self.revert.as_ref(), self.started);
        Some(done)
    }
}

/// The stages of one server block, in plugin order. Each is optional; the
/// wiring fills in what the block's directives ask for.
#[derive(Default)]
pub struct Chain {
    pub log: Option<Log>,
    /// `errors`: failures of the chain (upstreams) logged.
    pub errors: bool,
    pub any: bool,
    pub chaos: Option<Chaos>,
    pub loadbalance: bool,
    pub rewrites: Vec<corefile::Rewrite>,
    pub cache: Option<Cache>,
    pub minimal: bool,
    pub templates: Vec<Template>,
    pub hosts: Option<Arc<Hosts>>,
    pub kubernetes: Option<Kubernetes>,
    /// `transfer`: who may have the `kubernetes` zone by AXFR.
    pub transfer: Option<Arc<corefile::Transfer>>,
    pub loop_check: Option<Arc<Loop>>,
    pub forwards: Vec<Arc<Forward>>,
    /// `bufsize N`: the EDNS size cap of this block.
    pub bufsize: Option<u16>,
    /// Whether any stage before `kubernetes` or after the answer is set
    /// ([`Chain::sealed`]): without them the cluster zone's path goes
    /// straight to its lookup.
    pre: bool,
    post: bool,
}

impl Chain {
    /// The chain, ready to serve: notes which optional stages it has.
    pub fn sealed(mut self) -> Arc<Chain> {
        self.pre = self.any
            || self.chaos.is_some()
            || !self.rewrites.is_empty()
            || !self.templates.is_empty()
            || self.hosts.is_some()
            || self.bufsize.is_some();
        self.post = self.minimal || self.loadbalance || self.log.is_some();
        Arc::new(self)
    }

    /// Runs the question through the chain; `None` when nothing in it
    /// serves the name (REFUSED). `started` is when it arrived.
    #[inline]
    pub fn serve(self: &Arc<Self>, req: &Request, raw: &[u8], out: &mut Vec<u8>, started: Instant) -> Option<Flow> {
        if !self.pre {
            return self.rest(req, raw, raw.len(), out, None, started);
        }
        let capped;
        let req = match self.bufsize {
            Some(cap) => {
                capped = Request { cap, ..*req };
                &capped
            }
            None => req,
        };
        if self.any
            && let Some(done) = any::serve(req, out)
        {
            return Some(self.done(req, raw.len(), out, None, started, done));
        }
        if let Some(c) = &self.chaos
            && let Some(done) = c.serve(req, out)
        {
            return Some(self.done(req, raw.len(), out, None, started, done));
        }
        if !self.rewrites.is_empty()
            && let Some((rewritten, revert)) = rewrite::apply(&self.rewrites, raw)
        {
            // The rest of the chain sees the rewritten question.
            let Parsed::Query(q) = message::parse(&rewritten) else { return None };
            let mut key = [0u8; 256];
            let klen = lowercase_key(q.qname, &mut key)?;
            let req2 = Request { q, key: &key[..klen], ..*req };
            return self.rest(&req2, &rewritten, raw.len(), out, Some(revert), started);
        }
        self.rest(req, raw, raw.len(), out, None, started)
    }

    /// The stages after `rewrite`.
    #[inline]
    fn rest(
        self: &Arc<Self>,
        req: &Request,
        raw: &[u8],
        query_len: usize,
        out: &mut Vec<u8>,
        revert: Option<rewrite::Revert>,
        started: Instant,
    ) -> Option<Flow> {
        if self.pre {
            for t in &self.templates {
                if let template::Outcome::Answered(done) = t.serve(req, out) {
                    return Some(self.done(req, query_len, out, revert.as_ref(), started, done));
                }
            }
            if let Some(h) = &self.hosts
                && let Some(done) = h.serve(req, out)
            {
                return Some(self.done(req, query_len, out, revert.as_ref(), started, done));
            }
        }
        if let Some(k) = &self.kubernetes
            && let Some((done, chase)) = k.serve(req, out, !self.forwards.is_empty())
        {
            // R9: an ExternalName outside the zones, resolved upstream.
            if let Some(target) = chase {
                return Some(self.chase(req, target, query_len, out, revert, started, done));
            }
            return Some(self.done(req, query_len, out, revert.as_ref(), started, done));
        }
        self.upstream(req, raw, query_len, out, revert, started)
    }

    /// An ExternalName's target outside the zones: asked upstream when a
    /// forward takes it (and no loop was found), else the CNAME alone.
    #[cold]
    #[inline(never)]
    #[allow(clippy::too_many_arguments)]
    fn chase(
        self: &Arc<Self>,
        req: &Request,
        target: Vec<u8>,
        query_len: usize,
        out: &mut Vec<u8>,
        revert: Option<rewrite::Revert>,
        started: Instant,
        done: Done,
    ) -> Flow {
        let fwd = self.forwards.iter().position(|f| f.serves(&target));
        let looped = self.loop_check.as_ref().is_some_and(|l| l.detected());
        match fwd {
            Some(forward) if !looped => Flow::Forward(Box::new(Pending {
                revert,
                chase: Some(out.clone()),
                ..self.pending(req, forward, chase::query(req, &target), query_len, started)
            })),
            _ => self.done(req, query_len, out, revert.as_ref(), started, done),
        }
    }

    /// A question for forwarder `forward`: no rewrite to turn back, no
    /// chase, a client waiting (callers change what differs).
    fn pending(
        self: &Arc<Self>,
        req: &Request,
        forward: usize,
        query: Vec<u8>,
        query_len: usize,
        started: Instant,
    ) -> Pending {
        Pending {
            chain: self.clone(),
            forward,
            query,
            query_len,
            revert: None,
            chase: None,
            refresh: false,
            udp: req.udp,
            peer: req.peer,
            cap: req.cap,
            started,
        }
    }

    /// The stages from `loop` on: the names the cluster zone did not answer.
    #[cold]
    #[inline(never)]
    fn upstream(
        self: &Arc<Self>,
        req: &Request,
        raw: &[u8],
        query_len: usize,
        out: &mut Vec<u8>,
        revert: Option<rewrite::Revert>,
        started: Instant,
    ) -> Option<Flow> {
        let forward = self.forwards.iter().position(|f| f.serves(req.key))?;
        if let Some(l) = &self.loop_check {
            if let Some(done) = l.inspect(req, out) {
                return Some(self.done(req, query_len, out, revert.as_ref(), started, done));
            }
            if l.detected() {
                // A loop was found at start: nothing goes upstream.
                message::empty_reply(out, &req.q, message::RCODE_SERVFAIL);
                let done = Done { qtype: req.q.qtype, rcode: message::RCODE_SERVFAIL.into(), plugin: Source::Loop };
                return Some(self.done(req, query_len, out, revert.as_ref(), started, done));
            }
        }
        if let Some(cache) = &self.cache
            && let Some((done, refresh)) = cache.lookup(req, out)
        {
            let Flow::Done(done) = self.done(req, query_len, out, revert.as_ref(), started, done) else {
                return None;
            };
            if refresh {
                let refresh = Pending { refresh: true, ..self.pending(req, forward, raw.to_vec(), query_len, started) };
                return Some(Flow::Refresh(done, Box::new(refresh)));
            }
            return Some(Flow::Done(done));
        }
        Some(Flow::Forward(Box::new(Pending {
            revert,
            ..self.pending(req, forward, raw.to_vec(), query_len, started)
        })))
    }

    #[inline]
    fn done(
        &self,
        req: &Request,
        query_len: usize,
        out: &mut Vec<u8>,
        revert: Option<&rewrite::Revert>,
        started: Instant,
        done: Done,
    ) -> Flow {
        self.finish(req, query_len, out, revert, started);
        Flow::Done(done)
    }

    /// What happens to every response on its way out: the rewrite turned
    /// back, `minimal`, `loadbalance`, `log`.
    #[inline]
    fn finish(
        &self,
        req: &Request,
        query_len: usize,
        out: &mut Vec<u8>,
        revert: Option<&rewrite::Revert>,
        started: Instant,
    ) {
        if self.post || revert.is_some() {
            self.finish_slow(req, query_len, out, revert, started);
        }
    }

    #[inline(never)]
    fn finish_slow(
        &self,
        req: &Request,
        query_len: usize,
        out: &mut Vec<u8>,
        revert: Option<&rewrite::Revert>,
        started: Instant,
    ) {
        if let Some(r) = revert {
            r.apply(out);
        }
        if self.minimal {
            minimal::minimize(out, &req.q);
        }
        if self.loadbalance {
            loadbalance::rotate(out);
        }
        if let Some(log) = &self.log {
            log.log(req, query_len, out, started.elapsed());
        }
    }
}

/// The server blocks of one listening address: a question goes to the
/// block with the longest zone that contains its name.
#[derive(Clone, Default)]
pub struct Router {
    /// (zone key, chain), longest zone first.
    blocks: Vec<(Box<[u8]>, Arc<Chain>)>,
}

impl Router {
    pub fn new(mut blocks: Vec<(Box<[u8]>, Arc<Chain>)>) -> Self {
        blocks.sort_by_key(|(k, _)| std::cmp::Reverse(k.len()));
        Router { blocks }
    }

    /// The block (its slot, and chain) whose zone is the longest that
    /// contains `key`.
    fn route(&self, key: &[u8]) -> Option<(usize, &Arc<Chain>)> {
        self.blocks.iter().enumerate().find(|(_, (zone, _))| in_zone(key, zone)).map(|(i, (_, c))| (i, c))
    }

    /// The blocks' zones in slot order (the metrics' `zone` label).
    pub fn zones(&self) -> Vec<String> {
        self.blocks.iter().map(|(k, _)| log::name_of(k)).collect()
    }
}

/// Whether the name `key` is `zone` or below it (both lowercase wire form;
/// the root zone is `[0]`).
pub fn in_zone(key: &[u8], zone: &[u8]) -> bool {
    if zone.len() == 1 {
        return true; // the root holds every name
    }
    if zone.len() > key.len() || !key.ends_with(zone) {
        return false;
    }
    // The suffix must start at a label boundary of `key`.
    let at = key.len() - zone.len();
    let mut i = 0;
    while i < at {
        i += key[i] as usize + 1;
    }
    i == at
}

/// Whether `key` is in any of `zones`.
pub fn in_zones(key: &[u8], zones: &[Box<[u8]>]) -> bool {
    zones.iter().any(|z| in_zone(key, z))
}

/// The lowercase wire key of a zone written as text (`cluster.local.`, `.`).
pub fn zone_key(zone: &str) -> Option<Box<[u8]>> {
    let mut out = Vec::with_capacity(zone.len() + 2);
    for label in zone.trim_end_matches('.').split('.').filter(|l| !l.is_empty()) {
        if label.len() > 63 {
            return None;
        }
        out.push(label.len() as u8);
        out.extend(label.bytes().map(|b| b.to_ascii_lowercase()));
    }
    out.push(0);
    (out.len() <= 255).then(|| out.into_boxed_slice())
}

/// AXFR, over TCP only: `None` when `raw` is not an AXFR question or no
/// block with `transfer` serves its name (the chain answers it then);
/// else the messages to send, in order: the zone between two SOAs (as
/// `clusterdns zone` renders it, the serial live), or one REFUSED when
/// the client is not among `transfer`'s `to`, the name is not the apex of
/// the block's `kubernetes` zone, the zone is not loaded yet, or
/// [`TRANSFERS`] are already running. The first message carries OPT when
/// the question did (RFC 5936 2.2.5).
pub fn axfr(router: &Router, raw: &[u8], peer: SocketAddr) -> Option<(Vec<Vec<u8>>, Option<TransferSlot>)> {
    const TYPE_AXFR: u16 = 252;
    /// Records per message stop once it is this big (well under 64 KiB).
    const MESSAGE: usize = 16 * 1024;
    // Every TCP question comes here first: the type alone, read without a
    // full parse, sends all but AXFR on to the chain.
    let qtype = message::skip_name(raw, 12).and_then(|i| message::u16_at(raw, i));
    if qtype != Some(TYPE_AXFR) {
        return None;
    }
    let Parsed::Query(q) = message::parse(raw) else { return None };
    if q.qtype != TYPE_AXFR {
        return None;
    }
    let mut key = [0u8; 256];
    let klen = lowercase_key(q.qname, &mut key)?;
    let key = &key[..klen];
    let (_, chain) = router.route(key)?;
    let transfer = chain.transfer.as_ref()?;
    // As CoreDNS: a name inside one of `transfer`'s zones, which the block's
    // `kubernetes` then transfers if it is its own zone's apex.
    let listed = transfer.zones.iter().any(|z| zone_key(z).is_some_and(|zk| in_zone(key, &zk)));
    let kubernetes = chain.kubernetes.as_ref().filter(|k| listed && k.transfers(key) && transfer.allows(peer.ip()));
    let refuse = || {
        let mut out = Vec::new();
        message::begin(&mut out, &q);
        message::add_opt(&mut out, &q, 0);
        message::end(&mut out, &q, message::RCODE_REFUSED, false);
        Some((vec![out], None))
    };
    let Some(kubernetes) = kubernetes else { return refuse() };
    let Some(slot) = TransferSlot::take() else { return refuse() };
    // SOA, everything, SOA again (RFC 5936 2.2).
    let mut messages: Vec<Vec<u8>> = Vec::new();
    let mut out = Vec::new();
    let mut count = 0u16;
    let mut soa: Option<Vec<u8>> = None;
    let close = |out: &mut Vec<u8>, count: &mut u16, messages: &mut Vec<Vec<u8>>| {
        message::set_counts(out, [1, *count, 0, 0]);
        if messages.is_empty() {
            message::add_opt(out, &q, 0);
        }
        message::end(out, &q, 0, true);
        messages.push(std::mem::take(out));
        *count = 0;
    };
    let add = |owner: &[u8], rec: &[u8], out: &mut Vec<u8>, count: &mut u16, messages: &mut Vec<Vec<u8>>| {
        if *count == 0 {
            message::begin(out, &q);
        }
        out.extend_from_slice(owner);
        out.extend_from_slice(rec);
        *count += 1;
        if out.len() >= MESSAGE {
            close(out, count, messages);
        }
    };
    kubernetes.for_each_record(|owner, rec| {
        if soa.is_none() {
            soa = Some([owner, rec].concat());
        }
        add(owner, rec, &mut out, &mut count, &mut messages);
    });
    let Some(soa) = soa else { return refuse() };
    add(&soa, &[], &mut out, &mut count, &mut messages);
    if count > 0 {
        close(&mut out, &mut count, &mut messages);
    }
    Some((messages, Some(slot)))
}

/// Zone transfers at once, at most: each holds its zone's messages in
/// memory until sent.
pub const TRANSFERS: usize = 2;
static TRANSFERS_RUNNING: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// One of the [`TRANSFERS`]; given back when dropped (the transfer sent or
/// its connection gone).
pub struct TransferSlot(());

impl TransferSlot {
    fn take() -> Option<TransferSlot> {
        use std::sync::atomic::Ordering;
        let taken =
            TRANSFERS_RUNNING.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < TRANSFERS).then_some(n + 1));
        taken.ok().map(|_| TransferSlot(()))
    }
}

impl Drop for TransferSlot {
    fn drop(&mut self) {
        TRANSFERS_RUNNING.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
    }
}

/// [`handle`], with a panic anywhere in the chain answered SERVFAIL (as
/// CoreDNS recovers per query): the panic hook has logged it and counted
/// `coredns_panics_total`, and the listener goes on with the next query.
pub fn handle_guarded(
    router: &Router,
    raw: &[u8],
    udp: bool,
    peer: SocketAddr,
    out: &mut Vec<u8>,
    started: Instant,
) -> Option<(usize, Flow)> {
    recovered(raw, out, |out| handle(router, raw, udp, peer, out, started))
}

/// Runs `run`; if it panics, whatever it half wrote is replaced by a
/// SERVFAIL with the client's ID and flags.
fn recovered(
    raw: &[u8],
    out: &mut Vec<u8>,
    run: impl FnOnce(&mut Vec<u8>) -> Option<(usize, Flow)>,
) -> Option<(usize, Flow)> {
    let run = std::panic::AssertUnwindSafe(|| run(&mut *out));
    match std::panic::catch_unwind(run) {
        Ok(handled) => handled,
        Err(_) => {
            let (id, flags) = (message::u16_at(raw, 0)?, message::u16_at(raw, 2)?);
            message::error_reply(out, id, flags, message::RCODE_SERVFAIL, None);
            Some((0, Flow::Done(Done { qtype: 0, rcode: message::RCODE_SERVFAIL.into(), plugin: Source::Server })))
        }
    }
}

/// Handles one message from a client: parse, route, run the chain. `None`
/// when nothing should be sent (not a query); else the block's slot (for
/// the metrics) and what became of the question.
pub fn handle(
    router: &Router,
    raw: &[u8],
    udp: bool,
    peer: SocketAddr,
    out: &mut Vec<u8>,
    started: Instant,
) -> Option<(usize, Flow)> {
    let q = match message::parse(raw) {
        Parsed::Drop => return None,
        Parsed::Error { id, flags, rcode, edns } => {
            message::error_reply(out, id, flags, rcode, edns);
            return Some((0, Flow::Done(Done { qtype: 0, rcode: rcode.into(), plugin: Source::Server })));
        }
        Parsed::Query(q) => q,
    };
    if message::badvers(out, &q) {
        return Some((0, Flow::Done(Done { qtype: q.qtype, rcode: 16, plugin: Source::Server })));
    }
    let mut key = [0u8; 256];
    let klen = lowercase_key(q.qname, &mut key).unwrap_or(0);
    let req = Request { q, key: &key[..klen], udp, peer, cap: message::UDP_EDNS_MAX };
    let routed = (klen > 0).then(|| router.route(req.key)).flatten();
    let flow = routed.and_then(|(slot, chain)| Some((slot, chain.serve(&req, raw, out, started)?)));
    match flow {
        Some(flow) => Some(flow),
        None => {
            message::empty_reply(out, &req.q, message::RCODE_REFUSED);
            let slot = routed.map_or(0, |(slot, _)| slot);
            Some((
                slot,
                Flow::Done(Done { qtype: q.qtype, rcode: message::RCODE_REFUSED.into(), plugin: Source::Server }),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zones_match_at_label_boundaries() {
        let k = |s: &str| zone_key(s).unwrap();
        assert!(in_zone(&k("a.cluster.local."), &k("cluster.local.")));
        assert!(in_zone(&k("cluster.local."), &k("cluster.local.")));
        assert!(in_zone(&k("anything."), &k(".")));
        assert!(!in_zone(&k("xcluster.local."), &k("cluster.local.")));
        assert!(!in_zone(&k("local."), &k("cluster.local.")));
        let r = Router::new(vec![(k("."), Chain::default().sealed()), (k("acme.local."), Chain::default().sealed())]);
        let (slot, acme) = r.route(&k("x.acme.local.")).unwrap();
        assert!(Arc::ptr_eq(acme, &r.blocks[0].1) && slot == 0, "longest zone first");
        assert!(Arc::ptr_eq(r.route(&k("example.com.")).unwrap().1, &r.blocks[1].1));
        assert_eq!(r.zones(), vec!["acme.local.".to_string(), ".".to_string()]);
    }

    /// No input is known to panic the chain, so the recovery is held here:
    /// a panic half-way through an answer becomes a clean SERVFAIL with the
    /// client's ID, RD kept, and the half-written bytes gone.
    #[test]
    fn a_panic_in_the_chain_is_answered_servfail() {
        let raw = [0xab, 0xcd, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1];
        let mut out = Vec::new();
        let handled = recovered(&raw, &mut out, |out| {
            out.extend_from_slice(b"half an answer");
            panic!("a bug in a plugin");
        });
        let Some((0, Flow::Done(done))) = handled else { panic!("not answered") };
        assert_eq!(done.rcode, u16::from(message::RCODE_SERVFAIL));
        assert_eq!(&out[..4], &[0xab, 0xcd, 0x81, 0x02], "ID, QR+RD, SERVFAIL");
        assert_eq!(&out[4..12], &[0; 8], "a bare header: {out:?}");
        // No ID to answer to: nothing is sent.
        assert!(recovered(&[0xab], &mut out, |_| panic!("again")).is_none());
    }

    /// At most TRANSFERS zone transfers at once; a slot comes back when its
    /// transfer is dropped (sent, or its connection gone).
    #[test]
    fn zone_transfers_are_bounded() {
        let held: Vec<TransferSlot> = (0..TRANSFERS).map(|_| TransferSlot::take().expect("a free slot")).collect();
        assert!(TransferSlot::take().is_none(), "one more than {TRANSFERS}");
        drop(held);
        assert!(TransferSlot::take().is_some());
    }
}
