//! `ancm run --access-log`: IIS's W3C format read back by GoAccess (a consumer no one here
//! wrote), JSON lines on standard output, the trace id of each line, hostile values, the
//! flush without and with a shutdown, and size rolling; the real binary, real backends.
#![cfg(unix)]
#![allow(clippy::unwrap_used)]

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

use test_support::backends::header_values;
use test_support::client::{self, get};
use test_support::process::{Gateway, eventually};
use test_support::site;

const ANCM: &str = env!("CARGO_BIN_EXE_ancm");

/// Every wait of these tests.
const WAIT: Duration = Duration::from_secs(20);

/// IIS's default fields, then the trace id.
const FIELDS: &str = "date time s-ip cs-method cs-uri-stem cs-uri-query s-port cs-username c-ip cs(User-Agent) cs(Referer) sc-status sc-substatus sc-win32-status time-taken x-trace-id";

/// A site whose backend cannot be started: every request gets 502.5.
fn failing_site() -> tempfile::TempDir {
    site::with_config(
        r#"<configuration><system.webServer>
  <aspNetCore processPath="/nonexistent/backend" startupTimeLimit="2" />
</system.webServer></configuration>"#,
    )
}

/// Today's (UTC) log file name.
fn todays_file() -> String {
    let days = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        / 86_400;
    // Civil date from days since 1970-01-01 (H. Hinnant).
    let z = i64::try_from(days).unwrap() + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("u_ex{:02}{m:02}{d:02}.log", y % 100)
}

/// The lines of `file` that are not directives (empty when it does not exist yet).
fn entries(file: &Path) -> Vec<Vec<String>> {
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| l.split(' ').map(str::to_owned).collect())
        .collect()
}

/// The value of `field` in a W3C line.
fn field<'a>(line: &'a [String], field: &str) -> &'a str {
    let index = FIELDS.split(' ').position(|f| f == field).unwrap();
    &line[index]
}

/// Waits until `file` has `n` entries (the writer flushes at least every second).
async fn wait_entries(file: &Path, n: usize) -> Vec<Vec<String>> {
    assert!(
        eventually(WAIT, || entries(file).len() >= n).await,
        "{} has {} entries, not {n}:\n{}",
        file.display(),
        entries(file).len(),
        std::fs::read_to_string(file).unwrap_or_default()
    );
    entries(file)
}

/// The trace id of the `traceparent` the python backend reported.
fn backend_trace_id(json: &serde_json::Value) -> String {
    let sent = header_values(json, "traceparent");
    assert_eq!(sent.len(), 1, "{sent:?}");
    sent[0].split('-').nth(1).unwrap().to_owned()
}

