//! The answers of SPEC.md section 2, as plain records per owner name.
//!
//! Pure: a cluster model and an owner in, the DNS names that owner is
//! responsible for out. The server's index and the zone snapshot are both
//! made from this one function, so the snapshot states what is served.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashSet};
use std::net::IpAddr;

use hickory_proto::rr::rdata::{A, AAAA, CNAME, NS, PTR, SOA, SRV, TXT};
use hickory_proto::rr::{Name, RData, Record};

use super::name::{child, ip_label, reverse_name};
use super::{PodMode, ZoneConfig};
use crate::model::{Cluster, DNS_SERVICE, EndpointGroup, Owner, Protocol, Service, ServiceKind};

/// One owner name and its records (none for an empty non-terminal that an
/// owner states explicitly, such as `<ns>.svc.<zone>`).
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub name: Name,
    pub records: Vec<Record>,
}

/// TTL of `dns-version` (SPEC.md R1).
const VERSION_TTL: u32 = 28800;
/// The schema version this server implements.
pub const SCHEMA_VERSION: &str = "1.1.0";

/// Collects records per owner name (in canonical name order).
#[derive(Default)]
struct Nodes(BTreeMap<Name, Vec<Record>>);

impl Nodes {
    /// Adds a record; duplicates go in [`Nodes::into_vec`].
    fn add(&mut self, name: &Name, ttl: u32, rdata: RData) {
        let record = Record::from_rdata(name.clone(), ttl, rdata);
        // A name of over 32 bytes is on the heap: cloned for the key only
        // when it is new.
        match self.0.get_mut(name) {
            Some(records) => records.push(record),
            None => {
                self.0.insert(name.clone(), vec![record]);
            }
        }
    }
    fn touch(&mut self, name: &Name) {
        self.0.entry(name.clone()).or_default();
    }
    fn addr(&mut self, name: &Name, ttl: u32, ip: IpAddr) {
        match ip {
            IpAddr::V4(v4) => self.add(name, ttl, RData::A(A(v4))),
            IpAddr::V6(v6) => self.add(name, ttl, RData::AAAA(AAAA(v6))),
        }
    }
    /// The nodes, each record once (an address in two slices, a hostname
    /// shared by endpoints): a hash set, not a scan per record, so a Service
    /// with thousands of endpoints costs linear time.
    fn into_vec(self) -> Vec<Node> {
        self.0
            .into_iter()
            .map(|(name, mut records)| {
                if records.len() < 2 {
                    return Node { name, records };
                }
                let keep: Vec<bool> = {
                    let mut seen =
                        HashSet::with_capacity_and_hasher(records.len(), foldhash::fast::RandomState::default());
                    records.iter().map(|r| seen.insert(&r.data)).collect()
                };
                let mut keep = keep.into_iter();
                records.retain(|_| keep.next().unwrap_or(true));
                Node { name, records }
            })
            .collect()
    }
}

/// The names `owner` is responsible for in `cluster`. `serial` goes into the
/// SOA (0 in snapshots).
pub fn owner_nodes(cluster: &Cluster, cfg: &ZoneConfig, owner: &Owner, serial: u32) -> Vec<Node> {
    let mut nodes = Nodes::default();
    match owner {
        Owner::Static => static_nodes(cluster, cfg, serial, &mut nodes),
        Owner::Namespace(ns) => {
            if cluster.has_namespace(ns) {
                if let Some(n) = child(&cfg.svc, ns) {
                    nodes.touch(&n);
                }
                if cfg.pods != PodMode::Disabled
                    && let Some(n) = child(&cfg.pod, ns)
                {
                    nodes.touch(&n);
                }
            }
        }
        Owner::Service(ns, name) => {
            if let Some(svc) = cluster.service(ns, name) {
                service_nodes(cluster, cfg, svc, &mut nodes);
            }
        }
        Owner::Slice(..) | Owner::Endpoints(..) | Owner::Selected(..) => {
            if let Some((svc, groups)) = cluster.owner_groups(owner) {
                endpoint_nodes(cfg, svc, &groups, &mut nodes);
            }
        }
        Owner::Pod(ns, name) => {
            // SPEC.md R10, verified: only an IP that a Pod of the namespace
            // has; not a Pod being deleted or finished, whose IP may already
            // be another's.
            if cfg.pods == PodMode::Verified
                && let Some(pod) = cluster.pod(ns, name).filter(|p| !p.terminal && !p.deleting)
                && let Some(ns_name) = child(&cfg.pod, ns)
            {
                for ip in &pod.ips {
                    if let Some(n) = child(&ns_name, &ip_label(ip)) {
                        nodes.addr(&n, cfg.ttl, *ip);
                    }
                }
            }
        }
    }
    nodes.into_vec()
}

/// The SOA of a served zone (SPEC.md R11).
pub fn soa(cfg: &ZoneConfig, apex: &Name, serial: u32) -> Record {
    let rdata = SOA::new(
        cfg.ns_name.clone(),
        child(&cfg.zone, "hostmaster").unwrap_or_else(|| cfg.zone.clone()),
        serial,
        7200,
        1800,
        86400,
        cfg.ttl,
    );
    Record::from_rdata(apex.clone(), cfg.soa_ttl(), RData::SOA(rdata))
}

