//! `loadbalance [round_robin]`: the address records of an answer rotate
//! from one response to the next, so clients that take the first address
//! spread over all of them.
//!
//! Done in place on the encoded response: the run of A (or AAAA) records
//! of equal length is rotated by a per-thread turn counter. No allocation,
//! no lock, no decoding; a run whose records differ in length, or whose
//! owners point into the run itself, is left as it is.

use std::cell::Cell;

use super::message::{TYPE_A, TYPE_AAAA, skip_name, u16_at};

thread_local! {
    static TURN: Cell<usize> = const { Cell::new(0) };
}

/// Rotates the address records of the response in `out`.
pub fn rotate(out: &mut [u8]) {
    let Some(an) = u16_at(out, 6) else { return };
    if an < 2 {
        return;
    }
    let Some(mut i) = skip_name(out, 12).map(|e| e + 4) else { return };
    // The run: (start, record length, type, count).
    let mut run: Option<(usize, usize, u16, usize)> = None;
    for _ in 0..an {
        let start = i;
        let Some(after) = skip_name(out, i) else { return };
        let (Some(rtype), Some(rdlen)) = (u16_at(out, after), u16_at(out, after + 8)) else { return };
        i = after + 10 + rdlen as usize;
        if i > out.len() {
            return;
        }
        let len = i - start;
        match (&mut run, rtype) {
            (None, TYPE_A | TYPE_AAAA) => run = Some((start, len, rtype, 1)),
            (Some((s, l, t, n)), _) if rtype == *t && len == *l && start == *s + *l * *n => *n += 1,
            (Some(_), _) => break,
            (None, _) => {}
        }
    }
    let Some((start, len, _, n)) = run else { return };
    if n < 2 || points_into(out, start, start + len * n) {
        return;
    }
    let k = TURN.with(|t| {
        let v = t.get();
        t.set(v.wrapping_add(1));
        v
    }) % n;
    out[start..start + len * n].rotate_left(k * len);
}

/// Whether an owner name inside `[from, to)` is compressed to a pointer
/// that lands inside the same range (moving the records would break it).
fn points_into(out: &[u8], from: usize, to: usize) -> bool {
    let mut i = from;
    while i < to {
        let mut j = i;
        loop {
            let Some(&len) = out.get(j) else { return true };
            if len & 0xC0 == 0xC0 {
                let target = u16_at(out, j).map_or(0, |p| (p & 0x3FFF) as usize);
                if (from..to).contains(&target) {
                    return true;
                }
                j += 2;
                break;
            }
            j += len as usize + 1;
            if len == 0 {
                break;
            }
        }
        let Some(rdlen) = u16_at(out, j + 8) else { return true };
        i = j + 10 + rdlen as usize;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::message::{CLASS_IN, TYPE_CNAME, header, push_record};

    fn response(ips: &[[u8; 4]], cname_first: bool) -> Vec<u8> {
        let mut out = Vec::new();
        let an = ips.len() as u16 + u16::from(cname_first);
        header(&mut out, 1, 0x8180, [1, an, 0, 0]);
        out.extend_from_slice(b"\x01a\x00\x00\x01\x00\x01");
        if cname_first {
            push_record(&mut out, &[0xC0, 12], TYPE_CNAME, CLASS_IN, 5, b"\x01b\x00");
        }
        for ip in ips {
            push_record(&mut out, &[0xC0, 12], TYPE_A, CLASS_IN, 5, ip);
        }
        out
    }

    fn addresses(out: &[u8]) -> Vec<u8> {
        let w = crate::plugins::message::walk(out).unwrap();
        w.rrs.iter().filter(|r| r.rtype == TYPE_A).map(|r| out[r.end - 1]).collect()
    }

    #[test]
    fn address_records_rotate_and_others_stay_first() {
        for cname in [false, true] {
            let base = response(&[[10, 0, 0, 1], [10, 0, 0, 2], [10, 0, 0, 3]], cname);
            let mut seen = std::collections::HashSet::new();
            for _ in 0..3 {
                let mut out = base.clone();
                rotate(&mut out);
                let addrs = addresses(&out);
                let mut sorted = addrs.clone();
                sorted.sort();
                assert_eq!(sorted, vec![1, 2, 3], "same records");
                seen.insert(addrs[0]);
                if cname {
                    assert_eq!(crate::plugins::message::walk(&out).unwrap().rrs[0].rtype, TYPE_CNAME);
                }
            }
            assert_eq!(seen.len(), 3, "each address comes first in turn");
        }
    }

    #[test]
    fn a_single_record_or_a_broken_message_is_left_alone() {
        let base = response(&[[10, 0, 0, 1]], false);
        let mut out = base.clone();
        rotate(&mut out);
        assert_eq!(out, base);
        let mut cut = response(&[[10, 0, 0, 1], [10, 0, 0, 2]], false);
        cut.truncate(cut.len() - 3);
        let before = cut.clone();
        rotate(&mut cut);
        assert_eq!(cut, before);
    }
}
