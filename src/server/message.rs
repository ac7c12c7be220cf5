//! The wire: parse a query strictly, encode an [`Answer`] with the rules of
//! SPEC.md section 4 (512 bytes without EDNS, EDNS capped at 1232, whole
//! records dropped and TC set, FORMERR/NOTIMP/BADVERS, EDNS echoed).

use crate::records::name::lowercase_key;
use crate::records::wire::records;
use crate::records::{Answer, Rcode, ZoneIndex, answer};

pub const RCODE_NOERROR: u8 = 0;
pub const RCODE_FORMERR: u8 = 1;
pub const RCODE_SERVFAIL: u8 = 2;
pub const RCODE_NXDOMAIN: u8 = 3;
pub const RCODE_NOTIMP: u8 = 4;
pub const RCODE_REFUSED: u8 = 5;
/// Extended rcode 16 (BADVERS), carried as 1 in the OPT's upper bits.
const BADVERS_HIGH: u8 = 1;

const FLAG_QR: u16 = 0x8000;
const FLAG_AA: u16 = 0x0400;
const FLAG_TC: u16 = 0x0200;
const FLAG_RD: u16 = 0x0100;
const TYPE_OPT: u16 = 41;
const TYPE_CNAME: u16 = 5;
const CLASS_IN: u16 = 1;
const CLASS_ANY: u16 = 255;

/// The UDP size without EDNS (RFC 1035) and the most we send with it
/// (the DNS flag day 2020 value), SPEC.md 4.
pub const UDP_PLAIN: usize = 512;
pub const UDP_EDNS_MAX: u16 = 1232;
/// Over TCP the two-byte length prefix is the only limit.
pub const TCP_MAX: usize = 65535;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Edns {
    pub payload: u16,
    pub version: u8,
}

/// A query that parsed: the question as the client wrote it.
#[derive(Debug)]
pub struct Query<'a> {
    pub id: u16,
    pub flags: u16,
    /// The question name in wire form, as sent (case kept for the echo).
    pub qname: &'a [u8],
    pub qtype: u16,
    pub qclass: u16,
    pub edns: Option<Edns>,
}

#[derive(Debug)]
pub enum Parsed<'a> {
    Query(Query<'a>),
    /// Answer with a bare header carrying this rcode.
    Error {
        id: u16,
        flags: u16,
        rcode: u8,
    },
    /// Not a DNS query header at all, or a response: say nothing.
    Drop,
}

fn u16_at(b: &[u8], i: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(i)?, *b.get(i + 1)?]))
}

/// Skips a possibly compressed name without following pointers.
fn skip_name(b: &[u8], mut i: usize) -> Option<usize> {
    loop {
        let len = *b.get(i)? as usize;
        match len & 0xC0 {
            0x00 if len == 0 => return Some(i + 1),
            0x00 => i += len + 1,
            0xC0 => return Some(i + 2),
            _ => return None, // reserved label types
        }
    }
}

