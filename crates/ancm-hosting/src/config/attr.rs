//! The names of the `<aspNetCore>` attributes and collections, and of the `<requestLimits>`
//! attributes, spelled once, as the IIS schema spells them (names are case-sensitive).
//!
//! The parser reads these names; `ancm check --json` uses them as its keys.
//!
//! ```
//! use ancm_hosting::config::attr;
//! let xml = format!(
//!     r#"<configuration><system.webServer><aspNetCore {}="dotnet" {}="5"/></system.webServer></configuration>"#,
//!     attr::PROCESS_PATH,
//!     attr::STARTUP_TIME_LIMIT,
//! );
//! let cfg = ancm_hosting::config::parse(xml.as_bytes(), std::path::Path::new("web.config"))?;
//! assert_eq!(cfg.startup_time_limit, 5);
//! # Ok::<(), ancm_hosting::config::ConfigError>(())
//! ```

/// `processPath`: the program to start.
pub const PROCESS_PATH: &str = "processPath";
/// `arguments`: the program's arguments.
pub const ARGUMENTS: &str = "arguments";
/// `hostingModel`: `outofprocess` or `inprocess`.
pub const HOSTING_MODEL: &str = "hostingModel";
/// `stdoutLogEnabled`: write the child's output to a log file.
pub const STDOUT_LOG_ENABLED: &str = "stdoutLogEnabled";
/// `stdoutLogFile`: the log file's base name.
pub const STDOUT_LOG_FILE: &str = "stdoutLogFile";
/// `requestTimeout`: a timeSpan.
pub const REQUEST_TIMEOUT: &str = "requestTimeout";
/// `startupTimeLimit`: seconds.
pub const STARTUP_TIME_LIMIT: &str = "startupTimeLimit";
/// `shutdownTimeLimit`: seconds.
pub const SHUTDOWN_TIME_LIMIT: &str = "shutdownTimeLimit";
/// `rapidFailsPerMinute`.
pub const RAPID_FAILS_PER_MINUTE: &str = "rapidFailsPerMinute";
/// `processesPerApplication`.
pub const PROCESSES_PER_APPLICATION: &str = "processesPerApplication";
/// `forwardWindowsAuthToken`.
pub const FORWARD_WINDOWS_AUTH_TOKEN: &str = "forwardWindowsAuthToken";
/// `disableStartUpErrorPage` (with a capital U, as the schema has it).
pub const DISABLE_STARTUP_ERROR_PAGE: &str = "disableStartUpErrorPage";

/// `<environmentVariables>`: the collection of variables set on the child.
pub const ENVIRONMENT_VARIABLES: &str = "environmentVariables";
/// `<handlerSettings>`: the collection of module settings.
pub const HANDLER_SETTINGS: &str = "handlerSettings";

/// `<requestLimits>` of `system.webServer/security/requestFiltering`: IIS request
/// filtering's size limits (not part of `<aspNetCore>`; read because `ancm` stands in for
/// IIS there too).
pub const REQUEST_LIMITS: &str = "requestLimits";
/// `maxAllowedContentLength` of `<requestLimits>`: the largest request body, in bytes.
pub const MAX_ALLOWED_CONTENT_LENGTH: &str = "maxAllowedContentLength";
/// `maxUrl` of `<requestLimits>`: the longest URL path, in bytes.
pub const MAX_URL: &str = "maxUrl";
/// `maxQueryString` of `<requestLimits>`: the longest query string, in bytes.
pub const MAX_QUERY_STRING: &str = "maxQueryString";

/// `configSource`: the section kept in another file (refused by ancm-rs).
pub(crate) const CONFIG_SOURCE: &str = "configSource";

/// Every attribute of `<aspNetCore>` ancm-rs reads.
pub(crate) const KNOWN: &[&str] = &[
    PROCESS_PATH,
    ARGUMENTS,
    STARTUP_TIME_LIMIT,
    SHUTDOWN_TIME_LIMIT,
    RAPID_FAILS_PER_MINUTE,
    REQUEST_TIMEOUT,
    STDOUT_LOG_ENABLED,
    STDOUT_LOG_FILE,
    PROCESSES_PER_APPLICATION,
    FORWARD_WINDOWS_AUTH_TOKEN,
    DISABLE_STARTUP_ERROR_PAGE,
    HOSTING_MODEL,
];

/// Every attribute of `<requestLimits>` ancm-rs reads.
pub(crate) const KNOWN_REQUEST_LIMITS: &[&str] =
    &[MAX_ALLOWED_CONTENT_LENGTH, MAX_URL, MAX_QUERY_STRING];
