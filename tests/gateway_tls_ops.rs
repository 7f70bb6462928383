//! HTTPS the way operators run it, against the real `ancm` binary with real TLS clients:
//! session resumption on TLS 1.3 and 1.2 (rustls and `openssl s_client -reconnect`),
//! certificates reloaded under load (file changes, certbot-style link swaps and SIGHUP), a
//! bad new file keeping the certificate in use, several certificates by SNI name, and a key
//! that does not match its certificate refused at start. Certificates are made at test time
//! with rcgen.
#![cfg(unix)]
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt as _, Full};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, SanType};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{Resumption, Tls12Resumption};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, HandshakeKind, ProtocolVersion, SignatureScheme};
use test_support::backends::header_values;
use test_support::process::{free_port, terminate, wait_exit};
use test_support::site;

/// The bound on every wait of these tests.
const LIMIT: Duration = Duration::from_secs(20);

/// A test CA and the leaf certificates it signs.
struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
    der: CertificateDer<'static>,
}

/// A leaf certificate: its PEM chain (leaf then CA), its key's PEM, and its DER.
struct Leaf {
    chain_pem: String,
    key_pem: String,
    der: Vec<u8>,
}

impl Ca {
    fn new() -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "ancm ops test CA");
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        let der = issuer.der().clone();
        Ca { issuer, der }
    }

    /// A leaf for `names` (and 127.0.0.1) with a new key.
    fn leaf(&self, names: &[&str]) -> Leaf {
        self.leaf_with(names, &KeyPair::generate().unwrap())
    }

    /// A leaf for `names` (and 127.0.0.1) with `key`.
    fn leaf_with(&self, names: &[&str], key: &KeyPair) -> Leaf {
        let mut params =
            CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>())
                .unwrap();
        params
            .subject_alt_names
            .push(SanType::IpAddress("127.0.0.1".parse().unwrap()));
        let cert = params.signed_by(key, &self.issuer).unwrap();
        Leaf {
            chain_pem: cert.pem() + &self.issuer.pem(),
            key_pem: key.serialize_pem(),
            der: cert.der().to_vec(),
        }
    }

    /// A client certificate signed by this CA: (chain, key).
    fn client(&self) -> (Vec<CertificateDer<'static>>, Vec<u8>) {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "ops test client");
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (vec![cert.der().clone()], key.serialize_der())
    }
}

/// Writes `content` to `path` the way deploy tools do: a temp file renamed into place.
fn replace(path: &Path, content: &str) {
    let tmp = path.with_extension("tmp-new");
    std::fs::write(&tmp, content).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// Points the symbolic link `link` at `target` atomically (a new link renamed over it), as
/// certbot does in `live/`.
fn relink(link: &Path, target: &Path) {
    let tmp = link.with_extension("link-new");
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(target, &tmp).unwrap();
    std::fs::rename(&tmp, link).unwrap();
}

/// SIGHUP to `pid`: reload the TLS certificates.
fn sighup(pid: u32) {
    let pid = nix::unistd::Pid::from_raw(i32::try_from(pid).unwrap());
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGHUP).unwrap();
}

/// A running `ancm run` with an HTTPS listener, its stderr (RUST_LOG=info) in a file.
struct TlsGateway {
    child: Option<Child>,
    https: SocketAddr,
    log: PathBuf,
    _log_dir: tempfile::TempDir,
}

impl TlsGateway {
    /// `ancm run SITE --https-listen ADDR` with `args`, waiting until it accepts connections.
    fn start(site: &Path, args: &[&str]) -> TlsGateway {
        let https: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let log_dir = tempfile::tempdir().unwrap();
        let log = log_dir.path().join("ancm.log");
        let child = Command::new(env!("CARGO_BIN_EXE_ancm"))
            .arg("run")
            .arg(site)
            .arg("--https-listen")
            .arg(https.to_string())
            .args(args)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut gw = TlsGateway {
            child: Some(child),
            https,
            log,
            _log_dir: log_dir,
        };
        let deadline = Instant::now() + LIMIT;
        while std::net::TcpStream::connect(https).is_err() {
            if let Some(status) = gw.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("ancm exited with {status}: {}", gw.log_text());
            }
            assert!(Instant::now() < deadline, "nothing listens on {https}");
            std::thread::sleep(Duration::from_millis(50));
        }
        gw
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The log lines containing every one of `parts`.
    fn log_lines(&self, parts: &[&str]) -> Vec<String> {
        self.log_text()
            .lines()
            .filter(|line| parts.iter().all(|p| line.contains(p)))
            .map(str::to_owned)
            .collect()
    }

