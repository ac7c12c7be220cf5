//! The DNS index: every name the server answers, prepared in wire form,
//! keyed by lowercase wire name relative to its zone ([`ZoneIndex::get`]).
//! Read by queries without any lock on the whole model (one shard's read
//! lock for one lookup); written by one [`Updater`] as the cluster changes.

use foldhash::{HashMap, HashSet};
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use hashbrown::HashTable;

use super::ZoneConfig;
use super::build::{owner_nodes, soa};
use super::name::{Key, key_of, label_starts};
use super::wire::{NodeData, QNAME_PTR, TYPE_SRV, full_record, merge, prepare, push_srv_whole, records};

/// The SOA type, first in a zone transfer.
const TYPE_SOA: u16 = 6;
use crate::model::{Cluster, Event, Kind, Owner};

/// A compact stand-in for an [`Owner`] inside index entries (4 bytes
/// instead of two `Arc<str>` per name: a million names at 100k Services).
type OwnerId = u32;

/// No owner: an empty non-terminal.
const NO_OWNER: OwnerId = OwnerId::MAX;
/// Several owners: their parts are in the shard's [`Shared`] map.
const SHARED: OwnerId = OwnerId::MAX - 1;

/// The parts of the names with several owners (a PTR for an IP that two
/// Services have; a headless Service's own name when it has several
/// slices), by key: kept beside the table rather than in every slot.
type Shared = HashMap<Box<[u8]>, Vec<(OwnerId, NodeData)>>;

/// One name: what its owners say of it, how many names exist right below
/// it (it is then an empty non-terminal at least, RFC 8020), and the answer that
/// queries read, which carries the name's key (the table's entry is this
/// slot alone: no key allocated beside it). One pointer: the owner and the
/// count of names below live in the answer's allocation (its two words),
/// carried over to each new answer the slot takes.
struct Slot {
    /// What queries read, keyed: the one owner's answer, the merge of the
    /// shared parts, or nothing (an empty non-terminal).
    merged: NodeData,
}

// Two million of them at 100k Services (the table's slack included).
const _: () = assert!(std::mem::size_of::<Slot>() == 8);

/// The words of a slot's answer: its owner ([`SHARED`] or [`NO_OWNER`]
/// when not one), and how many names one label below exist. A name's coming
/// or going changes its parent's count alone (and the grandparent's only
/// when the parent comes or goes with it), so adding a name costs two
/// lookups, not one per label.
const OWNER: usize = 0;
const CHILDREN: usize = 1;

impl Slot {
    fn new(key: &[u8]) -> Self {
        let mut slot = Slot { merged: NodeData::keyed(key, &[], None) };
        slot.set_owner(NO_OWNER);
        slot
    }

    fn key(&self) -> &[u8] {
        self.merged.key()
    }

    fn owner(&self) -> OwnerId {
        self.merged.buffer().word(OWNER)
    }

    /// `&mut`: only the index's writer, under the shard's write lock, sets
    /// the words; queries' clones of the answer never read them.
    fn set_owner(&mut self, owner: OwnerId) {
        self.merged.buffer().set_word(OWNER, owner);
    }

    fn children(&self) -> u32 {
        self.merged.buffer().word(CHILDREN)
    }

    fn set_children(&mut self, n: u32) {
        self.merged.buffer().set_word(CHILDREN, n);
    }

    /// Takes `data` as the answer, keeping the slot's owner and count (they
    /// are written into `data`'s allocation, which no one else reads them
    /// from: a clone held by a part in [`Shared`] or by a query ignores them).
    fn set_merged(&mut self, data: NodeData) {
        let (owner, children) = (self.owner(), self.children());
        self.merged = data;
        self.set_owner(owner);
        self.set_children(children);
    }

    fn is_dead(&self) -> bool {
        self.owner() == NO_OWNER && self.children() == 0
    }

    /// Whether the answer is a merge of several owners' (to redo when one
    /// of them changed).
    fn shared(&self) -> bool {
        self.owner() == SHARED
    }

    /// Sets what `owner` says. Returns whether the answer changed.
    /// A name with several owners is merged later, once per batch
    /// ([`ZoneIndex::settle`]): merging at every put made loading N owners
    /// of one name cost N merges of up to N parts.
    fn put(&mut self, shared: &mut Shared, owner: OwnerId, data: &NodeData) -> bool {
        let mine = self.owner();
        if mine == SHARED
            && let Some(all) = shared.get_mut(self.key())
        {
            match all.iter().position(|(o, _)| *o == owner) {
                Some(i) if all[i].1 == *data => return false,
                Some(i) => all[i].1 = data.clone(),
                None => all.push((owner, data.clone())),
            }
            return true;
        }
        if mine == owner {
            if self.merged == *data {
                return false;
            }
            self.set_merged(data.clone());
            return true;
        }
        if mine == NO_OWNER || mine == SHARED {
            self.set_merged(data.clone());
            self.set_owner(owner);
            return true;
        }
        let all = vec![(mine, self.merged.clone()), (owner, data.clone())];
        shared.insert(self.key().into(), all);
        self.set_owner(SHARED);
        true
    }

    /// Forgets what `owner` says. Returns whether it said anything.
    fn take(&mut self, shared: &mut Shared, owner: OwnerId) -> bool {
        if self.owner() == SHARED {
            let Some(all) = shared.get_mut(self.key()) else {
                return false;
            };
            let Some(i) = all.iter().position(|(o, _)| *o == owner) else {
                return false;
            };
            all.remove(i);
            if all.len() == 1 {
                let (o, d) = all.remove(0);
                shared.remove(self.key());
                self.set_merged(d);
                self.set_owner(o);
            }
            return true;
        }
        if self.owner() != owner || owner == NO_OWNER {
            return false;
        }
        self.set_merged(NodeData::keyed(self.merged.key(), &[], None));
        self.set_owner(NO_OWNER);
        true
    }
}

