//! Health of a serving child (protocol §8.34): an optional active probe, and passive counting
//! of the requests its port failed.
//!
//! ```
//! use std::time::Duration;
//! use ancm_hosting::supervisor::HealthCheck;
//!
//! let check = HealthCheck::default()
//!     .probe("/healthz")
//!     .interval(Duration::from_secs(5))
//!     .unhealthy_threshold(2);
//! assert_eq!(check.path.as_deref(), Some("/healthz"));
//! assert_eq!(check.passive_threshold, None); // passive checks are off unless asked for
//! ```
//!
//! A child is *unhealthy* after [`HealthCheck::unhealthy_threshold`] probes in a row failed
//! (no answer within the timeout, a refused connection, or a status outside 200–399), or
//! after [`HealthCheck::passive_threshold`] requests in a row failed at its port (the
//! forwarder's `502.3`: connection refused or reset, no answer within `requestTimeout`). An
//! unhealthy child gets no request while another slot has a healthy one, and the application
//! is recycled with no downtime (cause [`ExitCause::Health`](crate::status::ExitCause)).
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use ancm_protocol::{PairingToken, headers};
use bytes::Bytes;
use http_body_util::Empty;
use hyper_util::rt::TokioIo;

use super::recycle_policy::{parse_duration, positive_number};

/// How an application checks its backend processes: an ancm-rs addition (ANCM only notices a
/// child that exits). `ancm run` sets it with `--health-check-*` and
/// `--passive-health-threshold`; web.config's handler settings (ancm-rs names, which ANCM
/// ignores) win for their application. Default: no probe, no passive check.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct HealthCheck {
    /// The path probed with `GET` (and the pairing token); `None`: no active probe.
    pub path: Option<String>,
    /// Time between two probes of one process. Default 10 s.
    pub interval: Duration,
    /// How long a probe may take to be answered. Default 5 s.
    pub timeout: Duration,
    /// Failed probes in a row that make a process unhealthy. Default 3.
    pub unhealthy_threshold: u32,
    /// Requests in a row that failed at the process's port (`502.3`) that make it
    /// unhealthy; `None`: requests are not counted.
    pub passive_threshold: Option<u32>,
}

impl Default for HealthCheck {
    fn default() -> Self {
        Self {
            path: None,
            interval: Duration::from_secs(10),
            timeout: Duration::from_secs(5),
            unhealthy_threshold: 3,
            passive_threshold: None,
        }
    }
}

impl HealthCheck {
    /// The handler setting for [`path`](Self::path).
    pub const PATH_SETTING: &str = "healthCheckPath";
    /// The handler setting for [`interval`](Self::interval).
    pub const INTERVAL_SETTING: &str = "healthCheckInterval";
    /// The handler setting for [`timeout`](Self::timeout).
    pub const TIMEOUT_SETTING: &str = "healthCheckTimeout";
    /// The handler setting for [`unhealthy_threshold`](Self::unhealthy_threshold).
    pub const THRESHOLD_SETTING: &str = "healthCheckUnhealthyThreshold";
    /// The handler setting for [`passive_threshold`](Self::passive_threshold).
    pub const PASSIVE_SETTING: &str = "passiveHealthThreshold";

    /// Probes `path` (a path starting with `/`).
    pub fn probe(mut self, path: impl Into<String>) -> Self {
        self.path = Some(path.into());
        self
    }

    /// Probes every `interval` (at least 10 ms).
    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = interval.max(MIN_INTERVAL);
        self
    }

    /// Gives each probe `timeout` (at least 10 ms).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout.max(MIN_INTERVAL);
        self
    }

    /// Unhealthy after `n` failed probes in a row (at least 1).
    pub fn unhealthy_threshold(mut self, n: u32) -> Self {
        self.unhealthy_threshold = n.max(1);
        self
    }

    /// Unhealthy after `n` requests in a row failed at the process's port (at least 1).
    pub fn passive_threshold(mut self, n: u32) -> Self {
        self.passive_threshold = Some(n.max(1));
        self
    }

    /// These settings with web.config's handler settings in their place where set; unusable
    /// values are ignored with a warning.
    pub(crate) fn with_handler_settings(self, setting: &dyn Fn(&str) -> Option<String>) -> Self {
        let mut out = self;
        if let Some(path) = setting(Self::PATH_SETTING) {
            let path = path.trim();
            if path.starts_with('/') {
                out.path = Some(path.to_owned());
            } else {
                tracing::warn!(
                    setting = Self::PATH_SETTING,
                    value = %path,
                    "ignoring a health check path that does not start with /"
                );
            }
        }
        if let Some(d) = duration_setting(setting, Self::INTERVAL_SETTING) {
            out = out.interval(d);
        }
        if let Some(d) = duration_setting(setting, Self::TIMEOUT_SETTING) {
            out = out.timeout(d);
        }
        if let Some(n) = positive_number(setting, Self::THRESHOLD_SETTING) {
            out = out.unhealthy_threshold(u32::try_from(n).unwrap_or(u32::MAX));
        }
        if let Some(n) = positive_number(setting, Self::PASSIVE_SETTING) {
            out = out.passive_threshold(u32::try_from(n).unwrap_or(u32::MAX));
        }
        out
    }
}

