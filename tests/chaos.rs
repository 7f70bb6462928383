//! Chaos under load, against the real `ancm` binary and python echo backends: while a few
//! keep-alive clients send small GETs ([`test_support::load`]), the backend is killed, its
//! web.config changes, app_offline.htm comes and goes, the gateway is told to stop or is
//! killed. Each test counts what failed, and when, against what the gateway promises
//! (protocol §1.1, §1.8, §2.7, §2.9, §8.5).
//!
//! Covered elsewhere and not repeated here: a gateway whose web.config is read repeatedly, and
//! two gateways on one site folder, stay idle (`gateway_site_watch.rs`); a SIGKILLed gateway
//! takes its one backend with it (`gateway_child_lifetime.rs`; here: two backends, under
//! load).
#![cfg(unix)]
#![allow(clippy::unwrap_used)]

use std::future::Future;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use test_support::client::{self, get};
use test_support::load::{Load, Outcome};
use test_support::process::{Gateway, is_running};
use test_support::site;

/// The gateway binary under test.
const ANCM: &str = env!("CARGO_BIN_EXE_ancm");

/// Clients of the load.
const CLIENTS: usize = 4;

/// What each client waits between two requests: a few hundred requests a second in all,
/// which a python backend serves on a shared machine.
const PAUSE: Duration = Duration::from_millis(10);

/// Load before and after the event, so that each test sees requests on both sides of it.
const STEADY: Duration = Duration::from_secs(1);

/// The bound on a whole test.
const TEST_LIMIT: Duration = Duration::from_secs(50);

/// The bound on waiting for the gateway to get over the event (a python backend starts in
/// well under a second; shared machines are slow).
const RECOVERY_LIMIT: Duration = Duration::from_secs(20);

/// Run `test` within [`TEST_LIMIT`].
async fn bounded(test: impl Future<Output = ()>) {
    tokio::time::timeout(TEST_LIMIT, test)
        .await
        .unwrap_or_else(|_| panic!("the test took longer than {TEST_LIMIT:?}"));
}

/// The pid of the backend that served `GET /` (python echo backend).
async fn backend_pid(addr: SocketAddr) -> u32 {
    let r = get(addr, "/", &[]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["pid"].as_u64().unwrap() as u32
}

/// The pid of the backend that served `outcome`, when it was answered 200 by one.
fn served_by(outcome: &Outcome) -> Option<u32> {
    (outcome.status() == Some(200))
        .then(|| outcome.json()?["pid"].as_u64())
        .flatten()
        .map(|pid| pid as u32)
}

/// GET / until `done` holds for the JSON of a 200 answer; bounded by [`RECOVERY_LIMIT`].
async fn until_served(addr: SocketAddr, what: &str, done: impl Fn(&serde_json::Value) -> bool) {
    let deadline = Instant::now() + RECOVERY_LIMIT;
    loop {
        let r = get(addr, "/", &[]).await;
        if r.status == 200 && done(&r.json()) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: not within {RECOVERY_LIMIT:?}; last answer {} {}",
            r.status,
            r.text()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The outcomes that are not `200`/`allowed`, for failure messages.
fn unexpected<'a>(outcomes: &'a [Outcome], allowed: &[u16]) -> Vec<&'a Outcome> {
    outcomes
        .iter()
        .filter(|o| !o.status().is_some_and(|s| s == 200 || allowed.contains(&s)))
        .collect()
}

/// SIGKILLs processes left running when a test fails.
struct KillOnDrop(Vec<u32>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        for pid in &self.0 {
            if is_running(*pid) {
                signal(*pid, nix::sys::signal::Signal::SIGKILL);
            }
        }
    }
}

