//! Manifest files as a source: load a set of files and directory trees,
//! reload what changed on disk, and keep the last good version of whatever
//! is momentarily broken.
//!
//! What counts as gone, and what is only unreadable for now:
//! - a file or directory that is not there (`NotFound`) is gone, with its
//!   objects; any other error reading it (no file descriptors left, no
//!   permission) keeps its last good state, and it is read again later;
//! - a document that does not parse, or an object the API server would
//!   refuse, keeps the last good version of that object (of the whole file
//!   when the document does not say which object it is);
//! - a file rewritten in place (`kubectl get -o yaml > file`: truncated,
//!   then written in pieces) keeps its last good version while it is empty,
//!   and a version that lost objects, or that ends mid-line, is applied
//!   only once the file has been still for [`SETTLE`];
//! - FIFOs, sockets and devices named `*.yaml`, and symlinks that loop, are
//!   skipped with a warning; nothing here ever blocks on a file.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::io::Read;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use ipnet::IpNet;

use super::Scope;
use super::alloc::allocate;
use super::parse::{Doc, DocError, DocObjects, parse_docs};
use crate::model::{Event, Kind, Object, ObjectKey, ServiceKind};

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("cannot read manifests at {path}: {error}")]
    Read { path: PathBuf, error: std::io::Error },
}

/// Every object of the manifests, and the problems found in the files read.
pub type Loaded = (Vec<Object>, Vec<DocError>);

/// What a reload found changed.
pub enum Reload {
    /// Every object served, for a reset: a change that the files' own
    /// applies and deletes cannot tell (below, [`Census`]).
    Reset(Vec<Object>),
    /// The applies and deletes of the changed files' objects: work in
    /// proportion to the change, not to the cluster.
    Events(Vec<Event>),
}

/// The objects a load took out of the served set (changed and removed
/// files' last versions) and put in (changed files' new versions).
#[derive(Default)]
struct Delta {
    /// Whether this load notes its delta.
    tracked: bool,
    removed: Vec<Object>,
    added: Vec<Object>,
}

/// Counts over every object served, kept up to date by each reload's
/// delta, that tell whether a change can be sent as its own applies and
/// deletes. It cannot when the change makes or ends a namespace (implied by
/// the objects in it), moves an allocated ClusterIP (allocation looks at
/// every Service), or touches an object that more than one file defines
/// (which one wins depends on all of them). A 32-bit hash stands for an
/// object: a collision only sends a change the full way.
#[derive(Default)]
struct Census {
    /// Definitions of each object, by the hash of its kind and name.
    defs: HashMap<u32, u32>,
    /// Objects in each namespace (Namespaces themselves aside).
    namespaces: HashMap<String, usize>,
    /// Services waiting for a ClusterIP.
    pending: usize,
}

fn id_hash(obj: &Object) -> u32 {
    use std::hash::BuildHasher;
    foldhash::quality::FixedState::with_seed(0x6d61_6e69_6665_7374).hash_one(obj.id()) as u32
}

fn waits_for_ip(obj: &Object) -> bool {
    matches!(obj, Object::Service(s) if matches!(&s.kind, ServiceKind::ClusterIp(ips) if ips.is_empty()))
}

impl Census {
    /// Counts `obj` in (`up`) or out. A count that falls to 0 is removed,
    /// so that names that come and go leave nothing behind.
    fn count(&mut self, obj: &Object, up: bool) {
        let h = id_hash(obj);
        if up {
            *self.defs.entry(h).or_default() += 1;
        } else if let Some(n) = self.defs.get_mut(&h) {
            *n -= 1;
            if *n == 0 {
                self.defs.remove(&h);
            }
        }
        if !matches!(obj, Object::Namespace(_)) {
            // Looked up first: a namespace's name is allocated once.
            let ns = obj.namespace();
            match (self.namespaces.get_mut(ns), up) {
                (Some(n), true) => *n += 1,
                (None, true) => {
                    self.namespaces.insert(ns.to_string(), 1);
                }
                (Some(n), false) => {
                    *n -= 1;
                    if *n == 0 {
                        self.namespaces.remove(ns);
                    }
                }
                (None, false) => {}
            }
        }
        if waits_for_ip(obj) {
            self.pending = if up { self.pending + 1 } else { self.pending.saturating_sub(1) };
        }
    }
}

