//! The Kubernetes API as a source: one watcher per kind (Services,
//! EndpointSlices, Namespaces as metadata only, Pods only under `--pods
//! verified`), objects trimmed as they arrive and sent to the updater as
//! apply/delete events. No reflector store: the model is the only copy of
//! the cluster.
//!
//! Faults never change an answer: a watch that fails is retried with
//! jittered backoff while the last known state keeps serving, and a relist
//! (after 410 Gone, or a restart of the stream) brings its kind to the
//! listed state in one batch once the whole list is in (see
//! `Cluster::diff_relist`), so a name present before and after is never
//! missing in between. Only a watch's first list, before anything is served
//! as loaded, is applied a page at a time as it arrives.

use std::collections::HashSet;
use std::fmt::Debug;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, mpsc};

use futures::StreamExt;
use k8s_openapi::api::core::v1 as core;
use k8s_openapi::api::discovery::v1 as discovery;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, PartialObjectMeta};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event as WatchEvent};
use kube::{Client, Config, Resource};
use serde::Deserialize;
use serde::de::{DeserializeOwned, Deserializer};
use tokio_util::sync::CancellationToken;

use super::{Scope, SourceMsg};
use crate::metrics::Metrics;
use crate::model::{EndpointSlice, Event, Kind, Namespace, Object, ObjectKey, Pod, PortLists, Service, key_hash};

#[derive(Debug, thiserror::Error)]
pub enum KubeError {
    #[error("cannot read kubeconfig {path}: {error}")]
    Kubeconfig { path: PathBuf, error: kube::config::KubeconfigError },
    #[error(
        "no cluster state to serve: give --manifests PATH, or run in a pod (service account), \
         or point --kubeconfig, KUBECONFIG or ~/.kube/config at a cluster ({0})"
    )]
    NoConfig(String),
    #[error("cannot build a Kubernetes client: {0}")]
    Client(kube::Error),
}

/// What to watch and how to reach the API.
#[derive(Clone, Debug)]
pub struct KubeOptions {
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context to use (its current one when unset).
    pub context: Option<String>,
    /// The API server's URL, overriding the kubeconfig's or the in-cluster
    /// one (CoreDNS's `endpoint`).
    pub endpoint: Option<String>,
    /// What is served: `namespaces` filtered here, the selectors by the API
    /// server (`labels` on Services and EndpointSlices, `namespace_labels`
    /// on Namespaces).
    pub scope: Scope,
    /// Watch Pods (only `--pods verified` needs them).
    pub pods: bool,
    /// Seconds after which the API server ends a watch (then resumed from
    /// its resourceVersion). kube's watcher gives up on a watch that stayed
    /// silent 5 s longer than that: a hung connection (a dead load
    /// balancer, a stuck API server) is replaced within a minute, not 295 s.
    pub watch_timeout: u32,
}

impl KubeOptions {
    pub const WATCH_TIMEOUT: u32 = 55;
}

/// A client from `--kubeconfig`, else the in-cluster service account,
/// `KUBECONFIG` or `~/.kube/config` (kube's inference order).
pub async fn client(opts: &KubeOptions) -> Result<Client, KubeError> {
    let mut config = match &opts.kubeconfig {
        Some(path) => {
            let kc =
                Kubeconfig::read_from(path).map_err(|error| KubeError::Kubeconfig { path: path.clone(), error })?;
            let options = KubeConfigOptions { context: opts.context.clone(), ..Default::default() };
            Config::from_custom_kubeconfig(kc, &options)
                .await
                .map_err(|error| KubeError::Kubeconfig { path: path.clone(), error })?
        }
        // An endpoint alone (kubectl proxy, say) needs no credentials.
        None if opts.endpoint.is_some() => {
            Config::new("http://localhost".parse().map_err(|_| bad_endpoint("localhost"))?)
        }
        None => Config::infer().await.map_err(|e| KubeError::NoConfig(e.to_string()))?,
    };
    if let Some(url) = &opts.endpoint {
        config.cluster_url = url.parse().map_err(|_| bad_endpoint(url))?;
    }
    Client::try_from(config).map_err(KubeError::Client)
}

fn bad_endpoint(url: &str) -> KubeError {
    KubeError::NoConfig(format!("endpoint {url:?} is not a URL"))
}

/// Which kinds have been listed completely once.
struct SyncState {
    pending: Mutex<HashSet<Kind>>,
}

