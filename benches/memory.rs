//! Where the memory goes: live heap bytes after each stage of loading a
//! manifest cluster (parsed objects, model, DNS index), counted by a global
//! allocator wrapper. `cargo bench --bench memory -- /path/to/cluster.yaml`

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

use clusterdns::model::Event;
use clusterdns::records::{PodMode, Updater, ZoneConfig, ZoneIndex};
use clusterdns::source::ALL_KINDS;
use clusterdns::source::manifests::Manifests;

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new: usize) -> *mut u8 {
        LIVE.fetch_add(new as isize - layout.size() as isize, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new) }
    }
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
    let index = ZoneIndex::new(ZoneConfig::new("cluster.local", 5, PodMode::Disabled).unwrap());
    let mut updater = Updater::new(index.clone(), clusterdns::model::Cluster::new());
    updater.apply(vec![Event::Reset { kinds: ALL_KINDS.to_vec(), objects }]);
    let built = mib();
    println!(
        "model + index: +{:.1} MiB, {} names ({:.0} bytes per name, model included)",
        built - parsed,
        index.len(),
        (built - parsed) * 1048576.0 / index.len() as f64
    );
    drop(manifests);
    println!("without the manifest cache: {:.1} MiB total", mib() - base);
}
