//! `/status` on the admin listener, and `ancm status`, which prints it for a person.
//!
//! The JSON: `version`, `pid`, `uptime_seconds`, `stopping`, `ready` (what `/readyz`
//! says), and `applications`, one object per application in the router's order (longest
//! path first): `path`, `site`, `state`, `reason` (why it is not ready, or `null`),
//! `web_config_sha256`, `requests` (answered by the gateway, error pages included),
//! `processes_started`, `recycles`, `exits` (by cause), `backend_connections` (`in_use`,
//! `idle`) and `slots`: `slot`, `state`, `pid`, `port`, `uptime_seconds`, `restarts`,
//! `requests` (given to the slot's processes), `last_exit` (`pid`, `cause`, `status`, `at`
//! in RFC 3339 UTC, or `null`) and `failure` (why the last start failed, or `null`). Slot
//! figures count from the configuration in use (a recycle starts them again); the
//! application's count from the gateway's start.
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::pin::Pin;
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use ancm_hosting::status::{ApplicationStatus, ExitCause};
use serde_json::{Value, json};

use crate::admin::GatewaySources;
use crate::cli::StatusArgs;
use crate::observe::access_log::civil_from_days;

/// How long `ancm status` waits for the gateway.
const TIMEOUT: Duration = Duration::from_secs(5);

/// The `/status` JSON.
pub fn status_json(
    statuses: &[(ApplicationStatus, u64)],
    started: SystemTime,
    stopping: bool,
    sources: &GatewaySources,
) -> Value {
    let now = SystemTime::now();
    let since = |t: SystemTime| now.duration_since(t).map_or(0.0, |d| d.as_secs_f64());
    let applications: Vec<Value> = statuses
        .iter()
        .zip(sources.applications.iter())
        .map(|((status, requests), hosted)| {
            let exits: serde_json::Map<String, Value> = ExitCause::ALL
                .iter()
                .map(|c| (c.as_str().to_owned(), json!(status.counters.exits(*c))))
                .collect();
            let recycles: serde_json::Map<String, Value> = ExitCause::RECYCLES
                .iter()
                .map(|c| {
                    (
                        c.as_str().to_owned(),
                        json!(status.counters.recycles_for(*c)),
                    )
                })
                .collect();
            let slots: Vec<Value> = status
                .slots
                .iter()
                .map(|slot| {
                    json!({
                        "slot": slot.index,
                        "state": slot.state.as_str(),
                        "pid": slot.pid,
                        "port": slot.port,
                        "uptime_seconds": slot.started_at.map(|t| round(since(t))),
                        "restarts": slot.restarts(),
                        "requests": slot.requests,
                        "last_exit": slot.last_exit.as_ref().map(|exit| json!({
                            "pid": exit.pid,
                            "cause": exit.cause.as_str(),
                            "status": exit.status,
                            "at": rfc3339(exit.at),
                        })),
                        "failure": slot.failure,
                        "unhealthy": slot.unhealthy,
                    })
                })
                .collect();
            json!({
                "path": status.app_path.as_str(),
                "site": status.site_dir.display().to_string(),
                "state": status.state.as_str(),
                "reason": status.reason,
                "web_config_sha256": status.web_config_sha256,
                "requests": requests,
                "processes_started": status.counters.started(),
                "recycles": status.counters.recycles(),
                "recycles_by_cause": recycles,
                "exits": exits,
                "backend_connections": {
                    "in_use": hosted.forward.connection_limit.in_use(),
                    "idle": hosted.idle_connections(),
                },
                "slots": slots,
            })
        })
        .collect();
    let ready = !stopping && statuses.iter().all(|(s, _)| s.state.is_ready_or_offline());
    json!({
        "version": env!("CARGO_PKG_VERSION"),
        "pid": std::process::id(),
        "uptime_seconds": round(since(started)),
        "stopping": stopping,
        "ready": ready,
        "applications": applications,
    })
}