impl SyncState {
    /// Marks `kind` listed; true the first time every kind is.
    fn done(&self, kind: Kind) -> bool {
        let Ok(mut pending) = self.pending.lock() else {
            return false;
        };
        pending.remove(&kind) && pending.is_empty()
    }
}

/// Starts the watchers on the current tokio runtime; they stop when `stop`
/// is cancelled (and the updater with them: it ends when they are gone).
pub fn spawn_watchers(
    client: Client,
    opts: &KubeOptions,
    tx: mpsc::Sender<SourceMsg>,
    metrics: Arc<Metrics>,
    stop: CancellationToken,
) {
    let mut kinds = vec![Kind::Namespace, Kind::Service, Kind::EndpointSlice];
    if opts.pods {
        kinds.push(Kind::Pod);
    }
    let sync = Arc::new(SyncState { pending: Mutex::new(kinds.iter().copied().collect()) });
    let filter = Arc::new(opts.scope.namespaces.iter().cloned().collect::<HashSet<String>>());
    // The safe list: paginated, from any cached version (CRATES.md).
    let base = watcher::Config::default().any_semantic().page_size(500).timeout(opts.watch_timeout.max(1));
    let labelled = match &opts.scope.labels {
        Some(sel) => base.clone().labels(sel.text()),
        None => base.clone(),
    };
    // A namespace that stops matching arrives as a delete: its names go.
    let namespaces = match &opts.scope.namespace_labels {
        Some(sel) => base.clone().labels(sel.text()),
        None => base.clone(),
    };
    let ctx =
        |kind| Watch { kind, tx: tx.clone(), sync: sync.clone(), metrics: metrics.clone(), namespaces: filter.clone() };
    spawn_until(
        &stop,
        ctx(Kind::Namespace).run(
            Api::<PartialObjectMeta<core::Namespace>>::all(client.clone()),
            namespaces,
            |n: PartialObjectMeta<core::Namespace>| {
                Namespace::from_meta(&n.metadata)
                    .map(|n| Some(Object::Namespace(Arc::new(n))))
                    .map_err(|e| e.to_string())
            },
        ),
    );
    // The other kinds are parsed object by object (`Lenient`): a typed
    // list fails whole on one malformed object, and the watcher would then
    // relist forever instead of skipping that object.
    spawn_until(
        &stop,
        ctx(Kind::Service).run(Api::<Lenient<core::Service>>::all(client.clone()), labelled.clone(), |o| {
            o.parsed()
                .and_then(|s| Service::trim(s).map_err(|e| e.to_string()))
                .map(|s| Some(Object::Service(s.into())))
        }),
    );
    spawn_until(
        &stop,
        ctx(Kind::EndpointSlice).run(Api::<Lenient<discovery::EndpointSlice>>::all(client.clone()), labelled, |o| {
            o.parsed()
                .and_then(|s| EndpointSlice::trim(s).map_err(|e| e.to_string()))
                .map(|s| s.map(|s| Object::EndpointSlice(s.into())))
        }),
    );
    if opts.pods {
        spawn_until(
            &stop,
            ctx(Kind::Pod).run(Api::<Lenient<core::Pod>>::all(client.clone()), base, |o| {
                o.parsed().and_then(|p| Pod::trim(p).map_err(|e| e.to_string())).map(|p| Some(Object::Pod(p.into())))
            }),
        );
    }
}

/// An object of kind `K` as the API sent it, parsed on its own: a list (or
/// a watch event) holding one malformed object still parses, with that
/// object `Bad` and skipped with a warning. One JSON tree per object,
/// moved into `K` (only the name, namespace and resourceVersion are copied,
/// for a bad object's sake); kube's `DynamicObject` took four passes: a
/// buffered tree, a `Value`, a `Value` again and `K`.
// Not boxed: a `K` lives only until it is trimmed, and a box would be one
// more allocation per object of a 100k list.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug)]
enum Lenient<K> {
    Parsed(K),
    /// Only the name, namespace and resourceVersion: which object was
    /// skipped, and where a watch resumes after it.
    Bad {
        metadata: ObjectMeta,
        error: String,
    },
}

impl<K> Lenient<K> {
    fn parsed(self) -> Result<K, String> {
        match self {
            Lenient::Parsed(k) => Ok(k),
            Lenient::Bad { error, .. } => Err(error),
        }
    }
}

