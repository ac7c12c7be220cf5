//! The Corefile parser: Corefile text in, the typed [`Corefile`] of
//! `config` out, with CoreDNS's rules for what is accepted (its Caddyfile
//! grammar, its server block keys, each plugin's `setup.go`).
//!
//! Stages: `lexer` cuts tokens, `syntax` builds raw server blocks (imports
//! and snippets spliced in), this module reads the keys and puts each
//! block's directives in order, and `plugins` (with one file per larger
//! plugin) types each directive. Nothing here touches the network; files
//! are read (the Corefile, its imports, a resolv.conf named by `forward`).

mod cache;
pub mod config;
mod forward;
mod kubernetes;
mod lexer;
mod plugins;
mod rewrite;
mod syntax;
mod template;
mod values;

#[cfg(test)]
mod tests;

pub use config::*;

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use lexer::Token;
use syntax::RawDirective;

/// What the parser needs from outside.
pub struct Options<'a> {
    /// The port of a key written without one (CoreDNS's `-dns.port`, 53).
    pub default_port: u16,
    /// Looks up `{$VAR}` and `{%VAR%}`; `None` reads as the empty string.
    pub env: &'a dyn Fn(&str) -> Option<String>,
}

/// A Corefile that cannot be used: where, and why.
#[derive(Debug, thiserror::Error)]
#[error("{}: {message}", show_pos(pos))]
pub struct CorefileError {
    pub pos: Pos,
    pub message: String,
}

/// `file:line`, or just the file for line 0 (the file itself is at fault).
fn show_pos(pos: &Pos) -> String {
    if pos.line == 0 { pos.file.display().to_string() } else { pos.to_string() }
}

/// Reads and parses the Corefile at `path`.
pub fn parse_file(path: &Path, opts: &Options) -> Result<Corefile, CorefileError> {
    let text = std::fs::read_to_string(path).map_err(|e| CorefileError {
        pos: Pos { file: path.to_path_buf(), line: 0 },
        message: format!("cannot read the Corefile: {e}"),
    })?;
    parse_str(&text, path, opts)
}

/// `file` names the text in errors and anchors relative imports/paths to its folder.
pub fn parse_str(text: &str, file: &Path, opts: &Options) -> Result<Corefile, CorefileError> {
    let raw = syntax::parse_blocks(text, file, opts.env, &check_directive)?;
    let base = file.parent().map(Path::to_path_buf).unwrap_or_default();
    let mut blocks = Vec::with_capacity(raw.len());
    for b in raw {
        blocks.push(server_block(b, &base, opts)?);
    }
    check_overlap(&blocks)?;
    Ok(Corefile { blocks })
}

/// CoreDNS's `plugin.cfg`, in order: the order of each block's chain.
#[rustfmt::skip]
const PLUGIN_ORDER: &[&str] = &[
    "root", "metadata", "geoip", "cancel", "proxyproto", "quic", "grpc_server", "https", "https3", "timeouts",
    "multisocket", "reload", "nsid", "bufsize", "bind", "debug", "trace", "ready", "health", "pprof", "shed",
    "prometheus", "errors", "log", "dnstap", "local", "dns64", "any", "chaos", "loadbalance", "tsig", "rewrite",
    "autopath", "acl", "cache", "header", "dnssec", "tls", "minimal", "template", "transfer", "hosts", "route53",
    "azure", "clouddns", "k8s_external", "kubernetes", "file", "auto", "secondary", "etcd", "loop", "forward",
    "grpc", "erratic", "whoami", "on", "sign", "view", "nomad",
];

/// The directives clusterdns implements (a variant each in [`Plugin`]).
#[rustfmt::skip]
const SUPPORTED: &[&str] = &[
    "reload", "bufsize", "bind", "ready", "health", "prometheus", "errors", "log", "any", "chaos", "loadbalance",
    "rewrite", "cache", "minimal", "template", "hosts", "kubernetes", "loop", "forward", "transfer",
];

fn check_directive(tok: &Token) -> Result<(), CorefileError> {
    let name = tok.as_str();
    if SUPPORTED.contains(&name) {
        Ok(())
    } else if PLUGIN_ORDER.contains(&name) {
        Err(tok.err(format!("directive '{name}' is a CoreDNS plugin clusterdns does not support")))
    } else {
        Err(tok.err(format!("unknown directive '{name}'")))
    }
}

fn order_of(name: &str) -> usize {
    PLUGIN_ORDER.iter().position(|p| *p == name).unwrap_or(usize::MAX)
}

/// How CoreDNS treats a directive written more than once in a block.
enum Repeat {
    /// Its setup returns `plugin.ErrOnce`.
    Once,
    /// Its setup reads only the first (the others are still checked here).
    First,
    /// Every one counts, in the order written.
    Many,
}

fn repeat(name: &str) -> Repeat {
    match name {
        "ready" | "prometheus" | "errors" | "cache" | "hosts" | "kubernetes" | "loop" => Repeat::Once,
        "reload" | "bufsize" | "any" | "chaos" | "minimal" | "loadbalance" => Repeat::First,
        // bind and health are folded into one below.
        _ => Repeat::Many,
    }
}

