//! Manifest reloads while queries run: add, change, delete, editor-style
//! saves through a temporary file, renames, and a file saved half-written.
//! Names the change did not touch must keep answering throughout.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use clusterdns::records::PodMode;
use common::{Transport, answers, ask, start};
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;

fn service(name: &str, ip: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Service\nmetadata: {{name: {name}, namespace: reload}}\nspec:\n  clusterIP: {ip}\n  ports: [{{name: http, port: 80}}]\n"
    )
}

fn a_of(addr: SocketAddr, name: &str) -> (ResponseCode, Vec<String>) {
    let msg = ask(addr, &format!("{name}.reload.svc.cluster.local."), RecordType::A, Transport::Udp, None);
    (msg.metadata.response_code, answers(&msg))
}

/// Waits (up to a generous bound; the latency itself is measured in the
/// benchmarks, not asserted) until `name` answers `want`.
fn eventually(addr: SocketAddr, name: &str, want: Option<&str>) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (rc, ans) = a_of(addr, name);
        let ok = match want {
            Some(ip) => rc == ResponseCode::NoError && ans == vec![format!("{name}.reload.svc.cluster.local. A {ip}")],
            None => rc == ResponseCode::NXDomain,
        };
        if ok {
            return;
        }
        assert!(Instant::now() < deadline, "{name}: still {rc:?} {ans:?}, want {want:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn write(dir: &Path, file: &str, text: &str) {
    std::fs::write(dir.join(file), text).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reloads_keep_untouched_names_answering() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    write(&d, "web.yaml", &service("web", "10.96.50.1"));
    write(&d, "api.yaml", &service("api", "10.96.50.2"));
    let running = start(vec![d.clone()], PodMode::Disabled).await;
    let addr = running.addr();

    // A client that keeps asking for the untouched name the whole time.
    let stop = Arc::new(AtomicBool::new(false));
    let bad = Arc::new(AtomicUsize::new(0));
    let asked = Arc::new(AtomicUsize::new(0));
    let watcher = {
        let (stop, bad, asked) = (stop.clone(), bad.clone(), asked.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let (rc, ans) = a_of(addr, "api");
                asked.fetch_add(1, Ordering::Relaxed);
                if rc != ResponseCode::NoError || ans.len() != 1 {
                    bad.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
    };
    let d2 = d.clone();
    tokio::task::spawn_blocking(move || {
        let d = d2;
        // Add a file.
        write(&d, "db.yaml", &service("db", "10.96.50.3"));
        eventually(addr, "db", Some("10.96.50.3"));
        // Change a file in place.
        write(&d, "web.yaml", &service("web", "10.96.50.11"));
        eventually(addr, "web", Some("10.96.50.11"));
        // Save through a temporary file and a rename (vim, most editors).
        write(&d, ".web.yaml.swp", &service("web", "10.96.50.12"));
        std::fs::rename(d.join(".web.yaml.swp"), d.join("web.yaml")).unwrap();
        eventually(addr, "web", Some("10.96.50.12"));
        // A half-written save that does not parse: the last good version
        // stays. A marker file written with it shows the reload has run
        // (a sleep alone would pass before it ran).
        write(
            &d,
            "web.yaml",
            "apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: reload\nspec:\n  clusterIP: [",
        );
        write(&d, "marker-1.yaml", &service("marker-1", "10.96.50.101"));
        eventually(addr, "marker-1", Some("10.96.50.101"));
        eventually(addr, "web", Some("10.96.50.12"));
        write(&d, "web.yaml", &service("web", "10.96.50.13"));
        eventually(addr, "web", Some("10.96.50.13"));
        // Rename a file: same objects, nothing changes.
        std::fs::rename(d.join("api.yaml"), d.join("api-renamed.yml")).unwrap();
        // Move a file into a new subdirectory.
        std::fs::create_dir(d.join("sub")).unwrap();
        std::fs::rename(d.join("db.yaml"), d.join("sub/db.yaml")).unwrap();
        write(&d, "marker-2.yaml", &service("marker-2", "10.96.50.102"));
        eventually(addr, "marker-2", Some("10.96.50.102"));
        eventually(addr, "db", Some("10.96.50.3"));
        // Delete a file.
        std::fs::remove_file(d.join("sub/db.yaml")).unwrap();
        eventually(addr, "db", None);
        std::thread::sleep(Duration::from_millis(500));
    })
    .await
    .unwrap();
    stop.store(true, Ordering::Relaxed);
    watcher.join().unwrap();
    assert!(asked.load(Ordering::Relaxed) > 50, "the watcher asked too little");
    assert_eq!(bad.load(Ordering::Relaxed), 0, "the untouched name failed during reloads");
    eventually(addr, "api", Some("10.96.50.2"));
    running.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_file_is_watched_through_its_directory() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cluster.yaml");
    std::fs::write(&file, service("one", "10.96.51.1")).unwrap();
    let running = start(vec![file.clone()], PodMode::Disabled).await;
    let addr = running.addr();
    // Another manifest beside it is not part of the source.
    std::fs::write(dir.path().join("other.yaml"), service("two", "10.96.51.2")).unwrap();
    let tmp = dir.path().join("cluster.yaml.new");
    std::fs::write(&tmp, format!("{}---\n{}", service("one", "10.96.51.1"), service("three", "10.96.51.3"))).unwrap();
    std::fs::rename(&tmp, &file).unwrap();
    tokio::task::spawn_blocking(move || {
        eventually(addr, "three", Some("10.96.51.3"));
        eventually(addr, "two", None);
        eventually(addr, "one", Some("10.96.51.1"));
    })
    .await
    .unwrap();
    running.server.shutdown().await;
}
