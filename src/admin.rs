//! The admin listener (`--admin-listen`): `/metrics` in Prometheus's text format, `/healthz`,
//! `/readyz` and `/status`, over plain HTTP/1.1, off the request path.
//!
//! * `/healthz`: `200 ok` while the gateway runs (also while it drains).
//! * `/readyz`: `200 ready` when every application is ready or offline by choice: idle (not
//!   started yet: the first request starts it), starting, ready, or serving
//!   `app_offline.htm`. Otherwise `503`, one line per application that is not, with its
//!   state and why (a failed start, rapid-fail protection, an invalid web.config), and
//!   `503 shutting down` once the gateway is stopping.
//! * `/status`: the JSON `ancm status` prints (see [`crate::status`]).
//! * `/metrics`: see [`crate::observe::metrics`].
//!
//! Only `GET` and `HEAD` are answered (`405` otherwise). At most [`MAX_CONNECTIONS`]
//! connections are served at once; a connection has [`HEADER_TIMEOUT`] to send each request
//! head.
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use ancm_front::Body;
use ancm_hosting::status::ApplicationStatus;
use http::header::{ALLOW, CONTENT_TYPE};
use http::{HeaderValue, Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::connection::Slots;
use crate::gateway::Hosted;
use crate::observe::Observability;
use crate::observe::metrics::{self, GatewayCollector};
use crate::tls::stats::{HandshakeCounts, HandshakeStats};

/// Admin connections served at once; more wait in the listen backlog.
const MAX_CONNECTIONS: usize = 32;
/// How long an admin connection may take to send a request head.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// What the admin endpoints read: the applications, the counters, the connection slots.
#[derive(Debug)]
pub struct GatewaySources {
    /// The applications, in the router's order.
    pub applications: Arc<Vec<Hosted>>,
    /// The request counters and the access log.
    pub observability: Arc<Observability>,
    /// The client connection slots.
    pub slots: Arc<Slots>,
    /// The HTTPS listeners' handshake counters.
    pub tls_handshakes: Arc<HandshakeStats>,
}

impl metrics::Sources for GatewaySources {
    fn app_labels(&self) -> Vec<String> {
        self.applications
            .iter()
            .map(|h| h.path.as_str().to_owned())
            .collect()
    }

    fn app_statuses(&self) -> Vec<ApplicationStatus> {
        self.applications.iter().map(|h| h.app.status()).collect()
    }

    fn backend_connections(&self) -> Vec<(usize, usize)> {
        self.applications
            .iter()
            .map(|h| (h.forward.connection_limit.in_use(), h.idle_connections()))
            .collect()
    }

    fn client_connections(&self) -> (usize, usize) {
        (self.slots.open(), self.slots.max())
    }

    fn tls_handshakes(&self) -> HandshakeCounts {
        self.tls_handshakes.counts()
    }

    fn access_log_dropped(&self) -> u64 {
        self.observability
            .access_log()
            .map_or(0, |log| log.dropped())
    }

    fn shards(&self) -> Vec<Arc<metrics::Shard>> {
        self.observability.shards()
    }
}

/// The admin endpoints' state.
#[derive(Debug)]
pub struct Admin {
    sources: Arc<GatewaySources>,
    registry: Registry,
    started: SystemTime,
    stopping: AtomicBool,
}

impl Admin {
    /// The endpoints over `sources`.
    pub fn new(sources: Arc<GatewaySources>) -> Self {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(GatewayCollector::new(sources.clone())));
        Self {
            sources,
            registry,
            started: SystemTime::now(),
            stopping: AtomicBool::new(false),
        }
    }

    /// From now on `/readyz` answers `503 shutting down`.
    pub fn stopping(&self) {
        self.stopping.store(true, Ordering::Release);
    }

    /// Serves `listener` on the current runtime until the task is aborted.
    pub fn spawn(self: &Arc<Self>, listener: TcpListener) -> tokio::task::JoinHandle<()> {
        let admin = self.clone();
        tokio::spawn(async move {
            let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
            loop {
                let Ok(permit) = permits.clone().acquire_owned().await else {
                    return;
                };
                let (stream, _) = match listener.accept().await {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        tracing::warn!(%error, "admin listener: accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let admin = admin.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let admin = admin.clone();
                        async move { Ok::<_, Infallible>(admin.answer(&req)) }
                    });
                    let served = hyper::server::conn::http1::Builder::new()
                        .timer(TokioTimer::new())
                        .header_read_timeout(HEADER_TIMEOUT)
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                    if let Err(error) = served {
                        tracing::debug!(%error, "admin connection ended with an error");
                    }
                    drop(permit);
                });
            }
        })
    }

    fn answer(&self, req: &Request<Incoming>) -> Response<Body> {
        if req.method() != Method::GET && req.method() != Method::HEAD {
            let mut resp = text(StatusCode::METHOD_NOT_ALLOWED, "only GET and HEAD\n");
            resp.headers_mut()
                .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
            return resp;
        }
        match req.uri().path() {
            "/healthz" => text(StatusCode::OK, "ok\n"),
            "/readyz" => self.readyz(),
            "/status" => {
                let statuses = self.sources.app_statuses_with_requests();
                let json = crate::status::status_json(
                    &statuses,
                    self.started,
                    self.stopping.load(Ordering::Acquire),
                    &self.sources,
                );
                let mut resp = Response::new(Body::from(format!("{json:#}\n")));
                resp.headers_mut()
                    .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
                resp
            }
            "/metrics" => {
                let mut out = String::with_capacity(16 * 1024);
                match prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry)
                {
                    Ok(()) => {
                        let mut resp = Response::new(Body::from(out));
                        resp.headers_mut().insert(
                            CONTENT_TYPE,
                            HeaderValue::from_static(
                                prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
                            ),
                        );
                        resp
                    }
                    Err(_) => text(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "cannot encode the metrics\n",
                    ),
                }
            }
            _ => text(
                StatusCode::NOT_FOUND,
                "not found: /metrics, /healthz, /readyz, /status\n",
            ),
        }
    }

    fn readyz(&self) -> Response<Body> {
        if self.stopping.load(Ordering::Acquire) {
            return text(StatusCode::SERVICE_UNAVAILABLE, "shutting down\n");
        }
        let not_ready: String = self
            .sources
            .applications
            .iter()
            .map(|h| h.app.status())
            .filter(|s| !s.state.is_ready_or_offline())
            .map(|s| {
                format!(
                    "{}: {}: {}\n",
                    s.app_path,
                    s.state,
                    s.reason.as_deref().unwrap_or("not ready")
                )
            })
            .collect();
        if not_ready.is_empty() {
            text(StatusCode::OK, "ready\n")
        } else {
            text(StatusCode::SERVICE_UNAVAILABLE, &not_ready)
        }
    }
}

impl GatewaySources {
    /// Each application's status and requests answered, in the router's order.
    pub fn app_statuses_with_requests(&self) -> Vec<(ApplicationStatus, u64)> {
        let requests =
            metrics::requests_per_app(&self.observability.shards(), self.applications.len());
        self.applications
            .iter()
            .map(|h| h.app.status())
            .zip(requests)
            .collect()
    }
}

fn text(status: StatusCode, body: &str) -> Response<Body> {
    let mut resp = Response::new(Body::from(body.to_owned()));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}
