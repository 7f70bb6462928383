//! What a configuration generation says about starting children: the web.config values with
//! `%VAR%` expanded and the command line resolved, .NET publish folders included
//! ([`LaunchSpec`]), and the application's own facts ([`LaunchContext`]).
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ancm_protocol::{AppPath, InvalidToken, PairingToken};

use super::StartError;
use super::command::{self, CommandLine};
use super::environment;
use super::health::HealthCheck;
use super::ports::{self, InvalidPort, PortChoice};
use super::publish;
use super::recycle_policy::RecyclePolicy;
use super::stdout::{OutputMode, StdoutLogRetention};
use crate::config::AspNetCoreConfig;
use crate::dotnet::DotnetLaunch;
use crate::status::BackendStats;

/// Things that do not come from web.config: the one place an application keeps its site
/// folder and app path.
#[derive(Debug, Clone)]
pub(crate) struct LaunchContext {
    /// The site folder, absolute: the child's working directory, the base of relative paths.
    pub(crate) site_dir: PathBuf,
    /// `ASPNETCORE_APPL_PATH`.
    pub(crate) app_path: AppPath,
    /// `ASPNETCORE_IIS_HTTPAUTH`.
    pub(crate) http_auth: String,
    /// `ASPNETCORE_IIS_WEBSOCKETS_SUPPORTED`.
    pub(crate) websockets: bool,
    /// The application's counters, kept across generations.
    pub(crate) stats: Arc<BackendStats>,
    /// Retention of the stdout log files where web.config's handler settings are silent.
    pub(crate) stdout_retention: StdoutLogRetention,
    /// Health checks where web.config's handler settings are silent.
    pub(crate) health: HealthCheck,
    /// Recycling policies where web.config's handler settings are silent.
    pub(crate) recycle: RecyclePolicy,
    /// Whether the backends start with the application, where web.config's handler
    /// setting `preload` is silent.
    pub(crate) preload: bool,
    /// Health, recycling and preload handler settings that win over web.config's (`ancm
    /// run`'s flags).
    pub(crate) setting_overrides: Vec<(String, String)>,
}

/// The handler setting that starts an application's backends with the gateway (ancm-rs
/// only, protocol §8.36).
pub const PRELOAD_SETTING: &str = "preload";

/// What a configuration says about starting children, with `%VAR%` expanded.
pub(crate) struct LaunchSpec {
    /// The application's facts, shared with the application and every generation.
    pub(crate) context: Arc<LaunchContext>,
    pub(crate) command: CommandLine,
    /// What the command runs, when it is a .NET application started through `dotnet`.
    pub(crate) dotnet: Option<DotnetLaunch>,
    /// Why no child can be started with this configuration at all (decided once).
    pub(crate) refusal: Option<StartError>,
    pub(crate) config_env: Vec<(String, String)>,
    pub(crate) port: Result<PortChoice, InvalidPort>,
    pub(crate) token: Result<Option<PairingToken>, InvalidToken>,
    pub(crate) startup: Duration,
    pub(crate) shutdown: Duration,
    pub(crate) rapid_fails: u32,
    pub(crate) request_timeout: Duration,
    pub(crate) processes: usize,
    pub(crate) output: OutputMode,
    /// Health checks, web.config's handler settings applied.
    pub(crate) health: HealthCheck,
    /// Recycling policies, web.config's handler settings applied.
    pub(crate) recycle: RecyclePolicy,
    /// Whether the backends start with the application, not on the first request.
    pub(crate) preload: bool,
    /// Reach the children over a Unix-domain socket instead of TCP (§8.42).
    pub(crate) unix_socket: bool,
}

