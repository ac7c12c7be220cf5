//! `any`: an ANY question is answered with one HINFO record, `"RFC8482"
//! ""`, as RFC 8482 4.2 allows, instead of reaching the rest of the chain.

use crate::metrics::Source;

use super::Request;
use super::message::{self, CLASS_IN, Done, TYPE_ANY, TYPE_HINFO};
use crate::records::wire::QNAME_PTR;

/// HINFO CPU "RFC8482", OS "".
const RDATA: &[u8] = b"\x07RFC8482\x00";

pub fn serve(req: &Request, out: &mut Vec<u8>) -> Option<Done> {
    let q = &req.q;
    if q.qtype != TYPE_ANY {
        return None;
    }
    message::begin(out, q);
    message::push_record(out, &QNAME_PTR, TYPE_HINFO, CLASS_IN, 8482, RDATA);
    message::set_counts(out, [1, 1, 0, 0]);
    message::add_opt(out, q, 0);
    message::end(out, q, message::RCODE_NOERROR, false);
    Some(Done { qtype: q.qtype, rcode: 0, plugin: Source::Any })
}
