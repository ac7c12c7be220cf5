//! `chaos [VERSION] [AUTHORS...]`: TXT questions in class CH for
//! `version.bind`/`version.server` (the version), `authors.bind` (one TXT
//! per author) and `hostname.bind`/`id.server` (this host's name). Other
//! names pass to the next plugin.

use crate::metrics::Source;

use super::Request;
use super::message::{self, CLASS_CH, Done, TYPE_TXT};
use crate::corefile;
use crate::records::wire::QNAME_PTR;

/// Each answer's TXT RDATAs, prepared.
pub struct Chaos {
    version: Vec<Vec<u8>>,
    authors: Vec<Vec<u8>>,
    hostname: Vec<Vec<u8>>,
}

/// One TXT RDATA: the text in 255-byte character strings.
fn txt(text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() + 1);
    for chunk in text.as_bytes().chunks(255) {
        out.push(chunk.len() as u8);
        out.extend_from_slice(chunk);
    }
    if out.is_empty() {
        out.push(0);
    }
    out
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".to_string())
}

impl Chaos {
    pub fn new(cfg: &corefile::Chaos) -> Self {
        Chaos {
            version: vec![txt(&cfg.version)],
            authors: cfg.authors.iter().map(|a| txt(a)).collect(),
            hostname: vec![txt(&hostname())],
        }
    }

    pub fn serve(&self, req: &Request, out: &mut Vec<u8>) -> Option<Done> {
        let q = &req.q;
        if q.qclass != CLASS_CH || q.qtype != TYPE_TXT {
            return None;
        }
        let records = match req.key {
            b"\x07version\x04bind\x00" | b"\x07version\x06server\x00" => &self.version,
            b"\x07authors\x04bind\x00" => &self.authors,
            b"\x08hostname\x04bind\x00" | b"\x02id\x06server\x00" => &self.hostname,
            _ => return None,
        };
        message::begin(out, q);
        for rdata in records {
            message::push_record(out, &QNAME_PTR, TYPE_TXT, CLASS_CH, 0, rdata);
        }
        message::set_counts(out, [1, records.len() as u16, 0, 0]);
        message::add_opt(out, q, 0);
        message::end(out, q, message::RCODE_NOERROR, true);
        Some(Done { qtype: q.qtype, rcode: 0, plugin: Source::Chaos })
    }
}
