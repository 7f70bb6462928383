//! What the whole `IisIntegrationLayer` costs per request: the same service bare and behind
//! the layer, one ANCM-shaped request through each (token, X-Forwarded-For/Proto, a path
//! base to strip, the socket peer). The difference is the layer's overhead.
//!
//! `cargo bench --bench iis_integration -- --warm-up-time 1 --measurement-time 3`
#![allow(missing_docs, clippy::unwrap_used)]

use std::convert::Infallible;
use std::hint::black_box;

use ancm_protocol::{AppPath, PairingToken};
use axum::Router;
use axum::body::Body;
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use futures_util::FutureExt;
use http::{Request, Response};
use iis_integration::{
    ForwardClientCertificateLayer, ForwardedHeadersLayer, IisConfig, IisIntegrationLayer, PeerAddr,
    RequirePairingTokenLayer, ShutdownEventLayer, ShutdownSignal, UsePathBaseLayer,
};
use tower::{Layer, Service, ServiceExt, service_fn};

fn request<B: Default>(token: &PairingToken) -> Request<B> {
    let mut req = Request::get("/app/api/items?id=7")
        .header("host", "www.example.com")
        .header("user-agent", "bench")
        .header("accept", "*/*")
        .header("ms-aspnetcore-token", token.header_value())
        .header("x-forwarded-for", "203.0.113.7:51000")
        .header("x-forwarded-proto", "https")
        .body(B::default())
        .unwrap();
    req.extensions_mut()
        .insert(PeerAddr("127.0.0.1:60000".parse().unwrap()));
    req
}

/// One request through `svc`; every service here completes without waiting.
fn call<S, B>(svc: &S, req: Request<B>) -> S::Response
where
    S: Service<Request<B>, Error = Infallible> + Clone,
{
    match svc.clone().oneshot(req).now_or_never() {
        Some(Ok(res)) => res,
        _ => unreachable!("the services are ready at once and infallible"),
    }
}

fn bench(c: &mut Criterion) {
    let token = PairingToken::generate();
    let config = IisConfig::new(41234, AppPath::parse("/app").unwrap(), token.clone())
        .with_auth_enabled(false);
    let layer = IisIntegrationLayer::new(&config);

    let app = service_fn(|req: Request<()>| async move {
        Ok::<_, Infallible>(Response::new(req.uri().path().len()))
    });
    let bare = app;
    let full = layer.layer(app);
    // Sanity: the layer lets the request through with its base stripped.
    assert_eq!(*call(&full, request(&token)).body(), "/api/items".len());

    let mut group = c.benchmark_group("service_fn");
    group.bench_function("bare", |b| {
        b.iter_batched(
            || request::<()>(&token),
            |req| black_box(call(&bare, req)),
            BatchSize::SmallInput,
        )
    });
    group.bench_function("iis_integration", |b| {
        b.iter_batched(
            || request::<()>(&token),
            |req| black_box(call(&full, req)),
            BatchSize::SmallInput,
        )
    });
    group.finish();

    // Each step alone, to see where the time goes.
    let mut group = c.benchmark_group("step");
    macro_rules! step {
        ($name:literal, $layer:expr) => {
            let svc = $layer.layer(app);
            group.bench_function($name, |b| {
                b.iter_batched(
                    || request::<()>(&token),
                    |req| black_box(call(&svc, req)),
                    BatchSize::SmallInput,
                )
            });
        };
    }
    step!("bare", tower::layer::util::Identity::new());
    step!(
        "path_base",
        UsePathBaseLayer::new(AppPath::parse("/app").unwrap())
    );
    step!("forwarded_headers", ForwardedHeadersLayer::iis());
    step!(
        "pairing_token",
        RequirePairingTokenLayer::new(token.clone())
    );
    step!(
        "shutdown_event",
        ShutdownEventLayer::new(ShutdownSignal::new())
    );
    step!("client_certificate", ForwardClientCertificateLayer::new());
    group.finish();

    let router = Router::new().fallback(|| async { "ok" });
    let bare = router.clone();
    let full = layer.layer(router);
    let mut group = c.benchmark_group("axum_router");
    group.bench_function("bare", |b| {
        b.iter_batched(
            || request::<Body>(&token),
            |req| black_box(call(&bare, req)),
            BatchSize::SmallInput,
        )
    });
    group.bench_function("iis_integration", |b| {
        b.iter_batched(
            || request::<Body>(&token),
            |req| black_box(call(&full, req)),
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
