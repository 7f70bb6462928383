//! Backend process supervision (protocol §2 with §8's differences).
//!
//! One supervisor per configuration generation owns `processesPerApplication` slots. A slot's
//! child is started lazily by the first request that needs it; concurrent requests for the
//! same slot wait for that start instead of starting a second process. A start makes up to 2
//! attempts (new port each, same token), each waiting up to `startupTimeLimit` for the child
//! or a descendant to listen on the port. An unexpected exit frees the slot; more than
//! `rapidFailsPerMinute` of them in a sliding 60-second window block new starts. A request
//! answered `502` makes the supervisor look whether the child still listens; one that does
//! not serves no further request. Stopping lets the requests already given the child reach
//! it (until answered, at most 1 s), retires it (every forwarder drops its idle
//! connections to it), then sends the HTTP shutdown message, then signals, then kills the
//! tree.
//!
//! The supervisor is driven through [`crate::application::Application`]; this module's only
//! public items are the startup error types shown on the 502.5 page and in logs, and the
//! stdout log retention ([`StdoutLogRetention`], set with
//! [`ApplicationOptions::stdout_log_retention`](crate::ApplicationOptions::stdout_log_retention)).
//!
//! ```
//! use ancm_hosting::supervisor::StartError;
//! let e = StartError::RapidFailLimit { limit: 10 };
//! assert!(e.to_string().contains("10"));
//! ```
pub(crate) mod command;
pub(crate) mod environment;
mod error;
pub(crate) mod health;
pub(crate) mod in_flight;
mod launch;
#[cfg(target_os = "linux")]
mod linux;
pub(crate) mod ports;
pub(crate) mod process;
mod publish;
mod rapid_fail;
pub(crate) mod readiness;
pub(crate) mod recycle_policy;
pub(crate) mod shutdown;
#[cfg(target_os = "linux")]
mod sock_diag;
mod start;
pub(crate) mod stdout;
#[cfg(windows)]
pub(crate) mod windows;

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Instant, SystemTime};

use ancm_front::BackendTarget;

pub use error::{StartError, StartFailure};
pub use health::HealthCheck;
use health::Vitals;
use in_flight::{Admission, InFlight};
pub use launch::PRELOAD_SETTING;
pub(crate) use launch::{LaunchContext, LaunchSpec};
use process::Child;
use rapid_fail::RapidFails;
pub use recycle_policy::{PolicyValueError, RecyclePolicy, parse_duration, parse_times_of_day};
pub use stdout::StdoutLogRetention;

use crate::status::{ExitCause, ExitRecord, SlotState, SlotStatus};
use crate::sync;

/// A ready child, the target requests use, its requests in flight and its health.
#[derive(Debug)]
pub(crate) struct Ready {
    child: Arc<Child>,
    target: BackendTarget,
    in_flight: InFlight,
    /// Its health counters (protocol §8.34).
    vitals: Vitals,
    /// Requests given to it.
    served: AtomicU64,
    /// When it became ready.
    since: Instant,
    /// [`HealthCheck::passive_threshold`] of its generation.
    passive_threshold: Option<u32>,
}

