//! Wiring: a zone configuration, the index, the updater, a source and the
//! listeners, started together. `main.rs` and the tests both start here.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::ZoneFlags;
use crate::metrics::Metrics;
use crate::records::{BadZone, ZoneConfig, ZoneIndex, render_zone};
use crate::server::{ServeError, Server};
use crate::source::kube::{KubeError, KubeOptions, client, spawn_watchers};
use crate::source::manifests::{ManifestError, Manifests};
use crate::source::{SourceMsg, spawn_updater, watch_manifests};

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Zone(#[from] BadZone),
    #[error(transparent)]
    Serve(#[from] ServeError),
    #[error(transparent)]
    Manifests(#[from] ManifestError),
    #[error(transparent)]
    Kube(#[from] KubeError),
    #[error("{0}")]
    Other(String),
}

pub fn zone_config(flags: &ZoneFlags) -> Result<ZoneConfig, BadZone> {
    ZoneConfig::new(&flags.zone, flags.ttl, flags.pods)
}

/// A running server: listeners, the index they answer from, its metrics.
pub struct Running {
    pub server: Server,
    pub index: Arc<ZoneIndex>,
    pub metrics: Arc<Metrics>,
}

impl Running {
    /// The first bound address.
    pub fn addr(&self) -> SocketAddr {
        self.server.local_addrs()[0]
    }

    /// Waits until the first load is in the index (tests, the demo).
    pub async fn wait_loaded(&self, timeout: Duration) -> bool {
        let start = Instant::now();
        while !self.index.is_loaded() {
            if start.elapsed() > timeout {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        true
    }
}

/// Binds the listeners first (queries get SERVFAIL, never NXDOMAIN, until
/// the manifests are loaded), then loads the manifests and watches them.
pub async fn serve_manifests(
    paths: Vec<PathBuf>,
    flags: &ZoneFlags,
    listen: &[SocketAddr],
) -> Result<Running, AppError> {
    let cfg = zone_config(flags)?;
    for p in &paths {
        // Fail fast and clearly on a path that is not there at all.
        std::fs::metadata(p).map_err(|error| ManifestError::Read { path: p.clone(), error })?;
    }
    let index = ZoneIndex::new(cfg);
    let metrics = Arc::new(Metrics::default());
    let server = Server::bind(index.clone(), listen, &metrics).await?;
    let tx = spawn_updater(index.clone(), metrics.clone());
    let mut manifests = Manifests::new(paths, flags.service_cidr);
    let loaded = tokio::task::spawn_blocking(move || {
        let first = manifests.load(true);
        (manifests, first)
    });
    let (manifests, first) = loaded.await.map_err(|e| AppError::Other(e.to_string()))?;
    let (objects, errors) = first?.unwrap_or_default();
    tracing::debug!(objects = objects.len(), rss_kib = crate::source::rss_kib(), "manifests parsed");
    for e in errors {
        tracing::warn!("{e}");
    }
    let kinds = crate::source::ALL_KINDS.to_vec();
    let _ = tx.send(SourceMsg::Events(vec![crate::model::Event::Reset { kinds, objects }]));
    let _ = tx.send(SourceMsg::Synced);
    watch_manifests(manifests, tx).map_err(|e| AppError::Other(format!("cannot start the file watcher: {e}")))?;
    Ok(Running { server, index, metrics })
}

/// A server answering from the Kubernetes API. The DNS port is bound first:
/// until every kind is listed, misses are SERVFAIL (never NXDOMAIN).
pub async fn serve_api(opts: &KubeOptions, flags: &ZoneFlags, listen: &[SocketAddr]) -> Result<Running, AppError> {
    let cfg = zone_config(flags)?;
    let index = ZoneIndex::new(cfg);
    let metrics = Arc::new(Metrics::default());
    let server = Server::bind(index.clone(), listen, &metrics).await?;
    let client = match client(opts).await {
        Ok(c) => c,
        Err(e) => {
            server.shutdown().await;
            return Err(e.into());
        }
    };
    let tx = spawn_updater(index.clone(), metrics.clone());
    spawn_watchers(client, opts, tx, metrics.clone());
    Ok(Running { server, index, metrics })
}

/// The zone snapshot of a set of manifests; the errors found are returned
/// beside it so the caller can report them.
pub fn zone_snapshot(paths: Vec<PathBuf>, flags: &ZoneFlags) -> Result<(String, Vec<String>), AppError> {
    let cfg = zone_config(flags)?;
    let mut manifests = Manifests::new(paths, flags.service_cidr);
    let (objects, errors) = manifests.load(true)?.unwrap_or_default();
    let mut cluster = crate::model::Cluster::new();
    for obj in objects {
        cluster.apply(obj);
    }
    Ok((render_zone(&cluster, &cfg), errors.iter().map(ToString::to_string).collect()))
}
