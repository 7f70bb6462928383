//! Why forwarding failed.
use std::error::Error as StdError;
use std::fmt;
use std::time::Duration;

use crate::BoxError;

/// A failure before the backend's response head reached the forwarder: the client gets a
/// response page (502.3 in most cases, see [`ForwardError::status`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ForwardError {
    /// The request carried no [`BackendTarget`](crate::BackendTarget) and the forwarder has no
    /// default target.
    #[error("no backend target for the request")]
    NoTarget,
    /// The TCP connect to the backend failed (e.g. connection refused).
    #[error("cannot connect to the backend")]
    Connect(#[source] std::io::Error),
    /// The TCP connect did not finish within `requestTimeout`.
    #[error("connecting to the backend timed out after {0:?}")]
    ConnectTimeout(Duration),
    /// The HTTP handshake on a new backend connection failed.
    #[error("HTTP handshake with the backend failed")]
    Handshake(#[source] hyper::Error),
    /// The backend's response head did not arrive within `requestTimeout`.
    #[error("the backend sent no response head within {0:?}")]
    ResponseTimeout(Duration),
    /// Sending the request or reading the response head failed.
    #[error("the backend exchange failed")]
    Backend(#[source] hyper::Error),
    /// The backend answered 101 but the client connection cannot be upgraded (HTTP/2 client,
    /// or a server run without upgrade support).
    #[error("the backend switched protocols but the client connection cannot be upgraded")]
    UpgradeUnavailable,
    /// The [`ConnectionLimit`](super::ConnectionLimit) was reached and no connection came
    /// free within its wait.
    #[error("all {max} backend connections stayed in use for {waited:?}")]
    ConnectionLimit {
        /// The cap.
        max: usize,
        /// How long the request waited.
        waited: Duration,
    },
}

impl ForwardError {
    /// The status the client gets: 413 when the request body went over the
    /// [limit](crate::limits), 400 when reading the client's body failed (protocol §1.7),
    /// 503 when no backend connection came free (503.2 page), else 502 (502.3 page).
    pub fn status(&self) -> http::StatusCode {
        if let Self::ConnectionLimit { .. } = self {
            return http::StatusCode::SERVICE_UNAVAILABLE;
        }
        let mut cause: Option<&(dyn StdError + 'static)> = self.source();
        while let Some(err) = cause {
            if err.is::<crate::limits::BodyTooLarge>() {
                return http::StatusCode::PAYLOAD_TOO_LARGE;
            }
            if let Some(BodyError::Client(_)) = err.downcast_ref::<BodyError>() {
                return http::StatusCode::BAD_REQUEST;
            }
            cause = err.source();
        }
        http::StatusCode::BAD_GATEWAY
    }
}

/// A failure while a body streams through the forwarder. Returned from the response body
/// it makes hyper abort the client connection (HTTP/1.1) or reset the stream (HTTP/2), so a
/// client never mistakes a cut-off body for a complete one.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BodyError {
    /// No body data moved for `requestTimeout` (protocol §1.7: per-chunk timeout).
    #[error("no body data for {0:?}")]
    IdleTimeout(Duration),
    /// The backend's response body failed (connection closed early, fewer bytes than its
    /// `Content-Length`, invalid chunking).
    #[error("the backend response body failed")]
    Backend(#[source] hyper::Error),
    /// Reading the client's request body failed.
    #[error("reading the client request body failed")]
    Client(#[source] BoxError),
}

/// Displays an error with its chain of causes, `a: b: c`, for log fields.
pub(crate) struct Chain<'a>(pub(crate) &'a (dyn StdError + 'static));

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut cause = self.0.source();
        while let Some(err) = cause {
            write!(f, ": {err}")?;
            cause = err.source();
        }
        Ok(())
    }
}