impl Ready {
    /// Its process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.pid()
    }

    /// Where it listens.
    pub(crate) fn addr(&self) -> std::net::SocketAddr {
        self.target.addr
    }

    /// Its pairing token.
    pub(crate) fn token(&self) -> &ancm_protocol::PairingToken {
        self.child.token()
    }

    /// Its health counters.
    pub(crate) fn vitals(&self) -> &Vitals {
        &self.vitals
    }

    /// Opens its size-capped stdout log again by name.
    pub(crate) fn reopen_log(&self) {
        self.child.reopen_log();
    }

    /// Requests given to it so far.
    pub(crate) fn served(&self) -> u64 {
        self.served.load(Ordering::Relaxed)
    }

    /// How long it has been ready.
    pub(crate) fn age(&self) -> std::time::Duration {
        self.since.elapsed()
    }

    /// Records one request's outcome for passive health checks: `failed_at_port` for the
    /// forwarder's `502.3`. Logs and returns true when this made the child unhealthy.
    pub(crate) fn record_answer(&self, failed_at_port: bool) -> bool {
        let Some(threshold) = self.passive_threshold else {
            return false;
        };
        let now_unhealthy = self.vitals.answered(failed_at_port, threshold);
        if now_unhealthy {
            tracing::warn!(
                pid = self.pid(),
                addr = %self.addr(),
                failures = threshold,
                cause = %ExitCause::Health,
                "requests failed at the child's port too often in a row: it is unhealthy and will be replaced"
            );
        }
        now_unhealthy
    }

    /// Retires the child's backend process: every forwarder drops its idle connections to it.
    fn retire(&self) {
        if let Some(process) = &self.target.process {
            process.retire();
        }
    }
}

#[derive(Debug, Default)]
struct Slot {
    /// The serving child; read on every request, written on start/exit/stop.
    ready: RwLock<Option<Arc<Ready>>>,
    /// Held while a start is in progress, so a slot never gets two processes.
    start: tokio::sync::Mutex<()>,
    /// How many starts have finished (successful or not).
    finished: AtomicU64,
    /// The most recent failed start and its sequence number, shared with waiters.
    last_failure: Mutex<Option<(u64, Arc<StartFailure>)>>,
    /// Set while a start is in progress (status only).
    starting: AtomicBool,
    /// Children that became ready here.
    starts: AtomicU64,
    /// Requests given to this slot's children.
    requests: AtomicU64,
    /// How the last child exited.
    last_exit: Mutex<Option<ExitRecord>>,
}

impl Slot {
    /// The serving child's target for one request, counted in flight; `None` when the slot
    /// has no child that can serve, or only an unhealthy one and `healthy_only`.
    fn admit(&self, healthy_only: bool) -> Option<(BackendTarget, Admission)> {
        let guard = sync::read(&self.ready);
        let ready = guard.as_ref()?;
        if !ready.child.can_serve() || (healthy_only && ready.vitals.is_unhealthy()) {
            return None;
        }
        self.requests.fetch_add(1, Ordering::Relaxed);
        ready.served.fetch_add(1, Ordering::Relaxed);
        Some((ready.target.clone(), Admission::new(ready)))
    }

    /// Whether the slot's child was found unhealthy (and still serves).
    fn is_unhealthy(&self) -> bool {
        sync::read(&self.ready)
            .as_ref()
            .is_some_and(|r| r.child.can_serve() && r.vitals.is_unhealthy())
    }

    /// The slot's status snapshot.
    fn status(&self, index: usize) -> SlotStatus {
        let (serving, unhealthy) = {
            let ready = sync::read(&self.ready);
            let live = ready.as_ref().filter(|r| !r.child.has_exited());
            (
                live.map(|r| (r.child.pid(), r.child.port(), r.child.started_at())),
                live.is_some_and(|r| r.vitals.is_unhealthy()),
            )
        };
        let failure = {
            let finished = self.finished.load(Ordering::Acquire);
            sync::lock(&self.last_failure)
                .as_ref()
                .filter(|(seq, _)| *seq == finished)
                .map(|(_, failure)| failure.error.to_string())
        };
        let state = if self.starting.load(Ordering::Acquire) {
            SlotState::Starting
        } else if serving.is_some() {
            SlotState::Ready
        } else if failure.is_some() {
            SlotState::Failed
        } else {
            SlotState::Idle
        };
        SlotStatus {
            index,
            state,
            pid: serving.map(|(pid, _, _)| pid),
            port: serving.map(|(_, port, _)| port),
            started_at: serving.map(|(_, _, at)| at),
            starts: self.starts.load(Ordering::Relaxed),
            requests: self.requests.load(Ordering::Relaxed),
            last_exit: sync::lock(&self.last_exit).clone(),
            failure: (state == SlotState::Failed).then_some(failure).flatten(),
            unhealthy,
        }
    }
}

