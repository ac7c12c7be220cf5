//! Arbitrary bytes as a manifest file, read as YAML (`*.yaml`) and as JSON
//! (`*.json`) through the manifest source's own load (`Manifests::load`:
//! the file read, parsed, namespaces added, ClusterIPs allocated), then the
//! objects applied to a model and the zone rendered (`render_zone`, what
//! `clusterdns zone` prints) and to a zone index (what the server answers
//! from), with a few questions asked of it.
//!
//! Invariants: nothing panics; the run ends in bounded time (libFuzzer's
//! `-timeout`); a zone index that took the objects answers every question.

#![no_main]

use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock};

use clusterdns::model::{Cluster, Event};
use clusterdns::records::{PodMode, Updater, ZoneConfig, ZoneIndex, render_zone};
use clusterdns::source::manifests::Manifests;
use libfuzzer_sys::fuzz_target;

/// Where the input is written: one folder per format, in memory when the
/// machine has /dev/shm.
static DIRS: LazyLock<[PathBuf; 2]> = LazyLock::new(|| {
    let base = if Path::new("/dev/shm").is_dir() { PathBuf::from("/dev/shm") } else { std::env::temp_dir() };
    // The folders of runs that have ended (libFuzzer exits without
    // unwinding, so none removes its own) go first.
    let prefix = "clusterdns-fuzz-manifest-";
    for entry in std::fs::read_dir(&base).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(pid) = name.strip_prefix(prefix)
            && !Path::new("/proc").join(pid).exists()
        {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
    let base = base.join(format!("{prefix}{}", std::process::id()));
    let dirs = [base.join("yaml"), base.join("json")];
    for d in &dirs {
        std::fs::create_dir_all(d).expect("scratch folder");
    }
    dirs
});

fn load(dir: &PathBuf, file: &str, data: &[u8]) {
    let path = dir.join(file);
    std::fs::write(&path, data).expect("scratch file");
    let cidr = "10.96.0.0/12".parse().expect("cidr");
    let mut manifests = Manifests::new(vec![path], cidr, Default::default());
    let Ok(Some((objects, _errors))) = manifests.load(true) else { return };
    let cfg = ZoneConfig::new("cluster.local", 5, PodMode::Verified).expect("zone");

    // `clusterdns zone`: the model, then the snapshot.
    let mut cluster = Cluster::new();
    for obj in objects.iter().cloned() {
        cluster.apply(obj);
    }
    let zone = render_zone(&cluster, &cfg);
    assert!(zone.is_ascii() || !zone.is_empty(), "a rendered zone");

    // `serve`: the index the server answers from, fed as the updater feeds it.
    let index = ZoneIndex::new(cfg);
    let mut updater = Updater::new(Arc::clone(&index), Cluster::new());
    let kinds = clusterdns::source::ALL_KINDS.to_vec();
    updater.apply(vec![Event::Reset { kinds: kinds.clone(), objects: objects.clone() }]);
    // A second load of the same objects changes nothing and breaks nothing.
    updater.apply(vec![Event::Reset { kinds, objects }]);
    index.set_loaded();
    for (name, _) in index.dump() {
        assert!(index.get(&name).is_some(), "a dumped name is found again");
    }
}

fuzz_target!(|data: &[u8]| {
    let [yaml, json] = &*DIRS;
    load(yaml, "input.yaml", data);
    load(json, "input.json", data);
});
