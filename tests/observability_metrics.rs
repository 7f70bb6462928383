//! `ancm run --admin-listen`: `/metrics` scraped over HTTP and read by the Python
//! `prometheus_client` parser (a consumer no one here wrote) as requests, a crash, a recycle
//! and connections happen; `/healthz`, `/readyz`, `/status` and `ancm status`; the admin
//! address checks. The real binary, real backends.
#![cfg(unix)]
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use test_support::client::{self, get};
use test_support::process::{Gateway, eventually, free_port};
use test_support::site;

const ANCM: &str = env!("CARGO_BIN_EXE_ancm");

/// Every wait of these tests.
const WAIT: Duration = Duration::from_secs(20);

/// A python3 that has the `prometheus_client` library: `python3` on the PATH, or Debian's
/// (`python3-prometheus-client`, which `.ci/run` installs).
fn python_with_prometheus_client() -> &'static str {
    for python in ["python3", "/usr/bin/python3"] {
        let ok = Command::new(python)
            .args(["-c", "import prometheus_client"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            return python;
        }
    }
    panic!(
        "no python3 with prometheus_client: install Debian's python3-prometheus-client or `pip install prometheus-client` (.ci/run does)"
    );
}

/// The samples of a scrape as the Python parser read them: `name{k="v",…}` → value, and
/// each family's type.
struct Scrape {
    samples: BTreeMap<String, f64>,
    types: BTreeMap<String, String>,
}

impl Scrape {
    /// The value of sample `name` with exactly `labels`.
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let key = key(name, labels);
        *self
            .samples
            .get(&key)
            .unwrap_or_else(|| panic!("no sample {key} among {:#?}", self.samples.keys()))
    }
}

fn key(name: &str, labels: &[(&str, &str)]) -> String {
    let mut labels: Vec<(&str, &str)> = labels.to_vec();
    labels.sort();
    let labels: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    format!("{name}{{{}}}", labels.join(","))
}

/// `GET /metrics`, parsed by `prometheus_client.parser.text_string_to_metric_families`.
async fn scrape(admin: SocketAddr) -> Scrape {
    let r = get(admin, "/metrics", &[]).await;
    assert_eq!(r.status, 200);
    assert!(
        r.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4"),
        "{:?}",
        r.headers
    );
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/observability/prometheus_samples.py");
    let mut child = Command::new(python_with_prometheus_client())
        .arg(&script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&r.body).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the Python parser refused /metrics: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        r.text()
    );
    let parsed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut samples = BTreeMap::new();
    for sample in parsed["samples"].as_array().unwrap() {
        let labels: Vec<(&str, &str)> = sample[1]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str().unwrap()))
            .collect();
        samples.insert(
            key(sample[0].as_str().unwrap(), &labels),
            sample[2].as_f64().unwrap(),
        );
    }
    let types = parsed["types"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
        .collect();
    Scrape { samples, types }
}

/// Scrapes until `cond` holds (backend exits and recycles are seen by their monitors a
/// moment after the request that caused them).
async fn scrape_until(admin: SocketAddr, what: &str, cond: impl Fn(&Scrape) -> bool) -> Scrape {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let scrape = scrape(admin).await;
        if cond(&scrape) {
            return scrape;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what} not seen within {WAIT:?}: {:#?}",
            scrape.samples
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn admin_addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], free_port()))
}

