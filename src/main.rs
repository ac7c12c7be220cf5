//! The binary: parse the command line, start logging, run.

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use std::sync::atomic::Ordering;

use clusterdns::admin::{self, Admin, Endpoints};
use clusterdns::app::{explain_hook, explainer, serve_api, serve_manifests, zone_from_api, zone_snapshot};
use clusterdns::config::{Cli, Command, ZoneFlags};
use clusterdns::demo;
use clusterdns::model::Selector;
use clusterdns::records::PodMode;
use clusterdns::server::Listeners;
use clusterdns::source::Scope;
use clusterdns::source::kube::KubeOptions;
use tokio_util::sync::CancellationToken;

mod coredns;

/// mimalloc rather than glibc's malloc: loading a cluster is a great many
/// small allocations (a 100,000-Service start spent 30% of its time in
/// malloc and free, and took 1.3 times as long). The per-query path
/// allocates nothing, so it does not notice.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

pub(crate) fn init_tracing() {
    // hickory logs per query at info; keep the per-query path quiet.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,hickory_proto=warn,notify=warn"));
    // Colours only for a person at a terminal, not in a pod's log.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi).init();
}

fn main() -> ExitCode {
    clusterdns::source::configure_allocator();
    // Counted for coredns_panics_total, then reported as usual.
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        clusterdns::metrics::PANICS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        report(info);
    }));
    let args: Vec<String> = std::env::args().collect();
    clusterdns::server::raise_file_limit();
    if coredns::is_coredns_style(&args[1..]) {
        return coredns::main(&args[1..]);
    }
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
                let _ = e.print();
                return ExitCode::SUCCESS;
            }
            // One clear line, then where to look.
            // clap's message up to its usage block, on one line.
            let text = e.render().to_string();
            let message: Vec<&str> = text.lines().take_while(|l| !l.trim().is_empty()).map(str::trim).collect();
            eprintln!("{} (see clusterdns --help)", message.join(" "));
            return ExitCode::from(2);
        }
    };
    init_tracing();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.is::<Found>() => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn scope(namespaces: Vec<String>, labels: Option<Selector>) -> Scope {
    Scope { namespaces, labels, namespace_labels: None }
}

/// Runs `f` on the cluster the API serves, once every kind is listed (Pods
/// too: explanations name the Pods a selector matches).
fn live<T: Send + 'static>(
    kubeconfig: Option<std::path::PathBuf>,
    flags: &ZoneFlags,
    f: impl FnOnce(clusterdns::explain::Explain<'_>) -> T + Send + 'static,
) -> anyhow::Result<T> {
    let opts = KubeOptions { kubeconfig, pods: true, ..Default::default() };
    let rt = tokio::runtime::Runtime::new()?;
    let ask = move |cluster: &clusterdns::model::Cluster, index: &clusterdns::records::ZoneIndex| {
        f(clusterdns::explain::Explain::new(cluster, index))
    };
    Ok(rt.block_on(clusterdns::app::with_live_cluster(&opts, flags, Duration::from_secs(120), ask))?)
}

/// Asks a running server's `/explain` (`serve --explain`) over plain HTTP:
/// the process that is actually answering, with its live state.
fn ask_server(
    addr: &str,
    name: &str,
    qtype: &str,
    from: Option<&str>,
) -> anyhow::Result<Vec<clusterdns::explain::Explanation>> {
    use std::io::{Read, Write};
    let host = addr.trim_start_matches("http://").trim_end_matches('/');
    let mut query = form_urlencoded::Serializer::new(String::new());
    query.append_pair("name", name).append_pair("type", qtype);
    if let Some(ns) = from {
        query.append_pair("from", ns);
    }
    let target = std::net::ToSocketAddrs::to_socket_addrs(host)
        .map_err(|e| anyhow::anyhow!("--server {addr}: {e} (an address such as 127.0.0.1:9153)"))?
        .next()
        .ok_or_else(|| anyhow::anyhow!("--server {addr}: no address"))?;
    let timeout = Duration::from_secs(15);
    let mut stream = std::net::TcpStream::connect_timeout(&target, timeout)
        .map_err(|e| anyhow::anyhow!("cannot reach {addr}: {e}"))?;
    stream.set_read_timeout(Some(timeout))?;
    write!(stream, "GET /explain?{} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n", query.finish())?;
    let mut reply = Vec::new();
    stream.take(16 << 20).read_to_end(&mut reply)?;
    let reply = String::from_utf8_lossy(&reply);
    let (head, body) = reply.split_once("\r\n\r\n").unwrap_or((&reply, ""));
    let status = head.split_whitespace().nth(1).unwrap_or("");
    match status {
        "200" if from.is_some() => Ok(serde_json::from_str(body)?),
        "200" => Ok(vec![serde_json::from_str(body)?]),
        "404" => {
            anyhow::bail!("{addr} does not serve /explain (start it with --explain; it is served beside /metrics)")
        }
        _ => anyhow::bail!("{addr} answered {status}: {}", body.trim()),
    }
}

