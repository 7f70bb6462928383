//! TLS handshake counters for the metrics: handshakes by kind (full or resumed) and failed
//! handshakes by reason. One atomic addition per handshake, whether metrics are served or
//! not.
use std::sync::atomic::{AtomicU64, Ordering};

/// What ended a failed handshake, as a short fixed name (one per kind of client trouble).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandshakeFailure {
    /// The client closed or reset the connection.
    Io,
    /// The client sent an alert.
    AlertReceived,
    /// The client supports nothing the server offers (versions, cipher suites, ALPN).
    PeerIncompatible,
    /// A client certificate was required and missing, or did not verify.
    ClientCertificate,
    /// The client broke the protocol.
    PeerMisbehaved,
    /// The handshake did not finish in time.
    Timeout,
    /// Anything else.
    Other,
}

impl HandshakeFailure {
    /// Every reason, in the order the metrics list them.
    pub const ALL: [Self; 7] = [
        Self::Io,
        Self::AlertReceived,
        Self::PeerIncompatible,
        Self::ClientCertificate,
        Self::PeerMisbehaved,
        Self::Timeout,
        Self::Other,
    ];

    /// The reason's name in logs and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Io => "io",
            Self::AlertReceived => "alert_received",
            Self::PeerIncompatible => "peer_incompatible",
            Self::ClientCertificate => "client_certificate",
            Self::PeerMisbehaved => "peer_misbehaved",
            Self::Timeout => "timeout",
            Self::Other => "other",
        }
    }

    /// The reason a handshake's I/O error stands for.
    pub fn of(err: &std::io::Error) -> Self {
        let Some(tls) = err
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        else {
            return Self::Io;
        };
        match tls {
            rustls::Error::AlertReceived(_) => Self::AlertReceived,
            rustls::Error::PeerIncompatible(_) => Self::PeerIncompatible,
            rustls::Error::NoCertificatesPresented | rustls::Error::InvalidCertificate(_) => {
                Self::ClientCertificate
            }
            rustls::Error::PeerMisbehaved(_)
            | rustls::Error::InvalidMessage(_)
            | rustls::Error::InappropriateMessage { .. }
            | rustls::Error::InappropriateHandshakeMessage { .. } => Self::PeerMisbehaved,
            _ => Self::Other,
        }
    }
}

/// Handshake counters shared by every runtime's accept loop.
#[derive(Debug, Default)]
pub struct HandshakeStats {
    full: AtomicU64,
    resumed: AtomicU64,
    failures: [AtomicU64; HandshakeFailure::ALL.len()],
}

/// The counters at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HandshakeCounts {
    /// Completed handshakes with the certificate and signature work.
    pub full: u64,
    /// Completed handshakes that resumed a session (ticket or session ID).
    pub resumed: u64,
    /// Failed handshakes, by [`HandshakeFailure::ALL`]'s order.
    pub failures: [u64; HandshakeFailure::ALL.len()],
}

impl HandshakeStats {
    /// A handshake completed.
    pub fn completed(&self, resumed: bool) {
        let counter = if resumed { &self.resumed } else { &self.full };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// A handshake failed.
    pub fn failed(&self, reason: HandshakeFailure) {
        let index = HandshakeFailure::ALL
            .iter()
            .position(|r| *r == reason)
            .unwrap_or(HandshakeFailure::ALL.len() - 1);
        self.failures[index].fetch_add(1, Ordering::Relaxed);
    }

    /// The counters now.
    pub fn counts(&self) -> HandshakeCounts {
        HandshakeCounts {
            full: self.full.load(Ordering::Relaxed),
            resumed: self.resumed.load(Ordering::Relaxed),
            failures: std::array::from_fn(|i| self.failures[i].load(Ordering::Relaxed)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_follow_the_events() {
        let stats = HandshakeStats::default();
        stats.completed(false);
        stats.completed(true);
        stats.completed(true);
        stats.failed(HandshakeFailure::Timeout);
        stats.failed(HandshakeFailure::Io);
        let counts = stats.counts();
        assert_eq!((counts.full, counts.resumed), (1, 2));
        assert_eq!(counts.failures, [1, 0, 0, 0, 0, 1, 0]);
    }

    #[test]
    fn an_error_without_tls_inside_is_io() {
        let err = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
        assert_eq!(HandshakeFailure::of(&err), HandshakeFailure::Io);
        let err = std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            rustls::Error::NoCertificatesPresented,
        );
        assert_eq!(
            HandshakeFailure::of(&err),
            HandshakeFailure::ClientCertificate
        );
    }
}
