//! TEMPORARY: the gateway helpers of the test files merged before the move to `test-support`;
//! they move there next (issue 8). Do not add to this file.
//! Shared by the `gateway_*` end-to-end tests: start the real `ancm` binary on a temp site and
//! talk to it with a real HTTP client.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::{BodyExt as _, Full};
use hyper_util::rt::TokioIo;

/// The python3 echo backend.
pub fn echo_backend() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("crates/test-support/backends/echo_backend.py")
}

/// The Rust `iis_echo` example (built by `cargo test` next to the test binaries).
pub fn iis_echo() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap();
    dir.join("examples")
        .join(format!("iis_echo{}", std::env::consts::EXE_SUFFIX))
}

/// A free loopback port (bound then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A temp site folder with `web.config` = `config`.
pub fn site(config: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("web.config"), config).unwrap();
    dir
}

/// A web.config running `python3 echo_backend.py`, with extra attributes and env vars.
pub fn python_config(attrs: &str, env: &[(&str, &str)]) -> String {
    let vars: String = env
        .iter()
        .map(|(n, v)| format!("        <environmentVariable name=\"{n}\" value=\"{v}\" />\n"))
        .collect();
    format!(
        r#"<?xml version="1.0" encoding="utf-8"?>
<configuration>
  <location path="." inheritInChildApplications="false">
    <system.webServer>
      <aspNetCore processPath="python3" arguments="&quot;{}&quot;" hostingModel="outofprocess" startupTimeLimit="20" shutdownTimeLimit="5" {attrs}>
        <environmentVariables>
{vars}        </environmentVariables>
      </aspNetCore>
    </system.webServer>
  </location>
</configuration>
"#,
        echo_backend().display()
    )
}

/// A running `ancm` process.
pub struct Gateway {
    pub child: Option<Child>,
    pub addr: SocketAddr,
}

impl Gateway {
    /// `ancm run SITE --listen 127.0.0.1:PORT ARGS...`, waiting until it accepts connections.
    pub fn start(site: &Path, args: &[&str]) -> Gateway {
        let port = free_port();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        Self::start_with(site, addr, args)
    }

    pub fn start_with(site: &Path, addr: SocketAddr, args: &[&str]) -> Gateway {
        let child = Command::new(env!("CARGO_BIN_EXE_ancm"))
            .arg("run")
            .arg(site)
            .arg("--listen")
            .arg(addr.to_string())
            .args(args)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let gw = Gateway {
            child: Some(child),
            addr,
        };
        wait_listening(addr);
        gw
    }

    /// SIGTERM and wait (bounded) for the exit status.
    pub fn terminate(&mut self) -> ExitStatus {
        let mut child = self.child.take().unwrap();
        signal(child.id(), nix::sys::signal::Signal::SIGTERM);
        wait_exit(&mut child, Duration::from_secs(30))
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            signal(child.id(), nix::sys::signal::Signal::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(10);
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

pub fn signal(pid: u32, sig: nix::sys::signal::Signal) {
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), sig);
}

pub fn process_alive(pid: u32) -> bool {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), None).is_ok()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| s.split(' ').nth(2) == Some("Z"))
            .unwrap_or(true)
}

pub fn wait_exit(child: &mut Child, limit: Duration) -> ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "process {} did not exit within {limit:?}",
            child.id()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub fn wait_listening(addr: SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(addr).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {addr}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A response read whole.
#[derive(Debug)]
pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Resp {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One HTTP/1.1 request on a new connection.
pub async fn send(addr: SocketAddr, req: Request<Full<Bytes>>) -> Resp {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let resp = sender.send_request(req).await.unwrap();
    let (parts, body) = resp.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    Resp {
        status: parts.status,
        headers: parts.headers,
        body,
    }
}

/// `GET path` with a Host header and extra headers.
pub async fn get(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Resp {
    let mut req = Request::get(path).header("host", format!("{addr}"));
    for (n, v) in headers {
        req = req.header(*n, *v);
    }
    send(addr, req.body(Full::new(Bytes::new())).unwrap()).await
}

/// The backend's view of one header (all values), from the echo backend's JSON.
pub fn header_values(json: &serde_json::Value, name: &str) -> Vec<String> {
    json["headers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|pair| pair[0].as_str().unwrap().eq_ignore_ascii_case(name))
        .map(|pair| pair[1].as_str().unwrap().to_owned())
        .collect()
}
