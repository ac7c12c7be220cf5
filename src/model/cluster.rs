//! The synchronous index of the cluster, fed by events.
//!
//! Every change says which *owners* it touched: the units the DNS index
//! rebuilds (a Service with everything below its name, a Namespace, a Pod's
//! own name, the static apex records). `records` turns an owner into DNS
//! nodes; this file only keeps objects and answers "who is affected".

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

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
}

/// The unit of DNS names that is rebuilt together.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Owner {
    /// Apex SOA/NS, `dns-version`, the `svc`/`pod` labels, `ns.dns`.
    Static,
    Namespace(Arc<str>),
    Service(Arc<str>, Arc<str>),
    Pod(Arc<str>, Arc<str>),
}

type NsName = (String, String);

fn nsn(ns: &str, name: &str) -> NsName {
    (ns.to_string(), name.to_string())
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
    services: HashMap<NsName, Arc<Service>>,
    services_by_ns: HashMap<String, BTreeSet<String>>,
    slices: HashMap<NsName, Arc<EndpointSlice>>,
    /// (namespace, service name) -> slice names, from the service-name label.
    slices_by_service: HashMap<NsName, NameSet>,
    endpoints: HashMap<NsName, Arc<Endpoints>>,
    pods: HashMap<NsName, Arc<Pod>>,
    pods_by_ns: HashMap<String, BTreeSet<String>>,
}

/// The slice names of one Service, sorted: most Services have one slice,
/// where a `BTreeSet` would allocate a node for eleven (27 MiB at 100k).
#[derive(Default, Debug)]
struct NameSet(smallvec::SmallVec<[Box<str>; 1]>);

impl NameSet {
    fn insert(&mut self, name: &str) {
        if let Err(i) = self.0.binary_search_by(|n| (**n).cmp(name)) {
            self.0.insert(i, name.into());
        }
    }

    fn remove(&mut self, name: &str) {
        if let Ok(i) = self.0.binary_search_by(|n| (**n).cmp(name)) {
            self.0.remove(i);
        }
    }

    fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|n| &**n)
    }
}

fn index_add(map: &mut HashMap<String, BTreeSet<String>>, ns: &str, name: &str) {
    map.entry(ns.to_string()).or_default().insert(name.to_string());
}

