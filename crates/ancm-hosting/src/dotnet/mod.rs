//! .NET publish folders: what `ancm` runs for them, and whether the .NET host will find the
//! frameworks they need (protocol §2.2, §8.30–§8.32).
//!
//! ```
//! use ancm_hosting::dotnet::{
//!     RollForwardSettings, RuntimeConfig, check_frameworks, parse_list_runtimes,
//! };
//! let app = RuntimeConfig::parse(r#"{"runtimeOptions": {"tfm": "net9.0",
//!     "framework": {"name": "Microsoft.AspNetCore.App", "version": "9.0.0"}}}"#)?;
//! let installed = parse_list_runtimes(
//!     "Microsoft.AspNetCore.App 8.0.11 [/usr/share/dotnet/shared/Microsoft.AspNetCore.App]\n",
//! );
//! let check = &check_frameworks(&app, &RollForwardSettings::default(), &installed)?[0];
//! assert!(check.resolved.is_none()); // Minor does not roll from 9.0 down to 8.0
//! assert_eq!(check.nearest().0.map(ToString::to_string).as_deref(), Some("8.0.11"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! A folder published for IIS holds `MyApp.dll`, `MyApp.runtimeconfig.json`,
//! `MyApp.deps.json` and a web.config that starts either `.\MyApp.exe` (the Windows apphost
//! of a framework-dependent publish) or `dotnet .\MyApp.dll`. The supervisor runs both on any
//! OS: an apphost that cannot run here is replaced by `dotnet MyApp.dll`, and `dotnet` is
//! found where the .NET installers put it ([`DotnetSource`]). A self-contained Windows
//! publish carries a Windows runtime and cannot run elsewhere: it is refused with `500.32`.
//! [`DotnetLaunch`] is what the supervisor decided (see
//! [`LaunchPlan::dotnet`](crate::application::LaunchPlan::dotnet)); the rest of this module
//! reads runtimeconfig.json ([`RuntimeConfig`]), `dotnet --list-runtimes`
//! ([`list_runtimes`]) and applies the host's roll-forward rules ([`check_frameworks`]), for
//! `ancm doctor`.
mod frameworks;
mod runtime_config;
mod version;

use std::path::PathBuf;

pub use frameworks::{
    FrameworkCheck, InstalledFramework, InvalidSetting, ListRuntimesError, PolicySource,
    RollForwardSettings, check_frameworks, list_runtimes, parse_list_runtimes,
};
pub use runtime_config::{FrameworkReference, RuntimeConfig, RuntimeConfigError};
pub use version::{
    FrameworkVersion, InvalidRollForward, InvalidVersion, RollForward, select_version,
};

/// How the `dotnet` host was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DotnetSource {
    /// `processPath` names it (absolute, or a file in the site folder).
    AsWritten,
    /// An environment variable naming the install folder: `DOTNET_ROOT_<ARCH>`
    /// (`DOTNET_ROOT_X64`, `DOTNET_ROOT_ARM64`, …) or `DOTNET_ROOT`.
    Variable(&'static str),
    /// A folder on `PATH`.
    Path,
    /// A default install folder (`/usr/share/dotnet`, `/usr/lib/dotnet`, `~/.dotnet`,
    /// `/usr/local/share/dotnet`, `%ProgramFiles%\dotnet`).
    InstallFolder,
}

impl std::fmt::Display for DotnetSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DotnetSource::AsWritten => f.write_str("processPath"),
            DotnetSource::Variable(name) => f.write_str(name),
            DotnetSource::Path => f.write_str("PATH"),
            DotnetSource::InstallFolder => f.write_str("a default install folder"),
        }
    }
}

/// The `dotnet` host that runs an application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DotnetHost {
    /// The executable.
    pub path: PathBuf,
    /// How it was found.
    pub source: DotnetSource,
}

/// What the supervisor runs for a .NET application: the host, the application and the
/// settings from outside runtimeconfig.json that decide its frameworks.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DotnetLaunch {
    /// The `dotnet` host; `None` when it was found nowhere (the program is then `dotnet` as
    /// written, which fails to start).
    pub host: Option<DotnetHost>,
    /// Where the host was looked for, in order, for messages (`DOTNET_ROOT=/opt/dotnet`,
    /// `PATH`, `/usr/share/dotnet`, …).
    pub searched: Vec<String>,
    /// The application (`MyApp.dll`) as the command line names it, resolved against the
    /// site folder; `None` when the arguments name none.
    pub app: Option<PathBuf>,
    /// The runtimeconfig.json the host reads: `--runtimeconfig`, else beside the
    /// application.
    pub runtime_config: Option<PathBuf>,
    /// The Windows apphost (`MyApp.exe`) this launch stands in for, when `processPath`
    /// named one that cannot run here.
    pub apphost: Option<PathBuf>,
    /// `--roll-forward`, `--fx-version`, `DOTNET_ROLL_FORWARD` and
    /// `DOTNET_ROLL_FORWARD_TO_PRERELEASE` as the application's host gets them.
    pub roll_forward: RollForwardSettings,
}
