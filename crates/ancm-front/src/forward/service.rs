//! The forwarding service and its future.
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{HeaderValue, Method, Request, Response, StatusCode, Uri, Version, header};
use hyper::upgrade::OnUpgrade;
use tower_service::Service;

use super::ForwardConfig;
use super::body::{RequestBody, ResponseBody};
use super::error::{Chain, ForwardError};
use super::pool::{Checkout, Dest, Pool, PoolConfig};
use crate::error_page::ErrorPage;
use crate::future;
use crate::{BackendTarget, Body, BoxError, RequestTimeout};

#[derive(Debug)]
struct Shared {
    pool: Pool,
    config: ForwardConfig,
}

/// The forwarding service: carries each request to its backend (the request's
/// [`BackendTarget`], else [`ForwardConfig::default_target`]) and streams the response back.
///
/// Cheap to clone; clones share one connection pool. Never fails: a failure before the
/// response head arrived becomes an error page response (502.3, 413/400 for request-body
/// faults, 503.2 when no backend connection came free under the
/// [`ConnectionLimit`](super::ConnectionLimit)), a failure afterwards an error of the
/// response body, which makes hyper abort the client connection.
#[derive(Clone, Debug)]
pub struct Forwarder {
    shared: Arc<Shared>,
}

impl Forwarder {
    /// A forwarder with its own connection pool.
    pub fn new(config: ForwardConfig) -> Self {
        let pool = Pool::new(PoolConfig {
            max_idle_per_backend: config.max_idle_per_backend,
            idle_timeout: config.pool_idle_timeout,
            max_response_header_bytes: config.max_response_header_bytes,
            max_response_headers: config.max_response_headers,
        });
        Self {
            shared: Arc::new(Shared { pool, config }),
        }
    }

    /// The configuration this forwarder runs with.
    pub fn config(&self) -> &ForwardConfig {
        &self.shared.config
    }

    /// How many idle keep-alive HTTP/1.1 connections to `addr` a request could use right now
    /// (open, idle for less than the pool idle timeout, to any process at that address).
    pub fn idle_connections(&self, addr: SocketAddr) -> usize {
        self.shared.pool.idle_count(Some(addr))
    }

    /// How many idle keep-alive HTTP/1.1 connections to any backend this forwarder's pool
    /// holds that a request could use right now (for metrics).
    pub fn idle_connections_total(&self) -> usize {
        self.shared.pool.idle_count(None)
    }
}

impl Default for Forwarder {
    fn default() -> Self {
        Self::new(ForwardConfig::default())
    }
}

impl<B> Service<Request<B>> for Forwarder
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        // The head is rewritten here, before the future exists: the boxed future then holds
        // only what the exchange needs, not the client's request as well (it is allocated
        // and copied for every request, so its size is per-request cost).
        let config = &self.shared.config;
        let Some(dest) = Exchange::destination(config, &req) else {
            return future::ResponseFuture::ready(failure(
                &ForwardError::NoTarget,
                None,
                req.method(),
            ));
        };
        let exchange = Exchange::prepare(config, req, dest);
        let shared = Arc::clone(&self.shared);
        future::ResponseFuture::inner(Box::pin(async move { Ok(exchange.run(&shared).await) }))
    }
}

/// Response future of [`Forwarder`]: the boxed exchange, in the crate's one
/// [`ResponseFuture`](crate::future::ResponseFuture) (and its policy after completion).
pub type ResponseFuture = future::ResponseFuture<
    Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>,
    Body,
>;

/// A request ready for its backend: the head rewritten for the backend leg, the body
/// wrapped, and what the exchange needs to know besides.
struct Exchange {
    out: Request<RequestBody>,
    dest: Dest,
    timeout: RequestTimeout,
    method: Method,
    client_upgrade: Option<OnUpgrade>,
    use_h2: bool,
}

impl Exchange {
    /// Where `req` goes: its [`BackendTarget`], else the default target; `None` without
    /// either.
    fn destination<B>(config: &ForwardConfig, req: &Request<B>) -> Option<Dest> {
        match req.extensions().get::<BackendTarget>() {
            Some(t) => Some(Dest {
                addr: t.addr,
                unix_socket: t.unix_socket.clone(),
                process: t.process.clone(),
            }),
            None => config.default_target.map(|addr| Dest {
                addr,
                unix_socket: None,
                process: None,
            }),
        }
    }

    /// Rewrites `req` for the backend leg to `dest`.
    fn prepare<B>(config: &ForwardConfig, req: Request<B>, dest: Dest) -> Self
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        let target = req.extensions().get::<BackendTarget>();
        // The backend's own requestTimeout wins (it follows web.config recycles).
        let timeout = target
            .map_or(RequestTimeout::Inherit, |t| t.request_timeout)
            .or(config.request_timeout);
        let (mut parts, body) = req.into_parts();
        let method = parts.method.clone();
        // Only a request that still names an upgrade (the hop-by-hop layer keeps just the
        // WebSocket one) can switch protocols; take the client side's upgrade handle now,
        // before the request leaves for the backend.
        let upgrade = parts.headers.contains_key(header::UPGRADE);
        let client_upgrade = if upgrade {
            parts.extensions.remove::<OnUpgrade>()
        } else {
            None
        };
        // An upgrade needs HTTP/1.1 on the backend leg even when h2c is on.
        let use_h2 = config.http2 && !upgrade;

