//! The synchronous index of the cluster, fed by events.
//!
//! Every change says which *owners* it touched: the units the DNS index
//! rebuilds (a Service, a source of its endpoints, a Namespace, a Pod's
//! own name, the static apex records). `records` turns an owner into DNS
//! nodes; this file only keeps objects and answers "who is affected".

use std::collections::BTreeSet;
use std::sync::Arc;

use hashbrown::HashTable;

use super::objects::*;

/// A change to the cluster, from the API, from files, or from a test.
#[derive(Clone, Debug)]
pub enum Event {
    Apply(Object),
    Delete(ObjectKey),
    /// A complete list of the given kinds: replaces every object of those
    /// kinds (a relist, or a reload of the manifest files).
    Reset {
        kinds: Vec<Kind>,
        objects: Vec<Object>,
    },
    /// A complete list of one kind told as what changed since the source
    /// last sent it: `changed` to apply, `listed` every (namespace, name)
    /// the list held, as its [`key_hash`]; the rest of the kind goes. An API
    /// relist of 100k objects then reaches the model without a second copy
    /// of the unchanged ones, and with 16 bytes a key, not 48.
    Relist {
        kind: Kind,
        changed: Vec<Object>,
        listed: foldhash::HashSet<u128>,
    },
}

/// 128 bits of a (namespace, name), from two hashes seeded at random when
/// the process starts: a relist's keys, without their strings (three
/// watches relisting 100k objects each held 20 MiB of names). Two keys
/// sharing a hash would keep a deleted object until its next event; with
/// 128 unpredictable bits, no one can make them.
pub fn key_hash(ns: &str, name: &str) -> u128 {
    use std::hash::BuildHasher;
    static SEEDS: std::sync::LazyLock<[foldhash::quality::RandomState; 2]> =
        std::sync::LazyLock::new(|| [Default::default(), Default::default()]);
    let [a, b] = &*SEEDS;
    (u128::from(a.hash_one((ns, name))) << 64) | u128::from(b.hash_one((ns, name)))
}

/// The unit of DNS names that is rebuilt together. A Service's names are
/// split between the Service itself and each source of its endpoints, so
/// that one endpoint's change rebuilds its slice's hundred endpoints and
/// not the Service's ten thousand (issue 8); the names they share (a
/// headless Service's own name and SRV names) are merged by the index.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Owner {
    /// Apex SOA/NS, `dns-version`, the `svc`/`pod` labels, `ns.dns`.
    Static,
    Namespace(Arc<str>),
    /// What the Service says alone: its ClusterIPs, ports and ExternalName.
    Service(Arc<str>, Arc<str>),
    /// What one EndpointSlice (namespace, slice name) gives the Service its
    /// label names: per-endpoint names, and for a headless Service its
    /// share of the Service's A and SRV records.
    Slice(Arc<str>, Arc<str>),
    /// The same from the v1 Endpoints of a Service's name, when the Service
    /// has no slices.
    Endpoints(Arc<str>, Arc<str>),
    /// The same from one Pod (namespace, Service, Pod) that the Service's
    /// selector matches, when it has neither slices nor Endpoints
    /// (hand-written manifests: SPEC.md 1).
    Selected(Arc<str>, Arc<str>, Arc<str>),
    Pod(Arc<str>, Arc<str>),
}

/// Where the DNS server's own Service is expected (kubeadm's name and
/// namespace); its ClusterIP is the address of `ns.dns.<zone>`.
pub const DNS_SERVICE: (&str, &str) = ("kube-system", "kube-dns");

#[derive(Default, Debug)]
pub struct Cluster {
    /// Serve nothing of a namespace not in `namespaces` (CoreDNS's
    /// `namespace_labels`: the source lists only the matching ones).
    exposed_only: bool,
    namespaces: BTreeSet<String>,
    services: Names<Arc<Service>>,
    slices: Names<Arc<EndpointSlice>>,
    /// (namespace, service name) -> its slices, from the service-name label.
    slices_by_service: Names<ServiceSlices>,
    endpoints: Names<Arc<Endpoints>>,
    pods: Names<Arc<Pod>>,
}

