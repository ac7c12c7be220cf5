//! Sources of cluster state. Each turns what it reads into model events
//! ([`crate::model::Event`]) and sends them down a channel; the wiring
//! (`app::updater`) runs the one thread that owns the model and writes the
//! DNS index. Sources know nothing of DNS.

mod alloc;
mod block;
pub mod kube;
pub mod manifests;
pub mod parse;
mod watch;

use crate::model::{Event, Object, Selector};

pub use alloc::allocate;
pub use watch::{ALL_KINDS, watch_manifests};

/// What a source serves of what it reads: CoreDNS's `namespaces`, `labels`
/// and `namespace_labels`. The API server applies the selectors to watches;
/// the manifest source applies all three itself.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Scope {
    /// Only these namespaces; empty: all.
    pub namespaces: Vec<String>,
    /// Only Services and EndpointSlices with these labels.
    pub labels: Option<Selector>,
    /// Only namespaces with these labels: the model then serves nothing of
    /// a namespace it has not been told exists (`Cluster::exposed_only`).
    pub namespace_labels: Option<Selector>,
}

impl Scope {
    /// Whether objects of `namespace` are served (its labels aside).
    pub fn wants(&self, namespace: &str) -> bool {
        self.namespaces.is_empty() || self.namespaces.iter().any(|n| n == namespace)
    }

    /// Whether the model must hide namespaces it has not seen.
    pub fn gated(&self) -> bool {
        self.namespace_labels.is_some()
    }

    /// Whether a parsed object is served: its namespace is wanted, and a
    /// Namespace matches `namespace_labels`. (`labels` is applied before
    /// trimming, which drops a Service's labels.)
    pub fn keeps(&self, obj: &Object) -> bool {
        match obj {
            Object::Namespace(n) => {
                self.wants(&n.name) && self.namespace_labels.as_ref().is_none_or(|s| s.matches(&n.labels))
            }
            o => self.wants(o.namespace()),
        }
    }
}

/// What a source tells the updater.
pub enum SourceMsg {
    Events(Vec<Event>),
    /// An EndpointSlice of `(namespace, service)` changed in the cluster at
    /// this time (its `endpoints.kubernetes.io/last-change-trigger-time`):
    /// observed as DNS programming latency once the batch is served.
    Triggered(String, String, std::time::SystemTime),
    /// Every kind has been read completely once: misses are now NXDOMAIN.
    Synced,
    /// Not from a source: a question about the model, run on the updater
    /// thread between batches with the model as it is then (a running
    /// server's `/explain`).
    Ask(Box<dyn FnOnce(&crate::model::Cluster) + Send>),
}

/// A tiny deterministic generator for tests (xorshift): a number below
/// `n` per call, the same ones for the same seed, so that failures replay.
#[cfg(test)]
pub(crate) fn xorshift(mut r: u64) -> impl FnMut(usize) -> usize {
    move |n| {
        r ^= r << 13;
        r ^= r >> 7;
        r ^= r << 17;
        (r % n as u64) as usize
    }
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

/// `mi_option_purge_delay`: its place in mimalloc.h's option enum (the same
/// in mimalloc 2 and 3; libmimalloc-sys names only some of them).
const MI_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Whether [`configure_allocator`] ran (the binary): tests and benches
/// leave mimalloc's options alone.
static CONFIGURED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Sets the binary's allocator up for a server that loads a big state and
/// then mostly reads it. While the first state loads, pages freed wait
/// mimalloc's purge delay (a second) as usual: purging each at once made
/// the kernel shoot down TLBs on every core, and a 100k-Service start took
/// 4.1 to 5.6 s, not 3.5. Once loaded, [`purge_from_now_on`] purges
/// them all and sets the delay to 0: mimalloc purges only when it is next
/// called, which an idle server is not (64 MiB more resident at 100,000
/// Services otherwise). A `MIMALLOC_PURGE_DELAY` set in the environment
/// still wins.
pub fn configure_allocator() {
    CONFIGURED.store(true, std::sync::atomic::Ordering::Relaxed);
}

/// Hands memory freed after a big change (parse buffers, a refused
/// document, the old version of a reloaded file, the build's scratch
/// records) back to the system. The binary allocates with mimalloc, which
/// purges freed pages only when it is next called, and an idle server is
/// not: without this they show as resident for the life of the process.
/// glibc's arenas are trimmed too, for whatever still uses them (tests and
/// benches run on the system allocator).
pub fn release_free_memory() {
    // SAFETY: mi_collect frees nothing live: it returns the pages of the
    // calling thread's mimalloc heap that hold no allocation, and forces
    // the purges scheduled so far.
    unsafe {
        libmimalloc_sys::mi_collect(true);
    }
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: malloc_trim only returns free pages of the allocator's own
        // arenas to the kernel; it touches no live allocation.
        unsafe {
            libc::malloc_trim(0);
        }
    }
}

/// Indexes whose first state is still loading (one updater each: a
/// Corefile may have several `kubernetes` blocks).
static LOADING: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// An updater starts loading its index's first state.
pub fn loading_begins() {
    LOADING.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
}

/// Whether an index is still loading its first state.
fn loading() -> bool {
    LOADING.load(std::sync::atomic::Ordering::Acquire) > 0
}

/// [`release_free_memory`] once an index's first state is loaded; when it
/// was the last one loading, freed pages are purged at once from here on
/// (the setting is the process's: an index still loading would pay for it).
/// In this order: with a delay of 0 mimalloc runs no scheduled purge any
/// more (a page another thread frees between the two stays resident).
pub fn purge_from_now_on() {
    release_free_memory();
    let before = LOADING.fetch_update(std::sync::atomic::Ordering::AcqRel, std::sync::atomic::Ordering::Acquire, |n| {
        Some(n.saturating_sub(1))
    });
    let last = before.unwrap_or(0) <= 1;
    let env_set = ["MIMALLOC_PURGE_DELAY", "MIMALLOC_RESET_DELAY"].iter().any(|v| std::env::var_os(v).is_some());
    if last && CONFIGURED.load(std::sync::atomic::Ordering::Relaxed) && !env_set {
        // SAFETY: sets a number in mimalloc's option table.
        unsafe {
            libmimalloc_sys::mi_option_set(MI_PURGE_DELAY, 0);
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_purge_delay_option_is_where_we_set_it() {
        // A mimalloc upgrade that moved the option would make
        // configure_allocator set another one: its default is 1000 ms (10 in
        // mimalloc 2), which no other option of the enum has.
        // SAFETY: reads mimalloc's option table.
        let delay = unsafe { libmimalloc_sys::mi_option_get(super::MI_PURGE_DELAY) };
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
            assert_eq!(delay, 1000);
        }
    }
}
