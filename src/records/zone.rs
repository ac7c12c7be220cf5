//! The zone snapshot (SPEC.md 5): the whole cluster zone in RFC 1035
//! master-file form, names in canonical order (RFC 4034 6.1), the serial
//! replaced by 0, reverse records as their own zones.

use std::collections::BTreeMap;
use std::fmt::Write;

use hickory_proto::rr::{Name, Record, RecordType};

use super::ZoneConfig;
use super::build::owner_nodes;
use crate::model::Cluster;

/// Renders every record the cluster answers.
pub fn render_zone(cluster: &Cluster, cfg: &ZoneConfig) -> String {
    let mut names: BTreeMap<Name, Vec<Record>> = BTreeMap::new();
    for owner in cluster.owners() {
        for node in owner_nodes(cluster, cfg, &owner, 0) {
            names.entry(node.name).or_default().extend(node.records);
        }
    }
    let mut out = String::new();
    for apex in cfg.apexes() {
        let _ = writeln!(out, "$ORIGIN {apex}");
        let mut lines: Vec<(bool, &Name, u16, String)> = Vec::new();
        for (name, records) in names.range(apex.clone()..) {
            if !apex.zone_of(name) {
                continue;
            }
            for r in records {
                let rel = relative(name, apex);
                let ty = r.record_type();
                // SOA and NS of the apex first (SPEC.md 5).
                let head = name == apex && matches!(ty, RecordType::SOA | RecordType::NS);
                let rdata = match &r.data {
                    // Character strings are quoted in master files (RFC 1035 5.1).
                    hickory_proto::rr::RData::TXT(txt) => txt
                        .txt_data
                        .iter()
                        .map(|s| {
                            format!("\"{}\"", String::from_utf8_lossy(s).replace('\\', "\\\\").replace('"', "\\\""))
                        })
                        .collect::<Vec<_>>()
                        .join(" "),
                    other => other.to_string(),
                };
                let text = format!("{rel} {} IN {ty} {rdata}", r.ttl);
                lines.push((!head, name, u16::from(ty), text));
            }
        }
        // Apex SOA/NS, then canonical name order, type number, record text.
        lines.sort_by(|a, b| {
            (a.0, a.1, if a.2 == 6 { 0 } else { a.2 }, &a.3).cmp(&(b.0, b.1, if b.2 == 6 { 0 } else { b.2 }, &b.3))
        });
        lines.dedup_by(|a, b| a.3 == b.3);
        for (_, _, _, line) in lines {
            out.push_str(&line);
            out.push('\n');
        }
    }
    out
}

/// `name` relative to `apex` (`@` for the apex itself).
fn relative(name: &Name, apex: &Name) -> String {
    if name == apex {
        return "@".to_string();
    }
    let keep = (name.num_labels() - apex.num_labels()) as usize;
    let labels: Vec<String> = name.iter().take(keep).map(|l| String::from_utf8_lossy(l).to_ascii_lowercase()).collect();
    labels.join(".")
}