/// Shards of the name table: a query takes one shard's read lock.
const SHARDS: usize = 64;

/// The last byte of a stored key: this or'ed with the zone's place in
/// [`ZoneConfig::apexes`]. A label's length is at most 63: no label starts
/// with it.
const ZONE_TAG: u8 = 0xC0;

/// One shard: slots found by the hash of their key, and the parts of its
/// names that have several owners.
type Shard = RwLock<(HashTable<Slot>, Shared)>;

pub struct ZoneIndex {
    cfg: ZoneConfig,
    shards: Box<[Shard]>,
    hasher: foldhash::fast::RandomState,
    /// Keys of the served zones' apexes, in [`ZoneConfig::apexes`] order.
    apex_keys: [Key; 3],
    pod_key: Key,
    /// Each zone's SOA with its full owner name, for negative answers.
    negative_soa: ArcSwap<[Box<[u8]>; 3]>,
    /// Set once the cluster state has been loaded completely; until then a
    /// miss is SERVFAIL, never a false NXDOMAIN (SPEC.md 3).
    loaded: AtomicBool,
    /// Whether the thread that keeps the index current is running: without
    /// it answers would go stale for good, so the process is not healthy.
    writer: AtomicBool,
    serial: AtomicU32,
    /// Names with several owners whose parts changed in this batch: merged
    /// once in [`ZoneIndex::settle`].
    unsettled: Mutex<Vec<Key>>,
}

impl ZoneIndex {
    pub fn new(cfg: ZoneConfig) -> Arc<Self> {
        let apex_keys = cfg.apexes().map(key_of);
        let pod_key = key_of(&cfg.pod);
        let negative_soa = ArcSwap::from_pointee(Self::soas(&cfg, 0));
        Arc::new(ZoneIndex {
            cfg,
            shards: (0..SHARDS).map(|_| RwLock::new((HashTable::new(), HashMap::default()))).collect(),
            hasher: foldhash::fast::RandomState::default(),
            apex_keys,
            pod_key,
            negative_soa,
            loaded: AtomicBool::new(false),
            writer: AtomicBool::new(false),
            serial: AtomicU32::new(0),
            unsettled: Mutex::new(Vec::new()),
        })
    }

    fn soas(cfg: &ZoneConfig, serial: u32) -> [Box<[u8]>; 3] {
        cfg.apexes().map(|apex| full_record(&soa(cfg, apex, serial)).into_boxed_slice())
    }

    pub fn config(&self) -> &ZoneConfig {
        &self.cfg
    }

    fn hash(&self, key: &[u8]) -> u64 {
        self.hasher.hash_one(key)
    }

    /// The shard of a hash: bits that neither the table's bucket index
    /// (the low bits) nor its tags (the top seven) use.
    fn shard(&self, hash: u64) -> &Shard {
        &self.shards[(hash >> 40) as usize % SHARDS]
    }

