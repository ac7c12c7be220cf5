//! Reloading manifests when they change on disk: inotify (through `notify`)
//! on the directories, a short quiet period to let a save finish, then a
//! reload that sends only what differs. A slow poll backs it up for file
//! systems where notifications are lost.

use std::path::PathBuf;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use notify::{RecursiveMode, Watcher};
use tokio_util::sync::CancellationToken;

use super::manifests::{Manifests, Reload};
use super::{SourceMsg, release_free_memory};
use crate::model::{Event, Kind};

/// Wait this long without further changes before reloading.
const QUIET: Duration = Duration::from_millis(100);
/// Never wait longer than this after the first change.
const MAX_DELAY: Duration = Duration::from_millis(500);
/// Rescan this often even without notifications.
const POLL: Duration = Duration::from_secs(5);
/// Count what is served (`Manifests::prepare`) once nothing has changed for
/// this long after a load and the first state is built: off the path of
/// the first change, and out of the start-up's way.
const IDLE: Duration = Duration::from_secs(1);

pub const ALL_KINDS: [Kind; 5] = [Kind::Namespace, Kind::Service, Kind::EndpointSlice, Kind::Endpoints, Kind::Pod];

/// Waits up to `wait` for a notification, as `recv_timeout` does; while it
/// waits, counts what is served (`Manifests::prepare`) once nothing has
/// changed for [`IDLE`] and no index is still loading its first state (the
/// two would share the cores). The wait ends when it would have anyway.
fn wait_preparing(
    nrx: &mpsc::Receiver<()>,
    manifests: &mut Manifests,
    wait: Duration,
    loading: fn() -> bool,
) -> Result<(), mpsc::RecvTimeoutError> {
    let deadline = Instant::now() + wait;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if manifests.prepared() || left <= IDLE {
            return nrx.recv_timeout(left);
        }
        match nrx.recv_timeout(IDLE) {
            Err(mpsc::RecvTimeoutError::Timeout) if !loading() => manifests.prepare(),
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            other => return other,
        }
    }
}

/// After the first load (done by the caller), sends what changes whenever
/// a file changes: the changed objects, or all of them as a reset
/// (`Manifests::reload`). Runs on its own thread until the updater is gone
/// or `stop` is cancelled (within one poll period).
pub fn watch_manifests(
    mut manifests: Manifests,
    tx: mpsc::Sender<SourceMsg>,
    stop: CancellationToken,
) -> std::io::Result<()> {
    let (ntx, nrx) = mpsc::channel::<()>();
    // Cancelling wakes the thread at once (it also checks between polls).
    if let Ok(rt) = tokio::runtime::Handle::try_current() {
        let (ntx, stop) = (ntx.clone(), stop.clone());
        rt.spawn(async move {
            stop.cancelled().await;
            let _ = ntx.send(());
        });
    }
    let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        if res.is_ok() {
            let _ = ntx.send(());
        }
    });
    let dirs: Vec<(PathBuf, RecursiveMode)> = manifests
        .roots()
        .iter()
        .map(|root| {
            if root.is_dir() {
                (root.clone(), RecursiveMode::Recursive)
            } else {
                // Watch a file's directory: editors replace the file itself.
                let parent = root.parent().filter(|p| !p.as_os_str().is_empty());
                (parent.map(PathBuf::from).unwrap_or_else(|| PathBuf::from(".")), RecursiveMode::NonRecursive)
            }
        })
        .collect();
    match watcher.as_mut() {
        Ok(w) => {
            for (dir, mode) in &dirs {
                if let Err(e) = w.watch(dir, *mode) {
                    tracing::warn!(dir = %dir.display(), error = %e, "cannot watch; polling every {POLL:?}");
                }
            }
        }
        Err(e) => tracing::warn!(error = %e, "no file notifications; polling every {POLL:?}"),
    }
    std::thread::Builder::new().name("manifests".into()).spawn(move || {
        let _keep = watcher;
        while !stop.is_cancelled() {
            // Wait for a change, then for its burst of events to settle. A
            // file still being written is looked at again once it settles.
            let wait = manifests.recheck_in().map_or(POLL, |r| r.min(POLL));
            match wait_preparing(&nrx, &mut manifests, wait, super::loading) {
                Err(mpsc::RecvTimeoutError::Disconnected) => std::thread::sleep(POLL),
                _ => {
                    let start = Instant::now();
                    while start.elapsed() < MAX_DELAY && nrx.recv_timeout(QUIET).is_ok() {}
                }
            }
            if stop.is_cancelled() {
                return; // dropping `tx` ends the updater
            }
            match manifests.reload() {
                Ok(None) => {}
                Ok(Some((reload, errors))) => {
                    for e in errors {
                        tracing::warn!("{e}");
                    }
                    let events = match reload {
                        Reload::Reset(objects) => {
                            tracing::info!(objects = objects.len(), "manifests reloaded");
                            vec![Event::Reset { kinds: ALL_KINDS.to_vec(), objects }]
                        }
                        Reload::Events(events) => {
                            tracing::info!(changes = events.len(), "manifests changed");
                            events
                        }
                    };
                    if !events.is_empty() && tx.send(SourceMsg::Events(events)).is_err() {
                        return;
                    }
                    // A parse frees what it built (a refused bomb, the old
                    // version of a big file): give it back, not keep it resident.
                    release_free_memory();
                }
                Err(e) => tracing::warn!("{e}"),
            }
        }
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The wait for a change ends when it is due (a poll, a recheck), also
    /// while an index still loads and the count waits: a review found the
    /// poll starved then, and changes that inotify cannot see never loaded.
    #[test]
    fn a_due_poll_is_never_starved_by_the_count() {
        let cases: [(fn() -> bool, bool); 2] = [(|| true, false), (|| false, true)];
        for (loading, counted) in cases {
            let dir = tempfile::tempdir().expect("tempdir");
            let mut manifests = Manifests::new(
                vec![dir.path().to_path_buf()],
                "10.96.0.0/16".parse().expect("cidr"),
                Default::default(),
            );
            manifests.load(true).expect("load");
            let (_tx, nrx) = mpsc::channel::<()>();
            let (done, waited) = mpsc::channel();
            std::thread::spawn(move || {
                let got = wait_preparing(&nrx, &mut manifests, IDLE * 5 / 2, loading);
                let _ = done.send((got, manifests.prepared()));
            });
            let (got, prepared) = waited.recv_timeout(IDLE * 10).expect("the wait ended");
            assert_eq!(got, Err(mpsc::RecvTimeoutError::Timeout));
            assert_eq!(prepared, counted, "counted while no index loads, not while one does");
        }
    }
}
