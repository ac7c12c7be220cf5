//! Values as CoreDNS reads them: Go durations and integers, zones (with
//! CIDR reverse zones), listen addresses, and the DNS type, class and rcode
//! mnemonics of miekg/dns.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use ipnet::IpNet;

use super::CorefileError;
use super::lexer::Token;

/// Go's `time.ParseDuration`: `[-+]?([0-9]*(\.[0-9]*)?[a-z]+)+`, or `0`.
/// Returns nanoseconds.
pub(crate) fn go_duration(s: &str) -> Result<i64, String> {
    let bad = || format!("invalid duration \"{s}\"");
    let (neg, mut rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(bad());
    }
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let int_len = rest.bytes().take_while(u8::is_ascii_digit).count();
        let int_part = &rest[..int_len];
        rest = &rest[int_len..];
        let mut frac = "";
        if let Some(r) = rest.strip_prefix('.') {
            let n = r.bytes().take_while(u8::is_ascii_digit).count();
            frac = &r[..n];
            rest = &r[n..];
            if int_part.is_empty() && frac.is_empty() {
                return Err(bad());
            }
        } else if int_part.is_empty() {
            return Err(bad());
        }
        let unit_len = rest.find(|c: char| c == '.' || c.is_ascii_digit()).unwrap_or(rest.len());
        if unit_len == 0 {
            return Err(format!("missing unit in duration \"{s}\""));
        }
        let unit: u128 = match &rest[..unit_len] {
            "ns" => 1,
            "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            u => return Err(format!("unknown unit \"{u}\" in duration \"{s}\"")),
        };
        rest = &rest[unit_len..];
        let whole: u128 = if int_part.is_empty() { 0 } else { int_part.parse().map_err(|_| bad())? };
        let mut part = whole.checked_mul(unit).ok_or_else(bad)?;
        if !frac.is_empty() {
            // Enough digits for nanoseconds of an hour; the rest cannot matter.
            let digits = &frac[..frac.len().min(18)];
            let f: u128 = digits.parse().map_err(|_| bad())?;
            part += f * unit / 10u128.pow(digits.len() as u32);
        }
        total = total.checked_add(part).ok_or_else(bad)?;
        if total > i64::MAX as u128 {
            return Err(bad());
        }
    }
    let total = total as i64;
    Ok(if neg { -total } else { total })
}

/// A duration argument that must not be negative.
pub(crate) fn duration(tok: &Token) -> Result<Duration, CorefileError> {
    let n = go_duration(&tok.text).map_err(|e| tok.err(e))?;
    if n < 0 {
        return Err(tok.err(format!("negative duration \"{}\"", tok.text)));
    }
    Ok(Duration::from_nanos(n as u64))
}

/// Go's `strconv.Atoi`.
pub(crate) fn int(tok: &Token) -> Result<i64, CorefileError> {
    tok.text.parse::<i64>().map_err(|_| tok.err(format!("invalid number \"{}\"", tok.text)))
}

/// An integer in `lo..=hi`; `what` names it in the error.
pub(crate) fn int_in(tok: &Token, lo: i64, hi: i64, what: &str) -> Result<i64, CorefileError> {
    let n = int(tok)?;
    if n < lo || n > hi {
        return Err(tok.err(format!("{what} must be in [{lo}, {hi}]: {n}")));
    }
    Ok(n)
}

/// The transports CoreDNS recognises as `scheme://` prefixes.
pub(crate) const TRANSPORTS: [&str; 7] = ["dns", "tls", "quic", "grpc", "https3", "https", "unix"];

/// Splits off a `scheme://` prefix (`dns` when there is none).
pub(crate) fn transport(s: &str) -> (&str, &str) {
    for t in TRANSPORTS {
        if let Some(rest) = s.strip_prefix(t).and_then(|r| r.strip_prefix("://")) {
            return (t, rest);
        }
    }
    ("dns", s)
}

/// Lowercase and fully qualified.
pub(crate) fn fqdn(s: &str) -> String {
    let mut z = s.to_ascii_lowercase();
    if !z.ends_with('.') {
        z.push('.');
    }
    z
}

/// Like miekg/dns `IsDomainName`: labels of 1..=63 octets, 255 in all.
pub(crate) fn is_domain_name(s: &str) -> bool {
    if s == "." {
        return true;
    }
    let body = s.strip_suffix('.').unwrap_or(s);
    !body.is_empty()
        && s.len() <= 255
        && !s.contains(|c: char| c.is_whitespace() || c == '/')
        && body.split('.').all(|l| !l.is_empty() && l.len() <= 63)
}

