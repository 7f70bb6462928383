//! What an application's backend processes are doing, for a gateway's metrics, health checks
//! and status page: a snapshot ([`Application::status`](crate::Application::status)) of its
//! state, its slots and counters that only grow.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use ancm_hosting::application::{Application, ApplicationOptions};
//! use ancm_hosting::status::ExitCause;
//! let app = Application::new(ApplicationOptions::new("/srv/site"))?;
//! let status = app.status();
//! println!("{} is {}", status.app_path, status.state);
//! for slot in &status.slots {
//!     println!("slot {}: {} pid {:?}", slot.index, slot.state, slot.pid);
//! }
//! println!("crashes: {}", status.counters.exits(ExitCause::Crash));
//! # Ok(()) }
//! ```
//!
//! The counters belong to the application and live as long as it does, across recycles; the
//! slots are those of the configuration in use, and their counts start again when a
//! web.config change recycles the application. Reading a snapshot takes the slots' locks
//! briefly and costs the request path nothing; keeping the counters costs a request one
//! atomic increment (its slot's request count).
use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use ancm_protocol::AppPath;

/// Why a backend process exited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ExitCause {
    /// It exited unasked while serving requests, within the application's
    /// `rapidFailsPerMinute`.
    Crash,
    /// It exited unasked while serving requests, and that exit put the application over its
    /// `rapidFailsPerMinute`: no new process starts for the rest of the minute.
    RapidFail,
    /// It never became ready: it exited during its start, or did not listen within
    /// `startupTimeLimit` and was killed.
    StartFailure,
    /// It was stopped because web.config changed.
    Recycle,
    /// It was stopped because `app_offline.htm` appeared.
    Offline,
    /// It was stopped because its port refused connections although it still ran.
    Unreachable,
    /// It was stopped because the application shut down (the gateway stopping).
    Shutdown,
    /// It was replaced because it was unhealthy: its health probe or its requests failed
    /// too often in a row (an ancm-rs addition, protocol §8.34).
    Health,
    /// It was replaced because it had run for the periodic recycle time (IIS
    /// `periodicRestart time`, protocol §8.35).
    Periodic,
    /// It was replaced because its memory stayed above the limit (IIS `privateMemory`,
    /// protocol §8.35).
    Memory,
    /// It was replaced because it had served the recycle request count (IIS
    /// `periodicRestart requests`, protocol §8.35).
    Requests,
    /// It was replaced at a scheduled time of day (IIS `periodicRestart schedule`, protocol
    /// §8.35).
    Schedule,
}

impl ExitCause {
    /// Every cause, in declaration order.
    pub const ALL: [ExitCause; 12] = [
        ExitCause::Crash,
        ExitCause::RapidFail,
        ExitCause::StartFailure,
        ExitCause::Recycle,
        ExitCause::Offline,
        ExitCause::Unreachable,
        ExitCause::Shutdown,
        ExitCause::Health,
        ExitCause::Periodic,
        ExitCause::Memory,
        ExitCause::Requests,
        ExitCause::Schedule,
    ];

    /// The causes that recycle an application (start new processes, switch, stop the old
    /// ones gracefully): a web.config change ([`Recycle`](Self::Recycle)), an unhealthy
    /// process and the recycling policies.
    pub const RECYCLES: [ExitCause; 6] = [
        ExitCause::Recycle,
        ExitCause::Health,
        ExitCause::Periodic,
        ExitCause::Memory,
        ExitCause::Requests,
        ExitCause::Schedule,
    ];

