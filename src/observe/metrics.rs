//! The gateway's Prometheus metrics: request counters kept per runtime thread (no counter
//! is shared between threads, so a request costs a few uncontended atomic additions and no
//! label lookup), and a [`Collector`] that sums them and reads the applications', the
//! connections' and the access log's state at each scrape.
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use ancm_hosting::status::{ApplicationState, ApplicationStatus, ExitCause, SlotState};
use http::{Method, StatusCode};

use crate::tls::stats::{HandshakeCounts, HandshakeFailure};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

/// The method classes requests are counted by: the common methods, and `other`.
pub const METHOD_CLASSES: [&str; 8] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "other",
];

/// The status classes requests are counted by.
pub const STATUS_CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/// Upper bounds of the request duration histogram, in seconds.
const DURATION_BUCKETS: [f64; 15] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// The index of `method` in [`METHOD_CLASSES`].
pub fn method_class(method: &Method) -> usize {
    match *method {
        Method::GET => 0,
        Method::HEAD => 1,
        Method::POST => 2,
        Method::PUT => 3,
        Method::DELETE => 4,
        Method::OPTIONS => 5,
        Method::PATCH => 6,
        _ => 7,
    }
}

/// The index of `status` in [`STATUS_CLASSES`].
fn status_class(status: StatusCode) -> usize {
    usize::from(status.as_u16() / 100).clamp(1, 5) - 1
}

/// One application's request counters on one runtime thread.
#[derive(Debug, Default)]
pub struct AppCounters {
    requests: [[AtomicU64; STATUS_CLASSES.len()]; METHOD_CLASSES.len()],
    in_flight: AtomicI64,
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
    /// Requests per duration bucket (not cumulative; the last is +Inf).
    buckets: [AtomicU64; DURATION_BUCKETS.len() + 1],
    duration_micros: AtomicU64,
}

impl AppCounters {
    /// A request has started.
    pub fn started(&self) {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
    }

    /// Request body bytes have been read.
    pub fn bytes_in(&self, n: u64) {
        self.bytes_in.fetch_add(n, Ordering::Relaxed);
    }

    /// A request has ended: its response was sent whole (or abandoned) after `took`.
    pub fn finished(&self, method: usize, status: StatusCode, took: Duration, bytes_out: u64) {
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.requests[method][status_class(status)].fetch_add(1, Ordering::Relaxed);
        self.bytes_out.fetch_add(bytes_out, Ordering::Relaxed);
        let seconds = took.as_secs_f64();
        let bucket = DURATION_BUCKETS
            .iter()
            .position(|&bound| seconds <= bound)
            .unwrap_or(DURATION_BUCKETS.len());
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        self.duration_micros.fetch_add(micros, Ordering::Relaxed);
    }
}

/// One runtime thread's counters: one [`AppCounters`] per application, in the router's
/// order, and one for requests no application took.
#[derive(Debug)]
pub struct Shard {
    apps: Box<[AppCounters]>,
}

impl Shard {
    /// Counters for `apps` applications and the unmatched requests.
    pub fn new(apps: usize) -> Self {
        Self {
            apps: (0..=apps).map(|_| AppCounters::default()).collect(),
        }
    }

    /// Application `index`'s counters (`None`: the requests no application took).
    pub fn app(&self, index: Option<usize>) -> &AppCounters {
        let last = self.apps.len() - 1;
        &self.apps[index.unwrap_or(last).min(last)]
    }
}

/// What the collector reads at a scrape, besides the shards.
pub trait Sources: std::fmt::Debug + Send + Sync + 'static {
    /// The applications' labels (their paths), in the router's order.
    fn app_labels(&self) -> Vec<String>;
    /// Each application's status, in the router's order.
    fn app_statuses(&self) -> Vec<ApplicationStatus>;
    /// Each application's backend connections (in use, idle), in the router's order.
    fn backend_connections(&self) -> Vec<(usize, usize)>;
    /// Client connections open, and the most there may be.
    fn client_connections(&self) -> (usize, usize);
    /// The HTTPS listeners' handshake counters.
    fn tls_handshakes(&self) -> HandshakeCounts;
    /// Access log lines dropped because the writer could not keep up.
    fn access_log_dropped(&self) -> u64;
    /// Every runtime thread's shard.
    fn shards(&self) -> Vec<Arc<Shard>>;
}

/// The label of the requests no application took.
pub const UNMATCHED_APP: &str = "-";

