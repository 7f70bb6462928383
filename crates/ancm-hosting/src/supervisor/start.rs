//! Starting one slot's child: what a start decides once (rapid-fail check, how the port is
//! chosen, the token), then up to two attempts, each spawning the child, waiting until it
//! listens and cleaning up when it does not.
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ancm_front::{BackendTarget, RequestTimeout};
use ancm_protocol::PairingToken;

use super::environment::{self, EnvInputs};
use super::ports::{self, PortChoice};
use super::process::{self, Child, SpawnSpec};
use super::{Ready, StartError, StartFailure, Supervisor, child_exited, readiness};
use crate::status::ExitCause;

/// Attempts per start: a new port each, the same token.
const ATTEMPTS: u32 = 2;

/// The first pause between readiness checks; each pause doubles up to [`POLL_MAX`]. A
/// backend that listens within milliseconds is found within about a millisecond of it
/// (protocol §8.43), where ANCM's fixed 250 ms made most first requests wait for the poll.
const POLL_FIRST: Duration = Duration::from_millis(1);
/// The longest pause between readiness checks: how late, at most, a slow starter is seen.
const POLL_MAX: Duration = Duration::from_millis(10);
/// A pause is at least this many times as long as the last check took, so the checks use at
/// most about a fifth of a CPU however slow they are.
const POLL_COST_FACTOR: u32 = 4;
/// How often a check reads the kernel's whole TCP tables rather than their leading listeners
/// (ANCM's interval): a listener is found even if a kernel ever lists sockets in another order.
const WHOLE_TABLES_EVERY: Duration = Duration::from_millis(250);

/// What a start decides once, before its attempts.
struct Plan {
    port: PortChoice,
    token: PairingToken,
}

impl Supervisor {
    /// Starts slot `idx`'s child: resolves the start, then makes up to [`ATTEMPTS`] attempts.
    pub(super) async fn start_child(&self, idx: usize) -> Result<Ready, StartFailure> {
        let plan = self.resolve(idx)?;
        let mut last = StartFailure::new(StartError::NoFreePort);
        for attempt in 1..=ATTEMPTS {
            if self.is_stopping() {
                return Err(StartFailure::new(StartError::Stopping));
            }
            match self.attempt(idx, attempt, &plan).await {
                Ok(ready) => return Ok(ready),
                Err(failure) if failure.error == StartError::Stopping => return Err(failure),
                Err(failure) => last = failure,
            }
        }
        tracing::error!(slot = idx, program = %self.shared.spec.program(), error = %last.error, "failed to start the child process after {ATTEMPTS} attempts");
        Err(last)
    }

