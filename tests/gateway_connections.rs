//! Client connections that never speak, or stop speaking, are closed, and the number of open
//! client connections is capped: `--header-timeout`, `--h2-idle-timeout`,
//! `--h2-ping-interval` and `--max-connections` of the real `ancm` binary, against raw
//! sockets, raw HTTP/2 frames, a raw TLS client and real HTTP clients.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt as _, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName};
use test_support::process::{Gateway, free_port, wait_listening};
use test_support::site;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// The gateway binary under test.
const ANCM: &str = env!("CARGO_BIN_EXE_ancm");

/// The bound on any single wait of these tests.
const LIMIT: Duration = Duration::from_secs(20);

/// Read (and drop) whatever the gateway sends until it closes the connection; how long that
/// took. Panics when it is still open after `limit`.
async fn closed_within(io: &mut (impl AsyncRead + Unpin), limit: Duration) -> Duration {
    let start = Instant::now();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout_at((start + limit).into(), io.read(&mut buf)).await {
            Err(_) => panic!("the connection is still open after {limit:?}"),
            Ok(Ok(0) | Err(_)) => return start.elapsed(),
            Ok(Ok(_)) => {}
        }
    }
}

/// A site whose only application is at `/app`: requests outside it get the gateway's own 404,
/// without starting a backend.
fn site_without_backend() -> tempfile::TempDir {
    site::with_config(&site::rust_echo_config("", &[]))
}

const NO_BACKEND: [&str; 2] = ["--app-path", "/app"];

// ---- raw HTTP/2 ----

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const DATA: u8 = 0x0;
const HEADERS: u8 = 0x1;
const SETTINGS: u8 = 0x4;
const PING: u8 = 0x6;
const GOAWAY: u8 = 0x7;
const END_STREAM: u8 = 0x1;
const ACK: u8 = 0x1;
const END_HEADERS: u8 = 0x4;

/// One HTTP/2 frame as read off the wire.
#[derive(Debug)]
struct Frame {
    kind: u8,
    flags: u8,
    stream: u32,
    payload: Vec<u8>,
}

/// An h2c client that writes frames by hand, so it can stop short of what a real client does.
struct RawH2 {
    io: TcpStream,
}

impl RawH2 {
    /// Connect and send the preface and an empty SETTINGS frame.
    async fn connect(addr: SocketAddr) -> RawH2 {
        let mut io = TcpStream::connect(addr).await.unwrap();
        io.write_all(PREFACE).await.unwrap();
        let mut h2 = RawH2 { io };
        h2.write_frame(SETTINGS, 0, 0, &[]).await;
        h2
    }

    async fn write_frame(&mut self, kind: u8, flags: u8, stream: u32, payload: &[u8]) {
        let len = u32::try_from(payload.len()).unwrap().to_be_bytes();
        let mut frame = vec![len[1], len[2], len[3], kind, flags];
        frame.extend_from_slice(&stream.to_be_bytes());
        frame.extend_from_slice(payload);
        self.io.write_all(&frame).await.unwrap();
    }

    /// `GET path` on `stream`; `end_stream: false` leaves the request (and the stream) open.
    async fn get(&mut self, stream: u32, path: &str, end_stream: bool) {
        // HPACK: :method GET, :scheme http (static table entries 2 and 6), then :path and
        // :authority as literals without indexing with an indexed name (4 and 1).
        let mut block = vec![0x82, 0x86, 0x04, u8::try_from(path.len()).unwrap()];
        block.extend_from_slice(path.as_bytes());
        block.extend_from_slice(&[0x01, 9]);
        block.extend_from_slice(b"localhost");
        let flags = END_HEADERS | if end_stream { END_STREAM } else { 0 };
        self.write_frame(HEADERS, flags, stream, &block).await;
    }

