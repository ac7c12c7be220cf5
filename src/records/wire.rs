//! Answers in wire form, prepared when the cluster changes.
//!
//! Every answer record is stored encoded, its owner written as the pointer
//! `0xC00C`: the question name always starts at offset 12 of a response, so
//! the bytes can be copied into any response as they are. A query is then a
//! lookup and a copy, with no `Record` built or encoded per query.

use foldhash::{HashMap, HashSet};
use smallvec::SmallVec;

use hickory_proto::rr::{Name, RData, Record, RecordType};
use hickory_proto::serialize::binary::{BinEncodable, BinEncoder, NameEncoding};

use super::buffer::Buffer;
use super::build::Node;
use super::name::key_of;

/// Pointer to offset 12, where the question name sits in every response.
pub const QNAME_PTR: [u8; 2] = [0xC0, 0x0C];
const CLASS_IN: u16 = 1;

/// The records of one type at one name, as built (see [`NodeData`] for the
/// stored form).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Rrset {
    pub rtype: u16,
    pub count: u16,
    /// Answer records, each starting with [`QNAME_PTR`]. An SRV record's
    /// target may end in a pointer into the question, as additional owners
    /// do: encoders write it whole ([`push_srv_whole`]).
    pub answer: Vec<u8>,
    pub ar_count: u16,
    /// Additional records (SRV and NS targets' addresses). Their owners may
    /// end in a pointer into the question (offset 12 plus the place of the
    /// suffix in the RRset's own name).
    pub additional: Vec<u8>,
}

/// One RRset read out of a [`NodeData`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RrsetRef<'a> {
    pub rtype: u16,
    pub count: u16,
    pub answer: &'a [u8],
    pub ar_count: u16,
    pub additional: &'a [u8],
}

/// Everything one name answers, packed into one shared allocation: a million
/// names (100k Services) are a million small buffers, not five million.
/// A thin pointer ([`Buffer`]: the length lives in the allocation, with the
/// index's two words for the name): a slot of the index is 8 bytes.
/// The name's lookup key comes first in the same buffer when the index
/// stores it (no allocation of its own for the key).
///
/// Layout: `key_len: u8`, the key, `n: u8`, `cname_len: u8`, the CNAME
/// target key, then `n` heads of `rtype: u16` and four LEB128 numbers
/// (`count`, `ar_count`, `answer_len`, `additional_len`), then each
/// RRset's answer and additional bytes in order. A head is 6 bytes for
/// nearly every RRset (14 as fixed-width fields: 8 MiB more at 100k
/// Services).
#[derive(Clone, PartialEq, Eq)]
pub struct NodeData(Buffer);

fn be16(b: &[u8], i: usize) -> u16 {
    u16::from_be_bytes([b[i], b[i + 1]])
}

/// Appends `v` as LEB128: 7 bits a byte, low first, the high bit set on all
/// but the last.
fn put_varint(out: &mut Vec<u8>, mut v: u32) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Reads a LEB128 number at `*at` and moves `*at` past it.
fn varint(b: &[u8], at: &mut usize) -> u32 {
    let mut v = 0u32;
    let mut shift = 0;
    loop {
        let byte = b[*at];
        *at += 1;
        v |= ((byte & 0x7F) as u32) << shift;
        if byte < 0x80 || shift >= 28 {
            return v;
        }
        shift += 7;
    }
}

/// One RRset's head: its type, counts and where its bytes are.
struct Head {
    rtype: u16,
    count: u16,
    ar_count: u16,
    answer_len: usize,
    additional_len: usize,
}

/// Reads the head at `*at` and moves `*at` past it.
fn head(b: &[u8], at: &mut usize) -> Head {
    let rtype = be16(b, *at);
    *at += 2;
    let count = varint(b, at) as u16;
    let ar_count = varint(b, at) as u16;
    let answer_len = varint(b, at) as usize;
    let additional_len = varint(b, at) as usize;
    Head { rtype, count, ar_count, answer_len, additional_len }
}

