//! The typed configuration a Corefile parses into: one value per server
//! block, one variant per directive. No sockets, no plugin logic: the
//! wiring (`app`) builds the chains from these values.
//!
//! Names and zones are lowercase and fully qualified (`cluster.local.`, the
//! root is `.`). A zone list written as nothing means the server block's
//! zones (CoreDNS `OriginsFromArgsOrServerBlock`); the parser fills that in,
//! so every `zones` field here is explicit and never empty.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use crate::model::Selector;

/// Where something was written: the file (an imported one where it came
/// from an import) and its 1-based line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pos {
    pub file: PathBuf,
    pub line: usize,
}

impl std::fmt::Display for Pos {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.file.display(), self.line)
    }
}

/// A whole Corefile: its server blocks in the order written.
#[derive(Clone, Debug)]
pub struct Corefile {
    pub blocks: Vec<ServerBlock>,
}

/// One server block: `zone[:port] ... { directives }`.
#[derive(Clone, Debug)]
pub struct ServerBlock {
    /// The block's keys (`.:53`, `cluster.local:53`, `dns://.:53`, a CIDR's
    /// reverse zones), with the default port filled in where none is written.
    pub keys: Vec<ZoneAddr>,
    /// The directives, sorted into CoreDNS's plugin order (`plugin.cfg`);
    /// directives of one name that may repeat (`template`, `rewrite`,
    /// `forward`, `log`) keep the order they were written in. As CoreDNS
    /// reads a repeated directive: several `bind` are one (their addresses
    /// joined), several `health` are one (the last address and lame duck
    /// written), of `reload`, `bufsize`, `any`, `chaos`, `minimal` and
    /// `loadbalance` the first counts; the others may appear once.
    pub plugins: Vec<Directive>,
    pub pos: Pos,
}

impl ServerBlock {
    /// The block's zones, in key order, without duplicates.
    pub fn zones(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for k in &self.keys {
            if !out.contains(&k.zone) {
                out.push(k.zone.clone());
            }
        }
        out
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ZoneAddr {
    /// Lowercase FQDN: `.` or `cluster.local.`
    pub zone: String,
    pub port: u16,
}

/// A directive as written, typed.
#[derive(Clone, Debug)]
pub struct Directive {
    pub pos: Pos,
    pub plugin: Plugin,
}

#[derive(Clone, Debug)]
pub enum Plugin {
    Reload(Reload),
    /// `bufsize [SIZE]`: the EDNS size advertised to clients (512..=4096,
    /// default 1232).
    Bufsize(u16),
    /// `bind ADDR... { except ADDR... }`: listen only on these addresses
    /// (IP addresses; never empty).
    Bind(Vec<IpAddr>),
    /// `ready [ADDR]` (default `:8181`). In every listen address a missing
    /// host is 0.0.0.0 and `localhost` is 127.0.0.1.
    Ready(SocketAddr),
    Health(Health),
    /// `prometheus [ADDR]` (default `localhost:9153`).
    Prometheus(SocketAddr),
    /// `errors [stdout]` (its `consolidate` and `stacktrace` options are
    /// refused as unsupported).
    Errors,
    Log(Log),
    /// `any`: ANY questions answered with HINFO (RFC 8482).
    Any,
    Chaos(Chaos),
    /// `loadbalance [round_robin]`
    Loadbalance,
    Rewrite(Rewrite),
    Cache(Cache),
    /// `minimal`: answers without authority and additional sections when
    /// they are not needed.
    Minimal,
    Template(Template),
    Hosts(Hosts),
    Kubernetes(Kubernetes),
    /// `transfer [ZONES...] { to ADDR... }`: AXFR of the block's
    /// `kubernetes` zone over TCP to these clients.
    Transfer(Transfer),
    /// `loop`
    Loop,
    Forward(Forward),
}

/// `transfer [ZONES...] { to ADDRESS... [source ADDRESS] }`
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transfer {
    /// The zones it transfers (the block's when none are given).
    pub zones: Vec<String>,
    /// Who may ask: `None` is `to *`; else these addresses (a port given
    /// with one is where CoreDNS sends NOTIFY, which clusterdns does not).
    pub to: Option<Vec<IpAddr>>,
}

impl Transfer {
    pub fn allows(&self, peer: IpAddr) -> bool {
        // An IPv4 client over an IPv6 socket reads as ::ffff:a.b.c.d; the
        // `to` addresses are canonical too (parsed so).
        let peer = peer.to_canonical();
        self.to.as_ref().is_none_or(|to| to.contains(&peer))
    }
}

impl Plugin {
    /// The directive's name as written in a Corefile.
    pub fn name(&self) -> &'static str {
        match self {
            Plugin::Reload(_) => "reload",
            Plugin::Bufsize(_) => "bufsize",
            Plugin::Bind(_) => "bind",
            Plugin::Ready(_) => "ready",
            Plugin::Health(_) => "health",
            Plugin::Prometheus(_) => "prometheus",
            Plugin::Errors => "errors",
            Plugin::Log(_) => "log",
            Plugin::Any => "any",
            Plugin::Chaos(_) => "chaos",
            Plugin::Loadbalance => "loadbalance",
            Plugin::Rewrite(_) => "rewrite",
            Plugin::Cache(_) => "cache",
            Plugin::Minimal => "minimal",
            Plugin::Template(_) => "template",
            Plugin::Hosts(_) => "hosts",
            Plugin::Kubernetes(_) => "kubernetes",
            Plugin::Transfer(_) => "transfer",
            Plugin::Loop => "loop",
            Plugin::Forward(_) => "forward",
        }
    }
}

/// `reload [INTERVAL [JITTER]]` (defaults 30s and 15s; CoreDNS requires
/// INTERVAL >= 2s and JITTER 0 or >= 1s, and cuts a JITTER larger than
/// INTERVAL / 2 to INTERVAL / 2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reload {
    pub interval: Duration,
    pub jitter: Duration,
}

