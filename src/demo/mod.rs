//! The bundled demo cluster: the seed documents' examples as manifests,
//! written to a temporary folder and served like any other.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// The demo manifests.
pub const CLUSTER_YAML: &str = include_str!("cluster.yaml");

/// Writes the demo manifests to a fresh temporary folder and returns it.
/// The folders of demos that are no longer running (killed before they
/// could remove theirs) go first.
pub fn write_files() -> std::io::Result<PathBuf> {
    remove_stale(&std::env::temp_dir());
    let dir = std::env::temp_dir().join(format!("clusterdns-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("cluster.yaml"), CLUSTER_YAML)?;
    Ok(dir)
}

/// Removes `clusterdns-demo-<pid>` folders under `tmp` whose process is gone.
fn remove_stale(tmp: &Path) {
    let Ok(entries) = std::fs::read_dir(tmp) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.strip_prefix("clusterdns-demo-")) else { continue };
        let Ok(pid) = pid.parse::<u32>() else { continue };
        if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// What to try, printed when the demo is up.
pub fn instructions(addr: SocketAddr, dir: &Path) -> String {
    let at = format!("@{} -p {}", addr.ip(), addr.port());
    let tries = [
        ("a ClusterIP Service", "my-app-service.default.svc.cluster.local"),
        ("a headless Service: the ready Pods", "my-app-headless.default.svc.cluster.local"),
        ("an Indexed Job's pod by name", "comprehensive-computation-0.compute-service.default.svc.cluster.local"),
        ("a StatefulSet's pod by name", "web-1.nginx.default.svc.cluster.local"),
        ("external MySQL behind a headless Service", "mysql-svc.default.svc.cluster.local"),
        ("external Kafka brokers, by IP label", "192-168-10-23.kafka.default.svc.cluster.local"),
        ("a manual EndpointSlice's Service", "external-webserver-cka03-svcn.kube-public.svc.cluster.local"),
        ("an ExternalName Service", "search.default.svc.cluster.local"),
    ];
    let mut out = format!("clusterdns demo: serving the cluster in {} on {addr}\n\nTry:\n", dir.display());
    for (what, name) in tries {
        out.push_str(&format!("  # {what}\n  dig {at} +noall +answer {name}\n"));
    }
    out.push_str(&format!(
        "  # SRV for a named port, with the targets' addresses\n  dig {at} +noall +answer +additional _worker._tcp.compute-service.default.svc.cluster.local SRV\n"
    ));
    out.push_str(&format!("  # reverse lookup of a pod IP\n  dig {at} +noall +answer -x 10.244.2.5\n"));
    out.push_str(&format!(
        "  # a name that does not exist: NXDOMAIN with the SOA\n  dig {at} nope.default.svc.cluster.local\n"
    ));
    out.push_str(&format!("\nEdit {}/cluster.yaml and the answers follow. Ctrl-C stops.", dir.display()));
    out
}