impl NodeData {
    /// Packs RRsets (sorted by type) and the key of an in-zone CNAME target.
    pub fn new(rrsets: &[Rrset], cname: Option<&[u8]>) -> Self {
        Self::keyed(&[], rrsets, cname)
    }

    /// [`NodeData::new`] with the name's own key in front (a key is at most
    /// 255 bytes).
    pub fn keyed(key: &[u8], rrsets: &[Rrset], cname: Option<&[u8]>) -> Self {
        let key = &key[..key.len().min(255)];
        let cname = cname.unwrap_or(&[]);
        let cname = &cname[..cname.len().min(255)];
        let rrsets = &rrsets[..rrsets.len().min(255)];
        let mut heads = Vec::with_capacity(8 * rrsets.len());
        for r in rrsets {
            heads.extend_from_slice(&r.rtype.to_be_bytes());
            put_varint(&mut heads, r.count as u32);
            put_varint(&mut heads, r.ar_count as u32);
            put_varint(&mut heads, r.answer.len() as u32);
            put_varint(&mut heads, r.additional.len() as u32);
        }
        let body: usize = rrsets.iter().map(|r| r.answer.len() + r.additional.len()).sum();
        let mut out = Vec::with_capacity(3 + key.len() + cname.len() + heads.len() + body);
        out.push(key.len() as u8);
        out.extend_from_slice(key);
        out.push(rrsets.len() as u8);
        out.push(cname.len() as u8);
        out.extend_from_slice(cname);
        out.extend_from_slice(&heads);
        for r in rrsets {
            out.extend_from_slice(&r.answer);
            out.extend_from_slice(&r.additional);
        }
        NodeData(Buffer::new(&out))
    }

    /// A name that exists with no records (an empty non-terminal).
    pub fn empty() -> Self {
        Self::new(&[], None)
    }

    /// Bytes of the one allocation (header and buffer), for the memory
    /// benchmark.
    pub fn stored_len(&self) -> usize {
        self.0.allocated()
    }

    /// The whole buffer: key, heads and records.
    fn bytes(&self) -> &[u8] {
        self.0.bytes()
    }

    /// The allocation, for the index's words beside the answer.
    pub(super) fn buffer(&self) -> &Buffer {
        &self.0
    }

    /// The key the answer was stored under (empty when none).
    pub fn key(&self) -> &[u8] {
        &self.bytes()[1..self.base()]
    }

    /// Everything but the key.
    fn body(&self) -> &[u8] {
        &self.bytes()[self.base()..]
    }

    /// Where the answer starts, after the key.
    fn base(&self) -> usize {
        1 + self.bytes()[0] as usize
    }

    fn cname_len(&self) -> usize {
        self.bytes()[self.base() + 1] as usize
    }

    /// Where the first head is.
    fn heads(&self) -> usize {
        self.base() + 2 + self.cname_len()
    }

    /// How many RRsets the name has.
    pub fn len(&self) -> usize {
        self.bytes()[self.base()] as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The lookup key of an ExternalName's CNAME target, when it is a name
    /// this server answers (queries follow it).
    pub fn cname(&self) -> Option<&[u8]> {
        let n = self.cname_len();
        let at = self.base() + 2;
        (n > 0).then(|| &self.bytes()[at..at + n])
    }

    /// The `i`-th RRset (`i < len()`).
    pub fn rrset(&self, i: usize) -> RrsetRef<'_> {
        let b = self.bytes();
        let mut h = self.heads();
        // The heads before the body: skip them all to find where it starts,
        // adding up the lengths of the RRsets before `i`.
        let (mut skip, mut mine) = (0, None);
        for j in 0..self.len() {
            let hd = head(b, &mut h);
            if j < i {
                skip += hd.answer_len + hd.additional_len;
            } else if j == i {
                mine = Some(hd);
            }
        }
        let Some(hd) = mine else {
            return RrsetRef { rtype: 0, count: 0, answer: &[], ar_count: 0, additional: &[] };
        };
        let at = h + skip;
        RrsetRef {
            rtype: hd.rtype,
            count: hd.count,
            ar_count: hd.ar_count,
            answer: &b[at..at + hd.answer_len],
            additional: &b[at + hd.answer_len..at + hd.answer_len + hd.additional_len],
        }
    }

