//! A backend for ancm-hosting's tests: behaves like an ASP.NET Core app behind ANCM (reads
//! `ASPNETCORE_PORT`/`ASPNETCORE_TOKEN`, answers the shutdown message with 202) or misbehaves
//! on purpose, chosen by `ANCM_TEST_MODE`:
//!
//! * `normal` (default): listen on 127.0.0.1; `v6`: listen on [::1] only;
//! * `never`: never listen; `exit`: print and exit with code 3 at once;
//! * `ignore-event`: answer the shutdown message with 404; `ignore-int`: also ignore SIGINT;
//!   `ignore-all`: also ignore SIGTERM;
//! * `grandchild`: start a copy of itself in `normal` mode and wait for it (the copy listens).
//! * `echo`: answer every request with JSON of what it saw (below), for the gateway's
//!   end-to-end tests; `leaky`: answer every request with module headers a front must not
//!   pass on.
//!
//! Routes: `/env` (the variables it received), `/pid`, `/slow?ms=N`, `/crash` (exit 1),
//! `/hang-up` (stop listening and close every connection, but keep running until a signal).
//!
//! In `echo` mode the routes are matched by their end, whatever the application path: `…/crash`
//! exits at once with code 3, `…/slow?ms=N` waits N ms (500 by default) and `…/ws` is a
//! WebSocket echo; every other request gets `200` and
//! `{"pid", "method", "path" (the request target), "headers" ([name, value] pairs in order),
//! "env" (the ASPNETCORE_* and TEST_* variables), "body_len"}`.
//! In `leaky` mode every request gets `200` `leaky` with the headers `MS-ASPNETCORE-TOKEN` (its
//! token), `ms-aspnetcore-event: shutdown`, `Ms-AspNetCore-Whatever: x` and `X-Kept: 1`.
//!
//! ```no_run
//! // cargo run -p ancm-hosting --example test_backend  (with ASPNETCORE_PORT set)
//! ```
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt as _, StreamExt as _};
use http::{HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;

/// Set by `/hang-up`: after closing its listener and connections the process stays.
static HUNG_UP: AtomicBool = AtomicBool::new(false);

const ENV_NAMES: &[&str] = &[
    "ASPNETCORE_PORT",
    "ASPNETCORE_TOKEN",
    "ASPNETCORE_APPL_PATH",
    "ASPNETCORE_IIS_HTTPAUTH",
    "ASPNETCORE_IIS_WEBSOCKETS_SUPPORTED",
    "ASPNETCORE_HOSTINGSTARTUPASSEMBLIES",
    "ANCM_TEST_VALUE",
];

fn main() {
    let mode = std::env::var("ANCM_TEST_MODE").unwrap_or_else(|_| "normal".into());
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("runtime: {e}");
            std::process::exit(2);
        }
    };
    let code = rt.block_on(run(mode));
    std::process::exit(code);
}

