//! The streaming forwarder: carries a request to its backend on loopback and streams the
//! response back (protocol §1.2–§1.7, §1.9).
//!
//! ```
//! use std::time::Duration;
//! use ancm_front::RequestTimeout;
//! use ancm_front::forward::{ForwardConfig, Forwarder};
//! let timeout = RequestTimeout::After(Duration::from_secs(300));
//! let forwarder = Forwarder::new(
//!     ForwardConfig::default()
//!         .request_timeout(timeout)
//!         .default_target("127.0.0.1:5000".parse().unwrap()),
//! );
//! // A `tower::Service<Request<B>, Response = Response<ancm_front::Body>, Error = Infallible>`:
//! // put the ANCM layers in front of it and serve it with hyper (see
//! // `examples/custom_gateway.rs`). Clones share one connection pool.
//! let clone = forwarder.clone();
//! assert_eq!(clone.config().request_timeout, timeout);
//! assert_eq!(forwarder.idle_connections("127.0.0.1:5000".parse().unwrap()), 0);
//! ```
//!
//! What it does with each request:
//!
//! * **Target**: the request's [`BackendTarget`](crate::BackendTarget) (inserted by whoever
//!   selects the backend), else [`ForwardConfig::default_target`]; neither → 502.3.
//! * **Request line**: method unchanged; the request-target is sent in origin-form
//!   (`/path?query`, byte for byte as received); `Host` is the client's (protocol §1.3 step 1) —
//!   for HTTP/2 clients, which send `:authority` instead, it is derived from that.
//! * **Headers** pass as they are: the layers in front of the forwarder strip and add what
//!   ANCM strips and adds; the forwarder adds nothing (no `Via`, no `Server`).
//! * **Bodies** stream both ways with back-pressure and are never buffered whole; framing is
//!   kept (`Content-Length` when the client declared one, chunked otherwise); trailers pass
//!   where HTTP allows them.
//! * **Responses**: status, reason phrase (HTTP/1.1 backends, HTTP/1.1 clients), and every
//!   header line including repeated ones (`Set-Cookie`) reach the client; 3xx is never
//!   followed.
//! * **Timeouts** (`requestTimeout`, protocol §1.7) are per phase, like WinHTTP's: the
//!   connect, the wait for the response head, and each idle gap between body chunks in
//!   either direction. A long but steady stream never times out. The target's
//!   [`RequestTimeout`] applies, or the forwarder's when the target's is
//!   [`Inherit`](RequestTimeout::Inherit).
//! * **Failures** before the response head → the 502.3 page ([`ErrorPage::forwarding_failure`])
//!   and an `ERROR` event with the cause; a client body over the [limit](crate::limits) →
//!   413; a client body read error → 400; no backend connection free within the
//!   [connection limit](ConnectionLimit)'s wait → 503.2. Failures after the head (backend closed early,
//!   fewer bytes than its `Content-Length`, idle timeout) fail the response body, so hyper
//!   aborts the client connection (HTTP/1.1) or resets the stream (HTTP/2): a client never
//!   sees a silently truncated response. A client that goes away drops the backend exchange
//!   and its connection (never pooled in an unknown state).
//! * **Upgrades**: on `101` from the backend the 101 goes to the client and a task copies
//!   bytes both ways until either side closes, then closes the other. The backend
//!   connection leaves the pool. The client connection must be served with upgrades enabled
//!   (`serve_connection_with_upgrades` in hyper-util).
//!
//! Backend connections: a pool of keep-alive HTTP/1.1 connections per backend with
//! `TCP_NODELAY`, or one h2c (HTTP/2 prior knowledge) connection per backend with
//! [`ForwardConfig::http2`]; upgrade requests always use HTTP/1.1. A backend is its address
//! and, when the target names one, its [`BackendProcess`](crate::BackendProcess): a new
//! process on the same fixed port never gets the old one's connections, and
//! [`BackendProcess::retire`](crate::BackendProcess::retire) makes every forwarder drop its
//! idle connections to a process about to be told to shut down (protocol §2.9).
//!
//! * **Idle connections** live at most [`ForwardConfig::pool_idle_timeout`] (90 s, below
//!   Kestrel's 130 s keep-alive timeout), so the forwarder closes an idle connection before
//!   the backend does. No timer runs for them: age is checked when a connection is taken
//!   and the oldest are pruned when one is put back. A pool without traffic keeps its idle
//!   connections until the backend closes them or the process is retired; none is ever
//!   used past the timeout.
//! * **The connection limit** ([`ForwardConfig::connection_limit`], default 1024 in use at
//!   once, shared by clones of the configuration): a request that finds every place taken
//!   waits up to 5 s for one, then gets 503 ([`ErrorPage::backend_busy`], 503.2). Taking a
//!   free place costs no timer and no allocation.
//!
//! # When a request is sent twice
//!
//! A keep-alive connection can be closed by the backend (its keep-alive timeout, its
//! graceful shutdown) just as a request is written to it; the request then fails before any
//! response byte, though the backend never processed it. The rule, modelled on nginx's
//! `proxy_next_upstream error` and hyper-util's retry of canceled requests:
//!
//! * A **pooled** connection found closed before the request was written is skipped; the
//!   request goes on the next one (any request: nothing was sent).
//! * A pooled connection **lost after the request was written** (closed or reset while
//!   writing or before the response: hyper's incomplete-message, canceled and closed errors,
//!   `ECONNRESET`, `EPIPE`) sends the request **once more on a new connection** when no byte
//!   of a response had arrived, the request has **no body**, and its method is
//!   **idempotent** (RFC 9110 §9.2.2: `GET`, `HEAD`, `OPTIONS`, `TRACE`, `PUT`, `DELETE`).
//!   Request bodies are never buffered for a replay: a request with a body is sent once.
//! * Nothing is retried after a response byte arrived, after a timeout, or on a connection
//!   that was new (the backend's failure is then real).
//!
//! The copy a replay needs (method, URI, version, headers) is kept only for such requests on
//! a connection that was idle for at least a millisecond: keep-alive timeouts are seconds, so
//! a connection reused sooner cannot have hit one, and the busy path allocates nothing.
//!
//! # Where it differs from ANCM
//!
//! * A non-canonical reason phrase is kept for `200` too (ANCM lets IIS write `OK`); the
//!   backend's `Date` passes instead of being replaced (hyper adds one only when missing).
//! * WebSocket traffic is relayed as bytes, not re-framed: frames, close codes and reasons
//!   arrive exactly as sent; a backend failure closes the client connection.
//! * A body-less idempotent request lost with a reused keep-alive connection before any
//!   response byte is sent once more on a new connection (above); what WinHTTP does there is
//!   unverified (protocol §8.27).
//! * Backend connections in use are capped ([`ConnectionLimit`]); a request over the cap
//!   waits, then gets 503.2. ANCM has no such cap (IIS's own concurrent request limit
//!   answers 503.2 too) (protocol §8.28).
//! * An HTTP/1.1 backend response with more than 100 header lines fails (502.3) unless
//!   [`ForwardConfig::max_response_headers`] is raised (hyper parses up to 100 without
//!   allocating).
//!
//! [`ErrorPage::forwarding_failure`]: crate::error_page::ErrorPage::forwarding_failure
//! [`ErrorPage::backend_busy`]: crate::error_page::ErrorPage::backend_busy
use std::net::SocketAddr;

