//! `ancm doctor SITE`: one test per finding, against the real binary. Exit status 0 when the
//! site would start, 1 when it would not, 2 when web.config cannot be used.
//!
//! The checks of .NET publish folders (a fake `dotnet` host) and of scripts run on Unix only;
//! the rest on every OS, with the Rust echo backend.
#![allow(clippy::unwrap_used)]

use std::path::Path;
#[cfg(unix)]
use std::time::Duration;

#[cfg(unix)]
use test_support::dotnet::{
    RUNTIMECONFIG_8, RUNTIMES_8, Shape, fake_dotnet, publish_site, runtimeconfig, script,
};
use test_support::process::{self, Doctor};
use test_support::{dotnet, site};

/// The gateway binary under test.
const ANCM: &str = env!("CARGO_BIN_EXE_ancm");

/// `ancm doctor SITE ARGS…` with the .NET variables `vars`.
fn doctor(site: &Path, args: &[&str], vars: &[(&str, &str)]) -> Doctor {
    process::doctor(dotnet::command(ANCM, vars), site, args)
}

/// A web.config starting `process_path` with `attrs` and environment variables.
fn config(process_path: &str, attrs: &str, env: &[(&str, &str)]) -> String {
    let vars: String = env
        .iter()
        .map(|(n, v)| format!("<environmentVariable name=\"{n}\" value=\"{v}\" />"))
        .collect();
    format!(
        r#"<configuration><system.webServer>
  <aspNetCore processPath="{process_path}" startupTimeLimit="20" shutdownTimeLimit="5" {attrs}>
    <environmentVariables>{vars}</environmentVariables>
  </aspNetCore>
</system.webServer></configuration>"#
    )
}

/// A .NET publish folder and a fake `dotnet` listing .NET 8.0.11 in a DOTNET_ROOT.
#[cfg(unix)]
struct Published {
    site: tempfile::TempDir,
    root: tempfile::TempDir,
}

#[cfg(unix)]
impl Published {
    fn new(runtime_config: &str) -> Self {
        let site = publish_site(Shape::Apphost, runtime_config);
        let root = tempfile::tempdir().unwrap();
        fake_dotnet(root.path(), "root", RUNTIMES_8);
        Self { site, root }
    }

    fn doctor(&self, vars: &[(&str, &str)]) -> Doctor {
        let mut all = vec![("DOTNET_ROOT", self.root.path().to_str().unwrap())];
        all.extend_from_slice(vars);
        doctor(self.site.path(), &["--json"], &all)
    }
}

#[cfg(unix)]
#[test]
fn a_healthy_publish_folder_would_start() {
    let published = Published::new(RUNTIMECONFIG_8);
    let report = published.doctor(&[]);
    assert_eq!(report.code, 0, "{}", report.out);
    let json = report.json();
    assert_eq!(json["wouldStart"], true);
    let dotnet = published.root.path().join("dotnet");
    assert_eq!(json["command"]["program"], dotnet.display().to_string());
    assert!(
        report.finding("framework", "ok").contains(
            "Microsoft.AspNetCore.App 8.0.0 with rollForward Minor (the default): uses Microsoft.AspNetCore.App 8.0.11"
        ),
        "{}",
        report.out
    );
    assert!(
        report
            .finding("publish", "ok")
            .contains("`dotnet MyApp.dll`")
    );
    assert!(
        report
            .finding("program", "ok")
            .contains("found through DOTNET_ROOT")
    );
    assert!(report.finding("start", "ok").starts_with("ready in "));
    assert!(
        report
            .finding("request", "ok")
            .contains("GET / was answered 200 OK")
    );
    assert!(
        report
            .finding("stop", "ok")
            .starts_with("stopped gracefully")
    );
    assert!(
        report
            .findings("config")
            .iter()
            .any(|(s, m)| s == "warn" && m.contains("inprocess"))
    );
}

#[test]
fn a_healthy_site_shows_variable_names_never_values() {
    let site = site::with_config(&site::rust_echo_config(
        "",
        &[("DB_PASSWORD", "hunter2-secret")],
    ));
    let text = doctor(site.path(), &[], &[]);
    assert_eq!(text.code, 0, "{}", text.out);
    assert!(
        text.out.contains("environment (names only): DB_PASSWORD, "),
        "{}",
        text.out
    );
    assert!(
        text.out
            .contains("ok    request      GET / was answered 200 OK"),
        "{}",
        text.out
    );
    assert!(
        text.out.trim_end().ends_with("the site would start"),
        "{}",
        text.out
    );
    assert!(!text.out.contains("hunter2-secret"), "{}", text.out);
    let json = doctor(site.path(), &["--json"], &[]);
    assert_eq!(json.code, 0);
    assert!(!json.out.contains("hunter2-secret"), "{}", json.out);
    let names = json.json()["command"]["environmentVariables"].clone();
    for name in [
        "DB_PASSWORD",
        "ASPNETCORE_PORT",
        "ASPNETCORE_TOKEN",
        "ASPNETCORE_APPL_PATH",
    ] {
        assert!(
            names.as_array().unwrap().iter().any(|n| n == name),
            "{name}: {names}"
        );
    }
}

