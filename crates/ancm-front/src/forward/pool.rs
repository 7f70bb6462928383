//! Keep-alive connections to the backends, keyed by backend process and address.
//!
//! A small pool of its own instead of hyper-util's legacy `Client`: one mutex-guarded
//! stack of idle HTTP/1.1 senders per backend (LIFO, so the warmest connection is reused and
//! the surplus ones age out), one shared HTTP/2 sender per backend when h2c is on. A
//! connection goes back on the stack only when its response body was read to the end; no
//! extra task or timer per request. See `benches/forwarder.rs` for the comparison.
//!
//! A backend is its address plus, when known, its [`BackendProcess`]: a new process on the
//! same fixed port never gets the old one's connections. A pool that keeps connections to a
//! process registers with it, so [`BackendProcess::retire`] reaches every pool (one per
//! runtime thread in `ancm run`) and drops their idle connections to it.
//!
//! Idle connections older than the idle timeout are closed lazily, with no timer: at
//! checkout (the stack is ordered by age, so the first expired one means all below it are
//! too) and at check-in (the oldest are pruned from the bottom).
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::Path;
use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::task::Poll;
use std::time::{Duration, Instant};

use foldhash::HashMap;
use http::{Request, Response};
use hyper::body::Incoming;
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::Sleep;

use super::body::RequestBody;
use super::error::{Chain, ForwardError};
use super::io::{BackendIo, Heard};
use super::retry::{self, Replay};
use crate::transport::{BackendStream, Transport};
use crate::{BackendProcess, RequestTimeout};

/// Pool settings derived from the forwarder's configuration.
#[derive(Debug, Clone)]
pub(crate) struct PoolConfig {
    pub(crate) max_idle_per_backend: usize,
    pub(crate) idle_timeout: Duration,
    pub(crate) max_response_header_bytes: usize,
    pub(crate) max_response_headers: Option<usize>,
}

/// One backend as the pool tells backends apart.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    addr: SocketAddr,
    /// The Unix-domain socket, when the backend is reached over one.
    unix_socket: Option<Arc<Path>>,
    /// [`PoolLinks::id`] of its process; 0 when the process is unknown.
    process: u64,
}

/// Where an exchange goes: the address (or the Unix-domain socket, when set), and the
/// process listening there when known.
#[derive(Debug, Clone)]
pub(crate) struct Dest {
    pub(crate) addr: SocketAddr,
    pub(crate) unix_socket: Option<Arc<Path>>,
    pub(crate) process: Option<Arc<BackendProcess>>,
}

impl Dest {
    fn key(&self) -> Key {
        Key {
            addr: self.addr,
            unix_socket: self.unix_socket.clone(),
            process: self.process.as_ref().map_or(0, |p| p.pool_links().id),
        }
    }

    fn transport(&self) -> Transport {
        match &self.unix_socket {
            Some(path) => Transport::Unix(path.clone()),
            None => Transport::Tcp(self.addr),
        }
    }

    fn retired(&self) -> bool {
        self.process.as_ref().is_some_and(|p| p.is_retired())
    }

    /// Registers `pool` as holding connections to this backend; false once it is retired.
    fn register(&self, pool: &Arc<Inner>) -> bool {
        self.process
            .as_ref()
            .is_none_or(|p| p.pool_links().register(pool))
    }
}

/// A backend process's side of the pools: its identity, whether it is retired, and the pools
/// that may hold connections to it.
#[derive(Debug)]
pub(crate) struct PoolLinks {
    id: u64,
    retired: AtomicBool,
    pools: Mutex<Vec<Weak<Inner>>>,
}

