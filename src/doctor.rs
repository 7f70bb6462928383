//! `ancm doctor`: why won't my site start? A dry run of what `ancm run` would do for a site
//! folder, reported as a list of findings (check, status, message) that the text and the
//! JSON output are both written from.
//!
//! It reads web.config as `ancm check` does and builds the command line with the same
//! [`Application`] `ancm run` uses, then looks at what would stop it before a process is
//! created (the program, a script's interpreter, the .NET host and frameworks, the port, the
//! stdout log folder), starts the backend once with the real environment, sends one request
//! through the gateway's own stack, and stops the backend gracefully.
use std::fmt::Write as _;
use std::io::Write as _;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener};
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ancm_hosting::application::{Application, ApplicationOptions, LaunchPlan, PortPlan};
use ancm_hosting::config::{self, AspNetCoreConfig};
use ancm_hosting::dotnet::{
    DotnetLaunch, FrameworkCheck, PolicySource, RuntimeConfig, check_frameworks, list_runtimes,
};
use ancm_hosting::supervisor::{StartError, StartFailure};
use bytes::Bytes;
use http_body_util::{BodyExt as _, Empty};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};

use crate::connection::ConnectionLimits;
use crate::server::{Listener, Server};

/// Exit status when the site would not start.
pub const EXIT_WOULD_NOT_START: u8 = 1;

/// How long `dotnet --list-runtimes` may take.
const LIST_RUNTIMES_LIMIT: Duration = Duration::from_secs(10);

/// How long the test request may take, connection to last body byte.
const REQUEST_LIMIT: Duration = Duration::from_secs(30);

/// How many lines of a crashed backend's output are shown.
const OUTPUT_LINES: usize = 10;

/// How a finding came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Fine.
    Ok,
    /// The site starts, but something deserves a look.
    Warn,
    /// The site would not start (or not serve).
    Fail,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warn => "warn",
            Status::Fail => "fail",
        }
    }
}

/// What was looked at; the name is the `check` key of the JSON output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// web.config parses (and its warnings).
    Config,
    /// app_offline.htm is present.
    AppOffline,
    /// The command line `ancm run` would execute.
    Command,
    /// A .NET publish folder: apphost replaced, or a self-contained publish refused.
    Publish,
    /// The program (or the `dotnet` host) exists and is executable.
    Program,
    /// A script's `#!` interpreter exists.
    Interpreter,
    /// The .NET application (`MyApp.dll`) exists.
    DotnetApp,
    /// The .NET frameworks the application needs are installed.
    Framework,
    /// The port the backend would get is free.
    Port,
    /// A fixed `ASPNETCORE_TOKEN` is usable.
    Token,
    /// `stdoutLogFile`'s folder can be written.
    StdoutLog,
    /// The backend started and listened.
    Start,
    /// A request through the gateway's stack was answered.
    Request,
    /// The backend stopped gracefully.
    Stop,
}

impl Check {
    /// The JSON name.
    pub fn name(self) -> &'static str {
        match self {
            Check::Config => "config",
            Check::AppOffline => "appOffline",
            Check::Command => "command",
            Check::Publish => "publish",
            Check::Program => "program",
            Check::Interpreter => "interpreter",
            Check::DotnetApp => "dotnetApp",
            Check::Framework => "framework",
            Check::Port => "port",
            Check::Token => "token",
            Check::StdoutLog => "stdoutLog",
            Check::Start => "start",
            Check::Request => "request",
            Check::Stop => "stop",
        }
    }
}

/// One thing the doctor found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// What was looked at.
    pub check: Check,
    /// How it came out.
    pub status: Status,
    /// What was found, for people (may span lines).
    pub message: String,
}

/// Everything the doctor found about one site.
#[derive(Debug)]
struct Report {
    site: PathBuf,
    /// web.config could not be used (exit status 2).
    invalid: bool,
    plan: Option<LaunchPlan>,
    findings: Vec<Finding>,
}

impl Report {
    fn new(site: &Path) -> Self {
        Self {
            site: site.to_path_buf(),
            invalid: false,
            plan: None,
            findings: Vec::new(),
        }
    }

