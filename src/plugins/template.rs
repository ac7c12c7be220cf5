//! `template CLASS TYPE [ZONES...] { match REGEX...; answer RR; additional
//! RR; authority RR; rcode CODE; fallthrough [ZONES...] }`: answers made
//! from the question, as CoreDNS's `template` plugin (AKS ships two).
//!
//! A question in the template's zones, class and type is matched against
//! each regex (the lowercase name with its final dot); the first match
//! renders the RR lines with the question's fields and the regex's groups
//! and answers with them and the rcode, authoritatively. No match: SERVFAIL
//! (CoreDNS since 1.9.2), or the next plugin with `fallthrough`. Questions outside the zones,
//! class or type go to the next template or plugin.

use crate::metrics::Source;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use hickory_proto::rr::{DNSClass, Name, Record, RecordType};
use hickory_proto::serialize::binary::{BinEncodable, BinEncoder, NameEncoding};
use hickory_proto::serialize::txt::Parser;

use super::message::{self, Done};
use super::{Request, in_zones, zone_key};
use crate::corefile::{self, TemplatePiece};

/// What a template does with a question.
pub enum Outcome {
    /// Not for this template: the next template or plugin.
    Pass,
    /// Answered (the response is written).
    Answered(Done),
}

pub struct Template {
    cfg: corefile::Template,
    zones: Vec<Box<[u8]>>,
    fallthrough: Option<Vec<Box<[u8]>>>,
    /// `coredns_template_matches_total`, and RR lines that did not render.
    pub matches: Arc<AtomicU64>,
    pub failures: Arc<AtomicU64>,
}

/// The text form of a lowercase wire name, with its final dot.
fn text_of(key: &[u8]) -> String {
    let mut out = String::with_capacity(key.len());
    let mut i = 0;
    while let Some(&len) = key.get(i) {
        if len == 0 {
            break;
        }
        let label = key.get(i + 1..i + 1 + len as usize).unwrap_or(&[]);
        for &b in label {
            match b {
                b'.' | b'\\' => {
                    out.push('\\');
                    out.push(b as char);
                }
                0x21..=0x7E => out.push(b as char),
                _ => out.push_str(&format!("\\{b:03}")),
            }
        }
        out.push('.');
        i += len as usize + 1;
    }
    if out.is_empty() {
        out.push('.');
    }
    out
}

impl Template {
    pub fn new(cfg: &corefile::Template, matches: Arc<AtomicU64>, failures: Arc<AtomicU64>) -> Self {
        Template {
            zones: cfg.zones.iter().filter_map(|z| zone_key(z)).collect(),
            fallthrough: cfg.fallthrough.as_ref().map(|z| z.iter().filter_map(|z| zone_key(z)).collect()),
            cfg: cfg.clone(),
            matches,
            failures,
        }
    }

