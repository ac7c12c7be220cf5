//! CoreDNS's command line, so that a CoreDNS Deployment runs clusterdns
//! unchanged: `-conf PATH` (default `./Corefile`), `-dns.port N` (the port
//! of blocks that name none, default 53), `-plugins`, `-version`, `-quiet`,
//! `-pidfile PATH`. Flags follow Go's `flag` package: one or two dashes,
//! `-name value` or `-name=value`, booleans without a value.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use clusterdns::admin::{self, Admin, Endpoints};
use clusterdns::app::{admin_zones, serve_corefile, spawn_reload};
use clusterdns::corefile::{self, Options};
use clusterdns::metrics::Metrics;
use tokio_util::sync::CancellationToken;

/// The directives this build implements, as `-plugins` lists them.
pub const PLUGINS: &[&str] =
    &["cache", "errors", "forward", "health", "kubernetes", "loop", "prometheus", "ready", "reload"];

const FLAGS: &[&str] = &["conf", "dns.port", "plugins", "version", "quiet", "pidfile"];

fn flag_name(arg: &str) -> Option<&str> {
    let name = arg.strip_prefix("--").or_else(|| arg.strip_prefix('-'))?;
    Some(name.split_once('=').map_or(name, |(n, _)| n))
}

/// No arguments at all (CoreDNS reads `./Corefile`), or CoreDNS's flags.
pub fn is_coredns_style(args: &[String]) -> bool {
    match args.first() {
        None => true,
        Some(a) if a == "--version" => false,
        Some(a) => flag_name(a).is_some_and(|n| FLAGS.contains(&n)),
    }
}

struct Flags {
    conf: PathBuf,
    port: u16,
    plugins: bool,
    version: bool,
    quiet: bool,
    pidfile: Option<PathBuf>,
}

fn parse(args: &[String]) -> Result<Flags, String> {
    let mut f = Flags {
        conf: PathBuf::from("Corefile"),
        port: 53,
        plugins: false,
        version: false,
        quiet: false,
        pidfile: None,
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let Some(name) = flag_name(arg).filter(|n| !n.is_empty()) else {
            return Err(format!("unexpected argument {arg:?} (CoreDNS's flags: -conf PATH, -dns.port N, ...)"));
        };
        let inline = arg.split_once('=').map(|(_, v)| v.to_string());
        let mut value = |name: &str| {
            inline.clone().or_else(|| it.next().cloned()).ok_or_else(|| format!("flag needs an argument: -{name}"))
        };
        let boolean = |v: &Option<String>| match v.as_deref() {
            None | Some("true") | Some("1") => Ok(true),
            Some("false") | Some("0") => Ok(false),
            Some(other) => Err(format!("invalid boolean value {other:?} for -{name}")),
        };
        match name {
            "conf" => f.conf = PathBuf::from(value(name)?),
            "dns.port" => {
                let v = value(name)?;
                f.port = v.parse().map_err(|_| format!("invalid value {v:?} for flag -dns.port: not a port"))?;
            }
            "pidfile" => f.pidfile = Some(PathBuf::from(value(name)?)),
            "plugins" => f.plugins = boolean(&inline)?,
            "version" => f.version = boolean(&inline)?,
            "quiet" => f.quiet = boolean(&inline)?,
            other => return Err(format!("flag provided but not defined: -{other}")),
        }
    }
    Ok(f)
}

fn version() -> String {
    format!("clusterdns-{}\n{}/{}", env!("CARGO_PKG_VERSION"), std::env::consts::OS, std::env::consts::ARCH)
}

pub fn main(args: &[String]) -> ExitCode {
    let flags = match parse(args) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("{e} (see clusterdns --help)");
            return ExitCode::from(2);
        }
    };
    if flags.version {
        println!("{}", version());
        return ExitCode::SUCCESS;
    }
    if flags.plugins {
        println!("Server types:\n  dns\n\nOther plugins:");
        for p in PLUGINS {
            println!("  dns.{p}");
        }
        return ExitCode::SUCCESS;
    }
    crate::init_tracing();
    match run(flags) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(flags: Flags) -> anyhow::Result<()> {
    let env = |name: &str| std::env::var(name).ok();
    let opts = Options { default_port: flags.port, env: &env };
    let cf = corefile::parse_file(&flags.conf, &opts)?;
    let conf = flags.conf.clone();
    if let Some(p) = &flags.pidfile {
        std::fs::write(p, format!("{}\n", std::process::id()))
            .map_err(|e| anyhow::anyhow!("cannot write pidfile {}: {e}", p.display()))?;
    }
    let rt = tokio::runtime::Runtime::new()?;
    let result = rt.block_on(async {
        let mut signals = crate::Signals::new()?;
        let metrics = Arc::new(Metrics::default());
        let instance = serve_corefile(&cf, metrics.clone()).await?;
        let admin = Admin::for_indexes(admin_zones(instance.indexes()), metrics);
        let cancel = CancellationToken::new();
        let mut endpoints = Vec::new();
        endpoints.extend(instance.health.as_ref().map(|h| (h.addr, Endpoints::HEALTH)));
        endpoints.extend(instance.ready.map(|a| (a, Endpoints::READY)));
        endpoints.extend(instance.prometheus.iter().map(|a| (*a, Endpoints::METRICS)));
        let bound = admin::serve_each(admin.clone(), &endpoints, cancel.clone()).await.map_err(|e| {
            let plugin = e.serves.first_of(["health", "ready", "prometheus"]);
            anyhow::anyhow!("{e} (set by the Corefile's `{plugin}`)")
        })?;
        if !flags.quiet {
            for block in &cf.blocks {
                for k in &block.keys {
                    println!("{}:{}", k.zone, k.port);
                }
            }
            println!("{}", version());
        }
        tracing::info!(listen = ?instance.addrs(), admin = ?bound, "serving");
        let instance = Arc::new(tokio::sync::Mutex::new(instance));
        let watched = admin.clone();
        let now = Arc::new(tokio::sync::Notify::new());
        spawn_reload(conf, flags.port, instance.clone(), now.clone(), move |indexes| {
            watched.indexes.store(Arc::new(admin_zones(indexes)))
        });
        signals
            .stop(&|| {
                tracing::info!("SIGHUP: reading the Corefile again");
                now.notify_one();
            })
            .await;
        let mut instance = instance.lock().await;
        let lameduck = instance.health.as_ref().map_or(Duration::ZERO, |h| h.lameduck);
        admin.lame_duck.store(true, Ordering::Release);
        signals.lame_duck(lameduck).await;
        cancel.cancel();
        instance.stop().await;
        Ok::<_, anyhow::Error>(())
    });
    if let Some(p) = &flags.pidfile {
        let _ = std::fs::remove_file(p);
    }
    result
}
