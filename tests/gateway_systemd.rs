//! Running under systemd and for logrotate (protocol §8.36, §8.37), end to end with the real
//! binary: preload, the readiness protocol received on the test's own datagram socket,
//! socket activation, and what SIGHUP reloads (web.config, the access log).
#![cfg(unix)]
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;

use std::time::{Duration, Instant};
use tokio::io::AsyncBufReadExt as _;

use test_support::admin::{app_status, serving_pids, wait_app, wait_app_at};
use test_support::client::get;
use test_support::process::{Gateway, exit_code, free_port};
use test_support::{LIMIT, site};

const ANCM: &str = env!("CARGO_BIN_EXE_ancm");

fn admin_addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], free_port()))
}

fn signal(pid: u32, signal: nix::sys::signal::Signal) {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(pid).unwrap()),
        signal,
    )
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preload_starts_backends_before_the_first_request_and_a_failure_is_a_state() {
    // The handler setting (the flag, for every application, is in the NOTIFY_SOCKET test).
    let config = site::python_echo_config_with_settings("", &[], &[("preload", "true")]);
    let site = site::with_config(&config);
    let broken = site::with_config(&config.replace(
        r#"processPath="python3""#,
        r#"processPath="/nonexistent/program""#,
    ));
    let admin = admin_addr();
    let gw = Gateway::start(
        ANCM,
        site.path(),
        &[
            "--admin-listen",
            &admin.to_string(),
            "--app",
            &format!("/broken={}", broken.path().display()),
        ],
    );
    let app = wait_app_at(
        admin,
        Some("/"),
        "the backend started without a request",
        |app| app["slots"][0]["state"] == "ready",
    )
    .await;
    assert_eq!(app["requests"], 0, "{app:#}");
    let pid = serving_pids(&app)[0];
    wait_app_at(admin, Some("/broken"), "the failed preload shown", |app| {
        app["state"] == "failed"
    })
    .await;
    // The gateway runs on; the first request pays no start-up: the preloaded process
    // answers it.
    let r = get(gw.addr, "/", &[]).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["pid"], pid);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notify_socket_hears_ready_after_bind_and_preload_then_watchdog_then_stopping() {
    let dir = tempfile::tempdir().unwrap();
    let socket_path = dir.path().join("notify.sock");
    let socket = tokio::net::UnixDatagram::bind(&socket_path).unwrap();
    let site = site::with_config(&site::python_echo_config("", &[]));
    let admin = admin_addr();
    let mut gw = Gateway::start_piped(
        ANCM,
        site.path(),
        &["--admin-listen", &admin.to_string(), "--preload"],
        &[
            ("NOTIFY_SOCKET", socket_path.to_str().unwrap()),
            ("WATCHDOG_USEC", "200000"),
        ],
    );
    drop(gw.take_stdout());
    drop(gw.take_stderr());
    let mut buf = vec![0u8; 4096];
    let mut recv = async || -> String {
        let n = tokio::time::timeout(LIMIT, socket.recv(&mut buf))
            .await
            .expect("a notification in time")
            .unwrap();
        String::from_utf8(buf[..n].to_vec()).unwrap()
    };
    let ready = recv().await;
    let lines: Vec<&str> = ready.lines().collect();
    assert!(lines.contains(&"READY=1"), "{ready:?}");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("STATUS=serving 1 application")),
        "{ready:?}"
    );
    // Listeners bound and the preloaded backend ready before READY=1.
    assert!(std::net::TcpStream::connect(gw.addr).is_ok());
    let app = app_status(admin).await;
    assert_eq!(app["slots"][0]["state"], "ready", "{app:#}");
    // WatchdogSec: pings at half the interval.
    let started = Instant::now();
    for _ in 0..3 {
        assert_eq!(recv().await, "WATCHDOG=1\n");
    }
    assert!(started.elapsed() < Duration::from_secs(2));
    signal(gw.pid(), nix::sys::signal::Signal::SIGTERM);
    let stopping = loop {
        let message = recv().await;
        if message != "WATCHDOG=1\n" {
            break message;
        }
    };
    assert!(stopping.lines().any(|l| l == "STOPPING=1"), "{stopping:?}");
    assert!(gw.terminate().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socket_passed_by_systemd_is_served() {
    let site = site::with_config(&site::python_echo_config("", &[]));
    // What systemd does: a listening socket as fd 3, LISTEN_FDS=1 and LISTEN_PID of the
    // process that then runs `ancm` (exec keeps the pid).
    let activate = r#"
import os, socket, sys
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(128)
if s.fileno() != 3:
    os.dup2(s.fileno(), 3)
os.set_inheritable(3, True)
os.environ["LISTEN_FDS"] = "1"
os.environ["LISTEN_PID"] = str(os.getpid())
print(s.getsockname()[1], flush=True)
os.execv(sys.argv[1], sys.argv[1:])
"#;
    // Killed if the test fails before it stops it.
    let mut child = tokio::process::Command::new("python3")
        .args(["-c", activate, ANCM, "run"])
        .arg(site.path())
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut line = String::new();
    let mut stdout = tokio::io::BufReader::new(child.stdout.take().unwrap());
    tokio::time::timeout(LIMIT, stdout.read_line(&mut line))
        .await
        .expect("the port in time")
        .unwrap();
    let addr = SocketAddr::from(([127, 0, 0, 1], line.trim().parse::<u16>().unwrap()));
    let r = get(addr, "/", &[]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.json()["pid"].as_u64().is_some());
    signal(child.id().unwrap(), nix::sys::signal::Signal::SIGTERM);
    assert_eq!(exit_code(&mut child).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_picks_up_a_changed_web_config() {
    // web.config is a symbolic link to a file elsewhere (configuration management): a write
    // there is not seen by the site folder's watcher, and no request looks meanwhile.
    let conf = tempfile::tempdir().unwrap();
    let target = conf.path().join("web.config");
    std::fs::write(
        &target,
        site::python_echo_config("", &[("TEST_MARK", "one")]),
    )
    .unwrap();
    let site = site::empty();
    std::os::unix::fs::symlink(&target, site.path().join("web.config")).unwrap();
    let admin = admin_addr();
    let gw = Gateway::start(ANCM, site.path(), &["--admin-listen", &admin.to_string()]);
    let r = get(gw.addr, "/", &[]).await;
    assert_eq!(r.json()["env"]["TEST_MARK"], "one");
    let before = app_status(admin).await;
    let old = serving_pids(&before);
    std::fs::write(
        &target,
        site::python_echo_config("", &[("TEST_MARK", "two")]),
    )
    .unwrap();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let unseen = app_status(admin).await;
    assert_eq!(
        unseen["web_config_sha256"], before["web_config_sha256"],
        "{unseen:#}"
    );
    assert_eq!(unseen["recycles"], 0, "{unseen:#}");
    signal(gw.pid(), nix::sys::signal::Signal::SIGHUP);
    let after = wait_app(admin, "the changed web.config in use", |app| {
        let now = serving_pids(app);
        app["web_config_sha256"] != before["web_config_sha256"] && !now.is_empty() && now != old
    })
    .await;
    assert_eq!(after["recycles"], 1, "{after:#}");
    assert_eq!(after["recycles_by_cause"]["recycle"], 1, "{after:#}");
    let r = get(gw.addr, "/", &[]).await;
    assert_eq!(r.json()["env"]["TEST_MARK"], "two");
}

/// The access log files of application `/` under `dir`.
fn access_log_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir.join("ROOT"))
        .map(|entries| entries.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    files.sort();
    files
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reopens_the_access_log_after_logrotate() {
    let site = site::with_config(&site::python_echo_config("", &[]));
    let logs = tempfile::tempdir().unwrap();
    let gw = Gateway::start(
        ANCM,
        site.path(),
        &["--access-log", logs.path().to_str().unwrap()],
    );
    assert_eq!(get(gw.addr, "/before-rotation", &[]).await.status, 200);
    let deadline = Instant::now() + LIMIT;
    let log = loop {
        let found = access_log_files(logs.path())
            .into_iter()
            .find(|f| std::fs::read_to_string(f).is_ok_and(|t| t.contains("/before-rotation")));
        if let Some(found) = found {
            break found;
        }
        assert!(Instant::now() < deadline, "no access log line");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    // logrotate: move the file away, then SIGHUP (its `postrotate`).
    let rotated = log.with_extension("log.1");
    std::fs::rename(&log, &rotated).unwrap();
    signal(gw.pid(), nix::sys::signal::Signal::SIGHUP);
    let deadline = Instant::now() + LIMIT;
    loop {
        // Requests until one lands in a new file at the old name.
        assert_eq!(get(gw.addr, "/after-rotation", &[]).await.status, 200);
        if std::fs::read_to_string(&log).is_ok_and(|t| t.contains("/after-rotation")) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no new access log file at {}",
            log.display()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let old = std::fs::read_to_string(&rotated).unwrap();
    assert!(old.contains("/before-rotation"), "{old}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reopens_a_size_capped_stdout_log_after_logrotate() {
    // Size-capped: the backend's output goes through the gateway, which can reopen the file.
    let site = site::with_config(&site::python_echo_config_with_settings(
        r#"stdoutLogEnabled="true" stdoutLogFile=".\logs\stdout""#,
        &[],
        &[("stdoutLogMaxBytes", "1000000")],
    ));
    let gw = Gateway::start(ANCM, site.path(), &[]);
    let pid = get(gw.addr, "/", &[]).await.json()["pid"].as_u64().unwrap();
    let logs = site.path().join("logs");
    let deadline = Instant::now() + LIMIT;
    let log = loop {
        let found = std::fs::read_dir(&logs).ok().and_then(|entries| {
            entries.flatten().map(|e| e.path()).find(|f| {
                std::fs::read_to_string(f)
                    .is_ok_and(|t| t.contains(&format!("echo_backend pid {pid}")))
            })
        });
        if let Some(found) = found {
            break found;
        }
        assert!(
            Instant::now() < deadline,
            "no stdout log in {}",
            logs.display()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let rotated = log.with_extension("log.1");
    std::fs::rename(&log, &rotated).unwrap();
    signal(gw.pid(), nix::sys::signal::Signal::SIGHUP);
    let deadline = Instant::now() + LIMIT;
    let mut n = 0;
    loop {
        n += 1;
        let path = format!("/print?lines=1&width={n}");
        assert_eq!(get(gw.addr, &path, &[]).await.json()["pid"], pid);
        if std::fs::read_to_string(&log).is_ok_and(|t| t.contains("line 00000")) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no new stdout log at {}",
            log.display()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
