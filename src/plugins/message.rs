//! The wire: parse a query strictly, write responses with the rules of
//! SPEC.md section 4 (512 bytes without EDNS, EDNS capped at 1232, whole
//! records dropped and TC set, FORMERR/NOTIMP/BADVERS, EDNS echoed with the
//! DO bit), and walk the records of a message without decoding them (for
//! upstream replies: validation, TTL offsets for the cache, truncation).

use crate::metrics::Source;
use smallvec::SmallVec;

use crate::records::wire::{QNAME_PTR_AT, TYPE_SRV, push_srv_whole, rebase_name, records};
use crate::records::{Answer, Rcode};

pub const RCODE_NOERROR: u8 = 0;
pub const RCODE_FORMERR: u8 = 1;
pub const RCODE_SERVFAIL: u8 = 2;
pub const RCODE_NXDOMAIN: u8 = 3;
pub const RCODE_NOTIMP: u8 = 4;
pub const RCODE_REFUSED: u8 = 5;

/// An rcode as `dig` and CoreDNS's log name it.
pub fn rcode_name(rcode: u16) -> String {
    match rcode {
        0 => "NOERROR".into(),
        1 => "FORMERR".into(),
        2 => "SERVFAIL".into(),
        3 => "NXDOMAIN".into(),
        4 => "NOTIMP".into(),
        5 => "REFUSED".into(),
        16 => "BADVERS".into(),
        n => format!("RCODE{n}"),
    }
}
/// Extended rcode 16 (BADVERS), carried as 1 in the OPT's upper bits.
const BADVERS_HIGH: u8 = 1;

pub const FLAG_QR: u16 = 0x8000;
pub const FLAG_AA: u16 = 0x0400;
pub const FLAG_TC: u16 = 0x0200;
pub const FLAG_RD: u16 = 0x0100;
pub const FLAG_RA: u16 = 0x0080;
pub const FLAG_CD: u16 = 0x0010;
pub const TYPE_A: u16 = 1;
pub const TYPE_NS: u16 = 2;
pub const TYPE_CNAME: u16 = 5;
pub const TYPE_SOA: u16 = 6;
pub const TYPE_PTR: u16 = 12;
pub const TYPE_HINFO: u16 = 13;
pub const TYPE_TXT: u16 = 16;
pub const TYPE_AAAA: u16 = 28;
pub const TYPE_OPT: u16 = 41;
pub const TYPE_ANY: u16 = 255;
pub const CLASS_IN: u16 = 1;
pub const CLASS_CH: u16 = 3;
pub const CLASS_ANY: u16 = 255;

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
    /// DNSSEC OK (RFC 3225): copied into the response's OPT.
    pub dnssec_ok: bool,
}

/// A query that parsed: the question as the client wrote it.
#[derive(Clone, Copy, Debug)]
pub struct Query<'a> {
    pub id: u16,
    pub flags: u16,
    /// The question name in wire form, as sent (case kept for the echo).
    pub qname: &'a [u8],
    pub qtype: u16,
    pub qclass: u16,
    pub edns: Option<Edns>,
}

impl Query<'_> {
    /// The DO bit of the question's OPT.
    pub fn dnssec_ok(&self) -> bool {
        self.edns.is_some_and(|e| e.dnssec_ok)
    }

    /// The offset just past the question section of a message carrying it.
    pub fn question_end(&self) -> usize {
        12 + self.qname.len() + 4
    }
}

#[derive(Debug)]
pub enum Parsed<'a> {
    Query(Query<'a>),
    /// Answer with a bare header carrying this rcode (and an OPT when the
    /// message had one that could be read).
    Error {
        id: u16,
        flags: u16,
        rcode: u8,
        edns: Option<Edns>,
    },
    /// Not a DNS query header at all, or a response: say nothing.
    Drop,
}

pub fn u16_at(b: &[u8], i: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(i)?, *b.get(i + 1)?]))
}

fn u32_at(b: &[u8], i: usize) -> Option<u32> {
    Some(u32::from_be_bytes([*b.get(i)?, *b.get(i + 1)?, *b.get(i + 2)?, *b.get(i + 3)?]))
}

