//! Load from a few keep-alive HTTP/1.1 clients, each sending small GETs in a loop and
//! recording every outcome (status and body, or the error) with when it was sent and when it
//! ended, for tests that break something under load and then count what failed.
//!
//! ```
//! use std::convert::Infallible;
//! use std::time::Duration;
//! use test_support::load::Load;
//! use test_support::server::TestServer;
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let app = tower::service_fn(|_req: http::Request<hyper::body::Incoming>| async {
//!     Ok::<_, Infallible>(http::Response::new(http_body_util::Full::new(bytes::Bytes::from("ok"))))
//! });
//! let server = TestServer::start(app).await;
//! let load = Load::start(server.addr(), "/", 2, Duration::from_millis(5));
//! tokio::time::sleep(Duration::from_millis(100)).await;
//! let outcomes = load.stop().await;
//! assert!(!outcomes.is_empty());
//! assert!(outcomes.iter().all(|o| o.status() == Some(200)));
//! server.shutdown().await;
//! # });
//! ```
//!
//! A connection the server closed while it was idle is replaced before the next request and
//! records nothing (a client of a keep-alive connection does that); a request that was sent
//! and got no answer, or not within [`REQUEST_LIMIT`], is recorded as failed, and so is a
//! connect that failed.
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt as _, Empty};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

use crate::LIMIT;

/// The longest one request of the load may take, connect included, before it is recorded as
/// failed (`"timeout"`): a hang, not a slow answer.
pub const REQUEST_LIMIT: Duration = Duration::from_secs(10);

/// How long a client waits after a failed connect before the next one.
const RECONNECT_PAUSE: Duration = Duration::from_millis(10);

/// What one request of the load came to.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Which client sent it (0-based).
    pub client: usize,
    /// When it was sent (or its connect began), since the load started.
    pub sent: Duration,
    /// When it ended, since the load started.
    pub done: Duration,
    /// The status and whole body, or what went wrong.
    pub result: Result<(u16, Bytes), String>,
}

impl Outcome {
    /// The status, when a response came.
    pub fn status(&self) -> Option<u16> {
        self.result.as_ref().ok().map(|(status, _)| *status)
    }

    /// The body as JSON, when a response came and its body is JSON.
    pub fn json(&self) -> Option<serde_json::Value> {
        let (_, body) = self.result.as_ref().ok()?;
        serde_json::from_slice(body).ok()
    }

    /// Whether it was on its way at `at`: sent no later and ended no earlier.
    pub fn spans(&self, at: Duration) -> bool {
        self.sent <= at && at <= self.done
    }
}

/// Clients sending GETs until [`Load::stop`].
#[derive(Debug)]
pub struct Load {
    started: Instant,
    stop: Arc<AtomicBool>,
    clients: Vec<JoinHandle<Vec<Outcome>>>,
}

impl Load {
    /// Start `clients` clients, each on a keep-alive connection to `addr`, each sending
    /// `GET path` and, after each answer, waiting `pause` before the next. Must be called
    /// inside a Tokio runtime.
    pub fn start(addr: SocketAddr, path: &str, clients: usize, pause: Duration) -> Load {
        let started = Instant::now();
        let stop = Arc::new(AtomicBool::new(false));
        let clients = (0..clients)
            .map(|client| {
                let stop = stop.clone();
                let path = path.to_owned();
                tokio::spawn(run_client(client, addr, path, pause, started, stop))
            })
            .collect();
        Load {
            started,
            stop,
            clients,
        }
    }

    /// The time since the load started: the clock of [`Outcome::sent`] and
    /// [`Outcome::done`].
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Stop every client after its current request; all outcomes, in the order they were
    /// sent.
    ///
    /// # Panics
    ///
    /// If a client does not finish within [`LIMIT`] or panicked.
    pub async fn stop(self) -> Vec<Outcome> {
        self.stop.store(true, Ordering::Release);
        let mut outcomes = Vec::new();
        for client in self.clients {
            let recorded = tokio::time::timeout(LIMIT, client)
                .await
                .expect("a load client stops in time")
                .expect("a load client ends normally");
            outcomes.extend(recorded);
        }
        outcomes.sort_by_key(|outcome| outcome.sent);
        outcomes
    }
}

async fn run_client(
    client: usize,
    addr: SocketAddr,
    path: String,
    pause: Duration,
    started: Instant,
    stop: Arc<AtomicBool>,
) -> Vec<Outcome> {
    let mut outcomes = Vec::new();
    let mut connection: Option<SendRequest<Empty<Bytes>>> = None;
    let host = addr.to_string();
    while !stop.load(Ordering::Acquire) {
        let sent = started.elapsed();
        // A connection the server closed while idle is replaced: nothing was lost.
        let reusable = match connection.take() {
            Some(mut sender) => sender.ready().await.is_ok().then_some(sender),
            None => None,
        };
        let mut sender = match reusable {
            Some(sender) => sender,
            None => match tokio::time::timeout(REQUEST_LIMIT, connect(addr)).await {
                Ok(Ok(sender)) => sender,
                failed => {
                    let error = match failed {
                        Ok(Err(error)) => format!("connect: {error}"),
                        _ => "timeout".to_owned(),
                    };
                    outcomes.push(Outcome {
                        client,
                        sent,
                        done: started.elapsed(),
                        result: Err(error),
                    });
                    tokio::time::sleep(RECONNECT_PAUSE.max(pause)).await;
                    continue;
                }
            },
        };
        let req = Request::get(path.as_str())
            .header(http::header::HOST, host.as_str())
            .body(Empty::new())
            .expect("a valid GET");
        let sent = started.elapsed();
        let exchange = async {
            let (parts, body) = sender.send_request(req).await?.into_parts();
            let body = body.collect().await?.to_bytes();
            Ok::<_, hyper::Error>((parts.status.as_u16(), body))
        };
        let result = match tokio::time::timeout(REQUEST_LIMIT, exchange).await {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(error)) => Err(error.to_string()),
            Err(_) => Err("timeout".to_owned()),
        };
        let failed = result.is_err();
        outcomes.push(Outcome {
            client,
            sent,
            done: started.elapsed(),
            result,
        });
        if !failed {
            connection = Some(sender);
        }
        tokio::time::sleep(pause).await;
    }
    outcomes
}

async fn connect(addr: SocketAddr) -> Result<SendRequest<Empty<Bytes>>, String> {
    let stream = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let _ = stream.set_nodelay(true);
    let (sender, connection) = http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(connection);
    Ok(sender)
}