fn round(seconds: f64) -> f64 {
    (seconds * 1000.0).round() / 1000.0
}

/// `t` as `YYYY-MM-DDTHH:MM:SSZ`.
fn rfc3339(t: SystemTime) -> String {
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (y, m, d) = civil_from_days(i64::try_from(secs / 86_400).unwrap_or(0));
    let clock = secs % 86_400;
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        clock / 3600,
        clock / 60 % 60,
        clock % 60
    )
}

/// `ancm status`: fetch `/status` and print it (as a table, or the JSON with `--json`).
pub fn run(args: &StatusArgs) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("ancm: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let fetched = runtime.block_on(async {
        tokio::time::timeout(TIMEOUT, fetch(args.admin))
            .await
            .unwrap_or_else(|_| Err(format!("no answer within {} s", TIMEOUT.as_secs())))
    });
    let body = match fetched {
        Ok(body) => body,
        Err(error) => {
            eprintln!(
                "ancm: cannot get the status from {} ({error}); is `ancm run --admin-listen {}` running?",
                args.admin, args.admin
            );
            return ExitCode::FAILURE;
        }
    };
    let status: Value = match serde_json::from_slice(&body) {
        Ok(status) => status,
        Err(error) => {
            eprintln!(
                "ancm: {} did not answer with the status JSON: {error}",
                args.admin
            );
            return ExitCode::FAILURE;
        }
    };
    if args.json {
        println!("{status:#}");
    } else {
        print!("{}", table(&status));
    }
    ExitCode::SUCCESS
}

/// `GET /status` from `addr`: the body of a `200`.
async fn fetch(addr: SocketAddr) -> Result<Vec<u8>, String> {
    use http_body::Body as _;
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| e.to_string())?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    let req = http::Request::get("/status")
        .header(http::header::HOST, addr.to_string())
        .body(ancm_front::Body::empty())
        .map_err(|e| e.to_string())?;
    let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
    if resp.status() != http::StatusCode::OK {
        return Err(format!("it answered {}", resp.status()));
    }
    let mut body = resp.into_body();
    let mut bytes = Vec::new();
    while let Some(frame) = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
        if let Some(data) = frame.map_err(|e| e.to_string())?.data_ref() {
            bytes.extend_from_slice(data);
        }
    }
    Ok(bytes)
}

/// The status as a table for a terminal.
pub fn table(status: &Value) -> String {
    let text = |v: &Value| match v {
        Value::Null => "-".to_owned(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let mut out = String::new();
    let _ = writeln!(
        out,
        "ancm {}, pid {}, up {}: {}",
        text(&status["version"]),
        text(&status["pid"]),
        duration(status["uptime_seconds"].as_f64()),
        if status["stopping"] == true {
            "stopping"
        } else if status["ready"] == true {
            "ready"
        } else {
            "NOT READY"
        }
    );
    for app in status["applications"].as_array().into_iter().flatten() {
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "{}  {}  {}",
            text(&app["path"]),
            text(&app["state"]).to_uppercase(),
            text(&app["site"])
        );
        if let Some(reason) = app["reason"].as_str() {
            let _ = writeln!(out, "  why: {reason}");
        }
        let sha = app["web_config_sha256"].as_str().unwrap_or("-");
        let exits: Vec<String> = app["exits"]
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(_, n)| n.as_u64().unwrap_or(0) > 0)
            .map(|(cause, n)| format!("{cause} {n}"))
            .collect();
        let _ = writeln!(
            out,
            "  requests {}, processes started {}, recycles {}, exits: {}",
            text(&app["requests"]),
            text(&app["processes_started"]),
            text(&app["recycles"]),
            if exits.is_empty() {
                "none".to_owned()
            } else {
                exits.join(", ")
            }
        );
        let _ = writeln!(
            out,
            "  backend connections: {} in use, {} idle; web.config sha256 {}",
            text(&app["backend_connections"]["in_use"]),
            text(&app["backend_connections"]["idle"]),
            sha.get(..16).unwrap_or(sha)
        );
        let rows: Vec<[String; 8]> = app["slots"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|slot| {
                let last_exit = match &slot["last_exit"] {
                    Value::Null => "-".to_owned(),
                    exit => format!(
                        "{} ({}) at {}",
                        text(&exit["cause"]),
                        text(&exit["status"]),
                        text(&exit["at"])
                    ),
                };
                [
                    text(&slot["slot"]),
                    text(&slot["state"]),
                    text(&slot["pid"]),
                    text(&slot["port"]),
                    duration(slot["uptime_seconds"].as_f64()),
                    text(&slot["restarts"]),
                    text(&slot["requests"]),
                    last_exit,
                ]
            })
            .collect();
        let header = [
            "SLOT",
            "STATE",
            "PID",
            "PORT",
            "UPTIME",
            "RESTARTS",
            "REQUESTS",
            "LAST EXIT",
        ]
        .map(str::to_owned);
        let mut widths = header.clone().map(|h| h.len());
        for row in &rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.len());
            }
        }
        for row in std::iter::once(&header).chain(&rows) {
            let _ = write!(out, " ");
            for (i, (cell, w)) in row.iter().zip(widths).enumerate() {
                if i + 1 == row.len() {
                    let _ = write!(out, " {cell}");
                } else {
                    let _ = write!(out, " {cell:<w$} ");
                }
            }
            let _ = writeln!(out);
        }
    }
    out
}