impl<'de, K: DeserializeOwned> Deserialize<'de> for Lenient<K> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(d)?;
        let meta = |field: &str| value.get("metadata")?.get(field)?.as_str().map(str::to_owned);
        // kube's watcher reads the resourceVersion of every event's object.
        let metadata = ObjectMeta {
            name: meta("name"),
            namespace: meta("namespace"),
            resource_version: meta("resourceVersion"),
            ..Default::default()
        };
        Ok(match serde_json::from_value(value) {
            Ok(k) => Lenient::Parsed(k),
            Err(e) => Lenient::Bad { metadata, error: e.to_string() },
        })
    }
}

impl<K: k8s_openapi::Resource> k8s_openapi::Resource for Lenient<K> {
    const API_VERSION: &'static str = K::API_VERSION;
    const GROUP: &'static str = K::GROUP;
    const KIND: &'static str = K::KIND;
    const VERSION: &'static str = K::VERSION;
    const URL_PATH_SEGMENT: &'static str = K::URL_PATH_SEGMENT;
    type Scope = K::Scope;
}

impl<K: k8s_openapi::Metadata<Ty = ObjectMeta>> k8s_openapi::Metadata for Lenient<K> {
    type Ty = ObjectMeta;
    fn metadata(&self) -> &ObjectMeta {
        match self {
            Lenient::Parsed(k) => k.metadata(),
            Lenient::Bad { metadata, .. } => metadata,
        }
    }
    fn metadata_mut(&mut self) -> &mut ObjectMeta {
        match self {
            Lenient::Parsed(k) => k.metadata_mut(),
            Lenient::Bad { metadata, .. } => metadata,
        }
    }
}

fn spawn_until<F: std::future::Future<Output = ()> + Send + 'static>(stop: &CancellationToken, task: F) {
    tokio::spawn(stop.clone().run_until_cancelled_owned(task));
}