    pub fn rrsets(&self) -> impl Iterator<Item = RrsetRef<'_>> {
        (0..self.len()).map(|i| self.rrset(i))
    }

    /// The position of the RRset of `rtype`.
    pub fn find(&self, rtype: u16) -> Option<usize> {
        let b = self.bytes();
        let mut h = self.heads();
        (0..self.len()).find(|_| head(b, &mut h).rtype == rtype)
    }
}

impl std::fmt::Debug for NodeData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let types: Vec<(u16, u16)> = self.rrsets().map(|r| (r.rtype, r.count)).collect();
        write!(
            f,
            "NodeData{{types: {types:?}, cname: {:?}, {} bytes}}",
            self.cname().map(String::from_utf8_lossy),
            self.bytes().len()
        )
    }
}

fn rdata_bytes(rdata: &RData) -> Vec<u8> {
    let mut buf = Vec::with_capacity(32);
    let mut enc = BinEncoder::new(&mut buf);
    // Offsets inside this buffer mean nothing in a response: no compression.
    enc.set_name_encoding(NameEncoding::Uncompressed);
    // Encoding our own, already validated records cannot fail; an error here
    // would drop the record rather than the server.
    if rdata.emit(&mut enc).is_err() {
        buf.clear();
    }
    buf
}

fn push_name(out: &mut Vec<u8>, name: &Name) {
    for label in name.iter() {
        out.push(label.len() as u8);
        out.extend(label.iter().map(|b| b.to_ascii_lowercase()));
    }
    out.push(0);
}

fn push_rr(out: &mut Vec<u8>, rtype: RecordType, ttl: u32, rdata: &[u8]) {
    out.extend_from_slice(&u16::from(rtype).to_be_bytes());
    out.extend_from_slice(&CLASS_IN.to_be_bytes());
    out.extend_from_slice(&ttl.to_be_bytes());
    out.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
    out.extend_from_slice(rdata);
}

/// Writes `name` (a lowercase key) relative to `own`, the key of the name
/// whose answer holds it: the longest common suffix of whole labels becomes
/// a pointer to where it lies in the question name (`own` at offset 12 of
/// every response). For the owners of additional records: an SRV target is
/// the Service's name or one label below it, so 40 bytes become 2 or 14
/// (14 MiB at 100k Services); the NS target `ns.dns` sits below the apex.
/// Encoders that put a prepared record anywhere else move the pointers
/// with it ([`rebase_name`]). SRV targets are stored so too, and written
/// whole into responses ([`push_srv_whole`]): RFC 2782 allows no
/// compression in that field.
fn push_name_rel(out: &mut Vec<u8>, name: &[u8], own: &[u8]) {
    let tail = |i: usize| &name[i..];
    let own_starts = || super::name::label_starts(own);
    for at in super::name::label_starts(name) {
        if let Some(o) = own_starts().find(|&o| own[o..] == *tail(at)) {
            out.extend_from_slice(&name[..at]);
            out.extend_from_slice(&(0xC000 | (QNAME_PTR_AT + o) as u16).to_be_bytes());
            return;
        }
    }
    out.extend_from_slice(name);
}

/// Where the question name starts in every response.
pub const QNAME_PTR_AT: usize = 12;

/// Room for any SRV record: 18 fixed bytes and a 255-byte target (no
/// allocation per query).
type Record288 = SmallVec<[u8; 288]>;

/// Appends the name at `ctx[at..]` uncompressed and in lower case (the
/// question's 0x20 mix stays in the question), following pointers inside
/// `ctx`; `None` when it runs out of `ctx`, loops or passes 255 bytes.
fn push_name_from(out: &mut Record288, ctx: &[u8], mut at: usize) -> Option<()> {
    let start = out.len();
    for _ in 0..128 {
        let len = *ctx.get(at)? as usize;
        if len & 0xC0 == 0xC0 {
            at = (u16::from_be_bytes([len as u8, *ctx.get(at + 1)?]) & 0x3FFF) as usize;
            continue;
        }
        // Length bytes are below 64: lower-casing leaves them be.
        out.extend(ctx.get(at..at + len + 1)?.iter().map(u8::to_ascii_lowercase));
        if out.len() - start > 255 {
            return None;
        }
        if len == 0 {
            return Some(());
        }
        at += len + 1;
    }
    None
}