/// How long a file must have been still before a version of it that lost
/// objects is believed: a writer that truncates a file and writes it again
/// in pieces updates its modification time with every piece.
pub const SETTLE: Duration = Duration::from_secs(1);

/// What a file looked like when it was last parsed.
#[derive(Clone, PartialEq, Eq)]
struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
    inode: u64,
}

struct FileState {
    stamp: Stamp,
    /// The last good objects, per document.
    docs: Vec<Doc>,
}

impl FileState {
    fn objects(&self) -> impl Iterator<Item = &Object> {
        self.docs.iter().flat_map(|d| d.objects.iter())
    }
}

/// The manifest files under a set of paths, with their parsed objects.
pub struct Manifests {
    roots: Vec<PathBuf>,
    cidr: IpNet,
    scope: Scope,
    files: HashMap<PathBuf, FileState>,
    /// Paths skipped with a warning, so that the warning is given once.
    skipped: HashSet<PathBuf>,
    /// When a deferred change should be looked at again.
    recheck: Option<Duration>,
    /// What the load under way took out and put in.
    delta: Delta,
    /// Counts of the served set as of the last reload (`None` until one).
    census: Option<Census>,
}

fn is_hidden(path: &Path) -> bool {
    path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with('.'))
}

fn is_manifest(path: &Path) -> bool {
    let ext = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
    !is_hidden(path) && matches!(ext.as_deref(), Some("yaml" | "yml" | "json"))
}

fn is_loop(e: &std::io::Error) -> bool {
    e.raw_os_error() == Some(libc::ELOOP)
}

/// What a walk of the roots found.
#[derive(Default)]
struct Found {
    /// Regular manifest files.
    files: BTreeSet<PathBuf>,
    /// Paths that could not be read for a reason other than being gone:
    /// every file under them keeps its last good state.
    unsure: Vec<(PathBuf, std::io::Error)>,
    /// Manifest-named paths that are not regular files, or loop.
    skipped: Vec<(PathBuf, &'static str)>,
    /// Directories walked (device, inode): a symlink back up is not
    /// walked twice.
    seen: HashSet<(u64, u64)>,
}

/// Every manifest file under `dir` (a directory whose metadata is `meta`).
fn walk_dir(dir: &Path, meta: &std::fs::Metadata, found: &mut Found) {
    if !found.seen.insert((meta.dev(), meta.ino())) {
        return; // reached again through a symlink
    }
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
        Err(e) => return found.unsure.push((dir.to_path_buf(), e)),
    };
    for entry in entries {
        let path = match entry {
            Ok(entry) => entry.path(),
            Err(e) => {
                // The listing is incomplete: nothing under it can be judged gone.
                found.unsure.push((dir.to_path_buf(), e));
                return;
            }
        };
        // Follows symlinks (a ConfigMap volume is symlinks to its data).
        match std::fs::metadata(&path) {
            Ok(m) if m.is_dir() => {
                if !is_hidden(&path) {
                    walk_dir(&path, &m, found);
                }
            }
            Ok(m) if m.is_file() => {
                if is_manifest(&path) {
                    found.files.insert(path);
                }
            }
            Ok(_) if is_manifest(&path) => found.skipped.push((path, "not a regular file (a FIFO, socket or device)")),
            Ok(_) => {}
            // A dangling symlink, or a file deleted mid-walk: not there.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) if is_loop(&e) => found.skipped.push((path, "a symlink loop")),
            Err(e) => found.unsure.push((path, e)),
        }
    }
}

/// Reads a regular file without ever blocking on it: opened non-blocking
/// (a FIFO put in its place after the walk would otherwise wait for a
/// writer), and refused unless it is still a regular file once open.
fn read_regular(path: &Path) -> std::io::Result<String> {
    let mut file = std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK).open(path)?;
    if !file.metadata()?.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    Ok(match String::from_utf8(bytes) {
        Ok(text) => text,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    })
}

