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

pub mod cache;
pub mod forward;
pub mod kubernetes;
pub mod message;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use crate::records::name::lowercase_key;
use message::{Done, Parsed, Query};

pub use cache::Cache;
pub use forward::Forward;
pub use kubernetes::Kubernetes;

/// One question on its way through a chain.
pub struct Request<'a> {
    pub q: Query<'a>,
    /// The question name, lowercase wire form.
    pub key: &'a [u8],
    /// Arrived over UDP (answers are size-limited, SPEC.md 4).
    pub udp: bool,
    pub peer: SocketAddr,
}

impl Request<'_> {
    /// The most the response may take.
    pub fn max_size(&self) -> usize {
        message::max_size(&self.q, self.udp)
    }
}

/// What a chain did with a question.
pub enum Flow {
    /// The response is in the output buffer.
    Done(Done),
    /// It must go upstream: finish it with [`Pending::run`] off the
    /// receiving thread.
    Forward(Box<Pending>),
}

/// A question that goes upstream, owned so it can wait for the network.
pub struct Pending {
    chain: Arc<Chain>,
    forward: usize,
    query: Vec<u8>,
    udp: bool,
    peer: SocketAddr,
    pub started: Instant,
}

impl Pending {
    /// Forwards the question and writes the response into `out`.
    pub async fn run(self, out: &mut Vec<u8>) -> Option<Done> {
        let Parsed::Query(q) = message::parse(&self.query) else {
            return None;
        };
        let mut key = [0u8; 256];
        let klen = lowercase_key(q.qname, &mut key)?;
        let req = Request { q, key: &key[..klen], udp: self.udp, peer: self.peer };
        let fwd = self.chain.forwards.get(self.forward)?;
        let reply = fwd.exchange(&req).await;
        let done = match reply {
            Ok(reply) => {
                if let Some(cache) = &self.chain.cache {
                    cache.store(&req, &reply);
                }
                forward::relay(&req, &reply, out)
            }
            Err(e) => {
                tracing::debug!(error = %e, "forward");
                if let Some(done) = self.chain.cache.as_ref().and_then(|c| c.stale(&req, out)) {
                    return Some(done);
                }
                let rcode = e.rcode();
                message::empty_reply(out, &req.q, rcode);
                Done { qtype: req.q.qtype, rcode: rcode.into(), plugin: "forward" }
            }
        };
        Some(done)
    }
}

/// The stages of one server block, in plugin order.
#[derive(Default)]
pub struct Chain {
    pub cache: Option<Cache>,
    pub kubernetes: Option<Kubernetes>,
    pub forwards: Vec<Arc<Forward>>,
}

impl Chain {
    /// Runs the question through the stages that answer in place; returns
    /// `None` when nothing in the chain serves the name (REFUSED).
    pub fn serve(self: &Arc<Self>, req: &Request, raw: &[u8], out: &mut Vec<u8>) -> Option<Flow> {
        if let Some(k) = &self.kubernetes
            && let Some(done) = k.serve(req, out)
        {
            return Some(Flow::Done(done));
        }
        let forward = self.forwards.iter().position(|f| f.serves(req.key))?;
        if let Some(cache) = &self.cache
            && let Some(done) = cache.lookup(req, out)
        {
            return Some(Flow::Done(done));
        }
        Some(Flow::Forward(Box::new(Pending {
            chain: self.clone(),
            forward,
            query: raw.to_vec(),
            udp: req.udp,
            peer: req.peer,
            started: Instant::now(),
        })))
    }
}

/// The server blocks of one listening address: a question goes to the
/// block with the longest zone that contains its name.
#[derive(Default)]
pub struct Router {
    /// (zone key, chain), longest zone first.
    blocks: Vec<(Box<[u8]>, Arc<Chain>)>,
}

impl Router {
    pub fn new(mut blocks: Vec<(Box<[u8]>, Arc<Chain>)>) -> Self {
        blocks.sort_by_key(|(k, _)| std::cmp::Reverse(k.len()));
        Router { blocks }
    }

    fn route(&self, key: &[u8]) -> Option<&Arc<Chain>> {
        self.blocks.iter().find(|(zone, _)| in_zone(key, zone)).map(|(_, c)| c)
    }
}

/// Whether the name `key` is `zone` or below it (both lowercase wire form;
/// the root zone is `[0]`).
pub fn in_zone(key: &[u8], zone: &[u8]) -> bool {
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

/// Handles one message from a client: parse, route, run the chain. `None`
/// when nothing should be sent (not a query).
pub fn handle(router: &Router, raw: &[u8], udp: bool, peer: SocketAddr, out: &mut Vec<u8>) -> Option<Flow> {
    let q = match message::parse(raw) {
        Parsed::Drop => return None,
        Parsed::Error { id, flags, rcode } => {
            message::error_reply(out, id, flags, rcode);
            return Some(Flow::Done(Done { qtype: 0, rcode: rcode.into(), plugin: "" }));
        }
        Parsed::Query(q) => q,
    };
    if message::badvers(out, &q) {
        return Some(Flow::Done(Done { qtype: q.qtype, rcode: 16, plugin: "" }));
    }
    let mut key = [0u8; 256];
    let klen = lowercase_key(q.qname, &mut key).unwrap_or(0);
    let req = Request { q, key: &key[..klen], udp, peer };
    let flow = (klen > 0).then(|| router.route(req.key)).flatten().and_then(|chain| chain.serve(&req, raw, out));
    match flow {
        Some(flow) => Some(flow),
        None => {
            message::empty_reply(out, &req.q, message::RCODE_REFUSED);
            Some(Flow::Done(Done { qtype: q.qtype, rcode: message::RCODE_REFUSED.into(), plugin: "" }))
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
        let r = Router::new(vec![(k("."), Arc::new(Chain::default())), (k("acme.local."), Arc::new(Chain::default()))]);
        let acme = r.route(&k("x.acme.local.")).unwrap();
        assert!(Arc::ptr_eq(acme, &r.blocks[0].1), "longest zone first");
        assert!(Arc::ptr_eq(r.route(&k("example.com.")).unwrap(), &r.blocks[1].1));
    }
}
