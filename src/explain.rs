//! Why a name answers what it does (`clusterdns explain`): the answer as
//! `dig` shows it, from the same index and encoder the server answers with,
//! and in sentences which objects made it or, for a negative answer, what is
//! missing and the likely fix. Reads the model and the records; changes
//! nothing.

use std::collections::BTreeSet;
use std::net::IpAddr;

use hickory_proto::op::{Message, Query as HQuery};
use hickory_proto::rr::{Name, RecordType};

use crate::model::{Cluster, Event, Object, Pod, Service, ServiceKind, Source};
use crate::plugins::message::{Parsed, begin, encode_answer, end, parse, rcode_name};
use crate::records::name::{key_of, parse_ip_label};
use crate::records::{PodMode, Updater, ZoneConfig, ZoneIndex, answer};

/// What `explain` says about one question.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Explanation {
    pub name: String,
    #[serde(rename = "type")]
    pub qtype: String,
    /// NOERROR, NXDOMAIN, SERVFAIL or REFUSED.
    pub status: String,
    /// The answer section, one record per line as `dig` prints it.
    pub answer: Vec<String>,
    /// Why, one sentence each.
    pub why: Vec<String>,
}

impl std::fmt::Display for Explanation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, ";; {} IN {}: {}", self.name, self.qtype, self.status)?;
        if self.answer.is_empty() {
            writeln!(f, ";; no answer records")?;
        } else {
            writeln!(f, ";; ANSWER SECTION:")?;
            for line in &self.answer {
                writeln!(f, "{line}")?;
            }
        }
        writeln!(f)?;
        for why in &self.why {
            writeln!(f, "- {why}")?;
        }
        Ok(())
    }
}

/// One problem `check` found.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Finding {
    /// `Kind namespace/name`.
    pub object: String,
    /// The name that does not resolve because of it, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub why: Vec<String>,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.name {
            Some(n) => writeln!(f, "{}: {n} does not resolve", self.object)?,
            None => writeln!(f, "{}:", self.object)?,
        }
        for why in &self.why {
            writeln!(f, "  - {why}")?;
        }
        Ok(())
    }
}

/// A cluster loaded for questions (`clusterdns explain` and `check` on
/// manifests): the model and the index built from it.
pub struct Explainer {
    updater: Updater,
    index: std::sync::Arc<ZoneIndex>,
}

impl Explainer {
    pub fn new(cfg: ZoneConfig, objects: Vec<Object>) -> Self {
        let index = ZoneIndex::new(cfg);
        let mut updater = Updater::new(index.clone(), Cluster::new());
        updater.apply(vec![Event::Reset { kinds: crate::source::ALL_KINDS.to_vec(), objects }]);
        index.set_loaded();
        Explainer { updater, index }
    }

    /// The questions, asked of this cluster.
    pub fn view(&self) -> Explain<'_> {
        Explain::new(self.updater.cluster(), &self.index)
    }

    pub fn explain(&self, name: &str, qtype: RecordType) -> Explanation {
        self.view().explain(name, qtype)
    }

    pub fn search(&self, name: &str, qtype: RecordType, ns: &str) -> Vec<Explanation> {
        self.view().search(name, qtype, ns)
    }

    pub fn check(&self) -> Vec<Finding> {
        self.view().check()
    }
}

/// The questions, asked of a model and the index it feeds: a loaded
/// [`Explainer`], or a running server's own (asked on its updater thread,
/// where the model lives).
#[derive(Clone, Copy)]
pub struct Explain<'a> {
    cluster: &'a Cluster,
    index: &'a ZoneIndex,
}

impl<'a> Explain<'a> {
    pub fn new(cluster: &'a Cluster, index: &'a ZoneIndex) -> Self {
        Explain { cluster, index }
    }