#[derive(Debug)]
struct Shared {
    spec: LaunchSpec,
    slots: Box<[Slot]>,
    next: AtomicUsize,
    rapid_fails: RapidFails,
    stopping: AtomicBool,
    /// Why [`Supervisor::stop`] was called.
    stop_cause: Mutex<ExitCause>,
}

impl Shared {
    /// Stops a ready child for `cause`: lets the requests already given it reach it, retires
    /// it, then stops it gracefully within `shutdownTimeLimit` and kills its tree.
    async fn stop_ready(&self, ready: &Ready, cause: ExitCause) {
        let left = ready.in_flight.drain(in_flight::ADMITTED_DRAIN).await;
        if left > 0 {
            tracing::debug!(
                pid = ready.child.pid(),
                requests = left,
                "requests given the child are still unanswered; stopping it anyway"
            );
        }
        ready.retire();
        shutdown::stop_child(
            &ready.child,
            Some(&ready.target),
            &self.spec.context.app_path,
            self.spec.shutdown,
            cause,
        )
        .await;
    }
}

/// The children of one configuration generation.
#[derive(Debug, Clone)]
pub(crate) struct Supervisor {
    shared: Arc<Shared>,
}

impl Supervisor {
    /// A supervisor with empty slots; nothing starts until [`Supervisor::acquire`].
    pub(crate) fn new(spec: LaunchSpec) -> Self {
        let slots = (0..spec.processes).map(|_| Slot::default()).collect();
        Self {
            shared: Arc::new(Shared {
                spec,
                slots,
                next: AtomicUsize::new(0),
                rapid_fails: RapidFails::default(),
                stopping: AtomicBool::new(false),
                stop_cause: Mutex::new(ExitCause::Shutdown),
            }),
        }
    }

    /// The launch settings.
    pub(crate) fn spec(&self) -> &LaunchSpec {
        &self.shared.spec
    }

    /// Whether [`Supervisor::stop`] was called.
    pub(crate) fn is_stopping(&self) -> bool {
        self.shared.stopping.load(Ordering::Acquire)
    }

    /// A ready backend for one request, counted in flight until the [`Admission`] is
    /// dropped: round-robin over the slots, starting the slot's child if needed (waiting for
    /// a start already in progress). A slot whose child was found unhealthy is passed over
    /// while another slot has a healthy one or can start one (protocol §8.34).
    pub(crate) async fn acquire(&self) -> Result<(BackendTarget, Admission), Arc<StartFailure>> {
        let slots = &self.shared.slots;
        let n = slots.len().max(1);
        let idx = self.shared.next.fetch_add(1, Ordering::Relaxed) % n;
        if let Some(admitted) = slots.get(idx).and_then(|s| s.admit(true)) {
            return Ok(admitted);
        }
        if slots.get(idx).is_some_and(Slot::is_unhealthy) {
            // Another slot's healthy child, or another slot to start; else the unhealthy one
            // until its replacement is ready.
            let others = (1..n).map(|step| (idx + step) % n);
            if let Some(admitted) = others.clone().find_map(|i| slots.get(i)?.admit(true)) {
                return Ok(admitted);
            }
            if let Some(free) = others
                .clone()
                .find(|i| slots.get(*i).is_some_and(|s| !s.is_unhealthy()))
            {
                return Box::pin(self.start_slot(free)).await;
            }
            if let Some(admitted) = slots.get(idx).and_then(|s| s.admit(false)) {
                return Ok(admitted);
            }
        }
        // Boxed: starting a process is rare, and its large state would otherwise be part of
        // every request's future (allocated, copied and moved per request).
        Box::pin(self.start_slot(idx)).await
    }