/// Objects of one kind by namespace, then name: found by a pair of `&str`
/// without building a key (a relist or a reload looks up every object),
/// and a namespace's objects are its inner table (no second index of
/// names). The inner table holds the values alone, each found by the name
/// it carries: 8 bytes a slot for an `Arc`, not 32 with a copy of the name
/// beside it (10 MiB at 100k Services, the tables' slack included).
/// Names are hashed with a seed of the process's own (as the maps'
/// hashers are): names that users choose cannot be made to collide.
#[derive(Debug)]
struct Names<T>(foldhash::HashMap<Str, HashTable<T>>, foldhash::fast::RandomState);

/// A value of [`Names`]: it knows its own name.
trait Named {
    fn name(&self) -> &str;
}

/// The kinds held in [`Names`] by their `name` field.
macro_rules! named_by_field {
    ($($kind:ty),*) => {$(
        impl Named for Arc<$kind> {
            fn name(&self) -> &str {
                &self.name
            }
        }
    )*};
}

named_by_field!(Service, EndpointSlice, Endpoints, Pod);

impl<T> Default for Names<T> {
    fn default() -> Self {
        Names(Default::default(), Default::default())
    }
}

impl<T: Named> Names<T> {
    /// The hash of a name (not of a value): the same in every inner table.
    fn hash(&self, name: &str) -> u64 {
        use std::hash::BuildHasher;
        self.1.hash_one(name)
    }

    fn get(&self, ns: &str, name: &str) -> Option<&T> {
        self.0.get(ns)?.find(self.hash(name), |v| v.name() == name)
    }

    fn get_mut(&mut self, ns: &str, name: &str) -> Option<&mut T> {
        let hash = self.hash(name);
        self.0.get_mut(ns)?.find_mut(hash, |v| v.name() == name)
    }

    /// Adds `value` under its own name, or puts it in place of the value
    /// of that name.
    fn insert(&mut self, ns: &str, value: T) {
        let hash = self.hash(value.name());
        let hasher = &self.1;
        let names = match self.0.get_mut(ns) {
            Some(names) => names,
            None => self.0.entry(Str::from(ns)).or_default(),
        };
        match names.find_mut(hash, |v| v.name() == value.name()) {
            Some(slot) => *slot = value,
            None => {
                names.insert_unique(hash, value, |v| std::hash::BuildHasher::hash_one(hasher, v.name()));
            }
        }
    }

    fn remove(&mut self, ns: &str, name: &str) -> Option<T> {
        let hash = self.hash(name);
        let names = self.0.get_mut(ns)?;
        let out = names.find_entry(hash, |v| v.name() == name).ok().map(|e| e.remove().0);
        if names.is_empty() {
            self.0.remove(ns);
        }
        out
    }

    fn len(&self) -> usize {
        self.0.values().map(HashTable::len).sum()
    }

    /// The objects of one namespace, in no particular order.
    fn in_ns(&self, ns: &str) -> impl Iterator<Item = (&str, &T)> {
        self.0.get(ns).into_iter().flatten().map(|v| (v.name(), v))
    }

    fn iter(&self) -> impl Iterator<Item = (&str, &str, &T)> {
        self.0.iter().flat_map(|(ns, names)| names.iter().map(move |v| (ns.as_str(), v.name(), v)))
    }
}

/// The slices of one Service (by their `kubernetes.io/service-name` label),
/// sorted by name, never empty: most Services have one slice, held inline.
/// The slices themselves, not their names: 8 bytes each, and the Service's
/// slices are read with no second lookup. `Cluster::apply` keeps them the
/// same `Arc`s as in `slices`.
#[derive(Debug)]
struct ServiceSlices(smallvec::SmallVec<[Arc<EndpointSlice>; 1]>);

impl ServiceSlices {
    /// Adds `slice`, or puts it in place of the slice of its name.
    fn insert(&mut self, slice: Arc<EndpointSlice>) {
        match self.0.binary_search_by(|s| s.name.cmp(&slice.name)) {
            Ok(i) => self.0[i] = slice,
            Err(i) => self.0.insert(i, slice),
        }
    }

    fn remove(&mut self, name: &str) {
        if let Ok(i) = self.0.binary_search_by(|s| (*s.name).cmp(name)) {
            self.0.remove(i);
        }
    }
}

impl Named for ServiceSlices {
    /// The Service's name: every slice of the set has it as its label.
    fn name(&self) -> &str {
        self.0.first().and_then(|s| s.service.as_deref()).unwrap_or("")
    }
}

