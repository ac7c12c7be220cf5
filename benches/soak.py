#!/usr/bin/env python3
"""Soak: clusterdns under steady load while everything around it churns.

Drives the server with dnsperf at 80% of the peak rate it measured first,
for --minutes (default 10), while:
  * manifest files change every second: added, edited in place (truncated,
    then written in two pieces with a pause), renamed over (written beside,
    then moved), saved half-written (a cut document, completed later), and
    deleted;
  * with --corefile, the forwarder's upstream (a small DNS server this
    script runs) goes down for 10 s every 30 s; the external names are
    served through `cache { serve_stale }` meanwhile.
A sampler asks the names that never change, about 100 times a second, and
checks every answer against the cluster it wrote. It reports queries lost
(dnsperf's count), wrong or missing answers, and RSS once loaded, at the
start of the steady state (every churn file through its cycle, at most 40 s
in), in the middle and at the end; growth is end against start.

Target: zero lost, zero wrong, RSS flat within 5%.

    cargo build --release
    python3 benches/soak.py                 # manifests, 10 minutes
    python3 benches/soak.py --corefile      # the same through a Corefile with forward and cache
    python3 benches/soak.py --minutes 1     # a quick look

Needs dnsperf (Debian: `apt-get install dnsperf`). Everything runs on 127.0.0.1.
"""

import argparse
import os
import random
import re
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

ZONE = "cluster.local"
NS = "soak"


def ip_of(i):
    return f"10.96.{(i >> 8) & 255}.{i & 255}"


def service(name, ip):
    return (
        f"apiVersion: v1\nkind: Service\nmetadata: {{name: {name}, namespace: {NS}}}\n"
        f"spec: {{clusterIP: {ip}, ports: [{{name: http, port: 80}}]}}\n"
    )


def write_stable(folder, count):
    """The Services that never change, 100 to a file; returns name -> IP."""
    expected = {}
    for f in range(0, count, 100):
        docs = []
        for i in range(f, min(f + 100, count)):
            name = f"stable-{i}"
            expected[f"{name}.{NS}.svc.{ZONE}."] = ip_of(i)
            docs.append(service(name, ip_of(i)))
        with open(os.path.join(folder, f"stable-{f // 100}.yaml"), "w") as out:
            out.write("---\n".join(docs))
    return expected


