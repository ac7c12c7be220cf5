//! Which endpoints a Service has: its EndpointSlices, else a v1 Endpoints
//! object of the same name, else (hand-written manifests) an emulation of the
//! EndpointSlice controller over the Pods its selector matches (SPEC.md 1).

use std::borrow::Cow;

use super::cluster::{Cluster, Owner};
use super::objects::*;

/// Where a Service's endpoints come from: the first of these it has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    Slices,
    Endpoints,
    Selector,
}

/// Whether the EndpointSlice controller would make an endpoint of `pod` for
/// `svc`: selected, with an address, and not terminal (a terminal Pod's IPs
/// may be another's already; a terminating one stays, not ready unless
/// `publishNotReadyAddresses`).
fn selected(svc: &Service, pod: &Pod) -> bool {
    svc.selector.as_ref().is_some_and(|s| s.selects(&pod.labels)) && !pod.ips.is_empty() && !pod.terminal
}

impl Cluster {
    /// Which source Service `ns/name` takes its endpoints from.
    pub fn source(&self, ns: &str, name: &str) -> Source {
        if self.slices_of(ns, name).next().is_some() {
            Source::Slices
        } else if self.endpoints_named(ns, name).is_some() {
            Source::Endpoints
        } else {
            Source::Selector
        }
    }

    /// Whether `svc` has a ready endpoint with an address (CoreDNS's
    /// `ignore empty_service`), copying nothing and stopping at the first.
    pub fn has_ready_endpoint(&self, svc: &Service) -> bool {
        let ready = |e: &Endpoint| (e.ready || svc.publish_not_ready) && !e.addresses.is_empty();
        let (ns, name) = (svc.namespace.as_str(), svc.name.as_str());
        match self.source(ns, name) {
            Source::Slices => self.slices_of(ns, name).any(|s| s.group.endpoints.iter().any(ready)),
            Source::Endpoints => {
                self.endpoints_named(ns, name).is_some_and(|e| e.groups.iter().any(|g| g.endpoints.iter().any(ready)))
            }
            Source::Selector => self.pods_in(ns).any(|p| selected(svc, p) && (p.ready || svc.publish_not_ready)),
        }
    }

    /// The Service an endpoint owner ([`Owner::Slice`], [`Owner::Endpoints`],
    /// [`Owner::Selected`]) serves and the endpoints it gives it; `None`
    /// when it gives nothing (no such Service, or another source in use).
    /// Readiness is final: `publishNotReadyAddresses` has made every
    /// endpoint ready.
    pub fn owner_groups(&self, owner: &Owner) -> Option<(&Service, Vec<Cow<'_, EndpointGroup>>)> {
        let (svc, mut groups) = match owner {
            Owner::Slice(ns, name) => {
                let slice = self.slice(ns, name)?;
                let svc = self.service(ns, slice.service.as_deref()?)?;
                (svc, vec![Cow::Borrowed(&slice.group)])
            }
            Owner::Endpoints(ns, name) => {
                let svc = self.service(ns, name)?;
                if self.source(ns, name) != Source::Endpoints {
                    return None;
                }
                (svc, self.endpoints_named(ns, name)?.groups.iter().map(Cow::Borrowed).collect())
            }
            Owner::Selected(ns, name, pod) => {
                let svc = self.service(ns, name)?;
                let pod = self.pod(ns, pod)?;
                if self.source(ns, name) != Source::Selector || !selected(svc, pod) {
                    return None;
                }
                (svc, vec![Cow::Owned(emulate(svc, pod))])
            }
            _ => return None,
        };
        if svc.publish_not_ready {
            for g in groups.iter_mut().filter(|g| g.endpoints.iter().any(|e| !e.ready)) {
                g.to_mut().endpoints.iter_mut().for_each(|e| e.ready = true);
            }
        }
        Some((svc, groups))
    }
}