/// Encodes every metric at each scrape; see the [module docs](self).
#[derive(Debug)]
pub struct GatewayCollector<S> {
    sources: Arc<S>,
}

impl<S> GatewayCollector<S> {
    /// A collector reading `sources`.
    pub fn new(sources: Arc<S>) -> Self {
        Self { sources }
    }
}

/// Sums of the shards for one application.
#[derive(Default)]
struct Totals {
    requests: [[u64; STATUS_CLASSES.len()]; METHOD_CLASSES.len()],
    in_flight: i64,
    bytes_in: u64,
    bytes_out: u64,
    buckets: [u64; DURATION_BUCKETS.len() + 1],
    duration_micros: u64,
}

impl Totals {
    fn add(&mut self, counters: &AppCounters) {
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        for (m, row) in counters.requests.iter().enumerate() {
            for (s, count) in row.iter().enumerate() {
                self.requests[m][s] += load(count);
            }
        }
        self.in_flight += counters.in_flight.load(Ordering::Relaxed);
        self.bytes_in += load(&counters.bytes_in);
        self.bytes_out += load(&counters.bytes_out);
        for (total, bucket) in self.buckets.iter_mut().zip(&counters.buckets) {
            *total += load(bucket);
        }
        self.duration_micros += load(&counters.duration_micros);
    }

    fn count(&self) -> u64 {
        self.buckets.iter().sum()
    }
}

/// The summed request counters of each application (the unmatched requests last).
fn totals(shards: &[Arc<Shard>], apps: usize) -> Vec<Totals> {
    let mut totals: Vec<Totals> = (0..=apps).map(|_| Totals::default()).collect();
    for shard in shards {
        for (total, counters) in totals.iter_mut().zip(shard.apps.iter()) {
            total.add(counters);
        }
    }
    totals
}

/// Requests answered per application (the unmatched requests not included), summed over
/// the shards.
pub fn requests_per_app(shards: &[Arc<Shard>], apps: usize) -> Vec<u64> {
    totals(shards, apps)
        .iter()
        .take(apps)
        .map(|t| t.requests.iter().flatten().sum())
        .collect()
}

/// A histogram encoded from sums taken at the scrape.
struct DurationHistogram<'a>(&'a Totals);