fn server_block(raw: syntax::RawBlock, base: &Path, opts: &Options) -> Result<ServerBlock, CorefileError> {
    let mut keys = Vec::new();
    for k in &raw.keys {
        keys.extend(block_key(k, opts.default_port)?);
    }
    let pos = raw.keys[0].pos();
    let mut zones: Vec<String> = Vec::new();
    for k in &keys {
        if !zones.contains(&k.zone) {
            zones.push(k.zone.clone());
        }
    }
    let cx = plugins::Ctx { zones: &zones, base };
    let mut out: Vec<Directive> = Vec::new();
    let mut first_at: HashMap<&str, Pos> = HashMap::new();
    let mut health: Option<(usize, Health)> = None;
    let mut bind: Option<usize> = None;
    for d in &raw.directives {
        let name = d.name.as_str();
        if name == "health" {
            fold_health(d, &mut health, &mut out)?;
            continue;
        }
        let seen = first_at.get(name).cloned();
        if let (Some(first), Repeat::Once) = (&seen, repeat(name)) {
            return Err(d
                .name
                .err(format!("directive '{name}' can only be used once per server block (first used at {first})")));
        }
        // Checked even where only the first counts.
        let plugin = plugins::parse(d, &cx)?;
        if seen.is_some() && matches!(repeat(name), Repeat::First) {
            continue;
        }
        first_at.entry(d.name.as_str()).or_insert_with(|| d.name.pos());
        if let Plugin::Bind(ips) = &plugin
            && let Some(i) = bind
        {
            if let Plugin::Bind(all) = &mut out[i].plugin {
                all.extend(ips.iter().copied());
            }
            continue;
        }
        if matches!(plugin, Plugin::Bind(_)) {
            bind = Some(out.len());
        }
        out.push(Directive { pos: d.name.pos(), plugin });
    }
    if let Some((i, h)) = health {
        out[i].plugin = Plugin::Health(h);
    }
    out.sort_by_key(|d| order_of(d.plugin.name()));
    Ok(ServerBlock { keys, plugins: out, pos })
}

/// `health` may be written more than once: CoreDNS keeps the last address
/// and the last lame duck given.
fn fold_health(
    d: &RawDirective,
    health: &mut Option<(usize, Health)>,
    out: &mut Vec<Directive>,
) -> Result<(), CorefileError> {
    let (addr, lameduck) = plugins::health_parts(d)?;
    match health {
        None => {
            let h = Health { addr: addr.unwrap_or(plugins::DEFAULT_HEALTH), lameduck: lameduck.unwrap_or_default() };
            *health = Some((out.len(), h.clone()));
            out.push(Directive { pos: d.name.pos(), plugin: Plugin::Health(h) });
        }
        Some((_, h)) => {
            if let Some(a) = addr {
                h.addr = a;
            }
            if let Some(l) = lameduck {
                h.lameduck = l;
            }
        }
    }
    Ok(())
}

/// One server block key: `[dns://]zone[:port]`, a CIDR giving its reverse
/// zones. Other transports are CoreDNS's but not clusterdns's.
fn block_key(tok: &Token, default_port: u16) -> Result<Vec<ZoneAddr>, CorefileError> {
    let (trans, rest) = values::transport(&tok.text);
    if trans != "dns" {
        return Err(tok.err(format!(
            "server block key \"{}\": transport {trans}:// is not supported by clusterdns (only dns://)",
            tok.text
        )));
    }
    let (zones, port) = values::zone_port(rest).map_err(|e| tok.err(e))?;
    let port = port.unwrap_or(default_port);
    Ok(zones.into_iter().map(|zone| ZoneAddr { zone, port }).collect())
}

/// CoreDNS's `validateZonesAndListeningAddresses`: a zone on a port may be
/// served by one block per listen address, and an unbound block (no
/// `bind`) takes every address.
fn check_overlap(blocks: &[ServerBlock]) -> Result<(), CorefileError> {
    type Key = (String, u16, Option<IpAddr>);
    let show = |k: &Key| match k.2 {
        Some(ip) => format!("dns://{}:{} on {ip}", k.0, k.1),
        None => format!("dns://{}:{}", k.0, k.1),
    };
    let mut registered: HashMap<Key, ()> = HashMap::new();
    let mut unbound: HashMap<(String, u16), Key> = HashMap::new();
    for b in blocks {
        let hosts: Vec<Option<IpAddr>> = b
            .plugins
            .iter()
            .find_map(|d| match &d.plugin {
                Plugin::Bind(ips) => Some(ips.iter().copied().map(Some).collect()),
                _ => None,
            })
            .unwrap_or_else(|| vec![None]);
        for k in &b.keys {
            for h in &hosts {
                let key: Key = (k.zone.clone(), k.port, *h);
                let err = |m: String| CorefileError { pos: b.pos.clone(), message: m };
                if registered.contains_key(&key) {
                    return Err(err(format!("cannot serve {} - it is already defined", show(&key))));
                }
                let uz = (k.zone.clone(), k.port);
                if let Some(already) = unbound.get(&uz) {
                    let plain: Key = (k.zone.clone(), k.port, None);
                    let other = if h.is_none() {
                        Some(already.clone())
                    } else if registered.contains_key(&plain) {
                        Some(plain)
                    } else {
                        None
                    };
                    if let Some(o) = other {
                        return Err(err(format!(
                            "cannot serve {} - zone overlap listener capacity with {}",
                            show(&key),
                            show(&o)
                        )));
                    }
                }
                registered.insert(key.clone(), ());
                unbound.insert(uz, key);
            }
        }
    }
    Ok(())
}

/// Resolves a path written in the Corefile against the Corefile's folder.
pub(crate) fn anchored(base: &Path, p: &str) -> PathBuf {
    let p = Path::new(p);
    if p.is_absolute() { p.to_path_buf() } else { base.join(p) }
}