    pub fn serve(&self, req: &Request, out: &mut Vec<u8>) -> Outcome {
        let q = &req.q;
        // A question of class or type ANY matches any template (CoreDNS).
        if !in_zones(req.key, &self.zones)
            || self.cfg.class.is_some_and(|c| c != q.qclass && q.qclass != message::CLASS_ANY)
            || self.cfg.qtype.is_some_and(|t| t != q.qtype && q.qtype != message::TYPE_ANY)
        {
            return Outcome::Pass;
        }
        let name = text_of(req.key);
        let caps = self.cfg.matches.iter().find_map(|re| re.captures(&name).map(|c| (re, c)));
        let Some((re, caps)) = caps else {
            if self.fallthrough.as_ref().is_some_and(|z| in_zones(req.key, z)) {
                return Outcome::Pass;
            }
            // No regex matched and no fallthrough: SERVFAIL, as CoreDNS
            // answers since 1.9.2 (the template cannot say what exists).
            message::empty_reply(out, q, message::RCODE_SERVFAIL);
            return Outcome::Answered(Done { qtype: q.qtype, rcode: 2, plugin: Source::Template });
        };
        self.matches.fetch_add(1, Ordering::Relaxed);
        let zone = self
            .cfg
            .zones
            .iter()
            .filter(|z| zone_key(z).is_some_and(|k| super::in_zone(req.key, &k)))
            .max_by_key(|z| z.len())
            .cloned()
            .unwrap_or_else(|| ".".to_string());
        let render = |pieces: &[TemplatePiece]| -> String {
            let mut s = String::new();
            for p in pieces {
                match p {
                    TemplatePiece::Text(t) => s.push_str(t),
                    TemplatePiece::Name => s.push_str(&name),
                    TemplatePiece::Zone => s.push_str(&zone),
                    TemplatePiece::Class => s.push_str(&DNSClass::from(q.qclass).to_string()),
                    TemplatePiece::Type => s.push_str(&RecordType::from(q.qtype).to_string()),
                    TemplatePiece::Remote => s.push_str(&req.peer.ip().to_string()),
                    TemplatePiece::Match(i) => s.push_str(caps.get(*i).map_or("", |m| m.as_str())),
                    TemplatePiece::Group(g) => {
                        let named = re.capture_names().flatten().any(|n| n == g);
                        let m = if named { caps.name(g) } else { g.parse().ok().and_then(|i| caps.get(i)) };
                        s.push_str(m.map_or("", |m| m.as_str()));
                    }
                }
            }
            s
        };
        let mut sections: [Vec<Record>; 3] = Default::default();
        for (section, lines) in [&self.cfg.answer, &self.cfg.authority, &self.cfg.additional].into_iter().enumerate() {
            for line in lines {
                let text = render(line);
                match parse_rr(&text) {
                    Some(rr) => sections[section].push(rr),
                    None => {
                        self.failures.fetch_add(1, Ordering::Relaxed);
                        tracing::debug!(rr = %text, "template: not a resource record");
                    }
                }
            }
        }
        message::begin(out, q);
        let max = req.max_size();
        let reserve = if q.edns.is_some() { message::OPT_LEN } else { 0 };
        let mut counts = [1u16, 0, 0, 0];
        let mut truncated = false;
        let mut bytes = Vec::new();
        'sections: for (section, records) in sections.iter().enumerate() {
            for rr in records {
                bytes.clear();
                let mut enc = BinEncoder::new(&mut bytes);
                // Each record is encoded on its own: a compression pointer
                // would count from the start of its buffer, not of `out`.
                enc.set_name_encoding(NameEncoding::Uncompressed);
                if rr.emit(&mut enc).is_err() {
                    continue;
                }
                // SPEC.md 4: whole records only, within the client's size;
                // an answer that does not fit sets TC and ends the response,
                // authority and additional records are left out silently.
                if out.len() + bytes.len() + reserve > max {
                    if section == 0 {
                        truncated = true;
                        break 'sections;
                    }
                    continue;
                }
                out.extend_from_slice(&bytes);
                counts[section + 1] += 1;
            }
        }
        message::set_counts(out, counts);
        if truncated {
            let flags = message::u16_at(out, 2).unwrap_or(0) | message::FLAG_TC;
            out[2..4].copy_from_slice(&flags.to_be_bytes());
        }
        message::add_opt(out, q, 0);
        let rcode = (self.cfg.rcode & 0xF) as u8;
        message::end(out, q, rcode, true);
        Outcome::Answered(Done { qtype: q.qtype, rcode: self.cfg.rcode, plugin: Source::Template })
    }
}

/// One RR in zone-file text (`name TTL CLASS TYPE RDATA`), relative names
/// taken from the root, as CoreDNS's `dns.NewRR` reads them.
fn parse_rr(text: &str) -> Option<Record> {
    let (_, sets) = Parser::new(text, None, Some(Name::root())).parse().ok()?;
    sets.into_values().flat_map(|set| set.records_without_rrsigs().cloned().collect::<Vec<_>>()).next()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rr_lines_parse_like_coredns_reads_them() {
        let rr = parse_rr("foo.example.org. 60 IN A 10.0.0.1").unwrap();
        assert_eq!(rr.record_type(), RecordType::A);
        assert_eq!(rr.ttl, 60);
        let rr = parse_rr("foo.example.org. 60 IN CNAME bar.example.org.").unwrap();
        assert_eq!(rr.record_type(), RecordType::CNAME);
        assert!(parse_rr("not a record").is_none());
        assert_eq!(text_of(&zone_key("a.B.c.").unwrap()), "a.b.c.");
        assert_eq!(text_of(&[0]), ".");
    }
}