fn index_remove<K: std::hash::Hash + Eq>(map: &mut HashMap<K, BTreeSet<String>>, key: &K, name: &str) {
    if let Some(set) = map.get_mut(key) {
        set.remove(name);
        if set.is_empty() {
            map.remove(key);
        }
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
        self.services.get(&nsn(ns, name)).map(|s| &**s).filter(|_| self.exposed(ns))
    }

    pub fn has_namespace(&self, ns: &str) -> bool {
        self.namespaces.contains(ns)
    }

    pub fn pod(&self, ns: &str, name: &str) -> Option<&Pod> {
        self.pods.get(&nsn(ns, name)).map(|p| &**p).filter(|_| self.exposed(ns))
    }

    pub(super) fn slices_of(&self, ns: &str, svc: &str) -> impl Iterator<Item = &EndpointSlice> {
        let key = nsn(ns, svc);
        self.slices_by_service
            .get(&key)
            .into_iter()
            .flat_map(NameSet::iter)
            .filter_map(move |name| self.slices.get(&nsn(ns, name)).map(|s| &**s))
    }

    pub(super) fn endpoints_named(&self, ns: &str, name: &str) -> Option<&Endpoints> {
        self.endpoints.get(&nsn(ns, name)).map(|e| &**e)
    }

    pub(super) fn pods_in(&self, ns: &str) -> impl Iterator<Item = &Pod> {
        self.pods_by_ns
            .get(ns)
            .into_iter()
            .flatten()
            .filter_map(move |name| self.pods.get(&nsn(ns, name)).map(|p| &**p))
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
        out.extend(self.services.keys().map(|(ns, n)| Owner::Service(ns.as_str().into(), n.as_str().into())));
        out.extend(self.pods.keys().map(|(ns, n)| Owner::Pod(ns.as_str().into(), n.as_str().into())));
        out
    }

    /// Services of `ns` whose selector matches `labels`.
    fn selecting(&self, ns: &str, labels: &Labels, out: &mut Vec<Owner>) {
        for name in self.services_by_ns.get(ns).into_iter().flatten() {
            if let Some(svc) = self.services.get(&nsn(ns, name))
                && svc.selector.as_ref().is_some_and(|sel| sel.selects(labels))
            {
                out.push(Owner::Service(ns.into(), name.as_str().into()));
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
                    for svc in self.services_by_ns.get(&key.name).into_iter().flatten() {
                        out.push(Owner::Service(name.clone(), svc.as_str().into()));
                    }
                    for pod in self.pods_by_ns.get(&key.name).into_iter().flatten() {
                        out.push(Owner::Pod(name.clone(), pod.as_str().into()));
                    }
                    if key.name == DNS_SERVICE.0 {
                        out.push(Owner::Static);
                    }
                }
            }
            Kind::Service => {
                out.push(Owner::Service(ns, key.name.as_str().into()));
                if (key.namespace.as_str(), key.name.as_str()) == DNS_SERVICE {
                    out.push(Owner::Static);
                }
            }
            Kind::Endpoints => out.push(Owner::Service(ns, key.name.as_str().into())),
            Kind::EndpointSlice => {
                let old = self.slices.get(&nsn(&key.namespace, &key.name)).and_then(|s| s.service.clone());
                let new = match new {
                    Some(Object::EndpointSlice(s)) => s.service.clone(),
                    _ => None,
                };
                for svc in [old, new].into_iter().flatten() {
                    out.push(Owner::Service(ns.clone(), svc.into()));
                }
            }
            Kind::Pod => {
                out.push(Owner::Pod(ns.clone(), key.name.as_str().into()));
                if let Some(old) = self.pods.get(&nsn(&key.namespace, &key.name)) {
                    self.selecting(&key.namespace, &old.labels, &mut out);
                }
                if let Some(Object::Pod(p)) = new {
                    self.selecting(&key.namespace, &p.labels, &mut out);
                }
            }
        }
        out.sort();
        out.dedup();
        out
    }

    /// Applies one object. Returns false when it equals what is stored.
    pub fn apply(&mut self, obj: Object) -> bool {
        let key = obj.key();
        let k = nsn(&key.namespace, &key.name);
        match obj {
            Object::Namespace(n) => self.namespaces.insert(n.name),
            Object::Service(s) => {
                if self.services.get(&k) == Some(&s) {
                    return false;
                }
                index_add(&mut self.services_by_ns, &k.0, &k.1);
                self.services.insert(k, s);
                true
            }
            Object::EndpointSlice(s) => {
                if self.slices.get(&k) == Some(&s) {
                    return false;
                }
                if let Some(old) = self.slices.get(&k).and_then(|o| o.service.clone()) {
                    self.unlink_slice(&nsn(&k.0, &old), &k.1);
                }
                if let Some(svc) = &s.service {
                    self.slices_by_service.entry(nsn(&k.0, svc)).or_default().insert(&k.1);
                }
                self.slices.insert(k, s);
                true
            }
            Object::Endpoints(e) => {
                if self.endpoints.get(&k) == Some(&e) {
                    return false;
                }
                self.endpoints.insert(k, e);
                true
            }
            Object::Pod(p) => {
                if self.pods.get(&k) == Some(&p) {
                    return false;
                }
                index_add(&mut self.pods_by_ns, &k.0, &k.1);
                self.pods.insert(k, p);
                true
            }
        }
    }

    /// Deletes one object. Returns false when it was not there.
    pub fn delete(&mut self, key: &ObjectKey) -> bool {
        let k = nsn(&key.namespace, &key.name);
        match key.kind {
            Kind::Namespace => self.namespaces.remove(&key.name),
            Kind::Service => {
                index_remove(&mut self.services_by_ns, &k.0, &k.1);
                self.services.remove(&k).is_some()
            }
            Kind::EndpointSlice => match self.slices.remove(&k) {
                Some(old) => {
                    if let Some(svc) = &old.service {
                        self.unlink_slice(&nsn(&k.0, svc), &k.1);
                    }
                    true
                }
                None => false,
            },
            Kind::Endpoints => self.endpoints.remove(&k).is_some(),
            Kind::Pod => {
                index_remove(&mut self.pods_by_ns, &k.0, &k.1);
                self.pods.remove(&k).is_some()
            }
        }
    }

    fn unlink_slice(&mut self, svc: &NsName, slice: &str) {
        if let Some(set) = self.slices_by_service.get_mut(svc) {
            set.remove(slice);
            if set.0.is_empty() {
                self.slices_by_service.remove(svc);
            }
        }
    }

    fn keys_of(&self, kind: Kind) -> Vec<ObjectKey> {
        let mk = |ns: &str, name: &str| ObjectKey { kind, namespace: ns.to_string(), name: name.to_string() };
        match kind {
            Kind::Namespace => self.namespaces.iter().map(|n| mk("", n)).collect(),
            Kind::Service => self.services.keys().map(|(ns, n)| mk(ns, n)).collect(),
            Kind::EndpointSlice => self.slices.keys().map(|(ns, n)| mk(ns, n)).collect(),
            Kind::Endpoints => self.endpoints.keys().map(|(ns, n)| mk(ns, n)).collect(),
            Kind::Pod => self.pods.keys().map(|(ns, n)| mk(ns, n)).collect(),
        }
    }

    fn get(&self, key: &ObjectKey) -> Option<Object> {
        let k = nsn(&key.namespace, &key.name);
        match key.kind {
            Kind::Namespace => {
                let ns = |n: &String| Object::Namespace(Namespace { name: n.clone(), labels: Labels::default() });
                self.namespaces.get(&key.name).map(ns)
            }
            Kind::Service => self.services.get(&k).cloned().map(Object::Service),
            Kind::EndpointSlice => self.slices.get(&k).cloned().map(Object::EndpointSlice),
            Kind::Endpoints => self.endpoints.get(&k).cloned().map(Object::Endpoints),
            Kind::Pod => self.pods.get(&k).cloned().map(Object::Pod),
        }
    }

    /// Whether exactly `obj` is stored under `key` (no copy made).
    fn holds(&self, key: &ObjectKey, obj: &Object) -> bool {
        let k = nsn(&key.namespace, &key.name);
        match obj {
            Object::Namespace(n) => self.namespaces.contains(&n.name),
            Object::Service(s) => self.services.get(&k) == Some(s),
            Object::EndpointSlice(s) => self.slices.get(&k) == Some(s),
            Object::Endpoints(e) => self.endpoints.get(&k) == Some(e),
            Object::Pod(p) => self.pods.get(&k) == Some(p),
        }
    }

    /// Turns a `Reset` into the applies and deletes that make the state equal
    /// to `objects` for `kinds`: only what differs, so that names untouched by
    /// a relist or a reload are never removed, not even for a moment.
    pub fn diff_reset(&self, kinds: &[Kind], objects: Vec<Object>) -> Vec<Event> {
        let mut seen = std::collections::HashSet::new();
        let mut out = Vec::new();
        for obj in objects {
            let key = obj.key();
            if !kinds.contains(&key.kind) {
                continue;
            }
            if !self.holds(&key, &obj) {
                out.push(Event::Apply(obj));
            }
            seen.insert(key);
        }
        for kind in kinds {
            for key in self.keys_of(*kind) {
                if !seen.contains(&key) {
                    out.push(Event::Delete(key));
                }
            }
        }
        out
    }
}
