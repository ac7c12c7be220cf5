//! The command line, parsed into typed configuration.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use ipnet::IpNet;

use crate::model::Selector;
use crate::records::PodMode;

#[derive(Parser, Debug)]
#[command(
    name = "clusterdns",
    version,
    about = "Kubernetes cluster DNS: answers <svc>.<ns>.svc.<zone> from the API or from manifest files"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Serve the cluster zone over UDP and TCP.
    Serve(Box<ServeArgs>),
    /// Print the zone snapshot (SPEC.md 5) of a set of manifests and exit.
    Zone(ZoneArgs),
    /// Serve a bundled demo cluster on 127.0.0.1:1053 and print dig commands to try.
    Demo(DemoArgs),
    /// Say why a name answers what it does: the answer, the objects that
    /// made it, or what is missing and the likely fix.
    Explain(ExplainArgs),
    /// Find what leaves names unanswered: Services that answer nothing,
    /// Endpoints and EndpointSlices that bind to no Service, per-pod names
    /// that cannot resolve. Exits 1 when it finds any.
    Check(CheckArgs),
}

#[derive(Args, Debug)]
pub struct CheckArgs {
    /// A manifest file or a directory of *.yaml, *.yml, *.json (repeatable).
    /// Without it, the cluster the API serves.
    #[arg(long, value_name = "PATH")]
    pub manifests: Vec<PathBuf>,
    /// Kubeconfig to reach the API with (when no manifests are given).
    /// Default: in-cluster, else KUBECONFIG, else ~/.kube/config.
    #[arg(long, value_name = "PATH", conflicts_with = "manifests")]
    pub kubeconfig: Option<PathBuf>,
    /// text, or json (a list).
    #[arg(long, default_value = "text", value_parser = ["text", "json"])]
    pub format: String,
    #[command(flatten)]
    pub zone: ZoneFlags,
}

#[derive(Args, Debug)]
pub struct ExplainArgs {
    /// The name asked, e.g. my-svc.my-ns.svc.cluster.local.
    pub name: String,
    /// The record type asked (A, AAAA, SRV, PTR, CNAME, ...).
    #[arg(default_value = "A")]
    pub qtype: String,
    /// A manifest file or a directory of *.yaml, *.yml, *.json (repeatable).
    /// Without it (and without --server), the cluster the API serves.
    #[arg(long, value_name = "PATH", conflicts_with = "server")]
    pub manifests: Vec<PathBuf>,
    /// Kubeconfig to reach the API with (when neither manifests nor a
    /// server are given). Default: in-cluster, else KUBECONFIG, else
    /// ~/.kube/config.
    #[arg(long, value_name = "PATH", conflicts_with_all = ["manifests", "server"])]
    pub kubeconfig: Option<PathBuf>,
    /// Ask a running server instead (its metrics address, started with
    /// --explain): the process that is answering, with its live state.
    #[arg(long, value_name = "ADDR")]
    pub server: Option<String>,
    /// Ask NAME as a pod of this namespace would: through the search path
    /// (<ns>.svc.<zone> svc.<zone> <zone>, ndots:5), each question in turn.
    #[arg(long, value_name = "NAMESPACE")]
    pub from_namespace: Option<String>,
    /// text, or json (one object; a list of them with --from-namespace).
    #[arg(long, default_value = "text", value_parser = ["text", "json"])]
    pub format: String,
    #[command(flatten)]
    pub zone: ZoneFlags,
}

