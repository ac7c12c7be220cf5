//! The DNS front: UDP and TCP listeners around [`plugins::handle`]. The
//! only part of clusterdns that listens on sockets.
//!
//! UDP runs one blocking thread per core, each on its own `SO_REUSEPORT`
//! socket (the kernel spreads datagrams over them); a question the chain
//! answers in place (the cluster zone, a cache hit) is parsed, looked up and
//! answered on that thread, with no task spawned and no allocation once the
//! buffers are warm. A question that goes upstream continues as a task on
//! the runtime, which sends its reply from the same socket. TCP runs on
//! tokio, one task per connection.
//!
//! Each listener reads its [`Router`] (the server blocks on its address)
//! through an `ArcSwap`, so a reloaded Corefile takes effect between two
//! questions without dropping any.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use arc_swap::ArcSwap;

#[cfg(target_os = "linux")]
mod mmsg;

use crate::metrics::{Answered, Metrics, QueryStats, server_label};
use crate::plugins::{self, Flow, Router};

/// The server blocks a listener answers with; swapped on reload.
pub type Routes = Arc<ArcSwap<Router>>;

/// How often a UDP thread looks at the stop flag when no query comes.
const UDP_POLL: Duration = Duration::from_millis(200);
/// The kernel's send buffer of a TCP connection: what a client that stops
/// reading can leave unsent (Linux doubles it for its bookkeeping). Enough
/// for the largest DNS message; autotuning would let it grow to megabytes.
const TCP_SEND_BUFFER: usize = 64 * 1024;

/// What the TCP listener lets clients hold. Past a limit a new connection
/// is closed at once: clients retry or stay on UDP, and every other client
/// and the UDP path go on as before.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpLimits {
    /// Connections open at once, over all clients.
    pub total: usize,
    /// Connections one client address may hold.
    pub per_client: usize,
    /// A connection that does not deliver a whole query within this long is
    /// closed (idle, or a slow writer); RFC 7766 suggests seconds.
    pub read: Duration,
    /// A reply the client does not take within this long closes the
    /// connection (a client that stopped reading).
    pub write: Duration,
}

impl TcpLimits {
    /// Limits for a process that may open `files` descriptors: half of them
    /// for DNS over TCP (the rest for UDP sockets, upstreams, the API,
    /// files), at most 16,384 (an idle connection costs a few KiB), and no
    /// client more than a sixteenth (a NodeLocal DNSCache's `force_tcp`
    /// pool comes from one node address and needs hundreds).
    pub fn for_file_limit(files: u64) -> TcpLimits {
        let total = usize::try_from(files.saturating_sub(256) / 2).unwrap_or(usize::MAX).clamp(64, 16_384);
        TcpLimits {
            total,
            per_client: (total / 16).max(16),
            read: Duration::from_secs(10),
            write: Duration::from_secs(10),
        }
    }
}

impl Default for TcpLimits {
    fn default() -> Self {
        TcpLimits::for_file_limit(file_limit())
    }
}

/// The process's soft limit of open files.
pub fn file_limit() -> u64 {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes one rlimit struct, which `lim` is.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0 { lim.rlim_cur } else { 1024 }
}

/// Raises the soft limit of open files to the hard limit, as Go's runtime
/// does for CoreDNS (the soft default of 1,024 is a few hundred TCP clients).
/// Returns the limit in force afterwards.
pub fn raise_file_limit() -> u64 {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit/setrlimit read and write one rlimit struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            let raised = libc::rlimit { rlim_cur: lim.rlim_max, rlim_max: lim.rlim_max };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) != 0 {
                tracing::debug!("cannot raise the open-file limit");
            }
        }
    }
    file_limit()
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot listen on {addr}: {error}")]
    Bind { addr: SocketAddr, error: io::Error },
}

/// Running listeners. Dropping it does not stop them: call [`Server::shutdown`].
pub struct Server {
    addrs: Vec<SocketAddr>,
    /// Its query paths' counters (to name their block slots).
    stats: Vec<Arc<QueryStats>>,
    stop: Arc<AtomicBool>,
    cancel: CancellationToken,
    udp_threads: Vec<JoinHandle<()>>,
}

/// `v6only`: an IPv6 socket takes IPv6 only (else `[::]` takes IPv4 too).
fn udp_socket(addr: SocketAddr, v6only: bool) -> io::Result<UdpSocket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_reuse_port(true)?;
    if addr.is_ipv6() {
        socket.set_only_v6(v6only)?;
    }
    socket.bind(&addr.into())?;
    let socket: UdpSocket = socket.into();
    socket.set_read_timeout(Some(UDP_POLL))?;
    Ok(socket)
}