/// Skips a possibly compressed name without following pointers.
pub fn skip_name(b: &[u8], mut i: usize) -> Option<usize> {
    loop {
        let len = *b.get(i)? as usize;
        match len & 0xC0 {
            0x00 if len == 0 => return Some(i + 1),
            0x00 => i += len + 1,
            0xC0 => return Some(i + 2).filter(|end| *end <= b.len()),
            _ => return None, // reserved label types
        }
    }
}

/// EDNS option codes checked on the way in.
const OPT_COOKIE: u16 = 10;

/// What a walk through every section of a message found.
struct Sections {
    /// The first question: where its name ends, its type and class.
    question: Option<(usize, u16, u16)>,
    /// The OPT record, when there is one that could be read.
    edns: Option<Edns>,
    /// Something is malformed (FORMERR).
    bad: bool,
}

/// Where a question name of plain labels (a pointer can point nowhere
/// valid this early) starting at `i` ends, within 255 bytes.
fn question_name_end(b: &[u8], start: usize) -> Option<usize> {
    let mut i = start;
    loop {
        let len = *b.get(i)?;
        if len & 0xC0 != 0 || i - start + len as usize + 1 > 255 {
            return None;
        }
        i += len as usize + 1;
        if len == 0 {
            return Some(i);
        }
    }
}

/// Whether an OPT's options are well formed: each fits its record, and a
/// COOKIE is a client cookie (8 bytes) or one with a server cookie (16 to
/// 40 bytes), RFC 7873 5.2.2.
fn options_ok(rdata: &[u8]) -> bool {
    let mut i = 0;
    while i < rdata.len() {
        let (Some(code), Some(len)) = (u16_at(rdata, i), u16_at(rdata, i + 2)) else { return false };
        let len = len as usize;
        if i + 4 + len > rdata.len() || (code == OPT_COOKIE && !(len == 8 || (16..=40).contains(&len))) {
            return false;
        }
        i += 4 + len;
    }
    true
}

/// Walks the question and record sections without following pointers;
/// every step moves forward.
fn sections(b: &[u8], counts: [u16; 4]) -> Sections {
    let mut s = Sections { question: None, edns: None, bad: true };
    let mut i = 12;
    for n in 0..counts[0] {
        let end = if n == 0 { question_name_end(b, i) } else { skip_name(b, i) };
        let Some(end) = end else { return s };
        let (Some(qtype), Some(qclass)) = (u16_at(b, end), u16_at(b, end + 2)) else { return s };
        if n == 0 {
            s.question = Some((end, qtype, qclass));
        }
        i = end + 4;
    }
    let answers_and_authority = counts[1] as usize + counts[2] as usize;
    let mut bad = false;
    for n in 0..answers_and_authority + counts[3] as usize {
        let start = i;
        let Some(after) = skip_name(b, i) else { return s };
        i = after;
        let (Some(rtype), Some(class), Some(rdlen)) = (u16_at(b, i), u16_at(b, i + 2), u16_at(b, i + 8)) else {
            return s;
        };
        let rdata = i + 10..i + 10 + rdlen as usize;
        let Some(data) = b.get(rdata.clone()) else { return s };
        if rtype == TYPE_OPT {
            // RFC 6891 6.1.1: one OPT, owned by the root, in the additional
            // section. The first one read still shapes the FORMERR.
            bad |= n < answers_and_authority || s.edns.is_some() || b[start] != 0 || !options_ok(data);
            if s.edns.is_none() {
                s.edns = Some(Edns { payload: class, version: b[i + 5], dnssec_ok: b[i + 6] & 0x80 != 0 });
            }
        }
        i = rdata.end;
    }
    s.bad = bad;
    s
}

/// Parses a query. Never panics, never loops: every step moves forward.
pub fn parse(b: &[u8]) -> Parsed<'_> {
    let (Some(id), Some(flags)) = (u16_at(b, 0), u16_at(b, 2)) else {
        return Parsed::Drop;
    };
    if b.len() < 12 || flags & FLAG_QR != 0 {
        return Parsed::Drop;
    }
    let counts = [4, 6, 8, 10].map(|i| u16_at(b, i).unwrap_or(0));
    let s = sections(b, counts);
    let error = |rcode| Parsed::Error { id, flags, rcode, edns: s.edns };
    if (flags >> 11) & 0xF != 0 {
        return error(RCODE_NOTIMP);
    }
    match s.question {
        Some((end, qtype, qclass)) if counts[0] == 1 && !s.bad => {
            Parsed::Query(Query { id, flags, qname: &b[12..end], qtype, qclass, edns: s.edns })
        }
        _ => error(RCODE_FORMERR),
    }
}

