//! Backend process supervision (contract §2 with §8's differences).
//!
//! One supervisor per configuration generation owns `processesPerApplication` slots. A slot's
//! child is started lazily by the first request that needs it; concurrent requests for the
//! same slot wait for that start instead of starting a second process. A start makes up to 2
//! attempts (new port each, same token), each waiting up to `startupTimeLimit` for the child
//! or a descendant to listen on the port. An unexpected exit frees the slot; more than
//! `rapidFailsPerMinute` of them in a sliding 60-second window block new starts. Stopping
//! sends the HTTP shutdown message, then signals, then kills the tree.
//!
//! The supervisor is driven through [`crate::application::Application`]; this module's only
//! public items are the startup error types shown on the 502.5 page and in logs.
//!
//! ```
//! use ancm_hosting::supervisor::StartError;
//! let e = StartError::RapidFailLimit { limit: 10 };
//! assert!(e.to_string().contains("10"));
//! ```
pub(crate) mod command;
pub(crate) mod process;
pub(crate) mod readiness;
pub(crate) mod shutdown;
pub(crate) mod stdout;
#[cfg(windows)]
pub(crate) mod windows;

use std::collections::VecDeque;
use std::hash::{BuildHasher, Hasher};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use ancm_front::{BackendTarget, RequestTimeout};
use ancm_protocol::{AppPath, InvalidToken, PairingToken};

use crate::config::AspNetCoreConfig;
use command::{CommandLine, EnvInputs, InvalidPort, PortChoice};
use process::{Child, SpawnSpec};
use stdout::OutputMode;

/// Why a backend could not be made ready (the cause behind a 502.5).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// More than `rapidFailsPerMinute` unexpected exits in the last 60 seconds.
    #[error("maximum rapid fail count per minute of '{limit}' exceeded; not starting the process")]
    RapidFailLimit {
        /// `rapidFailsPerMinute`.
        limit: u32,
    },
    /// `ASPNETCORE_PORT` in web.config is not a port in 1025–48000 (critical: no retry).
    #[error("ASPNETCORE_PORT {raw:?} from web.config is outside the allowed range 1025-48000")]
    InvalidPort {
        /// The configured text.
        raw: String,
    },
    /// `ASPNETCORE_TOKEN` in web.config cannot be sent as a header value (critical).
    #[error("ASPNETCORE_TOKEN from web.config is not usable: {reason}")]
    InvalidToken {
        /// Why.
        reason: String,
    },
    /// No free port found in 10000–48000 after 10 draws.
    #[error("no free port found in the range 10000-48000")]
    NoFreePort,
    /// The process could not be created.
    #[error("could not start '{program}': {reason}")]
    Spawn {
        /// The program.
        program: String,
        /// The OS error.
        reason: String,
    },
    /// The process exited before it listened.
    #[error("process '{program}' (pid {pid}) exited during startup with {status}")]
    Exited {
        /// The program.
        program: String,
        /// Its pid.
        pid: u32,
        /// How it exited.
        status: String,
    },
    /// The process did not listen on its port in time.
    #[error(
        "process '{program}' (pid {pid}) did not listen on port {port} within {limit_s} s (startupTimeLimit)"
    )]
    Timeout {
        /// The program.
        program: String,
        /// Its pid.
        pid: u32,
        /// The port it was given.
        port: u16,
        /// `startupTimeLimit` in seconds.
        limit_s: u64,
    },
    /// The application is stopping (app_offline, recycle or shutdown).
    #[error("the application is shutting down")]
    Stopping,
}

/// A failed start: the cause and the child's first output (when not logging to a file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartFailure {
    /// The last attempt's error.
    pub error: StartError,
    /// Up to 30 000 characters of the child's stdout/stderr.
    pub output: Option<String>,
}

impl StartFailure {
    fn new(error: StartError) -> Self {
        Self {
            error,
            output: None,
        }
    }

    /// The text for the "Specific error detected by ANCM" block.
    pub fn detail(&self) -> String {
        match self.output.as_deref().map(str::trim_end) {
            Some(out) if !out.is_empty() => format!("{}\n\nProcess output:\n{out}", self.error),
            _ => self.error.to_string(),
        }
    }
}