    fn push(&mut self, check: Check, status: Status, message: impl Into<String>) {
        self.findings.push(Finding {
            check,
            status,
            message: message.into(),
        });
    }

    fn failed(&self) -> bool {
        self.findings.iter().any(|f| f.status == Status::Fail)
    }

    fn would_start(&self) -> bool {
        !self.invalid && !self.failed()
    }

    fn exit_code(&self) -> u8 {
        if self.invalid {
            crate::check::EXIT_INVALID
        } else if self.failed() {
            EXIT_WOULD_NOT_START
        } else {
            0
        }
    }

    /// The `--json` object; its keys are documented in `ancm doctor --help`.
    fn to_json(&self) -> Value {
        let command = self.plan.as_ref().map(|plan| {
            json!({
                "program": plan.program.display().to_string(),
                "arguments": plan.arguments,
                "commandLine": plan.command_line(),
                "workingDirectory": plan.working_dir.display().to_string(),
                "environmentVariables": plan.environment_names,
            })
        });
        let findings: Vec<Value> = self
            .findings
            .iter()
            .map(|f| json!({"check": f.check.name(), "status": f.status.as_str(), "message": f.message}))
            .collect();
        json!({
            "site": self.site.display().to_string(),
            "wouldStart": self.would_start(),
            "command": command,
            "findings": findings,
        })
    }

    fn to_text(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "ancm doctor {}", self.site.display());
        let indent = " ".repeat(19);
        for f in &self.findings {
            let mut lines = f.message.lines();
            let _ = writeln!(
                s,
                "{:<5} {:<12} {}",
                f.status.as_str(),
                f.check.name(),
                lines.next().unwrap_or_default()
            );
            for line in lines {
                let _ = writeln!(s, "{indent}{line}");
            }
            if f.check == Check::Command
                && let Some(plan) = &self.plan
            {
                let _ = writeln!(
                    s,
                    "{indent}working directory: {}",
                    plan.working_dir.display()
                );
                let _ = writeln!(
                    s,
                    "{indent}environment (names only): {}",
                    plan.environment_names.join(", ")
                );
            }
        }
        let verdict = if self.invalid {
            "web.config cannot be used: the site would not start"
        } else if self.failed() {
            "the site would not start"
        } else {
            "the site would start"
        };
        let _ = writeln!(s, "{verdict}");
        s
    }
}

/// Runs the doctor on `site` and prints its report; the exit status says whether the site
/// would start (0), would not (1), or has an unusable web.config (2).
pub fn run(site: &Path, as_json: bool) -> ExitCode {
    init_logging();
    let report = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime.block_on(diagnose(site)),
        Err(error) => {
            eprintln!("ancm: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let out = if as_json {
        report.to_json().to_string()
    } else {
        report.to_text()
    };
    let mut stdout = std::io::stdout().lock();
    // A closed stdout (e.g. `| head`) changes nothing about the verdict.
    let _ = writeln!(stdout, "{}", out.trim_end());
    ExitCode::from(report.exit_code())
}

/// The gateway's log only when `RUST_LOG` asks for it: the findings are the output.
fn init_logging() {
    if let Ok(filter) = tracing_subscriber::EnvFilter::try_from_default_env() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .try_init();
    }
}

async fn diagnose(site: &Path) -> Report {
    let mut report = Report::new(site);
    let config = match config::load(site) {
        Ok(config) => config,
        Err(error) => {
            report.invalid = true;
            report.push(Check::Config, Status::Fail, error.to_string());
            return report;
        }
    };
    report.push(
        Check::Config,
        Status::Ok,
        format!("{}: valid <aspNetCore> configuration", config.location),
    );
    for warning in config.warnings() {
        report.push(Check::Config, Status::Warn, warning);
    }
    // The same application `ancm run` builds, without the watcher: nothing starts yet.
    let app = match Application::new(ApplicationOptions::new(site).watch(false)) {
        Ok(app) => app,
        Err(error) => {
            report.invalid = true;
            report.push(Check::Config, Status::Fail, error.to_string());
            return report;
        }
    };
    let Some(plan) = app.launch_plan() else {
        // web.config changed between the two reads.
        report.invalid = true;
        let error = app
            .config_error()
            .map(|e| e.to_string())
            .unwrap_or_default();
        report.push(Check::Config, Status::Fail, error);
        return report;
    };
    static_checks(&mut report, &config, &plan, &app).await;
    report.plan = Some(plan.clone());
    if app.is_offline() {
        report.push(
            Check::Start,
            Status::Warn,
            "not attempted: app_offline.htm is being served",
        );
    } else if report.failed() {
        report.push(
            Check::Start,
            Status::Warn,
            "not attempted: fix the failures above first",
        );
    } else {
        live_checks(&mut report, &app, &plan).await;
    }
    // Stops whatever is still running; nothing when the start was not attempted.
    app.shutdown().await;
    report
}

