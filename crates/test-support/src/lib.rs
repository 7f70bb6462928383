//! What the workspace's tests share, so that each test file says only what it checks: real
//! parts throughout (sockets on 127.0.0.1, a real hyper server, real clients), every wait
//! bounded by [`LIMIT`].
//!
//! ```
//! use std::convert::Infallible;
//! use test_support::{client, server::TestServer};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let app = tower::service_fn(|req: http::Request<hyper::body::Incoming>| async move {
//!     let text = format!("{} {}", req.method(), req.uri());
//!     Ok::<_, Infallible>(http::Response::new(http_body_util::Full::new(bytes::Bytes::from(text))))
//! });
//! let server = TestServer::start(app).await;
//! let res = client::send(server.addr(), "GET", "/hello?x=1", &[]).await;
//! assert_eq!((res.status, res.body.as_slice()), (200, &b"GET /hello?x=1"[..]));
//! server.shutdown().await;
//! # });
//! ```
//!
//! - [`server`]: serve a tower service on a real hyper server (HTTP/1.1 and HTTP/2, with
//!   upgrades), optionally a service per connection built from the peer address, with a
//!   graceful stop.
//! - [`client`]: a raw HTTP/1.1 client for tests that must control the exact bytes (repeated
//!   or lowercase headers, odd methods) and read the answer as sent.
//!
//! It is a dev-dependency only, of any crate of the workspace, and depends on none of them,
//! so every crate's tests can use it without a cycle. What only one crate's tests need (an
//! app that reports what a layer did, say) stays in that crate's tests; what several share
//! comes here, one module per kind of part: servers, clients, and, as tests that start child
//! processes move here, a `process` module for them.
#![forbid(unsafe_code)]

use std::time::Duration;

pub mod client;
pub mod server;

/// The bound on any single wait of a test helper: a network step, a stop, an answer.
pub const LIMIT: Duration = Duration::from_secs(20);