pub(crate) mod body;
mod error;
mod io;
mod limit;
mod pool;
mod retry;
mod service;
mod upgrade;

use std::time::Duration;

pub use error::{BodyError, ForwardError};
pub use limit::ConnectionLimit;
pub(crate) use pool::PoolLinks;
pub use service::{Forwarder, ResponseFuture};

use crate::RequestTimeout;

/// Settings of a [`Forwarder`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ForwardConfig {
    /// `requestTimeout`: the limit of each phase (connect, response head, each idle gap in a
    /// body) for targets that do not set their own. Default
    /// [`RequestTimeout::ANCM_DEFAULT`] (two minutes); `Inherit` here means that default too.
    /// What ANCM does with `00:00:00` is unverified (protocol §1.7); a gateway mapping
    /// web.config should use [`RequestTimeout::from_web_config`], which makes it
    /// `Unlimited`, rather than `After(Duration::ZERO)`, which would fail every request.
    pub request_timeout: RequestTimeout,
    /// Speak h2c (HTTP/2 with prior knowledge) to backends instead of HTTP/1.1. Default off.
    pub http2: bool,
    /// Where requests without a [`BackendTarget`](crate::BackendTarget) go. Default none
    /// (→ 502.3).
    pub default_target: Option<SocketAddr>,
    /// Idle keep-alive connections kept per backend (more are closed). Default 256.
    pub max_idle_per_backend: usize,
    /// How long a keep-alive connection may sit idle before the forwarder closes it instead
    /// of using it. Keep it below the backends' own keep-alive timeout (Kestrel: 130 s), so
    /// an idle connection is closed by the forwarder rather than raced against the backend
    /// closing it. Default 90 s.
    pub pool_idle_timeout: Duration,
    /// The cap on backend connections in use at once, and how long a request waits for one
    /// before it gets 503. Clones of this configuration share the count. Default
    /// [`ConnectionLimit::default`]: 1024, 5 s.
    pub connection_limit: ConnectionLimit,
    /// Largest backend response head accepted; larger → 502.3. Default 64 KiB, WinHTTP's
    /// limit in ANCM (protocol §1.3).
    pub max_response_header_bytes: usize,
    /// Most header lines accepted in an HTTP/1.1 backend response; `None` keeps hyper's
    /// default (100, parsed without allocating).
    pub max_response_headers: Option<usize>,
}

