//! ClusterIPs for hand-written Services that have none, as the API server
//! would allocate them: from the service CIDR, stable for the same manifests
//! (a hash of namespace/name picks the slot, taken slots are probed past in
//! name order), so that the same folder always renders the same zone.

use std::collections::HashSet;
use std::net::IpAddr;

use ipnet::IpNet;

use crate::model::{Object, ServiceKind};

fn fnv1a(s: &str) -> u64 {
    s.bytes().fold(0xcbf29ce484222325u64, |h, b| (h ^ b as u64).wrapping_mul(0x100000001b3))
}

fn nth(net: &IpNet, offset: u128) -> IpAddr {
    match net {
        // `offset` is below the network's size, so this stays inside it.
        IpNet::V4(n) => IpAddr::V4(((u32::from(n.network()) as u128 + offset) as u32).into()),
        IpNet::V6(n) => IpAddr::V6(u128::from(n.network()).wrapping_add(offset).into()),
    }
}

/// Gives every Service with `ClusterIp(vec![])` one address from `cidr`.
pub fn allocate(objects: &mut [Object], cidr: &IpNet) {
    let mut taken: HashSet<IpAddr> = HashSet::new();
    let mut pending: Vec<usize> = Vec::new();
    for (i, obj) in objects.iter().enumerate() {
        if let Object::Service(s) = obj
            && let ServiceKind::ClusterIp(ips) = &s.kind
        {
            if ips.is_empty() {
                pending.push(i);
            }
            taken.extend(ips.iter().copied());
        }
    }
    let key = |obj: &Object| match obj {
        Object::Service(s) => format!("{}/{}", s.namespace, s.name),
        _ => String::new(),
    };
    let mut pending: Vec<(String, usize)> = pending.into_iter().map(|i| (key(&objects[i]), i)).collect();
    pending.sort();
    let bits = cidr.max_prefix_len() - cidr.prefix_len();
    // Usable offsets: 1 .. size-2 (no network or broadcast address); the
    // first one is the `kubernetes` Service's and the tenth the DNS one's by
    // convention, so leave the first 16 alone.
    let size: u128 = if bits >= 127 { u128::MAX } else { 1u128 << bits };
    let (low, span) = if size > 64 { (16u128, size - 17) } else { (1, size.saturating_sub(2)) };
    if span == 0 {
        return;
    }
    for (name, i) in pending {
        let mut slot = fnv1a(&name) as u128 % span;
        let mut ip = nth(cidr, low + slot);
        let mut tries = 0u128;
        while taken.contains(&ip) && tries < span {
            slot = (slot + 1) % span;
            ip = nth(cidr, low + slot);
            tries += 1;
        }
        if tries == span {
            tracing::warn!(service = name, %cidr, "service CIDR is full; no ClusterIP allocated");
            continue;
        }
        taken.insert(ip);
        if let Object::Service(s) = &mut objects[i] {
            std::sync::Arc::make_mut(s).kind = ServiceKind::ClusterIp(Box::new([ip]));
        }
    }
}