/// `health [ADDR] { lameduck DUR }` (default `:8080`, no lame duck).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Health {
    pub addr: SocketAddr,
    pub lameduck: Duration,
}

/// Which answers `log` writes: `class denial|error|success|all`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct LogClasses {
    pub success: bool,
    pub denial: bool,
    pub error: bool,
}

/// `log [NAMES...] [FORMAT] { class CLASSES... }`
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Log {
    /// Names whose questions are logged (default the root: everything).
    /// A single argument is always a name, as in CoreDNS; with more, a last
    /// one holding `{` is the format.
    pub names: Vec<String>,
    /// CoreDNS's format string with its `{placeholders}`; the common format
    /// when none is given (`{common}` and `{combined}` expanded).
    pub format: String,
    pub classes: LogClasses,
}

/// `chaos [VERSION] [AUTHORS...]`
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chaos {
    /// `version.bind` and `version.server` (default `clusterdns-<version>`).
    pub version: String,
    /// `authors.bind` (default the package's authors, `clusterdns` while
    /// Cargo.toml names none); written ones sorted and deduplicated.
    pub authors: Vec<String>,
}

/// How a `rewrite name` rule matches the question name. As CoreDNS, the
/// FROM of exact, prefix, suffix and substring is a lowercase FQDN (so
/// `prefix foo` matches `foo.`).
#[derive(Clone, Debug)]
pub enum NameMatch {
    Exact(String),
    Prefix(String),
    Suffix(String),
    Substring(String),
    /// Used as written (anchored only where the pattern anchors itself, Go's
    /// `FindStringSubmatch`); `{0}`, `{1}`.. in the replacement are its groups.
    Regex(regex::Regex),
}