    /// A short lowercase name (`crash`, `rapid_fail`, `start_failure`, `recycle`, `offline`,
    /// `unreachable`, `shutdown`, `health`, `periodic`, `memory`, `requests`, `schedule`),
    /// for metric labels and JSON.
    pub const fn as_str(self) -> &'static str {
        match self {
            ExitCause::Crash => "crash",
            ExitCause::RapidFail => "rapid_fail",
            ExitCause::StartFailure => "start_failure",
            ExitCause::Recycle => "recycle",
            ExitCause::Offline => "offline",
            ExitCause::Unreachable => "unreachable",
            ExitCause::Shutdown => "shutdown",
            ExitCause::Health => "health",
            ExitCause::Periodic => "periodic",
            ExitCause::Memory => "memory",
            ExitCause::Requests => "requests",
            ExitCause::Schedule => "schedule",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for ExitCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The counters of one application's backend processes, kept by the application (never
/// reset).
#[derive(Debug, Default)]
pub(crate) struct BackendStats {
    started: AtomicU64,
    exits: [AtomicU64; ExitCause::ALL.len()],
    /// Recycles by cause, indexed like [`ExitCause::ALL`].
    recycles: [AtomicU64; ExitCause::ALL.len()],
}

impl BackendStats {
    /// A process was spawned.
    pub(crate) fn started(&self) {
        self.started.fetch_add(1, Ordering::Relaxed);
    }

    /// A process exited.
    pub(crate) fn exited(&self, cause: ExitCause) {
        self.exits[cause.index()].fetch_add(1, Ordering::Relaxed);
    }

    /// The application was recycled for `cause` (one of [`ExitCause::RECYCLES`]).
    pub(crate) fn recycled(&self, cause: ExitCause) {
        self.recycles[cause.index()].fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> BackendCounters {
        BackendCounters {
            started: self.started.load(Ordering::Relaxed),
            exits: std::array::from_fn(|i| self.exits[i].load(Ordering::Relaxed)),
            recycles: std::array::from_fn(|i| self.recycles[i].load(Ordering::Relaxed)),
        }
    }
}

/// An application's counters since it was created (they survive recycles).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BackendCounters {
    started: u64,
    exits: [u64; ExitCause::ALL.len()],
    recycles: [u64; ExitCause::ALL.len()],
}

impl BackendCounters {
    /// Backend processes spawned (every start attempt that got a process).
    pub fn started(&self) -> u64 {
        self.started
    }

    /// Backend processes that exited for `cause`.
    pub fn exits(&self, cause: ExitCause) -> u64 {
        self.exits[cause.index()]
    }

    /// Recycles for a changed web.config.
    pub fn recycles(&self) -> u64 {
        self.recycles_for(ExitCause::Recycle)
    }

    /// Recycles for `cause`: [`ExitCause::Recycle`] for a changed web.config, the others
    /// of [`ExitCause::RECYCLES`] for health and the recycling policies (0 for any other
    /// cause).
    pub fn recycles_for(&self, cause: ExitCause) -> u64 {
        self.recycles[cause.index()]
    }
}

/// What an application is doing, as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ApplicationState {
    /// No process runs and none failed: the next request starts one (processes start
    /// lazily). Ready to accept requests.
    Idle,
    /// A process is starting; requests wait for it. Ready to accept requests.
    Starting,
    /// At least one process serves, and no slot's last start failed.
    Ready,
    /// The last start of a slot failed (requests to it get `502.5`) and has not succeeded
    /// since; the next request for that slot tries again.
    Failed,
    /// Rapid-fail protection refuses new starts (`502.5`) until the minute is over.
    RapidFail,
    /// `app_offline.htm` is served (`503`): offline by choice.
    Offline,
    /// web.config cannot be used (`500.0`) until it is fixed.
    InvalidConfig,
    /// The application is shutting down (`503`).
    Stopping,
}

impl ApplicationState {
    /// A short lowercase name (`idle`, `starting`, `ready`, `failed`, `rapid_fail`,
    /// `offline`, `invalid_config`, `stopping`).
    pub const fn as_str(self) -> &'static str {
        match self {
            ApplicationState::Idle => "idle",
            ApplicationState::Starting => "starting",
            ApplicationState::Ready => "ready",
            ApplicationState::Failed => "failed",
            ApplicationState::RapidFail => "rapid_fail",
            ApplicationState::Offline => "offline",
            ApplicationState::InvalidConfig => "invalid_config",
            ApplicationState::Stopping => "stopping",
        }
    }

    /// Whether requests are answered by the application as it is meant to: not failing
    /// (idle, starting, ready) or offline by choice. A lazily started application that has not
    /// started yet counts, since the first request starts it.
    pub fn is_ready_or_offline(self) -> bool {
        matches!(
            self,
            ApplicationState::Idle
                | ApplicationState::Starting
                | ApplicationState::Ready
                | ApplicationState::Offline
        )
    }
}

impl fmt::Display for ApplicationState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What one slot (one of `processesPerApplication`) is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SlotState {
    /// No process: none started yet, or the last one exited; the next request starts one.
    Idle,
    /// Its process is starting.
    Starting,
    /// Its process serves requests.
    Ready,
    /// Its last start failed.
    Failed,
}

impl SlotState {
    /// A short lowercase name (`idle`, `starting`, `ready`, `failed`).
    pub const fn as_str(self) -> &'static str {
        match self {
            SlotState::Idle => "idle",
            SlotState::Starting => "starting",
            SlotState::Ready => "ready",
            SlotState::Failed => "failed",
        }
    }
}

impl fmt::Display for SlotState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a backend process exited.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ExitRecord {
    /// Its process id.
    pub pid: u32,
    /// Why.
    pub cause: ExitCause,
    /// The exit status as the OS told it (`exit code 3`, `killed by signal 9`).
    pub status: String,
    /// When.
    pub at: SystemTime,
}

/// One slot of the configuration in use.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SlotStatus {
    /// Its index, from 0.
    pub index: usize,
    /// What it is doing.
    pub state: SlotState,
    /// The serving process's id.
    pub pid: Option<u32>,
    /// The port the serving process was given (`ASPNETCORE_PORT`).
    pub port: Option<u16>,
    /// When the serving process was spawned.
    pub started_at: Option<SystemTime>,
    /// Processes that became ready in this slot; all but the first are restarts.
    pub starts: u64,
    /// Requests given to this slot's processes.
    pub requests: u64,
    /// How the slot's last process exited.
    pub last_exit: Option<ExitRecord>,
    /// Why the last start failed, while the slot is [`SlotState::Failed`].
    pub failure: Option<String>,
    /// Whether the serving process was found unhealthy (its health probe or its requests
    /// failed too often in a row); requests go to the other slots while it is replaced.
    pub unhealthy: bool,
}

impl SlotStatus {
    /// Starts after the first one.
    pub fn restarts(&self) -> u64 {
        self.starts.saturating_sub(1)
    }
}

/// A snapshot of one application.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ApplicationStatus {
    /// Its virtual path.
    pub app_path: AppPath,
    /// Its site folder (absolute).
    pub site_dir: PathBuf,
    /// What it is doing.
    pub state: ApplicationState,
    /// Why it is not ready, in words, when its state is not
    /// [ready or offline](ApplicationState::is_ready_or_offline).
    pub reason: Option<String>,
    /// The SHA-256 of the web.config in use, lowercase hex: the one the current
    /// configuration was read from (or the invalid one being answered with `500.0`). `None`
    /// without a web.config.
    pub web_config_sha256: Option<String>,
    /// The slots of the configuration in use (none while web.config is invalid).
    pub slots: Vec<SlotStatus>,
    /// Counters since the application was created.
    pub counters: BackendCounters,
}
