//! Where the memory goes: live heap bytes after each stage of loading a
//! manifest cluster (parsed objects, model, DNS index), counted by a global
//! allocator wrapper around mimalloc (the binary's allocator), with what
//! mimalloc rounds each request up to and the process's resident set.
//! `cargo bench --bench memory -- /path/to/cluster.yaml`

use std::alloc::{GlobalAlloc, Layout};

use mimalloc::MiMalloc;
use std::sync::atomic::{AtomicIsize, Ordering};

use clusterdns::model::Event;
use clusterdns::records::{PodMode, Updater, ZoneConfig, ZoneIndex};
use clusterdns::source::ALL_KINDS;
use clusterdns::source::manifests::Manifests;

struct Counting;

/// Bytes asked for and live.
static LIVE: AtomicIsize = AtomicIsize::new(0);
/// The same allocations at the size mimalloc gives them (its size classes).
static ROUNDED: AtomicIsize = AtomicIsize::new(0);

fn rounded(size: usize) -> isize {
    // SAFETY: a pure function of its argument.
    unsafe { libmimalloc_sys::mi_good_size(size) as isize }
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        ROUNDED.fetch_add(rounded(layout.size()), Ordering::Relaxed);
        unsafe { MiMalloc.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        ROUNDED.fetch_sub(rounded(layout.size()), Ordering::Relaxed);
        unsafe { MiMalloc.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new: usize) -> *mut u8 {
        LIVE.fetch_add(new as isize - layout.size() as isize, Ordering::Relaxed);
        ROUNDED.fetch_add(rounded(new) - rounded(layout.size()), Ordering::Relaxed);
        unsafe { MiMalloc.realloc(ptr, layout, new) }
    }
}

/// Live heap as asked for and as rounded by mimalloc, and the resident set
/// once mimalloc has handed back what it holds free (as the server does
/// after a load), in MiB.
fn resident() -> String {
    // SAFETY: mi_collect only frees mimalloc's own empty pages.
    unsafe { libmimalloc_sys::mi_collect(true) };
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib = |field: &str| {
        status.lines().find_map(|l| l.strip_prefix(field)?.trim().trim_end_matches(" kB").parse::<f64>().ok())
    };
    format!(
        "heap {:.1} MiB asked, {:.1} MiB in mimalloc's size classes; VmRSS {:.1} MiB, VmHWM {:.1} MiB",
        mib(),
        ROUNDED.load(Ordering::Relaxed) as f64 / 1048576.0,
        kib("VmRSS:").unwrap_or(0.0) / 1024.0,
        kib("VmHWM:").unwrap_or(0.0) / 1024.0
    )
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn mib() -> f64 {
    LIVE.load(Ordering::Relaxed) as f64 / 1048576.0
}

fn main() {
    let Some(path) = std::env::args().skip(1).find(|a| !a.starts_with('-')) else {
        eprintln!("usage: cargo bench --bench memory -- CLUSTER.yaml");
        return;
    };
    let base = mib();
    let mut manifests = Manifests::new(vec![path.into()], "10.96.0.0/12".parse().unwrap(), Default::default());
    let (objects, _) = manifests.load(true).unwrap().unwrap_or_default();
    let n = objects.len();
    let parsed = mib();
    println!("objects: {n}, live heap {:.1} MiB (manifest cache + the list sent to the model)", parsed - base);
    println!("  after the parse: {}", resident());
    // The model alone (its maps and indexes; the objects are shared).
    let before = mib();
    let mut model = clusterdns::model::Cluster::new();
    for obj in objects.iter().cloned() {
        model.apply(obj);
    }
    let model_maps = mib() - before;
    drop(model);
    println!("model: +{model_maps:.1} MiB of maps and indexes over the shared objects");
    let index = ZoneIndex::new(ZoneConfig::new("cluster.local", 5, PodMode::Disabled).unwrap());
    let mut updater = Updater::new(index.clone(), clusterdns::model::Cluster::new());
    let started = std::time::Instant::now();
    updater.apply(vec![Event::Reset { kinds: ALL_KINDS.to_vec(), objects }]);
    println!("model and index built in {:.2} s", started.elapsed().as_secs_f64());
    println!("  after the build: {}", resident());
    let built = mib();
    let names = index.len();
    let index_bytes = (built - parsed - model_maps) * 1048576.0;
    println!(
        "DNS index: +{:.1} MiB, {names} names ({:.0} bytes per name, with the updater's owner ids)",
        index_bytes / 1048576.0,
        index_bytes / names as f64
    );
    shapes(&index);
    let (shared, parts, bytes) = index.shared_stats();
    println!(
        "  names with several owners: {shared}, {parts} parts, {:.1} MiB of the parts' answers",
        bytes as f64 / 1048576.0
    );
    let total = mib() - base;
    drop(manifests);
    let without = mib() - base;
    println!(
        "objects alone {:.1} MiB ({:.0} bytes per object); the manifest cache's own {:.1} MiB",
        without - model_maps - index_bytes / 1048576.0,
        (without - model_maps - index_bytes / 1048576.0) * 1048576.0 / n as f64,
        total - without
    );
    println!("total {total:.1} MiB; without the manifest cache {without:.1} MiB");
    println!("  without the manifest cache: {}", resident());
}

/// The index's names by shape: how many, and the bytes of their answers
/// (key included), to see which names the memory goes to.
fn shapes(index: &ZoneIndex) {
    let mut by: std::collections::BTreeMap<&str, (usize, usize, usize)> = Default::default();
    for (key, data) in index.dump() {
        let labels = {
            let (mut n, mut i) = (0, 0);
            while i < key.len() && key[i] != 0 {
                n += 1;
                i += 1 + key[i] as usize;
            }
            n
        };
        let shape = if key.windows(8).any(|w| w == b"\x07in-addr") {
            if data.is_empty() { "reverse, empty" } else { "PTR" }
        } else if key.get(1) == Some(&b'_') {
            if data.is_empty() { "_proto.svc (empty)" } else { "_port._proto.svc" }
        } else if data.is_empty() {
            "other empty"
        } else if labels == 5 {
            "service"
        } else if labels == 6 {
            "endpoint or pod name"
        } else {
            "other"
        };
        let e = by.entry(shape).or_default();
        e.0 += 1;
        e.1 += data.stored_len();
        e.2 += key.len();
    }
    for (shape, (n, bytes, keys)) in by {
        println!(
            "  {shape:24} {n:>9} names {:>7.1} MiB ({:.0} B each, key {:.0} B)",
            bytes as f64 / 1048576.0,
            bytes as f64 / n as f64,
            keys as f64 / n as f64
        );
    }
}
