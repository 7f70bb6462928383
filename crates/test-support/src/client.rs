//! Clients: raw HTTP/1.1 bytes, hyper's HTTP/1.1 client, and a request straight into a tower
//! service.
//!
//! ```
//! use test_support::client::RawResponse;
//!
//! let res = RawResponse::parse(b"HTTP/1.1 202 Accepted\r\nContent-Length: 2\r\nX-A: 1\r\n\r\nokIGNORED");
//! assert_eq!(res.status, 202);
//! assert_eq!(res.headers, [("content-length".into(), "2".into()), ("x-a".into(), "1".into())]);
//! assert_eq!(res.body, b"ok");
//! ```
//!
//! - Raw ([`send`], [`send_raw`], [`raw_exchange`]): for what a typed client would not send
//!   (repeated or lowercase header names, methods such as `post`, several values of one
//!   header on separate lines) and to read the answer as the server sent it. Each request
//!   goes over a new connection and the answer is read to the close.
//! - hyper ([`request`], [`try_request`], [`request_from`], [`get`], [`connect`]): a new
//!   HTTP/1.1 connection per request, the [`Response`] read whole.
//! - In-process ([`call`]): a GET straight into a tower service, no socket.
use std::fmt::Debug;
use std::io;
use std::net::SocketAddr;

use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode};
use http_body::Body;
use http_body_util::{BodyExt as _, Empty, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tower::Service;

use crate::{BoxError, LIMIT};

/// The `Host` header [`send`] sends.
pub const HOST: &str = "test.local";

/// A response as read off the wire.
#[derive(Debug)]
pub struct RawResponse {
    /// The status code.
    pub status: u16,
    /// The header lines in order, names lowercased, values trimmed.
    pub headers: Vec<(String, String)>,
    /// The body: up to `Content-Length` when there is one, else all the server sent.
    pub body: Vec<u8>,
}

impl RawResponse {
    /// Parse a response from its bytes.
    ///
    /// # Panics
    ///
    /// If the bytes are not an HTTP/1.x response head: the test has failed.
    pub fn parse(bytes: &[u8]) -> Self {
        let end = bytes
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap_or_else(|| panic!("no header end in {:?}", String::from_utf8_lossy(bytes)));
        let head = std::str::from_utf8(&bytes[..end]).expect("a UTF-8 response head");
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        let status = status_line
            .split(' ')
            .nth(1)
            .and_then(|code| code.parse().ok())
            .unwrap_or_else(|| panic!("no status code in {status_line:?}"));
        let headers: Vec<(String, String)> = lines
            .map(|line| {
                let (name, value) = line
                    .split_once(':')
                    .unwrap_or_else(|| panic!("not a header line: {line:?}"));
                (name.trim().to_ascii_lowercase(), value.trim().to_owned())
            })
            .collect();
        let mut body = bytes[end + 4..].to_vec();
        if let Some((_, len)) = headers.iter().find(|(name, _)| name == "content-length") {
            body.truncate(len.parse().expect("a numeric Content-Length"));
        }
        Self {
            status,
            headers,
            body,
        }
    }

    /// The body as JSON.
    ///
    /// # Panics
    ///
    /// If it is not JSON: the test has failed.
    pub fn json(&self) -> serde_json::Value {
        json(&self.body)
    }
}

/// Send `method target` with `Host: test.local`, `Connection: close` and `headers` (each its
/// own line, as given), over a new connection, and read the answer.
///
/// # Panics
///
/// If the server cannot be reached or does not answer within [`LIMIT`].
pub async fn send(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
) -> RawResponse {
    let mut raw = format!("{method} {target} HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n");
    for (name, value) in headers {
        raw.push_str(&format!("{name}: {value}\r\n"));
    }
    raw.push_str("\r\n");
    send_raw(addr, raw.as_bytes()).await
}

/// Write `raw` over a new connection and read the answer to the close.
///
/// # Panics
///
/// If the server cannot be reached, resets the connection or does not answer within
/// [`LIMIT`].
pub async fn send_raw(addr: SocketAddr, raw: &[u8]) -> RawResponse {
    let (bytes, read) = raw_exchange(addr, raw).await;
    read.expect("read the response");
    RawResponse::parse(&bytes)
}

/// Write `raw` over a new connection and read until the server closes it: the bytes that
/// arrived, and how the reading ended (a reset is an answer some tests expect).
///
/// # Panics
///
/// If the server cannot be reached or does not close the connection within [`LIMIT`].
pub async fn raw_exchange(addr: SocketAddr, raw: &[u8]) -> (Vec<u8>, io::Result<()>) {
    let (_, bytes, read) = raw_exchange_from(addr, raw).await;
    (bytes, read)
}

/// [`send_raw`], also giving the connection's local address: the peer the server saw.
///
/// # Panics
///
/// If the server cannot be reached, resets the connection or does not answer within
/// [`LIMIT`].
pub async fn send_raw_from(addr: SocketAddr, raw: &[u8]) -> (SocketAddr, RawResponse) {
    let (local, bytes, read) = raw_exchange_from(addr, raw).await;
    read.expect("read the response");
    (local, RawResponse::parse(&bytes))
}

/// [`raw_exchange`], also giving the connection's local address.
async fn raw_exchange_from(addr: SocketAddr, raw: &[u8]) -> (SocketAddr, Vec<u8>, io::Result<()>) {
    let exchange = async {
        let mut stream = TcpStream::connect(addr)
            .await
            .expect("connect to the server");
        let local = stream.local_addr().expect("the connection's local address");
        stream.write_all(raw).await.expect("write the request");
        let mut bytes = Vec::new();
        let read = stream.read_to_end(&mut bytes).await;
        (local, bytes, read.map(|_| ()))
    };
    tokio::time::timeout(LIMIT, exchange)
        .await
        .expect("the server answers and closes in time")
}

/// A response read whole, by hyper's client or from a tower service.
#[derive(Debug)]
pub struct Response {
    /// The status code.
    pub status: StatusCode,
    /// The headers.
    pub headers: HeaderMap,
    /// The whole body.
    pub body: Bytes,
}

impl Response {
    /// The body as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON.
    ///
    /// # Panics
    ///
    /// If it is not JSON: the test has failed.
    pub fn json(&self) -> serde_json::Value {
        json(&self.body)
    }
}

fn json(body: &[u8]) -> serde_json::Value {
    serde_json::from_slice(body)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(body)))
}