/// What was answered, for the metrics and the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Done {
    pub qtype: u16,
    /// The full (extended) response code.
    pub rcode: u16,
    /// The plugin that wrote the response (CoreDNS's `plugin` label).
    pub plugin: Source,
}

/// The most a response to `q` may take: SPEC.md 4, with the EDNS size
/// capped at `cap` (1232, or what `bufsize` says).
pub fn max_size(q: &Query, udp: bool, cap: u16) -> usize {
    match (udp, q.edns) {
        (false, _) => TCP_MAX,
        (true, None) => UDP_PLAIN,
        (true, Some(e)) => e.payload.min(cap).max(UDP_PLAIN as u16) as usize,
    }
}

/// A bare header echoing the client's opcode and RD, for FORMERR and
/// NOTIMP; with our OPT (DO copied) when the message carried one
/// (SPEC.md 4).
pub fn error_reply(out: &mut Vec<u8>, id: u16, flags: u16, rcode: u8, edns: Option<Edns>) {
    out.clear();
    let counts = [0, 0, 0, u16::from(edns.is_some())];
    header(out, id, FLAG_QR | (flags & 0x7800) | (flags & FLAG_RD) | rcode as u16, counts);
    if let Some(e) = edns {
        push_opt(out, 0, e.dnssec_ok);
    }
}

/// Starts a response to `q`: the header (counts zero, flags QR and RD) and
/// the question echoed as sent.
pub fn begin(out: &mut Vec<u8>, q: &Query) {
    out.clear();
    let [i0, i1] = q.id.to_be_bytes();
    let [f0, f1] = (FLAG_QR | (q.flags & (FLAG_RD | FLAG_CD))).to_be_bytes();
    out.extend_from_slice(&[i0, i1, f0, f1, 0, 1, 0, 0, 0, 0, 0, 0]);
    out.extend_from_slice(q.qname);
    let [t0, t1] = q.qtype.to_be_bytes();
    let [c0, c1] = q.qclass.to_be_bytes();
    out.extend_from_slice(&[t0, t1, c0, c1]);
}

/// Ends a response begun with [`begin`]: the rcode and AA in the header,
/// the OPT record when the question had one (DO copied).
pub fn end(out: &mut [u8], q: &Query, rcode: u8, authoritative: bool) {
    let mut flags = FLAG_QR | (q.flags & (FLAG_RD | FLAG_CD)) | rcode as u16;
    if authoritative {
        flags |= FLAG_AA;
    }
    let old = u16_at(out, 2).unwrap_or(0);
    out[2..4].copy_from_slice(&(flags | (old & FLAG_TC)).to_be_bytes());
}

/// Appends our OPT (when the question had one) and counts it.
pub fn add_opt(out: &mut Vec<u8>, q: &Query, ext_rcode: u8) {
    if let Some(e) = q.edns {
        push_opt(out, ext_rcode, e.dnssec_ok);
        let ar = u16_at(out, 10).unwrap_or(0) + 1;
        out[10..12].copy_from_slice(&ar.to_be_bytes());
    }
}

/// RFC 6891 6.1.3: a question of a higher EDNS version gets BADVERS with
/// the version we speak. True when it was answered so.
pub fn badvers(out: &mut Vec<u8>, q: &Query) -> bool {
    if q.edns.is_none_or(|e| e.version == 0) {
        return false;
    }
    begin(out, q);
    add_opt(out, q, BADVERS_HIGH);
    end(out, q, 0, false);
    true
}

/// A response with no records: `rcode`, the question, OPT.
pub fn empty_reply(out: &mut Vec<u8>, q: &Query, rcode: u8) {
    begin(out, q);
    add_opt(out, q, 0);
    end(out, q, rcode, false);
}