    /// The next frame, or `None` once the gateway closed the connection. SETTINGS are
    /// acknowledged; PINGs too when `answer_pings`.
    async fn next_frame(&mut self, answer_pings: bool) -> Option<Frame> {
        let read = async {
            let mut head = [0u8; 9];
            self.io.read_exact(&mut head).await.ok()?;
            let len = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
            let mut payload = vec![0u8; len];
            self.io.read_exact(&mut payload).await.ok()?;
            Some(Frame {
                kind: head[3],
                flags: head[4],
                stream: u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff,
                payload,
            })
        };
        let frame = tokio::time::timeout(LIMIT, read)
            .await
            .expect("a frame or the close in time")?;
        if frame.kind == SETTINGS && frame.flags & ACK == 0 {
            self.write_frame(SETTINGS, ACK, 0, &[]).await;
        }
        if answer_pings && frame.kind == PING && frame.flags & ACK == 0 {
            self.write_frame(PING, ACK, 0, &frame.payload).await;
        }
        Some(frame)
    }

    /// Read frames until `stream`'s response has ended.
    async fn response_end(&mut self, stream: u32) {
        loop {
            let frame = self
                .next_frame(true)
                .await
                .expect("a response, not a close");
            if frame.stream == stream
                && matches!(frame.kind, HEADERS | DATA)
                && frame.flags & END_STREAM != 0
            {
                return;
            }
        }
    }
}

// ---- the first request head ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_connection_is_closed_after_the_header_timeout() {
    let site = site_without_backend();
    let gw = Gateway::start(
        ANCM,
        site.path(),
        &[&NO_BACKEND[..], &["--header-timeout", "1"]].concat(),
    );
    let mut silent = TcpStream::connect(gw.addr).await.unwrap();
    let took = closed_within(&mut silent, Duration::from_secs(5)).await;
    assert!(took >= Duration::from_millis(800), "closed after {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_h2c_connection_with_only_the_preface_is_closed_after_the_header_timeout() {
    let site = site_without_backend();
    let gw = Gateway::start(
        ANCM,
        site.path(),
        &[&NO_BACKEND[..], &["--header-timeout", "1"]].concat(),
    );
    let start = Instant::now();
    let mut h2 = RawH2::connect(gw.addr).await;
    // The gateway's SETTINGS and whatever follows, acknowledged, until it closes.
    while h2.next_frame(true).await.is_some() {}
    let took = start.elapsed();
    assert!(
        (Duration::from_millis(800)..Duration::from_secs(5)).contains(&took),
        "closed after {took:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_http1_keep_alive_connection_is_closed_after_the_header_timeout() {
    let site = site_without_backend();
    let gw = Gateway::start(
        ANCM,
        site.path(),
        &[&NO_BACKEND[..], &["--header-timeout", "2"]].concat(),
    );
    let mut io = TcpStream::connect(gw.addr).await.unwrap();
    io.write_all(b"GET /x HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8];
        tokio::time::timeout(LIMIT, io.read_exact(&mut byte))
            .await
            .unwrap()
            .unwrap();
        head.push(byte[0]);
    }
    assert!(head.starts_with(b"HTTP/1.1 404"), "{head:?}");
    // 404 without a body: the connection is idle now (since a little before this point).
    let took = closed_within(&mut io, Duration::from_secs(6)).await;
    assert!(took >= Duration::from_secs(1), "closed after {took:?}");
}

// ---- HTTP/2 idle and keep-alive ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_h2c_connection_gets_goaway_and_is_closed() {
    let site = site_without_backend();
    let gw = Gateway::start(
        ANCM,
        site.path(),
        &[&NO_BACKEND[..], &["--h2-idle-timeout", "1"]].concat(),
    );
    let mut h2 = RawH2::connect(gw.addr).await;
    h2.get(1, "/x", true).await;
    h2.response_end(1).await;
    let idle_since = Instant::now();
    let mut goaway_after = None;
    while let Some(frame) = h2.next_frame(true).await {
        if frame.kind == GOAWAY && goaway_after.is_none() {
            goaway_after = Some(idle_since.elapsed());
        }
    }
    let closed_after = idle_since.elapsed();
    let goaway_after = goaway_after.expect("a GOAWAY before the close");
    // Idle since a little before `idle_since`.
    assert!(
        goaway_after >= Duration::from_millis(500),
        "GOAWAY after {goaway_after:?}"
    );
    assert!(
        closed_after < Duration::from_secs(5),
        "closed after {closed_after:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_h2c_client_that_stops_answering_pings_is_disconnected() {
    // A request to a slow backend keeps a stream open, so the connection is not idle; the
    // client stops answering PINGs, as a vanished peer would.
    let site = site::with_config(&site::rust_echo_config("", &[]));
    let gw = Gateway::start(
        ANCM,
        site.path(),
        &["--h2-ping-interval", "1", "--h2-idle-timeout", "60"],
    );
    let mut h2 = RawH2::connect(gw.addr).await;
    h2.get(1, "/slow?ms=15000", true).await;
    let start = Instant::now();
    let mut pinged = false;
    while let Some(frame) = h2.next_frame(false).await {
        pinged |= frame.kind == PING && frame.flags & ACK == 0;
        assert!(
            !(frame.stream == 1 && frame.kind == HEADERS),
            "the slow response came before the disconnect"
        );
    }
    let took = start.elapsed();
    assert!(pinged, "no PING before the disconnect");
    assert!(took < Duration::from_secs(8), "disconnected after {took:?}");
}

// ---- TLS ----

/// A test certificate file (tests/fixtures/tls: a server certificate for localhost and its
/// CA).
fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/tls")
        .join(name)
}