/// What can be told without starting anything.
async fn static_checks(
    report: &mut Report,
    config: &AspNetCoreConfig,
    plan: &LaunchPlan,
    app: &Application,
) {
    if app.is_offline() {
        report.push(
            Check::AppOffline,
            Status::Warn,
            "app_offline.htm is present: ancm run answers every request with it (503) and starts nothing until it is removed",
        );
    }
    report.push(Check::Command, Status::Ok, plan.command_line());
    match &plan.refusal {
        Some(error @ StartError::SelfContainedPublish { .. }) => {
            report.push(Check::Publish, Status::Fail, error.to_string());
        }
        Some(error @ StartError::InvalidToken { .. }) => {
            report.push(Check::Token, Status::Fail, error.to_string());
        }
        _ => {}
    }
    let refused_publish = matches!(plan.refusal, Some(StartError::SelfContainedPublish { .. }));
    if let Some(dotnet) = &plan.dotnet {
        if let (Some(apphost), Some(app_dll)) = (&dotnet.apphost, &dotnet.app) {
            report.push(
                Check::Publish,
                Status::Ok,
                format!(
                    "{} is a Windows apphost that cannot run here: ancm runs `dotnet {}` from the same publish folder",
                    file_name(apphost),
                    file_name(app_dll)
                ),
            );
        }
        dotnet_checks(report, dotnet).await;
    } else if !refused_publish {
        program_checks(report, &plan.program, &plan.working_dir);
    }
    port_check(report, config, plan);
    if let Some(base) = &plan.stdout_log {
        stdout_log_check(report, base);
    }
}

/// The last component of a path, for messages.
fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// The program exists and is executable, and so is a script's interpreter. A relative path
/// is the child's: from its working directory.
fn program_checks(report: &mut Report, program: &Path, working_dir: &Path) {
    let found = if program.components().count() > 1 || program.is_absolute() {
        let joined = working_dir.join(program);
        Some(
            joined
                .components()
                .filter(|c| !matches!(c, std::path::Component::CurDir))
                .collect(),
        )
    } else {
        search_path(program)
    };
    let Some(path) = found else {
        report.push(
            Check::Program,
            Status::Fail,
            format!(
                "program '{}' was not found: it is not a file in the site folder nor on PATH",
                program.display()
            ),
        );
        return;
    };
    match std::fs::metadata(&path) {
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            report.push(
                Check::Program,
                Status::Fail,
                format!("program {} does not exist", path.display()),
            );
            return;
        }
        Err(error) => {
            report.push(
                Check::Program,
                Status::Fail,
                format!("program {} cannot be used: {error}", path.display()),
            );
            return;
        }
        Ok(meta) if !meta.is_file() => {
            report.push(
                Check::Program,
                Status::Fail,
                format!("program {} is not a file", path.display()),
            );
            return;
        }
        Ok(_) if !is_executable(&path) => {
            report.push(
                Check::Program,
                Status::Fail,
                format!(
                    "program {} is not executable (chmod +x {})",
                    path.display(),
                    path.display()
                ),
            );
            return;
        }
        Ok(_) => report.push(
            Check::Program,
            Status::Ok,
            format!("{} exists and is executable", path.display()),
        ),
    }
    interpreter_check(report, &path);
}

