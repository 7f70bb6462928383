//! Backend supervision with real child processes (issue 4 §2, §5).
//!
//! One file, over 500 lines, for supervision: its tests share the backend configurations and
//! the forwarder below. The backend is the Rust `test_backend` example on every OS; what needs
//! signals or python3 runs on Unix only.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ancm_front::{BackendTarget, Body};
use ancm_hosting::config::{AspNetCoreConfig, Location};
use ancm_hosting::{Application, ApplicationOptions, ApplicationService};
use ancm_protocol::AppPath;
use bytes::Bytes;
use http::Request;
use http_body_util::Empty;
use test_support::backends::Proxy;
use test_support::client::{Response, call};
use test_support::process::{eventually, example, free_port, is_running};
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

#[cfg(unix)]
fn python_config() -> AspNetCoreConfig {
    let mut c = AspNetCoreConfig::new(
        "python3",
        Location {
            file: PathBuf::from("web.config"),
            line: 1,
            column: 1,
        },
    );
    let backend = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/backends/backend.py");
    c.arguments = format!("-u \"{}\"", backend.display());
    c.startup_time_limit = 10;
    c.shutdown_time_limit = 3;
    c
}

/// The value of `NAME=value` in the answer: how the test backends report their environment.
fn env(got: &Response, name: &str) -> Option<String> {
    got.text()
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name}=")).map(str::to_owned))
}

