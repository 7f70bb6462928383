//! Reads the `system.webServer/aspNetCore` element of a web.config (protocol §3).
//!
//! ```
//! use std::path::Path;
//! use ancm_hosting::config::{self, HostingModel};
//!
//! let xml = br#"<?xml version="1.0" encoding="utf-8"?>
//! <configuration>
//!   <location path="." inheritInChildApplications="false">
//!     <system.webServer>
//!       <aspNetCore processPath="dotnet" arguments=".\App.dll" hostingModel="InProcess"
//!                   requestTimeout="00:05:00">
//!         <environmentVariables>
//!           <environmentVariable name="LOGS" value="%HOME%\logs" />
//!         </environmentVariables>
//!       </aspNetCore>
//!     </system.webServer>
//!   </location>
//! </configuration>"#;
//! let cfg = config::parse(xml, Path::new("web.config"))?;
//! assert_eq!(cfg.process_path, "dotnet");
//! assert_eq!(cfg.hosting_model, HostingModel::InProcess); // runs out-of-process (§8.6)
//! assert_eq!(cfg.request_timeout.as_secs(), 300);
//! let env = |name: &str| (name == "HOME").then(|| "/srv".to_string());
//! assert_eq!(cfg.expanded(&env).environment_variables[0].1, "/srv\\logs");
//!
//! let bad = b"<configuration><system.webServer>\n  <aspNetCore startupTimeLimit=\"9000\"/>\n\
//!             </system.webServer></configuration>";
//! let err = config::parse(bad, Path::new("site/web.config")).unwrap_err();
//! assert_eq!(
//!     err.to_string(),
//!     "site/web.config:2:15: Attribute 'startupTimeLimit' value '9000' is out of range: \
//!      must be between 0 and 3600."
//! );
//! # Ok::<(), config::ConfigError>(())
//! ```
//!
//! [`AspNetCoreConfig`] holds every attribute of protocol §3.1 with its type and default,
//! as written in the file (before `%VAR%` expansion); [`AspNetCoreConfig::expanded`] gives the
//! values with `%VAR%` references expanded from an environment.
//!
//! # Which element counts
//!
//! The first `<aspNetCore>` in document order, outside comments, directly under
//! `configuration/system.webServer` or under `configuration/location/system.webServer` where
//! the `<location>` has no `path`, `path=""` or `path="."`. A `<location>` for any other path
//! configures a sub-application and is ignored, as is every later `<aspNetCore>`. Element and
//! attribute names are matched exactly (IIS is case-sensitive); namespace declarations and
//! prefixed attributes (`xdt:Transform`, ...) are ignored. A file whose root element declares
//! the XDT namespace is a web.config *transform* (`web.Release.config`) and is rejected.
//!
//! # Decisions where IIS or the contract is silent
//!
//! * Text: UTF-8 with or without a byte order mark, or UTF-16 with one; the `encoding` of the
//!   XML declaration is not consulted. Lines end in LF, CRLF or CR; columns count characters.
//! * The whole document must be well-formed XML (as for IIS), not only the section read:
//!   one root element, matching end tags, no `--` inside a comment, no control characters
//!   other than tab, CR and LF. Attribute values are normalised as XML requires (a literal tab
//!   or line break becomes a space) and the five predefined entities and `&#...;` references
//!   are decoded; any other entity is an error. An XML declaration or DOCTYPE is not checked.
//! * Numbers are decimal digits only (no sign, no hex), booleans `true`/`false` in any case;
//!   both may be surrounded by XML white space. An empty value is an error.
//! * `requestTimeout` is `[-][d.]hh:mm:ss[.fraction]` (hours 0–23, minutes and seconds 0–59,
//!   1–7 fraction digits), 0 to `15.00:00:00` (360 h). The schema's granularity of 1 second
//!   means a non-zero fraction (`00:00:01.5`) is rejected, as IIS's `timeSpanRange`
//!   validation does; a zero fraction (`00:00:01.0`) is fine.
//! * `hostingModel` is compared case-insensitively and not trimmed, like ANCM.
//!   `processPath` must be non-empty; white space alone counts as a value (as in ANCM).
//! * An unknown attribute on `<aspNetCore>` is ignored, except a known name spelled in another
//!   case (`disableStartupErrorPage`), which IIS would reject and which is surely a typo.
//!   Unknown child elements of `<aspNetCore>` (`recycleOnFileChange`, ...) are ignored.
//! * Both collections accept `<clear/>` (drops everything before it) and `<remove name=.../>`
//!   (drops that name), as IIS collections do; any other element in them (typically `<add>`)
//!   is the authoring error of §3.1. A second `<environmentVariables>` continues the first.
//!   An environment variable name containing `=` is refused (no OS accepts it).
//! * `configSource` on `<aspNetCore>` (the section kept in another file) is not supported
//!   and says so, rather than failing later with "processPath is required".
//! * Error order follows IIS then ANCM: XML and per-attribute errors in document order, then
//!   `hostingModel`, then `processPath`.
//! * `%VAR%` expansion: see [`expand_env_vars`] and [`process_env`].
//!
//! # IIS request filtering's `<requestLimits>`
//!
//! The same file's `system.webServer/security/requestFiltering/requestLimits` is read too
//! (protocol §3.4), into [`AspNetCoreConfig::request_limits`]: `ancm` stands in for IIS's
//! request filtering as well. The first such element counts, under the same
//! `<system.webServer>` elements as `<aspNetCore>`; its attributes are typed like
//! `<aspNetCore>`'s (a bad number is an error with its position). `maxUrl` and
//! `maxQueryString` are IIS `uint`s (0–4294967295); `maxAllowedContentLength` takes any
//! 64-bit value, where IIS stops at 4294967295 (protocol §8.16).
use std::path::{Path, PathBuf};
use std::time::Duration;

