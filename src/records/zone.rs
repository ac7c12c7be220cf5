//! The zone snapshot (SPEC.md 5): the whole cluster zone in RFC 1035
//! master-file form, names in canonical order (RFC 4034 6.1), the serial
//! replaced by 0, reverse records as their own zones.

use std::fmt::Write;

use hickory_proto::rr::{Name, RData, RecordType};

use super::ZoneConfig;
use super::build::owner_nodes;
use super::wire::srv_weight;
use crate::model::Cluster;

/// One line of the snapshot with what orders it: the zone, apex SOA/NS
/// first, canonical name order, type (SOA first), then the text.
type Line = (usize, bool, Box<[u8]>, u16, String);

/// Renders every record the cluster answers. Lines are built owner by
/// owner and sorted once, so a 100k-Service cluster costs its text, not a
/// second model.
pub fn render_zone(cluster: &Cluster, cfg: &ZoneConfig) -> String {
    let apexes = cfg.apexes();
    let mut lines: Vec<Line> = Vec::new();
    for owner in cluster.owners() {
        for node in owner_nodes(cluster, cfg, &owner, 0) {
            let Some(zone) = apexes.iter().position(|a| a.zone_of(&node.name)) else { continue };
            let key = canonical_key(&node.name);
            let rel = relative(&node.name, apexes[zone]);
            for r in &node.records {
                let ty = r.record_type();
                // SOA and NS of the apex first (SPEC.md 5).
                let head = node.name == *apexes[zone] && matches!(ty, RecordType::SOA | RecordType::NS);
                let order = if ty == RecordType::SOA { 0 } else { u16::from(ty) };
                let text = match &r.data {
                    // The weight is the RRset's, written once it is whole.
                    RData::SRV(s) => {
                        format!("{rel} {} IN SRV {} {WEIGHT}{} {}", r.ttl, s.priority, s.port, s.target.to_ascii())
                    }
                    data => format!("{rel} {} IN {ty} {}", r.ttl, rdata_text(data)),
                };
                lines.push((zone, !head, key.clone(), order, text));
            }
        }
    }
    lines.sort_unstable();
    lines.dedup_by(|a, b| a.0 == b.0 && a.4 == b.4);
    let mut out = String::new();
    for (zone, apex) in apexes.iter().enumerate() {
        let _ = writeln!(out, "$ORIGIN {apex}");
        let mine: Vec<&Line> = lines.iter().filter(|l| l.0 == zone).collect();
        let mut at = 0;
        while at < mine.len() {
            // One RRset: the lines of one name and type.
            let same = |l: &&&Line| l.2 == mine[at].2 && l.3 == mine[at].3;
            let end = at + mine[at..].iter().take_while(same).count();
            let srv = mine[at].3 == u16::from(RecordType::SRV);
            let weight = if srv { format!("{} ", srv_weight(end - at)) } else { String::new() };
            for line in &mine[at..end] {
                match srv {
                    true => out.push_str(&line.4.replacen(WEIGHT, &weight, 1)),
                    false => out.push_str(&line.4),
                }
                out.push('\n');
            }
            at = end;
        }
    }
    out
}

/// Stands for an SRV record's weight until its RRset is whole; a NUL is
/// never in a name's text (it is escaped as `\000`).
const WEIGHT: &str = "\0";

/// RDATA in master-file form; character strings quoted (RFC 1035 5.1),
/// names in their escaped ASCII form, never IDNA-decoded (the answer's
/// bytes, whatever the label).
fn rdata_text(data: &RData) -> String {
    match data {
        RData::CNAME(n) => n.0.to_ascii(),
        RData::PTR(n) => n.0.to_ascii(),
        RData::NS(n) => n.0.to_ascii(),
        RData::SOA(s) => format!(
            "{} {} {} {} {} {} {}",
            s.mname.to_ascii(),
            s.rname.to_ascii(),
            s.serial,
            s.refresh,
            s.retry,
            s.expire,
            s.minimum
        ),
        RData::TXT(txt) => txt
            .txt_data
            .iter()
            .map(|s| format!("\"{}\"", String::from_utf8_lossy(s).replace('\\', "\\\\").replace('"', "\\\"")))
            .collect::<Vec<_>>()
            .join(" "),
        other => other.to_string(),
    }
}

/// A byte string whose order is the canonical name order (RFC 4034 6.1):
/// labels from the root down, lower case, each ended by a zero byte (so a
/// shorter label sorts before a longer one it begins).
fn canonical_key(name: &Name) -> Box<[u8]> {
    let labels: Vec<&[u8]> = name.iter().collect();
    let mut key = Vec::with_capacity(name.len() + 2);
    for label in labels.iter().rev() {
        key.extend(label.iter().map(u8::to_ascii_lowercase));
        key.push(0);
    }
    key.into_boxed_slice()
}

/// `name` relative to `apex` (`@` for the apex itself).
fn relative(name: &Name, apex: &Name) -> String {
    if name == apex {
        return "@".to_string();
    }
    let keep = (name.num_labels() - apex.num_labels()) as usize;
    // Each label escaped as the master-file format needs (`\.` for a dot
    // inside a label), so the snapshot names what the server answers.
    let labels: Vec<String> = name
        .iter()
        .take(keep)
        .map(|l| match hickory_proto::rr::Label::from_raw_bytes(l) {
            Ok(label) => label.to_ascii().to_ascii_lowercase(),
            Err(_) => String::from_utf8_lossy(l).to_ascii_lowercase(),
        })
        .collect();
    labels.join(".")
}
