//! What is installed (`dotnet --list-runtimes`) and whether an application's framework
//! references bind to it.
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use super::runtime_config::{FrameworkReference, RuntimeConfig};
use super::version::{FrameworkVersion, RollForward, select_version};

/// One line of `dotnet --list-runtimes`:
/// `Microsoft.AspNetCore.App 8.0.11 [/usr/share/dotnet/shared/Microsoft.AspNetCore.App]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstalledFramework {
    /// The framework's name.
    pub name: String,
    /// Its version.
    pub version: FrameworkVersion,
    /// The folder holding its versions (`…/shared/<name>`).
    pub dir: PathBuf,
}

/// Parses the output of `dotnet --list-runtimes`; lines that are not `NAME VERSION [DIR]`
/// are skipped.
///
/// ```
/// use ancm_hosting::dotnet::parse_list_runtimes;
/// let out = "Microsoft.AspNetCore.App 8.0.11 [/usr/share/dotnet/shared/Microsoft.AspNetCore.App]\n\
///            Microsoft.NETCore.App 8.0.11 [/usr/share/dotnet/shared/Microsoft.NETCore.App]\n";
/// let installed = parse_list_runtimes(out);
/// assert_eq!(installed.len(), 2);
/// assert_eq!(installed[0].name, "Microsoft.AspNetCore.App");
/// assert_eq!(installed[1].dir.to_str(), Some("/usr/share/dotnet/shared/Microsoft.NETCore.App"));
/// ```
pub fn parse_list_runtimes(text: &str) -> Vec<InstalledFramework> {
    text.lines()
        .filter_map(|line| {
            let line = line.trim();
            let (head, dir) = line.split_once(" [")?;
            let dir = dir.strip_suffix(']')?;
            let (name, version) = head.trim().split_once(' ')?;
            Some(InstalledFramework {
                name: name.to_owned(),
                version: version.trim().parse().ok()?,
                dir: PathBuf::from(dir),
            })
        })
        .collect()
}

/// Why `dotnet --list-runtimes` gave no answer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ListRuntimesError {
    /// It could not be started.
    #[error("could not run '{} --list-runtimes': {source}", dotnet.display())]
    Spawn {
        /// The dotnet host.
        dotnet: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// It did not finish in time (it was killed).
    #[error("'{} --list-runtimes' did not finish within {} s", dotnet.display(), limit.as_secs())]
    Timeout {
        /// The dotnet host.
        dotnet: PathBuf,
        /// The limit.
        limit: Duration,
    },
    /// It failed.
    #[error("'{} --list-runtimes' failed with {status}: {stderr}", dotnet.display())]
    Failed {
        /// The dotnet host.
        dotnet: PathBuf,
        /// How it exited.
        status: String,
        /// The start of its error output.
        stderr: String,
    },
}

/// Runs `<dotnet> --list-runtimes`, killing it after `limit`.
pub async fn list_runtimes(
    dotnet: &Path,
    limit: Duration,
) -> Result<Vec<InstalledFramework>, ListRuntimesError> {
    let child = tokio::process::Command::new(dotnet)
        .arg("--list-runtimes")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|source| ListRuntimesError::Spawn {
            dotnet: dotnet.to_path_buf(),
            source,
        })?;
    let output = match tokio::time::timeout(limit, child.wait_with_output()).await {
        Ok(Ok(output)) => output,
        Ok(Err(source)) => {
            return Err(ListRuntimesError::Spawn {
                dotnet: dotnet.to_path_buf(),
                source,
            });
        }
        Err(_) => {
            return Err(ListRuntimesError::Timeout {
                dotnet: dotnet.to_path_buf(),
                limit,
            });
        }
    };
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(ListRuntimesError::Failed {
            dotnet: dotnet.to_path_buf(),
            status: output.status.to_string(),
            stderr: stderr.trim().chars().take(500).collect(),
        });
    }
    Ok(parse_list_runtimes(&String::from_utf8_lossy(
        &output.stdout,
    )))
}

/// The roll-forward settings that apply to every reference, from outside runtimeconfig.json,
/// as the application's `dotnet` process gets them (text as written).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RollForwardSettings {
    /// `--roll-forward` on dotnet's command line (before the application): wins over all.
    pub command_line: Option<String>,
    /// `DOTNET_ROLL_FORWARD`: wins over runtimeconfig.json.
    pub environment: Option<String>,
    /// `--fx-version`: replaces the first reference's version, with `Disable`.
    pub fx_version: Option<String>,
    /// `DOTNET_ROLL_FORWARD_TO_PRERELEASE=1`: pre-releases count like releases.
    pub to_prerelease: bool,
}

