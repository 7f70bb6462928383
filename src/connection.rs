//! Client connections' limits: how many may be open at once, how long a new connection may
//! take to send its first request head, and how long an HTTP/2 connection may stay idle.
//!
//! * [`Slots`] caps the open connections over every listener and runtime. Its slot is held by
//!   the socket itself ([`SlotStream`]), so it is freed when the socket is, including after an
//!   HTTP/1.1 upgrade hands the socket to a WebSocket tunnel.
//! * [`TrackActivity`] tells the connection's task ([`close_due`]) when requests start and
//!   end: no first request head by the deadline closes the connection (this covers the TLS
//!   handshake, protocol detection and the HTTP/2 preface, which no hyper timeout does), and
//!   an HTTP/2 connection without an open stream for the idle timeout gets a GOAWAY.
use std::future::Future;
use std::io::IoSlice;
use std::num::NonZeroUsize;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use http::{Request, Response, Version};
use http_body::{Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tower::Service;

/// The connection cap when neither `--max-connections` nor the open-file limit says less.
const DEFAULT_MAX_CONNECTIONS: usize = 10_000;
/// How often, at most, reaching the connection cap is logged.
const CAP_WARNING_INTERVAL: Duration = Duration::from_secs(60);

/// The limits of `ancm run` on client connections.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// How long a client may take to send a request head: from accept to the first request's
    /// head complete (TLS handshake and HTTP/2 preface included), and on HTTP/1.1 keep-alive
    /// connections from one response to the next request's head (hyper's
    /// `header_read_timeout`).
    pub header_timeout: Duration,
    /// How long an HTTP/2 connection may have no open stream before it gets a GOAWAY.
    pub h2_idle_timeout: Duration,
    /// HTTP/2 keep-alive: a PING after this long without a frame from the client, and the
    /// connection closed when the PONG takes as long again.
    pub h2_ping_interval: Duration,
    /// The most client connections open at once.
    pub max_connections: NonZeroUsize,
}

/// The default `--max-connections`: 10,000, or half the soft open-file limit
/// (`RLIMIT_NOFILE`) when that is lower, since a client connection can hold a backend
/// connection too.
#[cfg(unix)]
pub fn default_max_connections() -> NonZeroUsize {
    use nix::sys::resource::{RLIM_INFINITY, Resource, getrlimit};
    let cap = match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, _)) if soft != RLIM_INFINITY => usize::try_from(soft / 2)
            .map_or(DEFAULT_MAX_CONNECTIONS, |half| {
                half.min(DEFAULT_MAX_CONNECTIONS)
            }),
        _ => DEFAULT_MAX_CONNECTIONS,
    };
    NonZeroUsize::new(cap).unwrap_or(NonZeroUsize::MIN)
}

/// The default `--max-connections`: 10,000 (Windows has no per-process descriptor limit of
/// the Unix kind).
#[cfg(not(unix))]
pub fn default_max_connections() -> NonZeroUsize {
    NonZeroUsize::new(DEFAULT_MAX_CONNECTIONS).unwrap_or(NonZeroUsize::MIN)
}

/// The connection cap shared by every accept loop.
#[derive(Debug)]
pub struct Slots {
    semaphore: Arc<Semaphore>,
    max: usize,
    /// Sockets holding a slot (an accept loop holds one while it waits for a connection).
    open: Arc<AtomicUsize>,
    last_full_warning: Mutex<Option<Instant>>,
}

/// A slot taken by an accept loop for the connection it accepts next.
#[derive(Debug)]
pub struct Slot {
    permit: OwnedSemaphorePermit,
    open: Arc<AtomicUsize>,
}

/// A slot held by an open connection: counted open until dropped.
#[derive(Debug)]
struct OpenSlot {
    _permit: OwnedSemaphorePermit,
    open: Arc<AtomicUsize>,
}

impl Drop for OpenSlot {
    fn drop(&mut self) {
        self.open.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Slots {
    /// `max` slots.
    pub fn new(max: NonZeroUsize) -> Self {
        let max = max.get().min(Semaphore::MAX_PERMITS);
        Self {
            semaphore: Arc::new(Semaphore::new(max)),
            max,
            open: Arc::new(AtomicUsize::new(0)),
            last_full_warning: Mutex::new(None),
        }
    }

    /// A free slot, waiting for one when every slot is taken: an accept loop that waits here
    /// accepts nothing, so new connections queue in the kernel's listen backlog.
    pub async fn acquire(&self) -> Option<Slot> {
        let permit = match self.semaphore.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                self.warn_full();
                // The semaphore is never closed.
                self.semaphore.clone().acquire_owned().await.ok()?
            }
        };
        Some(Slot {
            permit,
            open: self.open.clone(),
        })
    }