async fn run(mode: String) -> i32 {
    let port: u16 = std::env::var("ASPNETCORE_PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    println!(
        "test backend pid={} mode={mode} port={port}",
        std::process::id()
    );
    eprintln!("test backend stderr line");
    // Registering a handler replaces the default action, i.e. the signal is ignored.
    #[cfg(unix)]
    let _ignored = {
        use tokio::signal::unix::{SignalKind, signal};
        let int = matches!(mode.as_str(), "ignore-int" | "ignore-all")
            .then(|| signal(SignalKind::interrupt()));
        let term = (mode == "ignore-all").then(|| signal(SignalKind::terminate()));
        (int, term)
    };
    match mode.as_str() {
        "never" => loop {
            tokio::time::sleep(Duration::from_secs(3600)).await;
        },
        "exit" => {
            println!("early exit output");
            return 3;
        }
        "grandchild" => {
            let Ok(exe) = std::env::current_exe() else {
                return 2;
            };
            let status = tokio::process::Command::new(exe)
                .env("ANCM_TEST_MODE", "normal")
                .status()
                .await;
            return status.ok().and_then(|s| s.code()).unwrap_or(1);
        }
        _ => {}
    }
    if let Ok(ms) = std::env::var("ANCM_TEST_DELAY_MS").map(|v| v.parse::<u64>().unwrap_or(0)) {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    let addr: SocketAddr = if mode == "v6" {
        SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, port))
    } else {
        SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, port))
    };
    let listener = match tokio::net::TcpListener::bind(addr).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("bind {addr}: {e}");
            return 4;
        }
    };
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let stop_tx = Arc::new(stop_tx);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    // HTTP/1.1 only, with upgrades for the WebSocket echo.
    let server = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new()).http1_only();
    let routes = match mode.as_str() {
        "echo" => Routes::Echo,
        "leaky" => Routes::Leaky,
        _ => Routes::Test,
    };
    let ignore_event = mode.starts_with("ignore");
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let stop_tx = stop_tx.clone();
                let svc = hyper::service::service_fn(move |req| handle(req, stop_tx.clone(), ignore_event, routes));
                let conn = server.serve_connection_with_upgrades(TokioIo::new(stream), svc);
                let conn = graceful.watch(conn.into_owned());
                tokio::spawn(async move { let _ = conn.await; });
            }
            _ = stop_rx.changed() => break,
        }
    }
    drop(listener);
    let _ = tokio::time::timeout(Duration::from_secs(10), graceful.shutdown()).await;
    if HUNG_UP.load(Ordering::SeqCst) {
        println!("test backend no longer listening; running until a signal");
        std::future::pending::<()>().await;
    }
    println!("test backend exiting gracefully");
    0
}

/// What the requests other than the shutdown message get.
#[derive(Clone, Copy)]
enum Routes {
    /// `/env`, `/pid`, `/slow`, `/hang-up`, `/crash`.
    Test,
    /// What it saw, as JSON.
    Echo,
    /// Module headers in the response.
    Leaky,
}

async fn handle(
    req: Request<Incoming>,
    stop: Arc<tokio::sync::watch::Sender<bool>>,
    ignore_event: bool,
    routes: Routes,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path().to_owned();
    let reply = |status: StatusCode, body: String| {
        let mut r = Response::new(Full::new(Bytes::from(body)));
        *r.status_mut() = status;
        Ok(r)
    };
    if req.method() == http::Method::POST && path.to_ascii_lowercase().ends_with("/iisintegration")
    {
        let event = req
            .headers()
            .get("ms-aspnetcore-event")
            .and_then(|v| v.to_str().ok());
        let token = req
            .headers()
            .get("ms-aspnetcore-token")
            .and_then(|v| v.to_str().ok());
        let expected = std::env::var("ASPNETCORE_TOKEN").ok();
        let appl = std::env::var("ASPNETCORE_APPL_PATH").unwrap_or_else(|_| "/".into());
        let want_path = if appl == "/" {
            "/iisintegration".to_owned()
        } else {
            format!("{appl}/iisintegration")
        };
        if !ignore_event
            && event == Some("shutdown")
            && token.is_some()
            && token == expected.as_deref()
            && path == want_path
        {
            println!("shutdown message accepted");
            let _ = stop.send(true);
            return reply(StatusCode::ACCEPTED, String::new());
        }
        return reply(StatusCode::NOT_FOUND, "ignored".into());
    }
    match routes {
        Routes::Test => {}
        Routes::Echo => return Ok(echo(req).await),
        Routes::Leaky => return Ok(leaky()),
    }
    match path.as_str() {
        "/env" => {
            let mut out = format!("PID={}\n", std::process::id());
            for name in ENV_NAMES {
                if let Ok(v) = std::env::var(name) {
                    out.push_str(&format!("{name}={v}\n"));
                }
            }
            if let Ok(cwd) = std::env::current_dir() {
                out.push_str(&format!("CWD={}\n", cwd.display()));
            }
            let token_ok = req
                .headers()
                .get("ms-aspnetcore-token")
                .and_then(|v| v.to_str().ok())
                == std::env::var("ASPNETCORE_TOKEN").ok().as_deref();
            out.push_str(&format!("TOKEN_HEADER_OK={token_ok}\n"));
            reply(StatusCode::OK, out)
        }
        "/pid" => reply(StatusCode::OK, std::process::id().to_string()),
        "/slow" => {
            let ms = req
                .uri()
                .query()
                .and_then(|q| q.strip_prefix("ms="))
                .and_then(|v| v.parse().ok())
                .unwrap_or(500);
            tokio::time::sleep(Duration::from_millis(ms)).await;
            reply(StatusCode::OK, std::process::id().to_string())
        }
        "/hang-up" => {
            HUNG_UP.store(true, Ordering::SeqCst);
            let _ = stop.send(true);
            reply(StatusCode::OK, "hanging up".into())
        }
        "/crash" => {
            println!("crashing on request");
            std::process::exit(1);
        }
        _ => reply(StatusCode::OK, format!("hello from {}", std::process::id())),
    }
}