impl PoolLinks {
    pub(crate) fn new() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        Self {
            id: NEXT.fetch_add(1, Ordering::Relaxed),
            retired: AtomicBool::new(false),
            pools: Mutex::new(Vec::new()),
        }
    }

    pub(crate) fn is_retired(&self) -> bool {
        self.retired.load(Ordering::Acquire)
    }

    /// Marks the process retired and drops every pool's connections to it. A pool putting a
    /// connection back meanwhile either registered before the list was taken (and is
    /// emptied here) or sees the flag when it registers (and keeps nothing).
    pub(crate) fn retire(&self) {
        self.retired.store(true, Ordering::Release);
        let pools = std::mem::take(&mut *self.pools.lock().unwrap_or_else(PoisonError::into_inner));
        for pool in pools.iter().filter_map(Weak::upgrade) {
            pool.forget_process(self.id);
        }
    }

    /// Adds `pool` (once); false when the process is retired. Called under the pool's lock.
    fn register(&self, pool: &Arc<Inner>) -> bool {
        let mut pools = self.pools.lock().unwrap_or_else(PoisonError::into_inner);
        if self.is_retired() {
            return false;
        }
        if !pools
            .iter()
            .any(|p| std::ptr::eq(p.as_ptr(), Arc::as_ptr(pool)))
        {
            pools.retain(|p| p.strong_count() > 0);
            pools.push(Arc::downgrade(pool));
        }
        true
    }
}

/// An idle HTTP/1.1 connection and since when it is idle.
#[derive(Debug)]
struct Idle {
    conn: Conn,
    since: Instant,
}

/// An HTTP/1.1 connection: its sender, the marker of bytes from the backend, and its
/// response-head timer.
#[derive(Debug)]
struct Conn {
    tx: http1::SendRequest<RequestBody>,
    heard: Heard,
    /// The wait for a response head, kept armed between requests (made at the first request
    /// with a limit). Moving a registered deadline later is one atomic operation, where a new
    /// timer per request is a registration and a cancellation in the runtime's timer wheel;
    /// when it fires on an idle connection, the next request registers it again.
    head_timer: Option<Pin<Box<Sleep>>>,
}

impl Conn {
    /// Sends `req` and waits for the response head, at most `timeout`.
    ///
    /// The request is handed to the connection before the future exists, so the future
    /// does not hold a second copy of it (every request's future is allocated and copied).
    fn send(
        &mut self,
        req: Request<RequestBody>,
        timeout: RequestTimeout,
    ) -> impl Future<
        Output = Result<
            Result<Response<Incoming>, hyper::client::conn::TrySendError<Request<RequestBody>>>,
            ForwardError,
        >,
    > + '_ {
        let sent = self.tx.try_send_request(req);
        let head_timer = &mut self.head_timer;
        async move {
            let Some(limit) = timeout.limit() else {
                return Ok(sent.await);
            };
            let deadline = tokio::time::Instant::now() + limit;
            let timer = match head_timer {
                Some(timer) => {
                    timer.as_mut().reset(deadline);
                    timer
                }
                None => head_timer.insert(Box::pin(tokio::time::sleep_until(deadline))),
            };
            let mut sent = pin!(sent);
            std::future::poll_fn(|cx| {
                if let Poll::Ready(response) = sent.as_mut().poll(cx) {
                    return Poll::Ready(Ok(response));
                }
                timer
                    .as_mut()
                    .poll(cx)
                    .map(|()| Err(ForwardError::ResponseTimeout(limit)))
            })
            .await
        }
    }
}

#[derive(Debug)]
pub(crate) struct Inner {
    // foldhash, not SipHash: the idle map is looked up twice per request, and its keys are
    // backend addresses, not client input.
    idle: Mutex<HashMap<Key, VecDeque<Idle>>>,
    h2: Mutex<HashMap<Key, http2::SendRequest<RequestBody>>>,
    config: PoolConfig,
}

impl Inner {
    /// Drops the idle connections to a retired process (every address it had).
    fn forget_process(&self, process: u64) {
        self.idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|key, _| key.process != process);
        self.h2
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|key, _| key.process != process);
    }
}

/// The connection pool; clones share it.
#[derive(Debug, Clone)]
pub(crate) struct Pool {
    inner: Arc<Inner>,
}

/// What one exchange holds until its response body ended: its HTTP/1.1 connection (none for
/// h2c streams) and its place under the [`ConnectionLimit`](super::ConnectionLimit).
/// [`Checkout::release`] returns the connection to the pool; dropping it closes the
/// connection (the exchange ended in an unknown state). Either way the place comes free.
#[derive(Debug)]
pub(crate) struct Checkout {
    lent: Option<Lent>,
    _permit: OwnedSemaphorePermit,
}

#[derive(Debug)]
struct Lent {
    conn: Conn,
    dest: Dest,
    pool: Pool,
}

