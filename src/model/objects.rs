//! The trimmed cluster objects: only the fields that decide a DNS answer.
//!
//! Objects are trimmed at the boundary (manifest parsing, API events) so that
//! no `k8s_openapi` type reaches `records/`, and memory at 100k endpoints is
//! decided here: a Service keeps its IPs, ports and selector, nothing else.

use std::net::IpAddr;
use std::sync::Arc;

use k8s_openapi::api::core::v1 as core;
use k8s_openapi::api::discovery::v1 as discovery;

/// Which kind of object an event is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Namespace,
    Service,
    EndpointSlice,
    Endpoints,
    Pod,
}

impl Kind {
    /// The kind's name, as Kubernetes writes it.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Namespace => "Namespace",
            Kind::Service => "Service",
            Kind::EndpointSlice => "EndpointSlice",
            Kind::Endpoints => "Endpoints",
            Kind::Pod => "Pod",
        }
    }
}

/// `namespace/name` of one object of a known kind.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectKey {
    pub kind: Kind,
    pub namespace: String,
    pub name: String,
}

/// One trimmed object, as the sources deliver it to the model. Shared, not
/// copied: a source that keeps what it sent (the manifest cache) and the
/// model hold the same allocation.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Object {
    /// Behind a pointer like the others: an `Object` is 16 bytes, not 40
    /// (the manifest cache holds 200,000 of them at 100k Services).
    Namespace(Arc<Namespace>),
    Service(Arc<Service>),
    EndpointSlice(Arc<EndpointSlice>),
    Endpoints(Arc<Endpoints>),
    Pod(Arc<Pod>),
}

impl Object {
    /// A Namespace with no labels.
    pub fn new_namespace(name: String) -> Object {
        Object::Namespace(Arc::new(Namespace { name, labels: Labels::default() }))
    }

    pub fn key(&self) -> ObjectKey {
        let (kind, namespace, name) = self.id();
        ObjectKey { kind, namespace: namespace.to_string(), name: name.to_string() }
    }

    /// Kind, namespace and name, borrowed ([`Object::key`] without a copy).
    pub fn id(&self) -> (Kind, &str, &str) {
        match self {
            Object::Namespace(n) => (Kind::Namespace, "", n.name.as_str()),
            Object::Service(s) => (Kind::Service, s.namespace.as_str(), s.name.as_str()),
            Object::EndpointSlice(s) => (Kind::EndpointSlice, s.namespace.as_str(), s.name.as_str()),
            Object::Endpoints(e) => (Kind::Endpoints, e.namespace.as_str(), e.name.as_str()),
            Object::Pod(p) => (Kind::Pod, p.namespace.as_str(), p.name.as_str()),
        }
    }

    /// The namespace the object lives in (a Namespace lives in itself).
    pub fn namespace(&self) -> &str {
        match self {
            Object::Namespace(n) => &n.name,
            Object::Service(s) => &s.namespace,
            Object::EndpointSlice(s) => &s.namespace,
            Object::Endpoints(e) => &e.namespace,
            Object::Pod(p) => &p.namespace,
        }
    }
}

const _: () = assert!(std::mem::size_of::<Service>() == 112);
const _: () = assert!(std::mem::size_of::<ServicePort>() == 48);
const _: () = assert!(std::mem::size_of::<EndpointSlice>() == 104);

// Two of an `Arc` at most, or `Vec`s and `SmallVec`s of objects grow.
const _: () = assert!(std::mem::size_of::<Object>() == 16);

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Namespace {
    pub name: String,
    /// For `namespace_labels` in the manifest source; the model keeps names only.
    pub labels: Labels,
}

/// What a Service name answers with (SPEC.md R2, R3, R9).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ServiceKind {
    /// ClusterIP, NodePort and LoadBalancer: the cluster IPs, one per family.
    ClusterIp(Box<[IpAddr]>),
    /// `clusterIP: None`: the ready endpoint addresses.
    Headless,
    /// `type: ExternalName`: a CNAME to this name (kept as written).
    ExternalName(Str),
}

