//! `cache [TTL] [ZONES...] { success CAP [TTL] [MINTTL]; denial CAP [TTL]
//! [MINTTL]; serve_stale [DUR] [immediate|verify]; servfail DUR; disable
//! success|denial [ZONES...]; keepttl }`: whole upstream replies kept by
//! (name, type, class, DO, CD), as CoreDNS's `cache` plugin keeps them.
//!
//! Positive replies live min(record TTLs) clamped to [MINTTL, TTL];
//! negative ones (NXDOMAIN, NODATA) min(SOA TTL, SOA MINIMUM) clamped the
//! same way (RFC 2308); SERVFAIL `servfail` (5 s); truncated replies never.
//! TTLs count down on the way out (unless `keepttl`). Each class is a
//! capacity-bounded `quick_cache` (S3-FIFO eviction). With `serve_stale`,
//! an expired reply is kept `DURATION` longer and served, TTL 0, when no
//! upstream answers (`verify`), or at once while it is fetched again
//! (`immediate`). `prefetch AMOUNT [DUR] [PCT%]` fetches a popular entry
//! again behind the answer when its TTL falls to PCT of the original.
//!
//! Only what `forward` brings is cached: the cluster zone's answers are
//! prepared already and always current (see the module map).

use crate::metrics::Source;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::Instant;

use super::forward::{Reply, Ttl, relay_with};

use super::message::{self, Done, TYPE_SOA, Walk};
use super::{Request, in_zones, zone_key};
use crate::corefile;
use crate::metrics::CacheStats;

/// (lowercase name, type, class, DO/CD bits): at most 255 + 5 bytes.
const KEY_MAX: usize = 261;
/// Where CoreDNS has no TTL to go by (a negative reply without SOA).
const FALLBACK_TTL: u32 = 5;

struct Entry {
    bytes: Vec<u8>,
    walk: Walk,
    stored: Instant,
    /// Seconds the entry is fresh.
    ttl: u32,
    /// Hits without a gap of `prefetch`'s DURATION, and when the last one
    /// came (milliseconds after `stored`).
    hits: AtomicU32,
    last_hit: AtomicU64,
    /// A refresh (prefetch, or a stale entry's) is under way.
    refreshing: AtomicBool,
}

impl Entry {
    /// Counts a hit at `now_ms`; returns the run of hits without a gap
    /// longer than `gap_ms`.
    fn hit(&self, now_ms: u64, gap_ms: u64) -> u32 {
        let last = self.last_hit.swap(now_ms, Ordering::Relaxed);
        if now_ms.saturating_sub(last) > gap_ms {
            self.hits.store(1, Ordering::Relaxed);
            1
        } else {
            self.hits.fetch_add(1, Ordering::Relaxed) + 1
        }
    }
}

#[derive(Clone)]
struct Evictions(Arc<AtomicU64>);

impl quick_cache::Lifecycle<Box<[u8]>, Arc<Entry>> for Evictions {
    type RequestState = ();
    fn on_evict(&self, _: &mut (), _: Box<[u8]>, _: Arc<Entry>) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

type Store = quick_cache::sync::Cache<
    Box<[u8]>,
    Arc<Entry>,
    quick_cache::UnitWeighter,
    quick_cache::DefaultHashBuilder,
    Evictions,
>;

struct Class {
    store: Store,
    disabled: Vec<Box<[u8]>>,
    min_ttl: u32,
    max_ttl: u32,
}

impl Class {
    fn new(cfg: &corefile::CacheClass, evictions: Arc<AtomicU64>) -> Self {
        let cap = cfg.capacity.max(1);
        Class {
            store: Store::with(cap, cap as u64, Default::default(), Default::default(), Evictions(evictions)),
            disabled: cfg.disabled.iter().filter_map(|z| zone_key(z)).collect(),
            min_ttl: cfg.min_ttl.as_secs() as u32,
            max_ttl: cfg.max_ttl.as_secs() as u32,
        }
    }
}

pub struct Cache {
    zones: Vec<Box<[u8]>>,
    success: Class,
    denial: Class,
    /// Seconds an expired entry may still be served when upstreams fail.
    stale: Option<u32>,
    /// `serve_stale ... immediate`: a stale entry is served at once and
    /// refreshed behind it (`verify`: only when the upstream fails).
    stale_first: bool,
    prefetch: Option<corefile::Prefetch>,
    servfail: u32,
    keepttl: bool,
    stats: Arc<CacheStats>,
}

fn cache_key<'k>(req: &Request, buf: &'k mut [u8; KEY_MAX]) -> &'k [u8] {
    let n = req.key.len();
    buf[..n].copy_from_slice(req.key);
    buf[n..n + 2].copy_from_slice(&req.q.qtype.to_be_bytes());
    buf[n + 2..n + 4].copy_from_slice(&req.q.qclass.to_be_bytes());
    buf[n + 4] = u8::from(req.q.dnssec_ok()) | (u8::from(req.q.flags & message::FLAG_CD != 0) << 1);
    &buf[..n + 5]
}