/// The `echo` mode's answer to `req`.
async fn echo(mut req: Request<Incoming>) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_owned();
    if path.ends_with("/crash") {
        println!("crashing on request");
        std::process::exit(3);
    }
    let websocket = req
        .headers()
        .get(http::header::UPGRADE)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"websocket"));
    if path.ends_with("/ws") && websocket {
        return websocket_echo(&mut req);
    }
    if path.ends_with("/slow") {
        let ms = req
            .uri()
            .query()
            .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("ms=")))
            .and_then(|v| v.parse().ok())
            .unwrap_or(500);
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    let (parts, body) = req.into_parts();
    let body_len = body.collect().await.map_or(0, |b| b.to_bytes().len());
    let headers: Vec<[String; 2]> = parts
        .headers
        .iter()
        .map(|(name, value)| {
            [
                name.as_str().to_owned(),
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            ]
        })
        .collect();
    let env: serde_json::Map<String, serde_json::Value> = std::env::vars()
        .filter(|(name, _)| name.starts_with("ASPNETCORE_") || name.starts_with("TEST_"))
        .map(|(name, value)| (name, value.into()))
        .collect();
    let seen = serde_json::json!({
        "pid": std::process::id(),
        "method": parts.method.as_str(),
        "path": parts.uri.to_string(),
        "headers": headers,
        "env": env,
        "body_len": body_len,
    });
    let mut res = Response::new(Full::new(Bytes::from(seen.to_string())));
    res.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    res
}

/// Switch `req` to a WebSocket that echoes every message until the peer closes it.
fn websocket_echo(req: &mut Request<Incoming>) -> Response<Full<Bytes>> {
    let Some(key) = req.headers().get("sec-websocket-key") else {
        let mut res = Response::new(Full::new(Bytes::from_static(b"no Sec-WebSocket-Key")));
        *res.status_mut() = StatusCode::BAD_REQUEST;
        return res;
    };
    let accept = derive_accept_key(key.as_bytes());
    let upgrade = hyper::upgrade::on(req);
    tokio::spawn(async move {
        let Ok(upgraded) = upgrade.await else { return };
        let mut ws =
            WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None).await;
        while let Some(Ok(message)) = ws.next().await {
            if (message.is_text() || message.is_binary()) && ws.send(message).await.is_err() {
                return;
            }
        }
    });
    let mut res = Response::new(Full::new(Bytes::new()));
    *res.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = res.headers_mut();
    headers.insert(http::header::UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(
        http::header::CONNECTION,
        HeaderValue::from_static("Upgrade"),
    );
    if let Ok(accept) = HeaderValue::from_str(&accept) {
        headers.insert("sec-websocket-accept", accept);
    }
    res
}

/// The `leaky` mode's answer: module headers a front must remove, and one it must keep.
fn leaky() -> Response<Full<Bytes>> {
    let mut res = Response::new(Full::new(Bytes::from_static(b"leaky")));
    let headers = res.headers_mut();
    if let Some(token) = std::env::var("ASPNETCORE_TOKEN")
        .ok()
        .and_then(|token| HeaderValue::try_from(token).ok())
    {
        headers.insert("MS-ASPNETCORE-TOKEN", token);
    }
    headers.insert("ms-aspnetcore-event", HeaderValue::from_static("shutdown"));
    headers.insert("Ms-AspNetCore-Whatever", HeaderValue::from_static("x"));
    headers.insert("X-Kept", HeaderValue::from_static("1"));
    res
}
