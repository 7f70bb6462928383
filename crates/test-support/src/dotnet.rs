//! .NET publish folders and hosts for the tests of `ancm run` and `ancm doctor` on them:
//! publish folders in the shapes the .NET SDK writes for IIS, the runtimeconfig.json files
//! it writes, a fake `dotnet` host (Unix: a script that starts the python echo backend), and
//! the `ancm` binary run without the .NET variables of the test's own environment.
//!
//! ```
//! use test_support::dotnet::{self, RUNTIMECONFIG_8, Shape};
//!
//! let site = dotnet::publish_site(Shape::Apphost, RUNTIMECONFIG_8);
//! assert!(site.path().join("MyApp.dll").is_file() && site.path().join("MyApp.exe").is_file());
//! let config = std::fs::read_to_string(site.path().join("web.config")).unwrap();
//! assert!(config.contains(r#"processPath=".\MyApp.exe""#));
//! ```
use std::path::Path;
#[cfg(unix)]
use std::path::PathBuf;
use std::process::{Command, Stdio};

use tempfile::TempDir;

/// The variables that decide which `dotnet` runs and how frameworks roll forward: removed
/// from what `ancm` inherits, so that only what a test sets counts.
pub const DOTNET_VARS: &[&str] = &[
    "DOTNET_ROOT",
    "DOTNET_ROOT_X64",
    "DOTNET_ROOT_ARM64",
    "DOTNET_ROOT_X86",
    "DOTNET_ROOT_ARM",
    "DOTNET_ROLL_FORWARD",
    "DOTNET_ROLL_FORWARD_TO_PRERELEASE",
    "ASPNETCORE_DETAILEDERRORS",
    "ANCM_LAUNCHER_PATH",
    "ANCM_LAUNCHER_ARGS",
];

/// What `dotnet --list-runtimes` prints on a machine with .NET 8.0.11, in the real format.
pub const RUNTIMES_8: &str = "\
Microsoft.AspNetCore.App 8.0.11 [/usr/share/dotnet/shared/Microsoft.AspNetCore.App]
Microsoft.NETCore.App 8.0.11 [/usr/share/dotnet/shared/Microsoft.NETCore.App]";

/// The runtimeconfig.json `dotnet publish` writes for an ASP.NET Core 8 app.
pub const RUNTIMECONFIG_8: &str = r#"{
  "runtimeOptions": {
    "tfm": "net8.0",
    "framework": {
      "name": "Microsoft.AspNetCore.App",
      "version": "8.0.0"
    },
    "configProperties": {
      "System.GC.Server": true,
      "System.Reflection.Metadata.MetadataUpdater.IsSupported": false,
      "System.Runtime.Serialization.EnableUnsafeBinaryFormatterSerialization": false
    }
  }
}"#;

/// The `frameworks` array form (an app that also references a second shared framework).
pub const RUNTIMECONFIG_8_FRAMEWORKS: &str = r#"{
  "runtimeOptions": {
    "tfm": "net8.0",
    "frameworks": [
      {
        "name": "Microsoft.NETCore.App",
        "version": "8.0.0"
      },
      {
        "name": "Microsoft.AspNetCore.App",
        "version": "8.0.0"
      }
    ],
    "configProperties": {
      "System.GC.Server": true
    }
  }
}"#;

/// A self-contained publish's runtimeconfig.json (`dotnet publish -r win-x64
/// --self-contained`): the runtime is included, no shared framework is named.
pub const RUNTIMECONFIG_SELF_CONTAINED: &str = r#"{
  "runtimeOptions": {
    "tfm": "net8.0",
    "includedFrameworks": [
      {
        "name": "Microsoft.NETCore.App",
        "version": "8.0.11"
      },
      {
        "name": "Microsoft.AspNetCore.App",
        "version": "8.0.11"
      }
    ],
    "configProperties": {
      "System.GC.Server": true
    }
  }
}"#;

/// A runtimeconfig.json asking for `name` `version`, with `extra` options (JSON members, each
/// followed by a comma) before it.
pub fn runtimeconfig(name: &str, version: &str, extra: &str) -> String {
    format!(
        r#"{{"runtimeOptions":{{"tfm":"net8.0",{extra}"framework":{{"name":"{name}","version":"{version}"}}}}}}"#
    )
}

/// The first bytes of a Windows executable (a PE file starts with `MZ`).
pub const PE_STUB: &[u8] = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00";

/// The python3 interpreter itself (not a version manager's shim), so that a fake `dotnet`
/// needs no `PATH`.
///
/// # Panics
///
/// If python3 cannot be run.
#[cfg(unix)]
pub fn python() -> &'static str {
    static PYTHON: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    PYTHON.get_or_init(|| {
        let out = Command::new("python3")
            .args(["-c", "import sys; print(sys.executable)"])
            .output()
            .expect("run python3");
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    })
}