#[test]
fn an_invalid_web_config_exits_2() {
    let site = site::with_config(
        "<configuration><system.webServer>\n<aspNetCore startupTimeLimit=\"9000\" processPath=\"x\"/>\n</system.webServer></configuration>",
    );
    let report = doctor(site.path(), &["--json"], &[]);
    assert_eq!(report.code, 2, "{}", report.out);
    let json = report.json();
    assert_eq!(json["wouldStart"], false);
    assert!(json["command"].is_null());
    let message = report.finding("config", "fail");
    assert!(message.ends_with("web.config:2:13: Attribute 'startupTimeLimit' value '9000' is out of range: must be between 0 and 3600."), "{message}");
}

#[test]
fn a_missing_program() {
    let site = site::with_config(&config(r".\missing-app", "", &[]));
    let report = doctor(site.path(), &["--json"], &[]);
    assert_eq!(report.code, 1, "{}", report.out);
    let message = report.finding("program", "fail");
    assert!(message.contains("missing-app does not exist"), "{message}");
    assert!(report.finding("start", "warn").contains("not attempted"));
}

#[cfg(unix)]
#[test]
fn a_program_that_is_not_executable() {
    let site = site::with_config(&config(r".\start.sh", "", &[]));
    std::fs::write(site.path().join("start.sh"), "#!/bin/sh\nexit 0\n").unwrap();
    let report = doctor(site.path(), &["--json"], &[]);
    assert_eq!(report.code, 1, "{}", report.out);
    let message = report.finding("program", "fail");
    assert!(
        message.contains("start.sh is not executable (chmod +x"),
        "{message}"
    );
}

#[cfg(unix)]
#[test]
fn a_script_whose_interpreter_is_missing() {
    let site = site::with_config(&config(r".\start.sh", "", &[]));
    script(
        &site.path().join("start.sh"),
        "#!/nonexistent/python9 -u\nprint(1)\n",
    );
    let report = doctor(site.path(), &["--json"], &[]);
    assert_eq!(report.code, 1, "{}", report.out);
    report.finding("program", "ok");
    let message = report.finding("interpreter", "fail");
    assert!(
        message.contains("/nonexistent/python9 on its #! line, which does not exist"),
        "{message}"
    );

    // Through env: the program it runs must be on PATH.
    script(
        &site.path().join("start.sh"),
        "#!/usr/bin/env no-such-interpreter-9\n",
    );
    let report = doctor(site.path(), &["--json"], &[]);
    assert_eq!(report.code, 1, "{}", report.out);
    let message = report.finding("interpreter", "fail");
    assert!(
        message.contains("'no-such-interpreter-9' is not on PATH"),
        "{message}"
    );
}

#[cfg(unix)]
#[test]
fn a_missing_framework_names_the_nearest_installed_versions() {
    let published = Published::new(&runtimeconfig("Microsoft.AspNetCore.App", "9.0.0", ""));
    let report = published.doctor(&[]);
    assert_eq!(report.code, 1, "{}", report.out);
    let message = report.finding("framework", "fail");
    assert!(
        message.starts_with("Microsoft.AspNetCore.App 9.0.0 with rollForward Minor (the default): not installed; installed: 8.0.11 (nearest: 8.0.11 below)"),
        "{message}"
    );
    assert!(report.finding("start", "warn").contains("not attempted"));
}

#[cfg(unix)]
#[test]
fn rolling_forward_to_an_installed_major_passes() {
    // runtimeconfig.json's own rollForward.
    let published = Published::new(&runtimeconfig(
        "Microsoft.AspNetCore.App",
        "7.0.0",
        r#""rollForward":"Major","#,
    ));
    let report = published.doctor(&[]);
    assert_eq!(report.code, 0, "{}", report.out);
    let message = report.finding("framework", "ok");
    assert!(
        message.contains("7.0.0 with rollForward Major (from runtimeOptions.rollForward): uses Microsoft.AspNetCore.App 8.0.11"),
        "{message}"
    );

    // DOTNET_ROLL_FORWARD, as the application gets it, wins over runtimeconfig.json.
    let published = Published::new(&runtimeconfig("Microsoft.AspNetCore.App", "7.0.0", ""));
    assert_eq!(published.doctor(&[]).code, 1);
    let report = published.doctor(&[("DOTNET_ROLL_FORWARD", "Major")]);
    assert_eq!(report.code, 0, "{}", report.out);
    let message = report.finding("framework", "ok");
    assert!(
        message.contains("rollForward Major (from DOTNET_ROLL_FORWARD)"),
        "{message}"
    );
}