    /// The stored key of a name: its labels below its zone's apex, then one
    /// byte `ZONE_TAG | zone` (never a label length), written into `buf`.
    /// The apex's 15 bytes (`cluster.local.`) are not kept a million times.
    fn stored<'b>(&self, zone: usize, key: &[u8], buf: &'b mut [u8; 256]) -> Option<&'b [u8]> {
        let apex = self.apex_keys.get(zone)?;
        debug_assert!(key.ends_with(apex), "a key outside the zone it is asked in");
        let prefix = key.len().checked_sub(apex.len())?;
        buf[..prefix].copy_from_slice(&key[..prefix]);
        buf[prefix] = ZONE_TAG | zone as u8;
        Some(&buf[..=prefix])
    }

    /// [`ZoneIndex::stored`] as a key of its own.
    fn stored_key(&self, key: &[u8]) -> Option<Key> {
        let mut buf = [0; 256];
        self.stored(self.zone_of(key)?, key, &mut buf).map(Into::into)
    }

    /// The whole lowercase wire name of a stored key.
    fn full_key(&self, stored: &[u8]) -> Vec<u8> {
        let (prefix, tag) = stored.split_at(stored.len().saturating_sub(1));
        let apex = tag.first().and_then(|t| self.apex_keys.get((t & !ZONE_TAG) as usize)).map_or(&[][..], |a| &a[..]);
        [prefix, apex].concat()
    }

    /// What `key` (a whole lowercase wire name) answers, if the name exists.
    pub fn get(&self, key: &[u8]) -> Option<NodeData> {
        self.get_in(self.zone_of(key)?, key)
    }

    /// [`ZoneIndex::get`] of a name known to be in served zone `zone`.
    pub fn get_in(&self, zone: usize, key: &[u8]) -> Option<NodeData> {
        let mut buf = [0; 256];
        let key = self.stored(zone, key, &mut buf)?;
        let h = self.hash(key);
        // A writer that panicked left its slot whole (every change is a
        // single assignment): reading on is safe.
        let shard = self.shard(h).read().unwrap_or_else(|e| e.into_inner());
        shard.0.find(h, |s| s.key() == key).map(|s| s.merged.clone())
    }

    /// Runs `f` on the slot of `key` (and its shard's shared parts), made
    /// first (empty) when missing. Returns what `f` did and whether the
    /// slot was made.
    fn with_new_slot<R>(&self, key: &[u8], f: impl FnOnce(&mut Slot, &mut Shared) -> R) -> (R, bool) {
        let h = self.hash(key);
        let mut shard = self.shard(h).write().unwrap_or_else(|e| e.into_inner());
        let (table, shared) = &mut *shard;
        if let Some(slot) = table.find_mut(h, |s| s.key() == key) {
            return (f(slot, shared), false);
        }
        let mut slot = Slot::new(key);
        let out = f(&mut slot, shared);
        table.insert_unique(h, slot, |s| self.hasher.hash_one(s.key()));
        (out, true)
    }

    /// Runs `f` on the slot of `key`, if there is one, and removes the slot
    /// in the same step if nothing keeps it any more. Returns what `f` did
    /// and whether the slot went.
    fn with_slot<R>(&self, key: &[u8], f: impl FnOnce(&mut Slot, &mut Shared) -> R) -> Option<(R, bool)> {
        let h = self.hash(key);
        let mut shard = self.shard(h).write().unwrap_or_else(|e| e.into_inner());
        let (table, shared) = &mut *shard;
        let Ok(mut entry) = table.find_entry(h, |s| s.key() == key) else {
            return None;
        };
        let out = f(entry.get_mut(), shared);
        if entry.get().is_dead() {
            entry.remove();
            return Some((out, true));
        }
        Some((out, false))
    }

    /// Which served zone `key` lies in (index into [`ZoneConfig::apexes`]).
    pub fn zone_of(&self, key: &[u8]) -> Option<usize> {
        let suffixes = label_starts(key).map(|i| &key[i..]).chain(std::iter::once(&key[key.len() - 1..]));
        for suffix in suffixes {
            if let Some(z) = self.apex_keys.iter().position(|a| &a[..] == suffix) {
                return Some(z);
            }
        }
        None
    }

    /// Each served zone's SOA record (owner written out), in
    /// [`ZoneConfig::apexes`] order, for the authority section of negative
    /// answers.
    pub fn negative_soas(&self) -> Arc<[Box<[u8]>; 3]> {
        self.negative_soa.load_full()
    }

    /// The lookup key of `pod.<zone>`.
    pub fn pod_key(&self) -> &[u8] {
        &self.pod_key
    }

    pub fn is_loaded(&self) -> bool {
        self.loaded.load(Ordering::Acquire)
    }

    pub fn set_loaded(&self) {
        self.loaded.store(true, Ordering::Release);
    }

    pub fn writer_alive(&self) -> bool {
        self.writer.load(Ordering::Acquire)
    }

    pub fn set_writer_alive(&self, alive: bool) {
        self.writer.store(alive, Ordering::Release);
    }

    pub fn serial(&self) -> u32 {
        self.serial.load(Ordering::Relaxed)
    }

    /// Number of names (including empty non-terminals).
    pub fn len(&self) -> usize {
        self.shards.iter().map(|t| t.read().unwrap_or_else(|e| e.into_inner()).0.len()).sum()
    }

    /// Names with several owners: how many, their parts, and the bytes
    /// of the parts' answers (for the memory benchmark).
    pub fn shared_stats(&self) -> (usize, usize, usize) {
        let (mut names, mut parts, mut bytes) = (0, 0, 0);
        for shard in self.shards.iter() {
            let shard = shard.read().unwrap_or_else(|e| e.into_inner());
            for all in shard.1.values() {
                names += 1;
                parts += all.len();
                bytes += all.iter().map(|(_, d)| d.stored_len()).sum::<usize>();
            }
        }
        (names, parts, bytes)
    }

    pub fn is_empty(&self) -> bool {
        self.shards.iter().all(|t| t.read().unwrap_or_else(|e| e.into_inner()).0.is_empty())
    }

    /// Every name and what it answers, apexes left out (their SOA serial is
    /// a time). For tests and debugging; not for the query path.
    pub fn dump(&self) -> std::collections::BTreeMap<Vec<u8>, NodeData> {
        let mut out = std::collections::BTreeMap::new();
        for shard in self.shards.iter() {
            let shard = shard.read().unwrap_or_else(|e| e.into_inner());
            for slot in shard.0.iter().filter(|s| s.key().len() > 1) {
                out.insert(self.full_key(slot.key()), slot.merged.clone());
            }
        }
        out
    }

    /// Calls `f` with each record of served zone `zone` (0: the cluster
    /// zone) as its owner's key and the record after the owner, the SOA
    /// first: what an AXFR sends between its two SOAs. One shard is read at
    /// a time (under its read lock), nothing copied but SRV records (their
    /// targets written whole); names change between
    /// shards as the updater goes on, so this is not one snapshot.
    /// Additional-section records (SRV targets' addresses) are not records
    /// of a name and are not given; each is its own name's.
    pub fn for_each_record(&self, zone: usize, mut f: impl FnMut(&[u8], &[u8])) {
        let apex = &self.apex_keys[zone];
        let mut whole = Vec::new();
        let mut node = |key: &[u8], data: &NodeData, soa: Option<bool>, f: &mut dyn FnMut(&[u8], &[u8])| {
            for rrset in data.rrsets().filter(|r| soa.is_none_or(|s| (r.rtype == TYPE_SOA) == s)) {
                for rec in records(rrset.answer, true) {
                    if rrset.rtype == TYPE_SRV {
                        // The target relative to the owner, written whole.
                        whole.clear();
                        if push_srv_whole(&mut whole, Some(key), rec, 0).is_some() {
                            f(key, &whole[QNAME_PTR.len()..]);
                        }
                    } else {
                        f(key, &rec[QNAME_PTR.len()..]);
                    }
                }
            }
        };
        if let Some(data) = self.get(apex) {
            node(apex, &data, Some(true), &mut f);
            node(apex, &data, Some(false), &mut f);
        }
        let tag = ZONE_TAG | zone as u8;
        for shard in self.shards.iter() {
            let shard = shard.read().unwrap_or_else(|e| e.into_inner());
            for slot in shard.0.iter().filter(|s| s.key().len() > 1 && s.key().last() == Some(&tag)) {
                node(&self.full_key(slot.key()), &slot.merged, None, &mut f);
            }
        }
    }

    /// The parent of stored key `key` when it is strictly below its zone's
    /// apex (the apexes are the static owner's; nothing is kept above them).
    fn parent<'k>(&self, key: &'k [u8]) -> Option<&'k [u8]> {
        let first = *key.first()? as usize;
        if first & ZONE_TAG as usize != 0 {
            return None;
        }
        let parent = key.get(first + 1..)?;
        (parent.len() > 1).then_some(parent)
    }

    /// Counts a name that was just made in its parent, making the parent
    /// (an empty non-terminal) and so on up while they are new. Made under
    /// each shard's write lock: two writers adding below one new name count
    /// both, and only one of them goes on up.
    fn link(&self, key: &[u8]) {
        let mut at = key;
        while let Some(parent) = self.parent(at) {
            let ((), made) = self.with_new_slot(parent, |e, _| e.set_children(e.children() + 1));
            if !made {
                return;
            }
            at = parent;
        }
    }

    /// Uncounts a name that was just removed from its parent, removing the
    /// parent and so on up while nothing else keeps them.
    fn unlink(&self, key: &[u8]) {
        let mut at = key;
        while let Some(parent) = self.parent(at) {
            let gone = self.with_slot(parent, |e, _| e.set_children(e.children().saturating_sub(1)));
            if gone.is_none_or(|(_, gone)| !gone) {
                return;
            }
            at = parent;
        }
    }

    /// Replaces what `owner` says: `new` names are written first and names
    /// it no longer has are removed after, so a name present before and after
    /// never goes missing in between. Returns whether any answer changed.
    /// Safe to call for different owners from several threads at once.
    fn set_owner(&self, owner: OwnerId, old_keys: &[Key], new: Vec<NodeData>) -> bool {
        let (changed, stale) = self.put_owner(owner, old_keys, new);
        self.drop_names(owner, &stale) | changed
    }

    /// The first half of [`ZoneIndex::set_owner`]: writes `new`, and
    /// returns whether an answer changed and the old keys `owner` no longer
    /// has, for [`ZoneIndex::drop_names`]. A batch writes every owner's new
    /// names before it drops any: a name that moves from one owner to
    /// another (an endpoint from one slice to the next) never misses.
    fn put_owner<'k>(&self, owner: OwnerId, old_keys: &'k [Key], new: Vec<NodeData>) -> (bool, Vec<&'k Key>) {
        let mut changed = false;
        let new_keys: HashSet<&[u8]> = new.iter().map(NodeData::key).collect();
        let mut made = Vec::new();
        let mut unsettled: Vec<Key> = Vec::new();
        for data in &new {
            let key = data.key();
            let put = |e: &mut Slot, shared: &mut Shared| {
                let diff = e.put(shared, owner, data);
                changed |= diff;
                if diff && e.shared() {
                    unsettled.push(key.into());
                }
            };
            if self.with_new_slot(key, put).1 {
                made.push(key);
            }
        }
        // Parents are counted after, with no shard lock held.
        for key in made {
            self.link(key);
        }
        self.add_unsettled(unsettled);
        (changed, old_keys.iter().filter(|k| !new_keys.contains(&k[..])).collect())
    }

    /// The second half of [`ZoneIndex::set_owner`]: `owner` lets go of
    /// `stale`. Returns whether an answer changed.
    fn drop_names(&self, owner: OwnerId, stale: &[&Key]) -> bool {
        let mut changed = false;
        let mut unsettled: Vec<Key> = Vec::new();
        for &key in stale {
            let taken = self.with_slot(key, |e, shared| {
                let took = e.take(shared, owner);
                if took && e.shared() {
                    unsettled.push(key.clone());
                }
                took
            });
            if let Some((took, gone)) = taken {
                changed |= took;
                if gone {
                    self.unlink(key);
                }
            }
        }
        self.add_unsettled(unsettled);
        changed
    }

    fn add_unsettled(&self, keys: Vec<Key>) {
        if !keys.is_empty()
            && let Ok(mut all) = self.unsettled.lock()
        {
            all.extend(keys);
        }
    }

    /// Merges, once each, the names with several owners that changed since
    /// the last call: what queries read of them until then is their
    /// previous answer.
    fn settle(&self) {
        let mut keys = match self.unsettled.lock() {
            Ok(mut all) => std::mem::take(&mut *all),
            Err(_) => return,
        };
        keys.sort_unstable();
        keys.dedup();
        for key in keys {
            self.with_slot(&key, |e, shared| {
                if e.shared()
                    && let Some(all) = shared.get(&key)
                {
                    e.set_merged(merge(&key, all.iter().map(|(_, d)| d)));
                }
            });
        }
    }
}

