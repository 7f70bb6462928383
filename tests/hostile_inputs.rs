//! Hostile clients and inputs against the real `ancm` binary (issue 9): forged forwarded
//! headers, Host tricks, `CONNECT`, module headers leaking out of a backend's response, and
//! secrets in `ancm check`. Real sockets, real child processes, raw HTTP where a typed client
//! would not send what an attacker does.
#![allow(clippy::unwrap_used)]

use std::process::Command;

use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use test_support::backends::header_values;
use test_support::client::{self, RawResponse, get};
use test_support::process::{Gateway, example};
use test_support::site;

/// The gateway binary under test.
const ANCM: &str = env!("CARGO_BIN_EXE_ancm");

/// A site whose backend is the Rust `iis_echo` example (it reports what `iis-integration`
/// learned).
fn rust_site() -> tempfile::TempDir {
    site::with_config(&format!(
        r#"<configuration><system.webServer><aspNetCore processPath="{}" startupTimeLimit="20" /></system.webServer></configuration>"#,
        example("ancm", "iis_echo").display()
    ))
}

/// `GET /` with `Host` and one raw header line per `(name, value)`; the answer and the local
/// address it was sent from.
async fn get_raw(
    addr: std::net::SocketAddr,
    headers: &[(&str, &[u8])],
) -> (std::net::SocketAddr, RawResponse) {
    let mut raw = format!("GET / HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n").into_bytes();
    for (name, value) in headers {
        raw.extend_from_slice(name.as_bytes());
        raw.extend_from_slice(b": ");
        raw.extend_from_slice(value);
        raw.extend_from_slice(b"\r\n");
    }
    raw.extend_from_slice(b"\r\n");
    client::send_raw_from(addr, &raw).await
}

fn header<'a>(res: &'a RawResponse, name: &str) -> Vec<&'a str> {
    res.headers
        .iter()
        .filter(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
        .collect()
}

