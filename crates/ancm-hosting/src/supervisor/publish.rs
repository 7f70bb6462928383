//! .NET publish folders (protocol §2.2, §8.30–§8.32): a Windows apphost that cannot run here
//! becomes `dotnet MyApp.dll`, `dotnet` is found where the .NET installers put it, and a
//! self-contained Windows publish is refused. Runs once per configuration, on the command
//! line [`command_line`](super::command::command_line) built.
use std::path::{Path, PathBuf};

use crate::dotnet::{DotnetHost, DotnetLaunch, DotnetSource, RollForwardSettings, RuntimeConfig};

use super::StartError;
use super::command::{CommandLine, native_separators, normalise};

/// The command line once publish folders are taken into account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Resolved {
    /// What to execute.
    pub(crate) command: CommandLine,
    /// What it runs, when it is a .NET application started through `dotnet`.
    pub(crate) dotnet: Option<DotnetLaunch>,
    /// Why nothing can be started (a self-contained Windows publish), decided here once.
    pub(crate) refusal: Option<StartError>,
}

/// The name of the `dotnet` host's executable on this OS.
const DOTNET_EXE: &str = if cfg!(windows) {
    "dotnet.exe"
} else {
    "dotnet"
};

/// `DOTNET_ROOT_<ARCH>` for this process's architecture, read before `DOTNET_ROOT` as the
/// .NET host does.
const ARCH_ROOT: Option<&str> = if cfg!(target_arch = "x86_64") {
    Some("DOTNET_ROOT_X64")
} else if cfg!(target_arch = "aarch64") {
    Some("DOTNET_ROOT_ARM64")
} else if cfg!(target_arch = "x86") {
    Some("DOTNET_ROOT_X86")
} else if cfg!(target_arch = "arm") {
    Some("DOTNET_ROOT_ARM")
} else {
    None
};

/// The folders the .NET installers and packages use on this OS, in the order they are
/// tried: `/usr/share/dotnet`, `/usr/lib/dotnet`, `~/.dotnet` on Linux (and other Unix);
/// `/usr/local/share/dotnet`, `~/.dotnet` on macOS; `%ProgramFiles%\dotnet` on Windows.
/// `env` is the child's environment (for `HOME`, `ProgramFiles`).
pub(crate) fn install_folders(env: &dyn Fn(&str) -> Option<String>) -> Vec<PathBuf> {
    let home_dotnet = || {
        env("HOME")
            .filter(|h| !h.is_empty())
            .map(|h| Path::new(&h).join(".dotnet"))
    };
    if cfg!(windows) {
        env("ProgramFiles")
            .filter(|p| !p.is_empty())
            .map(|p| Path::new(&p).join("dotnet"))
            .into_iter()
            .collect()
    } else if cfg!(target_os = "macos") {
        std::iter::once(PathBuf::from("/usr/local/share/dotnet"))
            .chain(home_dotnet())
            .collect()
    } else {
        [
            PathBuf::from("/usr/share/dotnet"),
            PathBuf::from("/usr/lib/dotnet"),
        ]
        .into_iter()
        .chain(home_dotnet())
        .collect()
    }
}

/// Finds the `dotnet` host: `DOTNET_ROOT_<ARCH>`, then `DOTNET_ROOT` (each the folder holding
/// it), then `PATH`, then `install_folders`. Returns it and what was searched, in order.
pub(crate) fn locate_dotnet(
    env: &dyn Fn(&str) -> Option<String>,
    install_folders: &[PathBuf],
) -> (Option<DotnetHost>, Vec<String>) {
    let mut searched = Vec::new();
    for var in ARCH_ROOT.into_iter().chain(Some("DOTNET_ROOT")) {
        match env(var).filter(|v| !v.is_empty()) {
            Some(root) => {
                let candidate = Path::new(&root).join(DOTNET_EXE);
                searched.push(format!("{var}={root}"));
                if is_executable(&candidate) {
                    return (
                        Some(DotnetHost {
                            path: normalise(&candidate),
                            source: DotnetSource::Variable(var),
                        }),
                        searched,
                    );
                }
            }
            None => searched.push(format!("{var} (not set)")),
        }
    }
    searched.push("PATH".to_owned());
    if let Some(path) = env("PATH") {
        for dir in std::env::split_paths(&path).filter(|d| !d.as_os_str().is_empty()) {
            let candidate = dir.join(DOTNET_EXE);
            if is_executable(&candidate) {
                return (
                    Some(DotnetHost {
                        path: candidate,
                        source: DotnetSource::Path,
                    }),
                    searched,
                );
            }
        }
    }
    for dir in install_folders {
        searched.push(dir.display().to_string());
        let candidate = dir.join(DOTNET_EXE);
        if is_executable(&candidate) {
            return (
                Some(DotnetHost {
                    path: candidate,
                    source: DotnetSource::InstallFolder,
                }),
                searched,
            );
        }
    }
    (None, searched)
}

