//! Manifest files as a source: load a set of files and directory trees,
//! reload what changed on disk, and keep the last good version of a file that
//! is momentarily broken (an editor halfway through a save).

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use ipnet::IpNet;

use super::Scope;
use super::alloc::allocate;
use super::parse::{DocError, parse_text};
use crate::model::{Labels, Namespace, Object};

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("cannot read manifests at {path}: {error}")]
    Read { path: PathBuf, error: std::io::Error },
}

/// Every object of the manifests, and the problems found in the files read.
pub type Loaded = (Vec<Object>, Vec<DocError>);

/// What a file looked like when it was last parsed.
#[derive(Clone, PartialEq, Eq)]
struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
}

struct FileState {
    stamp: Stamp,
    objects: Vec<Object>,
}

/// The manifest files under a set of paths, with their parsed objects.
pub struct Manifests {
    roots: Vec<PathBuf>,
    cidr: IpNet,
    scope: Scope,
    files: HashMap<PathBuf, FileState>,
}

fn is_manifest(path: &Path) -> bool {
    let hidden = path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with('.'));
    let ext = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
    !hidden && matches!(ext.as_deref(), Some("yaml" | "yml" | "json"))
}

/// Every manifest file under `root` (the file itself when it is one).
fn walk(root: &Path, out: &mut BTreeSet<PathBuf>) -> std::io::Result<()> {
    let meta = std::fs::metadata(root)?;
    if !meta.is_dir() {
        out.insert(root.to_path_buf());
        return Ok(());
    }
    for entry in std::fs::read_dir(root)? {
        let path = entry?.path();
        let hidden = path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with('.'));
        if path.is_dir() && !hidden {
            // A subdirectory that vanishes mid-walk is simply not there.
            let _ = walk(&path, out);
        } else if is_manifest(&path) {
            out.insert(path);
        }
    }
    Ok(())
}

impl Manifests {
    pub fn new(roots: Vec<PathBuf>, cidr: IpNet, scope: Scope) -> Self {
        Manifests { roots, cidr, scope, files: HashMap::new() }
    }

    pub fn roots(&self) -> &[PathBuf] {
        &self.roots
    }

    /// Reads what changed since the last call and returns the complete set
    /// of objects, with the errors found in the files that were read now;
    /// `None` when no file changed at all.
    /// `strict`: a missing or unreadable root is an error (at start-up);
    /// later it only means its files are gone.
    pub fn load(&mut self, strict: bool) -> Result<Option<Loaded>, ManifestError> {
        let mut paths = BTreeSet::new();
        for root in &self.roots {
            if let Err(error) = walk(root, &mut paths)
                && strict
            {
                return Err(ManifestError::Read { path: root.clone(), error });
            }
        }
        let mut errors = Vec::new();
        let before = self.files.len();
        self.files.retain(|p, _| paths.contains(p));
        let mut changed = self.files.len() != before || self.files.is_empty();
        for path in &paths {
            let Ok(meta) = std::fs::metadata(path) else {
                continue;
            };
            let stamp = Stamp { modified: meta.modified().ok(), len: meta.len() };
            if self.files.get(path).is_some_and(|f| f.stamp == stamp) {
                continue;
            }
            let text = match std::fs::read(path) {
                Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
                Err(error) if strict => {
                    return Err(ManifestError::Read { path: path.clone(), error });
                }
                Err(e) => {
                    tracing::warn!(file = %path.display(), error = %e, "cannot read manifest file");
                    continue;
                }
            };
            changed = true;
            let (objects, errs) = parse_text(path, &text, self.scope.labels.as_ref());
            let broken = errs.iter().any(|e| e.syntax);
            errors.extend(errs);
            match self.files.get_mut(path) {
                // Keep the last good version of a file that does not parse
                // (no data lost on reload); its new stamp avoids re-reporting.
                Some(old) if broken => old.stamp = stamp,
                _ => {
                    self.files.insert(path.clone(), FileState { stamp, objects });
                }
            }
        }
        if !changed {
            return Ok(None);
        }
        let mut all: Vec<Object> = Vec::new();
        let mut sorted: Vec<&PathBuf> = self.files.keys().collect();
        sorted.sort();
        for p in sorted {
            all.extend(self.files[p].objects.iter().filter(|o| self.scope.keeps(o)).cloned());
        }
        // SPEC.md 1: in manifest mode a namespace exists when any object
        // lives in it; under `namespace_labels`, only a labelled Namespace
        // document makes one.
        let mut namespaces: BTreeSet<String> = BTreeSet::new();
        for obj in all.iter().filter(|_| !self.scope.gated()) {
            if !matches!(obj, Object::Namespace(_)) {
                namespaces.insert(obj.namespace().to_string());
            }
        }
        all.extend(namespaces.into_iter().map(|name| Object::Namespace(Namespace { name, labels: Labels::default() })));
        allocate(&mut all, &self.cidr);
        Ok(Some((all, errors)))
    }
}
