//! The ANCM front bundle alone vs a bare service: nanoseconds per request (target ≤ 400 ns
//! of overhead).
//!
//! Each iteration calls the service with a prepared request (with `ConnectionInfo` and
//! `BackendTarget` extensions, as the accept loop and the backend selector leave it) and
//! drives the (immediately ready) response future. Building the request and dropping it
//! (the inner service hands it back in the response) are outside the measurement, so
//! `bundle/<case>` minus `bare/<case>` is what the bundle adds per request.
// `criterion_group!` generates an undocumented public function.
#![allow(missing_docs)]
use std::convert::Infallible;
use std::future::{Ready, ready};
use std::hint::black_box;

use ancm_front::backend::BackendTarget;
use ancm_front::{AncmConfig, AncmLayer, Body, ConnectionInfo};
use ancm_protocol::{AppPath, PairingToken};
use bytes::Bytes;
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use futures_util::FutureExt as _;
use http::{HeaderName, HeaderValue, Request, Response};
use tower::{Layer as _, Service};

/// The response body of [`Bare`]: it keeps the request, so that dropping the request (and
/// the response) happens after the measurement, for both variants.
#[derive(Default)]
struct Kept(#[allow(dead_code)] Option<Request<()>>);

impl From<Body> for Kept {
    fn from(_: Body) -> Self {
        Kept(None)
    }
}

/// The innermost service: answers at once, handing the request back in the body.
#[derive(Clone, Copy)]
struct Bare;

impl Service<Request<()>> for Bare {
    type Response = Response<Kept>;
    type Error = Infallible;
    type Future = Ready<Result<Response<Kept>, Infallible>>;
    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Infallible>> {
        std::task::Poll::Ready(Ok(()))
    }
    fn call(&mut self, req: Request<()>) -> Self::Future {
        ready(Ok(Response::new(Kept(Some(black_box(req))))))
    }
}

/// A browser's HTTP/1.1 navigation: 11 headers. The three the bundle adds push the header
/// map past its capacity (12), so this includes one map growth, as it would in hyper.
const BROWSER: &[(&str, &str)] = &[
    ("host", "www.example.com"),
    (
        "user-agent",
        "Mozilla/5.0 (X11; Linux x86_64; rv:130.0) Gecko/20100101 Firefox/130.0",
    ),
    (
        "accept",
        "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    ),
    ("accept-language", "en-US,en;q=0.5"),
    ("accept-encoding", "gzip, deflate, br"),
    ("connection", "keep-alive"),
    ("cookie", "session=abc123; theme=dark"),
    ("upgrade-insecure-requests", "1"),
    ("sec-fetch-dest", "document"),
    ("sec-fetch-mode", "navigate"),
    ("sec-fetch-site", "none"),
];

/// An API call: 6 headers, no `Connection`; the added headers fit in the map.
const API: &[(&str, &str)] = &[
    ("host", "api.example.com"),
    ("user-agent", "client/1.0"),
    ("accept", "application/json"),
    ("content-type", "application/json"),
    ("authorization", "Bearer abc.def.ghi"),
    ("x-request-id", "7f1c2a9e"),
];

fn request(
    info: &ConnectionInfo,
    target: &BackendTarget,
    base: &[(&'static str, &'static str)],
    extra: &[(&'static str, &'static str)],
) -> Request<()> {
    let mut b = Request::get("/shop/products/42?view=full");
    // Static names and values allocate nothing, like hyper's, which slice the read buffer.
    for (n, v) in base.iter().chain(extra) {
        b = b.header(HeaderName::from_static(n), HeaderValue::from_static(v));
    }
    let mut req = b.body(()).expect("request");
    req.extensions_mut().insert(info.clone());
    req.extensions_mut().insert(target.clone());
    req
}

/// Name, connection facts, request headers, extra request headers.
type Case<'a> = (
    &'a str,
    &'a ConnectionInfo,
    &'static [(&'static str, &'static str)],
    &'static [(&'static str, &'static str)],
);

fn bench(c: &mut Criterion) {
    let plain = ConnectionInfo::plain(
        "203.0.113.7:51000".parse().expect("addr"),
        "0.0.0.0:80".parse().expect("addr"),
    );
    let tls = ConnectionInfo::tls(
        "[2001:db8::1]:51000".parse().expect("addr"),
        "[::]:443".parse().expect("addr"),
        Some(Bytes::from(vec![0x30; 1200])),
    );
    let target = BackendTarget::new(
        "127.0.0.1:5000".parse().expect("addr"),
        Some(PairingToken::generate()),
    );
    let config = AncmConfig {
        app_path: AppPath::parse("/shop").expect("path"),
        ..AncmConfig::default()
    };
    let bundle = AncmLayer::new(config);

    let mut group = c.benchmark_group("front_layers");
    let cases: [Case<'_>; 4] = [
        ("browser", &plain, BROWSER, &[]),
        ("api", &plain, API, &[]),
        (
            "browser_client_xff",
            &plain,
            BROWSER,
            &[
                ("x-forwarded-for", "198.51.100.1"),
                ("x-forwarded-proto", "https"),
            ],
        ),
        (
            "browser_tls_cert_forged_token",
            &tls,
            BROWSER,
            &[("ms-aspnetcore-token", "forged")],
        ),
    ];
    for (name, info, base, extra) in cases {
        let mut bare = Bare;
        group.bench_function(format!("bare/{name}"), |b| {
            b.iter_batched(
                || request(info, &target, base, extra),
                |req| bare.call(req).now_or_never(),
                BatchSize::NumIterations(256),
            )
        });
        let mut svc = bundle.layer(Bare);
        group.bench_function(format!("bundle/{name}"), |b| {
            b.iter_batched(
                || request(info, &target, base, extra),
                |req| svc.call(req).now_or_never(),
                BatchSize::NumIterations(256),
            )
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
