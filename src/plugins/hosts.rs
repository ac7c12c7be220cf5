//! `hosts [FILE [ZONES...]] { INLINE...; ttl N; reload DUR; no_reverse;
//! fallthrough [ZONES...] }`: names from a hosts file (k3s's NodeHosts)
//! and from lines written in the block, as CoreDNS's `hosts` plugin.
//!
//! A and AAAA come from the entries, PTR from their addresses (unless
//! `no_reverse`). A name in the table without the asked type is NODATA. A
//! name not in it passes on with `fallthrough`, else is SERVFAIL (there is
//! no SOA to make an NXDOMAIN with: CoreDNS's choice, kept). The table is
//! read again when the file changes (checked every `reload`); the answers
//! are encoded when it is read, so a question is a lookup and a copy. A
//! file that cannot be read keeps the last table.

use crate::metrics::Source;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;

use super::message::{self, CLASS_IN, Done, TYPE_A, TYPE_AAAA, TYPE_PTR};
use super::{Request, in_zones, zone_key};
use crate::corefile;
use crate::records::wire::QNAME_PTR;

/// One name's prepared answers.
#[derive(Default)]
struct Entry {
    a: Vec<u8>,
    a_count: u16,
    aaaa: Vec<u8>,
    aaaa_count: u16,
}

#[derive(Default)]
struct Table {
    names: HashMap<Box<[u8]>, Entry>,
    /// Reverse name -> PTR records.
    reverse: HashMap<Box<[u8]>, (Vec<u8>, u16)>,
}

pub struct Hosts {
    zones: Vec<Box<[u8]>>,
    fallthrough: Option<Vec<Box<[u8]>>>,
    table: ArcSwap<Table>,
    cfg: corefile::Hosts,
    /// Entries in the table (`coredns_hosts_entries`).
    entries: Arc<AtomicU64>,
    /// What the file looked like when last read: (modified, length).
    seen: std::sync::Mutex<Option<(SystemTime, u64)>>,
}

/// The reverse name of an address, as a lookup key.
fn reverse_key(ip: &IpAddr) -> Option<Box<[u8]>> {
    let text = match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            format!("{}.{}.{}.{}.in-addr.arpa.", o[3], o[2], o[1], o[0])
        }
        IpAddr::V6(v6) => {
            let mut s = String::with_capacity(74);
            for b in v6.octets().iter().rev() {
                s.push_str(&format!("{:x}.{:x}.", b & 0xF, b >> 4));
            }
            s.push_str("ip6.arpa.");
            s
        }
    };
    zone_key(&text)
}

/// Parses hosts-file text into (address, names) pairs; bad lines are
/// skipped, as every resolver does.
fn parse(text: &str) -> Vec<(IpAddr, Vec<String>)> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("");
        let mut fields = line.split_whitespace();
        let Some(addr) = fields.next() else { continue };
        // Zone indexes (fe80::1%eth0) are not part of the address.
        let Ok(ip) = addr.split('%').next().unwrap_or(addr).parse::<IpAddr>() else { continue };
        let names: Vec<String> = fields.map(|n| n.trim_end_matches('.').to_ascii_lowercase() + ".").collect();
        if !names.is_empty() {
            out.push((ip, names));
        }
    }
    out
}

impl Hosts {
    pub fn new(cfg: &corefile::Hosts, entries: Arc<AtomicU64>) -> Arc<Self> {
        let hosts = Arc::new(Hosts {
            zones: cfg.zones.iter().filter_map(|z| zone_key(z)).collect(),
            fallthrough: cfg.fallthrough.as_ref().map(|z| z.iter().filter_map(|z| zone_key(z)).collect()),
            table: ArcSwap::from_pointee(Table::default()),
            cfg: cfg.clone(),
            entries,
            seen: std::sync::Mutex::new(None),
        });
        hosts.reload(true);
        hosts
    }

    /// How often to look at the file (zero: never).
    pub fn interval(&self) -> Duration {
        self.cfg.reload
    }