/// When the cluster changed the endpoints this slice reflects (set by the
/// EndpointSlice controller).
fn trigger_time(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> Option<std::time::SystemTime> {
    let text = meta.annotations.as_ref()?.get("endpoints.kubernetes.io/last-change-trigger-time")?;
    let ts: jiff::Timestamp = text.parse().ok()?;
    Some(std::time::SystemTime::from(ts))
}

/// A list in progress (see [`Watch::run`]).
#[derive(Default)]
struct Listing {
    /// Changed objects not sent yet: in a first list sent every
    /// [`LIST_CHUNK`], so that the updater builds their names while the
    /// rest of the list arrives.
    changed: Vec<Object>,
    /// Changed objects sent so far.
    sent_early: usize,
    listed: foldhash::HashSet<u128>,
    hashes: Vec<(u64, u128)>,
}

/// Changed objects of a watch's first list sent to the updater at a time
/// (a page's worth). Each is the object as the API holds it now, and
/// nothing is served as loaded before every kind is listed, so applying
/// them early changes nothing but when; deletes still wait for the whole
/// list.
const LIST_CHUNK: usize = 500;

/// The key of an object in a watch's `sent` map: one function, so that
/// every path (objects, bad objects, deletes) hashes the same tuple type.
fn sent_key(namespace: &str, name: &str) -> u64 {
    hash_of(&(namespace, name))
}

/// A hash that is the same for equal values for the life of the process.
fn hash_of<T: std::hash::Hash>(v: &T) -> u64 {
    use std::hash::BuildHasher;
    foldhash::quality::FixedState::with_seed(0x7265_6c69_7374).hash_one(v)
}

/// 128 bits of an object, from two differently seeded hashes: an object
/// whose change hashed the same as its last version would not be
/// forwarded by a relist, so it takes more than 64 bits of luck.
fn object_hash(o: &Object) -> u128 {
    use std::hash::BuildHasher;
    let other = foldhash::quality::FixedState::with_seed(0x6f62_6a65_6374).hash_one(o);
    (u128::from(hash_of(o)) << 64) | u128::from(other)
}

/// What became of one object from the API.
enum Converted {
    Object(Object),
    /// DNS ignores it (an FQDN slice): any earlier version must go.
    Ignored(ObjectKey),
    /// Malformed (logged): any earlier version stays, through relists too.
    Bad(ObjectKey),
    /// Outside the namespaces served.
    Unwanted,
}

/// One kind's watcher and where its events go.
struct Watch {
    kind: Kind,
    tx: mpsc::Sender<SourceMsg>,
    sync: Arc<SyncState>,
    metrics: Arc<Metrics>,
    namespaces: Arc<HashSet<String>>,
}

impl Watch {
    fn key<K: Resource>(&self, obj: &K) -> ObjectKey {
        let meta = obj.meta();
        let namespace = match self.kind {
            Kind::Namespace => String::new(),
            _ => meta.namespace.clone().unwrap_or_else(|| "default".into()),
        };
        ObjectKey { kind: self.kind, namespace, name: meta.name.clone().unwrap_or_default() }
    }

    fn wanted(&self, key: &ObjectKey) -> bool {
        let ns = if self.kind == Kind::Namespace { &key.name } else { &key.namespace };
        self.namespaces.is_empty() || self.namespaces.contains(ns)
    }

    /// Trims one object, its port lists shared with equal ones met before.
    fn convert<K, F>(&self, obj: K, trim: &F, ports: &mut PortLists) -> Converted
    where
        K: Resource,
        F: Fn(K) -> Result<Option<Object>, String>,
    {
        let key = self.key(&obj);
        if !self.wanted(&key) {
            return Converted::Unwanted;
        }
        match trim(obj) {
            Ok(Some(mut o)) => {
                ports.intern(&mut o);
                Converted::Object(o)
            }
            Ok(None) => Converted::Ignored(key),
            Err(e) => {
                tracing::warn!(kind = ?self.kind, namespace = key.namespace, name = key.name, error = %e, "skipping an object that does not parse; its last good version stays");
                Converted::Bad(key)
            }
        }
    }

    fn send(&self, events: Vec<Event>) -> bool {
        self.tx.send(SourceMsg::Events(events)).is_ok()
    }

    async fn run<K, F>(self, api: Api<K>, config: watcher::Config, trim: F)
    where
        K: Resource + Clone + DeserializeOwned + Debug + Send + 'static,
        F: Fn(K) -> Result<Option<Object>, String>,
    {
        let mut stream = watcher::watcher(api, config).default_backoff().boxed();
        // What was last sent per object: a hash of its key to a 128-bit hash
        // of the trimmed object. A relist forwards only the objects whose hash
        // differs, so the unchanged ones (nearly all) are dropped as they
        // arrive instead of being held beside the model (issue 8). Two keys
        // sharing a hash only make an object count as changed: the deletes
        // are decided on the full keys of the list.
        let mut sent: foldhash::HashMap<u64, u128> = Default::default();
        // A list in progress: objects that changed, every key it held, and
        // the hashes `sent` takes once the list is sent whole.
        let mut listing: Option<Listing> = None;
        // Until the first list is whole: its changes may be applied as they
        // arrive (nothing is served as loaded yet). A later relist applies
        // its changes in one batch, so that a name present before and after
        // it never misses (an endpoint moving between two slices that
        // happen to arrive in different batches would).
        let mut first_list = true;
        let mut ports = PortLists::default();
        while let Some(item) = stream.next().await {
            let trigger = match &item {
                Ok(WatchEvent::Apply(obj)) => trigger_time(obj.meta()),
                _ => None,
            };
            let ok = match item {
                Ok(WatchEvent::Init) => {
                    listing = Some(Listing::default());
                    true
                }
                Ok(WatchEvent::InitApply(obj)) => {
                    let list = listing.get_or_insert_with(Listing::default);
                    match self.convert(obj, &trim, &mut ports) {
                        Converted::Object(o) => {
                            let (_, ns, name) = o.id();
                            let hashes = (sent_key(ns, name), object_hash(&o));
                            list.listed.insert(key_hash(ns, name));
                            if sent.get(&hashes.0) != Some(&hashes.1) {
                                list.changed.push(o);
                            }
                            list.hashes.push(hashes);
                            if first_list && list.changed.len() >= LIST_CHUNK {
                                list.sent_early += list.changed.len();
                                if !self.send(list.changed.drain(..).map(Event::Apply).collect()) {
                                    return;
                                }
                            }
                        }
                        // Listed, so not deleted: its last good version stays.
                        Converted::Bad(key) => {
                            list.listed.insert(key_hash(&key.namespace, &key.name));
                            let h = sent_key(&key.namespace, &key.name);
                            if let Some(&last) = sent.get(&h) {
                                list.hashes.push((h, last));
                            }
                        }
                        Converted::Ignored(_) | Converted::Unwanted => {}
                    }
                    true
                }
                Ok(WatchEvent::InitDone) => {
                    let Listing { changed, sent_early, listed, hashes } = listing.take().unwrap_or_default();
                    tracing::debug!(kind = ?self.kind, objects = listed.len(), changed = sent_early + changed.len(), "listed");
                    sent = hashes.into_iter().collect();
                    first_list = false;
                    let sent = self.send(vec![Event::Relist { kind: self.kind, changed, listed }]);
                    if self.sync.done(self.kind) {
                        tracing::info!("every kind listed: serving the cluster state");
                        let _ = self.tx.send(SourceMsg::Synced);
                    }
                    sent
                }
                Ok(WatchEvent::Apply(obj)) => match self.convert(obj, &trim, &mut ports) {
                    Converted::Object(o) => {
                        let (_, ns, name) = o.id();
                        sent.insert(sent_key(ns, name), object_hash(&o));
                        let sent = self.send(vec![Event::Apply(o.clone())]);
                        if let (Object::EndpointSlice(slice), Some(at)) = (&o, trigger)
                            && let Some(svc) = &slice.service
                        {
                            let msg = SourceMsg::Triggered(slice.namespace.to_string(), svc.to_string(), at);
                            let _ = self.tx.send(msg);
                        }
                        sent
                    }
                    Converted::Ignored(key) => {
                        sent.remove(&sent_key(&key.namespace, &key.name));
                        self.send(vec![Event::Delete(key)])
                    }
                    Converted::Bad(_) | Converted::Unwanted => true,
                },
                Ok(WatchEvent::Delete(obj)) => {
                    let key = self.key(&obj);
                    sent.remove(&sent_key(&key.namespace, &key.name));
                    !self.wanted(&key) || self.send(vec![Event::Delete(key)])
                }
                Err(e) => {
                    // The last known state keeps serving; the stream backs
                    // off (jittered, 800 ms to 30 s) and resumes or relists.
                    self.metrics.state.watch_restarts.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(kind = ?self.kind, error = %e, "watch failed; retrying");
                    true
                }
            };
            if !ok {
                return; // the updater is gone: shutting down
            }
        }
    }
}

impl Default for KubeOptions {
    fn default() -> Self {
        KubeOptions {
            kubeconfig: None,
            context: None,
            endpoint: None,
            scope: Scope::default(),
            pods: false,
            watch_timeout: Self::WATCH_TIMEOUT,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Svc = Lenient<core::Service>;

    #[test]
    fn a_bad_object_is_parsed_as_bad_in_lists_and_watch_events() {
        let list = r#"{"metadata":{"resourceVersion":"9"},"items":[
            {"metadata":{"name":"good","namespace":"team"},"spec":{"clusterIP":"10.96.1.1"}},
            {"metadata":{"name":"broken","namespace":"team"},"spec":[1,2]}]}"#;
        let list: kube::core::ObjectList<Svc> = serde_json::from_str(list).unwrap();
        let got: Vec<_> = list.items.into_iter().map(|o| (o.meta().name.clone(), o.parsed().is_ok())).collect();
        assert_eq!(got, [(Some("good".to_string()), true), (Some("broken".to_string()), false)]);
        // The object before its type (as a JSON library with sorted keys
        // writes it): buffered by serde, then read the same way.
        for line in [
            r#"{"object":{"metadata":{"name":"good","namespace":"team","resourceVersion":"7"},"spec":[1,2]},"type":"MODIFIED"}"#,
            r#"{"type":"MODIFIED","object":{"metadata":{"name":"good","namespace":"team","resourceVersion":"7"},"spec":[1,2]}}"#,
        ] {
            let ev: kube::core::WatchEvent<Svc> = serde_json::from_str(line).unwrap();
            let kube::core::WatchEvent::Modified(o) = ev else { panic!("not a modification: {ev:?}") };
            assert_eq!(o.meta().name.as_deref(), Some("good"));
            assert_eq!(o.meta().namespace.as_deref(), Some("team"));
            // The watcher resumes from it: without it, it relists.
            assert_eq!(o.meta().resource_version.as_deref(), Some("7"));
            assert!(o.parsed().is_err());
        }
    }
}
