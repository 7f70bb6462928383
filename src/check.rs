//! `ancm check`: validate a web.config and print the effective `<aspNetCore>` configuration.
use std::io::Write as _;
use std::path::Path;
use std::process::ExitCode;

use ancm_hosting::config::{self, AspNetCoreConfig, IisRequestLimits, attr};
use serde_json::{Value, json};

/// Exit status for an invalid configuration.
pub const EXIT_INVALID: u8 = 2;

/// What stands for a hidden environment variable value.
const HIDDEN: &str = "***";

/// Whether the environment variables' values are printed. They often hold secrets (a fixed
/// `ASPNETCORE_TOKEN`, a database password), so by default they are not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnvValues {
    /// Names only; `"***"` as the value in JSON.
    Hidden,
    /// Names and values (`--show-values`).
    Shown,
}

/// Run the check; prints to stdout (result) and stderr (`FILE:LINE:COL: message`).
pub fn run(path: &Path, as_json: bool, values: EnvValues) -> ExitCode {
    match config::load(path) {
        Ok(config) => {
            let out = if as_json {
                to_json(&config, values).to_string()
            } else {
                to_text(&config, values)
            };
            let mut stdout = std::io::stdout().lock();
            // A closed stdout (e.g. `| head`) is not a configuration error.
            let _ = writeln!(stdout, "{out}");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("{err}");
            ExitCode::from(EXIT_INVALID)
        }
    }
}

fn pairs(list: &[(String, String)]) -> Value {
    Value::Array(list.iter().map(|(n, v)| json!([n, v])).collect())
}

/// `[name, value]` pairs with every value `"***"`, keeping the shape.
fn names(list: &[(String, String)]) -> Value {
    Value::Array(list.iter().map(|(n, _)| json!([n, HIDDEN])).collect())
}

/// `requestTimeout` in milliseconds: ancm's own key, not a web.config attribute.
const REQUEST_TIMEOUT_MS: &str = "requestTimeoutMs";

/// The `--json` object: keys named as the web.config attributes, values before `%VAR%`
/// expansion, booleans and numbers as JSON types; environment variable values as `values`
/// says (the handler settings are configuration, not secrets: always shown);
/// `requestLimits` holds request filtering's three limits.
pub fn to_json(c: &AspNetCoreConfig, values: EnvValues) -> Value {
    let environment_variables = match values {
        EnvValues::Hidden => names(&c.environment_variables),
        EnvValues::Shown => pairs(&c.environment_variables),
    };
    let request_timeout_ms = u64::try_from(c.request_timeout.as_millis()).unwrap_or(u64::MAX);
    json!({
        attr::PROCESS_PATH: c.process_path,
        attr::ARGUMENTS: c.arguments,
        attr::HOSTING_MODEL: c.hosting_model_raw.as_deref().unwrap_or(""),
        attr::STDOUT_LOG_ENABLED: c.stdout_log_enabled,
        attr::STDOUT_LOG_FILE: c.stdout_log_file,
        attr::REQUEST_TIMEOUT: c.request_timeout_raw.as_deref().unwrap_or(AspNetCoreConfig::DEFAULT_REQUEST_TIMEOUT),
        REQUEST_TIMEOUT_MS: request_timeout_ms,
        attr::STARTUP_TIME_LIMIT: c.startup_time_limit,
        attr::SHUTDOWN_TIME_LIMIT: c.shutdown_time_limit,
        attr::RAPID_FAILS_PER_MINUTE: c.rapid_fails_per_minute,
        attr::PROCESSES_PER_APPLICATION: c.processes_per_application,
        attr::FORWARD_WINDOWS_AUTH_TOKEN: c.forward_windows_auth_token,
        attr::DISABLE_STARTUP_ERROR_PAGE: c.disable_startup_error_page,
        attr::ENVIRONMENT_VARIABLES: environment_variables,
        attr::HANDLER_SETTINGS: pairs(&c.handler_settings),
        attr::REQUEST_LIMITS: request_limits(&c.request_limits),
    })
}

/// `requestLimits`: request filtering's limits from the same file, IIS's defaults where it
/// is silent (what `ancm run` applies without `--max-*` flags).
fn request_limits(l: &IisRequestLimits) -> Value {
    json!({
        attr::MAX_ALLOWED_CONTENT_LENGTH: l.max_allowed_content_length_or_default(),
        attr::MAX_URL: l.max_url_or_default(),
        attr::MAX_QUERY_STRING: l.max_query_string_or_default(),
    })
}

fn to_text(c: &AspNetCoreConfig, values: EnvValues) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let _ = writeln!(s, "{}: valid <aspNetCore> configuration", c.location);
    if let Value::Object(map) = to_json(c, values) {
        for (key, value) in map {
            match value {
                Value::Array(items) => {
                    let _ = writeln!(s, "  {key}: {}", items.len());
                    let names_only =
                        key == attr::ENVIRONMENT_VARIABLES && values == EnvValues::Hidden;
                    for item in items {
                        if let Some([n, v]) = item.as_array().map(Vec::as_slice) {
                            let n = n.as_str().unwrap_or_default();
                            let _ = if names_only {
                                writeln!(s, "    {n}")
                            } else {
                                writeln!(s, "    {n}={}", v.as_str().unwrap_or_default())
                            };
                        }
                    }
                }
                Value::String(v) => {
                    let _ = writeln!(s, "  {key}: {v}");
                }
                Value::Object(fields) => {
                    let _ = writeln!(s, "  {key}:");
                    for (name, value) in fields {
                        let _ = writeln!(s, "    {name}: {value}");
                    }
                }
                other => {
                    let _ = writeln!(s, "  {key}: {other}");
                }
            }
        }
    }
    if c.hosting_model == config::HostingModel::InProcess {
        let _ = writeln!(
            s,
            "note: hostingModel=\"inprocess\" runs out-of-process under ancm (no in-process hosting here)"
        );
    }
    s.trim_end().to_owned()
}
