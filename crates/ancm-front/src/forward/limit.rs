//! The cap on backend connections in use at once.
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// A cap on backend connections in use at once: one per exchange in progress (an HTTP/1.1
/// connection carries one exchange at a time; with h2c each stream counts). A request that
/// finds the cap reached waits up to [`wait`](Self::wait) for a connection to come free, then
/// gets `503` (503.2, [`ErrorPage::backend_busy`](crate::error_page::ErrorPage::backend_busy)):
/// requests never pile up at a backend without bound.
///
/// Clones share one count. [`ForwardConfig`](super::ForwardConfig) holds one, so forwarders
/// made from clones of one configuration (one per runtime thread in `ancm run`) count
/// together: the cap is per application there. Idle pooled connections do not count; each
/// pool keeps at most as many as it had in use at once, up to
/// [`max_idle_per_backend`](super::ForwardConfig::max_idle_per_backend).
///
/// ```
/// use std::time::Duration;
/// use ancm_front::forward::ConnectionLimit;
/// let limit = ConnectionLimit::new(64).wait(Duration::from_secs(2));
/// assert_eq!((limit.max(), limit.in_use()), (64, 0));
/// assert_eq!(limit.clone().max_wait(), Duration::from_secs(2));
/// ```
#[derive(Debug, Clone)]
pub struct ConnectionLimit {
    permits: Arc<Semaphore>,
    max: usize,
    wait: Duration,
}

impl ConnectionLimit {
    /// The default cap: generous for one application, far below a gateway's file limit.
    pub const DEFAULT_MAX: usize = 1024;
    /// How long a request waits for a connection by default.
    pub const DEFAULT_WAIT: Duration = Duration::from_secs(5);

    /// At most `max` connections in use (at least 1), waiting [`DEFAULT_WAIT`](Self::DEFAULT_WAIT).
    pub fn new(max: usize) -> Self {
        let max = max.clamp(1, Semaphore::MAX_PERMITS);
        Self {
            permits: Arc::new(Semaphore::new(max)),
            max,
            wait: Self::DEFAULT_WAIT,
        }
    }

    /// How long a request may wait for a connection before it gets `503`.
    pub fn wait(mut self, wait: Duration) -> Self {
        self.wait = wait;
        self
    }

    /// The cap.
    pub fn max(&self) -> usize {
        self.max
    }

    /// The longest wait for a connection.
    pub fn max_wait(&self) -> Duration {
        self.wait
    }

    /// Connections in use right now, by every forwarder sharing this limit.
    pub fn in_use(&self) -> usize {
        self.max - self.permits.available_permits()
    }

    /// A permit for one exchange: at once when one is free (no timer), else after waiting up
    /// to [`max_wait`](Self::max_wait); `None` when none came free in time.
    pub(crate) async fn acquire(&self) -> Option<OwnedSemaphorePermit> {
        if let Ok(permit) = Arc::clone(&self.permits).try_acquire_owned() {
            return Some(permit);
        }
        // Boxed: waiting is the exception, and its state would otherwise be part of every
        // request's future.
        Box::pin(tokio::time::timeout(
            self.wait,
            Arc::clone(&self.permits).acquire_owned(),
        ))
        .await
        .ok()
        .and_then(Result::ok)
    }
}

impl Default for ConnectionLimit {
    fn default() -> Self {
        Self::new(Self::DEFAULT_MAX)
    }
}