    fn cluster(&self) -> &'a Cluster {
        self.cluster
    }

    fn cfg(&self) -> &'a ZoneConfig {
        self.index.config()
    }

    /// Every problem in the cluster that leaves a name unanswered, as
    /// `clusterdns check` reports it: Services that answer nothing,
    /// Endpoints and EndpointSlices that bind to no Service, per-pod names
    /// that cannot resolve. Sorted by object.
    pub fn check(&self) -> Vec<Finding> {
        let c = self.cluster();
        let zone = self.cfg().zone.to_ascii();
        let mut out = Vec::new();
        for svc in c.services() {
            let (ns, name) = (svc.namespace.as_str(), svc.name.as_str());
            let fqdn = format!("{name}.{ns}.svc.{zone}");
            let broken = match &svc.kind {
                ServiceKind::Headless => !c.has_ready_endpoint(svc),
                ServiceKind::ExternalName(target) => target.parse::<IpAddr>().is_ok(),
                ServiceKind::ClusterIp(_) => self.cfg().ignore_empty_service && !c.has_ready_endpoint(svc),
            };
            if broken {
                let e = self.explain(&fqdn, RecordType::A);
                out.push(Finding { object: format!("Service {ns}/{name}"), name: Some(e.name), why: e.why });
                continue;
            }
            // A headless Service's named ports answer SRV only from endpoint
            // ports of the same name.
            if matches!(svc.kind, ServiceKind::Headless) {
                let groups = self.groups_of(svc);
                for p in svc.ports.iter().filter(|p| !p.name.is_empty()) {
                    if groups.iter().flat_map(|g| g.ports.iter()).any(|e| e.name == p.name && e.protocol == p.protocol)
                    {
                        continue;
                    }
                    let srv = format!("_{}.{}.{fqdn}", p.name, p.protocol.label());
                    let e = self.explain(&srv, RecordType::SRV);
                    out.push(Finding { object: format!("Service {ns}/{name}"), name: Some(e.name), why: e.why });
                }
            }
        }
        for ns in c.namespaces() {
            // An Endpoints object with no address binds nothing either way
            // (old leader-election locks are such objects).
            let has_address = |e: &&crate::model::Endpoints| {
                e.groups.iter().any(|g| g.endpoints.iter().any(|p| !p.addresses.is_empty()))
            };
            for e in c.endpoints_in(ns).filter(|e| c.service(ns, &e.name).is_none()).filter(has_address) {
                let mut why =
                    format!("The Endpoints {ns}/{} binds to no Service: none is named {} in {ns}.", e.name, e.name);
                let names = c.services().filter(|s| s.namespace == ns).map(|s| s.name.as_str());
                if let Some(near) = nearest(&e.name, names) {
                    why.push_str(&format!(
                        " The nearest Service name is {near}; an Endpoints object must have its Service's name."
                    ));
                }
                out.push(Finding { object: format!("Endpoints {ns}/{}", e.name), name: None, why: vec![why] });
            }
            for s in c.slices_in(ns) {
                // A slice without the label is another controller's (as
                // multi-cluster services make): not this server's concern.
                let why = match s.service.as_deref() {
                    None => continue,
                    Some(l) if c.service(ns, l).is_none() => format!(
                        "The EndpointSlice {ns}/{} names Service {l} in its kubernetes.io/service-name label, and there is no such Service in {ns}.",
                        s.name
                    ),
                    Some(_) => continue,
                };
                out.push(Finding { object: format!("EndpointSlice {ns}/{}", s.name), name: None, why: vec![why] });
            }
            for p in c.pods_in(ns) {
                let (Some(host), Some(sub)) = (&p.hostname, &p.subdomain) else { continue };
                let fqdn = format!("{host}.{sub}.{ns}.svc.{zone}");
                let why = match c.service(ns, sub) {
                    None => format!(
                        "Pod {ns}/{} has spec.subdomain {sub}, and there is no Service {sub} in {ns}: its name {fqdn} does not resolve (create a headless Service {sub} that selects it).",
                        p.name
                    ),
                    Some(svc) if !svc.selector.as_ref().is_some_and(|sel| sel.selects(&p.labels)) => format!(
                        "Pod {ns}/{} has spec.subdomain {sub}, but Service {ns}/{sub} does not select it (selector {}): its name {fqdn} does not resolve.",
                        p.name,
                        svc.selector.as_ref().map_or_else(|| "(none)".to_string(), |sel| labels_text(sel.iter()))
                    ),
                    Some(svc) if !p.ready && !svc.publish_not_ready && !p.terminal => format!(
                        "Pod {ns}/{} is not ready (its Ready condition is not True): its name {fqdn} is not answered until it is, unless Service {ns}/{sub} sets publishNotReadyAddresses: true.",
                        p.name
                    ),
                    Some(_) => continue,
                };
                out.push(Finding { object: format!("Pod {ns}/{}", p.name), name: Some(fqdn), why: vec![why] });
            }
        }
        out.sort_by(|a, b| a.object.cmp(&b.object));
        out
    }

    /// A look-up as a pod of namespace `ns` makes it, with the stock
    /// resolv.conf (`search <ns>.svc.<zone> svc.<zone> <zone>`, `ndots:5`)
    /// and glibc's resolver: each question in the order it asks them, up to
    /// the first that has records (it goes on past NXDOMAIN, NODATA and
    /// SERVFAIL). musl (Alpine) differs: it stops at NODATA or SERVFAIL and
    /// does not search a name with five dots or more. The node's own search
    /// domains, which kubelet appends, are not known here. A name with a
    /// final dot is asked as it is.
    pub fn search(&self, name: &str, qtype: RecordType, ns: &str) -> Vec<Explanation> {
        if name.ends_with('.') {
            return vec![self.explain(name, qtype)];
        }
        let zone = self.cfg().zone.to_ascii();
        let zone = zone.trim_end_matches('.');
        let suffixes = [format!("{ns}.svc.{zone}"), format!("svc.{zone}"), zone.to_string()];
        let mut names: Vec<String> = suffixes.iter().map(|s| format!("{name}.{s}.")).collect();
        // ndots:5: a name with five dots or more is tried as it is first,
        // any other last.
        if name.matches('.').count() >= 5 {
            names.insert(0, format!("{name}."));
        } else {
            names.push(format!("{name}."));
        }
        let mut steps = Vec::new();
        for n in names {
            let e = self.explain(&n, qtype);
            let done = !e.answer.is_empty();
            steps.push(e);
            if done {
                break;
            }
        }
        steps
    }

    /// Explains `qtype` at `name` (absolute or not; the zone is not added).
    pub fn explain(&self, name: &str, qtype: RecordType) -> Explanation {
        let fqdn = if name.ends_with('.') { name.to_string() } else { format!("{name}.") };
        let mut out = Explanation {
            name: fqdn.clone(),
            qtype: match qtype {
                RecordType::Unknown(n) => format!("TYPE{n}"),
                t => t.to_string(),
            },
            status: String::new(),
            answer: Vec::new(),
            why: Vec::new(),
        };
        let Ok(qname) = Name::from_ascii(&fqdn) else {
            out.status = "FORMERR".into();
            out.why.push(format!("{name} is not a valid DNS name."));
            return out;
        };
        let (status, records) = self.ask(&qname, qtype);
        out.status = status;
        out.answer = records;
        self.reasons(&qname, qtype, &out.status, &mut out.why);
        out
    }

    /// The answer through the server's own path: index, then wire encoder,
    /// then read back as `dig` would.
    fn ask(&self, qname: &Name, qtype: RecordType) -> (String, Vec<String>) {
        let a = answer(self.index, &key_of(qname), u16::from(qtype));
        let mut query = Message::query();
        query.add_query(HQuery::query(qname.clone(), qtype));
        let Ok(wire) = query.to_vec() else { return ("SERVFAIL".into(), Vec::new()) };
        let Parsed::Query(q) = parse(&wire) else { return ("SERVFAIL".into(), Vec::new()) };
        let mut out = Vec::new();
        begin(&mut out, &q);
        let (rcode, _) = encode_answer(&mut out, &a, u16::MAX as usize, false);
        end(&mut out, &q, rcode, a.authoritative);
        match Message::from_vec(&out) {
            Ok(m) => (rcode_name(u16::from(m.response_code)), m.answers.iter().map(ToString::to_string).collect()),
            Err(_) => ("SERVFAIL".into(), Vec::new()),
        }
    }

    fn reasons(&self, qname: &Name, qtype: RecordType, status: &str, why: &mut Vec<String>) {
        let cfg = self.cfg();
        let zone = cfg.zone.to_ascii();
        if cfg.in_addr.zone_of(qname) || cfg.ip6.zone_of(qname) {
            self.reverse(qname, status, why);
            return;
        }
        if !cfg.zone.zone_of(qname) {
            why.push(format!(
                "{qname} is outside the cluster zone {zone}: the kubernetes plugin does not answer it (forward does, when configured)."
            ));
            return;
        }
        if *qname == cfg.ns_name {
            why.push(format!(
                "{qname} is the name server's own name: it has the address of the Service {}/{} when that Service exists.",
                crate::model::DNS_SERVICE.0,
                crate::model::DNS_SERVICE.1
            ));
            return;
        }
        // The labels below the zone, lowercase, as the index keys them.
        let below = qname.num_labels().saturating_sub(cfg.zone.num_labels()) as usize;
        let owned: Vec<String> =
            qname.iter().take(below).map(|l| String::from_utf8_lossy(l).to_ascii_lowercase()).collect();
        let labels: Vec<&str> = owned.iter().map(String::as_str).collect();
        match labels.as_slice() {
            [] => why.push(format!("{zone} is the zone's apex: it has the SOA and NS records.")),
            ["dns-version"] => why.push("dns-version has the TXT record of the DNS schema version served.".into()),
            ["svc"] | ["pod"] => why.push(format!(
                "{qname} exists with no records of its own: it is the parent of every {} name.",
                if labels[0] == "svc" { "Service" } else { "Pod" }
            )),
            [ns, "svc"] => {
                if self.namespace(ns, why) {
                    why.push(format!(
                        "Namespace {ns} exists: its name exists with no records of its own (the parent of its Services' names)."
                    ));
                }
            }
            [svc, ns, "svc"] => {
                if let Some(s) = self.service(ns, svc, why) {
                    self.service_itself(s, qtype, why);
                }
            }
            [proto, svc, ns, "svc"] if proto.starts_with('_') => {
                if let Some(s) = self.service(ns, svc, why) {
                    let named = s.ports.iter().any(|p| !p.name.is_empty() && p.protocol.label() == *proto);
                    why.push(if named {
                        format!("{qname} exists with no records of its own: it is the parent of the Service's {proto} port names.")
                    } else {
                        format!("Service {ns}/{svc} has no named {proto} port, so {qname} does not exist.")
                    });
                }
            }
            [host, svc, ns, "svc"] => {
                if let Some(s) = self.service(ns, svc, why) {
                    self.endpoint_name(s, host, why);
                }
            }
            [port, proto, svc, ns, "svc"] if port.starts_with('_') && proto.starts_with('_') => {
                if let Some(s) = self.service(ns, svc, why) {
                    self.named_port(s, &port[1..], &proto[1..], why);
                }
            }
            [ns, "pod"] => {
                if self.namespace(ns, why) {
                    why.push(format!("Namespace {ns} exists: its pod name exists with no records of its own."));
                }
            }
            [ip, ns, "pod"] => self.pod_name(ns, ip, why),
            _ => why.push(format!(
                "{qname} is not a name the cluster zone defines (<service>.<namespace>.svc.{zone}, <hostname>.<service>.<namespace>.svc.{zone}, _<port>._<proto>.<service>.<namespace>.svc.{zone} or <ip-with-dashes>.<namespace>.pod.{zone})."
            )),
        }
    }

    /// A reverse (PTR) name: which Services and endpoints have the address.
    fn reverse(&self, qname: &Name, status: &str, why: &mut Vec<String>) {
        let Some(ip) =
            qname.parse_arpa_name().ok().filter(|net| net.prefix_len() == net.max_prefix_len()).map(|n| n.addr())
        else {
            why.push(format!(
                "{qname} is in a reverse zone but is not a whole address: it exists with no records when addresses lie below it."
            ));
            return;
        };
        let c = self.cluster();
        let mut by: Vec<String> = c
            .services()
            .filter(|s| matches!(&s.kind, ServiceKind::ClusterIp(ips) if ips.contains(&ip)))
            .map(|s| format!("the ClusterIP of Service {}/{}", s.namespace, s.name))
            .collect();
        for owner in c.owners() {
            if let Some((svc, groups)) = c.owner_groups(&owner) {
                let has = groups.iter().flat_map(|g| g.endpoints.iter()).any(|e| e.addresses.contains(&ip));
                let ready =
                    groups.iter().flat_map(|g| g.endpoints.iter()).any(|e| e.ready && e.addresses.contains(&ip));
                if has {
                    let state = if ready { "ready" } else { "not ready, so not answered" };
                    by.push(format!("an endpoint of Service {}/{} ({state})", svc.namespace, svc.name));
                }
            }
        }
        by.sort();
        by.dedup();
        if by.is_empty() {
            why.push(format!("No Service and no endpoint has the address {ip}, so its reverse name does not exist."));
        } else {
            let verb = if status == "NOERROR" { "answers" } else { "would answer" };
            why.push(format!("{qname} {verb} the names of what has the address {ip}: {}.", by.join("; ")));
        }
    }

    /// Whether namespace `ns` exists; says why not, with the nearest names.
    fn namespace(&self, ns: &str, why: &mut Vec<String>) -> bool {
        if self.cluster().has_namespace(ns) {
            return true;
        }
        let mut s = format!("Namespace {ns} does not exist: no object lives in it.");
        if let Some(near) = nearest(ns, self.cluster().namespaces()) {
            s.push_str(&format!(" The nearest namespace is {near}."));
        }
        why.push(s);
        false
    }

    /// The Service `ns/name`, or why there is none, with the nearest names
    /// in the same namespace and the same name in others.
    fn service(&self, ns: &str, name: &str, why: &mut Vec<String>) -> Option<&Service> {
        if !self.namespace(ns, why) {
            let elsewhere = self.namespaces_with(name);
            if !elsewhere.is_empty() {
                why.push(format!("A Service {name} exists in {}.", elsewhere.join(", ")));
            }
            return None;
        }
        if let Some(s) = self.cluster().service(ns, name) {
            return Some(s);
        }
        let mut s = format!("There is no Service {name} in namespace {ns}.");
        let same_ns = self.cluster().services().filter(|s| s.namespace == ns).map(|s| s.name.as_str());
        if let Some(near) = nearest(name, same_ns) {
            s.push_str(&format!(" The nearest Service name there is {near}."));
        }
        let elsewhere = self.namespaces_with(name);
        if !elsewhere.is_empty() {
            s.push_str(&format!(" A Service {name} exists in namespace {}.", elsewhere.join(", ")));
        }
        why.push(s);
        None
    }

    fn namespaces_with(&self, name: &str) -> Vec<String> {
        let found: BTreeSet<&str> =
            self.cluster().services().filter(|s| s.name == name).map(|s| s.namespace.as_str()).collect();
        found.into_iter().map(str::to_string).collect()
    }

    /// `<svc>.<ns>.svc.<zone>` itself.
    fn service_itself(&self, svc: &Service, qtype: RecordType, why: &mut Vec<String>) {
        let id = format!("{}/{}", svc.namespace, svc.name);
        match &svc.kind {
            ServiceKind::ExternalName(target) => {
                if target.parse::<IpAddr>().is_ok() {
                    why.push(format!(
                        "Service {id} is an ExternalName whose externalName {target} is an IP address, not a DNS name: a CNAME cannot point at an address, so the name does not resolve. Use a Service without a selector and an EndpointSlice with that address instead."
                    ));
                } else {
                    why.push(format!(
                        "Service {id} is an ExternalName: its name is a CNAME to {}.",
                        target.trim_end_matches('.')
                    ));
                }
            }
            ServiceKind::ClusterIp(ips) => {
                let ips: Vec<String> = ips.iter().map(ToString::to_string).collect();
                why.push(format!(
                    "Service {id} has ClusterIP {}: its name answers that address to A or AAAA questions of its family.",
                    ips.join(", ")
                ));
                if self.cfg().ignore_empty_service && !self.cluster().has_ready_endpoint(svc) {
                    why.push("`ignore empty_service` is on and the Service has no ready endpoint, so it answers as if it did not exist.".into());
                    self.endpoints(svc, why);
                }
            }
            ServiceKind::Headless => {
                why.push(format!(
                    "Service {id} is headless (clusterIP: None): its name answers the addresses of its ready endpoints."
                ));
                self.endpoints(svc, why);
            }
        }
        if qtype == RecordType::SRV && svc.ports.is_empty() && !matches!(svc.kind, ServiceKind::ExternalName(_)) {
            why.push(format!("Service {id} has no ports, so it has no SRV records."));
        }
    }

    /// Where `svc`'s endpoints come from, how many are ready and, when none
    /// is, why.
    fn endpoints(&self, svc: &Service, why: &mut Vec<String>) {
        let c = self.cluster();
        let (ns, name) = (svc.namespace.as_str(), svc.name.as_str());
        let id = format!("{ns}/{name}");
        let ready = |e: &crate::model::Endpoint| e.ready || svc.publish_not_ready;
        match c.source(ns, name) {
            Source::Slices => {
                let slices: Vec<_> = c.slices_of(ns, name).collect();
                let names: Vec<&str> = slices.iter().map(|s| s.name.as_str()).collect();
                let all: Vec<_> = slices.iter().flat_map(|s| s.group.endpoints.iter()).collect();
                let n = all.iter().filter(|e| ready(e) && !e.addresses.is_empty()).count();
                why.push(format!(
                    "Its endpoints come from the EndpointSlice(s) {} (label kubernetes.io/service-name={name}): {n} ready of {}.",
                    names.join(", "),
                    all.len()
                ));
                if n == 0 {
                    self.not_ready(all.iter().copied(), self.not_ready_field(svc), why);
                    // The controller writes a Service's slices from its
                    // selector: say what it matches.
                    if let Some(sel) = &svc.selector
                        && c.counts().iter().any(|(k, n)| *k == crate::model::Kind::Pod && *n > 0)
                    {
                        self.selected_pods(svc, sel, why);
                    }
                }
            }
            Source::Endpoints => {
                let eps = c.endpoints_named(ns, name);
                let all: Vec<_> = eps.iter().flat_map(|e| e.groups.iter()).flat_map(|g| g.endpoints.iter()).collect();
                let n = all.iter().filter(|e| ready(e) && !e.addresses.is_empty()).count();
                why.push(format!("Its endpoints come from the Endpoints {id}: {n} ready of {}.", all.len()));
                if n == 0 {
                    self.not_ready(all.iter().copied(), self.not_ready_field(svc), why);
                }
            }
            Source::Selector => match &svc.selector {
                None => {
                    why.push(format!(
                        "Service {id} has no selector, no EndpointSlice labelled kubernetes.io/service-name={name} and no Endpoints named {name}: nothing gives it endpoints."
                    ));
                    self.orphans(svc, why);
                }
                Some(sel) => self.selected_pods(svc, sel, why),
            },
        }
    }

    /// What `svc`'s selector matches among the Pods known (manifests, or
    /// the API when Pods are watched): the nearest Pods' labels when none.
    fn selected_pods(&self, svc: &Service, sel: &crate::model::Labels, why: &mut Vec<String>) {
        let c = self.cluster();
        let ns = svc.namespace.as_str();
        let id = format!("{ns}/{}", svc.name);
        let selector = labels_text(sel.iter());
        let pods: Vec<&Pod> = c.pods_in(ns).filter(|p| sel.selects(&p.labels)).collect();
        if pods.is_empty() {
            let mut s = format!("The selector {selector} of Service {id} matches no Pod in {ns}.");
            let mut near: Vec<(usize, &Pod)> =
                c.pods_in(ns).map(|p| (sel.iter().filter(|(k, v)| p.labels.get(k) == Some(v)).count(), p)).collect();
            near.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.name.cmp(&b.1.name)));
            for (_, p) in near.iter().take(3) {
                s.push_str(&format!(" Pod {} has labels {}.", p.name, labels_text(p.labels.iter())));
            }
            why.push(s);
            return;
        }
        for p in pods {
            let state = if p.terminal {
                "has finished (Succeeded or Failed): no endpoint".to_string()
            } else if p.ips.is_empty() {
                "has no IP yet: no endpoint".to_string()
            } else if p.ready {
                "is ready: an endpoint".to_string()
            } else if svc.publish_not_ready {
                "is not ready, an endpoint all the same (publishNotReadyAddresses: true)".to_string()
            } else {
                "is not ready (its Ready condition is not True): not answered; publishNotReadyAddresses: true on the Service would answer it".to_string()
            };
            why.push(format!("Pod {ns}/{} matches the selector {selector} and {state}.", p.name));
        }
    }

    /// Says which endpoints are not ready, and the fix.
    fn not_ready<'e>(&self, all: impl Iterator<Item = &'e crate::model::Endpoint>, field: &str, why: &mut Vec<String>) {
        let mut any = false;
        for e in all {
            let ips: Vec<String> = e.addresses.iter().map(ToString::to_string).collect();
            if e.addresses.is_empty() {
                why.push("An endpoint has no address.".into());
            } else if !e.ready {
                why.push(format!(
                    "Endpoint {} is not ready ({field}): it is not answered unless the Service sets publishNotReadyAddresses: true.",
                    ips.join(", ")
                ));
            }
            any = true;
        }
        if !any {
            why.push("They hold no endpoints.".into());
        }
    }

    /// Where the source of `svc`'s endpoints says one is not ready.
    fn not_ready_field(&self, svc: &Service) -> &'static str {
        match self.cluster().source(&svc.namespace, &svc.name) {
            Source::Slices => "its EndpointSlice says conditions.ready: false",
            Source::Endpoints => "the Endpoints lists it under notReadyAddresses",
            Source::Selector => "its Pod's Ready condition is not True",
        }
    }

    /// Endpoints and slices of `svc`'s namespace that bind to no Service:
    /// the usual reason a manual Service has no endpoints.
    fn orphans(&self, svc: &Service, why: &mut Vec<String>) {
        let c = self.cluster();
        let ns = svc.namespace.as_str();
        let mut eps: Vec<&str> =
            c.endpoints_in(ns).map(|e| e.name.as_str()).filter(|n| c.service(ns, n).is_none()).collect();
        eps.sort_unstable();
        for e in eps {
            why.push(format!(
                "The Endpoints {ns}/{e} does not bind to Service {} because its name differs from the Service's (an Endpoints object belongs to the Service of the same name): if it is meant for this Service, rename it to {}.",
                svc.name, svc.name
            ));
        }
        let mut slices: Vec<(&str, Option<&str>)> = c
            .slices_in(ns)
            .filter(|s| s.service.as_deref().is_none_or(|n| c.service(ns, n).is_none()))
            .map(|s| (s.name.as_str(), s.service.as_deref()))
            .collect();
        slices.sort_unstable();
        for (slice, label) in slices {
            let said = match label {
                Some(l) => format!("its label kubernetes.io/service-name={l} names no Service in {ns}"),
                None => "it has no kubernetes.io/service-name label".to_string(),
            };
            why.push(format!(
                "The EndpointSlice {ns}/{slice} does not bind to Service {} because {said}: if it is meant for this Service, set the label to {}.",
                svc.name, svc.name
            ));
        }
    }

    /// `<host>.<svc>.<ns>.svc.<zone>`: an endpoint's own name.
    fn endpoint_name(&self, svc: &Service, host: &str, why: &mut Vec<String>) {
        let c = self.cluster();
        let (ns, name) = (svc.namespace.as_str(), svc.name.as_str());
        let id = format!("{ns}/{name}");
        if let ServiceKind::ExternalName(_) = svc.kind {
            why.push(format!("Service {id} is an ExternalName: it has no endpoints, so no names below it."));
            return;
        }
        let groups = self.groups_of(svc);
        let labels: BTreeSet<String> = groups
            .iter()
            .flat_map(|g| g.endpoints.iter())
            .flat_map(|e| {
                let hostname = e.hostname().map(str::to_string);
                e.addresses.iter().map(move |ip| hostname.clone().unwrap_or_else(|| crate::records::name::ip_label(ip)))
            })
            .collect();
        if labels.contains(host) {
            why.push(format!("{host} is an endpoint of Service {id}: the name answers its address when it is ready."));
            let label_of = |e: &crate::model::Endpoint, ip: &IpAddr| {
                e.hostname().map_or_else(|| crate::records::name::ip_label(ip), str::to_string)
            };
            let these: Vec<_> = groups
                .iter()
                .flat_map(|g| g.endpoints.iter())
                .filter(|e| e.addresses.iter().any(|ip| label_of(e, ip) == host))
                .collect();
            if these.iter().all(|e| !e.ready) {
                self.not_ready(these.into_iter(), self.not_ready_field(svc), why);
            }
            return;
        }
        let mut s = format!("Service {id} has no endpoint named {host}.");
        if labels.is_empty() {
            s.push_str(" It has no endpoints at all.");
        } else {
            let list: Vec<&str> = labels.iter().map(String::as_str).take(8).collect();
            s.push_str(&format!(" Its endpoint names are: {}.", list.join(", ")));
        }
        why.push(s);
        // The Pod the user most likely meant: named `host`, or with hostname `host`.
        for p in c.pods_in(ns).filter(|p| p.name == host || p.hostname.as_deref() == Some(host)) {
            let pid = format!("{ns}/{}", p.name);
            match (&p.hostname, &p.subdomain) {
                (None, _) => why.push(format!(
                    "Pod {pid} sets no spec.hostname: its endpoint is named after its IP, not its Pod name (a StatefulSet sets hostname and subdomain; an Indexed Job sets hostname, and its Pod template must set spec.subdomain)."
                )),
                (Some(h), _) if h != host => {
                    why.push(format!("Pod {pid} has spec.hostname {h}: its endpoint is named {h}, not {host}."))
                }
                (Some(_), sub) if sub.as_deref() != Some(name) => why.push(format!(
                    "Pod {pid} has spec.subdomain {}, not {name}: its hostname is used only when its subdomain names the Service; set spec.subdomain: {name}.",
                    sub.as_deref().unwrap_or("(none)")
                )),
                _ => {
                    if let Some(sel) = &svc.selector
                        && !sel.selects(&p.labels)
                    {
                        why.push(format!(
                            "Pod {pid} is not selected by Service {id} (selector {}).",
                            labels_text(sel.iter())
                        ));
                    }
                }
            }
        }
        if labels.is_empty() {
            self.endpoints(svc, why);
        }
    }

    /// The endpoint groups `svc` is answered from, readiness final. Walks
    /// every owner: linear in the cluster, fine for one question.
    fn groups_of(&self, svc: &Service) -> Vec<std::borrow::Cow<'_, crate::model::EndpointGroup>> {
        let c = self.cluster();
        c.owners()
            .into_iter()
            .filter_map(|o| c.owner_groups(&o))
            .filter(|(s, _)| s.namespace == svc.namespace && s.name == svc.name)
            .flat_map(|(_, g)| g)
            .collect()
    }

    /// `_<port>._<proto>.<svc>.<ns>.svc.<zone>`: SRV by port name.
    fn named_port(&self, svc: &Service, port: &str, proto: &str, why: &mut Vec<String>) {
        let id = format!("{}/{}", svc.namespace, svc.name);
        if port.is_empty() {
            why.push("`_` alone names no port: ask _<port name>._<proto> (as _http._tcp).".into());
            return;
        }
        if let ServiceKind::ExternalName(_) = svc.kind {
            why.push(format!("Service {id} is an ExternalName: there are no names below it, only its CNAME."));
            return;
        }
        let same_name: Vec<_> = svc.ports.iter().filter(|p| p.name == port).collect();
        if same_name.is_empty() {
            let unnamed: Vec<String> = svc
                .ports
                .iter()
                .filter(|p| p.name.is_empty() && p.protocol.label().trim_start_matches('_') == proto)
                .map(|p| format!("{}/{}", p.port, p.protocol.label().trim_start_matches('_').to_uppercase()))
                .collect();
            let named: Vec<&str> = svc.ports.iter().filter(|p| !p.name.is_empty()).map(|p| p.name.as_str()).collect();
            let mut s = format!("Service {id} has no port named {port}.");
            if !named.is_empty() {
                s.push_str(&format!(" Its named ports are: {}.", named.join(", ")));
            }
            if !unnamed.is_empty() {
                s.push_str(&format!(
                    " Port {} has no name: _<port>._<proto> names exist only for named ports; give it name: {port}.",
                    unnamed.join(", ")
                ));
            }
            why.push(s);
            return;
        }
        if !same_name.iter().any(|p| p.protocol.label().trim_start_matches('_') == proto) {
            let protos: Vec<String> = same_name.iter().map(|p| p.protocol.label().to_string()).collect();
            why.push(format!("Port {port} of Service {id} is {}, not _{proto}.", protos.join(", ")));
            return;
        }
        match svc.kind {
            ServiceKind::Headless => {
                why.push(format!(
                    "Port {port} of headless Service {id} answers one SRV record per ready endpoint that has a port named {port}."
                ));
                let ports: BTreeSet<String> = self
                    .groups_of(svc)
                    .iter()
                    .flat_map(|g| g.ports.iter())
                    .map(|p| if p.name.is_empty() { format!("{} (no name)", p.port) } else { p.name.to_string() })
                    .collect();
                if !ports.is_empty() && !ports.contains(port) {
                    why.push(format!(
                        "Its endpoints' ports are {}, none named {port}: the EndpointSlice's (or Endpoints') port name must match the Service port's name.",
                        ports.into_iter().collect::<Vec<_>>().join(", ")
                    ));
                } else {
                    self.endpoints(svc, why);
                    self.port_numbers(svc, port, why);
                }
            }
            ServiceKind::ClusterIp(_) => {
                why.push(format!(
                    "Port {port} of Service {id} answers one SRV record with the Service's name as target."
                ));
            }
            ServiceKind::ExternalName(_) => {
                why.push(format!("Service {id} is an ExternalName: it has no SRV records."));
            }
        }
    }

    /// A headless Service's SRV records carry the endpoints' port numbers:
    /// says so when they differ from what the Service's `targetPort` says
    /// (seed 004: "ports.port aligns with targetPort").
    fn port_numbers(&self, svc: &Service, port: &str, why: &mut Vec<String>) {
        let Some(sp) = svc.ports.iter().find(|p| p.name == port) else { return };
        let target = match &sp.target_port {
            None => sp.port,
            Some(crate::model::TargetPort::Number(n)) => *n,
            Some(crate::model::TargetPort::Name(_)) => return,
        };
        let numbers: BTreeSet<u16> = self
            .groups_of(svc)
            .iter()
            .flat_map(|g| g.ports.iter())
            .filter(|p| p.name == port && p.port != target)
            .map(|p| p.port)
            .collect();
        if !numbers.is_empty() {
            let list: Vec<String> = numbers.iter().map(ToString::to_string).collect();
            why.push(format!(
                "Its endpoints give port {} for {port}, not the Service's targetPort {target}: SRV answers the endpoints' number; if {target} is right, fix the EndpointSlice's (or Endpoints') port.",
                list.join(", ")
            ));
        }
    }

    /// `<ip>.<ns>.pod.<zone>`.
    fn pod_name(&self, ns: &str, label: &str, why: &mut Vec<String>) {
        match self.cfg().pods {
            PodMode::Disabled => why.push(
                "Pod names are off (`pods disabled`, the default): <ip>.<namespace>.pod names answer only under `pods insecure` or `pods verified`."
                    .into(),
            ),
            PodMode::Insecure => match parse_ip_label(label) {
                Some(ip) => why.push(format!("`pods insecure`: any name of this form answers the address it spells, {ip}.")),
                None => why.push(format!("{label} does not spell an IP address (10-244-1-5, fd00--5).")),
            },
            PodMode::Verified => {
                let Some(ip) = parse_ip_label(label) else {
                    why.push(format!("{label} does not spell an IP address (10-244-1-5, fd00--5)."));
                    return;
                };
                match self.cluster().pods_in(ns).find(|p| p.ips.contains(&ip)) {
                    Some(p) => why.push(format!("`pods verified`: Pod {ns}/{} has IP {ip}.", p.name)),
                    None => why.push(format!("`pods verified`: no Pod in namespace {ns} has IP {ip}.")),
                }
            }
        }
    }
}

