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
use crate::model::{Object, ObjectKey};

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("cannot read manifests at {path}: {error}")]
    Read { path: PathBuf, error: std::io::Error },
}

/// Every object of the manifests, and the problems found in the files read.
pub type Loaded = (Vec<Object>, Vec<DocError>);

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
        Manifests { roots, cidr, scope, files: HashMap::new(), skipped: HashSet::new(), recheck: None }
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
            return Ok(self.files.remove(path).is_some());
        }
        if strict {
            return Err(ManifestError::Read { path: path.to_path_buf(), error });
        }
        tracing::warn!(file = %path.display(), %error, "cannot read; keeping its last good version");
        Ok(false)
    }

    /// its last good state.
    pub fn load(&mut self, strict: bool) -> Result<Option<Loaded>, ManifestError> {
        self.recheck = None;
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
        self.files.retain(|p, _| found.files.contains(p) || unsure(p));
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
        Ok(Some((self.objects(), errors)))
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
        self.files.insert(path.to_path_buf(), FileState { stamp, docs });
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