/// What became of one changed file.
enum Outcome {
    /// The new version (with the last good version of its broken objects).
    Applied,
    /// The last good version stays; the new stamp is remembered.
    Kept,
    /// Not judged yet: looked at again once the file has settled.
    Deferred(Duration),
}

impl Manifests {
    pub fn new(roots: Vec<PathBuf>, cidr: IpNet, scope: Scope) -> Self {
        Manifests {
            roots,
            cidr,
            scope,
            files: HashMap::new(),
            skipped: HashSet::new(),
            recheck: None,
            delta: Delta::default(),
            census: None,
        }
    }

    pub fn roots(&self) -> &[PathBuf] {
        &self.roots
    }

    /// When the last [`Manifests::load`] left a change undecided (a file
    /// still being written), how soon to load again.
    pub fn recheck_in(&self) -> Option<Duration> {
        self.recheck
    }

    /// Reads what changed since the last call and returns the complete set
    /// of objects, with the errors found in the files that were read now;
    /// `None` when no file changed at all.
    /// `strict`: a missing or unreadable root or file is an error (at
    /// start-up); later a missing one is gone and an unreadable one keeps
    /// A file that could not be read: gone when it is not found (true: the
    /// objects changed), an error at start-up, else its last good version
    /// stays (an I/O error, such as running out of descriptors, is no
    /// deletion).
    fn read_failed(&mut self, path: &Path, error: std::io::Error, strict: bool) -> Result<bool, ManifestError> {
        if error.kind() == std::io::ErrorKind::NotFound {
            let Some(gone) = self.files.remove(path) else { return Ok(false) };
            self.took_out(&gone);
            return Ok(true);
        }
        if strict {
            return Err(ManifestError::Read { path: path.to_path_buf(), error });
        }
        tracing::warn!(file = %path.display(), %error, "cannot read; keeping its last good version");
        Ok(false)
    }

    /// its last good state.
    pub fn load(&mut self, strict: bool) -> Result<Option<Loaded>, ManifestError> {
        let Some(errors) = self.scan(strict, false)? else { return Ok(None) };
        // Counted again before the next reload.
        self.census = None;
        Ok(Some((self.objects(), errors)))
    }

    /// [`Manifests::load`] after the first: what changed, as the applies
    /// and deletes of the changed files' objects when those tell it all.
    pub fn reload(&mut self) -> Result<Option<(Reload, Vec<DocError>)>, ManifestError> {
        let Some(errors) = self.scan(false, true)? else { return Ok(None) };
        let reload = match self.diff() {
            Some(events) => Reload::Events(events),
            None => Reload::Reset(self.objects()),
        };
        Ok(Some((reload, errors)))
    }

    /// Counts the served set before any reload needs it, so that the first
    /// change is sent in proportion to itself too (the watcher calls this
    /// once it is idle).
    pub fn prepare(&mut self) {
        if self.census.is_none() {
            self.census = Some(self.count_all());
        }
    }

    /// Whether [`Manifests::prepare`] has nothing left to do.
    pub fn prepared(&self) -> bool {
        self.census.is_some()
    }

    fn count_all(&self) -> Census {
        let all = self.files.values().map(|f| f.docs.iter().map(|d| d.objects.len()).sum::<usize>()).sum();
        let mut c = Census { defs: HashMap::with_capacity(all), ..Census::default() };
        for f in self.files.values() {
            f.objects().filter(|o| self.scope.keeps(o)).for_each(|o| c.count(o, true));
        }
        c
    }

    /// Notes the served objects of a file's last version as taken out.
    fn took_out(&mut self, old: &FileState) {
        if self.delta.tracked {
            let scope = &self.scope;
            self.delta.removed.extend(old.objects().filter(|o| scope.keeps(o)).cloned());
        }
    }

    /// The last scan's delta as applies and deletes, or `None` when the
    /// change must go as a reset ([`Census`]).
    fn diff(&mut self) -> Option<Vec<Event>> {
        let Delta { removed, added, .. } = std::mem::take(&mut self.delta);
        // The counts after this change.
        let census = match self.census.take() {
            Some(mut c) => {
                removed.iter().for_each(|o| c.count(o, false));
                added.iter().for_each(|o| c.count(o, true));
                c
            }
            None => self.count_all(),
        };
        let events = self.diff_with(&census, &removed, &added);
        self.census = Some(census);
        events
    }

