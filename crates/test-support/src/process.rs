//! Child processes: binaries of the workspace built for the test run, free ports, and bounded
//! waits for a listener, a log line, an exit or a condition.
//!
//! ```
//! use std::time::Duration;
//! use test_support::process::{eventually, free_port};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let port = free_port();
//! assert!((1025..=48_000).contains(&port));
//! assert!(eventually(Duration::from_secs(1), || true).await);
//! # });
//! ```
//!
//! A binary of another package (`ancm-site-demo` for the gateway's tests) is not built by
//! `cargo test` of the package whose tests run it: [`workspace_binary`] builds it, once per
//! test run, with the profile and target directory of the running test. An example of the
//! test's own package is built by `cargo test` already: [`example`] finds it, and builds it
//! only when a filtered run (`cargo test --test NAME`) did not.
use std::collections::BTreeSet;
use std::io::Read as _;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use tempfile::NamedTempFile;
use tokio::io::{AsyncBufReadExt as _, BufReader};

use crate::LIMIT;

/// The bound on a `cargo build` a test asks for: a cold build of a binary and its
/// dependencies on a busy machine.
const BUILD_LIMIT: Duration = Duration::from_secs(15 * 60);

/// How often a wait looks again.
const POLL: Duration = Duration::from_millis(50);

/// The binary `bin` of workspace package `package`, built with `cargo build` once per test
/// run (a no-op when it is fresh), with the running test's profile and target directory.
///
/// # Panics
///
/// If the build fails or takes longer than 15 minutes.
pub fn workspace_binary(package: &str, bin: &str) -> PathBuf {
    let path = profile_dir().join(exe_name(bin));
    build_once(&path, &["--package", package, "--bin", bin]);
    path
}

/// The example `name` of workspace package `package`, next to the running test's binaries
/// (where `cargo test` of that package puts its examples), built with `cargo build` when it
/// is not there.
///
/// # Panics
///
/// If it has to be built and the build fails or takes longer than 15 minutes.
pub fn example(package: &str, name: &str) -> PathBuf {
    let path = profile_dir().join("examples").join(exe_name(name));
    if !path.is_file() {
        build_once(&path, &["--package", package, "--example", name]);
    }
    path
}

fn exe_name(name: &str) -> String {
    format!("{name}{}", std::env::consts::EXE_SUFFIX)
}

/// `target/<profile>` of the running test binary (`target/<profile>/deps/<test>`).
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    exe.parent()
        .and_then(Path::parent)
        .expect("the test binary is in target/<profile>/deps")
        .to_path_buf()
}

/// Build `path` with `cargo build ARGS` unless this test run built it already.
fn build_once(path: &Path, args: &[&str]) {
    static BUILT: Mutex<BTreeSet<PathBuf>> = Mutex::new(BTreeSet::new());
    // Held through the build: a second test that needs the binary waits for the first build.
    let mut built = BUILT.lock().unwrap_or_else(PoisonError::into_inner);
    if built.contains(path) {
        return;
    }
    cargo_build(args);
    built.insert(path.to_path_buf());
}

