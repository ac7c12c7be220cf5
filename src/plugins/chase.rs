//! SPEC.md R9 for an ExternalName whose target lies outside the served
//! zones: the CNAME comes first, then the target's records as the upstream
//! gives them. A target that does not exist leaves the answer NOERROR with
//! the CNAME, as CoreDNS and Unbound answer it: the name asked exists in
//! the cluster zone, and an NXDOMAIN would send clients on down their
//! search path. (An in-zone dangling target keeps RFC 6604's NXDOMAIN:
//! that is the zone's own statement.) Only questions for such names come
//! here (the message is decoded and encoded again).

use crate::metrics::Source;

use hickory_proto::op::Message;

use super::Request;
use super::message::{self, Done, FLAG_RD, FLAG_TC};

/// The question for `target` (a lowercase wire name): the client's flags,
/// type, class and EDNS (with its DO bit).
pub fn query(req: &Request, target: &[u8]) -> Vec<u8> {
    let q = &req.q;
    let mut out = Vec::with_capacity(target.len() + 32);
    message::header(&mut out, q.id, q.flags & (FLAG_RD | message::FLAG_CD), [1, 0, 0, 0]);
    out.extend_from_slice(target);
    out.extend_from_slice(&q.qtype.to_be_bytes());
    out.extend_from_slice(&q.qclass.to_be_bytes());
    if let Some(e) = q.edns {
        message::push_opt(&mut out, 0, e.dnssec_ok);
        message::set_counts(&mut out, [1, 0, 0, 1]);
    }
    out
}

/// The response: `prefix` (our CNAME answer) with the upstream's answer
/// records added, its rcode, and its authority when negative. Without a
/// reply the prefix stands, SERVFAIL. Too big for the client: the prefix
/// alone with TC set.
pub fn merge(prefix: &[u8], reply: Option<&[u8]>, max: usize, out: &mut Vec<u8>) -> Done {
    let qtype = message::walk(prefix).and_then(|w| message::u16_at(prefix, w.question_end - 4)).unwrap_or(0);
    let fallback = |out: &mut Vec<u8>, rcode: u8, tc: bool| {
        out.clear();
        out.extend_from_slice(prefix);
        let flags = message::u16_at(out, 2).unwrap_or(0) & !0xF | u16::from(rcode) | if tc { FLAG_TC } else { 0 };
        out[2..4].copy_from_slice(&flags.to_be_bytes());
        Done { qtype, rcode: rcode.into(), plugin: Source::Kubernetes }
    };
    let (Some(reply), Ok(mut msg)) = (reply, Message::from_vec(prefix)) else {
        return fallback(out, message::RCODE_SERVFAIL, false);
    };
    let Ok(up) = Message::from_vec(reply) else {
        return fallback(out, message::RCODE_SERVFAIL, false);
    };
    let code = match up.metadata.response_code {
        hickory_proto::op::ResponseCode::NXDomain => hickory_proto::op::ResponseCode::NoError,
        other => other,
    };
    let rcode = u16::from(code);
    msg.answers.extend(up.answers);
    if msg.answers.len() == 1 {
        msg.authorities = up.authorities;
    }
    msg.metadata.response_code = code;
    msg.metadata.recursion_available = up.metadata.recursion_available;
    match msg.to_vec() {
        Ok(bytes) if bytes.len() <= max => {
            *out = bytes;
            Done { qtype, rcode, plugin: Source::Kubernetes }
        }
        Ok(_) => fallback(out, message::RCODE_NOERROR, true),
        Err(_) => fallback(out, message::RCODE_SERVFAIL, false),
    }
}
