//! The opt-in Unix-domain-socket transport (protocol §8.42) end to end: the real `ancm`
//! binary, the `iis_echo` example as its backend, real clients.
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used)]

use std::io::{BufRead as _, BufReader};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::FileTypeExt as _;
use std::path::PathBuf;

use test_support::LIMIT;
use test_support::client::get;
use test_support::process::{Gateway, eventually, example, is_running};
use test_support::site;

/// The gateway binary under test.
const ANCM: &str = env!("CARGO_BIN_EXE_ancm");

fn config(transport: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="utf-8"?>
<configuration>
  <system.webServer>
    <aspNetCore processPath="{}" stdoutLogEnabled="false" hostingModel="outofprocess" startupTimeLimit="20" shutdownTimeLimit="5">
      <handlerSettings>
        <handlerSetting name="backendTransport" value="{transport}" />
      </handlerSettings>
    </aspNetCore>
  </system.webServer>
</configuration>
"#,
        example("ancm", "iis_echo").display()
    )
}

/// The direct child of `parent` (the backend `ancm` started).
fn child_of(parent: u32) -> Option<u32> {
    std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .find_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            let ppid: u32 = stat[stat.rfind(')')? + 2..]
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()?;
            (ppid == parent).then_some(pid)
        })
}

/// A variable of process `pid`'s environment.
fn env_of(pid: u32, name: &str) -> Option<String> {
    let environ = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
    environ.split(|b| *b == 0).find_map(|entry| {
        let entry = std::str::from_utf8(entry).ok()?;
        let (n, v) = entry.split_once('=')?;
        (n == name).then(|| v.to_owned())
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_application_that_opts_in_is_reached_over_a_unix_socket_and_stopped_over_it() {
    let site = site::with_config(&config("unix"));
    let mut gw = Gateway::start_piped(ANCM, site.path(), &[], &[("RUST_LOG", "info")]);
    let stdout = gw.take_stdout();
    drop(stdout);
    let stderr = gw.take_stderr().unwrap();
    // The gateway's log, read on a thread of its own so its pipe never fills.
    let (lines_tx, lines_rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                return;
            }
        }
    });

    let r = get(
        gw.addr,
        "/over/unix?x=1",
        &[("X-Forwarded-For", "198.51.100.9")],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let seen = r.json();
    assert_eq!(seen["path"], "/over/unix");
    // The entry the front appended (this client) is the client the app sees: over the
    // socket the front counts as the loopback peer the forwarded headers trust.
    assert_eq!(seen["client_ip"], "127.0.0.1");
    assert_ne!(seen["client_port"], 0);

    // The backend got a socket path, listens there, and not on its port.
    let backend = child_of(gw.pid()).expect("the backend process");
    let socket = PathBuf::from(env_of(backend, "ANCM_UNIX_SOCKET").expect("ANCM_UNIX_SOCKET"));
    assert!(
        std::fs::metadata(&socket).unwrap().file_type().is_socket(),
        "{}",
        socket.display()
    );
    let port: u16 = env_of(backend, "ASPNETCORE_PORT").unwrap().parse().unwrap();
    assert!(TcpStream::connect(SocketAddr::from(([127, 0, 0, 1], port))).is_err());

    // Keep-alive connections are reused: a second request goes the same way.
    let again = get(gw.addr, "/again", &[]).await;
    assert_eq!(again.status, 200);

    // The stop's shutdown message goes over the socket too: the backend accepts it and
    // exits by itself, and its socket file is removed.
    let status = gw.terminate();
    assert!(status.success(), "{status:?}");
    assert!(eventually(LIMIT, || !is_running(backend)).await);
    assert!(!socket.exists(), "{} left behind", socket.display());
    let log: Vec<String> = lines_rx.try_iter().collect();
    assert!(
        log.iter()
            .any(|l| l.contains("sent the shutdown HTTP message to the child")),
        "{log:#?}"
    );
}