// ------------------------------------------------------------ issue 9 part 1: forwarded headers

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_quote_never_makes_the_app_see_the_gateway_as_the_client() {
    let site = rust_site();
    let gw = Gateway::start(ANCM, site.path(), &[]);
    for xff in [
        &b"\""[..],
        b"6.6.6.6\"",
        b"\"6.6.6.6\", \"",
        b"\xff\"",
        b"198.51.100.1, \"",
    ] {
        let (local, res) = get_raw(
            gw.addr,
            &[("X-Forwarded-For", xff), ("X-Forwarded-Proto", b"\"")],
        )
        .await;
        assert_eq!(res.status, 200, "{xff:?}: {:?}", res.headers);
        let j = res.json();
        // The app sees this connection's endpoint, not the gateway's own 127.0.0.1:<port>.
        assert_eq!(j["client_ip"], "127.0.0.1", "{xff:?}");
        assert_eq!(j["client_port"], local.port(), "{xff:?}");
        assert_eq!(j["scheme"], "http");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_backend_gets_only_valid_forwarded_items() {
    let site = site::with_config(&site::rust_echo_config("", &[]));
    let gw = Gateway::start(ANCM, site.path(), &[]);
    let (local, res) = get_raw(
        gw.addr,
        &[
            ("X-Forwarded-For", b"\"6.6.6.6\", \", 198.51.100.1, unknown"),
            ("X-Forwarded-For", b"\xff\", [2001:db8::1]:80"),
            ("X-Forwarded-Proto", b"https\", \"http, wss, HTTPS"),
        ],
    )
    .await;
    assert_eq!(res.status, 200);
    let j = res.json();
    assert_eq!(
        header_values(&j, "x-forwarded-for"),
        [format!("198.51.100.1, unknown, [2001:db8::1]:80, {local}")]
    );
    assert_eq!(header_values(&j, "x-forwarded-proto"), ["HTTPS, http"]);
}

// ------------------------------------------------------------------ issue 9 part 3: Host handling

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_missing_repeated_or_conflicting_is_400_and_connect_is_405() {
    let site = site::with_config(&site::rust_echo_config("", &[]));
    let gw = Gateway::start(ANCM, site.path(), &[]);
    // The backend is up and answers normally.
    assert_eq!(get(gw.addr, "/", &[]).await.status, 200);
    for (raw, status) in [
        (&b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n"[..], 400),
        (
            b"GET / HTTP/1.1\r\nHost: a.test\r\nHost: b.test\r\nConnection: close\r\n\r\n",
            400,
        ),
        (
            b"GET / HTTP/1.1\r\nHost: a.test, b.test\r\nConnection: close\r\n\r\n",
            400,
        ),
        (
            b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\nConnection: close\r\n\r\n",
            405,
        ),
    ] {
        let res = client::send_raw(gw.addr, raw).await;
        let request = String::from_utf8_lossy(raw);
        assert_eq!(res.status, status, "{request}");
        assert_eq!(header(&res, "content-type"), ["text/html; charset=utf-8"], "{request}");
        let page = String::from_utf8_lossy(&res.body);
        assert!(page.contains(&format!("HTTP Error {status}.0")), "{page}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http10_without_host_never_shows_the_backend_address() {
    let site = site::with_config(&site::rust_echo_config("", &[]));
    let gw = Gateway::start(ANCM, site.path(), &[]);
    let res = client::send_raw(gw.addr, b"GET /old HTTP/1.0\r\n\r\n").await;
    assert_eq!(res.status, 200);
    // The address the client connected to, as http.sys names such a request; never the
    // backend's own `127.0.0.1:<ASPNETCORE_PORT>`.
    assert_eq!(header_values(&res.json(), "host"), [gw.addr.to_string()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_host_must_match_authority() {
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
    let mut statuses = Vec::new();
    for host in [
        None,
        Some(gw.addr.to_string()),
        Some("evil.test".to_owned()),
    ] {
        let mut req = Request::get(format!("http://{}/h2", gw.addr));
        if let Some(host) = host {
            req = req.header("host", host);
        }
        let resp = sender
            .send_request(req.body(Full::new(Bytes::new())).unwrap())
            .await
            .unwrap();
        statuses.push(resp.status().as_u16());
    }
    assert_eq!(statuses, [200, 200, 400]);
}

// ------------------------------------------------------------------------- issue 9 part 4: leaks

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn module_headers_in_a_backend_response_never_reach_the_client() {
    let site = site::with_config(&site::test_backend_config("leaky", "", &[]));
    let gw = Gateway::start(ANCM, site.path(), &[]);
    let res = client::send(gw.addr, "GET", "/", &[]).await;
    assert_eq!(res.status, 200);
    assert_eq!(res.body, b"leaky");
    let names: Vec<&str> = res.headers.iter().map(|(n, _)| n.as_str()).collect();
    assert!(names.contains(&"x-kept"), "{names:?}");
    assert!(
        !names.iter().any(|n| n.starts_with("ms-aspnetcore")),
        "{:?}",
        res.headers
    );
}

fn check(site: &std::path::Path, args: &[&str]) -> (String, String) {
    let out = Command::new(ANCM)
        .arg("check")
        .arg(site)
        .args(args)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn check_prints_environment_names_not_values_unless_asked() {
    let site = site::with_config(
        r#"<configuration><system.webServer><aspNetCore processPath="dotnet" arguments="app.dll">
  <environmentVariables>
    <environmentVariable name="ASPNETCORE_TOKEN" value="fixed-pairing-secret" />
    <environmentVariable name="DB_PASSWORD" value="hunter2" />
  </environmentVariables>
  <handlerSettings><handlerSetting name="debugLevel" value="FILE,TRACE" /></handlerSettings>
</aspNetCore></system.webServer></configuration>"#,
    );
    for args in [&[][..], &["--json"]] {
        let (out, err) = check(site.path(), args);
        for secret in ["fixed-pairing-secret", "hunter2"] {
            assert!(
                !out.contains(secret) && !err.contains(secret),
                "{args:?}: {out}"
            );
        }
        assert!(
            out.contains("ASPNETCORE_TOKEN") && out.contains("DB_PASSWORD"),
            "{out}"
        );
        // handlerSettings are no secrets: shown.
        assert!(out.contains("FILE,TRACE"), "{out}");
    }
    let (hidden, _) = check(site.path(), &["--json"]);
    let hidden: serde_json::Value = serde_json::from_str(&hidden).unwrap();
    assert_eq!(
        hidden["environmentVariables"],
        serde_json::json!([["ASPNETCORE_TOKEN", "***"], ["DB_PASSWORD", "***"]])
    );
    let (shown, _) = check(site.path(), &["--json", "--show-values"]);
    let shown: serde_json::Value = serde_json::from_str(&shown).unwrap();
    assert_eq!(
        shown["environmentVariables"],
        serde_json::json!([
            ["ASPNETCORE_TOKEN", "fixed-pairing-secret"],
            ["DB_PASSWORD", "hunter2"]
        ])
    );
    // The same keys in the same order either way.
    let keys = |v: &serde_json::Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(&hidden), keys(&shown));
    let (text, _) = check(site.path(), &["--show-values"]);
    assert!(text.contains("DB_PASSWORD=hunter2"), "{text}");
    let (help, _) = {
        let out = Command::new(ANCM)
            .args(["check", "--help"])
            .output()
            .unwrap();
        (String::from_utf8(out.stdout).unwrap(), ())
    };
    assert!(help.contains("--show-values"), "{help}");
}
