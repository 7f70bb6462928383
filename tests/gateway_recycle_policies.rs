//! Recycling policies (protocol §8.35), end to end with the real binary: after a number of
//! requests, a running time, memory held above a limit, and at a time of day, the
//! application is recycled with no downtime — the new process serves while the old one
//! finishes what it was given — and the exit and recycle counters name the cause.
#![cfg(unix)]
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

use test_support::admin::{app_status, serving_pids, wait_app};
use test_support::client::{self, get, get_request};
use test_support::process::{Gateway, free_port};
use test_support::site;

const ANCM: &str = env!("CARGO_BIN_EXE_ancm");

/// The longest a policy may take to fire in these tests.
const WAIT: Duration = Duration::from_secs(30);

/// One GET of `path`, bounded; the pid that answered it, or why it failed.
async fn try_get(addr: SocketAddr, path: &str) -> Result<u64, String> {
    let req = get_request(&addr.to_string(), path, &[]);
    match tokio::time::timeout(Duration::from_secs(10), client::try_request(addr, req)).await {
        Ok(Ok(resp)) if resp.status == 200 => Ok(resp.json()["pid"].as_u64().unwrap()),
        Ok(Ok(resp)) => Err(format!("status {}: {}", resp.status, resp.text())),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("no answer within 10 s".to_owned()),
    }
}

/// Requests one after another until one is answered by a process other than `old`; every
/// one must succeed. The new pid.
async fn requests_until_replaced(addr: SocketAddr, old: u64) -> u64 {
    let deadline = Instant::now() + WAIT;
    loop {
        let pid = try_get(addr, "/")
            .await
            .unwrap_or_else(|e| panic!("a request failed during the recycle: {e}"));
        if pid != old {
            return pid;
        }
        assert!(
            Instant::now() < deadline,
            "{old} was not replaced within {WAIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn admin_addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], free_port()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_policy_recycles_and_the_old_process_finishes_its_request() {
    // rapidFailsPerMinute 0: a policy recycle counted as a crash would refuse the next start.
    // The backend finishes what it has when stopped, as Kestrel does: it ignores the
    // shutdown message and SIGINT, so only SIGTERM, half of shutdownTimeLimit (5 s) after
    // the gateway's wait for requests in flight (at most 1 s), ends it: more than the slow
    // request below needs.
    let site = site::with_config(&site::python_echo_config_with_settings(
        r#"rapidFailsPerMinute="0""#,
        &[
            ("TEST_IGNORE_SHUTDOWN_EVENT", "1"),
            ("TEST_IGNORE_SIGINT", "1"),
        ],
        &[("recycleRequests", "4")],
    ));
    let admin = admin_addr();
    let gw = Gateway::start(ANCM, site.path(), &["--admin-listen", &admin.to_string()]);
    let old = try_get(gw.addr, "/").await.unwrap();
    for _ in 0..2 {
        assert_eq!(try_get(gw.addr, "/").await.unwrap(), old);
    }
    // The fourth request: the policy fires while it is in flight at the old process.
    let addr = gw.addr;
    let slow = tokio::spawn(async move {
        let pid = try_get(addr, "/slow?ms=3000").await;
        (pid, Instant::now())
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let new = requests_until_replaced(gw.addr, old).await;
    let new_served_at = Instant::now();
    let (slow_pid, slow_done_at) = slow.await.unwrap();
    assert_eq!(
        slow_pid,
        Ok(old),
        "the old process finishes the request it was given"
    );
    assert!(
        new_served_at < slow_done_at,
        "the new process served while the old one still had a request in flight"
    );
    let app = wait_app(
        admin,
        "the old process exited for its request count",
        |app| app["exits"]["requests"] == 1,
    )
    .await;
    assert_eq!(app["recycles_by_cause"]["requests"], 1, "{app:#}");
    assert_eq!(app["exits"]["crash"], 0, "{app:#}");
    assert_eq!(app["state"], "ready", "{app:#}");
    assert_eq!(serving_pids(&app), [new]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn periodic_recycles_keep_serving_and_do_not_count_as_crashes() {
    let site = site::with_config(&site::python_echo_config(r#"rapidFailsPerMinute="0""#, &[]));
    let admin = admin_addr();
    // The flag, which wins over web.config.
    let gw = Gateway::start(
        ANCM,
        site.path(),
        &[
            "--admin-listen",
            &admin.to_string(),
            "--recycle-time",
            "1500ms",
        ],
    );
    let first = try_get(gw.addr, "/").await.unwrap();
    let second = requests_until_replaced(gw.addr, first).await;
    let third = requests_until_replaced(gw.addr, second).await;
    assert_ne!(third, first);
    let app = wait_app(admin, "two periodic exits", |app| {
        app["exits"]["periodic"].as_u64() >= Some(2)
    })
    .await;
    assert!(
        app["recycles_by_cause"]["periodic"].as_u64() >= Some(2),
        "{app:#}"
    );
    assert_eq!(app["exits"]["crash"], 0, "{app:#}");
    assert_eq!(app["recycles"], 0, "{app:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_held_above_the_limit_recycles() {
    // 150 MiB: well above an idle python backend, well below one holding 200 MiB more.
    let site = site::with_config(&site::python_echo_config_with_settings(
        "",
        &[],
        &[
            ("recyclePrivateMemory", "153600"),
            ("recycleMemoryDuration", "500ms"),
        ],
    ));
    let admin = admin_addr();
    let gw = Gateway::start(ANCM, site.path(), &["--admin-listen", &admin.to_string()]);
    let old = try_get(gw.addr, "/").await.unwrap();
    // Below the limit for longer than the duration: nothing happens.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let app = app_status(admin).await;
    assert_eq!(app["recycles_by_cause"]["memory"], 0, "{app:#}");
    assert_eq!(try_get(gw.addr, "/alloc?mb=200").await.unwrap(), old);
    requests_until_replaced(gw.addr, old).await;
    let app = wait_app(admin, "the old process exited for its memory", |app| {
        app["exits"]["memory"] == 1
    })
    .await;
    assert_eq!(app["recycles_by_cause"]["memory"], 1, "{app:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduled_time_of_day_recycles() {
    let site = site::with_config(&site::python_echo_config("", &[]));
    let admin = admin_addr();
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    // Far enough ahead for the gateway to be up, near enough for a short test.
    let at = (now + 5) % 86_400;
    let schedule = format!("{:02}:{:02}:{:02}", at / 3600, at / 60 % 60, at % 60);
    let gw = Gateway::start(
        ANCM,
        site.path(),
        &[
            "--admin-listen",
            &admin.to_string(),
            "--recycle-schedule",
            &schedule,
        ],
    );
    let old = try_get(gw.addr, "/").await.unwrap();
    requests_until_replaced(gw.addr, old).await;
    let app = wait_app(
        admin,
        "the old process exited at the scheduled time",
        |app| app["exits"]["schedule"] == 1,
    )
    .await;
    assert_eq!(app["recycles_by_cause"]["schedule"], 1, "{app:#}");
    let r = get(gw.addr, "/", &[]).await;
    assert_eq!(r.status, 200);
}