impl std::fmt::Debug for LaunchSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Variable values may hold secrets (a fixed ASPNETCORE_TOKEN): names only.
        let names: Vec<&str> = self.config_env.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("LaunchSpec")
            .field("site_dir", &self.context.site_dir)
            .field("app_path", &self.context.app_path)
            .field("command", &self.command)
            .field("dotnet", &self.dotnet)
            .field("refusal", &self.refusal)
            .field("config_env_names", &names)
            .field("port", &self.port)
            .field("startup", &self.startup)
            .field("shutdown", &self.shutdown)
            .field("rapid_fails", &self.rapid_fails)
            .field("processes", &self.processes)
            .field("output", &self.output)
            .field("health", &self.health)
            .field("recycle", &self.recycle)
            .field("preload", &self.preload)
            .field("unix_socket", &self.unix_socket)
            .finish_non_exhaustive()
    }
}

impl LaunchSpec {
    /// Derives the launch settings; `lookup` reads the gateway's environment.
    pub(crate) fn new(
        config: &AspNetCoreConfig,
        context: &Arc<LaunchContext>,
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Self {
        let expanded = config.expanded(lookup);
        // `arguments` as written: split into words before expansion (protocol §2.2).
        let command = command::command_line(
            &expanded.process_path,
            &config.arguments,
            &context.site_dir,
            lookup,
        );
        // DOTNET_ROOT, PATH and the roll-forward settings as the child will see them.
        let child_var =
            |name: &str| environment::child_var(name, &expanded.environment_variables, lookup);
        let resolved = publish::resolve(
            command,
            &context.site_dir,
            &child_var,
            &publish::install_folders(&child_var),
        );
        log_resolution(&resolved, &context.site_dir);
        let var = |name: &str| {
            expanded
                .environment_variables
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone())
        };
        let port = ports::port_choice(var(ancm_protocol::env::PORT).as_deref());
        let token = match var(ancm_protocol::env::TOKEN).filter(|t| !t.is_empty()) {
            Some(t) => PairingToken::new(&t).map(Some),
            None => Ok(None),
        };
        let redirect = config
            .handler_setting("enableOutOfProcessConsoleRedirection")
            .is_none_or(|v| !v.trim().eq_ignore_ascii_case("false"));
        let output = if !redirect {
            OutputMode::Null
        } else if config.stdout_log_enabled {
            OutputMode::File {
                base: expanded.stdout_log_file.clone(),
                retention: context
                    .stdout_retention
                    .with_handler_settings(&|name| config.handler_setting(name).map(str::to_owned)),
            }
        } else {
            OutputMode::Capture
        };
        let setting = |name: &str| {
            context
                .setting_overrides
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
                .or_else(|| config.handler_setting(name))
                .map(str::to_owned)
        };
        let preload = match setting(PRELOAD_SETTING).as_deref().map(str::trim) {
            None => context.preload,
            Some(v) if v.eq_ignore_ascii_case("true") => true,
            Some(v) if v.eq_ignore_ascii_case("false") => false,
            Some(v) => {
                tracing::warn!(setting = PRELOAD_SETTING, value = %v, "ignoring a handler setting that is not true or false");
                context.preload
            }
        };
        Self {
            health: context.health.clone().with_handler_settings(&setting),
            recycle: context.recycle.clone().with_handler_settings(&setting),
            preload,
            context: context.clone(),
            command: resolved.command,
            dotnet: resolved.dotnet,
            refusal: resolved.refusal,
            config_env: expanded.environment_variables,
            port,
            token,
            startup: Duration::from_secs(u64::from(config.startup_time_limit.min(3600))),
            shutdown: Duration::from_secs(u64::from(config.shutdown_time_limit.min(600))),
            rapid_fails: config.rapid_fails_per_minute.min(100),
            request_timeout: config.request_timeout,
            processes: usize::try_from(config.processes_per_application.clamp(1, 100)).unwrap_or(1),
            output,
            unix_socket: unix_transport(
                config.handler_setting(TRANSPORT_SETTING),
                &context.site_dir,
            ),
        }
    }

    /// The program, for logs and error pages.
    pub(crate) fn program(&self) -> String {
        self.command.program.display().to_string()
    }

    /// Whether web.config fixes `ASPNETCORE_PORT`, so two generations cannot run side by side.
    pub(crate) fn has_fixed_port(&self) -> bool {
        matches!(self.port, Ok(PortChoice::Fixed { .. }))
    }
}