/// Batches of at least this many owners are rebuilt on every core.
const PARALLEL_FROM: usize = 256;

/// Counts of one update, for logs and metrics.
#[derive(Debug, Default, Clone, Copy)]
pub struct UpdateStats {
    pub events: usize,
    pub owners: usize,
    pub changed: bool,
}

/// The single writer: owns the cluster model and keeps the index equal to
/// what [`owner_nodes`] says of it.
pub struct Updater {
    cluster: Cluster,
    index: Arc<ZoneIndex>,
    /// Owner ids by a 64-bit keyed hash of the owner, not by the owner
    /// itself: 16 bytes a Service, slice or Pod rather than about 140 (the
    /// owner's two names in their own allocations and a 56-byte key), 27 MiB
    /// at 100k Services. Two of 300,000 owners share a hash with odds of
    /// one in 400 million (and the seed differs per process).
    ids: HashMap<u64, OwnerId>,
    owner_hash: foldhash::quality::RandomState,
    free_ids: Vec<OwnerId>,
}

impl Updater {
    /// An updater writing `index` from `cluster` (empty; `Cluster::exposed_only`
    /// under `namespace_labels`).
    pub fn new(index: Arc<ZoneIndex>, cluster: Cluster) -> Self {
        Updater { cluster, index, ids: HashMap::default(), owner_hash: Default::default(), free_ids: Vec::new() }
    }

