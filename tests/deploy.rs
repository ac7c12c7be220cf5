//! deploy/ is the drop-in for CoreDNS, checked with no cluster and no
//! container engine:
//!
//! - `kubectl kustomize deploy/` renders, every object parses into its
//!   k8s-openapi type with nothing dropped (a misspelt field fails), and the
//!   standalone Deployment runs as kubeadm's CoreDNS runs: its args, a
//!   ConfigMap holding kubeadm's Corefile mounted at /etc/coredns, probes
//!   and ports on what that Corefile opens, no RBAC beyond kubeadm's;
//! - deploy/Dockerfile's build stage copies everything Cargo needs to build,
//!   and gives the binary the file capability that lets the image's
//!   non-root user bind port 53;
//! - kubeadm's own CoreDNS Deployment and ConfigMap (tests/fixtures/kubeadm/)
//!   with only the image swapped run the binary, which serves, probes green,
//!   and ends cleanly on SIGTERM.

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use clusterdns::corefile::{self, Corefile, Plugin};
use common::{Transport, ask_within};
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{RData, RecordType};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Container, PodSpec, Probe, Service, ServiceAccount};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

const REPO: &str = env!("CARGO_MANIFEST_DIR");

/// Where kubeadm's CoreDNS Deployment points `-conf` (its ConfigMap's mount).
const CONF: &str = "/etc/coredns/Corefile";

fn rendered() -> Vec<Value> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy");
    let out = Command::new("kubectl").args(["kustomize", dir]).output().expect("kubectl runs");
    assert!(out.status.success(), "kubectl kustomize: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    yaml_serde::Deserializer::from_str(&text).map(|d| serde::Deserialize::deserialize(d).unwrap()).collect()
}

/// Parses `v` as `T` and checks that writing it back gives `v` again: a
/// field k8s-openapi does not know (a typo) would be dropped and differ.
fn typed<T: DeserializeOwned + Serialize>(v: &Value) -> T {
    let t: T = serde_json::from_value(v.clone()).unwrap_or_else(|e| panic!("{e}: {v}"));
    let back = serde_json::to_value(&t).unwrap();
    assert_eq!(&back, v, "fields lost in parsing (a typo?)");
    t
}

/// One of kubeadm's manifests in tests/fixtures/kubeadm/.
fn kubeadm<T: DeserializeOwned + Serialize>(file: &str) -> T {
    let text = std::fs::read_to_string(common::fixtures().join("kubeadm").join(file)).unwrap();
    typed(&yaml_serde::from_str::<Value>(&text).unwrap())
}

fn stock_corefile() -> String {
    std::fs::read_to_string(common::fixtures().join("corefiles/kubeadm.Corefile")).unwrap()
}

