//! A keep-alive HTTP/1.1 backend on a raw socket whose every step is scripted: how it answers
//! each request of a connection, when it closes an idle connection, and what it saw. For the
//! tests of the forwarder's keep-alive pool.
#![allow(dead_code, unreachable_pub, missing_docs)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ancm_front::AddExtensionLayer;
use ancm_front::backend::BackendTarget;
use ancm_front::forward::Forwarder;
use ancm_front::hop_by_hop::RemoveHopByHopLayer;
use test_support::server::TestServer;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tower::Layer as _;

/// What the backend does with a request head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Act {
    /// `200` with body `ok`, keeping the connection open.
    Answer,
    /// Close the connection without a byte of answer (as if it had closed just before).
    Close,
    /// Send the first line of a response head, then close.
    CloseMidHead,
}

/// When the backend closes an idle connection: after `timeout` without a request it decides
/// to, and the socket closes `lag` later (a busy server). A request arriving meanwhile is
/// never read: it is lost with the connection, the keep-alive race.
#[derive(Debug, Clone, Copy)]
pub struct KeepAlive {
    pub timeout: Duration,
    pub lag: Duration,
}

/// What the backend saw.
#[derive(Debug, Default)]
pub struct Seen {
    /// The request lines, in arrival order.
    pub requests: Mutex<Vec<String>>,
    /// Connections accepted.
    pub accepted: AtomicUsize,
    /// Connections the peer (the forwarder) closed.
    pub closed_by_peer: AtomicUsize,
    /// Requests that arrived on a connection the backend was closing for idleness.
    pub lost_to_keep_alive: AtomicUsize,
}

impl Seen {
    /// How many requests had `line` as request line (`"GET /x HTTP/1.1"`).
    pub fn count(&self, line: &str) -> usize {
        self.requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|l| *l == line)
            .count()
    }
}

/// The backend: `script(n, request line)` decides for the `n`-th request (from 1) of each
/// connection.
pub async fn scripted_backend<F>(
    keep_alive: Option<KeepAlive>,
    script: F,
) -> (SocketAddr, Arc<Seen>)
where
    F: Fn(usize, &str) -> Act + Clone + Send + Sync + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind backend");
    let addr = listener.local_addr().expect("backend addr");
    let seen = Arc::new(Seen::default());
    let shared = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            shared.accepted.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(serve(stream, keep_alive, script.clone(), shared.clone()));
        }
    });
    (addr, seen)
}

async fn serve<F>(mut stream: TcpStream, keep_alive: Option<KeepAlive>, script: F, seen: Arc<Seen>)
where
    F: Fn(usize, &str) -> Act,
{
    let mut buf = Vec::new();
    for n in 1.. {
        let next = read_head(&mut stream, &mut buf);
        let head = match keep_alive {
            Some(keep_alive) => match tokio::time::timeout(keep_alive.timeout, next).await {
                Ok(head) => head,
                Err(_) => {
                    tokio::time::sleep(keep_alive.lag).await;
                    let pending = !buf.is_empty()
                        || matches!(stream.try_read(&mut [0u8; 64]), Ok(n) if n > 0);
                    if pending {
                        seen.lost_to_keep_alive.fetch_add(1, Ordering::SeqCst);
                    }
                    return;
                }
            },
            None => next.await,
        };
        let Some(head) = head else {
            seen.closed_by_peer.fetch_add(1, Ordering::SeqCst);
            return;
        };
        let line = head.lines().next().unwrap_or_default().to_owned();
        seen.requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(line.clone());
        match script(n, &line) {
            Act::Answer => {
                let answer = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
                if stream.write_all(answer).await.is_err() {
                    return;
                }
            }
            Act::Close => return,
            Act::CloseMidHead => {
                let _ = stream.write_all(b"HTTP/1.1 200 OK\r\n").await;
                let _ = stream.flush().await;
                return;
            }
        }
    }
}

/// The next request head (up to `\r\n\r\n`); bytes after it stay in `buf`. `None` when the
/// peer closed first. Request bodies are not read: the scripts answer body-less requests
/// only.
async fn read_head(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Option<String> {
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head: Vec<u8> = buf.drain(..end + 4).collect();
            return Some(String::from_utf8_lossy(&head).into_owned());
        }
        let mut chunk = [0u8; 1024];
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// A gateway on a real socket: `forwarder` with `target` on every request, hop-by-hop headers
/// removed (the raw client's `Connection: close` is for its own connection).
pub async fn gateway_for(forwarder: &Forwarder, target: BackendTarget) -> TestServer {
    let stack =
        AddExtensionLayer::new(target).layer(RemoveHopByHopLayer::new().layer(forwarder.clone()));
    TestServer::start(stack).await
}

/// Waits up to `limit` for `cond`, polling.
pub async fn eventually(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    while !cond() {
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    true
}