use ancm_front::RequestTimeout;

pub mod attr;
mod expand;
mod source;
pub(crate) mod timespan;
mod values;
mod walk;

pub use expand::expand_env_vars;

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
    /// `inprocess` (any case): runs out-of-process here, with a warning (protocol §8.6).
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
    /// `system.webServer/security/requestFiltering/requestLimits` of the same file (not
    /// part of `<aspNetCore>`): what is written there, `None` for each attribute that is not.
    pub request_limits: IisRequestLimits,
    /// Where the `<aspNetCore>` element starts.
    pub location: Location,
}

/// IIS request filtering's `<requestLimits>` as written: `None` for an attribute that is not
/// written, where the gateway's default applies (IIS's own, [`Self::IIS_MAX_URL`] and the
/// others, unless the gateway was told otherwise).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct IisRequestLimits {
    /// `maxAllowedContentLength`: the largest request body, in bytes.
    pub max_allowed_content_length: Option<u64>,
    /// `maxUrl`: the longest URL path (without the query string), in bytes.
    pub max_url: Option<u32>,
    /// `maxQueryString`: the longest query string (after `?`), in bytes.
    pub max_query_string: Option<u32>,
}

impl IisRequestLimits {
    /// IIS's default `maxAllowedContentLength`: 30,000,000 bytes (about 28.6 MiB).
    pub const IIS_MAX_ALLOWED_CONTENT_LENGTH: u64 = 30_000_000;
    /// IIS's default `maxUrl`: 4096 bytes.
    pub const IIS_MAX_URL: u32 = 4096;
    /// IIS's default `maxQueryString`: 2048 bytes.
    pub const IIS_MAX_QUERY_STRING: u32 = 2048;

    /// `maxAllowedContentLength` as written, or IIS's default.
    pub fn max_allowed_content_length_or_default(&self) -> u64 {
        self.max_allowed_content_length
            .unwrap_or(Self::IIS_MAX_ALLOWED_CONTENT_LENGTH)
    }

    /// `maxUrl` as written, or IIS's default.
    pub fn max_url_or_default(&self) -> u32 {
        self.max_url.unwrap_or(Self::IIS_MAX_URL)
    }

    /// `maxQueryString` as written, or IIS's default.
    pub fn max_query_string_or_default(&self) -> u32 {
        self.max_query_string.unwrap_or(Self::IIS_MAX_QUERY_STRING)
    }
}

