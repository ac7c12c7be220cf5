//! Arbitrary bytes as a Corefile: parsed (`corefile::parse_str`, `{$VAR}`
//! read as empty, never from the real environment), and when it parses,
//! every chain built as a start or a reload builds it
//! (`app::build_chains`: plugins configured, zone indexes made, routers per
//! address), without binding a socket or starting a source.
//!
//! Files a Corefile names are read as the real parse reads them
//! (`import`, `hosts`, a resolv.conf): relative paths resolve under a
//! folder that does not exist, so only absolute ones reach the disk.
//!
//! Invariants: nothing panics; bounded time (libFuzzer's `-timeout`); a
//! Corefile that parses either builds or fails with a message.

#![no_main]

use std::path::Path;
use std::sync::Arc;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let env = |_: &str| None;
    let opts = clusterdns::corefile::Options { default_port: 53, env: &env };
    let Ok(cf) = clusterdns::corefile::parse_str(&text, Path::new("/nonexistent-fuzz/Corefile"), &opts) else {
        return;
    };
    let metrics = Arc::new(clusterdns::metrics::Metrics::default());
    if let Err(e) = clusterdns::app::build_chains(&cf, &metrics) {
        assert!(!e.to_string().is_empty(), "a failed build says why");
    }
});
