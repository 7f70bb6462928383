//! The crate's examples as ANCM runs them: a child process with the ANCM environment, one
//! request through the whole layer, then the shutdown event, after which it exits 0.
#![allow(missing_docs, clippy::unwrap_used)]

use std::net::SocketAddr;
use std::process::Stdio;

use ancm_protocol::{env, headers, shutdown};
use test_support::client::send;
use test_support::process::{example, exit_code, free_port, wait_listening};
use tokio::process::Command;

const TOKEN: &str = "0f8fad5b-d9cb-469f-a165-70867728950e";

/// Start example `name` as ANCM would (port, token, application path `/app`), send one
/// request as the front would, then the shutdown event; its answer, and the exit code.
async fn run_behind_ancm(name: &str) -> (u16, String, i32) {
    let port = free_port();
    let mut command = Command::new(example("iis-integration", name));
    for variable in [
        env::PORT,
        env::APPL_PATH,
        env::TOKEN,
        env::IIS_HTTPAUTH,
        env::IIS_WEBSOCKETS_SUPPORTED,
    ] {
        command.env_remove(variable);
    }
    let mut child = command
        .env(env::PORT, port.to_string())
        .env(env::TOKEN, TOKEN)
        .env(env::APPL_PATH, "/app")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    wait_listening(addr);

    let (token, event, xff, xfp) = (
        headers::TOKEN,
        headers::EVENT,
        headers::X_FORWARDED_FOR,
        headers::X_FORWARDED_PROTO,
    );
    let token = (token.as_str(), TOKEN);
    let forwarded = [
        token,
        (xff.as_str(), "203.0.113.7:51000"),
        (xfp.as_str(), "https"),
    ];
    let res = send(addr, "GET", "/app/", &forwarded).await;
    let body = String::from_utf8(res.body).unwrap();
    let path = format!("/app{}", shutdown::PATH);
    let shutdown_event = [token, (event.as_str(), shutdown::EVENT_SHUTDOWN)];
    let event = send(addr, "POST", &path, &shutdown_event).await;
    assert_eq!(event.status, shutdown::ACCEPTED.as_u16());
    (res.status, body, exit_code(&mut child).await)
}

#[tokio::test]
async fn axum_app_answers_with_what_the_extractors_saw_and_stops_on_the_shutdown_event() {
    let (status, body, code) = run_behind_ancm("axum_app").await;
    assert_eq!(
        (status, body.as_str(), code),
        (
            200,
            "hello 203.0.113.7:51000: https, application at '/app'\n",
            0
        )
    );
}

#[tokio::test]
async fn hyper_service_answers_with_what_the_layer_saw_and_stops_on_the_shutdown_event() {
    let (status, body, code) = run_behind_ancm("hyper_service").await;
    assert_eq!(
        (status, body.as_str(), code),
        (
            200,
            "hello 203.0.113.7:51000: https, application at '/app'\n",
            0
        )
    );
}