    fn diff_with(&self, after: &Census, removed: &[Object], added: &[Object]) -> Option<Vec<Event>> {
        let touched = || removed.iter().chain(added);
        if touched().any(|o| matches!(o, Object::Namespace(_)) || waits_for_ip(o)) {
            return None;
        }
        if after.pending > 0 && touched().any(|o| matches!(o, Object::Service(_))) {
            return None;
        }
        // How this change moved each touched object's and namespace's count.
        let mut moved: HashMap<u32, i64> = HashMap::new();
        let mut ns_moved: HashMap<&str, i64> = HashMap::new();
        for (o, step) in removed.iter().map(|o| (o, -1)).chain(added.iter().map(|o| (o, 1))) {
            *moved.entry(id_hash(o)).or_default() += step;
            *ns_moved.entry(o.namespace()).or_default() += step;
        }
        for (h, step) in &moved {
            let now = i64::from(after.defs.get(h).copied().unwrap_or(0));
            if now > 1 || now - step > 1 {
                return None;
            }
        }
        if !self.scope.gated() {
            for (ns, step) in &ns_moved {
                let now = after.namespaces.get(*ns).copied().unwrap_or(0) as i64;
                // A namespace that appears or empties: its implied Namespace.
                if (now == 0) != (now - step == 0) {
                    return None;
                }
            }
        }
        let old: HashMap<(Kind, &str, &str), &Object> = removed.iter().map(|o| (o.id(), o)).collect();
        let new: HashSet<(Kind, &str, &str)> = added.iter().map(Object::id).collect();
        let mut events: Vec<Event> = added
            .iter()
            .filter(|o| old.get(&o.id()).is_none_or(|prev| *prev != *o))
            .map(|o| Event::Apply(o.clone()))
            .collect();
        events.extend(removed.iter().filter(|o| !new.contains(&o.id())).map(|o| Event::Delete(o.key())));
        Some(events)
    }