impl Cluster {
    pub fn new() -> Self {
        Self::default()
    }

    /// A model that serves only the objects of namespaces it holds.
    pub fn exposed_only() -> Self {
        Cluster { exposed_only: true, ..Self::default() }
    }

    fn exposed(&self, ns: &str) -> bool {
        !self.exposed_only || self.namespaces.contains(ns)
    }

    pub fn service(&self, ns: &str, name: &str) -> Option<&Service> {
        self.services.get(ns, name).map(|s| &**s).filter(|_| self.exposed(ns))
    }

    pub fn has_namespace(&self, ns: &str) -> bool {
        self.namespaces.contains(ns)
    }

    pub fn pod(&self, ns: &str, name: &str) -> Option<&Pod> {
        self.pods.get(ns, name).map(|p| &**p).filter(|_| self.exposed(ns))
    }

    pub(super) fn slice(&self, ns: &str, name: &str) -> Option<&EndpointSlice> {
        self.slices.get(ns, name).map(|s| &**s)
    }

    pub fn slices_of(&self, ns: &str, svc: &str) -> impl Iterator<Item = &EndpointSlice> {
        self.slices_by_service.get(ns, svc).into_iter().flat_map(|s| s.0.iter()).map(|s| &**s)
    }

    pub fn endpoints_named(&self, ns: &str, name: &str) -> Option<&Endpoints> {
        self.endpoints.get(ns, name).map(|e| &**e)
    }

    /// The Pods of a namespace, in no particular order.
    pub fn pods_in(&self, ns: &str) -> impl Iterator<Item = &Pod> {
        self.pods.in_ns(ns).map(|(_, p)| &**p)
    }

    /// The namespaces that exist, in name order (`explain`).
    pub fn namespaces(&self) -> impl Iterator<Item = &str> {
        self.namespaces.iter().map(String::as_str)
    }

    /// Every Service served, in no particular order (`explain`).
    pub fn services(&self) -> impl Iterator<Item = &Service> {
        self.services.iter().filter(|(ns, _, _)| self.exposed(ns)).map(|(_, _, s)| &**s)
    }

    /// Every EndpointSlice of `ns`, in no particular order (`explain`).
    pub fn slices_in(&self, ns: &str) -> impl Iterator<Item = &EndpointSlice> {
        self.slices.in_ns(ns).map(|(_, s)| &**s)
    }

    /// Every Endpoints object of `ns`, in no particular order (`explain`).
    pub fn endpoints_in(&self, ns: &str) -> impl Iterator<Item = &Endpoints> {
        self.endpoints.in_ns(ns).map(|(_, e)| &**e)
    }

    pub fn counts(&self) -> [(Kind, usize); 5] {
        [
            (Kind::Namespace, self.namespaces.len()),
            (Kind::Service, self.services.len()),
            (Kind::EndpointSlice, self.slices.len()),
            (Kind::Endpoints, self.endpoints.len()),
            (Kind::Pod, self.pods.len()),
        ]
    }

    /// Every object, in no particular order (tests, debugging).
    pub fn objects(&self) -> Vec<Object> {
        let kinds = [Kind::Namespace, Kind::Service, Kind::EndpointSlice, Kind::Endpoints, Kind::Pod];
        kinds.iter().flat_map(|k| self.keys_of(*k)).filter_map(|key| self.get(&key)).collect()
    }

    /// Every owner the current state has names for.
    pub fn owners(&self) -> Vec<Owner> {
        let mut out = vec![Owner::Static];
        out.extend(self.namespaces.iter().map(|ns| Owner::Namespace(ns.as_str().into())));
        out.extend(self.services.iter().map(|(ns, n, _)| Owner::Service(ns.into(), n.into())));
        out.extend(self.slices.iter().map(|(ns, n, _)| Owner::Slice(ns.into(), n.into())));
        out.extend(self.endpoints.iter().map(|(ns, n, _)| Owner::Endpoints(ns.into(), n.into())));
        for (ns, name, svc) in self.services.iter() {
            if self.source(ns, name) == super::endpoints::Source::Selector {
                self.selected(ns, name, svc.selector.as_ref(), &mut out);
            }
        }
        out.extend(self.pods.iter().map(|(ns, n, _)| Owner::Pod(ns.into(), n.into())));
        out
    }