    /// Waits until a log line contains every one of `parts`.
    fn wait_log(&self, parts: &[&str]) -> String {
        let deadline = Instant::now() + LIMIT;
        loop {
            if let Some(line) = self.log_lines(parts).pop() {
                return line;
            }
            assert!(
                Instant::now() < deadline,
                "no log line with {parts:?}:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for TlsGateway {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            terminate(child.id());
            if child.try_wait().ok().flatten().is_none() {
                let deadline = Instant::now() + Duration::from_secs(10);
                while Instant::now() < deadline && child.try_wait().ok().flatten().is_none() {
                    std::thread::sleep(Duration::from_millis(50));
                }
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

/// Accepts any server certificate (the SNI tests look at which one was sent), checking only
/// the handshake signatures.
#[derive(Debug)]
struct AnyServerCert(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AnyServerCert {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// How a test client verifies and resumes.
struct ClientOptions<'a> {
    /// Trust this CA; `None` accepts any certificate.
    ca: Option<&'a Ca>,
    version: &'static rustls::SupportedProtocolVersion,
    resumption: Resumption,
    client_cert: Option<(Vec<CertificateDer<'static>>, Vec<u8>)>,
}

fn client_config(options: ClientOptions<'_>) -> Arc<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[options.version])
        .unwrap();
    let builder = match options.ca {
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            roots.add(ca.der.clone()).unwrap();
            builder.with_root_certificates(roots)
        }
        None => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyServerCert(provider))),
    };
    let mut config = match options.client_cert {
        Some((chain, key)) => builder
            .with_client_auth_cert(chain, PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key)))
            .unwrap(),
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    config.resumption = options.resumption;
    Arc::new(config)
}

/// What one HTTPS request saw.
#[derive(Debug)]
struct Seen {
    leaf: Vec<u8>,
    kind: HandshakeKind,
    version: ProtocolVersion,
    status: u16,
    body: Bytes,
}

type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

/// A TLS connection to `addr` sending `server_name` (an IP address sends no SNI), with an
/// HTTP/1.1 client on it, and what the handshake gave.
async fn connect(
    addr: SocketAddr,
    config: Arc<rustls::ClientConfig>,
    server_name: &str,
) -> Result<(Sender, Vec<u8>, HandshakeKind, ProtocolVersion), String> {
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| e.to_string())?;
    let name = ServerName::try_from(server_name.to_owned()).unwrap();
    let tls = tokio::time::timeout(
        LIMIT,
        tokio_rustls::TlsConnector::from(config).connect(name, tcp),
    )
    .await
    .map_err(|_| "handshake timed out".to_owned())?
    .map_err(|e| e.to_string())?;
    let session = tls.get_ref().1;
    let leaf = session.peer_certificates().unwrap()[0].to_vec();
    let kind = session.handshake_kind().unwrap();
    let version = session.protocol_version().unwrap();
    let (sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    Ok((sender, leaf, kind, version))
}

/// `GET /` on an open connection.
async fn request(sender: &mut Sender) -> Result<(u16, Bytes), String> {
    let req = Request::get("/")
        .header("host", "localhost")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let exchange = async {
        let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
        let status = resp.status().as_u16();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        Ok::<_, String>((status, body))
    };
    tokio::time::timeout(LIMIT, exchange)
        .await
        .map_err(|_| "request timed out".to_owned())?
}

/// One request on a new connection. The whole response is read, so TLS 1.3 session
/// tickets (sent after the handshake) have reached the client's session store.
async fn get(
    addr: SocketAddr,
    config: Arc<rustls::ClientConfig>,
    server_name: &str,
) -> Result<Seen, String> {
    let (mut sender, leaf, kind, version) = connect(addr, config, server_name).await?;
    let (status, body) = request(&mut sender).await?;
    Ok(Seen {
        leaf,
        kind,
        version,
        status,
        body,
    })
}

/// The leaf certificate a new full handshake gets now.
async fn current_leaf(addr: SocketAddr, ca: &Ca) -> Vec<u8> {
    let config = client_config(ClientOptions {
        ca: Some(ca),
        version: &rustls::version::TLS13,
        resumption: Resumption::disabled(),
        client_cert: None,
    });
    get(addr, config, "localhost").await.unwrap().leaf
}

/// Waits until new handshakes get `leaf`.
async fn wait_for_leaf(addr: SocketAddr, ca: &Ca, leaf: &[u8]) {
    let deadline = Instant::now() + LIMIT;
    while current_leaf(addr, ca).await != leaf {
        assert!(
            Instant::now() < deadline,
            "the new certificate is not served"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// More one-off clients (full TLS 1.3 handshakes, a request each) than a server-side
/// session cache of rustls' default size (256) holds sessions: a client resumes after them
/// only when the server keeps its sessions in tickets (or in a larger cache).
async fn crowd_out_sessions(addr: SocketAddr) {
    let config = client_config(ClientOptions {
        ca: None,
        version: &rustls::version::TLS13,
        resumption: Resumption::disabled(),
        client_cert: None,
    });
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let config = config.clone();
        tasks.spawn(async move {
            for _ in 0..40 {
                let seen = get(addr, config.clone(), "localhost").await.unwrap();
                assert_eq!(seen.status, 200);
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
}

fn path_str(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_resume_over_tls13_and_tls12_and_keep_the_client_certificate() {
    let ca = Ca::new();
    let leaf = ca.leaf(&["localhost"]);
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, ca_file) = (
        dir.path().join("site.pem"),
        dir.path().join("site.key"),
        dir.path().join("ca.pem"),
    );
    std::fs::write(&cert, &leaf.chain_pem).unwrap();
    std::fs::write(&key, &leaf.key_pem).unwrap();
    std::fs::write(&ca_file, ca.issuer.pem()).unwrap();
    let site = site::with_config(&site::rust_echo_config("", &[]));
    let gw = TlsGateway::start(
        site.path(),
        &[
            "--tls-cert",
            path_str(&cert),
            "--tls-key",
            path_str(&key),
            "--client-ca",
            path_str(&ca_file),
        ],
    );
    let client_cert = ca.client();
    let expected_header = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(client_cert.0[0].as_ref())
    };
    let cases = [
        (&rustls::version::TLS13, Tls12Resumption::SessionIdOrTickets),
        (&rustls::version::TLS12, Tls12Resumption::SessionIdOrTickets),
        (&rustls::version::TLS12, Tls12Resumption::SessionIdOnly),
    ];
    // Each case resumes after many other clients came and went.
    for (version, tls12) in cases {
        let config = client_config(ClientOptions {
            ca: Some(&ca),
            version,
            resumption: Resumption::in_memory_sessions(16).tls12_resumption(tls12),
            client_cert: Some(client_cert.clone()),
        });
        let case = format!("{:?} {tls12:?}", version.version);
        let first = get(gw.https, config.clone(), "localhost").await.unwrap();
        assert_eq!(first.version, version.version, "{case}");
        assert_eq!(first.kind, HandshakeKind::Full, "{case}");
        crowd_out_sessions(gw.https).await;
        for _ in 0..2 {
            let again = get(gw.https, config.clone(), "localhost").await.unwrap();
            assert_eq!(again.kind, HandshakeKind::Resumed, "{case}");
            assert_eq!(again.status, 200, "{case}");
            // A resumed session still knows the client's certificate.
            let json: serde_json::Value = serde_json::from_slice(&again.body).unwrap();
            assert_eq!(
                header_values(&json, "ms-aspnetcore-clientcert"),
                std::slice::from_ref(&expected_header),
                "{case}"
            );
        }
    }
}

/// Runs `openssl s_client` against `addr` with `args`, `stdin` as its input, and returns its
/// standard output once it has exited.
fn s_client(addr: SocketAddr, args: &[&str], stdin: &Path) -> String {
    let mut child = Command::new("openssl")
        .args(["s_client", "-connect"])
        .arg(addr.to_string())
        .args(["-servername", "localhost"])
        .args(args)
        .stdin(std::fs::File::open(stdin).unwrap())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let status = wait_exit(&mut child, LIMIT);
    let mut out = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut out).unwrap();
    assert!(
        status.success(),
        "openssl s_client {args:?}: {status}\n{out}"
    );
    out
}

fn count_lines(out: &str, prefix: &str) -> usize {
    out.lines().filter(|l| l.starts_with(prefix)).count()
}

/// OpenSSL's own client resumes: over TLS 1.2 with `-reconnect` (one connection, then five
/// with its session); over TLS 1.3 with a session saved by a first `s_client` that read a
/// response (so the tickets, which come after the handshake, reached it) and offered by a
/// second, after many other clients. (OpenSSL 3.0's `-reconnect` drops each connection right after its handshake,
/// before TLS 1.3 tickets arrive, so it shows `New` for every TLS 1.3 server, nginx too.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openssl_s_client_resumes_over_tls13_and_tls12() {
    if Command::new("openssl").arg("version").output().is_err() {
        eprintln!("SKIPPED: `openssl` is not installed (.ci/run installs it)");
        return;
    }
    let ca = Ca::new();
    let leaf = ca.leaf(&["localhost"]);
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("site.pem"), dir.path().join("site.key"));
    std::fs::write(&cert, &leaf.chain_pem).unwrap();
    std::fs::write(&key, &leaf.key_pem).unwrap();
    let (request, empty, session) = (
        dir.path().join("request"),
        dir.path().join("empty"),
        dir.path().join("session.pem"),
    );
    std::fs::write(
        &request,
        "GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    std::fs::write(&empty, "").unwrap();
    let site = site::with_config(&site::rust_echo_config("", &[]));
    let gw = TlsGateway::start(
        site.path(),
        &["--tls-cert", path_str(&cert), "--tls-key", path_str(&key)],
    );

    let out = s_client(gw.https, &["-tls1_2", "-reconnect"], &empty);
    assert!(
        count_lines(&out, "New, TLSv1.2") == 1 && count_lines(&out, "Reused, TLSv1.2") == 5,
        "{out}"
    );

    let session = path_str(&session);
    let first = s_client(
        gw.https,
        &["-tls1_3", "-ign_eof", "-sess_out", session],
        &request,
    );
    assert!(count_lines(&first, "New, TLSv1.3") == 1, "{first}");
    assert!(first.contains("HTTP/1.1 200 OK"), "{first}");
    crowd_out_sessions(gw.https).await;
    let second = s_client(
        gw.https,
        &["-tls1_3", "-ign_eof", "-sess_in", session],
        &request,
    );
    assert!(count_lines(&second, "Reused, TLSv1.3") == 1, "{second}");
    assert!(second.contains("HTTP/1.1 200 OK"), "{second}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificates_reload_under_load_without_a_failed_request() {
    let ca = Ca::new();
    let key_a = KeyPair::generate().unwrap();
    let a = ca.leaf_with(&["localhost"], &key_a);
    // C: a renewal keeping A's key (certbot's --reuse-key); B: a new key.
    let c = ca.leaf_with(&["localhost"], &key_a);
    let b = ca.leaf(&["localhost"]);
    // certbot's layout: live/ links into archive/; the certificate through one more link
    // (chain/), which the gateway does not watch: changing it is seen on SIGHUP only.
    let dir = tempfile::tempdir().unwrap();
    let d = |p: &str| dir.path().join(p);
    for sub in ["live", "chain", "archive"] {
        std::fs::create_dir(d(sub)).unwrap();
    }
    for (name, content) in [
        ("a.pem", &a.chain_pem),
        ("a.key", &a.key_pem),
        ("b.pem", &b.chain_pem),
        ("b.key", &b.key_pem),
        ("c.pem", &c.chain_pem),
    ] {
        std::fs::write(d("archive").join(name), content).unwrap();
    }
    std::os::unix::fs::symlink("../archive/a.pem", d("chain/site.pem")).unwrap();
    std::os::unix::fs::symlink("../chain/site.pem", d("live/site.pem")).unwrap();
    std::os::unix::fs::symlink("../archive/a.key", d("live/site.key")).unwrap();
    let site = site::with_config(&site::rust_echo_config("", &[]));
    let gw = TlsGateway::start(
        site.path(),
        &[
            "--tls-cert",
            path_str(&d("live/site.pem")),
            "--tls-key",
            path_str(&d("live/site.key")),
        ],
    );
    assert_eq!(current_leaf(gw.https, &ca).await, a.der);

    // Load: clients making a new connection per request, some resuming, and one keep-alive
    // connection opened before any reload.
    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let mut clients = Vec::new();
    for index in 0..3 {
        let config = client_config(ClientOptions {
            ca: Some(&ca),
            version: &rustls::version::TLS13,
            resumption: if index == 0 {
                Resumption::in_memory_sessions(16)
            } else {
                Resumption::disabled()
            },
            client_cert: None,
        });
        let (stop, ok, failures, addr) = (stop.clone(), ok.clone(), failures.clone(), gw.https);
        clients.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                match get(addr, config.clone(), "localhost").await {
                    Ok(seen) if seen.status == 200 => {
                        ok.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(seen) => failures
                        .lock()
                        .unwrap()
                        .push(format!("status {}", seen.status)),
                    Err(e) => failures.lock().unwrap().push(e),
                }
            }
        }));
    }
    let keep_alive_config = client_config(ClientOptions {
        ca: Some(&ca),
        version: &rustls::version::TLS13,
        resumption: Resumption::disabled(),
        client_cert: None,
    });
    let (mut keep_alive, old_leaf, _, _) = connect(gw.https, keep_alive_config, "localhost")
        .await
        .unwrap();
    assert_eq!(old_leaf, a.der);
    assert_eq!(request(&mut keep_alive).await.unwrap().0, 200);

    // SIGHUP: the certificate changed where no watched folder sees it.
    relink(&d("chain/site.pem"), Path::new("../archive/c.pem"));
    sighup(gw.pid());
    wait_for_leaf(gw.https, &ca, &c.der).await;
    gw.wait_log(&["TLS certificate reloaded", "trigger=\"SIGHUP\""]);
    assert_eq!(request(&mut keep_alive).await.unwrap().0, 200);

    // A renewal with a new key, certbot-style: new files in archive/, live/ links swapped.
    relink(&d("live/site.key"), Path::new("../archive/b.key"));
    relink(&d("live/site.pem"), Path::new("../archive/b.pem"));
    wait_for_leaf(gw.https, &ca, &b.der).await;
    gw.wait_log(&["TLS certificate reloaded", "trigger=\"file change\""]);

    // The connection made before the reloads still works.
    assert_eq!(request(&mut keep_alive).await.unwrap().0, 200);
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        tokio::time::timeout(LIMIT, client).await.unwrap().unwrap();
    }
    let failures = failures.lock().unwrap();
    assert!(failures.is_empty(), "failed requests: {failures:?}");
    assert!(ok.load(Ordering::Relaxed) > 10, "too few requests made");
    // The links were swapped atomically: no read ever found a file missing.
    assert!(
        gw.log_lines(&["cannot reload a TLS certificate"])
            .is_empty(),
        "{}",
        gw.log_text()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_new_files_keep_the_certificate_in_use_and_are_logged() {
    let ca = Ca::new();
    let a = ca.leaf(&["localhost"]);
    let b = ca.leaf(&["localhost"]);
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("site.pem"), dir.path().join("site.key"));
    std::fs::write(&cert, &a.chain_pem).unwrap();
    std::fs::write(&key, &a.key_pem).unwrap();
    let site = site::with_config(&site::rust_echo_config("", &[]));
    let gw = TlsGateway::start(
        site.path(),
        &["--tls-cert", path_str(&cert), "--tls-key", path_str(&key)],
    );
    let cert_name = path_str(&cert);

    // Not a certificate at all.
    replace(&cert, "not a certificate\n");
    let line = gw.wait_log(&["ERROR", cert_name, "no CERTIFICATE found"]);
    assert!(line.contains("keeping the certificate in use"), "{line}");
    assert_eq!(current_leaf(gw.https, &ca).await, a.der);

    // A new certificate whose key was not replaced with it.
    replace(&cert, &b.chain_pem);
    gw.wait_log(&["ERROR", cert_name, path_str(&key), "does not match"]);
    assert_eq!(current_leaf(gw.https, &ca).await, a.der);

    // The same bytes written again are not read as new (no second error); SIGHUP re-reads
    // and finds nothing new either.
    replace(&cert, &b.chain_pem);
    sighup(gw.pid());
    gw.wait_log(&["SIGHUP received"]);

    // The key follows: B is served.
    replace(&key, &b.key_pem);
    wait_for_leaf(gw.https, &ca, &b.der).await;
    assert_eq!(gw.log_lines(&["ERROR", "does not match"]).len(), 1);
    assert_eq!(gw.log_lines(&["ERROR"]).len(), 2, "{}", gw.log_text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sni_picks_the_certificate_and_the_first_is_the_default() {
    let ca = Ca::new();
    let one = ca.leaf(&["one.test"]);
    let two = ca.leaf(&["two.test", "*.wild.test"]);
    let dir = tempfile::tempdir().unwrap();
    let file = |name: &str, content: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, content).unwrap();
        path.to_str().unwrap().to_owned()
    };
    let (one_cert, one_key) = (
        file("one.pem", &one.chain_pem),
        file("one.key", &one.key_pem),
    );
    let (two_cert, two_key) = (
        file("two.pem", &two.chain_pem),
        file("two.key", &two.key_pem),
    );
    let site = site::with_config(&site::rust_echo_config("", &[]));
    let gw = TlsGateway::start(
        site.path(),
        &[
            "--tls-cert",
            &one_cert,
            "--tls-key",
            &one_key,
            "--tls-cert",
            &two_cert,
            "--tls-key",
            &two_key,
        ],
    );
    for version in [&rustls::version::TLS13, &rustls::version::TLS12] {
        let config = client_config(ClientOptions {
            ca: None,
            version,
            resumption: Resumption::disabled(),
            client_cert: None,
        });
        for (name, expected) in [
            ("one.test", &one.der),
            ("two.test", &two.der),
            ("TWO.test", &two.der),
            ("x.wild.test", &two.der),
            ("unknown.test", &one.der),
            // An IP address: no SNI name.
            ("127.0.0.1", &one.der),
        ] {
            let seen = get(gw.https, config.clone(), name).await.unwrap();
            assert_eq!(seen.status, 200);
            assert!(seen.leaf == *expected, "{:?} {name}", version.version);
        }
    }
    // And a verifying client accepts each name's certificate.
    let config = client_config(ClientOptions {
        ca: Some(&ca),
        version: &rustls::version::TLS13,
        resumption: Resumption::disabled(),
        client_cert: None,
    });
    for name in ["one.test", "two.test", "a.wild.test"] {
        get(gw.https, config.clone(), name).await.unwrap();
    }
}

#[test]
fn a_key_that_does_not_match_its_certificate_is_refused_at_start() {
    let ca = Ca::new();
    let a = ca.leaf(&["localhost"]);
    let b = ca.leaf(&["localhost"]);
    let dir = tempfile::tempdir().unwrap();
    let file = |name: &str, content: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, content).unwrap();
        path.to_str().unwrap().to_owned()
    };
    let (a_cert, a_key, b_key) = (
        file("a.pem", &a.chain_pem),
        file("a.key", &a.key_pem),
        file("b.key", &b.key_pem),
    );
    let site = site::with_config(&site::rust_echo_config("", &[]));
    let run = |args: &[&str]| {
        let mut child = Command::new(env!("CARGO_BIN_EXE_ancm"))
            .arg("run")
            .arg(site.path())
            .args(["--https-listen", "127.0.0.1:0"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let status = wait_exit(&mut child, LIMIT);
        let mut err = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
        (status.code(), err)
    };
    // The second pair's key is the first's: refused, naming both files.
    let (code, err) = run(&[
        "--tls-cert",
        &a_cert,
        "--tls-key",
        &a_key,
        "--tls-cert",
        &a_cert,
        "--tls-key",
        &b_key,
    ]);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "the private key in {b_key} does not match the certificate in {a_cert}"
        )),
        "{err}"
    );
    // Unpaired flags.
    let (code, err) = run(&[
        "--tls-cert",
        &a_cert,
        "--tls-cert",
        &a_cert,
        "--tls-key",
        &a_key,
    ]);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("--tls-cert and --tls-key go in pairs"),
        "{err}"
    );
}
