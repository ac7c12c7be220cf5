//! The updater thread: the one writer of a zone index. It takes what the
//! sources send ([`SourceMsg`]), applies it to the model and the index in
//! batches, and keeps the metrics of the state current. It lives in the
//! wiring because it joins two stages: the sources and the records.

use std::sync::Arc;
use std::sync::mpsc;

use crate::metrics::Metrics;
use crate::model::{Cluster, Event};
use crate::records::{Updater, ZoneIndex};
use crate::source::{Scope, SourceMsg, purge_from_now_on, release_free_memory, rss_kib};

/// A batch of this many events frees enough to be worth handing back.
const TRIM_AFTER: usize = 1000;

/// Starts the updater thread: it applies batches in order, merging those
/// that queue up while it works. Ends when every sender is gone.
pub fn spawn_updater(index: Arc<ZoneIndex>, metrics: Arc<Metrics>, scope: &Scope) -> mpsc::Sender<SourceMsg> {
    let cluster = if scope.gated() { Cluster::exposed_only() } else { Cluster::new() };
    let (tx, rx) = mpsc::channel::<SourceMsg>();
    index.set_writer_alive(true);
    crate::source::loading_begins();
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
        let mut updater = Updater::new(index.clone(), cluster);
        while let Ok(first) = rx.recv() {
            let mut events = Vec::new();
            let mut synced = false;
            let mut triggered = Vec::new();
            let mut big = 0;
            let mut asked = Vec::new();
            for msg in std::iter::once(first).chain(rx.try_iter()) {
                match msg {
                    SourceMsg::Events(ev) => {
                        // A reset (a relist, a manifest reload) is diffed
                        // against the whole model: big however little changed.
                        big += ev
                            .iter()
                            .map(|e| match e {
                                Event::Reset { objects, .. } => objects.len(),
                                Event::Relist { listed, .. } => listed.len(),
                                _ => 1,
                            })
                            .sum::<usize>();
                        events.extend(ev)
                    }
                    SourceMsg::Synced => synced = true,
                    SourceMsg::Triggered(ns, svc, at) => triggered.push((ns, svc, at)),
                    SourceMsg::Ask(question) => asked.push(question),
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
            // Asked after the batch they queued with: they see it applied.
            for question in asked {
                // A question that panics is a bug in it: it must not take
                // the only writer of the index down with it.
                let cluster = updater.cluster();
                if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| question(cluster))).is_err() {
                    tracing::error!("a question about the model panicked; the updater goes on");
                }
            }
            if synced && !index.is_loaded() {
                index.set_loaded();
                purge_from_now_on();
                let counts = updater.cluster().counts();
                tracing::info!(?counts, names = index.len(), elapsed = ?started.elapsed(), "cluster state loaded");
            } else if stats.events.max(big) >= TRIM_AFTER {
                // A big change (a reload, a relist) freed the old objects.
                release_free_memory();
            }
        }
    });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "cannot start the updater thread");
        watched.set_writer_alive(false);
    }
    tx
}