/// A new HTTP/1.1 connection to `addr` with hyper's client, driven by a task of its own.
///
/// # Panics
///
/// If the server cannot be reached or the handshake fails within [`LIMIT`].
pub async fn connect<B>(addr: SocketAddr) -> SendRequest<B>
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let handshake = async {
        let stream = TcpStream::connect(addr)
            .await
            .expect("connect to the server");
        http1::handshake(TokioIo::new(stream))
            .await
            .expect("an HTTP/1.1 handshake")
    };
    let (sender, connection) = tokio::time::timeout(LIMIT, handshake)
        .await
        .expect("connected in time");
    tokio::spawn(connection);
    sender
}

/// Send `req` over a new HTTP/1.1 connection and read the answer whole.
///
/// # Panics
///
/// If the exchange fails or takes longer than [`LIMIT`].
pub async fn request<B>(addr: SocketAddr, req: Request<B>) -> Response
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    request_from(addr, req).await.1
}

/// [`request`], with the connection's local address: the client address the server saw.
///
/// # Panics
///
/// If the exchange fails or takes longer than [`LIMIT`].
pub async fn request_from<B>(addr: SocketAddr, req: Request<B>) -> (SocketAddr, Response)
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let (local, response) = exchange(addr, req).await;
    (local, response.expect("a whole response"))
}

/// [`request`], with hyper's error where the exchange fails (a truncated body, a reset): some
/// tests expect one.
///
/// # Panics
///
/// If the server cannot be reached or the exchange takes longer than [`LIMIT`].
pub async fn try_request<B>(addr: SocketAddr, req: Request<B>) -> Result<Response, hyper::Error>
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    exchange(addr, req).await.1
}

async fn exchange<B>(
    addr: SocketAddr,
    req: Request<B>,
) -> (SocketAddr, Result<Response, hyper::Error>)
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let exchange = async {
        let stream = TcpStream::connect(addr)
            .await
            .expect("connect to the server");
        let local = stream.local_addr().expect("the client's address");
        let answer = async {
            let (mut sender, connection) = http1::handshake(TokioIo::new(stream)).await?;
            tokio::spawn(connection);
            let (parts, body) = sender.send_request(req).await?.into_parts();
            let body = body.collect().await?.to_bytes();
            Ok(Response {
                status: parts.status,
                headers: parts.headers,
                body,
            })
        };
        (local, answer.await)
    };
    tokio::time::timeout(LIMIT, exchange)
        .await
        .expect("the server answers in time")
}

/// A GET of `path` with an empty body and `Host: host`, then `headers` (each its own line,
/// as given).
///
/// # Panics
///
/// If `path` or a header is invalid: the test has failed.
pub fn get_request(host: &str, path: &str, headers: &[(&str, &str)]) -> Request<Full<Bytes>> {
    let mut req = Request::get(path).header("host", host);
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    req.body(Full::new(Bytes::new())).expect("a valid request")
}

/// [`request`] of a GET of `path` with `Host: ADDR` and `headers`.
///
/// # Panics
///
/// If the exchange fails or takes longer than [`LIMIT`].
pub async fn get(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Response {
    request(addr, get_request(&addr.to_string(), path, headers)).await
}

/// A GET of `path` with an empty body straight into `service` (no socket), the answer read
/// whole. A body that fails midway reads as empty.
///
/// # Panics
///
/// If the service fails or does not answer within [`LIMIT`].
pub async fn call<S, B>(service: &S, path: &str) -> Response
where
    S: Service<Request<Empty<Bytes>>, Response = http::Response<B>> + Clone,
    S::Error: Debug,
    B: Body,
{
    let mut service = service.clone();
    let req = Request::get(path)
        .body(Empty::new())
        .expect("a GET of a valid path");
    let answer = async {
        std::future::poll_fn(|cx| service.poll_ready(cx))
            .await
            .expect("the service is ready");
        let (parts, body) = service
            .call(req)
            .await
            .expect("the service answers")
            .into_parts();
        let body = body
            .collect()
            .await
            .map(|whole| whole.to_bytes())
            .unwrap_or_default();
        Response {
            status: parts.status,
            headers: parts.headers,
            body,
        }
    };
    tokio::time::timeout(LIMIT, answer)
        .await
        .expect("the request finishes in time")
}
