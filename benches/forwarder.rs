//! The forwarder's round trip over loopback against a direct call to the same backend.
//!
//! Three threads with one current-thread tokio runtime each, as in a pinned deployment: the
//! backend (hyper hello-world), the gateway, and the client driving the benchmark. Variants:
//!
//! * `direct`: client → backend;
//! * `forwarder`: client → gateway ([`Forwarder`] alone) → backend;
//! * `ancm_stack`: the same with the limits layer, the ANCM bundle and connection facts in
//!   front, as `examples/custom_gateway.rs` composes them;
//! * `legacy_client`: a gateway that forwards with hyper-util's legacy `Client` instead of
//!   the forwarder's own pool (the comparison behind the pool's design).
//!
//! `forwarder - direct` is the proxy's added latency per request at concurrency 1. After
//! the criterion groups, the gateway thread's CPU time per request (utime + stime from
//! `/proc/thread-self/stat`) is printed for each gateway over 20 000 requests
//! (`FWD_BENCH_REQUESTS`), at concurrency 1 and 32.
#![allow(missing_docs)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use ancm_front::backend::BackendTarget;
use ancm_front::conn::ConnectionInfo;
use ancm_front::forward::{ForwardConfig, Forwarder};
use ancm_front::limits::{LimitsLayer, RequestLimits};
use ancm_front::{AddExtension, AddExtensionLayer, AncmConfig, AncmLayer, Body};
use ancm_protocol::PairingToken;
use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use http_body_util::{BodyExt as _, Empty};
use hyper::body::Incoming;
use hyper::client::conn::http1;
use hyper::{Request, Response};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::{TcpListener, TcpStream};
use tower::{ServiceBuilder, ServiceExt as _};

/// Run `setup` on a new thread with its own current-thread runtime; returns what it sends
/// back plus a handle to spawn more work (CPU probes) on that runtime.
fn runtime_thread<F, Fut>(setup: F) -> (SocketAddr, tokio::runtime::Handle)
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = SocketAddr> + 'static,
{
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let addr = rt.block_on(setup());
        let _ = tx.send((addr, rt.handle().clone()));
        rt.block_on(std::future::pending::<()>());
    });
    rx.recv().expect("runtime thread started")
}

type BoxFuture = std::pin::Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;
/// A per-connection request handler.
type Handler = Box<dyn Fn(Request<Incoming>) -> BoxFuture + Send + Sync>;

/// Serve HTTP/1.1 on a fresh loopback port; `svc` makes each connection's handler.
async fn serve<S>(svc: S) -> SocketAddr
where
    S: Fn(SocketAddr) -> Handler + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        loop {
            let Ok((stream, peer)) = listener.accept().await else {
                return;
            };
            let _ = stream.set_nodelay(true);
            let handler = svc(peer);
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(handler);
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .with_upgrades()
                    .await;
            });
        }
    });
    addr
}

fn backend() -> SocketAddr {
    runtime_thread(|| {
        serve(|_| {
            Box::new(|_req| Box::pin(async { Ok(Response::new(Body::from("Hello, World!"))) }))
        })
    })
    .0
}

fn forwarder_gateway(backend: SocketAddr) -> (SocketAddr, tokio::runtime::Handle) {
    runtime_thread(move || {
        let fwd = Forwarder::new(ForwardConfig::default().default_target(backend));
        serve(move |_| {
            let fwd = fwd.clone();
            Box::new(move |req| Box::pin(fwd.clone().oneshot(req)))
        })
    })
}

fn ancm_gateway(backend: SocketAddr) -> (SocketAddr, tokio::runtime::Handle) {
    runtime_thread(move || {
        let target = BackendTarget::new(backend, Some(PairingToken::generate()));
        let stack = ServiceBuilder::new()
            .layer(AddExtensionLayer::new(target))
            .layer(LimitsLayer::new(RequestLimits::default()))
            .layer(AncmLayer::new(AncmConfig::default()))
            .service(Forwarder::new(ForwardConfig::default()));
        serve(move |peer| {
            let local: SocketAddr = ([127, 0, 0, 1], 0).into();
            let svc = AddExtension::new(stack.clone(), ConnectionInfo::plain(peer, local));
            Box::new(move |req| Box::pin(svc.clone().oneshot(req)))
        })
    })
}

