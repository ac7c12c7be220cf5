//! `kubernetes [ZONES...] { ... }`: the cluster zone, answered from the
//! prepared index (SPEC.md 1 to 5). A lookup and a copy: nothing here
//! allocates or locks beyond the index's own shard read.
//!
//! `fallthrough [ZONES...]`: an NXDOMAIN for a name in those zones passes
//! to the next plugin instead (the stock `fallthrough in-addr.arpa
//! ip6.arpa` sends reverse look-ups of outside addresses to `forward`).

use std::sync::Arc;

use super::message::{self, CLASS_ANY, CLASS_IN, Done};
use super::{Request, in_zones};
use crate::records::{Rcode, ZoneIndex, answer};

pub struct Kubernetes {
    index: Arc<ZoneIndex>,
    /// The plugin's zones (lowercase wire form).
    zones: Vec<Box<[u8]>>,
    /// Where an NXDOMAIN falls through; empty: nowhere.
    fallthrough: Vec<Box<[u8]>>,
}

impl Kubernetes {
    pub fn new(index: Arc<ZoneIndex>, zones: Vec<Box<[u8]>>, fallthrough: Vec<Box<[u8]>>) -> Self {
        Kubernetes { index, zones, fallthrough }
    }

    pub fn index(&self) -> &Arc<ZoneIndex> {
        &self.index
    }

    /// Answers a name in the plugin's zones; `None` passes it on.
    pub fn serve(&self, req: &Request, out: &mut Vec<u8>) -> Option<Done> {
        if !in_zones(req.key, &self.zones) {
            return None;
        }
        let q = &req.q;
        let refuse = (q.qclass != CLASS_IN && q.qclass != CLASS_ANY)
            // Zone transfers and other meta queries are not served.
            || matches!(q.qtype, 251..=254);
        if refuse {
            message::empty_reply(out, q, message::RCODE_REFUSED);
            return Some(Done { qtype: q.qtype, rcode: message::RCODE_REFUSED.into(), plugin: "kubernetes" });
        }
        let ans = answer(&self.index, req.key, q.qtype);
        match ans.rcode {
            // Inside the plugin's zones but not the index's: not ours.
            Rcode::Refused => return None,
            Rcode::NxDomain if in_zones(req.key, &self.fallthrough) => return None,
            _ => {}
        }
        message::begin(out, q);
        let rcode = message::encode_answer(out, &ans, req.max_size(), q.edns.is_some());
        message::add_opt(out, q, 0);
        message::end(out, q, rcode, ans.authoritative);
        Some(Done { qtype: q.qtype, rcode: rcode.into(), plugin: "kubernetes" })
    }
}