fn cargo_build(args: &[&str]) {
    let profile_dir = profile_dir();
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("test-support is crates/test-support in the workspace");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    // From the workspace root, so that its `.cargo/config.toml` applies as it did to the
    // build of the running test.
    command.current_dir(workspace).arg("build").args(args);
    match profile_dir.file_name().and_then(|name| name.to_str()) {
        Some("debug") => {}
        Some(profile) => {
            command.args(["--profile", profile]);
        }
        None => panic!("no profile directory in {}", profile_dir.display()),
    }
    let parent = profile_dir.parent().expect("target/<profile>");
    // `target/<profile>`, or `target/<triple>/<profile>` when the tests were built with
    // `--target`: cargo marks the root of a target directory with CACHEDIR.TAG.
    if parent.join("CACHEDIR.TAG").is_file() {
        command.arg("--target-dir").arg(parent);
    } else {
        let root = parent.parent().expect("target/<triple>/<profile>");
        command
            .arg("--target-dir")
            .arg(root)
            .arg("--target")
            .arg(parent.file_name().expect("a target triple directory"));
    }
    command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = command.spawn().expect("run cargo build");
    let mut stderr = child.stderr.take().expect("cargo's stderr");
    let output = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let deadline = Instant::now() + BUILD_LIMIT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("cargo build's status") {
            break Some(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(POLL * 4);
    };
    let output = output.join().unwrap_or_default();
    match status {
        Some(status) if status.success() => {}
        Some(status) => panic!("cargo build {args:?} failed ({status}):\n{output}"),
        None => panic!("cargo build {args:?} took longer than {BUILD_LIMIT:?}:\n{output}"),
    }
}

/// A loopback port to give a child to listen on: free on 127.0.0.1 and, where the host has
/// IPv6, on ::1, and within 1025–48000 (the ports ANCM accepts in `ASPNETCORE_PORT`). The
/// system picks it, so tests running at once get different ones.
///
/// # Panics
///
/// If no such port turns up in 100 tries.
pub fn free_port() -> u16 {
    let has_ipv6 = TcpListener::bind((Ipv6Addr::LOCALHOST, 0)).is_ok();
    for _ in 0..100 {
        let v4 = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("a loopback port");
        let port = v4.local_addr().expect("its address").port();
        if port <= 48_000 && (!has_ipv6 || TcpListener::bind((Ipv6Addr::LOCALHOST, port)).is_ok()) {
            return port;
        }
    }
    panic!("no free loopback port within 1025-48000 in 100 tries");
}

/// A loopback port for a gateway's `--listen`: free on 127.0.0.1, and above 48000 where the
/// system's ephemeral range reaches that far. A gateway started by another test picks its
/// backends' ports in 10000–48000 (and so does [`free_port`]); a port above that range cannot
/// be taken by one of them between this pick and the gateway's bind, which made the gateway
/// fail to bind and the test talk to someone else's backend.
///
/// # Panics
///
/// If no free port turns up in 100 tries.
pub fn free_listen_port() -> u16 {
    for _ in 0..100 {
        let v4 = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("a loopback port");
        let port = v4.local_addr().expect("its address").port();
        if port > 48_000 {
            return port;
        }
    }
    free_port()
}

/// Whether process `pid` runs: it exists and has not exited (a zombie, whose parent has not
/// collected its status yet, has).
pub fn is_running(pid: u32) -> bool {
    #[cfg(target_os = "linux")]
    {
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            // The state follows the command name, which is in parentheses and may hold any
            // character.
            Ok(stat) => !stat
                .rsplit_once(')')
                .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
            Err(_) => false,
        }
    }
    #[cfg(windows)]
    {
        crate::windows::is_running(pid)
    }
    #[cfg(all(unix, not(target_os = "linux")))]
    {
        i32::try_from(pid)
            .is_ok_and(|pid| nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok())
    }
}

/// Send SIGTERM to process `pid` (gone already: nothing to do).
#[cfg(unix)]
pub fn terminate(pid: u32) {
    if let Ok(pid) = i32::try_from(pid) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGTERM,
        );
    }
}

/// Wait up to `timeout` for `cond` to hold, looking every 50 ms; whether it did.
pub async fn eventually(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Wait up to `limit` for `child` to exit; its status.
///
/// # Panics
///
/// If it is still running after `limit`.
pub fn wait_exit(child: &mut Child, limit: Duration) -> ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("the child's status") {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "process {} did not exit within {limit:?}",
            child.id()
        );
        std::thread::sleep(POLL);
    }
}

/// Wait until something accepts connections on `addr`.
///
/// # Panics
///
/// If nothing does within [`LIMIT`].
pub fn wait_listening(addr: SocketAddr) {
    let deadline = Instant::now() + LIMIT;
    while TcpStream::connect(addr).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {addr}");
        std::thread::sleep(POLL);
    }
}

