//! One running child: spawned in its own process group (Unix) or kill-on-close job object
//! (Windows), with the parent-death signal on Linux, watched by a task that reports its exit
//! and kills what is left of its tree.
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::time::{Duration, SystemTime};

use ancm_protocol::PairingToken;
use tokio::sync::{Notify, watch};

use super::command::CommandLine;
use super::stdout::{Captured, OutputMode, RotatingLog, stdio_for};
use crate::status::ExitCause;

/// What starting a process needs.
pub(crate) struct SpawnSpec<'a> {
    pub(crate) command: &'a CommandLine,
    pub(crate) cwd: &'a Path,
    pub(crate) env: Vec<(OsString, OsString)>,
    pub(crate) output: &'a OutputMode,
}

/// A signal for the child's group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Signal {
    /// SIGINT (Unix) / Ctrl+Break (Windows).
    Interrupt,
    /// SIGTERM (Unix); nothing on Windows.
    Terminate,
}

/// Called once when the child exits: `(pid, description of the exit, why)`. The cause is
/// the reason it was asked to stop; else [`ExitCause::Crash`] for a child that was serving,
/// [`ExitCause::StartFailure`] for one that was not yet.
pub(crate) type OnExit = Box<dyn FnOnce(u32, &str, ExitCause) + Send>;

/// A started child process.
#[derive(Debug)]
pub(crate) struct Child {
    pid: u32,
    port: u16,
    token: PairingToken,
    exit: watch::Receiver<Option<String>>,
    kill: Arc<Notify>,
    /// Why it was asked to stop: 1 + the index of an [`ExitCause`] in [`ExitCause::ALL`];
    /// 0 while it was not.
    stop_cause: AtomicU8,
    serving: AtomicBool,
    unreachable: AtomicBool,
    exited: Arc<AtomicBool>,
    captured: Option<Captured>,
    log_file: Option<PathBuf>,
    /// The size-capped log its output is copied into, if any.
    rotating_log: Option<Arc<RotatingLog>>,
    started_at: SystemTime,
}