fn legacy_gateway(backend: SocketAddr) -> (SocketAddr, tokio::runtime::Handle) {
    runtime_thread(move || {
        let client: Client<_, Incoming> = Client::builder(TokioExecutor::new()).build_http();
        serve(move |_| {
            let client = client.clone();
            Box::new(move |mut req: Request<Incoming>| {
                let client = client.clone();
                Box::pin(async move {
                    let pq = req
                        .uri()
                        .path_and_query()
                        .map_or("/", |pq| pq.as_str())
                        .to_owned();
                    *req.uri_mut() = format!("http://{backend}{pq}").parse().expect("uri");
                    Ok(match client.request(req).await {
                        Ok(resp) => resp.map(Body::new),
                        Err(_) => Response::builder()
                            .status(502)
                            .body(Body::empty())
                            .expect("502"),
                    })
                })
            })
        })
    })
}

async fn connect(addr: SocketAddr) -> http1::SendRequest<Empty<Bytes>> {
    let stream = TcpStream::connect(addr).await.expect("connect");
    let _ = stream.set_nodelay(true);
    let (tx, conn) = http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(conn);
    tx
}

async fn round_trip(tx: &mut http1::SendRequest<Empty<Bytes>>) {
    tx.ready().await.expect("ready");
    let req = Request::get("/")
        .header("host", "bench.example")
        .body(Empty::new())
        .expect("req");
    let resp = tx.send_request(req).await.expect("response");
    assert_eq!(resp.status(), 200);
    let body = resp.into_body().collect().await.expect("body").to_bytes();
    assert_eq!(body.len(), 13);
}

/// The thread CPU time (utime + stime) of the runtime behind `handle`, in seconds.
fn thread_cpu(handle: &tokio::runtime::Handle) -> f64 {
    let (tx, rx) = mpsc::channel();
    handle.spawn(async move {
        let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap_or_default();
        // Fields after the `(comm)`: state is field 3; utime and stime are fields 14 and 15.
        let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
        let fields: Vec<&str> = after.split_whitespace().collect();
        let ticks: u64 = fields.get(11).and_then(|v| v.parse().ok()).unwrap_or(0)
            + fields.get(12).and_then(|v| v.parse().ok()).unwrap_or(0);
        let _ = tx.send(ticks);
    });
    // USER_HZ is 100 on Linux.
    rx.recv().map_or(0.0, |ticks| ticks as f64 / 100.0)
}

fn bench(c: &mut Criterion) {
    let client_rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let backend = backend();
    let gateways = [
        ("forwarder", forwarder_gateway(backend)),
        ("ancm_stack", ancm_gateway(backend)),
        ("legacy_client", legacy_gateway(backend)),
    ];

    let mut group = c.benchmark_group("round_trip");
    group.measurement_time(Duration::from_secs(5));
    // The backend straight, then through each gateway.
    let targets = std::iter::once(("direct", backend))
        .chain(gateways.iter().map(|(name, (addr, _))| (*name, *addr)));
    for (name, addr) in targets {
        let mut tx = client_rt.block_on(connect(addr));
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                client_rt.block_on(async {
                    let start = Instant::now();
                    for _ in 0..iters {
                        round_trip(&mut tx).await;
                    }
                    start.elapsed()
                })
            })
        });
    }
    group.finish();

    // Gateway CPU per request, at concurrency 1 (each request pays its own wake-ups) and at
    // concurrency 32 (wake-ups shared, as under wrk -c50).
    // FWD_BENCH_REQUESTS raises the count for steadier figures on a busy machine.
    let requests: u32 = std::env::var("FWD_BENCH_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    for conns in [1u32, 32] {
        let per_conn = requests / conns;
        let total = per_conn * conns;
        for (name, (addr, handle)) in &gateways {
            let addr = *addr;
            let mut senders = Vec::new();
            for _ in 0..conns {
                let mut tx = client_rt.block_on(connect(addr));
                client_rt.block_on(round_trip(&mut tx));
                senders.push(tx);
            }
            let before = thread_cpu(handle);
            let start = Instant::now();
            client_rt.block_on(async {
                let mut tasks = tokio::task::JoinSet::new();
                for mut tx in senders {
                    tasks.spawn(async move {
                        for _ in 0..per_conn {
                            round_trip(&mut tx).await;
                        }
                    });
                }
                while tasks.join_next().await.is_some() {}
            });
            let wall = start.elapsed();
            let cpu = thread_cpu(handle) - before;
            println!(
                "{name}: c={conns}: gateway CPU {:.2} µs/request, {:.0} requests/s ({total} requests)",
                cpu * 1e6 / f64::from(total),
                f64::from(total) / wall.as_secs_f64()
            );
        }
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