/// A file this OS will execute: on Unix one with an execute bit.
fn is_executable(path: &Path) -> bool {
    let Ok(meta) = std::fs::metadata(path) else {
        return false;
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        meta.is_file() && meta.permissions().mode() & 0o111 != 0
    }
    #[cfg(not(unix))]
    {
        meta.is_file()
    }
}

/// Why an `.exe` cannot be run here, or `None` when it can. On Unix a Windows executable
/// (a PE file, starting with `MZ`) never runs, whatever its mode bits.
fn cannot_run(path: &Path) -> Option<&'static str> {
    if !path.is_file() {
        return Some("does not exist");
    }
    if cfg!(unix) {
        use std::io::Read as _;
        let mut magic = [0u8; 2];
        let read = std::fs::File::open(path).and_then(|mut f| f.read_exact(&mut magic));
        if read.is_ok() && &magic == b"MZ" {
            return Some("is a Windows executable");
        }
    }
    if !is_executable(path) {
        return Some("is not executable");
    }
    None
}

/// The runtime identifier of this system, for `dotnet publish -r` (`linux-x64`).
pub(crate) fn runtime_identifier() -> String {
    let os = match std::env::consts::OS {
        "macos" => "osx",
        "windows" => "win",
        "linux" if cfg!(target_env = "musl") => "linux-musl",
        other => other,
    };
    let arch = match std::env::consts::ARCH {
        "x86_64" => "x64",
        "aarch64" => "arm64",
        other => other,
    };
    format!("{os}-{arch}")
}

/// `path` against the site folder when relative, without `.` components.
fn in_site(path: &Path, site_dir: &Path) -> PathBuf {
    normalise(&if path.is_absolute() {
        path.to_path_buf()
    } else {
        site_dir.join(path)
    })
}

/// Whether a file name is the `dotnet` host's (`dotnet`, `dotnet.exe`, any case).
fn is_dotnet(name: &str) -> bool {
    name.eq_ignore_ascii_case("dotnet") || name.eq_ignore_ascii_case("dotnet.exe")
}