/// Parses a query. Never panics, never loops: every step moves forward.
pub fn parse(b: &[u8]) -> Parsed<'_> {
    let (Some(id), Some(flags)) = (u16_at(b, 0), u16_at(b, 2)) else {
        return Parsed::Drop;
    };
    if b.len() < 12 || flags & FLAG_QR != 0 {
        return Parsed::Drop;
    }
    let formerr = Parsed::Error { id, flags, rcode: RCODE_FORMERR };
    let opcode = (flags >> 11) & 0xF;
    if opcode != 0 {
        return Parsed::Error { id, flags, rcode: RCODE_NOTIMP };
    }
    let counts = [4, 6, 8, 10].map(|i| u16_at(b, i).unwrap_or(0));
    if counts[0] != 1 {
        return formerr;
    }
    // The question name: plain labels only (a pointer can point nowhere
    // valid this early), at most 255 bytes.
    let mut i = 12;
    loop {
        let Some(&len) = b.get(i) else { return formerr };
        if len & 0xC0 != 0 || i - 12 + len as usize + 1 > 255 {
            return formerr;
        }
        i += len as usize + 1;
        if len == 0 {
            break;
        }
    }
    let qname = &b[12..i];
    let (Some(qtype), Some(qclass)) = (u16_at(b, i), u16_at(b, i + 2)) else {
        return formerr;
    };
    i += 4;
    let mut edns = None;
    let records = counts[1] as usize + counts[2] as usize + counts[3] as usize;
    for n in 0..records {
        let start = i;
        let Some(after) = skip_name(b, i) else {
            return formerr;
        };
        i = after;
        let (Some(rtype), Some(class), Some(rdlen)) = (u16_at(b, i), u16_at(b, i + 2), u16_at(b, i + 8)) else {
            return formerr;
        };
        let additional = n >= counts[1] as usize + counts[2] as usize;
        if rtype == TYPE_OPT {
            // RFC 6891 6.1.1: one OPT, owned by the root, in the additional section.
            if !additional || edns.is_some() || b[start] != 0 {
                return formerr;
            }
            edns = Some(Edns { payload: class, version: b[i + 5] });
        }
        i += 10 + rdlen as usize;
        if i > b.len() {
            return formerr;
        }
    }
    Parsed::Query(Query { id, flags, qname, qtype, qclass, edns })
}

/// What was answered, for the metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Done {
    pub qtype: u16,
    /// The full (extended) response code.
    pub rcode: u16,
}

/// Writes the response to `query` into `out`; `None` when nothing should be
/// sent. `udp` selects the size limits of SPEC.md 4.
pub fn respond(index: &ZoneIndex, query: &[u8], udp: bool, out: &mut Vec<u8>) -> Option<Done> {
    out.clear();
    let q = match parse(query) {
        Parsed::Drop => return None,
        Parsed::Error { id, flags, rcode } => {
            header(out, id, FLAG_QR | (flags & 0x7800) | (flags & FLAG_RD) | rcode as u16, [0, 0, 0, 0]);
            return Some(Done { qtype: 0, rcode: rcode.into() });
        }
        Parsed::Query(q) => q,
    };
    let max = match (udp, q.edns) {
        (false, _) => TCP_MAX,
        (true, None) => UDP_PLAIN,
        (true, Some(e)) => e.payload.clamp(UDP_PLAIN as u16, UDP_EDNS_MAX) as usize,
    };
    let mut key = [0u8; 256];
    let klen = lowercase_key(q.qname, &mut key).unwrap_or(0);
    let base = FLAG_QR | (q.flags & FLAG_RD);
    // Question echoed as sent.
    header(out, q.id, base, [1, 0, 0, 0]);
    out.extend_from_slice(q.qname);
    out.extend_from_slice(&q.qtype.to_be_bytes());
    out.extend_from_slice(&q.qclass.to_be_bytes());
    if let Some(e) = q.edns
        && e.version > 0
    {
        // RFC 6891 6.1.3: BADVERS, and say which version we speak.
        push_opt(out, BADVERS_HIGH);
        set_counts(out, [1, 0, 0, 1]);
        return Some(Done { qtype: q.qtype, rcode: 16 });
    }
    let refuse = (q.qclass != CLASS_IN && q.qclass != CLASS_ANY)
        // Zone transfers and other meta queries are not served.
        || matches!(q.qtype, 251..=254)
        || klen == 0;
    let ans = if refuse { None } else { Some(answer(index, &key[..klen], q.qtype)) };
    let rcode = match &ans {
        None => RCODE_REFUSED,
        Some(a) => encode_answer(out, a, max, q.edns.is_some()),
    };
    if q.edns.is_some() {
        push_opt(out, 0);
        let ar = u16_at(out, 10).unwrap_or(0) + 1;
        out[10..12].copy_from_slice(&ar.to_be_bytes());
    }
    let mut flags = base | rcode as u16;
    if ans.as_ref().is_some_and(|a| a.authoritative) {
        flags |= FLAG_AA;
    }
    let old = u16_at(out, 2).unwrap_or(0);
    out[2..4].copy_from_slice(&(flags | (old & FLAG_TC)).to_be_bytes());
    Some(Done { qtype: q.qtype, rcode: rcode.into() })
}