/// How the answer's names are written back (`answer auto`, `answer name
/// FROM TO`, `answer value FROM TO`).
#[derive(Clone, Debug)]
pub enum AnswerRewrite {
    /// No `answer` part. CoreDNS then always restores the question section;
    /// an `exact` rule also writes the original name back into the answer's
    /// names and values as `auto` does (CoreDNS makes every exact rule
    /// auto, even next to `answer name|value`); prefix, suffix, substring and
    /// regex rules rewrite nothing else.
    Default,
    /// `answer auto`: the rewritten name is mapped back to the question's
    /// in the answer's names and values (for `suffix`, TO's suffix back to
    /// FROM's).
    Auto,
    Name {
        from: regex::Regex,
        to: String,
    },
    Value {
        from: regex::Regex,
        to: String,
    },
}

/// One `rewrite` rule. In `Name`, `to` is a lowercase FQDN (for regex,
/// with its `{N}` references) and `answer` is `[Default]` when no `answer`
/// part is written, else the parts in the order written (`answer auto` not
/// mixed with `answer name`).
#[derive(Clone, Debug)]
pub enum RewriteRule {
    Name {
        matcher: NameMatch,
        to: String,
        answer: Vec<AnswerRewrite>,
    },
    /// `rewrite type FROM TO` (RR type numbers).
    Type {
        from: u16,
        to: u16,
    },
    /// `rewrite class FROM TO`
    Class {
        from: u16,
        to: u16,
    },
}

/// `rewrite [continue|stop] RULE`
#[derive(Clone, Debug)]
pub struct Rewrite {
    /// `continue`: later rules also apply; `stop` (default): the first
    /// matching rule ends rewriting.
    pub continue_after: bool,
    pub rule: RewriteRule,
}

/// One `success` or `denial` part of `cache`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CacheClass {
    /// Entries before eviction, as CoreDNS sizes its 256 shards: CAPACITY
    /// rounded down to a multiple of 256, at least 1024 (its default 10000
    /// gives 9984).
    pub capacity: usize,
    /// Longest time an answer is kept (success 3600s, denial 1800s, or the
    /// TTL argument of `cache`).
    pub max_ttl: Duration,
    /// Shortest (default 5s).
    pub min_ttl: Duration,
    /// Zones where this class is not cached (`disable success|denial ZONES`).
    pub disabled: Vec<String>,
}

/// `prefetch AMOUNT [[DURATION] [PERCENTAGE%]]` (AMOUNT 0 never prefetches).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Prefetch {
    pub amount: u32,
    /// Default 1m.
    pub duration: Duration,
    /// Default 10 (percent of the original TTL left), 10..=90.
    pub percentage: u8,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StaleMode {
    Immediate,
    Verify,
}

/// `serve_stale [DURATION] [immediate|verify]` (default 1h, immediate;
/// CoreDNS's further VERIFY_TIMEOUT, RESPONSE_TTL and FAILURE_RECHECK are
/// refused as unsupported).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServeStale {
    pub duration: Duration,
    pub mode: StaleMode,
}

/// `cache [TTL] [ZONES...] { ... }`
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cache {
    pub zones: Vec<String>,
    pub success: CacheClass,
    pub denial: CacheClass,
    pub prefetch: Option<Prefetch>,
    pub serve_stale: Option<ServeStale>,
    /// How long SERVFAIL is cached (default 5s, at most 5m, 0 disables).
    pub servfail: Duration,
    pub keepttl: bool,
}

/// A piece of a `template` RR text: literal text or a Go-template field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TemplatePiece {
    Text(String),
    /// `{{ .Name }}`
    Name,
    /// `{{ .Zone }}`
    Zone,
    /// `{{ .Class }}`
    Class,
    /// `{{ .Type }}`
    Type,
    /// `{{ .Remote }}`
    Remote,
    /// `{{ index .Match N }}`
    Match(usize),
    /// `{{ .Group.NAME }}`
    Group(String),
}

