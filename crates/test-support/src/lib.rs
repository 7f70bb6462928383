//! What the workspace's tests share, so that each test file says only what it checks: real
//! parts throughout (sockets on 127.0.0.1, real hyper servers and clients, real child
//! processes), every wait bounded by [`LIMIT`].
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
//!   or lowercase headers, odd methods) and read the answer as sent; hyper's client for the
//!   rest; and a request straight into a tower service, without a socket.
//! - [`backends`]: backends started in-process (around a closure, scripted byte by byte, or
//!   echoing what they saw), the Rust and python backends a site runs as a child, and the
//!   smallest forwarder to put in front of them.
//! - [`admin`]: the gateway's `/status`, read and waited on.
//! - [`body`]: bodies for streaming tests: generated on the fly, counted as they arrive.
//! - [`load`]: a few keep-alive clients sending GETs in a loop, every outcome recorded with
//!   its time, for tests that break something under load.
//! - [`process`]: child processes: binaries of the workspace built once per run, free ports,
//!   waiting for a listener, a log line or an exit, and the `ancm` gateway (`ancm run`,
//!   `ancm doctor`) as a child.
//! - [`site`]: temporary site folders with a `web.config`, for the Rust echo backend
//!   (ancm-hosting's `test_backend` example) or the python one.
//! - [`dotnet`]: .NET publish folders, a fake `dotnet` host, `ancm` without the test's .NET
//!   variables.
//! - `windows` (Windows only): what a test asks Windows directly (whether a process runs,
//!   its own token and the account it names, whether Wine runs it).
//!
//! It is a dev-dependency only, of any package of the workspace, and depends on none of
//! them, so every package's tests can use it without a cycle (and without unifying features
//! of our crates across test runs). What needs our crates' types stays in the test files, or
//! comes in as a closure or a function: [`backends::Proxy`] is told by a function where each
//! request goes.
// Unsafe code only in the Windows FFI module.
#![deny(unsafe_code)]

use std::error::Error;
use std::time::Duration;

pub mod admin;
pub mod backends;
pub mod body;
pub mod client;
pub mod dotnet;
pub mod load;
pub mod process;
pub mod server;
pub mod site;
#[cfg(windows)]
pub mod windows;

/// The bound on any single wait of a test helper: a network step, a child starting or
/// stopping, an answer. Generous, because the machines that run the tests are shared: it
/// bounds a hang, it does not measure speed.
pub const LIMIT: Duration = Duration::from_secs(60);

/// The error type of boxed bodies and services.
pub type BoxError = Box<dyn Error + Send + Sync>;
