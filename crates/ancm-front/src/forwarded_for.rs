//! Appends the client's `ip:port` to `X-Forwarded-For` (protocol §1.3 step 5).
//!
//! ```
//! use ancm_front::AddExtensionLayer;
//! use ancm_front::conn::ConnectionInfo;
//! use ancm_front::forwarded_for::AddForwardedForLayer;
//! use http::Request;
//! use tower::{Layer, ServiceExt, service_fn};
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let app = service_fn(|req: Request<()>| async move {
//!     Ok::<_, std::convert::Infallible>(req.headers()["x-forwarded-for"].clone())
//! });
//! let info = ConnectionInfo::plain("[2001:db8::1]:51000".parse().unwrap(), "[::]:80".parse().unwrap());
//! let svc = AddExtensionLayer::mock(info).layer(AddForwardedForLayer::appending().layer(app));
//! let req = Request::builder()
//!     .header("x-forwarded-for", "198.51.100.1")
//!     .header("x-forwarded-for", "198.51.100.2")
//!     .body(())
//!     .unwrap();
//! assert_eq!(svc.oneshot(req).await.unwrap(), "198.51.100.1, 198.51.100.2, [2001:db8::1]:51000");
//! # });
//! ```
//!
//! Several incoming header lines are combined into one value first; the result is always one
//! line. IPv6 addresses are bracketed, IPv4-mapped IPv6 peers are written as IPv4.
//!
//! Before appending, the client's items that are not addresses ([`is_for_token`]: `1.2.3.4`,
//! `1.2.3.4:80`, `::1`, `[::1]`, `[::1]:80`, or `unknown`) are dropped, the valid ones kept
//! in order: `"`, `6.6.6.6"` or a byte that is not UTF-8 never reaches the backend, where a
//! list reader that honours quotes would let it swallow the item appended here and see the
//! gateway as the client (protocol §1.3 step 5, §8.24). ANCM appends to whatever the client
//! sent. A request without the header costs no allocation, as before.
//!
//! Behind proxies the gateway trusts, [`AddForwardedForLayer::trusting_proxies`] keeps what
//! such a proxy sent (a connection marked with [`ConnectionInfo::with_trusted_proxy`]) as it
//! sent it, every item, and sanitizes what anyone else sent (protocol §8.40; ANCM has no
//! such mode).
//!
//! The client endpoint comes from the [`ConnectionInfo`] extension. A request without one is
//! passed on with `X-Forwarded-For` untouched (and a `debug` event): the layer cannot know
//! the client, and removing the header would lose what earlier proxies said.
use std::convert::Infallible;
use std::ops::ControlFlow;

use ancm_protocol::forwarded::{append_item, is_for_token};
use ancm_protocol::headers::X_FORWARDED_FOR;
use http::header::Entry;
use http::{HeaderMap, HeaderName, HeaderValue, Request};

use crate::conn::ConnectionInfo;
use crate::step::{Step, inner_service_accessors, step_middleware, with_extensions};

/// What to do with a list header (`X-Forwarded-For`, `X-Forwarded-Proto`) the client sent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ForwardedMode {
    /// Keep the client's valid items and append ours (ANCM, the default; ANCM keeps every
    /// item).
    #[default]
    Appending,
    /// Replace the client's items with ours (an edge gateway that trusts nobody in front).
    Overriding,
    /// From a peer marked trusted ([`ConnectionInfo::is_trusted_proxy`], `--trusted-proxy`):
    /// keep every item it sent, as sent, and append ours; from any other peer as
    /// [`Appending`](Self::Appending) (protocol §8.40).
    TrustingProxies,
}

/// Keeps every item: what a trusted proxy sent is passed on as it sent it.
fn keep_all(_item: &[u8]) -> bool {
    true
}

/// Append (or set) `item` in the list header `name`, keeping the client's items that `keep`
/// accepts.
pub(crate) fn set_list_item(
    headers: &mut HeaderMap,
    name: HeaderName,
    keep: fn(&[u8]) -> bool,
    item: &HeaderValue,
    mode: ForwardedMode,
    info: &ConnectionInfo,
) {
    let keep = match mode {
        ForwardedMode::Overriding => {
            headers.insert(name, item.clone());
            return;
        }
        ForwardedMode::TrustingProxies if info.is_trusted_proxy() => keep_all,
        ForwardedMode::Appending | ForwardedMode::TrustingProxies => keep,
    };
    // One lookup for reading and writing.
    match headers.entry(name) {
        Entry::Occupied(mut entry) => {
            let value = append_item(entry.iter(), keep, item.as_bytes());
            // Replaces every incoming line: the result is one line.
            entry.insert(value);
        }
        // Nothing to keep: the precomputed item is the whole value (no allocation).
        Entry::Vacant(entry) => {
            entry.insert(item.clone());
        }
    }
}

/// Apply the layer to one request's headers.
pub(crate) fn apply(
    headers: &mut HeaderMap,
    info: Option<&ConnectionInfo>,
    mode: ForwardedMode,
    include_port: bool,
) {
    let Some(info) = info else {
        tracing::debug!(
            "no ConnectionInfo on the request; X-Forwarded-For left as the client sent it"
        );
        return;
    };
    set_list_item(
        headers,
        X_FORWARDED_FOR,
        is_for_token,
        info.forwarded_for_item(include_port),
        mode,
        info,
    );
}

/// Layer that appends the client endpoint to `X-Forwarded-For`.
#[derive(Clone, Copy, Debug)]
pub struct AddForwardedForLayer {
    mode: ForwardedMode,
    include_port: bool,
}

impl Default for AddForwardedForLayer {
    fn default() -> Self {
        Self::appending()
    }
}

impl AddForwardedForLayer {
    /// Append to the valid items the client sent (ANCM's behaviour, except that ANCM keeps
    /// invalid ones too).
    pub fn appending() -> Self {
        Self {
            mode: ForwardedMode::Appending,
            include_port: true,
        }
    }

    /// Replace what the client sent.
    pub fn overriding() -> Self {
        Self {
            mode: ForwardedMode::Overriding,
            include_port: true,
        }
    }

    /// Keep what a trusted proxy sent (a connection marked with
    /// [`ConnectionInfo::with_trusted_proxy`]) as it sent it and append to it; from any other
    /// peer, as [`appending`](Self::appending). The backend must then be told to accept as
    /// many entries as there are trusted proxies in a row, plus ours (protocol §8.40).
    pub fn trusting_proxies() -> Self {
        Self {
            mode: ForwardedMode::TrustingProxies,
            include_port: true,
        }
    }

    /// Send the address without the port (ANCM always includes it).
    pub fn without_port(mut self) -> Self {
        self.include_port = false;
        self
    }
}

/// Service of [`AddForwardedForLayer`].
#[derive(Clone, Debug)]
pub struct AddForwardedFor<S> {
    inner: S,
    layer: AddForwardedForLayer,
}

impl<S> AddForwardedFor<S> {
    /// Wrap `inner`, appending `ip:port` (ANCM's behaviour; the layer has the other modes).
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            layer: AddForwardedForLayer::appending(),
        }
    }

    inner_service_accessors!();
}