        let host = match parts.headers.get(header::HOST) {
            Some(host) => Some(host.clone()),
            // HTTP/2 clients send :authority instead of Host (protocol §1.3 step 1: the backend sees
            // the client's host, never the backend's address; without one it gets none, and
            // `host::ValidateHostLayer` refuses such requests before they get here).
            None => parts
                .uri
                .authority()
                .and_then(|a| HeaderValue::from_str(a.as_str()).ok()),
        };
        parts.uri = match target_uri(&method, &parts.uri, use_h2, host.as_ref()) {
            Some(uri) => uri,
            None => std::mem::take(&mut parts.uri),
        };
        if use_h2 {
            // The authority travels as :authority; a Host header next to it is redundant.
            parts.headers.remove(header::HOST);
            parts.version = Version::HTTP_2;
        } else {
            if let Some(host) = host
                && !parts.headers.contains_key(header::HOST)
            {
                parts.headers.insert(header::HOST, host);
            }
            parts.version = Version::HTTP_11;
        }
        // The client's extensions (connection facts, targets, tokens) stay on this side.
        parts.extensions = http::Extensions::new();
        Self {
            out: Request::from_parts(parts, RequestBody::new(body, timeout)),
            dest,
            timeout,
            method,
            client_upgrade,
            use_h2,
        }
    }

    /// Sends the request and turns the backend's answer into the client's response.
    async fn run(self, shared: &Shared) -> Response<Body> {
        let Self {
            out,
            dest,
            timeout,
            method,
            client_upgrade,
            use_h2,
        } = self;
        let addr = dest.addr;
        let method = &method;
        let limit = &shared.config.connection_limit;
        let Some(permit) = limit.acquire().await else {
            let err = ForwardError::ConnectionLimit {
                max: limit.max(),
                waited: limit.max_wait(),
            };
            return failure(&err, Some(addr), method);
        };
        let (resp, checkout) = if use_h2 {
            // Boxed: h2c is opt-in, and its larger state would otherwise grow every request's
            // future.
            match Box::pin(shared.pool.send_h2(&dest, out, timeout)).await {
                Ok(resp) => (resp, Checkout::stream(permit)),
                Err(err) => return failure(&err, Some(addr), method),
            }
        } else {
            match shared.pool.send_h1(dest, out, timeout, permit).await {
                Ok(sent) => sent,
                Err(err) => return failure(&err, Some(addr), method),
            }
        };

        let (mut parts, incoming) = resp.into_parts();
        // hyper's HTTP/1.1 server writes `HTTP/1.1` (or 1.0 to 1.0 clients) either way; a
        // backend's 1.0 status line must not leak into the client connection's framing.
        parts.version = Version::HTTP_11;
        if parts.status == StatusCode::SWITCHING_PROTOCOLS {
            let backend_upgrade = parts.extensions.remove::<OnUpgrade>();
            let (Some(client_upgrade), Some(backend_upgrade)) = (client_upgrade, backend_upgrade)
            else {
                return failure(&ForwardError::UpgradeUnavailable, Some(addr), method);
            };
            super::upgrade::spawn_tunnel(client_upgrade, backend_upgrade, checkout, addr);
            drop(incoming);
            return Response::from_parts(parts, Body::empty());
        }
        let body = ResponseBody::new(incoming, timeout, checkout);
        Response::from_parts(parts, Body::backend(body))
    }
}

/// The request-target for the backend: origin-form (`/path?query`) on HTTP/1.1, absolute
/// `http://HOST/path?query` on h2c (which carries scheme and authority as pseudo-headers).
/// `None` keeps the URI as it is (already origin-form, or a CONNECT authority).
fn target_uri(method: &Method, uri: &Uri, h2: bool, host: Option<&HeaderValue>) -> Option<Uri> {
    if method == Method::CONNECT {
        return None;
    }
    let pq = uri
        .path_and_query()
        .cloned()
        .unwrap_or_else(|| PathAndQuery::from_static("/"));
    if !h2 {
        if uri.scheme().is_none() && uri.authority().is_none() {
            return None;
        }
        return Some(Uri::from(pq));
    }
    let authority = host.and_then(|h| Authority::try_from(h.as_bytes()).ok())?;
    let mut out = http::uri::Parts::default();
    out.scheme = Some(Scheme::HTTP);
    out.authority = Some(authority);
    out.path_and_query = Some(pq);
    Uri::from_parts(out).ok()
}

/// Log a failure before the response started and turn it into the client's response.
fn failure(err: &ForwardError, addr: Option<SocketAddr>, method: &Method) -> Response<Body> {
    let status = err.status();
    let backend = addr.map(tracing::field::display);
    match status {
        StatusCode::PAYLOAD_TOO_LARGE => {
            tracing::info!(backend, %method, error = %Chain(err), "request body over the limit");
            ErrorPage::new(status, 0, "Request Entity Too Large").into_response()
        }
        StatusCode::BAD_REQUEST => {
            tracing::info!(backend, %method, error = %Chain(err), "reading the client request body failed");
            ErrorPage::new(status, 0, "Bad Request").into_response()
        }
        StatusCode::SERVICE_UNAVAILABLE => {
            tracing::warn!(backend, %method, error = %Chain(err), "no backend connection came free (503.2)");
            ErrorPage::backend_busy().into_response()
        }
        _ => {
            tracing::error!(backend, %method, error = %Chain(err), "forwarding to the backend failed (502.3)");
            ErrorPage::forwarding_failure().into_response()
        }
    }
}