/// The handler setting that picks how the front reaches the children (an ancm-rs name, which
/// ANCM ignores, §8.42): `tcp` (the default) or `unix`.
pub(crate) const TRANSPORT_SETTING: &str = "backendTransport";

/// Whether [`TRANSPORT_SETTING`]'s value asks for a Unix-domain socket. Any value but `tcp`
/// or `unix` (any case), and `unix` off Unix, keep TCP with a warning.
fn unix_transport(value: Option<&str>, site_dir: &std::path::Path) -> bool {
    let Some(value) = value.map(str::trim) else {
        return false;
    };
    let site = site_dir.display();
    if value.eq_ignore_ascii_case("tcp") {
        false
    } else if value.eq_ignore_ascii_case("unix") {
        if !cfg!(unix) {
            tracing::warn!(%site, "handlerSetting {TRANSPORT_SETTING}=unix needs Unix-domain sockets, which the gateway supports on Unix only; using TCP");
        }
        cfg!(unix)
    } else {
        tracing::warn!(%site, value, "handlerSetting {TRANSPORT_SETTING} is neither tcp nor unix; using TCP");
        false
    }
}

/// What publish-folder resolution decided, once per configuration: the apphost replaced
/// (info), a `dotnet` found nowhere (warning), a self-contained publish refused (error).
fn log_resolution(resolved: &publish::Resolved, site_dir: &std::path::Path) {
    let site = site_dir.display();
    if let Some(error) = &resolved.refusal {
        tracing::error!(%site, "{error}");
        return;
    }
    let Some(dotnet) = &resolved.dotnet else {
        return;
    };
    if let Some(apphost) = &dotnet.apphost {
        let app = dotnet.app.as_deref().unwrap_or(apphost.as_path());
        tracing::info!(
            %site,
            apphost = %apphost.display(),
            program = %resolved.command.program.display(),
            app = %app.display(),
            "processPath names a Windows apphost that cannot run here; running `dotnet {}` from the same publish folder instead",
            app.file_name().unwrap_or_default().to_string_lossy()
        );
    }
    if dotnet.host.is_none() {
        tracing::warn!(
            %site,
            searched = %dotnet.searched.join(", "),
            "dotnet was not found; install the .NET runtime, or set DOTNET_ROOT to the folder that holds it"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{AspNetCoreConfig, Location};

    #[test]
    fn a_variable_in_arguments_is_one_argument_whatever_its_value() {
        let site = tempfile::tempdir().expect("tempdir");
        let context = Arc::new(LaunchContext {
            site_dir: site.path().to_path_buf(),
            app_path: AppPath::root(),
            http_auth: String::new(),
            websockets: true,
            stats: Arc::default(),
            stdout_retention: StdoutLogRetention::default(),
            health: HealthCheck::default(),
            recycle: RecyclePolicy::default(),
            preload: false,
            setting_overrides: Vec::new(),
        });
        let mut config = AspNetCoreConfig::new(
            "dotnet",
            Location {
                file: site.path().join("web.config"),
                line: 1,
                column: 1,
            },
        );
        config.arguments = r#"app.dll %EXTRA% "%HOME%/my logs" pre%EXTRA%post"#.to_owned();
        let lookup = |n: &str| match n {
            "EXTRA" => Some("two words --injected 'quoted'".to_owned()),
            "HOME" => Some("/home/u".to_owned()),
            _ => None,
        };
        let spec = LaunchSpec::new(&config, &context, &lookup);
        assert_eq!(
            spec.command.args,
            [
                "app.dll",
                "two words --injected 'quoted'",
                "/home/u/my logs",
                "pretwo words --injected 'quoted'post",
            ]
        );
        // Windows: one string, expanded as a whole (the child splits it, as under ANCM).
        assert_eq!(
            spec.command.raw_args,
            r#"app.dll two words --injected 'quoted' "/home/u/my logs" pretwo words --injected 'quoted'post"#
        );
    }
}