const ROOT: (&str, &str) = ("app", "/");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_follow_requests_connections_a_crash_and_a_recycle() {
    let site = site::with_config(&site::python_echo_config("", &[]));
    let admin = admin_addr();
    let gw = Gateway::start(ANCM, site.path(), &["--admin-listen", &admin.to_string()]);

    let s = scrape(admin).await;
    assert_eq!(s.types["ancm_http_requests"], "counter");
    assert_eq!(s.types["ancm_http_request_duration_seconds"], "histogram");
    assert_eq!(s.types["ancm_http_requests_in_flight"], "gauge");
    assert_eq!(s.types["ancm_backend_exits"], "counter");
    assert_eq!(
        s.value("ancm_backend_processes_started_total", &[ROOT]),
        0.0
    );
    assert_eq!(
        s.value("ancm_application_state", &[ROOT, ("state", "idle")]),
        1.0
    );
    assert_eq!(s.value("ancm_access_log_dropped_lines_total", &[]), 0.0);

    // Three requests on one keep-alive connection, held open.
    let mut conn = client::connect::<Full<Bytes>>(gw.addr).await;
    for _ in 0..3 {
        let req = client::get_request(&gw.addr.to_string(), "/hello", &[]);
        // The connection is ready for the next request a moment after the previous body
        // ended (hyper's dispatcher), not at once.
        conn.ready().await.unwrap();
        let resp = conn.send_request(req).await.unwrap();
        assert_eq!(resp.status(), 200);
        http_body_util::BodyExt::collect(resp.into_body())
            .await
            .unwrap();
    }
    let body = Bytes::from(vec![b'x'; 1000]);
    let req = Request::post("/upload")
        .header("host", gw.addr.to_string())
        .body(Full::new(body))
        .unwrap();
    assert_eq!(client::request(gw.addr, req).await.status, 200);

    let s = scrape_until(admin, "four answered requests", |s| {
        s.value("ancm_http_request_duration_seconds_count", &[ROOT]) == 4.0
    })
    .await;
    let requests = |s: &Scrape, method: &str, status: &str| {
        s.value(
            "ancm_http_requests_total",
            &[ROOT, ("method", method), ("status", status)],
        )
    };
    assert_eq!(requests(&s, "GET", "2xx"), 3.0);
    assert_eq!(requests(&s, "POST", "2xx"), 1.0);
    assert_eq!(requests(&s, "GET", "5xx"), 0.0);
    assert_eq!(
        s.value(
            "ancm_http_request_duration_seconds_bucket",
            &[ROOT, ("le", "+Inf")]
        ),
        4.0
    );
    assert!(s.value("ancm_http_request_duration_seconds_sum", &[ROOT]) > 0.0);
    assert_eq!(s.value("ancm_http_requests_in_flight", &[ROOT]), 0.0);
    assert!(s.value("ancm_http_request_body_bytes_total", &[ROOT]) >= 1000.0);
    assert!(s.value("ancm_http_response_body_bytes_total", &[ROOT]) > 0.0);
    assert!(
        s.value("ancm_client_connections_open", &[]) >= 1.0,
        "the held connection"
    );
    assert_eq!(
        s.value("ancm_backend_processes_started_total", &[ROOT]),
        1.0
    );
    assert_eq!(
        s.value("ancm_application_state", &[ROOT, ("state", "ready")]),
        1.0
    );
    assert_eq!(
        s.value(
            "ancm_backend_slot_state",
            &[ROOT, ("slot", "0"), ("state", "ready")]
        ),
        1.0
    );
    assert!(
        s.value("ancm_backend_connections_idle", &[ROOT]) >= 1.0,
        "kept alive"
    );
    assert_eq!(s.value("ancm_backend_connections_in_use", &[ROOT]), 0.0);
    drop(conn);
    scrape_until(admin, "the held connection closed", |s| {
        s.value("ancm_client_connections_open", &[]) == 0.0
    })
    .await;

    // A crash: 502, an exit counted as a crash, and a new process for the next request.
    assert_eq!(get(gw.addr, "/crash", &[]).await.status, 502);
    let s = scrape_until(admin, "the crash", |s| {
        s.value("ancm_backend_exits_total", &[ROOT, ("cause", "crash")]) == 1.0
    })
    .await;
    assert_eq!(requests(&s, "GET", "5xx"), 1.0);
    assert_eq!(s.value("ancm_backend_rapid_fail_blocked", &[ROOT]), 0.0);
    assert_eq!(get(gw.addr, "/again", &[]).await.status, 200);
    let s = scrape(admin).await;
    assert_eq!(
        s.value("ancm_backend_processes_started_total", &[ROOT]),
        2.0
    );

    // A recycle: web.config changes.
    std::fs::write(
        site.path().join("web.config"),
        site::python_echo_config("", &[("TEST_GENERATION", "2")]),
    )
    .unwrap();
    let s = scrape_until(admin, "the recycle", |s| {
        s.value("ancm_backend_recycles_total", &[ROOT]) == 1.0
            && s.value("ancm_backend_exits_total", &[ROOT, ("cause", "recycle")]) == 1.0
    })
    .await;
    assert_eq!(
        s.value("ancm_backend_processes_started_total", &[ROOT]),
        3.0
    );
    assert_eq!(
        s.value("ancm_backend_exits_total", &[ROOT, ("cause", "crash")]),
        1.0
    );
    let r = get(gw.addr, "/after", &[]).await;
    assert_eq!(r.json()["env"]["TEST_GENERATION"], "2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_readiness_and_status() {
    let site = site::with_config(&site::python_echo_config("", &[]));
    let bad = site::with_config(
        r#"<configuration><system.webServer>
  <aspNetCore processPath="/nonexistent/backend" startupTimeLimit="2" />
</system.webServer></configuration>"#,
    );
    let admin = admin_addr();
    let bad_app = format!("/bad={}", bad.path().display());
    let mut gw = Gateway::start(
        ANCM,
        site.path(),
        &["--admin-listen", &admin.to_string(), "--app", &bad_app],
    );

    assert_eq!(get(admin, "/healthz", &[]).await.status, 200);
    // Not started yet is ready: the first request starts them.
    let r = get(admin, "/readyz", &[]).await;
    assert_eq!((r.status.as_u16(), r.text().as_str()), (200, "ready\n"));

    let pid = get(gw.addr, "/x", &[]).await.json()["pid"]
        .as_u64()
        .unwrap();
    assert_eq!(get(gw.addr, "/bad/", &[]).await.status, 502);
    let r = get(admin, "/readyz", &[]).await;
    assert_eq!(r.status, 503);
    let text = r.text();
    assert!(
        text.starts_with("/bad: failed: the last start of slot 0 failed"),
        "{text}"
    );
    assert!(
        !text.contains("\n/:"),
        "the root application is ready: {text}"
    );
    assert_eq!(get(admin, "/healthz", &[]).await.status, 200);

    let r = get(admin, "/status", &[]).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.headers["content-type"], "application/json");
    let status = r.json();
    assert_eq!(status["ready"], false);
    assert_eq!(status["version"], env!("CARGO_PKG_VERSION"));
    let apps = status["applications"].as_array().unwrap();
    assert_eq!(apps.len(), 2);
    let bad_status = &apps[0];
    assert_eq!(bad_status["path"], "/bad");
    assert_eq!(bad_status["state"], "failed");
    assert!(bad_status["slots"][0]["failure"].is_string());
    let root = &apps[1];
    assert_eq!(root["path"], "/");
    assert_eq!(
        root["site"],
        std::fs::canonicalize(site.path())
            .unwrap()
            .display()
            .to_string()
    );
    assert_eq!(root["state"], "ready");
    assert_eq!(root["requests"], 1);
    assert_eq!(root["processes_started"], 1);
    assert_eq!(root["web_config_sha256"].as_str().unwrap().len(), 64);
    let slot = &root["slots"][0];
    assert_eq!(slot["pid"], pid);
    assert_eq!(slot["state"], "ready");
    assert_eq!(slot["restarts"], 0);
    assert_eq!(slot["requests"], 1);
    assert!(slot["port"].as_u64().unwrap() > 0);
    assert!(slot["uptime_seconds"].as_f64().unwrap() >= 0.0);
    assert_eq!(slot["last_exit"], serde_json::Value::Null);

    // A crash shows as the slot's last exit.
    assert_eq!(get(gw.addr, "/crash", &[]).await.status, 502);
    assert!(
        eventually(WAIT, || {
            std::process::Command::new(ANCM)
                .args(["status", "--json", "--admin", &admin.to_string()])
                .output()
                .is_ok_and(|o| {
                    serde_json::from_slice::<serde_json::Value>(&o.stdout).is_ok_and(|s| {
                        s["applications"][1]["slots"][0]["last_exit"]["cause"] == "crash"
                    })
                })
        })
        .await,
        "ancm status --json shows the crash"
    );

    // `ancm status` for a person.
    let out = Command::new(ANCM)
        .args(["status", "--admin", &admin.to_string()])
        .output()
        .unwrap();
    assert!(out.status.success());
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(table.contains("NOT READY"), "{table}");
    assert!(table.contains("/bad  FAILED  "), "{table}");
    assert!(
        table.contains("why: the last start of slot 0 failed"),
        "{table}"
    );
    assert!(table.contains("exits: crash 1"), "{table}");
    assert!(table.contains("crash (exit code 3) at 20"), "{table}");

    assert!(gw.terminate().success());
    // The gateway is gone: `ancm status` says so and exits 1.
    let out = Command::new(ANCM)
        .args(["status", "--admin", &admin.to_string()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("cannot get the status from"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_listener_stays_on_loopback_unless_allowed() {
    let site = site::with_config(&site::python_echo_config("", &[]));
    let port = free_port();
    let out = Command::new(ANCM)
        .arg("run")
        .arg(site.path())
        .args([
            "--listen",
            &format!("127.0.0.1:{}", free_port()),
            "--admin-listen",
            &format!("0.0.0.0:{port}"),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("--admin-listen 0.0.0.0:"), "{err}");
    assert!(err.contains("--admin-allow-remote"), "{err}");

    let gw = Gateway::start(
        ANCM,
        site.path(),
        &[
            "--admin-listen",
            &format!("0.0.0.0:{port}"),
            "--admin-allow-remote",
        ],
    );
    let admin = SocketAddr::from(([127, 0, 0, 1], port));
    assert!(
        eventually(WAIT, || std::net::TcpStream::connect(admin).is_ok()).await,
        "the admin listener answers"
    );
    assert_eq!(get(admin, "/healthz", &[]).await.status, 200);
    // Not the gateway's own listener: its requests are not the admin's.
    assert_eq!(
        get(gw.addr, "/healthz", &[]).await.json()["path"],
        "/healthz"
    );
    let r = client::send(admin, "POST", "/metrics", &[("Content-Length", "0")]).await;
    assert_eq!(r.status, 405);
    assert_eq!(get(admin, "/nope", &[]).await.status, 404);
}

/// TLS handshakes are counted by kind and failures by reason (issue 19's metrics):
/// `openssl s_client -tls1_2 -reconnect` makes one full handshake and five resumed ones (by
/// session ID or ticket); a plain
/// HTTP request on the HTTPS port is a failed handshake (`peer_misbehaved`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_handshakes_are_counted_by_kind_and_failures_by_reason() {
    let site = site::empty();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let cert_path = site.path().join("cert.pem");
    let key_path = site.path().join("key.pem");
    std::fs::write(&cert_path, cert.pem()).unwrap();
    std::fs::write(&key_path, key.serialize_pem()).unwrap();
    let https = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let admin = admin_addr();
    let gw = Gateway::start(
        ANCM,
        site.path(),
        &[
            "--https-listen",
            &https.to_string(),
            "--tls-cert",
            cert_path.to_str().unwrap(),
            "--tls-key",
            key_path.to_str().unwrap(),
            "--admin-listen",
            &admin.to_string(),
        ],
    );
    assert!(
        eventually(WAIT, || std::net::TcpStream::connect(https).is_ok()).await,
        "the HTTPS listener answers"
    );
    // The probe connections above closed before a ClientHello: failures of kind `io`.
    let before = scrape(admin).await;
    assert_eq!(before.types["ancm_tls_handshakes"], "counter");
    assert_eq!(
        before.value("ancm_tls_handshakes_total", &[("kind", "full")]),
        0.0
    );
    assert_eq!(
        before.value("ancm_tls_handshakes_total", &[("kind", "resumed")]),
        0.0
    );
    let misbehaved = [("reason", "peer_misbehaved")];
    assert_eq!(
        before.value("ancm_tls_handshake_failures_total", &misbehaved),
        0.0
    );

    let openssl = tokio::task::spawn_blocking(move || {
        Command::new("openssl")
            .args([
                "s_client",
                "-connect",
                &https.to_string(),
                "-reconnect",
                "-tls1_2",
            ])
            .stdin(Stdio::null())
            .output()
            .expect("openssl (.ci/run installs it)")
    });
    let out = tokio::time::timeout(WAIT, openssl)
        .await
        .expect("openssl s_client ends")
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.matches("Reused, TLSv1.2").count(), 5, "{text}");

    let (bytes, _) =
        client::raw_exchange(https, b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n").await;
    assert!(
        !bytes.starts_with(b"HTTP/1.1 200"),
        "plain HTTP is not served on HTTPS"
    );

    let s = scrape_until(admin, "six handshakes and one failure", |s| {
        s.value("ancm_tls_handshakes_total", &[("kind", "full")]) == 1.0
            && s.value("ancm_tls_handshakes_total", &[("kind", "resumed")]) == 5.0
            && s.value("ancm_tls_handshake_failures_total", &misbehaved) == 1.0
    })
    .await;
    assert_eq!(
        s.value(
            "ancm_tls_handshake_failures_total",
            &[("reason", "timeout")]
        ),
        0.0
    );
    drop(gw);
}
