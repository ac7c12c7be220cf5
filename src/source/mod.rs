//! Sources of cluster state. Each turns what it reads into model events
//! ([`crate::model::Event`]) and sends them to the one updater thread, which
//! owns the model and writes the DNS index.

mod alloc;
pub mod kube;
pub mod manifests;
pub mod parse;
mod watch;

use std::sync::Arc;
use std::sync::mpsc;

use crate::metrics::Metrics;
use crate::model::Event;
use crate::records::{Updater, ZoneIndex};

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

/// Starts the updater thread: it applies batches in order, merging those
/// that queue up while it works. Ends when every sender is gone.
pub fn spawn_updater(index: Arc<ZoneIndex>, metrics: Arc<Metrics>) -> mpsc::Sender<SourceMsg> {
    let (tx, rx) = mpsc::channel::<SourceMsg>();
    index.set_writer_alive(true);
    let watched = index.clone();
    let spawned = std::thread::Builder::new().name("updater".into()).spawn(move || {
        // Marks the index's writer gone when this thread ends, by a panic too.
        struct Alive(Arc<ZoneIndex>);
        impl Drop for Alive {
            fn drop(&mut self) {
                self.0.set_writer_alive(false);
            }
        }
        let _alive = Alive(index.clone());
        let mut updater = Updater::new(index.clone());
        while let Ok(first) = rx.recv() {
            let mut events = Vec::new();
            let mut synced = false;
            let mut triggered = Vec::new();
            for msg in std::iter::once(first).chain(rx.try_iter()) {
                match msg {
                    SourceMsg::Events(ev) => events.extend(ev),
                    SourceMsg::Synced => synced = true,
                    SourceMsg::Triggered(ns, svc, at) => triggered.push((ns, svc, at)),
                }
            }
            let started = std::time::Instant::now();
            let stats = updater.apply(events);
            let st = &metrics.state;
            if stats.events > 0 {
                st.update.observe(started.elapsed());
            }
            if let Ok(mut objects) = st.objects.lock() {
                *objects = updater.cluster().counts().iter().map(|(k, n)| (k.name(), *n as u64)).collect();
            }
            // CoreDNS's programming latency: headless Services only (their
            // answers are the endpoints), from the cluster's change to now.
            for (ns, svc, at) in triggered {
                let Some(s) = updater.cluster().service(&ns, &svc) else { continue };
                if s.kind == crate::model::ServiceKind::Headless
                    && let Ok(took) = std::time::SystemTime::now().duration_since(at)
                {
                    let h = if s.selector.is_some() { &st.programming_selector } else { &st.programming_no_selector };
                    h.observe(took);
                }
            }
            if synced {
                let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
                st.last_sync.store(now.map(|d| d.as_secs()).unwrap_or(0), std::sync::atomic::Ordering::Relaxed);
            }
            tracing::debug!(?stats, elapsed = ?started.elapsed(), names = index.len(), rss_kib = rss_kib(), "cluster update applied");
            if synced && !index.is_loaded() {
                index.set_loaded();
                release_free_memory();
                let counts = updater.cluster().counts();
                tracing::info!(?counts, names = index.len(), elapsed = ?started.elapsed(), "cluster state loaded");
            }
        }
    });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "cannot start the updater thread");
        watched.set_writer_alive(false);
    }
    tx
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

/// Hands the memory freed after the first load (parse buffers, the build's
/// scratch records) back to the system. glibc keeps it in its arenas
/// otherwise, and it then shows as resident for the life of the process.
fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        unsafe extern "C" {
            fn malloc_trim(pad: usize) -> i32;
        }
        // SAFETY: malloc_trim only returns free pages of the allocator's own
        // arenas to the kernel; it touches no live allocation.
        unsafe {
            malloc_trim(0);
        }
    }
}