/// A roll-forward setting the host would refuse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{setting}: {message}")]
pub struct InvalidSetting {
    /// `--roll-forward`, `DOTNET_ROLL_FORWARD` or `--fx-version`.
    pub setting: &'static str,
    /// What is wrong with it.
    pub message: String,
}

/// Where a reference's roll-forward policy came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PolicySource {
    /// `--roll-forward` on dotnet's command line.
    CommandLine,
    /// `--fx-version` on dotnet's command line (`Disable`).
    FxVersion,
    /// The `DOTNET_ROLL_FORWARD` environment variable.
    Environment,
    /// The reference's own `rollForward`.
    Reference,
    /// `runtimeOptions.rollForward`.
    RuntimeConfig,
    /// Nothing set: `Minor`.
    Default,
}

impl std::fmt::Display for PolicySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PolicySource::CommandLine => "--roll-forward",
            PolicySource::FxVersion => "--fx-version",
            PolicySource::Environment => "DOTNET_ROLL_FORWARD",
            PolicySource::Reference => "the framework reference",
            PolicySource::RuntimeConfig => "runtimeOptions.rollForward",
            PolicySource::Default => "the default",
        })
    }
}

/// One framework reference held against what is installed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FrameworkCheck {
    /// The reference (with `--fx-version` applied).
    pub reference: FrameworkReference,
    /// The framework whose own runtimeconfig.json made the reference (`Microsoft.AspNetCore.App
    /// 8.0.11`), `None` for the application's.
    pub required_by: Option<String>,
    /// The policy that applies.
    pub policy: RollForward,
    /// Where it came from.
    pub policy_source: PolicySource,
    /// The installed framework it binds to, `None` when none fits.
    pub resolved: Option<InstalledFramework>,
    /// The installed versions of the same framework, in ascending order.
    pub installed: Vec<FrameworkVersion>,
}

impl FrameworkCheck {
    /// The installed versions closest to the one asked for: the highest below it and the
    /// lowest at or above it.
    pub fn nearest(&self) -> (Option<&FrameworkVersion>, Option<&FrameworkVersion>) {
        let wanted = &self.reference.version;
        (
            self.installed.iter().rev().find(|v| *v < wanted),
            self.installed.iter().find(|v| *v >= wanted),
        )
    }
}

/// How deep framework references are followed (application → ASP.NET Core → .NET).
const MAX_DEPTH: usize = 4;