fn parse_corefile(text: &str, file: &Path) -> Corefile {
    let env = |_: &str| None;
    let opts = corefile::Options { default_port: 53, env: &env };
    corefile::parse_str(text, file, &opts).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

/// The addresses a Corefile's health, ready and prometheus open, and its
/// lame duck.
struct Admin {
    health: SocketAddr,
    lameduck: Duration,
    ready: SocketAddr,
    prometheus: SocketAddr,
}

fn admin(cf: &Corefile) -> Admin {
    let (mut health, mut ready, mut prometheus) = (None, None, None);
    for d in cf.blocks.iter().flat_map(|b| &b.plugins) {
        match &d.plugin {
            Plugin::Health(h) => health = Some((h.addr, h.lameduck)),
            Plugin::Ready(a) => ready = Some(*a),
            Plugin::Prometheus(a) => prometheus = Some(*a),
            _ => {}
        }
    }
    let (health, lameduck) = health.expect("health in the Corefile");
    Admin { health, lameduck, ready: ready.expect("ready"), prometheus: prometheus.expect("prometheus") }
}

/// The one container of a Deployment's pod.
fn pod(d: &Deployment) -> (&PodSpec, &Container) {
    let pod = d.spec.as_ref().unwrap().template.spec.as_ref().unwrap();
    assert_eq!(pod.containers.len(), 1, "one container");
    (pod, &pod.containers[0])
}

/// The path that follows `-conf` in the container's args.
fn conf_arg(c: &Container) -> &str {
    let args = c.args.as_deref().unwrap_or_default();
    let i = args.iter().position(|a| a == "-conf").expect("-conf in args");
    &args[i + 1]
}

/// Where the file at `path` in the container comes from, following the
/// volume mounts: (the ConfigMap's name, its key).
fn config_source(pod: &PodSpec, c: &Container, path: &str) -> (String, String) {
    let mounts = c.volume_mounts.as_deref().unwrap_or_default();
    let (mount, rest) = mounts
        .iter()
        .find_map(|m| Some((m, path.strip_prefix(&m.mount_path)?.strip_prefix('/')?)))
        .unwrap_or_else(|| panic!("{path} is on no volume mount"));
    assert_eq!(mount.read_only, Some(true), "the configuration is mounted read-only");
    let volume = pod.volumes.iter().flatten().find(|v| v.name == mount.name).expect("the mounted volume");
    let cm = volume.config_map.as_ref().expect("a ConfigMap volume");
    let item = cm.items.iter().flatten().find(|i| i.path == rest).unwrap_or_else(|| panic!("no item gives {rest}"));
    (cm.name.clone(), item.key.clone())
}

/// A probe's or a port's number, a named port looked up in the container.
fn port_number(c: &Container, port: &IntOrString) -> u16 {
    match port {
        IntOrString::Int(n) => *n as u16,
        IntOrString::String(name) => {
            let ports = c.ports.as_deref().unwrap_or_default();
            let p = ports.iter().find(|p| p.name.as_deref() == Some(name.as_str()));
            p.unwrap_or_else(|| panic!("no container port named {name}")).container_port as u16
        }
    }
}

fn probe_port(c: &Container, probe: &Option<Probe>, path: &str) -> u16 {
    let get = probe.as_ref().and_then(|p| p.http_get.as_ref()).expect("an HTTP probe");
    assert_eq!(get.path.as_deref(), Some(path));
    port_number(c, &get.port)
}

/// The container ports of `protocol` (TCP when unset) named `name`.
fn container_port(c: &Container, name: &str, protocol: &str) -> u16 {
    let ports = c.ports.as_deref().unwrap_or_default();
    let p =
        ports.iter().find(|p| p.name.as_deref() == Some(name) && p.protocol.as_deref().unwrap_or("TCP") == protocol);
    p.unwrap_or_else(|| panic!("no {protocol} container port {name}")).container_port as u16
}

/// What a ClusterRole grants: (API group, resource, verb).
fn grants(role: &ClusterRole) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for rule in role.rules.iter().flatten() {
        for group in rule.api_groups.iter().flatten() {
            for resource in rule.resources.iter().flatten() {
                for verb in &rule.verbs {
                    out.push((group.clone(), resource.clone(), verb.clone()));
                }
            }
        }
    }
    out.sort();
    out
}

