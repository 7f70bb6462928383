//! Requests on their way to a child: counted from the moment they are given the child until
//! the service behind the application layer answered them (the response head), so a stop
//! can let them reach the child before it is told to shut down (protocol §2.9).
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::Notify;

use super::Ready;

/// The longest a stop waits for requests already given the child to be answered. Their
/// exchanges go on after it: the child's graceful shutdown finishes requests it has.
pub(crate) const ADMITTED_DRAIN: Duration = Duration::from_secs(1);

/// How long a connect to a child that just failed a request may take to tell whether it
/// still listens.
const PROBE_LIMIT: Duration = Duration::from_millis(250);

/// The count of one child's requests in flight.
#[derive(Debug, Default)]
pub(crate) struct InFlight {
    count: AtomicUsize,
    /// Set by a stop: the last request to finish then wakes it.
    draining: AtomicBool,
    drained: Notify,
}

impl InFlight {
    /// Waits until no request is in flight, at most `limit`; returns how many still were.
    pub(crate) async fn drain(&self, limit: Duration) -> usize {
        self.draining.store(true, Ordering::SeqCst);
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let drained = self.drained.notified();
            tokio::pin!(drained);
            drained.as_mut().enable();
            let left = self.count.load(Ordering::SeqCst);
            if left == 0 {
                return 0;
            }
            if tokio::time::timeout_at(deadline, drained).await.is_err() {
                return self.count.load(Ordering::SeqCst);
            }
        }
    }
}

/// One request's place among its child's requests in flight; dropping it ends it.
#[derive(Debug)]
pub(crate) struct Admission {
    ready: Arc<Ready>,
}

impl Admission {
    /// Counts a request for `ready`'s child. Called under the slot's lock, so a stop that
    /// took the child out of its slot sees every request given it.
    pub(super) fn new(ready: &Arc<Ready>) -> Self {
        ready.in_flight.count.fetch_add(1, Ordering::SeqCst);
        Self {
            ready: Arc::clone(ready),
        }
    }

    /// Records the request's outcome for the child's passive health check:
    /// `failed_at_port` for the forwarder's `502.3` (protocol §8.34).
    pub(crate) fn record_answer(&self, failed_at_port: bool) {
        self.ready.record_answer(failed_at_port);
    }

    /// After the request was answered `502`: if the child's port (or Unix-domain socket)
    /// refuses connections, the child is exiting (or no longer listens), so it serves no
    /// further request even before its exit is recorded. Costs one local connect, on `502`
    /// answers only.
    pub(crate) async fn check_after_bad_gateway(self) {
        let ready = Arc::clone(&self.ready);
        drop(self);
        let addr = ready.target.transport();
        let probe = tokio::time::timeout(PROBE_LIMIT, addr.connect()).await;
        // A socket file its listener removed is as closed as a refused one.
        if let Ok(Err(error)) = probe
            && (error.kind() == std::io::ErrorKind::ConnectionRefused
                || (ready.target.unix_socket.is_some()
                    && error.kind() == std::io::ErrorKind::NotFound))
            && !ready.child.has_exited()
        {
            tracing::warn!(pid = ready.child.pid(), %addr, "the child's port refuses connections; the next request starts a new process");
            ready.child.mark_unreachable();
            if let Some(process) = &ready.target.process {
                process.retire();
            }
        }
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        let in_flight = &self.ready.in_flight;
        if in_flight.count.fetch_sub(1, Ordering::SeqCst) == 1
            && in_flight.draining.load(Ordering::SeqCst)
        {
            in_flight.drained.notify_waiters();
        }
    }
}
