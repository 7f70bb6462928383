//! The listener the front connects to: `127.0.0.1:PORT`, or the Unix-domain socket the `ancm`
//! gateway names in `ANCM_UNIX_SOCKET` for applications that opt in (protocol §8.42).
//!
//! ```no_run
//! use axum::{Router, ServiceExt, extract::Request, routing::get};
//! use iis_integration::{IisConfig, IisIntegrationLayer, PeerAddr, ShutdownSignal, bind_front_listener, graceful_shutdown};
//! use tower::ServiceBuilder;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let config = IisConfig::from_env()?;
//! let listener = bind_front_listener(config.as_ref(), "127.0.0.1:5000".parse()?).await?;
//! let shutdown = ShutdownSignal::new();
//! let iis = config.as_ref().map(|c| IisIntegrationLayer::new(c).with_shutdown_signal(shutdown.clone()));
//! let app = ServiceBuilder::new()
//!     .option_layer(iis)
//!     .service(Router::new().route("/", get(|| async { "hello" })));
//! // The connection's peer as `ConnectInfo<PeerAddr>`, which the layer reads.
//! axum::serve(listener, ServiceExt::<Request>::into_make_service_with_connect_info::<PeerAddr>(app))
//!     .with_graceful_shutdown(graceful_shutdown(shutdown))
//!     .await?;
//! # Ok(()) }
//! ```
//!
//! A connection over the Unix-domain socket comes from a process on this machine that may
//! open the socket file (the backend creates it with its umask: under the usual `022`, only
//! its own user). Its peer is reported as [`FrontListener::UNIX_PEER`] (`127.0.0.1:0`), so
//! the forwarded headers apply as they do from the front on loopback, where the default
//! known proxies trust it.
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

use crate::config::IisConfig;
use crate::extensions::PeerAddr;

/// Bind what the front connects to when behind IIS or `ancm` (`config` is `Some`): its
/// Unix-domain socket when it named one (Unix only), else `127.0.0.1:PORT`; `dev_addr`
/// otherwise. A socket path that cannot be bound (it exists, or the platform has no
/// Unix-domain sockets) is an error.
pub async fn bind_front_listener(
    config: Option<&IisConfig>,
    dev_addr: SocketAddr,
) -> io::Result<FrontListener> {
    if let Some(path) = config.and_then(IisConfig::unix_socket) {
        #[cfg(unix)]
        return tokio::net::UnixListener::bind(path).map(FrontListener::Unix);
        #[cfg(not(unix))]
        return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            format!(
                "cannot listen on the Unix-domain socket {}: supported on Unix only",
                path.display()
            ),
        ));
    }
    let addr = config.map_or(dev_addr, IisConfig::listen_addr);
    TcpListener::bind(addr).await.map(FrontListener::Tcp)
}

/// A bound listener for the front's connections (see [`bind_front_listener`]).
#[derive(Debug)]
pub enum FrontListener {
    /// `127.0.0.1:PORT` (or the development address).
    Tcp(TcpListener),
    /// The Unix-domain socket of `ANCM_UNIX_SOCKET`.
    #[cfg(unix)]
    Unix(tokio::net::UnixListener),
}

impl FrontListener {
    /// The peer reported for connections over the Unix-domain socket.
    pub const UNIX_PEER: PeerAddr = PeerAddr(SocketAddr::new(
        std::net::IpAddr::V4(Ipv4Addr::LOCALHOST),
        0,
    ));

    /// The next connection and its peer.
    pub async fn accept(&self) -> io::Result<(FrontStream, PeerAddr)> {
        match self {
            Self::Tcp(listener) => {
                let (stream, peer) = listener.accept().await?;
                Ok((FrontStream::Tcp(stream), PeerAddr(peer)))
            }
            #[cfg(unix)]
            Self::Unix(listener) => {
                let (stream, _) = listener.accept().await?;
                Ok((FrontStream::Unix(stream), Self::UNIX_PEER))
            }
        }
    }
}

#[cfg(feature = "axum")]
impl axum::serve::Listener for FrontListener {
    type Io = FrontStream;
    type Addr = PeerAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match FrontListener::accept(self).await {
                Ok(accepted) => return accepted,
                // As axum's own listeners do: a failed accept (out of file descriptors, a
                // connection reset before it was accepted) is logged and retried shortly.
                Err(error) => {
                    tracing::warn!(%error, "accepting a connection failed");
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        match self {
            Self::Tcp(listener) => listener.local_addr().map(PeerAddr),
            #[cfg(unix)]
            Self::Unix(_) => Ok(Self::UNIX_PEER),
        }
    }
}

#[cfg(feature = "axum")]
impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, FrontListener>>
    for PeerAddr
{
    fn connect_info(stream: axum::serve::IncomingStream<'_, FrontListener>) -> Self {
        *stream.remote_addr()
    }
}

/// A connection accepted by a [`FrontListener`].
#[derive(Debug)]
pub enum FrontStream {
    /// Over TCP.
    Tcp(TcpStream),
    /// Over the Unix-domain socket.
    #[cfg(unix)]
    Unix(tokio::net::UnixStream),
}

impl AsyncRead for FrontStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            #[cfg(unix)]
            Self::Unix(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for FrontStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            #[cfg(unix)]
            Self::Unix(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Tcp(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            #[cfg(unix)]
            Self::Unix(s) => Pin::new(s).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Self::Tcp(s) => s.is_write_vectored(),
            #[cfg(unix)]
            Self::Unix(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Tcp(s) => Pin::new(s).poll_flush(cx),
            #[cfg(unix)]
            Self::Unix(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            #[cfg(unix)]
            Self::Unix(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}
