//! `minimal`: a positive answer carries its answer section only (RFC 4472
//! 5.3's "minimal responses"): the authority and additional sections are
//! dropped, the OPT record kept. Negative answers keep their SOA.

use super::message::{Query, RCODE_NOERROR, add_opt, answer_end, set_counts, u16_at};

/// Minimizes the response to `q` in `out`, in place.
pub fn minimize(out: &mut Vec<u8>, q: &Query) {
    let (Some(flags), Some(an)) = (u16_at(out, 2), u16_at(out, 6)) else { return };
    if (flags & 0xF) as u8 != RCODE_NOERROR || an == 0 {
        return;
    }
    let Some(end) = answer_end(out) else { return };
    out.truncate(end);
    set_counts(out, [1, an, 0, 0]);
    add_opt(out, q, 0);
}