    /// Starts every slot (used before switching to a new configuration).
    pub(crate) async fn start_all(&self) -> Result<(), Arc<StartFailure>> {
        let tasks: Vec<_> = (0..self.shared.slots.len())
            .map(|idx| {
                let this = self.clone();
                tokio::spawn(async move { this.start_slot(idx).await.map(|_| ()) })
            })
            .collect();
        let mut result = Ok(());
        for t in tasks {
            match t.await {
                Ok(Ok(())) => {}
                Ok(Err(f)) => result = Err(f),
                Err(e) => {
                    result = Err(Arc::new(StartFailure::new(StartError::Spawn {
                        program: self.shared.spec.program(),
                        reason: format!("start task failed: {e}"),
                    })))
                }
            }
        }
        result
    }

    async fn start_slot(
        &self,
        idx: usize,
    ) -> Result<(BackendTarget, Admission), Arc<StartFailure>> {
        let stopping = || Arc::new(StartFailure::new(StartError::Stopping));
        let Some(slot) = self.shared.slots.get(idx) else {
            return Err(stopping());
        };
        let seen = slot.finished.load(Ordering::Acquire);
        let _guard = slot.start.lock().await;
        if let Some(admitted) = slot.admit(false) {
            return Ok(admitted);
        }
        if self.is_stopping() {
            return Err(stopping());
        }
        // A start finished while we waited and failed: share its result rather than making
        // every waiting request run its own 2 × startupTimeLimit start.
        if slot.finished.load(Ordering::Acquire) != seen
            && let Some((seq, failure)) = sync::lock(&slot.last_failure).as_ref()
            && *seq > seen
        {
            return Err(failure.clone());
        }
        // A dead child's tree was already killed by its monitor; one that stopped listening
        // may still run.
        let replaced = sync::write(&slot.ready).take();
        if let Some(old) = replaced {
            self.replace_unreachable(idx, &old).await;
        }
        // Until this function returns or is dropped: the status shows a start in progress.
        let _starting = Starting::begin(&slot.starting);
        let result = self.start_child(idx).await;
        let seq = slot.finished.fetch_add(1, Ordering::AcqRel) + 1;
        match result {
            Ok(ready) => {
                let ready = Arc::new(ready);
                let admitted = {
                    let mut w = sync::write(&slot.ready);
                    // Checked under the lock that `stop` takes after setting the flag, so
                    // either `stop` sees this child or we see the flag.
                    if self.is_stopping() {
                        None
                    } else {
                        ready.child.mark_serving();
                        slot.starts.fetch_add(1, Ordering::Relaxed);
                        slot.requests.fetch_add(1, Ordering::Relaxed);
                        ready.served.fetch_add(1, Ordering::Relaxed);
                        *w = Some(Arc::clone(&ready));
                        Some((ready.target.clone(), Admission::new(&ready)))
                    }
                };
                match admitted {
                    Some(admitted) => Ok(admitted),
                    None => {
                        let cause = *sync::lock(&self.shared.stop_cause);
                        self.shared.stop_ready(&ready, cause).await;
                        Err(stopping())
                    }
                }
            }
            Err(failure) => {
                let failure = Arc::new(failure);
                *sync::lock(&slot.last_failure) = Some((seq, failure.clone()));
                Err(failure)
            }
        }
    }

    /// A slot's child that can no longer serve but has not exited (its port refused a
    /// connection): a crashing child exits at once, and its monitor counts the crash; one
    /// still running after [`in_flight::ADMITTED_DRAIN`] is stopped.
    async fn replace_unreachable(&self, idx: usize, old: &Ready) {
        if old.child.has_exited() || old.child.wait_exit(in_flight::ADMITTED_DRAIN).await {
            return;
        }
        tracing::warn!(
            slot = idx,
            pid = old.child.pid(),
            "the child stopped listening but is still running; stopping it"
        );
        self.shared.stop_ready(old, ExitCause::Unreachable).await;
    }

