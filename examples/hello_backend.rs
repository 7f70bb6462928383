//! A minimal hyper backend on one tokio thread, for load tests (`benches/load/`).
//!
//! `GET` → `Hello, World!`; `POST` → the request body echoed back, streamed; `GET /bytes/N` →
//! N zero bytes, streamed (for download tests). Listens on `127.0.0.1:$ASPNETCORE_PORT`, or
//! on the address given as the first argument (default `127.0.0.1:5001`).
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::{Either, Full};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response};
use tokio::net::TcpListener;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

const CHUNK: usize = 64 * 1024;
static ZEROS: [u8; CHUNK] = [0; CHUNK];

/// A body of `remaining` zero bytes in 64 KiB frames.
struct Zeros {
    remaining: u64,
}

impl hyper::body::Body for Zeros {
    type Data = Bytes;
    type Error = Infallible;
    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.remaining == 0 {
            return Poll::Ready(None);
        }
        let n = self.remaining.min(CHUNK as u64);
        self.remaining -= n;
        Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(
            &ZEROS[..n as usize],
        )))))
    }
    fn size_hint(&self) -> hyper::body::SizeHint {
        hyper::body::SizeHint::with_exact(self.remaining)
    }
}

type ResBody = Either<Full<Bytes>, Either<Incoming, Zeros>>;

async fn handle(req: Request<Incoming>) -> Result<Response<ResBody>, Infallible> {
    if req.method() == hyper::Method::POST {
        let len = req.headers().get(hyper::header::CONTENT_LENGTH).cloned();
        let mut resp = Response::new(Either::Right(Either::Left(req.into_body())));
        if let Some(len) = len {
            resp.headers_mut()
                .insert(hyper::header::CONTENT_LENGTH, len);
        }
        return Ok(resp);
    }
    if let Some(Ok(n)) = req
        .uri()
        .path()
        .strip_prefix("/bytes/")
        .map(str::parse::<u64>)
    {
        return Ok(Response::new(Either::Right(Either::Right(Zeros {
            remaining: n,
        }))));
    }
    Ok(Response::new(Either::Left(Full::new(Bytes::from_static(
        b"Hello, World!",
    )))))
}

fn main() -> Result<(), BoxError> {
    let addr: SocketAddr = match std::env::var(ancm_protocol::env::PORT) {
        Ok(port) if !port.is_empty() => SocketAddr::from(([127, 0, 0, 1], port.parse()?)),
        _ => std::env::args()
            .nth(1)
            .as_deref()
            .unwrap_or("127.0.0.1:5001")
            .parse()?,
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let listener = TcpListener::bind(addr).await?;
        eprintln!("hello_backend listening on http://{addr}");
        loop {
            let (stream, _) = listener.accept().await?;
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let io = hyper_util::rt::TokioIo::new(stream);
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(io, hyper::service::service_fn(handle))
                    .await;
            });
        }
    })
}