    /// Client connections open now.
    pub fn open(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    /// The cap.
    pub fn max(&self) -> usize {
        self.max
    }

    fn warn_full(&self) {
        let mut last = self
            .last_full_warning
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        if last.is_none_or(|at| now.duration_since(at) >= CAP_WARNING_INTERVAL) {
            *last = Some(now);
            tracing::warn!(
                max_connections = self.max,
                "connection limit reached: new connections wait in the listen backlog"
            );
        }
    }
}

/// A client socket holding its connection slot until it is dropped.
#[derive(Debug)]
pub struct SlotStream<I> {
    io: I,
    _slot: OpenSlot,
}

impl<I> SlotStream<I> {
    /// `io`, holding `slot`.
    pub fn new(io: I, slot: Slot) -> Self {
        slot.open.fetch_add(1, Ordering::Relaxed);
        Self {
            io,
            _slot: OpenSlot {
                _permit: slot.permit,
                open: slot.open,
            },
        }
    }

    /// The socket, e.g. to read a PROXY protocol header off it before TLS or HTTP.
    pub fn socket_mut(&mut self) -> &mut I {
        &mut self.io
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for SlotStream<I> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for SlotStream<I> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

/// What a connection's requests tell its task: whether the first request head arrived, its
/// protocol, and how many requests are in flight (for HTTP/2: open streams).
#[derive(Debug, Default)]
pub struct Activity {
    first_request: AtomicBool,
    http2: AtomicBool,
    in_flight: AtomicUsize,
    // Notified when the first request arrives and when `in_flight` leaves or reaches zero;
    // one waiter (the connection's task), so `notify_one` keeps a wake-up for it.
    changed: Notify,
}

impl Activity {
    /// Count a request in; the guard counts it out.
    fn request_started(self: &Arc<Self>, version: Version) -> InFlightGuard {
        if !self.first_request.load(Ordering::Acquire) {
            self.http2
                .store(version == Version::HTTP_2, Ordering::Relaxed);
            self.first_request.store(true, Ordering::Release);
            self.changed.notify_one();
        }
        if self.in_flight.fetch_add(1, Ordering::AcqRel) == 0 {
            self.changed.notify_one();
        }
        InFlightGuard(self.clone())
    }

    fn request_ended(&self) {
        if self.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.changed.notify_one();
        }
    }
}

/// Why a connection's task acts without being asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Close {
    /// No complete request head arrived by the header deadline: close at once.
    NoRequestHead,
    /// An HTTP/2 connection had no open stream for the idle timeout.
    Idle,
}

/// Resolves when the connection should be closed for want of requests: no first request
/// head by `header_deadline`, or, on HTTP/2, no open stream for `h2_idle`. Never resolves for
/// an HTTP/1.1 connection once its first request arrived: hyper's header read timeout bounds
/// the wait for each later one.
pub async fn close_due(
    activity: Arc<Activity>,
    header_deadline: Instant,
    h2_idle: Duration,
) -> Close {
    while !activity.first_request.load(Ordering::Acquire) {
        tokio::select! {
            () = tokio::time::sleep_until(header_deadline.into()) => return Close::NoRequestHead,
            () = activity.changed.notified() => {}
        }
    }
    if !activity.http2.load(Ordering::Relaxed) {
        return std::future::pending().await;
    }
    loop {
        if activity.in_flight.load(Ordering::Acquire) > 0 {
            activity.changed.notified().await;
            continue;
        }
        tokio::select! {
            () = tokio::time::sleep(h2_idle) => return Close::Idle,
            () = activity.changed.notified() => {}
        }
    }
}

/// Reports each request's start and end (the end of its response body) to the connection's
/// [`Activity`].
#[derive(Debug, Clone)]
pub struct TrackActivity<S> {
    inner: S,
    activity: Arc<Activity>,
}

impl<S> TrackActivity<S> {
    /// `inner`, reporting to `activity`.
    pub fn new(inner: S, activity: Arc<Activity>) -> Self {
        Self { inner, activity }
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for TrackActivity<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
{
    type Response = Response<TrackedBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        let in_flight = self.activity.request_started(req.version());
        ResponseFuture {
            inner: self.inner.call(req),
            in_flight: Some(in_flight),
        }
    }
}

/// One request in flight; dropping it ends the request.
#[derive(Debug)]
struct InFlightGuard(Arc<Activity>);

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        self.0.request_ended();
    }
}

pin_project_lite::pin_project! {
    /// The inner service's future; its response's body keeps the request in flight.
    ///
    /// # Panics
    ///
    /// Polling it again after it returned `Ready` panics with the message
    /// `"ResponseFuture polled after completion"`.
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        in_flight: Option<InFlightGuard>,
    }
}

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<TrackedBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        assert!(
            this.in_flight.is_some(),
            "ResponseFuture polled after completion"
        );
        let result = ready!(this.inner.poll(cx));
        let in_flight = this.in_flight.take();
        Poll::Ready(result.map(|response| {
            response.map(|inner| TrackedBody {
                inner,
                _in_flight: in_flight,
            })
        }))
    }
}

pin_project_lite::pin_project! {
    /// A response body that keeps its request in flight until it is dropped (sent whole, or
    /// the stream reset).
    pub struct TrackedBody<B> {
        #[pin]
        inner: B,
        _in_flight: Option<InFlightGuard>,
    }
}

impl<B: http_body::Body> http_body::Body for TrackedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        self.project().inner.poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