impl Child {
    /// Starts the process. `on_exit` runs on the monitor task when it exits.
    pub(crate) async fn spawn(
        spec: SpawnSpec<'_>,
        port: u16,
        token: PairingToken,
        on_exit: OnExit,
    ) -> std::io::Result<Arc<Child>> {
        let mut cmd = tokio::process::Command::new(&spec.command.program);
        #[cfg(windows)]
        {
            use windows_sys::Win32::System::Threading::CREATE_NEW_PROCESS_GROUP;
            // One string, as ANCM passes it: `"path" arguments` (std quotes the program).
            cmd.raw_arg(&spec.command.raw_args);
            // A new process group, so Ctrl+Break reaches the child and not the gateway.
            cmd.creation_flags(CREATE_NEW_PROCESS_GROUP);
        }
        #[cfg(not(windows))]
        {
            cmd.args(&spec.command.args);
            // Its own process group, so signals and the final kill reach the whole tree.
            cmd.process_group(0);
        }
        cmd.current_dir(spec.cwd)
            .envs(spec.env)
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true);
        let stdio = stdio_for(spec.output, spec.cwd);
        let log_file = stdio.log_file;
        cmd.stdout(stdio.stdout).stderr(stdio.stderr);
        // Linux: forked from a thread that lives as long as the gateway, with the
        // parent-death signal set, so a SIGKILLed gateway takes the child with it.
        #[cfg(target_os = "linux")]
        let mut child = super::linux::spawn(cmd).await?;
        #[cfg(not(target_os = "linux"))]
        let mut child = cmd.spawn()?;
        let pid = child.id().unwrap_or(0);
        let started_at = SystemTime::now();
        if let Some(log) = &stdio.rotating {
            if let Some(out) = child.stdout.take() {
                log.drain(out);
            }
            if let Some(err) = child.stderr.take() {
                log.drain(err);
            }
        }
        let captured = if matches!(spec.output, OutputMode::Capture) {
            let c = Captured::default();
            if let Some(out) = child.stdout.take() {
                c.drain(out);
            }
            if let Some(err) = child.stderr.take() {
                c.drain(err);
            }
            Some(c)
        } else {
            None
        };
        #[cfg(windows)]
        let job = match child.raw_handle() {
            Some(h) => match super::windows::Job::create_for(h) {
                Ok(job) => Some(Arc::new(job)),
                Err(error) => {
                    // ANCM proceeds without a job too (e.g. nested-job restrictions).
                    tracing::warn!(pid, %error, "could not put the child in a kill-on-close job object");
                    None
                }
            },
            None => None,
        };
        let (tx, rx) = watch::channel(None);
        let kill = Arc::new(Notify::new());
        let exited = Arc::new(AtomicBool::new(false));
        let this = Arc::new(Child {
            pid,
            port,
            token,
            exit: rx,
            kill: kill.clone(),
            stop_cause: AtomicU8::new(0),
            serving: AtomicBool::new(false),
            unreachable: AtomicBool::new(false),
            exited: exited.clone(),
            captured,
            log_file,
            rotating_log: stdio.rotating.clone(),
            started_at,
        });
        let weak = Arc::downgrade(&this);
        let mut tree = Tree {
            done: false,
            pid,
            #[cfg(windows)]
            job,
        };
        tokio::spawn(async move {
            let status = tokio::select! {
                s = child.wait() => s,
                () = kill.notified() => {
                    tree.kill();
                    let _ = child.start_kill();
                    child.wait().await
                }
            };
            // Descendants left behind (a launcher's children) go with the child, as ANCM
            // kills the remaining job processes.
            tree.reaped();
            let desc = match status {
                Ok(s) => describe(s),
                Err(e) => format!("wait failed: {e}"),
            };
            // A child nobody holds any more belonged to an application that is gone.
            let cause = weak
                .upgrade()
                .map_or(ExitCause::Shutdown, |c| c.exit_cause());
            exited.store(true, Ordering::Release);
            let _ = tx.send(Some(desc.clone()));
            on_exit(pid, &desc, cause);
        });
        Ok(this)
    }

    /// The child's process id.
    pub(crate) fn pid(&self) -> u32 {
        self.pid
    }

    /// The port it was told to listen on.
    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    /// Its pairing token.
    pub(crate) fn token(&self) -> &PairingToken {
        &self.token
    }

    /// The stdout log file of this start, if any.
    pub(crate) fn log_file(&self) -> Option<&Path> {
        self.log_file.as_deref()
    }

    /// Output captured so far (when not logging to a file).
    pub(crate) fn captured(&self) -> Option<String> {
        self.captured.as_ref().map(Captured::text)
    }

    /// How it exited, once it has.
    pub(crate) fn exit_status(&self) -> Option<String> {
        self.exit.borrow().clone()
    }

    /// Whether it has exited.
    pub(crate) fn has_exited(&self) -> bool {
        self.exited.load(Ordering::Acquire)
    }

    /// Marks the child as serving requests: from now on an unasked-for exit is a crash.
    pub(crate) fn mark_serving(&self) {
        self.serving.store(true, Ordering::Release);
    }

    /// Marks the coming exit as asked for (not a crash), for `cause`. The first cause
    /// given stays.
    pub(crate) fn mark_stopping(&self, cause: ExitCause) {
        let code = ExitCause::ALL
            .iter()
            .position(|c| *c == cause)
            .and_then(|i| u8::try_from(i + 1).ok())
            .unwrap_or(0);
        let _ = self
            .stop_cause
            .compare_exchange(0, code, Ordering::AcqRel, Ordering::Acquire);
    }

    /// Why it exits (or would exit now): the stop cause, else a crash when it was serving,
    /// else a failed start.
    fn exit_cause(&self) -> ExitCause {
        match self.stop_cause.load(Ordering::Acquire) {
            0 if self.serving.load(Ordering::Acquire) => ExitCause::Crash,
            0 => ExitCause::StartFailure,
            code => ExitCause::ALL
                .get(usize::from(code) - 1)
                .copied()
                .unwrap_or(ExitCause::Shutdown),
        }
    }

    /// Opens its size-capped log file again by name (SIGHUP, after logrotate); a child
    /// that writes its log file itself keeps its handle.
    pub(crate) fn reopen_log(&self) {
        if let Some(log) = &self.rotating_log {
            log.reopen();
        }
    }

    /// When it was spawned.
    pub(crate) fn started_at(&self) -> SystemTime {
        self.started_at
    }

    /// Waits up to `timeout` for the exit; true if it exited.
    pub(crate) async fn wait_exit(&self, timeout: Duration) -> bool {
        let mut rx = self.exit.clone();
        matches!(
            tokio::time::timeout(timeout, rx.wait_for(Option::is_some)).await,
            Ok(Ok(_))
        )
    }

    /// Kills the whole tree now (SIGKILL to the group / terminate the job).
    pub(crate) fn kill(&self) {
        self.kill.notify_one();
    }

    /// Sends `signal` to the child's group; false if it could not be sent.
    pub(crate) fn signal(&self, signal: Signal) -> bool {
        #[cfg(unix)]
        {
            use nix::sys::signal::{Signal as S, killpg};
            let Ok(pgid) = i32::try_from(self.pid) else {
                return false;
            };
            let sig = match signal {
                Signal::Interrupt => S::SIGINT,
                Signal::Terminate => S::SIGTERM,
            };
            killpg(nix::unistd::Pid::from_raw(pgid), sig).is_ok()
        }
        #[cfg(windows)]
        {
            match signal {
                Signal::Interrupt => super::windows::ctrl_break(self.pid),
                Signal::Terminate => false,
            }
        }
    }

    /// Marks the child as unable to serve: its port refused a connection, though its exit
    /// is not recorded (yet).
    pub(crate) fn mark_unreachable(&self) {
        self.unreachable.store(true, Ordering::Release);
    }

    /// Whether requests may be given to it: it has not exited and its port did not refuse a
    /// connection.
    pub(crate) fn can_serve(&self) -> bool {
        !self.has_exited() && !self.unreachable.load(Ordering::Acquire)
    }

    /// The backend process record for `BackendTarget` (pid of the listener).
    pub(crate) fn backend_process(listener_pid: u32) -> ancm_front::BackendProcess {
        #[cfg(windows)]
        return ancm_front::BackendProcess::with_handle(
            listener_pid,
            super::windows::open_for_dup(listener_pid),
        );
        #[cfg(not(windows))]
        ancm_front::BackendProcess::new(listener_pid)
    }
}