impl AspNetCoreConfig {
    /// The default `requestTimeout` text.
    pub const DEFAULT_REQUEST_TIMEOUT: &'static str = "00:02:00";

    /// The default `stdoutLogFile`.
    pub const DEFAULT_STDOUT_LOG_FILE: &'static str = ".\\aspnetcore-stdout";

    /// In-process-only handler settings: accepted and ignored with a warning (§8.6).
    pub const IN_PROCESS_ONLY_HANDLER_SETTINGS: &'static [&'static str] = &[
        "stackSize",
        "callStartupHook",
        "setCurrentDirectory",
        "suppressRecycleOnStartupTimeout",
        "experimentalEnableShadowCopy",
        "enableShadowCopy",
        "shadowCopyDirectory",
        "cleanShadowCopyDirectory",
    ];

    /// A configuration with `processPath` set and every other attribute at its default, as
    /// if `<aspNetCore processPath="..."/>` were written at `location` (and no
    /// `<requestLimits>`).
    pub fn new(process_path: impl Into<String>, location: Location) -> Self {
        AspNetCoreConfig {
            process_path: process_path.into(),
            arguments: String::new(),
            hosting_model_raw: None,
            hosting_model: HostingModel::OutOfProcess,
            stdout_log_enabled: false,
            stdout_log_file: Self::DEFAULT_STDOUT_LOG_FILE.to_owned(),
            request_timeout_raw: None,
            request_timeout: RequestTimeout::WEB_CONFIG_DEFAULT,
            startup_time_limit: 120,
            shutdown_time_limit: 10,
            rapid_fails_per_minute: 10,
            processes_per_application: 1,
            forward_windows_auth_token: true,
            disable_startup_error_page: false,
            environment_variables: Vec::new(),
            handler_settings: Vec::new(),
            request_limits: IisRequestLimits::default(),
            location,
        }
    }

    /// `requestTimeout` as written, or the default `00:02:00`.
    pub fn request_timeout_text(&self) -> &str {
        self.request_timeout_raw
            .as_deref()
            .unwrap_or(Self::DEFAULT_REQUEST_TIMEOUT)
    }

    /// The warnings ancm-rs gives once at start for this configuration (protocol §8.6):
    /// `hostingModel="inprocess"` runs out-of-process, and in-process-only handler settings
    /// are ignored.
    pub fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.hosting_model == HostingModel::InProcess {
            out.push(format!(
                "{}: hostingModel=\"{}\": in-process hosting does not exist in ancm-rs; the \
                 application runs out-of-process",
                self.location,
                self.hosting_model_raw.as_deref().unwrap_or_default()
            ));
        }
        for (name, _) in &self.handler_settings {
            if Self::IN_PROCESS_ONLY_HANDLER_SETTINGS
                .iter()
                .any(|s| s.eq_ignore_ascii_case(name))
            {
                out.push(format!(
                    "{}: handlerSetting '{name}' applies to in-process hosting only and is ignored",
                    self.location
                ));
            }
        }
        out
    }

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

/// Why a web.config could not be used: the file, where in it (when known), and a message a
/// person can act on. Display is `FILE:LINE:COL: message`, or `FILE: message` without a
/// location.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {message}", self.where_())]
pub struct ConfigError {
    file: PathBuf,
    location: Option<Location>,
    kind: ConfigErrorKind,
    message: String,
}

/// What kind of problem a [`ConfigError`] is, for callers that branch on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigErrorKind {
    /// The file could not be read.
    Io,
    /// The bytes are not UTF-8 (or UTF-16 with a byte order mark).
    Encoding,
    /// The XML is not well-formed.
    MalformedXml,
    /// The file is a web.config transform (XDT), not a configuration file.
    Transform,
    /// There is no effective `system.webServer/aspNetCore` element.
    NoAspNetCore,
    /// A required attribute is absent or empty (e.g. `processPath`).
    MissingAttribute,
    /// An attribute value cannot be parsed (number, boolean, timeSpan, hosting model).
    InvalidValue,
    /// A number or timeSpan is outside its allowed range.
    OutOfRange,
    /// An element the schema does not allow, e.g. `<add>` in `<environmentVariables>`.
    AuthoringError,
}

