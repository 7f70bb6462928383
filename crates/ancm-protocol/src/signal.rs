//! Waiting for the OS signals that ask a process of this protocol to stop: SIGINT or SIGTERM
//! on Unix, Ctrl+C or Ctrl+Break on Windows (protocol §2.9, §8.5). Both a backend (after
//! the shutdown event, or instead of it) and the `ancm` gateway wait for them.
//!
//! The one piece of I/O in this crate, behind the `signal` feature.
//!
//! ```no_run
//! # async fn demo() {
//! let name = ancm_protocol::signal::stop_requested().await;
//! println!("{name} received: stopping");
//! # }
//! ```

/// Resolves with the signal's name (`"SIGINT"`, `"SIGTERM"`, `"Ctrl+C"`, `"Ctrl+Break"`) on
/// the first stop signal. A signal that cannot be watched is logged once and left out; if none
/// can, this never resolves (the process can still be killed).
pub async fn stop_requested() -> &'static str {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        tokio::select! {
            name = watch("SIGINT", signal(SignalKind::interrupt())) => name,
            name = watch("SIGTERM", signal(SignalKind::terminate())) => name,
        }
    }
    #[cfg(windows)]
    {
        use tokio::signal::windows::{ctrl_break, ctrl_c};
        tokio::select! {
            name = watch("Ctrl+C", ctrl_c()) => name,
            name = watch("Ctrl+Break", ctrl_break()) => name,
        }
    }
    #[cfg(not(any(unix, windows)))]
    {
        match tokio::signal::ctrl_c().await {
            Ok(()) => "Ctrl+C",
            Err(error) => {
                tracing::warn!(%error, signal = "Ctrl+C", "cannot watch the signal");
                std::future::pending().await
            }
        }
    }
}

/// The signal streams of Unix and Windows differ in type but share `recv`.
#[cfg(any(unix, windows))]
trait Recv {
    async fn recv_one(&mut self);
}

#[cfg(unix)]
impl Recv for tokio::signal::unix::Signal {
    async fn recv_one(&mut self) {
        self.recv().await;
    }
}

#[cfg(windows)]
impl Recv for tokio::signal::windows::CtrlC {
    async fn recv_one(&mut self) {
        self.recv().await;
    }
}

#[cfg(windows)]
impl Recv for tokio::signal::windows::CtrlBreak {
    async fn recv_one(&mut self) {
        self.recv().await;
    }
}

#[cfg(any(unix, windows))]
async fn watch<S: Recv>(name: &'static str, stream: std::io::Result<S>) -> &'static str {
    match stream {
        Ok(mut stream) => {
            stream.recv_one().await;
            name
        }
        Err(error) => {
            tracing::warn!(%error, signal = name, "cannot watch the signal");
            std::future::pending().await
        }
    }
}

#[cfg(all(test, unix))]
mod tests {
    #[tokio::test]
    async fn resolves_on_sigterm() {
        let waiter = tokio::spawn(super::stop_requested());
        // Let the handlers register before the signal is raised.
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        nix_kill_self();
        let name = tokio::time::timeout(std::time::Duration::from_secs(5), waiter)
            .await
            .expect("the signal arrives")
            .expect("the task ends");
        assert_eq!(name, "SIGTERM");
    }

    fn nix_kill_self() {
        let status = std::process::Command::new("kill")
            .args(["-TERM", &std::process::id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
    }
}
