//! End-to-end tests of the real `ancm` binary with the Rust echo backend (ancm-hosting's
//! `test_backend` example) and the `iis_echo` example: real sockets, real child processes,
//! real clients. What needs a signal to the gateway runs on Unix only.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt as _, Full};
use test_support::backends::header_values;
use test_support::client::{Response, get};
#[cfg(not(windows))]
use test_support::process::workspace_binary;
use test_support::process::{Gateway, example, is_running};
#[cfg(unix)]
use test_support::process::{free_port, terminate, wait_listening};
use test_support::site;

/// The gateway binary under test.
const ANCM: &str = env!("CARGO_BIN_EXE_ancm");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backend_sees_token_forwarded_headers_env_and_host() {
    let site = site::with_config(&site::rust_echo_config(
        "",
        &[("TEST_MARK", "from-web-config")],
    ));
    let gw = Gateway::start(ANCM, site.path(), &[]);
    let r = get(
        gw.addr,
        "/some/path?q=1",
        &[("X-Forwarded-For", "198.51.100.9")],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let j = r.json();
    assert_eq!(j["path"], "/some/path?q=1");
    let env = &j["env"];
    let token = env["ASPNETCORE_TOKEN"].as_str().unwrap();
    assert_eq!(token.len(), 36);
    assert_eq!(header_values(&j, "ms-aspnetcore-token"), [token]);
    let port: u16 = env["ASPNETCORE_PORT"].as_str().unwrap().parse().unwrap();
    assert!((10000..=48000).contains(&port), "{port}");
    assert_eq!(env["ASPNETCORE_APPL_PATH"], "/");
    assert_eq!(env["ASPNETCORE_IIS_WEBSOCKETS_SUPPORTED"], "true");
    assert_eq!(env["TEST_MARK"], "from-web-config");
    // The client's value is kept and ours appended (ANCM), as one line.
    let xff = header_values(&j, "x-forwarded-for");
    assert_eq!(xff.len(), 1);
    assert!(xff[0].starts_with("198.51.100.9, 127.0.0.1:"), "{xff:?}");
    assert_eq!(header_values(&j, "x-forwarded-proto"), ["http"]);
    assert_eq!(header_values(&j, "host"), [gw.addr.to_string()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_sent_module_headers_and_connection_tricks_never_reach_the_backend() {
    let site = site::with_config(&site::rust_echo_config("", &[]));
    let gw = Gateway::start(ANCM, site.path(), &[]);
    let r = get(
        gw.addr,
        "/",
        &[
            ("MS-ASPNETCORE-TOKEN", "forged"),
            ("MS-ASPNETCORE-EVENT", "shutdown"),
            ("MS-ASPNETCORE-CLIENTCERT", "MAMCAQU="),
            ("MS-ASPNETCORE-WINAUTHTOKEN", "2a4"),
            ("ms-aspnetcorefoo", "x"),
            ("Connection", "x-forwarded-for, ms-aspnetcore-token, x-hop"),
            ("X-Hop", "1"),
            ("Keep-Alive", "timeout=5"),
            ("Proxy-Connection", "keep-alive"),
            ("TE", "gzip"),
            ("Trailer", "x-checksum"),
            ("Upgrade", "h2c"),
        ],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let j = r.json();
    let token = j["env"]["ASPNETCORE_TOKEN"].as_str().unwrap();
    assert_eq!(header_values(&j, "ms-aspnetcore-token"), [token]);
    for gone in [
        "ms-aspnetcore-event",
        "ms-aspnetcore-clientcert",
        "ms-aspnetcore-winauthtoken",
        "ms-aspnetcorefoo",
        "x-hop",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "upgrade",
    ] {
        assert!(
            header_values(&j, gone).is_empty(),
            "{gone} reached the backend: {j}"
        );
    }
    // Naming an injected header in Connection does not remove it.
    assert_eq!(header_values(&j, "x-forwarded-for").len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_offline_serves_503_then_recovers_with_a_fresh_child() {
    let site = site::with_config(&site::rust_echo_config("", &[]));
    let gw = Gateway::start(ANCM, site.path(), &[]);
    let first = get(gw.addr, "/", &[]).await;
    assert_eq!(first.status, 200);
    let pid = first.json()["pid"].as_u64().unwrap() as u32;

    let offline = site.path().join("app_offline.htm");
    std::fs::write(&offline, "<p>back soon</p>").unwrap();
    let r = poll_until(gw.addr, |r| r.status == 503).await;
    assert_eq!(r.headers["content-type"], "text/html");
    assert_eq!(r.text(), "<p>back soon</p>");
    // The child was stopped gracefully.
    let deadline = Instant::now() + Duration::from_secs(10);
    while is_running(pid) {
        assert!(
            Instant::now() < deadline,
            "child {pid} still running while offline"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    std::fs::remove_file(&offline).unwrap();
    let r = poll_until(gw.addr, |r| r.status == 200).await;
    assert_ne!(r.json()["pid"].as_u64().unwrap() as u32, pid);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_backend_is_restarted_by_the_next_request() {
    let site = site::with_config(&site::rust_echo_config("", &[]));
    let gw = Gateway::start(ANCM, site.path(), &[]);
    let pid = get(gw.addr, "/", &[]).await.json()["pid"].as_u64().unwrap();
    let crash = get(gw.addr, "/crash", &[]).await;
    assert_eq!(
        crash.status, 502,
        "a backend that dies mid-request is a 502.3"
    );
    let r = poll_until(gw.addr, |r| r.status == 200).await;
    assert_ne!(r.json()["pid"].as_u64().unwrap(), pid);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn startup_failure_shows_the_502_5_page_or_a_bare_502() {
    let config = |extra: &str| {
        format!(
            r#"<configuration><system.webServer><aspNetCore processPath="./does-not-exist" startupTimeLimit="2" {extra} /></system.webServer></configuration>"#
        )
    };
    let s = site::with_config(&config(""));
    let gw = Gateway::start(ANCM, s.path(), &[]);
    let r = get(gw.addr, "/", &[]).await;
    assert_eq!(r.status, 502);
    assert_eq!(r.headers["content-type"], "text/html; charset=utf-8");
    assert!(
        r.text()
            .contains("HTTP Error 502.5 - ANCM Out-Of-Process Startup Failure"),
        "{}",
        r.text()
    );

    let s = site::with_config(&config(r#"disableStartUpErrorPage="true""#));
    let gw = Gateway::start(ANCM, s.path(), &[]);
    let r = get(gw.addr, "/", &[]).await;
    assert_eq!(r.status, 502);
    assert!(r.body.is_empty(), "{}", r.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_prior_knowledge_client_is_served() {
    let site = site::with_config(&site::rust_echo_config("", &[]));
    let gw = Gateway::start(ANCM, site.path(), &[]);
    let stream = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(stream),
    )
    .await
    .unwrap();
    tokio::spawn(conn);
    let req = Request::get(format!("http://{}/h2?x=1", gw.addr))
        .body(Full::new(Bytes::new()))
        .unwrap();
    let resp = sender.send_request(req).await.unwrap();
    assert_eq!(resp.version(), http::Version::HTTP_2);
    assert_eq!(resp.status(), 200);
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    let j: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(j["path"], "/h2?x=1");
    // The backend speaks HTTP/1.1 and gets a Host derived from :authority.
    assert_eq!(header_values(&j, "host"), [gw.addr.to_string()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_round_trip_through_the_gateway() {
    use futures_util::{SinkExt as _, StreamExt as _};
    use tokio_tungstenite::tungstenite::Message;
    let site = site::with_config(&site::rust_echo_config("", &[]));
    let gw = Gateway::start(ANCM, site.path(), &[]);
    let (mut ws, resp) = tokio_tungstenite::connect_async(format!("ws://{}/ws", gw.addr))
        .await
        .unwrap();
    assert_eq!(resp.status(), 101);
    for text in ["hello", "world"] {
        ws.send(Message::text(text)).await.unwrap();
        let echoed = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(echoed, Message::text(text));
    }
    ws.send(Message::binary(vec![0u8, 1, 2, 255]))
        .await
        .unwrap();
    let echoed = tokio::time::timeout(Duration::from_secs(10), ws.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(echoed, Message::binary(vec![0u8, 1, 2, 255]));
    ws.close(None).await.unwrap();
}

/// SIGTERM with a request in flight on a `threads`-thread gateway.
#[cfg(unix)]
async fn sigterm_drains(threads: &str) {
    let site = site::with_config(&site::rust_echo_config("", &[]));
    let mut gw = Gateway::start(ANCM, site.path(), &["--threads", threads]);
    let pid = get(gw.addr, "/", &[]).await.json()["pid"].as_u64().unwrap() as u32;
    let addr = gw.addr;
    let slow = tokio::spawn(async move { get(addr, "/slow?ms=1500", &[]).await });
    tokio::time::sleep(Duration::from_millis(400)).await;
    let status = tokio::task::spawn_blocking(move || gw.terminate())
        .await
        .unwrap();
    let slow = slow.await.unwrap();
    assert_eq!(
        slow.status,
        200,
        "the in-flight request completes: {}",
        slow.text()
    );
    assert_eq!(status.code(), Some(0), "{status:?}");
    assert!(!is_running(pid), "backend {pid} left running");
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_in_flight_requests_exits_zero_and_leaves_no_child() {
    sigterm_drains("1").await;
    sigterm_drains("2").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_example_backend_restores_client_endpoint_scheme_and_path_base() {
    let config = format!(
        r#"<configuration><system.webServer><aspNetCore processPath="{}" startupTimeLimit="20" /></system.webServer></configuration>"#,
        example("ancm", "iis_echo").display()
    );
    let site = site::with_config(&config);
    let gw = Gateway::start(ANCM, site.path(), &["--app-path", "/App"]);
    let stream = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    let local = stream.local_addr().unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    let req = Request::get("/app/items?x=1")
        .header("host", "example.test")
        .header("MS-ASPNETCORE-TOKEN", "forged")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let resp = sender.send_request(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    let j: serde_json::Value =
        serde_json::from_slice(&resp.into_body().collect().await.unwrap().to_bytes()).unwrap();
    assert_eq!(j["client_ip"], "127.0.0.1");
    assert_eq!(j["client_port"], local.port());
    assert_eq!(j["scheme"], "http");
    assert_eq!(j["path_base"], "/app");
    assert_eq!(j["path"], "/items");
    assert_eq!(j["query"], "x=1");
    assert!(j["headers"].get("ms-aspnetcore-clientcert").is_none());
    // Outside the application path: 404 from the gateway, the backend is not involved.
    assert_eq!(get(gw.addr, "/other", &[]).await.status, 404);
}

#[test]
fn check_reports_valid_config_as_json_and_errors_with_location() {
    let ok = site::with_config(
        r#"<configuration><system.webServer><aspNetCore processPath="dotnet" arguments=".\app.dll" stdoutLogEnabled="TRUE" requestTimeout="00:05:00"><environmentVariables><environmentVariable name="A" value="1"/><environmentVariable name="a" value="2"/></environmentVariables></aspNetCore></system.webServer></configuration>"#,
    );
    let out = std::process::Command::new(ANCM)
        .args(["check", "--json"])
        .arg(ok.path())
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(j["processPath"], "dotnet");
    assert_eq!(j["arguments"], ".\\app.dll");
    assert_eq!(j["stdoutLogEnabled"], true);
    assert_eq!(j["requestTimeout"], "00:05:00");
    assert_eq!(j["requestTimeoutMs"], 300_000);
    assert_eq!(j["startupTimeLimit"], 120);
    // Names only by default (`--show-values` prints the values): they may be secrets.
    assert_eq!(j["environmentVariables"], serde_json::json!([["a", "***"]]));

    let bad = site::with_config(
        "<configuration>\n  <system.webServer>\n    <aspNetCore processPath=\"x\" startupTimeLimit=\"3601\" />\n  </system.webServer>\n</configuration>\n",
    );
    let out = std::process::Command::new(ANCM)
        .arg("check")
        .arg(bad.path().join("web.config"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    let expected = format!("{}:3:", bad.path().join("web.config").display());
    assert!(err.starts_with(&expected), "{err}");
    assert!(err.contains("startupTimeLimit"), "{err}");
}

/// GET / until `done` holds (bounded).
async fn poll_until(addr: std::net::SocketAddr, done: impl Fn(&Response) -> bool) -> Response {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = get(addr, "/", &[]).await;
        if done(&r) {
            return r;
        }
        assert!(
            Instant::now() < deadline,
            "gave up waiting; last: {} {}",
            r.status,
            r.text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

// cargo builds the demo (another package's binary) during the test: the Windows test run
// (built with -Zbuild-std, run under Wine) has no cargo to run from inside a test.
#[cfg(not(windows))]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bundled_example_site_shows_what_the_backend_learned() {
    // examples/site/web.config points at the release build; run the same config against the
    // build of the same binary (another package of the workspace) in this test's profile.
    let demo = workspace_binary("ancm-site-demo", "ancm-site-demo");
    let config = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/site/web.config"
    ))
    .unwrap()
    .replace(
        r"..\..\target\release\ancm-site-demo",
        demo.to_str().unwrap(),
    );
    let site = site::with_config(&config);
    let gw = Gateway::start(ANCM, site.path(), &[]);
    let stream = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    let local = stream.local_addr().unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    let req = Request::get("/")
        .header("host", "localhost")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let resp = sender.send_request(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    let html = String::from_utf8(
        resp.into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec(),
    )
    .unwrap();
    assert!(
        html.contains("<th align=\"left\">Client IP</th><td>127.0.0.1</td>"),
        "{html}"
    );
    assert!(
        html.contains(&format!(
            "<th align=\"left\">Client port</th><td>{}</td>",
            local.port()
        )),
        "{html}"
    );
    assert!(
        html.contains("<th align=\"left\">Pairing token</th><td>verified</td>"),
        "{html}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_applications_under_one_listener_longest_path_wins() {
    let root = site::with_config(&site::rust_echo_config("", &[("TEST_APP", "root")]));
    let shop = site::with_config(&site::rust_echo_config("", &[("TEST_APP", "shop")]));
    let api = site::with_config(&site::rust_echo_config("", &[("TEST_APP", "shop-api")]));
    let shop_arg = format!("/shop={}", shop.path().display());
    let api_arg = format!("/shop/api={}", api.path().display());
    let gw = Gateway::start(ANCM, root.path(), &["--app", &shop_arg, "--app", &api_arg]);
    for (path, app, appl_path) in [
        ("/", "root", "/"),
        ("/shopping", "root", "/"),
        ("/Shop/cart", "shop", "/shop"),
        ("/shop/apiary", "shop", "/shop"),
        ("/shop/API/v1", "shop-api", "/shop/api"),
        ("/shop/api", "shop-api", "/shop/api"),
    ] {
        let j = get(gw.addr, path, &[]).await.json();
        assert_eq!(j["env"]["TEST_APP"], app, "{path}");
        assert_eq!(j["env"]["ASPNETCORE_APPL_PATH"], appl_path, "{path}");
        // ANCM forwards the full path; the backend strips its own base.
        assert_eq!(j["path"], path);
    }
}

// Stops the gateway with SIGTERM, so that it logs its stop.
#[cfg(unix)]
#[test]
fn logs_to_stderr_and_to_the_module_debug_file() {
    let config = site::rust_echo_config("", &[]).replace(
        "</environmentVariables>",
        "</environmentVariables>\n        <handlerSettings>\n          <handlerSetting name=\"debugLevel\" value=\"FILE,TRACE\" />\n          <handlerSetting name=\"debugFile\" value=\".\\logs\\debug.log\" />\n        </handlerSettings>",
    );
    let site = site::with_config(&config);
    let addr: std::net::SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let child = std::process::Command::new(ANCM)
        .arg("run")
        .arg(site.path())
        .arg("--listen")
        .arg(addr.to_string())
        .env("RUST_LOG", "info")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_listening(addr);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    assert_eq!(runtime.block_on(get(addr, "/", &[])).status, 200);
    terminate(child.id());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("listening") && stderr.contains("stopped"),
        "{stderr}"
    );
    let debug = std::fs::read_to_string(site.path().join("logs/debug.log")).unwrap();
    assert!(debug.contains("ancm_hosting"), "{debug}");
}