#[test]
fn deploy_renders_and_parses() {
    let docs = rendered();
    let mut kinds: Vec<String> = Vec::new();
    let mut deployment = None;
    let mut service = None;
    let mut role = None;
    let mut configmap = None;
    for v in &docs {
        let kind = v["kind"].as_str().unwrap().to_string();
        match kind.as_str() {
            "ServiceAccount" => drop(typed::<ServiceAccount>(v)),
            "ClusterRole" => role = Some(typed::<ClusterRole>(v)),
            "ClusterRoleBinding" => drop(typed::<ClusterRoleBinding>(v)),
            "ConfigMap" => configmap = Some(typed::<ConfigMap>(v)),
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
        [
            "ClusterRole",
            "ClusterRoleBinding",
            "ConfigMap",
            "Deployment",
            "PodDisruptionBudget",
            "Service",
            "ServiceAccount"
        ]
    );

    // The kube-dns Service keeps its name, ClusterIP and label.
    let svc = service.unwrap();
    assert_eq!(svc.metadata.name.as_deref(), Some("kube-dns"));
    assert_eq!(svc.metadata.namespace.as_deref(), Some("kube-system"));
    let svc_spec = svc.spec.unwrap();
    assert_eq!(svc_spec.cluster_ip.as_deref(), Some("10.96.0.10"));
    assert_eq!(svc_spec.selector.clone().unwrap().get("k8s-app").map(String::as_str), Some("kube-dns"));

    // Only list and watch, on exactly what the watchers read, and nothing
    // kubeadm's CoreDNS role does not grant already (so swapping the image
    // needs no new RBAC).
    let role = role.unwrap();
    let mut granted: Vec<String> = Vec::new();
    for rule in role.rules.clone().unwrap() {
        assert_eq!(rule.verbs, ["list", "watch"]);
        granted.extend(rule.resources.unwrap());
    }
    granted.sort();
    assert_eq!(granted, ["endpointslices", "namespaces", "pods", "services"]);
    let theirs = grants(&kubeadm::<ClusterRole>("coredns-clusterrole.yaml"));
    for g in grants(&role) {
        assert!(theirs.contains(&g), "kubeadm's system:coredns does not grant {g:?}");
    }

    // The Deployment: labels the Service selects, hardening, as before.
    let d = deployment.unwrap();
    let spec = d.spec.clone().unwrap();
    assert_eq!(spec.replicas, Some(2));
    assert_eq!(spec.template.metadata.unwrap().labels.unwrap().get("k8s-app").map(String::as_str), Some("kube-dns"));
    let (pod, c) = pod(&d);
    assert_eq!(pod.priority_class_name.as_deref(), Some("system-cluster-critical"));
    assert!(pod.affinity.as_ref().unwrap().pod_anti_affinity.is_some());
    assert_eq!(pod.dns_policy.as_deref(), Some("Default"), "the DNS server must not resolve through itself");
    assert_eq!(pod.security_context.as_ref().unwrap().run_as_non_root, Some(true));
    let limits = c.resources.clone().unwrap();
    assert!(limits.requests.unwrap().contains_key("memory") && limits.limits.unwrap().contains_key("memory"));

    // ... and it runs exactly as kubeadm's CoreDNS runs: the same args and
    // container security context, the Corefile from a ConfigMap mounted
    // the same way.
    let theirs: Deployment = kubeadm("coredns-deployment.yaml");
    let (their_pod, their_c) = self::pod(&theirs);
    assert_eq!(c.args.as_deref(), Some(&["-conf".to_string(), CONF.to_string()][..]));
    assert_eq!(c.args, their_c.args, "kubeadm's args");
    assert_eq!(c.command, None, "the image's ENTRYPOINT, as kubeadm relies on");
    assert_eq!(c.security_context, their_c.security_context, "kubeadm's container security context");
    let sc = c.security_context.clone().unwrap();
    assert_eq!(sc.read_only_root_filesystem, Some(true));
    assert_eq!(sc.allow_privilege_escalation, Some(false));
    let caps = sc.capabilities.unwrap();
    assert_eq!(caps.drop.unwrap(), ["ALL"]);
    assert_eq!(caps.add.unwrap(), ["NET_BIND_SERVICE"]);
    assert_eq!(c.volume_mounts, their_c.volume_mounts, "mounted where kubeadm mounts it");
    let (cm_name, key) = config_source(pod, c, conf_arg(c));
    assert_eq!(config_source(their_pod, their_c, conf_arg(their_c)), ("coredns".to_string(), key.clone()));
    let cm = configmap.unwrap();
    assert_eq!(cm.metadata.name.as_deref(), Some(cm_name.as_str()), "the ConfigMap the Deployment mounts");
    assert_eq!(cm.metadata.namespace.as_deref(), Some("kube-system"));
    let text = cm.data.unwrap().remove(&key).expect("the Corefile key");
    assert_eq!(text, stock_corefile(), "kubeadm's Corefile (tests/fixtures/corefiles/kubeadm.Corefile)");

    // The Corefile parses, and the probes, ports and Service use what it
    // opens.
    let cf = parse_corefile(&text, Path::new(CONF));
    let a = admin(&cf);
    assert_eq!(probe_port(c, &c.liveness_probe, "/health"), a.health.port());
    assert_eq!(container_port(c, "liveness-probe", "TCP"), a.health.port());
    assert_eq!(probe_port(c, &c.readiness_probe, "/ready"), a.ready.port());
    assert_eq!(container_port(c, "readiness-probe", "TCP"), a.ready.port());
    assert_eq!(container_port(c, "metrics", "TCP"), a.prometheus.port());
    assert!(a.health.ip().is_unspecified() && a.ready.ip().is_unspecified() && a.prometheus.ip().is_unspecified());
    let dns: Vec<u16> = cf.blocks.iter().flat_map(|b| b.keys.iter().map(|k| k.port)).collect();
    assert_eq!(dns, [container_port(c, "dns", "UDP")]);
    assert_eq!(dns, [container_port(c, "dns-tcp", "TCP")]);
    for p in svc_spec.ports.unwrap() {
        let target = port_number(c, p.target_port.as_ref().unwrap());
        let want = if p.name.as_deref() == Some("metrics") { a.prometheus.port() } else { dns[0] };
        assert_eq!(target, want, "Service port {:?}", p.name);
    }
    assert!(a.lameduck.as_secs() < pod.termination_grace_period_seconds.unwrap() as u64);
}

// ---------------------------------------------------------------------------
// deploy/Dockerfile, read as Docker reads it.

struct Instruction {
    op: String,
    args: String,
}

struct Stage {
    name: Option<String>,
    base: String,
    body: Vec<Instruction>,
}

/// The stages of deploy/Dockerfile: comment lines dropped, continuation
/// lines joined, instructions split into their keyword and the rest.
fn dockerfile() -> Vec<Stage> {
    let text = std::fs::read_to_string(Path::new(REPO).join("deploy/Dockerfile")).unwrap();
    let mut lines = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with('#') || t.is_empty() {
            continue;
        }
        match t.strip_suffix('\\') {
            Some(part) => {
                current.push_str(part);
                current.push(' ');
            }
            None => {
                current.push_str(t);
                lines.push(std::mem::take(&mut current));
            }
        }
    }
    assert!(current.is_empty(), "the Dockerfile ends in a continuation");
    let mut stages: Vec<Stage> = Vec::new();
    for line in lines {
        let (op, args) = line.split_once(char::is_whitespace).unwrap_or((&line, ""));
        let (op, args) = (op.to_ascii_uppercase(), args.trim().to_string());
        if op == "FROM" {
            let words: Vec<&str> = args.split_whitespace().filter(|w| !w.starts_with("--")).collect();
            let name = match words[..] {
                [_, as_, name] if as_.eq_ignore_ascii_case("as") => Some(name.to_string()),
                [_] => None,
                _ => panic!("FROM {args}"),
            };
            stages.push(Stage { name, base: words[0].to_string(), body: Vec::new() });
        } else {
            stages.last_mut().expect("FROM first").body.push(Instruction { op, args });
        }
    }
    stages
}