/// Read `child`'s stderr until a line contains `needle`; the lines up to it. The rest is
/// read and dropped in a task, so the child never blocks on a full pipe.
///
/// # Panics
///
/// If stderr is not piped, or no such line comes within [`LIMIT`].
pub async fn wait_for_line(child: &mut tokio::process::Child, needle: &str) -> Vec<String> {
    let stderr = child.stderr.take().expect("the child's stderr is piped");
    let mut lines = BufReader::new(stderr).lines();
    let mut seen = Vec::new();
    tokio::time::timeout(LIMIT, async {
        while let Some(line) = lines.next_line().await.expect("read stderr") {
            let done = line.contains(needle);
            seen.push(line);
            if done {
                return;
            }
        }
        panic!("stderr ended without {needle:?}: {seen:#?}");
    })
    .await
    .unwrap_or_else(|_| panic!("no {needle:?} on stderr within {LIMIT:?}"));
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    seen
}

/// Wait for `child` to exit; its exit code.
///
/// # Panics
///
/// If it does not exit within [`LIMIT`] or a signal ended it.
pub async fn exit_code(child: &mut tokio::process::Child) -> i32 {
    let status = tokio::time::timeout(LIMIT, child.wait())
        .await
        .expect("the child exits in time")
        .expect("the child's status");
    status.code().expect("exited, not killed")
}

/// Peak resident set of this process so far, in KiB (`VmHWM` in `/proc/self/status`; 0 where
/// there is none).
pub fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// The `ancm` gateway running as a child: `ancm run SITE --listen 127.0.0.1:PORT ARGS…`.
/// Dropping it stops it: with SIGTERM on Unix (and a kill after 10 s), with a kill on
/// Windows, where a test has no console event to send it (its job object then takes its
/// backends down).
#[derive(Debug)]
pub struct Gateway {
    child: Option<Child>,
    /// Where it listens for plain HTTP.
    pub addr: SocketAddr,
    log: Option<NamedTempFile>,
}

impl Gateway {
    /// Start `exe` (the `ancm` binary: `env!("CARGO_BIN_EXE_ancm")` in its package's tests)
    /// on `site` with `args`, on a free port, with `RUST_LOG=warn` and its stderr passed
    /// through, and wait until it accepts connections.
    ///
    /// # Panics
    ///
    /// If it cannot be started or does not listen within [`LIMIT`].
    pub fn start(exe: impl AsRef<Path>, site: &Path, args: &[&str]) -> Gateway {
        let mut command = Command::new(exe.as_ref());
        command.env("RUST_LOG", "warn").stderr(Stdio::inherit());
        Self::spawn(command, site, args, None)
    }

    /// [`start`](Self::start) with `env` added (`RUST_LOG` among them replaces `warn`) and
    /// the gateway's stdout and stderr piped, for the test to read
    /// ([`take_stdout`](Self::take_stdout), [`take_stderr`](Self::take_stderr)). Read them,
    /// or take and drop them: a full pipe would stop the gateway.
    ///
    /// # Panics
    ///
    /// If it cannot be started or does not listen within [`LIMIT`].
    pub fn start_piped(
        exe: impl AsRef<Path>,
        site: &Path,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Gateway {
        let mut command = Command::new(exe.as_ref());
        command
            .env("RUST_LOG", "warn")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        Self::spawn(command, site, args, None)
    }

    /// Start `command` (the `ancm` binary, with the environment the test chose) as
    /// [`start`](Self::start) does, but with `RUST_LOG=info` and its stderr in a file that
    /// [`log`](Self::log) reads.
    ///
    /// # Panics
    ///
    /// If it cannot be started or does not listen within [`LIMIT`].
    pub fn start_logging(mut command: Command, site: &Path, args: &[&str]) -> Gateway {
        let log = NamedTempFile::new().expect("a log file");
        command
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log.reopen().expect("the log file, for writing"));
        Self::spawn(command, site, args, Some(log))
    }

