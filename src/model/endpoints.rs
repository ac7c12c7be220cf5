//! Which endpoints a Service has: its EndpointSlices, else a v1 Endpoints
//! object of the same name, else (hand-written manifests) an emulation of the
//! EndpointSlice controller over the Pods its selector matches (SPEC.md 1).

use std::borrow::Cow;

use super::cluster::{Cluster, Owner};
use super::objects::*;

impl Cluster {
    /// Whether `svc` has a ready endpoint with an address (CoreDNS's
    /// `ignore empty_service`), from the same source as
    /// [`Cluster::endpoint_groups`] but copying nothing and stopping at the
    /// first.
    pub fn has_ready_endpoint(&self, svc: &Service) -> bool {
        let ready = |e: &Endpoint| (e.ready || svc.publish_not_ready) && !e.addresses.is_empty();
        let mut slices = self.slices_of(&svc.namespace, &svc.name).peekable();
        if slices.peek().is_some() {
            return slices.any(|s| s.group.endpoints.iter().any(ready));
        }
        if let Some(eps) = self.endpoints_named(&svc.namespace, &svc.name) {
            return eps.groups.iter().any(|g| g.endpoints.iter().any(ready));
        }
        svc.selector.as_ref().is_some_and(|sel| {
            self.pods_in(&svc.namespace).any(|p| {
                sel.selects(&p.labels) && !p.ips.is_empty() && !p.terminal && (p.ready || svc.publish_not_ready)
            })
        })
    }

    /// The Service an endpoint owner ([`Owner::Slice`], [`Owner::Endpoints`],
    /// [`Owner::Selected`]) serves and the endpoints it gives it; `None`
    /// when it gives nothing (no such Service, or another source in use).
    /// Readiness is final, as in [`Cluster::endpoint_groups`].
    pub fn owner_groups(&self, owner: &Owner) -> Option<(&Service, Vec<Cow<'_, EndpointGroup>>)> {
        let (svc, mut groups) = match owner {
            Owner::Slice(ns, name) => {
                let slice = self.slice(ns, name)?;
                let svc = self.service(ns, slice.service.as_deref()?)?;
                (svc, vec![Cow::Borrowed(&slice.group)])
            }
            Owner::Endpoints(ns, name) => {
                let svc = self.service(ns, name)?;
                if self.slices_of(ns, name).next().is_some() {
                    return None;
                }
                (svc, self.endpoints_named(ns, name)?.groups.iter().map(Cow::Borrowed).collect())
            }
            Owner::Selected(ns, name, pod) => {
                let svc = self.service(ns, name)?;
                if self.slices_of(ns, name).next().is_some() || self.endpoints_named(ns, name).is_some() {
                    return None;
                }
                let pod = self.pod(ns, pod)?;
                if !svc.selector.as_ref().is_some_and(|s| s.selects(&pod.labels)) || pod.ips.is_empty() || pod.terminal
                {
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

    /// The endpoint groups of `svc`, in a stable order. Readiness is final:
    /// `publishNotReadyAddresses` has already made every endpoint ready.
    pub fn endpoint_groups(&self, svc: &Service) -> Vec<Cow<'_, EndpointGroup>> {
        let mut groups: Vec<Cow<'_, EndpointGroup>> = Vec::new();
        let mut slices: Vec<&EndpointSlice> = self.slices_of(&svc.namespace, &svc.name).collect();
        if !slices.is_empty() {
            slices.sort_by(|a, b| a.name.cmp(&b.name));
            groups.extend(slices.into_iter().map(|s| Cow::Borrowed(&s.group)));
        } else if let Some(eps) = self.endpoints_named(&svc.namespace, &svc.name) {
            groups.extend(eps.groups.iter().map(Cow::Borrowed));
        } else if let Some(selector) = &svc.selector {
            let mut pods: Vec<&Pod> = self
                .pods_in(&svc.namespace)
                .filter(|p| selector.selects(&p.labels))
                // The controller leaves terminal Pods out entirely (their IPs
                // may be another Pod's already); terminating ones stay, not
                // ready unless `publishNotReadyAddresses`.
                .filter(|p| !p.ips.is_empty() && !p.terminal)
                .collect();
            pods.sort_by(|a, b| a.name.cmp(&b.name));
            groups.extend(pods.into_iter().map(|p| Cow::Owned(emulate(svc, p))));
        }
        if svc.publish_not_ready && groups.iter().any(|g| g.endpoints.iter().any(|e| !e.ready)) {
            for g in groups.iter_mut() {
                for e in g.to_mut().endpoints.iter_mut() {
                    e.ready = true;
                }
            }
        }
        groups
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
                    pod.container_ports.iter().find(|c| c.name == *name && c.protocol == p.protocol)?.port
                }
            };
            Some(EndpointPort { name: p.name.clone(), protocol: p.protocol, port })
        })
        .collect();
    EndpointGroup {
        endpoints: vec![Endpoint {
            addresses: pod.ips.iter().copied().collect(),
            ready: pod.ready,
            hostname,
            pod: Some(pod.name.as_str()).filter(|n| is_dns_label(n)).map(Str::from),
        }],
        ports,
    }
}