    /// The [`Owner::Selected`] of every Pod of `ns` that `selector` matches.
    fn selected(&self, ns: &str, svc: &str, selector: Option<&Labels>, out: &mut Vec<Owner>) {
        let Some(selector) = selector else { return };
        let (ns_arc, svc_arc): (Arc<str>, Arc<str>) = (ns.into(), svc.into());
        for (pod, p) in self.pods.in_ns(ns) {
            if selector.selects(&p.labels) {
                out.push(Owner::Selected(ns_arc.clone(), svc_arc.clone(), pod.into()));
            }
        }
    }

    /// Every owner that holds endpoints of Service `ns/name`, whichever
    /// source is in use (the one in use can change with the event).
    /// `selector`: a selector besides the stored one's (the Service's new
    /// version). The Pods its selector matches are left out while it has
    /// slices, unless `switching` (its slices come or go).
    fn endpoint_owners(&self, ns: &str, name: &str, selector: Option<&Labels>, switching: bool, out: &mut Vec<Owner>) {
        let nsa: Arc<str> = ns.into();
        for slice in self.slices_by_service.get(ns, name).into_iter().flat_map(|s| s.0.iter().map(|s| s.name.as_str()))
        {
            out.push(Owner::Slice(nsa.clone(), slice.into()));
        }
        if self.endpoints.get(ns, name).is_some() {
            out.push(Owner::Endpoints(nsa, name.into()));
        }
        if switching || self.slices_by_service.get(ns, name).is_none() {
            let stored = self.services.get(ns, name).and_then(|s| s.selector.as_ref());
            self.selected(ns, name, stored, out);
            if selector.is_some() && selector != stored {
                self.selected(ns, name, selector, out);
            }
        }
    }

    /// Services of `ns` whose selector matches `labels`: their own names
    /// (CoreDNS's `ignore empty_service` looks at their endpoints) and
    /// the Pod's part of their endpoints.
    fn selecting(&self, ns: &str, pod: &str, labels: &Labels, out: &mut Vec<Owner>) {
        for (name, svc) in self.services.in_ns(ns) {
            if svc.selector.as_ref().is_some_and(|sel| sel.selects(labels)) {
                out.push(Owner::Service(ns.into(), name.into()));
                out.push(Owner::Selected(ns.into(), name.into(), pod.into()));
            }
        }
    }

    /// The owners whose names may change when `obj` is applied or deleted,
    /// judged against the current state (call before applying).
    pub fn affected(&self, key: &ObjectKey, new: Option<&Object>) -> Vec<Owner> {
        let ns: Arc<str> = key.namespace.as_str().into();
        let mut out = Vec::new();
        match key.kind {
            Kind::Namespace => {
                let name: Arc<str> = key.name.as_str().into();
                out.push(Owner::Namespace(name.clone()));
                // A namespace coming or going hides or shows all it holds.
                if self.exposed_only {
                    for (svc, _) in self.services.in_ns(&key.name) {
                        out.push(Owner::Service(name.clone(), svc.into()));
                        self.endpoint_owners(&key.name, svc, None, false, &mut out);
                    }
                    for (pod, _) in self.pods.in_ns(&key.name) {
                        out.push(Owner::Pod(name.clone(), pod.into()));
                    }
                    if key.name == DNS_SERVICE.0 {
                        out.push(Owner::Static);
                    }
                }
            }
            Kind::Service => {
                out.push(Owner::Service(ns, key.name.as_str().into()));
                let selector = match new {
                    Some(Object::Service(s)) => s.selector.as_ref(),
                    _ => None,
                };
                self.endpoint_owners(&key.namespace, &key.name, selector, false, &mut out);
                if (key.namespace.as_str(), key.name.as_str()) == DNS_SERVICE {
                    out.push(Owner::Static);
                }
            }
            Kind::Endpoints => {
                out.push(Owner::Service(ns.clone(), key.name.as_str().into()));
                out.push(Owner::Endpoints(ns, key.name.as_str().into()));
                if self.slices_by_service.get(&key.namespace, &key.name).is_none() {
                    // Endpoints coming or going end or start the selector's.
                    let selector = self.services.get(&key.namespace, &key.name).and_then(|s| s.selector.as_ref());
                    self.selected(&key.namespace, &key.name, selector, &mut out);
                }
            }
            Kind::EndpointSlice => {
                out.push(Owner::Slice(ns.clone(), key.name.as_str().into()));
                let old = self.slices.get(&key.namespace, &key.name).and_then(|s| s.service.as_deref());
                let new = match new {
                    Some(Object::EndpointSlice(s)) => s.service.as_deref(),
                    _ => None,
                };
                for svc in [old, new].into_iter().flatten() {
                    out.push(Owner::Service(ns.clone(), svc.into()));
                    // A Service's first slice replaces its Endpoints or
                    // selector as the source; its last gives them back.
                    let count = self.slices_by_service.get(&key.namespace, svc).map_or(0, |s| s.0.len());
                    if old != new && count <= 1 {
                        self.endpoint_owners(&key.namespace, svc, None, true, &mut out);
                    }
                }
            }
            Kind::Pod => {
                out.push(Owner::Pod(ns.clone(), key.name.as_str().into()));
                if let Some(old) = self.pods.get(&key.namespace, &key.name) {
                    self.selecting(&key.namespace, &key.name, &old.labels, &mut out);
                }
                if let Some(Object::Pod(p)) = new {
                    self.selecting(&key.namespace, &key.name, &p.labels, &mut out);
                }
            }
        }
        out.sort();
        out.dedup();
        out
    }

