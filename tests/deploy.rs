//! deploy/ renders with `kubectl kustomize`, every rendered object parses
//! into its k8s-openapi type with nothing dropped (a misspelt field fails),
//! and the pieces agree with each other and with the binary's flags.

use std::process::Command;

use clap::Parser;
use clusterdns::config::{Cli, Command as Sub};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Service, ServiceAccount};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

fn rendered() -> Vec<Value> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy");
    let out = Command::new("kubectl").args(["kustomize", dir]).output().expect("kubectl runs");
    assert!(out.status.success(), "kubectl kustomize: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    serde_saphyr::from_multiple::<Value>(&text).unwrap()
}

/// Parses `v` as `T` and checks that writing it back gives `v` again: a
/// field k8s-openapi does not know (a typo) would be dropped and differ.
fn typed<T: DeserializeOwned + Serialize>(v: &Value) -> T {
    let t: T = serde_json::from_value(v.clone()).unwrap_or_else(|e| panic!("{e}: {v}"));
    let back = serde_json::to_value(&t).unwrap();
    assert_eq!(&back, v, "fields lost in parsing (a typo?)");
    t
}

#[test]
fn deploy_renders_and_parses() {
    let docs = rendered();
    let mut kinds: Vec<String> = Vec::new();
    let mut deployment = None;
    let mut service = None;
    let mut role = None;
    for v in &docs {
        let kind = v["kind"].as_str().unwrap().to_string();
        match kind.as_str() {
            "ServiceAccount" => drop(typed::<ServiceAccount>(v)),
            "ClusterRole" => role = Some(typed::<ClusterRole>(v)),
            "ClusterRoleBinding" => drop(typed::<ClusterRoleBinding>(v)),
            "Deployment" => deployment = Some(typed::<Deployment>(v)),
            "PodDisruptionBudget" => drop(typed::<PodDisruptionBudget>(v)),
            "Service" => service = Some(typed::<Service>(v)),
            other => panic!("unexpected kind {other}"),
        }
        kinds.push(kind);
    }
    kinds.sort();
    assert_eq!(
        kinds,
        ["ClusterRole", "ClusterRoleBinding", "Deployment", "PodDisruptionBudget", "Service", "ServiceAccount"]
    );

    // The kube-dns Service keeps its name, ClusterIP and label.
    let svc = service.unwrap();
    assert_eq!(svc.metadata.name.as_deref(), Some("kube-dns"));
    assert_eq!(svc.metadata.namespace.as_deref(), Some("kube-system"));
    let spec = svc.spec.unwrap();
    assert_eq!(spec.cluster_ip.as_deref(), Some("10.96.0.10"));
    assert_eq!(spec.selector.unwrap().get("k8s-app").map(String::as_str), Some("kube-dns"));

    // Only list and watch, on exactly what the watchers read.
    let mut granted: Vec<String> = Vec::new();
    for rule in role.unwrap().rules.unwrap() {
        assert_eq!(rule.verbs, ["list", "watch"]);
        for r in rule.resources.unwrap() {
            granted.push(r);
        }
    }
    granted.sort();
    assert_eq!(granted, ["endpointslices", "namespaces", "pods", "services"]);

    // The Deployment: labels the Service selects, hardening, probes on the
    // ports the binary's flags open, args the binary accepts.
    let d = deployment.unwrap();
    let spec = d.spec.unwrap();
    assert_eq!(spec.replicas, Some(2));
    let pod = spec.template.spec.unwrap();
    assert_eq!(spec.template.metadata.unwrap().labels.unwrap().get("k8s-app").map(String::as_str), Some("kube-dns"));
    assert_eq!(pod.priority_class_name.as_deref(), Some("system-cluster-critical"));
    assert!(pod.affinity.unwrap().pod_anti_affinity.is_some());
    let c = &pod.containers[0];
    let sc = c.security_context.clone().unwrap();
    assert_eq!(sc.read_only_root_filesystem, Some(true));
    assert_eq!(sc.allow_privilege_escalation, Some(false));
    let caps = sc.capabilities.unwrap();
    assert_eq!(caps.drop.unwrap(), ["ALL"]);
    assert_eq!(caps.add.unwrap(), ["NET_BIND_SERVICE"]);
    assert_eq!(pod.security_context.unwrap().run_as_non_root, Some(true));
    let limits = c.resources.clone().unwrap();
    assert!(limits.requests.unwrap().contains_key("memory") && limits.limits.unwrap().contains_key("memory"));
    let mut argv = vec!["clusterdns".to_string()];
    argv.extend(c.args.clone().unwrap());
    let cli = Cli::try_parse_from(&argv).unwrap_or_else(|e| panic!("deployment args: {e}"));
    let Sub::Serve(args) = cli.command else { panic!("not serve") };
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
    let port =
        |p: &Option<k8s_openapi::api::core::v1::Probe>| match &p.as_ref().unwrap().http_get.as_ref().unwrap().port {
            IntOrString::Int(n) => *n as u16,
            IntOrString::String(s) => panic!("named probe port {s}"),
        };
    assert_eq!(Some(port(&c.liveness_probe)), args.health.0.map(|a| a.port()));
    assert_eq!(Some(port(&c.readiness_probe)), args.ready.0.map(|a| a.port()));
    assert!(args.lameduck < pod.termination_grace_period_seconds.unwrap() as u64);
}