impl Default for ForwardConfig {
    fn default() -> Self {
        Self {
            request_timeout: RequestTimeout::ANCM_DEFAULT,
            http2: false,
            default_target: None,
            max_idle_per_backend: 256,
            pool_idle_timeout: Duration::from_secs(90),
            connection_limit: ConnectionLimit::default(),
            max_response_header_bytes: 64 * 1024,
            max_response_headers: None,
        }
    }
}

impl ForwardConfig {
    /// Set [`request_timeout`](Self::request_timeout).
    pub fn request_timeout(mut self, timeout: RequestTimeout) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Set [`http2`](Self::http2).
    pub fn http2(mut self, enabled: bool) -> Self {
        self.http2 = enabled;
        self
    }

    /// Set [`default_target`](Self::default_target).
    pub fn default_target(mut self, addr: SocketAddr) -> Self {
        self.default_target = Some(addr);
        self
    }

    /// Set [`max_idle_per_backend`](Self::max_idle_per_backend).
    pub fn max_idle_per_backend(mut self, max: usize) -> Self {
        self.max_idle_per_backend = max;
        self
    }

    /// Set [`pool_idle_timeout`](Self::pool_idle_timeout).
    pub fn pool_idle_timeout(mut self, timeout: Duration) -> Self {
        self.pool_idle_timeout = timeout;
        self
    }

    /// Set [`connection_limit`](Self::connection_limit).
    pub fn connection_limit(mut self, limit: ConnectionLimit) -> Self {
        self.connection_limit = limit;
        self
    }

    /// Set [`max_response_header_bytes`](Self::max_response_header_bytes).
    pub fn max_response_header_bytes(mut self, max: usize) -> Self {
        self.max_response_header_bytes = max;
        self
    }

    /// Set [`max_response_headers`](Self::max_response_headers).
    pub fn max_response_headers(mut self, max: Option<usize>) -> Self {
        self.max_response_headers = max;
        self
    }
}
