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

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use arc_swap::ArcSwap;

use crate::metrics::{Answered, Metrics, QueryStats, server_label};
use crate::plugins::{self, Flow, Router};

/// The server blocks a listener answers with; swapped on reload.
pub type Routes = Arc<ArcSwap<Router>>;

/// How long an idle TCP connection is kept (RFC 7766 suggests seconds).
const TCP_IDLE: Duration = Duration::from_secs(10);
/// TCP connections served at once. Each costs a task and a 64 KiB buffer;
/// past this, new connections are closed at once (clients retry or stay on
/// UDP) so that idle or slow clients cannot exhaust memory or descriptors.
pub const TCP_CONNECTIONS: usize = 1024;
/// How often a UDP thread looks at the stop flag when no query comes.
const UDP_POLL: Duration = Duration::from_millis(200);

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

fn udp_socket(addr: SocketAddr) -> io::Result<UdpSocket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_reuse_port(true)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.bind(&addr.into())?;
    let socket: UdpSocket = socket.into();
    socket.set_read_timeout(Some(UDP_POLL))?;
    Ok(socket)
}

impl Server {
    /// Binds every address (UDP and TCP on the same port; port 0 picks one)
    /// and starts answering with `routes`. Must be called within a tokio runtime.
    pub async fn bind(routes: Routes, listen: &[SocketAddr], metrics: &Metrics) -> Result<Server, ServeError> {
        Self::bind_with(routes, listen, metrics, TCP_CONNECTIONS).await
    }

    /// [`Server::bind`] with a chosen limit of concurrent TCP connections.
    pub async fn bind_with(
        routes: Routes,
        listen: &[SocketAddr],
        metrics: &Metrics,
        tcp_connections: usize,
    ) -> Result<Server, ServeError> {
        let runtime = tokio::runtime::Handle::current();
        let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        let stop = Arc::new(AtomicBool::new(false));
        let cancel = CancellationToken::new();
        let mut addrs = Vec::new();
        let mut sockets = Vec::new();
        let mut tcp = Vec::new();
        for &want in listen {
            let bind_err = |error| ServeError::Bind { addr: want, error };
            // With port 0 the kernel picks a free UDP port, whose TCP twin
            // may be taken (a client's ephemeral port): pick again then.
            let attempts = if want.port() == 0 { 20 } else { 1 };
            let mut last_err = None;
            for _ in 0..attempts {
                let first = udp_socket(want).map_err(bind_err)?;
                let addr = first.local_addr().map_err(bind_err)?;
                let listener = match TcpListener::bind(addr).await {
                    Ok(l) => l,
                    Err(e) => {
                        last_err = Some(e);
                        continue;
                    }
                };
                sockets.push(first);
                for _ in 1..threads {
                    sockets.push(udp_socket(addr).map_err(bind_err)?);
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
            let slots = Arc::new(tokio::sync::Semaphore::new(tcp_connections));
            tokio::spawn(tcp_accept(listener, routes.clone(), cancel.clone(), stats, slots));
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

fn udp_loop(
    socket: Arc<UdpSocket>,
    routes: &Routes,
    stop: &AtomicBool,
    [stats, forwarded]: [&Arc<QueryStats>; 2],
    runtime: &tokio::runtime::Handle,
) {
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
        let started = std::time::Instant::now();
        let Some((block, flow)) = plugins::handle(router.load(), &buf[..len], true, peer, &mut out, started) else {
            continue;
        };
        let request_len = len;
        match flow {
            // Counted before the send, so whoever reads the reply can read
            // the metrics that include it.
            Flow::Done(done) => {
                stats.record(answered(done, block, peer, started, request_len, out.len()));
                if let Err(e) = socket.send_to(&out, peer) {
                    tracing::debug!(error = %e, %peer, "udp send");
                }
            }
            Flow::Refresh(done, pending) => {
                stats.record(answered(done, block, peer, started, request_len, out.len()));
                if let Err(e) = socket.send_to(&out, peer) {
                    tracing::debug!(error = %e, %peer, "udp send");
                }
                refresh(runtime, pending);
            }
            Flow::Forward(pending) => {
                let (socket, stats) = (socket.clone(), forwarded.clone());
                runtime.spawn(async move {
                    let mut out = Vec::new();
                    if let Some(done) = pending.run(&mut out).await {
                        stats.record(answered(done, block, peer, started, request_len, out.len()));
                        if let Err(e) = socket.send_to(&out, peer) {
                            tracing::debug!(error = %e, %peer, "udp send");
                        }
                    }
                });
            }
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

async fn tcp_accept(
    listener: TcpListener,
    routes: Routes,
    cancel: CancellationToken,
    stats: Arc<QueryStats>,
    slots: Arc<tokio::sync::Semaphore>,
) {
    loop {
        let accepted = tokio::select! {
            _ = cancel.cancelled() => return,
            a = listener.accept() => a,
        };
        match accepted {
            Ok((stream, peer)) => {
                let Ok(slot) = slots.clone().try_acquire_owned() else {
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
                        r = tcp_conn(stream, &routes, &stats, peer) => if let Err(e) = r {
                            tracing::debug!(error = %e, "tcp connection");
                        }
                    }
                });
            }
            Err(e) => {
                // Out of file descriptors and the like: back off, keep serving.
                tracing::warn!(error = %e, "tcp accept");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// RFC 7766: queries on one connection, each with a two-byte length.
async fn tcp_conn(mut stream: TcpStream, routes: &Routes, stats: &QueryStats, peer: SocketAddr) -> io::Result<()> {
    let _ = stream.set_nodelay(true);
    let mut buf = vec![0u8; 65535];
    let mut out = Vec::with_capacity(4096);
    loop {
        let mut len = [0u8; 2];
        match tokio::time::timeout(TCP_IDLE, stream.read_exact(&mut len)).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
            Ok(Err(e)) => return Err(e),
            Err(_) => return Ok(()), // idle
        }
        let len = u16::from_be_bytes(len) as usize;
        match tokio::time::timeout(TCP_IDLE, stream.read_exact(&mut buf[..len])).await {
            Ok(r) => r?,
            Err(_) => return Ok(()),
        };
        let started = std::time::Instant::now();
        let handled = plugins::handle(&routes.load(), &buf[..len], false, peer, &mut out, started);
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
        stream.write_all(&framed).await?;
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