    /// Applies one object. Returns false when it equals what is stored.
    pub fn apply(&mut self, obj: Object) -> bool {
        if self.holds(&obj) {
            return false;
        }
        let (_, ns, name) = obj.id();
        let (ns, name) = (ns.to_string(), name.to_string());
        match obj {
            Object::Namespace(n) => self.namespaces.insert(n.name.clone()),
            Object::Service(s) => {
                self.services.insert(&ns, s);
                true
            }
            Object::EndpointSlice(s) => {
                if let Some(old) = self.slices.get(&ns, &name).and_then(|o| o.service.clone()) {
                    self.unlink_slice(&ns, &old, &name);
                }
                if let Some(svc) = &s.service {
                    match self.slices_by_service.get_mut(&ns, svc) {
                        Some(set) => set.insert(s.clone()),
                        None => self.slices_by_service.insert(&ns, ServiceSlices(smallvec::smallvec![s.clone()])),
                    }
                }
                self.slices.insert(&ns, s);
                true
            }
            Object::Endpoints(e) => {
                self.endpoints.insert(&ns, e);
                true
            }
            Object::Pod(p) => {
                self.pods.insert(&ns, p);
                true
            }
        }
    }

    /// Deletes one object. Returns false when it was not there.
    pub fn delete(&mut self, key: &ObjectKey) -> bool {
        let (ns, name) = (key.namespace.as_str(), key.name.as_str());
        match key.kind {
            Kind::Namespace => self.namespaces.remove(name),
            Kind::Service => self.services.remove(ns, name).is_some(),
            Kind::EndpointSlice => match self.slices.remove(ns, name) {
                Some(old) => {
                    if let Some(svc) = &old.service {
                        self.unlink_slice(ns, svc, name);
                    }
                    true
                }
                None => false,
            },
            Kind::Endpoints => self.endpoints.remove(ns, name).is_some(),
            Kind::Pod => self.pods.remove(ns, name).is_some(),
        }
    }

    fn unlink_slice(&mut self, ns: &str, svc: &str, slice: &str) {
        let Some(set) = self.slices_by_service.get_mut(ns, svc) else {
            return;
        };
        // The last slice goes with its set: a set in the table is never
        // empty (it is found by its first slice's label).
        if set.0.len() == 1 && set.0[0].name == slice {
            self.slices_by_service.remove(ns, svc);
        } else {
            set.remove(slice);
        }
    }

