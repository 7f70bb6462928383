//! The `iis_echo` example as ANCM runs it: a child process with the ANCM environment,
//! probed over TCP, stopped by the shutdown event while a request is in flight.
#![allow(missing_docs, clippy::unwrap_used)]

use std::net::SocketAddr;
use std::process::Stdio;

use serde_json::Value;
use test_support::LIMIT;
use test_support::client::{RawResponse, send};
use test_support::process::{example, exit_code, free_port, wait_for_line};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};

const TOKEN: &str = "0f8fad5b-d9cb-469f-a165-70867728950e";

/// The example as ANCM starts it: with `env` and none of the other ANCM variables, stderr
/// piped.
fn spawn(env: &[(&str, &str)]) -> Child {
    let mut cmd = Command::new(example("ancm", "iis_echo"));
    for name in [
        "ASPNETCORE_PORT",
        "ASPNETCORE_APPL_PATH",
        "ASPNETCORE_TOKEN",
        "ASPNETCORE_IIS_HTTPAUTH",
        "ASPNETCORE_IIS_WEBSOCKETS_SUPPORTED",
    ] {
        cmd.env_remove(name);
    }
    cmd.envs(env.iter().copied())
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cmd.spawn().unwrap()
}

#[tokio::test]
async fn behind_ancm_it_echoes_and_exits_0_after_the_shutdown_event_finishing_in_flight_requests() {
    let port = free_port();
    let port_text = port.to_string();
    let mut child = spawn(&[
        ("ASPNETCORE_PORT", &port_text),
        ("ASPNETCORE_APPL_PATH", "/app"),
        ("ASPNETCORE_TOKEN", TOKEN),
        ("ASPNETCORE_IIS_HTTPAUTH", "windows;anonymous;"),
    ]);
    let log = wait_for_line(&mut child, "listening").await;
    assert!(
        log.iter().any(|l| l.contains(&format!("127.0.0.1:{port}"))),
        "{log:?}"
    );
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let auth = ("MS-ASPNETCORE-TOKEN", TOKEN);

    // What the app sees, after the whole layer.
    let res = send(
        addr,
        "GET",
        "/APP/items/7?x=1&y",
        &[
            auth,
            ("X-Forwarded-For", "198.51.100.1, 203.0.113.7:51000"),
            ("X-Forwarded-Proto", "https"),
            ("MS-ASPNETCORE-CLIENTCERT", "MAMCAQU="),
            ("MS-ASPNETCORE-WINAUTHTOKEN", "2A4"),
            ("X-Multi", "a"),
            ("x-multi", "b"),
        ],
    )
    .await;
    assert_eq!(res.status, 200);
    let seen = res.json();
    let keys: Vec<&str> = seen
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let mut keys_sorted = keys.clone();
    keys_sorted.sort_unstable();
    assert_eq!(
        keys_sorted,
        [
            "client_cert_der_base64",
            "client_ip",
            "client_port",
            "headers",
            "method",
            "path",
            "path_base",
            "query",
            "scheme",
            "websocket_upgrade_available",
            "windows_token",
            "windows_user",
        ]
    );
    assert_eq!(seen["method"], "GET");
    assert_eq!(seen["path"], "/items/7");
    assert_eq!(seen["path_base"], "/APP");
    assert_eq!(seen["query"], "x=1&y");
    assert_eq!(seen["scheme"], "https");
    assert_eq!(seen["client_ip"], "203.0.113.7");
    assert_eq!(seen["client_port"], 51000);
    assert_eq!(seen["client_cert_der_base64"], "MAMCAQU=");
    // Off Windows the handle value is passed on as it came (lowercase); on Windows the layer
    // resolves it in this process, where 0x2a4 is no token: no user, so no token either.
    #[cfg(not(windows))]
    assert_eq!(seen["windows_token"], "2a4");
    #[cfg(windows)]
    assert_eq!(seen["windows_token"], Value::Null);
    assert_eq!(seen["windows_user"], Value::Null);
    assert_eq!(seen["websocket_upgrade_available"], false);
    let headers = &seen["headers"];
    assert_eq!(
        headers["x-forwarded-for"],
        serde_json::json!(["198.51.100.1"])
    );
    assert!(headers.get("x-forwarded-proto").is_none());
    assert_eq!(headers["x-original-proto"], serde_json::json!(["http"]));
    assert!(
        headers["x-original-for"][0]
            .as_str()
            .unwrap()
            .starts_with("127.0.0.1:")
    );
    assert_eq!(headers["x-multi"], serde_json::json!(["a", "b"]));
    assert!(headers.get("ms-aspnetcore-token").is_none());

    let seen = send(addr, "PUT", "/other", &[auth]).await.json();
    assert_eq!(seen["path"], "/other");
    assert_eq!(seen["path_base"], "");
    assert_eq!(seen["query"], "");
    assert_eq!(seen["scheme"], "http");
    assert_eq!(seen["client_ip"], "127.0.0.1");
    assert_eq!(seen["client_cert_der_base64"], Value::Null);
    assert_eq!(seen["windows_token"], Value::Null);

    let seen = send(
        addr,
        "GET",
        "/app/ws",
        &[auth, ("Connection", "Upgrade"), ("Upgrade", "websocket")],
    )
    .await
    .json();
    assert_eq!(seen["websocket_upgrade_available"], true);

    let res = send(addr, "GET", "/app/", &[]).await;
    assert_eq!(res.status, 400);
    assert!(res.body.is_empty());

    // A request in flight: hyper answers `100 Continue` once the app reads the body, so the
    // app is running when the event arrives.
    let mut in_flight = TcpStream::connect(addr).await.unwrap();
    in_flight
        .write_all(
            format!(
                "POST /app/slow HTTP/1.1\r\nHost: echo.test\r\nMS-ASPNETCORE-TOKEN: {TOKEN}\r\n\
                 Content-Length: 5\r\nExpect: 100-continue\r\n\r\n"
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    let mut interim = Vec::new();
    tokio::time::timeout(LIMIT, async {
        while !interim.ends_with(b"\r\n\r\n") {
            let mut byte = [0u8; 1];
            in_flight.read_exact(&mut byte).await.unwrap();
            interim.push(byte[0]);
        }
    })
    .await
    .expect("100 Continue");
    assert!(
        interim.starts_with(b"HTTP/1.1 100"),
        "{:?}",
        String::from_utf8_lossy(&interim)
    );

    let res = send(
        addr,
        "POST",
        "/app/iisintegration",
        &[auth, ("MS-ASPNETCORE-EVENT", "shutdown")],
    )
    .await;
    assert_eq!(res.status, 202);
    assert!(res.body.is_empty());

    // The in-flight request still completes.
    in_flight.write_all(b"hello").await.unwrap();
    let mut rest = Vec::new();
    tokio::time::timeout(LIMIT, in_flight.read_to_end(&mut rest))
        .await
        .expect("the in-flight request completes")
        .unwrap();
    let res = RawResponse::parse(&rest);
    assert_eq!(res.status, 200);
    let seen = res.json();
    assert_eq!(seen["method"], "POST");
    assert_eq!(seen["path"], "/slow");

    assert_eq!(exit_code(&mut child).await, 0);
}

#[tokio::test]
async fn websockets_flag_false_hides_the_upgrade() {
    let port = free_port();
    let port_text = port.to_string();
    let mut child = spawn(&[
        ("ASPNETCORE_PORT", &port_text),
        ("ASPNETCORE_APPL_PATH", "/"),
        ("ASPNETCORE_TOKEN", TOKEN),
        ("ASPNETCORE_IIS_WEBSOCKETS_SUPPORTED", "False"),
        ("ASPNETCORE_IIS_HTTPAUTH", "anonymous;"),
    ]);
    wait_for_line(&mut child, "listening").await;
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let auth = ("MS-ASPNETCORE-TOKEN", TOKEN);
    let seen = send(
        addr,
        "GET",
        "/ws",
        &[
            auth,
            ("Connection", "Upgrade"),
            ("Upgrade", "websocket"),
            ("MS-ASPNETCORE-WINAUTHTOKEN", "2a4"),
        ],
    )
    .await
    .json();
    assert_eq!(seen["websocket_upgrade_available"], false);
    // Anonymous-only IIS authentication: the Windows token is not read.
    assert_eq!(seen["windows_token"], Value::Null);
    let res = send(
        addr,
        "POST",
        "/iisintegration",
        &[auth, ("MS-ASPNETCORE-EVENT", "shutdown")],
    )
    .await;
    assert_eq!(res.status, 202);
    assert_eq!(exit_code(&mut child).await, 0);
}

#[tokio::test]
async fn malformed_environment_exits_non_zero_with_a_message() {
    for (name, env) in [
        (
            "ASPNETCORE_PORT",
            [
                ("ASPNETCORE_PORT", "http"),
                ("ASPNETCORE_APPL_PATH", "/"),
                ("ASPNETCORE_TOKEN", TOKEN),
            ],
        ),
        (
            "ASPNETCORE_PORT",
            [
                ("ASPNETCORE_PORT", "65536"),
                ("ASPNETCORE_APPL_PATH", "/"),
                ("ASPNETCORE_TOKEN", TOKEN),
            ],
        ),
        (
            "ASPNETCORE_APPL_PATH",
            [
                ("ASPNETCORE_PORT", "41000"),
                ("ASPNETCORE_APPL_PATH", "app"),
                ("ASPNETCORE_TOKEN", TOKEN),
            ],
        ),
        (
            "ASPNETCORE_TOKEN",
            [
                ("ASPNETCORE_PORT", "41000"),
                ("ASPNETCORE_APPL_PATH", "/"),
                ("ASPNETCORE_TOKEN", "a b"),
            ],
        ),
    ] {
        let mut child = spawn(&env);
        let mut stderr = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut stderr)
            .await
            .unwrap();
        assert_eq!(exit_code(&mut child).await, 2, "{stderr}");
        assert!(stderr.contains(name), "{stderr}");
        assert!(
            !stderr.contains("a b"),
            "the token is never printed: {stderr}"
        );
    }
}

#[tokio::test]
async fn without_the_token_it_is_not_behind_iis_and_uses_the_dev_address() {
    // Hold the development port (or find it held): the example must try it and fail, which
    // shows it ignored ASPNETCORE_PORT without the other two values.
    let _held = std::net::TcpListener::bind("127.0.0.1:5000");
    let port = free_port().to_string();
    let mut child = spawn(&[("ASPNETCORE_PORT", &port), ("ASPNETCORE_APPL_PATH", "/app")]);
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .await
        .unwrap();
    assert_eq!(exit_code(&mut child).await, 1, "{stderr}");
    assert!(
        stderr.contains("cannot listen on 127.0.0.1:5000"),
        "{stderr}"
    );
}