/// What a configuration says about starting children, with `%VAR%` expanded.
pub(crate) struct LaunchSpec {
    pub(crate) site_dir: PathBuf,
    pub(crate) app_path: AppPath,
    pub(crate) command: CommandLine,
    pub(crate) config_env: Vec<(String, String)>,
    pub(crate) port: Result<PortChoice, InvalidPort>,
    pub(crate) token: Result<Option<PairingToken>, InvalidToken>,
    pub(crate) startup: Duration,
    pub(crate) shutdown: Duration,
    pub(crate) rapid_fails: u32,
    pub(crate) request_timeout: Duration,
    pub(crate) processes: usize,
    pub(crate) output: OutputMode,
    pub(crate) http_auth: String,
    pub(crate) websockets: bool,
}

impl std::fmt::Debug for LaunchSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Variable values may hold secrets (a fixed ASPNETCORE_TOKEN): names only.
        let names: Vec<&str> = self.config_env.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("LaunchSpec")
            .field("site_dir", &self.site_dir)
            .field("app_path", &self.app_path)
            .field("command", &self.command)
            .field("config_env_names", &names)
            .field("port", &self.port)
            .field("startup", &self.startup)
            .field("shutdown", &self.shutdown)
            .field("rapid_fails", &self.rapid_fails)
            .field("processes", &self.processes)
            .field("output", &self.output)
            .finish_non_exhaustive()
    }
}

/// Things that do not come from web.config.
#[derive(Debug, Clone)]
pub(crate) struct LaunchContext {
    pub(crate) site_dir: PathBuf,
    pub(crate) app_path: AppPath,
    pub(crate) http_auth: String,
    pub(crate) websockets: bool,
}

impl LaunchSpec {
    /// Derives the launch settings; `lookup` reads the gateway's environment.
    pub(crate) fn new(
        config: &AspNetCoreConfig,
        ctx: &LaunchContext,
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Self {
        let expanded = config.expanded(lookup);
        let command = command::command_line(
            &expanded.process_path,
            &expanded.arguments,
            &ctx.site_dir,
            lookup,
        );
        let var = |name: &str| {
            expanded
                .environment_variables
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone())
        };
        let port = command::port_choice(var(ancm_protocol::env::PORT).as_deref());
        let token = match var(ancm_protocol::env::TOKEN).filter(|t| !t.is_empty()) {
            Some(t) => PairingToken::new(&t).map(Some),
            None => Ok(None),
        };
        let redirect = config
            .handler_setting("enableOutOfProcessConsoleRedirection")
            .is_none_or(|v| !v.trim().eq_ignore_ascii_case("false"));
        let output = if !redirect {
            OutputMode::Null
        } else if config.stdout_log_enabled {
            OutputMode::File {
                base: expanded.stdout_log_file.clone(),
            }
        } else {
            OutputMode::Capture
        };
        Self {
            site_dir: ctx.site_dir.clone(),
            app_path: ctx.app_path.clone(),
            command,
            config_env: expanded.environment_variables,
            port,
            token,
            startup: Duration::from_secs(u64::from(config.startup_time_limit.min(3600))),
            shutdown: Duration::from_secs(u64::from(config.shutdown_time_limit.min(600))),
            rapid_fails: config.rapid_fails_per_minute.min(100),
            request_timeout: config.request_timeout,
            processes: usize::try_from(config.processes_per_application.clamp(1, 100)).unwrap_or(1),
            output,
            http_auth: ctx.http_auth.clone(),
            websockets: ctx.websockets,
        }
    }

    fn program(&self) -> String {
        self.command.program.display().to_string()
    }
}

/// A ready child and the target requests use.
#[derive(Debug, Clone)]
struct Ready {
    child: Arc<Child>,
    target: BackendTarget,
}

#[derive(Debug, Default)]
struct Slot {
    /// The serving child; read on every request, written on start/exit/stop.
    ready: RwLock<Option<Ready>>,
    /// Held while a start is in progress, so a slot never gets two processes.
    start: tokio::sync::Mutex<()>,
    /// How many starts have finished (successful or not).
    finished: AtomicU64,
    /// The most recent failed start and its sequence number, shared with waiters.
    last_failure: Mutex<Option<(u64, Arc<StartFailure>)>>,
}

