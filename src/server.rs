//! Listeners and accept loops: plain HTTP (HTTP/1.1 and h2c prior knowledge) and HTTPS
//! (rustls, ALPN h2/http1.1), either behind a PROXY protocol header
//! ([`crate::proxy_protocol`]), each connection's [`ConnectionInfo`] attached to its requests
//! (its client marked trusted when `--trusted-proxy` names it), the
//! [connection limits](crate::connection), and a bounded graceful drain.
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ancm_front::conn::ConnectionInfo;
use ancm_front::{AddExtension, Body};
use bytes::Bytes;
use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use ipnet::IpNet;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;
use tower::Service;

use crate::connection::{
    Activity, Close, ConnectionLimits, SlotStream, Slots, TrackActivity, close_due,
};
use crate::proxy_protocol::read_client_addr;
use crate::tls::stats::{HandshakeFailure, HandshakeStats};

/// How long a client may take for the TLS handshake (within the header timeout).
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest request head hyper buffers; larger heads get 431 from hyper.
pub const MAX_HEADER_BYTES: usize = 64 * 1024;

/// A client socket holding its connection slot.
type ClientStream = SlotStream<TcpStream>;

/// One listening socket; every runtime accepts on its own clone of it.
pub struct Listener {
    /// The bound socket (non-blocking).
    socket: std::net::TcpListener,
    /// TLS configuration for HTTPS listeners.
    tls: Option<TlsAcceptor>,
    /// Whether each connection starts with a PROXY protocol header.
    proxy_protocol: bool,
}

impl Listener {
    /// Bind `addr` (plain when `tls` is `None`).
    pub fn bind(addr: SocketAddr, tls: Option<Arc<rustls::ServerConfig>>) -> std::io::Result<Self> {
        let socket = std::net::TcpListener::bind(addr)?;
        socket.set_nonblocking(true)?;
        Ok(Self {
            socket,
            tls: tls.map(TlsAcceptor::from),
            proxy_protocol: false,
        })
    }

    /// Expect a PROXY protocol header (v1 or v2) first on each connection (`--proxy-protocol`).
    pub fn proxy_protocol(mut self, expect: bool) -> Self {
        self.proxy_protocol = expect;
        self
    }

    /// Whether connections start with a PROXY protocol header.
    pub fn expects_proxy_protocol(&self) -> bool {
        self.proxy_protocol
    }