    /// Reads what changed on disk into the files' states; the problems
    /// found, or `None` when nothing changed. `track`: note the delta (a
    /// first load has no use for it).
    fn scan(&mut self, strict: bool, track: bool) -> Result<Option<Vec<DocError>>, ManifestError> {
        self.recheck = None;
        self.delta = Delta { tracked: track, ..Delta::default() };
        let mut found = Found::default();
        for root in &self.roots {
            match std::fs::metadata(root) {
                Ok(m) if m.is_dir() => walk_dir(root, &m, &mut found),
                Ok(m) if m.is_file() => {
                    found.files.insert(root.clone());
                }
                Ok(_) => found.skipped.push((root.clone(), "not a regular file (a FIFO, socket or device)")),
                Err(e) if strict => return Err(ManifestError::Read { path: root.clone(), error: e }),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) if is_loop(&e) => found.skipped.push((root.clone(), "a symlink loop")),
                Err(e) => found.unsure.push((root.clone(), e)),
            }
        }
        if strict && let Some(i) = found.unsure.iter().position(|(p, _)| self.roots.contains(p)) {
            let (path, error) = found.unsure.swap_remove(i);
            return Err(ManifestError::Read { path, error });
        }
        for (path, why) in &found.skipped {
            if self.skipped.insert(path.clone()) {
                tracing::warn!(file = %path.display(), "skipping {why}");
            }
        }
        self.skipped.retain(|p| found.skipped.iter().any(|(s, _)| s == p));
        for (path, error) in &found.unsure {
            tracing::warn!(path = %path.display(), %error, "cannot read; keeping the last good version of the files there");
        }
        let before = self.files.len();
        let unsure = |p: &Path| found.unsure.iter().any(|(u, _)| p.starts_with(u));
        let gone: Vec<PathBuf> =
            self.files.keys().filter(|p| !found.files.contains(*p) && !unsure(p)).cloned().collect();
        for p in gone {
            if let Some(old) = self.files.remove(&p) {
                self.took_out(&old);
            }
        }
        let mut changed = self.files.len() != before || self.files.is_empty();
        let mut errors = Vec::new();
        let now = SystemTime::now();
        for path in &found.files {
            let meta = match std::fs::metadata(path) {
                Ok(m) => m,
                Err(e) => {
                    changed |= self.read_failed(path, e, strict)?;
                    continue;
                }
            };
            let stamp = Stamp { modified: meta.modified().ok(), len: meta.len(), inode: meta.ino() };
            if self.files.get(path).is_some_and(|f| f.stamp == stamp) {
                continue;
            }
            let text = match read_regular(path) {
                Ok(text) => text,
                Err(e) => {
                    changed |= self.read_failed(path, e, strict)?;
                    continue;
                }
            };
            match self.update(path, stamp, &text, now, &mut errors) {
                Outcome::Applied => changed = true,
                Outcome::Kept => {}
                Outcome::Deferred(wait) => {
                    self.recheck = Some(self.recheck.map_or(wait, |r| r.min(wait)));
                }
            }
        }
        if !changed {
            return Ok(None);
        }
        Ok(Some(errors))
    }

    /// Parses the new `text` of `path` and decides what of it to serve.
    fn update(
        &mut self,
        path: &Path,
        stamp: Stamp,
        text: &str,
        now: SystemTime,
        errors: &mut Vec<DocError>,
    ) -> Outcome {
        let file = path.display();
        let old = self.files.get(path);
        // Still being written: modified less than SETTLE ago.
        let settling = stamp
            .modified
            .and_then(|m| now.duration_since(m).ok())
            .filter(|age| *age < SETTLE)
            .map(|age| SETTLE - age + Duration::from_millis(20));
        let had_objects = old.is_some_and(|o| o.objects().next().is_some());
        if text.trim().is_empty() && had_objects {
            // Truncated for a rewrite (`> file`), or emptied: either way
            // the last good version stays until the file has content.
            if let Some(wait) = settling {
                return Outcome::Deferred(wait);
            }
            tracing::warn!(file = %file, "the file is empty: keeping its last good version (delete the file to remove its objects)");
            if let Some(f) = self.files.get_mut(path) {
                f.stamp = stamp;
            }
            return Outcome::Kept;
        }
        // Documents whose text did not change keep their objects.
        let known: HashMap<std::num::NonZeroU64, &DocObjects> =
            old.iter().flat_map(|o| o.docs.iter()).filter_map(|d| Some((d.hash?, &d.objects))).collect();
        let (mut docs, errs) =
            parse_docs(path, text, self.scope.labels.as_ref(), &|h| known.get(&h).map(|o| (*o).clone()));
        // An error that names no object (not YAML at all, no name) could
        // be about any of them: the whole file keeps its last good version.
        let broken = errs.iter().any(|e| e.key.is_none());
        let failed: HashSet<&ObjectKey> = errs.iter().filter_map(|e| e.key.as_ref()).collect();
        let mut kept = Vec::new();
        if let Some(old) = old {
            // The objects that failed keep their last good version...
            if !failed.is_empty() {
                let present: HashSet<ObjectKey> = docs.iter().flat_map(|d| d.objects.iter().map(Object::key)).collect();
                kept = old
                    .objects()
                    .filter(|o| failed.contains(&o.key()) && !present.contains(&o.key()))
                    .cloned()
                    .collect();
            }
            // ...and objects parsed again that did not change keep their
            // allocation, shared with the model rather than held twice.
            let reused = |d: &Doc| d.hash.is_some_and(|h| known.contains_key(&h));
            if docs.iter().any(|d| !reused(d)) {
                let by_key: HashMap<ObjectKey, &Object> = old.objects().map(|o| (o.key(), o)).collect();
                for doc in docs.iter_mut().filter(|d| !reused(d)) {
                    for o in doc.objects.iter_mut() {
                        if let Some(prev) = by_key.get(&o.key()).filter(|p| **p == o) {
                            *o = (*prev).clone();
                        }
                    }
                }
            }
        }
        // Whether objects of the last good version are missing now (only
        // asked of a file still being written).
        let lost = settling.is_some()
            && old.is_some_and(|old| {
                let now: HashSet<ObjectKey> =
                    docs.iter().flat_map(|d| d.objects.iter()).chain(kept.iter()).map(Object::key).collect();
                old.objects().any(|o| !now.contains(&o.key()))
            });
        // Cut mid-line: the last document may parse, but as less than it
        // will be (a Service without its clusterIP gets another one).
        let cut = !text.ends_with('\n');
        if (broken || lost || cut)
            && had_objects
            && let Some(wait) = settling
        {
            // Half written, most likely: judge it once it has settled.
            return Outcome::Deferred(wait);
        }
        if broken && let Some(f) = self.files.get_mut(path) {
            tracing::warn!(file = %file, "keeping the file's last good version until it parses");
            f.stamp = stamp;
            errors.extend(errs);
            return Outcome::Kept;
        }
        for e in &errs {
            if let Some(key) = &e.key
                && kept.iter().any(|o| o.key() == *key)
            {
                tracing::warn!(file = %file, kind = key.kind.name(), namespace = key.namespace, name = key.name, "keeping the object's last good version");
            }
        }
        errors.extend(errs);
        if !kept.is_empty() {
            docs.push(Doc { hash: None, objects: DocObjects::from_vec(kept) });
        }
        let new = FileState { stamp, docs };
        if self.delta.tracked {
            let scope = &self.scope;
            self.delta.added.extend(new.objects().filter(|o| scope.keeps(o)).cloned());
        }
        if let Some(old) = self.files.insert(path.to_path_buf(), new) {
            self.took_out(&old);
        }
        Outcome::Applied
    }

    /// Every object served, with the namespaces and ClusterIPs the
    /// manifests leave implicit.
    fn objects(&self) -> Vec<Object> {
        let mut all: Vec<Object> = Vec::new();
        let mut sorted: Vec<&PathBuf> = self.files.keys().collect();
        sorted.sort();
        for p in sorted {
            all.extend(self.files[p].objects().filter(|o| self.scope.keeps(o)).cloned());
        }
        // SPEC.md 1: in manifest mode a namespace exists when any object
        // lives in it; under `namespace_labels`, only a labelled Namespace
        // document makes one.
        let mut namespaces: BTreeSet<&str> = BTreeSet::new();
        for obj in all.iter().filter(|_| !self.scope.gated()) {
            if !matches!(obj, Object::Namespace(_)) {
                namespaces.insert(obj.namespace());
            }
        }
        let implied: Vec<Object> = namespaces.into_iter().map(|name| Object::new_namespace(name.to_string())).collect();
        all.extend(implied);
        allocate(&mut all, &self.cidr);
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Cluster;
    use std::time::UNIX_EPOCH;

    fn feed(cluster: &mut Cluster, events: Vec<Event>) {
        for e in events {
            match e {
                Event::Apply(o) => {
                    cluster.apply(o);
                }
                Event::Delete(k) => {
                    cluster.delete(&k);
                }
                Event::Reset { kinds, objects } => {
                    let diff = cluster.diff_reset(&kinds, objects);
                    feed(cluster, diff);
                }
                _ => unreachable!("a manifest source sends applies, deletes and resets"),
            }
        }
    }

    fn sorted(cluster: &Cluster) -> Vec<Object> {
        let mut all = cluster.objects();
        all.sort_by_key(Object::key);
        all
    }

    /// Reloads that send only a change's applies and deletes leave the
    /// model as a reset of everything served would: random edits over
    /// three files, with the cases that must take the full way among them
    /// (an object in two files, a new or emptied namespace, a Service
    /// waiting for a ClusterIP, a Namespace document, a broken document).
    #[test]
    fn reloads_in_proportion_end_where_a_reset_does() {
        let dir = tempfile::tempdir().expect("tempdir");
        // Small, so that allocation meets the ClusterIPs given: `a/auto`
        // hashes to 10.96.0.9, which one version of `web-F` takes.
        let cidr: IpNet = "10.96.0.0/28".parse().expect("cidr");
        // `F` becomes the file's own letter: only the shared pieces (the last
        // four) can put one object in two files.
        let pieces = [
            "apiVersion: v1\nkind: Service\nmetadata: {name: web-F, namespace: a}\nspec: {clusterIP: 10.96.0.20, ports: [{port: 80}]}\n",
            "apiVersion: v1\nkind: Service\nmetadata: {name: web-F, namespace: a}\nspec: {clusterIP: 10.96.0.9, ports: [{port: 80}]}\n",
            "apiVersion: v1\nkind: Service\nmetadata: {name: db-F, namespace: a}\nspec: {clusterIP: None, ports: [{port: 5432}]}\n",
            "apiVersion: v1\nkind: Service\nmetadata: {name: api-F, namespace: b}\nspec: {clusterIP: 10.96.0.30, ports: [{port: 443}]}\n",
            "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: db-F-1, namespace: a, labels: {kubernetes.io/service-name: db-F}}\naddressType: IPv4\nendpoints: [{addresses: [10.1.0.1]}]\n",
            "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: db-F-1, namespace: a, labels: {kubernetes.io/service-name: db-F}}\naddressType: IPv4\nendpoints: [{addresses: [10.1.0.2]}]\n",
            "apiVersion: v1\nkind: Service\nmetadata: {name: auto, namespace: a}\nspec: {ports: [{port: 80}]}\n",
            "apiVersion: v1\nkind: Service\nmetadata: {name: new, namespace: c}\nspec: {clusterIP: 10.96.0.40, ports: [{port: 80}]}\n",
            "apiVersion: v1\nkind: Namespace\nmetadata: {name: d}\n",
            "kind: [broken\n",
        ];
        let mut next = crate::source::xorshift(0x2545_f491_4f6c_dd1du64);
        let always = "apiVersion: v1\nkind: Service\nmetadata: {name: base, namespace: a}\nspec: {clusterIP: 10.96.0.10}\n---\napiVersion: v1\nkind: Service\nmetadata: {name: base, namespace: b}\nspec: {clusterIP: 10.96.0.11}\n";
        // All namespaces, and only `a` (what is left out is never sent).
        let scopes = [Scope::default(), Scope { namespaces: vec!["a".into()], ..Scope::default() }];
        for (run, scope) in scopes.into_iter().enumerate() {
            for f in ["x.yaml", "y.yaml", "z.yaml"] {
                let _ = std::fs::remove_file(dir.path().join(f));
            }
            std::fs::write(dir.path().join("base.yaml"), always).expect("write");
            let mut watched = Manifests::new(vec![dir.path().to_path_buf()], cidr, scope);
            let mut model = Cluster::new();
            let (objects, _) = watched.load(true).expect("load").expect("objects");
            feed(&mut model, vec![Event::Reset { kinds: crate::source::ALL_KINDS.to_vec(), objects }]);
            let (mut diffs, mut resets) = (0, 0);
            for step in 1..=400u64 {
                // One to three files change between two reloads.
                for letter in ["x", "y", "z"] {
                    if next(2) == 0 {
                        continue;
                    }
                    let file = dir.path().join(format!("{letter}.yaml"));
                    if next(6) == 0 {
                        let _ = std::fs::remove_file(&file);
                        continue;
                    }
                    // The pieces that must take the full way (the last four) are rarer.
                    let n = next(4);
                    let text: Vec<&str> =
                        (0..n).map(|_| if next(8) == 0 { pieces[6 + next(4)] } else { pieces[next(6)] }).collect();
                    std::fs::write(&file, text.join("---\n").replace('F', letter)).expect("write");
                    // Long still (no settling wait), and a stamp of its own.
                    let f = std::fs::File::options().write(true).open(&file).expect("open");
                    let stamp = 1_000_000 + 10_000 * run as u64 + step;
                    f.set_modified(UNIX_EPOCH + Duration::from_secs(stamp)).expect("mtime");
                }
                if next(3) == 0 {
                    watched.prepare();
                }
                match watched.reload().expect("reload") {
                    None => {}
                    Some((Reload::Reset(objects), _)) => {
                        resets += 1;
                        feed(&mut model, vec![Event::Reset { kinds: crate::source::ALL_KINDS.to_vec(), objects }]);
                    }
                    Some((Reload::Events(events), _)) => {
                        diffs += 1;
                        feed(&mut model, events);
                    }
                }
                // What a reset of everything served would have made.
                let mut fresh = Cluster::new();
                let all = watched.objects();
                feed(&mut fresh, vec![Event::Reset { kinds: crate::source::ALL_KINDS.to_vec(), objects: all }]);
                assert_eq!(sorted(&model), sorted(&fresh), "scope {run}, step {step}");
            }
            // Both ways are taken, the short one most.
            assert!(diffs > 60 && resets > 20, "{diffs} sent as changes, {resets} as resets");
        }
    }

    /// An object that two files define is the version of the file that
    /// sorts last, after any history of edits: the same files make the same
    /// state (a reset used to keep whichever version it did not hold).
    #[test]
    fn an_object_in_two_files_is_the_last_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let svc = |ip: &str| {
            format!("apiVersion: v1\nkind: Service\nmetadata: {{name: web, namespace: a}}\nspec: {{clusterIP: {ip}}}\n")
        };
        let write = |file: &str, text: &str, stamp: u64| {
            let path = dir.path().join(file);
            std::fs::write(&path, text).expect("write");
            let f = std::fs::File::options().write(true).open(&path).expect("open");
            f.set_modified(UNIX_EPOCH + Duration::from_secs(1_000_000 + stamp)).expect("mtime");
        };
        write("x.yaml", &svc("10.96.0.1"), 0);
        write("y.yaml", &svc("10.96.0.2"), 0);
        let mut manifests =
            Manifests::new(vec![dir.path().to_path_buf()], "10.96.0.0/16".parse().expect("cidr"), Scope::default());
        let mut model = Cluster::new();
        let (objects, _) = manifests.load(true).expect("load").expect("objects");
        feed(&mut model, vec![Event::Reset { kinds: crate::source::ALL_KINDS.to_vec(), objects }]);
        let ip = |model: &Cluster| format!("{:?}", model.service("a", "web").map(|s| &s.kind));
        assert_eq!(ip(&model), "Some(ClusterIp([10.96.0.2]))");
        for (n, x) in ["10.96.0.3", "10.96.0.4", "10.96.0.1"].into_iter().enumerate() {
            write("x.yaml", &svc(x), n as u64 + 1);
            let (reload, _) = manifests.reload().expect("reload").expect("a change");
            let events = match reload {
                Reload::Reset(objects) => vec![Event::Reset { kinds: crate::source::ALL_KINDS.to_vec(), objects }],
                Reload::Events(_) => panic!("an object in two files goes the full way"),
            };
            feed(&mut model, events);
            assert_eq!(ip(&model), "Some(ClusterIp([10.96.0.2]))", "x.yaml at {x}");
        }
    }

    /// What the census counts out is gone from it: names that come and go
    /// over a long run leave no entries behind.
    #[test]
    fn the_census_forgets_what_it_counts_out() {
        let svc = |ns: &str, name: &str| {
            let text = format!(
                "apiVersion: v1\nkind: Service\nmetadata: {{name: {name}, namespace: {ns}}}\nspec: {{clusterIP: 10.96.0.9}}\n"
            );
            let (objects, errors) = super::super::parse::parse_text(Path::new("x.yaml"), &text, None);
            assert!(errors.is_empty(), "{errors:?}");
            objects.into_iter().next().expect("a Service")
        };
        let mut census = Census::default();
        let objects: Vec<Object> = (0..100).map(|i| svc(&format!("ns-{}", i % 3), &format!("s-{i}"))).collect();
        objects.iter().for_each(|o| census.count(o, true));
        assert_eq!((census.defs.len(), census.namespaces.len()), (100, 3));
        objects.iter().for_each(|o| census.count(o, false));
        assert_eq!((census.defs.len(), census.namespaces.len(), census.pending), (0, 0, 0));
        // Counting out what was never in changes nothing.
        census.count(&objects[0], false);
        assert!(census.defs.is_empty() && census.namespaces.is_empty());
    }
}