/// A name or short text of a trimmed object: up to 24 bytes inline, with no
/// allocation (nearly every namespace, name and port name), else on the heap.
pub type Str = compact_str::CompactString;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Protocol {
    Tcp,
    Udp,
    Sctp,
}

impl Protocol {
    /// A port's protocol as the API server takes it: missing is TCP; only
    /// `TCP`, `UDP` and `SCTP` (exactly so) are valid.
    pub fn parse(s: Option<&str>) -> Result<Protocol, TrimError> {
        match s {
            None | Some("TCP") => Ok(Protocol::Tcp),
            Some("UDP") => Ok(Protocol::Udp),
            Some("SCTP") => Ok(Protocol::Sctp),
            Some(other) => Err(TrimError::BadProtocol(other.to_string())),
        }
    }

    /// The SRV label, lower case (`_tcp`), SPEC.md R5.
    pub fn label(self) -> &'static str {
        match self {
            Protocol::Tcp => "_tcp",
            Protocol::Udp => "_udp",
            Protocol::Sctp => "_sctp",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum TargetPort {
    Number(u16),
    /// Boxed: named target ports are the rarer kind, and a port is then 48
    /// bytes, not 56.
    Name(Box<Str>),
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ServicePort {
    /// Empty when the port is unnamed (then it has no `_port._proto` name).
    pub name: Str,
    pub protocol: Protocol,
    pub port: u16,
    /// `None` means "same as port".
    pub target_port: Option<TargetPort>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Service {
    pub namespace: Str,
    pub name: Str,
    pub kind: ServiceKind,
    /// Shared: equal lists are one allocation when [`PortLists`] interned
    /// them (most Services of a chart have the same ports). A slice here
    /// and in `ClusterIp` (no capacity word): a Service is 112 bytes and
    /// its allocation fits mimalloc's 128-byte class, not 160.
    pub ports: Arc<[ServicePort]>,
    /// `None` for a selector-less Service (endpoints come from hand-made
    /// slices or Endpoints only).
    pub selector: Option<Labels>,
    pub publish_not_ready: bool,
}

/// An endpoint's addresses: one, in practice (the EndpointSlice controller
/// writes one per endpoint), held inline rather than in an allocation of its
/// own (300,000 of them at 100k Services).
pub type Addresses = smallvec::SmallVec<[IpAddr; 1]>;

/// One endpoint: an address group with its readiness, hostname and Pod.
/// The two names share one string (inline up to 24 bytes together): an
/// endpoint is 64 bytes, not 88, and a slice's three endpoints fit
/// mimalloc's 192-byte class, not its 320 (300,000 endpoints at 100k
/// Services).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Endpoint {
    pub addresses: Addresses,
    pub ready: bool,
    /// The hostname's length in `names`, [`NO_HOSTNAME`] when it has none.
    hostname_len: u8,
    /// The hostname, then the Pod's name.
    names: Str,
}

const NO_HOSTNAME: u8 = u8::MAX;

const _: () = assert!(std::mem::size_of::<Endpoint>() == 64);

impl Endpoint {
    /// `hostname` is a DNS label (at most 63 bytes, as trimming checks);
    /// `pod` is the name of the Pod behind it (`targetRef`) when it fits a
    /// DNS label: the endpoint's name under CoreDNS's `endpoint_pod_names`.
    pub fn new(addresses: Addresses, ready: bool, hostname: Option<&str>, pod: Option<&str>) -> Self {
        let hostname = hostname.filter(|h| h.len() < NO_HOSTNAME as usize);
        let mut names = Str::from(hostname.unwrap_or(""));
        names.push_str(pod.unwrap_or(""));
        let hostname_len = hostname.map_or(NO_HOSTNAME, |h| h.len() as u8);
        Endpoint { addresses, ready, hostname_len, names }
    }

    pub fn hostname(&self) -> Option<&str> {
        (self.hostname_len != NO_HOSTNAME).then(|| &self.names[..self.hostname_len as usize])
    }

    /// The Pod behind the endpoint, when its name is a DNS label.
    pub fn pod(&self) -> Option<&str> {
        let at = if self.hostname_len == NO_HOSTNAME { 0 } else { self.hostname_len as usize };
        Some(&self.names[at..]).filter(|p| !p.is_empty())
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct EndpointPort {
    /// Empty when unnamed.
    pub name: Str,
    pub protocol: Protocol,
    pub port: u16,
}

/// Endpoints that share one port list: an EndpointSlice, or one subset of a
/// v1 Endpoints object.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct EndpointGroup {
    /// Boxed slices, not `Vec`s (no capacity word): a slice is 104 bytes and
    /// its allocation fits mimalloc's 128-byte class, not 160.
    pub endpoints: Box<[Endpoint]>,
    /// Shared, as a Service's ports are ([`PortLists`]).
    pub ports: Arc<[EndpointPort]>,
}

impl EndpointGroup {
    pub fn new(endpoints: Vec<Endpoint>, ports: Vec<EndpointPort>) -> Self {
        EndpointGroup { endpoints: endpoints.into_boxed_slice(), ports: ports.into() }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct EndpointSlice {
    pub namespace: Str,
    pub name: Str,
    /// The `kubernetes.io/service-name` label; a slice without it joins no Service.
    pub service: Option<Str>,
    pub group: EndpointGroup,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Endpoints {
    pub namespace: Str,
    pub name: Str,
    pub groups: Vec<EndpointGroup>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ContainerPort {
    pub name: Str,
    pub protocol: Protocol,
    pub port: u16,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Pod {
    pub namespace: Str,
    pub name: Str,
    pub labels: Labels,
    pub ips: Vec<IpAddr>,
    /// Ready as the EndpointSlice controller sees it: not `Ready=False`, not
    /// Succeeded/Failed, not being deleted.
    pub ready: bool,
    /// Phase Succeeded or Failed: the Pod's IPs are free for others to
    /// take; the EndpointSlice controller makes no endpoint of it.
    pub terminal: bool,
    /// `deletionTimestamp` set: going away, its IPs soon another Pod's.
    pub deleting: bool,
    pub hostname: Option<Str>,
    pub subdomain: Option<Str>,
    pub container_ports: Vec<ContainerPort>,
}

/// Port lists met so far, to share equal ones: the Services of one chart
/// and their slices have the same ports, held once (at 100k Services of
/// two ports each, 15 MiB). A manifest file's parse uses one and drops it
/// after; each API watcher keeps one for as long as it runs, and forgets
/// the lists nothing else holds whenever it has gathered enough.
#[derive(Default)]
pub struct PortLists {
    service: std::collections::HashSet<Arc<[ServicePort]>>,
    endpoint: std::collections::HashSet<Arc<[EndpointPort]>>,
    /// Lists held by nothing else are forgotten when this many are kept
    /// (then twice as many as remain): a watcher that runs for months
    /// keeps the lists in use, not every list it ever met.
    limit: usize,
}

impl PortLists {
    /// Makes `obj`'s port lists the ones met before when equal. An object
    /// already shared is left as it is.
    pub fn intern(&mut self, obj: &mut Object) {
        if self.service.len() + self.endpoint.len() > self.limit.max(1024) {
            self.service.retain(|l| Arc::strong_count(l) > 1);
            self.endpoint.retain(|l| Arc::strong_count(l) > 1);
            self.limit = 2 * (self.service.len() + self.endpoint.len());
        }
        fn one<T: Eq + std::hash::Hash>(seen: &mut std::collections::HashSet<Arc<[T]>>, list: &mut Arc<[T]>) {
            match seen.get(&**list) {
                Some(same) => *list = same.clone(),
                None => {
                    seen.insert(list.clone());
                }
            }
        }
        match obj {
            Object::Service(s) => {
                if let Some(s) = Arc::get_mut(s) {
                    one(&mut self.service, &mut s.ports);
                }
            }
            Object::EndpointSlice(s) => {
                if let Some(s) = Arc::get_mut(s) {
                    one(&mut self.endpoint, &mut s.group.ports);
                }
            }
            Object::Endpoints(e) => {
                if let Some(e) = Arc::get_mut(e) {
                    for g in e.groups.iter_mut() {
                        one(&mut self.endpoint, &mut g.ports);
                    }
                }
            }
            Object::Namespace(_) | Object::Pod(_) => {}
        }
    }
}

/// Labels or a selector: `key=value` pairs sorted by key. A flat list, not a
/// map: most objects carry one to three labels, and a `BTreeMap` node
/// allocates room for eleven (half a KiB per Service at 100k Services).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct Labels(Box<[(Str, Str)]>);

impl Labels {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.binary_search_by(|(k, _)| (**k).cmp(key)).ok().map(|i| &*self.0[i].1)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (&**k, &**v))
    }

    /// Whether every pair of `self` (a selector) is in `labels`.
    pub fn selects(&self, labels: &Labels) -> bool {
        self.iter().all(|(k, v)| labels.get(k) == Some(v))
    }
}

impl<K: AsRef<str>, V: AsRef<str>> FromIterator<(K, V)> for Labels {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut pairs: Vec<(Str, Str)> =
            iter.into_iter().map(|(k, v)| (Str::from(k.as_ref()), Str::from(v.as_ref()))).collect();
        pairs.sort();
        pairs.dedup_by(|a, b| a.0 == b.0);
        Labels(pairs.into_boxed_slice())
    }
}

/// Why a known kind could not be trimmed: what the API server would have
/// refused, so the object is left out whole.
#[derive(Debug, thiserror::Error)]
pub enum TrimError {
    #[error("metadata.name is missing")]
    NoName,
    #[error("invalid IP address {0:?}")]
    BadIp(String),
    #[error("port {0} is out of range")]
    BadPort(i32),
    #[error("protocol {0:?} is not TCP, UDP or SCTP")]
    BadProtocol(String),
    #[error("{field} {value:?} is not {rule}")]
    BadName { field: &'static str, value: String, rule: &'static str },
    #[error("address {address:?} is not an {family} address")]
    WrongFamily { address: String, family: String },
    #[error("type ExternalName needs spec.externalName")]
    NoExternalName,
}

/// What the API server requires of a name (apimachinery's validation).
#[derive(Clone, Copy, Debug)]
enum Rule {
    /// RFC 1123 label: lower-case letters, digits and `-`, starting and
    /// ending with a letter or digit, at most 63 (namespaces, hostnames).
    Label1123,
    /// RFC 1035 label: an RFC 1123 label that starts with a letter
    /// (Service names).
    Label1035,
    /// RFC 1123 subdomain: such labels joined by dots, at most 253
    /// (EndpointSlice and Pod names, externalName).
    Subdomain,
}

impl Rule {
    fn text(self) -> &'static str {
        match self {
            Rule::Label1123 => "an RFC 1123 label (lower-case letters, digits, '-'; at most 63)",
            Rule::Label1035 => "an RFC 1035 label (a lower-case letter, then letters, digits, '-'; at most 63)",
            Rule::Subdomain => "an RFC 1123 subdomain (lower-case labels joined by dots; at most 253)",
        }
    }

    fn holds(self, s: &str) -> bool {
        let label = |l: &str| {
            let b = l.as_bytes();
            !b.is_empty()
                && b.len() <= 63
                && b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
                && b[0] != b'-'
                && b[b.len() - 1] != b'-'
        };
        match self {
            Rule::Label1123 => label(s),
            Rule::Label1035 => label(s) && s.as_bytes()[0].is_ascii_lowercase(),
            Rule::Subdomain => s.len() <= 253 && s.split('.').all(label),
        }
    }
}

/// Whether `s` is a valid RFC 1123 label as Kubernetes checks it (an
/// endpoint's or a Pod's DNS name).
pub fn is_dns_label(s: &str) -> bool {
    Rule::Label1123.holds(s)
}

fn check(field: &'static str, value: &str, rule: Rule) -> Result<(), TrimError> {
    if rule.holds(value) {
        Ok(())
    } else {
        Err(TrimError::BadName { field, value: value.to_string(), rule: rule.text() })
    }
}

/// `metadata.name` and `metadata.namespace`, checked.
fn meta_names(
    meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    rule: Rule,
) -> Result<(Str, Str), TrimError> {
    let name = meta.name.clone().ok_or(TrimError::NoName)?;
    check("metadata.name", &name, rule)?;
    let namespace = ns_or_default(meta.namespace.clone());
    check("metadata.namespace", &namespace, Rule::Label1123)?;
    Ok((namespace.into(), name.into()))
}

/// A hostname, checked; empty means none.
fn hostname(field: &'static str, h: Option<String>) -> Result<Option<Str>, TrimError> {
    match h.filter(|h| !h.is_empty()) {
        Some(h) => check(field, &h, Rule::Label1123).map(|()| Some(h.into())),
        None => Ok(None),
    }
}

/// A port name, checked; empty means unnamed.
fn port_name(n: Option<String>) -> Result<Str, TrimError> {
    let n = n.unwrap_or_default();
    if !n.is_empty() {
        check("port name", &n, Rule::Label1123)?;
    }
    Ok(n.into())
}

fn ns_or_default(ns: Option<String>) -> String {
    match ns {
        Some(ns) if !ns.is_empty() => ns,
        _ => "default".to_string(),
    }
}

fn parse_ip(s: &str) -> Result<IpAddr, TrimError> {
    s.trim().parse().map_err(|_| TrimError::BadIp(s.to_string()))
}

/// The name a `targetRef` gives its endpoint: CoreDNS takes any referent
/// whose name is a DNS label (a Pod name with dots is not one).
fn target_pod(r: Option<&core::ObjectReference>) -> Option<Str> {
    r?.name.as_deref().filter(|n| is_dns_label(n)).map(Str::from)
}

fn port(p: i32) -> Result<u16, TrimError> {
    u16::try_from(p).ok().filter(|p| *p != 0).ok_or(TrimError::BadPort(p))
}

impl Namespace {
    pub fn from_meta(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> Result<Self, TrimError> {
        let labels = meta.labels.iter().flatten().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let name = meta.name.clone().ok_or(TrimError::NoName)?;
        check("metadata.name", &name, Rule::Label1123)?;
        Ok(Namespace { name, labels })
    }
}

impl Service {
    /// Trims a Service. `clusterIP` empty (not yet allocated, as in a
    /// hand-written manifest) gives `ClusterIp(vec![])`; the manifest source
    /// allocates one before the Service reaches the model.
    pub fn trim(svc: core::Service) -> Result<Self, TrimError> {
        let (namespace, name) = meta_names(&svc.metadata, Rule::Label1035)?;
        let spec = svc.spec.unwrap_or_default();
        let is_external = spec.type_.as_deref() == Some("ExternalName");
        let kind = if is_external {
            // The API server requires the target, a subdomain (a trailing
            // dot allowed).
            let target = spec.external_name.filter(|t| !t.is_empty()).ok_or(TrimError::NoExternalName)?;
            check("spec.externalName", target.strip_suffix('.').unwrap_or(&target), Rule::Subdomain)?;
            ServiceKind::ExternalName(target.into())
        } else {
            let ips: Vec<String> = match spec.cluster_ips {
                Some(ips) if !ips.is_empty() => ips,
                _ => spec.cluster_ip.into_iter().collect(),
            };
            if ips.iter().any(|ip| ip == "None") {
                ServiceKind::Headless
            } else {
                let ips: Vec<IpAddr> =
                    ips.iter().filter(|s| !s.is_empty()).map(|s| parse_ip(s)).collect::<Result<_, _>>()?;
                ServiceKind::ClusterIp(ips.into_boxed_slice())
            }
        };
        let mut ports = Vec::new();
        for p in spec.ports.unwrap_or_default() {
            use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
            let target_port = match p.target_port {
                Some(IntOrString::Int(n)) => Some(TargetPort::Number(port(n)?)),
                Some(IntOrString::String(s)) => match s.parse::<i32>() {
                    Ok(n) => Some(TargetPort::Number(port(n)?)),
                    Err(_) => Some(TargetPort::Name(Box::new(s.into()))),
                },
                None => None,
            };
            ports.push(ServicePort {
                name: port_name(p.name)?,
                protocol: Protocol::parse(p.protocol.as_deref())?,
                port: port(p.port)?,
                target_port,
            });
        }
        Ok(Service {
            namespace,
            name,
            kind,
            ports: ports.into(),
            selector: spec.selector.filter(|s| !s.is_empty()).map(|s| s.into_iter().collect()),
            publish_not_ready: spec.publish_not_ready_addresses.unwrap_or(false),
        })
    }
}

/// The label that joins a slice to its Service, whoever manages the slice.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

impl EndpointSlice {
    /// Trims a slice; `Ok(None)` for FQDN slices, which DNS ignores (SPEC.md 1).
    pub fn trim(slice: discovery::EndpointSlice) -> Result<Option<Self>, TrimError> {
        let (namespace, name) = meta_names(&slice.metadata, Rule::Subdomain)?;
        let v4 = match slice.address_type.as_str() {
            "IPv4" => true,
            "IPv6" => false,
            _ => return Ok(None),
        };
        let service =
            slice.metadata.labels.as_ref().and_then(|l| l.get(SERVICE_NAME_LABEL)).map(|s| Str::from(s.as_str()));
        let mut endpoints = Vec::with_capacity(slice.endpoints.len());
        for ep in slice.endpoints {
            let mut addresses = Addresses::with_capacity(ep.addresses.len());
            for a in &ep.addresses {
                let ip = parse_ip(a)?;
                // The API server checks every address against the slice's type.
                if ip.is_ipv4() != v4 {
                    return Err(TrimError::WrongFamily { address: a.clone(), family: slice.address_type.clone() });
                }
                addresses.push(ip);
            }
            // SPEC.md 1: ready when absent or true.
            let ready = ep.conditions.and_then(|c| c.ready).unwrap_or(true);
            let hostname = hostname("endpoint hostname", ep.hostname)?;
            endpoints.push(Endpoint::new(
                addresses,
                ready,
                hostname.as_deref(),
                target_pod(ep.target_ref.as_ref()).as_deref(),
            ));
        }
        let mut ports = Vec::new();
        for p in slice.ports.unwrap_or_default() {
            // A slice port without a number means "all ports": nothing for SRV.
            let Some(n) = p.port else { continue };
            ports.push(EndpointPort {
                name: port_name(p.name)?,
                protocol: Protocol::parse(p.protocol.as_deref())?,
                port: port(n)?,
            });
        }
        Ok(Some(EndpointSlice { namespace, name, service, group: EndpointGroup::new(endpoints, ports) }))
    }
}

impl Endpoints {
    /// Trims a v1 Endpoints object the way the mirroring controller reads it:
    /// `addresses` are ready, `notReadyAddresses` are not.
    pub fn trim(ep: core::Endpoints) -> Result<Self, TrimError> {
        let (namespace, name) = meta_names(&ep.metadata, Rule::Subdomain)?;
        let mut groups = Vec::new();
        for subset in ep.subsets.unwrap_or_default() {
            let mut endpoints = Vec::new();
            let lists = [(subset.addresses, true), (subset.not_ready_addresses, false)];
            for (list, ready) in lists {
                for a in list.unwrap_or_default() {
                    endpoints.push(Endpoint::new(
                        smallvec::smallvec![parse_ip(&a.ip)?],
                        ready,
                        hostname("endpoint hostname", a.hostname)?.as_deref(),
                        target_pod(a.target_ref.as_ref()).as_deref(),
                    ));
                }
            }
            let mut ports = Vec::new();
            for p in subset.ports.unwrap_or_default() {
                ports.push(EndpointPort {
                    name: port_name(p.name)?,
                    protocol: Protocol::parse(p.protocol.as_deref())?,
                    port: port(p.port)?,
                });
            }
            groups.push(EndpointGroup::new(endpoints, ports));
        }
        Ok(Endpoints { namespace, name, groups: exact(groups) })
    }
}

impl Pod {
    pub fn trim(pod: core::Pod) -> Result<Self, TrimError> {
        let (namespace, name) = meta_names(&pod.metadata, Rule::Subdomain)?;
        let deleting = pod.metadata.deletion_timestamp.is_some();
        let labels: Labels = pod.metadata.labels.unwrap_or_default().into_iter().collect();
        let spec = pod.spec.unwrap_or_default();
        let status = pod.status.unwrap_or_default();
        let mut ips: Vec<IpAddr> = Vec::new();
        match status.pod_ips {
            Some(list) if !list.is_empty() => {
                for p in list {
                    ips.push(parse_ip(&p.ip)?);
                }
            }
            _ => {
                if let Some(ip) = status.pod_ip.filter(|s| !s.is_empty()) {
                    ips.push(parse_ip(&ip)?);
                }
            }
        }
        let terminal = matches!(status.phase.as_deref(), Some("Succeeded") | Some("Failed"));
        let not_ready = status.conditions.unwrap_or_default().iter().any(|c| c.type_ == "Ready" && c.status == "False");
        let mut container_ports = Vec::new();
        for c in &spec.containers {
            for p in c.ports.iter().flatten() {
                if let Some(n) = p.name.as_ref() {
                    container_ports.push(ContainerPort {
                        name: n.as_str().into(),
                        protocol: Protocol::parse(p.protocol.as_deref())?,
                        port: port(p.container_port)?,
                    });
                }
            }
        }
        Ok(Pod {
            namespace,
            name,
            labels,
            ips: exact(ips),
            ready: !(deleting || terminal || not_ready),
            terminal,
            deleting,
            hostname: hostname("spec.hostname", spec.hostname)?,
            subdomain: hostname("spec.subdomain", spec.subdomain)?,
            container_ports: exact(container_ports),
        })
    }
}

/// A list kept as long as its object: without the room a `Vec` makes as it
/// grows (its first push makes four; a Service's two ports then took 224
/// bytes, not 112: 25 MiB at 100k Services).
fn exact<T>(mut v: Vec<T>) -> Vec<T> {
    v.shrink_to_fit();
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lists still held stay shared; lists no object holds any more are
    /// forgotten once enough have gathered.
    #[test]
    fn port_lists_forget_what_no_object_holds() {
        let svc = |port: u16| {
            Object::Service(Arc::new(Service {
                namespace: "t".into(),
                name: "s".into(),
                kind: ServiceKind::Headless,
                ports: Arc::new([ServicePort { name: "p".into(), protocol: Protocol::Tcp, port, target_port: None }]),
                selector: None,
                publish_not_ready: false,
            }))
        };
        let ports = |o: &Object| match o {
            Object::Service(s) => s.ports.clone(),
            _ => unreachable!(),
        };
        let mut lists = PortLists::default();
        let mut kept = svc(1);
        lists.intern(&mut kept);
        for port in 2..5000 {
            let mut gone = svc(port);
            lists.intern(&mut gone);
        }
        assert!(lists.service.len() < 2100, "{} lists kept", lists.service.len());
        let mut again = svc(1);
        lists.intern(&mut again);
        assert!(Arc::ptr_eq(&ports(&kept), &ports(&again)));
    }

    /// The two names share one string: each reads back alone, inline or on
    /// the heap, whichever is missing.
    #[test]
    fn an_endpoints_hostname_and_pod_read_back() {
        let ip: Addresses = smallvec::smallvec!["10.0.0.1".parse().unwrap()];
        let long = "a-pod-name-longer-than-twenty-four-bytes-0";
        for (hostname, pod) in [
            (None, None),
            (Some("web-0"), None),
            (None, Some("web-0")),
            (Some("web-0"), Some("web-0")),
            (Some(&long[..63.min(long.len())]), Some(long)),
            (None, Some(long)),
        ] {
            let e = Endpoint::new(ip.clone(), true, hostname, pod);
            assert_eq!((e.hostname(), e.pod()), (hostname, pod));
            assert_eq!(e.addresses, ip);
        }
        // Different splits of the same letters are different endpoints.
        let a = Endpoint::new(ip.clone(), true, Some("ab"), Some("c"));
        let b = Endpoint::new(ip, true, Some("a"), Some("bc"));
        assert_ne!(a, b);
    }
}
