//! Answers in wire form, prepared when the cluster changes.
//!
//! Every answer record is stored encoded, its owner written as the pointer
//! `0xC00C`: the question name always starts at offset 12 of a response, so
//! the bytes can be copied into any response as they are. A query is then a
//! lookup and a copy, with no `Record` built or encoded per query.

use std::collections::HashMap;
use std::sync::Arc;

use hickory_proto::rr::{Name, RData, Record, RecordType};
use hickory_proto::serialize::binary::{BinEncodable, BinEncoder, NameEncoding};

use super::build::Node;
use super::name::{Key, key_of};

/// Pointer to offset 12, where the question name sits in every response.
pub const QNAME_PTR: [u8; 2] = [0xC0, 0x0C];
const CLASS_IN: u16 = 1;

/// The records of one type at one name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rrset {
    pub rtype: u16,
    pub count: u16,
    /// Answer records, each starting with [`QNAME_PTR`].
    pub answer: Box<[u8]>,
    pub ar_count: u16,
    /// Additional records (SRV and NS targets' addresses), full owner names.
    pub additional: Box<[u8]>,
}

/// Everything one name answers.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct NodeData {
    pub rrsets: Box<[Rrset]>,
    /// The lookup key of an ExternalName's CNAME target, to follow it when
    /// the target is a name this server answers.
    pub cname: Option<Key>,
}

impl NodeData {
    pub fn rrset(&self, rtype: u16) -> Option<usize> {
        self.rrsets.iter().position(|r| r.rtype == rtype)
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

/// One record with its owner written out in full (authority, additional).
pub fn full_record(rec: &Record) -> Vec<u8> {
    let mut out = Vec::new();
    push_name(&mut out, &rec.name);
    push_rr(
        &mut out,
        rec.record_type(),
        rec.ttl,
        &rdata_bytes(&rec.data),
    );
    out
}

/// Prepares the nodes of one owner. `in_zone` tells whether a CNAME target
/// is answered here (then queries follow it).
pub fn prepare(nodes: &[Node], in_zone: impl Fn(&Name) -> bool) -> Vec<(Key, Arc<NodeData>)> {
    let by_name: HashMap<&Name, &Node> = nodes.iter().map(|n| (&n.name, n)).collect();
    let address_of = |target: &Name, out: &mut Vec<u8>, count: &mut u16| {
        if let Some(t) = by_name.get(target) {
            for r in t
                .records
                .iter()
                .filter(|r| matches!(r.record_type(), RecordType::A | RecordType::AAAA))
            {
                out.extend_from_slice(&full_record(r));
                *count += 1;
            }
        }
    };
    let mut out = Vec::with_capacity(nodes.len());
    for node in nodes {
        let mut types: Vec<RecordType> = node.records.iter().map(|r| r.record_type()).collect();
        types.sort_by_key(|t| u16::from(*t));
        types.dedup();
        let mut rrsets = Vec::with_capacity(types.len());
        let mut cname = None;
        for rtype in types {
            let mut rdatas: Vec<(Vec<u8>, &Record)> = node
                .records
                .iter()
                .filter(|r| r.record_type() == rtype)
                .map(|r| (rdata_bytes(&r.data), r))
                .collect();
            rdatas.sort_by(|a, b| a.0.cmp(&b.0));
            rdatas.dedup_by(|a, b| a.0 == b.0);
            let mut answer = Vec::new();
            let mut additional = Vec::new();
            let mut ar_count = 0;
            let mut seen_targets: Vec<&Name> = Vec::new();
            for (bytes, rec) in &rdatas {
                answer.extend_from_slice(&QNAME_PTR);
                push_rr(&mut answer, rtype, rec.ttl, bytes);
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
                    && !seen_targets.contains(&t)
                {
                    seen_targets.push(t);
                    address_of(t, &mut additional, &mut ar_count);
                }
            }
            rrsets.push(Rrset {
                rtype: rtype.into(),
                count: rdatas.len() as u16,
                answer: answer.into_boxed_slice(),
                ar_count,
                additional: additional.into_boxed_slice(),
            });
        }
        out.push((
            key_of(&node.name),
            Arc::new(NodeData {
                rrsets: rrsets.into_boxed_slice(),
                cname,
            }),
        ));
    }
    out
}

/// Splits encoded records into single records. `ptr_owner`: owners are the
/// 2-byte [`QNAME_PTR`], else full uncompressed names.
pub fn split_records(bytes: &[u8], ptr_owner: bool) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let start = i;
        if ptr_owner {
            i += 2;
        } else {
            while i < bytes.len() && bytes[i] != 0 {
                i += bytes[i] as usize + 1;
            }
            i += 1;
        }
        if i + 10 > bytes.len() {
            break;
        }
        let rdlen = u16::from_be_bytes([bytes[i + 8], bytes[i + 9]]) as usize;
        i += 10 + rdlen;
        out.push(&bytes[start..i.min(bytes.len())]);
    }
    out
}

/// Merges what several owners say about one name (PTR names shared by
/// Services with the same endpoint IP): RRsets of a type are joined and
/// duplicate records dropped.
pub fn merge<'a>(parts: impl Iterator<Item = &'a NodeData>) -> NodeData {
    // (type, answer records, additional records)
    type Parts<'a> = (u16, Vec<&'a [u8]>, Vec<&'a [u8]>);
    let mut by_type: Vec<Parts<'a>> = Vec::new();
    let mut cname = None;
    for part in parts {
        if cname.is_none() {
            cname = part.cname.clone();
        }
        for rr in part.rrsets.iter() {
            let slot = match by_type.iter().position(|t| t.0 == rr.rtype) {
                Some(i) => i,
                None => {
                    by_type.push((rr.rtype, Vec::new(), Vec::new()));
                    by_type.len() - 1
                }
            };
            for rec in split_records(&rr.answer, true) {
                if !by_type[slot].1.contains(&rec) {
                    by_type[slot].1.push(rec);
                }
            }
            for rec in split_records(&rr.additional, false) {
                if !by_type[slot].2.contains(&rec) {
                    by_type[slot].2.push(rec);
                }
            }
        }
    }
    by_type.sort_by_key(|t| t.0);
    let rrsets = by_type
        .into_iter()
        .map(|(rtype, mut ans, mut add)| {
            // The same records in the same order, whichever owner came first.
            ans.sort();
            add.sort();
            (rtype, ans, add)
        })
        .map(|(rtype, ans, add)| Rrset {
            rtype,
            count: ans.len() as u16,
            answer: ans.concat().into_boxed_slice(),
            ar_count: add.len() as u16,
            additional: add.concat().into_boxed_slice(),
        })
        .collect();
    NodeData { rrsets, cname }
}