/// The TCP twin of [`udp_socket`], with the same `v6only`.
fn tcp_listener(addr: SocketAddr, v6only: bool) -> io::Result<std::net::TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    if addr.is_ipv6() {
        socket.set_only_v6(v6only)?;
    }
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

/// Whether an IPv6 listening address takes IPv6 only: a wildcard `[::]`
/// takes IPv4 as well (one socket for a dual-stack cluster, as Go's
/// `:53`), unless IPv4 on the same port is listed on its own.
fn only_v6(addr: SocketAddr, listen: &[SocketAddr]) -> bool {
    !addr.ip().is_unspecified() || listen.iter().any(|a| a.is_ipv4() && a.port() == addr.port())
}

/// Whether binding failed because the host has no IPv6 at all.
fn no_ipv6(e: &io::Error) -> bool {
    e.raw_os_error() == Some(libc::EAFNOSUPPORT) || e.kind() == io::ErrorKind::AddrNotAvailable
}

/// Sockets bound and not yet answering. `serve` binds them first thing,
/// before anything else starts: a question sent while the process starts
/// then waits in the kernel's queue and is answered (SERVFAIL until the
/// first load), where an unbound port would drop it and leave the client
/// to time out (half a second for `dig +timeout`, five for a pod).
pub struct Listeners {
    addrs: Vec<SocketAddr>,
    /// One socket per core and address (`SO_REUSEPORT`).
    udp: Vec<UdpSocket>,
    tcp: Vec<std::net::TcpListener>,
}

impl Listeners {
    /// Binds UDP and TCP on every address. Needs no runtime.
    pub fn bind(listen: &[SocketAddr]) -> Result<Listeners, ServeError> {
        let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        let mut addrs = Vec::new();
        let mut sockets = Vec::new();
        let mut tcp = Vec::new();
        for &asked in listen {
            let v6only = only_v6(asked, listen);
            let bind_err = |error| ServeError::Bind { addr: asked, error };
            // `[::]` on a host without IPv6: IPv4's wildcard instead.
            let want = match udp_socket(asked, v6only) {
                Err(e) if asked.is_ipv6() && asked.ip().is_unspecified() && no_ipv6(&e) => {
                    tracing::info!(%asked, error = %e, "no IPv6 here: listening on IPv4 only");
                    SocketAddr::new(std::net::Ipv4Addr::UNSPECIFIED.into(), asked.port())
                }
                _ => asked,
            };
            // With port 0 the kernel picks a free UDP port, whose TCP twin
            // may be taken (a client's ephemeral port): pick again then.
            let attempts = if want.port() == 0 { 20 } else { 1 };
            let mut last_err = None;
            for _ in 0..attempts {
                let first = udp_socket(want, v6only).map_err(bind_err)?;
                let addr = first.local_addr().map_err(bind_err)?;
                let listener = match tcp_listener(addr, v6only) {
                    Ok(l) => l,
                    Err(e) => {
                        last_err = Some(e);
                        continue;
                    }
                };
                sockets.push(first);
                for _ in 1..threads {
                    sockets.push(udp_socket(addr, v6only).map_err(bind_err)?);
                }
                tcp.push(listener);
                addrs.push(addr);
                last_err = None;
                break;
            }
            if let Some(e) = last_err {
                return Err(bind_err(e));
            }
        }
        Ok(Listeners { addrs, udp: sockets, tcp })
    }

    /// The bound addresses, in the order given (ports resolved).
    pub fn addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }
}

impl Server {
    /// Binds every address (UDP and TCP on the same port; port 0 picks one)
    /// and starts answering with `routes`. Must be called within a tokio runtime.
    pub async fn bind(routes: Routes, listen: &[SocketAddr], metrics: &Metrics) -> Result<Server, ServeError> {
        Self::bind_with(routes, listen, metrics, TcpLimits::default()).await
    }

    /// [`Server::bind`] with chosen TCP limits.
    pub async fn bind_with(
        routes: Routes,
        listen: &[SocketAddr],
        metrics: &Metrics,
        limits: TcpLimits,
    ) -> Result<Server, ServeError> {
        Self::start(Listeners::bind(listen)?, routes, metrics, limits).await
    }