/// Checks each framework reference of an application's runtimeconfig.json against
/// `installed`, with the host's precedence: `--roll-forward`, then `DOTNET_ROLL_FORWARD`,
/// then the reference's `rollForward`, then `runtimeOptions.rollForward`, then `Minor`. A
/// resolved framework's own runtimeconfig.json (`<dir>/<version>/<name>.runtimeconfig.json`,
/// where it exists) adds its references, so a missing `Microsoft.NETCore.App` under an
/// installed `Microsoft.AspNetCore.App` is found too. A framework named twice is checked
/// once, at the highest version asked for.
///
/// ```
/// use ancm_hosting::dotnet::{RollForwardSettings, RuntimeConfig, check_frameworks, parse_list_runtimes};
/// let config = RuntimeConfig::parse(r#"{"runtimeOptions":{"framework":
///     {"name":"Microsoft.AspNetCore.App","version":"8.0.0"}}}"#)?;
/// let installed = parse_list_runtimes("Microsoft.AspNetCore.App 8.0.11 [/nowhere]\n");
/// let checks = check_frameworks(&config, &RollForwardSettings::default(), &installed)?;
/// assert_eq!(checks[0].resolved.as_ref().map(|f| f.version.to_string()).as_deref(), Some("8.0.11"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn check_frameworks(
    config: &RuntimeConfig,
    settings: &RollForwardSettings,
    installed: &[InstalledFramework],
) -> Result<Vec<FrameworkCheck>, InvalidSetting> {
    let parse_policy = |setting: &'static str, text: &Option<String>| {
        text.as_deref()
            .map(|t| {
                t.parse::<RollForward>().map_err(|e| InvalidSetting {
                    setting,
                    message: e.to_string(),
                })
            })
            .transpose()
    };
    let command_line = parse_policy("--roll-forward", &settings.command_line)?;
    let environment = parse_policy("DOTNET_ROLL_FORWARD", &settings.environment)?;
    let fx_version = settings
        .fx_version
        .as_deref()
        .map(|t| {
            t.parse::<FrameworkVersion>().map_err(|e| InvalidSetting {
                setting: "--fx-version",
                message: e.to_string(),
            })
        })
        .transpose()?;
    let outside = command_line
        .map(|p| (p, PolicySource::CommandLine))
        .or(environment.map(|p| (p, PolicySource::Environment)));

    let mut checks: Vec<FrameworkCheck> = Vec::new();
    let mut pending: Vec<(RuntimeConfig, Option<String>, usize)> = vec![(config.clone(), None, 0)];
    while let Some((config, required_by, depth)) = pending.pop() {
        for (index, reference) in config.frameworks.iter().enumerate() {
            let mut reference = reference.clone();
            let (policy, policy_source) = match (&fx_version, required_by.is_none() && index == 0) {
                (Some(version), true) => {
                    reference.version = version.clone();
                    (RollForward::Disable, PolicySource::FxVersion)
                }
                _ => outside
                    .or(reference.roll_forward.map(|p| (p, PolicySource::Reference)))
                    .or(config
                        .roll_forward
                        .map(|p| (p, PolicySource::RuntimeConfig)))
                    .unwrap_or((RollForward::Minor, PolicySource::Default)),
            };
            if let Some(seen) = checks
                .iter()
                .position(|c| c.reference.name == reference.name)
            {
                if checks[seen].reference.version >= reference.version {
                    continue;
                }
                checks.remove(seen);
            }
            let mut versions: Vec<FrameworkVersion> = installed
                .iter()
                .filter(|f| f.name == reference.name)
                .map(|f| f.version.clone())
                .collect();
            versions.sort();
            let resolved = select_version(
                &reference.version,
                policy,
                settings.to_prerelease,
                &versions,
            )
            .and_then(|v| {
                installed
                    .iter()
                    .find(|f| f.name == reference.name && f.version == v)
                    .cloned()
            });
            if let Some(found) = &resolved
                && depth + 1 < MAX_DEPTH
            {
                let own = found
                    .dir
                    .join(found.version.to_string())
                    .join(format!("{}.runtimeconfig.json", found.name));
                if let Ok(own_config) = RuntimeConfig::read(&own) {
                    pending.push((
                        own_config,
                        Some(format!("{} {}", found.name, found.version)),
                        depth + 1,
                    ));
                }
            }
            checks.push(FrameworkCheck {
                reference,
                required_by: required_by.clone(),
                policy,
                policy_source,
                resolved,
                installed: versions,
            });
        }
    }
    Ok(checks)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIST: &str = "\
Microsoft.AspNetCore.App 6.0.36 [/usr/share/dotnet/shared/Microsoft.AspNetCore.App]
Microsoft.AspNetCore.App 8.0.11 [/usr/share/dotnet/shared/Microsoft.AspNetCore.App]
Microsoft.NETCore.App 6.0.36 [/usr/share/dotnet/shared/Microsoft.NETCore.App]
Microsoft.NETCore.App 8.0.11 [/usr/share/dotnet/shared/Microsoft.NETCore.App]
Microsoft.NETCore.App 9.0.0-rc.2.24473.5 [/usr/share/dotnet/shared/Microsoft.NETCore.App]
";

    fn app(name: &str, version: &str, extra: &str) -> RuntimeConfig {
        RuntimeConfig::parse(&format!(
            r#"{{"runtimeOptions":{{{extra}"framework":{{"name":"{name}","version":"{version}"}}}}}}"#
        ))
        .expect("parse")
    }

    #[test]
    fn list_runtimes_output() {
        let installed = parse_list_runtimes(&format!(
            "{LIST}\ngarbage\nMicrosoft.X notaversion [/x]\r\nMicrosoft.WindowsDesktop.App 8.0.11 [C:\\Program Files\\dotnet\\shared\\Microsoft.WindowsDesktop.App]\r\n"
        ));
        assert_eq!(installed.len(), 6);
        assert_eq!(installed[4].version.to_string(), "9.0.0-rc.2.24473.5");
        assert_eq!(
            installed[5].dir,
            PathBuf::from(r"C:\Program Files\dotnet\shared\Microsoft.WindowsDesktop.App")
        );
    }

    #[test]
    fn precedence_and_nearest_versions() {
        let installed = parse_list_runtimes(LIST);
        let settings = RollForwardSettings::default();
        let check = |config: &RuntimeConfig, settings: &RollForwardSettings| {
            check_frameworks(config, settings, &installed)
                .expect("valid settings")
                .remove(0)
        };
        let ok = check(&app("Microsoft.AspNetCore.App", "8.0.0", ""), &settings);
        assert_eq!(ok.policy_source, PolicySource::Default);
        assert_eq!(
            ok.resolved.map(|f| f.version.to_string()).as_deref(),
            Some("8.0.11")
        );

        let missing = check(&app("Microsoft.AspNetCore.App", "7.0.0", ""), &settings);
        assert!(missing.resolved.is_none());
        let (below, above) = missing.nearest();
        assert_eq!(below.map(ToString::to_string).as_deref(), Some("6.0.36"));
        assert_eq!(above.map(ToString::to_string).as_deref(), Some("8.0.11"));

        // runtimeconfig, then the reference, then the environment, then the command line.
        let config = app(
            "Microsoft.AspNetCore.App",
            "7.0.0",
            r#""rollForward":"Major","#,
        );
        assert_eq!(
            check(&config, &settings).policy_source,
            PolicySource::RuntimeConfig
        );
        assert!(check(&config, &settings).resolved.is_some());
        let env = RollForwardSettings {
            environment: Some("Disable".into()),
            ..RollForwardSettings::default()
        };
        let c = check(&config, &env);
        assert_eq!(
            (c.policy, c.policy_source),
            (RollForward::Disable, PolicySource::Environment)
        );
        assert!(c.resolved.is_none());
        let cli = RollForwardSettings {
            command_line: Some("latestmajor".into()),
            ..env.clone()
        };
        let c = check(&config, &cli);
        assert_eq!(c.policy_source, PolicySource::CommandLine);
        assert_eq!(
            c.resolved.map(|f| f.version.to_string()).as_deref(),
            Some("8.0.11")
        );

        let fx = RollForwardSettings {
            fx_version: Some("6.0.36".into()),
            ..RollForwardSettings::default()
        };
        let c = check(&config, &fx);
        assert_eq!(
            (c.policy, c.policy_source),
            (RollForward::Disable, PolicySource::FxVersion)
        );
        assert!(c.resolved.is_some());

        let bad = RollForwardSettings {
            environment: Some("Sideways".into()),
            ..RollForwardSettings::default()
        };
        let error = check_frameworks(&config, &bad, &installed).expect_err("invalid");
        assert_eq!(error.setting, "DOTNET_ROLL_FORWARD");
    }

    #[test]
    fn a_frameworks_own_references_are_followed() {
        let root = tempfile::tempdir().expect("tempdir");
        let shared = root.path().join("shared");
        let aspnet = shared.join("Microsoft.AspNetCore.App");
        std::fs::create_dir_all(aspnet.join("8.0.11")).expect("mkdir");
        std::fs::write(
            aspnet.join("8.0.11/Microsoft.AspNetCore.App.runtimeconfig.json"),
            r#"{"runtimeOptions":{"tfm":"net8.0","framework":{"name":"Microsoft.NETCore.App","version":"8.0.11"},"rollForward":"LatestPatch"}}"#,
        )
        .expect("write");
        let installed = parse_list_runtimes(&format!(
            "Microsoft.AspNetCore.App 8.0.11 [{}]\nMicrosoft.NETCore.App 8.0.4 [{}]\n",
            aspnet.display(),
            shared.join("Microsoft.NETCore.App").display()
        ));
        let checks = check_frameworks(
            &app("Microsoft.AspNetCore.App", "8.0.0", ""),
            &RollForwardSettings::default(),
            &installed,
        )
        .expect("valid");
        assert_eq!(checks.len(), 2);
        assert!(checks[0].resolved.is_some());
        assert_eq!(checks[1].reference.name, "Microsoft.NETCore.App");
        assert_eq!(
            checks[1].required_by.as_deref(),
            Some("Microsoft.AspNetCore.App 8.0.11")
        );
        assert!(checks[1].resolved.is_none(), "8.0.4 is lower than 8.0.11");
    }

    #[tokio::test]
    async fn a_missing_host_is_a_spawn_error() {
        let error = list_runtimes(
            Path::new("/nonexistent/dotnet-for-ancm-tests"),
            Duration::from_secs(5),
        )
        .await
        .expect_err("no such program");
        assert!(matches!(error, ListRuntimesError::Spawn { .. }), "{error}");
    }
}
