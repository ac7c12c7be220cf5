//! `forward FROM TO... { ... }` as plugin/forward/setup.go reads it; TO is
//! an address or a resolv.conf-like file (plugin/pkg/parse/host.go).

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use super::config::*;
use super::lexer::Token;
use super::plugins::{Ctx, arg_err, lines, unknown, unsupported};
use super::syntax::RawDirective;
use super::{CorefileError, anchored, values};

/// CoreDNS's limit on TO arguments.
const MAX_TO: usize = 15;

/// Options of CoreDNS's forward plugin that clusterdns does not implement.
const UNSUPPORTED: &[&str] = &[
    "max_idle_conns",
    "max_connect_attempts",
    "failfast_all_unhealthy_upstreams",
    "failover",
    "next",
    "next_on_nodata",
    "source_address",
    "tls",
    "tls_servername",
    "resolver",
    "doh_method",
    "max_age",
];

pub(crate) fn parse(d: &RawDirective, cx: &Ctx) -> Result<Forward, CorefileError> {
    let [from_tok, to @ ..] = d.args.as_slice() else { return Err(arg_err(d, &d.name, "FROM TO...")) };
    if to.is_empty() {
        return Err(arg_err(d, &d.name, "FROM TO..."));
    }
    // A CIDR that splits into several zones: CoreDNS uses the first.
    let Some(from) = values::zones_of(from_tok)?.into_iter().next() else {
        return Err(from_tok.err(format!("forward: unable to normalize '{}'", from_tok.text)));
    };
    let mut f = Forward {
        from,
        to: Vec::new(),
        except: Vec::new(),
        force_tcp: false,
        prefer_udp: false,
        expire: Duration::from_secs(10),
        max_fails: 2,
        health_check: Duration::from_millis(500),
        health_check_no_rec: false,
        health_check_domain: ".".into(),
        policy: Policy::Random,
        max_concurrent: 0,
        read_timeout: Duration::from_secs(2),
    };
    for line in lines(d) {
        option(d, &mut f, &line[0], &line[1..])?;
    }

    let mut entries = 0;
    let mut empty_files = Vec::new();
    for t in to {
        let addrs = upstream(t, cx.base)?;
        if addrs.is_empty() {
            // CoreDNS skips a resolv.conf without nameservers.
            empty_files.push(t.text.as_str());
            continue;
        }
        entries += 1;
        for a in addrs {
            if !f.to.contains(&a) {
                f.to.push(a);
            }
        }
    }
    if entries > MAX_TO {
        return Err(d.name.err(format!("forward: more than {MAX_TO} TOs configured: {entries}")));
    }
    if f.to.is_empty() {
        return Err(d.name.err(format!("forward: no nameservers found in {}", empty_files.join(", "))));
    }
    Ok(f)
}

fn one<'t>(d: &RawDirective, opt: &Token, args: &'t [Token], what: &str) -> Result<&'t Token, CorefileError> {
    match args {
        [a] => Ok(a),
        _ => Err(arg_err(d, opt, what)),
    }
}

