//! The name grammar of the cluster zone: how owner names are formed from
//! objects, and the lowercase wire form used as the lookup key.

use std::net::IpAddr;

use hickory_proto::rr::Name;

/// A name in lowercase wire format (length-prefixed labels, final 0): the
/// key of the DNS index. Keying by bytes avoids building a `Name` per query.
pub type Key = Box<[u8]>;

/// The lookup key of `name`.
pub fn key_of(name: &Name) -> Key {
    let mut out = Vec::with_capacity(name.len() + 2);
    for label in name.iter() {
        out.push(label.len() as u8);
        out.extend(label.iter().map(|b| b.to_ascii_lowercase()));
    }
    out.push(0);
    out.into_boxed_slice()
}

/// Writes the lowercase key of a wire-format name into `out`; `None` if the
/// bytes are not a plain (uncompressed) name.
pub fn lowercase_key(wire: &[u8], out: &mut [u8; 256]) -> Option<usize> {
    let mut i = 0;
    loop {
        let len = *wire.get(i)? as usize;
        if len & 0xC0 != 0 || i + len >= 255 {
            return None;
        }
        out[i] = len as u8;
        for j in 1..=len {
            out[i + j] = wire.get(i + j)?.to_ascii_lowercase();
        }
        i += len + 1;
        if len == 0 {
            return Some(i);
        }
    }
}

/// The label offsets of a key, from the first label to the root.
pub fn label_starts(key: &[u8]) -> impl Iterator<Item = usize> + '_ {
    let mut i = 0;
    std::iter::from_fn(move || {
        let len = *key.get(i)? as usize;
        if len == 0 {
            return None;
        }
        let at = i;
        i += len + 1;
        Some(at)
    })
}

/// `label.parent`, or `None` when `label` is not a valid DNS label.
/// Taken byte for byte, never through IDNA (`xn--test` is a namespace like
/// any other): letters, digits, `-` and `_` (SRV's `_http`), 1 to 63 bytes.
/// No dot and nothing to escape, so a name reads the same on the wire, in
/// the logs and in the zone snapshot.
pub fn child(parent: &Name, label: &str) -> Option<Name> {
    let ok = label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !ok {
        return None;
    }
    let label = hickory_proto::rr::domain::Label::from_raw_bytes(label.as_bytes()).ok()?;
    parent.prepend_label(label).ok()
}

/// The reverse name of an address (`5.1.244.10.in-addr.arpa.`), as
/// hickory's `Name::from(ip)` writes it, without its string per octet:
/// one per endpoint, 300,000 at 100k Services.
pub fn reverse_name(ip: &IpAddr) -> Name {
    let IpAddr::V4(v4) = ip else { return Name::from(*ip) };
    let mut digits = [[0u8; 3]; 4];
    let mut lens = [0usize; 4];
    for (k, o) in v4.octets().into_iter().rev().enumerate() {
        let text: &[u8] = match o {
            0..=9 => &[b'0' + o],
            10..=99 => &[b'0' + o / 10, b'0' + o % 10],
            _ => &[b'0' + o / 100, b'0' + o / 10 % 10, b'0' + o % 10],
        };
        digits[k][..text.len()].copy_from_slice(text);
        lens[k] = text.len();
    }
    let labels = (0..4).map(|k| &digits[k][..lens[k]]).chain([&b"in-addr"[..], b"arpa"]);
    Name::from_labels(labels).unwrap_or_else(|_| Name::from(*ip))
}

/// The label of an endpoint without a hostname: its IP with dashes, as
/// CoreDNS forms it (`10-244-1-5`, `fd00--5`, `2001-db8--0`), SPEC.md 1.
pub fn ip_label(ip: &IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string().replace('.', "-"),
        IpAddr::V6(v6) => {
            let mut s = v6.to_string().replace(':', "-");
            if s.ends_with('-') {
                s.push('0');
            }
            if s.starts_with('-') {
                s.insert(0, '0');
            }
            s
        }
    }
}

/// The IP a pod-name label spells (`10-244-1-5`, `fd00--5`), SPEC.md R10.
pub fn parse_ip_label(label: &str) -> Option<IpAddr> {
    let parts: Vec<&str> = label.split('-').collect();
    if parts.len() == 4 && parts.iter().all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit())) {
        return label.replace('-', ".").parse().ok();
    }
    let v6 = label.replace('-', ":");
    v6.parse::<std::net::Ipv6Addr>().ok().map(IpAddr::V6)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_labels_round_trip() {
        let cases =
            [("10.244.1.5", "10-244-1-5"), ("fd00::5", "fd00--5"), ("2001:db8::", "2001-db8--0"), ("::1", "0--1")];
        for (ip, label) in cases {
            let ip: IpAddr = ip.parse().unwrap();
            assert_eq!(ip_label(&ip), label);
            assert_eq!(parse_ip_label(label), Some(ip));
        }
        assert_eq!(parse_ip_label("web-0"), None);
        assert_eq!(parse_ip_label("1-2-3"), None);
    }

    #[test]
    fn reverse_names_are_hickorys() {
        for ip in ["10.244.1.5", "0.0.0.0", "255.9.10.99", "192.168.100.200", "fd00::5"] {
            let ip: IpAddr = ip.parse().unwrap();
            let name = reverse_name(&ip);
            assert_eq!(name, Name::from(ip), "{ip}");
            assert_eq!(name.to_ascii(), Name::from(ip).to_ascii(), "{ip}");
            assert!(name.is_fqdn());
        }
    }

    #[test]
    fn labels_are_taken_as_written() {
        let parent = Name::from_ascii("svc.cluster.local.").unwrap();
        assert_eq!(child(&parent, "xn--test").unwrap().to_ascii(), "xn--test.svc.cluster.local.");
        assert_eq!(child(&parent, "_http").unwrap().num_labels(), 4);
        for bad in ["dotted.name", "", "a b", "caf\u{e9}", &"a".repeat(64)] {
            assert!(child(&parent, bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn keys_are_lowercase_wire() {
        let name = Name::from_ascii("My-Svc.Default.svc.cluster.local.").unwrap();
        let key = key_of(&name);
        assert_eq!(&key[..7], b"\x06my-svc");
        let mut buf = [0u8; 256];
        let mut wire = Vec::new();
        for l in name.iter() {
            wire.push(l.len() as u8);
            wire.extend_from_slice(l);
        }
        wire.push(0);
        let n = lowercase_key(&wire, &mut buf).unwrap();
        assert_eq!(&buf[..n], &key[..]);
        assert_eq!(label_starts(&key).count(), 5);
    }
}
