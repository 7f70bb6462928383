//! A minimal hyper backend on one tokio thread, for load tests (`benches/load/`).
//!
//! `GET` → `Hello, World!`; `POST` → the request body echoed back, streamed; `GET /bytes/N` →
//! N zero bytes, streamed (for download tests); `GET /ws` asking for a WebSocket → every
//! message echoed (for the soak). Listens on the Unix-domain socket `$ANCM_UNIX_SOCKET` when
//! `ancm` names one, else on `127.0.0.1:$ASPNETCORE_PORT`, else on the address given as the
//! first argument (default `127.0.0.1:5001`; `unix:PATH` for a Unix-domain socket).
//!
//! Under `ancm` it stops the way an ASP.NET Core app does: ANCM's shutdown event (with the
//! pairing token) is answered `202`, then it accepts no more connections, lets the open ones
//! finish their requests, closes its WebSocket sessions (1001, going away), and exits 0 when
//! all are done (10 s at most).
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use ancm_protocol::{AppPath, headers, shutdown};
use bytes::Bytes;
use futures_util::{SinkExt as _, StreamExt as _};
use http::{HeaderValue, Method, StatusCode, header};
use http_body_util::{Either, Empty, Full};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use iis_integration::{FrontListener, FrontStream};
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

const CHUNK: usize = 64 * 1024;
static ZEROS: [u8; CHUNK] = [0; CHUNK];

/// How long open connections may take to finish after the shutdown event.
const DRAIN_LIMIT: Duration = Duration::from_secs(10);

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

type ResBody = Either<Full<Bytes>, Either<Incoming, Either<Zeros, Empty<Bytes>>>>;

/// What ANCM told this process: where its shutdown event comes, with which token.
struct Ancm {
    shutdown_path: String,
    token: Option<String>,
    /// Notified once the shutdown event was accepted.
    stop: Notify,
    /// Sent when the shutdown begins. Every connection's task and WebSocket session holds a
    /// receiver: the drain waits until all are dropped.
    drain: watch::Sender<()>,
}

impl Ancm {
    fn from_env() -> Self {
        let app_path = std::env::var(ancm_protocol::env::APPL_PATH)
            .ok()
            .and_then(|path| AppPath::parse(&path).ok())
            .unwrap_or_else(AppPath::root);
        Self {
            shutdown_path: shutdown::request_path(&app_path),
            token: std::env::var(ancm_protocol::env::TOKEN).ok(),
            stop: Notify::new(),
            drain: watch::Sender::new(()),
        }
    }

    /// ANCM's shutdown event, with this process's token.
    fn is_shutdown(&self, req: &Request<Incoming>) -> bool {
        let event = req.headers().get(headers::EVENT).map(HeaderValue::as_bytes);
        req.method() == Method::POST
            && req.uri().path().eq_ignore_ascii_case(&self.shutdown_path)
            && event.is_some_and(|e| e.eq_ignore_ascii_case(shutdown::EVENT_SHUTDOWN.as_bytes()))
            && self.token.as_ref().is_some_and(|token| {
                req.headers()
                    .get(headers::TOKEN)
                    .is_some_and(|sent| sent.as_bytes() == token.as_bytes())
            })
    }
}

fn status(status: StatusCode) -> Response<ResBody> {
    let mut resp = Response::new(Either::Right(Either::Right(Either::Right(Empty::new()))));
    *resp.status_mut() = status;
    resp
}

async fn handle(ancm: Arc<Ancm>, req: Request<Incoming>) -> Result<Response<ResBody>, Infallible> {
    if req.method() == Method::POST {
        if ancm.is_shutdown(&req) {
            ancm.stop.notify_one();
            return Ok(status(shutdown::ACCEPTED));
        }
        let len = req.headers().get(header::CONTENT_LENGTH).cloned();
        let mut resp = Response::new(Either::Right(Either::Left(req.into_body())));
        if let Some(len) = len {
            resp.headers_mut().insert(header::CONTENT_LENGTH, len);
        }
        return Ok(resp);
    }
    if req.uri().path() == "/ws" {
        return Ok(websocket(&ancm, req));
    }
    if let Some(Ok(n)) = req
        .uri()
        .path()
        .strip_prefix("/bytes/")
        .map(str::parse::<u64>)
    {
        return Ok(Response::new(Either::Right(Either::Right(Either::Left(
            Zeros { remaining: n },
        )))));
    }
    Ok(Response::new(Either::Left(Full::new(Bytes::from_static(
        b"Hello, World!",
    )))))
}

