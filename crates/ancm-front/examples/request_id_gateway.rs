//! A gateway of your own, composed from `ancm-front` plus one layer written here: each request
//! gets an `x-request-id` (replacing any the client sent), the backend sees it, and the
//! response carries it back. Served with hyper-util (HTTP/1.1 and h2c, upgrades on).
//!
//! ```text
//! cargo run -p ancm-front --example request_id_gateway -- LISTEN UPSTREAM [TOKEN]
//! cargo run -p ancm-front --example request_id_gateway -- 127.0.0.1:8080 127.0.0.1:5000 0f6c...
//! ```
//!
//! `UPSTREAM` is the backend's `127.0.0.1:PORT`, `TOKEN` the pairing token it expects (its
//! `ASPNETCORE_TOKEN`); without one no `MS-ASPNETCORE-TOKEN` is sent.
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, ready};

use ancm_front::conn::ConnectionInfo;
use ancm_front::forward::{ForwardConfig, Forwarder};
use ancm_front::{AddExtensionLayer, AncmConfig, AncmLayer, BackendTarget};
use ancm_protocol::PairingToken;
use http::{HeaderName, HeaderValue, Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use pin_project_lite::pin_project;
use tower::{Layer, Service, ServiceBuilder, ServiceExt as _};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), BoxError> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: request_id_gateway LISTEN UPSTREAM [TOKEN]";
    let listen: SocketAddr = args.next().ok_or(usage)?.parse()?;
    let upstream: SocketAddr = args.next().ok_or(usage)?.parse()?;
    let token = args
        .next()
        .map(|token| PairingToken::new(&token))
        .transpose()?;

    // Outermost first: the backend to use, our request id, the ANCM front layers (hop-by-hop,
    // MS-ASPNETCORE-* removal, pairing token, X-Forwarded-For/Proto, ...), the forwarder.
    let gateway = ServiceBuilder::new()
        .layer(AddExtensionLayer::new(BackendTarget::new(upstream, token)))
        .layer(RequestIdLayer::default())
        .layer(AncmLayer::new(AncmConfig::default()))
        .service(Forwarder::new(ForwardConfig::default()));

    let listener = tokio::net::TcpListener::bind(listen).await?;
    eprintln!("listening on http://{listen}, forwarding to http://{upstream}");
    let server = auto::Builder::new(TokioExecutor::new());
    loop {
        // The front layers read the client's endpoint from the connection's facts.
        let (stream, connection) = match listener.accept().await {
            Ok((stream, _)) => match ConnectionInfo::from_tcp(&stream) {
                Ok(connection) => (stream, connection),
                Err(error) => {
                    eprintln!("connection without addresses: {error}");
                    continue;
                }
            },
            Err(error) => {
                eprintln!("accept failed: {error}");
                continue;
            }
        };
        let peer = connection.peer_addr();
        let service = AddExtensionLayer::new(connection).layer(gateway.clone());
        let service = hyper::service::service_fn(move |request| service.clone().oneshot(request));
        let server = server.clone();
        tokio::spawn(async move {
            let io = TokioIo::new(stream);
            if let Err(error) = server.serve_connection_with_upgrades(io, service).await {
                eprintln!("connection from {peer}: {error}");
            }
        });
    }
}

/// The header the layer sets on the request and copies onto the response.
const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Gives every request a new `x-request-id` and puts it on the response too.
#[derive(Clone, Debug, Default)]
struct RequestIdLayer {
    next: Arc<AtomicU64>,
}

impl<S> Layer<S> for RequestIdLayer {
    type Service = RequestId<S>;

    fn layer(&self, inner: S) -> RequestId<S> {
        RequestId {
            inner,
            next: Arc::clone(&self.next),
        }
    }
}

/// The service of [`RequestIdLayer`].
#[derive(Clone, Debug)]
struct RequestId<S> {
    inner: S,
    next: Arc<AtomicU64>,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for RequestId<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = RequestIdFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        let id = HeaderValue::from(self.next.fetch_add(1, Ordering::Relaxed));
        request.headers_mut().insert(X_REQUEST_ID, id.clone());
        RequestIdFuture {
            inner: self.inner.call(request),
            id: Some(id),
        }
    }
}

pin_project! {
    /// The response future of [`RequestId`].
    ///
    /// # Panics
    ///
    /// Polled again after it returned `Ready`.
    struct RequestIdFuture<F> {
        #[pin]
        inner: F,
        id: Option<HeaderValue>,
    }
}

impl<F, ResBody, E> Future for RequestIdFuture<F>
where
    F: Future<Output = Result<Response<ResBody>, E>>,
{
    type Output = Result<Response<ResBody>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut response = ready!(this.inner.poll(cx))?;
        let id = this
            .id
            .take()
            .expect("ResponseFuture polled after completion");
        response.headers_mut().insert(X_REQUEST_ID, id);
        Poll::Ready(Ok(response))
    }
}
