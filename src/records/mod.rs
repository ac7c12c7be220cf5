//! Records: the name grammar, the answers of SPEC.md per owner, their wire
//! form prepared ahead of queries, the lookup that turns a question into an
//! [`Answer`], and the zone snapshot. Knows no sockets and no kube client.

mod answer;
mod buffer;
mod build;
mod index;
pub mod name;
pub mod wire;
mod zone;

pub use answer::{Answer, Rcode, Step, answer};
pub use build::{Node, SCHEMA_VERSION, owner_nodes};
pub use index::{Updater, ZoneIndex};
pub use wire::{NodeData, Rrset, RrsetRef};
pub use zone::render_zone;

use hickory_proto::rr::Name;

/// How names under `<ns>.pod.<zone>` are answered (SPEC.md R10).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PodMode {
    /// No pod names (NXDOMAIN).
    Disabled,
    /// Any IP spelled in the name, if the namespace exists (kubeadm default).
    Insecure,
    /// Only IPs that a Pod in that namespace has.
    Verified,
}

/// What the served zones look like: fixed for the life of the server.
#[derive(Clone, Debug)]
pub struct ZoneConfig {
    /// The cluster domain, `cluster.local.`
    pub zone: Name,
    /// `svc.<zone>` and `pod.<zone>`
    pub svc: Name,
    pub pod: Name,
    /// `ns.dns.<zone>`, the NS target (R12).
    pub ns_name: Name,
    /// The reverse zones served beside the cluster zone.
    pub in_addr: Name,
    pub ip6: Name,
    /// Record TTL, 0..=3600.
    pub ttl: u32,
    pub pods: PodMode,
    /// CoreDNS's `noendpoints`: no names from endpoints (headless Services
    /// then do not resolve; ClusterIPs do).
    pub noendpoints: bool,
    /// CoreDNS's `ignore empty_service`: a Service with no ready endpoint
    /// does not exist (NXDOMAIN), so clients go on down their search path.
    pub ignore_empty_service: bool,
    /// CoreDNS's `endpoint_pod_names`: an endpoint without a hostname is
    /// named after its Pod, not its dashed IP.
    pub endpoint_pod_names: bool,
}

/// A cluster domain that is not a valid DNS name.
#[derive(Debug, thiserror::Error)]
#[error("invalid zone name {0:?}")]
pub struct BadZone(String);

impl ZoneConfig {
    pub fn new(zone: &str, ttl: u32, pods: PodMode) -> Result<Self, BadZone> {
        let bad = || BadZone(zone.to_string());
        let mut z = Name::from_ascii(zone.trim_end_matches('.')).map_err(|_| bad())?.to_lowercase();
        z.set_fqdn(true);
        if z.is_root() {
            return Err(bad());
        }
        let c = |n: &Name, l: &str| name::child(n, l).ok_or_else(bad);
        let ns_name = c(&c(&z, "dns")?, "ns")?;
        let mut in_addr = Name::from_ascii("in-addr.arpa.").map_err(|_| bad())?;
        in_addr.set_fqdn(true);
        let mut ip6 = Name::from_ascii("ip6.arpa.").map_err(|_| bad())?;
        ip6.set_fqdn(true);
        Ok(ZoneConfig {
            svc: c(&z, "svc")?,
            pod: c(&z, "pod")?,
            zone: z,
            ns_name,
            in_addr,
            ip6,
            ttl,
            pods,
            noendpoints: false,
            ignore_empty_service: false,
            endpoint_pod_names: false,
        })
    }

    /// The SOA's own TTL: min(ttl, 300) (SPEC.md R11).
    pub fn soa_ttl(&self) -> u32 {
        self.ttl.min(300)
    }

    /// The apexes of the served zones, cluster zone first.
    pub fn apexes(&self) -> [&Name; 3] {
        [&self.zone, &self.in_addr, &self.ip6]
    }
}