/// Appends a prepared SRV answer record (`rec`: the 2-byte owner pointer,
/// type, class, TTL, RDLENGTH, priority, weight, port, then the target as
/// [`push_name_rel`] wrote it) with its target written whole, as RFC 2782
/// requires: a pointer at its end is read as if the name holding the record
/// sat at offset 12 of `ctx`, where it sits at `base` (the question, or a
/// CNAME target in the message so far; `None`: `out` itself, as far as it
/// is written). Stored with the pointer, a target that is the Service's
/// own name or one label below it takes 2 or 10-odd bytes, not 30 to 40
/// (578,000 SRV records at 100k Services: 15 MiB).
/// `None` (and nothing appended) when the record is malformed.
pub fn push_srv_whole(out: &mut Vec<u8>, ctx: Option<&[u8]>, rec: &[u8], base: usize) -> Option<()> {
    const FIXED: usize = 12 + 6;
    let target = rec.get(FIXED..)?;
    let mut rr = Record288::new();
    rr.extend_from_slice(rec.get(..FIXED)?);
    let mut at = 0;
    loop {
        let len = *target.get(at)? as usize;
        if len & 0xC0 == 0xC0 {
            let p = (u16::from_be_bytes([len as u8, *target.get(at + 1)?]) & 0x3FFF) as usize;
            let from = base + p.checked_sub(QNAME_PTR_AT)?;
            rr.extend_from_slice(target.get(..at)?);
            push_name_from(&mut rr, ctx.unwrap_or(out), from)?;
            break;
        }
        if len == 0 {
            rr.extend_from_slice(target.get(..=at)?);
            break;
        }
        at += len + 1;
    }
    if rr.len() - FIXED > 255 {
        return None;
    }
    let rdlen = (rr.len() - 12) as u16;
    rr[10..12].copy_from_slice(&rdlen.to_be_bytes());
    out.extend_from_slice(&rr);
    Some(())
}

/// Moves a pointer that ends the name at `out[at..]`, written by
/// [`push_name_rel`] as if its own name sat at offset 12, to a message
/// where that name sits at `base`. Returns where the name ends, or `None`
/// when it runs out of `out` or the pointer would reach past 14 bits.
pub fn rebase_name(out: &mut [u8], mut at: usize, base: usize) -> Option<usize> {
    loop {
        let len = *out.get(at)? as usize;
        if len == 0 {
            return Some(at + 1);
        }
        if len & 0xC0 == 0xC0 {
            let p = (u16::from_be_bytes([len as u8, *out.get(at + 1)?]) & 0x3FFF) as usize;
            let moved = u16::try_from(base + p.checked_sub(QNAME_PTR_AT)?).ok().filter(|p| *p < 0x4000)?;
            out[at..at + 2].copy_from_slice(&(0xC000 | moved).to_be_bytes());
            return Some(at + 2);
        }
        at += len + 1;
    }
}

/// One record with its owner written out in full (authority, additional).
pub fn full_record(rec: &Record) -> Vec<u8> {
    let mut out = Vec::new();
    push_name(&mut out, &rec.name);
    push_rr(&mut out, rec.record_type(), rec.ttl, &rdata_bytes(&rec.data));
    out
}