fn header(out: &mut Vec<u8>, id: u16, flags: u16, counts: [u16; 4]) {
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&flags.to_be_bytes());
    for c in counts {
        out.extend_from_slice(&c.to_be_bytes());
    }
}

fn set_counts(out: &mut [u8], counts: [u16; 4]) {
    for (n, c) in counts.iter().enumerate() {
        out[4 + 2 * n..6 + 2 * n].copy_from_slice(&c.to_be_bytes());
    }
}

fn push_opt(out: &mut Vec<u8>, ext_rcode: u8) {
    out.push(0); // root
    out.extend_from_slice(&TYPE_OPT.to_be_bytes());
    out.extend_from_slice(&UDP_EDNS_MAX.to_be_bytes());
    out.extend_from_slice(&[ext_rcode, 0, 0, 0]); // version 0, no DO
    out.extend_from_slice(&0u16.to_be_bytes());
}

const OPT_LEN: usize = 11;

/// Appends the answer, authority and additional sections; sets TC when an
/// answer record did not fit. Returns the rcode.
fn encode_answer(out: &mut Vec<u8>, a: &Answer, max: usize, edns: bool) -> u8 {
    let reserve = if edns { OPT_LEN } else { 0 };
    let soa = a.soa.as_ref().map(|s| &s[a.soa_zone][..]);
    let tail = reserve + soa.map_or(0, <[u8]>::len);
    let (mut an, mut ns, mut ar) = (0u16, 0u16, 0u16);
    let mut truncated = false;
    // Where the previous step's CNAME target sits, for the next step's owner.
    let mut owner_ptr: Option<u16> = None;
    'steps: for step in &a.steps {
        let rr = step.rrset();
        let start = out.len();
        if owner_ptr.is_none() && out.len() + rr.answer.len() + tail <= max {
            out.extend_from_slice(rr.answer);
            an += rr.count;
        } else {
            for rec in records(rr.answer, true) {
                if out.len() + rec.len() + tail > max {
                    truncated = true;
                    break 'steps;
                }
                let at = out.len();
                out.extend_from_slice(rec);
                if let Some(p) = owner_ptr {
                    out[at..at + 2].copy_from_slice(&(0xC000 | p).to_be_bytes());
                }
                an += 1;
            }
        }
        // A CNAME RRset is one record: its target name (the next step's
        // owner) follows the record's 2-byte owner and 10-byte head.
        owner_ptr = match rr.rtype {
            TYPE_CNAME => u16::try_from(start + 12).ok().filter(|p| *p < 0x4000),
            _ => None,
        };
        if rr.rtype == TYPE_CNAME && owner_ptr.is_none() {
            break; // past what a pointer can reach: stop the chain here
        }
    }
    if !truncated {
        if let Some(soa) = soa {
            out.extend_from_slice(soa);
            ns = 1;
        }
        for step in &a.steps {
            for rec in records(step.rrset().additional, false) {
                if out.len() + rec.len() + reserve <= max {
                    out.extend_from_slice(rec);
                    ar += 1;
                }
            }
        }
    }
    set_counts(out, [1, an, ns, ar]);
    if truncated {
        let f = u16_at(out, 2).unwrap_or(0) | FLAG_TC;
        out[2..4].copy_from_slice(&f.to_be_bytes());
    }
    match a.rcode {
        Rcode::NoError => RCODE_NOERROR,
        Rcode::NxDomain => RCODE_NXDOMAIN,
        Rcode::ServFail => RCODE_SERVFAIL,
        Rcode::Refused => RCODE_REFUSED,
    }
}