impl Cache {
    pub fn new(cfg: &corefile::Cache, stats: Arc<CacheStats>) -> Self {
        Cache {
            zones: cfg.zones.iter().filter_map(|z| zone_key(z)).collect(),
            success: Class::new(&cfg.success, stats.evictions_success.clone()),
            denial: Class::new(&cfg.denial, stats.evictions_denial.clone()),
            stale: cfg.serve_stale.as_ref().map(|s| s.duration.as_secs() as u32),
            stale_first: cfg.serve_stale.as_ref().is_some_and(|s| s.mode == corefile::StaleMode::Immediate),
            prefetch: cfg.prefetch.clone().filter(|p| p.amount > 0),
            servfail: cfg.servfail.as_secs() as u32,
            keepttl: cfg.keepttl,
            stats,
        }
    }

    /// The entry of `key`, and whether it is a success (not a denial).
    fn find(&self, key: &[u8]) -> Option<(Arc<Entry>, bool)> {
        match self.success.store.get(key) {
            Some(e) => Some((e, true)),
            None => self.denial.store.get(key).map(|e| (e, false)),
        }
    }

    /// A fresh cached reply, written as the response to `req`, and
    /// whether it should be fetched again behind the answer (`prefetch`,
    /// or a stale entry served first under `serve_stale immediate`).
    pub fn lookup(&self, req: &Request, out: &mut Vec<u8>) -> Option<(Done, bool)> {
        if !in_zones(req.key, &self.zones) {
            return None;
        }
        let mut buf = [0u8; KEY_MAX];
        let key = cache_key(req, &mut buf);
        let Some((entry, success)) = self.find(key) else {
            self.stats.misses.fetch_add(1, Ordering::Relaxed);
            return None;
        };
        let elapsed = entry.stored.elapsed();
        let age = elapsed.as_secs() as u32;
        if age >= entry.ttl {
            // Expired: served stale first only under `immediate`.
            let within = self.stale.is_some_and(|limit| u64::from(age) < u64::from(entry.ttl) + u64::from(limit));
            if !(self.stale_first && within) {
                self.stats.misses.fetch_add(1, Ordering::Relaxed);
                return None;
            }
            self.stats.served_stale.fetch_add(1, Ordering::Relaxed);
            let mut done = relay_with(req, &entry.bytes, &entry.walk, Ttl::Fixed(0), out);
            done.plugin = Source::Cache;
            let refresh = !entry.refreshing.swap(true, Ordering::AcqRel);
            return Some((done, refresh));
        }
        let hits = if success { &self.stats.hits_success } else { &self.stats.hits_denial };
        hits.fetch_add(1, Ordering::Relaxed);
        // Every record says how long the entry has left (CoreDNS's
        // filterRRSlice), so a client never holds it longer than the cache.
        let ttl = if self.keepttl { Ttl::Keep } else { Ttl::Fixed(entry.ttl - age) };
        let mut done = relay_with(req, &entry.bytes, &entry.walk, ttl, out);
        done.plugin = Source::Cache;
        let mut refresh = false;
        if let Some(p) = &self.prefetch {
            let now_ms = elapsed.as_millis() as u64;
            let run = entry.hit(now_ms, p.duration.as_millis() as u64);
            // Due when the TTL left falls to PERCENTAGE of it, or 1 s.
            let left_ms = u64::from(entry.ttl) * 1000 - now_ms.min(u64::from(entry.ttl) * 1000);
            let due = left_ms <= (u64::from(entry.ttl) * 10 * u64::from(p.percentage)).max(1000);
            if run >= p.amount && due && !entry.refreshing.swap(true, Ordering::AcqRel) {
                self.stats.prefetch.fetch_add(1, Ordering::Relaxed);
                refresh = true;
            }
        }
        Some((done, refresh))
    }