/// The gateway's TLS provider on this OS (src/tls.rs), for the client side too.
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    #[cfg(not(windows))]
    let provider = rustls::crypto::ring::default_provider();
    #[cfg(windows)]
    let provider = rustls_graviola::default_provider();
    Arc::new(provider)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_clients_that_never_handshake_or_never_send_a_request_are_closed() {
    let site = site_without_backend();
    let https: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let (https_arg, cert, key) = (
        https.to_string(),
        fixture("server.pem"),
        fixture("server.key"),
    );
    let args = [
        "--https-listen",
        &https_arg,
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
        "--header-timeout",
        "1",
    ];
    let _gw = Gateway::start(ANCM, site.path(), &[&NO_BACKEND[..], &args].concat());
    wait_listening(https);

    // No ClientHello at all.
    let mut silent = TcpStream::connect(https).await.unwrap();
    let took = closed_within(&mut silent, Duration::from_secs(5)).await;
    assert!(took >= Duration::from_millis(800), "closed after {took:?}");

    // A complete handshake, then nothing.
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_file(fixture("ca.pem")).unwrap())
        .unwrap();
    let config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let start = Instant::now();
    let tcp = TcpStream::connect(https).await.unwrap();
    let mut tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    closed_within(&mut tls, Duration::from_secs(5)).await;
    let took = start.elapsed();
    assert!(took >= Duration::from_millis(800), "closed after {took:?}");
}

// ---- the connection cap ----

/// An HTTP/1.1 keep-alive connection from a real client.
struct KeepAlive {
    sender: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    conn: tokio::task::JoinHandle<()>,
}

impl KeepAlive {
    async fn connect(addr: SocketAddr) -> KeepAlive {
        let io = TokioIo::new(TcpStream::connect(addr).await.unwrap());
        let (sender, conn) = hyper::client::conn::http1::handshake(io).await.unwrap();
        let conn = tokio::spawn(async move {
            let _ = conn.await;
        });
        KeepAlive { sender, conn }
    }

