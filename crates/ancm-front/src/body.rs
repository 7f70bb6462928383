//! The response body type of the front stack: a streamed backend body, or a small page the
//! front wrote itself (error pages, app_offline.htm).
//!
//! ```
//! use ancm_front::Body;
//! use http_body::Body as _;
//! assert!(Body::empty().is_end_stream());
//! assert_eq!(Body::from("hello").size_hint().exact(), Some(5));
//! ```
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Frame, SizeHint};
use http_body_util::combinators::UnsyncBoxBody;

use crate::BoxError;
use crate::forward::body::ResponseBody;

pin_project_lite::pin_project! {
    /// A response body: either bytes the front produced (error pages, app_offline.htm) or a
    /// boxed stream (the backend's body).
    #[derive(Debug)]
    pub struct Body {
        #[pin]
        kind: Kind,
    }
}

pin_project_lite::pin_project! {
    #[project = KindProj]
    #[derive(Debug)]
    enum Kind {
        Full { data: Option<Bytes> },
        Stream { #[pin] inner: UnsyncBoxBody<Bytes, BoxError> },
        // Boxed, though it costs an allocation: inline it made every response 304 bytes
        // instead of 144, and a response is moved through each layer's future on its way out.
        Backend { inner: Pin<Box<ResponseBody>> },
    }
}

impl Body {
    /// An empty body.
    pub fn empty() -> Self {
        Body {
            kind: Kind::Full { data: None },
        }
    }

    /// A body of `data`.
    pub fn full(data: impl Into<Bytes>) -> Self {
        let data = data.into();
        Body {
            kind: Kind::Full {
                data: (!data.is_empty()).then_some(data),
            },
        }
    }

    /// A streamed body.
    pub fn new<B>(body: B) -> Self
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        use http_body_util::BodyExt as _;
        Body {
            kind: Kind::Stream {
                inner: body.map_err(Into::into).boxed_unsync(),
            },
        }
    }
}

impl Body {
    /// The backend's response body as the forwarder streams it.
    pub(crate) fn backend(inner: ResponseBody) -> Self {
        Body {
            kind: Kind::Backend {
                inner: Box::pin(inner),
            },
        }
    }
}

impl Default for Body {
    fn default() -> Self {
        Self::empty()
    }
}

impl From<Bytes> for Body {
    fn from(data: Bytes) -> Self {
        Self::full(data)
    }
}

impl From<String> for Body {
    fn from(data: String) -> Self {
        Self::full(data)
    }
}

impl From<&'static str> for Body {
    fn from(data: &'static str) -> Self {
        Self::full(Bytes::from_static(data.as_bytes()))
    }
}

impl http_body::Body for Body {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.project().kind.project() {
            KindProj::Full { data } => Poll::Ready(data.take().map(|d| Ok(Frame::data(d)))),
            KindProj::Stream { inner } => inner.poll_frame(cx),
            KindProj::Backend { inner } => inner.as_mut().poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Full { data } => data.is_none(),
            Kind::Stream { inner } => inner.is_end_stream(),
            Kind::Backend { inner } => inner.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Full { data } => {
                SizeHint::with_exact(data.as_ref().map_or(0, |d| d.len() as u64))
            }
            Kind::Stream { inner } => inner.size_hint(),
            Kind::Backend { inner } => inner.size_hint(),
        }
    }
}