    /// A socket bound and listening already (socket activation), plain when `tls` is
    /// `None`.
    pub fn from_std(
        socket: std::net::TcpListener,
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> std::io::Result<Self> {
        socket.set_nonblocking(true)?;
        Ok(Self {
            socket,
            tls: tls.map(TlsAcceptor::from),
            proxy_protocol: false,
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// Another handle to the same socket, for another runtime.
    pub fn try_clone(&self) -> std::io::Result<Self> {
        Ok(Self {
            socket: self.socket.try_clone()?,
            tls: self.tls.clone(),
            proxy_protocol: self.proxy_protocol,
        })
    }
}

/// What the accept loops of every runtime share: the drain signal (every connection's task
/// holds a receiver, so the drain can wait for them), the stop signal, the connection slots,
/// and the hyper connection settings.
#[derive(Clone)]
pub struct ServerHandle {
    drain: Arc<watch::Sender<()>>,
    stop: watch::Receiver<bool>,
    slots: Arc<Slots>,
    tls_handshakes: Arc<HandshakeStats>,
    limits: ConnectionLimits,
    builder: Arc<auto::Builder<TokioExecutor>>,
    /// `--trusted-proxy`: clients whose `X-Forwarded-*` headers are kept as sent.
    trusted_proxies: Arc<[IpNet]>,
}

/// Owns the stop signal and, once every accept loop has ended, drains the connections.
pub struct Server {
    stop: watch::Sender<bool>,
    handle: ServerHandle,
}

impl Server {
    /// A server with no accept loops yet.
    pub fn new(limits: ConnectionLimits) -> Self {
        tracing::info!(
            max_connections = limits.max_connections.get(),
            header_timeout_secs = limits.header_timeout.as_secs(),
            h2_idle_timeout_secs = limits.h2_idle_timeout.as_secs(),
            h2_ping_interval_secs = limits.h2_ping_interval.as_secs(),
            "client connection limits"
        );
        let (stop, stop_rx) = watch::channel(false);
        let handle = ServerHandle {
            drain: Arc::new(watch::Sender::new(())),
            stop: stop_rx,
            slots: Arc::new(Slots::new(limits.max_connections)),
            tls_handshakes: Arc::default(),
            limits,
            builder: Arc::new(builder(&limits)),
            trusted_proxies: Arc::new([]),
        };
        Self { stop, handle }
    }

    /// Mark connections whose client address is in `networks` as coming from a trusted
    /// proxy (`--trusted-proxy`; protocol §8.40). Call it before making handles.
    pub fn trusting(mut self, networks: Vec<IpNet>) -> Self {
        self.handle.trusted_proxies = networks.into();
        self
    }

    /// A handle for starting accept loops (on any runtime).
    pub fn handle(&self) -> ServerHandle {
        self.handle.clone()
    }

    /// Stop every accept loop; connections already open go on.
    pub fn stop_accepting(&self) {
        let _ = self.stop.send(true);
    }

    /// Wait up to `drain` for the open connections to finish their requests. Call it after
    /// every accept loop has ended and every other [`ServerHandle`] is dropped.
    pub async fn drain(self, drain: Duration) {
        let Ok(signal) = Arc::try_unwrap(self.handle.drain) else {
            tracing::error!("connection tracker still shared after the accept loops stopped");
            return;
        };
        // Each connection's task shuts its connection down gracefully and drops its receiver
        // when the connection has closed.
        signal.send_replace(());
        match tokio::time::timeout(drain, signal.closed()).await {
            Ok(()) => tracing::info!("all connections drained"),
            Err(_) => tracing::warn!(
                drain_secs = drain.as_secs(),
                "drain timeout: closing remaining connections"
            ),
        }
    }
}

impl ServerHandle {
    /// Start the accept loop of the current runtime: it accepts on every one of `listeners`,
    /// serving `service`, and ends when [`Server::stop_accepting`] is called. One loop for all
    /// listeners, so that the connection slot it waits for at the cap goes to whichever
    /// listener has the next connection.
    pub fn spawn_accept_loop<S>(
        &self,
        listeners: Vec<Listener>,
        service: S,
    ) -> std::io::Result<tokio::task::JoinHandle<()>>
    where
        S: Service<Request<Incoming>, Response = Response<Body>, Error = Infallible>
            + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send + 'static,
    {
        let listeners = listeners
            .into_iter()
            .map(|listener| {
                let socket = TcpListener::from_std(listener.socket)?;
                Ok(Accepting {
                    local: socket.local_addr().ok(),
                    socket,
                    tls: listener.tls,
                    proxy_protocol: listener.proxy_protocol,
                })
            })
            .collect::<std::io::Result<Vec<_>>>()?;
        Ok(tokio::spawn(accept_loop(listeners, service, self.clone())))
    }

    /// The connection slots, for the count of open connections (metrics). Not a handle: the
    /// drain needs every handle dropped.
    pub fn connection_slots(&self) -> Arc<Slots> {
        self.slots.clone()
    }

    /// The TLS handshake counters of every HTTPS listener (metrics).
    pub fn tls_handshakes(&self) -> Arc<HandshakeStats> {
        self.tls_handshakes.clone()
    }

    /// What the task of a connection accepted now needs.
    fn connection_task(&self) -> ConnectionTask {
        ConnectionTask {
            builder: self.builder.clone(),
            drain: self.drain.subscribe(),
            h2_idle_timeout: self.limits.h2_idle_timeout,
            header_deadline: Instant::now() + self.limits.header_timeout,
            trusted_proxies: self.trusted_proxies.clone(),
        }
    }
}

/// Whether `client` is in one of `networks`; an IPv4-mapped IPv6 client is also checked as
/// IPv4, so a dual-stack listener matches IPv4 networks.
fn is_trusted(networks: &[IpNet], client: std::net::IpAddr) -> bool {
    let client = match client {
        std::net::IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(client, std::net::IpAddr::V4),
        v4 => v4,
    };
    networks.iter().any(|network| network.contains(&client))
}

/// A listening socket of this runtime.
struct Accepting {
    socket: TcpListener,
    local: Option<SocketAddr>,
    tls: Option<TlsAcceptor>,
    proxy_protocol: bool,
}

/// The next connection on any of `listeners`, trying them in turn from `*next` so that a busy
/// listener does not starve the others.
fn poll_accept_any(
    listeners: &[Accepting],
    next: &mut usize,
    cx: &mut std::task::Context<'_>,
) -> std::task::Poll<(usize, std::io::Result<(TcpStream, SocketAddr)>)> {
    let count = listeners.len();
    for offset in 0..count {
        let index = (*next + offset) % count;
        if let std::task::Poll::Ready(accepted) = listeners[index].socket.poll_accept(cx) {
            *next = (index + 1) % count;
            return std::task::Poll::Ready((index, accepted));
        }
    }
    std::task::Poll::Pending
}

fn builder(limits: &ConnectionLimits) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // The header read timeout also bounds an idle keep-alive connection: hyper starts it
    // again after each response.
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(MAX_HEADER_BYTES);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(limits.h2_ping_interval)
        .keep_alive_timeout(limits.h2_ping_interval)
        .max_header_list_size(MAX_HEADER_BYTES as u32);
    builder
}

async fn accept_loop<S>(listeners: Vec<Accepting>, service: S, handle: ServerHandle)
where
    S: Service<Request<Incoming>, Response = Response<Body>, Error = Infallible>
        + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
{
    let mut stop = handle.stop.clone();
    let mut next = 0;
    loop {
        // At the cap this waits without accepting: new connections queue in the backlog.
        let slot = tokio::select! {
            slot = handle.slots.acquire() => slot,
            _ = stop.wait_for(|stop| *stop) => return,
        };
        let Some(slot) = slot else {
            tracing::error!("connection slots closed: no longer accepting");
            return;
        };
        let (index, accepted) = tokio::select! {
            accepted = std::future::poll_fn(|cx| poll_accept_any(&listeners, &mut next, cx)) => accepted,
            _ = stop.wait_for(|stop| *stop) => return,
        };
        let (stream, peer) = match accepted {
            Ok(conn) => conn,
            Err(err) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::warn!(error = %err, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let task = handle.connection_task();
        let _ = stream.set_nodelay(true);
        let mut stream = SlotStream::new(stream, slot);
        let listener = &listeners[index];
        let local = listener.local.unwrap_or(peer);
        let service = service.clone();
        match (listener.tls.clone(), listener.proxy_protocol) {
            (None, false) => {
                let info = task.plain(peer, local);
                task.serve(stream, info, service);
            }
            (tls, proxy_protocol) => {
                let stats = handle.tls_handshakes.clone();
                tokio::spawn(async move {
                    // The PROXY header comes before anything else, TLS included (protocol
                    // §8.39), within the header timeout.
                    let client = if proxy_protocol {
                        let deadline = task.header_deadline;
                        match read_client_addr(stream.socket_mut(), peer, deadline).await {
                            Ok(client) => client,
                            Err(error) => {
                                tracing::debug!(%peer, reason = error.reason(), %error, "PROXY protocol header refused: closing");
                                return;
                            }
                        }
                    } else {
                        peer
                    };
                    match tls {
                        None => {
                            let info = task.plain(client, local);
                            task.serve(stream, info, service);
                        }
                        Some(acceptor) => {
                            let deadline = task.header_deadline;
                            let handshake =
                                handshake(acceptor, stream, client, local, deadline, stats);
                            let Some((tls, info)) = handshake.await else {
                                return;
                            };
                            let info = info
                                .with_trusted_proxy(is_trusted(&task.trusted_proxies, client.ip()));
                            task.serve(tls, info, service);
                        }
                    }
                });
            }
        }
    }
}

async fn handshake(
    acceptor: TlsAcceptor,
    stream: ClientStream,
    peer: SocketAddr,
    local: SocketAddr,
    header_deadline: Instant,
    stats: Arc<HandshakeStats>,
) -> Option<(
    tokio_rustls::server::TlsStream<ClientStream>,
    ConnectionInfo,
)> {
    let deadline = header_deadline.min(Instant::now() + TLS_HANDSHAKE_TIMEOUT);
    match tokio::time::timeout_at(deadline.into(), acceptor.accept(stream)).await {
        Ok(Ok(tls)) => {
            let session = tls.get_ref().1;
            let resumed = session.handshake_kind() == Some(rustls::HandshakeKind::Resumed);
            stats.completed(resumed);
            tracing::debug!(
                %peer,
                version = ?session.protocol_version(),
                resumed,
                server_name = session.server_name(),
                "TLS handshake"
            );
            let cert = session
                .peer_certificates()
                .and_then(|chain| chain.first())
                .map(|c| Bytes::copy_from_slice(c.as_ref()));
            let info = ConnectionInfo::tls(peer, local, cert);
            Some((tls, info))
        }
        Ok(Err(err)) => {
            let reason = HandshakeFailure::of(&err);
            stats.failed(reason);
            tracing::debug!(%peer, reason = reason.as_str(), error = %err, "TLS handshake failed");
            None
        }
        Err(_) => {
            stats.failed(HandshakeFailure::Timeout);
            let reason = HandshakeFailure::Timeout.as_str();
            tracing::debug!(%peer, reason, "TLS handshake failed");
            None
        }
    }
}

/// What a connection's task needs from the server. It holds a drain receiver, not a
/// [`ServerHandle`], so that the drain waits for a connection still in its TLS handshake.
struct ConnectionTask {
    builder: Arc<auto::Builder<TokioExecutor>>,
    drain: watch::Receiver<()>,
    h2_idle_timeout: Duration,
    /// When the first request head must have arrived.
    header_deadline: Instant,
    /// `--trusted-proxy`.
    trusted_proxies: Arc<[IpNet]>,
}

impl ConnectionTask {
    /// The facts of a plain-HTTP connection from `client`.
    fn plain(&self, client: SocketAddr, local: SocketAddr) -> ConnectionInfo {
        ConnectionInfo::plain(client, local)
            .with_trusted_proxy(is_trusted(&self.trusted_proxies, client.ip()))
    }

    /// Serve one connection on its own task, which also closes it when [`close_due`] says so
    /// and shuts it down gracefully when the server drains.
    fn serve<I, S>(self, io: I, info: ConnectionInfo, service: S)
    where
        I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
        S: Service<Request<Incoming>, Response = Response<Body>, Error = Infallible>
            + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send + 'static,
    {
        let ConnectionTask {
            builder,
            mut drain,
            h2_idle_timeout,
            header_deadline,
            trusted_proxies: _,
        } = self;
        let peer = info.peer_addr();
        let activity = Arc::new(Activity::default());
        let service = TrackActivity::new(AddExtension::new(service, info), activity.clone());
        let conn = builder
            .serve_connection_with_upgrades(TokioIo::new(io), TowerToHyperService::new(service))
            .into_owned();
        tokio::spawn(async move {
            let mut conn = pin!(conn);
            let close_due = || close_due(activity.clone(), header_deadline, h2_idle_timeout);
            let mut close = pin!(close_due());
            let mut draining = false;
            let mut sent_goaway = false;
            loop {
                tokio::select! {
                    result = conn.as_mut() => {
                        if let Err(err) = result {
                            tracing::debug!(%peer, error = %err, "client connection ended with an error");
                        }
                        return;
                    }
                    _ = drain.changed(), if !draining => {
                        draining = true;
                        conn.as_mut().graceful_shutdown();
                    }
                    reason = close.as_mut() => match reason {
                        Close::NoRequestHead => {
                            tracing::debug!(%peer, "no request head within the header timeout: closing");
                            return;
                        }
                        Close::Idle if !sent_goaway => {
                            tracing::debug!(%peer, "HTTP/2 connection idle: GOAWAY");
                            sent_goaway = true;
                            conn.as_mut().graceful_shutdown();
                            // A client that neither opens a stream nor closes within another
                            // idle period (say, never answers the GOAWAY's PING) is closed.
                            close.set(close_due());
                        }
                        Close::Idle => {
                            tracing::debug!(%peer, "HTTP/2 connection still open after GOAWAY: closing");
                            return;
                        }
                    },
                }
            }
        });
    }
}