/// `1h 2m 3s`, `4m 5s`, `6s`; `-` for none.
fn duration(seconds: Option<f64>) -> String {
    let Some(seconds) = seconds else {
        return "-".to_owned();
    };
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // non-negative, small
    let s = seconds.max(0.0) as u64;
    match (s / 3600, s / 60 % 60, s % 60) {
        (0, 0, sec) => format!("{sec}s"),
        (0, min, sec) => format!("{min}m {sec}s"),
        (h, min, sec) => format!("{h}h {min}m {sec}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_durations() {
        assert_eq!(
            rfc3339(SystemTime::UNIX_EPOCH + Duration::from_secs(1_704_164_645)),
            "2024-01-02T03:04:05Z"
        );
        assert_eq!(duration(Some(3725.4)), "1h 2m 5s");
        assert_eq!(duration(Some(65.0)), "1m 5s");
        assert_eq!(duration(None), "-");
    }

    #[test]
    fn the_table_has_a_row_per_slot() {
        let status = json!({
            "version": "0.1.0", "pid": 7, "uptime_seconds": 65.2, "stopping": false, "ready": false,
            "applications": [{
                "path": "/shop", "site": "/srv/shop", "state": "failed",
                "reason": "the last start of slot 0 failed: boom",
                "web_config_sha256": "0123456789abcdef0123", "requests": 3,
                "processes_started": 2, "recycles": 0,
                "exits": {"crash": 1, "shutdown": 0},
                "backend_connections": {"in_use": 0, "idle": 1},
                "slots": [{"slot": 0, "state": "failed", "pid": null, "port": null,
                           "uptime_seconds": null, "restarts": 1, "requests": 3,
                           "last_exit": {"pid": 9, "cause": "crash", "status": "exit code 3",
                                         "at": "2024-01-02T03:04:05Z"},
                           "failure": "boom"}]
            }]
        });
        let table = table(&status);
        assert!(
            table.starts_with("ancm 0.1.0, pid 7, up 1m 5s: NOT READY\n"),
            "{table}"
        );
        assert!(table.contains("/shop  FAILED  /srv/shop\n"), "{table}");
        assert!(
            table.contains("  why: the last start of slot 0 failed: boom\n"),
            "{table}"
        );
        assert!(table.contains("exits: crash 1\n"), "{table}");
        assert!(
            table.contains("crash (exit code 3) at 2024-01-02T03:04:05Z"),
            "{table}"
        );
        assert!(table.contains("sha256 0123456789abcdef\n"), "{table}");
    }
}
