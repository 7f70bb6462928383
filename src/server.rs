//! Listeners and accept loops: plain HTTP (HTTP/1.1 and h2c prior knowledge) and HTTPS
//! (rustls, ALPN h2/http1.1), each connection's [`ConnectionInfo`] attached to its requests,
//! and a bounded graceful drain.
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use ancm_front::conn::ConnectionInfo;
use ancm_front::{AddExtension, Body};
use bytes::Bytes;
use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;
use tower::Service;

/// How long a client may take for the TLS handshake.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a client may take to send a request's headers (slowloris guard).
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest request head hyper buffers; larger heads get 431 from hyper.
pub const MAX_HEADER_BYTES: usize = 64 * 1024;

/// One listening socket; every runtime accepts on its own clone of it.
pub struct Listener {
    /// The bound socket (non-blocking).
    socket: std::net::TcpListener,
    /// TLS configuration for HTTPS listeners.
    tls: Option<TlsAcceptor>,
}

impl Listener {
    /// Bind `addr` (plain when `tls` is `None`).
    pub fn bind(addr: SocketAddr, tls: Option<Arc<rustls::ServerConfig>>) -> std::io::Result<Self> {
        let socket = std::net::TcpListener::bind(addr)?;
        socket.set_nonblocking(true)?;
        Ok(Self {
            socket,
            tls: tls.map(TlsAcceptor::from),
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
        })
    }
}

/// What the accept loops of every runtime share: the connection tracker for the graceful
/// drain, the stop signal, and the hyper connection settings.
#[derive(Clone)]
pub struct ServerHandle {
    graceful: Arc<GracefulShutdown>,
    stop: watch::Receiver<bool>,
    builder: Arc<auto::Builder<TokioExecutor>>,
}

/// Owns the stop signal and, once every accept loop has ended, drains the connections.
pub struct Server {
    stop: watch::Sender<bool>,
    handle: ServerHandle,
}

impl Server {
    /// A server with no accept loops yet.
    pub fn new() -> Self {
        let (stop, stop_rx) = watch::channel(false);
        let handle = ServerHandle {
            graceful: Arc::new(GracefulShutdown::new()),
            stop: stop_rx,
            builder: Arc::new(builder()),
        };
        Self { stop, handle }
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
        let Ok(graceful) = Arc::try_unwrap(self.handle.graceful) else {
            tracing::error!("connection tracker still shared after the accept loops stopped");
            return;
        };
        match tokio::time::timeout(drain, graceful.shutdown()).await {
            Ok(()) => tracing::info!("all connections drained"),
            Err(_) => tracing::warn!(
                drain_secs = drain.as_secs(),
                "drain timeout: closing remaining connections"
            ),
        }
    }
}

impl ServerHandle {
    /// Start one accept loop per listener on the current runtime, serving `service`; they end
    /// when [`Server::stop_accepting`] is called.
    pub fn spawn_accept_loops<S>(
        &self,
        listeners: Vec<Listener>,
        service: S,
    ) -> std::io::Result<Vec<tokio::task::JoinHandle<()>>>
    where
        S: Service<Request<Incoming>, Response = Response<Body>, Error = Infallible>
            + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send + 'static,
    {
        let mut loops = Vec::with_capacity(listeners.len());
        for listener in listeners {
            let socket = TcpListener::from_std(listener.socket)?;
            loops.push(tokio::spawn(accept_loop(
                socket,
                listener.tls,
                service.clone(),
                self.clone(),
            )));
        }
        Ok(loops)
    }
}

fn builder() -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_buf_size(MAX_HEADER_BYTES);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(MAX_HEADER_BYTES as u32);
    builder
}

async fn accept_loop<S>(
    socket: TcpListener,
    tls: Option<TlsAcceptor>,
    service: S,
    handle: ServerHandle,
) where
    S: Service<Request<Incoming>, Response = Response<Body>, Error = Infallible>
        + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
{
    let local = socket.local_addr().ok();
    let mut stop = handle.stop.clone();
    loop {
        let accepted = tokio::select! {
            accepted = socket.accept() => accepted,
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
        let _ = stream.set_nodelay(true);
        let local = local.unwrap_or(peer);
        let service = service.clone();
        match tls.clone() {
            None => {
                let info = ConnectionInfo::plain(peer, local);
                serve_connection(&handle, TokioIo::new(stream), info, service);
            }
            Some(acceptor) => {
                let handle = handle.clone();
                tokio::spawn(async move {
                    let Some((tls, info)) = handshake(acceptor, stream, peer, local).await else {
                        return;
                    };
                    serve_connection(&handle, TokioIo::new(tls), info, service);
                });
            }
        }
    }
}

async fn handshake(
    acceptor: TlsAcceptor,
    stream: TcpStream,
    peer: SocketAddr,
    local: SocketAddr,
) -> Option<(tokio_rustls::server::TlsStream<TcpStream>, ConnectionInfo)> {
    match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
        Ok(Ok(tls)) => {
            let cert = tls
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|chain| chain.first())
                .map(|c| Bytes::copy_from_slice(c.as_ref()));
            let info = ConnectionInfo::tls(peer, local, cert);
            Some((tls, info))
        }
        Ok(Err(err)) => {
            tracing::debug!(%peer, error = %err, "TLS handshake failed");
            None
        }
        Err(_) => {
            tracing::debug!(%peer, "TLS handshake timed out");
            None
        }
    }
}

fn serve_connection<I, S>(handle: &ServerHandle, io: TokioIo<I>, info: ConnectionInfo, service: S)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    S: Service<Request<Incoming>, Response = Response<Body>, Error = Infallible>
        + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
{
    let peer = info.peer_addr();
    let service = TowerToHyperService::new(AddExtension::new(service, info));
    let conn = handle
        .builder
        .serve_connection_with_upgrades(io, service)
        .into_owned();
    let conn = handle.graceful.watch(conn);
    tokio::spawn(async move {
        if let Err(err) = conn.await {
            tracing::debug!(%peer, error = %err, "client connection ended with an error");
        }
    });
}