/// Write an executable script at `path` (folders created).
///
/// # Panics
///
/// If it cannot be written.
#[cfg(unix)]
pub fn script(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt as _;
    if let Some(folder) = path.parent() {
        std::fs::create_dir_all(folder).expect("create the script's folder");
    }
    std::fs::write(path, text).expect("write the script");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
        .expect("make the script executable");
}

/// A fake `dotnet` host in `dir`: `--list-runtimes` prints `runtimes`; anything else starts
/// the python echo backend ([`backends::python_echo`](crate::backends::python_echo), which
/// honours ASPNETCORE_PORT and ASPNETCORE_TOKEN) with `TEST_DOTNET` = `marker` and
/// `TEST_DOTNET_ARGS` = its arguments, which the backend reports.
///
/// # Panics
///
/// If it cannot be written.
#[cfg(unix)]
pub fn fake_dotnet(dir: &Path, marker: &str, runtimes: &str) -> PathBuf {
    let path = dir.join("dotnet");
    script(
        &path,
        &format!(
            "#!/bin/sh\n\
             if [ \"$1\" = \"--list-runtimes\" ]; then\n\
             cat <<'EOF'\n{runtimes}\nEOF\n\
             exit 0\n\
             fi\n\
             export TEST_DOTNET='{marker}' TEST_DOTNET_ARGS=\"$*\"\n\
             exec '{}' '{}'\n",
            python(),
            crate::backends::python_echo().display()
        ),
    );
    path
}

/// How the SDK's web.config starts the application.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// `processPath=".\MyApp.exe" arguments=""`: the apphost of a framework-dependent
    /// publish (the SDK default for a Windows publish).
    Apphost,
    /// `processPath="dotnet" arguments=".\MyApp.dll"`.
    DotnetDll,
}

/// The web.config `dotnet publish` writes for IIS, for `app`.
pub fn sdk_web_config(app: &str, shape: Shape) -> String {
    let start = match shape {
        Shape::Apphost => format!(r#"processPath=".\{app}.exe" arguments="""#),
        Shape::DotnetDll => format!(r#"processPath="dotnet" arguments=".\{app}.dll""#),
    };
    format!(
        r#"<?xml version="1.0" encoding="utf-8"?>
<configuration>
  <location path="." inheritInChildApplications="false">
    <system.webServer>
      <handlers>
        <add name="aspNetCore" path="*" verb="*" modules="AspNetCoreModuleV2" resourceType="Unspecified" />
      </handlers>
      <aspNetCore {start} stdoutLogEnabled="false" stdoutLogFile=".\logs\stdout" hostingModel="inprocess" />
    </system.webServer>
  </location>
</configuration>
<!--ProjectGuid: 6D1E6E4B-4E44-4E6B-9C1B-2E0F3F0B6A11-->"#
    )
}

/// The files of a publish folder for `app` in `folder` (created): `app.dll` (any bytes),
/// `app.runtimeconfig.json`, `app.deps.json`, and with `apphost` a Windows `app.exe`.
///
/// # Panics
///
/// If they cannot be written.
pub fn publish_files(folder: &Path, app: &str, runtime_config: &str, apphost: bool) {
    let write = |name: String, bytes: &[u8]| {
        std::fs::write(folder.join(name), bytes).expect("write the publish folder");
    };
    std::fs::create_dir_all(folder).expect("create the publish folder");
    write(format!("{app}.dll"), PE_STUB);
    write(
        format!("{app}.runtimeconfig.json"),
        runtime_config.as_bytes(),
    );
    write(
        format!("{app}.deps.json"),
        format!(
            r#"{{"runtimeTarget":{{"name":".NETCoreApp,Version=v8.0","signature":""}},"targets":{{".NETCoreApp,Version=v8.0":{{"{app}/1.0.0":{{"runtime":{{"{app}.dll":{{}}}}}}}}}},"libraries":{{"{app}/1.0.0":{{"type":"project","serviceable":false,"sha512":""}}}}}}"#
        )
        .as_bytes(),
    );
    if apphost {
        write(format!("{app}.exe"), PE_STUB);
    }
}

/// A whole publish folder for `MyApp` in the SDK's `shape`, removed when dropped.
///
/// # Panics
///
/// If it cannot be written.
pub fn publish_site(shape: Shape, runtime_config: &str) -> TempDir {
    let site = crate::site::with_config(&sdk_web_config("MyApp", shape));
    publish_files(
        site.path(),
        "MyApp",
        runtime_config,
        shape == Shape::Apphost,
    );
    site
}

/// `exe` (the `ancm` binary) with the .NET variables of the test's own environment
/// ([`DOTNET_VARS`]) removed and `vars` set, stdin closed.
pub fn command(exe: impl AsRef<Path>, vars: &[(&str, &str)]) -> Command {
    let mut command = Command::new(exe.as_ref());
    for var in DOTNET_VARS {
        command.env_remove(var);
    }
    command.envs(vars.iter().copied()).stdin(Stdio::null());
    command
}
