//! Health checks (protocol §8.34), end to end with the real binary: a backend that stops
//! answering is found by its health probe or by its failed requests and replaced through the
//! zero-downtime recycle, requests going to the healthy slot meanwhile.
#![cfg(unix)]
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use test_support::admin::{app_status, serving_pids as pids, wait_app as wait_status};
use test_support::client::{self, get, get_request};
use test_support::process::{Gateway, free_port};
use test_support::site;

const ANCM: &str = env!("CARGO_BIN_EXE_ancm");

/// The longest the replacement may take.
const WAIT: Duration = Duration::from_secs(30);

/// Makes the echo backend `pid` hang: every request it gets is accepted and never answered.
fn hang(site: &Path, pid: u64) {
    std::fs::write(site.join(format!("hang-{pid}")), b"").unwrap();
}

/// One GET, bounded; the pid that answered it, or why it failed.
async fn try_get(addr: SocketAddr) -> Result<u64, String> {
    let req = get_request(&addr.to_string(), "/", &[]);
    match tokio::time::timeout(Duration::from_secs(5), client::try_request(addr, req)).await {
        Ok(Ok(resp)) if resp.status == 200 => Ok(resp.json()["pid"].as_u64().unwrap()),
        Ok(Ok(resp)) => Err(format!("status {}", resp.status)),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("no answer within 5 s".to_owned()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_backend_is_found_by_its_probe_and_replaced_with_no_failed_request() {
    let site = site::with_config(&site::python_echo_config_with_settings(
        r#"processesPerApplication="2""#,
        &[],
        &[
            ("healthCheckPath", "/health"),
            ("healthCheckInterval", "200ms"),
            ("healthCheckTimeout", "300ms"),
            ("healthCheckUnhealthyThreshold", "2"),
        ],
    ));
    let admin = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let gw = Gateway::start(
        ANCM,
        site.path(),
        &["--admin-listen", &admin.to_string(), "--preload"],
    );
    let before = wait_status(admin, "both slots preloaded", |app| pids(app).len() == 2).await;
    let old = pids(&before);
    hang(site.path(), old[0]);
    let hung_at = Instant::now();
    let marked = wait_status(admin, "the hung slot marked unhealthy", |app| {
        app["slots"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["unhealthy"] == true)
            || pids(app).iter().all(|p| !old.contains(p))
    })
    .await;
    // interval × threshold, plus a probe's timeout and the keeper's tick.
    assert!(hung_at.elapsed() < Duration::from_secs(5), "{marked:#}");
    // Meanwhile, and until the replacement serves, every request is answered by a healthy
    // process.
    let mut answered = Vec::new();
    let deadline = Instant::now() + WAIT;
    loop {
        let pid = try_get(gw.addr)
            .await
            .unwrap_or_else(|e| panic!("a request failed: {e}"));
        assert_ne!(pid, old[0], "a request went to the hung backend");
        answered.push(pid);
        let app = app_status(admin).await;
        let now = pids(&app);
        if now.len() == 2
            && now.iter().all(|p| !old.contains(p))
            && answered.iter().any(|p| now.contains(p))
        {
            assert_eq!(app["recycles_by_cause"]["health"], 1, "{app:#}");
            assert_eq!(app["recycles"], 0, "web.config did not change: {app:#}");
            break;
        }
        assert!(Instant::now() < deadline, "not replaced: {app:#}");
    }
    assert!(
        hung_at.elapsed() < Duration::from_secs(20),
        "replaced after {:?}",
        hung_at.elapsed()
    );
    // The old processes' exits carry the cause (the hung one is killed after
    // shutdownTimeLimit); no crash is counted.
    let app = wait_status(admin, "both old processes exited for health", |app| {
        app["exits"]["health"] == 2
    })
    .await;
    assert_eq!(app["exits"]["crash"], 0, "{app:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_failing_at_the_port_make_a_backend_unhealthy() {
    let site = site::with_config(&site::python_echo_config_with_settings(
        r#"requestTimeout="00:00:01""#,
        &[],
        &[("passiveHealthThreshold", "2")],
    ));
    let admin = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let gw = Gateway::start(ANCM, site.path(), &["--admin-listen", &admin.to_string()]);
    let first = try_get(gw.addr).await.unwrap();
    hang(site.path(), first);
    // Two 502.3 (no answer within requestTimeout) in a row.
    for _ in 0..2 {
        let r = get(gw.addr, "/", &[]).await;
        assert_eq!(r.status, 502, "{}", r.text());
    }
    let app = wait_status(admin, "the hung backend replaced", |app| {
        let now = pids(app);
        !now.is_empty() && !now.contains(&first)
    })
    .await;
    assert_eq!(app["recycles_by_cause"]["health"], 1, "{app:#}");
    let next = try_get(gw.addr).await.unwrap();
    assert_ne!(next, first);
}
