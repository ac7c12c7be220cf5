//! `kubernetes [ZONES...] { ... }`: the cluster zone, answered from the
//! prepared index (SPEC.md 1 to 5). A lookup and a copy: nothing here
//! allocates or locks beyond the index's own shard read.
//!
//! `fallthrough [ZONES...]`: an NXDOMAIN for a name in those zones passes
//! to the next plugin instead (the stock `fallthrough in-addr.arpa
//! ip6.arpa` sends reverse look-ups of outside addresses to `forward`).

use crate::metrics::Source;

use std::sync::Arc;

use super::message::{self, CLASS_IN, Done, TYPE_ANY, TYPE_CNAME};
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

    /// Whether `key` is the apex of the cluster zone, loaded: then
    /// [`Kubernetes::for_each_record`] gives what AXFR sends.
    pub fn transfers(&self, key: &[u8]) -> bool {
        let apex = crate::records::name::key_of(&self.index.config().zone);
        key == &apex[..] && self.index.is_loaded()
    }

    /// Each record of the cluster zone, the SOA first (owner key, record).
    pub fn for_each_record(&self, f: impl FnMut(&[u8], &[u8])) {
        self.index.for_each_record(0, f);
    }

    /// Answers a name in the plugin's zones (`None` passes it on); and with
    /// `chase`, when the answer ends in a CNAME to a name outside the served
    /// zones (an ExternalName), that name's key: R9 has its records resolved
    /// through the forwarder and appended.
    pub fn serve(&self, req: &Request, out: &mut Vec<u8>, chase: bool) -> Option<(Done, Option<Vec<u8>>)> {
        if !in_zones(req.key, &self.zones) {
            return None;
        }
        let q = &req.q;
        // Class IN only: ANY (255) too is REFUSED, as CoreDNS's server does
        // for every class but IN (and CH where `chaos` is configured).
        let refuse = q.qclass != CLASS_IN
            // Zone transfers and other meta queries are not served.
            || matches!(q.qtype, 251..=254);
        if refuse {
            message::empty_reply(out, q, message::RCODE_REFUSED);
            return Some((
                Done { qtype: q.qtype, rcode: message::RCODE_REFUSED.into(), plugin: Source::Kubernetes },
                None,
            ));
        }
        let ans = answer(&self.index, req.key, q.qtype);
        match ans.rcode {
            // Inside the plugin's zones but not the index's: not ours.
            Rcode::Refused => return None,
            Rcode::NxDomain if in_zones(req.key, &self.fallthrough) => return None,
            _ => {}
        }
        message::begin(out, q);
        let (rcode, last_cname) = message::encode_answer(out, &ans, req.max_size(), q.edns.is_some());
        let done = Done { qtype: q.qtype, rcode: rcode.into(), plugin: Source::Kubernetes };
        // An answer that ends in a CNAME the index could not follow: its
        // target is outside the zones. The target follows the record's
        // 2-byte owner and 10-byte head.
        let target = match last_cname {
            Some(at)
                if chase
                    && ans.rcode == Rcode::NoError
                    && ans.soa.is_none()
                    && q.qtype != TYPE_CNAME
                    && q.qtype != TYPE_ANY =>
            {
                out.get(at + 12..).and_then(lowercase_name).filter(|t| t.len() > 1 && !in_zones(t, &self.zones))
            }
            _ => None,
        };
        message::add_opt(out, q, 0);
        message::end(out, q, rcode, ans.authoritative);
        Some((done, target))
    }
}

/// The lowercase key of the uncompressed wire name at the start of `b`.
fn lowercase_name(b: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(b.len().min(255));
    let mut i = 0;
    loop {
        let len = *b.get(i)? as usize;
        if len & 0xC0 != 0 {
            return None;
        }
        out.push(len as u8);
        out.extend(b.get(i + 1..i + 1 + len)?.iter().map(u8::to_ascii_lowercase));
        i += len + 1;
        if len == 0 || out.len() > 255 {
            return (out.len() <= 255).then_some(out);
        }
    }
}
