//! `kubernetes [ZONES...] { ... }` as plugin/kubernetes/setup.go reads it,
//! plus clusterdns's own `manifests` and `service_cidr`.

use std::time::Duration;

use super::config::*;
use super::plugins::{Ctx, arg_err, lines, unknown, unsupported};
use super::syntax::RawDirective;
use super::{CorefileError, anchored, values};
use crate::model::Selector;

/// Options of CoreDNS's kubernetes plugin (current or retired) that
/// clusterdns does not implement.
const UNSUPPORTED: &[&str] =
    &["tls", "multicluster", "zonal", "apiserver_qps", "apiserver_burst", "apiserver_max_inflight", "resyncperiod"];

fn is_reverse(zone: &str) -> bool {
    zone.ends_with("in-addr.arpa.") || zone.ends_with("ip6.arpa.")
}

pub(crate) fn parse(d: &RawDirective, cx: &Ctx) -> Result<Kubernetes, CorefileError> {
    let zones = values::zones_or_block(&d.args, cx.zones)?;
    if zones.iter().all(|z| is_reverse(z)) {
        return Err(d.name.err("kubernetes: non-reverse zone name must be used"));
    }
    let mut k = Kubernetes {
        zones,
        pods: Pods::Disabled,
        fallthrough: None,
        ttl: 5,
        namespaces: Vec::new(),
        labels: None,
        namespace_labels: None,
        endpoint_pod_names: false,
        ignore_empty_service: false,
        noendpoints: false,
        kubeconfig: None,
        endpoint: None,
        startup_timeout: Duration::from_secs(5),
        manifests: Vec::new(),
        service_cidr: ipnet::IpNet::V4(ipnet::Ipv4Net::new_assert([10, 96, 0, 0].into(), 12)),
    };
    for line in lines(d) {
        let (opt, args) = (&line[0], &line[1..]);
        match opt.as_str() {
            "endpoint_pod_names" if args.is_empty() => k.endpoint_pod_names = true,
            "noendpoints" if args.is_empty() => k.noendpoints = true,
            "endpoint_pod_names" | "noendpoints" => return Err(arg_err(d, opt, "no arguments")),
            "pods" => {
                let [m] = args else { return Err(arg_err(d, opt, "disabled|insecure|verified")) };
                k.pods = match m.as_str() {
                    "disabled" => Pods::Disabled,
                    "insecure" => Pods::Insecure,
                    "verified" => Pods::Verified,
                    other => {
                        return Err(m.err(format!(
                            "kubernetes: wrong value for pods: {other}, must be one of: disabled, verified, insecure"
                        )));
                    }
                };
            }
            "namespaces" => {
                if args.is_empty() {
                    return Err(arg_err(d, opt, "at least one namespace"));
                }
                for a in args {
                    if !k.namespaces.contains(&a.text) {
                        k.namespaces.push(a.text.clone());
                    }
                }
            }
            "endpoint" => {
                // Several are deprecated; CoreDNS uses the first.
                let Some(first) = args.first() else { return Err(arg_err(d, opt, "an API server URL")) };
                k.endpoint = Some(first.text.clone());
            }
            "labels" | "namespace_labels" => {
                if args.is_empty() {
                    return Err(arg_err(d, opt, "a label selector"));
                }
                let sel = args.iter().map(|t| t.text.as_str()).collect::<Vec<_>>().join(" ");
                let sel = Selector::parse(&sel).map_err(|e| {
                    opt.err(format!("kubernetes: unable to parse {} selector value: '{sel}': {e}", opt.text))
                })?;
                if opt.text == "labels" {
                    k.labels = Some(sel);
                } else {
                    k.namespace_labels = Some(sel);
                }
            }
            "fallthrough" => k.fallthrough = Some(values::fallthrough(args)?),
            "ttl" => {
                let [t] = args else { return Err(arg_err(d, opt, "one TTL in seconds")) };
                k.ttl = values::int_in(t, 0, 3600, "kubernetes: ttl")? as u32;
            }
            "ignore" => match args {
                // CoreDNS accepts a bare `ignore` and does nothing.
                [] => {}
                [a] if a.text == "empty_service" => k.ignore_empty_service = true,
                [a, ..] => return Err(a.err(format!("kubernetes: unable to parse ignore value: '{}'", a.text))),
            },
            "kubeconfig" => match args {
                [path] => k.kubeconfig = Some((anchored(cx.base, &path.text), None)),
                [path, ctx] => k.kubeconfig = Some((anchored(cx.base, &path.text), Some(ctx.text.clone()))),
                _ => return Err(arg_err(d, opt, "KUBECONFIG [CONTEXT]")),
            },
            "startup_timeout" => {
                let [t] = args else { return Err(arg_err(d, opt, "one duration")) };
                k.startup_timeout = values::duration(t)?;
            }
            "manifests" => {
                if args.is_empty() {
                    return Err(arg_err(d, opt, "at least one file or folder"));
                }
                k.manifests.extend(args.iter().map(|a| anchored(cx.base, &a.text)));
            }
            "service_cidr" => {
                let [c] = args else { return Err(arg_err(d, opt, "one CIDR")) };
                let net: ipnet::IpNet =
                    c.text.parse().map_err(|_| c.err(format!("kubernetes: invalid service_cidr {}", c.text)))?;
                k.service_cidr = net.trunc();
            }
            o if UNSUPPORTED.contains(&o) => return Err(unsupported(d, opt)),
            _ => return Err(unknown(d, opt)),
        }
    }
    if !k.namespaces.is_empty() && k.namespace_labels.is_some() {
        return Err(d.name.err("kubernetes: namespaces and namespace_labels cannot both be set"));
    }
    Ok(k)
}
