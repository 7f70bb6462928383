//! Serve an app mounted under a virtual path: strip the path base (protocol §4.4).
//!
//! ```
//! use ancm_protocol::AppPath;
//! use iis_integration::{OriginalUri, PathBase, UsePathBaseLayer};
//! use tower::{ServiceBuilder, ServiceExt, service_fn};
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let svc = ServiceBuilder::new()
//!     .layer(UsePathBaseLayer::new(AppPath::parse("/shop").unwrap()))
//!     .service(service_fn(|req: http::Request<()>| async move {
//!         let base = req.extensions().get::<PathBase>().cloned().unwrap_or_default();
//!         let original = req.extensions().get::<OriginalUri>().cloned();
//!         let text = format!("{} {} {}", base, req.uri(), original.unwrap().0);
//!         Ok::<_, std::convert::Infallible>(http::Response::new(text))
//!     }));
//! let req = http::Request::get("/SHOP/cart?id=1").body(()).unwrap();
//! let res = svc.oneshot(req).await.unwrap();
//! assert_eq!(res.body(), "/SHOP /cart?id=1 /SHOP/cart?id=1");
//! # });
//! ```
//!
//! A request under the base (ASCII case-insensitive, ending at the end of the path or before
//! a `/`) gets the remainder as its URI path, the query kept, and the matched prefix in the
//! [`PathBase`] extension in the request's own spelling. When the path equals the base, ANCM's
//! app sees an empty path; a URI path cannot be empty, so the app sees `/`. Any other request
//! passes through untouched: no 404, no redirect. Either way the URI as received is kept in
//! the [`OriginalUri`] extension. Percent-encoded bytes of the request path (except `%2F`) are
//! compared decoded, since ANCM compares the decoded path.
use std::ops::ControlFlow;
use std::sync::Arc;

use ancm_protocol::AppPath;
use bytes::Bytes;
use http::uri::PathAndQuery;
use http::{Request, StatusCode, Uri};
use tower_layer::Layer as _;

use crate::extensions::{OriginalUri, PathBase};
use crate::step::{Step, step_middleware};

/// Strips a path base; see the [module docs](self).
#[derive(Clone, Debug)]
pub struct UsePathBaseLayer {
    step: Arc<PathBaseStep>,
}

/// The service of [`UsePathBaseLayer`].
#[derive(Clone, Debug)]
pub struct UsePathBase<S> {
    inner: S,
    step: Arc<PathBaseStep>,
}

impl UsePathBaseLayer {
    /// Strip `base` (the root `/` strips nothing and only records the original URI).
    pub fn new(base: AppPath) -> Self {
        Self {
            step: Arc::new(PathBaseStep::new(base)),
        }
    }
}

impl<S> UsePathBase<S> {
    /// Wrap `inner`.
    pub fn new(inner: S, base: AppPath) -> Self {
        UsePathBaseLayer::new(base).layer(inner)
    }
}

step_middleware!(UsePathBaseLayer, UsePathBase);

#[derive(Debug)]
pub(crate) struct PathBaseStep {
    base: AppPath,
    /// The configured base, shared into [`PathBase`] when the request spells it the same way.
    base_text: Arc<str>,
}

impl PathBaseStep {
    pub(crate) fn new(base: AppPath) -> Self {
        let base_text = base.as_str().into();
        Self { base, base_text }
    }

    pub(crate) fn is_root(&self) -> bool {
        self.base.is_root()
    }
}

impl Step for PathBaseStep {
    fn apply<B>(&self, req: &mut Request<B>) -> ControlFlow<StatusCode> {
        let rewritten = if self.base.is_root() {
            None
        } else {
            self.strip(req.uri())
        };
        let original = match rewritten {
            Some((uri, path_base)) => {
                let previous = req.extensions().get::<PathBase>();
                let path_base = match previous {
                    Some(p) if !p.is_empty() => PathBase::new(&format!("{p}{path_base}")),
                    _ => path_base,
                };
                req.extensions_mut().insert(path_base);
                std::mem::replace(req.uri_mut(), uri)
            }
            None => req.uri().clone(),
        };
        req.extensions_mut().insert(OriginalUri(original));
        ControlFlow::Continue(())
    }
}

impl PathBaseStep {
    /// The rewritten URI and the matched prefix, when the path is under the base.
    fn strip(&self, uri: &Uri) -> Option<(Uri, PathBase)> {
        let path = uri.path();
        // Only escapes within the base's length can change the match (the byte after it is
        // compared undecoded either way), so the rest of the path need not be searched.
        let head = path
            .as_bytes()
            .get(..self.base_text.len())
            .unwrap_or(path.as_bytes());
        let len = if head.contains(&b'%') {
            match_len_decoded(self.base.as_str(), path)?
        } else {
            self.base.match_len(path)?
        };
        let (matched, rest) = path.split_at(len);
        let path_and_query = match (rest, uri.query()) {
            ("", None) => PathAndQuery::from_static("/"),
            ("", Some(query)) => {
                let mut text = String::with_capacity(2 + query.len());
                text.push_str("/?");
                text.push_str(query);
                PathAndQuery::from_maybe_shared(Bytes::from(text)).ok()?
            }
            // The remainder and the query are contiguous in the original: copy them at once.
            _ => {
                let whole = uri.path_and_query().map_or(path, |pq| pq.as_str());
                PathAndQuery::from_maybe_shared(Bytes::copy_from_slice(
                    whole.get(len..)?.as_bytes(),
                ))
                .ok()?
            }
        };
        let path_base = if matched == &*self.base_text {
            PathBase::from_shared(self.base_text.clone())
        } else {
            PathBase::new(matched)
        };
        let uri = if uri.scheme().is_none() && uri.authority().is_none() {
            // Origin form, what HTTP/1.1 servers see: no need to clone the old URI's parts.
            Uri::from(path_and_query)
        } else {
            let mut parts = uri.clone().into_parts();
            parts.path_and_query = Some(path_and_query);
            Uri::from_parts(parts).ok()?
        };
        Some((uri, path_base))
    }
}