fn signal(pid: u32, signal: nix::sys::signal::Signal) {
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), signal);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_killed_under_load_fails_only_the_requests_in_flight() {
    bounded(async {
        let site = site::with_config(&site::python_echo_config("", &[]));
        let gw = Gateway::start(ANCM, site.path(), &[]);
        let first = backend_pid(gw.addr).await;
        let _reaper = KillOnDrop(vec![first]);

        let load = Load::start(gw.addr, "/", CLIENTS, PAUSE);
        tokio::time::sleep(STEADY).await;
        let killed_at = load.elapsed();
        signal(first, nix::sys::signal::Signal::SIGKILL);
        until_served(gw.addr, "a new backend", |j| j["pid"] != first).await;
        tokio::time::sleep(STEADY).await;
        let outcomes = load.stop().await;

        // The restart completed when a request of the load was first served by a new backend.
        let restarted = outcomes
            .iter()
            .filter(|o| served_by(o).is_some_and(|pid| pid != first))
            .map(|o| o.done)
            .min()
            .expect("the load was served by the new backend");
        let odd = unexpected(&outcomes, &[502]);
        assert!(odd.is_empty(), "neither 200 nor 502: {odd:#?}");
        let failed: Vec<&Outcome> = outcomes.iter().filter(|o| o.status() == Some(502)).collect();
        let outside: Vec<&&Outcome> = failed
            .iter()
            .filter(|o| o.done < killed_at || o.sent > restarted)
            .collect();
        assert!(
            outside.is_empty(),
            "502s outside the crash window (killed at {killed_at:?}, restarted at \
             {restarted:?}): {outside:#?}"
        );
        let after: Vec<&Outcome> = outcomes.iter().filter(|o| o.sent > restarted).collect();
        assert!(
            after.len() > CLIENTS,
            "too little load after the restart: {}",
            after.len()
        );
        assert!(
            after
                .iter()
                .all(|o| served_by(o).is_some_and(|pid| pid != first)),
            "a request after the restart was not served by the new backend"
        );
        let before = outcomes.iter().filter(|o| o.done < killed_at).count();
        assert!(before > CLIENTS, "too little load before the kill: {before}");
        eprintln!(
            "backend SIGKILL: {} requests, {} failed (502) in the window {killed_at:?}..{restarted:?}",
            outcomes.len(),
            failed.len()
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_config_changed_under_load_fails_nothing_and_the_backend_sees_the_change() {
    bounded(async {
        let config = |env: &[(&str, &str)]| site::python_echo_config("", env);
        let site = site::with_config(&config(&[("TEST_MARK", "one")]));
        let gw = Gateway::start(ANCM, site.path(), &[]);
        let old = backend_pid(gw.addr).await;
        let _reaper = KillOnDrop(vec![old]);

        let load = Load::start(gw.addr, "/", CLIENTS, PAUSE);
        tokio::time::sleep(STEADY).await;
        // Written in place (truncated, then written), as an editor saves it.
        std::fs::write(
            site.path().join("web.config"),
            config(&[("TEST_MARK", "one"), ("TEST_ADDED", "yes")]),
        )
        .unwrap();
        until_served(gw.addr, "the new variable", |j| {
            j["env"]["TEST_ADDED"] == "yes"
        })
        .await;
        tokio::time::sleep(STEADY).await;
        let outcomes = load.stop().await;

        let failed = unexpected(&outcomes, &[]);
        assert!(
            failed.is_empty(),
            "{} of {} requests failed across the recycle: {failed:#?}",
            failed.len(),
            outcomes.len()
        );
        let new_env = |o: &Outcome| o.json().is_some_and(|j| j["env"]["TEST_ADDED"] == "yes");
        let switched = outcomes
            .iter()
            .filter(|o| new_env(o))
            .map(|o| o.done)
            .min()
            .expect("the load reached the new backend");
        let after: Vec<&Outcome> = outcomes.iter().filter(|o| o.sent > switched).collect();
        assert!(after.len() > CLIENTS, "too little load after the switch");
        assert!(
            after
                .iter()
                .all(|o| new_env(o) && served_by(o) != Some(old)),
            "a request sent after the switch reached the old backend"
        );
        assert!(
            outcomes
                .iter()
                .filter(|o| served_by(o) == Some(old))
                .count()
                > CLIENTS,
            "too little load before the switch"
        );
        let stopped = test_support::process::eventually(RECOVERY_LIMIT, || !is_running(old)).await;
        assert!(stopped, "the old backend {old} still runs");
        eprintln!(
            "web.config change: {} requests, none failed, switched at {switched:?}",
            outcomes.len()
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_offline_toggled_under_load_answers_200_or_503_and_never_hangs() {
    bounded(async {
        let site = site::with_config(&site::python_echo_config("", &[]));
        let gw = Gateway::start(ANCM, site.path(), &[]);
        let first = backend_pid(gw.addr).await;
        let _reaper = KillOnDrop(vec![first]);
        let offline = site.path().join("app_offline.htm");
        let page = "<p>deploying</p>";

        let load = Load::start(gw.addr, "/", CLIENTS, PAUSE);
        tokio::time::sleep(Duration::from_millis(500)).await;
        // Every 500 ms for 6 s: there, gone, there, ...
        for _ in 0..6 {
            std::fs::write(&offline, page).unwrap();
            tokio::time::sleep(Duration::from_millis(500)).await;
            std::fs::remove_file(&offline).unwrap();
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        until_served(gw.addr, "the application back online", |_| true).await;
        let outcomes = load.stop().await;

        let odd = unexpected(&outcomes, &[503]);
        assert!(
            odd.is_empty(),
            "{} of {} requests neither 200 nor 503 (a 502, an error, a hang): {odd:#?}",
            odd.len(),
            outcomes.len()
        );
        // The page, or nothing: a request that looked at the file between its creation and
        // its write (the test writes it in place) got it empty, until the next check.
        let body_of_503 = |o: &Outcome| {
            o.result
                .as_ref()
                .ok()
                .filter(|(status, _)| *status == 503)
                .map(|(_, body)| body.clone())
        };
        let offline_pages = outcomes
            .iter()
            .filter(|o| body_of_503(o).is_some_and(|b| b == page.as_bytes()))
            .count();
        let empty_pages = outcomes
            .iter()
            .filter(|o| body_of_503(o).is_some_and(|b| b.is_empty()))
            .count();
        let other_503: Vec<&Outcome> = outcomes
            .iter()
            .filter(|o| body_of_503(o).is_some_and(|b| !b.is_empty() && b != page.as_bytes()))
            .collect();
        let served = outcomes.iter().filter(|o| o.status() == Some(200)).count();
        let backends: std::collections::BTreeSet<u32> =
            outcomes.iter().filter_map(served_by).collect();
        assert!(
            offline_pages > CLIENTS,
            "too few app_offline pages: {offline_pages}"
        );
        assert!(served > CLIENTS, "too few answers from a backend: {served}");
        // A removal starts a fresh backend on the next request; one that is still starting
        // when the file is back is stopped, and its requests get the page.
        assert!(
            backends.len() >= 2 && backends.contains(&first),
            "app_offline.htm's removal did not start a fresh backend: {backends:?}"
        );
        assert!(
            other_503.is_empty(),
            "503s that are not app_offline.htm: {other_503:#?}"
        );
        eprintln!(
            "app_offline toggled: {} requests, {served} answered 200 by {} backends, \
             {offline_pages} app_offline 503s ({empty_pages} more with an empty page)",
            outcomes.len(),
            backends.len()
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_finishes_requests_in_flight_refuses_new_ones_and_leaves_no_child() {
    bounded(async {
        let site = site::with_config(&site::python_echo_config("", &[]));
        let mut gw = Gateway::start(ANCM, site.path(), &[]);
        let addr = gw.addr;
        let backend = backend_pid(addr).await;
        let _reaper = KillOnDrop(vec![backend]);

        let load = Load::start(addr, "/", CLIENTS, PAUSE);
        let slow: Vec<_> = (0..2)
            .map(|_| {
                tokio::spawn(async move {
                    let req = client::get_request(&addr.to_string(), "/slow?ms=2500", &[]);
                    let res = client::try_request(addr, req).await;
                    (res, Instant::now())
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(500)).await;

        let stop_sent = load.elapsed();
        let stopping = tokio::task::spawn_blocking(move || gw.terminate());
        // The listener closes first: connections are refused while the drain goes on.
        let deadline = Instant::now() + Duration::from_secs(5);
        let refused_at = loop {
            match tokio::net::TcpStream::connect(addr).await {
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                    break Instant::now();
                }
                _ => {}
            }
            assert!(
                Instant::now() < deadline,
                "{addr} still accepts connections 5 s after SIGTERM"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        for request in slow {
            let (res, done_at) = request.await.unwrap();
            let res = res.expect("the request in flight gets its whole answer");
            assert_eq!(res.status, 200, "{}", res.text());
            assert!(
                done_at > refused_at,
                "connections were refused only after the requests in flight were answered"
            );
        }
        let status = stopping.await.unwrap();
        assert_eq!(status.code(), Some(0), "{status:?}");
        assert!(
            !is_running(backend),
            "backend {backend} outlived the gateway"
        );
        let outcomes = load.stop().await;

        let answered_otherwise: Vec<&Outcome> = outcomes
            .iter()
            .filter(|o| o.status().is_some_and(|s| s != 200))
            .collect();
        assert!(
            answered_otherwise.is_empty(),
            "answers other than 200 while stopping: {answered_otherwise:#?}"
        );
        let failed_before: Vec<&Outcome> = outcomes
            .iter()
            .filter(|o| o.result.is_err() && o.done < stop_sent)
            .collect();
        assert!(
            failed_before.is_empty(),
            "failures before SIGTERM: {failed_before:#?}"
        );
        let refused = outcomes
            .iter()
            .filter(|o| {
                o.result
                    .as_ref()
                    .is_err_and(|e| e.contains("onnection refused"))
            })
            .count();
        assert!(refused > 0, "the load was never refused after SIGTERM");
        let served = outcomes.iter().filter(|o| o.status() == Some(200)).count();
        eprintln!(
            "SIGTERM: {} requests, {served} answered 200, {} connection errors after SIGTERM \
             ({refused} refused)",
            outcomes.len(),
            outcomes.iter().filter(|o| o.result.is_err()).count()
        );
    })
    .await;
}

#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sigkilled_gateway_takes_both_its_backends_with_it() {
    bounded(async {
        let config = site::python_echo_config(r#"processesPerApplication="2""#, &[]);
        let site = site::with_config(&config);
        let mut gw = Gateway::start(ANCM, site.path(), &[]);
        // Round robin over the two slots: each starts its child on its first request.
        let mut pids = std::collections::BTreeSet::new();
        let deadline = Instant::now() + RECOVERY_LIMIT;
        while pids.len() < 2 {
            pids.insert(backend_pid(gw.addr).await);
            assert!(Instant::now() < deadline, "only backends {pids:?}");
        }
        let pids: Vec<u32> = pids.into_iter().collect();
        let _reaper = KillOnDrop(pids.clone());

        let load = Load::start(gw.addr, "/", CLIENTS, PAUSE);
        tokio::time::sleep(Duration::from_millis(500)).await;
        let status = gw.kill();
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(9)
        );
        let killed = Instant::now();
        let gone = test_support::process::eventually(Duration::from_secs(2), || {
            pids.iter().all(|pid| !is_running(*pid))
        })
        .await;
        let left: Vec<&u32> = pids.iter().filter(|pid| is_running(**pid)).collect();
        assert!(
            gone,
            "backends {left:?} outlived their SIGKILLed gateway by {:?}",
            killed.elapsed()
        );
        let outcomes = load.stop().await;
        let served = outcomes.iter().filter_map(served_by).collect::<Vec<_>>();
        assert!(
            pids.iter().all(|pid| served.contains(pid)),
            "the load did not reach both backends before the kill"
        );
    })
    .await;
}
