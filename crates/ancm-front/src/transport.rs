//! How the front reaches a backend: loopback TCP (the default, what ANCM and every ANCM
//! backend speak), or a Unix-domain socket (an ancm-rs option for backends built on
//! `iis-integration`, protocol §8.42).
//!
//! ```no_run
//! use ancm_front::transport::{BackendStream, Transport};
//! # async fn run() -> std::io::Result<()> {
//! let tcp = Transport::Tcp("127.0.0.1:5000".parse().unwrap());
//! let _stream: BackendStream = tcp.connect().await?;
//! # #[cfg(unix)] {
//! let unix = Transport::unix("/run/app/backend.sock");
//! let _stream = unix.connect().await?;
//! # }
//! # Ok(()) }
//! ```
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// Where a backend listens.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Transport {
    /// A TCP address, normally `127.0.0.1:PORT`.
    Tcp(SocketAddr),
    /// A Unix-domain socket path (ancm-rs only; connecting fails off Unix).
    Unix(Arc<Path>),
}

impl Transport {
    /// A Unix-domain socket at `path`.
    pub fn unix(path: impl AsRef<Path>) -> Self {
        Self::Unix(Arc::from(path.as_ref()))
    }

    /// Opens a stream to the backend; TCP streams get `TCP_NODELAY` (small responses must
    /// not wait for Nagle and delayed ACK on loopback).
    pub async fn connect(&self) -> io::Result<BackendStream> {
        match self {
            Self::Tcp(addr) => {
                let stream = TcpStream::connect(addr).await?;
                if let Err(error) = stream.set_nodelay(true) {
                    tracing::debug!(%error, "cannot set TCP_NODELAY on a backend connection");
                }
                Ok(BackendStream::Tcp(stream))
            }
            #[cfg(unix)]
            Self::Unix(path) => Ok(BackendStream::Unix(
                tokio::net::UnixStream::connect(path).await?,
            )),
            #[cfg(not(unix))]
            Self::Unix(_) => Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "Unix-domain sockets to backends are supported on Unix only",
            )),
        }
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Tcp(addr) => addr.fmt(f),
            Self::Unix(path) => write!(f, "unix:{}", path.display()),
        }
    }
}

/// A connection to a backend over either [`Transport`].
#[derive(Debug)]
pub enum BackendStream {
    /// Over TCP.
    Tcp(TcpStream),
    /// Over a Unix-domain socket.
    #[cfg(unix)]
    Unix(tokio::net::UnixStream),
}

impl AsyncRead for BackendStream {
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

impl AsyncWrite for BackendStream {
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
