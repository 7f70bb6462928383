//! The soak's load generator (`benches/load/soak.sh`): a fixed rate of mixed requests over
//! keep-alive HTTP/1.1 connections, plus a few WebSocket sessions, every failure logged with
//! its time.
//!
//! ```text
//! soak_load --addr 127.0.0.1:18080 --rate 4000 --seconds 600 --out DIR
//! soak_load --addr 127.0.0.1:18080 --rate 0 --seconds 10        # as fast as it goes
//! ```
//!
//! Debian 12 has no wrk2 and wrk cannot mix requests or hold WebSockets, hence this client.
//! Each of `--connections` keep-alive connections sends at `rate / connections` requests a
//! second on a fixed schedule (a late request is sent at once, and its latency counts from
//! when it was due, as wrk2 counts it); `--rate 0` sends back to back (the probe for the
//! maximum rate). Every `--post-every`th request is a 64 KiB POST echoed by the backend
//! (checked byte for byte), the rest are `GET /` (checked: 200, `Hello, World!`). Each of
//! `--ws-sessions` WebSocket sessions sends a message every `--ws-interval-ms` and waits for
//! its echo; a session that breaks is counted as a failure and opened again. A session the
//! server closes with a close frame (its backend stops) is opened again and counted apart,
//! as `ws-closed-by-server`: not a failure.
//!
//! A request fails when it gets another status or body, an error, or no answer within 10 s.
//! A connection the server closed while idle is replaced without counting a failure (the
//! request had not been sent). `--out DIR` receives `incidents.csv` (`unix_ms,kind,detail`:
//! every failure, and every session closed by the server) and `seconds.csv` (per second:
//! `unix_s,get_ok,post_ok,ws_ok,failed,p50_us,p99_us`). The last line on stdout sums the
//! run: `requests=N ok=N failed=N ws_closed=N seconds=S rate=R`.
//!
//! Run by `cargo bench` without arguments it prints this usage and exits: it is a tool for
//! the soak script, not a benchmark of its own.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures_util::{SinkExt as _, StreamExt as _};
use http::{Method, Request};
use http_body_util::{BodyExt as _, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

/// How long one request or WebSocket echo may take before it counts as failed.
const ANSWER_LIMIT: Duration = Duration::from_secs(10);

/// The POST body's size.
const POST_BYTES: usize = 64 * 1024;

/// What `hello_backend` answers a GET with.
const HELLO: &[u8] = b"Hello, World!";

#[derive(Debug, Clone)]
struct Args {
    addr: SocketAddr,
    /// Requests a second in all; 0: back to back.
    rate: u64,
    seconds: u64,
    connections: u64,
    post_every: u64,
    ws_sessions: u64,
    ws_interval: Duration,
    out: Option<PathBuf>,
}

impl Args {
    fn parse() -> Result<Option<Args>, String> {
        let mut args = Args {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            rate: 0,
            seconds: 10,
            connections: 32,
            post_every: 10,
            ws_sessions: 4,
            ws_interval: Duration::from_millis(100),
            out: None,
        };
        let mut addr = None;
        let mut it = std::env::args().skip(1);
        while let Some(flag) = it.next() {
            // `cargo bench` passes `--bench`.
            if flag == "--bench" {
                continue;
            }
            let value = it.next().ok_or(format!("{flag} needs a value"))?;
            let number = || {
                value
                    .parse::<u64>()
                    .map_err(|e| format!("{flag} {value}: {e}"))
            };
            match flag.as_str() {
                "--addr" => addr = Some(value.parse().map_err(|e| format!("--addr: {e}"))?),
                "--rate" => args.rate = number()?,
                "--seconds" => args.seconds = number()?,
                "--connections" => args.connections = number()?.max(1),
                "--post-every" => args.post_every = number()?,
                "--ws-sessions" => args.ws_sessions = number()?,
                "--ws-interval-ms" => args.ws_interval = Duration::from_millis(number()?.max(1)),
                "--out" => args.out = Some(PathBuf::from(value)),
                _ => return Err(format!("unknown flag {flag}")),
            }
        }
        Ok(addr.map(|addr| Args { addr, ..args }))
    }
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// What the run records, shared by every task.
#[derive(Default)]
struct Record {
    get_ok: AtomicU64,
    post_ok: AtomicU64,
    ws_ok: AtomicU64,
    /// WebSocket sessions the server closed with a close frame (a backend that stops).
    ws_closed: AtomicU64,
    failed: AtomicU64,
    /// Latencies (µs) of the current second's HTTP requests.
    latencies: Mutex<Vec<u32>>,
    /// Failures and sessions closed by the server, with their time.
    incidents: Mutex<Vec<(u64, &'static str, String)>>,
}

impl Record {
    fn ok(&self, counter: &AtomicU64, latency: Duration) {
        counter.fetch_add(1, Ordering::Relaxed);
        let micros = u32::try_from(latency.as_micros()).unwrap_or(u32::MAX);
        self.latencies
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(micros);
    }

    fn fail(&self, kind: &'static str, detail: impl Into<String>) {
        self.failed.fetch_add(1, Ordering::Relaxed);
        self.incident(kind, detail);
    }

    fn incident(&self, kind: &'static str, detail: impl Into<String>) {
        self.incidents
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((unix_ms(), kind, detail.into()));
    }

    fn total_ok(&self) -> u64 {
        self.get_ok.load(Ordering::Relaxed)
            + self.post_ok.load(Ordering::Relaxed)
            + self.ws_ok.load(Ordering::Relaxed)
    }
}

fn main() -> std::process::ExitCode {
    let args = match Args::parse() {
        Ok(Some(args)) => args,
        Ok(None) => {
            eprintln!(
                "soak_load: a tool of benches/load/soak.sh; usage: soak_load --addr HOST:PORT \
                 [--rate N] [--seconds S] [--connections C] [--post-every K] [--ws-sessions W] \
                 [--ws-interval-ms MS] [--out DIR]"
            );
            return std::process::ExitCode::SUCCESS;
        }
        Err(error) => {
            eprintln!("soak_load: {error}");
            return std::process::ExitCode::from(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run(args))
}

async fn run(args: Args) -> std::process::ExitCode {
    let record = Arc::new(Record::default());
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for index in 0..args.connections {
        tasks.push(tokio::spawn(http_client(
            index,
            args.clone(),
            record.clone(),
            stop.clone(),
        )));
    }
    for _ in 0..args.ws_sessions {
        tasks.push(tokio::spawn(ws_session(
            args.clone(),
            record.clone(),
            stop.clone(),
        )));
    }
    let seconds = report_seconds(&args, &record, started).await;
    stop.store(true, Ordering::Release);
    for task in tasks {
        let _ = tokio::time::timeout(ANSWER_LIMIT + Duration::from_secs(1), task).await;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let incidents = std::mem::take(&mut *record.incidents.lock().unwrap());
    if let Some(dir) = &args.out {
        let mut text = String::from("unix_ms,kind,detail\n");
        for (at, kind, detail) in &incidents {
            let detail = detail.replace([',', '\n', '\r'], " ");
            text.push_str(&format!("{at},{kind},{detail}\n"));
        }
        let written = std::fs::create_dir_all(dir)
            .and_then(|()| std::fs::write(dir.join("incidents.csv"), text))
            .and_then(|()| std::fs::write(dir.join("seconds.csv"), seconds));
        if let Err(error) = written {
            eprintln!("soak_load: cannot write to {}: {error}", dir.display());
            return std::process::ExitCode::from(1);
        }
    }
    let ok = record.total_ok();
    let failed = record.failed.load(Ordering::Relaxed);
    let ws_closed = record.ws_closed.load(Ordering::Relaxed);
    println!(
        "requests={} ok={ok} failed={failed} ws_closed={ws_closed} seconds={elapsed:.1} rate={:.0}",
        ok + failed,
        (ok + failed) as f64 / elapsed
    );
    std::process::ExitCode::SUCCESS
}

/// Every second until the run's end: one CSV row of what completed in it.
async fn report_seconds(args: &Args, record: &Record, started: Instant) -> String {
    let mut csv = String::from("unix_s,get_ok,post_ok,ws_ok,failed,p50_us,p99_us\n");
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.tick().await;
    let mut last = [0u64; 4];
    let end = started + Duration::from_secs(args.seconds);
    while Instant::now() < end {
        tick.tick().await;
        let now = [
            record.get_ok.load(Ordering::Relaxed),
            record.post_ok.load(Ordering::Relaxed),
            record.ws_ok.load(Ordering::Relaxed),
            record.failed.load(Ordering::Relaxed),
        ];
        let mut latencies = std::mem::take(
            &mut *record
                .latencies
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        latencies.sort_unstable();
        let quantile = |q: f64| {
            latencies
                .get(((latencies.len() as f64 * q) as usize).min(latencies.len().saturating_sub(1)))
                .copied()
                .unwrap_or(0)
        };
        csv.push_str(&format!(
            "{},{},{},{},{},{},{}\n",
            unix_ms() / 1000,
            now[0] - last[0],
            now[1] - last[1],
            now[2] - last[2],
            now[3] - last[3],
            quantile(0.5),
            quantile(0.99)
        ));
        last = now;
    }
    csv
}

async fn connect(addr: SocketAddr) -> Result<SendRequest<Full<Bytes>>, String> {
    let stream = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let _ = stream.set_nodelay(true);
    let (sender, connection) = http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    tokio::spawn(connection);
    Ok(sender)
}

/// One keep-alive connection's requests, on its share of the schedule.
async fn http_client(index: u64, args: Args, record: Arc<Record>, stop: Arc<AtomicBool>) {
    let post_body = Bytes::from(
        (0..POST_BYTES)
            .map(|i| (i % 251) as u8)
            .collect::<Vec<u8>>(),
    );
    let host = args.addr.to_string();
    let mut schedule = (args.rate > 0).then(|| {
        let period = Duration::from_secs_f64(args.connections as f64 / args.rate as f64);
        // Spread the connections' first requests over one period.
        let start =
            tokio::time::Instant::now() + period.mul_f64(index as f64 / args.connections as f64);
        let mut interval = tokio::time::interval_at(start, period);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        interval
    });
    let mut connection: Option<SendRequest<Full<Bytes>>> = None;
    let mut n = index;
    while !stop.load(Ordering::Acquire) {
        let due = match &mut schedule {
            Some(schedule) => schedule.tick().await.into_std(),
            None => Instant::now(),
        };
        if stop.load(Ordering::Acquire) {
            break;
        }
        n += 1;
        let post = args.post_every > 0 && n.is_multiple_of(args.post_every);
        // A connection the server closed while idle: replaced, nothing was sent on it.
        let reusable = match connection.take() {
            Some(mut sender) => sender.ready().await.is_ok().then_some(sender),
            None => None,
        };
        let mut sender = match reusable {
            Some(sender) => sender,
            None => match tokio::time::timeout(ANSWER_LIMIT, connect(args.addr)).await {
                Ok(Ok(sender)) => sender,
                Ok(Err(error)) => {
                    record.fail("connect", error);
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
                Err(_) => {
                    record.fail("timeout", "connect");
                    continue;
                }
            },
        };
        let req = if post {
            Request::builder()
                .method(Method::POST)
                .uri("/echo")
                .header(http::header::HOST, host.as_str())
                .header(http::header::CONTENT_TYPE, "application/octet-stream")
                .body(Full::new(post_body.clone()))
        } else {
            Request::get("/")
                .header(http::header::HOST, host.as_str())
                .body(Full::new(Bytes::new()))
        }
        .unwrap();
        let exchange = async {
            let resp = sender
                .send_request(req)
                .await
                .map_err(|e| format!("send: {e}"))?;
            let status = resp.status();
            let body = resp
                .into_body()
                .collect()
                .await
                .map_err(|e| format!("body: {e}"))?
                .to_bytes();
            Ok::<_, String>((status, body))
        };
        match tokio::time::timeout(ANSWER_LIMIT, exchange).await {
            Ok(Ok((status, body))) => {
                let expected: &[u8] = if post { &post_body } else { HELLO };
                if status == http::StatusCode::OK && body == expected {
                    let counter = if post {
                        &record.post_ok
                    } else {
                        &record.get_ok
                    };
                    record.ok(counter, due.elapsed());
                    connection = Some(sender);
                } else {
                    let kind = if post { "post-status" } else { "get-status" };
                    record.fail(kind, format!("{status} ({} body bytes)", body.len()));
                    connection = Some(sender);
                }
            }
            Ok(Err(error)) => record.fail(if post { "post-error" } else { "get-error" }, error),
            Err(_) => record.fail("timeout", if post { "POST" } else { "GET" }),
        }
    }
}

/// One WebSocket session: a message every interval, each echo awaited; opened again after a
/// failure.
async fn ws_session(args: Args, record: Arc<Record>, stop: Arc<AtomicBool>) {
    let url = format!("ws://{}/ws", args.addr);
    let mut seq = 0u64;
    while !stop.load(Ordering::Acquire) {
        let opened =
            tokio::time::timeout(ANSWER_LIMIT, tokio_tungstenite::connect_async(&url)).await;
        let mut ws = match opened {
            Ok(Ok((ws, _))) => ws,
            Ok(Err(error)) => {
                record.fail("ws-connect", error.to_string());
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
            Err(_) => {
                record.fail("timeout", "ws-connect");
                continue;
            }
        };
        let mut tick = tokio::time::interval(args.ws_interval);
        while !stop.load(Ordering::Acquire) {
            tick.tick().await;
            seq += 1;
            let text = format!("soak {seq}");
            let echoed = async {
                ws.send(Message::text(text.clone()))
                    .await
                    .map_err(|e| format!("send: {e}"))?;
                loop {
                    match ws.next().await {
                        Some(Ok(Message::Text(echo))) => {
                            return Ok(Some(echo.as_str() == text));
                        }
                        Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                        Some(Ok(Message::Close(_))) => return Ok(None),
                        Some(Ok(other)) => return Err(format!("unexpected {other:?}")),
                        Some(Err(e)) => return Err(format!("receive: {e}")),
                        None => return Err("closed without a close frame".to_owned()),
                    }
                }
            };
            match tokio::time::timeout(ANSWER_LIMIT, echoed).await {
                Ok(Ok(Some(true))) => {
                    record.ws_ok.fetch_add(1, Ordering::Relaxed);
                }
                Ok(Ok(Some(false))) => {
                    record.fail("ws-echo", "a different message came back");
                    break;
                }
                Ok(Ok(None)) => {
                    // The session ended the way a stopping server ends it: open another.
                    record.ws_closed.fetch_add(1, Ordering::Relaxed);
                    record.incident("ws-closed-by-server", "");
                    break;
                }
                Ok(Err(error)) => {
                    record.fail("ws-echo", error);
                    break;
                }
                Err(_) => {
                    record.fail("timeout", "ws-echo");
                    break;
                }
            }
        }
        let _ = ws.close(None).await;
    }
}