/// A file's `#!` line: its interpreter must exist (and, through `env`, the program it runs).
fn interpreter_check(report: &mut Report, script: &Path) {
    use std::io::Read as _;
    let mut head = [0u8; 256];
    let Ok(read) = std::fs::File::open(script).and_then(|mut f| f.read(&mut head)) else {
        return;
    };
    let Some(line) = head[..read].strip_prefix(b"#!") else {
        return;
    };
    let line = line.split(|b| *b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut words = line.split_whitespace();
    let Some(interpreter) = words.next() else {
        report.push(
            Check::Interpreter,
            Status::Fail,
            format!("{} has an empty #! line", script.display()),
        );
        return;
    };
    let interpreter = Path::new(interpreter);
    if !is_executable(interpreter) {
        report.push(
            Check::Interpreter,
            Status::Fail,
            format!(
                "{} names the interpreter {} on its #! line, which {}",
                script.display(),
                interpreter.display(),
                if interpreter.exists() {
                    "is not executable"
                } else {
                    "does not exist"
                }
            ),
        );
        return;
    }
    let through_env = interpreter.file_name().is_some_and(|n| n == "env");
    match words.find(|w| !w.starts_with('-')).filter(|_| through_env) {
        Some(name) => match search_path(Path::new(name)) {
            Some(found) => report.push(
                Check::Interpreter,
                Status::Ok,
                format!("#!{} runs {}", line.trim(), found.display()),
            ),
            None => report.push(
                Check::Interpreter,
                Status::Fail,
                format!(
                    "{} runs '{name}' through {} (its #! line), and '{name}' is not on PATH",
                    script.display(),
                    interpreter.display()
                ),
            ),
        },
        None => report.push(
            Check::Interpreter,
            Status::Ok,
            format!("#!{}: the interpreter exists", line.trim()),
        ),
    }
}

/// The first executable `name` on the gateway's `PATH`.
fn search_path(name: &Path) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .filter(|d| !d.as_os_str().is_empty())
        .flat_map(|dir| {
            let plain = dir.join(name);
            let exe = cfg!(windows).then(|| dir.join(name).with_extension("exe"));
            std::iter::once(plain).chain(exe)
        })
        .find(|candidate| candidate.is_file() && is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    }
    #[cfg(not(unix))]
    {
        path.is_file()
    }
}

/// The `dotnet` host, the application and the frameworks it needs.
async fn dotnet_checks(report: &mut Report, dotnet: &DotnetLaunch) {
    let Some(host) = &dotnet.host else {
        report.push(
            Check::Program,
            Status::Fail,
            format!(
                "dotnet was not found (looked in {}): install the ASP.NET Core Runtime, or set DOTNET_ROOT to the folder that holds dotnet",
                dotnet.searched.join(", ")
            ),
        );
        return;
    };
    report.push(
        Check::Program,
        Status::Ok,
        format!(
            "dotnet: {} (found through {})",
            host.path.display(),
            host.source
        ),
    );
    match &dotnet.app {
        None => report.push(
            Check::DotnetApp,
            Status::Warn,
            "the arguments name no application (.dll) for dotnet to run",
        ),
        Some(app) if !app.is_file() => report.push(
            Check::DotnetApp,
            Status::Fail,
            format!("the application {} does not exist", app.display()),
        ),
        Some(app) => report.push(
            Check::DotnetApp,
            Status::Ok,
            format!("{} exists", app.display()),
        ),
    }
    let Some(path) = &dotnet.runtime_config else {
        return;
    };
    if !path.is_file() {
        report.push(
            Check::Framework,
            Status::Fail,
            format!(
                "{} does not exist: dotnet needs it to know which frameworks to load (copy the whole publish folder)",
                path.display()
            ),
        );
        return;
    }
    let runtime_config = match RuntimeConfig::read(path) {
        Ok(c) => c,
        Err(error) => {
            report.push(Check::Framework, Status::Fail, error.to_string());
            return;
        }
    };
    if runtime_config.is_self_contained() {
        report.push(
            Check::Framework,
            Status::Fail,
            format!(
                "{} names no shared framework: the application is a self-contained publish, which dotnet cannot run; publish it framework-dependent (dotnet publish --self-contained false)",
                path.display()
            ),
        );
        return;
    }
    let installed = match list_runtimes(&host.path, LIST_RUNTIMES_LIMIT).await {
        Ok(installed) => installed,
        Err(error) => {
            report.push(
                Check::Framework,
                Status::Warn,
                format!("could not list the installed runtimes: {error}"),
            );
            return;
        }
    };
    match check_frameworks(&runtime_config, &dotnet.roll_forward, &installed) {
        Err(error) => report.push(Check::Framework, Status::Fail, error.to_string()),
        Ok(checks) => {
            for check in checks {
                let (status, message) = framework_message(&check);
                report.push(Check::Framework, status, message);
            }
        }
    }
}

