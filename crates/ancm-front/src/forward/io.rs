//! The stream of an HTTP/1.1 backend connection, marking when the backend sent anything.
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::transport::BackendStream;

/// Set by [`BackendIo`] whenever bytes arrive from the backend, cleared by the pool before it
/// sends a request: after a failed exchange it tells whether any byte of a response came back
/// (then the request is never retried).
#[derive(Debug, Clone, Default)]
pub(crate) struct Heard(Arc<AtomicBool>);

impl Heard {
    /// Forget what arrived so far (before a request goes out).
    pub(crate) fn clear(&self) {
        self.0.store(false, Ordering::Relaxed);
    }

    /// Whether any byte arrived since the last [`clear`](Self::clear).
    pub(crate) fn anything(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

pin_project_lite::pin_project! {
    /// A backend stream that records in [`Heard`] that bytes arrived; writes pass through.
    #[derive(Debug)]
    pub(crate) struct BackendIo {
        #[pin]
        stream: BackendStream,
        heard: Heard,
    }
}

impl BackendIo {
    pub(crate) fn new(stream: BackendStream, heard: Heard) -> Self {
        Self { stream, heard }
    }
}

impl AsyncRead for BackendIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.project();
        let before = buf.filled().len();
        let polled = this.stream.poll_read(cx, buf);
        if buf.filled().len() > before {
            this.heard.0.store(true, Ordering::Relaxed);
        }
        polled
    }
}

impl AsyncWrite for BackendIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.project().stream.poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.project().stream.poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().stream.poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().stream.poll_shutdown(cx)
    }
}