    /// Starts answering on sockets bound before. Must be called within a
    /// tokio runtime.
    pub async fn start(
        listeners: Listeners,
        routes: Routes,
        metrics: &Metrics,
        limits: TcpLimits,
    ) -> Result<Server, ServeError> {
        tracing::debug!(?limits, "tcp limits");
        let runtime = tokio::runtime::Handle::current();
        let stop = Arc::new(AtomicBool::new(false));
        let cancel = CancellationToken::new();
        let Listeners { addrs, udp: sockets, tcp } = listeners;
        let bind_err = |error| ServeError::Bind { addr: addrs[0], error };
        let tcp = tcp.into_iter().map(TcpListener::from_std).collect::<io::Result<Vec<_>>>().map_err(bind_err)?;
        let mut udp_threads = Vec::new();
        let mut all_stats = Vec::new();
        for (n, socket) in sockets.into_iter().enumerate() {
            let routes = routes.clone();
            let stop = stop.clone();
            let server = socket.local_addr().map(server_label).unwrap_or_default();
            // The thread's own counters (one writer: no locked
            // instructions), and shared ones for the replies that forwarded
            // questions send from the runtime's threads.
            let stats = metrics.query_stats("udp", server.clone());
            let forwarded = metrics.query_stats_shared("udp", server);
            all_stats.extend([stats.clone(), forwarded.clone()]);
            let runtime = runtime.clone();
            let handle = std::thread::Builder::new()
                .name(format!("dns-udp-{n}"))
                .spawn(move || udp_loop(Arc::new(socket), &routes, &stop, [&stats, &forwarded], &runtime))
                .map_err(|error| ServeError::Bind { addr: addrs[0], error })?;
            udp_threads.push(handle);
        }
        for listener in tcp {
            let server = listener.local_addr().map(server_label).unwrap_or_default();
            let stats = metrics.query_stats("tcp", server);
            all_stats.push(stats.clone());
            let slots = Slots::new(limits.total, limits.per_client);
            tokio::spawn(tcp_accept(listener, routes.clone(), cancel.clone(), stats, slots, limits));
        }
        let zones = routes.load().zones();
        for s in &all_stats {
            s.set_zones(zones.clone());
        }
        Ok(Server { addrs, stats: all_stats, stop, cancel, udp_threads })
    }

    /// Names the block slots of the metrics after the router changed.
    pub fn set_zones(&self, zones: Vec<String>) {
        for s in &self.stats {
            s.set_zones(zones.clone());
        }
    }

    /// The bound addresses, in the order given (ports resolved).
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// Stops answering: listeners close, UDP threads finish their query.
    pub async fn shutdown(self) {
        self.stop.store(true, Ordering::Release);
        self.cancel.cancel();
        let threads = self.udp_threads;
        let _ = tokio::task::spawn_blocking(move || {
            for t in threads {
                let _ = t.join();
            }
        })
        .await;
    }
}

/// What one UDP thread needs to answer a datagram.
struct UdpCtx<'a> {
    socket: &'a Arc<UdpSocket>,
    stats: &'a Arc<QueryStats>,
    forwarded: &'a Arc<QueryStats>,
    runtime: &'a tokio::runtime::Handle,
}

impl UdpCtx<'_> {
    /// Answers one datagram. Returns true when the reply in `out` is to be
    /// sent now (an answer from the chain); a forwarded question is
    /// answered later, from the runtime.
    fn answer(&self, router: &Router, data: &[u8], peer: SocketAddr, out: &mut Vec<u8>) -> bool {
        let started = std::time::Instant::now();
        let Some((block, flow)) = plugins::handle_guarded(router, data, true, peer, out, started) else {
            return false;
        };
        let request_len = data.len();
        match flow {
            // Counted before the send, so whoever reads the reply can read
            // the metrics that include it.
            Flow::Done(done) => {
                self.stats.record(answered(done, block, peer, started, request_len, out.len()));
                true
            }
            Flow::Refresh(done, pending) => {
                self.stats.record(answered(done, block, peer, started, request_len, out.len()));
                refresh(self.runtime, pending);
                true
            }
            Flow::Forward(pending) => {
                let (socket, stats) = (self.socket.clone(), self.forwarded.clone());
                self.runtime.spawn(async move {
                    let mut out = Vec::new();
                    if let Some(done) = pending.run(&mut out).await {
                        stats.record(answered(done, block, peer, started, request_len, out.len()));
                        if let Err(e) = socket.send_to(&out, peer) {
                            tracing::debug!(error = %e, %peer, "udp send");
                        }
                    }
                });
                false
            }
        }
    }
}

