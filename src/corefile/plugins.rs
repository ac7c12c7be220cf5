//! One function per directive: the arguments and options CoreDNS's
//! `setup.go` of that plugin accepts, with its defaults. The larger plugins
//! have files of their own.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use super::config::*;
use super::lexer::Token;
use super::syntax::RawDirective;
use super::values::{self, duration, int, int_in};
use super::{CorefileError, anchored, cache, forward, kubernetes, rewrite, template};

/// What a directive may need of its server block.
pub(crate) struct Ctx<'a> {
    /// The block's zones, in key order.
    pub zones: &'a [String],
    /// The Corefile's folder (relative paths are resolved against it).
    pub base: &'a Path,
}

/// `health` without an address: `:8080`, every IPv4 address.
pub(crate) const DEFAULT_HEALTH: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 8080);
const DEFAULT_READY: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 8181);
const DEFAULT_PROMETHEUS: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 9153);

/// CoreDNS's common log format (plugin/log, `replacer.EmptyValue` for the
/// identity field).
macro_rules! common_log_format {
    () => {
        r#"{remote}:{port} - {>id} "{type} {class} {name} {proto} {size} {>do} {>bufsize}" {rcode} {>rflags} {rsize} {duration}"#
    };
}

/// `log` without a format, and `{common}`.
pub(crate) const COMMON_LOG_FORMAT: &str = common_log_format!();
/// `{combined}`: the common format and the opcode.
pub(crate) const COMBINED_LOG_FORMAT: &str = concat!(common_log_format!(), r#" "{>opcode}""#);

pub(crate) fn parse(d: &RawDirective, cx: &Ctx) -> Result<Plugin, CorefileError> {
    Ok(match d.name.as_str() {
        "reload" => Plugin::Reload(reload(d)?),
        "bufsize" => Plugin::Bufsize(bufsize(d)?),
        "bind" => Plugin::Bind(bind(d)?),
        "ready" => Plugin::Ready(ready(d)?),
        "health" => {
            let (addr, lameduck) = health_parts(d)?;
            Plugin::Health(Health { addr: addr.unwrap_or(DEFAULT_HEALTH), lameduck: lameduck.unwrap_or_default() })
        }
        "prometheus" => Plugin::Prometheus(prometheus(d)?),
        "errors" => errors(d).map(|()| Plugin::Errors)?,
        "log" => Plugin::Log(log(d)?),
        "any" => bare(d).map(|()| Plugin::Any)?,
        "chaos" => Plugin::Chaos(chaos(d)?),
        "loadbalance" => loadbalance(d).map(|()| Plugin::Loadbalance)?,
        "rewrite" => Plugin::Rewrite(rewrite::parse(d)?),
        "cache" => Plugin::Cache(cache::parse(d, cx)?),
        "minimal" => bare(d).map(|()| Plugin::Minimal)?,
        "template" => Plugin::Template(template::parse(d, cx)?),
        "hosts" => Plugin::Hosts(hosts(d, cx)?),
        "kubernetes" => Plugin::Kubernetes(kubernetes::parse(d, cx)?),
        "transfer" => Plugin::Transfer(transfer(d, cx)?),
        "loop" => {
            bare(d)?;
            if let Some(b) = &d.body {
                return Err(b.open.err("loop: takes no arguments and no block"));
            }
            Plugin::Loop
        }
        "forward" => Plugin::Forward(forward::parse(d, cx)?),
        other => return Err(d.name.err(format!("unknown directive '{other}'"))),
    })
}

/// The option lines of the directive's block (none without a block).
pub(crate) fn lines(d: &RawDirective) -> &[Vec<Token>] {
    d.body.as_ref().map(|b| b.lines.as_slice()).unwrap_or(&[])
}

/// `plugin: unknown property 'x'` for an option line.
pub(crate) fn unknown(d: &RawDirective, opt: &Token) -> CorefileError {
    opt.err(format!("{}: unknown property '{}'", d.name.text, opt.text))
}

/// An option CoreDNS has that clusterdns does not implement.
pub(crate) fn unsupported(d: &RawDirective, opt: &Token) -> CorefileError {
    opt.err(format!("{}: option '{}' is not supported by clusterdns", d.name.text, opt.text))
}

/// Wrong number of arguments after `what` (the directive or an option).
pub(crate) fn arg_err(d: &RawDirective, what: &Token, expected: &str) -> CorefileError {
    if what.text == d.name.text {
        what.err(format!("{}: wrong argument count: expected {expected}", d.name.text))
    } else {
        what.err(format!("{}: wrong argument count after '{}': expected {expected}", d.name.text, what.text))
    }
}

/// A directive with neither arguments nor options (an empty block is fine).
fn bare(d: &RawDirective) -> Result<(), CorefileError> {
    if !d.args.is_empty() {
        return Err(arg_err(d, &d.name, "no arguments"));
    }
    no_options(d)
}

/// A block holds only options CoreDNS has and clusterdns does not
/// (`known`), or unknown ones: either way the first is an error.
fn reject_options(d: &RawDirective, known: &[&str]) -> Result<(), CorefileError> {
    match lines(d).first() {
        Some(line) if known.contains(&line[0].as_str()) => Err(unsupported(d, &line[0])),
        Some(line) => Err(unknown(d, &line[0])),
        None => Ok(()),
    }
}

pub(crate) fn no_options(d: &RawDirective) -> Result<(), CorefileError> {
    match lines(d).first() {
        Some(line) => Err(unknown(d, &line[0])),
        None => Ok(()),
    }
}

/// `reload [INTERVAL [JITTER]]`
fn reload(d: &RawDirective) -> Result<Reload, CorefileError> {
    no_options(d)?;
    if d.args.len() > 2 {
        return Err(arg_err(d, &d.name, "[INTERVAL [JITTER]]"));
    }
    let nanos = |t: &Token| values::go_duration(&t.text).map_err(|e| t.err(format!("reload: {e}")));
    let interval = match d.args.first() {
        Some(t) => nanos(t)?,
        None => 30_000_000_000,
    };
    if interval < 2_000_000_000 {
        return Err(d.args[0].err("reload: interval value must be greater or equal to 2s"));
    }
    let jitter = match d.args.get(1) {
        Some(t) => nanos(t)?,
        None => 15_000_000_000,
    };
    if jitter != 0 && jitter < 1_000_000_000 {
        return Err(d.args[1].err("reload: jitter value must be 0 or greater or equal to 1s"));
    }
    let jitter = jitter.min(interval / 2);
    Ok(Reload { interval: Duration::from_nanos(interval as u64), jitter: Duration::from_nanos(jitter as u64) })
}

/// `bufsize [SIZE]`
fn bufsize(d: &RawDirective) -> Result<u16, CorefileError> {
    no_options(d)?;
    match d.args.as_slice() {
        [] => Ok(1232),
        [t] => Ok(int_in(t, 512, 4096, "bufsize: SIZE")? as u16),
        _ => Err(arg_err(d, &d.name, "[SIZE]")),
    }
}

fn bind_ip(d: &RawDirective, t: &Token) -> Result<IpAddr, CorefileError> {
    t.text.parse().map_err(|_| {
        t.err(format!(
            "{}: \"{}\" is not an IP address (binding to interface names or scoped addresses is not supported by clusterdns)",
            d.name.text, t.text
        ))
    })
}

/// `bind ADDR... { except ADDR... }`: IP addresses only.
fn bind(d: &RawDirective) -> Result<Vec<IpAddr>, CorefileError> {
    if d.args.is_empty() {
        return Err(d.name.err("bind: at least one address is expected"));
    }
    let mut ips = Vec::new();
    for t in &d.args {
        ips.push(bind_ip(d, t)?);
    }
    let mut except = Vec::new();
    for line in lines(d) {
        match line[0].as_str() {
            "except" if line.len() > 1 => {
                for t in &line[1..] {
                    except.push(bind_ip(d, t)?);
                }
            }
            "except" => return Err(arg_err(d, &line[0], "at least one address")),
            _ => return Err(line[0].err(format!("bind: invalid option \"{}\"", line[0].text))),
        }
    }
    ips.retain(|ip| !except.contains(ip));
    if ips.is_empty() {
        return Err(d.name.err("bind: no address is left once the exceptions are taken out"));
    }
    Ok(ips)
}

/// `ready [ADDR] { monitor until-ready }`
fn ready(d: &RawDirective) -> Result<SocketAddr, CorefileError> {
    let addr = match d.args.as_slice() {
        [] => DEFAULT_READY,
        [t] => values::listen_addr(t)?,
        _ => return Err(arg_err(d, &d.name, "[ADDR]")),
    };
    for line in lines(d) {
        match (line[0].as_str(), &line[1..]) {
            ("monitor", [m]) if m.text == "until-ready" => {}
            ("monitor", [m]) if m.text == "continuously" => {
                return Err(m.err("ready: monitor continuously is not supported by clusterdns"));
            }
            ("monitor", [m]) => return Err(m.err(format!("ready: monitor type '{}' not supported", m.text))),
            ("monitor", _) => return Err(arg_err(d, &line[0], "one monitor type")),
            _ => return Err(unknown(d, &line[0])),
        }
    }
    Ok(addr)
}

/// `health [ADDR] { lameduck DUR }`: what was written of each.
pub(crate) fn health_parts(d: &RawDirective) -> Result<(Option<SocketAddr>, Option<Duration>), CorefileError> {
    let addr = match d.args.as_slice() {
        [] => None,
        [t] => Some(values::listen_addr(t)?),
        _ => return Err(arg_err(d, &d.name, "[ADDR]")),
    };
    let mut lameduck = None;
    for line in lines(d) {
        match (line[0].as_str(), &line[1..]) {
            ("lameduck", [t]) => lameduck = Some(duration(t)?),
            ("lameduck", _) => return Err(arg_err(d, &line[0], "one duration")),
            _ => return Err(unknown(d, &line[0])),
        }
    }
    Ok((addr, lameduck))
}

/// `prometheus [ADDR]`
fn prometheus(d: &RawDirective) -> Result<SocketAddr, CorefileError> {
    let addr = match d.args.as_slice() {
        [] => DEFAULT_PROMETHEUS,
        [t] => values::listen_addr(t)?,
        _ => return Err(arg_err(d, &d.name, "[ADDR]")),
    };
    reject_options(d, &["runtime_metrics", "tls"])?;
    Ok(addr)
}

/// `errors [stdout]`
fn errors(d: &RawDirective) -> Result<(), CorefileError> {
    match d.args.as_slice() {
        [] => {}
        [t] if t.text == "stdout" => {}
        [t] => return Err(t.err(format!("errors: invalid log file: {}", t.text))),
        _ => return Err(arg_err(d, &d.name, "[stdout]")),
    }
    reject_options(d, &["stacktrace", "consolidate"])?;
    Ok(())
}

/// `log [NAMES...] [FORMAT] { class CLASSES... }`
fn log(d: &RawDirective) -> Result<Log, CorefileError> {
    let mut args: Vec<&Token> = d.args.iter().collect();
    let mut format = COMMON_LOG_FORMAT.to_string();
    // As CoreDNS: with two or more arguments a last one holding `{` is the
    // format; a single argument is always a name.
    if args.len() > 1 && args.last().is_some_and(|t| t.text.contains('{')) {
        let f = args.pop().map(|t| t.text.as_str()).unwrap_or_default();
        format = f.replace("{common}", COMMON_LOG_FORMAT).replace("{combined}", COMBINED_LOG_FORMAT);
    }
    let names =
        if args.is_empty() { vec![".".to_string()] } else { args.iter().map(|t| values::fqdn(&t.text)).collect() };
    let mut classes = LogClasses::default();
    let mut any = false;
    for line in lines(d) {
        if line[0].text != "class" {
            return Err(unknown(d, &line[0]));
        }
        if line.len() < 2 {
            return Err(arg_err(d, &line[0], "at least one class"));
        }
        for c in &line[1..] {
            match c.as_str() {
                "all" => classes = LogClasses { success: true, denial: true, error: true },
                "success" => classes.success = true,
                "denial" => classes.denial = true,
                "error" => classes.error = true,
                other => return Err(c.err(format!("log: invalid class: {other}"))),
            }
            any = true;
        }
    }
    if !any {
        classes = LogClasses { success: true, denial: true, error: true };
    }
    Ok(Log { names, format, classes })
}

/// Cut to 255 octets (a TXT string), as CoreDNS's `trim`.
fn trim255(s: &str) -> String {
    let mut end = s.len().min(255);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

/// `chaos [VERSION] [AUTHORS...]`
fn chaos(d: &RawDirective) -> Result<Chaos, CorefileError> {
    no_options(d)?;
    let version = match d.args.first() {
        Some(v) => trim255(&v.text),
        None => format!("clusterdns-{}", env!("CARGO_PKG_VERSION")),
    };
    let authors = if d.args.len() > 1 {
        let mut a: Vec<String> = d.args[1..].iter().map(|t| trim255(&t.text)).collect();
        a.sort();
        a.dedup();
        a
    } else {
        default_authors()
    };
    Ok(Chaos { version, authors })
}

/// The package's authors, or `clusterdns` when Cargo.toml names none.
fn default_authors() -> Vec<String> {
    let a: Vec<String> =
        env!("CARGO_PKG_AUTHORS").split(':').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect();
    if a.is_empty() { vec!["clusterdns".to_string()] } else { a }
}

/// `transfer [ZONES...] { to ADDRESS... source ADDRESS }`: `to` at least
/// once (`*`, an IP, or an IP and port); `source` only sets where NOTIFY
/// would come from, and clusterdns sends none.
fn transfer(d: &RawDirective, cx: &Ctx) -> Result<Transfer, CorefileError> {
    let zones = values::zones_or_block(&d.args, cx.zones)?;
    let mut to: Option<Vec<IpAddr>> = Some(Vec::new());
    let mut any_to = false;
    for line in lines(d) {
        let (opt, args) = (&line[0], &line[1..]);
        match opt.as_str() {
            "to" if args.is_empty() => return Err(arg_err(d, opt, "one address or more, or *")),
            "to" => {
                any_to = true;
                for a in args {
                    if a.text == "*" {
                        to = None;
                        continue;
                    }
                    let ip = a
                        .text
                        .parse::<IpAddr>()
                        .or_else(|_| a.text.parse::<SocketAddr>().map(|s| s.ip()))
                        .map_err(|_| a.err(format!("transfer: '{}' is not an IP address, IP:port or *", a.text)))?
                        // Compared as the peer is: an IPv4-mapped address as IPv4.
                        .to_canonical();
                    if let Some(list) = &mut to {
                        list.push(ip);
                    }
                }
            }
            "source" => match args {
                [a] if a.text.parse::<IpAddr>().is_ok() => {}
                _ => return Err(arg_err(d, opt, "one IP address")),
            },
            _ => return Err(opt.err(format!("transfer: unknown property '{}'", opt.as_str()))),
        }
    }
    if !any_to {
        return Err(d.name.err("transfer: give the clients allowed with 'to ADDRESS...' (or 'to *')"));
    }
    Ok(Transfer { zones, to })
}

/// `loadbalance [round_robin]`
fn loadbalance(d: &RawDirective) -> Result<(), CorefileError> {
    match d.args.as_slice() {
        [] => {}
        [p] if p.text == "round_robin" => {}
        [p, extra, ..] if p.text == "round_robin" => {
            return Err(extra.err("loadbalance: unknown property for round_robin"));
        }
        [p, ..] if p.text == "weighted" => {
            return Err(p.err("loadbalance: policy 'weighted' is not supported by clusterdns"));
        }
        [p, ..] => return Err(p.err(format!("loadbalance: unknown policy: {}", p.text))),
    }
    reject_options(d, &["prefer"])?;
    Ok(())
}

/// `hosts [FILE [ZONES...]] { ... }`
fn hosts(d: &RawDirective, cx: &Ctx) -> Result<Hosts, CorefileError> {
    let mut file = std::path::PathBuf::from("/etc/hosts");
    let mut zone_args: &[Token] = &[];
    if let Some((f, rest)) = d.args.split_first() {
        file = anchored(cx.base, &f.text);
        if let Err(e) = std::fs::metadata(&file)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            return Err(f.err(format!("hosts: unable to access hosts file '{}': {e}", file.display())));
        }
        zone_args = rest;
    }
    let mut h = Hosts {
        file,
        zones: values::zones_or_block(zone_args, cx.zones)?,
        inline: Vec::new(),
        ttl: 3600,
        reload: Duration::from_secs(5),
        no_reverse: false,
        fallthrough: None,
    };
    for line in lines(d) {
        let (opt, args) = (&line[0], &line[1..]);
        match opt.as_str() {
            "fallthrough" => h.fallthrough = Some(values::fallthrough(args)?),
            "fallthrough_unsupported" => return Err(unsupported(d, opt)),
            "no_reverse" if args.is_empty() => h.no_reverse = true,
            "no_reverse" => return Err(arg_err(d, opt, "no arguments")),
            "ttl" => match args {
                [t] => {
                    let n = int(t).map_err(|_| t.err("hosts: ttl needs a number of seconds"))?;
                    if !(1..=65535).contains(&n) {
                        return Err(t.err(format!("hosts: ttl provided is invalid: {n} (1..=65535)")));
                    }
                    h.ttl = n as u32;
                }
                _ => return Err(arg_err(d, opt, "a time in seconds")),
            },
            "reload" => match args {
                [t] => h.reload = duration(t)?,
                _ => return Err(arg_err(d, opt, "a duration (zero seconds to disable)")),
            },
            // Any other line is a hosts-file entry, until `fallthrough`.
            _ if h.fallthrough.is_none() => {
                h.inline.push(line.iter().map(|t| t.text.as_str()).collect::<Vec<_>>().join(" "));
            }
            _ => return Err(unknown(d, opt)),
        }
    }
    Ok(h)
}
