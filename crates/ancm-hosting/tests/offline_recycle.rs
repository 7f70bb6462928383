//! app_offline.htm and web.config recycling with real child processes (issue 4 §3, §5).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use ancm_front::{BackendTarget, Body};
use ancm_hosting::config::{AspNetCoreConfig, Location};
use ancm_hosting::{Application, ApplicationOptions, ApplicationService};
use bytes::Bytes;
use http::Request;
use http_body_util::Empty;
use test_support::backends::Proxy;
use test_support::client::call;
use test_support::process::{eventually, example, is_running};
use test_support::site;
use tower_layer::Layer as _;

/// A configuration for the Rust test backend (ancm-hosting's `test_backend` example) in
/// `mode`, with short limits.
fn rust_config(mode: &str) -> AspNetCoreConfig {
    let mut c = AspNetCoreConfig::new(
        example("ancm-hosting", "test_backend")
            .to_string_lossy()
            .into_owned(),
        Location {
            file: PathBuf::from("web.config"),
            line: 1,
            column: 1,
        },
    );
    c.environment_variables
        .push(("ANCM_TEST_MODE".into(), mode.into()));
    c.startup_time_limit = 5;
    c.shutdown_time_limit = 3;
    c
}

fn options(site: &Path) -> ApplicationOptions {
    ApplicationOptions::new(site).detailed_errors(true)
}

/// The application in front of the smallest forwarder, which adds the pairing token as the
/// front's layers would.
fn service(app: &Application) -> ApplicationService<Proxy<Empty<Bytes>, Body>> {
    app.layer().layer(Proxy::new(to_backend, Body::new))
}

/// The smallest forwarder's route: the request's `BackendTarget`, with its token.
fn to_backend(req: &mut Request<Empty<Bytes>>) -> Option<SocketAddr> {
    let target = req.extensions().get::<BackendTarget>()?.clone();
    if let Some(token) = &target.token {
        req.headers_mut()
            .insert(ancm_protocol::headers::TOKEN, token.header_value().clone());
    }
    Some(target.addr)
}

const OFFLINE: &str = "app_offline.htm";

fn web_config(site: &Path, mode: &str, extra_attrs: &str) {
    let text = format!(
        r#"<?xml version="1.0" encoding="utf-8"?>
<configuration>
  <location path="." inheritInChildApplications="false">
    <system.webServer>
      <handlers>
        <add name="aspNetCore" path="*" verb="*" modules="AspNetCoreModuleV2" resourceType="Unspecified" />
      </handlers>
      <aspNetCore processPath="{}" arguments="" startupTimeLimit="5" shutdownTimeLimit="3" {extra_attrs}>
        <environmentVariables>
          <environmentVariable name="ANCM_TEST_MODE" value="{mode}" />
        </environmentVariables>
      </aspNetCore>
    </system.webServer>
  </location>
</configuration>
"#,
        example("ancm-hosting", "test_backend").display()
    );
    std::fs::write(site.join("web.config"), text).expect("write web.config");
}