    /// Stops every child gracefully (in parallel) for `cause` and waits for starts in
    /// progress; the supervisor starts nothing afterwards.
    pub(crate) async fn stop(&self, cause: ExitCause) {
        *sync::lock(&self.shared.stop_cause) = cause;
        self.shared.stopping.store(true, Ordering::SeqCst);
        let mut tasks = Vec::new();
        for slot in self.shared.slots.iter() {
            let taken = sync::write(&slot.ready).take();
            if let Some(ready) = taken {
                let shared = self.shared.clone();
                tasks.push(tokio::spawn(async move {
                    shared.stop_ready(&ready, cause).await
                }));
            }
        }
        for t in tasks {
            let _ = t.await;
        }
        for slot in self.shared.slots.iter() {
            let _ = slot.start.lock().await;
        }
    }

    /// The children serving now, with their slot index (for health checks and the
    /// recycling policies).
    pub(crate) fn serving(&self) -> Vec<(usize, Arc<Ready>)> {
        self.shared
            .slots
            .iter()
            .enumerate()
            .filter_map(|(idx, s)| {
                sync::read(&s.ready)
                    .as_ref()
                    .filter(|r| r.child.can_serve())
                    .map(|r| (idx, Arc::clone(r)))
            })
            .collect()
    }

    /// Each slot's status.
    pub(crate) fn slot_statuses(&self) -> Vec<SlotStatus> {
        self.shared
            .slots
            .iter()
            .enumerate()
            .map(|(index, slot)| slot.status(index))
            .collect()
    }

    /// Whether rapid-fail protection refuses starts now.
    pub(crate) fn rapid_fail_blocked(&self) -> bool {
        self.shared
            .rapid_fails
            .blocked(self.shared.spec.rapid_fails)
    }

    /// Pids of the serving children (for tests and diagnostics).
    pub(crate) fn pids(&self) -> Vec<u32> {
        self.shared
            .slots
            .iter()
            .filter_map(|s| {
                sync::read(&s.ready)
                    .as_ref()
                    .filter(|r| !r.child.has_exited())
                    .map(|r| r.child.pid())
            })
            .collect()
    }
}

/// A slot's start in progress, for its status; ends when dropped.
struct Starting<'a>(&'a AtomicBool);

impl<'a> Starting<'a> {
    fn begin(flag: &'a AtomicBool) -> Self {
        flag.store(true, Ordering::Release);
        Self(flag)
    }
}

impl Drop for Starting<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

/// The monitor's report: frees the slot, counts a crash for rapid-fail protection and
/// records the exit. Returns the exit's cause: a crash that puts the generation over its
/// rapid-fail limit is [`ExitCause::RapidFail`].
fn child_exited(
    shared: &Shared,
    idx: usize,
    pid: u32,
    status: &str,
    cause: ExitCause,
) -> ExitCause {
    let Some(slot) = shared.slots.get(idx) else {
        return cause;
    };
    {
        let mut w = sync::write(&slot.ready);
        if w.as_ref().is_some_and(|r| r.child.pid() == pid)
            && let Some(ready) = w.take()
        {
            ready.retire();
        }
    }
    let cause = if cause == ExitCause::Crash {
        let count = shared.rapid_fails.record();
        let limit = shared.spec.rapid_fails;
        tracing::warn!(slot = idx, pid, %status, recent_unexpected_exits = count, "the child process exited unexpectedly; the next request starts a new one");
        if count > usize::try_from(limit).unwrap_or(usize::MAX) {
            tracing::error!(
                slot = idx,
                limit,
                "more unexpected exits than rapidFailsPerMinute: no new process starts for the rest of the minute"
            );
            ExitCause::RapidFail
        } else {
            ExitCause::Crash
        }
    } else {
        tracing::debug!(slot = idx, pid, %status, %cause, "child process exited");
        cause
    };
    *sync::lock(&slot.last_exit) = Some(ExitRecord {
        pid,
        cause,
        status: status.to_owned(),
        at: SystemTime::now(),
    });
    cause
}