    /// What is decided once per start. Refused when the configuration cannot start anything
    /// (a self-contained Windows publish), when rapid-fail protection blocks starts, or when
    /// web.config's port or token is unusable (critical: no retry).
    fn resolve(&self, idx: usize) -> Result<Plan, StartFailure> {
        let spec = &self.shared.spec;
        if let Some(error) = &spec.refusal {
            tracing::error!(slot = idx, %error, "not starting the child (critical, no retry)");
            return Err(StartFailure::new(error.clone()));
        }
        if self.shared.rapid_fails.blocked(spec.rapid_fails) {
            let error = StartError::RapidFailLimit {
                limit: spec.rapid_fails,
            };
            tracing::error!(slot = idx, %error, "not starting the child");
            return Err(StartFailure::new(error));
        }
        let port = match &spec.port {
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
        Ok(Plan { port, token })
    }

    /// One attempt: a port, the process, then its readiness. A child that does not become
    /// ready is killed and waited for; its first output goes into the failure.
    async fn attempt(&self, idx: usize, attempt: u32, plan: &Plan) -> Result<Ready, StartFailure> {
        let spec = &self.shared.spec;
        let program = spec.program();
        let token = &plan.token;
        let (port, port_text) = match &plan.port {
            PortChoice::Fixed { raw, port } => (*port, raw.clone()),
            PortChoice::Random => match ports::random_free_port() {
                Some(p) => (p, p.to_string()),
                None => {
                    tracing::warn!(slot = idx, attempt, "no free port found in 10000-48000");
                    return Err(StartFailure::new(StartError::NoFreePort));
                }
            },
        };
        let unix_socket: Option<Arc<Path>> = spec
            .unix_socket
            .then(|| Arc::from(ports::unix_socket_path()));
        let unix_text = unix_socket.as_deref().map(Path::to_string_lossy);
        let env = environment::child_env(
            &EnvInputs {
                config_vars: &spec.config_env,
                port: &port_text,
                app_path: spec.context.app_path.as_str(),
                token: token.expose_secret(),
                http_auth: &spec.context.http_auth,
                websockets: spec.context.websockets,
                unix_socket: unix_text.as_deref(),
            },
            &environment::worker_env,
        );
        let weak = Arc::downgrade(&self.shared);
        let stats = spec.context.stats.clone();
        let socket_file = unix_socket.clone();
        let on_exit: process::OnExit = Box::new(move |pid: u32, status: &str, cause| {
            if let Some(path) = &socket_file {
                // The backend's listener is gone with it; nothing else uses the name.
                let _ = std::fs::remove_file(path);
            }
            let cause = match weak.upgrade() {
                Some(shared) => child_exited(&shared, idx, pid, status, cause),
                None => cause,
            };
            stats.exited(cause);
        });
        let child = match Child::spawn(
            SpawnSpec {
                command: &spec.command,
                cwd: &spec.context.site_dir,
                env,
                output: &spec.output,
            },
            port,
            token.clone(),
            on_exit,
        )
        .await
        {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(slot = idx, attempt, program = %program, error = %e, "failed to start the child process");
                return Err(StartFailure::new(StartError::Spawn {
                    program,
                    reason: e.to_string(),
                }));
            }
        };
        spec.context.stats.started();
        tracing::info!(slot = idx, attempt, pid = child.pid(), port, program = %program, log_file = ?child.log_file(), "started the child process");
        match self.wait_ready(&child, port, unix_socket.as_deref()).await {
            Ok(listening) => {
                let listener_pid = listening.pid.unwrap_or(child.pid());
                tracing::info!(slot = idx, pid = child.pid(), listener_pid, addr = %listening.addr, unix_socket = ?unix_socket, "the child is listening");
                let target = BackendTarget {
                    addr: listening.addr,
                    unix_socket,
                    token: Some(token.clone()),
                    app_path: spec.context.app_path.clone(),
                    process: Some(Arc::new(Child::backend_process(listener_pid))),
                    request_timeout: RequestTimeout::from_web_config(spec.request_timeout),
                };
                Ok(Ready {
                    child,
                    target,
                    in_flight: Default::default(),
                    vitals: Default::default(),
                    served: Default::default(),
                    since: Instant::now(),
                    passive_threshold: spec.health.passive_threshold,
                })
            }
            Err(error) => {
                child.mark_stopping(ExitCause::StartFailure);
                child.kill();
                child.wait_exit(Duration::from_secs(5)).await;
                tracing::warn!(slot = idx, attempt, pid = child.pid(), port, %error, "start attempt failed");
                Err(StartFailure {
                    error,
                    output: child.captured(),
                })
            }
        }
    }

    /// Waits up to `startupTimeLimit` for the child or a descendant to listen on `port`, or on
    /// `unix_socket` when the child is reached over one (its address is then
    /// `127.0.0.1:port`, a name for logs).
    async fn wait_ready(
        &self,
        child: &Child,
        port: u16,
        unix_socket: Option<&Path>,
    ) -> Result<readiness::Listening, StartError> {
        let spec = &self.shared.spec;
        let deadline = Instant::now() + spec.startup;
        let pid = child.pid();
        let mut pause = POLL_FIRST;
        let mut whole_tables_at = Instant::now() + WHOLE_TABLES_EVERY;
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
            let now = Instant::now();
            let tables = if now >= whole_tables_at {
                whole_tables_at = now + WHOLE_TABLES_EVERY;
                readiness::Tables::Whole
            } else {
                readiness::Tables::Listeners
            };
            let unix_socket = unix_socket.map(Path::to_path_buf);
            // The check's own time, without the wait for a blocking thread.
            let checked = tokio::task::spawn_blocking(move || {
                let started = Instant::now();
                let found = match unix_socket {
                    Some(path) => {
                        readiness::check_unix(pid, &path).map(|owner| readiness::Listening {
                            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
                            pid: owner,
                        })
                    }
                    None => readiness::check(pid, port, tables),
                };
                (found, started.elapsed())
            })
            .await;
            let cost = match checked {
                Ok((Some(listening), _)) => return Ok(listening),
                Ok((None, cost)) => cost,
                Err(_) => Duration::ZERO,
            };
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return Err(StartError::Timeout {
                    program: spec.program(),
                    pid,
                    port,
                    limit_s: spec.startup.as_secs(),
                });
            }
            let wait = pause.max(cost * POLL_COST_FACTOR);
            pause = (pause * 2).min(POLL_MAX);
            // Wakes at once if the child exits.
            child.wait_exit(remaining.min(wait)).await;
        }
    }
}