impl Checkout {
    /// A place for an exchange with no pooled connection (h2c).
    pub(crate) fn stream(permit: OwnedSemaphorePermit) -> Self {
        Self {
            lent: None,
            _permit: permit,
        }
    }

    /// Give the connection back for the next request.
    pub(crate) fn release(self) {
        if let Some(Lent { conn, dest, pool }) = self.lent {
            pool.put(&dest, conn);
        }
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
                idle: Mutex::new(HashMap::default()),
                h2: Mutex::new(HashMap::default()),
                config,
            }),
        }
    }

    /// The newest idle connection to `key` still open and younger than the idle timeout,
    /// with how long it was idle.
    fn take_idle(&self, key: &Key) -> Option<(Conn, Duration)> {
        let timeout = self.inner.config.idle_timeout;
        let mut idle = self
            .inner
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let stack = idle.get_mut(key)?;
        let now = Instant::now();
        while let Some(entry) = stack.pop_back() {
            let idle_for = now.saturating_duration_since(entry.since);
            if idle_for >= timeout {
                // Ordered by age: everything below is older still.
                stack.clear();
                return None;
            }
            if !entry.conn.tx.is_closed() {
                return Some((entry.conn, idle_for));
            }
        }
        None
    }

    fn put(&self, dest: &Dest, conn: Conn) {
        if conn.tx.is_closed() || dest.retired() {
            return;
        }
        let key = dest.key();
        let config = &self.inner.config;
        let mut idle = self
            .inner
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let stack = match idle.get_mut(&key) {
            Some(stack) => stack,
            None => {
                if !dest.register(&self.inner) {
                    return;
                }
                idle.entry(key).or_default()
            }
        };
        let now = Instant::now();
        while stack.front().is_some_and(|oldest| {
            now.saturating_duration_since(oldest.since) >= config.idle_timeout
        }) {
            stack.pop_front();
        }
        if stack.len() < config.max_idle_per_backend {
            stack.push_back(Idle { conn, since: now });
        }
    }

    async fn connect(
        &self,
        dest: &Dest,
        timeout: RequestTimeout,
    ) -> Result<BackendStream, ForwardError> {
        with_timeout(
            timeout,
            dest.transport().connect(),
            ForwardError::ConnectTimeout,
        )
        .await?
        .map_err(ForwardError::Connect)
    }

    async fn connect_h1(&self, dest: &Dest, timeout: RequestTimeout) -> Result<Conn, ForwardError> {
        let addr = dest.addr;
        let heard = Heard::default();
        let io = BackendIo::new(self.connect(dest, timeout).await?, heard.clone());
        let config = &self.inner.config;
        let mut builder = http1::Builder::new();
        builder
            .max_header_size(config.max_response_header_bytes)
            .allow_obsolete_multiline_headers_in_responses(true);
        if let Some(max) = config.max_response_headers {
            builder.max_headers(max);
        }
        let (tx, conn) = builder
            .handshake(TokioIo::new(io))
            .await
            .map_err(ForwardError::Handshake)?;
        tokio::spawn(async move {
            // `with_upgrades` so a 101 hands the socket to the WebSocket tunnel.
            if let Err(error) = conn.with_upgrades().await {
                tracing::debug!(backend = %addr, error = %Chain(&error), "backend connection closed with an error");
            }
        });
        tracing::trace!(backend = %addr, "new HTTP/1.1 backend connection");
        Ok(Conn {
            tx,
            heard,
            head_timer: None,
        })
    }

    async fn connect_h2(
        &self,
        dest: &Dest,
        timeout: RequestTimeout,
    ) -> Result<http2::SendRequest<RequestBody>, ForwardError> {
        let addr = dest.addr;
        let io = TokioIo::new(self.connect(dest, timeout).await?);
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

    /// Send `req` over HTTP/1.1: a pooled connection if one is idle, else a new one.
    ///
    /// The retry rule (module docs of `forward`): a pooled connection found closed before
    /// the request was written is skipped for the next one; a connection lost after the
    /// request was written, on a pooled connection, before any response byte came back,
    /// sends a body-less idempotent request once more on a new connection. Nothing else is
    /// retried.
    pub(crate) async fn send_h1(
        &self,
        dest: Dest,
        mut req: Request<RequestBody>,
        timeout: RequestTimeout,
        permit: OwnedSemaphorePermit,
    ) -> Result<(Response<Incoming>, Checkout), ForwardError> {
        let key = dest.key();
        // Set once the request was sent again: the second attempt always opens a connection.
        let mut replayed = false;
        loop {
            let pooled = if replayed || dest.retired() {
                None
            } else {
                self.take_idle(&key)
            };
            let (mut conn, idle_for) = match pooled {
                Some((conn, idle_for)) => (conn, Some(idle_for)),
                // Boxed: a connect is rare next to the pooled path, and its state would
                // otherwise make every request's future (moved and copied) larger.
                None => (Box::pin(self.connect_h1(&dest, timeout)).await?, None),
            };
            let reused = idle_for.is_some();
            if reused && !conn.tx.is_ready() && conn.tx.ready().await.is_err() {
                continue;
            }
            let replay = match idle_for {
                // Boxed: only connections idle for a while keep a copy, and it would
                // otherwise widen every request's future.
                Some(idle_for) if idle_for >= retry::MIN_IDLE_FOR_REPLAY => {
                    Replay::of(&req).map(Box::new)
                }
                _ => None,
            };
            conn.heard.clear();
            let sent = conn.send(req, timeout).await?;
            match sent {
                Ok(resp) => {
                    let lent = Lent {
                        conn,
                        dest,
                        pool: self.clone(),
                    };
                    return Ok((
                        resp,
                        Checkout {
                            lent: Some(lent),
                            _permit: permit,
                        },
                    ));
                }
                Err(mut err) => {
                    if let Some(unsent) = err.take_message()
                        && reused
                    {
                        tracing::debug!(backend = %dest.addr, "pooled connection closed before use; retrying on another");
                        req = unsent;
                        continue;
                    }
                    let err = err.into_error();
                    match replay {
                        Some(replay) if !conn.heard.anything() && retry::connection_lost(&err) => {
                            tracing::debug!(backend = %dest.addr, error = %Chain(&err), "pooled connection lost before any response; sending the request again on a new connection");
                            req = replay.into_request();
                            replayed = true;
                        }
                        _ => return Err(ForwardError::Backend(err)),
                    }
                }
            }
        }
    }

    /// Send `req` over the backend's shared HTTP/2 connection, opening it if needed.
    pub(crate) async fn send_h2(
        &self,
        dest: &Dest,
        mut req: Request<RequestBody>,
        timeout: RequestTimeout,
    ) -> Result<Response<Incoming>, ForwardError> {
        let key = dest.key();
        let cached = {
            let h2 = self.inner.h2.lock().unwrap_or_else(PoisonError::into_inner);
            h2.get(&key).filter(|tx| !tx.is_closed()).cloned()
        };
        let mut fresh = false;
        let mut tx = match cached {
            Some(tx) => tx,
            None => {
                fresh = true;
                self.new_h2(dest, timeout).await?
            }
        };
        loop {
            if let Err(err) = tx.ready().await {
                if fresh {
                    return Err(ForwardError::Backend(err));
                }
                fresh = true;
                tx = self.new_h2(dest, timeout).await?;
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
                        tx = self.new_h2(dest, timeout).await?;
                    }
                    _ => return Err(ForwardError::Backend(err.into_error())),
                },
            }
        }
    }

    async fn new_h2(
        &self,
        dest: &Dest,
        timeout: RequestTimeout,
    ) -> Result<http2::SendRequest<RequestBody>, ForwardError> {
        let tx = self.connect_h2(dest, timeout).await?;
        let mut h2 = self.inner.h2.lock().unwrap_or_else(PoisonError::into_inner);
        if dest.register(&self.inner) {
            h2.insert(dest.key(), tx.clone());
        }
        Ok(tx)
    }

    /// Idle HTTP/1.1 connections to `addr` (to any backend: `None`) that a request could use
    /// now (tests and metrics).
    pub(crate) fn idle_count(&self, addr: Option<SocketAddr>) -> usize {
        let timeout = self.inner.config.idle_timeout;
        let now = Instant::now();
        let idle = self
            .inner
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        idle.iter()
            .filter(|(key, _)| addr.is_none_or(|addr| key.addr == addr))
            .flat_map(|(_, stack)| stack)
            .filter(|entry| {
                !entry.conn.tx.is_closed() && now.saturating_duration_since(entry.since) < timeout
            })
            .count()
    }
}
