//! Backends for a front to forward to: started in-process on a loopback port (around a
//! closure, scripted byte by byte, or echoing what they saw), the Rust and python backends a
//! site runs as a child, and [`Proxy`], the smallest forwarder to put in front of them.
//!
//! ```
//! use test_support::backends::{echo_backend, parse_seen};
//! use test_support::client;
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let backend = echo_backend("127.0.0.1:0").await;
//! let res = client::request(backend, client::get_request("example.test", "/a?b", &[("x-a", "1")])).await;
//! let seen = parse_seen(&res.body);
//! assert_eq!((seen.method.as_str(), seen.path.as_str()), ("GET", "/a?b"));
//! assert_eq!(seen.one("x-a"), Some("1"));
//! # });
//! ```
//!
//! The in-process backends serve until the test's runtime ends (see
//! [`TestServer::detach`](crate::server::TestServer::detach)).
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode, Uri};
use http_body::Body;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::io::AsyncReadExt as _;
use tokio::net::{TcpListener, TcpStream};
use tower::Service;

use crate::BoxError;
use crate::server::TestServer;

/// A hyper backend (HTTP/1.1 and h2c) on a fresh `127.0.0.1` port, running `handler` for
/// each request.
pub async fn hyper_backend<F, Fut, B>(handler: F) -> SocketAddr
where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response<B>> + Send + 'static,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    let service = tower::service_fn(move |req| {
        let answer = handler(req);
        async move { Ok::<_, Infallible>(answer.await) }
    });
    TestServer::start(service).await.detach()
}

/// A raw TCP backend on a fresh `127.0.0.1` port: for each connection, read the request head
/// (up to the blank line), then run `script` with the stream and the head.
pub async fn raw_backend<F, Fut>(script: F) -> SocketAddr
where
    F: Fn(TcpStream, String) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a loopback port for the backend");
    let addr = listener.local_addr().expect("the backend's address");
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            let script = script.clone();
            tokio::spawn(async move {
                let head = read_head(&mut stream).await;
                script(stream, head).await;
            });
        }
    });
    addr
}

/// Read up to the end of an HTTP head (`\r\n\r\n`), byte by byte, so nothing after it is
/// consumed.
pub async fn read_head(stream: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte).await {
            Ok(1) => head.push(byte[0]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&head).into_owned()
}

/// A backend on `bind` (`127.0.0.1:0`, `[::1]:0`) that answers with what it saw: `METHOD
/// TARGET`, then one `name: value` line per header line, an empty line, then the body (read
/// it with [`parse_seen`]). `/hop-response` also sends hop-by-hop response headers
/// (`Connection: x-hop-resp`, `X-Hop-Resp`, `Keep-Alive`, `Proxy-Connection`, `Upgrade`)
/// among end-to-end ones (two `Set-Cookie` lines, `X-End`).
pub async fn echo_backend(bind: &str) -> SocketAddr {
    let listener = TcpListener::bind(bind)
        .await
        .expect("a port for the backend");
    let service = tower::service_fn(|req: Request<Incoming>| async move {
        let (parts, body) = req.into_parts();
        let body = body
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let mut text = format!("{} {}\n", parts.method, parts.uri);
        for (name, value) in &parts.headers {
            text.push_str(name.as_str());
            text.push_str(": ");
            text.push_str(&String::from_utf8_lossy(value.as_bytes()));
            text.push('\n');
        }
        text.push('\n');
        let mut out = text.into_bytes();
        out.extend_from_slice(&body);
        let mut resp = Response::new(Full::new(Bytes::from(out)));
        if parts.uri.path() == "/hop-response" {
            let h = resp.headers_mut();
            for (name, value) in [
                ("connection", "x-hop-resp"),
                ("x-hop-resp", "1"),
                ("keep-alive", "timeout=5"),
                ("proxy-connection", "keep-alive"),
                ("upgrade", "foo"),
                ("set-cookie", "a=1"),
                ("set-cookie", "b=2"),
                ("x-end", "kept"),
            ] {
                h.append(name, HeaderValue::from_static(value));
            }
        }
        Ok::<_, Infallible>(resp)
    });
    TestServer::on(listener, move |_peer| service).detach()
}

/// What [`echo_backend`] saw.
#[derive(Debug)]
pub struct Seen {
    /// The request method.
    pub method: String,
    /// The request target as the backend got it.
    pub path: String,
    /// Every header line, in order.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Seen {
    /// Every line of `name`.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The single line of `name`.
    ///
    /// # Panics
    ///
    /// If there are several: the test has failed.
    pub fn one(&self, name: &str) -> Option<&str> {
        let all = self.all(name);
        assert!(all.len() <= 1, "{name} has {} lines: {all:?}", all.len());
        all.first().copied()
    }

    /// Whether there is a line of `name`.
    pub fn has(&self, name: &str) -> bool {
        !self.all(name).is_empty()
    }
}

/// Parse [`echo_backend`]'s answer.
///
/// # Panics
///
/// If `body` is not such an answer: the test has failed.
pub fn parse_seen(body: &[u8]) -> Seen {
    let split = body
        .windows(2)
        .position(|w| w == b"\n\n")
        .expect("echo body has a blank line");
    let head = std::str::from_utf8(&body[..split]).expect("utf-8 head");
    let mut lines = head.lines();
    let first = lines.next().expect("request line");
    let (method, path) = first.split_once(' ').expect("METHOD PATH");
    let headers = lines
        .map(|l| {
            let (n, v) = l.split_once(": ").unwrap_or((l.trim_end_matches(':'), ""));
            (n.to_owned(), v.to_owned())
        })
        .collect();
    Seen {
        method: method.to_owned(),
        path: path.to_owned(),
        headers,
        body: body[split + 2..].to_vec(),
    }
}

