//! A manifest document read both ways: by the block-YAML fast path and by
//! libyaml (`source::parse::yaml_both_ways`).
//!
//! Invariants: nothing panics; whenever the fast path reads the document,
//! libyaml reads it too, to the same value (the fast path leaves every form
//! it does not read, and every error, to libyaml).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(doc) = std::str::from_utf8(data) else { return };
    let (fast, full) = clusterdns::source::parse::yaml_both_ways(doc);
    if let Some(value) = fast {
        assert_eq!(Ok(&value), full.as_ref(), "the fast path read {doc:?} otherwise than libyaml");
    }
});
