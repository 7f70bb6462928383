//! `examples/request_id_gateway.rs` as a user runs it: a child process in front of a real
//! backend, two requests through it.
#![allow(missing_docs, clippy::unwrap_used)]

use std::net::SocketAddr;
use std::process::Stdio;

use ancm_protocol::headers;
use test_support::backends::{echo_backend, parse_seen};
use test_support::client::send;
use test_support::process::{example, free_port, wait_listening};
use tokio::process::Command;

const TOKEN: &str = "0f8fad5b-d9cb-469f-a165-70867728950e";

#[tokio::test]
async fn each_request_gets_its_own_id_the_backend_sees_and_the_response_carries() {
    let backend = echo_backend("127.0.0.1:0").await;
    let listen = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let _gateway = Command::new(example("ancm-front", "request_id_gateway"))
        .args([listen.to_string(), backend.to_string(), TOKEN.to_owned()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    wait_listening(listen);

    let mut ids = Vec::new();
    for _ in 0..2 {
        let res = send(
            listen,
            "GET",
            "/items",
            &[("x-request-id", "from-the-client")],
        )
        .await;
        assert_eq!(res.status, 200);
        let id = res
            .headers
            .iter()
            .find(|(name, _)| name == "x-request-id")
            .map(|(_, value)| value.clone())
            .unwrap();
        let seen = parse_seen(&res.body);
        assert_eq!(seen.one("x-request-id"), Some(id.as_str()));
        // The ANCM layers ran too.
        assert_eq!(seen.one(headers::TOKEN.as_str()), Some(TOKEN));
        assert!(seen.has(headers::X_FORWARDED_FOR.as_str()));
        ids.push(id);
    }
    assert_ne!(ids[0], ids[1]);
    assert!(!ids.contains(&"from-the-client".to_owned()));
}
