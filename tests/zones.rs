//! Zone snapshots (SPEC.md 5): every fixture cluster in tests/fixtures/
//! renders to zones/<fixture>.zone, and the server answers every RRset of
//! the snapshot exactly as written there.
//!
//! To accept a change on purpose: `UPDATE_ZONES=1 cargo test --test zones`,
//! then review `git diff zones/`.

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;

use clusterdns::app::zone_snapshot;
use clusterdns::records::PodMode;
use common::{Transport, answers, ask, fixtures, flags, start};
use hickory_proto::rr::RecordType;

fn fixture_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(fixtures())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(files.len() >= 6, "fixtures missing");
    files
}

fn zone_path(fixture: &std::path::Path) -> PathBuf {
    let stem = fixture.file_stem().unwrap().to_str().unwrap();
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("zones").join(format!("{stem}.zone"))
}

fn diff(want: &str, got: &str) -> String {
    let mut out = String::new();
    let w: Vec<&str> = want.lines().collect();
    let g: Vec<&str> = got.lines().collect();
    for l in &w {
        if !g.contains(l) {
            out.push_str(&format!("- {l}\n"));
        }
    }
    for l in &g {
        if !w.contains(l) {
            out.push_str(&format!("+ {l}\n"));
        }
    }
    if out.is_empty() {
        out.push_str("(same lines, different order)\n");
    }
    out
}

#[test]
fn fixtures_render_to_their_snapshots() {
    let update = std::env::var_os("UPDATE_ZONES").is_some();
    let mut failures = Vec::new();
    for fixture in fixture_files() {
        let (got, errors) = zone_snapshot(vec![fixture.clone()], &flags(PodMode::Disabled)).unwrap();
        assert!(errors.is_empty(), "{}: {errors:?}", fixture.display());
        let path = zone_path(&fixture);
        if update {
            std::fs::write(&path, &got).unwrap();
            continue;
        }
        let want = std::fs::read_to_string(&path).unwrap_or_default();
        if want != got {
            failures.push(format!("{} differs from {}:\n{}", fixture.display(), path.display(), diff(&want, &got)));
        }
    }
    assert!(
        failures.is_empty(),
        "{}\nIf the change is intended: UPDATE_ZONES=1 cargo test --test zones",
        failures.join("\n")
    );
}

/// Parses a snapshot into RRsets: (absolute owner, type) -> `name TYPE rdata`.
fn rrsets(zone: &str) -> BTreeMap<(String, String), Vec<String>> {
    let mut origin = String::new();
    let mut out: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for line in zone.lines() {
        if let Some(o) = line.strip_prefix("$ORIGIN ") {
            origin = o.to_string();
            continue;
        }
        let mut parts = line.splitn(5, ' ');
        let (Some(rel), Some(_ttl), Some(_class), Some(ty), Some(rdata)) =
            (parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
        else {
            panic!("bad snapshot line {line:?}");
        };
        let owner = if rel == "@" { origin.clone() } else { format!("{rel}.{origin}") };
        out.entry((owner.clone(), ty.to_string())).or_default().push(format!("{owner} {ty} {rdata}"));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_answers_what_the_snapshot_says() {
    for fixture in fixture_files() {
        let zone = std::fs::read_to_string(zone_path(&fixture)).unwrap();
        let running = start(vec![fixture.clone()], PodMode::Disabled).await;
        for ((owner, ty), mut want) in rrsets(&zone) {
            let qtype: RecordType = ty.parse().unwrap();
            let msg = ask(running.addr(), &owner, qtype, Transport::Tcp, None);
            let mut got = answers(&msg);
            if qtype == RecordType::SOA {
                // The live serial is the load time; snapshots say 0.
                got = got
                    .iter()
                    .map(|s| {
                        let mut f: Vec<&str> = s.split(' ').collect();
                        f[4] = "0";
                        f.join(" ")
                    })
                    .collect();
            }
            want.sort();
            assert_eq!(got, want, "{}: {owner} {ty}", fixture.display());
        }
        running.server.shutdown().await;
    }
}
