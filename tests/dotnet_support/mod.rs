//! Shared by the tests of .NET publish folders (`gateway_publish`, `doctor`): a fake `dotnet`
//! host, publish folders in the shapes the .NET SDK writes for IIS, and the real `ancm`
//! binary run with an environment of the test's choosing.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

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

/// A runtimeconfig.json asking for `name` `version`, with `extra` options before it.
pub fn runtimeconfig(name: &str, version: &str, extra: &str) -> String {
    format!(
        r#"{{"runtimeOptions":{{"tfm":"net8.0",{extra}"framework":{{"name":"{name}","version":"{version}"}}}}}}"#
    )
}

/// The first bytes of a Windows executable (a PE file starts with `MZ`).
pub const PE_STUB: &[u8] = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00";

/// The python3 interpreter itself (not a version manager's shim), so that a fake `dotnet`
/// needs no `PATH`.
pub fn python() -> &'static str {
    static PYTHON: OnceLock<String> = OnceLock::new();
    PYTHON.get_or_init(|| {
        let out = Command::new("python3")
            .args(["-c", "import sys; print(sys.executable)"])
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    })
}

/// The python3 echo backend.
pub fn echo_backend() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("crates/test-support/backends/echo_backend.py")
}

/// Writes an executable script at `path` (folders created).
pub fn script(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// A fake `dotnet` host in `dir`: `--list-runtimes` prints `runtimes`; anything else starts
/// the echo backend (which honours ASPNETCORE_PORT and ASPNETCORE_TOKEN) with `TEST_DOTNET`
/// = `marker` and `TEST_DOTNET_ARGS` = its arguments, which the backend reports.
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
            echo_backend().display()
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

/// The files of a publish folder for `app` in `folder`: `app.dll` (any bytes),
/// `app.runtimeconfig.json`, `app.deps.json`, and with `apphost` a Windows `app.exe`.
pub fn publish_files(folder: &Path, app: &str, runtime_config: &str, apphost: bool) {
    std::fs::create_dir_all(folder).unwrap();
    std::fs::write(folder.join(format!("{app}.dll")), PE_STUB).unwrap();
    std::fs::write(
        folder.join(format!("{app}.runtimeconfig.json")),
        runtime_config,
    )
    .unwrap();
    std::fs::write(
        folder.join(format!("{app}.deps.json")),
        format!(
            r#"{{"runtimeTarget":{{"name":".NETCoreApp,Version=v8.0","signature":""}},"targets":{{".NETCoreApp,Version=v8.0":{{"{app}/1.0.0":{{"runtime":{{"{app}.dll":{{}}}}}}}}}},"libraries":{{"{app}/1.0.0":{{"type":"project","serviceable":false,"sha512":""}}}}}}"#
        ),
    )
    .unwrap();
    if apphost {
        std::fs::write(folder.join(format!("{app}.exe")), PE_STUB).unwrap();
    }
}

/// A whole publish folder for `MyApp` in the SDK's `shape`.
pub fn publish_site(shape: Shape, runtime_config: &str) -> tempfile::TempDir {
    let site = tempfile::tempdir().unwrap();
    publish_files(
        site.path(),
        "MyApp",
        runtime_config,
        shape == Shape::Apphost,
    );
    std::fs::write(
        site.path().join("web.config"),
        sdk_web_config("MyApp", shape),
    )
    .unwrap();
    site
}

/// The `ancm` binary with the .NET variables of the test's own environment removed and
/// `vars` set.
pub fn ancm(vars: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ancm"));
    for var in DOTNET_VARS {
        cmd.env_remove(var);
    }
    cmd.envs(vars.iter().copied()).stdin(Stdio::null());
    cmd
}

/// `ancm run SITE` on a free loopback port with `vars`, its log (RUST_LOG=info) in a file.
pub struct Run {
    child: Option<Child>,
    pub addr: SocketAddr,
    log: tempfile::NamedTempFile,
}

impl Run {
    pub fn start(site: &Path, vars: &[(&str, &str)]) -> Run {
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let log = tempfile::NamedTempFile::new().unwrap();
        let child = ancm(vars)
            .env("RUST_LOG", "info")
            .arg("run")
            .arg(site)
            .arg("--listen")
            .arg(addr.to_string())
            .stdout(Stdio::null())
            .stderr(log.reopen().unwrap())
            .spawn()
            .unwrap();
        let run = Run {
            child: Some(child),
            addr,
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(addr).is_err() {
            assert!(
                Instant::now() < deadline,
                "ancm run does not listen on {addr}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        run
    }

    /// What it logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap()
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let pid = nix::unistd::Pid::from_raw(child.id() as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A free loopback port (bound then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// What `ancm doctor` said.
#[derive(Debug)]
pub struct Doctor {
    /// Its exit status.
    pub code: i32,
    /// Its standard output.
    pub out: String,
    /// How long it took.
    pub took: Duration,
}

impl Doctor {
    /// The `--json` output.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.out).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.out))
    }

    /// The findings of check `name`, as (status, message).
    pub fn findings(&self, name: &str) -> Vec<(String, String)> {
        self.json()["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["check"] == name)
            .map(|f| {
                (
                    f["status"].as_str().unwrap().to_owned(),
                    f["message"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    }

    /// The one finding of check `name` with `status`, its message.
    pub fn finding(&self, name: &str, status: &str) -> String {
        let found: Vec<String> = self
            .findings(name)
            .into_iter()
            .filter(|(s, _)| s == status)
            .map(|(_, m)| m)
            .collect();
        assert_eq!(
            found.len(),
            1,
            "one {status} {name} finding in {}",
            self.out
        );
        found.into_iter().next().unwrap()
    }
}

/// `ancm doctor SITE ARGS…` with `vars`, bounded by 60 s.
pub fn doctor(site: &Path, args: &[&str], vars: &[(&str, &str)]) -> Doctor {
    let started = Instant::now();
    let mut child = ancm(vars)
        .arg("doctor")
        .arg(site)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut out = String::new();
        std::io::Read::read_to_string(&mut stdout, &mut out).unwrap();
        out
    });
    let deadline = started + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("ancm doctor did not finish within 60 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Doctor {
        code: status.code().unwrap_or(-1),
        out: reader.join().unwrap(),
        took: started.elapsed(),
    }
}