/// `template CLASS TYPE [ZONES...] { ... }`
#[derive(Clone, Debug)]
pub struct Template {
    /// `None` for ANY.
    pub class: Option<u16>,
    pub qtype: Option<u16>,
    pub zones: Vec<String>,
    /// Default `.*` (match everything); unanchored as written (Go's
    /// `MatchString`).
    pub matches: Vec<regex::Regex>,
    pub answer: Vec<Vec<TemplatePiece>>,
    pub additional: Vec<Vec<TemplatePiece>>,
    pub authority: Vec<Vec<TemplatePiece>>,
    /// Default NOERROR (0).
    pub rcode: u16,
    /// `None`: no fallthrough; `Some(zones)`: fall through for these zones
    /// (`["."]` for a bare `fallthrough`).
    pub fallthrough: Option<Vec<String>>,
}

/// `hosts [FILE [ZONES...]] { ... }`
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hosts {
    /// Default `/etc/hosts`; relative paths are relative to the Corefile's
    /// folder (CoreDNS: to its working directory, or its `root`). A file
    /// that does not exist is not an error (CoreDNS warns).
    pub file: PathBuf,
    pub zones: Vec<String>,
    /// Entries written inside the block, one hosts-file line each: as
    /// CoreDNS, any line before `fallthrough` that is no option.
    pub inline: Vec<String>,
    /// Default 3600, 1..=65535.
    pub ttl: u32,
    /// Default 5s; zero disables reloading.
    pub reload: Duration,
    pub no_reverse: bool,
    pub fallthrough: Option<Vec<String>>,
}

/// `pods disabled|insecure|verified`
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pods {
    Disabled,
    Insecure,
    Verified,
}

/// `kubernetes [ZONES...] { ... }`
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Kubernetes {
    pub zones: Vec<String>,
    /// Default disabled.
    pub pods: Pods,
    pub fallthrough: Option<Vec<String>>,
    /// Default 5, 0..=3600.
    pub ttl: u32,
    /// Empty: all.
    pub namespaces: Vec<String>,
    /// Services and EndpointSlices served (its words joined by spaces).
    pub labels: Option<Selector>,
    /// Namespaces served; never set together with `namespaces`.
    pub namespace_labels: Option<Selector>,
    pub endpoint_pod_names: bool,
    /// `ignore empty_service`
    pub ignore_empty_service: bool,
    pub noendpoints: bool,
    /// `kubeconfig PATH [CONTEXT]` (a relative PATH is relative to the
    /// Corefile's folder).
    pub kubeconfig: Option<(PathBuf, Option<String>)>,
    /// `endpoint URL...`: the first (CoreDNS ignores the others).
    pub endpoint: Option<String>,
    /// Default 5s.
    pub startup_timeout: Duration,
    /// clusterdns's own: serve these manifest files or folders instead of
    /// the API (relative to the Corefile's folder).
    pub manifests: Vec<PathBuf>,
    /// clusterdns's own: where ClusterIPs come from for manifest Services
    /// without one (default 10.96.0.0/12).
    pub service_cidr: ipnet::IpNet,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Policy {
    Random,
    RoundRobin,
    Sequential,
}

/// `forward FROM TO... { ... }`
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Forward {
    /// Lowercase FQDN (a CIDR's first reverse zone, as CoreDNS).
    pub from: String,
    /// Resolved upstreams: addresses as written (port 53 when none), and the
    /// nameservers of any resolv.conf named (read when parsed, port 53, an
    /// IPv6 `%zone` dropped as CoreDNS does); first-seen order, duplicates
    /// dropped, never empty. At most 15 TO arguments (a resolv.conf counts
    /// once; one without nameservers is skipped, as in CoreDNS).
    pub to: Vec<SocketAddr>,
    pub except: Vec<String>,
    pub force_tcp: bool,
    pub prefer_udp: bool,
    /// Default 10s.
    pub expire: Duration,
    /// Default 2; 0 never marks an upstream down.
    pub max_fails: u32,
    /// Default 0.5s.
    pub health_check: Duration,
    /// `health_check DUR no_rec`: RD off in the probes.
    pub health_check_no_rec: bool,
    /// `health_check DUR domain FQDN` (default `.`).
    pub health_check_domain: String,
    pub policy: Policy,
    /// 0: no limit.
    pub max_concurrent: usize,
    /// Default 2s.
    pub read_timeout: Duration,
}