/// The child's whole tree: its process group (Unix) or job object (Windows).
struct Tree {
    /// Set once the child was reaped and the tree killed.
    done: bool,
    pid: u32,
    #[cfg(windows)]
    job: Option<Arc<super::windows::Job>>,
}

impl Tree {
    /// After the child was reaped: kill what is left and disarm the drop guard.
    fn reaped(&mut self) {
        self.kill();
        self.done = true;
    }

    /// Kills every process of the tree; a group that is already gone is not an error.
    fn kill(&self) {
        #[cfg(unix)]
        {
            use nix::sys::signal::{Signal, killpg};
            if let Ok(pgid) = i32::try_from(self.pid)
                && pgid > 0
            {
                let _ = killpg(nix::unistd::Pid::from_raw(pgid), Signal::SIGKILL);
            }
        }
        #[cfg(windows)]
        {
            let _ = self.pid;
            if let Some(job) = &self.job {
                job.terminate();
            }
        }
    }
}

impl Drop for Tree {
    /// The monitor task is dropped before the child exited (runtime shutting down without
    /// `Application::shutdown`): take the whole tree down rather than orphan it.
    fn drop(&mut self) {
        if !self.done {
            self.kill();
        }
    }
}

fn describe(status: std::process::ExitStatus) -> String {
    if let Some(code) = status.code() {
        return format!("exit code {code}");
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(sig) = status.signal() {
            return format!("killed by signal {sig}");
        }
    }
    status.to_string()
}
