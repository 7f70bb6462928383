//! systemd integration (protocol §8.37): the readiness protocol (`NOTIFY_SOCKET`: `READY=1`,
//! `STATUS=`, `WATCHDOG=1`, `STOPPING=1`) and socket activation (`LISTEN_FDS`). Both are
//! no-ops when the variables are not set, which is everywhere but under systemd (or a test
//! that plays its part).
//!
//! ```text
//! [Service]
//! Type=notify
//! WatchdogSec=30
//! ExecStart=/usr/local/bin/ancm run /srv/site --listen 127.0.0.1:8080 --preload
//! ```
use std::time::Duration;

/// Tells the service manager the gateway is ready (listeners bound, preloaded applications
/// started), with `status` as its status line.
pub fn ready(status: &str) {
    send(&[Message::Ready, Message::Status(status)]);
}

/// Tells the service manager the gateway is stopping, with `status` as its status line.
pub fn stopping(status: &str) {
    send(&[Message::Stopping, Message::Status(status)]);
}

/// With `WatchdogSec=` set (`WATCHDOG_USEC` for this process), sends `WATCHDOG=1` at half
/// the interval, on a task of the current runtime, for as long as it runs. The runtime that
/// sends it also accepts connections and serves the admin listener, so a stuck runtime
/// stops the pings and systemd restarts the gateway.
pub fn spawn_watchdog() {
    let Some(interval) = watchdog_interval() else {
        return;
    };
    let period = (interval / 2).max(Duration::from_millis(10));
    tracing::info!(
        interval_ms = u64::try_from(interval.as_millis()).unwrap_or(u64::MAX),
        "systemd watchdog enabled"
    );
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(period);
        loop {
            ticks.tick().await;
            send(&[Message::Watchdog]);
        }
    });
}

/// The plain-HTTP listening sockets systemd passed (`LISTEN_FDS`, for this process:
/// `LISTEN_PID`), in order. Sockets that are not TCP listeners are skipped with a warning.
pub fn inherited_listeners() -> Vec<std::net::TcpListener> {
    let mut fds = listenfd::ListenFd::from_env();
    let mut listeners = Vec::new();
    for index in 0..fds.len() {
        match fds.take_tcp_listener(index) {
            Ok(Some(listener)) => listeners.push(listener),
            Ok(None) => {}
            Err(error) => {
                tracing::warn!(
                    index,
                    %error,
                    "ignoring an inherited socket that is not a TCP listener"
                );
            }
        }
    }
    listeners
}

/// One line of a notification. Built everywhere, sent only on Unix (no `NOTIFY_SOCKET`
/// elsewhere).
#[cfg_attr(not(unix), allow(dead_code))]
enum Message<'a> {
    Ready,
    Stopping,
    Watchdog,
    Status(&'a str),
}

#[cfg(unix)]
fn send(messages: &[Message<'_>]) {
    use sd_notify::NotifyState;
    let states: Vec<NotifyState<'_>> = messages
        .iter()
        .map(|m| match m {
            Message::Ready => NotifyState::Ready,
            Message::Stopping => NotifyState::Stopping,
            Message::Watchdog => NotifyState::Watchdog,
            Message::Status(s) => NotifyState::Status(s),
        })
        .collect();
    if let Err(error) = sd_notify::notify(&states) {
        tracing::warn!(%error, "cannot notify systemd (NOTIFY_SOCKET)");
    }
}

#[cfg(not(unix))]
fn send(messages: &[Message<'_>]) {
    let _ = messages;
}

#[cfg(unix)]
fn watchdog_interval() -> Option<Duration> {
    sd_notify::watchdog_enabled()
}

#[cfg(not(unix))]
fn watchdog_interval() -> Option<Duration> {
    None
}