/// ancm-hosting's `test_backend` example: the Rust backend a site runs as a child, in the mode
/// `ANCM_TEST_MODE` names (see the example's documentation). In `echo` mode
/// ([`site::rust_echo_config`](crate::site::rust_echo_config)) it answers as the python echo
/// backend does, on every OS. `cargo test` of the workspace or of ancm-hosting builds it;
/// otherwise the first use does.
///
/// # Panics
///
/// If it has to be built and the build fails.
pub fn test_backend() -> PathBuf {
    crate::process::example("ancm-hosting", "test_backend")
}

/// The python3 echo backend (`backends/echo_backend.py`), started by a gateway from a
/// web.config (see [`site::python_echo_config`](crate::site::python_echo_config)): it listens
/// on `127.0.0.1:$ASPNETCORE_PORT` and answers with JSON of what it saw (`pid`, `method`,
/// `path`, `headers` as `[name, value]` pairs, `env`, `body_len`); `/crash` exits at once,
/// `/slow?ms=N` waits, `/print?lines=N&width=W` writes N numbered lines to its stdout, `/ws`
/// echoes WebSocket messages, and the shutdown event stops it.
pub fn python_echo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("backends/echo_backend.py")
}

/// Every value of header `name` the python echo backend reported in `json`.
///
/// # Panics
///
/// If `json` is not the python echo backend's answer: the test has failed.
pub fn header_values(json: &serde_json::Value, name: &str) -> Vec<String> {
    json["headers"]
        .as_array()
        .expect("a headers array")
        .iter()
        .filter(|pair| {
            pair[0]
                .as_str()
                .expect("a header name")
                .eq_ignore_ascii_case(name)
        })
        .map(|pair| pair[1].as_str().expect("a header value").to_owned())
        .collect()
}

/// The body [`Proxy`] produces before it becomes the stack's body type.
pub type ProxyBody = UnsyncBoxBody<Bytes, BoxError>;

/// The smallest forwarder: each request, as the layers in front of it left it, goes to the
/// address `route` picks (after `route` adjusted the request, say with a header) over
/// hyper's pooled HTTP/1.1 client, and `wrap` turns the answer's body into the stack's body
/// type. Where `route` has no address or the exchange fails, the answer is a 502 with an
/// `x-test-forward-error` header and the reason as its body.
///
/// ```
/// use std::net::SocketAddr;
/// use test_support::backends::{Proxy, ProxyBody, echo_backend, parse_seen};
/// use test_support::client;
///
/// /// The backend address the test put in the request's extensions.
/// fn to_backend(req: &mut http::Request<http_body_util::Full<bytes::Bytes>>) -> Option<SocketAddr> {
///     req.extensions().get::<SocketAddr>().copied()
/// }
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let backend = echo_backend("127.0.0.1:0").await;
/// let proxy: Proxy<_, ProxyBody> = Proxy::new(to_backend, |body| body);
/// let mut req = client::get_request("example.test", "/x", &[]);
/// req.extensions_mut().insert(backend);
/// let res = tower::ServiceExt::oneshot(proxy, req).await.unwrap();
/// let body = http_body_util::BodyExt::collect(res.into_body()).await.unwrap().to_bytes();
/// assert_eq!(parse_seen(&body).path, "/x");
/// # });
/// ```
pub struct Proxy<B, O> {
    client: Client<HttpConnector, B>,
    route: fn(&mut Request<B>) -> Option<SocketAddr>,
    wrap: fn(ProxyBody) -> O,
}

impl<B, O> Proxy<B, O>
where
    B: Body + Send + 'static,
    B::Data: Send,
{
    /// Forward to where `route` says, with bodies made by `wrap`.
    pub fn new(route: fn(&mut Request<B>) -> Option<SocketAddr>, wrap: fn(ProxyBody) -> O) -> Self {
        Self {
            client: Client::builder(TokioExecutor::new()).build_http(),
            route,
            wrap,
        }
    }
}

impl<B, O> Clone for Proxy<B, O> {
    fn clone(&self) -> Self {
        Self {
            client: self.client.clone(),
            route: self.route,
            wrap: self.wrap,
        }
    }
}

impl<B, O> std::fmt::Debug for Proxy<B, O> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proxy").finish_non_exhaustive()
    }
}

impl<B, O> Service<Request<B>> for Proxy<B, O>
where
    B: Body + Send + Unpin + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
    O: Send + 'static,
{
    type Response = Response<O>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<O>, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        let client = self.client.clone();
        let wrap = self.wrap;
        let backend = (self.route)(&mut req);
        Box::pin(async move {
            let Some(backend) = backend else {
                return Ok(failure(wrap, "no backend for this request".into()));
            };
            let target = req.uri().path_and_query().map_or("/", |pq| pq.as_str());
            let uri = match format!("http://{backend}{target}").parse::<Uri>() {
                Ok(uri) => uri,
                Err(error) => return Ok(failure(wrap, format!("target: {error}"))),
            };
            *req.uri_mut() = uri;
            match client.request(req).await {
                Ok(resp) => Ok(resp.map(|body| wrap(body.map_err(Into::into).boxed_unsync()))),
                Err(error) => Ok(failure(wrap, format!("forward: {error}"))),
            }
        })
    }
}

fn failure<O>(wrap: fn(ProxyBody) -> O, reason: String) -> Response<O> {
    let body = Full::new(Bytes::from(reason))
        .map_err(|never| match never {})
        .boxed_unsync();
    let mut resp = Response::new(wrap(body));
    *resp.status_mut() = StatusCode::BAD_GATEWAY;
    resp.headers_mut()
        .insert("x-test-forward-error", HeaderValue::from_static("1"));
    resp
}
