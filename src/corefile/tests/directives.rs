//! One row per directive form: defaults as CoreDNS sets them, options, and
//! the errors (at the exact line) for what clusterdns does not take.

use std::net::SocketAddr;
use std::time::Duration;

use super::*;

fn block(body: &str) -> String {
    format!("cluster.local:53 example.org:53 {{\n{body}\n}}\n")
}

/// The only directive of `body`, in a block for cluster.local and example.org.
fn one(body: &str) -> Plugin {
    only(&parse_ok(&block(body))).clone()
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn zones(z: &[&str]) -> Vec<String> {
    z.iter().map(|s| s.to_string()).collect()
}

const BLOCK: &[&str] = &["cluster.local.", "example.org."];

#[test]
fn small_directives() {
    assert!(matches!(one("reload"), Plugin::Reload(r) if r == Reload { interval: secs(30), jitter: secs(15) }));
    assert!(matches!(one("reload 10s"), Plugin::Reload(r) if r == Reload { interval: secs(10), jitter: secs(5) }));
    assert!(matches!(one("reload 1m 0"), Plugin::Reload(r) if r.jitter.is_zero() && r.interval == secs(60)));
    assert!(matches!(one("reload 2s 1s"), Plugin::Reload(r) if r.jitter == secs(1)));
    assert!(matches!(one("bufsize"), Plugin::Bufsize(1232)));
    assert!(matches!(one("bufsize 4096"), Plugin::Bufsize(4096)));
    assert!(matches!(one("bind 127.0.0.1 ::1"), Plugin::Bind(v) if v.len() == 2));
    assert!(matches!(one("bind 127.0.0.1 ::1 {\n except ::1\n}"), Plugin::Bind(v) if v.len() == 1));
    assert!(matches!(one("ready"), Plugin::Ready(a) if a == sa("0.0.0.0:8181")));
    assert!(matches!(one("ready localhost:8182"), Plugin::Ready(a) if a == sa("127.0.0.1:8182")));
    assert!(matches!(one("ready [::1]:81 {\n monitor until-ready\n}"), Plugin::Ready(a) if a == sa("[::1]:81")));
    assert!(
        matches!(one("health"), Plugin::Health(h) if h == Health { addr: sa("0.0.0.0:8080"), lameduck: Duration::ZERO })
    );
    assert!(
        matches!(one("health 10.0.0.1:80 {\n lameduck 1.5s\n}"), Plugin::Health(h) if h.addr == sa("10.0.0.1:80") && h.lameduck == Duration::from_millis(1500))
    );
    assert!(matches!(one("prometheus"), Plugin::Prometheus(a) if a == sa("127.0.0.1:9153")));
    assert!(matches!(one("prometheus :9153"), Plugin::Prometheus(a) if a == sa("0.0.0.0:9153")));
    assert!(matches!(one("prometheus localhost:9253"), Plugin::Prometheus(a) if a == sa("127.0.0.1:9253")));
    assert!(matches!(one("errors"), Plugin::Errors));
    assert!(matches!(one("errors stdout"), Plugin::Errors));
    assert!(matches!(one("any"), Plugin::Any));
    assert!(matches!(one("minimal"), Plugin::Minimal));
    assert!(matches!(one("loop"), Plugin::Loop));
    assert!(matches!(one("loadbalance"), Plugin::Loadbalance));
    assert!(matches!(one("loadbalance round_robin"), Plugin::Loadbalance));
    let Plugin::Chaos(c) = one("chaos") else { panic!() };
    assert_eq!(c.version, format!("clusterdns-{}", env!("CARGO_PKG_VERSION")));
    assert!(!c.authors.is_empty());
    let Plugin::Chaos(c) = one("chaos v1 zed al al") else { panic!() };
    assert_eq!((c.version.as_str(), c.authors), ("v1", zones(&["al", "zed"])));
}

#[test]
fn log() {
    let all = LogClasses { success: true, denial: true, error: true };
    let Plugin::Log(l) = one("log") else { panic!() };
    assert_eq!(
        l,
        Log { names: zones(&["."]), format: crate::corefile::plugins::COMMON_LOG_FORMAT.into(), classes: all }
    );
    assert!(l.format.starts_with("{remote}:{port} - {>id} \"{type} {class} {name} {proto} {size} {>do} {>bufsize}\""));
    let Plugin::Log(l) = one("log Example.org") else { panic!() };
    assert_eq!(l.names, zones(&["example.org."]));
    let Plugin::Log(l) = one("log a.org b.org \"{combined} x\"") else { panic!() };
    assert_eq!(l.names, zones(&["a.org.", "b.org."]));
    assert_eq!(l.format, format!("{} x", crate::corefile::plugins::COMBINED_LOG_FORMAT));
    assert!(l.format.contains("{duration} \"{>opcode}\" x"));
    let Plugin::Log(l) = one("log . {common}") else { panic!() };
    assert_eq!(l.format, crate::corefile::plugins::COMMON_LOG_FORMAT);
    let Plugin::Log(l) = one("log . {\n class denial\n class error\n}") else { panic!() };
    assert_eq!(l.classes, LogClasses { success: false, denial: true, error: true });
    let Plugin::Log(l) = one("log {\n class success all\n}") else { panic!() };
    assert_eq!(l.classes, all);
}

#[test]
fn rewrite() {
    let rule = |body: &str| match one(body) {
        Plugin::Rewrite(r) => r,
        p => panic!("{p:?}"),
    };
    let r = rule("rewrite name A.org b.org");
    assert!(!r.continue_after);
    let RewriteRule::Name { matcher: NameMatch::Exact(f), to, answer } = r.rule else { panic!() };
    assert_eq!((f.as_str(), to.as_str()), ("a.org.", "b.org."));
    assert!(matches!(answer.as_slice(), [AnswerRewrite::Default]));
    let r = rule("rewrite continue name suffix .a.org .b.org answer auto");
    assert!(r.continue_after);
    let RewriteRule::Name { matcher: NameMatch::Suffix(f), answer, .. } = r.rule else { panic!() };
    assert_eq!(f, ".a.org.");
    assert!(matches!(answer.as_slice(), [AnswerRewrite::Auto]));
    let r = rule("rewrite stop name prefix foo bar");
    assert!(matches!(r.rule, RewriteRule::Name { matcher: NameMatch::Prefix(ref f), .. } if f == "foo."));
    let r = rule("rewrite name substring x y");
    assert!(matches!(r.rule, RewriteRule::Name { matcher: NameMatch::Substring(_), .. }));
    // Regex: used as written (not anchored), `{1}` in the replacement, answers name and value.
    let r = rule(r"rewrite name regex (.*)\.a\.org {1}.b.org answer name (.*)\.b\.org {1}.a.org answer value x y");
    let RewriteRule::Name { matcher: NameMatch::Regex(re), to, answer } = r.rule else { panic!() };
    assert_eq!((re.as_str(), to.as_str()), (r"(.*)\.a\.org", "{1}.b.org."));
    assert!(re.is_match("www.a.org.x"));
    assert!(matches!(&answer[..], [AnswerRewrite::Name { to, .. }, AnswerRewrite::Value { .. }] if to == "{1}.a.org."));
    // The rule in a block; `answer` may be left out after the first.
    let r = rule(
        "rewrite stop {\n name regex (.*)\\.a\\.org {1}.b.org\n answer name (.*)\\.b\\.org {1}.a.org value a b\n}",
    );
    assert!(matches!(r.rule, RewriteRule::Name { ref answer, .. } if answer.len() == 2));
    assert!(matches!(rule("rewrite type AAAA a").rule, RewriteRule::Type { from: 28, to: 1 }));
    assert!(matches!(rule("rewrite class CH in").rule, RewriteRule::Class { from: 3, to: 1 }));

    let rows: &[(&str, &str)] = &[
        ("rewrite name regex a {1}.x", "more subexpressions"),
        ("rewrite name regex a b answer auto answer name x y", "cannot be combined"),
        ("rewrite name exact a b answer", "invalid arguments"),
        ("rewrite name exact a b foo bar", "exceeded the number of arguments"),
        ("rewrite name exact a b answer bogus x", "invalid type \"bogus\""),
        ("rewrite name glob a b", "supports only exact, prefix"),
        ("rewrite name a", "too few arguments"),
        ("rewrite type A", "exactly two arguments"),
        ("rewrite type A BOGUS", "invalid type \"BOGUS\""),
        ("rewrite class XX IN", "invalid class"),
        ("rewrite edns0 local set 0xffee abc", "rule type 'edns0' is not supported"),
        ("rewrite ttl a.org 10", "'ttl' is not supported"),
        ("rewrite cname exact a b", "'cname' is not supported"),
        ("rewrite rcode a.org SERVFAIL NXDOMAIN", "'rcode' is not supported"),
        ("rewrite answer name a b", "must begin with a name rule"),
        ("rewrite bogus a b", "invalid rule type"),
        ("rewrite continue", "must begin with a rule type"),
    ];
    for (body, needle) in rows {
        assert_err(body, &block(body), 2, needle);
    }
}

#[test]
fn cache() {
    let c = |body: &str| match one(body) {
        Plugin::Cache(c) => c,
        p => panic!("{p:?}"),
    };
    let d = c("cache");
    assert_eq!(d.zones, zones(BLOCK));
    assert_eq!((d.success.capacity, d.success.max_ttl, d.success.min_ttl), (9984, secs(3600), secs(5)));
    assert_eq!((d.denial.capacity, d.denial.max_ttl, d.denial.min_ttl), (9984, secs(1800), secs(5)));
    assert_eq!((d.prefetch, d.serve_stale, d.servfail, d.keepttl), (None, None, secs(5), false));
    let d = c("cache 30 Example.org");
    assert_eq!((d.zones, d.success.max_ttl, d.denial.max_ttl), (zones(&["example.org."]), secs(30), secs(30)));
    let d = c(
        "cache {\n success 5000 600 10\n denial 100 20\n prefetch 10 1m 20%\n serve_stale 2h verify\n servfail 0\n keepttl\n}",
    );
    assert_eq!((d.success.capacity, d.success.max_ttl, d.success.min_ttl), (4864, secs(600), secs(10)));
    assert_eq!((d.denial.capacity, d.denial.max_ttl), (1024, secs(20)));
    assert_eq!(d.prefetch, Some(Prefetch { amount: 10, duration: secs(60), percentage: 20 }));
    assert_eq!(d.serve_stale, Some(ServeStale { duration: secs(7200), mode: StaleMode::Verify }));
    assert_eq!((d.servfail, d.keepttl), (Duration::ZERO, true));
    let d = c("cache {\n prefetch 2\n serve_stale\n disable success Cluster.local\n disable denial\n}");
    assert_eq!(d.prefetch, Some(Prefetch { amount: 2, duration: secs(60), percentage: 10 }));
    assert_eq!(d.serve_stale, Some(ServeStale { duration: secs(3600), mode: StaleMode::Immediate }));
    assert_eq!((d.success.disabled, d.denial.disabled), (zones(&["cluster.local."]), zones(&["."])));

    let rows: &[(&str, &str)] = &[
        ("cache 0", "can not be zero or negative"),
        ("cache {\n success\n}", "wrong argument count after 'success'"),
        ("cache {\n denial 10 0\n}", "can not be zero"),
        ("cache {\n success x\n}", "invalid number"),
        ("cache {\n prefetch 1 1m 5%\n}", "range [10, 90]"),
        ("cache {\n prefetch 1 1m 20\n}", "percentage should be `%`"),
        ("cache {\n prefetch -1\n}", "should be positive"),
        ("cache {\n serve_stale 1h sometimes\n}", "refresh mode"),
        ("cache {\n serve_stale 1h immediate 30s\n}", "not supported by clusterdns"),
        ("cache {\n serve_stale_policy prefer_positive\n}", "option 'serve_stale_policy' is not supported"),
        ("cache {\n servfail 6m\n}", "over 5 minutes"),
        ("cache {\n servfail -1s\n}", "negative duration"),
        ("cache {\n disable both\n}", "must be \"success\" or \"denial\""),
        ("cache {\n keepttl now\n}", "wrong argument count"),
        ("cache {\n bogus\n}", "unknown property 'bogus'"),
    ];
    for (body, needle) in rows {
        let line = if body.contains('{') { 3 } else { 2 };
        assert_err(body, &block(body), line, needle);
    }
}

#[test]
fn template() {
    let t = |body: &str| match one(body) {
        Plugin::Template(t) => t,
        p => panic!("{p:?}"),
    };
    let x = t("template ANY ANY");
    assert_eq!(
        (x.class, x.qtype, x.zones.clone(), x.rcode, x.fallthrough.clone()),
        (None, None, zones(BLOCK), 0, None)
    );
    assert_eq!(x.matches.iter().map(|r| r.as_str()).collect::<Vec<_>>(), [".*"]);
    let x = t("template IN AAAA Example.org {\n \
               match \"^(?P<host>[a-z]+)\\.example\\.org\\.$\" (.*)\n \
               answer \"{{ .Name }} 60 IN AAAA ::1\" \"{{.Group.host}}-{{ index .Match 1 }}.{{ .Zone }} 5 {{ .Class }} {{ .Type }} x\"\n \
               additional \"{{ index .Group \\\"host\\\" }} {{- \\\" y\\\" -}} {{/* c */}} {{ .Remote }}\"\n \
               authority \"x. 1 IN NS ns.x.\"\n \
               rcode NXDOMAIN\n \
               fallthrough a.org\n \
               upstream\n}");
    assert_eq!((x.class, x.qtype, x.zones.clone(), x.rcode), (Some(1), Some(28), zones(&["example.org."]), 3));
    assert_eq!(x.matches.len(), 2);
    assert!(x.matches[0].is_match("www.example.org."));
    use TemplatePiece::*;
    let txt = |s: &str| Text(s.to_string());
    assert_eq!(x.answer[0], [Name, txt(" 60 IN AAAA ::1")]);
    assert_eq!(
        x.answer[1],
        [Group("host".into()), txt("-"), Match(1), txt("."), Zone, txt(" 5 "), Class, txt(" "), Type, txt(" x")]
    );
    assert_eq!(x.additional[0], [Group("host".into()), txt(" y "), Remote]);
    assert_eq!(x.authority[0], [txt("x. 1 IN NS ns.x.")]);
    assert_eq!(x.fallthrough, Some(zones(&["a.org."])));
    assert_eq!(t("template CH TXT {\n fallthrough\n}").fallthrough, Some(zones(&["."])));

    let rows: &[(&str, usize, &str)] = &[
        ("template IN", 2, "wrong argument count"),
        ("template in A", 2, "invalid query class in"),
        ("template IN BOGUS", 2, "invalid RR type BOGUS"),
        ("template IN A {\n match\n}", 3, "wrong argument count after 'match'"),
        ("template IN A {\n answer \"{{ .Question }}\"\n}", 3, "unknown template field {{ .Question }}"),
        ("template IN A {\n answer \"{{ .Name \"\n}", 3, "unclosed action"),
        ("template IN A {\n answer\n}", 3, "wrong argument count"),
        ("template IN A {\n rcode nxdomain\n}", 3, "unknown rcode nxdomain"),
        ("template IN A {\n ederror 21\n}", 3, "option 'ederror' is not supported"),
        ("template IN A {\n var x 1\n}", 3, "option 'var' is not supported"),
        ("template IN A {\n bogus\n}", 3, "unknown property 'bogus'"),
    ];
    for (body, line, needle) in rows {
        assert_err(body, &block(body), *line, needle);
    }
}

#[test]
fn hosts() {
    let h = |body: &str| match one(body) {
        Plugin::Hosts(h) => h,
        p => panic!("{p:?}"),
    };
    let x = h("hosts");
    assert_eq!(x.file, std::path::PathBuf::from("/etc/hosts"));
    assert_eq!((x.zones.clone(), x.ttl, x.reload, x.no_reverse), (zones(BLOCK), 3600, secs(5), false));
    assert_eq!((x.inline.len(), x.fallthrough), (0, None));
    let x = h(
        "hosts /x/hosts a.org {\n 10.0.0.1 a.a.org a\n ::1 b.a.org\n ttl 60\n reload 0\n no_reverse\n fallthrough\n}",
    );
    assert_eq!((x.file.to_str(), x.zones.clone()), (Some("/x/hosts"), zones(&["a.org."])));
    assert_eq!(x.inline, ["10.0.0.1 a.a.org a", "::1 b.a.org"]);
    assert_eq!((x.ttl, x.reload, x.no_reverse, x.fallthrough), (60, Duration::ZERO, true, Some(zones(&["."]))));
    let rows: &[(&str, &str)] = &[
        ("hosts {\n ttl 0\n}", "ttl provided is invalid"),
        ("hosts {\n ttl x\n}", "ttl needs a number"),
        ("hosts {\n reload\n}", "wrong argument count"),
        ("hosts {\n fallthrough\n 10.0.0.1 x\n}", "unknown property '10.0.0.1'"),
        ("hosts {\n fallthrough_unsupported\n}", "option 'fallthrough_unsupported' is not supported"),
    ];
    for (body, needle) in rows {
        let line = if body.contains("fallthrough\n") { 4 } else { 3 };
        assert_err(body, &block(body), line, needle);
    }
}

#[test]
fn kubernetes() {
    let k = |body: &str| match one(body) {
        Plugin::Kubernetes(k) => k,
        p => panic!("{p:?}"),
    };
    let x = k("kubernetes");
    assert_eq!((x.zones.clone(), x.pods, x.ttl, x.fallthrough.clone()), (zones(BLOCK), Pods::Disabled, 5, None));
    assert_eq!((x.startup_timeout, x.service_cidr.to_string()), (secs(5), "10.96.0.0/12".to_string()));
    assert!(x.namespaces.is_empty() && x.manifests.is_empty() && x.kubeconfig.is_none() && x.endpoint.is_none());
    let x = k("kubernetes cluster.local 10.0.0.0/7 {\n pods verified\n ttl 0\n namespaces a b\n namespaces a c\n \
               labels app=x, tier in (a,b),!legacy\n endpoint_pod_names\n ignore empty_service\n noendpoints\n \
               kubeconfig /k.conf ctx\n endpoint https://10.0.0.1:6443 https://10.0.0.2\n startup_timeout 1m\n \
               manifests /m\n service_cidr 10.100.0.1/16\n fallthrough in-addr.arpa\n}");
    assert_eq!(x.zones, zones(&["cluster.local.", "10.in-addr.arpa.", "11.in-addr.arpa."]));
    assert_eq!((x.pods, x.ttl, x.namespaces.clone()), (Pods::Verified, 0, zones(&["a", "b", "c"])));
    assert_eq!(x.labels.as_ref().map(|s| s.text()), Some("app=x, tier in (a,b),!legacy"));
    assert!(x.endpoint_pod_names && x.ignore_empty_service && x.noendpoints);
    assert_eq!(x.kubeconfig, Some(("/k.conf".into(), Some("ctx".into()))));
    assert_eq!((x.endpoint.as_deref(), x.startup_timeout), (Some("https://10.0.0.1:6443"), secs(60)));
    assert_eq!((x.manifests.clone(), x.service_cidr.to_string()), (vec!["/m".into()], "10.100.0.0/16".into()));
    assert_eq!(x.fallthrough, Some(zones(&["in-addr.arpa."])));
    assert_eq!(
        k("kubernetes {\n namespace_labels team=a\n}").namespace_labels.map(|s| s.text().to_string()).as_deref(),
        Some("team=a")
    );

    let rows: &[(&str, usize, &str)] = &[
        ("kubernetes in-addr.arpa", 2, "non-reverse zone name must be used"),
        ("kubernetes {\n pods sometimes\n}", 3, "wrong value for pods: sometimes"),
        ("kubernetes {\n ttl 3601\n}", 3, "ttl must be in [0, 3600]"),
        ("kubernetes {\n labels a=(\n}", 3, "unable to parse labels selector"),
        ("kubernetes {\n namespaces a\n namespace_labels b=c\n}", 2, "cannot both be set"),
        ("kubernetes {\n ignore everything\n}", 3, "unable to parse ignore value"),
        ("kubernetes {\n kubeconfig\n}", 3, "wrong argument count"),
        ("kubernetes {\n service_cidr 10.0.0.0\n}", 3, "invalid service_cidr"),
        ("kubernetes {\n startup_timeout soon\n}", 3, "invalid duration"),
        ("kubernetes {\n resyncperiod 30s\n}", 3, "option 'resyncperiod' is not supported"),
        ("kubernetes {\n multicluster clusterset.local\n}", 3, "option 'multicluster' is not supported"),
        ("kubernetes {\n apiserver_qps 10\n}", 3, "option 'apiserver_qps' is not supported"),
        ("kubernetes {\n tls a b c\n}", 3, "option 'tls' is not supported"),
        ("kubernetes {\n bogus\n}", 3, "unknown property 'bogus'"),
    ];
    for (body, line, needle) in rows {
        assert_err(body, &block(body), *line, needle);
    }
}

#[test]
fn forward() {
    let d = Dir::new();
    let resolv = d.write("resolv.conf", "nameserver 10.0.0.53\nnameserver 10.0.0.53\noptions ndots:5\n");
    d.write("empty.conf", "search x\n");
    let f = |body: &str| match only(&d.parse(&block(body)).unwrap()) {
        Plugin::Forward(f) => f.clone(),
        p => panic!("{p:?}"),
    };
    let x = f("forward . 1.1.1.1");
    assert_eq!((x.from.as_str(), x.to.clone()), (".", vec![sa("1.1.1.1:53")]));
    assert_eq!(
        (x.expire, x.max_fails, x.health_check, x.read_timeout),
        (secs(10), 2, Duration::from_millis(500), secs(2))
    );
    assert_eq!((x.policy, x.max_concurrent, x.force_tcp, x.prefer_udp), (Policy::Random, 0, false, false));
    assert_eq!((x.health_check_no_rec, x.health_check_domain.as_str(), x.except.len()), (false, ".", 0));
    let x = f(&format!(
        "forward Example.org dns://1.1.1.1:5353 [::1]:54 ::2 {} resolv.conf 1.1.1.1:5353 empty.conf {{\n \
         except a.org 10.0.0.0/8\n force_tcp\n prefer_udp\n expire 1m\n max_fails 0\n \
         health_check 1s no_rec domain Probe.org\n policy round_robin\n max_concurrent 1000\n read_timeout 5s\n}}",
        resolv.display()
    ));
    assert_eq!(x.from, "example.org.");
    assert_eq!(x.to, [sa("1.1.1.1:5353"), sa("[::1]:54"), sa("[::2]:53"), sa("10.0.0.53:53")]);
    assert_eq!(x.except, zones(&["a.org.", "10.in-addr.arpa."]));
    assert!(x.force_tcp && x.prefer_udp && x.health_check_no_rec);
    assert_eq!((x.expire, x.max_fails, x.health_check, x.read_timeout), (secs(60), 0, secs(1), secs(5)));
    assert_eq!((x.health_check_domain.as_str(), x.policy, x.max_concurrent), ("probe.org.", Policy::RoundRobin, 1000));
    assert_eq!(f("forward 10.0.0.0/7 1.1.1.1").from, "10.in-addr.arpa.");
    assert_eq!(f("forward . 1.1.1.1 {\n policy sequential\n}").policy, Policy::Sequential);

    let rows: &[(&str, usize, &str)] = &[
        ("forward .", 2, "wrong argument count"),
        ("forward . tls://1.1.1.1", 2, "tls:// upstreams are not supported"),
        ("forward . https://dns.example/dns-query", 2, "https:// upstreams are not supported"),
        ("forward . no-such-file", 2, "not an IP address or file"),
        ("forward . dns.google", 2, "host names are not supported"),
        ("forward . empty.conf", 2, "no nameservers found in empty.conf"),
        ("forward . 1.1.1.1 {\n policy fastest\n}", 3, "unknown policy 'fastest'"),
        ("forward . 1.1.1.1 {\n read_timeout 0s\n}", 3, "must be positive"),
        ("forward . 1.1.1.1 {\n expire -1s\n}", 3, "negative duration"),
        ("forward . 1.1.1.1 {\n max_fails -1\n}", 3, "invalid max_fails"),
        ("forward . 1.1.1.1 {\n max_concurrent -1\n}", 3, "can't be negative"),
        ("forward . 1.1.1.1 {\n health_check 1s sometimes\n}", 3, "unknown option sometimes"),
        ("forward . 1.1.1.1 {\n force_tcp yes\n}", 3, "wrong argument count"),
        ("forward . 1.1.1.1 {\n except\n}", 3, "wrong argument count"),
        ("forward . 1.1.1.1 {\n max_idle_conns 5\n}", 3, "option 'max_idle_conns' is not supported"),
        ("forward . 1.1.1.1 {\n max_connect_attempts 5\n}", 3, "option 'max_connect_attempts' is not supported"),
        ("forward . 1.1.1.1 {\n failfast_all_unhealthy_upstreams\n}", 3, "not supported"),
        ("forward . 1.1.1.1 {\n failover SERVFAIL\n}", 3, "option 'failover' is not supported"),
        ("forward . 1.1.1.1 {\n next NXDOMAIN\n}", 3, "option 'next' is not supported"),
        ("forward . 1.1.1.1 {\n source_address 10.0.0.1\n}", 3, "option 'source_address' is not supported"),
        ("forward . 1.1.1.1 {\n tls\n}", 3, "option 'tls' is not supported"),
        ("forward . 1.1.1.1 {\n tls_servername x\n}", 3, "option 'tls_servername' is not supported"),
        ("forward . 1.1.1.1 {\n resolver 1.1.1.1\n}", 3, "option 'resolver' is not supported"),
        ("forward . 1.1.1.1 {\n doh_method GET\n}", 3, "option 'doh_method' is not supported"),
    ];
    for (body, line, needle) in rows {
        let e = d.parse(&block(body)).unwrap_err();
        assert_eq!(
            (e.pos.clone(), e.message.contains(needle)),
            (Pos { file: d.path("Corefile"), line: *line }, true),
            "{body}: {e}"
        );
    }
    let many: String = (1..=16).map(|i| format!(" 10.0.0.{i}")).collect();
    assert_err("16 TOs", &block(&format!("forward .{many}")), 2, "more than 15 TOs");
}

#[test]
fn small_directive_errors() {
    let rows: &[(&str, usize, &str)] = &[
        ("reload 1s", 2, "greater or equal to 2s"),
        ("reload 10s 500ms", 2, "jitter value must be 0 or greater or equal to 1s"),
        ("reload 1 2 3", 2, "wrong argument count"),
        ("reload {\n bogus\n}", 3, "unknown property 'bogus'"),
        ("bufsize 511", 2, "bufsize: SIZE must be in [512, 4096]"),
        ("bufsize 1 2", 2, "wrong argument count"),
        ("bind", 2, "at least one address"),
        ("bind 127.0.0.1 {\n except\n}", 3, "wrong argument count"),
        ("bind 127.0.0.1 {\n except 127.0.0.1\n}", 2, "no address is left"),
        ("bind 127.0.0.1 {\n only x\n}", 3, "invalid option \"only\""),
        ("ready {\n monitor continuously\n}", 3, "monitor continuously is not supported"),
        ("ready {\n monitor often\n}", 3, "not supported"),
        ("ready :1 :2", 2, "wrong argument count"),
        ("health :99999", 2, "invalid port"),
        ("health {\n lameduck\n}", 3, "wrong argument count"),
        ("health {\n bogus\n}", 3, "unknown property 'bogus'"),
        ("prometheus {\n runtime_metrics\n}", 3, "option 'runtime_metrics' is not supported"),
        ("prometheus {\n bogus\n}", 3, "unknown property"),
        ("errors stderr", 2, "invalid log file"),
        ("errors {\n consolidate 5m \".* timeout$\"\n}", 3, "option 'consolidate' is not supported"),
        ("errors {\n stacktrace\n}", 3, "option 'stacktrace' is not supported"),
        ("errors {\n bogus\n}", 3, "unknown property"),
        ("log . {\n class errors\n}", 3, "invalid class: errors"),
        ("log {\n format x\n}", 3, "unknown property 'format'"),
        ("any x", 2, "wrong argument count"),
        ("any {\n x\n}", 3, "unknown property 'x'"),
        ("chaos v {\n x\n}", 3, "unknown property 'x'"),
        ("loadbalance weighted /w", 2, "policy 'weighted' is not supported"),
        ("loadbalance random", 2, "unknown policy: random"),
        ("loadbalance round_robin x", 2, "unknown property for round_robin"),
        ("loadbalance {\n prefer 10.0.0.0/8\n}", 3, "option 'prefer' is not supported"),
        ("minimal x", 2, "wrong argument count"),
        ("loop x", 2, "wrong argument count"),
        ("loop {\n}", 2, "no block"),
    ];
    for (body, line, needle) in rows {
        assert_err(body, &block(body), *line, needle);
    }
}

#[test]
fn transfer() {
    let t = |body: &str| match one(body) {
        Plugin::Transfer(t) => t,
        p => panic!("{p:?}"),
    };
    let x = t("transfer {\n to 10.0.0.1 [fd00::1]:5300\n to 10.0.0.2\n source 10.0.0.9\n}");
    assert_eq!(x.zones, zones(BLOCK));
    let ips = |s: &[&str]| s.iter().map(|i| i.parse().unwrap()).collect::<Vec<std::net::IpAddr>>();
    assert_eq!(x.to, Some(ips(&["10.0.0.1", "fd00::1", "10.0.0.2"])));
    assert!(x.allows("10.0.0.2".parse().unwrap()) && x.allows("::ffff:10.0.0.1".parse().unwrap()));
    assert!(!x.allows("10.0.0.3".parse().unwrap()));
    let x = t("transfer cluster.local {\n to *\n}");
    assert_eq!((x.zones, x.to), (zones(&["cluster.local."]), None));
}