/// Prepares the nodes of one owner. `in_zone` tells whether a CNAME target
/// is answered here (then queries follow it); `stored` gives the key a
/// name is stored under from its lowercase wire name (`None`: not a name
/// of the served zones, left out).
pub fn prepare(
    nodes: &[Node],
    in_zone: impl Fn(&Name) -> bool,
    stored: impl Fn(&[u8]) -> Option<Box<[u8]>>,
) -> Vec<NodeData> {
    let by_name: HashMap<&Name, &Node> = nodes.iter().map(|n| (&n.name, n)).collect();
    // An SRV or NS target's addresses, their owner relative to the name
    // that holds the SRV or NS records.
    let address_of = |target: &Name, own: &[u8], out: &mut Vec<u8>, count: &mut u16| {
        if let Some(t) = by_name.get(target) {
            let name = key_of(target);
            for r in t.records.iter().filter(|r| matches!(r.record_type(), RecordType::A | RecordType::AAAA)) {
                push_name_rel(out, &name, own);
                push_rr(out, r.record_type(), r.ttl, &rdata_bytes(&r.data));
                *count += 1;
            }
        }
    };
    let mut out = Vec::with_capacity(nodes.len());
    for node in nodes {
        let own = key_of(&node.name);
        let mut types: Vec<RecordType> = node.records.iter().map(|r| r.record_type()).collect();
        types.sort_by_key(|t| u16::from(*t));
        types.dedup();
        let mut rrsets = Vec::with_capacity(types.len());
        let mut cname = None;
        for rtype in types {
            let mut rdatas: Vec<(Vec<u8>, &Record)> =
                node.records.iter().filter(|r| r.record_type() == rtype).map(|r| (rdata_bytes(&r.data), r)).collect();
            rdatas.sort_by(|a, b| a.0.cmp(&b.0));
            rdatas.dedup_by(|a, b| a.0 == b.0);
            let mut answer = Vec::new();
            let mut additional = Vec::new();
            let mut ar_count = 0;
            let mut seen_targets: HashSet<&Name> = HashSet::default();
            for (bytes, rec) in &rdatas {
                answer.extend_from_slice(&QNAME_PTR);
                match &rec.data {
                    // The target relative to the name: see `push_srv_whole`.
                    RData::SRV(srv) if bytes.len() >= 6 => {
                        let mut rdata = bytes[..6].to_vec();
                        push_name_rel(&mut rdata, &key_of(&srv.target), &own);
                        push_rr(&mut answer, rtype, rec.ttl, &rdata);
                    }
                    _ => push_rr(&mut answer, rtype, rec.ttl, bytes),
                }
                let target = match &rec.data {
                    RData::SRV(srv) => Some(&srv.target),
                    RData::NS(ns) => Some(&ns.0),
                    RData::CNAME(c) => {
                        if in_zone(&c.0) {
                            cname = Some(key_of(&c.0));
                        }
                        None
                    }
                    _ => None,
                };
                if let Some(t) = target
                    && seen_targets.insert(t)
                {
                    address_of(t, &own, &mut additional, &mut ar_count);
                }
            }
            if rtype == RecordType::SRV {
                set_srv_weights(&mut answer, rdatas.len());
            }
            rrsets.push(Rrset { rtype: rtype.into(), count: rdatas.len() as u16, answer, ar_count, additional });
        }
        if let Some(key) = stored(&own) {
            out.push(NodeData::keyed(&key, &rrsets, cname.as_deref()));
        }
    }
    out
}

pub const TYPE_SRV: u16 = 33;
/// Where an SRV answer record's weight is: after the owner pointer, type,
/// class, TTL, RDLENGTH and priority.
const SRV_WEIGHT: std::ops::Range<usize> = 14..16;

/// The weight of each of `count` SRV records: 100 shared equally, at least
/// 1 (SPEC.md R5). Built records say 0: an RRset's count is known only
/// once all its owners' parts are in.
pub fn srv_weight(count: usize) -> u16 {
    (100 / count.max(1)).max(1) as u16
}

/// Writes the weight of a complete SRV RRset into its answer records.
fn set_srv_weights(answer: &mut [u8], count: usize) {
    let weight = srv_weight(count).to_be_bytes();
    let mut at = 0;
    while at + SRV_WEIGHT.end <= answer.len() {
        answer[at + SRV_WEIGHT.start..at + SRV_WEIGHT.end].copy_from_slice(&weight);
        let rdlen = u16::from_be_bytes([answer[at + 10], answer[at + 11]]) as usize;
        at += 12 + rdlen;
    }
}

