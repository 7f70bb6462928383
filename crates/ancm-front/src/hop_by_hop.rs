//! Removes hop-by-hop headers from requests and responses (RFC 9110 §7.6.1, protocol §8.2),
//! keeping a WebSocket upgrade intact (protocol §1.9).
//!
//! ```
//! use ancm_front::hop_by_hop::RemoveHopByHopLayer;
//! use http::{Request, Response};
//! use tower::{Layer, ServiceExt, service_fn};
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let app = service_fn(|req: Request<()>| async move {
//!     assert!(req.headers().get("x-secret").is_none()); // named in Connection
//!     assert!(req.headers().get("keep-alive").is_none());
//!     Ok::<_, std::convert::Infallible>(Response::builder().header("connection", "close").body(()).unwrap())
//! });
//! let svc = RemoveHopByHopLayer::new().layer(app);
//! let req = Request::builder()
//!     .header("connection", "keep-alive, X-Secret")
//!     .header("keep-alive", "timeout=5")
//!     .header("x-secret", "1")
//!     .body(())
//!     .unwrap();
//! let resp = svc.oneshot(req).await.unwrap();
//! assert!(resp.headers().get("connection").is_none());
//! # });
//! ```
//!
//! Removed on requests and responses: `Connection`, every header it names (except `Host`,
//! which the forwarder must preserve, and `TE`, decided on its own), `Keep-Alive`,
//! `Proxy-Connection`, `TE` (a request's `TE` is reduced to `trailers` when it lists it),
//! `Trailer`, `Transfer-Encoding` and `Upgrade` — the list of protocol §8.2.
//!
//! Responses also lose every header named `MS-ASPNETCORE*` (any case): those belong to the
//! front–backend hop as much as the others, and a backend that sends one (an echo of the
//! pairing token, say) must not hand it to the client (protocol §8.26; ANCM passes them).
//! Requests lose them in [`module_headers`]. The same one pass over the names finds both
//! kinds.
//!
//! A request is a WebSocket upgrade when WebSockets are supported (the default; see
//! [`RemoveHopByHopLayer::without_websockets`]), its only `Upgrade` line is exactly
//! `websocket` (any case; `websocket, foo` is not) and `Connection` lists `upgrade`. Such a
//! request keeps `Upgrade` and gets `Connection: upgrade`; its `Sec-WebSocket-Extensions` is
//! removed, as ANCM does (protocol §1.9). A `101 Switching Protocols` response keeps `Upgrade`
//! and gets `Connection: upgrade`.
//!
//! `Transfer-Encoding` is framing, which hyper handles on each side: the server decodes a
//! chunked body, and the client re-frames it from the body's size hint (chunked when the
//! length is unknown, `Content-Length` when it is known).
//!
//! # `Trailer` is removed
//!
//! Contract §8.2 lists `Trailer` with the hop-by-hop headers (as RFC 2616 did; RFC 9110 treats
//! it as end-to-end), and ancm-rs follows the contract. A consequence: hyper's HTTP/1.1
//! encoder sends only the trailer fields a message's `Trailer` header announces, so trailer
//! fields cross the front only where no HTTP/1.1 hop needs the announcement (HTTP/2 client
//! to an h2c backend, and back).
//!
//! This layer must run before any layer that adds headers, so a client cannot name an added
//! header in `Connection` to delete it; [`AncmLayer`](crate::AncmLayer) guarantees that.
use std::task::{Context, Poll};

use ancm_protocol::headers::{
    KEEP_ALIVE, MODULE_PREFIX, PROXY_CONNECTION, SEC_WEBSOCKET_EXTENSIONS, is_module_header,
};
use http::header::Entry;
use http::header::{CONNECTION, HOST, TE, TRAILER, TRANSFER_ENCODING, UPGRADE};
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode};
use tower_layer::Layer;
use tower_service::Service;

use crate::future::ResponseFuture;
use crate::module_headers;
use crate::step::inner_service_accessors;

const UPGRADE_TOKEN: &str = "upgrade";
const TRAILERS: &str = "trailers";

/// Which of the names this module (and [`module_headers`](crate::module_headers)) cares
/// about a header map has, found in one pass over its names, so that absent headers cost no
/// lookup.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Found(u8);

impl Found {
    const CONNECTION: u8 = 1;
    const KEEP_ALIVE: u8 = 1 << 1;
    const PROXY_CONNECTION: u8 = 1 << 2;
    const TE: u8 = 1 << 3;
    const TRANSFER_ENCODING: u8 = 1 << 4;
    const UPGRADE: u8 = 1 << 5;
    const MODULE: u8 = 1 << 6;
    const TRAILER: u8 = 1 << 7;

    /// One pass over the names of `headers`.
    pub(crate) fn scan(headers: &HeaderMap) -> Self {
        // The custom-name constants, built once rather than per comparison.
        let (keep_alive, proxy_connection) = (KEEP_ALIVE, PROXY_CONNECTION);
        let mut bits = 0;
        for name in headers.keys() {
            // The length rules out most names before any comparison.
            bits |= match name.as_str().len() {
                2 if name == TE => Self::TE,
                7 if name == UPGRADE => Self::UPGRADE,
                7 if name == TRAILER => Self::TRAILER,
                10 if name == CONNECTION => Self::CONNECTION,
                10 if name == keep_alive => Self::KEEP_ALIVE,
                16 if name == proxy_connection => Self::PROXY_CONNECTION,
                17 if name == TRANSFER_ENCODING => Self::TRANSFER_ENCODING,
                len if len >= MODULE_PREFIX.len() && is_module_header(name) => Self::MODULE,
                _ => 0,
            };
        }
        Self(bits)
    }

    fn has(self, bit: u8) -> bool {
        self.0 & bit != 0
    }

    /// Whether an `MS-ASPNETCORE*` header is present.
    pub(crate) fn module_headers(self) -> bool {
        self.has(Self::MODULE)
    }
}

/// Clean a request's headers. Returns whether the request is a WebSocket upgrade that was
/// kept intact.
pub(crate) fn strip_request(headers: &mut HeaderMap, websockets: bool) -> bool {
    strip_request_found(headers, websockets, Found::scan(headers))
}

/// [`strip_request`] with the names already scanned.
pub(crate) fn strip_request_found(headers: &mut HeaderMap, websockets: bool, found: Found) -> bool {
    let ws_candidate =
        websockets && found.has(Found::UPGRADE) && is_websocket_upgrade_value(headers);
    let saw_upgrade = found.has(Found::CONNECTION) && strip_connection(headers);
    let is_upgrade = ws_candidate && saw_upgrade;
    strip_fixed(headers, found, !is_upgrade);
    if found.has(Found::TE) && headers.contains_key(TE) {
        let keep_trailers = headers
            .get_all(TE)
            .iter()
            .any(|v| list_contains(v, TRAILERS));
        headers.remove(TE);
        if keep_trailers {
            headers.insert(TE, HeaderValue::from_static(TRAILERS));
        }
    }
    if is_upgrade {
        headers.insert(CONNECTION, HeaderValue::from_static(UPGRADE_TOKEN));
        headers.remove(SEC_WEBSOCKET_EXTENSIONS);
    }
    is_upgrade
}

/// Clean a response's headers (hop-by-hop and `MS-ASPNETCORE*` ones); a `101` keeps its
/// upgrade.
pub(crate) fn strip_response(status: StatusCode, headers: &mut HeaderMap) {
    let found = Found::scan(headers);
    if found.module_headers() {
        module_headers::strip_present_in_response(headers);
    }
    if found.has(Found::CONNECTION) {
        strip_connection(headers);
    }
    let switching = status == StatusCode::SWITCHING_PROTOCOLS;
    strip_fixed(headers, found, !switching);
    if found.has(Found::TE) {
        headers.remove(TE);
    }
    if switching {
        headers.insert(CONNECTION, HeaderValue::from_static(UPGRADE_TOKEN));
    }
}

/// Whether the single `Upgrade` line is exactly `websocket` (9 characters, any case).
fn is_websocket_upgrade_value(headers: &HeaderMap) -> bool {
    let mut lines = headers.get_all(UPGRADE).iter();
    match (lines.next(), lines.next()) {
        (Some(v), None) => v.as_bytes().eq_ignore_ascii_case(b"websocket"),
        _ => false,
    }
}

/// Remove `Connection` and every header it names (never `Host`; `Upgrade` and `TE` are left
/// to the caller). Returns whether `Connection` listed `upgrade`.
fn strip_connection(headers: &mut HeaderMap) -> bool {
    // One lookup: the entry gives the lines and removes them all.
    let Entry::Occupied(entry) = headers.entry(CONNECTION) else {
        return false;
    };
    // Rare: several lines; copy all but the first out (no allocation for one line). The first
    // is moved out by `remove`, which drops the rest.
    let more: Vec<HeaderValue> = entry.iter().skip(1).cloned().collect();
    let first = entry.remove();
    let mut saw_upgrade = false;
    for line in std::iter::once(&first).chain(&more) {
        let Ok(text) = line.to_str() else { continue };
        for token in text.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            if token.eq_ignore_ascii_case(UPGRADE_TOKEN) {
                saw_upgrade = true;
            } else if token.eq_ignore_ascii_case(KEEP_ALIVE.as_str()) {
                // The common `Connection: keep-alive`: removed below if present.
            } else if !token.eq_ignore_ascii_case(HOST.as_str())
                && !token.eq_ignore_ascii_case(TE.as_str())
            {
                // `TE` is decided by the caller (a sender of `TE: trailers` must name it
                // here). An invalid name matches nothing; `remove(&str)` does not allocate.
                headers.remove(token);
            }
        }
    }
    saw_upgrade
}

