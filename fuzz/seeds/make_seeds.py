"""Seed inputs for the fuzzers (run once; libFuzzer grows the corpus):
python3 seeds/make_seeds.py. Needs dnspython."""
import os, random
import dns.message, dns.rrset, dns.rdatatype, dns.rdataclass, dns.flags, dns.edns, dns.name

here = os.path.dirname(os.path.abspath(__file__))
root = os.path.dirname(here)
rnd = random.Random(7)

def write(target, name, data):
    d = os.path.join(root, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)

# query: the fixture's names, other zones, every type, with and without EDNS.
names = [
    "kafka.default.svc.cluster.local.", "KaFkA.Default.svc.cluster.local.", "_kafka._tcp.kafka.default.svc.cluster.local.",
    "kube-dns.kube-system.svc.cluster.local.", "10.0.96.10.in-addr.arpa.", "cluster.local.", "dns-version.cluster.local.",
    "outside.ext.svc.cluster.local.", "chain.ext.svc.cluster.local.", "dual.dual.svc.cluster.local.",
    "10-244-5-2.dual-headless.dual.svc.cluster.local.", "1-2-3-4.default.pod.cluster.local.", "nginx.web.svc.cluster.local.",
    "old.example.com.", "kafka.default.corp.example.", "host.example.test.", "a.reddog.microsoft.com.",
    "inline.example.", "version.bind.", "foo.example.net.", "example.com.", ".", "nonexistent.default.svc.cluster.local.",
    "_http._tcp.dual-headless.dual.svc.cluster.local.", "big.wide.svc.cluster.local.",
]
types = ["A", "AAAA", "SRV", "PTR", "TXT", "NS", "SOA", "ANY", "CNAME", "MX", "AXFR", "HINFO"]
n = 0
for name in names:
    for t in rnd.sample(types, 3):
        cls = "CH" if name == "version.bind." else "IN"
        for edns in (None, 512, 1232, 4096):
            m = dns.message.make_query(name, t, cls, use_edns=edns is not None, payload=edns or 512,
                                       want_dnssec=rnd.random() < 0.3)
            write("query", f"seed-{n:04}", m.to_wire())
            n += 1

# forward_reply: replies to "wWw.eXample.com" of each type, id 0x5eed, then
# the client byte first (see the target).
def reply(qtype, rcode=0, answers=(), auth=(), add=(), edns=True, case="wWw.eXample.com."):
    q = dns.message.make_query(case, qtype, use_edns=edns)
    q.id = 0x5eed
    r = dns.message.make_response(q)
    r.set_rcode(rcode)
    for s, rrs in ((r.answer, answers), (r.authority, auth), (r.additional, add)):
        for text in rrs:
            owner, ttl, rtype, rdata = text.split(" ", 3)
            s.append(dns.rrset.from_text(owner, int(ttl), "IN", rtype, rdata))
    return r.to_wire()

qtypes = ["A", "AAAA", "SRV", "TXT"]
soa = "example.com. 300 SOA ns1.example.com. admin.example.com. 1 7200 900 1209600 60"
n = 0
for ti, t in enumerate(qtypes):
    cases = []
    if t == "A":
        cases.append([f"www.example.com. 60 A 10.0.{i // 250}.{i % 250}" for i in range(1 + rnd.randrange(80))])
    if t == "AAAA":
        cases.append([f"www.example.com. 60 AAAA 2001:db8::{i:x}" for i in range(1 + rnd.randrange(40))])
    if t == "SRV":
        cases.append([f"www.example.com. 60 SRV 0 10 80 host{i}.example.com." for i in range(1 + rnd.randrange(30))])
    if t == "TXT":
        cases.append([f'www.example.com. 60 TXT "{"x" * rnd.randrange(200)}"' for _ in range(3)])
    cases.append(["www.example.com. 60 CNAME target.example.org."])
    for answers in cases:
        for rcode, auth, add in ((0, [], []), (0, ["example.com. 60 NS ns0.example.com."], ["ns0.example.com. 60 A 192.0.2.1"])):
            for edns in (True, False):
                body = reply(t, rcode, answers, auth, add, edns)
                for choice in rnd.sample(range(64), 3):
                    write("forward_reply", f"seed-{n:04}", bytes([choice | (ti << 6)]) + body)
                    n += 1
    for rcode in (3, 2, 5, 0):
        body = reply(t, rcode, [], [soa], [], True)
        write("forward_reply", f"seed-{n:04}", bytes([rnd.randrange(64) | (ti << 6)]) + body)
        n += 1

# manifest: the fixtures, as YAML and one as JSON.
import glob, json
fx = os.path.join(root, "..", "tests", "fixtures")
for path in sorted(glob.glob(os.path.join(fx, "*.yaml"))):
    write("manifest", os.path.basename(path), open(path, "rb").read())
try:
    import yaml
    for path in sorted(glob.glob(os.path.join(fx, "*.yaml")))[:3]:
        docs = [d for d in yaml.safe_load_all(open(path)) if d]
        write("manifest", os.path.basename(path) + ".json", json.dumps({"apiVersion": "v1", "kind": "List", "items": docs}).encode())
except ImportError:
    pass

# yaml_fast: each document of the fixtures on its own.
for path in sorted(glob.glob(os.path.join(fx, "*.yaml"))):
    for i, doc in enumerate(open(path, "rb").read().split(b"\n---\n")):
        write("yaml_fast", f"{os.path.basename(path)}-{i:03}", doc)

# corefile: the fixture Corefiles and the chain of the query target.
for path in sorted(glob.glob(os.path.join(fx, "corefiles", "*.Corefile"))):
    write("corefile", os.path.basename(path), open(path, "rb").read())
