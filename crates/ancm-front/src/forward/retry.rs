//! When a request lost on a reused keep-alive connection is sent again (the forwarder's
//! module docs state the rule), and the copy that makes it possible.
use std::error::Error as _;
use std::io;
use std::time::Duration;

use http::{HeaderMap, Method, Request, Uri, Version};

use super::body::RequestBody;

/// A pooled connection reused sooner than this after its last exchange is not expected to
/// have been closed by the backend: keep-alive timeouts are seconds (Kestrel 130 s, nginx
/// 75 s, Node.js 5 s, gunicorn 2 s). Requests on such a connection keep no copy, so the busy
/// path, where connections are reused within microseconds, costs no allocation; a connection
/// idle for longer is where a backend's timeout can race the request.
pub(crate) const MIN_IDLE_FOR_REPLAY: Duration = Duration::from_millis(1);

/// What is needed to send a body-less request again: its head.
#[derive(Debug)]
pub(crate) struct Replay {
    method: Method,
    uri: Uri,
    version: Version,
    headers: HeaderMap,
}

impl Replay {
    /// A copy of `req`'s head when `req` may be sent again after a lost connection: it has no
    /// body, and its method is idempotent (RFC 9110 §9.2.2: a client may retry those
    /// automatically). `None` otherwise.
    pub(crate) fn of(req: &Request<RequestBody>) -> Option<Self> {
        (req.body().is_empty() && req.method().is_idempotent()).then(|| Self {
            method: req.method().clone(),
            uri: req.uri().clone(),
            version: req.version(),
            headers: req.headers().clone(),
        })
    }

    /// The request again, with its empty body.
    pub(crate) fn into_request(self) -> Request<RequestBody> {
        let mut req = Request::new(RequestBody::empty());
        *req.method_mut() = self.method;
        *req.uri_mut() = self.uri;
        *req.version_mut() = self.version;
        *req.headers_mut() = self.headers;
        req
    }
}

/// Whether `err` says the connection went away under the exchange (closed or reset while the
/// request was written or before the response), rather than the backend answering wrongly
/// or too slowly.
pub(crate) fn connection_lost(err: &hyper::Error) -> bool {
    if err.is_incomplete_message() || err.is_canceled() || err.is_closed() {
        return true;
    }
    let mut cause = err.source();
    while let Some(e) = cause {
        if let Some(io) = e.downcast_ref::<io::Error>() {
            return matches!(
                io.kind(),
                io::ErrorKind::ConnectionReset
                    | io::ErrorKind::ConnectionAborted
                    | io::ErrorKind::BrokenPipe
                    | io::ErrorKind::UnexpectedEof
                    | io::ErrorKind::NotConnected
            );
        }
        cause = e.source();
    }
    false
}
