//! HTTPS end to end: rustls on the gateway (with *ring*, graviola on Windows), a client
//! certificate forwarded as `MS-ASPNETCORE-CLIENTCERT`, `X-Forwarded-Proto: https`, HTTP/2 via
//! ALPN. The certificates are the test-only ones of tests/fixtures/tls.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine as _;
use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt as _, Full};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use test_support::backends::header_values;
use test_support::client::get;
use test_support::process::{Gateway, free_port, wait_listening};
use test_support::site;

/// The gateway binary under test.
const ANCM: &str = env!("CARGO_BIN_EXE_ancm");

/// The test CA, the client's certificate and key, and the folder of the server's files.
struct Pki {
    ca: CertificateDer<'static>,
    client_cert: CertificateDer<'static>,
    client_key: PrivateKeyDer<'static>,
    dir: PathBuf,
}

fn pki() -> Pki {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tls");
    Pki {
        ca: CertificateDer::from_pem_file(dir.join("ca.pem")).unwrap(),
        client_cert: CertificateDer::from_pem_file(dir.join("client.pem")).unwrap(),
        client_key: PrivateKeyDer::from_pem_file(dir.join("client.key")).unwrap(),
        dir,
    }
}

/// The gateway's TLS provider on this OS (src/tls.rs), for the client side too.
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    #[cfg(not(windows))]
    let provider = rustls::crypto::ring::default_provider();
    #[cfg(windows)]
    let provider = rustls_graviola::default_provider();
    Arc::new(provider)
}

fn client_config(pki: &Pki, with_cert: bool, alpn: &[&[u8]]) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(pki.ca.clone()).unwrap();
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let mut config = if with_cert {
        builder
            .with_client_auth_cert(vec![pki.client_cert.clone()], pki.client_key.clone_key())
            .unwrap()
    } else {
        builder.with_no_client_auth()
    };
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(config)
}

async fn tls_get(
    addr: std::net::SocketAddr,
    config: Arc<rustls::ClientConfig>,
) -> Result<(http::Version, serde_json::Value), String> {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let connector = tokio_rustls::TlsConnector::from(config);
    let tls = connector
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .map_err(|e| e.to_string())?;
    let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
    let io = hyper_util::rt::TokioIo::new(tls);
    let req = Request::get(format!("https://localhost:{}/secure", addr.port()))
        .header("MS-ASPNETCORE-CLIENTCERT", "Zm9yZ2Vk")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let resp = if h2 {
        let (mut s, c) =
            hyper::client::conn::http2::handshake(hyper_util::rt::TokioExecutor::new(), io)
                .await
                .map_err(|e| e.to_string())?;
        tokio::spawn(c);
        s.send_request(req).await.map_err(|e| e.to_string())?
    } else {
        let (mut s, c) = hyper::client::conn::http1::handshake(io)
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(c);
        let mut req = req;
        req.headers_mut()
            .insert("host", "localhost".parse().unwrap());
        s.send_request(req).await.map_err(|e| e.to_string())?
    };
    let version = resp.version();
    let status = resp.status();
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    Ok((version, serde_json::from_slice(&body).unwrap()))
}

/// The gateway on `site` with a plain listener and an HTTPS one (client certificates `mode`).
fn start_https(pki: &Pki, site: &std::path::Path, mode: &str) -> (Gateway, std::net::SocketAddr) {
    let https: std::net::SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let path = |name: &str| pki.dir.join(name).to_str().unwrap().to_owned();
    let (cert, key, ca) = (path("server.pem"), path("server.key"), path("ca.pem"));
    let https_arg = https.to_string();
    let gw = Gateway::start(
        ANCM,
        site,
        &[
            "--https-listen",
            &https_arg,
            "--tls-cert",
            &cert,
            "--tls-key",
            &key,
            "--client-ca",
            &ca,
            "--client-cert",
            mode,
        ],
    );
    wait_listening(https);
    (gw, https)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_forwards_the_client_certificate_and_the_https_scheme() {
    let pki = pki();
    let site = site::with_config(&site::rust_echo_config("", &[]));
    let (gw, https) = start_https(&pki, site.path(), "optional");

    // HTTP/1.1 with a client certificate.
    let (version, j) = tls_get(https, client_config(&pki, true, &[b"http/1.1"]))
        .await
        .unwrap();
    assert_eq!(version, http::Version::HTTP_11);
    let expected = base64::engine::general_purpose::STANDARD.encode(pki.client_cert.as_ref());
    assert_eq!(
        header_values(&j, "ms-aspnetcore-clientcert"),
        std::slice::from_ref(&expected)
    );
    assert_eq!(header_values(&j, "x-forwarded-proto"), ["https"]);

    // HTTP/2 via ALPN, still with the certificate.
    let (version, j) = tls_get(https, client_config(&pki, true, &[b"h2", b"http/1.1"]))
        .await
        .unwrap();
    assert_eq!(version, http::Version::HTTP_2);
    assert_eq!(header_values(&j, "ms-aspnetcore-clientcert"), [expected]);

    // Optional: no certificate is fine, and a client-sent header is not forwarded.
    let (_, j) = tls_get(https, client_config(&pki, false, &[b"http/1.1"]))
        .await
        .unwrap();
    assert!(
        header_values(&j, "ms-aspnetcore-clientcert").is_empty(),
        "{j}"
    );

    // The plain listener still says http.
    let plain = get(gw.addr, "/", &[]).await.json();
    assert_eq!(header_values(&plain, "x-forwarded-proto"), ["http"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn required_client_certificate_refuses_clients_without_one() {
    let pki = pki();
    let site = site::with_config(&site::rust_echo_config("", &[]));
    let (_gw, https) = start_https(&pki, site.path(), "required");
    assert!(
        tls_get(https, client_config(&pki, false, &[b"http/1.1"]))
            .await
            .is_err()
    );
    let (_, j) = tls_get(https, client_config(&pki, true, &[b"http/1.1"]))
        .await
        .unwrap();
    assert_eq!(header_values(&j, "ms-aspnetcore-clientcert").len(), 1);
}
