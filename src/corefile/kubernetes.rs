//! `kubernetes [ZONES...] { ... }` as plugin/kubernetes/setup.go reads it,
//! plus clusterdns's own `manifests` and `service_cidr`.

use std::time::Duration;

use super::config::*;
use super::plugins::{Ctx, arg_err, lines, unknown, unsupported};
use super::syntax::RawDirective;
use super::{CorefileError, anchored, values};

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
                check_selector(&sel).map_err(|e| {
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

/// A Kubernetes label selector as `metav1.ParseToLabelSelector` takes it:
/// comma-separated `key`, `!key`, `key=v`, `key==v`, `key!=v`,
/// `key in (v,...)`, `key notin (v,...)`.
fn check_selector(sel: &str) -> Result<(), String> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0i32, 0usize);
    for (i, c) in sel.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&sel[start..i]);
                start = i + 1;
            }
            _ => {}
        }
        if depth < 0 {
            return Err("unbalanced ')'".into());
        }
    }
    if depth != 0 {
        return Err("unclosed '('".into());
    }
    parts.push(&sel[start..]);
    for p in parts {
        requirement(p.trim())?;
    }
    Ok(())
}

fn requirement(r: &str) -> Result<(), String> {
    if let Some(key) = r.strip_prefix('!') {
        return label_key(key.trim());
    }
    for op in ["==", "!=", "="] {
        if let Some((k, v)) = r.split_once(op) {
            label_key(k.trim())?;
            return label_value(v.trim());
        }
    }
    for op in [" notin ", " in "] {
        if let Some((k, set)) = r.split_once(op) {
            label_key(k.trim())?;
            let set = set.trim();
            let Some(inner) = set.strip_prefix('(').and_then(|s| s.strip_suffix(')')) else {
                return Err(format!("expected '(' values ')' in \"{r}\""));
            };
            return inner.split(',').try_for_each(|v| label_value(v.trim()));
        }
    }
    label_key(r)
}

fn label_key(k: &str) -> Result<(), String> {
    let name = k.rsplit_once('/').map_or(k, |(_, n)| n);
    let ok_name = !name.is_empty() && name.len() <= 63 && label_chars(name);
    let ok_prefix = k.rsplit_once('/').is_none_or(|(p, _)| !p.is_empty() && p.len() <= 253 && label_chars(p));
    if ok_name && ok_prefix { Ok(()) } else { Err(format!("invalid label key \"{k}\"")) }
}

fn label_value(v: &str) -> Result<(), String> {
    if v.is_empty() || (v.len() <= 63 && label_chars(v)) { Ok(()) } else { Err(format!("invalid label value \"{v}\"")) }
}

fn label_chars(s: &str) -> bool {
    s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && s.starts_with(|c: char| c.is_ascii_alphanumeric())
        && s.ends_with(|c: char| c.is_ascii_alphanumeric())
}