impl EncodeMetric for DurationHistogram<'_> {
    fn encode(&self, mut encoder: MetricEncoder<'_>) -> Result<(), std::fmt::Error> {
        let buckets: Vec<(f64, u64)> = DURATION_BUCKETS
            .iter()
            .copied()
            .chain([f64::INFINITY])
            .zip(self.0.buckets.iter().copied())
            .collect();
        #[allow(clippy::cast_precision_loss)] // microseconds: exact below 2^53 (285 years)
        let sum = self.0.duration_micros as f64 / 1e6;
        encoder.encode_histogram::<NoLabelSet>(sum, self.0.count(), &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}

fn gauge(value: i64) -> ConstGauge<i64> {
    ConstGauge::new(value)
}

fn wide(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl<S: Sources> Collector for GatewayCollector<S> {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let labels = self.sources.app_labels();
        let apps = labels.len();
        let totals = totals(&self.sources.shards(), apps);
        let app_label = |i: usize| labels.get(i).map_or(UNMATCHED_APP, String::as_str);

        let mut family = encoder.encode_descriptor(
            "ancm_http_requests",
            "Requests answered, by application (its path; - for none), method and status class.",
            None,
            MetricType::Counter,
        )?;
        for (i, total) in totals.iter().enumerate() {
            for (m, method) in METHOD_CLASSES.iter().enumerate() {
                for (s, status) in STATUS_CLASSES.iter().enumerate() {
                    let set = [
                        ("app", app_label(i)),
                        ("method", method),
                        ("status", status),
                    ];
                    ConstCounter::new(total.requests[m][s]).encode(family.encode_family(&set)?)?;
                }
            }
        }

        let mut family = encoder.encode_descriptor(
            "ancm_http_request_duration_seconds",
            "Time from a request's arrival until its response was sent whole.",
            None,
            MetricType::Histogram,
        )?;
        for (i, total) in totals.iter().enumerate() {
            DurationHistogram(total).encode(family.encode_family(&[("app", app_label(i))])?)?;
        }

        let mut family = encoder.encode_descriptor(
            "ancm_http_requests_in_flight",
            "Requests whose response has not been sent whole yet.",
            None,
            MetricType::Gauge,
        )?;
        for (i, total) in totals.iter().enumerate() {
            gauge(total.in_flight).encode(family.encode_family(&[("app", app_label(i))])?)?;
        }

        let mut family = encoder.encode_descriptor(
            "ancm_http_request_body_bytes",
            "Request body bytes read from clients.",
            None,
            MetricType::Counter,
        )?;
        for (i, total) in totals.iter().enumerate() {
            ConstCounter::new(total.bytes_in)
                .encode(family.encode_family(&[("app", app_label(i))])?)?;
        }

        let mut family = encoder.encode_descriptor(
            "ancm_http_response_body_bytes",
            "Response body bytes sent to clients.",
            None,
            MetricType::Counter,
        )?;
        for (i, total) in totals.iter().enumerate() {
            ConstCounter::new(total.bytes_out)
                .encode(family.encode_family(&[("app", app_label(i))])?)?;
        }

        let (open, max) = self.sources.client_connections();
        gauge(wide(open)).encode(encoder.encode_descriptor(
            "ancm_client_connections_open",
            "Client connections open, over every listener.",
            None,
            MetricType::Gauge,
        )?)?;
        gauge(wide(max)).encode(encoder.encode_descriptor(
            "ancm_client_connections_max",
            "The most client connections that may be open at once (--max-connections).",
            None,
            MetricType::Gauge,
        )?)?;

        let statuses = self.sources.app_statuses();
        encode_backends(&mut encoder, &labels, &statuses)?;

        let connections = self.sources.backend_connections();
        let mut family = encoder.encode_descriptor(
            "ancm_backend_connections_in_use",
            "Backend connections carrying an exchange now.",
            None,
            MetricType::Gauge,
        )?;
        for (label, (in_use, _)) in labels.iter().zip(&connections) {
            gauge(wide(*in_use)).encode(family.encode_family(&[("app", label.as_str())])?)?;
        }
        let mut family = encoder.encode_descriptor(
            "ancm_backend_connections_idle",
            "Idle keep-alive backend connections a request could use now.",
            None,
            MetricType::Gauge,
        )?;
        for (label, (_, idle)) in labels.iter().zip(&connections) {
            gauge(wide(*idle)).encode(family.encode_family(&[("app", label.as_str())])?)?;
        }

        let tls = self.sources.tls_handshakes();
        let mut family = encoder.encode_descriptor(
            "ancm_tls_handshakes",
            "Completed TLS handshakes, by kind: full (certificate and signature work) or resumed (session ticket or ID).",
            None,
            MetricType::Counter,
        )?;
        for (kind, count) in [("full", tls.full), ("resumed", tls.resumed)] {
            ConstCounter::new(count).encode(family.encode_family(&[("kind", kind)])?)?;
        }
        let mut family = encoder.encode_descriptor(
            "ancm_tls_handshake_failures",
            "Failed TLS handshakes, by reason: io (closed or reset), alert_received, peer_incompatible, client_certificate, peer_misbehaved, timeout, other.",
            None,
            MetricType::Counter,
        )?;
        for (reason, count) in HandshakeFailure::ALL.iter().zip(tls.failures) {
            ConstCounter::new(count)
                .encode(family.encode_family(&[("reason", reason.as_str())])?)?;
        }

        ConstCounter::new(self.sources.access_log_dropped()).encode(encoder.encode_descriptor(
            "ancm_access_log_dropped_lines",
            "Access log lines dropped because the writer could not keep up.",
            None,
            MetricType::Counter,
        )?)?;
        Ok(())
    }
}

/// The backend process metrics, from each application's status.
fn encode_backends(
    encoder: &mut DescriptorEncoder<'_>,
    labels: &[String],
    statuses: &[ApplicationStatus],
) -> Result<(), std::fmt::Error> {
    let apps = || labels.iter().map(String::as_str).zip(statuses);

    let mut family = encoder.encode_descriptor(
        "ancm_backend_processes_started",
        "Backend processes spawned (every start attempt that got a process).",
        None,
        MetricType::Counter,
    )?;
    for (app, status) in apps() {
        ConstCounter::new(status.counters.started())
            .encode(family.encode_family(&[("app", app)])?)?;
    }

    let mut family = encoder.encode_descriptor(
        "ancm_backend_exits",
        "Backend process exits, by cause: crash, rapid_fail (a crash over rapidFailsPerMinute), start_failure, recycle, offline, unreachable, shutdown, health, periodic, memory, requests, schedule.",
        None,
        MetricType::Counter,
    )?;
    for (app, status) in apps() {
        for cause in ExitCause::ALL {
            let set = [("app", app), ("cause", cause.as_str())];
            ConstCounter::new(status.counters.exits(cause)).encode(family.encode_family(&set)?)?;
        }
    }

    let mut family = encoder.encode_descriptor(
        "ancm_backend_recycles",
        "Recycles for a changed web.config.",
        None,
        MetricType::Counter,
    )?;
    for (app, status) in apps() {
        ConstCounter::new(status.counters.recycles())
            .encode(family.encode_family(&[("app", app)])?)?;
    }

    let mut family = encoder.encode_descriptor(
        "ancm_backend_recycles_by_cause",
        "Recycles, by cause: recycle (a changed web.config), health, periodic, memory, requests, schedule.",
        None,
        MetricType::Counter,
    )?;
    for (app, status) in apps() {
        for cause in ExitCause::RECYCLES {
            let set = [("app", app), ("cause", cause.as_str())];
            ConstCounter::new(status.counters.recycles_for(cause))
                .encode(family.encode_family(&set)?)?;
        }
    }

    let mut family = encoder.encode_descriptor(
        "ancm_backend_rapid_fail_blocked",
        "1 while rapid-fail protection refuses to start backend processes.",
        None,
        MetricType::Gauge,
    )?;
    for (app, status) in apps() {
        let blocked = i64::from(status.state == ApplicationState::RapidFail);
        gauge(blocked).encode(family.encode_family(&[("app", app)])?)?;
    }

    let mut family = encoder.encode_descriptor(
        "ancm_application_state",
        "1 for the application's current state (idle, starting, ready, failed, rapid_fail, offline, invalid_config, stopping), 0 for the others.",
        None,
        MetricType::Gauge,
    )?;
    for (app, status) in apps() {
        for state in APPLICATION_STATES {
            let set = [("app", app), ("state", state.as_str())];
            gauge(i64::from(status.state == state)).encode(family.encode_family(&set)?)?;
        }
    }

    let mut family = encoder.encode_descriptor(
        "ancm_backend_slot_state",
        "1 for each backend slot's current state (idle, starting, ready, failed, offline), 0 for the others.",
        None,
        MetricType::Gauge,
    )?;
    for (app, status) in apps() {
        let offline = status.state == ApplicationState::Offline;
        for slot in &status.slots {
            let index = slot.index.to_string();
            for state in SLOT_STATES {
                let current = if offline {
                    "offline"
                } else {
                    slot.state.as_str()
                };
                let set = [("app", app), ("slot", index.as_str()), ("state", state)];
                gauge(i64::from(current == state)).encode(family.encode_family(&set)?)?;
            }
        }
    }
    Ok(())
}

const APPLICATION_STATES: [ApplicationState; 8] = [
    ApplicationState::Idle,
    ApplicationState::Starting,
    ApplicationState::Ready,
    ApplicationState::Failed,
    ApplicationState::RapidFail,
    ApplicationState::Offline,
    ApplicationState::InvalidConfig,
    ApplicationState::Stopping,
];

/// Slot states as metric labels: [`SlotState`]'s, and `offline` while the application is.
const SLOT_STATES: [&str; 5] = [
    SlotState::Idle.as_str(),
    SlotState::Starting.as_str(),
    SlotState::Ready.as_str(),
    SlotState::Failed.as_str(),
    "offline",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes() {
        assert_eq!(METHOD_CLASSES[method_class(&Method::GET)], "GET");
        assert_eq!(
            METHOD_CLASSES[method_class(&Method::from_bytes(b"PROPFIND").unwrap())],
            "other"
        );
        assert_eq!(STATUS_CLASSES[status_class(StatusCode::BAD_GATEWAY)], "5xx");
        assert_eq!(
            STATUS_CLASSES[status_class(StatusCode::SWITCHING_PROTOCOLS)],
            "1xx"
        );
    }

    #[test]
    fn durations_land_in_their_bucket() {
        let counters = AppCounters::default();
        counters.started();
        counters.finished(0, StatusCode::OK, Duration::from_micros(800), 5);
        counters.started();
        counters.finished(0, StatusCode::OK, Duration::from_secs(100), 0);
        let mut total = Totals::default();
        total.add(&counters);
        assert_eq!(total.buckets[0], 1);
        assert_eq!(total.buckets[DURATION_BUCKETS.len()], 1);
        assert_eq!((total.count(), total.in_flight, total.bytes_out), (2, 0, 5));
        assert_eq!(total.requests[0][1], 2);
    }
}