/// The endpoint the EndpointSlice controller would make for `pod` behind
/// `svc`: hostname only when the Pod's subdomain names this Service
/// (StatefulSets, Indexed Jobs), named target ports resolved against the
/// Pod's container ports.
fn emulate(svc: &Service, pod: &Pod) -> EndpointGroup {
    let hostname = match (&pod.hostname, &pod.subdomain) {
        (Some(h), Some(sub)) if *sub == svc.name => Some(h.clone()),
        _ => None,
    };
    let ports = svc
        .ports
        .iter()
        .filter_map(|p| {
            let port = match &p.target_port {
                None => p.port,
                Some(TargetPort::Number(n)) => *n,
                Some(TargetPort::Name(name)) => {
                    pod.container_ports.iter().find(|c| c.name == **name && c.protocol == p.protocol)?.port
                }
            };
            Some(EndpointPort { name: p.name.clone(), protocol: p.protocol, port })
        })
        .collect();
    EndpointGroup {
        endpoints: Box::new([Endpoint::new(
            pod.ips.iter().copied().collect(),
            pod.ready,
            hostname.as_deref(),
            Some(pod.name.as_str()).filter(|n| is_dns_label(n)),
        )]),
        ports,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn service(publish_not_ready: bool) -> Object {
        Object::Service(Arc::new(Service {
            namespace: "t".into(),
            name: "db".into(),
            kind: ServiceKind::Headless,
            ports: Arc::new([]),
            selector: Some([("app", "db")].into_iter().collect()),
            publish_not_ready,
        }))
    }

    fn endpoint(ready: bool) -> Endpoint {
        Endpoint::new(smallvec::smallvec!["10.244.0.1".parse().unwrap()], ready, None, None)
    }

    fn slice(ready: bool) -> Object {
        Object::EndpointSlice(Arc::new(EndpointSlice {
            namespace: "t".into(),
            name: "db-1".into(),
            service: Some("db".into()),
            group: EndpointGroup::new(vec![endpoint(ready)], vec![]),
        }))
    }

    fn endpoints(ready: bool) -> Object {
        Object::Endpoints(Arc::new(Endpoints {
            namespace: "t".into(),
            name: "db".into(),
            groups: vec![EndpointGroup::new(vec![endpoint(ready)], vec![])],
        }))
    }

    fn pod(ready: bool, terminal: bool) -> Object {
        Object::Pod(Arc::new(Pod {
            namespace: "t".into(),
            name: "db-0".into(),
            labels: [("app", "db")].into_iter().collect(),
            ips: vec!["10.244.0.9".parse().unwrap()],
            ready,
            terminal,
            deleting: false,
            hostname: None,
            subdomain: None,
            container_ports: vec![],
        }))
    }

    /// The source order (slices, else Endpoints, else the selector) and
    /// readiness, as `ignore empty_service` and the endpoint owners see them.
    #[test]
    fn the_first_source_a_service_has_decides_its_endpoints() {
        let selected = || Owner::Selected("t".into(), "db".into(), "db-0".into());
        let by_endpoints = || Owner::Endpoints("t".into(), "db".into());
        // (objects, publishNotReady, has a ready endpoint, Endpoints owner gives, Pod owner gives)
        let rows: Vec<(Vec<Object>, bool, bool, bool, bool)> = vec![
            (vec![pod(true, false)], false, true, false, true),
            (vec![pod(false, false)], false, false, false, true),
            (vec![pod(false, false)], true, true, false, true),
            (vec![pod(true, true)], false, false, false, false),
            (vec![pod(true, false), endpoints(false)], false, false, true, false),
            (vec![pod(true, false), endpoints(false)], true, true, true, false),
            (vec![pod(true, false), endpoints(true), slice(false)], false, false, false, false),
            (vec![pod(true, false), endpoints(false), slice(true)], false, true, false, false),
        ];
        for (i, (objects, pnr, ready, eps_gives, pod_gives)) in rows.into_iter().enumerate() {
            let mut c = Cluster::new();
            c.apply(service(pnr));
            for o in objects {
                c.apply(o);
            }
            let svc = c.service("t", "db").unwrap_or_else(|| panic!("row {i}: no Service")).clone();
            assert_eq!(c.has_ready_endpoint(&svc), ready, "row {i}: ready");
            assert_eq!(c.owner_groups(&by_endpoints()).is_some(), eps_gives, "row {i}: Endpoints owner");
            assert_eq!(c.owner_groups(&selected()).is_some(), pod_gives, "row {i}: Pod owner");
            if let Some((_, groups)) = c.owner_groups(&by_endpoints()).or_else(|| c.owner_groups(&selected())) {
                let all_ready = groups.iter().all(|g| g.endpoints.iter().all(|e| e.ready));
                assert_eq!(all_ready, ready, "row {i}: readiness of the groups given");
            }
        }
    }
}