/// Switches to the WebSocket protocol and echoes every text and binary message on a task of
/// its own (pings and the close handshake are answered by tungstenite). At shutdown the
/// session is closed with 1001 (going away), as an ASP.NET Core app closes its sockets when
/// it stops.
fn websocket(ancm: &Ancm, mut req: Request<Incoming>) -> Response<ResBody> {
    let asks_websocket = req
        .headers()
        .get(header::UPGRADE)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"websocket"));
    let accept = match req.headers().get(header::SEC_WEBSOCKET_KEY) {
        Some(key) if asks_websocket => derive_accept_key(key.as_bytes()),
        _ => return status(StatusCode::BAD_REQUEST),
    };
    let Ok(accept) = HeaderValue::from_str(&accept) else {
        return status(StatusCode::BAD_REQUEST);
    };
    let upgrade = hyper::upgrade::on(&mut req);
    let mut draining = ancm.drain.subscribe();
    tokio::spawn(async move {
        let Ok(upgraded) = upgrade.await else { return };
        let mut ws =
            WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None).await;
        loop {
            tokio::select! {
                message = ws.next() => match message {
                    Some(Ok(message)) if message.is_text() || message.is_binary() => {
                        if ws.send(message).await.is_err() {
                            return;
                        }
                    }
                    Some(Ok(_)) => {}
                    _ => return,
                },
                _ = draining.changed() => break,
            }
        }
        let away = CloseFrame {
            code: CloseCode::Away,
            reason: "shutting down".into(),
        };
        if ws.close(Some(away)).await.is_ok() {
            // The client's close reply ends the session (bounded).
            let _ = tokio::time::timeout(Duration::from_secs(1), async {
                while let Some(Ok(_)) = ws.next().await {}
            })
            .await;
        }
    });
    let mut resp = status(StatusCode::SWITCHING_PROTOCOLS);
    let headers = resp.headers_mut();
    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    headers.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
    resp
}

/// Where to listen.
enum Listen {
    Tcp(SocketAddr),
    Unix(std::path::PathBuf),
}

fn main() -> Result<(), BoxError> {
    let var = |name| std::env::var(name).ok().filter(|v: &String| !v.is_empty());
    let listen = if let Some(path) = var(ancm_protocol::env::ANCM_UNIX_SOCKET) {
        Listen::Unix(path.into())
    } else if let Some(port) = var(ancm_protocol::env::PORT) {
        Listen::Tcp(SocketAddr::from(([127, 0, 0, 1], port.parse()?)))
    } else {
        let arg = std::env::args().nth(1);
        let arg = arg.as_deref().unwrap_or("127.0.0.1:5001");
        match arg.strip_prefix("unix:") {
            Some(path) => Listen::Unix(path.into()),
            None => Listen::Tcp(arg.parse()?),
        }
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(serve(listen))
}

async fn serve(listen: Listen) -> Result<(), BoxError> {
    let ancm = Arc::new(Ancm::from_env());
    let listener = match listen {
        Listen::Tcp(addr) => {
            eprintln!("hello_backend listening on http://{addr}");
            FrontListener::Tcp(TcpListener::bind(addr).await?)
        }
        #[cfg(unix)]
        Listen::Unix(path) => {
            eprintln!("hello_backend listening on unix:{}", path.display());
            FrontListener::Unix(tokio::net::UnixListener::bind(path)?)
        }
        #[cfg(not(unix))]
        Listen::Unix(path) => {
            return Err(format!("cannot listen on unix:{}: Unix only", path.display()).into());
        }
    };
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => accepted?,
            () = ancm.stop.notified() => break,
        };
        match &stream {
            FrontStream::Tcp(tcp) => {
                let _ = tcp.set_nodelay(true);
            }
            #[cfg(unix)]
            FrontStream::Unix(_) => {}
        }
        let ancm = ancm.clone();
        let mut draining = ancm.drain.subscribe();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| handle(ancm.clone(), req));
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades();
            let mut conn = pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => return,
                _ = draining.changed() => {}
            }
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        });
    }
    drop(listener);
    eprintln!("hello_backend: shutdown event accepted; finishing open connections");
    ancm.drain.send_replace(());
    if tokio::time::timeout(DRAIN_LIMIT, ancm.drain.closed())
        .await
        .is_err()
    {
        eprintln!("hello_backend: connections still open after {DRAIN_LIMIT:?}; exiting");
    }
    Ok(())
}
