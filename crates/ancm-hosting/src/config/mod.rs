//! The `system.webServer/aspNetCore` element of web.config (contract §3).
//!
//! [`AspNetCoreConfig`] holds every attribute of contract §3.1 with its type and default,
//! as written in the file (before `%VAR%` expansion); [`AspNetCoreConfig::expanded`] gives the
//! values with `%VAR%` references expanded from an environment.
use std::path::PathBuf;
use std::time::Duration;

/// Where in a file something was found or went wrong (1-based line and column).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The file.
    pub file: PathBuf,
    /// 1-based line.
    pub line: u32,
    /// 1-based column (in characters).
    pub column: u32,
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}:{}", self.file.display(), self.line, self.column)
    }
}

/// `hostingModel`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HostingModel {
    /// Empty, absent or `outofprocess` (any case).
    #[default]
    OutOfProcess,
    /// `inprocess` (any case): runs out-of-process here, with a warning (contract §8.6).
    InProcess,
}

/// The effective `<aspNetCore>` configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AspNetCoreConfig {
    /// `processPath` as written (XML entities decoded, `%VAR%` not expanded). Required.
    pub process_path: String,
    /// `arguments` as written; `""` when absent.
    pub arguments: String,
    /// `hostingModel` as written (`None` when absent), e.g. `InProcess`.
    pub hosting_model_raw: Option<String>,
    /// The parsed hosting model.
    pub hosting_model: HostingModel,
    /// `stdoutLogEnabled`, default false.
    pub stdout_log_enabled: bool,
    /// `stdoutLogFile`, default `.\aspnetcore-stdout`.
    pub stdout_log_file: String,
    /// `requestTimeout` as written, `None` when absent (the default is `00:02:00`).
    pub request_timeout_raw: Option<String>,
    /// `requestTimeout`, default 2 minutes, 0 … 360 h.
    pub request_timeout: Duration,
    /// `startupTimeLimit` in seconds, default 120, 0–3600.
    pub startup_time_limit: u32,
    /// `shutdownTimeLimit` in seconds, default 10, 0–600.
    pub shutdown_time_limit: u32,
    /// `rapidFailsPerMinute`, default 10, 0–100.
    pub rapid_fails_per_minute: u32,
    /// `processesPerApplication`, default 1, 1–100.
    pub processes_per_application: u32,
    /// `forwardWindowsAuthToken`, default true.
    pub forward_windows_auth_token: bool,
    /// `disableStartUpErrorPage`, default false.
    pub disable_startup_error_page: bool,
    /// `environmentVariables`: `(name, value)` in document order after de-duplication: names
    /// are case-insensitive and a later entry wins, so an earlier entry with the same name is
    /// dropped and the survivor stays where it is written; `<clear/>` drops every entry before
    /// it. Values as written (`%VAR%` not expanded).
    pub environment_variables: Vec<(String, String)>,
    /// `handlerSettings`: `(name, value)` in document order after de-duplication: names are
    /// case-insensitive and the first entry wins (later duplicates dropped), as ANCM's
    /// out-of-process reader does.
    pub handler_settings: Vec<(String, String)>,
    /// Where the `<aspNetCore>` element starts.
    pub location: Location,
}

impl AspNetCoreConfig {
    /// The default `requestTimeout` text.
    pub const DEFAULT_REQUEST_TIMEOUT: &'static str = "00:02:00";

    /// A handler setting by name, case-insensitive.
    pub fn handler_setting(&self, name: &str) -> Option<&str> {
        self.handler_settings
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// An environment variable from web.config by name, case-insensitive.
    pub fn environment_variable(&self, name: &str) -> Option<&str> {
        self.environment_variables
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}
