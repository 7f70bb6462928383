//! The grace period between a stop signal and the drain (`--drain-delay`; protocol §8.41).
//!
//! A load balancer or Kubernetes' endpoint controller learns that an instance is going only
//! from its health checks (`/readyz`, already `503` when this starts) or from the API
//! server, some seconds later. Until then it keeps sending new connections: listeners that
//! stopped accepting at once would refuse them. So the gateway goes on accepting and serving
//! for the delay, then stops accepting and drains as before.
use std::time::Duration;

/// Waits `delay` (nothing when zero) while the listeners keep accepting; a second stop
/// signal ends the wait at once.
pub async fn delay(delay: Duration) {
    if delay.is_zero() {
        return;
    }
    tracing::info!(
        drain_delay_secs = delay.as_secs(),
        "not ready: still accepting for the drain delay"
    );
    tokio::select! {
        () = tokio::time::sleep(delay) => {}
        signal = ancm_protocol::signal::stop_requested() => {
            tracing::info!("{signal} received again: ending the drain delay");
        }
    }
}
