//! A real server on 127.0.0.1 behind a layer, a probe app reporting what it saw, and a raw
//! HTTP/1.1 client.
#![allow(dead_code, unreachable_pub, missing_docs, clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::extract::Request;
use axum::{Json, Router, ServiceExt};
use iis_integration::{ClientAddr, ClientCertificate, OriginalUri, PathBase, Scheme, WindowsUser};
use serde_json::{Map, Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tower::Layer;

/// Bounded wait for any network step.
pub const LIMIT: Duration = Duration::from_secs(20);

pub struct Server {
    pub addr: SocketAddr,
    calls: Arc<AtomicUsize>,
}

impl Server {
    /// How many requests reached the app.
    pub fn app_calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

/// The probe app: reports what the layers left for it.
pub fn probe(calls: Arc<AtomicUsize>) -> Router {
    Router::new().fallback(move |req: Request| {
        let calls = calls.clone();
        async move {
            calls.fetch_add(1, Ordering::SeqCst);
            Json(report(req))
        }
    })
}

fn report(req: Request) -> Value {
    let ext = req.extensions();
    let mut headers = Map::new();
    for (name, value) in req.headers() {
        if let Value::Array(values) = headers
            .entry(name.as_str())
            .or_insert_with(|| Value::Array(Vec::new()))
        {
            values.push(Value::String(value.to_str().unwrap_or("<bin>").to_owned()));
        }
    }
    json!({
        "method": req.method().as_str(),
        "uri": req.uri().to_string(),
        "path_base": ext.get::<PathBase>().map(|p| p.to_string()),
        "original_uri": ext.get::<OriginalUri>().map(|u| u.0.to_string()),
        "client": ext.get::<ClientAddr>().map(|c| c.0.to_string()),
        "scheme": ext.get::<Scheme>().map(|s| s.to_string()),
        "cert": ext.get::<ClientCertificate>().map(|c| c.der().to_vec()),
        "windows_handle": ext.get::<WindowsUser>().map(|u| u.raw_handle()),
        "upgrade": ext.get::<hyper::upgrade::OnUpgrade>().is_some(),
        "headers": headers,
    })
}

/// Serve the probe behind `layer` on `listener`, with axum's connect info.
pub async fn serve_on<L>(listener: TcpListener, layer: L) -> Server
where
    L: Layer<Router>,
    L::Service: tower::Service<
            Request,
            Response = axum::response::Response,
            Error = std::convert::Infallible,
        > + Clone
        + Send
        + Sync
        + 'static,
    <L::Service as tower::Service<Request>>::Future: Send,
{
    let addr = listener.local_addr().unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let app = layer.layer(probe(calls.clone()));
    tokio::spawn(async move {
        axum::serve(
            listener,
            ServiceExt::<Request>::into_make_service_with_connect_info::<SocketAddr>(app),
        )
        .await
        .unwrap();
    });
    Server { addr, calls }
}

/// [`serve_on`] a fresh 127.0.0.1 port.
pub async fn serve<L>(layer: L) -> Server
where
    L: Layer<Router>,
    L::Service: tower::Service<
            Request,
            Response = axum::response::Response,
            Error = std::convert::Infallible,
        > + Clone
        + Send
        + Sync
        + 'static,
    <L::Service as tower::Service<Request>>::Future: Send,
{
    serve_on(TcpListener::bind("127.0.0.1:0").await.unwrap(), layer).await
}

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(&self.body)))
    }
}

/// Send one request (`Connection: close` added) over a new connection and read the answer.
pub async fn send(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
) -> Response {
    let mut raw =
        format!("{method} {target} HTTP/1.1\r\nHost: test.local\r\nConnection: close\r\n");
    for (name, value) in headers {
        raw.push_str(&format!("{name}: {value}\r\n"));
    }
    raw.push_str("\r\n");
    send_raw(addr, raw.as_bytes()).await
}

pub async fn send_raw(addr: SocketAddr, raw: &[u8]) -> Response {
    tokio::time::timeout(LIMIT, async {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream.write_all(raw).await.unwrap();
        read_response(&mut stream).await
    })
    .await
    .expect("the server answers in time")
}

/// Read one response from `stream`, which the server closes after it.
pub async fn read_response(stream: &mut TcpStream) -> Response {
    let mut bytes = Vec::new();
    stream.read_to_end(&mut bytes).await.unwrap();
    parse(&bytes)
}

pub fn parse(bytes: &[u8]) -> Response {
    let end = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end in {:?}", String::from_utf8_lossy(bytes)));
    let head = std::str::from_utf8(&bytes[..end]).unwrap();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .map(|l| {
            let (n, v) = l.split_once(':').unwrap();
            (n.trim().to_ascii_lowercase(), v.trim().to_owned())
        })
        .collect();
    let mut body = bytes[end + 4..].to_vec();
    if let Some((_, len)) = headers.iter().find(|(n, _)| n == "content-length") {
        body.truncate(len.parse().unwrap());
    }
    Response {
        status,
        headers,
        body,
    }
}