    /// `command run SITE --listen 127.0.0.1:PORT ARGS…` with stdin closed (stdout null unless
    /// the caller chose), once it listens.
    fn spawn(
        mut command: Command,
        site: &Path,
        args: &[&str],
        log: Option<NamedTempFile>,
    ) -> Gateway {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, free_listen_port()));
        let child = command
            .arg("run")
            .arg(site)
            .arg("--listen")
            .arg(addr.to_string())
            .args(args)
            .stdin(Stdio::null())
            .spawn()
            .expect("start the gateway");
        let gateway = Gateway {
            child: Some(child),
            addr,
            log,
        };
        wait_listening(addr);
        gateway
    }

    /// The gateway's stdout, when started with [`start_piped`](Self::start_piped) (once).
    pub fn take_stdout(&mut self) -> Option<std::process::ChildStdout> {
        self.child.as_mut()?.stdout.take()
    }

    /// The gateway's stderr, when started with [`start_piped`](Self::start_piped) (once).
    pub fn take_stderr(&mut self) -> Option<std::process::ChildStderr> {
        self.child.as_mut()?.stderr.take()
    }

    /// Its process id.
    ///
    /// # Panics
    ///
    /// If it was stopped already.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("a running gateway").id()
    }

    /// What it logged so far.
    ///
    /// # Panics
    ///
    /// If it was not started with [`start_logging`](Self::start_logging).
    pub fn log(&self) -> String {
        let log = self
            .log
            .as_ref()
            .expect("a gateway started with start_logging");
        std::fs::read_to_string(log.path()).expect("read the gateway's log")
    }

    /// SIGTERM, and wait (30 s at most) for the exit status.
    ///
    /// # Panics
    ///
    /// If it was stopped already or does not exit in time.
    #[cfg(unix)]
    pub fn terminate(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("a running gateway");
        terminate(child.id());
        wait_exit(&mut child, Duration::from_secs(30))
    }

    /// SIGKILL, as the OOM killer or `kill -9` does (`TerminateProcess` on Windows: no
    /// chance to stop its children), and wait (10 s at most) for the exit status.
    ///
    /// # Panics
    ///
    /// If it was stopped already or does not exit in time.
    pub fn kill(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("a running gateway");
        let _ = child.kill();
        wait_exit(&mut child, Duration::from_secs(10))
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            #[cfg(unix)]
            {
                terminate(child.id());
                let deadline = Instant::now() + Duration::from_secs(10);
                while Instant::now() < deadline {
                    if let Ok(Some(_)) = child.try_wait() {
                        return;
                    }
                    std::thread::sleep(POLL);
                }
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// What `ancm doctor` said.
#[derive(Debug)]
pub struct Doctor {
    /// Its exit code (-1 when a signal ended it).
    pub code: i32,
    /// Its standard output.
    pub out: String,
    /// How long it took.
    pub took: Duration,
}

impl Doctor {
    /// The `--json` output.
    ///
    /// # Panics
    ///
    /// If the output is not JSON: the test has failed.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.out).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.out))
    }

    /// The findings of check `name`, as (status, message), from the `--json` output.
    ///
    /// # Panics
    ///
    /// If the output is not `ancm doctor --json`'s: the test has failed.
    pub fn findings(&self, name: &str) -> Vec<(String, String)> {
        self.json()["findings"]
            .as_array()
            .expect("a findings array")
            .iter()
            .filter(|f| f["check"] == name)
            .map(|f| {
                (
                    f["status"].as_str().expect("a status").to_owned(),
                    f["message"].as_str().expect("a message").to_owned(),
                )
            })
            .collect()
    }

    /// The message of the one finding of check `name` with `status`.
    ///
    /// # Panics
    ///
    /// If there is not exactly one: the test has failed.
    pub fn finding(&self, name: &str, status: &str) -> String {
        let mut found: Vec<String> = self
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
        found.remove(0)
    }
}

/// Run `command` (the `ancm` binary, with the environment the test chose) as
/// `ancm doctor SITE ARGS…`, its stderr passed through.
///
/// # Panics
///
/// If it cannot be started or does not finish within [`LIMIT`].
pub fn doctor(mut command: Command, site: &Path, args: &[&str]) -> Doctor {
    let started = Instant::now();
    let mut child = command
        .arg("doctor")
        .arg(site)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start ancm doctor");
    let mut stdout = child.stdout.take().expect("its stdout is piped");
    let reader = std::thread::spawn(move || {
        let mut out = String::new();
        let _ = stdout.read_to_string(&mut out);
        out
    });
    let deadline = started + LIMIT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("ancm doctor's status") {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("ancm doctor did not finish within {LIMIT:?}");
        }
        std::thread::sleep(POLL);
    };
    Doctor {
        code: status.code().unwrap_or(-1),
        out: reader.join().unwrap_or_default(),
        took: started.elapsed(),
    }
}
