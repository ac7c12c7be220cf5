//! `log [NAMES...] [FORMAT] { class denial|error|success|all }`: one line
//! per answered question on standard output, in CoreDNS's format:
//!
//! ```text
//! [INFO] 10.244.0.1:51015 - 15035 "A IN example.org. udp 29 false 512" NOERROR qr,rd,ra 45 0.000231946s
//! ```
//!
//! Nothing of it runs unless the directive is there.

use std::io::Write;
use std::time::Duration;

use super::message::{rcode_name, u16_at};
use super::{Request, in_zones, zone_key};
use crate::corefile;

pub struct Log {
    names: Vec<Box<[u8]>>,
    format: String,
    classes: corefile::LogClasses,
}

fn type_name(t: u16) -> String {
    hickory_proto::rr::RecordType::from(t).to_string()
}

fn class_name(c: u16) -> String {
    match c {
        1 => "IN".into(),
        3 => "CH".into(),
        4 => "HS".into(),
        254 => "NONE".into(),
        255 => "ANY".into(),
        n => format!("CLASS{n}"),
    }
}

/// The question name as the client wrote it, with its final dot.
pub fn name_of(wire: &[u8]) -> String {
    let mut out = String::new();
    let mut i = 0;
    while let Some(&len) = wire.get(i) {
        if len == 0 {
            break;
        }
        for &b in wire.get(i + 1..i + 1 + len as usize).unwrap_or(&[]) {
            if b.is_ascii_graphic() && b != b'.' && b != b'\\' {
                out.push(b as char);
            } else {
                out.push_str(&format!("\\{b:03}"));
            }
        }
        out.push('.');
        i += len as usize + 1;
    }
    if out.is_empty() { ".".into() } else { out }
}

/// The response's flags as CoreDNS writes them: `qr,aa,tc,rd,ra,...`.
fn rflags(flags: u16) -> String {
    let names = [
        (0x8000, "qr"),
        (0x0400, "aa"),
        (0x0200, "tc"),
        (0x0100, "rd"),
        (0x0080, "ra"),
        (0x0020, "ad"),
        (0x0010, "cd"),
    ];
    names.iter().filter(|(bit, _)| flags & bit != 0).map(|(_, n)| *n).collect::<Vec<_>>().join(",")
}

impl Log {
    pub fn new(cfg: &corefile::Log) -> Self {
        Log {
            names: cfg.names.iter().filter_map(|n| zone_key(n)).collect(),
            format: cfg.format.clone(),
            classes: cfg.classes,
        }
    }

    /// Writes the line for one answered question, if its name and class of
    /// answer are logged.
    pub fn log(&self, req: &Request, query_len: usize, response: &[u8], took: Duration) {
        if !in_zones(req.key, &self.names) {
            return;
        }
        let flags = u16_at(response, 2).unwrap_or(0);
        let rcode = flags & 0xF;
        let answers = u16_at(response, 6).unwrap_or(0);
        let wanted = match rcode {
            0 if answers > 0 => self.classes.success,
            0 | 3 => self.classes.denial,
            _ => self.classes.error,
        };
        if !wanted {
            return;
        }
        let line = self.render(req, query_len, response.len(), flags, took);
        let mut stdout = std::io::stdout().lock();
        let _ = writeln!(stdout, "[INFO] {line}");
    }

    fn render(&self, req: &Request, size: usize, rsize: usize, flags: u16, took: Duration) -> String {
        let q = &req.q;
        let mut out = String::with_capacity(self.format.len() + 64);
        let mut rest = self.format.as_str();
        while let Some(open) = rest.find('{') {
            out.push_str(&rest[..open]);
            let Some(close) = rest[open..].find('}') else {
                out.push_str(&rest[open..]);
                rest = "";
                break;
            };
            let key = &rest[open + 1..open + close];
            let value = match key {
                "remote" => req.peer.ip().to_string(),
                "port" => req.peer.port().to_string(),
                ">id" => q.id.to_string(),
                "type" => type_name(q.qtype),
                "class" => class_name(q.qclass),
                "name" => name_of(q.qname),
                "proto" => (if req.udp { "udp" } else { "tcp" }).to_string(),
                "size" => size.to_string(),
                ">do" => q.dnssec_ok().to_string(),
                ">bufsize" => q.edns.map_or(512, |e| e.payload).to_string(),
                "rcode" => rcode_name(flags & 0xF),
                ">rflags" => rflags(flags),
                "rsize" => rsize.to_string(),
                "duration" => format!("{}s", took.as_secs_f64()),
                ">opcode" => ((q.flags >> 11) & 0xF).to_string(),
                _ => format!("{{{key}}}"),
            };
            out.push_str(&value);
            rest = &rest[open + close + 1..];
        }
        out.push_str(rest);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::message::{self, Parsed, parse};

    #[test]
    fn the_common_format_reads_as_coredns_writes_it() {
        let cfg = corefile::Log {
            names: vec![".".into()],
            format: "{remote}:{port} - {>id} \"{type} {class} {name} {proto} {size} {>do} {>bufsize}\" {rcode} {>rflags} {rsize} {duration}".into(),
            classes: corefile::LogClasses { success: true, denial: true, error: true },
        };
        let log = Log::new(&cfg);
        let mut query = Vec::new();
        message::header(&mut query, 15035, message::FLAG_RD, [1, 0, 0, 0]);
        query.extend_from_slice(b"\x07example\x03org\x00\x00\x01\x00\x01");
        let Parsed::Query(q) = parse(&query) else { panic!() };
        let req = Request {
            q,
            key: b"\x07example\x03org\x00",
            udp: true,
            peer: "10.244.0.1:51015".parse().unwrap(),
            cap: 1232,
        };
        let line = log.render(&req, 29, 45, 0x8180, Duration::from_micros(231));
        assert_eq!(
            line,
            "10.244.0.1:51015 - 15035 \"A IN example.org. udp 29 false 512\" NOERROR qr,rd,ra 45 0.000231s"
        );
    }
}