/// Takes publish folders into account (protocol §2.2): see the module docs. `env` is the
/// child's environment (web.config's variables over the gateway's), for `DOTNET_ROOT`,
/// `PATH`, `HOME` and the roll-forward variables.
pub(crate) fn resolve(
    command: CommandLine,
    site_dir: &Path,
    env: &dyn Fn(&str) -> Option<String>,
    install_folders: &[PathBuf],
) -> Resolved {
    let name = command
        .program
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .to_owned();
    let unchanged = |command| Resolved {
        command,
        dotnet: None,
        refusal: None,
    };
    if is_dotnet(&name) {
        return run_with_dotnet(command, site_dir, env, install_folders);
    }
    let is_exe = Path::new(&name)
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("exe"));
    if !is_exe {
        return unchanged(command);
    }
    let apphost = in_site(&command.program, site_dir);
    let Some(why) = cannot_run(&apphost) else {
        return unchanged(command);
    };
    let Some(stem) = apphost.file_stem().and_then(|s| s.to_str()) else {
        return unchanged(command);
    };
    let folder = apphost.parent().unwrap_or(site_dir);
    let app = folder.join(format!("{stem}.dll"));
    let runtime_config = folder.join(format!("{stem}.runtimeconfig.json"));
    if !app.is_file() || !runtime_config.is_file() {
        return unchanged(command);
    }
    // An unreadable runtimeconfig.json is the host's to report, in the child's output.
    if RuntimeConfig::read(&runtime_config).is_ok_and(|c| c.is_self_contained()) {
        let refusal = StartError::SelfContainedPublish {
            apphost: apphost.display().to_string(),
            why,
            runtime_config: runtime_config.display().to_string(),
        };
        return Resolved {
            command,
            dotnet: None,
            refusal: Some(refusal),
        };
    }
    let (host, searched) = locate_dotnet(env, install_folders);
    let quoted = format!("\"{}\"", app.display());
    let raw_args = if command.raw_args.is_empty() {
        quoted
    } else {
        format!("{quoted} {}", command.raw_args)
    };
    let args = std::iter::once(app.display().to_string())
        .chain(command.args)
        .collect();
    Resolved {
        command: CommandLine {
            program: host
                .as_ref()
                .map_or_else(|| PathBuf::from(DOTNET_EXE), |h| h.path.clone()),
            args,
            raw_args,
        },
        dotnet: Some(DotnetLaunch {
            host,
            searched,
            app: Some(app),
            runtime_config: Some(runtime_config),
            apphost: Some(apphost),
            roll_forward: roll_forward_settings(None, None, env),
        }),
        refusal: None,
    }
}

/// `processPath` is the `dotnet` host: the one written when that file runs, else the one
/// [`locate_dotnet`] finds; the application is read from the arguments.
fn run_with_dotnet(
    mut command: CommandLine,
    site_dir: &Path,
    env: &dyn Fn(&str) -> Option<String>,
    install_folders: &[PathBuf],
) -> Resolved {
    let written = in_site(&command.program, site_dir);
    let named_a_file = command.program.components().count() > 1 || command.program.is_absolute();
    let (host, searched) = if named_a_file && is_executable(&written) {
        let host = DotnetHost {
            path: written,
            source: DotnetSource::AsWritten,
        };
        (Some(host), vec!["processPath".to_owned()])
    } else {
        locate_dotnet(env, install_folders)
    };
    if let Some(host) = &host {
        command.program = host.path.clone();
    }
    let options = HostOptions::read(&command.args);
    let app = options
        .app
        .map(|a| in_site(Path::new(&native_separators(&a)), site_dir));
    let runtime_config = match options.runtime_config {
        Some(path) => Some(in_site(Path::new(&native_separators(&path)), site_dir)),
        None => app.as_ref().and_then(|app| {
            let stem = app.file_stem()?.to_str()?;
            Some(app.with_file_name(format!("{stem}.runtimeconfig.json")))
        }),
    };
    Resolved {
        dotnet: Some(DotnetLaunch {
            host,
            searched,
            app,
            runtime_config,
            apphost: None,
            roll_forward: roll_forward_settings(options.roll_forward, options.fx_version, env),
        }),
        command,
        refusal: None,
    }
}

/// The roll-forward settings the application's host gets besides runtimeconfig.json.
fn roll_forward_settings(
    command_line: Option<String>,
    fx_version: Option<String>,
    env: &dyn Fn(&str) -> Option<String>,
) -> RollForwardSettings {
    RollForwardSettings {
        command_line,
        fx_version,
        environment: env("DOTNET_ROLL_FORWARD").filter(|v| !v.is_empty()),
        to_prerelease: env("DOTNET_ROLL_FORWARD_TO_PRERELEASE").as_deref() == Some("1"),
    }
}

/// What `dotnet [exec] [options] app.dll [args]` says before the application's own
/// arguments.
#[derive(Debug, Default, PartialEq, Eq)]
struct HostOptions {
    app: Option<String>,
    roll_forward: Option<String>,
    fx_version: Option<String>,
    runtime_config: Option<String>,
}