fn assert_env(got: &Response, site: &std::path::Path, app_path: &str) {
    assert_eq!(got.status, 200, "{got:?}");
    let port: u16 = env(got, "ASPNETCORE_PORT")
        .and_then(|p| p.parse().ok())
        .expect("port");
    assert!((10_000..=48_000).contains(&port), "port {port}");
    let token = env(got, "ASPNETCORE_TOKEN").expect("token");
    assert_eq!(token.len(), 36, "a GUID token");
    assert_eq!(env(got, "TOKEN_HEADER_OK").as_deref(), Some("true"));
    assert_eq!(env(got, "ASPNETCORE_APPL_PATH").as_deref(), Some(app_path));
    assert_eq!(
        env(got, "ASPNETCORE_IIS_HTTPAUTH").as_deref(),
        Some("anonymous;")
    );
    assert_eq!(
        env(got, "ASPNETCORE_IIS_WEBSOCKETS_SUPPORTED").as_deref(),
        Some("true")
    );
    let hsa = env(got, "ASPNETCORE_HOSTINGSTARTUPASSEMBLIES").expect("hosting startup");
    assert!(
        hsa.ends_with(";Microsoft.AspNetCore.Server.IISIntegration"),
        "{hsa}"
    );
    assert_eq!(
        env(got, "ANCM_TEST_VALUE").as_deref(),
        Some("from web.config")
    );
    let cwd = std::fs::canonicalize(env(got, "CWD").expect("cwd")).expect("cwd exists");
    assert_eq!(cwd, std::fs::canonicalize(site).expect("site"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_backend_gets_the_environment_via_a_site_relative_path() {
    let site = site::empty();
    // A Windows-style relative processPath resolved against the site folder: a copy of the
    // backend there.
    let exe = format!("start{}", std::env::consts::EXE_SUFFIX);
    std::fs::copy(
        example("ancm-hosting", "test_backend"),
        site.path().join(&exe),
    )
    .expect("copy the backend into the site folder");
    let mut cfg = rust_config("normal");
    cfg.process_path = format!(r".\{exe}");
    cfg.environment_variables
        .push(("ANCM_TEST_VALUE".into(), "from web.config".into()));
    let app = Application::with_config(
        options(site.path()).app_path(AppPath::parse("/app").expect("path")),
        cfg,
    )
    .expect("app");
    let svc = service(&app);
    let got = call(&svc, "/env").await;
    assert_env(&got, site.path(), "/app");
    let pid: u32 = env(&got, "PID").and_then(|p| p.parse().ok()).expect("pid");
    assert_eq!(app.backend_pids(), vec![pid]);
    let t = Instant::now();
    app.shutdown().await;
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "202 path is quick: {:?}",
        t.elapsed()
    );
    assert!(!is_running(pid), "backend still alive after shutdown");
    assert_eq!(call(&svc, "/env").await.status, 503);
}

// python3 is there on the Unix machines that run the tests, not in the Windows run.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_backend_gets_the_environment_and_stops_with_202() {
    let site = site::empty();
    let mut cfg = python_config();
    cfg.environment_variables
        .push(("ANCM_TEST_VALUE".into(), "from web.config".into()));
    let app = Application::with_config(options(site.path()), cfg).expect("app");
    let svc = service(&app);
    let got = call(&svc, "/env").await;
    assert_env(&got, site.path(), "/");
    let pid: u32 = env(&got, "PID").and_then(|p| p.parse().ok()).expect("pid");
    let t = Instant::now();
    app.shutdown().await;
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "took {:?}",
        t.elapsed()
    );
    assert!(!is_running(pid));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_first_requests_share_one_start() {
    let site = site::empty();
    let mut cfg = rust_config("normal");
    cfg.environment_variables
        .push(("ANCM_TEST_DELAY_MS".into(), "400".into()));
    let app = Application::with_config(options(site.path()), cfg).expect("app");
    let svc = service(&app);
    let tasks: Vec<_> = (0..12)
        .map(|_| {
            let svc = svc.clone();
            tokio::spawn(async move { call(&svc, "/pid").await })
        })
        .collect();
    let mut pids = std::collections::HashSet::new();
    for t in tasks {
        let got = t.await.expect("join");
        assert_eq!(got.status, 200, "{got:?}");
        pids.insert(got.text());
    }
    assert_eq!(pids.len(), 1, "one process for all: {pids:?}");
    assert_eq!(app.backend_pids().len(), 1);
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configured_port_is_used() {
    let site = site::empty();
    let port = free_port();
    let mut cfg = rust_config("normal");
    cfg.environment_variables
        .push(("ASPNETCORE_PORT".into(), port.to_string()));
    let app = Application::with_config(options(site.path()), cfg).expect("app");
    let got = call(&service(&app), "/env").await;
    assert_eq!(got.status, 200, "{got:?}");
    assert_eq!(env(&got, "ASPNETCORE_PORT"), Some(port.to_string()));
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configured_port_out_of_range_is_502_5_without_retry() {
    for bad in ["1024", "48001", "noninteger"] {
        let site = site::empty();
        let mut cfg = rust_config("normal");
        cfg.environment_variables
            .push(("ASPNETCORE_PORT".into(), bad.into()));
        let app = Application::with_config(options(site.path()), cfg).expect("app");
        let t = Instant::now();
        let got = call(&service(&app), "/").await;
        assert_eq!(got.status, 502, "{bad}");
        assert!(
            got.text()
                .contains("HTTP Error 502.5 - ANCM Out-Of-Process Startup Failure"),
            "{bad}"
        );
        assert!(
            got.text().contains("1025-48000"),
            "detail names the range: {}",
            got.text()
        );
        assert!(
            t.elapsed() < Duration::from_millis(500),
            "no attempt made for {bad}"
        );
        assert!(app.backend_pids().is_empty());
        app.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipv6_only_listener_is_ready() {
    let site = site::empty();
    let app = Application::with_config(options(site.path()), rust_config("v6")).expect("app");
    let got = call(&service(&app), "/pid").await;
    assert_eq!(got.status, 200, "{got:?}");
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listener_in_a_grandchild_is_ready_and_the_tree_is_stopped() {
    let site = site::empty();
    let app =
        Application::with_config(options(site.path()), rust_config("grandchild")).expect("app");
    let got = call(&service(&app), "/pid").await;
    assert_eq!(got.status, 200, "{got:?}");
    let grandchild: u32 = got.text().parse().expect("pid");
    let child = app.backend_pids()[0];
    assert_ne!(child, grandchild);
    app.shutdown().await;
    assert!(
        eventually(Duration::from_secs(2), || !is_running(child)
            && !is_running(grandchild))
        .await,
        "orphans left"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn never_listening_child_times_out_after_two_attempts() {
    let site = site::empty();
    let mut cfg = rust_config("never");
    cfg.startup_time_limit = 1;
    let app = Application::with_config(options(site.path()), cfg).expect("app");
    let t = Instant::now();
    let got = call(&service(&app), "/").await;
    let took = t.elapsed();
    assert_eq!(got.status, 502);
    assert!(got.text().contains("502.5"));
    assert!(
        got.text().contains("did not listen on port"),
        "{}",
        got.text()
    );
    assert!(
        got.text().contains("mode=never"),
        "captured output shown: {}",
        got.text()
    );
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(6),
        "2 attempts of 1 s: {took:?}"
    );
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child_exiting_at_once_fails_fast_with_its_output() {
    let site = site::empty();
    let app = Application::with_config(options(site.path()), rust_config("exit")).expect("app");
    let t = Instant::now();
    let got = call(&service(&app), "/").await;
    assert_eq!(got.status, 502);
    assert_eq!(got.headers["content-type"], "text/html; charset=utf-8");
    assert!(
        got.text()
            .contains("exited during startup with exit code 3"),
        "{}",
        got.text()
    );
    assert!(got.text().contains("early exit output"), "{}", got.text());
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    app.shutdown().await;

    // Without detailed errors: the page, but no detail.
    let site = site_plain();
    let app = Application::with_config(
        ancm_hosting::ApplicationOptions::new(site.path()).detailed_errors(false),
        rust_config("exit"),
    )
    .expect("app");
    let got = call(&service(&app), "/").await;
    assert_eq!(got.status, 502);
    assert!(got.text().contains("502.5") && !got.text().contains("early exit output"));
    app.shutdown().await;

    // disableStartUpErrorPage: bare 502.
    let site = site_plain();
    let mut cfg = rust_config("exit");
    cfg.disable_startup_error_page = true;
    let app = Application::with_config(options(site.path()), cfg).expect("app");
    let got = call(&service(&app), "/").await;
    assert_eq!(got.status, 502);
    assert!(got.text().is_empty());
    app.shutdown().await;
}

fn site_plain() -> tempfile::TempDir {
    site::empty()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_then_restart_then_rapid_fail_limit() {
    let site = site::empty();
    let mut cfg = rust_config("normal");
    cfg.rapid_fails_per_minute = 1;
    let app = Application::with_config(options(site.path()), cfg).expect("app");
    let svc = service(&app);
    let mut seen = Vec::new();
    for crash in 1..=2 {
        let got = call(&svc, "/pid").await;
        assert_eq!(got.status, 200, "start {crash}: {got:?}");
        let pid: u32 = got.text().parse().expect("pid");
        assert!(!seen.contains(&pid), "a new process after a crash");
        seen.push(pid);
        let crashed = call(&svc, "/crash").await;
        assert_eq!(crashed.status, 502, "{crashed:?}");
        assert!(eventually(Duration::from_secs(3), || !is_running(pid)).await);
        assert!(
            eventually(Duration::from_secs(3), || app.backend_pids().is_empty()).await,
            "slot freed"
        );
    }
    // 2 unexpected exits > rapidFailsPerMinute=1: no start.
    let got = call(&svc, "/pid").await;
    assert_eq!(got.status, 502, "{got:?}");
    assert!(got.text().contains("rapid fail"), "{}", got.text());
    assert!(app.backend_pids().is_empty());
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_round_robin() {
    let site = site::empty();
    let mut cfg = rust_config("normal");
    cfg.processes_per_application = 2;
    let app = Application::with_config(options(site.path()), cfg).expect("app");
    let svc = service(&app);
    let mut pids = Vec::new();
    for _ in 0..6 {
        let got = call(&svc, "/env").await;
        assert_eq!(got.status, 200);
        pids.push((
            env(&got, "PID").expect("pid"),
            env(&got, "ASPNETCORE_PORT").expect("port"),
            env(&got, "ASPNETCORE_TOKEN").expect("token"),
        ));
    }
    assert_ne!(pids[0], pids[1], "own pid, port and token per slot");
    assert_ne!(pids[0].1, pids[1].1);
    assert_ne!(pids[0].2, pids[1].2);
    for i in 2..6 {
        assert_eq!(pids[i], pids[i - 2], "alternating");
    }
    let (a, b): (u32, u32) = (
        pids[0].0.parse().expect("pid"),
        pids[1].0.parse().expect("pid"),
    );
    // A dead slot is restarted on demand; the other keeps serving.
    let _ = call(&svc, "/crash").await; // slot of request 7 = same as request 1
    assert!(eventually(Duration::from_secs(3), || !is_running(a) || !is_running(b)).await);
    let mut after = std::collections::HashSet::new();
    for _ in 0..4 {
        let got = call(&svc, "/pid").await;
        assert_eq!(got.status, 200);
        after.insert(got.text());
    }
    assert_eq!(after.len(), 2);
    app.shutdown().await;
    for p in after {
        assert!(!is_running(p.parse().expect("pid")));
    }
}

async fn stop_timing(mode: &str) -> Duration {
    let site = site::empty();
    let mut cfg = rust_config(mode);
    cfg.shutdown_time_limit = 2;
    let app = Application::with_config(options(site.path()), cfg).expect("app");
    let got = call(&service(&app), "/pid").await;
    assert_eq!(got.status, 200, "{mode}: {got:?}");
    let pid: u32 = got.text().parse().expect("pid");
    let t = Instant::now();
    app.shutdown().await;
    let took = t.elapsed();
    assert!(!is_running(pid), "{mode}: still alive");
    took
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_stop_falls_back_to_signals_then_kill() {
    // Ignores the HTTP message: SIGINT ends it at once.
    let t = stop_timing("ignore-event").await;
    assert!(t < Duration::from_millis(900), "SIGINT: {t:?}");
    // Ignores SIGINT too: SIGTERM after half the limit (1 s).
    let t = stop_timing("ignore-int").await;
    assert!(
        t >= Duration::from_millis(900) && t < Duration::from_millis(1900),
        "SIGTERM: {t:?}"
    );
    // Ignores both: killed when shutdownTimeLimit (2 s) runs out.
    let t = stop_timing("ignore-all").await;
    assert!(
        t >= Duration::from_millis(1900) && t < Duration::from_secs(4),
        "kill: {t:?}"
    );
}

#[cfg(windows)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_stop_of_a_child_ignoring_the_shutdown_message_ends_it_at_once() {
    // Ctrl+Break ends it, or, where Ctrl+Break cannot be sent (no console, Wine), the job is
    // terminated at once: either way well before shutdownTimeLimit (2 s).
    let t = stop_timing("ignore-event").await;
    assert!(t < Duration::from_millis(900), "{t:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stdout_log_file_per_start() {
    let site = site::empty();
    let mut cfg = rust_config("normal");
    cfg.stdout_log_enabled = true;
    cfg.stdout_log_file = r".\logs\stdout".into();
    let app = Application::with_config(options(site.path()), cfg).expect("app");
    let got = call(&service(&app), "/pid").await;
    assert_eq!(got.status, 200);
    let pid = got.text();
    app.shutdown().await;
    let files: Vec<_> = std::fs::read_dir(site.path().join("logs"))
        .expect("logs folder created")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let name = &files[0];
    let suffix = format!("_{}.log", std::process::id());
    let stamp = name
        .strip_prefix("stdout_")
        .and_then(|n| n.strip_suffix(&suffix))
        .expect(name);
    assert_eq!(stamp.len(), 14);
    assert!(
        stamp.bytes().all(|b| b.is_ascii_digit()) && stamp.starts_with("20"),
        "{stamp}"
    );
    let text = std::fs::read_to_string(site.path().join("logs").join(name)).expect("read");
    assert!(text.contains(&format!("test backend pid={pid}")), "{text}");
    assert!(text.contains("test backend stderr line"), "{text}");
}

#[test]
fn dropping_the_runtime_without_shutdown_leaves_no_orphans() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let site = site::empty();
    let (child, grandchild) = rt.block_on(async {
        let app =
            Application::with_config(options(site.path()), rust_config("grandchild")).expect("app");
        let got = call(&service(&app), "/pid").await;
        assert_eq!(got.status, 200, "{got:?}");
        (
            app.backend_pids()[0],
            got.text().parse::<u32>().expect("pid"),
        )
    });
    drop(rt);
    let deadline = Instant::now() + Duration::from_secs(3);
    while (is_running(child) || is_running(grandchild)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        !is_running(child) && !is_running(grandchild),
        "orphans after the runtime was dropped"
    );
}
