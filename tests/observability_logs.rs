//! Logs an operator can live with: `stdoutLogFile` retention (`--stdout-log-max-files`,
//! `--stdout-log-max-bytes`, and the ancm-only handler settings `stdoutLogMaxFiles` and
//! `stdoutLogMaxBytes`), and the gateway's own log as JSON lines (`--log-format json`). The
//! real binary, the python backend writing to its stdout.
#![cfg(unix)]
#![allow(clippy::unwrap_used)]

use std::io::{BufRead as _, BufReader};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use test_support::client::get;
use test_support::process::{Gateway, eventually};
use test_support::site;

const ANCM: &str = env!("CARGO_BIN_EXE_ancm");

/// Every wait of these tests.
const WAIT: Duration = Duration::from_secs(20);

/// The stdout log files under `site/logs`, oldest name first.
fn log_files(site: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(site.join("logs"))
        .into_iter()
        .flatten()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
}

/// Every line of every stdout log file, in the files' order.
fn logged_lines(site: &Path) -> Vec<String> {
    log_files(site)
        .iter()
        .flat_map(|f| {
            std::fs::read_to_string(f)
                .unwrap()
                .lines()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect()
}

const STDOUT_LOG: &str = r#"stdoutLogEnabled="true" stdoutLogFile=".\logs\stdout""#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stdout_logs_are_capped_in_size_and_count() {
    let site = site::with_config(&site::python_echo_config(STDOUT_LOG, &[]));
    let gw = Gateway::start(
        ANCM,
        site.path(),
        &[
            "--stdout-log-max-files",
            "3",
            "--stdout-log-max-bytes",
            "1000",
        ],
    );
    // 80 lines of 51 bytes: about 4 KB in five files of at most 1000 bytes; three are kept.
    let r = get(gw.addr, "/print?lines=80&width=40", &[]).await;
    assert_eq!(r.status, 200);
    assert!(
        eventually(WAIT, || logged_lines(site.path())
            .last()
            .is_some_and(|l| l.starts_with("line 00079 ")))
        .await,
        "{:?}",
        logged_lines(site.path())
    );
    let files = log_files(site.path());
    assert_eq!(files.len(), 3, "{files:?}");
    for file in &files {
        let meta = std::fs::metadata(file).unwrap();
        assert!(
            meta.len() <= 1000,
            "{}: {} bytes",
            file.display(),
            meta.len()
        );
        assert_eq!(
            meta.permissions().mode() & 0o777 & !0o640,
            0,
            "not readable by others"
        );
        let name = file.file_name().unwrap().to_str().unwrap();
        assert!(
            name.starts_with("stdout_") && name.ends_with(".log"),
            "{name}"
        );
    }
    // The newest output is all there, in order; the oldest file is gone.
    let lines = logged_lines(site.path());
    let numbered: Vec<&String> = lines.iter().filter(|l| l.starts_with("line ")).collect();
    assert!(
        !lines.iter().any(|l| l.starts_with("echo_backend pid")),
        "the first file went"
    );
    let tail: Vec<String> = (80 - numbered.len()..80)
        .map(|i| format!("line {i:05} {}", "x".repeat(40)))
        .collect();
    assert_eq!(
        numbered.iter().map(|l| l.as_str()).collect::<Vec<_>>(),
        tail
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handler_settings_win_over_the_flags_and_each_start_counts() {
    let config = site::python_echo_config(STDOUT_LOG, &[]).replace(
        "<environmentVariables>",
        r#"<handlerSettings><handlerSetting name="stdoutLogMaxFiles" value="2" /></handlerSettings>
        <environmentVariables>"#,
    );
    let site = site::with_config(&config);
    let gw = Gateway::start(ANCM, site.path(), &["--stdout-log-max-files", "10"]);
    // Three starts in a row (each crash restarts on the next request): three files made,
    // two kept.
    for _ in 0..3 {
        assert_eq!(get(gw.addr, "/", &[]).await.status, 200);
        assert_eq!(get(gw.addr, "/crash", &[]).await.status, 502);
        tokio::time::sleep(Duration::from_millis(1100)).await;
    }
    assert_eq!(get(gw.addr, "/", &[]).await.status, 200);
    let files = log_files(site.path());
    assert_eq!(files.len(), 2, "{files:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateways_log_can_be_json_lines() {
    let site = site::with_config(&site::python_echo_config("", &[]));
    let mut gw = Gateway::start_piped(
        ANCM,
        site.path(),
        &["--log-format", "json"],
        &[("RUST_LOG", "info")],
    );
    drop(gw.take_stdout());
    let stderr = gw.take_stderr().unwrap();
    assert_eq!(get(gw.addr, "/", &[]).await.status, 200);
    assert!(gw.terminate().success());
    let lines: Vec<String> = BufReader::new(stderr).lines().map(Result::unwrap).collect();
    assert!(lines.len() > 3, "{lines:?}");
    for line in &lines {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
        assert!(
            v["timestamp"].is_string() && v["level"].is_string(),
            "{line}"
        );
        assert!(v["fields"]["message"].is_string(), "{line}");
    }
    assert!(
        lines
            .iter()
            .any(|l| l.contains("\"started the child process\"")),
        "{lines:#?}"
    );
}