class Churn(threading.Thread):
    """One change to the churn files every second, in a fixed cycle."""

    def __init__(self, folder):
        super().__init__(daemon=True)
        self.folder, self.stop, self.changes, self.version = folder, threading.Event(), 0, 0

    def text(self, slot):
        self.version += 1
        docs = [service(f"churn-{slot}-{j}", ip_of(40000 + (self.version * 7 + j) % 20000)) for j in range(20)]
        return "---\n".join(docs)

    def path(self, slot):
        return os.path.join(self.folder, f"churn-{slot}.yaml")

    def run(self):
        actions = ["add", "edit", "rename", "half", "delete"]
        n = 0
        while not self.stop.wait(1.0):
            slot, action = n % 7, actions[n % len(actions)]
            n += 1
            p = self.path(slot)
            try:
                if action == "add" or (action != "delete" and not os.path.exists(p)):
                    with open(p, "w") as f:
                        f.write(self.text(slot))
                elif action == "edit":  # in place, as `kubectl get -o yaml > file`
                    text = self.text(slot)
                    with open(p, "r+") as f:
                        f.truncate(0)
                        f.write(text[: len(text) // 2])
                        f.flush()
                        time.sleep(0.2)
                        f.write(text[len(text) // 2 :])
                elif action == "rename":  # an editor's save
                    tmp = os.path.join(self.folder, f".churn-{slot}.yaml.tmp")
                    with open(tmp, "w") as f:
                        f.write(self.text(slot))
                    os.replace(tmp, p)
                elif action == "half":  # cut mid-document, completed 1.5 s later
                    text = self.text(slot)
                    with open(p, "w") as f:
                        f.write(text[: len(text) // 3])
                    time.sleep(1.5)
                    with open(p, "w") as f:
                        f.write(text)
                elif action == "delete":
                    if os.path.exists(p):
                        os.remove(p)
                self.changes += 1
            except OSError as e:
                print(f"churn: {action} {p}: {e}", file=sys.stderr)


def query(name, qid):
    q = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    for label in name.rstrip(".").split("."):
        q += bytes([len(label)]) + label.encode()
    return q + b"\x00" + struct.pack(">HH", 1, 1)


def a_records(reply):
    """rcode and the A addresses of a reply (answer section only)."""
    rcode = reply[3] & 15
    an = struct.unpack(">H", reply[6:8])[0]
    i = 12
    while reply[i] != 0:
        i += reply[i] + 1
    i += 5
    ips = []
    for _ in range(an):
        while True:  # the owner: labels or a pointer
            if reply[i] >= 0xC0:
                i += 2
                break
            if reply[i] == 0:
                i += 1
                break
            i += reply[i] + 1
        rtype, _, _, rdlen = struct.unpack(">HHIH", reply[i : i + 10])
        i += 10
        if rtype == 1:
            ips.append(".".join(str(b) for b in reply[i : i + 4]))
        i += rdlen
    return rcode, ips


class Sampler(threading.Thread):
    """Asks stable names ~100 times a second and checks each answer."""

    def __init__(self, server, expected):
        super().__init__(daemon=True)
        self.server, self.expected, self.stop = server, list(expected.items()), threading.Event()
        self.asked = self.wrong = self.missing = 0
        self.examples = []

    def run(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(2.0)
        qid = 0
        while not self.stop.wait(0.01):
            name, ip = random.choice(self.expected)
            qid = (qid + 1) & 0xFFFF
            self.asked += 1
            try:
                s.sendto(query(name, qid), self.server)
                while True:
                    reply, _ = s.recvfrom(4096)
                    if struct.unpack(">H", reply[:2])[0] == qid:
                        break
            except socket.timeout:
                self.missing += 1
                continue
            rcode, ips = a_records(reply)
            if rcode != 0 or ips != [ip]:
                self.wrong += 1
                if len(self.examples) < 5:
                    self.examples.append(f"{name}: rcode {rcode} {ips}, want {ip}")


class Upstream(threading.Thread):
    """A DNS server for *.example.: A 192.0.2.1; down 10 s of every 30."""

    def __init__(self, addr):
        super().__init__(daemon=True)
        self.addr, self.stop, self.outages = addr, threading.Event(), 0

    def run(self):
        start = time.time()
        sock = None
        while not self.stop.is_set():
            down = (time.time() - start) % 30 >= 20
            if down and sock:
                sock.close()
                sock = None
                self.outages += 1
            if not down and not sock:
                sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind(self.addr)
                sock.settimeout(0.2)
            if not sock:
                time.sleep(0.1)
                continue
            try:
                q, peer = sock.recvfrom(4096)
            except socket.timeout:
                continue
            except OSError:
                continue
            try:
                end = q.index(b"\x00", 12) + 5
            except ValueError:
                continue
            qtype = struct.unpack(">H", q[end - 4 : end - 2])[0]
            flags = 0x8180
            answer = b""
            if qtype == 1:
                answer = b"\xc0\x0c" + struct.pack(">HHIH", 1, 1, 300, 4) + bytes([192, 0, 2, 1])
            header = q[:2] + struct.pack(">HHHHH", flags, 1, 1 if answer else 0, 0, 0)
            sock.sendto(header + q[12:end] + answer, peer)
        if sock:
            sock.close()


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def dnsperf(server, qfile, seconds, rate=None):
    cmd = ["dnsperf", "-s", server[0], "-p", str(server[1]), "-d", qfile, "-l", str(seconds), "-c", "4", "-T", "2"]
    cmd += ["-Q", str(rate)] if rate else ["-q", "500"]
    out = subprocess.run(cmd, capture_output=True, text=True).stdout
    qps = float(re.search(r"Queries per second:\s+([\d.]+)", out).group(1))
    sent = int(re.search(r"Queries sent:\s+(\d+)", out).group(1))
    lost = int(re.search(r"Queries lost:\s+(\d+)", out).group(1))
    return qps, sent, lost, out


def wait_answering(server, name, seconds=60):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(0.5)
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            s.sendto(query(name, 1), server)
            reply, _ = s.recvfrom(4096)
            if a_records(reply)[0] == 0:
                return True
        except OSError:
            time.sleep(0.1)
    return False


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", default="target/release/clusterdns")
    ap.add_argument("--minutes", type=float, default=10)
    ap.add_argument("--services", type=int, default=2000, help="stable Services (default 2000)")
    ap.add_argument("--corefile", action="store_true", help="serve through a Corefile with forward and cache")
    args = ap.parse_args()
    if not shutil.which("dnsperf"):
        sys.exit("dnsperf is not installed (Debian: apt-get install dnsperf)")
    work = tempfile.mkdtemp(prefix="clusterdns-soak-")
    folder = os.path.join(work, "manifests")
    os.makedirs(folder)
    expected = write_stable(folder, args.services)
    port = free_port()
    server = ("127.0.0.1", port)
    upstream = None
    names = list(expected)
    if args.corefile:
        up_addr = ("127.0.0.1", free_port())
        upstream = Upstream(up_addr)
        upstream.start()
        corefile = os.path.join(work, "Corefile")
        with open(corefile, "w") as f:
            f.write(
                f".:{port} {{\n    bind 127.0.0.1\n    errors\n"
                f"    kubernetes {ZONE} in-addr.arpa ip6.arpa {{\n        manifests {folder}\n"
                f"        fallthrough in-addr.arpa ip6.arpa\n    }}\n"
                f"    forward . {up_addr[0]}:{up_addr[1]} {{\n        max_fails 2\n        health_check 1s\n    }}\n"
                f"    cache 30 {{\n        serve_stale 1h immediate\n    }}\n}}\n"
            )
        cmd = [args.binary, "-conf", corefile]
        names += [f"ext-{i}.example." for i in range(200)]
    else:
        cmd = [args.binary, "serve", "--manifests", folder, "--listen", f"127.0.0.1:{port}"]
        cmd += ["--health", "off", "--ready", "off", "--metrics", "off"]
    log = open(os.path.join(work, "server.log"), "w")
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=log)
    try:
        if not wait_answering(server, names[0]):
            sys.exit(f"the server did not answer; its log is {log.name}")
        qfile = os.path.join(work, "queries.txt")
        with open(qfile, "w") as f:
            for n in names:
                f.write(f"{n} A\n")
        if args.corefile:  # the external names cached once, before any outage
            dnsperf(server, qfile, 2)
        peak, _, _, _ = dnsperf(server, qfile, 10)
        rate = int(peak * 0.8)
        print(f"server: {' '.join(cmd)}")
        print(f"peak {peak:.0f} q/s; soak at {rate} q/s for {args.minutes} min")
        rss = {"loaded": rss_kib(proc.pid)}
        churn, sampler = Churn(folder), Sampler(server, expected)
        churn.start()
        sampler.start()
        seconds = int(args.minutes * 60)
        # "start" once every churn file has been through its cycle (35 s) and
        # the load has settled: the steady state the end is compared with.
        for name, at in [("start", min(40, seconds / 4)), ("middle", seconds / 2)]:
            threading.Timer(at, lambda name=name: rss.__setitem__(name, rss_kib(proc.pid))).start()
        qps, sent, lost, out = dnsperf(server, qfile, seconds, rate)
        rss["end"] = rss_kib(proc.pid)
        churn.stop.set()
        sampler.stop.set()
        sampler.join()
        if upstream:
            upstream.stop.set()
        alive = proc.poll() is None
        growth = (rss["end"] - rss["start"]) / rss["start"] * 100 if rss["start"] else 0
        print(f"dnsperf: {sent} sent, {lost} lost, {qps:.0f} q/s")
        print(f"file changes: {churn.changes}" + (f"; upstream outages: {upstream.outages}" if upstream else ""))
        print(
            f"sampled: {sampler.asked} asked, {sampler.wrong} wrong, {sampler.missing} unanswered"
            + (f" (e.g. {sampler.examples})" if sampler.examples else "")
        )
        print(
            f"RSS: loaded {rss['loaded'] / 1024:.1f} MiB, start {rss['start'] / 1024:.1f} MiB, middle {rss.get('middle', 0) / 1024:.1f} MiB, "
            f"end {rss['end'] / 1024:.1f} MiB ({growth:+.1f}%)"
        )
        print(f"server still running: {alive}")
        ok = lost == 0 and sampler.wrong == 0 and sampler.missing == 0 and abs(growth) <= 5 and alive
        print("result: " + ("PASS" if ok else "FAIL") + " (target: zero lost, zero wrong, RSS within 5%)")
        return 0 if ok else 1
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