/// The reverse zones a CIDR is authoritative for, split on octet (IPv4) or
/// nibble (IPv6) boundaries as CoreDNS's `cidr.Split` and `cidr.Reverse`.
pub(crate) fn reverse_zones(net: IpNet) -> Vec<String> {
    let net = net.trunc();
    let (step, suffix) = match net {
        IpNet::V4(_) => (8u8, "in-addr.arpa."),
        IpNet::V6(_) => (4u8, "ip6.arpa."),
    };
    let len = net.prefix_len().div_ceil(step) * step;
    let Ok(subnets) = net.subnets(len) else { return Vec::new() };
    subnets
        .map(|n| {
            let labels: Vec<String> = match n.network() {
                IpAddr::V4(a) => a.octets().iter().take(usize::from(len / 8)).map(u8::to_string).collect(),
                IpAddr::V6(a) => a
                    .octets()
                    .iter()
                    .flat_map(|b| [b >> 4, b & 0xf])
                    .take(usize::from(len / 4))
                    .map(|x| format!("{x:x}"))
                    .collect(),
            };
            let mut name: String = labels.iter().rev().map(|l| format!("{l}.")).collect();
            name.push_str(suffix);
            name
        })
        .collect()
}

/// CoreDNS's `plugin.SplitHostPort` on a zone without its transport: the
/// zone(s) (a CIDR gives its reverse zones) and the port, if written.
pub(crate) fn zone_port(s: &str) -> Result<(Vec<String>, Option<u16>), String> {
    let mut host = s;
    let mut port = None;
    if let Some(c) = s.rfind(':') {
        let p = &s[c + 1..];
        if p.is_empty() {
            return Err(format!("expecting data after last colon: \"{s}\""));
        }
        if p.bytes().all(|b| b.is_ascii_digit()) {
            port = Some(p.parse::<u16>().map_err(|_| format!("port {p} out of range in \"{s}\""))?);
            host = &s[..c];
        }
    }
    if host.len() > 255 {
        return Err(format!("specified zone is too long: {} > 255", host.len()));
    }
    if host.contains('/') {
        let bad = || format!("invalid CIDR {host}");
        let net: IpNet = host.parse().map_err(|_| bad())?;
        if host.starts_with(':') || (host.starts_with('0') && host.contains(':')) {
            return Err(bad());
        }
        return Ok((reverse_zones(net), port));
    }
    if host.contains(':') {
        return Err(format!("invalid port in \"{s}\""));
    }
    if !is_domain_name(host) {
        return Err(format!("zone is not a valid domain name: \"{host}\""));
    }
    Ok((vec![fqdn(host)], port))
}

/// CoreDNS's `plugin.Host(s).NormalizeExact()`, with errors reported
/// instead of the zone silently dropped.
pub(crate) fn zones_of(tok: &Token) -> Result<Vec<String>, CorefileError> {
    let (_, rest) = transport(&tok.text);
    zone_port(rest).map(|(z, _)| z).map_err(|e| tok.err(e))
}

/// `OriginsFromArgsOrServerBlock`: the zones written, or else the block's.
pub(crate) fn zones_or_block(args: &[Token], block: &[String]) -> Result<Vec<String>, CorefileError> {
    if args.is_empty() {
        return Ok(block.to_vec());
    }
    let mut out = Vec::new();
    for a in args {
        out.extend(zones_of(a)?);
    }
    Ok(out)
}

/// `fallthrough [ZONES...]`: the root when none are written.
pub(crate) fn fallthrough(args: &[Token]) -> Result<Vec<String>, CorefileError> {
    if args.is_empty() {
        return Ok(vec![".".into()]);
    }
    zones_or_block(args, &[])
}

/// Go's `net.SplitHostPort`.
pub(crate) fn split_host_port(s: &str) -> Result<(&str, &str), String> {
    if let Some(rest) = s.strip_prefix('[') {
        let Some(end) = rest.find(']') else { return Err(format!("missing ']' in address \"{s}\"")) };
        return match rest[end + 1..].strip_prefix(':') {
            Some(port) => Ok((&rest[..end], port)),
            None => Err(format!("missing port in address \"{s}\"")),
        };
    }
    let Some(c) = s.rfind(':') else { return Err(format!("missing port in address \"{s}\"")) };
    if s[..c].contains(':') {
        return Err(format!("too many colons in address \"{s}\""));
    }
    Ok((&s[..c], &s[c + 1..]))
}

pub(crate) fn port(p: &str, whole: &str) -> Result<u16, String> {
    p.parse::<u16>().map_err(|_| format!("invalid port \"{p}\" in address \"{whole}\""))
}

