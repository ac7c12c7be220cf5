#!/usr/bin/env python3
"""Knot DNS serving exactly the records clusterdns serves for a cluster.

The zone that ../shared/bench/gencluster.py writes for Knot leaves out what
SPEC.md requires beyond it (R4 and R8: per-endpoint names and PTRs of
ClusterIP Services; R6: SRV at the Service's own name): at 100,000 Services
it holds 509,000 records where clusterdns serves 1.37 million. This script
renders the cluster with `clusterdns zone`, loads that into knotd as scale.py
does (same settings), and prints Knot's start-up and memory on equal work.

Usage: benches/knot_same_zone.py CLUSTER_DIR [--binary target/release/clusterdns]
(CLUSTER_DIR holds cluster.yaml, as gencluster.py writes it).
"""
import argparse
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time

PORT = 5320


def ask(name):
    q = struct.pack(">HHHHHH", 0x4242, 0x0100, 1, 0, 0, 0)
    q += b"".join(bytes([len(l)]) + l.encode() for l in name.split(".") if l) + b"\0" + struct.pack(">HH", 1, 1)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(0.05)
    try:
        s.sendto(q, ("127.0.0.1", PORT))
        r = s.recv(4096)
        return r[3] & 15 == 0 and struct.unpack(">H", r[6:8])[0] > 0
    except OSError:
        return False
    finally:
        s.close()


def mem(pid):
    out = {}
    for line in open(f"/proc/{pid}/status"):
        k, _, v = line.partition(":")
        if k in ("VmRSS", "VmHWM"):
            out[k] = int(v.split()[0]) / 1024
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("cluster")
    ap.add_argument("--binary", default="target/release/clusterdns")
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="knot-same-")
    text = subprocess.run([a.binary, "zone", "--manifests", os.path.join(a.cluster, "cluster.yaml")],
                          check=True, capture_output=True, text=True).stdout
    files, current, probe = {}, None, None
    for line in text.splitlines():
        if line.startswith("$ORIGIN "):
            current = line.split()[1]
            files[current] = [line]
            continue
        files[current].append(line)
        if probe is None and current == "cluster.local." and " IN A " in line and not line.startswith("@"):
            probe = line.split()[0] + ".cluster.local."
    zones = []
    for origin, lines in files.items():
        if len(lines) < 3:
            continue
        path = os.path.join(work, origin.rstrip(".") + ".zone")
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")
        zones.append((origin.rstrip("."), path))
    records = sum(len(l) - 1 for o, l in files.items() if len(l) >= 3)
    if probe is None:
        sys.exit("the zone has no A record to probe Knot with")
    os.makedirs(f"{work}/db")
    conf = f"server:\n    rundir: \"{work}\"\n    listen: 127.0.0.1@{PORT}\n    udp-workers: 2\n    background-workers: 2\n"
    conf += f"database:\n    storage: \"{work}/db\"\nlog:\n  - target: stderr\n    any: error\nzone:\n"
    for domain, path in zones:
        conf += (f"  - domain: {domain}\n    file: \"{path}\"\n    zonefile-load: whole\n"
                 "    journal-content: none\n    semantic-checks: off\n")
    with open(f"{work}/knot.conf", "w") as f:
        f.write(conf)
    t0 = time.time()
    p = subprocess.Popen(["knotd", "-c", f"{work}/knot.conf"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while not ask(probe):
            if p.poll() is not None or time.time() - t0 > 300:
                sys.exit("knotd did not answer")
            time.sleep(0.02)
        start = time.time() - t0
        time.sleep(3)
        m = mem(p.pid)
        print(f"knot on clusterdns's own zone ({records} records): start {start:.2f} s, "
              f"rss {m['VmRSS']:.2f} MiB, peak {m['VmHWM']:.2f} MiB")
    finally:
        p.terminate()
        p.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
