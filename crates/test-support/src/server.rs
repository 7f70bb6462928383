//! A real hyper server on a loopback socket around a tower service.
//!
//! ```
//! use std::convert::Infallible;
//! use std::net::SocketAddr;
//! use test_support::{client, server::TestServer};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! // A service per connection, built from the peer address: the way to pass connect info.
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
//! let server = TestServer::on(listener, |peer| {
//!     tower::service_fn(move |_req: http::Request<hyper::body::Incoming>| async move {
//!         let body = http_body_util::Full::new(bytes::Bytes::from(peer.to_string()));
//!         Ok::<_, Infallible>(http::Response::new(body))
//!     })
//! });
//! let res = client::send(server.addr(), "GET", "/", &[]).await;
//! let peer: SocketAddr = String::from_utf8(res.body).unwrap().parse().unwrap();
//! assert!(peer.ip().is_loopback());
//! # });
//! ```
//!
//! Connections are served as `axum::serve` serves them (hyper-util's automatic HTTP/1.1 or
//! HTTP/2 builder, upgrades and extended CONNECT enabled), each in a task of the server, so
//! dropping the [`TestServer`] ends them all; [`TestServer::shutdown`] stops accepting and
//! lets the requests in flight finish first; [`TestServer::detach`] keeps it serving for the
//! rest of the test.
use std::net::{Ipv4Addr, SocketAddr};

use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::{JoinHandle, JoinSet};
use tower::Service;

use crate::{BoxError, LIMIT};

/// A server on a loopback port, serving until [`shutdown`](Self::shutdown) or drop.
#[derive(Debug)]
pub struct TestServer {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl TestServer {
    /// Serve `service` on every connection, on a fresh `127.0.0.1` port.
    pub async fn start<S, B>(service: S) -> Self
    where
        S: Service<Request<Incoming>, Response = Response<B>> + Clone + Send + 'static,
        S::Future: Send + 'static,
        S::Error: Into<BoxError>,
        B: http_body::Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<BoxError>,
    {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .expect("a loopback port to listen on");
        Self::on(listener, move |_peer| service.clone())
    }

    /// Serve on `listener` (a fresh loopback port, an IPv6 or a dual-stack one), on every
    /// connection the service `make` builds from the peer address: the way to give the
    /// service connect info.
    pub fn on<M, S, B>(listener: TcpListener, mut make: M) -> Self
    where
        M: FnMut(SocketAddr) -> S + Send + 'static,
        S: Service<Request<Incoming>, Response = Response<B>> + Clone + Send + 'static,
        S::Future: Send + 'static,
        S::Error: Into<BoxError>,
        B: http_body::Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<BoxError>,
    {
        let addr = listener.local_addr().expect("the listener's address");
        let (stop, mut stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let mut builder = auto::Builder::new(TokioExecutor::new());
            builder.http2().enable_connect_protocol();
            let graceful = GracefulShutdown::new();
            let mut connections = JoinSet::new();
            loop {
                tokio::select! {
                    accepted = listener.accept() => {
                        // A failed accept (the peer gave up already) concerns that one only.
                        let Ok((stream, peer)) = accepted else { continue };
                        // Small writes go out at once, as from a real server: no test waits
                        // on Nagle's algorithm.
                        let _ = stream.set_nodelay(true);
                        let service = TowerToHyperService::new(make(peer));
                        let connection = builder
                            .serve_connection_with_upgrades(TokioIo::new(stream), service)
                            .into_owned();
                        let connection = graceful.watch(connection);
                        connections.spawn(async move {
                            // A client that goes away mid-request is the test's business.
                            let _ = connection.await;
                        });
                    }
                    Some(_) = connections.join_next(), if !connections.is_empty() => {}
                    _ = &mut stopped => break,
                }
            }
            drop(listener);
            let _ = tokio::time::timeout(LIMIT, graceful.shutdown()).await;
        });
        Self {
            addr,
            stop: Some(stop),
            task,
        }
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Keep serving until the test's runtime ends, and return the address: for a helper that
    /// hands out an address only (a backend the test starts and never stops).
    pub fn detach(self) -> SocketAddr {
        let addr = self.addr;
        tokio::spawn(async move {
            let _serving = self;
            std::future::pending::<()>().await;
        });
        addr
    }

    /// Stop accepting, let the requests in flight finish (for [`LIMIT`] at most; then they
    /// are cut), and return once every connection is closed.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        // The accept loop bounds its own wait; a panic in it is the test's failure.
        if let Err(error) = (&mut self.task).await
            && error.is_panic()
        {
            std::panic::resume_unwind(error.into_panic());
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        // Ends the accept loop and, with its task set, every connection.
        self.task.abort();
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::sync::Arc;
    use std::time::Duration;

    use bytes::Bytes;
    use http_body_util::Full;
    use tokio::sync::Notify;

    use super::*;
    use crate::client;

    fn text(body: &str) -> Response<Full<Bytes>> {
        Response::new(Full::new(Bytes::copy_from_slice(body.as_bytes())))
    }

    #[tokio::test]
    async fn serves_ipv6_and_tells_each_connection_its_peer() {
        let listener = TcpListener::bind("[::1]:0").await.expect("IPv6 loopback");
        let server = TestServer::on(listener, |peer: SocketAddr| {
            tower::service_fn(move |_req: Request<Incoming>| async move {
                Ok::<_, Infallible>(text(&peer.to_string()))
            })
        });
        let first = client::send(server.addr(), "GET", "/", &[]).await;
        let second = client::send(server.addr(), "GET", "/", &[]).await;
        let peers = [first, second].map(|res| {
            let text = String::from_utf8(res.body).expect("UTF-8");
            text.parse::<SocketAddr>().expect("a socket address")
        });
        assert!(peers.iter().all(|peer| peer.ip().to_string() == "::1"));
        assert_ne!(peers[0].port(), peers[1].port(), "one connection each");
    }

    #[tokio::test]
    async fn shutdown_finishes_the_request_in_flight_and_refuses_new_ones() {
        let arrived = Arc::new(Notify::new());
        let release = Arc::new(Notify::new());
        let app = {
            let (arrived, release) = (arrived.clone(), release.clone());
            tower::service_fn(move |_req: Request<Incoming>| {
                let (arrived, release) = (arrived.clone(), release.clone());
                async move {
                    arrived.notify_one();
                    release.notified().await;
                    Ok::<_, Infallible>(text("finished"))
                }
            })
        };
        let server = TestServer::start(app).await;
        let addr = server.addr();
        let in_flight = tokio::spawn(client::send(addr, "GET", "/slow", &[]));
        tokio::time::timeout(LIMIT, arrived.notified())
            .await
            .expect("the request arrives");
        let stopping = tokio::spawn(server.shutdown());
        let refused = async {
            while tokio::net::TcpStream::connect(addr).await.is_ok() {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        };
        tokio::time::timeout(LIMIT, refused)
            .await
            .expect("new connections are refused while the request is in flight");
        release.notify_one();
        let res = in_flight.await.expect("the client task");
        assert_eq!((res.status, res.body.as_slice()), (200, &b"finished"[..]));
        tokio::time::timeout(LIMIT, stopping)
            .await
            .expect("the server stops in time")
            .expect("the stop task");
    }
}
