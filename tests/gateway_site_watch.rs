//! The site-folder watcher of the real `ancm` binary: reading web.config (by anyone, a second
//! gateway included) costs an idle gateway no CPU, and writing it without changing the
//! configuration does not recycle the application (protocol §1.1, §8.7).
//!
//! CPU is measured as the gateway's utime + stime from `/proc/PID/stat` over an idle window,
//! with a generous bound: this is a behaviour test (idle or spinning), not a benchmark.
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use test_support::client::get;
use test_support::process::Gateway;
use test_support::site;

/// The gateway binary under test.
const ANCM: &str = env!("CARGO_BIN_EXE_ancm");

/// The idle window CPU is measured over.
const IDLE_WINDOW: Duration = Duration::from_secs(3);

/// What an idle gateway may use over [`IDLE_WINDOW`]: a spinning one uses about all of it.
const IDLE_CPU_BOUND: Duration = Duration::from_millis(100);

/// Time for the last events of a burst to be handled before the idle window starts.
const SETTLE: Duration = Duration::from_millis(500);

/// utime + stime of `pid`, all threads, from `/proc/PID/stat` (clock ticks of 10 ms: the
/// kernel's USER_HZ is 100).
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // The command name is in parentheses and may hold spaces: count fields after it.
    let after_name = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after_name.split(' ').collect();
    // Fields 14 (utime) and 15 (stime) of the line; the first after the name is field 3.
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    Duration::from_millis(ticks * 10)
}

/// The CPU each of `pids` uses over [`IDLE_WINDOW`].
async fn idle_cpu(pids: &[u32]) -> Vec<Duration> {
    let before: Vec<Duration> = pids.iter().map(|pid| cpu_time(*pid)).collect();
    tokio::time::sleep(IDLE_WINDOW).await;
    pids.iter()
        .zip(before)
        .map(|(pid, before)| cpu_time(*pid) - before)
        .collect()
}

async fn backend_pid(addr: SocketAddr) -> u64 {
    let r = get(addr, "/", &[]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["pid"].as_u64().unwrap()
}

fn check(site: &Path) {
    let out = std::process::Command::new(ANCM)
        .arg("check")
        .arg(site)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reading_web_config_leaves_the_gateway_idle_and_the_backend_running() {
    let site = site::with_config(&site::rust_echo_config("", &[]));
    let gw = Gateway::start(ANCM, site.path(), &[]);
    let backend = backend_pid(gw.addr).await;

    // An editor, a backup tool, `ancm check`: readers of web.config for a while.
    let web_config = site.path().join("web.config");
    let until = Instant::now() + Duration::from_millis(1500);
    while Instant::now() < until {
        std::fs::read(&web_config).unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    check(site.path());
    tokio::time::sleep(SETTLE).await;

    let used = idle_cpu(&[gw.pid()]).await;
    assert!(
        used[0] < IDLE_CPU_BOUND,
        "the gateway used {:?} of CPU over {IDLE_WINDOW:?} while idle",
        used[0]
    );
    assert_eq!(
        backend_pid(gw.addr).await,
        backend,
        "reads recycled the app"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_gateways_on_one_site_folder_stay_idle() {
    let site = site::with_config(&site::rust_echo_config("", &[]));
    let first = Gateway::start(ANCM, site.path(), &[]);
    let second = Gateway::start(ANCM, site.path(), &[]);
    backend_pid(first.addr).await;
    backend_pid(second.addr).await;
    // Each gateway's reads of web.config are events for the other.
    check(site.path());
    tokio::time::sleep(SETTLE).await;

    let used = idle_cpu(&[first.pid(), second.pid()]).await;
    for (n, used) in used.iter().enumerate() {
        assert!(
            *used < IDLE_CPU_BOUND,
            "gateway {n} used {used:?} of CPU over {IDLE_WINDOW:?} while idle"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_config_rewritten_without_a_change_does_not_recycle_and_a_change_does() {
    let config = site::rust_echo_config("", &[("TEST_MARK", "one")]);
    let site = site::with_config(&config);
    let gw = Gateway::start(ANCM, site.path(), &[]);
    let backend = backend_pid(gw.addr).await;
    let web_config = site.path().join("web.config");

    // The same bytes written again; the same configuration written differently (a comment,
    // other white space); the same file renamed into place, as a deploy does; a touch.
    std::fs::write(&web_config, &config).unwrap();
    let reformatted = config
        .replace("<configuration>", "<configuration>\n  <!-- redeployed -->")
        .replace("  <location", "\t<location");
    std::fs::write(&web_config, &reformatted).unwrap();
    let staged = site.path().join("web.config.new");
    std::fs::write(&staged, &config).unwrap();
    std::fs::rename(&staged, &web_config).unwrap();
    // `touch`: a new modification time only (the IIS idiom for a restart).
    std::fs::File::options()
        .write(true)
        .open(&web_config)
        .and_then(|f| f.set_modified(std::time::SystemTime::now() + Duration::from_secs(2)))
        .unwrap();

    // Long enough for a recycle to have started and switched (the backend starts in well
    // under a second).
    let until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < until {
        assert_eq!(
            backend_pid(gw.addr).await,
            backend,
            "an unchanged configuration recycled the app"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // A burst of real changes: the last one wins.
    for mark in ["two", "three", "four"] {
        let changed = site::rust_echo_config("", &[("TEST_MARK", mark)]);
        std::fs::write(&web_config, changed).unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = get(gw.addr, "/", &[]).await;
        if r.status == 200 && r.json()["env"]["TEST_MARK"] == "four" {
            assert_ne!(r.json()["pid"].as_u64().unwrap(), backend);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the changed web.config was not applied: {} {}",
            r.status,
            r.text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