/// One framework reference, as people read it.
fn framework_message(check: &FrameworkCheck) -> (Status, String) {
    let reference = &check.reference;
    let source = match check.policy_source {
        PolicySource::Default => " (the default)".to_owned(),
        other => format!(" (from {other})"),
    };
    let mut wanted = format!(
        "{} {} with rollForward {}{source}",
        reference.name, reference.version, check.policy
    );
    if let Some(by) = &check.required_by {
        let _ = write!(wanted, ", required by {by}");
    }
    if let Some(found) = &check.resolved {
        return (
            Status::Ok,
            format!("{wanted}: uses {} {}", found.name, found.version),
        );
    }
    let installed = if check.installed.is_empty() {
        format!("no version of {} is installed", reference.name)
    } else {
        let list: Vec<String> = check.installed.iter().map(ToString::to_string).collect();
        let (below, above) = check.nearest();
        let nearest: Vec<String> = below
            .map(|v| format!("{v} below"))
            .into_iter()
            .chain(above.map(|v| format!("{v} above")))
            .collect();
        format!(
            "installed: {} (nearest: {})",
            list.join(", "),
            nearest.join(", ")
        )
    };
    (
        Status::Fail,
        format!(
            "{wanted}: not installed; {installed}. Install {} {}.{} or later, or allow rolling forward (DOTNET_ROLL_FORWARD=Major)",
            reference.name, reference.version.major, reference.version.minor
        ),
    )
}

/// The port the backend would get.
fn port_check(report: &mut Report, config: &AspNetCoreConfig, plan: &LaunchPlan) {
    match &plan.port {
        PortPlan::Random => report.push(
            Check::Port,
            Status::Ok,
            "a random free port in 10000-48000 for each start (ASPNETCORE_PORT is not set in web.config)",
        ),
        PortPlan::Fixed(port) => {
            if let Some(error) = port_in_use(*port) {
                report.push(
                    Check::Port,
                    Status::Fail,
                    format!(
                        "port {port} (ASPNETCORE_PORT in web.config) is in use: {error}; stop what listens there or change the port"
                    ),
                );
            } else {
                report.push(
                    Check::Port,
                    Status::Ok,
                    format!("port {port} (ASPNETCORE_PORT in web.config) is free"),
                );
            }
            if config.processes_per_application > 1 {
                report.push(
                    Check::Port,
                    Status::Warn,
                    format!(
                        "processesPerApplication=\"{}\" with a fixed port: only one of the processes can listen on it",
                        config.processes_per_application
                    ),
                );
            }
        }
        PortPlan::Invalid(raw) => report.push(
            Check::Port,
            Status::Fail,
            format!("ASPNETCORE_PORT {raw:?} in web.config is not a port in 1025-48000"),
        ),
        other => report.push(
            Check::Port,
            Status::Warn,
            format!("an unknown port choice: {other:?}"),
        ),
    }
}

/// Why `port` cannot be bound on the loopback addresses, or `None` when it can.
fn port_in_use(port: u16) -> Option<std::io::Error> {
    if let Err(error) = TcpListener::bind((Ipv4Addr::LOCALHOST, port)) {
        return Some(error);
    }
    match TcpListener::bind((Ipv6Addr::LOCALHOST, port)) {
        Err(error) if error.kind() == std::io::ErrorKind::AddrInUse => Some(error),
        _ => None,
    }
}