/// [`AppPath::match_len`] against a path whose `%XX` escapes (other than `%2F`, which is not
/// a segment separator) are compared decoded. Returns the matched length in `path`.
fn match_len_decoded(base: &str, path: &str) -> Option<usize> {
    let base = base.as_bytes();
    let path = path.as_bytes();
    let mut i = 0;
    for &expected in base {
        let (byte, width) = match path.get(i..i + 3) {
            Some([b'%', hi, lo]) => match (hex(*hi), hex(*lo)) {
                (Some(hi), Some(lo)) if (hi << 4 | lo) != b'/' => (hi << 4 | lo, 3),
                _ => (b'%', 1),
            },
            _ => (*path.get(i)?, 1),
        };
        if !byte.eq_ignore_ascii_case(&expected) {
            return None;
        }
        i += width;
    }
    match path.get(i) {
        None | Some(b'/') => Some(i),
        Some(_) => None,
    }
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(base: &str, uri: &str) -> (String, String, String) {
        let step = PathBaseStep::new(AppPath::parse(base).unwrap());
        let mut req = Request::get(uri).body(()).unwrap();
        assert_eq!(step.apply(&mut req), ControlFlow::Continue(()));
        let base = req
            .extensions()
            .get::<PathBase>()
            .map(|p| p.to_string())
            .unwrap_or_default();
        let original = req.extensions().get::<OriginalUri>().unwrap().0.to_string();
        (base, req.uri().to_string(), original)
    }

    #[test]
    fn strips_at_segment_boundary_keeping_request_casing_and_query() {
        assert_eq!(
            run("/base", "/Base/x?q=1"),
            ("/Base".into(), "/x?q=1".into(), "/Base/x?q=1".into())
        );
        assert_eq!(run("/base", "/base").1, "/");
        assert_eq!(run("/base", "/base?a").1, "/?a");
        assert_eq!(run("/base", "/BASE/").1, "/");
        assert_eq!(run("/a/b", "/A/b/c").0, "/A/b");
        for untouched in ["/baseandsomething", "/ba", "/something", "/", "/x/base"] {
            assert_eq!(
                run("/base", untouched),
                (String::new(), untouched.into(), untouched.into())
            );
        }
        assert_eq!(
            run("/", "/base/x"),
            (String::new(), "/base/x".into(), "/base/x".into())
        );
    }

    #[test]
    fn absolute_form_keeps_authority() {
        let (base, uri, _) = run("/base", "http://example.com/base/x");
        assert_eq!(base, "/base");
        assert_eq!(uri, "http://example.com/x");
    }

    #[test]
    fn percent_encoded_paths_match_decoded() {
        assert_eq!(run("/base", "/b%61se/x").0, "/b%61se");
        assert_eq!(run("/base", "/b%61se/x").1, "/x");
        assert_eq!(run("/caf\u{e9}", "/caf%C3%A9/x").1, "/x");
        // An encoded slash is not a segment boundary.
        assert_eq!(run("/base", "/base%2Fx").0, "");
        assert_eq!(run("/a%2Fb", "/a%2Fb/x").0, "/a%2Fb");
        assert_eq!(run("/base", "/b%6").0, "");
    }

    proptest::proptest! {
        #[test]
        fn base_plus_path_is_the_original(
            base in "(/[a-zA-Z0-9]{1,4}){1,3}",
            upper in proptest::collection::vec(proptest::bool::ANY, 16),
            rest in "(/[a-z0-9.]{0,4}){0,3}",
            query in proptest::option::of("[a-z=&]{0,6}"),
        ) {
            // The request spells the base in another case.
            let spelled: String = base
                .chars()
                .zip(upper.iter().cycle())
                .map(|(c, up)| if *up { c.to_ascii_uppercase() } else { c.to_ascii_lowercase() })
                .collect();
            let path = format!("{spelled}{rest}");
            let target = match &query {
                Some(q) => format!("{path}?{q}"),
                None => path.clone(),
            };
            let (path_base, uri, original) = run(&base, &target);
            proptest::prop_assert_eq!(&path_base, &spelled);
            proptest::prop_assert_eq!(original, target);
            let uri: Uri = uri.parse().unwrap();
            let stripped = if rest.is_empty() { "" } else { uri.path() };
            proptest::prop_assert_eq!(format!("{path_base}{stripped}"), path);
            proptest::prop_assert_eq!(uri.query(), query.as_deref());
        }
    }

    proptest::proptest! {
        #[test]
        fn escapes_past_the_base_length_do_not_change_the_match(
            base in "(/[a-zA-Z0-9%]{1,4}){1,2}",
            path in "/[a-zA-Z0-9%/]{0,12}",
        ) {
            let Ok(base) = AppPath::parse(&base) else { return Ok(()) };
            let head = path.as_bytes().get(..base.as_str().len()).unwrap_or(path.as_bytes());
            if !head.contains(&b'%') {
                proptest::prop_assert_eq!(
                    base.match_len(&path),
                    match_len_decoded(base.as_str(), &path)
                );
            }
        }
    }

    #[test]
    fn nested_bases_concatenate() {
        let step = PathBaseStep::new(AppPath::parse("/b").unwrap());
        let mut req = Request::get("/b/c").body(()).unwrap();
        req.extensions_mut().insert(PathBase::new("/a"));
        assert_eq!(step.apply(&mut req), ControlFlow::Continue(()));
        assert_eq!(req.extensions().get::<PathBase>().unwrap().as_str(), "/a/b");
    }
}