    /// A refresh behind an answer failed: the next hit may try again.
    pub fn refresh_failed(&self, req: &Request) {
        let mut buf = [0u8; KEY_MAX];
        if let Some((entry, _)) = self.find(cache_key(req, &mut buf)) {
            entry.refreshing.store(false, Ordering::Release);
        }
    }

    /// An expired reply still within `serve_stale`, served with TTL 0, for
    /// when no upstream answers.
    pub fn stale(&self, req: &Request, out: &mut Vec<u8>) -> Option<Done> {
        let limit = self.stale?;
        if !in_zones(req.key, &self.zones) {
            return None;
        }
        let mut buf = [0u8; KEY_MAX];
        let (entry, _) = self.find(cache_key(req, &mut buf))?;
        if entry.stored.elapsed().as_secs() >= u64::from(entry.ttl) + u64::from(limit) {
            return None;
        }
        self.stats.served_stale.fetch_add(1, Ordering::Relaxed);
        let mut done = relay_with(req, &entry.bytes, &entry.walk, Ttl::Fixed(0), out);
        done.plugin = Source::Cache;
        Some(done)
    }

    /// Keeps an upstream reply, if it may be kept. Returns the TTL the
    /// reply's records should carry (the capped lifetime, as CoreDNS writes
    /// it into the first reply too), or `None` to relay them unchanged.
    pub fn store(&self, req: &Request, reply: &Reply) -> Option<u32> {
        if !in_zones(req.key, &self.zones) || reply.walk.truncated() {
            return None;
        }
        let walk = &reply.walk;
        let answers = walk.section(0).count();
        let (class, ttl) = match walk.rcode() {
            message::RCODE_NOERROR if answers > 0 => {
                let ttl = walk.section(0).chain(walk.section(1)).map(|r| r.ttl).min().unwrap_or(FALLBACK_TTL);
                (&self.success, ttl)
            }
            message::RCODE_NOERROR | message::RCODE_NXDOMAIN => (&self.denial, negative_ttl(&reply.bytes, walk)),
            message::RCODE_SERVFAIL if self.servfail > 0 => {
                // Kept briefly, as given: never clamped up to MINTTL; and
                // never in place of a good answer that `serve_stale` may
                // still give.
                let mut buf = [0u8; KEY_MAX];
                if self.stale.is_none() || self.success.store.get(cache_key(req, &mut buf)).is_none() {
                    self.insert(&self.denial, req, reply, self.servfail);
                }
                return None;
            }
            _ => return None,
        };
        if in_zones(req.key, &class.disabled) {
            return None;
        }
        let ttl = ttl.clamp(class.min_ttl.min(class.max_ttl), class.max_ttl);
        self.insert(class, req, reply, ttl);
        (!self.keepttl).then_some(ttl)
    }

    fn insert(&self, class: &Class, req: &Request, reply: &Reply, ttl: u32) {
        if ttl == 0 && self.stale.is_none() {
            return;
        }
        let mut buf = [0u8; KEY_MAX];
        let key: Box<[u8]> = cache_key(req, &mut buf).into();
        let entry = Entry {
            bytes: reply.bytes.clone(),
            walk: reply.walk.clone(),
            stored: Instant::now(),
            ttl,
            hits: AtomicU32::new(0),
            last_hit: AtomicU64::new(0),
            refreshing: AtomicBool::new(false),
        };
        // One class per key: a name that turns from NXDOMAIN to an answer
        // must not keep its old denial beside it.
        let other = if std::ptr::eq(class, &self.success) { &self.denial } else { &self.success };
        other.store.remove(&key[..]);
        class.store.insert(key, Arc::new(entry));
        self.stats.entries_success.store(self.success.store.len() as u64, Ordering::Relaxed);
        self.stats.entries_denial.store(self.denial.store.len() as u64, Ordering::Relaxed);
    }
}

/// RFC 2308 5: a negative reply lives min(SOA TTL, SOA MINIMUM).
fn negative_ttl(bytes: &[u8], walk: &Walk) -> u32 {
    walk.section(1)
        .filter(|r| r.rtype == TYPE_SOA)
        .filter_map(|r| {
            // MINIMUM is the last 4 bytes of the SOA's RDATA.
            let min = bytes.get(r.end - 4..r.end)?;
            Some(r.ttl.min(u32::from_be_bytes([min[0], min[1], min[2], min[3]])))
        })
        .min()
        .unwrap_or(FALLBACK_TTL)
}