fn static_nodes(cluster: &Cluster, cfg: &ZoneConfig, serial: u32, nodes: &mut Nodes) {
    for apex in [&cfg.zone, &cfg.in_addr, &cfg.ip6] {
        let soa = soa(cfg, apex, serial);
        nodes.add(apex, soa.ttl, soa.data.clone());
        nodes.add(apex, cfg.ttl, RData::NS(NS(cfg.ns_name.clone())));
    }
    if let Some(v) = child(&cfg.zone, "dns-version") {
        nodes.add(&v, VERSION_TTL, RData::TXT(TXT::new(vec![SCHEMA_VERSION.to_string()])));
    }
    nodes.touch(&cfg.svc);
    nodes.touch(&cfg.pod);
    // R12: the NS name has the address of the Service that fronts the server.
    nodes.touch(&cfg.ns_name);
    if let Some(svc) = cluster.service(DNS_SERVICE.0, DNS_SERVICE.1)
        && let ServiceKind::ClusterIp(ips) = &svc.kind
    {
        for ip in ips {
            nodes.addr(&cfg.ns_name, cfg.ttl, *ip);
        }
    }
}

/// The Service's own name, `<svc>.<ns>.svc.<zone>`.
fn service_name(cfg: &ZoneConfig, svc: &Service) -> Option<Name> {
    child(&cfg.svc, &svc.namespace).and_then(|n| child(&n, &svc.name))
}

/// What a Service says alone (R2, R5, R7, R9): a ClusterIP's address, PTR
/// and SRV records from its ports, an ExternalName's CNAME. Its endpoints'
/// names, and a headless Service's own records, are its endpoint owners'
/// ([`endpoint_nodes`]).
fn service_nodes(cluster: &Cluster, cfg: &ZoneConfig, svc: &Service, nodes: &mut Nodes) {
    let Some(svc_name) = service_name(cfg, svc) else {
        return;
    };
    let ttl = cfg.ttl;
    let ips = match &svc.kind {
        // R9: a CNAME; an IP literal is not a name, and nothing lives below.
        ServiceKind::ExternalName(target) => {
            if target.parse::<IpAddr>().is_err()
                && let Ok(mut t) = Name::from_ascii(target.trim_end_matches('.'))
                && !t.is_root()
            {
                t.set_fqdn(true);
                if t == svc_name {
                    // `x CNAME x` is a loop: the name exists with no
                    // records, as CoreDNS answers it (backend_lookup.go).
                    nodes.touch(&svc_name);
                } else {
                    nodes.add(&svc_name, ttl, RData::CNAME(CNAME(t)));
                }
            }
            return;
        }
        ServiceKind::ClusterIp(ips) => ips,
        ServiceKind::Headless => return,
    };
    if cfg.ignore_empty_service && !cluster.has_ready_endpoint(svc) {
        // No ready endpoint: as if the Service did not exist.
        return;
    }
    // R2 and R7.
    for ip in ips {
        nodes.addr(&svc_name, ttl, *ip);
        nodes.add(&reverse_name(ip), ttl, RData::PTR(PTR(svc_name.clone())));
    }
    // R5 / R6: SRV by port, and by port name and protocol.
    for p in svc.ports.iter() {
        nodes.add(&svc_name, ttl, srv(p.port, &svc_name));
        if let Some(owner) = srv_name(&svc_name, &p.name, p.protocol) {
            nodes.add(&owner, ttl, srv(p.port, &svc_name));
        }
    }
}

/// An SRV record. Its weight is left 0 here: it is 100 shared among the
/// records of its RRset, which for a headless Service come from several
/// endpoint owners; it is set where the RRset is complete ([`super::wire`],
/// [`super::zone`]).
fn srv(port: u16, target: &Name) -> RData {
    RData::SRV(SRV::new(0, 0, port, target.clone()))
}

/// `_<port>._<proto>.<svc name>`, for a named port.
fn srv_name(svc_name: &Name, port: &str, proto: Protocol) -> Option<Name> {
    if port.is_empty() {
        return None;
    }
    child(svc_name, proto.label()).and_then(|n| child(&n, &format!("_{port}")))
}

/// What some of a Service's endpoints give it (R3, R4, R6, R8): each ready
/// endpoint's own name and PTR and, for a headless Service, its address
/// on the Service's name and its SRV records there and under named ports.
/// The index merges the parts of names that several owners give.
fn endpoint_nodes(cfg: &ZoneConfig, svc: &Service, groups: &[Cow<'_, EndpointGroup>], nodes: &mut Nodes) {
    if cfg.noendpoints || matches!(svc.kind, ServiceKind::ExternalName(_)) {
        return;
    }
    let Some(svc_name) = service_name(cfg, svc) else {
        return;
    };
    let ttl = cfg.ttl;
    let headless = matches!(svc.kind, ServiceKind::Headless);
    for g in groups {
        for e in g.endpoints.iter().filter(|e| e.ready) {
            for ip in &e.addresses {
                let pod = e.pod().filter(|_| cfg.endpoint_pod_names);
                let label = e.hostname().or(pod).map_or_else(|| ip_label(ip), str::to_string);
                let Some(name) = child(&svc_name, &label) else { continue };
                // R4 and R8, headless and ClusterIP alike.
                nodes.addr(&name, ttl, *ip);
                nodes.add(&reverse_name(ip), ttl, RData::PTR(PTR(name.clone())));
                if !headless {
                    continue;
                }
                // R3 and R6: the Service's name is its ready endpoints'.
                nodes.addr(&svc_name, ttl, *ip);
                for p in g.ports.iter() {
                    nodes.add(&svc_name, ttl, srv(p.port, &name));
                    if let Some(owner) = srv_name(&svc_name, &p.name, p.protocol) {
                        nodes.add(&owner, ttl, srv(p.port, &name));
                    }
                }
            }
        }
    }
}