/// `COPY [--flag...] SRC... DEST` (shell or JSON form): (flags, sources, dest).
fn copy_args(args: &str) -> (Vec<String>, Vec<String>, String) {
    let mut words: Vec<String> = args.split_whitespace().map(String::from).collect();
    let flags: Vec<String> = words.iter().take_while(|w| w.starts_with("--")).cloned().collect();
    words.drain(..flags.len());
    if words.first().is_some_and(|w| w.starts_with('[')) {
        words = serde_json::from_str(&words.join(" ")).expect("COPY in JSON form");
    }
    let dest = words.pop().expect("COPY DEST");
    assert!(!words.is_empty(), "COPY without a source");
    (flags, words, dest)
}

/// The commands of a RUN, split at `&&`, `||` and `;`, each as its words.
fn commands(run: &str) -> Vec<Vec<String>> {
    run.replace("&&", ";")
        .replace("||", ";")
        .split(';')
        .map(|c| c.split_whitespace().map(String::from).collect::<Vec<_>>())
        .filter(|c| !c.is_empty())
        .collect()
}

/// The stage the final one copies its files from (by name), and the final.
fn build_and_final(stages: &[Stage]) -> (&Stage, &Stage) {
    let last = stages.last().expect("a stage");
    let from = last
        .body
        .iter()
        .filter(|i| i.op == "COPY")
        .find_map(|i| copy_args(&i.args).0.iter().find_map(|f| f.strip_prefix("--from=").map(String::from)))
        .expect("the final stage copies from a build stage");
    let build = stages.iter().find(|s| s.name.as_deref() == Some(from.as_str())).expect("the named build stage");
    (build, last)
}

/// `path` in the image, relative ones under `workdir`.
fn in_image(workdir: &Path, path: &str) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in workdir.join(path).components() {
        match c {
            std::path::Component::ParentDir => drop(out.pop()),
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

fn copy_tree(from: &Path, to: &Path) {
    if from.is_dir() {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            copy_tree(&entry.path(), &to.join(entry.file_name()));
        }
    } else {
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(from, to).unwrap();
    }
}

/// Every `include_str!`, `include_bytes!` and `#[path]` literal in the Rust
/// files under `dir`: (the file, the path it names).
fn included_files(dir: &Path, out: &mut Vec<(PathBuf, String)>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            included_files(&path, out);
            continue;
        }
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        for marker in ["include_str!(\"", "include_bytes!(\"", "#[path = \""] {
            for (i, _) in text.match_indices(marker) {
                let rest = &text[i + marker.len()..];
                let end = rest.find('"').expect("a closed literal");
                out.push((path.clone(), rest[..end].to_string()));
            }
        }
    }
}