/// An SRV answer record without its weight (parts say the weight of their
/// own share).
fn srv_parts(r: &[u8]) -> (&[u8], &[u8]) {
    (r.get(..SRV_WEIGHT.start).unwrap_or(r), r.get(SRV_WEIGHT.end..).unwrap_or(&[]))
}

/// The single records of prepared bytes. `ptr_owner`: owners are the
/// 2-byte [`QNAME_PTR`] (answer records), else names that may end in a
/// pointer into the question (additional records). Stops at the first
/// record that does not fit.
pub fn records(bytes: &[u8], ptr_owner: bool) -> impl Iterator<Item = &[u8]> {
    let mut i = 0;
    std::iter::from_fn(move || {
        if i >= bytes.len() {
            return None;
        }
        let start = i;
        if ptr_owner {
            i += 2;
        } else {
            while i < bytes.len() && bytes[i] != 0 && bytes[i] & 0xC0 != 0xC0 {
                i += bytes[i] as usize + 1;
            }
            i += if bytes.get(i).is_some_and(|b| b & 0xC0 == 0xC0) { 2 } else { 1 };
        }
        let rdlen = u16::from_be_bytes([*bytes.get(i + 8)?, *bytes.get(i + 9)?]) as usize;
        i += 10 + rdlen;
        bytes.get(start..i)
    })
}