step_middleware!(passing AddForwardedForLayer, AddForwardedFor);

impl Step for AddForwardedForLayer {
    type Answer = Infallible;

    fn apply<B>(&self, req: &mut Request<B>) -> ControlFlow<Infallible> {
        with_extensions(req, |headers, ext| {
            apply(headers, ext.get(), self.mode, self.include_port);
        });
        ControlFlow::Continue(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(peer: &str) -> ConnectionInfo {
        ConnectionInfo::plain(peer.parse().unwrap(), "127.0.0.1:80".parse().unwrap())
    }

    #[test]
    fn appends_to_combined_lines() {
        let mut h = HeaderMap::new();
        h.append(X_FORWARDED_FOR, "1.1.1.1".parse().unwrap());
        h.append(X_FORWARDED_FOR, " ".parse().unwrap());
        h.append(X_FORWARDED_FOR, "2.2.2.2, 3.3.3.3".parse().unwrap());
        apply(
            &mut h,
            Some(&info("[::1]:6000")),
            ForwardedMode::Appending,
            true,
        );
        let lines: Vec<_> = h.get_all(X_FORWARDED_FOR).iter().collect();
        assert_eq!(lines, ["1.1.1.1, 2.2.2.2, 3.3.3.3, [::1]:6000"]);
    }

    #[test]
    fn overriding_and_without_port() {
        let mut h = HeaderMap::new();
        h.append(X_FORWARDED_FOR, "1.1.1.1".parse().unwrap());
        h.append(X_FORWARDED_FOR, "2.2.2.2".parse().unwrap());
        apply(
            &mut h,
            Some(&info("203.0.113.7:51000")),
            ForwardedMode::Overriding,
            false,
        );
        let lines: Vec<_> = h.get_all(X_FORWARDED_FOR).iter().collect();
        assert_eq!(lines, ["203.0.113.7"]);
    }

    #[test]
    fn client_items_that_are_not_addresses_are_dropped() {
        let mut h = HeaderMap::new();
        h.append(X_FORWARDED_FOR, "\"".parse().unwrap());
        h.append(X_FORWARDED_FOR, "6.6.6.6\", 1.1.1.1".parse().unwrap());
        h.append(
            X_FORWARDED_FOR,
            HeaderValue::from_bytes(b"\xff\", unknown").unwrap(),
        );
        apply(
            &mut h,
            Some(&info("203.0.113.7:51000")),
            ForwardedMode::Appending,
            true,
        );
        let lines: Vec<_> = h.get_all(X_FORWARDED_FOR).iter().collect();
        assert_eq!(lines, ["1.1.1.1, unknown, 203.0.113.7:51000"]);
    }

    proptest::proptest! {
        /// Whatever the client sent, one line of valid tokens reaches the backend, and its
        /// last item, read with or without quote handling, is the client endpoint.
        #[test]
        fn the_appended_endpoint_is_always_the_last_item(
            lines in proptest::collection::vec(
                proptest::collection::vec(
                    proptest::prop_oneof![
                        3 => proptest::sample::select(b"\",:.[]0123456789 unknow".to_vec()),
                        1 => 0x20u8..0x7f,
                        1 => 0x80u8..=0xff,
                    ],
                    0..20,
                ),
                0..3,
            ),
        ) {
            let mut h = HeaderMap::new();
            for line in &lines {
                h.append(X_FORWARDED_FOR, HeaderValue::from_bytes(line).unwrap());
            }
            apply(&mut h, Some(&info("[2001:db8::1]:51000")), ForwardedMode::Appending, true);
            let sent: Vec<_> = h.get_all(X_FORWARDED_FOR).iter().collect();
            proptest::prop_assert_eq!(sent.len(), 1);
            let text = sent[0].to_str().unwrap();
            proptest::prop_assert!(!text.contains('"'));
            let items: Vec<_> = ancm_protocol::forwarded::list_items(text).collect();
            proptest::prop_assert_eq!(items.last(), Some(&"[2001:db8::1]:51000"));
            proptest::prop_assert!(items.iter().all(|item| is_for_token(item.as_bytes())));
            proptest::prop_assert_eq!(
                ancm_protocol::forwarded::split_last_entry(text).1,
                "[2001:db8::1]:51000"
            );
        }
    }

    #[test]
    fn a_trusted_proxys_items_are_kept_as_sent() {
        let sent = || {
            let mut h = HeaderMap::new();
            h.append(X_FORWARDED_FOR, "_hidden, 198.51.100.1".parse().unwrap());
            h.append(X_FORWARDED_FOR, "203.0.113.9".parse().unwrap());
            h
        };
        let proxy = info("10.0.0.5:40000");
        let mut h = sent();
        apply(
            &mut h,
            Some(&proxy.clone().with_trusted_proxy(true)),
            ForwardedMode::TrustingProxies,
            true,
        );
        assert_eq!(
            h[X_FORWARDED_FOR],
            "_hidden, 198.51.100.1, 203.0.113.9, 10.0.0.5:40000"
        );
        // Anyone else: sanitized, as `Appending`.
        let mut h = sent();
        apply(&mut h, Some(&proxy), ForwardedMode::TrustingProxies, true);
        assert_eq!(
            h[X_FORWARDED_FOR],
            "198.51.100.1, 203.0.113.9, 10.0.0.5:40000"
        );
    }

    #[test]
    fn without_connection_info_the_header_is_untouched() {
        let mut h = HeaderMap::new();
        h.append(X_FORWARDED_FOR, "1.1.1.1".parse().unwrap());
        apply(&mut h, None, ForwardedMode::Overriding, true);
        assert_eq!(h[X_FORWARDED_FOR], "1.1.1.1");
        let mut h = HeaderMap::new();
        apply(&mut h, None, ForwardedMode::Appending, true);
        assert!(h.is_empty());
    }
}