pub fn header(out: &mut Vec<u8>, id: u16, flags: u16, counts: [u16; 4]) {
    let mut h = [0u8; 12];
    h[0..2].copy_from_slice(&id.to_be_bytes());
    h[2..4].copy_from_slice(&flags.to_be_bytes());
    for (n, c) in counts.iter().enumerate() {
        h[4 + 2 * n..6 + 2 * n].copy_from_slice(&c.to_be_bytes());
    }
    out.extend_from_slice(&h);
}

pub fn set_counts(out: &mut [u8], counts: [u16; 4]) {
    for (n, c) in counts.iter().enumerate() {
        out[4 + 2 * n..6 + 2 * n].copy_from_slice(&c.to_be_bytes());
    }
}

pub fn push_opt(out: &mut Vec<u8>, ext_rcode: u8, dnssec_ok: bool) {
    out.push(0); // root
    out.extend_from_slice(&TYPE_OPT.to_be_bytes());
    out.extend_from_slice(&UDP_EDNS_MAX.to_be_bytes());
    out.extend_from_slice(&[ext_rcode, 0, if dnssec_ok { 0x80 } else { 0 }, 0]); // version 0
    out.extend_from_slice(&0u16.to_be_bytes());
}

pub const OPT_LEN: usize = 11;

/// Appends the answer, authority and additional sections of `a` to a
/// response begun with [`begin`]; sets TC when an answer record did not
/// fit (SPEC.md 4: only the answer section decides TC). Returns the rcode,
/// and where the last answer RRset sits in `out` when it is a CNAME (its
/// target may be chased beyond the zone).
pub fn encode_answer(out: &mut Vec<u8>, a: &Answer, max: usize, edns: bool) -> (u8, Option<usize>) {
    let reserve = if edns { OPT_LEN } else { 0 };
    let soa = a.soa.as_ref().map(|s| &s[a.soa_zone][..]);
    let tail = reserve + soa.map_or(0, <[u8]>::len);
    let (mut an, mut ns, mut ar) = (0u16, 0u16, 0u16);
    let mut truncated = false;
    // Where the previous step's CNAME target sits, for the next step's owner.
    let mut owner_ptr: Option<u16> = None;
    let mut last_cname = None;
    // Where each step's own name sits, once written: the owners of
    // prepared additional records point into it as if it were the
    // question's (offset 12).
    let mut bases: SmallVec<[usize; 2]> = SmallVec::new();
    'steps: for step in &a.steps {
        let rr = step.rrset();
        let start = out.len();
        // Where this step's own name sits: the question, or the CNAME
        // target of the step before.
        let base = owner_ptr.map_or(QNAME_PTR_AT, usize::from);
        last_cname = (rr.rtype == TYPE_CNAME).then_some(start);
        if owner_ptr.is_none() && rr.rtype != TYPE_SRV && out.len() + rr.answer.len() + tail <= max {
            out.extend_from_slice(rr.answer);
            an += rr.count;
        } else {
            for rec in records(rr.answer, true) {
                let at = out.len();
                if rr.rtype == TYPE_SRV {
                    // Stored with its target relative to the name: written
                    // whole (RFC 2782), so its size is known once written.
                    if push_srv_whole(out, None, rec, base).is_none() {
                        continue;
                    }
                } else {
                    out.extend_from_slice(rec);
                }
                if out.len() + tail > max {
                    out.truncate(at);
                    truncated = true;
                    break 'steps;
                }
                if let Some(p) = owner_ptr {
                    out[at..at + 2].copy_from_slice(&(0xC000 | p).to_be_bytes());
                }
                an += 1;
            }
        }
        bases.push(base);
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
        for (step, base) in a.steps.iter().zip(bases) {
            for rec in records(step.rrset().additional, false) {
                if out.len() + rec.len() + reserve <= max {
                    let at = out.len();
                    out.extend_from_slice(rec);
                    if base != QNAME_PTR_AT && rebase_name(out, at, base).is_none() {
                        out.truncate(at);
                        continue;
                    }
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
    let rcode = match a.rcode {
        Rcode::NoError => RCODE_NOERROR,
        Rcode::NxDomain => RCODE_NXDOMAIN,
        Rcode::ServFail => RCODE_SERVFAIL,
        Rcode::Refused => RCODE_REFUSED,
    };
    (rcode, if truncated { None } else { last_cname })
}

/// Appends one record: `owner` in wire form (or the 2-byte pointer to the
/// question, [`crate::records::wire::QNAME_PTR`]), then type, class, TTL
/// and RDATA. Counts are the caller's.
pub fn push_record(out: &mut Vec<u8>, owner: &[u8], rtype: u16, class: u16, ttl: u32, rdata: &[u8]) {
    out.extend_from_slice(owner);
    out.extend_from_slice(&rtype.to_be_bytes());
    out.extend_from_slice(&class.to_be_bytes());
    out.extend_from_slice(&ttl.to_be_bytes());
    out.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
    out.extend_from_slice(rdata);
}

/// Where the answer section of a response ends, without allocating;
/// `None` when the bytes do not hold it whole.
pub fn answer_end(b: &[u8]) -> Option<usize> {
    let an = u16_at(b, 6)?;
    let mut i = skip_name(b, 12)? + 4;
    for _ in 0..an {
        i = skip_name(b, i)?;
        i += 10 + u16_at(b, i + 8)? as usize;
    }
    (i <= b.len()).then_some(i)
}

/// One resource record of a message, located, not decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rr {
    /// Where the record starts (its owner name) and ends.
    pub start: usize,
    pub end: usize,
    pub rtype: u16,
    /// Offset of its 32-bit TTL.
    pub ttl_at: usize,
    pub ttl: u32,
    /// 0 answer, 1 authority, 2 additional.
    pub section: u8,
}

/// A whole message, located: its header fields, where its question ends,
/// and every record. `None` when the bytes are not a well-formed message.
#[derive(Clone, Debug)]
pub struct Walk {
    pub id: u16,
    pub flags: u16,
    pub question_end: usize,
    pub rrs: Vec<Rr>,
}

impl Walk {
    pub fn rcode(&self) -> u8 {
        (self.flags & 0xF) as u8
    }

    pub fn truncated(&self) -> bool {
        self.flags & FLAG_TC != 0
    }

    pub fn section(&self, s: u8) -> impl Iterator<Item = &Rr> {
        self.rrs.iter().filter(move |r| r.section == s)
    }
}

/// Walks a message with exactly one question, strictly, as an upstream's
/// reply must be before we relay it:
///
/// - every compression pointer points back at a label of a name already
///   read (RFC 1035 4.1.4, "a prior occurrence of the same name"): the
///   question, an owner, or a name in the RDATA of the types whose names
///   may be compressed. Never into the header, a TTL, an OPT or other
///   RDATA, which the relay rewrites, drops or cannot see;
/// - an OPT is the root's, in the additional section, at most once
///   (RFC 6891 6.1.1).
///
/// `None` when the bytes are not such a message.
pub fn walk(b: &[u8]) -> Option<Walk> {
    let id = u16_at(b, 0)?;
    let flags = u16_at(b, 2)?;
    let counts = [u16_at(b, 4)?, u16_at(b, 6)?, u16_at(b, 8)?, u16_at(b, 10)?];
    if counts[0] != 1 {
        return None;
    }
    let mut labels = Labels::new(b.len());
    let question_end = strict_name(b, 12, &mut labels)? + 4;
    if question_end > b.len() {
        return None;
    }
    let mut i = question_end;
    let total = counts[1] as usize + counts[2] as usize + counts[3] as usize;
    let mut rrs = Vec::with_capacity(total.min(64));
    let mut opt = false;
    for n in 0..total {
        let start = i;
        let section = if n < counts[1] as usize {
            0
        } else if n < counts[1] as usize + counts[2] as usize {
            1
        } else {
            2
        };
        let rtype = u16_at(b, skip_name(b, i)?)?;
        i = if rtype == TYPE_OPT {
            if section != 2 || opt || b.get(i) != Some(&0) {
                return None;
            }
            opt = true;
            i + 1 // the root, which no pointer may point at: we drop it
        } else {
            strict_name(b, i, &mut labels)?
        };
        let ttl = u32_at(b, i + 4)?;
        let rdlen = u16_at(b, i + 8)? as usize;
        let ttl_at = i + 4;
        let rdata = i + 10;
        i = rdata + rdlen;
        if i > b.len() {
            return None;
        }
        if let Some((skip, names)) = rdata_names(rtype, &b[rdata..i]) {
            let mut at = rdata + skip;
            for _ in 0..names {
                at = strict_name(&b[..i], at, &mut labels)?;
            }
        }
        rrs.push(Rr { start, end: i, rtype, ttl_at, ttl, section });
    }
    Some(Walk { id, flags, question_end, rrs })
}

/// Where names sit in the RDATA of the types whose names may be
/// compressed (RFC 1035 3.3 and those written the same way since: RP,
/// AFSDB, RT, PX, SRV, KX, DNAME), and of those that must not be but that
/// decoders (hickory's among them) read pointers in all the same: NAPTR,
/// SIG, RRSIG, NSEC, SVCB, HTTPS, TKEY, TSIG, ANAME. The offset of the
/// first name in `rdata` (a record's RDATA) and how many follow one
/// another; `None` when it holds none (or not whole).
fn rdata_names(rtype: u16, rdata: &[u8]) -> Option<(usize, usize)> {
    match rtype {
        // NS MD MF CNAME MB MG MR PTR DNAME NSEC TKEY TSIG ANAME
        2..=5 | 7..=9 | 12 | 39 | 47 | 249 | 250 | 65305 => Some((0, 1)),
        6 | 14 | 17 => Some((0, 2)),                 // SOA MINFO RP
        15 | 18 | 21 | 36 | 64 | 65 => Some((2, 1)), // MX AFSDB RT KX SVCB HTTPS
        26 => Some((2, 2)),                          // PX
        33 => Some((6, 1)),                          // SRV
        24 | 46 => Some((18, 1)),                    // SIG RRSIG
        35 => {
            // NAPTR: order, preference, three character-strings, the name.
            let mut at = 4;
            for _ in 0..3 {
                at += 1 + *rdata.get(at)? as usize;
            }
            Some((at, 1))
        }
        _ => None,
    }
}

/// The offsets at which labels of the names read so far start: where a
/// compression pointer may point.
struct Labels(Vec<u64>);

impl Labels {
    fn new(len: usize) -> Self {
        Labels(vec![0; len / 64 + 1])
    }

    fn add(&mut self, i: usize) {
        if let Some(w) = self.0.get_mut(i / 64) {
            *w |= 1 << (i % 64);
        }
    }

    fn has(&self, i: usize) -> bool {
        self.0.get(i / 64).is_some_and(|w| w & (1 << (i % 64)) != 0)
    }
}

/// Reads the name at `i` and notes its labels; where it ends, or `None`
/// when it runs past `b` or a pointer points anywhere but at a label of an
/// earlier name.
fn strict_name(b: &[u8], mut i: usize, labels: &mut Labels) -> Option<usize> {
    let start = i;
    loop {
        let len = *b.get(i)? as usize;
        match len & 0xC0 {
            0x00 => {
                labels.add(i);
                if len == 0 {
                    return Some(i + 1);
                }
                i += len + 1;
            }
            0xC0 => {
                let target = ((len & 0x3F) << 8) | *b.get(i + 1)? as usize;
                return (target < start && labels.has(target)).then_some(i + 2);
            }
            _ => return None, // reserved label types
        }
    }
}

/// The lowercase-insensitive equality of two wire names written out in full.
pub fn same_name(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.eq_ignore_ascii_case(y))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(name: &str, qtype: u16, edns: Option<(u16, bool)>) -> Vec<u8> {
        let mut out = Vec::new();
        header(&mut out, 7, FLAG_RD, [1, 0, 0, u16::from(edns.is_some())]);
        for l in name.trim_end_matches('.').split('.') {
            out.push(l.len() as u8);
            out.extend_from_slice(l.as_bytes());
        }
        out.push(0);
        out.extend_from_slice(&qtype.to_be_bytes());
        out.extend_from_slice(&CLASS_IN.to_be_bytes());
        if let Some((size, dnssec)) = edns {
            out.push(0);
            out.extend_from_slice(&TYPE_OPT.to_be_bytes());
            out.extend_from_slice(&size.to_be_bytes());
            out.extend_from_slice(&[0, 0, if dnssec { 0x80 } else { 0 }, 0, 0, 0]);
        }
        out
    }

    #[test]
    fn the_do_bit_is_read_and_copied() {
        let q = query("a.example", TYPE_A, Some((4096, true)));
        let Parsed::Query(p) = parse(&q) else { panic!("parses") };
        assert!(p.dnssec_ok());
        let mut out = Vec::new();
        empty_reply(&mut out, &p, RCODE_REFUSED);
        let w = walk(&out).unwrap();
        let opt = w.rrs.iter().find(|r| r.rtype == TYPE_OPT).unwrap();
        assert_eq!(out[opt.ttl_at + 2] & 0x80, 0x80, "DO copied");
        assert_eq!(w.rcode(), RCODE_REFUSED);
    }

    #[test]
    fn walk_finds_every_record_and_refuses_short_ones() {
        let q = query("a.example", TYPE_A, Some((1232, false)));
        let w = walk(&q).unwrap();
        assert_eq!(w.rrs.len(), 1);
        assert_eq!(w.rrs[0].section, 2);
        assert!(walk(&q[..q.len() - 1]).is_none());
        assert!(walk(&q[..5]).is_none());
    }

    /// Which compression pointers and OPTs an upstream's reply may carry.
    #[test]
    fn walk_takes_pointers_only_to_earlier_names() {
        let q = query("a.example", TYPE_A, None); // question name at 12..23
        let rr = |owner: &[u8], rtype: u16, rdata: &[u8]| {
            let mut r = owner.to_vec();
            r.extend_from_slice(&rtype.to_be_bytes());
            r.extend_from_slice(&[0, 1, 0, 0, 0, 60]);
            r.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
            r.extend_from_slice(rdata);
            r
        };
        let opt = [0, 0, 41, 4, 0xD0, 0, 0, 0, 0, 0, 0];
        let msg = |counts: [u16; 4], records: &[Vec<u8>]| {
            let mut m = q.clone();
            set_counts(&mut m, counts);
            records.iter().for_each(|r| m.extend_from_slice(r));
            m
        };
        // The CNAME's target (at 39) is a name a later owner may point at.
        let cname = rr(&[0xC0, 12], TYPE_CNAME, b"\x01b\x07example\x00");
        let rows: [(&str, Vec<u8>, bool); 8] = [
            ("owner -> question", msg([1, 1, 0, 0], &[rr(&[0xC0, 12], TYPE_A, &[1; 4])]), true),
            ("owner -> a later label of the question", msg([1, 1, 0, 0], &[rr(&[0xC0, 14], TYPE_A, &[1; 4])]), true),
            ("owner -> a CNAME's target", msg([1, 2, 0, 0], &[cname, rr(&[0xC0, 39], TYPE_A, &[1; 4])]), true),
            ("owner -> the header", msg([1, 1, 0, 0], &[rr(&[0xC0, 11], TYPE_A, &[1; 4])]), false),
            ("owner -> inside a label", msg([1, 1, 0, 0], &[rr(&[0xC0, 13], TYPE_A, &[1; 4])]), false),
            (
                "owner -> A RDATA",
                msg([1, 2, 0, 0], &[rr(&[0xC0, 12], TYPE_A, &[0; 4]), rr(&[0xC0, 39], 1, &[1; 4])]),
                false,
            ),
            ("OPT last in additional", msg([1, 0, 0, 1], &[opt.to_vec()]), true),
            ("OPT in the answer section", msg([1, 1, 0, 0], &[opt.to_vec()]), false),
        ];
        for (what, m, ok) in rows {
            assert_eq!(walk(&m).is_some(), ok, "{what}");
        }
        // Pointing forward, or at itself, never.
        let mut m = msg([1, 1, 0, 0], &[rr(&[0xC0, 0], TYPE_A, &[1; 4])]);
        let at = m.len() - 16;
        m[at + 1] = at as u8;
        assert!(walk(&m).is_none(), "a pointer at itself");
    }
}
