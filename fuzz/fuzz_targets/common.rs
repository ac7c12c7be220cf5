//! What the targets share: the fixture cluster, and the checks every
//! response to a client must pass whoever wrote it.

#![allow(dead_code)] // each target uses a different part

use std::path::PathBuf;

use hickory_proto::op::Message;

/// The repository's test fixtures (Kubernetes manifests).
pub fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures")
}

/// The limit a client set for a response, worked out from its query
/// without the library: 512 bytes over UDP without EDNS; with EDNS its
/// size, at least 512 and at most `cap` (what we advertise, 1232 or
/// `bufsize`); 65535 over TCP.
pub fn client_limit(edns_payload: Option<u16>, udp: bool, cap: u16) -> usize {
    match (udp, edns_payload) {
        (false, _) => 65535,
        (true, None) => 512,
        (true, Some(size)) => usize::from(size.clamp(512, cap.max(512))),
    }
}

/// The EDNS payload size of a query (its OPT's CLASS), found by walking
/// the message independently of the library's parser. `None` without an
/// OPT record; the caller only asks of queries the library accepted.
pub fn edns_payload(query: &[u8]) -> Option<u16> {
    let counts: Vec<usize> =
        (0..4).map(|i| usize::from(u16::from_be_bytes([query[4 + 2 * i], query[5 + 2 * i]]))).collect();
    let mut i = 12;
    for _ in 0..counts[0] {
        i = skip_name(query, i)? + 4;
    }
    let records = counts[1] + counts[2] + counts[3];
    for _ in 0..records {
        i = skip_name(query, i)?;
        let rtype = u16::from_be_bytes([*query.get(i)?, *query.get(i + 1)?]);
        let class = u16::from_be_bytes([*query.get(i + 2)?, *query.get(i + 3)?]);
        let rdlen = usize::from(u16::from_be_bytes([*query.get(i + 8)?, *query.get(i + 9)?]));
        if rtype == 41 {
            return Some(class);
        }
        i += 10 + rdlen;
    }
    None
}

fn skip_name(b: &[u8], mut i: usize) -> Option<usize> {
    loop {
        let len = usize::from(*b.get(i)?);
        if len & 0xC0 == 0xC0 {
            return Some(i + 2);
        }
        if len == 0 {
            return Some(i + 1);
        }
        i += len + 1;
    }
}

/// The checks every response to a client passes: it parses (hickory), it
/// is a response, it carries the client's ID, and it fits `limit`. Returns
/// the parsed message.
pub fn check_response(response: &[u8], id: u16, limit: usize, what: &str) -> Message {
    assert!(response.len() <= limit, "{what}: {} bytes, the client takes {limit}", response.len());
    let msg = Message::from_vec(response)
        .unwrap_or_else(|e| panic!("{what}: the response does not parse: {e}\n{response:02x?}"));
    assert_eq!(msg.metadata.id, id, "{what}: the client's ID");
    assert!(response[2] & 0x80 != 0, "{what}: QR set");
    msg
}

/// The question section of a message with one question written in full
/// (no compression): its bytes from the header's end.
pub fn question(msg: &[u8]) -> Option<&[u8]> {
    let mut i = 12;
    loop {
        let len = usize::from(*msg.get(i)?);
        if len & 0xC0 != 0 {
            return None;
        }
        i += len + 1;
        if len == 0 {
            break;
        }
    }
    msg.get(12..i + 4)
}
