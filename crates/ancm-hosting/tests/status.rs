//! `Application::status`: the state, slots and counters a gateway reads for its metrics and
//! health checks, as real child processes start, crash, fail, recycle and stop.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use ancm_front::{BackendTarget, Body};
use ancm_hosting::status::{ApplicationState, ExitCause, SlotState};
use ancm_hosting::{Application, ApplicationOptions, ApplicationService};
use bytes::Bytes;
use http::Request;
use http_body_util::Empty;
use sha2::Digest as _;
use test_support::backends::Proxy;
use test_support::client::call;
use test_support::process::{eventually, example};
use test_support::site;
use tower_layer::Layer as _;

/// Every wait of these tests.
const WAIT: Duration = Duration::from_secs(20);

fn service(app: &Application) -> ApplicationService<Proxy<Empty<Bytes>, Body>> {
    app.layer().layer(Proxy::new(to_backend, Body::new))
}

fn to_backend(req: &mut Request<Empty<Bytes>>) -> Option<SocketAddr> {
    let target = req.extensions().get::<BackendTarget>()?.clone();
    if let Some(token) = &target.token {
        req.headers_mut()
            .insert(ancm_protocol::headers::TOKEN, token.header_value().clone());
    }
    Some(target.addr)
}

/// web.config for ancm-hosting's Rust test backend in `mode`; returns its SHA-256.
fn web_config(site: &Path, mode: &str, attrs: &str) -> String {
    let text = format!(
        r#"<?xml version="1.0" encoding="utf-8"?>
<configuration>
  <system.webServer>
    <aspNetCore processPath="{}" startupTimeLimit="5" shutdownTimeLimit="3" {attrs}>
      <environmentVariables>
        <environmentVariable name="ANCM_TEST_MODE" value="{mode}" />
      </environmentVariables>
    </aspNetCore>
  </system.webServer>
</configuration>
"#,
        example("ancm-hosting", "test_backend").display()
    );
    std::fs::write(site.join("web.config"), &text).expect("write web.config");
    sha2::Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_follows_start_crash_restart_recycle_and_shutdown() {
    let site = site::empty();
    let digest = web_config(site.path(), "normal", "");
    let app = Application::new(ApplicationOptions::new(site.path())).expect("app");
    let svc = service(&app);

    let status = app.status();
    assert_eq!(status.state, ApplicationState::Idle);
    assert!(status.state.is_ready_or_offline(), "lazily started: ready");
    assert_eq!(status.web_config_sha256.as_deref(), Some(digest.as_str()));
    assert_eq!(status.slots.len(), 1);
    assert_eq!(status.slots[0].state, SlotState::Idle);
    assert_eq!(status.counters.started(), 0);

    let pid: u32 = call(&svc, "/pid").await.text().parse().expect("pid");
    let status = app.status();
    assert_eq!(status.state, ApplicationState::Ready);
    let slot = &status.slots[0];
    assert_eq!(
        (slot.state, slot.pid, slot.starts),
        (SlotState::Ready, Some(pid), 1)
    );
    assert!(slot.port.is_some() && slot.started_at.is_some());
    assert_eq!(slot.requests, 1);
    assert_eq!(status.counters.started(), 1);

    let _ = call(&svc, "/crash").await;
    assert!(
        eventually(WAIT, || app.status().counters.exits(ExitCause::Crash) == 1).await,
        "{:?}",
        app.status()
    );
    let status = app.status();
    assert_eq!(
        status.state,
        ApplicationState::Idle,
        "a crash is not a failure"
    );
    let exit = status.slots[0]
        .last_exit
        .clone()
        .expect("the exit is recorded");
    assert_eq!((exit.pid, exit.cause), (pid, ExitCause::Crash));
    assert_eq!(exit.status, "exit code 1");

    let second: u32 = call(&svc, "/pid").await.text().parse().expect("pid");
    assert_ne!(second, pid);
    let status = app.status();
    assert_eq!((status.slots[0].starts, status.slots[0].restarts()), (2, 1));
    assert_eq!(status.slots[0].requests, 3);

    let changed = web_config(site.path(), "normal", r#"requestTimeout="00:01:00""#);
    assert!(
        eventually(WAIT, || {
            let status = app.status();
            status.counters.recycles() == 1 && status.counters.exits(ExitCause::Recycle) == 1
        })
        .await,
        "{:?}",
        app.status()
    );
    assert_eq!(app.status().web_config_sha256, Some(changed));

    app.shutdown().await;
    let status = app.status();
    assert_eq!(status.state, ApplicationState::Stopping);
    assert!(status.reason.is_some());
    // The recycle started the new configuration's child; shutdown stopped it.
    assert_eq!(status.counters.exits(ExitCause::Shutdown), 1);
    assert_eq!(status.counters.started(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_over_the_rapid_fail_limit_and_a_failed_start_are_not_ready() {
    let site = site::empty();
    web_config(site.path(), "normal", r#"rapidFailsPerMinute="0""#);
    let app = Application::new(ApplicationOptions::new(site.path())).expect("app");
    let svc = service(&app);
    assert_eq!(call(&svc, "/pid").await.status, 200);
    let _ = call(&svc, "/crash").await;
    assert!(
        eventually(WAIT, || app.status().counters.exits(ExitCause::RapidFail)
            == 1)
        .await,
        "{:?}",
        app.status()
    );
    let status = app.status();
    assert_eq!(status.state, ApplicationState::RapidFail);
    assert!(!status.state.is_ready_or_offline());
    assert!(
        status
            .reason
            .expect("a reason")
            .contains("rapidFailsPerMinute")
    );
    app.shutdown().await;

    let site = site::empty();
    web_config(site.path(), "exit", "");
    let app = Application::new(ApplicationOptions::new(site.path())).expect("app");
    let svc = service(&app);
    assert_eq!(call(&svc, "/").await.status, 502);
    let status = app.status();
    assert_eq!(status.state, ApplicationState::Failed);
    assert_eq!(status.slots[0].state, SlotState::Failed);
    assert!(status.slots[0].failure.is_some());
    assert!(status.reason.expect("a reason").contains("slot 0"));
    // Two attempts, each a process that exited before it was ready.
    assert_eq!(status.counters.started(), 2);
    assert!(
        eventually(WAIT, || app
            .status()
            .counters
            .exits(ExitCause::StartFailure)
            == 2)
        .await,
        "{:?}",
        app.status()
    );
    app.shutdown().await;
}
