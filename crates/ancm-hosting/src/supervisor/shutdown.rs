//! The graceful stop of one child (protocol §2.9): the HTTP shutdown message, then signals,
//! then a kill of the whole tree when `shutdownTimeLimit` runs out.
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use ancm_front::transport::Transport;
use ancm_protocol::{AppPath, headers, shutdown};
use bytes::Bytes;
use http_body_util::Empty;
use hyper_util::rt::TokioIo;

use super::process::{Child, Signal};
use crate::status::ExitCause;

/// Sends `POST {app path}/iisintegration` with `MS-ASPNETCORE-EVENT: shutdown` and the token
/// over `transport` (its `Host` is `addr`); returns the status, or why no status came back.
pub(crate) async fn send_shutdown_message(
    transport: &Transport,
    addr: SocketAddr,
    app_path: &AppPath,
    token: &ancm_protocol::PairingToken,
    timeout: Duration,
) -> Result<http::StatusCode, String> {
    let attempt = async {
        let stream = transport
            .connect()
            .await
            .map_err(|e| format!("connect: {e}"))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| format!("handshake: {e}"))?;
        let conn = tokio::spawn(conn);
        let req = http::Request::post(shutdown::request_path(app_path))
            .header(http::header::HOST, addr.to_string())
            .header(headers::EVENT, shutdown::EVENT_SHUTDOWN)
            .header(headers::TOKEN, token.header_value().clone())
            .header(http::header::CONTENT_LENGTH, "0")
            .body(Empty::<Bytes>::new())
            .map_err(|e| format!("request: {e}"))?;
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| format!("send: {e}"))?;
        conn.abort();
        Ok(resp.status())
    };
    match tokio::time::timeout(timeout, attempt).await {
        Ok(r) => r,
        Err(_) => Err(format!("no answer within {} ms", timeout.as_millis())),
    }
}

/// Stops `child` gracefully within `limit` for `cause`, then kills its tree. Returns when it
/// is gone.
pub(crate) async fn stop_child(
    child: &Child,
    target: Option<&ancm_front::BackendTarget>,
    app_path: &AppPath,
    limit: Duration,
    cause: ExitCause,
) {
    child.mark_stopping(cause);
    let pid = child.pid();
    if child.has_exited() {
        child.kill();
        return;
    }
    let deadline = Instant::now() + limit;
    let remaining = || deadline.saturating_duration_since(Instant::now());
    let mut accepted = false;
    if let Some(target) = target {
        let transport = target.transport();
        match send_shutdown_message(&transport, target.addr, app_path, child.token(), limit).await {
            Ok(status) if status == shutdown::ACCEPTED => {
                tracing::info!(
                    pid,
                    port = child.port(),
                    status = status.as_u16(),
                    "sent the shutdown HTTP message to the child"
                );
                accepted = true;
            }
            Ok(status) => {
                tracing::warn!(
                    pid,
                    port = child.port(),
                    status = status.as_u16(),
                    "the child did not accept the shutdown HTTP message"
                );
            }
            Err(cause) => {
                tracing::warn!(pid, port = child.port(), %cause, "could not send the shutdown HTTP message");
            }
        }
    }
    if accepted && child.wait_exit(remaining()).await {
        tracing::info!(pid, "child exited after the shutdown message");
        child.kill();
        return;
    }
    if !accepted {
        let sent = child.signal(Signal::Interrupt);
        tracing::info!(
            pid,
            sent,
            "sent SIGINT (Ctrl+Break on Windows) to the child's group"
        );
        if !sent && cfg!(windows) {
            // ANCM terminates at once when Ctrl+Break cannot be delivered.
            tracing::warn!(
                pid,
                "could not send Ctrl+Break; terminating the child's job"
            );
            child.kill();
            child.wait_exit(Duration::from_secs(5)).await;
            return;
        }
        if child.wait_exit(remaining() / 2).await {
            tracing::info!(pid, "child exited after SIGINT");
            child.kill();
            return;
        }
        let sent = child.signal(Signal::Terminate);
        tracing::info!(pid, sent, "sent SIGTERM to the child's group");
        if child.wait_exit(remaining()).await {
            tracing::info!(pid, "child exited after SIGTERM");
            child.kill();
            return;
        }
    }
    tracing::warn!(
        pid,
        limit_ms = limit.as_millis() as u64,
        "failed to gracefully shut down the child; killing its process tree"
    );
    child.kill();
    if !child.wait_exit(Duration::from_secs(5)).await {
        tracing::error!(pid, "the child did not exit after being killed");
    }
}
