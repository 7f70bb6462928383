//! Keep-alive connections to the backends, keyed by address.
//!
//! A small pool of its own instead of hyper-util's legacy `Client`: one mutex-guarded
//! stack of idle HTTP/1.1 senders per backend address (LIFO, so the warmest connection is
//! reused and the surplus ones age out at the backend), one shared HTTP/2 sender per address
//! when h2c is on. A connection goes back on the stack only when its response body was read
//! to the end; no extra task per request. See `benches/forwarder.rs` for the comparison.
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpStream;

use super::body::RequestBody;
use super::error::{Chain, ForwardError};
use crate::RequestTimeout;

/// Pool settings derived from the forwarder's configuration.
#[derive(Debug, Clone)]
pub(crate) struct PoolConfig {
    pub(crate) max_idle_per_backend: usize,
    pub(crate) max_response_header_bytes: usize,
    pub(crate) max_response_headers: Option<usize>,
}

#[derive(Debug)]
struct Inner {
    idle: Mutex<HashMap<SocketAddr, Vec<http1::SendRequest<RequestBody>>>>,
    h2: Mutex<HashMap<SocketAddr, http2::SendRequest<RequestBody>>>,
    config: PoolConfig,
}

/// The connection pool; clones share it.
#[derive(Debug, Clone)]
pub(crate) struct Pool {
    inner: Arc<Inner>,
}

/// An HTTP/1.1 connection lent to one exchange. [`Checkout::release`] returns it to the pool;
/// dropping it closes the connection (the exchange ended in an unknown state).
#[derive(Debug)]
pub(crate) struct Checkout {
    tx: http1::SendRequest<RequestBody>,
    addr: SocketAddr,
    pool: Pool,
}

impl Checkout {
    /// Give the connection back for the next request.
    pub(crate) fn release(self) {
        self.pool.put(self.addr, self.tx);
    }
}

async fn with_timeout<F: Future>(
    timeout: RequestTimeout,
    fut: F,
    on_timeout: impl FnOnce(Duration) -> ForwardError,
) -> Result<F::Output, ForwardError> {
    match timeout.limit() {
        Some(t) => tokio::time::timeout(t, fut)
            .await
            .map_err(|_| on_timeout(t)),
        None => Ok(fut.await),
    }
}

impl Pool {
    pub(crate) fn new(config: PoolConfig) -> Self {
        Self {
            inner: Arc::new(Inner {
                idle: Mutex::new(HashMap::new()),
                h2: Mutex::new(HashMap::new()),
                config,
            }),
        }
    }

    fn take_idle(&self, addr: SocketAddr) -> Option<http1::SendRequest<RequestBody>> {
        let mut idle = self
            .inner
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let stack = idle.get_mut(&addr)?;
        while let Some(tx) = stack.pop() {
            if !tx.is_closed() {
                return Some(tx);
            }
        }
        None
    }

    fn put(&self, addr: SocketAddr, tx: http1::SendRequest<RequestBody>) {
        if tx.is_closed() {
            return;
        }
        let mut idle = self
            .inner
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let stack = idle.entry(addr).or_default();
        if stack.len() < self.inner.config.max_idle_per_backend {
            stack.push(tx);
        }
    }