/// A record type as a person writes it: a mnemonic (any case) or RFC
/// 3597's `TYPE<number>`.
pub fn parse_qtype(text: &str) -> Result<RecordType, String> {
    let upper = text.to_ascii_uppercase();
    if let Some(n) = upper.strip_prefix("TYPE").and_then(|n| n.parse::<u16>().ok()) {
        return Ok(RecordType::from(n));
    }
    upper.parse().map_err(|_| format!("unknown record type {text:?} (A, AAAA, SRV, PTR, CNAME, ..., or TYPE<number>)"))
}

/// `k=v,k2=v2`.
fn labels_text<'a>(pairs: impl Iterator<Item = (&'a str, &'a str)>) -> String {
    let all: Vec<String> = pairs.map(|(k, v)| format!("{k}={v}")).collect();
    if all.is_empty() { "(none)".into() } else { all.join(",") }
}

/// The candidate nearest to `want` by edit distance (a swap of two
/// letters is one edit), if any is near enough to be a likely slip: a
/// quarter of its length apart at most (at least 1),
/// one the start of the other (`mysql` for `mysql-svc`), or the same first
/// word before a dash when it is half the name or more (`mysql-ep` for
/// `mysql-svc`).
fn nearest<'a>(want: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (want.len() / 4).max(1);
    let word = |s: &'a str| s.split('-').next().filter(|w| w.len() >= 3 && w.len() < s.len());
    // Only a first word that is most of the name: `external-db` is no
    // slip for `external-webserver-cka03-svcn`.
    let want_word =
        want.split('-').next().filter(|w| w.len() >= 3 && w.len() < want.len() && w.len() * 2 >= want.len());
    candidates
        .filter(|c| *c != want)
        .map(|c| (strsim::damerau_levenshtein(want, c), c))
        .filter(|(d, c)| {
            *d <= limit || c.starts_with(want) || want.starts_with(c) || (want_word.is_some() && word(c) == want_word)
        })
        .min()
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::source::parse::parse_text;

    const MYSQL: &str = "apiVersion: v1\nkind: Service\nmetadata: {name: mysql-svc, namespace: default}\nspec:\n  clusterIP: None\n  ports: [{name: default-ep, port: 3306, protocol: TCP, targetPort: 3306}]\n---\napiVersion: v1\nkind: Endpoints\nmetadata: {name: mysql-ep, namespace: default}\nsubsets:\n- addresses: [{ip: 114.32.146.154}]\n  ports: [{name: mysql, port: 3306, protocol: TCP}]\n";

    fn svc(name: &str, spec: &str) -> String {
        format!("apiVersion: v1\nkind: Service\nmetadata: {{name: {name}, namespace: t}}\nspec: {spec}\n---\n")
    }

    fn pod(name: &str, labels: &str, extra: &str, ready: &str) -> String {
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, namespace: t, labels: {labels}}}\nspec: {{containers: [{{name: c, image: x}}]{extra}}}\nstatus: {{phase: Running, podIP: 10.244.0.7, podIPs: [{{ip: 10.244.0.7}}], conditions: [{{type: Ready, status: \"{ready}\"}}]}}\n---\n"
        )
    }

    fn slice(name: &str, service: &str, ready: bool, port: &str) -> String {
        format!(
            "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {{name: {name}, namespace: t, labels: {{kubernetes.io/service-name: {service}}}}}\naddressType: IPv4\nports: [{port}]\nendpoints: [{{addresses: [10.244.0.9], conditions: {{ready: {ready}}}}}]\n---\n"
        )
    }

    /// The fixture loaded as the manifest source loads it: a namespace
    /// exists when an object lives in it.
    fn loaded(yaml: &str, pods: PodMode) -> Explainer {
        let (mut objects, errors) = parse_text(Path::new("t.yaml"), yaml, None);
        assert!(errors.is_empty(), "{errors:?}");
        let namespaces: BTreeSet<String> = objects.iter().map(|o| o.namespace().to_string()).collect();
        for name in namespaces {
            objects.push(Object::new_namespace(name));
        }
        Explainer::new(ZoneConfig::new("cluster.local", 5, pods).unwrap(), objects)
    }

    fn explain(yaml: &str, pods: PodMode, name: &str, qtype: RecordType) -> Explanation {
        loaded(yaml, pods).explain(name, qtype)
    }

    /// Each cause: a fixture, the question, the status, and a sentence
    /// (part of one) that must be among the reasons.
    #[test]
    fn each_cause_is_said() {
        use RecordType::*;
        let headless = "{clusterIP: None, selector: {app: db}, ports: [{name: sql, port: 5432}]}";
        let manual = "{clusterIP: None, ports: [{name: sql, port: 5432}]}";
        let rows: Vec<(String, PodMode, &str, RecordType, &str, &str)> = vec![
            // Manual Endpoints named differently from the Service (seed 000).
            (
                MYSQL.into(),
                PodMode::Disabled,
                "mysql-svc.default.svc.cluster.local",
                A,
                "NXDOMAIN",
                "The Endpoints default/mysql-ep does not bind to Service mysql-svc because its name differs from the Service's (an Endpoints object belongs to the Service of the same name): if it is meant for this Service, rename it to mysql-svc.",
            ),
            // Service absent: the nearest name.
            (
                MYSQL.into(),
                PodMode::Disabled,
                "mysql.default.svc.cluster.local",
                A,
                "NXDOMAIN",
                "There is no Service mysql in namespace default. The nearest Service name there is mysql-svc.",
            ),
            // Service absent here, present in another namespace.
            (
                svc("db", headless),
                PodMode::Disabled,
                "db.default.svc.cluster.local",
                A,
                "NXDOMAIN",
                "A Service db exists in t.",
            ),
            // Namespace absent, with the nearest.
            (
                svc("db", headless),
                PodMode::Disabled,
                "db.tt.svc.cluster.local",
                A,
                "NXDOMAIN",
                "Namespace tt does not exist: no object lives in it. The nearest namespace is t.",
            ),
            // The selector matches no Pod: the nearest Pods' labels.
            (
                svc("db", headless) + &pod("db-0", "{app: dbx}", "", "True"),
                PodMode::Disabled,
                "db.t.svc.cluster.local",
                A,
                "NXDOMAIN",
                "The selector app=db of Service t/db matches no Pod in t. Pod db-0 has labels app=dbx.",
            ),
            // Selected, not ready.
            (
                svc("db", headless) + &pod("db-0", "{app: db}", "", "False"),
                PodMode::Disabled,
                "db.t.svc.cluster.local",
                A,
                "NXDOMAIN",
                "Pod t/db-0 matches the selector app=db and is not ready",
            ),
            // Every endpoint of the slices not ready.
            (
                svc("db", manual) + &slice("db-1", "db", false, "{name: sql, port: 5432}"),
                PodMode::Disabled,
                "db.t.svc.cluster.local",
                A,
                "NXDOMAIN",
                "Endpoint 10.244.0.9 is not ready (its EndpointSlice says conditions.ready: false)",
            ),
            // A slice whose service-name label names no Service.
            (
                svc("db", manual) + &slice("db-1", "dbb", true, "{name: sql, port: 5432}"),
                PodMode::Disabled,
                "db.t.svc.cluster.local",
                A,
                "NXDOMAIN",
                "The EndpointSlice t/db-1 does not bind to Service db because its label kubernetes.io/service-name=dbb names no Service in t: if it is meant for this Service, set the label to db.",
            ),
            // The endpoints' port name differs from the Service's.
            (
                svc("db", manual) + &slice("db-1", "db", true, "{name: postgres, port: 5432}"),
                PodMode::Disabled,
                "_sql._tcp.db.t.svc.cluster.local",
                SRV,
                "NXDOMAIN",
                "Its endpoints' ports are postgres, none named sql",
            ),
            // Endpoint port numbers unlike the Service's targetPort.
            (
                svc("db", "{clusterIP: None, ports: [{name: sql, port: 5432, targetPort: 5432}]}")
                    + &slice("db-1", "db", true, "{name: sql, port: 5433}"),
                PodMode::Disabled,
                "_sql._tcp.db.t.svc.cluster.local",
                SRV,
                "NOERROR",
                "Its endpoints give port 5433 for sql, not the Service's targetPort 5432",
            ),
            // A port without a name asked by _name._proto.
            (
                svc("web", "{ports: [{port: 80}]}"),
                PodMode::Disabled,
                "_http._tcp.web.t.svc.cluster.local",
                SRV,
                "NXDOMAIN",
                "Port 80/TCP has no name: _<port>._<proto> names exist only for named ports; give it name: http.",
            ),
            // Asked as UDP, served as TCP.
            (
                svc("web", "{ports: [{name: http, port: 80}]}"),
                PodMode::Disabled,
                "_http._udp.web.t.svc.cluster.local",
                SRV,
                "NXDOMAIN",
                "Port http of Service t/web is _tcp, not _udp.",
            ),
            // An ExternalName whose target is an IP literal.
            (
                svc("ext", "{type: ExternalName, externalName: 192.0.2.7}"),
                PodMode::Disabled,
                "ext.t.svc.cluster.local",
                A,
                "NXDOMAIN",
                "is an IP address, not a DNS name",
            ),
            // A per-pod name whose Pod's subdomain is not the Service.
            (
                svc("db", headless) + &pod("db-0", "{app: db}", ", hostname: db-0, subdomain: other", "True"),
                PodMode::Disabled,
                "db-0.db.t.svc.cluster.local",
                A,
                "NXDOMAIN",
                "Pod t/db-0 has spec.subdomain other, not db",
            ),
            // A per-pod name whose Pod sets no hostname.
            (
                svc("db", headless) + &pod("db-0", "{app: db}", "", "True"),
                PodMode::Disabled,
                "db-0.db.t.svc.cluster.local",
                A,
                "NXDOMAIN",
                "Pod t/db-0 sets no spec.hostname: its endpoint is named after its IP",
            ),
            // Pod names asked with `pods disabled`.
            (
                svc("db", headless),
                PodMode::Disabled,
                "10-244-0-7.t.pod.cluster.local",
                A,
                "NXDOMAIN",
                "Pod names are off (`pods disabled`, the default)",
            ),
            // One endpoint of several not ready: its own name says so.
            (
                svc("db", manual)
                    + &slice("db-1", "db", false, "{name: sql, port: 5432}")
                    + &slice("db-2", "db", true, "{name: sql, port: 5432}").replace("10.244.0.9", "10.244.0.8"),
                PodMode::Disabled,
                "10-244-0-9.db.t.svc.cluster.local",
                A,
                "NXDOMAIN",
                "Endpoint 10.244.0.9 is not ready (its EndpointSlice says conditions.ready: false)",
            ),
            // A reverse name: what has the address.
            (
                svc("db", manual) + &slice("db-1", "db", true, "{name: sql, port: 5432}"),
                PodMode::Disabled,
                "9.0.244.10.in-addr.arpa",
                PTR,
                "NOERROR",
                "answers the names of what has the address 10.244.0.9: an endpoint of Service t/db (ready).",
            ),
            (
                svc("db", manual),
                PodMode::Disabled,
                "9.0.244.10.in-addr.arpa",
                PTR,
                "NXDOMAIN",
                "No Service and no endpoint has the address 10.244.0.9",
            ),
            // A namespace's own name exists with no records.
            (
                svc("db", manual),
                PodMode::Disabled,
                "t.svc.cluster.local",
                A,
                "NOERROR",
                "Namespace t exists: its name exists with no records of its own",
            ),
            // A good answer says where it comes from.
            (
                svc("db", headless) + &pod("db-0", "{app: db}", "", "True"),
                PodMode::Disabled,
                "db.t.svc.cluster.local",
                A,
                "NOERROR",
                "Pod t/db-0 matches the selector app=db and is ready: an endpoint.",
            ),
        ];
        for (i, (yaml, pods, name, qtype, status, sentence)) in rows.into_iter().enumerate() {
            let e = explain(&yaml, pods, name, qtype);
            assert_eq!(e.status, status, "row {i}: {e}");
            assert!(e.why.iter().any(|w| w.contains(sentence)), "row {i}: wanted {sentence:?} in\n{e}");
        }
    }

    /// A finding's object and the name it breaks.
    type Found = (String, Option<String>);

    fn checked(yaml: &str) -> Vec<Found> {
        loaded(yaml, PodMode::Disabled).check().into_iter().map(|f| (f.object, f.name)).collect()
    }

    /// What `check` finds, per kind of problem, and nothing in a clean cluster.
    #[test]
    fn check_finds_each_kind_of_problem() {
        let headless = "{clusterIP: None, selector: {app: db}, ports: [{name: sql, port: 5432}]}";
        let manual = "{clusterIP: None, ports: [{name: sql, port: 5432}]}";
        let name = |s: &str| Some(s.to_string());
        let rows: Vec<(String, Vec<Found>)> = vec![
            // Clean: a selected ready Pod, a slice with the Service's port name.
            (svc("db", headless) + &pod("db-0", "{app: db}", "", "True"), vec![]),
            (svc("db", manual) + &slice("db-1", "db", true, "{name: sql, port: 5432}"), vec![]),
            (svc("web", "{clusterIP: 10.96.0.20, ports: [{port: 80}]}"), vec![]),
            // A headless Service with no ready endpoint.
            (
                svc("db", headless) + &pod("db-0", "{app: db}", "", "False"),
                vec![("Service t/db".into(), name("db.t.svc.cluster.local."))],
            ),
            // Seed 000: the Service answers nothing and the Endpoints binds to nothing.
            (
                MYSQL.into(),
                vec![
                    ("Endpoints default/mysql-ep".into(), None),
                    ("Service default/mysql-svc".into(), name("mysql-svc.default.svc.cluster.local.")),
                ],
            ),
            // A slice naming no Service.
            (
                svc("db", manual)
                    + &slice("db-1", "db", true, "{name: sql, port: 5432}")
                    + &slice("x-1", "x", true, "{port: 1}"),
                vec![("EndpointSlice t/x-1".into(), None)],
            ),
            // Endpoint ports named unlike the Service's: its SRV name.
            (
                svc("db", manual) + &slice("db-1", "db", true, "{name: postgres, port: 5432}"),
                vec![("Service t/db".into(), name("_sql._tcp.db.t.svc.cluster.local."))],
            ),
            // An ExternalName that is an IP.
            (
                svc("ext", "{type: ExternalName, externalName: 192.0.2.7}"),
                vec![("Service t/ext".into(), name("ext.t.svc.cluster.local."))],
            ),
            // An Endpoints object with no address (a leader-election lock)
            // binds nothing either way: not reported.
            (
                svc("web", "{clusterIP: 10.96.0.20, ports: [{port: 80}]}")
                    + "apiVersion: v1\nkind: Endpoints\nmetadata: {name: kube-scheduler, namespace: t}\n---\n",
                vec![],
            ),
            // A StatefulSet-style Pod, selected, not ready: its name is not answered.
            (
                svc("db", headless)
                    + &pod("db-0", "{app: db}", ", hostname: db-0, subdomain: db", "False")
                    + &pod("db-1", "{app: db}", ", hostname: db-1, subdomain: db", "True")
                        .replace("10.244.0.7", "10.244.0.8"),
                vec![("Pod t/db-0".into(), name("db-0.db.t.svc.cluster.local."))],
            ),
            // A Pod whose subdomain names no Service, and one not selected.
            (
                svc("db", headless)
                    + &pod("a-0", "{app: db}", ", hostname: a-0, subdomain: nosuch", "True")
                    + &pod("b-0", "{app: other}", ", hostname: b-0, subdomain: db", "True")
                        .replace("10.244.0.7", "10.244.0.8"),
                vec![
                    ("Pod t/a-0".into(), name("a-0.nosuch.t.svc.cluster.local.")),
                    ("Pod t/b-0".into(), name("b-0.db.t.svc.cluster.local.")),
                ],
            ),
        ];
        for (i, (yaml, want)) in rows.into_iter().enumerate() {
            assert_eq!(checked(&yaml), want, "row {i}");
        }
    }

    /// The search path of a pod: its namespace first, then svc, then the
    /// zone, then the name as it is (first from five dots on); the look-up
    /// stops at the first question with records.
    #[test]
    fn a_short_name_goes_through_the_search_path() {
        let yaml = svc("web", "{clusterIP: 10.96.0.20, ports: [{name: http, port: 80}]}");
        let (mut objects, _) = parse_text(Path::new("t.yaml"), &yaml, None);
        objects.push(Object::new_namespace("t".into()));
        objects.push(Object::new_namespace("u".into()));
        let x = Explainer::new(ZoneConfig::new("cluster.local", 5, PodMode::Disabled).unwrap(), objects);
        let asked = |name: &str, ns: &str| -> Vec<(String, String)> {
            x.search(name, RecordType::A, ns).into_iter().map(|e| (e.name, e.status)).collect()
        };
        let q = |n: &str, s: &str| (n.to_string(), s.to_string());
        assert_eq!(asked("web", "t"), [q("web.t.svc.cluster.local.", "NOERROR")]);
        assert_eq!(
            asked("web", "u"),
            [
                q("web.u.svc.cluster.local.", "NXDOMAIN"),
                q("web.svc.cluster.local.", "NXDOMAIN"),
                q("web.cluster.local.", "NXDOMAIN"),
                q("web.", "REFUSED"),
            ]
        );
        assert_eq!(
            asked("web.t", "u"),
            [q("web.t.u.svc.cluster.local.", "NXDOMAIN"), q("web.t.svc.cluster.local.", "NOERROR")]
        );
        // Four dots are below ndots:5: the search path first, the famous
        // three wasted questions.
        let full = asked("web.t.svc.cluster.local", "u");
        assert_eq!(full.len(), 4);
        assert_eq!(full[0], q("web.t.svc.cluster.local.u.svc.cluster.local.", "NXDOMAIN"));
        assert_eq!(full[3], q("web.t.svc.cluster.local.", "NOERROR"));
        // Five dots: the name as it is comes first.
        let five = asked("x.web.t.svc.cluster.local", "u");
        assert_eq!(five[0], q("x.web.t.svc.cluster.local.", "NXDOMAIN"));
        assert_eq!(five[1], q("x.web.t.svc.cluster.local.u.svc.cluster.local.", "NXDOMAIN"));
        // A final dot: asked once, as it is.
        assert_eq!(asked("web.", "t"), [q("web.", "REFUSED")]);
    }

    #[test]
    fn nearest_names_are_likely_slips_only() {
        fn near<'a>(want: &str, have: &[&'a str]) -> Option<&'a str> {
            nearest(want, have.iter().copied())
        }
        assert_eq!(near("kafak", &["kafka", "web"]), Some("kafka"));
        assert_eq!(near("mysql", &["mysql-svc"]), Some("mysql-svc"));
        assert_eq!(near("mysql-ep", &["mysql-svc", "web"]), Some("mysql-svc"));
        assert_eq!(near("external-webserver-cka03-svcn", &["external-db"]), None);
        assert_eq!(near("web", &["db"]), None);
    }

    #[test]
    fn the_answer_is_the_servers() {
        let e = explain(MYSQL, PodMode::Disabled, "mysql-svc.default.svc.cluster.local", RecordType::SRV);
        assert!(e.answer.is_empty());
        let yaml = svc("web", "{clusterIP: 10.96.0.20, ports: [{name: http, port: 80}]}");
        let e = explain(&yaml, PodMode::Disabled, "web.t.svc.cluster.local", RecordType::A);
        assert_eq!(e.status, "NOERROR");
        assert_eq!(e.answer.len(), 1, "{e}");
        assert!(e.answer[0].contains("10.96.0.20"), "{e}");
    }
}
