//! rustls server configuration for `--https-listen`: the certificates by SNI name
//! ([`certs`]), reloaded when their files change ([`watch`]) or on SIGHUP
//! ([`crate::reload`]), and session resumption.
//!
//! Resumption, so that a returning client skips the certificate and signature work of a
//! full handshake:
//! * TLS 1.3 (and TLS 1.2 clients that ask for them): stateless session tickets, encrypted
//!   with a ticket key the provider's ticketer rotates every 6 hours; a ticket is accepted
//!   for at most twice that (the previous key is kept for one period), and the keys never
//!   leave the process (a restart invalidates all tickets).
//! * TLS 1.2 clients without ticket support: session IDs in a server-side cache of
//!   [`SESSION_CACHE_SIZE`] sessions, the oldest evicted first.
//! * 0-RTT (TLS 1.3 early data) stays off: early data can be replayed by anyone who saw it,
//!   and the gateway cannot know whether a request is safe to run twice.
//!
//! The crypto provider is *ring* everywhere it can be built by this repository's CI. On
//! Windows it is `rustls-graviola` (pure Rust): ring and aws-lc need the MSVC C toolchain,
//! which the Linux-hosted Windows type-check cannot run, and graviola needs only rustc. Each
//! brings its own ticketer (ChaCha20-Poly1305 keys with ring, XChaCha20-Poly1305 with
//! graviola, both rotated every 6 hours).
pub mod certs;
pub mod stats;
pub mod watch;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::server::{ProducesTickets, ServerSessionMemoryCache, WebPkiClientVerifier};

use crate::cli::ClientCertMode;
use certs::{CertFiles, CertStore};

/// How many TLS 1.2 sessions the server-side session cache holds (a few hundred bytes
/// each). TLS 1.3 resumes with tickets, which need no server memory.
pub const SESSION_CACHE_SIZE: usize = 10_000;

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM file could not be read or has no usable item.
    #[error("{path}: {message}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A private key is not the one of its certificate.
    #[error("the private key in {key} does not match the certificate in {cert}")]
    KeyMismatch {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
    },
    /// `--tls-cert` and `--tls-key` were not given in pairs.
    #[error(
        "--tls-cert and --tls-key go in pairs: {certs} certificate file(s) but {keys} key file(s)"
    )]
    Unpaired {
        /// How many `--tls-cert`.
        certs: usize,
        /// How many `--tls-key`.
        keys: usize,
    },
    /// No certificate was given.
    #[error("--https-listen needs --tls-cert and --tls-key")]
    NoCertificate,
    /// The crypto provider has no SHA-256 (to tell changed certificate files).
    #[error("the TLS crypto provider has no TLS 1.3 hash")]
    NoSha256,
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
    /// The client CA list could not be used.
    #[error("client CA: {0}")]
    ClientCa(String),
}

fn provider() -> Arc<CryptoProvider> {
    #[cfg(not(windows))]
    let provider = rustls::crypto::ring::default_provider();
    #[cfg(windows)]
    let provider = rustls_graviola::default_provider();
    Arc::new(provider)
}

/// The provider's session ticketer: a new random key every 6 hours, the previous one still
/// accepted for another 6.
fn ticketer() -> Result<Arc<dyn ProducesTickets>, rustls::Error> {
    #[cfg(not(windows))]
    let ticketer = rustls::crypto::ring::Ticketer::new();
    #[cfg(windows)]
    let ticketer = rustls_graviola::Ticketer::new();
    ticketer
}

/// `--tls-cert` and `--tls-key` paired in the order given.
pub fn pairs(certs: &[PathBuf], keys: &[PathBuf]) -> Result<Vec<CertFiles>, TlsError> {
    if certs.len() != keys.len() {
        return Err(TlsError::Unpaired {
            certs: certs.len(),
            keys: keys.len(),
        });
    }
    Ok(certs
        .iter()
        .zip(keys)
        .map(|(cert, key)| CertFiles {
            cert: cert.clone(),
            key: key.clone(),
        })
        .collect())
}

/// What HTTPS listeners are served with.
pub struct Tls {
    /// The rustls configuration all HTTPS listeners share.
    pub config: Arc<ServerConfig>,
    /// Its certificates, to reload.
    pub certs: Arc<CertStore>,
}

/// Build the server config: the certificates of `pairs` (the first the default), ALPN `h2`
/// then `http/1.1`, session resumption, and client certificate verification against
/// `client_ca` when given.
pub fn server_config(
    pairs: Vec<CertFiles>,
    client_ca: Option<&Path>,
    mode: ClientCertMode,
) -> Result<Tls, TlsError> {
    let provider = provider();
    let certs = Arc::new(CertStore::load(pairs, provider.clone())?);
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let pem = std::fs::read(ca).map_err(|e| TlsError::Pem {
                path: ca.to_owned(),
                message: e.to_string(),
            })?;
            let mut roots = rustls::RootCertStore::empty();
            for c in certs::certs_from_pem(ca, &pem)? {
                roots.add(c)?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let verifier = match mode {
                ClientCertMode::Optional => verifier.allow_unauthenticated(),
                ClientCertMode::Required => verifier,
            };
            builder.with_client_cert_verifier(
                verifier
                    .build()
                    .map_err(|e| TlsError::ClientCa(e.to_string()))?,
            )
        }
    };
    let mut config = builder.with_cert_resolver(certs.clone());
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    config.ticketer = ticketer()?;
    config.session_storage = ServerSessionMemoryCache::new(SESSION_CACHE_SIZE);
    // No 0-RTT: early data can be replayed (see the module docs).
    config.max_early_data_size = 0;
    Ok(Tls {
        config: Arc::new(config),
        certs,
    })
}