/// Reads questions and sends answers on one socket until `stop`, up to
/// [`mmsg::BATCH`] datagrams per system call.
#[cfg(target_os = "linux")]
fn udp_loop(
    socket: Arc<UdpSocket>,
    routes: &Routes,
    stop: &AtomicBool,
    [stats, forwarded]: [&Arc<QueryStats>; 2],
    runtime: &tokio::runtime::Handle,
) {
    use std::os::fd::AsRawFd;
    let fd = socket.as_raw_fd();
    let ctx = UdpCtx { socket: &socket, stats, forwarded, runtime };
    let mut batch = mmsg::Batch::new();
    let mut outs: Vec<Vec<u8>> = (0..mmsg::BATCH).map(|_| Vec::with_capacity(4096)).collect();
    let mut ready: Vec<usize> = Vec::with_capacity(mmsg::BATCH);
    // Reads the current router with a pointer comparison per batch.
    let mut router = arc_swap::Cache::new(routes.clone());
    while !stop.load(Ordering::Acquire) {
        let n = match batch.recv(fd) {
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
                ) =>
            {
                continue;
            }
            Err(e) => {
                tracing::debug!(error = %e, "udp receive");
                continue;
            }
        };
        let router = router.load();
        ready.clear();
        for (i, out) in outs.iter_mut().enumerate().take(n) {
            let (data, peer) = batch.datagram(i);
            if let Some(peer) = peer
                && ctx.answer(router, data, peer, out)
            {
                ready.push(i);
            }
        }
        batch.send(fd, &ready, &outs);
    }
}

/// Reads questions and sends answers on one socket until `stop`.
#[cfg(not(target_os = "linux"))]
fn udp_loop(
    socket: Arc<UdpSocket>,
    routes: &Routes,
    stop: &AtomicBool,
    [stats, forwarded]: [&Arc<QueryStats>; 2],
    runtime: &tokio::runtime::Handle,
) {
    let ctx = UdpCtx { socket: &socket, stats, forwarded, runtime };
    let mut buf = vec![0u8; 65535];
    let mut out = Vec::with_capacity(4096);
    // Reads the current router with a pointer comparison per question.
    let mut router = arc_swap::Cache::new(routes.clone());
    while !stop.load(Ordering::Acquire) {
        let (len, peer) = match socket.recv_from(&mut buf) {
            Ok(x) => x,
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                continue;
            }
            Err(e) => {
                tracing::debug!(error = %e, "udp receive");
                continue;
            }
        };
        if ctx.answer(router.load(), &buf[..len], peer, &mut out)
            && let Err(e) = socket.send_to(&out, peer)
        {
            tracing::debug!(error = %e, %peer, "udp send");
        }
    }
}

/// Sends a question upstream behind an answer already given, for the cache.
fn refresh(runtime: &tokio::runtime::Handle, pending: Box<plugins::Pending>) {
    runtime.spawn(async move {
        let mut scratch = Vec::new();
        let _ = pending.run(&mut scratch).await;
    });
}

/// Open connections of one listener, in all and per client address.
pub struct Slots {
    total_max: usize,
    per_client: usize,
    open: Mutex<HashMap<IpAddr, usize>>,
    total: AtomicUsize,
}

/// One open connection's place in [`Slots`], given back on drop.
pub struct Slot {
    slots: Arc<Slots>,
    peer: IpAddr,
}

impl Slots {
    pub fn new(total: usize, per_client: usize) -> Arc<Slots> {
        Arc::new(Slots { total_max: total, per_client, open: Mutex::new(HashMap::new()), total: AtomicUsize::new(0) })
    }

    /// A place for a connection from `peer`, unless a limit is reached.
    pub fn take(self: &Arc<Self>, peer: IpAddr) -> Option<Slot> {
        let mut open = self.open.lock().ok()?;
        let mine = open.get(&peer).copied().unwrap_or(0);
        if mine >= self.per_client || self.total.load(Ordering::Relaxed) >= self.total_max {
            return None;
        }
        open.insert(peer, mine + 1);
        self.total.fetch_add(1, Ordering::Relaxed);
        Some(Slot { slots: self.clone(), peer })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Ok(mut open) = self.slots.open.lock()
            && let Some(n) = open.get_mut(&self.peer)
        {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.peer);
            }
        }
        self.slots.total.fetch_sub(1, Ordering::Relaxed);
    }
}

