//! A new-connection HTTPS load generator for `benches/load/run_tls.sh`: N concurrent tasks,
//! each making one TLS connection per request (`GET` with `Connection: close`, the response
//! read to the end), with or without session resumption, over TLS 1.3 or 1.2.
//!
//! wrk cannot do this: with `Connection: close` it makes a new TLS connection per request but
//! never offers the previous session, so every handshake is a full one. `openssl s_time`
//! can resume but runs one connection at a time. Each task here is one client with its own
//! rustls session store, so with resumption on every connection of a task after its first
//! offers a ticket (TLS 1.3, and TLS 1.2 servers that issue them) or a session ID. (One store
//! shared by all tasks would not do: rustls keeps at most 8 TLS 1.3 tickets per server name,
//! fewer than the connections that start at once.)
//! The server's certificate is not verified (it is the benchmark's own, on 127.0.0.1), so
//! the client spends its CPU on the handshake itself.
//!
//! ```text
//! tls_load ADDR [--tls 1.3|1.2] [--resume on|off] [-c N] [-d SECONDS] [--threads N]
//! ```
//!
//! It prints one line: `requests=… errors=… resumed=… full=… secs=… rps=…`.
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rustls::client::Resumption;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, HandshakeKind, SignatureScheme};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What to run.
struct Options {
    addr: SocketAddr,
    tls13: bool,
    resume: bool,
    concurrency: usize,
    duration: Duration,
    threads: usize,
}

fn usage() -> BoxError {
    "usage: tls_load ADDR [--tls 1.3|1.2] [--resume on|off] [-c N] [-d SECONDS] [--threads N]"
        .into()
}

fn options() -> Result<Options, BoxError> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().ok_or_else(usage)?.parse()?;
    let mut options = Options {
        addr,
        tls13: true,
        resume: true,
        concurrency: 50,
        duration: Duration::from_secs(5),
        threads: 1,
    };
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(usage)?;
        match (flag.as_str(), value.as_str()) {
            ("--tls", "1.3") => options.tls13 = true,
            ("--tls", "1.2") => options.tls13 = false,
            ("--resume", "on") => options.resume = true,
            ("--resume", "off") => options.resume = false,
            ("-c", n) => options.concurrency = n.parse()?,
            ("-d", secs) => options.duration = Duration::from_secs_f64(secs.parse()?),
            ("--threads", n) => options.threads = n.parse()?,
            _ => return Err(usage()),
        }
    }
    Ok(options)
}

fn provider() -> Arc<CryptoProvider> {
    #[cfg(not(windows))]
    let provider = rustls::crypto::ring::default_provider();
    #[cfg(windows)]
    let provider = rustls_graviola::default_provider();
    Arc::new(provider)
}

/// Accepts the server's certificate unverified; checks the handshake signatures.
#[derive(Debug)]
struct Unverified(Arc<CryptoProvider>);

impl ServerCertVerifier for Unverified {
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

fn client_config(options: &Options) -> Result<Arc<rustls::ClientConfig>, BoxError> {
    let provider = provider();
    let version = if options.tls13 {
        &rustls::version::TLS13
    } else {
        &rustls::version::TLS12
    };
    let mut config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[version])?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(Unverified(provider)))
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    config.resumption = if options.resume {
        Resumption::in_memory_sessions(4)
    } else {
        Resumption::disabled()
    };
    Ok(Arc::new(config))
}

#[derive(Default)]
struct Counts {
    requests: AtomicU64,
    errors: AtomicU64,
    resumed: AtomicU64,
    full: AtomicU64,
}

const REQUEST: &[u8] = b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";

/// One request on a new connection; whether its handshake resumed a session.
async fn one_request(
    addr: SocketAddr,
    connector: &tokio_rustls::TlsConnector,
    buf: &mut Vec<u8>,
) -> Result<bool, BoxError> {
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    let mut tls = connector
        .connect(ServerName::try_from("localhost")?, tcp)
        .await?;
    let resumed = tls.get_ref().1.handshake_kind() == Some(HandshakeKind::Resumed);
    tls.write_all(REQUEST).await?;
    buf.clear();
    // To the end: the server closes after the response. A close without close_notify after
    // a whole response is not the client's concern.
    if let Err(err) = tls.read_to_end(buf).await
        && err.kind() != std::io::ErrorKind::UnexpectedEof
    {
        return Err(err.into());
    }
    if !buf.starts_with(b"HTTP/1.1 200") {
        return Err(format!("bad response: {:?}", String::from_utf8_lossy(buf)).into());
    }
    Ok(resumed)
}

async fn run(options: Options) -> Result<(), BoxError> {
    let counts = Arc::new(Counts::default());
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(options.concurrency);
    for _ in 0..options.concurrency {
        let connector = tokio_rustls::TlsConnector::from(client_config(&options)?);
        let (counts, stop) = (counts.clone(), stop.clone());
        let addr = options.addr;
        tasks.push(tokio::spawn(async move {
            let mut buf = Vec::with_capacity(4096);
            let mut last_error = None;
            while !stop.load(Ordering::Relaxed) {
                match one_request(addr, &connector, &mut buf).await {
                    Ok(resumed) => {
                        counts.requests.fetch_add(1, Ordering::Relaxed);
                        let kind = if resumed {
                            &counts.resumed
                        } else {
                            &counts.full
                        };
                        kind.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(err) => {
                        counts.errors.fetch_add(1, Ordering::Relaxed);
                        last_error = Some(err.to_string());
                    }
                }
            }
            last_error
        }));
    }
    tokio::time::sleep(options.duration).await;
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        if let Ok(Some(error)) = task.await {
            eprintln!("tls_load: last error of a task: {error}");
        }
    }
    // After the requests in flight at the stop have finished: they are counted.
    let secs = start.elapsed().as_secs_f64();
    let requests = counts.requests.load(Ordering::Relaxed);
    println!(
        "requests={requests} errors={} resumed={} full={} secs={secs:.2} rps={:.0}",
        counts.errors.load(Ordering::Relaxed),
        counts.resumed.load(Ordering::Relaxed),
        counts.full.load(Ordering::Relaxed),
        requests as f64 / secs
    );
    Ok(())
}

fn main() -> Result<(), BoxError> {
    let options = options()?;
    let runtime = if options.threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(options.threads)
            .enable_all()
            .build()?
    };
    runtime.block_on(run(options))
}