/// `check` found this many problems: exit 1, so CI stops.
#[derive(Debug)]
struct Found(usize);

impl std::fmt::Display for Found {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = if self.0 == 1 { "" } else { "s" };
        write!(f, "{} problem{s} found", self.0)
    }
}

impl std::error::Error for Found {}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Zone(args) if args.manifests.is_empty() => {
            let opts = KubeOptions {
                kubeconfig: args.kubeconfig,
                pods: args.zone.pods == PodMode::Verified,
                ..Default::default()
            };
            let rt = tokio::runtime::Runtime::new()?;
            let text = rt.block_on(zone_from_api(&opts, &args.zone, Duration::from_secs(120)))?;
            print!("{text}");
            Ok(())
        }
        Command::Zone(args) => {
            let (text, errors) = zone_snapshot(args.manifests, &args.zone)?;
            for e in errors {
                eprintln!("warning: {e}");
            }
            print!("{text}");
            Ok(())
        }
        Command::Serve(args) => {
            // The DNS ports first: questions asked while the rest starts wait
            // in the kernel's queue instead of being dropped.
            let listeners = Listeners::bind(&args.listen)?;
            let rt = tokio::runtime::Runtime::new()?;
            rt.block_on(async {
                let mut signals = Signals::new()?;
                let running = if args.manifests.is_empty() {
                    let opts = KubeOptions {
                        kubeconfig: args.kubeconfig,
                        scope: scope(args.namespaces, args.labels),
                        pods: args.zone.pods == PodMode::Verified,
                        ..Default::default()
                    };
                    serve_api(&opts, &args.zone, listeners).await?
                } else {
                    serve_manifests(args.manifests, scope(args.namespaces, args.labels), &args.zone, listeners).await?
                };
                let admin = Admin::new(running.index.clone(), running.metrics.clone());
                if args.explain {
                    if args.metrics.0.is_none() {
                        tracing::warn!("--explain is served beside /metrics, and --metrics is off: no /explain");
                    }
                    let _ = admin.explain.set(explain_hook(&running));
                }
                let cancel = CancellationToken::new();
                let endpoints: Vec<_> = [
                    args.health.0.map(|a| (a, Endpoints::HEALTH)),
                    args.ready.0.map(|a| (a, Endpoints::READY)),
                    args.metrics.0.map(|a| (a, Endpoints::METRICS)),
                ]
                .into_iter()
                .flatten()
                .collect();
                let bound = admin::serve_each(admin.clone(), &endpoints, cancel.clone()).await.map_err(|e| {
                    let flag = e.serves.first_of(["health", "ready", "metrics"]);
                    anyhow::anyhow!("{e} (another address: --{flag} ADDR; none: --{flag} off)")
                })?;
                tracing::info!(listen = ?running.server.local_addrs(), admin = ?bound, "serving");
                signals.stop(&|| tracing::info!("SIGHUP: nothing to reload (manifest files are watched)")).await;
                // Lame duck: not ready any more, still answering, then stop.
                admin.lame_duck.store(true, Ordering::Release);
                signals.lame_duck(Duration::from_secs(args.lameduck)).await;
                cancel.cancel();
                running.server.shutdown().await;
                Ok(())
            })
        }
        Command::Explain(args) => {
            let qtype = clusterdns::explain::parse_qtype(&args.qtype).map_err(anyhow::Error::msg)?;
            let from = args.from_namespace.as_deref();
            let steps = match &args.server {
                Some(addr) => ask_server(addr, &args.name, &args.qtype, from)?,
                None if args.manifests.is_empty() => {
                    let (name, from) = (args.name.clone(), args.from_namespace.clone());
                    live(args.kubeconfig, &args.zone, move |view| match from {
                        Some(ns) => view.search(&name, qtype, &ns),
                        None => vec![view.explain(&name, qtype)],
                    })?
                }
                None => {
                    let (explainer, errors) = explainer(args.manifests, &args.zone)?;
                    for e in errors {
                        eprintln!("warning: {e}");
                    }
                    match from {
                        Some(ns) => explainer.search(&args.name, qtype, ns),
                        None => vec![explainer.explain(&args.name, qtype)],
                    }
                }
            };
            let Some(ns) = from else {
                for e in &steps {
                    if args.format == "json" {
                        println!("{}", serde_json::to_string_pretty(e)?);
                    } else {
                        print!("{e}");
                    }
                }
                return Ok(());
            };
            if args.format == "json" {
                println!("{}", serde_json::to_string_pretty(&steps)?);
                return Ok(());
            }
            for (i, e) in steps.iter().enumerate() {
                println!("# question {} of the look-up from namespace {ns}", i + 1);
                print!("{e}");
                println!();
            }
            match steps.iter().position(|e| !e.answer.is_empty()) {
                Some(i) => println!(
                    "The look-up of {} from namespace {ns} is answered by question {} ({}), after {} question{}.",
                    args.name,
                    i + 1,
                    steps[i].name,
                    i + 1,
                    if i == 0 { "" } else { "s" }
                ),
                None => println!(
                    "The look-up of {} from namespace {ns} fails: none of its {} questions has a record.",
                    args.name,
                    steps.len()
                ),
            }
            Ok(())
        }
        Command::Check(args) => {
            let found = if args.manifests.is_empty() {
                live(args.kubeconfig, &args.zone, |view| view.check())?
            } else {
                let (explainer, errors) = explainer(args.manifests, &args.zone)?;
                for e in &errors {
                    eprintln!("warning: {e}");
                }
                explainer.check()
            };
            if args.format == "json" {
                println!("{}", serde_json::to_string_pretty(&found)?);
            } else if found.is_empty() {
                println!("no problems found");
            } else {
                for f in &found {
                    print!("{f}");
                }
            }
            if found.is_empty() { Ok(()) } else { Err(Found(found.len()).into()) }
        }
        Command::Demo(args) => {
            let dir = demo::write_files()?;
            let flags = ZoneFlags {
                zone: "cluster.local".into(),
                ttl: 5,
                pods: PodMode::Insecure,
                service_cidr: "10.96.0.0/12".parse()?,
            };
            let listeners = Listeners::bind(&[args.listen])?;
            let rt = tokio::runtime::Runtime::new()?;
            rt.block_on(async {
                let mut signals = Signals::new()?;
                let running = serve_manifests(vec![dir.clone()], Default::default(), &flags, listeners).await?;
                running.wait_loaded(Duration::from_secs(30)).await;
                println!("{}", demo::instructions(running.addr(), &dir));
                signals.stop(&|| tracing::info!("SIGHUP: nothing to reload")).await;
                running.server.shutdown().await;
                // The demo's copy of its manifests goes with it.
                let _ = std::fs::remove_dir_all(&dir);
                Ok(())
            })
        }
    }
}

