//! rustls server configuration for `--https-listen`.
//!
//! The crypto provider is *ring* everywhere it can be built by this repository's CI. On
//! Windows it is `rustls-graviola` (pure Rust): ring and aws-lc need the MSVC C toolchain,
//! which the Linux-hosted Windows type-check cannot run, and graviola needs only rustc.
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;

use crate::cli::ClientCertMode;

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

fn certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem_err = |message: String| TlsError::Pem {
        path: path.to_owned(),
        message,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| pem_err(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_err(e.to_string()))?;
    if certs.is_empty() {
        return Err(pem_err("no CERTIFICATE found".into()));
    }
    Ok(certs)
}

/// Build the server config: certificate chain and key, ALPN `h2` then `http/1.1`, and client
/// certificate verification against `client_ca` when given.
pub fn server_config(
    cert: &Path,
    key: &Path,
    client_ca: Option<&Path>,
    mode: ClientCertMode,
) -> Result<Arc<ServerConfig>, TlsError> {
    let provider = provider();
    let chain = certs(cert)?;
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| TlsError::Pem {
        path: key.to_owned(),
        message: e.to_string(),
    })?;
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for c in certs(ca)? {
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
    let mut config = builder.with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
