//! A backend for ancm-hosting's tests: behaves like an ASP.NET Core app behind ANCM (reads
//! `ASPNETCORE_PORT`/`ASPNETCORE_TOKEN`, answers the shutdown message with 202) or misbehaves
//! on purpose, chosen by `ANCM_TEST_MODE`:
//!
//! * `normal` (default): listen on 127.0.0.1; `v6`: listen on [::1] only;
//! * `never`: never listen; `exit`: print and exit with code 3 at once;
//! * `ignore-event`: answer the shutdown message with 404; `ignore-int`: also ignore SIGINT;
//!   `ignore-all`: also ignore SIGTERM;
//! * `grandchild`: start a copy of itself in `normal` mode and wait for it (the copy listens).
//!
//! Routes: `/env` (the variables it received), `/pid`, `/slow?ms=N`, `/crash` (exit 1),
//! `/hang-up` (stop listening and close every connection, but keep running until a signal).
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
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;

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
    let ignore_event = mode.starts_with("ignore");
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let stop_tx = stop_tx.clone();
                let svc = hyper::service::service_fn(move |req| handle(req, stop_tx.clone(), ignore_event));
                let conn = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc);
                let conn = graceful.watch(conn);
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

async fn handle(
    req: Request<Incoming>,
    stop: Arc<tokio::sync::watch::Sender<bool>>,
    ignore_event: bool,
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