/// The build stage's COPY lines, done from this repository into a folder
/// as Docker does them into the image: what `cargo build` then sees. The
/// old Dockerfile copied no `benches/`, and Cargo stopped at once (`can't
/// find `api` bench`) on the [[bench]] targets Cargo.toml declares. Only
/// commands that load the package as a build does report that: `cargo
/// metadata` and `cargo read-manifest` list the targets they find and
/// succeed; `cargo fetch` fails as `cargo build` does, and compiles nothing.
#[test]
fn dockerfile_copies_what_cargo_needs() {
    let stages = dockerfile();
    let (build, _) = build_and_final(&stages);
    let tmp = tempfile::tempdir().unwrap();
    let mut workdir = PathBuf::from("/");
    let mut build_dir = None;
    let mut build_cmd = Vec::new();
    let mut copied = Vec::new();
    for i in &build.body {
        match i.op.as_str() {
            "WORKDIR" => workdir = in_image(&workdir, &i.args),
            "COPY" | "ADD" => {
                let (flags, sources, dest) = copy_args(&i.args);
                assert!(flags.is_empty(), "build stage COPY {flags:?}: only files of the repository");
                let dest = in_image(&workdir, &dest);
                let into_dir = sources.len() > 1 || i.args.trim_end().ends_with('/');
                for src in sources {
                    assert!(!src.contains(['*', '?', '[']), "no patterns: {src}");
                    let from = Path::new(REPO).join(&src);
                    assert!(from.exists(), "COPY {src}: not in the repository");
                    let rel = dest.strip_prefix("/").unwrap();
                    let to = if from.is_file() && into_dir {
                        tmp.path().join(rel).join(from.file_name().unwrap())
                    } else {
                        tmp.path().join(rel)
                    };
                    copy_tree(&from, &to);
                    copied.push(src);
                }
            }
            "RUN" => {
                let run = commands(&i.args);
                if let Some(c) = run.into_iter().find(|c| c.len() > 1 && c[0] == "cargo" && c[1] == "build") {
                    build_dir = Some(workdir.clone());
                    build_cmd = c;
                }
            }
            _ => {}
        }
    }
    let build_dir = build_dir.expect("the build stage runs cargo build");
    let root = tmp.path().join(build_dir.strip_prefix("/").unwrap());
    let manifest = root.join("Cargo.toml");
    assert!(manifest.is_file(), "cargo build runs in {} where no Cargo.toml was copied", build_dir.display());

    // Cargo loads the package as the build does, with the build's --locked
    // and --target: every declared target found, the lock file there and
    // current, every dependency's version pinned (offline: from the cache
    // this test's own build filled).
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let run = |args: &[&str]| {
        let out = Command::new(&cargo).args(args).arg("--manifest-path").arg(&manifest).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "cargo {args:?} on the copied {copied:?}:\n{err}");
        out.stdout
    };
    let mut fetch = vec!["fetch", "--offline"];
    for (i, w) in build_cmd.iter().enumerate() {
        match w.as_str() {
            "--locked" | "--frozen" => fetch.push(w),
            "--target" => fetch.extend(["--target", build_cmd[i + 1].as_str()]),
            _ if w.starts_with("--target=") => fetch.push(w),
            _ => {}
        }
    }
    assert!(fetch.contains(&"--locked"), "the image builds from Cargo.lock: cargo build --locked");
    run(&fetch);
    let meta: Value =
        serde_json::from_slice(&run(&["metadata", "--no-deps", "--format-version", "1", "--offline"])).unwrap();

    // What `cargo build` compiles (the lib and the bins) is all there,
    // files they include too.
    let mut dirs = Vec::new();
    for t in meta["packages"][0]["targets"].as_array().unwrap() {
        let kinds: Vec<&str> = t["kind"].as_array().unwrap().iter().map(|k| k.as_str().unwrap()).collect();
        let src = PathBuf::from(t["src_path"].as_str().unwrap());
        assert!(src.is_file(), "{} missing from the copy", src.display());
        if kinds.iter().any(|k| ["lib", "bin"].contains(k)) {
            dirs.push(src.parent().unwrap().to_path_buf());
        }
    }
    dirs.sort();
    dirs.dedup();
    assert!(!dirs.is_empty());
    let mut included = Vec::new();
    for d in &dirs {
        included_files(d, &mut included);
    }
    assert!(!included.is_empty(), "the demo cluster is include_str!'d");
    for (file, path) in included {
        let target = file.parent().unwrap().join(&path);
        assert!(target.exists(), "{} includes {path}, not copied", file.display());
    }

    // A Dockerfile-specific .dockerignore lets in exactly what the build
    // stage copies (the context is the repository, target/ included).
    let ignore = std::fs::read_to_string(Path::new(REPO).join("deploy/Dockerfile.dockerignore")).unwrap();
    let patterns: Vec<&str> = ignore.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).collect();
    assert_eq!(patterns.first(), Some(&"*"), "an allow list: everything out first");
    let mut allowed: Vec<String> = patterns[1..]
        .iter()
        .map(|p| p.strip_prefix('!').unwrap_or_else(|| panic!("{p}: only `!PATH` after `*`")).to_string())
        .collect();
    allowed.sort();
    copied.sort();
    assert_eq!(allowed, copied, "deploy/Dockerfile.dockerignore lets in what COPY copies");
}

