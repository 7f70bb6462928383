//! Bodies for streaming tests: one generated on the fly, never held whole, and a count of a
//! body's bytes as they arrive.
//!
//! ```
//! use test_support::body::{GenBody, count_body};
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! assert_eq!(count_body(GenBody::new(100_000, 4096)).await, Ok(100_000));
//! # });
//! ```
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame};
use http_body_util::BodyExt as _;

/// A body of `len` bytes in `chunk`-sized frames, produced on the fly (never held whole).
#[derive(Debug)]
pub struct GenBody {
    remaining: u64,
    chunk: Bytes,
}

impl GenBody {
    /// `len` bytes of `x` in frames of `chunk_size` bytes.
    pub fn new(len: u64, chunk_size: usize) -> Self {
        Self {
            remaining: len,
            chunk: Bytes::from(vec![b'x'; chunk_size]),
        }
    }
}

impl Body for GenBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.remaining == 0 {
            return Poll::Ready(None);
        }
        let n = (self.chunk.len() as u64).min(self.remaining) as usize;
        self.remaining -= n as u64;
        // A fresh copy per frame, like real data read from a socket.
        Poll::Ready(Some(Ok(Frame::data(Bytes::copy_from_slice(
            &self.chunk[..n],
        )))))
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0
    }
}

/// Count a body's bytes as they arrive; the body's error if it fails.
pub async fn count_body<B>(mut body: B) -> Result<u64, B::Error>
where
    B: Body<Data = Bytes> + Unpin,
{
    let mut total = 0u64;
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame?.into_data() {
            total += data.len() as u64;
        }
    }
    Ok(total)
}