fn option(d: &RawDirective, f: &mut Forward, opt: &Token, args: &[Token]) -> Result<(), CorefileError> {
    match opt.as_str() {
        "except" => {
            if args.is_empty() {
                return Err(arg_err(d, opt, "at least one zone"));
            }
            for a in args {
                f.except.extend(values::zones_of(a)?);
            }
        }
        "max_fails" => {
            let t = one(d, opt, args, "one number")?;
            f.max_fails = t.text.parse().map_err(|_| t.err(format!("forward: invalid max_fails \"{}\"", t.text)))?;
        }
        "health_check" => {
            let Some((dur, rest)) = args.split_first() else {
                return Err(arg_err(d, opt, "DURATION [no_rec] [domain FQDN]"));
            };
            f.health_check = values::duration(dur)?;
            f.health_check_domain = ".".into();
            let mut i = 0;
            while let Some(o) = rest.get(i) {
                match o.as_str() {
                    "no_rec" => f.health_check_no_rec = true,
                    "domain" => {
                        let Some(name) = rest.get(i + 1) else { return Err(arg_err(d, o, "a domain name")) };
                        if !values::is_domain_name(&name.text) {
                            return Err(name.err(format!("forward: health_check: invalid domain name {}", name.text)));
                        }
                        f.health_check_domain = values::fqdn(&name.text);
                        i += 1;
                    }
                    other => return Err(o.err(format!("forward: health_check: unknown option {other}"))),
                }
                i += 1;
            }
        }
        "force_tcp" | "prefer_udp" if !args.is_empty() => return Err(arg_err(d, opt, "no arguments")),
        "force_tcp" => f.force_tcp = true,
        "prefer_udp" => f.prefer_udp = true,
        "expire" => f.expire = values::duration(one(d, opt, args, "one duration")?)?,
        "read_timeout" => {
            let t = one(d, opt, args, "one duration")?;
            let dur = values::duration(t)?;
            if dur.is_zero() {
                return Err(t.err(format!("forward: read_timeout must be positive: {}", t.text)));
            }
            f.read_timeout = dur;
        }
        "policy" => {
            let t = one(d, opt, args, "random|round_robin|sequential")?;
            f.policy = match t.as_str() {
                "random" => Policy::Random,
                "round_robin" => Policy::RoundRobin,
                "sequential" => Policy::Sequential,
                other => return Err(t.err(format!("forward: unknown policy '{other}'"))),
            };
        }
        "max_concurrent" => {
            let t = one(d, opt, args, "one number")?;
            let n = values::int(t)?;
            f.max_concurrent =
                usize::try_from(n).map_err(|_| t.err(format!("forward: max_concurrent can't be negative: {n}")))?;
        }
        o if UNSUPPORTED.contains(&o) => return Err(unsupported(d, opt)),
        _ => return Err(unknown(d, opt)),
    }
    Ok(())
}

fn strip_zone(h: &str) -> &str {
    h.rsplit_once('%').map_or(h, |(ip, _)| ip)
}

/// One TO: `IP`, `IP:PORT`, `[IPv6]:PORT` (any `dns://` prefix), or a
/// resolv.conf whose nameservers are taken (port 53). An empty list is a
/// file without nameservers.
fn upstream(t: &Token, base: &Path) -> Result<Vec<SocketAddr>, CorefileError> {
    let (trans, rest) = values::transport(&t.text);
    if rest.is_empty() {
        return Err(t.err(format!("forward: invalid address: \"{}\"", t.text)));
    }
    if trans != "dns" {
        return Err(
            t.err(format!("forward: {trans}:// upstreams are not supported by clusterdns (only dns://): {}", t.text))
        );
    }
    match values::split_host_port(rest) {
        Ok((h, p)) => {
            if let Ok(ip) = strip_zone(h).parse::<IpAddr>() {
                let port = values::port(p, rest).map_err(|e| t.err(format!("forward: {e}")))?;
                return Ok(vec![SocketAddr::new(ip, port)]);
            }
        }
        Err(_) => {
            let h = rest.trim_matches(['[', ']']);
            if let Ok(ip) = strip_zone(h).parse::<IpAddr>() {
                return Ok(vec![SocketAddr::new(ip, 53)]);
            }
        }
    }
    resolv_conf(t, &anchored(base, rest))
}

/// The `nameserver` lines of a resolv.conf.
fn resolv_conf(t: &Token, path: &Path) -> Result<Vec<SocketAddr>, CorefileError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(t.err(format!(
                "forward: not an IP address or file: \"{}\" ({} does not exist; host names are not supported as upstreams by clusterdns)",
                t.text,
                path.display()
            )));
        }
        Err(e) => return Err(t.err(format!("forward: cannot read {}: {e}", path.display()))),
    };
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let mut words = line.split_whitespace();
        if words.next() != Some("nameserver") {
            continue;
        }
        let Some(addr) = words.next() else { continue };
        let ip: IpAddr = strip_zone(addr).parse().map_err(|_| {
            t.err(format!("forward: {}:{}: nameserver \"{addr}\" is not an IP address", path.display(), n + 1))
        })?;
        out.push(SocketAddr::new(ip, 53));
    }
    Ok(out)
}