/// Merges what several owners say about one name (PTR names shared by
/// Services with the same endpoint IP; a headless Service's name, whose
/// records come from each of its slices): RRsets of a type are joined,
/// duplicate records dropped, and SRV weights set for the whole RRset.
pub fn merge<'a>(key: &[u8], parts: impl Iterator<Item = &'a NodeData>) -> NodeData {
    // In the order of their content: the same answer whichever owner came
    // first, with no sort of the records themselves (a headless Service of
    // 10,000 endpoints in 100 slices merges 30,000 records per change;
    // sorting them cost 4 ms, this 1). Duplicates are found by hash.
    let mut parts: Vec<&NodeData> = parts.collect();
    parts.sort_unstable_by(|a, b| a.body().cmp(b.body()));
    let cname = parts.iter().find_map(|p| p.cname());
    let mut types: Vec<u16> = parts.iter().flat_map(|p| p.rrsets().map(|r| r.rtype)).collect();
    types.sort_unstable();
    types.dedup();
    let hasher = foldhash::fast::RandomState::default();
    let rrsets: Vec<Rrset> = types
        .into_iter()
        .map(|rtype| {
            let sets: Vec<RrsetRef<'_>> = parts.iter().filter_map(|p| p.find(rtype).map(|i| p.rrset(i))).collect();
            let cap = sets.iter().map(|r| r.count as usize).sum();
            let mut seen = std::collections::HashSet::with_capacity_and_hasher(cap, hasher.clone());
            let (mut answer, mut count) = (Vec::new(), 0usize);
            for rec in sets.iter().flat_map(|r| records(r.answer, true)) {
                // An SRV record is the same whatever weight its part gave it.
                let id = if rtype == TYPE_SRV { srv_parts(rec) } else { (rec, &[][..]) };
                if seen.insert(id) {
                    answer.extend_from_slice(rec);
                    count += 1;
                }
            }
            if rtype == TYPE_SRV {
                set_srv_weights(&mut answer, count);
            }
            seen.clear();
            let (mut additional, mut ar_count) = (Vec::new(), 0usize);
            for rec in sets.iter().flat_map(|r| records(r.additional, false)) {
                if seen.insert((rec, &[][..])) {
                    additional.extend_from_slice(rec);
                    ar_count += 1;
                }
            }
            Rrset { rtype, count: count as u16, answer, ar_count: ar_count as u16, additional }
        })
        .collect();
    NodeData::keyed(key, &rrsets, cname)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rrset(rtype: u16, count: u16, answer: usize, ar_count: u16, additional: usize) -> Rrset {
        let fill = |n: usize, seed: u8| (0..n).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect();
        Rrset { rtype, count, answer: fill(answer, rtype as u8), ar_count, additional: fill(additional, 7) }
    }

    /// An SRV record stored with its target relative to its name is
    /// written whole: the pointer read where the name sits, lower-cased,
    /// RDLENGTH fixed; bad pointers and loops write nothing.
    #[test]
    fn srv_targets_are_written_whole() {
        let own = key_of(&"_http._tcp.Web.app.svc.".parse::<Name>().unwrap());
        let target = key_of(&"w0.web.app.svc.".parse::<Name>().unwrap());
        let mut stored = QNAME_PTR.to_vec();
        let mut rdata = vec![0, 0, 0, 50, 0x1F, 0x90];
        push_name_rel(&mut rdata, &target, &own);
        assert_eq!(rdata.len(), 6 + 3 + 2, "w0 then a pointer");
        push_rr(&mut stored, RecordType::SRV, 5, &rdata);
        let want = {
            let mut r = QNAME_PTR.to_vec();
            let mut full = rdata[..6].to_vec();
            full.extend_from_slice(&target);
            push_rr(&mut r, RecordType::SRV, 5, &full);
            r
        };
        // In a message: the question at 12 (in the client's case).
        let mut msg = vec![0u8; 12];
        msg.extend_from_slice(b"\x05_http\x04_tcp\x03WEB\x03app\x03svc\x00");
        let at = msg.len();
        push_srv_whole(&mut msg, None, &stored, QNAME_PTR_AT).unwrap();
        assert_eq!(&msg[at..], &want[..]);
        // Against the owner's key alone (a zone transfer).
        let mut out = Vec::new();
        push_srv_whole(&mut out, Some(&own), &stored, 0).unwrap();
        assert_eq!(out, want);
        // A name somewhere else in the message (after a CNAME).
        let mut msg = vec![0u8; 40];
        let base = msg.len();
        msg.extend_from_slice(&own);
        let at = msg.len();
        push_srv_whole(&mut msg, None, &stored, base).unwrap();
        assert_eq!(&msg[at..], &want[..]);
        // Bad: a pointer before the question, one that loops, one past the end.
        for (ctx, ptr, base) in [(vec![0u8; 12], 0xC000u16, 12), (vec![0xC0, 0], 0xC00C, 0), (vec![], 0xC0FF, 12)] {
            let mut bad = stored[..18].to_vec();
            bad.extend_from_slice(&ptr.to_be_bytes());
            let mut out = Vec::new();
            assert_eq!(push_srv_whole(&mut out, Some(&ctx), &bad, base), None);
            assert!(out.is_empty());
        }
        assert_eq!(push_srv_whole(&mut Vec::new(), None, &stored[..15], 12), None);
    }

    /// The heads' numbers are variable-length: sizes at each width's edges
    /// (1, 2, 3 and 4 bytes of LEB128) read back as written, in any position.
    #[test]
    fn heads_read_back_at_every_width() {
        let sets = [
            rrset(1, 1, 16, 0, 0),
            rrset(5, 127, 127, 128, 128),
            rrset(28, 16_383, 16_384, 65_535, 2_097_151),
            rrset(33, 65_535, 2_097_152, 300, 0),
            rrset(65_535, 0, 0, 0, 1),
        ];
        let key = [3, b'a', b'b', b'c', 0xC0];
        let target = vec![9u8; 255];
        let node = NodeData::keyed(&key, &sets, Some(&target));
        assert_eq!(node.key(), key);
        assert_eq!(node.cname(), Some(&target[..]));
        assert_eq!(node.len(), sets.len());
        for (i, want) in sets.iter().enumerate() {
            let got = node.rrset(i);
            assert_eq!(
                (got.rtype, got.count, got.ar_count, got.answer, got.additional),
                (want.rtype, want.count, want.ar_count, &want.answer[..], &want.additional[..]),
                "rrset {i}"
            );
            assert_eq!(node.find(want.rtype), Some(i));
        }
        assert_eq!(node.find(2), None);
        let bare = NodeData::new(&[], None);
        assert!(bare.is_empty() && bare.key().is_empty() && bare.cname().is_none());
    }
}