/// GoAccess's report of `file` read with its W3C (IIS) log format, as JSON.
fn goaccess(file: &Path, out: &Path) -> serde_json::Value {
    let report = out.join("goaccess.json");
    let run = Command::new("goaccess")
        .arg(file)
        .arg("--log-format=W3C")
        .arg("--no-global-config")
        .arg("-o")
        .arg(&report)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run goaccess ({e}): install Debian's goaccess package (.ci/run does)")
        });
    assert!(
        run.status.success(),
        "goaccess failed: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_w3c_log_is_iis_shaped_and_goaccess_reads_it() {
    let site = site::with_config(&site::python_echo_config("", &[]));
    let bad = failing_site();
    let logs = tempfile::tempdir().unwrap();
    let bad_app = format!("/bad={}", bad.path().display());
    let mut gw = Gateway::start(
        ANCM,
        site.path(),
        &[
            "--app-path",
            "/app",
            "--app",
            &bad_app,
            "--access-log",
            logs.path().to_str().unwrap(),
        ],
    );

    // 200 with a user agent that has spaces, and a query string.
    let r = get(
        gw.addr,
        "/app/a?x=1&y=two",
        &[
            ("User-Agent", "Mozilla/5.0 (X11; Linux x86_64)"),
            ("Referer", "http://example.test/from here"),
        ],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let first_trace = backend_trace_id(&r.json());
    // 200 in a trace the client started: the log has the client's trace id.
    let client_trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let traceparent = format!("00-{client_trace}-00f067aa0ba902b7-01");
    let r = get(gw.addr, "/app/b", &[("traceparent", &traceparent)]).await;
    assert_eq!(r.status, 200);
    assert_eq!(backend_trace_id(&r.json()), client_trace);
    // A user agent with a tab and bytes that are not ASCII, raw.
    let raw = client::send_raw(
        gw.addr,
        b"GET /app/c HTTP/1.1\r\nHost: test.local\r\nUser-Agent: evil\tagent \xff\xfe\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(raw.status, 200);
    // The backend dies without answering: 502.3.
    let r = get(gw.addr, "/app/crash", &[]).await;
    assert_eq!(r.status, 502);
    // No application: the gateway's own 404, in the ROOT folder.
    assert_eq!(get(gw.addr, "/elsewhere", &[]).await.status, 404);
    // A backend that cannot start: 502.5, in its own folder.
    assert_eq!(get(gw.addr, "/bad/x", &[]).await.status, 502);

    let name = todays_file();
    let app_file = logs.path().join("ROOT_app").join(&name);
    // Flushed within about a second, without a shutdown.
    let lines = wait_entries(&app_file, 4).await;
    let text = std::fs::read_to_string(&app_file).unwrap();
    let mut directives = text.lines().take(4);
    assert!(directives.next().unwrap().starts_with("#Software: ancm "));
    assert_eq!(directives.next().unwrap(), "#Version: 1.0");
    assert!(directives.next().unwrap().starts_with("#Date: 20"));
    assert_eq!(directives.next().unwrap(), format!("#Fields: {FIELDS}"));
    for line in &lines {
        assert_eq!(line.len(), 16, "one value per field: {line:?}");
        assert_eq!(field(line, "s-ip"), "127.0.0.1");
        assert_eq!(field(line, "s-port"), gw.addr.port().to_string());
        assert_eq!(field(line, "c-ip"), "127.0.0.1");
        assert_eq!(field(line, "cs-username"), "-");
        assert_eq!(field(line, "x-trace-id").len(), 32);
        field(line, "time-taken").parse::<u64>().unwrap();
    }
    let a = &lines[0];
    assert_eq!(field(a, "cs-method"), "GET");
    assert_eq!(field(a, "cs-uri-stem"), "/app/a");
    assert_eq!(field(a, "cs-uri-query"), "x=1&y=two");
    assert_eq!(
        field(a, "cs(User-Agent)"),
        "Mozilla/5.0+(X11;+Linux+x86_64)"
    );
    assert_eq!(field(a, "cs(Referer)"), "http://example.test/from+here");
    assert_eq!(
        (
            field(a, "sc-status"),
            field(a, "sc-substatus"),
            field(a, "sc-win32-status")
        ),
        ("200", "0", "0")
    );
    assert_eq!(
        field(a, "x-trace-id"),
        first_trace,
        "the backend's trace id"
    );
    assert_eq!(field(&lines[1], "cs-uri-query"), "-");
    assert_eq!(field(&lines[1], "x-trace-id"), client_trace);
    assert_eq!(field(&lines[2], "cs(User-Agent)"), "evil%09agent+%FF%FE");
    assert_eq!(
        (
            field(&lines[3], "sc-status"),
            field(&lines[3], "sc-substatus")
        ),
        ("502", "3")
    );

    let root = wait_entries(&logs.path().join("ROOT").join(&name), 1).await;
    assert_eq!(
        (field(&root[0], "cs-uri-stem"), field(&root[0], "sc-status")),
        ("/elsewhere", "404")
    );
    assert_eq!(field(&root[0], "x-trace-id").len(), 32);
    let bad = wait_entries(&logs.path().join("ROOT_bad").join(&name), 1).await;
    assert_eq!(
        (field(&bad[0], "sc-status"), field(&bad[0], "sc-substatus")),
        ("502", "5")
    );

    // A request just before the stop is written out by the stop.
    assert_eq!(get(gw.addr, "/app/last", &[]).await.status, 200);
    assert!(gw.terminate().success());
    let lines = entries(&app_file);
    assert_eq!(lines.len(), 5, "{lines:?}");
    assert_eq!(field(&lines[4], "cs-uri-stem"), "/app/last");

    let report = goaccess(&app_file, logs.path());
    assert_eq!(
        report["general"]["total_requests"], 5,
        "{:#}",
        report["general"]
    );
    assert_eq!(report["general"]["failed_requests"], 0);
    let classes: Vec<(String, u64)> = report["status_codes"]["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["data"].as_str().unwrap().to_owned(),
                c["hits"]["count"].as_u64().unwrap(),
            )
        })
        .collect();
    let class = |prefix: &str| {
        classes
            .iter()
            .find(|(name, _)| name.starts_with(prefix))
            .map_or(0, |(_, n)| *n)
    };
    assert_eq!((class("2xx"), class("5xx")), (4, 1), "{classes:?}");
    let codes: Vec<String> = report["status_codes"]["data"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|c| c["items"].as_array().unwrap().iter())
        .map(|i| i["data"].as_str().unwrap().to_owned())
        .collect();
    assert!(codes.iter().any(|c| c.starts_with("200")), "{codes:?}");
    assert!(codes.iter().any(|c| c.starts_with("502")), "{codes:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_lines_go_to_stdout_with_the_trace_id() {
    let site = site::with_config(&site::python_echo_config("", &[]));
    let mut gw = Gateway::start_piped(
        ANCM,
        site.path(),
        &["--access-log", "-", "--access-log-format", "json"],
        &[],
    );
    drop(gw.take_stderr());
    let stdout = gw.take_stdout().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { return };
            if tx.send(line).is_err() {
                return;
            }
        }
    });

    let r = get(gw.addr, "/one?q=a%20b", &[("User-Agent", "json test")]).await;
    assert_eq!(r.status, 200);
    let trace = backend_trace_id(&r.json());
    let line = rx
        .recv_timeout(WAIT)
        .expect("a line on stdout within the flush interval");
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    for key in FIELDS.split(' ').filter(|f| *f != "x-trace-id") {
        assert!(v.get(key).is_some(), "{key} in {line}");
    }
    assert_eq!(v["cs-method"], "GET");
    assert_eq!(v["cs-uri-stem"], "/one");
    assert_eq!(v["cs-uri-query"], "q=a%20b");
    assert_eq!(v["cs(User-Agent)"], "json test");
    assert_eq!(v["cs(Referer)"], serde_json::Value::Null);
    assert_eq!(v["sc-status"], 200);
    assert_eq!(v["sc-substatus"], 0);
    assert_eq!(v["s-port"], gw.addr.port());
    assert!(v["time-taken"].is_u64());
    assert_eq!(v["trace-id"], trace);
    assert!(gw.terminate().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_roll_over_at_the_size_cap() {
    let site = site::with_config(&site::python_echo_config("", &[]));
    let logs = tempfile::tempdir().unwrap();
    let mut gw = Gateway::start(
        ANCM,
        site.path(),
        &[
            "--access-log",
            logs.path().to_str().unwrap(),
            "--access-log-max-bytes",
            "500",
        ],
    );
    for i in 0..8 {
        assert_eq!(get(gw.addr, &format!("/n{i}"), &[]).await.status, 200);
    }
    assert!(gw.terminate().success());
    let folder = logs.path().join("ROOT");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&folder)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(files.len() >= 3, "{files:?}");
    let today = todays_file();
    let stem = today.trim_end_matches(".log");
    let mut seen = Vec::new();
    for file in &files {
        let name = file.file_name().unwrap().to_str().unwrap();
        assert!(
            name == today || (name.starts_with(&format!("{stem}_")) && name.ends_with(".log")),
            "{name}"
        );
        assert!(std::fs::metadata(file).unwrap().len() <= 500, "{name}");
        let text = std::fs::read_to_string(file).unwrap();
        assert!(
            text.starts_with("#Software: ancm "),
            "{name}: every file has the directives"
        );
        seen.extend(
            entries(file)
                .iter()
                .map(|l| field(l, "cs-uri-stem").to_owned()),
        );
    }
    seen.sort();
    let expected: Vec<String> = (0..8).map(|i| format!("/n{i}")).collect();
    assert_eq!(seen, expected);
}