fn strip_fixed(headers: &mut HeaderMap, found: Found, remove_upgrade: bool) {
    if found.has(Found::KEEP_ALIVE) {
        headers.remove(KEEP_ALIVE);
    }
    if found.has(Found::PROXY_CONNECTION) {
        headers.remove(PROXY_CONNECTION);
    }
    if found.has(Found::TRANSFER_ENCODING) {
        headers.remove(TRANSFER_ENCODING);
    }
    if found.has(Found::TRAILER) {
        headers.remove(TRAILER);
    }
    if remove_upgrade && found.has(Found::UPGRADE) {
        headers.remove(UPGRADE);
    }
}

pub(crate) fn list_contains(value: &HeaderValue, token: &str) -> bool {
    value.to_str().is_ok_and(|v| {
        v.split(',').any(|t| {
            t.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .eq_ignore_ascii_case(token)
        })
    })
}

/// Layer that removes hop-by-hop headers from requests and responses, and `MS-ASPNETCORE*`
/// headers from responses.
#[derive(Clone, Copy, Debug)]
pub struct RemoveHopByHopLayer {
    websockets: bool,
}

impl Default for RemoveHopByHopLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl RemoveHopByHopLayer {
    /// Remove hop-by-hop headers, keeping WebSocket upgrades.
    pub fn new() -> Self {
        Self { websockets: true }
    }

