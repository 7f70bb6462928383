//! Starting one slot's child: what a start decides once (rapid-fail check, how the port is
//! chosen, the token), then up to two attempts, each spawning the child, waiting until it
//! listens and cleaning up when it does not.
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

/// How often readiness is looked at while the child starts.
const POLL: Duration = Duration::from_millis(250);

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
        let env = environment::child_env(
            &EnvInputs {
                config_vars: &spec.config_env,
                port: &port_text,
                app_path: spec.context.app_path.as_str(),
                token: token.expose_secret(),
                http_auth: &spec.context.http_auth,
                websockets: spec.context.websockets,
            },
            &environment::worker_env,
        );
        let weak = Arc::downgrade(&self.shared);
        let stats = spec.context.stats.clone();
        let on_exit: process::OnExit = Box::new(move |pid: u32, status: &str, cause| {
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
        match self.wait_ready(&child, port).await {
            Ok(listening) => {
                let listener_pid = listening.pid.unwrap_or(child.pid());
                tracing::info!(slot = idx, pid = child.pid(), listener_pid, addr = %listening.addr, "the child is listening");
                let target = BackendTarget {
                    addr: listening.addr,
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

    /// Waits up to `startupTimeLimit` for the child or a descendant to listen on `port`.
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
}
