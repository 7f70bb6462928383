//! Shared helpers for the hosting tests: backends, a minimal forwarding inner service, and
//! process checks.
#![allow(dead_code, unreachable_pub, missing_docs)]

use std::convert::Infallible;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::OnceLock;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use ancm_front::{BackendTarget, Body};
use ancm_hosting::config::{AspNetCoreConfig, Location};
use ancm_hosting::{Application, ApplicationOptions, ApplicationService};
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tower_layer::Layer;
use tower_service::Service;

/// target/debug/examples/test_backend, built on first use if `cargo test` did not build it.
pub fn backend_exe() -> PathBuf {
    static EXE: OnceLock<PathBuf> = OnceLock::new();
    EXE.get_or_init(|| {
        let me = std::env::current_exe().expect("current_exe");
        let debug = me.parent().and_then(Path::parent).expect("target/debug");
        let exe = debug.join("examples").join(if cfg!(windows) {
            "test_backend.exe"
        } else {
            "test_backend"
        });
        if !exe.is_file() {
            let status = std::process::Command::new(env!("CARGO"))
                .args(["build", "-p", "ancm-hosting", "--example", "test_backend"])
                .status()
                .expect("cargo build");
            assert!(status.success(), "building the test backend failed");
        }
        exe
    })
    .clone()
}

pub fn python_backend() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/backends/backend.py")
}

/// A configuration for the Rust test backend in `mode`, with short limits.
pub fn rust_config(mode: &str) -> AspNetCoreConfig {
    let mut c = AspNetCoreConfig::new(
        backend_exe().to_string_lossy().into_owned(),
        Location {
            file: PathBuf::from("web.config"),
            line: 1,
            column: 1,
        },
    );
    c.environment_variables
        .push(("ANCM_TEST_MODE".into(), mode.into()));
    c.startup_time_limit = 5;
    c.shutdown_time_limit = 3;
    c
}

pub fn python_config() -> AspNetCoreConfig {
    let mut c = AspNetCoreConfig::new(
        "python3",
        Location {
            file: PathBuf::from("web.config"),
            line: 1,
            column: 1,
        },
    );
    c.arguments = format!("-u \"{}\"", python_backend().display());
    c.startup_time_limit = 10;
    c.shutdown_time_limit = 3;
    c
}

/// The inner service of the tests: forwards to `BackendTarget.addr` with the token.
#[derive(Clone)]
pub struct Forward {
    client: Client<HttpConnector, Empty<Bytes>>,
}

impl Forward {
    pub fn new() -> Self {
        Self {
            client: Client::builder(TokioExecutor::new()).build_http(),
        }
    }
}

impl Service<Request<Empty<Bytes>>> for Forward {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Empty<Bytes>>) -> Self::Future {
        let client = self.client.clone();
        Box::pin(async move {
            let Some(target) = req.extensions().get::<BackendTarget>().cloned() else {
                return Ok(status_response(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "no BackendTarget",
                ));
            };
            let (mut parts, body) = req.into_parts();
            let pq = parts
                .uri
                .path_and_query()
                .map_or("/", |p| p.as_str())
                .to_owned();
            parts.uri = format!("http://{}{}", target.addr, pq)
                .parse()
                .expect("uri");
            if let Some(t) = &target.token {
                parts
                    .headers
                    .insert(ancm_protocol::headers::TOKEN, t.header_value().clone());
            }
            match client.request(Request::from_parts(parts, body)).await {
                Ok(resp) => Ok(resp.map(Body::new)),
                Err(e) => Ok(status_response(
                    StatusCode::BAD_GATEWAY,
                    &format!("forward: {e}"),
                )),
            }
        })
    }
}

fn status_response(status: StatusCode, text: &str) -> Response<Body> {
    let mut r = Response::new(Body::full(Bytes::from(text.to_owned())));
    *r.status_mut() = status;
    r.headers_mut()
        .insert("x-test-forward-error", http::HeaderValue::from_static("1"));
    r
}

pub fn service(app: &Application) -> ApplicationService<Forward> {
    app.layer().layer(Forward::new())
}

/// A response, read fully.
#[derive(Debug)]
pub struct Got {
    pub status: StatusCode,
    pub headers: http::HeaderMap,
    pub body: String,
}

impl Got {
    pub fn env(&self, name: &str) -> Option<String> {
        self.body
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}=")).map(str::to_owned))
    }
}

pub async fn get(svc: &ApplicationService<Forward>, path: &str) -> Got {
    let mut svc = svc.clone();
    let req = Request::get(path)
        .body(Empty::<Bytes>::new())
        .expect("request");
    let resp = tokio::time::timeout(Duration::from_secs(30), svc.call(req))
        .await
        .expect("request did not finish in 30 s")
        .expect("infallible");
    let (parts, body) = resp.into_parts();
    let bytes = body
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    Got {
        status: parts.status,
        headers: parts.headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

pub fn site() -> tempfile::TempDir {
    tempfile::tempdir().expect("tempdir")
}

pub fn options(site: &Path) -> ApplicationOptions {
    ApplicationOptions::new(site).detailed_errors(true)
}

/// Whether a process exists and is not a zombie.
pub fn alive(pid: u32) -> bool {
    #[cfg(target_os = "linux")]
    {
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Ok(s) => !s
                .rsplit_once(')')
                .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
            Err(_) => false,
        }
    }
    #[cfg(all(unix, not(target_os = "linux")))]
    {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), None).is_ok()
    }
}

/// Waits up to `timeout` for `cond`.
pub async fn eventually(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub fn free_port() -> u16 {
    for p in 20_000..40_000u16 {
        let p = p + (std::process::id() % 7_000) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", p)).is_ok()
            && std::net::TcpListener::bind(("::1", p)).is_ok()
        {
            return p;
        }
    }
    panic!("no free port");
}
