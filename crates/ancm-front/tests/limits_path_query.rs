//! `LimitsLayer`'s path and query limits (IIS's `maxUrl` and `maxQueryString`), and the
//! per-request limits a gateway puts in the request's extensions.

use std::convert::Infallible;

use ancm_front::Body;
use ancm_front::limits::{LimitsLayer, RequestLimits};
use http::{Request, Response, StatusCode};
use tower::{Layer as _, ServiceExt as _};

async fn status(limits: RequestLimits, req: Request<Body>) -> StatusCode {
    let app = tower::service_fn(|_req: Request<_>| async {
        Ok::<_, Infallible>(Response::new(Body::empty()))
    });
    let resp = LimitsLayer::new(limits)
        .layer(app)
        .oneshot(req)
        .await
        .unwrap_or_else(|never| match never {});
    resp.status()
}

fn get(target: &str) -> Request<Body> {
    Request::get(target).body(Body::empty()).expect("a request")
}

#[tokio::test]
async fn path_and_query_are_counted_apart() {
    let limits = RequestLimits::default()
        .max_path_length(Some(8))
        .max_query_length(Some(4));
    assert_eq!(status(limits, get("/1234567?abcd")).await, StatusCode::OK);
    assert_eq!(
        status(limits, get("/12345678")).await,
        StatusCode::URI_TOO_LONG
    );
    assert_eq!(
        status(limits, get("/?abcde")).await,
        StatusCode::URI_TOO_LONG
    );
    // Off by default: only the whole request-target's limit applies.
    let long_path = format!("/{}", "p".repeat(5000));
    assert_eq!(
        status(RequestLimits::default(), get(&long_path)).await,
        StatusCode::OK
    );
}

#[tokio::test]
async fn limits_in_the_request_extensions_replace_the_layers_own() {
    let layer_own = RequestLimits::default().max_request_body(Some(10));
    let mut req = Request::post("/")
        .header("content-length", "100")
        .body(Body::empty())
        .expect("a request");
    assert_eq!(status(layer_own, req).await, StatusCode::PAYLOAD_TOO_LARGE);

    req = Request::post("/")
        .header("content-length", "100")
        .body(Body::empty())
        .expect("a request");
    req.extensions_mut()
        .insert(RequestLimits::default().max_request_body(Some(1000)));
    assert_eq!(status(layer_own, req).await, StatusCode::OK);

    let mut req = get("/12345678");
    req.extensions_mut()
        .insert(RequestLimits::default().max_path_length(Some(4)));
    assert_eq!(
        status(RequestLimits::default(), req).await,
        StatusCode::URI_TOO_LONG
    );
}
