//! What an application would start, in a form tools can show: the command line exactly as
//! the supervisor runs it, with the names (never the values) of the variables it sets.
use std::path::PathBuf;
use std::time::Duration;

use crate::dotnet::DotnetLaunch;
use crate::supervisor::LaunchSpec;
use crate::supervisor::StartError;
use crate::supervisor::command::{native_separators, normalise, windows_command_line};
use crate::supervisor::environment::{self, EnvInputs};
use crate::supervisor::ports::PortChoice;
use crate::supervisor::stdout::OutputMode;

/// How the child's port is chosen (protocol §2.4).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PortPlan {
    /// A random free port in 10000–48000 for each start attempt.
    Random,
    /// `ASPNETCORE_PORT` in web.config.
    Fixed(u16),
    /// `ASPNETCORE_PORT` in web.config is not a port in 1025–48000 (the start is refused).
    Invalid(String),
}

/// What [`Application`](super::Application) would start for its current configuration
/// (see [`Application::launch_plan`](super::Application::launch_plan)).
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use ancm_hosting::application::{Application, ApplicationOptions};
/// let app = Application::new(ApplicationOptions::new("/srv/site").watch(false))?;
/// if let Some(plan) = app.launch_plan() {
///     println!("{}", plan.command_line()); // e.g. /usr/share/dotnet/dotnet /srv/site/MyApp.dll
///     println!("sets {}", plan.environment_names.join(", "));
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct LaunchPlan {
    /// The program executed.
    pub program: PathBuf,
    /// Its arguments, as Unix passes them (split into words, `%VAR%` expanded).
    pub arguments: Vec<String>,
    /// The arguments as one string, as Windows passes them after the quoted program.
    pub raw_arguments: String,
    /// The working directory: the site folder.
    pub working_dir: PathBuf,
    /// The variables set on top of the inherited environment (web.config's and the
    /// module's, protocol §2.3): names only, since values can be secrets.
    pub environment_names: Vec<String>,
    /// How the port is chosen.
    pub port: PortPlan,
    /// `startupTimeLimit`.
    pub startup_time_limit: Duration,
    /// `shutdownTimeLimit`.
    pub shutdown_time_limit: Duration,
    /// `processesPerApplication`.
    pub processes: usize,
    /// With `stdoutLogEnabled` (and console redirection on): `stdoutLogFile` resolved
    /// against the site folder; each start appends `_<UTC time>_<pid>.log` to it.
    pub stdout_log: Option<PathBuf>,
    /// What the command runs, when it is a .NET application started through `dotnet`.
    pub dotnet: Option<DotnetLaunch>,
    /// Why every start would be refused before any process is created: an invalid
    /// `ASPNETCORE_PORT` or `ASPNETCORE_TOKEN`, a self-contained Windows publish.
    pub refusal: Option<StartError>,
}

impl LaunchPlan {
    pub(super) fn new(spec: &LaunchSpec) -> Self {
        let context = &spec.context;
        let environment_names = environment::child_env(
            &EnvInputs {
                config_vars: &spec.config_env,
                port: "",
                app_path: context.app_path.as_str(),
                token: "",
                http_auth: &context.http_auth,
                websockets: context.websockets,
                unix_socket: spec.unix_socket.then_some(""),
            },
            &environment::worker_env,
        )
        .into_iter()
        .map(|(name, _)| name.to_string_lossy().into_owned())
        .collect();
        let port = match &spec.port {
            Ok(PortChoice::Random) => PortPlan::Random,
            Ok(PortChoice::Fixed { port, .. }) => PortPlan::Fixed(*port),
            Err(invalid) => PortPlan::Invalid(invalid.raw.clone()),
        };
        let refusal = spec
            .refusal
            .clone()
            .or_else(|| {
                spec.port
                    .as_ref()
                    .err()
                    .map(|e| StartError::InvalidPort { raw: e.raw.clone() })
            })
            .or_else(|| {
                spec.token.as_ref().err().map(|e| StartError::InvalidToken {
                    reason: e.to_string(),
                })
            });
        let stdout_log = match &spec.output {
            OutputMode::File { base, .. } => {
                Some(normalise(&context.site_dir.join(native_separators(base))))
            }
            OutputMode::Null | OutputMode::Capture => None,
        };
        Self {
            program: spec.command.program.clone(),
            arguments: spec.command.args.clone(),
            raw_arguments: spec.command.raw_args.clone(),
            working_dir: context.site_dir.clone(),
            environment_names,
            port,
            startup_time_limit: spec.startup,
            shutdown_time_limit: spec.shutdown,
            processes: spec.processes,
            stdout_log,
            dotnet: spec.dotnet.clone(),
            refusal,
        }
    }

    /// The command line as this OS runs it, for people: on Windows `"program" arguments`
    /// as ANCM builds it; elsewhere the words quoted as a POSIX shell would need them.
    pub fn command_line(&self) -> String {
        if cfg!(windows) {
            return windows_command_line(&self.program, &self.raw_arguments);
        }
        std::iter::once(self.program.display().to_string())
            .chain(self.arguments.iter().cloned())
            .map(|word| shell_quote(&word))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// `word` as a POSIX shell reads it back: bare when it is only safe characters, else in
/// single quotes.
fn shell_quote(word: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "_-./:=@%+,".contains(c);
    if !word.is_empty() && word.chars().all(safe) {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_quoted_only_when_needed() {
        assert_eq!(shell_quote("/usr/bin/dotnet"), "/usr/bin/dotnet");
        assert_eq!(shell_quote("--urls=http://x:1"), "--urls=http://x:1");
        assert_eq!(shell_quote("my app.dll"), "'my app.dll'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
    }
}