impl Slot {
    fn ready_target(&self) -> Option<BackendTarget> {
        let guard = self.ready.read().ok()?;
        let ready = guard.as_ref()?;
        (!ready.child.has_exited()).then(|| ready.target.clone())
    }
}

#[derive(Debug)]
struct Shared {
    spec: LaunchSpec,
    slots: Box<[Slot]>,
    next: AtomicUsize,
    crashes: Mutex<VecDeque<Instant>>,
    stopping: AtomicBool,
}

/// The children of one configuration generation.
#[derive(Debug, Clone)]
pub(crate) struct Supervisor {
    shared: Arc<Shared>,
}

const RAPID_FAIL_WINDOW: Duration = Duration::from_secs(60);
const ATTEMPTS: u32 = 2;
const POLL: Duration = Duration::from_millis(250);

impl Supervisor {
    /// A supervisor with empty slots; nothing starts until [`Supervisor::acquire`].
    pub(crate) fn new(spec: LaunchSpec) -> Self {
        let slots = (0..spec.processes).map(|_| Slot::default()).collect();
        Self {
            shared: Arc::new(Shared {
                spec,
                slots,
                next: AtomicUsize::new(0),
                crashes: Mutex::new(VecDeque::new()),
                stopping: AtomicBool::new(false),
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

    /// A ready backend for one request: round-robin over the slots, starting the slot's
    /// child if needed (waiting for a start already in progress).
    pub(crate) async fn acquire(&self) -> Result<BackendTarget, Arc<StartFailure>> {
        let n = self.shared.slots.len().max(1);
        let idx = self.shared.next.fetch_add(1, Ordering::Relaxed) % n;
        if let Some(t) = self.shared.slots.get(idx).and_then(Slot::ready_target) {
            return Ok(t);
        }
        self.start_slot(idx).await
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

    async fn start_slot(&self, idx: usize) -> Result<BackendTarget, Arc<StartFailure>> {
        let stopping = || Arc::new(StartFailure::new(StartError::Stopping));
        let Some(slot) = self.shared.slots.get(idx) else {
            return Err(stopping());
        };
        let seen = slot.finished.load(Ordering::Acquire);
        let _guard = slot.start.lock().await;
        if let Some(t) = slot.ready_target() {
            return Ok(t);
        }
        if self.is_stopping() {
            return Err(stopping());
        }
        // A start finished while we waited and failed: share its result rather than making
        // every waiting request run its own 2 × startupTimeLimit start.
        if slot.finished.load(Ordering::Acquire) != seen
            && let Ok(last) = slot.last_failure.lock()
            && let Some((seq, failure)) = last.as_ref()
            && *seq > seen
        {
            return Err(failure.clone());
        }
        if let Ok(mut w) = slot.ready.write() {
            // A dead child's tree was already killed by its monitor.
            w.take();
        }
        let result = self.start_child(idx).await;
        let seq = slot.finished.fetch_add(1, Ordering::AcqRel) + 1;
        match result {
            Ok(ready) => {
                let target = ready.target.clone();
                let stored = match slot.ready.write() {
                    // Checked under the lock that `stop` takes after setting the flag, so
                    // either `stop` sees this child or we see the flag.
                    Ok(mut w) if !self.is_stopping() => {
                        ready.child.mark_serving();
                        *w = Some(ready.clone());
                        true
                    }
                    _ => false,
                };
                if stored {
                    Ok(target)
                } else {
                    shutdown::stop_child(
                        &ready.child,
                        Some(ready.target.addr),
                        &self.shared.spec.app_path,
                        self.shared.spec.shutdown,
                    )
                    .await;
                    Err(stopping())
                }
            }
            Err(failure) => {
                let failure = Arc::new(failure);
                if let Ok(mut last) = slot.last_failure.lock() {
                    *last = Some((seq, failure.clone()));
                }
                Err(failure)
            }
        }
    }

    fn rapid_fail_blocked(&self) -> bool {
        let Ok(mut crashes) = self.shared.crashes.lock() else {
            return false;
        };
        let now = Instant::now();
        while crashes
            .front()
            .is_some_and(|t| now.duration_since(*t) >= RAPID_FAIL_WINDOW)
        {
            crashes.pop_front();
        }
        crashes.len() > self.shared.spec.rapid_fails as usize
    }

    async fn start_child(&self, idx: usize) -> Result<Ready, StartFailure> {
        let spec = &self.shared.spec;
        let program = spec.program();
        if self.rapid_fail_blocked() {
            let error = StartError::RapidFailLimit {
                limit: spec.rapid_fails,
            };
            tracing::error!(slot = idx, %error, "not starting the child");
            return Err(StartFailure::new(error));
        }
        let port_choice = match &spec.port {
            Ok(p) => p.clone(),
            Err(e) => {
                let error = StartError::InvalidPort { raw: e.raw.clone() };
                tracing::error!(slot = idx, %error, "not starting the child (critical, no retry)");
                return Err(StartFailure::new(error));
            }
        };
        let token = match &spec.token {
            Ok(Some(t)) => t.clone(),
            Ok(None) => PairingToken::generate(),
            Err(e) => {
                let error = StartError::InvalidToken {
                    reason: e.to_string(),
                };
                tracing::error!(slot = idx, %error, "not starting the child (critical, no retry)");
                return Err(StartFailure::new(error));
            }
        };
        let mut last = StartFailure::new(StartError::NoFreePort);
        for attempt in 1..=ATTEMPTS {
            if self.is_stopping() {
                return Err(StartFailure::new(StartError::Stopping));
            }
            let (port, port_text) = match &port_choice {
                PortChoice::Fixed { raw, port } => (*port, raw.clone()),
                PortChoice::Random => match random_free_port() {
                    Some(p) => (p, p.to_string()),
                    None => {
                        tracing::warn!(slot = idx, attempt, "no free port found in 10000-48000");
                        last = StartFailure::new(StartError::NoFreePort);
                        continue;
                    }
                },
            };
            let env = command::child_env(
                &EnvInputs {
                    config_vars: &spec.config_env,
                    port: &port_text,
                    app_path: spec.app_path.as_str(),
                    token: token.expose_secret(),
                    http_auth: &spec.http_auth,
                    websockets: spec.websockets,
                },
                &|n| std::env::var(n).ok(),
            );
            let weak = Arc::downgrade(&self.shared);
            let on_exit: process::OnExit = Box::new(move |pid: u32, status: &str, crash: bool| {
                if let Some(shared) = weak.upgrade() {
                    child_exited(&shared, idx, pid, status, crash);
                }
            });
            let child = match Child::spawn(
                SpawnSpec {
                    command: &spec.command,
                    cwd: &spec.site_dir,
                    env,
                    output: &spec.output,
                },
                port,
                token.clone(),
                on_exit,
            ) {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(slot = idx, attempt, program = %program, error = %e, "failed to start the child process");
                    last = StartFailure::new(StartError::Spawn {
                        program: program.clone(),
                        reason: e.to_string(),
                    });
                    continue;
                }
            };
            tracing::info!(slot = idx, attempt, pid = child.pid(), port, program = %program, log_file = ?child.log_file(), "started the child process");
            match self.wait_ready(&child, port).await {
                Ok(listening) => {
                    let listener_pid = listening.pid.unwrap_or(child.pid());
                    tracing::info!(slot = idx, pid = child.pid(), listener_pid, addr = %listening.addr, "the child is listening");
                    let target = BackendTarget {
                        addr: listening.addr,
                        token: Some(token.clone()),
                        app_path: spec.app_path.clone(),
                        process: Some(Arc::new(Child::backend_process(listener_pid))),
                        request_timeout: RequestTimeout::from_web_config(spec.request_timeout),
                    };
                    return Ok(Ready { child, target });
                }
                Err(error) => {
                    child.mark_intentional();
                    child.kill();
                    child.wait_exit(Duration::from_secs(5)).await;
                    tracing::warn!(slot = idx, attempt, pid = child.pid(), port, %error, "start attempt failed");
                    let stop = error == StartError::Stopping;
                    last = StartFailure {
                        error,
                        output: child.captured(),
                    };
                    if stop {
                        return Err(last);
                    }
                }
            }
        }
        tracing::error!(slot = idx, program = %program, error = %last.error, "failed to start the child process after {ATTEMPTS} attempts");
        Err(last)
    }

    async fn wait_ready(
        &self,
        child: &Child,
        port: u16,
    ) -> Result<readiness::Listening, StartError> {
        let spec = &self.shared.spec;
        let deadline = Instant::now() + spec.startup;
        let pid = child.pid();
        loop {
            if let Some(status) = child.exit_status() {
                return Err(StartError::Exited {
                    program: spec.program(),
                    pid,
                    status,
                });
            }
            if self.is_stopping() {
                return Err(StartError::Stopping);
            }
            let found = tokio::task::spawn_blocking(move || readiness::check(pid, port))
                .await
                .ok()
                .flatten();
            if let Some(listening) = found {
                return Ok(listening);
            }
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return Err(StartError::Timeout {
                    program: spec.program(),
                    pid,
                    port,
                    limit_s: spec.startup.as_secs(),
                });
            }
            // Wakes at once if the child exits.
            child.wait_exit(remaining.min(POLL)).await;
        }
    }

    /// Stops every child gracefully (in parallel) and waits for starts in progress; the
    /// supervisor starts nothing afterwards.
    pub(crate) async fn stop(&self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        let mut tasks = Vec::new();
        for slot in self.shared.slots.iter() {
            let taken = slot.ready.write().ok().and_then(|mut w| w.take());
            if let Some(ready) = taken {
                let shared = self.shared.clone();
                tasks.push(tokio::spawn(async move {
                    shutdown::stop_child(
                        &ready.child,
                        Some(ready.target.addr),
                        &shared.spec.app_path,
                        shared.spec.shutdown,
                    )
                    .await;
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

    /// Pids of the serving children (for tests and diagnostics).
    pub(crate) fn pids(&self) -> Vec<u32> {
        self.shared
            .slots
            .iter()
            .filter_map(|s| {
                let r = s.ready.read().ok()?;
                r.as_ref()
                    .filter(|r| !r.child.has_exited())
                    .map(|r| r.child.pid())
            })
            .collect()
    }
}

/// The monitor's report: frees the slot and counts a crash for rapid-fail protection.
fn child_exited(shared: &Shared, idx: usize, pid: u32, status: &str, crash: bool) {
    if let Some(slot) = shared.slots.get(idx)
        && let Ok(mut w) = slot.ready.write()
        && w.as_ref().is_some_and(|r| r.child.pid() == pid)
    {
        w.take();
    }
    if crash {
        let count = shared.crashes.lock().map_or(0, |mut c| {
            c.push_back(Instant::now());
            c.len()
        });
        tracing::warn!(slot = idx, pid, %status, recent_unexpected_exits = count, "the child process exited unexpectedly; the next request starts a new one");
    } else {
        tracing::debug!(slot = idx, pid, %status, "child process exited");
    }
}

/// A random port in 10000–48000 that is free on 127.0.0.1 (and ::1 where IPv6 exists);
/// up to 10 draws as ANCM does.
fn random_free_port() -> Option<u16> {
    let state = std::collections::hash_map::RandomState::new();
    for i in 0..10u64 {
        let mut h = state.build_hasher();
        h.write_u64(i);
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0),
        );
        let port = 10_000 + u16::try_from(h.finish() % 38_001).unwrap_or(0);
        if port_is_free(port) {
            return Some(port);
        }
    }
    None
}

fn port_is_free(port: u16) -> bool {
    use std::net::{Ipv4Addr, Ipv6Addr, TcpListener};
    if TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_err() {
        return false;
    }
    match TcpListener::bind((Ipv6Addr::LOCALHOST, port)) {
        Ok(_) => true,
        Err(e) => e.kind() != std::io::ErrorKind::AddrInUse,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_ports_are_in_range_and_free() {
        for _ in 0..20 {
            let p = random_free_port().expect("a free port");
            assert!((10_000..=48_000).contains(&p));
        }
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        assert!(!port_is_free(l.local_addr().expect("addr").port()));
    }

    #[test]
    fn failure_detail_includes_output() {
        let f = StartFailure {
            error: StartError::NoFreePort,
            output: Some("boom\n".into()),
        };
        assert!(f.detail().ends_with("Process output:\nboom"));
        assert_eq!(
            StartFailure::new(StartError::Stopping).detail(),
            "the application is shutting down"
        );
    }
}