fn touch(path: &Path) {
    let f = std::fs::File::options()
        .write(true)
        .open(path)
        .expect("open");
    f.set_modified(SystemTime::now() + Duration::from_secs(2))
        .expect("set mtime");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_offline_stops_the_child_serves_the_file_and_recovers() {
    let site = site::empty();
    let app = Application::with_config(options(site.path()), rust_config("normal")).expect("app");
    let svc = service(&app);
    let first = call(&svc, "/pid").await;
    assert_eq!(first.status, 200);
    let pid: u32 = first.text().parse().expect("pid");

    std::fs::write(site.path().join(OFFLINE), "<h1>down for maintenance</h1>").expect("write");
    let mut got = call(&svc, "/pid").await;
    let t = Instant::now();
    // The watcher may see the file before its bytes are written; the page is re-read at
    // most every 200 ms while offline.
    while (got.status != 503 || got.text().is_empty()) && t.elapsed() < Duration::from_secs(2) {
        tokio::time::sleep(Duration::from_millis(50)).await;
        got = call(&svc, "/pid").await;
    }
    assert_eq!(got.status, 503);
    assert_eq!(got.headers["content-type"], "text/html");
    assert_eq!(got.text(), "<h1>down for maintenance</h1>");
    assert!(app.is_offline());
    assert!(
        eventually(Duration::from_secs(4), || !is_running(pid)).await,
        "child stopped"
    );

    std::fs::remove_file(site.path().join(OFFLINE)).expect("remove");
    let t = Instant::now();
    let mut got = call(&svc, "/pid").await;
    while got.status != 200 && t.elapsed() < Duration::from_secs(2) {
        tokio::time::sleep(Duration::from_millis(50)).await;
        got = call(&svc, "/pid").await;
    }
    assert_eq!(got.status, 200);
    assert_ne!(got.text(), first.text(), "a fresh child");
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_offline_at_start_and_over_a_failing_app() {
    let site = site::empty();
    std::fs::write(site.path().join(OFFLINE), "").expect("write");
    let mut cfg = rust_config("normal");
    cfg.process_path = "nonexistent-ancm-test-program".into();
    let app = Application::with_config(options(site.path()), cfg).expect("app");
    let svc = service(&app);
    let got = call(&svc, "/").await;
    assert_eq!(got.status, 503);
    assert!(got.text().is_empty(), "empty file → empty body");
    std::fs::remove_file(site.path().join(OFFLINE)).expect("remove");
    tokio::time::sleep(Duration::from_millis(250)).await;
    let got = call(&svc, "/").await;
    assert_eq!(got.status, 502);
    assert!(got.text().contains("502.5") && got.text().contains("nonexistent-ancm-test-program"));
    std::fs::write(site.path().join(OFFLINE), "offline").expect("write");
    tokio::time::sleep(Duration::from_millis(250)).await;
    let got = call(&svc, "/").await;
    assert_eq!((got.status.as_u16(), got.text().as_str()), (503, "offline"));
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_offline_toggled_under_concurrent_requests() {
    let site = site::empty();
    let app = Application::with_config(options(site.path()), rust_config("normal")).expect("app");
    let svc = service(&app);
    assert_eq!(call(&svc, "/").await.status, 200);
    let done = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..6)
        .map(|_| {
            let svc = svc.clone();
            let done = done.clone();
            tokio::spawn(async move {
                let mut seen = Vec::new();
                while !done.load(Ordering::Relaxed) {
                    let got = tokio::time::timeout(Duration::from_secs(10), call(&svc, "/"))
                        .await
                        .expect("a request hung");
                    seen.push((
                        got.status.as_u16(),
                        got.headers.contains_key("x-test-forward-error"),
                    ));
                    // A 503 completes without awaiting anything: let the runtime breathe.
                    tokio::task::yield_now().await;
                }
                seen
            })
        })
        .collect();
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(400)).await;
        std::fs::write(site.path().join(OFFLINE), "offline").expect("write");
        tokio::time::sleep(Duration::from_millis(600)).await;
        std::fs::remove_file(site.path().join(OFFLINE)).expect("remove");
    }
    tokio::time::sleep(Duration::from_millis(600)).await;
    done.store(true, Ordering::Relaxed);
    let mut counts = std::collections::BTreeMap::new();
    for w in workers {
        for (status, forward_error) in w.await.expect("join") {
            assert!(
                status == 200 || status == 503,
                "unexpected status {status} (forward error: {forward_error})"
            );
            *counts.entry(status).or_insert(0) += 1;
        }
    }
    assert!(
        counts.get(&200).copied().unwrap_or(0) > 10 && counts.get(&503).copied().unwrap_or(0) > 10,
        "{counts:?}"
    );
    assert_eq!(call(&svc, "/").await.status, 200);
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_web_config_is_500_until_fixed() {
    let site = site::empty();
    std::fs::write(site.path().join("web.config"), "<configuration><system.webServer><aspNetCore arguments=\"x\"/></system.webServer></configuration>").expect("write");
    let app = Application::new(options(site.path())).expect("app");
    let svc = service(&app);
    let got = call(&svc, "/").await;
    assert_eq!(got.status, 500);
    assert!(got.text().contains("HTTP Error 500.0"), "{}", got.text());
    assert!(
        got.text().contains("processPath"),
        "detail names the attribute: {}",
        got.text()
    );
    assert!(app.config_error().is_some());
    web_config(site.path(), "normal", "");
    let t = Instant::now();
    let mut got = call(&svc, "/pid").await;
    while got.status != 200 && t.elapsed() < Duration::from_secs(3) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        got = call(&svc, "/pid").await;
    }
    assert_eq!(got.status, 200, "{got:?}");
    assert!(app.config().is_some());
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_config_change_under_load_recycles_with_no_failed_request() {
    let site = site::empty();
    web_config(site.path(), "normal", "");
    let app = Application::new(options(site.path())).expect("app");
    let svc = service(&app);
    let first = call(&svc, "/pid").await;
    assert_eq!(first.status, 200, "{first:?}");
    let old_pid: u32 = first.text().parse().expect("pid");
    let done = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..6)
        .map(|_| {
            let svc = svc.clone();
            let done = done.clone();
            tokio::spawn(async move {
                let mut seen = Vec::new();
                while !done.load(Ordering::Relaxed) {
                    let got = call(&svc, "/slow?ms=30").await;
                    seen.push((got.status.as_u16(), got.text()));
                    tokio::task::yield_now().await;
                }
                seen
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    // A change of configuration: a touch alone no longer recycles (protocol §8.7).
    web_config(site.path(), "normal", r#"rapidFailsPerMinute="9""#);
    let recycled = eventually(Duration::from_secs(8), || {
        let pids = app.backend_pids();
        !pids.is_empty() && !pids.contains(&old_pid)
    })
    .await;
    assert!(recycled, "a new child after the change");
    tokio::time::sleep(Duration::from_millis(800)).await;
    done.store(true, Ordering::Relaxed);
    let mut pids = std::collections::BTreeSet::new();
    let mut total = 0;
    for w in workers {
        for (status, body) in w.await.expect("join") {
            assert_eq!(status, 200, "failed request during recycle: {body}");
            pids.insert(body);
            total += 1;
        }
    }
    assert!(total > 20);
    assert_eq!(pids.len(), 2, "served by old then new: {pids:?}");
    assert!(
        eventually(Duration::from_secs(4), || !is_running(old_pid)).await,
        "old child stopped"
    );
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_web_config_change_keeps_the_old_configuration() {
    let site = site::empty();
    web_config(site.path(), "normal", "");
    let app = Application::new(ApplicationOptions::new(site.path())).expect("app");
    let svc = service(&app);
    let first = call(&svc, "/pid").await;
    assert_eq!(first.status, 200);
    web_config(site.path(), "normal", r#"startupTimeLimit="abc""#);
    touch(&site.path().join("web.config"));
    tokio::time::sleep(Duration::from_millis(700)).await;
    let got = call(&svc, "/pid").await;
    assert_eq!(
        (got.status.as_u16(), &got.text()),
        (200, &first.text()),
        "same child keeps serving"
    );
    assert!(app.config().is_some());
    app.shutdown().await;
}