/// A listener on a loopback port that web.config may fix (1025–48000).
fn hold_a_port() -> std::net::TcpListener {
    let start = 20_000 + (std::process::id() % 20_000) as u16;
    (0..5_000u16)
        .find_map(|i| std::net::TcpListener::bind(("127.0.0.1", start + i)).ok())
        .unwrap()
}

#[test]
fn a_fixed_port_in_use() {
    let held = hold_a_port();
    let port = held.local_addr().unwrap().port().to_string();
    let site = site::with_config(&site::rust_echo_config("", &[("ASPNETCORE_PORT", &port)]));
    let report = doctor(site.path(), &["--json"], &[]);
    assert_eq!(report.code, 1, "{}", report.out);
    let message = report.finding("port", "fail");
    assert!(
        message.starts_with(&format!(
            "port {port} (ASPNETCORE_PORT in web.config) is in use"
        )),
        "{message}"
    );
    assert!(report.finding("start", "warn").contains("not attempted"));

    drop(held);
    let report = doctor(site.path(), &["--json"], &[]);
    assert_eq!(report.code, 0, "{}", report.out);
    assert!(report.finding("port", "ok").contains("is free"));
}

#[test]
fn an_unwritable_stdout_log_folder_is_a_warning() {
    let site = site::with_config(&site::rust_echo_config(
        r#"stdoutLogEnabled="true" stdoutLogFile=".\blocker\logs\stdout""#,
        &[],
    ));
    // A file where the log folder should be: no one, not even root, can create it.
    std::fs::write(site.path().join("blocker"), "").unwrap();
    let report = doctor(site.path(), &["--json"], &[]);
    assert_eq!(report.code, 0, "the site still starts: {}", report.out);
    let message = report.finding("stdoutLog", "warn");
    assert!(message.contains("blocker is not a folder"), "{message}");
    assert!(
        message.contains("starts the application without its stdout log"),
        "{message}"
    );
    report.finding("start", "ok");

    // A folder that can be made is fine.
    std::fs::remove_file(site.path().join("blocker")).unwrap();
    let report = doctor(site.path(), &["--json"], &[]);
    assert!(
        report
            .finding("stdoutLog", "ok")
            .contains("created at the first start")
    );
}

#[cfg(unix)]
#[test]
fn a_crashing_backend_shows_its_exit_code_and_first_output_lines() {
    let site = site::with_config(&config(r".\crash.sh", "", &[]));
    script(
        &site.path().join("crash.sh"),
        "#!/bin/sh\necho 'Unhandled exception. System.IO.FileNotFoundException: appsettings.json'\necho '   at Program.Main' >&2\nexit 3\n",
    );
    let report = doctor(site.path(), &["--json"], &[]);
    assert_eq!(report.code, 1, "{}", report.out);
    let message = report.finding("start", "fail");
    assert!(
        message.starts_with("the process exited during startup with exit code 3"),
        "{message}"
    );
    assert!(message.contains("\nfirst output lines:\n"), "{message}");
    assert!(
        message.contains("System.IO.FileNotFoundException: appsettings.json"),
        "{message}"
    );
    assert!(message.contains("at Program.Main"), "{message}");
    assert!(report.findings("request").is_empty());
}

#[cfg(unix)]
#[test]
fn a_slow_backend_times_out_within_startup_time_limit() {
    let site = site::with_config(
        &config(r".\slow.sh", r#"startupTimeLimit="1""#, &[])
            .replace(r#"startupTimeLimit="20" "#, ""),
    );
    script(
        &site.path().join("slow.sh"),
        "#!/bin/sh\necho 'warming up'\nexec sleep 60\n",
    );
    let report = doctor(site.path(), &["--json"], &[]);
    assert_eq!(report.code, 1, "{}", report.out);
    let message = report.finding("start", "fail");
    assert!(message.contains("did not listen on port"), "{message}");
    assert!(
        message.contains("within startupTimeLimit (1 s)"),
        "{message}"
    );
    assert!(message.contains("warming up"), "{message}");
    // Two attempts of one second each, and the kills.
    assert!(report.took < Duration::from_secs(20), "{:?}", report.took);
}

#[test]
fn app_offline_is_reported_and_nothing_starts() {
    let site = site::with_config(&site::rust_echo_config("", &[]));
    std::fs::write(site.path().join("app_offline.htm"), "<p>down</p>").unwrap();
    let report = doctor(site.path(), &["--json"], &[]);
    assert_eq!(report.code, 0, "{}", report.out);
    assert!(report.finding("appOffline", "warn").contains("503"));
    assert!(report.finding("start", "warn").contains("app_offline.htm"));
}

#[test]
fn an_unusable_fixed_token() {
    let site = site::with_config(&site::rust_echo_config(
        "",
        &[("ASPNETCORE_TOKEN", "not a token")],
    ));
    let report = doctor(site.path(), &["--json"], &[]);
    assert_eq!(report.code, 1, "{}", report.out);
    assert!(report.finding("token", "fail").contains("ASPNETCORE_TOKEN"));
}