    pub fn cluster(&self) -> &Cluster {
        &self.cluster
    }

    /// Whether `owner` has names in the index (an id is given to an owner
    /// when it is built, and taken back when it has no names left).
    fn has_id(&self, owner: &Owner) -> bool {
        self.ids.contains_key(&self.owner_hash.hash_one(owner))
    }

    fn id(&mut self, owner: &Owner) -> OwnerId {
        let hash = self.owner_hash.hash_one(owner);
        if let Some(id) = self.ids.get(&hash) {
            return *id;
        }
        let id = self.free_ids.pop().unwrap_or(self.ids.len() as OwnerId);
        self.ids.insert(hash, id);
        id
    }

    fn prepared(cluster: &Cluster, index: &ZoneIndex, owner: &Owner, serial: u32) -> Vec<NodeData> {
        let nodes = owner_nodes(cluster, &index.cfg, owner, serial);
        prepare(&nodes, |n| index.zone_of(&key_of(n)).is_some(), |k| index.stored_key(k))
    }

    fn keys(&self, owner: &Owner) -> Vec<Key> {
        let nodes = owner_nodes(&self.cluster, &self.index.cfg, owner, 0);
        nodes.iter().filter_map(|n| self.index.stored_key(&key_of(&n.name))).collect()
    }

    /// Applies a batch of events to the model and the index.
    pub fn apply(&mut self, events: Vec<Event>) -> UpdateStats {
        let first = self.index.is_empty();
        let mut old: HashMap<Owner, Vec<Key>> = HashMap::default();
        let mut stats = UpdateStats::default();
        let mut queue: Vec<Event> = Vec::new();
        for ev in events {
            match ev {
                Event::Reset { kinds, objects } => queue.extend(self.cluster.diff_reset(&kinds, objects)),
                Event::Relist { kind, changed, listed } => {
                    queue.extend(self.cluster.diff_relist(kind, changed, &listed))
                }
                other => queue.push(other),
            }
            // Apply as we go so that a later Reset diffs against the state
            // the earlier events made.
            for ev in queue.drain(..) {
                stats.events += 1;
                if first {
                    // Nothing built yet: no names to list, no key to make.
                    match ev {
                        Event::Apply(obj) => self.cluster.apply(obj),
                        Event::Delete(key) => self.cluster.delete(&key),
                        Event::Reset { .. } | Event::Relist { .. } => continue,
                    };
                    continue;
                }
                let (key, obj) = match ev {
                    Event::Apply(obj) => (obj.key(), Some(obj)),
                    Event::Delete(key) => (key, None),
                    Event::Reset { .. } | Event::Relist { .. } => continue,
                };
                // A Service's own names (its ClusterIP, PTR and SRV)
                // follow its endpoints only under `ignore_empty_service`:
                // a list of slices after the Services' would otherwise
                // build every Service again.
                let endpoints = matches!(key.kind, Kind::EndpointSlice | Kind::Endpoints);
                let skip_service = endpoints && !self.index.cfg.ignore_empty_service;
                for owner in self.cluster.affected(&key, obj.as_ref()) {
                    if skip_service && matches!(owner, Owner::Service(..)) {
                        continue;
                    }
                    if let std::collections::hash_map::Entry::Vacant(slot) = old.entry(owner) {
                        // An owner without an id has no names: nothing
                        // to build to list them.
                        let keys = if self.has_id(slot.key()) { self.keys(slot.key()) } else { Vec::new() };
                        slot.insert(keys);
                    }
                }
                match obj {
                    Some(obj) => self.cluster.apply(obj),
                    None => self.cluster.delete(&key),
                };
            }
        }
        let serial = self.index.serial();
        let work: Vec<(Owner, Vec<Key>)> = if first {
            // The apex and dns-version go in last: a client that probes
            // them (as readiness checks do) sees the whole first load.
            let mut all = self.cluster.owners();
            all.retain(|o| *o != Owner::Static);
            all.into_iter().map(|o| (o, Vec::new())).collect()
        } else {
            old.into_iter().collect()
        };
        stats.owners = work.len();
        let work: Vec<(Owner, OwnerId, Vec<Key>)> = work
            .into_iter()
            .map(|(o, keys)| {
                let id = self.id(&o);
                (o, id, keys)
            })
            .collect();
        let mut changed = false;
        for (i, (diff, gone)) in self.rebuild(&work, serial).into_iter().enumerate() {
            changed |= diff;
            if gone {
                // No name refers to the id any more: reuse it.
                let (owner, id, _) = &work[i];
                self.ids.remove(&self.owner_hash.hash_one(owner));
                self.free_ids.push(*id);
            }
        }
        if first {
            let id = self.id(&Owner::Static);
            let prepared = Self::prepared(&self.cluster, &self.index, &Owner::Static, serial);
            changed |= self.index.set_owner(id, &[], prepared);
        }
        self.index.settle();
        if changed {
            // R11: the serial is the time of the last change of any answer.
            let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as u32).unwrap_or(0);
            let serial = now.max(serial.wrapping_add(1));
            self.index.serial.store(serial, Ordering::Relaxed);
            let keys = self.keys(&Owner::Static);
            let id = self.id(&Owner::Static);
            let prepared = Self::prepared(&self.cluster, &self.index, &Owner::Static, serial);
            self.index.set_owner(id, &keys, prepared);
            self.index.negative_soa.store(Arc::new(ZoneIndex::soas(&self.index.cfg, serial)));
        }
        stats.changed = changed;
        stats
    }

    /// Rebuilds each owner's names: (answers changed, owner has no names
    /// left). Big batches (the first load, a relist) run on every core: the
    /// index takes concurrent writers for different owners. Small ones stay
    /// on this thread, where a single change costs no thread start.
    fn rebuild<'w>(&self, work: &'w [(Owner, OwnerId, Vec<Key>)], serial: u32) -> Vec<(bool, bool)> {
        let (cluster, index) = (&self.cluster, &*self.index);
        // Every owner's new names first, then the names owners dropped (see
        // `put_owner`).
        let one = |(owner, id, old): &'w (Owner, OwnerId, Vec<Key>)| {
            let prepared = Self::prepared(cluster, index, owner, serial);
            let gone = prepared.is_empty();
            let (changed, stale) = index.put_owner(*id, old, prepared);
            (changed, gone, stale)
        };
        // A panic in a worker is a bug; count its part as changed (so the
        // serial moves) and not gone, and let the rest stand.
        let put = on_all_cores(work, one, || (true, false, Vec::new()));
        work.iter()
            .zip(put)
            .map(|((_, id, _), (changed, gone, stale))| (index.drop_names(*id, &stale) | changed, gone))
            .collect()
    }
}

