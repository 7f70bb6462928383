//! Shared parts of the forwarder tests: a gateway on a real socket, backends, clients.
#![allow(dead_code, unreachable_pub, missing_docs)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use ancm_front::forward::{ForwardConfig, Forwarder};
use ancm_front::limits::{LimitsLayer, RequestLimits};
use ancm_front::{Body, RequestTimeout};
use bytes::Bytes;
use http::{Request, Response};
use http_body::Frame;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tower::{Layer as _, Service as _};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A gateway: limits + forwarder, served by hyper-util's auto server with upgrades, as a
/// real gateway would. Returns its address and the forwarder (to look at the pool).
pub async fn gateway(config: ForwardConfig, limits: RequestLimits) -> (SocketAddr, Forwarder) {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind gateway");
    let addr = listener.local_addr().expect("gateway addr");
    let forwarder = Forwarder::new(config);
    let svc = LimitsLayer::new(limits).layer(forwarder.clone());
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let _ = stream.set_nodelay(true);
            let svc = svc.clone();
            tokio::spawn(async move {
                let hyper_svc = service_fn(move |req: Request<Incoming>| {
                    let mut svc = svc.clone();
                    async move { svc.call(req).await }
                });
                let builder = auto::Builder::new(TokioExecutor::new());
                let _ = builder
                    .serve_connection_with_upgrades(TokioIo::new(stream), hyper_svc)
                    .await;
            });
        }
    });
    (addr, forwarder)
}

/// A gateway in front of `backend` with `requestTimeout` `timeout` and default limits.
pub async fn gateway_to(backend: SocketAddr, timeout: Duration) -> SocketAddr {
    let config = ForwardConfig::default()
        .default_target(backend)
        .request_timeout(RequestTimeout::After(timeout));
    gateway(config, RequestLimits::default()).await.0
}

/// A hyper backend (HTTP/1.1 and h2c) running `handler` for each request.
pub async fn hyper_backend<F, Fut>(handler: F) -> SocketAddr
where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response<Body>> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind backend");
    let addr = listener.local_addr().expect("backend addr");
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let handler = handler.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req| {
                    let fut = handler(req);
                    async move { Ok::<_, Infallible>(fut.await) }
                });
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    addr
}

/// A raw TCP backend: for each connection, read the request head, then run `script`.
pub async fn raw_backend<F, Fut>(script: F) -> SocketAddr
where
    F: Fn(TcpStream, String) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind backend");
    let addr = listener.local_addr().expect("backend addr");
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

/// Read up to the end of an HTTP head (`\r\n\r\n`), byte by byte (tests only).
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

/// Send raw bytes to `addr` and read the whole answer until the server closes (bounded).
pub async fn raw_exchange(addr: SocketAddr, request: &[u8]) -> (Vec<u8>, std::io::Result<()>) {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream.write_all(request).await.expect("write request");
    let mut out = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut out))
        .await
        .expect("server closed within 10 s");
    (out, read.map(|_| ()))
}

/// One HTTP/1.1 request with hyper's client; returns the response with its body collected.
pub async fn send<B>(
    addr: SocketAddr,
    req: Request<B>,
) -> Result<(http::response::Parts, Bytes), hyper::Error>
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let resp = client(addr).await.send_request(req).await?;
    let (parts, body) = resp.into_parts();
    let body = body.collect().await?.to_bytes();
    Ok((parts, body))
}

/// A fresh HTTP/1.1 client connection.
pub async fn client<B>(addr: SocketAddr) -> hyper::client::conn::http1::SendRequest<B>
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let stream = TcpStream::connect(addr).await.expect("connect gateway");
    let (tx, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(conn);
    tx
}

pub fn get(path: &str) -> Request<Full<Bytes>> {
    Request::get(path)
        .header("host", "app.example")
        .body(Full::new(Bytes::new()))
        .expect("request")
}

/// A body of `len` bytes in `chunk`-sized frames, produced on the fly (never held whole).
pub struct GenBody {
    remaining: u64,
    chunk: Bytes,
}

impl GenBody {
    pub fn new(len: u64, chunk_size: usize) -> Self {
        Self {
            remaining: len,
            chunk: Bytes::from(vec![b'x'; chunk_size]),
        }
    }
}

impl http_body::Body for GenBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.remaining == 0 {
            return Poll::Ready(None);
        }
        let n = (self.chunk.len() as u64).min(self.remaining) as usize;
        self.remaining -= n as u64;
        // A fresh copy per frame, like real data read from a socket.
        Poll::Ready(Some(Ok(Frame::data(Bytes::copy_from_slice(
            &self.chunk[..n],
        )))))
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0
    }
}

/// Count a body's bytes as they arrive.
pub async fn count_body<B>(mut body: B) -> Result<u64, B::Error>
where
    B: http_body::Body<Data = Bytes> + Unpin,
{
    let mut total = 0u64;
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame?.into_data() {
            total += data.len() as u64;
        }
    }
    Ok(total)
}

/// Peak resident set of this process so far, from /proc/self/status (KiB).
pub fn vm_hwm_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// The whole front as a gateway composes it (see `examples/custom_gateway.rs`): connection
/// facts → fixed backend → limits → ANCM bundle → forwarder.
pub async fn ancm_gateway(backend: SocketAddr, token: ancm_protocol::PairingToken) -> SocketAddr {
    use ancm_front::backend::BackendTarget;
    use ancm_front::conn::ConnectionInfo;
    use ancm_front::{AddExtension, AddExtensionLayer, AncmConfig, AncmLayer};
    use tower::{ServiceBuilder, ServiceExt as _};

    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind gateway");
    let addr = listener.local_addr().expect("gateway addr");
    let stack = ServiceBuilder::new()
        .layer(AddExtensionLayer::new(BackendTarget::new(
            backend,
            Some(token),
        )))
        .layer(LimitsLayer::new(RequestLimits::default()))
        .layer(AncmLayer::new(AncmConfig::default()))
        .service(Forwarder::new(ForwardConfig::default()));
    tokio::spawn(async move {
        loop {
            let Ok((stream, peer)) = listener.accept().await else {
                return;
            };
            let svc = AddExtension::new(stack.clone(), ConnectionInfo::plain(peer, addr));
            tokio::spawn(async move {
                let hyper_svc = service_fn(move |req: Request<Incoming>| svc.clone().oneshot(req));
                let builder = auto::Builder::new(TokioExecutor::new());
                let _ = builder
                    .serve_connection_with_upgrades(TokioIo::new(stream), hyper_svc)
                    .await;
            });
        }
    });
    addr
}