    /// Treat no request as a WebSocket upgrade (ANCM without the IIS WebSocket module):
    /// `Upgrade` is always removed.
    pub fn without_websockets(mut self) -> Self {
        self.websockets = false;
        self
    }
}

impl<S> Layer<S> for RemoveHopByHopLayer {
    type Service = RemoveHopByHop<S>;
    fn layer(&self, inner: S) -> Self::Service {
        RemoveHopByHop {
            inner,
            layer: *self,
        }
    }
}

/// Service of [`RemoveHopByHopLayer`].
#[derive(Clone, Debug)]
pub struct RemoveHopByHop<S> {
    inner: S,
    layer: RemoveHopByHopLayer,
}

impl<S> RemoveHopByHop<S> {
    /// Wrap `inner`, keeping WebSocket upgrades (the layer can turn them off).
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            layer: RemoveHopByHopLayer::new(),
        }
    }

    inner_service_accessors!();
}

impl<S, B, ResBody> Service<Request<B>> for RemoveHopByHop<S>
where
    S: Service<Request<B>, Response = Response<ResBody>>,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, ResBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        strip_request(req.headers_mut(), self.layer.websockets);
        ResponseFuture::inner(self.inner.call(req)).strip_hop_by_hop()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    fn names(h: &HeaderMap) -> Vec<&str> {
        let mut n: Vec<_> = h.keys().map(|n| n.as_str()).collect();
        n.sort_unstable();
        n
    }

    #[test]
    fn request_loses_every_hop_by_hop_header() {
        let mut h = map(&[
            ("host", "example.com"),
            ("connection", "keep-alive, X-Foo"),
            ("connection", "x-bar , host"),
            ("x-foo", "1"),
            ("x-bar", "2"),
            ("x-baz", "3"),
            ("keep-alive", "timeout=5"),
            ("proxy-connection", "keep-alive"),
            ("te", "gzip"),
            ("trailer", "x-checksum"),
            ("transfer-encoding", "chunked"),
            ("upgrade", "h2c"),
        ]);
        assert!(!strip_request(&mut h, true));
        assert_eq!(names(&h), ["host", "x-baz"]);
    }

    #[test]
    fn te_trailers_survives_alone() {
        let mut h = map(&[("te", "gzip, Trailers"), ("te", "deflate;q=0.5")]);
        strip_request(&mut h, true);
        assert_eq!(h.get_all(TE).iter().collect::<Vec<_>>(), ["trailers"]);
        let mut h = map(&[("te", "trailers;q=1"), ("connection", "TE")]);
        strip_request(&mut h, true);
        assert_eq!(h[TE], "trailers");
    }

    #[test]
    fn websocket_upgrade_is_kept() {
        let mut h = map(&[
            ("connection", "keep-alive, Upgrade"),
            ("upgrade", "WebSocket"),
            ("keep-alive", "timeout=5"),
            ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
            ("sec-websocket-extensions", "permessage-deflate"),
        ]);
        assert!(strip_request(&mut h, true));
        assert_eq!(h[CONNECTION], "upgrade");
        assert_eq!(h[UPGRADE], "WebSocket");
        assert_eq!(names(&h), ["connection", "sec-websocket-key", "upgrade"]);
    }

    #[test]
    fn not_a_websocket_upgrade() {
        for (upgrade, connection, websockets) in [
            ("websocket, foo", "upgrade", true),
            ("websockets", "upgrade", true),
            ("websocket", "keep-alive", true),
            ("websocket", "upgrade", false),
        ] {
            let mut h = map(&[
                ("connection", connection),
                ("upgrade", upgrade),
                ("sec-websocket-extensions", "x"),
            ]);
            assert!(!strip_request(&mut h, websockets), "{upgrade} {connection}");
            assert!(h.get(UPGRADE).is_none());
            assert!(h.get(CONNECTION).is_none());
            // Only an upgrade loses its extensions (protocol §1.9).
            assert!(h.get(SEC_WEBSOCKET_EXTENSIONS).is_some());
        }
        let mut h = map(&[
            ("connection", "upgrade"),
            ("upgrade", "websocket"),
            ("upgrade", "websocket"),
        ]);
        assert!(!strip_request(&mut h, true));
    }

    #[test]
    fn response_cleaning_and_101() {
        let mut h = map(&[
            ("connection", "close, x-hop"),
            ("x-hop", "1"),
            ("keep-alive", "timeout=5"),
            ("transfer-encoding", "chunked"),
            ("upgrade", "websocket"),
            ("te", "trailers"),
            ("set-cookie", "a=1"),
            ("set-cookie", "b=2"),
            ("trailer", "x-checksum"),
        ]);
        strip_response(StatusCode::OK, &mut h);
        assert_eq!(names(&h), ["set-cookie"]);
        assert_eq!(h.get_all("set-cookie").iter().count(), 2);

        let mut h = map(&[
            ("MS-ASPNETCORE-TOKEN", "leaked"),
            ("ms-aspnetcore-event", "shutdown"),
            ("ms-aspnetcore-event", "again"),
            ("Ms-AspNetCoreFoo", "x"),
            ("x-ms-aspnetcore-kept", "1"),
            ("content-type", "text/plain"),
        ]);
        strip_response(StatusCode::OK, &mut h);
        assert_eq!(names(&h), ["content-type", "x-ms-aspnetcore-kept"]);

        let mut h = map(&[
            ("connection", "Upgrade"),
            ("upgrade", "websocket"),
            ("sec-websocket-accept", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),
        ]);
        strip_response(StatusCode::SWITCHING_PROTOCOLS, &mut h);
        assert_eq!(h[CONNECTION], "upgrade");
        assert_eq!(h[UPGRADE], "websocket");
        assert!(h.contains_key("sec-websocket-accept"));
    }

    #[test]
    fn scan_finds_each_name_in_one_pass() {
        let h = map(&[
            ("Connection", "x"),
            ("KEEP-ALIVE", "1"),
            ("accept", "*/*"),
            ("MS-AspNetCore-Token", "t"),
        ]);
        let found = Found::scan(&h);
        assert!(found.has(Found::CONNECTION) && found.has(Found::KEEP_ALIVE));
        assert!(found.module_headers());
        assert!(!found.has(Found::TE) && !found.has(Found::UPGRADE));
        assert_eq!(Found::scan(&map(&[("accept", "*/*")])), Found::default());
        let all = map(&[
            ("proxy-connection", "1"),
            ("te", "1"),
            ("transfer-encoding", "chunked"),
            ("upgrade", "h2c"),
        ]);
        let found = Found::scan(&all);
        for bit in [
            Found::PROXY_CONNECTION,
            Found::TE,
            Found::TRANSFER_ENCODING,
            Found::UPGRADE,
        ] {
            assert!(found.has(bit));
        }
        assert!(!found.module_headers());
    }

    #[test]
    fn invalid_connection_tokens_are_ignored() {
        let mut h = map(&[("connection", "bad name, (x)"), ("x-a", "1")]);
        strip_request(&mut h, true);
        assert_eq!(names(&h), ["x-a"]);
    }
}