impl HostOptions {
    fn read(args: &[String]) -> Self {
        let mut options = Self::default();
        let mut words = args.iter();
        let mut next = words.next();
        if next.is_some_and(|w| w == "exec") {
            next = words.next();
        }
        while let Some(word) = next {
            match word.as_str() {
                "--roll-forward" => options.roll_forward = words.next().cloned(),
                "--fx-version" => options.fx_version = words.next().cloned(),
                "--runtimeconfig" => options.runtime_config = words.next().cloned(),
                "--depsfile"
                | "--additionalprobingpath"
                | "--additional-deps"
                | "--roll-forward-on-no-candidate-fx" => {
                    words.next();
                }
                option if option.starts_with("--") => {}
                app => {
                    options.app = Some(app.to_owned());
                    break;
                }
            }
            next = words.next();
        }
        options
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    fn executable(path: &Path, text: &str) {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).expect("mkdir");
        }
        std::fs::write(path, text).expect("write");
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }

    fn command(program: &str, args: &[&str]) -> CommandLine {
        CommandLine {
            program: PathBuf::from(program),
            args: args.iter().map(|a| (*a).to_owned()).collect(),
            raw_args: args.join(" "),
        }
    }

    fn env_of(pairs: Vec<(&'static str, String)>) -> impl Fn(&str) -> Option<String> {
        move |name: &str| {
            pairs
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.clone())
        }
    }

    const FRAMEWORK: &str = r#"{"runtimeOptions":{"tfm":"net8.0","framework":{"name":"Microsoft.AspNetCore.App","version":"8.0.0"}}}"#;

    fn publish(site: &Path, runtime_config: &str, apphost: Option<&[u8]>) {
        std::fs::write(site.join("MyApp.dll"), b"MZ not really").expect("write");
        std::fs::write(site.join("MyApp.runtimeconfig.json"), runtime_config).expect("write");
        if let Some(bytes) = apphost {
            std::fs::write(site.join("MyApp.exe"), bytes).expect("write");
        }
    }

    #[test]
    fn the_dotnet_host_is_found_in_order() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let arch = tmp.path().join("arch");
        let root = tmp.path().join("root");
        let on_path = tmp.path().join("bin");
        let installed = tmp.path().join("usr-share-dotnet");
        for dir in [&arch, &root, &on_path, &installed] {
            executable(&dir.join("dotnet"), "#!/bin/sh\n");
        }
        let folders = vec![tmp.path().join("absent"), installed.clone()];
        let path = format!(
            "{}:{}",
            tmp.path().join("nothing").display(),
            on_path.display()
        );
        let mut vars = vec![
            ("DOTNET_ROOT", root.display().to_string()),
            ("PATH", path.clone()),
        ];
        if let Some(var) = ARCH_ROOT {
            vars.push((var, arch.display().to_string()));
            let (host, _) = locate_dotnet(&env_of(vars.clone()), &folders);
            let host = host.expect("found");
            assert_eq!(
                (host.path, host.source),
                (arch.join("dotnet"), DotnetSource::Variable(var))
            );
            vars.pop();
        }
        let (host, searched) = locate_dotnet(&env_of(vars.clone()), &folders);
        let host = host.expect("found");
        assert_eq!(host.path, root.join("dotnet"));
        assert_eq!(host.source, DotnetSource::Variable("DOTNET_ROOT"));
        assert_eq!(
            searched.last().map(String::as_str),
            Some(format!("DOTNET_ROOT={}", root.display()).as_str())
        );

        // A DOTNET_ROOT without a host is passed over.
        let empty = tmp.path().join("empty-root");
        let (host, _) = locate_dotnet(
            &env_of(vec![
                ("DOTNET_ROOT", empty.display().to_string()),
                ("PATH", path.clone()),
            ]),
            &folders,
        );
        assert_eq!(host.map(|h| h.source), Some(DotnetSource::Path));

        // A non-executable `dotnet` on PATH is passed over too.
        let not_exec = tmp.path().join("noexec");
        std::fs::create_dir_all(&not_exec).expect("mkdir");
        std::fs::write(not_exec.join("dotnet"), "").expect("write");
        let (host, _) = locate_dotnet(
            &env_of(vec![("PATH", not_exec.display().to_string())]),
            &folders,
        );
        let host = host.expect("found");
        assert_eq!(
            (host.path, host.source),
            (installed.join("dotnet"), DotnetSource::InstallFolder)
        );

        let (host, searched) = locate_dotnet(&|_| None, &[]);
        assert!(host.is_none());
        assert!(
            searched.iter().any(|s| s == "DOTNET_ROOT (not set)"),
            "{searched:?}"
        );
        assert!(searched.iter().any(|s| s == "PATH"), "{searched:?}");
    }

    #[test]
    fn install_folders_for_this_os() {
        let folders = install_folders(&|n| (n == "HOME").then(|| "/home/u".to_owned()));
        if cfg!(target_os = "macos") {
            assert_eq!(folders[0], PathBuf::from("/usr/local/share/dotnet"));
        } else {
            assert_eq!(
                folders,
                [
                    PathBuf::from("/usr/share/dotnet"),
                    PathBuf::from("/usr/lib/dotnet"),
                    PathBuf::from("/home/u/.dotnet")
                ]
            );
        }
        assert!(
            !install_folders(&|_| None)
                .iter()
                .any(|f| f.ends_with(".dotnet"))
        );
    }

    #[test]
    fn an_apphost_that_cannot_run_becomes_dotnet_app_dll() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let root = tmp.path().join("dotnet-root");
        executable(&root.join("dotnet"), "#!/bin/sh\n");
        let env = env_of(vec![("DOTNET_ROOT", root.display().to_string())]);
        for apphost in [Some(&b"MZ\x90\x00"[..]), None] {
            let site = tempfile::tempdir().expect("tempdir");
            publish(site.path(), FRAMEWORK, apphost);
            let resolved = resolve(
                command("./MyApp.exe", &["--urls", "x"]),
                site.path(),
                &env,
                &[],
            );
            assert_eq!(resolved.refusal, None);
            let app = site.path().join("MyApp.dll");
            assert_eq!(resolved.command.program, root.join("dotnet"));
            assert_eq!(
                resolved.command.args,
                [app.display().to_string(), "--urls".into(), "x".into()]
            );
            assert_eq!(
                resolved.command.raw_args,
                format!("\"{}\" --urls x", app.display())
            );
            let dotnet = resolved.dotnet.expect("a .NET launch");
            assert_eq!(dotnet.apphost, Some(site.path().join("MyApp.exe")));
            assert_eq!(dotnet.app, Some(app));
            assert_eq!(
                dotnet.runtime_config,
                Some(site.path().join("MyApp.runtimeconfig.json"))
            );
        }
    }

    #[test]
    fn an_apphost_is_kept_when_it_runs_or_has_no_publish_beside_it() {
        let site = tempfile::tempdir().expect("tempdir");
        // A runnable file called .exe (not a PE): used as is.
        executable(&site.path().join("Tool.exe"), "#!/bin/sh\n");
        std::fs::write(site.path().join("Tool.dll"), "").expect("write");
        std::fs::write(site.path().join("Tool.runtimeconfig.json"), FRAMEWORK).expect("write");
        let cl = command(&site.path().join("Tool.exe").display().to_string(), &[]);
        assert_eq!(resolve(cl.clone(), site.path(), &|_| None, &[]).command, cl);
        // No runtimeconfig.json beside it: not a publish folder, nothing to do.
        std::fs::write(site.path().join("Other.dll"), "").expect("write");
        let cl = command("./Other.exe", &[]);
        let resolved = resolve(cl.clone(), site.path(), &|_| None, &[]);
        assert_eq!((resolved.command, resolved.dotnet), (cl, None));
        // Not an .exe at all.
        let cl = command("python3", &["app.py"]);
        assert_eq!(resolve(cl.clone(), site.path(), &|_| None, &[]).command, cl);
    }

    #[test]
    fn a_self_contained_windows_publish_is_refused() {
        for runtime_config in [
            r#"{"runtimeOptions":{"tfm":"net8.0","includedFrameworks":[{"name":"Microsoft.NETCore.App","version":"8.0.11"}]}}"#,
            r#"{"runtimeOptions":{"tfm":"netcoreapp3.1","configProperties":{}}}"#,
        ] {
            let site = tempfile::tempdir().expect("tempdir");
            publish(site.path(), runtime_config, Some(b"MZ\x90\x00"));
            let cl = command("./MyApp.exe", &[]);
            let resolved = resolve(cl.clone(), site.path(), &|_| None, &[]);
            assert_eq!(resolved.command, cl);
            let refusal = resolved.refusal.expect("refused").to_string();
            assert!(
                refusal
                    .contains("MyApp.exe' is a self-contained Windows publish and cannot run on"),
                "{refusal}"
            );
            assert!(
                refusal.contains("the apphost is a Windows executable"),
                "{refusal}"
            );
            assert!(refusal.contains(&runtime_identifier()), "{refusal}");
        }
    }

    #[test]
    fn dotnet_with_an_application() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let on_path = tmp.path().join("bin");
        executable(&on_path.join("dotnet"), "#!/bin/sh\n");
        let env = env_of(vec![
            ("PATH", on_path.display().to_string()),
            ("DOTNET_ROLL_FORWARD", "Major".into()),
            ("DOTNET_ROLL_FORWARD_TO_PRERELEASE", "1".into()),
        ]);
        let site = tempfile::tempdir().expect("tempdir");
        for program in ["dotnet", "DOTNET.EXE", "C:/Program Files/dotnet/dotnet.exe"] {
            let resolved = resolve(
                command(program, &["./MyApp.dll", "--x"]),
                site.path(),
                &env,
                &[],
            );
            assert_eq!(
                resolved.command.program,
                on_path.join("dotnet"),
                "{program}"
            );
            assert_eq!(resolved.command.args, ["./MyApp.dll", "--x"]);
            let dotnet = resolved.dotnet.expect("a .NET launch");
            assert_eq!(dotnet.host.map(|h| h.source), Some(DotnetSource::Path));
            assert_eq!(dotnet.app, Some(site.path().join("MyApp.dll")));
            assert_eq!(
                dotnet.runtime_config,
                Some(site.path().join("MyApp.runtimeconfig.json"))
            );
            assert_eq!(dotnet.roll_forward.environment.as_deref(), Some("Major"));
            assert!(dotnet.roll_forward.to_prerelease);
        }
        // A dotnet named by its path that runs is used as written.
        let own = tmp.path().join("own/dotnet");
        executable(&own, "#!/bin/sh\n");
        let resolved = resolve(
            command(&own.display().to_string(), &[]),
            site.path(),
            &env,
            &[],
        );
        assert_eq!(resolved.command.program, own);
        let dotnet = resolved.dotnet.expect("a .NET launch");
        assert_eq!(dotnet.host.map(|h| h.source), Some(DotnetSource::AsWritten));
        assert_eq!(dotnet.app, None);
        // Found nowhere: left as written.
        let resolved = resolve(command("dotnet", &["app.dll"]), site.path(), &|_| None, &[]);
        assert_eq!(resolved.command.program, PathBuf::from("dotnet"));
        assert_eq!(resolved.dotnet.and_then(|d| d.host), None);
    }

    #[test]
    fn host_options_before_the_application() {
        let read = |args: &[&str]| {
            HostOptions::read(&args.iter().map(|a| (*a).to_owned()).collect::<Vec<_>>())
        };
        assert_eq!(
            read(&[
                "exec",
                "--roll-forward",
                "LatestMajor",
                "--depsfile",
                "x.json",
                "--runtimeconfig",
                "rc.json",
                "--fx-version",
                "8.0.1",
                "app.dll",
                "--roll-forward",
                "no"
            ]),
            HostOptions {
                app: Some("app.dll".into()),
                roll_forward: Some("LatestMajor".into()),
                fx_version: Some("8.0.1".into()),
                runtime_config: Some("rc.json".into()),
            }
        );
        assert_eq!(read(&[]), HostOptions::default());
    }
}