/// `stdoutLogFile`'s folder exists and can be written, or can be created.
fn stdout_log_check(report: &mut Report, base: &Path) {
    let folder = base.parent().unwrap_or(Path::new("."));
    let pattern = format!("{}_<time>_<pid>.log", file_name(base));
    let mut existing = folder;
    while !existing.exists() {
        match existing.parent() {
            Some(parent) => existing = parent,
            None => break,
        }
    }
    let problem = if !existing.is_dir() {
        Some(format!("{} is not a folder", existing.display()))
    } else {
        let probe = existing.join(format!(".ancm-doctor-{}", std::process::id()));
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&probe)
        {
            Ok(_) => {
                let _ = std::fs::remove_file(&probe);
                None
            }
            Err(error) => Some(format!("{} cannot be written: {error}", existing.display())),
        }
    };
    match problem {
        None if existing == folder => report.push(
            Check::StdoutLog,
            Status::Ok,
            format!("stdout log: {pattern} in {} (writable)", folder.display()),
        ),
        None => report.push(
            Check::StdoutLog,
            Status::Ok,
            format!(
                "stdout log: {pattern} in {} (created at the first start)",
                folder.display()
            ),
        ),
        Some(problem) => report.push(
            Check::StdoutLog,
            Status::Warn,
            format!(
                "stdoutLogFile's folder {} cannot be created or written ({problem}): ancm run starts the application without its stdout log",
                folder.display()
            ),
        ),
    }
}

/// Starts the backend, sends one request through the gateway's stack, stops it.
async fn live_checks(report: &mut Report, app: &Application, plan: &LaunchPlan) {
    let started = Instant::now();
    if let Err(failure) = app.start().await {
        report.push(Check::Start, Status::Fail, start_failure(&failure, plan));
        return;
    }
    let pids: Vec<String> = app.backend_pids().iter().map(u32::to_string).collect();
    report.push(
        Check::Start,
        Status::Ok,
        format!(
            "ready in {} ms (pid {})",
            started.elapsed().as_millis(),
            pids.join(", ")
        ),
    );
    let (status, message) = match request(app).await {
        Ok((code, took)) if code.is_server_error() => (
            Status::Warn,
            format!(
                "GET {} was answered {code} in {} ms",
                app.app_path(),
                took.as_millis()
            ),
        ),
        Ok((code, took)) => (
            Status::Ok,
            format!(
                "GET {} was answered {code} in {} ms",
                app.app_path(),
                took.as_millis()
            ),
        ),
        Err(error) => (
            Status::Fail,
            format!("GET {} through the gateway failed: {error}", app.app_path()),
        ),
    };
    report.push(Check::Request, status, message);
    let stopping = Instant::now();
    app.shutdown().await;
    let took = stopping.elapsed();
    if took >= plan.shutdown_time_limit {
        report.push(
            Check::Stop,
            Status::Warn,
            format!(
                "it did not stop within shutdownTimeLimit ({} s) and was killed",
                plan.shutdown_time_limit.as_secs()
            ),
        );
    } else {
        report.push(
            Check::Stop,
            Status::Ok,
            format!("stopped gracefully in {} ms", took.as_millis()),
        );
    }
}

/// A failed start, with the first lines of what the backend wrote.
fn start_failure(failure: &Arc<StartFailure>, plan: &LaunchPlan) -> String {
    let mut message = match &failure.error {
        StartError::Exited { status, .. } => {
            format!("the process exited during startup with {status}")
        }
        StartError::Timeout { port, limit_s, .. } => format!(
            "the process did not listen on port {port} within startupTimeLimit ({limit_s} s); raise startupTimeLimit if it needs longer"
        ),
        other => other.to_string(),
    };
    let output = failure
        .output
        .clone()
        .or_else(|| plan.stdout_log.as_deref().and_then(newest_log));
    let lines: Vec<&str> = output
        .as_deref()
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .take(OUTPUT_LINES)
        .collect();
    if !lines.is_empty() {
        message.push_str("\nfirst output lines:");
        for line in lines {
            let line: String = line.chars().take(200).collect();
            let _ = write!(message, "\n  {line}");
        }
    }
    message
}