/// The shortest probe interval and timeout.
const MIN_INTERVAL: Duration = Duration::from_millis(10);

/// A duration handler setting, or `None` (with a warning when it is set but unusable).
pub(crate) fn duration_setting(
    setting: &dyn Fn(&str) -> Option<String>,
    name: &str,
) -> Option<Duration> {
    let raw = setting(name)?;
    match parse_duration(&raw) {
        Ok(d) if !d.is_zero() => Some(d),
        _ => {
            tracing::warn!(setting = name, value = %raw, "ignoring a handler setting that is not a positive duration (hh:mm:ss, or a number with ms, s, m or h)");
            None
        }
    }
}

/// What one child's health counters say; kept with the serving child.
#[derive(Debug, Default)]
pub(crate) struct Vitals {
    /// Failed probes in a row.
    probe_failures: AtomicU32,
    /// Requests in a row that failed at the port.
    request_failures: AtomicU32,
    unhealthy: AtomicBool,
}

impl Vitals {
    /// Whether the child was found unhealthy.
    pub(crate) fn is_unhealthy(&self) -> bool {
        self.unhealthy.load(Ordering::Acquire)
    }

    /// Records a probe's outcome; true when this made the child unhealthy.
    pub(crate) fn probed(&self, healthy: bool, threshold: u32) -> bool {
        if healthy {
            self.probe_failures.store(0, Ordering::Release);
            return false;
        }
        let failures = self.probe_failures.fetch_add(1, Ordering::AcqRel) + 1;
        failures >= threshold && !self.unhealthy.swap(true, Ordering::AcqRel)
    }

    /// Records a request's outcome at the port; true when this made the child unhealthy.
    pub(crate) fn answered(&self, failed_at_port: bool, threshold: u32) -> bool {
        if !failed_at_port {
            self.request_failures.store(0, Ordering::Release);
            return false;
        }
        let failures = self.request_failures.fetch_add(1, Ordering::AcqRel) + 1;
        failures >= threshold && !self.unhealthy.swap(true, Ordering::AcqRel)
    }
}

/// `GET path` on `addr` with the pairing token; whether it was answered with a status in
/// 200–399 within `timeout`.
pub(crate) async fn probe(
    addr: SocketAddr,
    path: &str,
    token: &PairingToken,
    timeout: Duration,
) -> Result<(), String> {
    let attempt = async {
        let stream = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| format!("handshake: {e}"))?;
        let conn = tokio::spawn(conn);
        let req = http::Request::get(path)
            .header(http::header::HOST, addr.to_string())
            .header(headers::TOKEN, token.header_value().clone())
            .body(Empty::<Bytes>::new())
            .map_err(|e| format!("request: {e}"))?;
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| format!("send: {e}"));
        conn.abort();
        let status = resp?.status();
        if status.is_success() || status.is_redirection() {
            Ok(())
        } else {
            Err(format!("status {}", status.as_u16()))
        }
    };
    match tokio::time::timeout(timeout, attempt).await {
        Ok(r) => r,
        Err(_) => Err(format!("no answer within {} ms", timeout.as_millis())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handler_settings_override_usable_values_only() {
        let settings = |name: &str| match name {
            "healthCheckPath" => Some(" /health ".to_owned()),
            "healthCheckInterval" => Some("00:00:02".to_owned()),
            "healthCheckTimeout" => Some("500ms".to_owned()),
            "healthCheckUnhealthyThreshold" => Some("zero".to_owned()),
            "passiveHealthThreshold" => Some("4".to_owned()),
            _ => None,
        };
        let check = HealthCheck::default().with_handler_settings(&settings);
        assert_eq!(check.path.as_deref(), Some("/health"));
        assert_eq!(check.interval, Duration::from_secs(2));
        assert_eq!(check.timeout, Duration::from_millis(500));
        assert_eq!(check.unhealthy_threshold, 3);
        assert_eq!(check.passive_threshold, Some(4));
        let relative = |name: &str| (name == "healthCheckPath").then(|| "health".to_owned());
        assert_eq!(
            HealthCheck::default().with_handler_settings(&relative).path,
            None
        );
    }

    #[test]
    fn unhealthy_after_the_threshold_in_a_row_once() {
        let v = Vitals::default();
        assert!(!v.probed(false, 2));
        assert!(!v.probed(true, 2));
        assert!(!v.probed(false, 2));
        assert!(v.probed(false, 2));
        assert!(v.is_unhealthy());
        // Reported once.
        assert!(!v.probed(false, 2));
        let v = Vitals::default();
        assert!(!v.answered(true, 2));
        assert!(v.answered(true, 2));
    }
}
