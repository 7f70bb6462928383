//! Listeners and accept loops: plain HTTP (HTTP/1.1 and h2c prior knowledge) and HTTPS
//! (rustls, ALPN h2/http1.1), each connection's [`ConnectionInfo`] attached to its requests,
//! and a bounded graceful drain.
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use ancm_front::Body;
use ancm_front::conn::{AddConnectionInfo, ConnectionInfo};
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

/// One listening socket.
pub struct Listener {
    /// The bound socket.
    pub socket: TcpListener,
    /// TLS configuration for HTTPS listeners.
    pub tls: Option<TlsAcceptor>,
}

impl Listener {
    /// Bind `addr` (plain when `tls` is `None`).
    pub async fn bind(
        addr: SocketAddr,
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> std::io::Result<Self> {
        let socket = TcpListener::bind(addr).await?;
        Ok(Self {
            socket,
            tls: tls.map(TlsAcceptor::from),
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.socket.local_addr()
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

/// Serve `service` on every listener until `shutdown` resolves, then stop accepting and wait
/// up to `drain` for in-flight requests.
pub async fn serve<S>(
    listeners: Vec<Listener>,
    service: S,
    shutdown: impl Future<Output = ()>,
    drain: Duration,
) where
    S: Service<Request<Incoming>, Response = Response<Body>, Error = Infallible>
        + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
{
    let graceful = Arc::new(GracefulShutdown::new());
    let (stop_tx, stop_rx) = watch::channel(false);
    let builder = Arc::new(builder());
    let mut accept_loops = Vec::new();
    for listener in listeners {
        accept_loops.push(tokio::spawn(accept_loop(
            listener,
            service.clone(),
            builder.clone(),
            graceful.clone(),
            stop_rx.clone(),
        )));
    }
    shutdown.await;
    tracing::info!("shutting down: no new connections, draining in-flight requests");
    let _ = stop_tx.send(true);
    for task in accept_loops {
        let _ = task.await;
    }
    let Ok(graceful) = Arc::try_unwrap(graceful) else {
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

async fn accept_loop<S>(
    listener: Listener,
    service: S,
    builder: Arc<auto::Builder<TokioExecutor>>,
    graceful: Arc<GracefulShutdown>,
    mut stop: watch::Receiver<bool>,
) where
    S: Service<Request<Incoming>, Response = Response<Body>, Error = Infallible>
        + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
{
    let local = listener.local_addr().ok();
    loop {
        let accepted = tokio::select! {
            accepted = listener.socket.accept() => accepted,
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
        let builder = builder.clone();
        let graceful = graceful.clone();
        match listener.tls.clone() {
            None => {
                let info = ConnectionInfo::plain(peer, local);
                serve_connection(&builder, &graceful, TokioIo::new(stream), info, service);
            }
            Some(acceptor) => {
                tokio::spawn(async move {
                    let Some((tls, info)) = handshake(acceptor, stream, peer, local).await else {
                        return;
                    };
                    serve_connection(&builder, &graceful, TokioIo::new(tls), info, service);
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

fn serve_connection<I, S>(
    builder: &auto::Builder<TokioExecutor>,
    graceful: &GracefulShutdown,
    io: TokioIo<I>,
    info: ConnectionInfo,
    service: S,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    S: Service<Request<Incoming>, Response = Response<Body>, Error = Infallible>
        + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
{
    let peer = info.peer_addr();
    let service = TowerToHyperService::new(AddConnectionInfo::new(service, info));
    let conn = builder
        .serve_connection_with_upgrades(io, service)
        .into_owned();
    let conn = graceful.watch(conn);
    tokio::spawn(async move {
        if let Err(err) = conn.await {
            tracing::debug!(%peer, error = %err, "client connection ended with an error");
        }
    });
}