#[derive(Args, Debug, Clone)]
pub struct ZoneFlags {
    /// The cluster domain.
    #[arg(long, default_value = "cluster.local", value_name = "DOMAIN")]
    pub zone: String,
    /// TTL of the records, in seconds (0..=3600).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(0..=3600))]
    pub ttl: u32,
    /// Answers for <a>-<b>-<c>-<d>.<ns>.pod.<zone>.
    #[arg(long, value_name = "disabled|insecure|verified", default_value = "disabled", value_parser = pod_mode)]
    pub pods: PodMode,
    /// Where ClusterIPs come from for manifest Services that have none.
    #[arg(long, default_value = "10.96.0.0/12", value_name = "CIDR")]
    pub service_cidr: IpNet,
}

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Serve these manifest files or directories of *.yaml, *.yml, *.json
    /// (repeatable; reloaded when they change) instead of the Kubernetes API.
    #[arg(long, value_name = "PATH")]
    pub manifests: Vec<PathBuf>,
    /// Kubeconfig to reach the API with. Default: the in-cluster service
    /// account, else KUBECONFIG, else ~/.kube/config.
    #[arg(long, value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,
    /// Serve only these namespaces (comma-separated or repeated), as
    /// CoreDNS's `namespaces` option.
    #[arg(long, value_name = "NS", value_delimiter = ',')]
    pub namespaces: Vec<String>,
    /// Serve only Services (and their EndpointSlices) matching this label
    /// selector, as CoreDNS's `labels` option.
    #[arg(long, value_name = "SELECTOR")]
    pub labels: Option<Selector>,
    /// Address to answer DNS on, UDP and TCP (repeatable). `[::]:PORT`
    /// takes IPv4 too (IPv4 only on a host without IPv6), unless an IPv4
    /// address on the same port is listed as well.
    #[arg(long, value_name = "ADDR", default_value = "[::]:53")]
    pub listen: Vec<SocketAddr>,
    /// Where `/health` answers (CoreDNS's health plugin port); `off`
    /// disables. Loopback by default: in a pod, give 0.0.0.0:8080 (or use
    /// a Corefile, whose `health` listens on every address as CoreDNS's).
    #[arg(long = "health", value_name = "ADDR|off", default_value = "127.0.0.1:8080", value_parser = admin_addr)]
    pub health: AdminAddr,
    /// Where `/ready` answers (CoreDNS's ready plugin port); `off` disables.
    #[arg(long = "ready", value_name = "ADDR|off", default_value = "127.0.0.1:8181", value_parser = admin_addr)]
    pub ready: AdminAddr,
    /// Where Prometheus `/metrics` answers (CoreDNS's port); `off` disables.
    #[arg(long = "metrics", value_name = "ADDR|off", default_value = "127.0.0.1:9153", value_parser = admin_addr)]
    pub metrics: AdminAddr,
    /// On SIGTERM, keep answering DNS this many seconds with `/ready` at 503
    /// before closing the listeners (so endpoints drop the pod first).
    #[arg(long, value_name = "SECONDS", default_value_t = 5)]
    pub lameduck: u64,
    /// Serve /explain?name=NAME&type=TYPE&from=NAMESPACE beside /metrics:
    /// why a name answers what it does, from this process's live state. Off
    /// by default: it tells whoever reaches the metrics port the names and
    /// labels of the cluster's Services, Endpoints, slices and Pods.
    #[arg(long)]
    pub explain: bool,
    #[command(flatten)]
    pub zone: ZoneFlags,
}

/// `--pods`: parsed here, so that `records` needs no command-line crate.
fn pod_mode(s: &str) -> Result<PodMode, String> {
    match s {
        "disabled" => Ok(PodMode::Disabled),
        "insecure" => Ok(PodMode::Insecure),
        "verified" => Ok(PodMode::Verified),
        other => Err(format!("{other:?} is not one of disabled, insecure, verified")),
    }
}

/// An admin listen address, or none (`off`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AdminAddr(pub Option<SocketAddr>);

fn admin_addr(s: &str) -> Result<AdminAddr, String> {
    if s.eq_ignore_ascii_case("off") {
        return Ok(AdminAddr(None));
    }
    s.parse().map(|a| AdminAddr(Some(a))).map_err(|e| format!("{e} (an address such as 0.0.0.0:8080, or off)"))
}

#[derive(Args, Debug)]
pub struct ZoneArgs {
    /// A manifest file or a directory of *.yaml, *.yml, *.json (repeatable).
    /// Without it, the zone of the cluster the API serves.
    #[arg(long, value_name = "PATH")]
    pub manifests: Vec<PathBuf>,
    /// Kubeconfig to reach the API with (when no manifests are given).
    /// Default: the in-cluster service account, else KUBECONFIG, else
    /// ~/.kube/config.
    #[arg(long, value_name = "PATH", conflicts_with = "manifests")]
    pub kubeconfig: Option<PathBuf>,
    #[command(flatten)]
    pub zone: ZoneFlags,
}

#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Address to answer DNS on, UDP and TCP.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:1053")]
    pub listen: SocketAddr,
}
