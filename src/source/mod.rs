//! Sources of cluster state. Each turns what it reads into model events
//! ([`crate::model::Event`]) and sends them down a channel; the wiring
//! (`app::updater`) runs the one thread that owns the model and writes the
//! DNS index. Sources know nothing of DNS.

mod alloc;
pub mod kube;
pub mod manifests;
pub mod parse;
mod watch;

use crate::model::Event;

pub use alloc::allocate;
pub use watch::{ALL_KINDS, watch_manifests};

/// What a source tells the updater.
pub enum SourceMsg {
    Events(Vec<Event>),
    /// An EndpointSlice of `(namespace, service)` changed in the cluster at
    /// this time (its `endpoints.kubernetes.io/last-change-trigger-time`):
    /// observed as DNS programming latency once the batch is served.
    Triggered(String, String, std::time::SystemTime),
    /// Every kind has been read completely once: misses are now NXDOMAIN.
    Synced,
}

/// Resident memory of this process (Linux), for the logs.
pub fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}