/// An HTTP listen address `[HOST]:PORT`: no host means every IPv4
/// address, `localhost` the IPv4 loopback; other hosts must be IPs.
pub(crate) fn listen_addr(tok: &Token) -> Result<SocketAddr, CorefileError> {
    let (host, p) = split_host_port(&tok.text).map_err(|e| tok.err(e))?;
    let port = port(p, &tok.text).map_err(|e| tok.err(e))?;
    let ip = match host {
        "" => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        "localhost" => IpAddr::V4(Ipv4Addr::LOCALHOST),
        h => h.parse().map_err(|_| {
            tok.err(format!("\"{h}\" in \"{}\" is not an IP address (of host names only localhost is known)", tok.text))
        })?,
    };
    Ok(SocketAddr::new(ip, port))
}

/// A regex error on one line (the crate's syntax errors span several).
pub(crate) fn regex_error(e: &regex::Error) -> String {
    let text = e.to_string();
    let last = text.lines().rev().map(str::trim).find(|l| !l.is_empty()).unwrap_or_default();
    last.trim_start_matches("error: ").to_string()
}

/// miekg/dns `StringToType` (mnemonics in capitals).
pub(crate) fn rr_type(s: &str) -> Option<u16> {
    #[rustfmt::skip]
    const TYPES: &[(&str, u16)] = &[
        ("None", 0), ("A", 1), ("NS", 2), ("MD", 3), ("MF", 4), ("CNAME", 5), ("SOA", 6), ("MB", 7),
        ("MG", 8), ("MR", 9), ("NULL", 10), ("PTR", 12), ("HINFO", 13), ("MINFO", 14), ("MX", 15),
        ("TXT", 16), ("RP", 17), ("AFSDB", 18), ("X25", 19), ("ISDN", 20), ("RT", 21), ("NSAP-PTR", 23),
        ("SIG", 24), ("KEY", 25), ("PX", 26), ("GPOS", 27), ("AAAA", 28), ("LOC", 29), ("NXT", 30),
        ("EID", 31), ("NIMLOC", 32), ("SRV", 33), ("ATMA", 34), ("NAPTR", 35), ("KX", 36), ("CERT", 37),
        ("DNAME", 39), ("OPT", 41), ("APL", 42), ("DS", 43), ("SSHFP", 44), ("IPSECKEY", 45), ("RRSIG", 46),
        ("NSEC", 47), ("DNSKEY", 48), ("DHCID", 49), ("NSEC3", 50), ("NSEC3PARAM", 51), ("TLSA", 52),
        ("SMIMEA", 53), ("HIP", 55), ("NINFO", 56), ("RKEY", 57), ("TALINK", 58), ("CDS", 59),
        ("CDNSKEY", 60), ("OPENPGPKEY", 61), ("CSYNC", 62), ("ZONEMD", 63), ("SVCB", 64), ("HTTPS", 65),
        ("SPF", 99), ("UINFO", 100), ("UID", 101), ("GID", 102), ("UNSPEC", 103), ("NID", 104),
        ("L32", 105), ("L64", 106), ("LP", 107), ("EUI48", 108), ("EUI64", 109), ("NXNAME", 128),
        ("TKEY", 249), ("TSIG", 250), ("IXFR", 251), ("AXFR", 252), ("MAILB", 253), ("MAILA", 254),
        ("ANY", 255), ("URI", 256), ("CAA", 257), ("AVC", 258), ("AMTRELAY", 260), ("RESINFO", 261),
        ("TA", 32768), ("DLV", 32769), ("Reserved", 65535),
    ];
    TYPES.iter().find(|(n, _)| *n == s).map(|&(_, v)| v)
}

/// miekg/dns `StringToClass`.
pub(crate) fn rr_class(s: &str) -> Option<u16> {
    #[rustfmt::skip]
    const CLASSES: &[(&str, u16)] = &[("IN", 1), ("CS", 2), ("CH", 3), ("HS", 4), ("NONE", 254), ("ANY", 255)];
    CLASSES.iter().find(|(n, _)| *n == s).map(|&(_, v)| v)
}

/// miekg/dns `StringToRcode`.
pub(crate) fn rcode(s: &str) -> Option<u16> {
    #[rustfmt::skip]
    const RCODES: &[(&str, u16)] = &[
        ("NOERROR", 0), ("FORMERR", 1), ("SERVFAIL", 2), ("NXDOMAIN", 3), ("NOTIMP", 4), ("NOTIMPL", 4),
        ("REFUSED", 5), ("YXDOMAIN", 6), ("YXRRSET", 7), ("NXRRSET", 8), ("NOTAUTH", 9), ("NOTZONE", 10),
        ("BADSIG", 16), ("BADKEY", 17), ("BADTIME", 18), ("BADMODE", 19), ("BADNAME", 20), ("BADALG", 21),
        ("BADTRUNC", 22), ("BADCOOKIE", 23),
    ];
    RCODES.iter().find(|(n, _)| *n == s).map(|&(_, v)| v)
}