/// The signals a server heeds: SIGTERM and SIGINT stop it (after the lame
/// duck; a second one stops it at once), SIGHUP asks for a reload.
pub(crate) struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    /// Installs the handlers (before serving: from then on SIGHUP no longer
    /// kills the process).
    pub(crate) fn new() -> std::io::Result<Signals> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Signals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
            hup: signal(SignalKind::hangup())?,
        })
    }

    /// Waits for SIGTERM or SIGINT; each SIGHUP meanwhile runs `on_hup`.
    pub(crate) async fn stop(&mut self, on_hup: &dyn Fn()) {
        loop {
            tokio::select! {
                _ = self.term.recv() => { tracing::info!("SIGTERM: stopping"); return }
                _ = self.int.recv() => { tracing::info!("SIGINT: stopping (again to stop at once)"); return }
                _ = self.hup.recv() => on_hup(),
            }
        }
    }

    /// Sleeps through the lame duck unless another SIGTERM or SIGINT comes.
    pub(crate) async fn lame_duck(&mut self, lameduck: Duration) {
        if lameduck.is_zero() {
            return;
        }
        tracing::info!(?lameduck, "shutting down: lame duck");
        tokio::select! {
            _ = tokio::time::sleep(lameduck) => {}
            _ = self.term.recv() => tracing::info!("SIGTERM again: stopping now"),
            _ = self.int.recv() => tracing::info!("SIGINT again: stopping now"),
        }
    }
}