    /// `GET path`: the status and body.
    async fn get(&mut self, path: &str) -> (u16, Bytes) {
        let req = Request::get(path)
            .header("host", "localhost")
            .body(Full::new(Bytes::new()))
            .unwrap();
        // Ready for the next request a moment after the previous body ended, not at once.
        self.sender.ready().await.unwrap();
        let resp = self.sender.send_request(req).await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.into_body().collect().await.unwrap().to_bytes())
    }

    /// Close the connection.
    fn close(self) {
        self.conn.abort();
    }
}

/// The CPU time (user + system, in clock ticks) `pid` has used.
#[cfg(target_os = "linux")]
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command name, which ends with the last ')': utime and stime are the
    // 14th and 15th of the whole line.
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_the_cap_wait_until_one_closes() {
    let site = site_without_backend();
    let gw = Gateway::start(
        ANCM,
        site.path(),
        &[
            &NO_BACKEND[..],
            &["--max-connections", "5", "--threads", "2"],
        ]
        .concat(),
    );
    let mut held = Vec::new();
    for _ in 0..5 {
        let mut client = KeepAlive::connect(gw.addr).await;
        let (status, _) = tokio::time::timeout(LIMIT, client.get("/x")).await.unwrap();
        assert_eq!(status, 404);
        held.push(client);
    }

    let mut sixth = KeepAlive::connect(gw.addr).await;
    let answer = tokio::spawn(async move { sixth.get("/x").await });
    // At the cap, the gateway waits without spinning.
    #[cfg(target_os = "linux")]
    {
        let pid = gw.pid();
        let before = cpu_ticks(pid);
        tokio::time::sleep(Duration::from_secs(2)).await;
        let used = cpu_ticks(pid) - before;
        // Clock ticks are 1/100 s: a spinning accept loop would use about 200.
        assert!(used < 50, "{used} ticks of CPU in 2 s at the cap");
    }
    #[cfg(not(target_os = "linux"))]
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        !answer.is_finished(),
        "the sixth connection was served at the cap"
    );

    // One held connection closes: the sixth is accepted and served.
    held.pop().unwrap().close();
    let (status, _) = tokio::time::timeout(LIMIT, answer)
        .await
        .expect("the sixth connection served once a slot freed")
        .unwrap();
    assert_eq!(status, 404);
    // The others were held throughout and still work.
    for client in &mut held {
        assert_eq!(
            tokio::time::timeout(LIMIT, client.get("/x"))
                .await
                .unwrap()
                .0,
            404
        );
    }
}

// ---- well-behaved clients ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_alive_clients_and_long_requests_are_unaffected() {
    // Timeouts of 1 s, and clients that pause less than that between requests, for longer
    // than that in all, with requests that take longer than that.
    let site = site::with_config(&site::rust_echo_config("", &[]));
    let gw = Gateway::start(
        ANCM,
        site.path(),
        &["--header-timeout", "1", "--h2-idle-timeout", "1"],
    );

    let mut h1 = KeepAlive::connect(gw.addr).await;
    let (status, body) = tokio::time::timeout(LIMIT, h1.get("/slow?ms=1500"))
        .await
        .unwrap();
    assert_eq!(status, 200, "{body:?}");
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(
            tokio::time::timeout(LIMIT, h1.get("/")).await.unwrap().0,
            200
        );
    }

    let io = TokioIo::new(TcpStream::connect(gw.addr).await.unwrap());
    let (mut h2, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
        .await
        .unwrap();
    let h2_conn = tokio::spawn(conn);
    let get = |path: &str| {
        Request::get(format!("http://localhost{path}"))
            .body(Full::new(Bytes::new()))
            .unwrap()
    };
    let resp = tokio::time::timeout(LIMIT, h2.send_request(get("/slow?ms=1500")))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(resp.status(), 200);
    resp.into_body().collect().await.unwrap();
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(400)).await;
        let resp = tokio::time::timeout(LIMIT, h2.send_request(get("/")))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(resp.status(), 200);
    }
    assert!(!h2_conn.is_finished(), "the HTTP/2 connection was closed");
}