impl ConfigError {
    pub(crate) fn new(
        file: &Path,
        location: Option<Location>,
        kind: ConfigErrorKind,
        message: impl Into<String>,
    ) -> Self {
        ConfigError {
            file: file.to_path_buf(),
            location,
            kind,
            message: message.into(),
        }
    }

    fn where_(&self) -> String {
        match &self.location {
            Some(l) => l.to_string(),
            None => self.file.display().to_string(),
        }
    }

    /// Where in the file the error is, when known.
    pub fn location(&self) -> Option<&Location> {
        self.location.as_ref()
    }

    /// The file the error is about.
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// What kind of problem this is.
    pub fn kind(&self) -> ConfigErrorKind {
        self.kind
    }

    /// The message without the file and location.
    pub fn message(&self) -> &str {
        &self.message
    }
}

/// The values of an [`AspNetCoreConfig`] that take `%VAR%` references, expanded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpandedConfig {
    /// `processPath`, expanded.
    pub process_path: String,
    /// `arguments`, expanded.
    pub arguments: String,
    /// `stdoutLogFile`, expanded.
    pub stdout_log_file: String,
    /// `environmentVariables` with their values expanded (names as written).
    pub environment_variables: Vec<(String, String)>,
}

impl AspNetCoreConfig {
    /// processPath, arguments, stdoutLogFile and environment variable values with `%VAR%`
    /// expanded by `lookup` (protocol §2.2, §2.3), with [`expand_env_vars`] semantics. Pass
    /// [`process_env`] for the gateway's own environment.
    pub fn expanded(&self, lookup: &dyn Fn(&str) -> Option<String>) -> ExpandedConfig {
        ExpandedConfig {
            process_path: expand_env_vars(&self.process_path, lookup),
            arguments: expand_env_vars(&self.arguments, lookup),
            stdout_log_file: expand_env_vars(&self.stdout_log_file, lookup),
            environment_variables: self
                .environment_variables
                .iter()
                .map(|(n, v)| (n.clone(), expand_env_vars(v, lookup)))
                .collect(),
        }
    }
}

/// Looks a variable up in this process's environment the way Windows does, for
/// [`AspNetCoreConfig::expanded`]: names are case-insensitive on Windows; elsewhere an exact
/// match is preferred and, failing that, the first variable whose name matches ignoring
/// case (so a web.config written for Windows, `%Home%`, still finds `HOME`). Variables
/// whose name or value is not Unicode are skipped.
pub fn process_env(name: &str) -> Option<String> {
    if name.is_empty() || name.contains(['=', '\0']) {
        return None;
    }
    if let Ok(v) = std::env::var(name) {
        return Some(v);
    }
    if cfg!(windows) {
        return None;
    }
    std::env::vars_os().find_map(|(n, v)| {
        let n = n.into_string().ok()?;
        (n.eq_ignore_ascii_case(name) || n.to_uppercase() == name.to_uppercase())
            .then(|| v.into_string().ok())
            .flatten()
    })
}

/// Reads and parses a web.config; a directory means `<dir>/web.config`. Errors name the
/// file as `path` was given (joined with `web.config` for a directory).
pub fn load(path: &Path) -> Result<AspNetCoreConfig, ConfigError> {
    let file = if path.is_dir() {
        path.join("web.config")
    } else {
        path.to_path_buf()
    };
    let text = std::fs::read(&file).map_err(|e| {
        ConfigError::new(
            &file,
            None,
            ConfigErrorKind::Io,
            format!("cannot read: {e}"),
        )
    })?;
    parse(&text, &file)
}

/// Parses web.config bytes; `file` is only used in locations and messages.
///
/// Never panics, whatever the bytes.
pub fn parse(text: &[u8], file: &Path) -> Result<AspNetCoreConfig, ConfigError> {
    let text = source::decode(text).map_err(|e| {
        let (line, column) = e.line_col;
        let location = Location {
            file: file.to_path_buf(),
            line,
            column,
        };
        ConfigError::new(file, Some(location), ConfigErrorKind::Encoding, e.message)
    })?;
    walk::parse_text(&text, file)
}