async fn tcp_accept(
    listener: TcpListener,
    routes: Routes,
    cancel: CancellationToken,
    stats: Arc<QueryStats>,
    slots: Arc<Slots>,
    limits: TcpLimits,
) {
    let mut backoff = Duration::ZERO;
    loop {
        let accepted = tokio::select! {
            _ = cancel.cancelled() => return,
            a = listener.accept() => a,
        };
        match accepted {
            Ok((stream, peer)) => {
                backoff = Duration::ZERO;
                let Some(slot) = slots.take(peer.ip()) else {
                    tracing::debug!(%peer, "tcp connection refused: too many open");
                    drop(stream);
                    continue;
                };
                let routes = routes.clone();
                let cancel = cancel.clone();
                let stats = stats.clone();
                tokio::spawn(async move {
                    let _slot = slot;
                    tokio::select! {
                        _ = cancel.cancelled() => {}
                        r = tcp_conn(stream, &routes, &stats, peer, limits) => if let Err(e) = r {
                            tracing::debug!(error = %e, "tcp connection");
                        }
                    }
                });
            }
            Err(e) => {
                // Out of file descriptors and the like: back off (doubling
                // to a second), keep serving UDP and the open connections.
                backoff = (backoff * 2).clamp(Duration::from_millis(5), Duration::from_secs(1));
                tracing::warn!(error = %e, ?backoff, "tcp accept");
                tokio::time::sleep(backoff).await;
            }
        }
    }
}

/// RFC 7766: queries on one connection, each with a two-byte length. Each
/// query must arrive within `limits.read` and each reply be taken within
/// `limits.write`, or the connection closes.
/// How long one zone transfer may take to send, in all.
const TRANSFER_TIME: std::time::Duration = std::time::Duration::from_secs(60);

async fn tcp_conn(
    mut stream: TcpStream,
    routes: &Routes,
    stats: &QueryStats,
    peer: SocketAddr,
    limits: TcpLimits,
) -> io::Result<()> {
    let _ = stream.set_nodelay(true);
    let _ = socket2::SockRef::from(&stream).set_send_buffer_size(TCP_SEND_BUFFER);
    // Grown to the largest query seen: an idle connection holds no buffer.
    let mut buf = Vec::new();
    let mut out = Vec::new();
    loop {
        let mut len = [0u8; 2];
        match tokio::time::timeout(limits.read, stream.read_exact(&mut len)).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
            Ok(Err(e)) => return Err(e),
            Err(_) => return Ok(()), // idle
        }
        let len = u16::from_be_bytes(len) as usize;
        if buf.len() < len {
            buf.resize(len, 0);
        }
        match tokio::time::timeout(limits.read, stream.read_exact(&mut buf[..len])).await {
            Ok(r) => r?,
            Err(_) => return Ok(()), // a slow writer
        };
        let started = std::time::Instant::now();
        // A zone transfer is several messages on this connection, sent
        // within TRANSFER_TIME in all (a client reading slowly does not
        // hold the zone's copy for long).
        // The router's guard is let go before any await (a guard held long
        // slows the writers that swap routers on reload).
        let transfer = plugins::axfr(&routes.load(), &buf[..len], peer);
        if let Some((messages, _slot)) = transfer {
            let send = async {
                for m in messages {
                    stream.write_all(&(m.len() as u16).to_be_bytes()).await?;
                    stream.write_all(&m).await?;
                }
                io::Result::Ok(())
            };
            match tokio::time::timeout(TRANSFER_TIME, send).await {
                Ok(r) => r?,
                Err(_) => return Ok(()),
            }
            continue;
        }
        let handled = plugins::handle_guarded(&routes.load(), &buf[..len], false, peer, &mut out, started);
        // Not a query: a stream that carries garbage is closed.
        let Some((block, flow)) = handled else { return Ok(()) };
        let done = match flow {
            Flow::Done(done) => done,
            Flow::Refresh(done, pending) => {
                refresh(&tokio::runtime::Handle::current(), pending);
                done
            }
            Flow::Forward(pending) => match pending.run(&mut out).await {
                Some(done) => done,
                None => return Ok(()),
            },
        };
        stats.record(answered(done, block, peer, started, len, out.len()));
        let mut framed = Vec::with_capacity(out.len() + 2);
        framed.extend_from_slice(&(out.len() as u16).to_be_bytes());
        framed.extend_from_slice(&out);
        match tokio::time::timeout(limits.write, stream.write_all(&framed)).await {
            Ok(r) => r?,
            Err(_) => return Ok(()), // the client stopped reading
        }
    }
}

fn answered(
    done: plugins::message::Done,
    block: usize,
    peer: SocketAddr,
    started: std::time::Instant,
    request_len: usize,
    response_len: usize,
) -> Answered {
    Answered {
        v6: peer.is_ipv6(),
        block,
        qtype: done.qtype,
        rcode: done.rcode,
        plugin: done.plugin,
        took: started.elapsed(),
        request_len,
        response_len,
    }
}
