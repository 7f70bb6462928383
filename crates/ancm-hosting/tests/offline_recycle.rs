//! app_offline.htm and web.config recycling with real child processes (issue 4 §3, §5).
#![cfg(unix)]

mod common;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use ancm_hosting::{Application, ApplicationOptions};
use common::*;

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
        backend_exe().display()
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
    let site = site();
    let app = Application::with_config(options(site.path()), rust_config("normal")).expect("app");
    let svc = service(&app);
    let first = get(&svc, "/pid").await;
    assert_eq!(first.status, 200);
    let pid: u32 = first.body.parse().expect("pid");

    std::fs::write(site.path().join(OFFLINE), "<h1>down for maintenance</h1>").expect("write");
    let mut got = get(&svc, "/pid").await;
    let t = Instant::now();
    // The watcher may see the file before its bytes are written; the page is re-read at
    // most every 200 ms while offline.
    while (got.status != 503 || got.body.is_empty()) && t.elapsed() < Duration::from_secs(2) {
        tokio::time::sleep(Duration::from_millis(50)).await;
        got = get(&svc, "/pid").await;
    }
    assert_eq!(got.status, 503);
    assert_eq!(got.headers["content-type"], "text/html");
    assert_eq!(got.body, "<h1>down for maintenance</h1>");
    assert!(app.is_offline());
    assert!(
        eventually(Duration::from_secs(4), || !alive(pid)).await,
        "child stopped"
    );

    std::fs::remove_file(site.path().join(OFFLINE)).expect("remove");
    let t = Instant::now();
    let mut got = get(&svc, "/pid").await;
    while got.status != 200 && t.elapsed() < Duration::from_secs(2) {
        tokio::time::sleep(Duration::from_millis(50)).await;
        got = get(&svc, "/pid").await;
    }
    assert_eq!(got.status, 200);
    assert_ne!(got.body, first.body, "a fresh child");
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_offline_at_start_and_over_a_failing_app() {
    let site = site();
    std::fs::write(site.path().join(OFFLINE), "").expect("write");
    let mut cfg = rust_config("normal");
    cfg.process_path = "nonexistent-ancm-test-program".into();
    let app = Application::with_config(options(site.path()), cfg).expect("app");
    let svc = service(&app);
    let got = get(&svc, "/").await;
    assert_eq!(got.status, 503);
    assert!(got.body.is_empty(), "empty file → empty body");
    std::fs::remove_file(site.path().join(OFFLINE)).expect("remove");
    tokio::time::sleep(Duration::from_millis(250)).await;
    let got = get(&svc, "/").await;
    assert_eq!(got.status, 502);
    assert!(got.body.contains("502.5") && got.body.contains("nonexistent-ancm-test-program"));
    std::fs::write(site.path().join(OFFLINE), "offline").expect("write");
    tokio::time::sleep(Duration::from_millis(250)).await;
    let got = get(&svc, "/").await;
    assert_eq!((got.status.as_u16(), got.body.as_str()), (503, "offline"));
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_offline_toggled_under_concurrent_requests() {
    let site = site();
    let app = Application::with_config(options(site.path()), rust_config("normal")).expect("app");
    let svc = service(&app);
    assert_eq!(get(&svc, "/").await.status, 200);
    let done = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..6)
        .map(|_| {
            let svc = svc.clone();
            let done = done.clone();
            tokio::spawn(async move {
                let mut seen = Vec::new();
                while !done.load(Ordering::Relaxed) {
                    let got = tokio::time::timeout(Duration::from_secs(10), get(&svc, "/"))
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
    assert_eq!(get(&svc, "/").await.status, 200);
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_web_config_is_500_until_fixed() {
    let site = site();
    std::fs::write(site.path().join("web.config"), "<configuration><system.webServer><aspNetCore arguments=\"x\"/></system.webServer></configuration>").expect("write");
    let app = Application::new(options(site.path())).expect("app");
    let svc = service(&app);
    let got = get(&svc, "/").await;
    assert_eq!(got.status, 500);
    assert!(got.body.contains("HTTP Error 500.0"), "{}", got.body);
    assert!(
        got.body.contains("processPath"),
        "detail names the attribute: {}",
        got.body
    );
    assert!(app.config_error().is_some());
    web_config(site.path(), "normal", "");
    let t = Instant::now();
    let mut got = get(&svc, "/pid").await;
    while got.status != 200 && t.elapsed() < Duration::from_secs(3) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        got = get(&svc, "/pid").await;
    }
    assert_eq!(got.status, 200, "{got:?}");
    assert!(app.config().is_some());
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_config_change_under_load_recycles_with_no_failed_request() {
    let site = site();
    web_config(site.path(), "normal", "");
    let app = Application::new(options(site.path())).expect("app");
    let svc = service(&app);
    let first = get(&svc, "/pid").await;
    assert_eq!(first.status, 200, "{first:?}");
    let old_pid: u32 = first.body.parse().expect("pid");
    let done = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..6)
        .map(|_| {
            let svc = svc.clone();
            let done = done.clone();
            tokio::spawn(async move {
                let mut seen = Vec::new();
                while !done.load(Ordering::Relaxed) {
                    let got = get(&svc, "/slow?ms=30").await;
                    seen.push((got.status.as_u16(), got.body));
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
        eventually(Duration::from_secs(4), || !alive(old_pid)).await,
        "old child stopped"
    );
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_web_config_change_keeps_the_old_configuration() {
    let site = site();
    web_config(site.path(), "normal", "");
    let app = Application::new(ApplicationOptions::new(site.path())).expect("app");
    let svc = service(&app);
    let first = get(&svc, "/pid").await;
    assert_eq!(first.status, 200);
    web_config(site.path(), "normal", r#"startupTimeLimit="abc""#);
    touch(&site.path().join("web.config"));
    tokio::time::sleep(Duration::from_millis(700)).await;
    let got = get(&svc, "/pid").await;
    assert_eq!(
        (got.status.as_u16(), &got.body),
        (200, &first.body),
        "same child keeps serving"
    );
    assert!(app.config().is_some());
    app.shutdown().await;
}
