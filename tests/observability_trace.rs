//! W3C Trace Context through the real `ancm` binary: the front keeps a valid incoming trace
//! with a new span of its own, starts one when there is none or it is invalid, no client can
//! have it removed, and a Rust backend (the `iis_echo` example, through `iis-integration`)
//! logs the same trace id.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use test_support::backends::header_values;
use test_support::client::get;
use test_support::process::{Gateway, eventually, example};
use test_support::site;

const ANCM: &str = env!("CARGO_BIN_EXE_ancm");

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT_ID: &str = "00f067aa0ba902b7";

/// The `traceparent` the echo backend got, split into its four fields.
fn sent(json: &serde_json::Value) -> Vec<String> {
    let lines = header_values(json, "traceparent");
    assert_eq!(lines.len(), 1, "one traceparent line: {lines:?}");
    let fields: Vec<String> = lines[0].split('-').map(str::to_owned).collect();
    assert_eq!(fields.len(), 4, "{lines:?}");
    assert_eq!(fields[0], "00");
    assert_eq!(
        (fields[1].len(), fields[2].len(), fields[3].len()),
        (32, 16, 2)
    );
    assert!(
        lines[0]
            .bytes()
            .all(|b| b == b'-' || b.is_ascii_digit() || b.is_ascii_lowercase())
    );
    fields
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_front_keeps_or_starts_the_trace_and_sends_its_own_span() {
    let site = site::with_config(&site::rust_echo_config("", &[]));
    let gw = Gateway::start(ANCM, site.path(), &[]);
    let incoming = format!("00-{TRACE_ID}-{PARENT_ID}-01");

    let r = get(
        gw.addr,
        "/",
        &[
            ("traceparent", &incoming),
            ("tracestate", "congo=t61rcWkgMzE,rojo=1"),
        ],
    )
    .await;
    let j = r.json();
    let hop = sent(&j);
    assert_eq!(hop[1], TRACE_ID, "the client's trace");
    assert_ne!(hop[2], PARENT_ID, "the front's own span");
    assert_eq!(hop[3], "01", "flags kept");
    assert_eq!(
        header_values(&j, "tracestate"),
        ["congo=t61rcWkgMzE,rojo=1"]
    );

    // No traceparent: a new trace, not sampled.
    let a = sent(&get(gw.addr, "/", &[]).await.json());
    let b = sent(&get(gw.addr, "/", &[]).await.json());
    assert_ne!(a[1], b[1], "a new trace per request");
    assert_eq!(a[3], "00");

    // Invalid ones start a new trace and lose their tracestate.
    for bad in [
        format!("00-{}-{PARENT_ID}-01", "0".repeat(32)),
        format!("00-{}-{PARENT_ID}-01", TRACE_ID.to_uppercase()),
        format!("ff-{TRACE_ID}-{PARENT_ID}-01"),
        "garbage".to_owned(),
    ] {
        let j = get(
            gw.addr,
            "/",
            &[("traceparent", &bad), ("tracestate", "a=1")],
        )
        .await
        .json();
        let hop = sent(&j);
        assert_ne!(hop[1], TRACE_ID, "{bad}");
        assert!(header_values(&j, "tracestate").is_empty(), "{bad}");
    }

    // Named in Connection by the client: not read, and not removed on the way either.
    let j = get(
        gw.addr,
        "/",
        &[
            ("traceparent", &incoming),
            ("Connection", "keep-alive, traceparent"),
        ],
    )
    .await
    .json();
    assert_ne!(sent(&j)[1], TRACE_ID);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rust_backend_logs_the_trace_id_of_the_request() {
    let site = site::empty();
    std::fs::write(
        site.path().join("web.config"),
        format!(
            r#"<configuration><system.webServer>
  <aspNetCore processPath="{}" stdoutLogEnabled="true" stdoutLogFile=".\logs\stdout" startupTimeLimit="20">
    <environmentVariables>
      <environmentVariable name="RUST_LOG" value="debug" />
    </environmentVariables>
  </aspNetCore>
</system.webServer></configuration>"#,
            example("ancm", "iis_echo").display()
        ),
    )
    .unwrap();
    let gw = Gateway::start(ANCM, site.path(), &[]);
    let incoming = format!("00-{TRACE_ID}-{PARENT_ID}-01");
    let r = get(gw.addr, "/traced", &[("traceparent", &incoming)]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let logs = site.path().join("logs");
    let logged = || {
        std::fs::read_dir(&logs)
            .into_iter()
            .flatten()
            .filter_map(Result::ok)
            .filter_map(|e| std::fs::read_to_string(e.path()).ok())
            .any(|text| {
                text.lines()
                    .any(|l| l.contains(&format!("trace_id={TRACE_ID}")) && l.contains("/traced"))
            })
    };
    assert!(
        eventually(Duration::from_secs(20), logged).await,
        "the backend's log has no line with trace_id={TRACE_ID}"
    );
}