/// `one` over `work`, on every core for a big batch; `panicked` stands for
/// each result of a part whose thread panicked.
fn on_all_cores<'w, T: Sync, R: Send>(
    work: &'w [T],
    one: impl Fn(&'w T) -> R + Sync,
    panicked: impl Fn() -> R,
) -> Vec<R> {
    if work.len() < PARALLEL_FROM {
        return work.iter().map(one).collect();
    }
    // Asked only here: on Linux it reads the cgroup's CPU quota files.
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1).min(8);
    if threads == 1 {
        return work.iter().map(one).collect();
    }
    let chunk = work.len().div_ceil(threads);
    let one = &one;
    std::thread::scope(|s| {
        let handles: Vec<_> =
            work.chunks(chunk).map(|part| s.spawn(move || part.iter().map(one).collect::<Vec<_>>())).collect();
        handles
            .into_iter()
            .zip(work.chunks(chunk))
            .flat_map(|(h, part)| h.join().unwrap_or_else(|_| part.iter().map(|_| panicked()).collect()))
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::net::IpAddr;

    use super::*;
    use crate::model::*;
    use crate::records::{PodMode, ZoneConfig};

    /// A tiny deterministic generator (xorshift), so failures replay.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self, n: u64) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0 % n
        }
    }

    fn ip(r: &mut Rng) -> IpAddr {
        format!("10.244.0.{}", r.next(6) + 1).parse().unwrap()
    }

    fn random_object(r: &mut Rng) -> Object {
        let ns = ["a", "b"][r.next(2) as usize].to_string();
        let svc = ["s1", "s2", "s3"][r.next(3) as usize].to_string();
        let ports =
            vec![EndpointPort { name: ["http", ""][r.next(2) as usize].into(), protocol: Protocol::Tcp, port: 80 }];
        match r.next(5) {
            0 => Object::new_namespace(ns),
            1 => Object::Service(Arc::new(Service {
                namespace: ns.as_str().into(),
                name: svc.as_str().into(),
                kind: match r.next(3) {
                    0 => ServiceKind::Headless,
                    1 => ServiceKind::ExternalName(
                        format!("{}.a.svc.cluster.local", ["s1", "s2"][r.next(2) as usize]).into(),
                    ),
                    _ => ServiceKind::ClusterIp(Box::new([format!("10.96.0.{}", r.next(4) + 1).parse().unwrap()])),
                },
                ports: Arc::new([ServicePort {
                    name: "http".into(),
                    protocol: Protocol::Tcp,
                    port: 80,
                    target_port: None,
                }]),
                selector: if r.next(2) == 0 { Some([("app".to_string(), svc)].into_iter().collect()) } else { None },
                publish_not_ready: r.next(4) == 0,
            })),
            2 => Object::EndpointSlice(Arc::new(EndpointSlice {
                namespace: ns.as_str().into(),
                name: format!("{svc}-{}", r.next(2)).into(),
                // Now and then relabelled to another Service, or to none.
                service: match r.next(8) {
                    0 => None,
                    1 => Some(["s1", "s2", "s3"][r.next(3) as usize].into()),
                    _ => Some(svc.as_str().into()),
                },
                group: EndpointGroup {
                    endpoints: (0..r.next(3))
                        .map(|_| {
                            let ready = r.next(3) > 0;
                            let hostname = if r.next(2) == 0 { Some(format!("h{}", r.next(2))) } else { None };
                            Endpoint::new(vec![ip(r)].into(), ready, hostname.as_deref(), None)
                        })
                        .collect(),
                    ports: ports.into(),
                },
            })),
            3 => Object::Endpoints(Arc::new(Endpoints {
                namespace: ns.as_str().into(),
                name: svc.as_str().into(),
                groups: vec![EndpointGroup::new(vec![Endpoint::new(vec![ip(r)].into(), true, None, None)], ports)],
            })),
            _ => Object::Pod(Arc::new(Pod {
                namespace: ns.as_str().into(),
                name: format!("p{}", r.next(3)).into(),
                labels: [("app".to_string(), svc.clone())].into_iter().collect(),
                ips: vec![ip(r)],
                ready: r.next(3) > 0,
                terminal: false,
                deleting: false,
                hostname: Some(format!("h{}", r.next(2)).into()),
                subdomain: Some(svc.as_str().into()),
                container_ports: vec![],
            })),
        }
    }

    fn fresh(cfg: &ZoneConfig, objects: Vec<Object>) -> BTreeMap<Vec<u8>, NodeData> {
        let index = ZoneIndex::new(cfg.clone());
        let mut u = Updater::new(index.clone(), Cluster::new());
        u.apply(vec![Event::Reset { kinds: vec![], objects: vec![] }]);
        u.apply(objects.into_iter().map(Event::Apply).collect());
        index.dump()
    }

    /// Incremental updates must leave the index exactly as a rebuild from
    /// the final state would: no stale names, no missing ones, shared PTR
    /// names and empty non-terminals counted right.
    #[test]
    fn incremental_updates_equal_a_rebuild() {
        for (pods, ignore_empty) in [(PodMode::Disabled, false), (PodMode::Verified, false), (PodMode::Disabled, true)]
        {
            let mut cfg = ZoneConfig::new("cluster.local", 5, pods).unwrap();
            cfg.ignore_empty_service = ignore_empty;
            let mut r = Rng(0x9E3779B97F4A7C15);
            let index = ZoneIndex::new(cfg.clone());
            let mut u = Updater::new(index.clone(), Cluster::new());
            u.apply(vec![]);
            for step in 0..400 {
                let mut batch = Vec::new();
                for _ in 0..=r.next(3) {
                    let obj = random_object(&mut r);
                    if r.next(4) == 0 {
                        batch.push(Event::Delete(obj.key()));
                    } else {
                        batch.push(Event::Apply(obj));
                    }
                }
                u.apply(batch);
                if step % 40 == 39 {
                    let objects = current_objects(u.cluster());
                    let (got, want) = (index.dump(), fresh(&cfg, objects));
                    let show = |k: &Vec<u8>| String::from_utf8_lossy(k).replace(|c: char| c.is_control(), ".");
                    let diff: Vec<String> = got
                        .keys()
                        .chain(want.keys())
                        .filter(|k| got.get(*k) != want.get(*k))
                        .map(|k| format!("{}: incremental {:?} rebuild {:?}", show(k), got.get(k), want.get(k)))
                        .collect();
                    assert!(diff.is_empty(), "after step {step} ({pods:?}):\n{}", diff.join("\n"));
                }
            }
        }
    }

    /// `n` selector-less headless Services, each bound by its own slice to
    /// one shared address: N owners of one PTR name.
    fn tenants(n: usize, ip: &str) -> Vec<Object> {
        let mut out = vec![Object::new_namespace("t".into())];
        for i in 0..n {
            out.push(Object::Service(Arc::new(Service {
                namespace: "t".into(),
                name: format!("s{i}").into(),
                kind: ServiceKind::Headless,
                ports: Arc::new([]),
                selector: None,
                publish_not_ready: false,
            })));
            out.push(Object::EndpointSlice(Arc::new(EndpointSlice {
                namespace: "t".into(),
                name: format!("s{i}-x").into(),
                service: Some(format!("s{i}").into()),
                group: EndpointGroup::new(
                    vec![Endpoint::new(vec![ip.parse().unwrap()].into(), true, None, None)],
                    vec![],
                ),
            })));
        }
        out
    }

    fn ptr_targets(index: &ZoneIndex, key: &[u8]) -> usize {
        index.get(key).map_or(0, |d| d.find(12).map_or(0, |i| d.rrset(i).count as usize))
    }

    /// A name shared by many owners (tenants' Services bound to one
    /// external address share its PTR name) was merged again at every
    /// owner's put, each merge a scan of every part: cubic, 5.1 s for
    /// 2,000 Services. Now merged once per batch; the answers are these.
    /// (`cargo bench --bench updates` times it.)
    #[test]
    fn a_name_of_two_thousand_owners_holds_all_their_records() {
        let cfg = ZoneConfig::new("cluster.local", 5, PodMode::Disabled).unwrap();
        let index = ZoneIndex::new(cfg.clone());
        let mut u = Updater::new(index.clone(), Cluster::new());
        let objects = tenants(2000, "203.0.113.7");
        u.apply(vec![Event::Reset { kinds: crate::source::ALL_KINDS.to_vec(), objects }]);
        let ptr = key_of(&"7.113.0.203.in-addr.arpa.".parse().unwrap());
        assert_eq!(ptr_targets(&index, &ptr), 2000, "the first load, on every core");
        // Half of them go, one batch; then one more, alone.
        u.apply(
            (1000..2000)
                .map(|i| Event::Delete(ObjectKey { kind: Kind::Service, namespace: "t".into(), name: format!("s{i}") }))
                .collect(),
        );
        assert_eq!(ptr_targets(&index, &ptr), 1000);
        u.apply(vec![Event::Delete(ObjectKey {
            kind: Kind::EndpointSlice,
            namespace: "t".into(),
            name: "s0-x".into(),
        })]);
        assert_eq!(ptr_targets(&index, &ptr), 999);
        assert_eq!(index.dump(), fresh(&cfg, current_objects(u.cluster())), "as a rebuild from the final state");
        // Down to one owner, then none: the name goes.
        u.apply(
            (2..1000)
                .map(|i| Event::Delete(ObjectKey { kind: Kind::Service, namespace: "t".into(), name: format!("s{i}") }))
                .collect(),
        );
        assert_eq!(ptr_targets(&index, &ptr), 1);
        u.apply(vec![Event::Delete(ObjectKey { kind: Kind::Service, namespace: "t".into(), name: "s1".into() })]);
        assert!(index.get(&ptr).is_none());
    }

    fn count(index: &ZoneIndex, key: &str, rtype: u16) -> usize {
        let key = key_of(&key.parse().unwrap());
        index.get(&key).map_or(0, |d| d.find(rtype).map_or(0, |i| d.rrset(i).count as usize))
    }

    fn big_slice(k: usize, ips: &[IpAddr]) -> Object {
        Object::EndpointSlice(Arc::new(EndpointSlice {
            namespace: "big".into(),
            name: format!("db-{k:02}").into(),
            service: Some("db".into()),
            group: EndpointGroup {
                endpoints: ips.iter().map(|ip| Endpoint::new(vec![*ip].into(), true, None, None)).collect(),
                ports: Arc::new([EndpointPort { name: "http".into(), protocol: Protocol::Tcp, port: 8080 }]),
            },
        }))
    }

    /// One endpoint change in a big headless Service rebuilt the whole
    /// Service, twice (0.3 s at 10,000 endpoints); now its slice alone, and
    /// the Service's own name is merged from its slices' parts. The answers
    /// are these. (`cargo bench --bench updates` times it.)
    #[test]
    fn one_endpoint_of_a_big_headless_service_changes_its_names_alone() {
        let cfg = ZoneConfig::new("cluster.local", 5, PodMode::Disabled).unwrap();
        let index = ZoneIndex::new(cfg.clone());
        let mut u = Updater::new(index.clone(), Cluster::new());
        let ip = |i: usize| -> IpAddr { format!("10.100.{}.{}", i / 256, i % 256).parse().unwrap() };
        let ips = |k: usize| -> Vec<IpAddr> { (k * 100..k * 100 + 100).map(ip).collect() };
        let mut objects = vec![
            Object::new_namespace("big".into()),
            Object::Service(Arc::new(Service {
                namespace: "big".into(),
                name: "db".into(),
                kind: ServiceKind::Headless,
                ports: Arc::new([]),
                selector: None,
                publish_not_ready: false,
            })),
        ];
        objects.extend((0..20).map(|k| big_slice(k, &ips(k))));
        u.apply(vec![Event::Reset { kinds: crate::source::ALL_KINDS.to_vec(), objects }]);
        let (svc, srv) = ("db.big.svc.cluster.local.", "_http._tcp.db.big.svc.cluster.local.");
        assert_eq!((count(&index, svc, 1), count(&index, svc, 33), count(&index, srv, 33)), (2000, 2000, 2000));
        // Endpoint 707 (slice 7) gets a new address.
        let mut changed = ips(7);
        changed[7] = "10.200.0.1".parse().unwrap();
        u.apply(vec![Event::Apply(big_slice(7, &changed))]);
        assert_eq!(count(&index, svc, 1), 2000);
        assert_eq!(count(&index, "10-200-0-1.db.big.svc.cluster.local.", 1), 1);
        assert_eq!(count(&index, "10-100-2-195.db.big.svc.cluster.local.", 1), 0, "10.100.2.195 was endpoint 707");
        assert_eq!(count(&index, "1.0.200.10.in-addr.arpa.", 12), 1);
        assert_eq!(count(&index, "195.2.100.10.in-addr.arpa.", 12), 0);
        // The same address in two slices (an endpoint moving) is one record,
        // and stays while either slice has it.
        let mut twice = ips(3);
        twice.push("10.200.0.1".parse().unwrap());
        u.apply(vec![Event::Apply(big_slice(3, &twice))]);
        assert_eq!((count(&index, svc, 1), count(&index, svc, 33)), (2000, 2000));
        u.apply(vec![Event::Apply(big_slice(7, &ips(7)))]);
        assert_eq!((count(&index, svc, 1), count(&index, "10-200-0-1.db.big.svc.cluster.local.", 1)), (2001, 1));
        // A slice goes.
        u.apply(vec![Event::Delete(ObjectKey {
            kind: Kind::EndpointSlice,
            namespace: "big".into(),
            name: "db-05".into(),
        })]);
        assert_eq!((count(&index, svc, 1), count(&index, srv, 33)), (1901, 1901));
        assert_eq!(index.dump(), fresh(&cfg, current_objects(u.cluster())), "as a rebuild from the final state");
    }

    fn current_objects(c: &Cluster) -> Vec<Object> {
        c.objects()
    }
}