    async fn connect_tcp(
        &self,
        addr: SocketAddr,
        timeout: RequestTimeout,
    ) -> Result<TokioIo<TcpStream>, ForwardError> {
        let stream = with_timeout(
            timeout,
            TcpStream::connect(addr),
            ForwardError::ConnectTimeout,
        )
        .await?
        .map_err(ForwardError::Connect)?;
        // Small responses must not wait for Nagle + delayed ACK on loopback.
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%error, "cannot set TCP_NODELAY on a backend connection");
        }
        Ok(TokioIo::new(stream))
    }

    async fn connect_h1(
        &self,
        addr: SocketAddr,
        timeout: RequestTimeout,
    ) -> Result<http1::SendRequest<RequestBody>, ForwardError> {
        let io = self.connect_tcp(addr, timeout).await?;
        let config = &self.inner.config;
        let mut builder = http1::Builder::new();
        builder
            .max_header_size(config.max_response_header_bytes)
            .allow_obsolete_multiline_headers_in_responses(true);
        if let Some(max) = config.max_response_headers {
            builder.max_headers(max);
        }
        let (tx, conn) = builder
            .handshake(io)
            .await
            .map_err(ForwardError::Handshake)?;
        tokio::spawn(async move {
            // `with_upgrades` so a 101 hands the socket to the WebSocket tunnel.
            if let Err(error) = conn.with_upgrades().await {
                tracing::debug!(backend = %addr, error = %Chain(&error), "backend connection closed with an error");
            }
        });
        tracing::trace!(backend = %addr, "new HTTP/1.1 backend connection");
        Ok(tx)
    }

    async fn connect_h2(
        &self,
        addr: SocketAddr,
        timeout: RequestTimeout,
    ) -> Result<http2::SendRequest<RequestBody>, ForwardError> {
        let io = self.connect_tcp(addr, timeout).await?;
        let (tx, conn) = http2::Builder::new(TokioExecutor::new())
            .max_header_list_size(
                u32::try_from(self.inner.config.max_response_header_bytes).unwrap_or(u32::MAX),
            )
            .adaptive_window(true)
            .handshake(io)
            .await
            .map_err(ForwardError::Handshake)?;
        tokio::spawn(async move {
            if let Err(error) = conn.await {
                tracing::debug!(backend = %addr, error = %Chain(&error), "backend h2 connection closed with an error");
            }
        });
        tracing::trace!(backend = %addr, "new HTTP/2 backend connection");
        Ok(tx)
    }

    /// Send `req` over HTTP/1.1: a pooled connection if one is idle, else a new one. A pooled
    /// connection that turns out to be closed before the request was written is skipped
    /// (the request is retried on the next one); once written, a request is never retried.
    pub(crate) async fn send_h1(
        &self,
        addr: SocketAddr,
        mut req: Request<RequestBody>,
        timeout: RequestTimeout,
    ) -> Result<(Response<Incoming>, Checkout), ForwardError> {
        loop {
            let (mut tx, reused) = match self.take_idle(addr) {
                Some(tx) => (tx, true),
                None => (self.connect_h1(addr, timeout).await?, false),
            };
            if reused && !tx.is_ready() && tx.ready().await.is_err() {
                continue;
            }
            let sent = with_timeout(
                timeout,
                tx.try_send_request(req),
                ForwardError::ResponseTimeout,
            )
            .await?;
            match sent {
                Ok(resp) => {
                    return Ok((
                        resp,
                        Checkout {
                            tx,
                            addr,
                            pool: self.clone(),
                        },
                    ));
                }
                Err(mut err) => match err.take_message() {
                    Some(unsent) if reused => {
                        tracing::debug!(backend = %addr, "pooled connection closed before use; retrying on another");
                        req = unsent;
                    }
                    _ => return Err(ForwardError::Backend(err.into_error())),
                },
            }
        }
    }

    /// Send `req` over the address's shared HTTP/2 connection, opening it if needed.
    pub(crate) async fn send_h2(
        &self,
        addr: SocketAddr,
        mut req: Request<RequestBody>,
        timeout: RequestTimeout,
    ) -> Result<Response<Incoming>, ForwardError> {
        let cached = {
            let h2 = self.inner.h2.lock().unwrap_or_else(PoisonError::into_inner);
            h2.get(&addr).filter(|tx| !tx.is_closed()).cloned()
        };
        let mut fresh = false;
        let mut tx = match cached {
            Some(tx) => tx,
            None => {
                fresh = true;
                self.new_h2(addr, timeout).await?
            }
        };
        loop {
            if let Err(err) = tx.ready().await {
                if fresh {
                    return Err(ForwardError::Backend(err));
                }
                fresh = true;
                tx = self.new_h2(addr, timeout).await?;
                continue;
            }
            let sent = with_timeout(
                timeout,
                tx.try_send_request(req),
                ForwardError::ResponseTimeout,
            )
            .await?;
            match sent {
                Ok(resp) => return Ok(resp),
                Err(mut err) => match err.take_message() {
                    Some(unsent) if !fresh => {
                        req = unsent;
                        fresh = true;
                        tx = self.new_h2(addr, timeout).await?;
                    }
                    _ => return Err(ForwardError::Backend(err.into_error())),
                },
            }
        }
    }

    async fn new_h2(
        &self,
        addr: SocketAddr,
        timeout: RequestTimeout,
    ) -> Result<http2::SendRequest<RequestBody>, ForwardError> {
        let tx = self.connect_h2(addr, timeout).await?;
        self.inner
            .h2
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(addr, tx.clone());
        Ok(tx)
    }

    /// Idle HTTP/1.1 connections currently pooled for `addr` (for tests and metrics).
    pub(crate) fn idle_count(&self, addr: SocketAddr) -> usize {
        let idle = self
            .inner
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        idle.get(&addr)
            .map_or(0, |stack| stack.iter().filter(|tx| !tx.is_closed()).count())
    }
}
