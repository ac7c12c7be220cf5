//! A question in, an [`Answer`] out: the one place that decides between
//! records, NODATA, NXDOMAIN, SERVFAIL and REFUSED (SPEC.md 2 and 3).

use std::sync::Arc;

use smallvec::SmallVec;

use super::PodMode;
use super::index::ZoneIndex;
use super::name::{label_starts, parse_ip_label};
use super::wire::{NodeData, QNAME_PTR, Rrset, RrsetRef};

const TYPE_CNAME: u16 = 5;
const TYPE_A: u16 = 1;
const TYPE_AAAA: u16 = 28;
const TYPE_ANY: u16 = 255;
/// How many in-zone CNAMEs are followed at most (loops stop sooner).
const MAX_CHAIN: usize = 8;

/// One RRset of the answer section: `steps[0]` is owned by the question's
/// name, every later step by the CNAME target of the step before it.
#[derive(Clone, Debug)]
pub struct Step {
    pub data: NodeData,
    pub rrset: usize,
}

impl Step {
    pub fn rrset(&self) -> RrsetRef<'_> {
        self.data.rrset(self.rrset)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rcode {
    NoError,
    NxDomain,
    ServFail,
    Refused,
}

#[derive(Clone, Debug)]
pub struct Answer {
    pub rcode: Rcode,
    /// Whether the name is in a zone this server is authoritative for (AA).
    pub authoritative: bool,
    pub steps: SmallVec<[Step; 1]>,
    /// For NODATA and NXDOMAIN: the SOA (full record) for the authority section.
    pub soa: Option<Arc<[Box<[u8]>; 3]>>,
    pub soa_zone: usize,
}

impl Answer {
    fn plain(rcode: Rcode, authoritative: bool) -> Self {
        Answer { rcode, authoritative, steps: SmallVec::new(), soa: None, soa_zone: 0 }
    }
    fn negative(index: &ZoneIndex, rcode: Rcode, zone: usize, steps: SmallVec<[Step; 1]>) -> Self {
        Answer { rcode, authoritative: true, steps, soa: Some(index.negative_soas()), soa_zone: zone }
    }
}

/// The RRset of `node` that answers `qtype`: a CNAME answers every type;
/// ANY gets one RRset, never the whole name (RFC 8482).
fn pick(node: &NodeData, qtype: u16) -> Option<usize> {
    if let Some(i) = node.find(TYPE_CNAME) {
        return Some(i);
    }
    if qtype == TYPE_ANY {
        return if node.is_empty() { None } else { Some(0) };
    }
    node.find(qtype)
}

/// Answers `qtype` at the lowercase wire name `key`.
pub fn answer(index: &ZoneIndex, key: &[u8], qtype: u16) -> Answer {
    let Some(zone) = index.zone_of(key) else {
        // Not ours; forwarding comes with the Corefile work.
        return Answer::plain(Rcode::Refused, false);
    };
    let Some(node) = index.get_in(zone, key).or_else(|| pod_name(index, key)) else {
        return miss(index, zone, SmallVec::new());
    };
    let Some(first) = pick(&node, qtype) else {
        return Answer::negative(index, Rcode::NoError, zone, SmallVec::new());
    };
    let mut steps: SmallVec<[Step; 1]> = SmallVec::new();
    steps.push(Step { data: node, rrset: first });
    // The names of the chain so far: a CNAME back to one of them is a loop.
    let mut seen: SmallVec<[Vec<u8>; 2]> = SmallVec::new();
    // R9: follow a CNAME to a target this server answers.
    while qtype != TYPE_CNAME && qtype != TYPE_ANY && steps.len() <= MAX_CHAIN {
        let last = &steps[steps.len() - 1];
        if last.rrset().rtype != TYPE_CNAME {
            break;
        }
        let Some(target) = last.data.cname().map(<[u8]>::to_vec) else {
            break;
        };
        if seen.is_empty() {
            seen.push(key.to_vec());
        }
        if seen.contains(&target) {
            // A loop (`a -> b -> a`): the chain once, no CNAME repeated, as
            // CoreDNS answers it (backend_lookup.go skips a CNAME already
            // in the answer).
            break;
        }
        seen.push(target.clone());
        let tzone = index.zone_of(&target).unwrap_or(zone);
        let Some(tnode) = index.get(&target).or_else(|| pod_name(index, &target)) else {
            // RFC 6604: the rcode is that of the last name in the chain.
            return miss(index, tzone, steps);
        };
        match pick(&tnode, qtype) {
            Some(i) => steps.push(Step { data: tnode, rrset: i }),
            None => return Answer::negative(index, Rcode::NoError, tzone, steps),
        }
    }
    Answer { rcode: Rcode::NoError, authoritative: true, steps, soa: None, soa_zone: zone }
}

fn miss(index: &ZoneIndex, zone: usize, steps: SmallVec<[Step; 1]>) -> Answer {
    if index.is_loaded() {
        Answer::negative(index, Rcode::NxDomain, zone, steps)
    } else {
        // SPEC.md 3: never a false NXDOMAIN before the state is loaded.
        Answer { rcode: Rcode::ServFail, authoritative: false, steps, soa: None, soa_zone: zone }
    }
}

/// R10 in `insecure` mode: `<a>-<b>-<c>-<d>.<ns>.pod.<zone>` answers the IP
/// it spells when the namespace exists. (`verified` names are in the index.)
fn pod_name(index: &ZoneIndex, key: &[u8]) -> Option<NodeData> {
    let cfg = index.config();
    if cfg.pods != PodMode::Insecure {
        return None;
    }
    let starts: SmallVec<[usize; 8]> = label_starts(key).collect();
    // <ip>.<ns>.pod.<zone>: the namespace node must exist (it only does when
    // pods are enabled and the namespace exists).
    let ns_at = *starts.get(1)?;
    let ns_node = &key[ns_at..];
    let pod_key = &key[*starts.get(2)?..];
    if index.pod_key() != pod_key || index.get(ns_node).is_none() {
        return None;
    }
    let label = std::str::from_utf8(&key[1..ns_at]).ok()?;
    let ip = parse_ip_label(label)?;
    let (rtype, rdata): (u16, Vec<u8>) = match ip {
        std::net::IpAddr::V4(v4) => (TYPE_A, v4.octets().to_vec()),
        std::net::IpAddr::V6(v6) => (TYPE_AAAA, v6.octets().to_vec()),
    };
    let mut answer = Vec::with_capacity(12 + rdata.len());
    answer.extend_from_slice(&QNAME_PTR);
    answer.extend_from_slice(&rtype.to_be_bytes());
    answer.extend_from_slice(&1u16.to_be_bytes());
    answer.extend_from_slice(&cfg.ttl.to_be_bytes());
    answer.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
    answer.extend_from_slice(&rdata);
    let rrset = Rrset { rtype, count: 1, answer, ar_count: 0, additional: Vec::new() };
    Some(NodeData::new(&[rrset], None))
}