/// The image runs as a non-root user, as CoreDNS's does; binding port 53
/// then needs the file capability cap_net_bind_service on the binary (the
/// Deployment's `capabilities.add: [NET_BIND_SERVICE]` only permits it).
/// The old Dockerfile set none: the pod could not bind :53.
#[test]
fn dockerfile_binary_binds_53_as_non_root() {
    let stages = dockerfile();
    let (build, last) = build_and_final(&stages);
    // glibc, as every figure is measured with, from the same Debian release
    // in both stages (the binary runs with the glibc it was linked with).
    assert!(last.base.starts_with("gcr.io/distroless/cc-debian12"), "final base {}", last.base);
    assert!(build.base.ends_with("-bookworm"), "build base {}: Debian 12, as the final stage", build.base);
    for i in &build.body {
        assert!(!i.args.contains("musl"), "{} {}: the image is glibc, not musl", i.op, i.args);
    }

    // The build stage: libcap2-bin installed, setcap on the stripped binary
    // with nothing rewriting it afterwards (a new file has no capability).
    let mut workdir = PathBuf::from("/");
    let mut libcap = false;
    let mut capped: Option<PathBuf> = None;
    for i in &build.body {
        match i.op.as_str() {
            "WORKDIR" => workdir = in_image(&workdir, &i.args),
            "RUN" => {
                for c in commands(&i.args) {
                    if c[0] == "apt-get" && c.iter().any(|w| w == "install") {
                        libcap |= c.iter().any(|w| w == "libcap2-bin");
                    }
                    if c[0] == "setcap" {
                        assert_eq!(c.len(), 3, "setcap CAPS FILE: {c:?}");
                        assert_eq!(c[1], "cap_net_bind_service=+ep");
                        assert!(libcap, "setcap before libcap2-bin is installed");
                        capped = Some(in_image(&workdir, &c[2]));
                    } else if let Some(p) = &capped {
                        let names = c.iter().skip(1).any(|w| in_image(&workdir, w) == *p);
                        assert!(!names || c[0] == "getcap", "{c:?} after setcap: the capability may be lost");
                    }
                }
            }
            "COPY" if capped.is_some() => {
                let dest = in_image(&workdir, &copy_args(&i.args).2);
                assert!(!capped.as_ref().unwrap().starts_with(&dest), "COPY over the capped binary");
            }
            _ => {}
        }
    }
    let capped = capped.expect("the build stage runs setcap cap_net_bind_service=+ep");

    // The final stage copies that very file (COPY keeps its extended
    // attributes, the capability among them), runs it, as non-root.
    let mut binary = None;
    let (mut user, mut entrypoint, mut cmd) = (None, None, None);
    for i in &last.body {
        match i.op.as_str() {
            "COPY" => {
                let (flags, sources, dest) = copy_args(&i.args);
                assert_eq!(flags, [format!("--from={}", build.name.as_deref().unwrap())]);
                assert_eq!(sources.len(), 1);
                if Path::new(&sources[0]) == capped {
                    binary = Some(dest);
                }
            }
            "USER" => user = Some(i.args.clone()),
            "ENTRYPOINT" => entrypoint = Some(serde_json::from_str::<Vec<String>>(&i.args).expect("exec form")),
            "CMD" => cmd = Some(serde_json::from_str::<Vec<String>>(&i.args).expect("exec form")),
            _ => {}
        }
    }
    let binary = binary.unwrap_or_else(|| panic!("the final stage does not COPY {}", capped.display()));
    assert_eq!(entrypoint, Some(vec![binary.clone()]), "ENTRYPOINT runs the capped binary");
    assert_eq!(binary, "/clusterdns");
    // Numeric: the kubelet checks runAsNonRoot only against a numeric user.
    let user = user.expect("a USER in the final stage");
    let uid = user.split(':').next().unwrap();
    assert!(uid.parse::<u32>().is_ok_and(|u| u != 0), "USER {user}: numeric and not root");
    // With no args the image does what kubeadm's Deployment asks for.
    let theirs: Deployment = kubeadm("coredns-deployment.yaml");
    assert_eq!(cmd.as_ref(), pod(&theirs).1.args.as_ref(), "CMD is kubeadm's args");
}

