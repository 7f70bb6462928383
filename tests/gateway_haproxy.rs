//! A real load balancer in front (issue 16, protocol §8.39–§8.41): HAProxy, started by the
//! test on loopback, balances over two `ancm` instances (one site folder each), sending them
//! PROXY v2 and v1 headers and checking their `/readyz`. The backend sees the test client's
//! address (the client is bound to 127.0.0.2; HAProxy connects from 127.0.0.1), and while one
//! instance is stopped with SIGTERM under load from a few clients, no request fails.
//!
//! HAProxy is the Debian package `haproxy`, which `.ci/run` installs; without it the test
//! fails and says so.
#![cfg(unix)]
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use test_support::backends::header_values;
use test_support::client::RawResponse;
use test_support::process::{Gateway, free_port, is_running, terminate, wait_listening};
use test_support::site;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// The gateway binary under test.
const ANCM: &str = env!("CARGO_BIN_EXE_ancm");

/// The stopped instance's `--drain-delay`, in seconds: several HAProxy check intervals.
const DRAIN_DELAY: &str = "3";

/// HAProxy as a child, killed when dropped.
struct Haproxy(Child);

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One `ancm` instance: the gateway, its admin address, its site folder (dropped last, after
/// the gateway has stopped).
struct Instance {
    gateway: Gateway,
    admin: SocketAddr,
    _site: tempfile::TempDir,
}

fn instance() -> Instance {
    let site = site::with_config(&site::python_echo_config("", &[]));
    let admin = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let admin_arg = admin.to_string();
    // The helper's --listen comes first: --proxy-protocol applies to it.
    let gateway = Gateway::start(
        ANCM,
        site.path(),
        &[
            "--proxy-protocol",
            "--admin-listen",
            &admin_arg,
            "--drain-delay",
            DRAIN_DELAY,
        ],
    );
    wait_listening(admin);
    Instance {
        gateway,
        admin,
        _site: site,
    }
}

fn start_haproxy(
    dir: &std::path::Path,
    frontend: SocketAddr,
    a: &Instance,
    b: &Instance,
) -> Haproxy {
    // Checks go to the admin listener's /readyz (without a PROXY header: `check-send-proxy`
    // is not set); requests get a PROXY v2 header (instance a) or v1 (instance b).
    let config = format!(
        "global
    maxconn 512
defaults
    mode http
    timeout connect 2s
    timeout client 30s
    timeout server 30s
    timeout check 2s
frontend web
    bind {frontend}
    default_backend ancm
backend ancm
    balance roundrobin
    option httpchk GET /readyz
    http-check expect status 200
    default-server inter 250ms fall 2 rise 1
    server a {a_addr} send-proxy-v2 check addr {a_admin_ip} port {a_admin_port}
    server b {b_addr} send-proxy check addr {b_admin_ip} port {b_admin_port}
",
        a_addr = a.gateway.addr,
        a_admin_ip = a.admin.ip(),
        a_admin_port = a.admin.port(),
        b_addr = b.gateway.addr,
        b_admin_ip = b.admin.ip(),
        b_admin_port = b.admin.port(),
    );
    let path = dir.join("haproxy.cfg");
    std::fs::write(&path, config).unwrap();
    // Debian puts it in /usr/sbin, which not every PATH has.
    let program = if Path::new("/usr/sbin/haproxy").is_file() {
        "/usr/sbin/haproxy"
    } else {
        "haproxy"
    };
    let child = Command::new(program)
        .arg("-db")
        .arg("-f")
        .arg(&path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .unwrap_or_else(|error| {
            panic!(
                "cannot run haproxy ({error}): this test needs HAProxy on the PATH; .ci/run installs the Debian package `haproxy` (apt-get install haproxy)"
            )
        });
    let haproxy = Haproxy(child);
    wait_listening(frontend);
    haproxy
}

/// One GET through HAProxy from 127.0.0.2 on a new connection: the status (0 when the
/// exchange failed) and the backend's JSON.
async fn get_from_client(frontend: SocketAddr) -> (u16, Option<serde_json::Value>) {
    let exchange = async {
        let socket = tokio::net::TcpSocket::new_v4()?;
        socket.bind(SocketAddr::from(([127, 0, 0, 2], 0)))?;
        let mut stream = socket.connect(frontend).await?;
        stream
            .write_all(b"GET /who HTTP/1.1\r\nHost: shop.example\r\nConnection: close\r\n\r\n")
            .await?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await?;
        Ok::<_, std::io::Error>(answer)
    };
    match tokio::time::timeout(Duration::from_secs(30), exchange).await {
        Ok(Ok(answer)) if !answer.is_empty() => {
            let resp = RawResponse::parse(&answer);
            let json = serde_json::from_slice(&resp.body).ok();
            (resp.status, json)
        }
        _ => (0, None),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn haproxy_in_front_of_two_instances_loses_no_request_when_one_stops() {
    let a = instance();
    let b = instance();
    let dir = tempfile::tempdir().unwrap();
    let frontend = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let haproxy = start_haproxy(dir.path(), frontend, &a, &b);

    // Both instances answer (round robin), and the backend sees the client at 127.0.0.2.
    let mut backends = BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while backends.len() < 2 {
        assert!(
            Instant::now() < deadline,
            "HAProxy did not reach both instances"
        );
        let (status, json) = get_from_client(frontend).await;
        if status != 200 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        }
        let json = json.unwrap();
        let xff = header_values(&json, "x-forwarded-for");
        assert_eq!(xff.len(), 1, "{xff:?}");
        assert!(xff[0].starts_with("127.0.0.2:"), "{xff:?}");
        backends.insert(json["pid"].as_u64().unwrap());
    }

    // Load from a few clients while instance a stops.
    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicUsize::new(0));
    let mut clients = Vec::new();
    for _ in 0..4 {
        let (stop, ok) = (stop.clone(), ok.clone());
        clients.push(tokio::spawn(async move {
            let mut failures = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let (status, json) = get_from_client(frontend).await;
                let client_seen = json
                    .as_ref()
                    .map(|j| header_values(j, "x-forwarded-for"))
                    .is_some_and(|xff| xff.len() == 1 && xff[0].starts_with("127.0.0.2:"));
                if status == 200 && client_seen {
                    ok.fetch_add(1, Ordering::Relaxed);
                } else {
                    failures.push(status);
                }
            }
            failures
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let pid = a.gateway.pid();
    terminate(pid);
    let signalled = Instant::now();
    while is_running(pid) {
        assert!(
            signalled.elapsed() < Duration::from_secs(40),
            "instance a did not stop"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // A little more load with one instance left.
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    let mut failures = Vec::new();
    for client in clients {
        failures.extend(client.await.unwrap());
    }
    let served = ok.load(Ordering::Relaxed);
    assert!(
        failures.is_empty(),
        "{} of {} requests failed through HAProxy (statuses, 0 = no answer): {failures:?}",
        failures.len(),
        failures.len() + served
    );
    assert!(served > 20, "only {served} requests served");
    assert!(signalled.elapsed() >= Duration::from_secs(3));
    drop(haproxy);
    drop(b);
}
