//! What SIGHUP reloads: the one place that turns the signal into reload actions.
//!
//! Each part of the gateway that can take new files without a restart (the TLS
//! certificates, every application's web.config — a changed one is recycled as on a file
//! change — and the log files, opened again by name for logrotate) adds an action to
//! [`Reloads`]; on SIGHUP every action runs, in the
//! order added. An action only starts its reload (its own task does the work and logs the
//! outcome), so a slow one does not hold up the others. SIGHUP's default action ends the
//! process: the handler is installed only when there is something to reload. Windows has
//! no SIGHUP; there the actions run only from their own triggers (file watchers).
use std::sync::Arc;

/// One reload action: starts a reload and returns.
type Action = Arc<dyn Fn() + Send + Sync>;

/// The reload actions SIGHUP runs.
#[derive(Default)]
pub struct Reloads {
    actions: Vec<(&'static str, Action)>,
}

impl Reloads {
    /// No actions yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `action`, named `what` in the log.
    pub fn add(&mut self, what: &'static str, action: impl Fn() + Send + Sync + 'static) {
        self.actions.push((what, Arc::new(action)));
    }

    /// Runs every action on each SIGHUP, on a task of the current runtime, for as long as the
    /// runtime runs. Does nothing when there are no actions.
    #[cfg(unix)]
    pub fn on_sighup(self) -> std::io::Result<()> {
        use tokio::signal::unix::{SignalKind, signal};
        if self.actions.is_empty() {
            return Ok(());
        }
        let mut hangups = signal(SignalKind::hangup())?;
        tokio::spawn(async move {
            while hangups.recv().await.is_some() {
                for (what, action) in &self.actions {
                    tracing::info!(what, "SIGHUP received: reloading");
                    action();
                }
            }
        });
        Ok(())
    }

    /// Windows has no SIGHUP: the actions run only from their own triggers.
    #[cfg(not(unix))]
    pub fn on_sighup(self) -> std::io::Result<()> {
        drop(self.actions);
        Ok(())
    }
}