// ---------------------------------------------------------------------------
// kubeadm's CoreDNS, image swapped.

type Server = common::Process;
use common::free_port;

/// A plain HTTP/1.1 GET: the status, None when nothing answers.
fn get(addr: SocketAddr, path: &str) -> Option<u16> {
    common::http_get(addr, path)?.split_whitespace().nth(1)?.parse().ok()
}

/// The paths of two JSON values where they differ.
fn differences(a: &Value, b: &Value, at: String, out: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for k in keys {
                let (p, q) = (x.get(k).unwrap_or(&Value::Null), y.get(k).unwrap_or(&Value::Null));
                differences(p, q, format!("{at}.{k}"), out);
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (p, q)) in x.iter().zip(y).enumerate() {
                differences(p, q, format!("{at}[{i}]"), out);
            }
        }
        _ if a != b => out.push(at),
        _ => {}
    }
}

/// kubeadm's Corefile made to run unprivileged on loopback: the DNS port,
/// the health, ready and prometheus addresses and the resolv.conf path
/// rewritten, each line exactly once, and one line added: `manifests`, as
/// there is no cluster (the fixture manifests stand for it). Every other
/// line is kubeadm's.
fn rewrite(text: &str, dns: u16, admin: [u16; 3], resolv: &Path, fixtures: &Path) -> String {
    let [health, ready, prometheus] = admin;
    let mut rules: BTreeMap<&str, (String, Option<String>)> = BTreeMap::new();
    rules.insert(".:53 {", (format!(".:{dns} {{"), None));
    rules.insert("health {", (format!("health 127.0.0.1:{health} {{"), None));
    rules.insert("ready", (format!("ready 127.0.0.1:{ready}"), None));
    rules.insert("prometheus :9153", (format!("prometheus 127.0.0.1:{prometheus}"), None));
    rules.insert("forward . /etc/resolv.conf {", (format!("forward . {} {{", resolv.display()), None));
    let kube = "kubernetes cluster.local in-addr.arpa ip6.arpa {";
    rules.insert(kube, (kube.to_string(), Some(format!("   manifests {}", fixtures.display()))));
    let mut used = Vec::new();
    let mut out = String::new();
    for line in text.lines() {
        let indent = &line[..line.len() - line.trim_start().len()];
        match rules.get(line.trim()) {
            Some((new, added)) => {
                used.push(line.trim());
                out.push_str(&format!("{indent}{new}\n"));
                if let Some(added) = added {
                    out.push_str(&format!("{indent}{added}\n"));
                }
            }
            None => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    used.sort();
    assert_eq!(used, rules.keys().copied().collect::<Vec<_>>(), "each rewritten line found once");
    out
}

#[test]
fn kubeadm_coredns_deployment_runs_clusterdns() {
    // kubeadm's Deployment with the image swapped, and nothing else.
    let theirs: Deployment = kubeadm("coredns-deployment.yaml");
    let mut ours = theirs.clone();
    ours.spec.as_mut().unwrap().template.spec.as_mut().unwrap().containers[0].image = Some("clusterdns:test".into());
    let mut changed = Vec::new();
    differences(
        &serde_json::to_value(&theirs).unwrap(),
        &serde_json::to_value(&ours).unwrap(),
        String::new(),
        &mut changed,
    );
    assert_eq!(changed, [".spec.template.spec.containers[0].image"]);
    let (pod, c) = pod(&ours);
    assert_eq!(c.command, None, "the image's ENTRYPOINT runs");
    let args = c.args.clone().unwrap();

    // The ConfigMap, mounted into a folder as the kubelet would: the file
    // `-conf` names, through the volume mount, is the ConfigMap's key.
    let cm: ConfigMap = kubeadm("coredns-configmap.yaml");
    let conf = conf_arg(c).to_string();
    let (name, key) = config_source(pod, c, &conf);
    assert_eq!(cm.metadata.name.as_deref(), Some(name.as_str()));
    let text = cm.data.unwrap().remove(&key).expect("the mounted key");
    assert_eq!(text, stock_corefile(), "kubeadm's Corefile (tests/fixtures/corefiles/kubeadm.Corefile)");

    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let resolv = root.join("resolv.conf");
    std::fs::write(&resolv, "nameserver 127.0.0.1\n").unwrap();
    let (dns, admin_ports) = (free_port(), [free_port(), free_port(), free_port()]);
    let corefile = rewrite(&text, dns, admin_ports, &resolv, &common::fixtures());
    let lameduck = admin(&parse_corefile(&text, Path::new(CONF))).lameduck;
    assert_eq!(lameduck, Duration::from_secs(5), "kubeadm's lame duck");
    let mounted = root.join(conf.trim_start_matches('/'));
    std::fs::create_dir_all(mounted.parent().unwrap()).unwrap();
    std::fs::write(&mounted, &corefile).unwrap();

    // The Deployment's args exactly, the Corefile's path moved under the
    // folder; no environment (kubeadm sets none).
    let mounted_s = mounted.display().to_string();
    let argv: Vec<String> = args.iter().map(|a| if *a == conf { mounted_s.clone() } else { a.clone() }).collect();
    assert_eq!(argv.iter().filter(|a| **a == mounted_s).count(), 1);
    let log = root.join("server.log");
    let mut server = Server {
        child: Command::new(env!("CARGO_BIN_EXE_clusterdns"))
            .args(&argv)
            .env_clear()
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("the binary starts"),
        log,
        dir: None,
    };

    let loopback = |port: u16| SocketAddr::from(([127, 0, 0, 1], port));
    let [health, ready, prometheus] = admin_ports.map(loopback);
    let dns = loopback(dns);
    let start = Instant::now();
    while get(ready, "/ready") != Some(200) {
        if let Some(status) = server.child.try_wait().unwrap() {
            panic!("exited ({status}) before ready:\n{}\n{corefile}", server.log());
        }
        assert!(start.elapsed() < Duration::from_secs(30), "never ready:\n{}", server.log());
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(get(health, "/health"), Some(200), "liveness probe");
    assert_eq!(get(ready, "/ready"), Some(200), "readiness probe");
    assert_eq!(get(prometheus, "/metrics"), Some(200), "metrics");
    // One path per port, as CoreDNS's plugins serve them.
    assert_eq!(get(health, "/metrics"), Some(404), "metrics are not on the liveness port");
    assert_eq!(get(prometheus, "/ready"), Some(404), "readiness is not on the metrics port");

    let ask = |name: &str| ask_within(dns, name, RecordType::A, Transport::Udp, None, Duration::from_secs(5));
    let m = ask("kafka.default.svc.cluster.local.");
    assert_eq!(m.metadata.response_code, ResponseCode::NoError, "{}", server.log());
    assert!(!m.answers.is_empty(), "kafka has an address");
    assert!(m.answers.iter().all(|r| matches!(r.data, RData::A(_))), "{:?}", m.answers);
    let m = ask("nope.default.svc.cluster.local.");
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    // The `server` label as CoreDNS writes it for `.:53` (no bind), the
    // same on the request counters and the cache's; cache zones as its.
    let text = common::http_get(prometheus, "/metrics").unwrap_or_default();
    let label = format!("server=\"dns://:{}\"", dns.port());
    for prefix in ["coredns_dns_requests_total{", "coredns_cache_entries{", "coredns_plugin_enabled{"] {
        let line = text.lines().find(|l| l.starts_with(prefix)).unwrap_or_default();
        assert!(line.contains(&label), "{prefix}: {line:?}, want {label}");
    }
    let entries = format!("coredns_cache_entries{{{label},type=\"success\",zones=\".\",view=\"\"}}");
    assert!(text.contains(&entries), "{text}");

    // SIGTERM, as the kubelet stops a pod: DNS answers through the lame
    // duck, then the process exits 0.
    let term = Command::new("kill").args(["-TERM", &server.child.id().to_string()]).status().unwrap();
    assert!(term.success());
    let stopped = Instant::now();
    let m = ask("kafka.default.svc.cluster.local.");
    assert_eq!(m.metadata.response_code, ResponseCode::NoError, "answers in the lame duck");
    let status = loop {
        if let Some(s) = server.child.try_wait().unwrap() {
            break s;
        }
        assert!(stopped.elapsed() < lameduck + Duration::from_secs(5), "still running:\n{}", server.log());
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(0), "{}", server.log());
    assert!(stopped.elapsed() >= lameduck - Duration::from_secs(1), "left before the lame duck ended");
}