    /// Every stored object of `kind`, borrowed: (namespace, name).
    fn ids_of(&self, kind: Kind) -> Box<dyn Iterator<Item = (&str, &str)> + '_> {
        match kind {
            Kind::Namespace => Box::new(self.namespaces.iter().map(|n| ("", n.as_str()))),
            Kind::Service => Box::new(self.services.iter().map(|(ns, n, _)| (ns, n))),
            Kind::EndpointSlice => Box::new(self.slices.iter().map(|(ns, n, _)| (ns, n))),
            Kind::Endpoints => Box::new(self.endpoints.iter().map(|(ns, n, _)| (ns, n))),
            Kind::Pod => Box::new(self.pods.iter().map(|(ns, n, _)| (ns, n))),
        }
    }

    fn keys_of(&self, kind: Kind) -> Vec<ObjectKey> {
        self.ids_of(kind)
            .map(|(ns, name)| ObjectKey { kind, namespace: ns.to_string(), name: name.to_string() })
            .collect()
    }

    fn get(&self, key: &ObjectKey) -> Option<Object> {
        let (ns, name) = (key.namespace.as_str(), key.name.as_str());
        match key.kind {
            Kind::Namespace => {
                let ns = |n: &String| Object::new_namespace(n.clone());
                self.namespaces.get(name).map(ns)
            }
            Kind::Service => self.services.get(ns, name).cloned().map(Object::Service),
            Kind::EndpointSlice => self.slices.get(ns, name).cloned().map(Object::EndpointSlice),
            Kind::Endpoints => self.endpoints.get(ns, name).cloned().map(Object::Endpoints),
            Kind::Pod => self.pods.get(ns, name).cloned().map(Object::Pod),
        }
    }

    /// Whether exactly `obj` is stored (no copy made, no key built).
    fn holds(&self, obj: &Object) -> bool {
        let (_, ns, name) = obj.id();
        match obj {
            Object::Namespace(n) => self.namespaces.contains(&n.name),
            Object::Service(s) => self.services.get(ns, name) == Some(s),
            Object::EndpointSlice(s) => self.slices.get(ns, name) == Some(s),
            Object::Endpoints(e) => self.endpoints.get(ns, name) == Some(e),
            Object::Pod(p) => self.pods.get(ns, name) == Some(p),
        }
    }

    /// Turns a `Relist` into the applies and deletes that make the state
    /// of `kind` equal to the list it stands for.
    pub fn diff_relist(&self, kind: Kind, changed: Vec<Object>, listed: &foldhash::HashSet<u128>) -> Vec<Event> {
        let mut out: Vec<Event> =
            changed.into_iter().filter(|o| o.id().0 == kind && !self.holds(o)).map(Event::Apply).collect();
        for (ns, name) in self.ids_of(kind) {
            if !listed.contains(&key_hash(ns, name)) {
                out.push(Event::Delete(ObjectKey { kind, namespace: ns.to_string(), name: name.to_string() }));
            }
        }
        out
    }

    /// Turns a `Reset` into the applies and deletes that make the state equal
    /// to `objects` for `kinds`: only what differs, so that names untouched by
    /// a relist or a reload are never removed, not even for a moment. Costs a
    /// lookup per object and no copy of any name but those that changed.
    pub fn diff_reset(&self, kinds: &[Kind], objects: Vec<Object>) -> Vec<Event> {
        // Nothing of these kinds held (the first load): every object is new
        // and nothing goes, with no set of the listed ids to build.
        if kinds.iter().all(|k| self.ids_of(*k).next().is_none()) {
            return objects.into_iter().filter(|o| kinds.contains(&o.id().0)).map(Event::Apply).collect();
        }
        // An object listed twice (two manifest files define it) is its last
        // version, as when everything is applied in order: the same list
        // then makes the same state whatever the state before.
        let mut seen: foldhash::HashSet<(Kind, &str, &str)> = foldhash::HashSet::default();
        let mut last = vec![false; objects.len()];
        for (i, o) in objects.iter().enumerate().rev() {
            last[i] = kinds.contains(&o.id().0) && seen.insert(o.id());
        }
        let mut deletes = Vec::new();
        for kind in kinds {
            for (ns, name) in self.ids_of(*kind) {
                if !seen.contains(&(*kind, ns, name)) {
                    let key = ObjectKey { kind: *kind, namespace: ns.to_string(), name: name.to_string() };
                    deletes.push(Event::Delete(key));
                }
            }
        }
        let changed: Vec<bool> = objects.iter().zip(last).map(|(o, last)| last && !self.holds(o)).collect();
        drop(seen);
        let mut out: Vec<Event> =
            objects.into_iter().zip(changed).filter(|(_, c)| *c).map(|(o, _)| Event::Apply(o)).collect();
        out.extend(deletes);
        out
    }
}