    /// Reads the file again if it changed (or `force`), rebuilding the table.
    pub fn reload(&self, force: bool) {
        let meta = std::fs::metadata(&self.cfg.file).ok();
        let stamp = meta.as_ref().and_then(|m| Some((m.modified().ok()?, m.len())));
        if let Ok(mut seen) = self.seen.lock() {
            if !force && *seen == stamp {
                return;
            }
            *seen = stamp;
        }
        let file_text = match std::fs::read_to_string(&self.cfg.file) {
            Ok(t) => Some(t),
            Err(e) => {
                tracing::warn!(file = %self.cfg.file.display(), error = %e, "hosts: cannot read the file");
                // Keep what was read before; the inline entries stand alone
                // only at the first read.
                if !force {
                    return;
                }
                None
            }
        };
        let mut pairs = parse(file_text.as_deref().unwrap_or(""));
        // Inline entries come after the file's and add to them.
        pairs.extend(parse(&self.cfg.inline.join("\n")));
        let table = self.build(&pairs);
        self.entries.store(table.names.len() as u64, Ordering::Relaxed);
        self.table.store(Arc::new(table));
    }

    fn build(&self, pairs: &[(IpAddr, Vec<String>)]) -> Table {
        let ttl = self.cfg.ttl;
        let mut t = Table::default();
        for (ip, names) in pairs {
            for name in names {
                let Some(key) = zone_key(name) else { continue };
                let e = t.names.entry(key).or_default();
                match ip {
                    IpAddr::V4(v4) => {
                        message::push_record(&mut e.a, &QNAME_PTR, TYPE_A, CLASS_IN, ttl, &v4.octets());
                        e.a_count += 1;
                    }
                    IpAddr::V6(v6) => {
                        message::push_record(&mut e.aaaa, &QNAME_PTR, TYPE_AAAA, CLASS_IN, ttl, &v6.octets());
                        e.aaaa_count += 1;
                    }
                }
            }
            if self.cfg.no_reverse {
                continue;
            }
            let Some(rev) = reverse_key(ip) else { continue };
            let (records, count) = t.reverse.entry(rev).or_default();
            for name in names {
                if let Some(target) = zone_key(name) {
                    message::push_record(records, &QNAME_PTR, TYPE_PTR, CLASS_IN, ttl, &target);
                    *count += 1;
                }
            }
        }
        t
    }

    pub fn serve(&self, req: &Request, out: &mut Vec<u8>) -> Option<Done> {
        let q = &req.q;
        let in_zone = in_zones(req.key, &self.zones);
        // PTR zones need not be among the plugin's zones (as CoreDNS).
        if !in_zone && q.qtype != TYPE_PTR {
            return None;
        }
        let table = self.table.load();
        // One lookup: the name's entry serves A, AAAA and "does it exist".
        let entry = table.names.get(req.key);
        let (records, count): (&[u8], u16) = match (q.qtype, entry) {
            (TYPE_PTR, _) => match table.reverse.get(req.key) {
                Some((r, n)) => (r, *n),
                None => return None,
            },
            (TYPE_A, Some(e)) => (&e.a, e.a_count),
            (TYPE_AAAA, Some(e)) => (&e.aaaa, e.aaaa_count),
            _ => (&[], 0),
        };
        if count == 0 && entry.is_none() {
            if self.fallthrough.as_ref().is_some_and(|z| in_zones(req.key, z)) {
                return None;
            }
            message::empty_reply(out, q, message::RCODE_SERVFAIL);
            return Some(Done { qtype: q.qtype, rcode: message::RCODE_SERVFAIL.into(), plugin: Source::Hosts });
        }
        message::begin(out, q);
        out.extend_from_slice(records);
        message::set_counts(out, [1, count, 0, 0]);
        message::add_opt(out, q, 0);
        message::end(out, q, message::RCODE_NOERROR, true);
        Some(Done { qtype: q.qtype, rcode: 0, plugin: Source::Hosts })
    }
}

/// Looks at the hosts files every `reload` and reads changed ones.
pub fn spawn_reloads(hosts: Vec<Arc<Hosts>>, cancel: tokio_util::sync::CancellationToken) {
    for h in hosts {
        let every = h.interval();
        if every.is_zero() {
            continue;
        }
        let cancel = cancel.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tokio::time::sleep(every) => {}
                }
                let h = h.clone();
                let _ = tokio::task::spawn_blocking(move || h.reload(false)).await;
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_lines_parse_as_resolvers_read_them() {
        let got = parse("# k3s NodeHosts\n172.18.0.2 agent-1\n::1 localhost ip6-localhost # comment\nbad line\n\n");
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].1, vec!["agent-1.".to_string()]);
        assert_eq!(got[1].1, vec!["localhost.".to_string(), "ip6-localhost.".to_string()]);
        let key = reverse_key(&"10.1.2.3".parse().unwrap()).unwrap();
        assert_eq!(key, zone_key("3.2.1.10.in-addr.arpa.").unwrap());
    }
}