/// The text of the newest `<base>_*.log` (the start that just failed wrote it).
fn newest_log(base: &Path) -> Option<String> {
    let folder = base.parent()?;
    let prefix = format!("{}_", base.file_name()?.to_string_lossy());
    let newest = std::fs::read_dir(folder)
        .ok()?
        .flatten()
        .filter(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.starts_with(&prefix) && name.ends_with(".log")
        })
        .max_by_key(|e| e.metadata().and_then(|m| m.modified()).ok())?;
    std::fs::read_to_string(newest.path()).ok()
}

/// `GET <app path>` through `ancm run`'s own stack (limits, admission, ANCM layers,
/// forwarder) on a loopback listener of its own; the status and how long it took.
async fn request(app: &Application) -> Result<(http::StatusCode, Duration), String> {
    let listener = Listener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), None)
        .map_err(|e| format!("cannot listen on 127.0.0.1: {e}"))?;
    let addr = listener
        .local_addr()
        .map_err(|e| format!("cannot listen on 127.0.0.1: {e}"))?;
    let server = Server::new(ConnectionLimits {
        header_timeout: Duration::from_secs(30),
        h2_idle_timeout: Duration::from_secs(120),
        h2_ping_interval: Duration::from_secs(30),
        max_connections: NonZeroUsize::MIN.saturating_add(15),
    });
    let routes = [crate::gateway::Hosted::new(app.clone())];
    let accept = server
        .handle()
        .spawn_accept_loop(
            vec![listener],
            crate::gateway::router(&routes, &crate::observe::Observability::new(None, false, 1)),
        )
        .map_err(|e| format!("cannot serve: {e}"))?;
    let started = Instant::now();
    let path = app.app_path().as_str().to_owned();
    let result = tokio::time::timeout(REQUEST_LIMIT, get(addr, &path))
        .await
        .unwrap_or_else(|_| {
            Err(format!(
                "no complete answer within {} s",
                REQUEST_LIMIT.as_secs()
            ))
        })
        .map(|status| (status, started.elapsed()));
    server.stop_accepting();
    let _ = accept.await;
    server.drain(Duration::from_secs(5)).await;
    result
}

/// One HTTP/1.1 `GET path` on a new connection; the status once the body is read.
async fn get(addr: SocketAddr, path: &str) -> Result<http::StatusCode, String> {
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    let connection = tokio::spawn(connection);
    let request = http::Request::get(path)
        .header(http::header::HOST, addr.to_string())
        .header(http::header::USER_AGENT, "ancm-doctor")
        .body(Empty::<Bytes>::new())
        .map_err(|e| format!("request: {e}"))?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| format!("send: {e}"))?;
    let status = response.status();
    response
        .into_body()
        .collect()
        .await
        .map_err(|e| format!("reading the body: {e}"))?;
    connection.abort();
    Ok(status)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_the_findings() {
        let mut report = Report::new(Path::new("/site"));
        report.push(Check::Config, Status::Ok, "fine");
        report.push(Check::StdoutLog, Status::Warn, "hmm");
        assert_eq!(report.exit_code(), 0);
        assert!(report.would_start());
        report.push(Check::Port, Status::Fail, "taken");
        assert_eq!(report.exit_code(), EXIT_WOULD_NOT_START);
        report.invalid = true;
        assert_eq!(report.exit_code(), crate::check::EXIT_INVALID);
        let json = report.to_json();
        assert_eq!(json["wouldStart"], false);
        assert_eq!(json["findings"][2]["check"], "port");
        assert_eq!(json["findings"][2]["status"], "fail");
        assert!(json["command"].is_null());
    }

    #[test]
    fn text_indents_continuation_lines() {
        let mut report = Report::new(Path::new("/site"));
        report.push(
            Check::Start,
            Status::Fail,
            "exited\nfirst output lines:\n  boom",
        );
        let text = report.to_text();
        assert!(text.contains("fail  start        exited\n"), "{text}");
        assert!(
            text.contains(&format!("\n{}first output lines:\n", " ".repeat(19))),
            "{text}"
        );
        assert!(text.ends_with("the site would not start\n"), "{text}");
    }
}
