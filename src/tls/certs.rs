//! The server certificates: one or more certificate/key pairs, the one for each handshake
//! chosen by the client's SNI name, and replaced without a restart when their files change.
//!
//! Each pair serves the DNS names of its certificate's subjectAltName (`*.example.com`
//! wildcards included; the subject CN is ignored, as browsers do). A name in several
//! certificates goes to the first pair given. Clients that send no SNI name (those that
//! connect by IP address) or an unknown one get the first pair, the default.
//!
//! [`CertStore`] is the rustls [`ResolvesServerCert`]: the `ServerConfig`, with its session
//! cache and ticket keys, stays as it is while [`CertStore::reload`] swaps the pairs. A reload
//! reads every pair's two files and compares their SHA-256 with what it read last time, so
//! rewriting the same bytes does nothing; a pair whose new files do not load (unreadable,
//! unparsable, key not matching the certificate) keeps serving its current certificate and
//! the reason is logged as an error.
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use rustls::crypto::CryptoProvider;
use rustls::crypto::hash::Hash;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use super::TlsError;

/// One `--tls-cert`/`--tls-key` pair, as given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertFiles {
    /// PEM certificate chain, leaf first.
    pub cert: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
}

/// A pair as it was last loaded.
#[derive(Debug)]
struct Loaded {
    certified: Arc<CertifiedKey>,
    /// The certificate's subjectAltName DNS names, lowercase.
    names: Vec<String>,
}

/// What the certificates' files looked like: a SHA-256 of the certificate file followed by
/// one of the key file.
type Fingerprint = Vec<u8>;

/// Every pair's reload state.
#[derive(Debug)]
struct PairState {
    /// The files' fingerprint when last read, loaded or not: the same bytes again are not
    /// looked at (nor complained about) again.
    seen: Fingerprint,
    /// The fingerprint of the files the pair in use came from.
    in_use: Fingerprint,
}

/// The pairs in use and the name lookups over them; replaced whole by a reload.
#[derive(Debug)]
struct CertSet {
    /// The pairs in the order given; the first is the default.
    pairs: Vec<Loaded>,
    /// Exact names (lowercase) to the index of their pair.
    exact: HashMap<String, usize>,
    /// `*.example.com` certificates by the parent name (`example.com`).
    wildcard: HashMap<String, usize>,
}

impl CertSet {
    fn new(pairs: Vec<Loaded>) -> Self {
        let mut exact = HashMap::new();
        let mut wildcard = HashMap::new();
        for (index, pair) in pairs.iter().enumerate() {
            for name in &pair.names {
                // The first pair given for a name keeps it.
                match name.strip_prefix("*.") {
                    Some(parent) => wildcard.entry(parent.to_owned()).or_insert(index),
                    None => exact.entry(name.clone()).or_insert(index),
                };
            }
        }
        Self {
            pairs,
            exact,
            wildcard,
        }
    }

    /// The pair for an SNI name: exact match, then a wildcard for its parent, then the default.
    fn pick(&self, server_name: Option<&str>) -> Option<&Arc<CertifiedKey>> {
        let index = server_name.and_then(|name| {
            let name = name.to_ascii_lowercase();
            self.exact.get(&name).copied().or_else(|| {
                let (_, parent) = name.split_once('.')?;
                self.wildcard.get(parent).copied()
            })
        });
        self.pairs
            .get(index.unwrap_or(0))
            .map(|pair| &pair.certified)
    }
}

/// The certificates `ancm run` serves, resolved by SNI name and reloadable.
pub struct CertStore {
    files: Vec<CertFiles>,
    provider: Arc<CryptoProvider>,
    sha256: &'static dyn Hash,
    current: RwLock<Arc<CertSet>>,
    /// Held by a reload for its whole run, so that two never interleave.
    state: Mutex<Vec<PairState>>,
}

impl CertStore {
    /// Loads every pair; the first error (with the files it concerns) refuses them all.
    pub fn load(files: Vec<CertFiles>, provider: Arc<CryptoProvider>) -> Result<Self, TlsError> {
        if files.is_empty() {
            return Err(TlsError::NoCertificate);
        }
        let sha256 = provider
            .cipher_suites
            .iter()
            .find_map(|suite| suite.tls13())
            .map(|suite| suite.common.hash_provider)
            .ok_or(TlsError::NoSha256)?;
        let mut pairs = Vec::with_capacity(files.len());
        let mut state = Vec::with_capacity(files.len());
        for pair in &files {
            let (cert, key) = read_pair(pair)?;
            let fingerprint = fingerprint(sha256, &cert, &key);
            let loaded = parse_pair(pair, &cert, &key, &provider)?;
            tracing::info!(cert = %pair.cert.display(), names = ?loaded.names, "TLS certificate");
            if !pairs.is_empty() && loaded.names.is_empty() {
                tracing::warn!(cert = %pair.cert.display(), "this TLS certificate has no DNS name in its subjectAltName: no SNI name selects it, and only the first certificate is the default");
            }
            pairs.push(loaded);
            state.push(PairState {
                seen: fingerprint.clone(),
                in_use: fingerprint,
            });
        }
        Ok(Self {
            files,
            provider,
            sha256,
            current: RwLock::new(Arc::new(CertSet::new(pairs))),
            state: Mutex::new(state),
        })
    }

    /// The pairs' files, in the order given.
    pub fn files(&self) -> &[CertFiles] {
        &self.files
    }

    /// Re-reads every pair's files and serves the ones that changed and load; `trigger` says
    /// why, for the log. New handshakes use the new certificates; open connections are not
    /// touched. Blocking (file I/O): run it on a blocking thread.
    pub fn reload(&self, trigger: &'static str) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let current = self.current();
        let mut replaced: Vec<Option<Loaded>> = Vec::new();
        replaced.resize_with(self.files.len(), || None);
        for (index, pair) in self.files.iter().enumerate() {
            let (cert, key) = match read_pair(pair) {
                Ok(bytes) => bytes,
                Err(error) => {
                    tracing::error!(trigger, %error, "cannot reload a TLS certificate; keeping the one in use");
                    continue;
                }
            };
            let fingerprint = fingerprint(self.sha256, &cert, &key);
            let pair_state = &mut state[index];
            if fingerprint == pair_state.seen {
                continue;
            }
            pair_state.seen = fingerprint.clone();
            if fingerprint == pair_state.in_use {
                tracing::info!(trigger, cert = %pair.cert.display(), "TLS certificate files are back to the ones in use");
                continue;
            }
            match parse_pair(pair, &cert, &key, &self.provider) {
                Ok(loaded) => {
                    tracing::info!(
                        trigger, cert = %pair.cert.display(), key = %pair.key.display(),
                        names = ?loaded.names, "TLS certificate reloaded"
                    );
                    pair_state.in_use = fingerprint;
                    replaced[index] = Some(loaded);
                }
                Err(error) => {
                    tracing::error!(trigger, %error, "new TLS certificate files do not load; keeping the certificate in use");
                }
            }
        }
        if replaced.iter().all(Option::is_none) {
            tracing::debug!(trigger, "TLS certificates unchanged");
            return;
        }
        let pairs = replaced
            .into_iter()
            .zip(&current.pairs)
            .map(|(new, old)| {
                new.unwrap_or_else(|| Loaded {
                    certified: old.certified.clone(),
                    names: old.names.clone(),
                })
            })
            .collect();
        *self.current.write().unwrap_or_else(PoisonError::into_inner) =
            Arc::new(CertSet::new(pairs));
    }

    fn current(&self) -> Arc<CertSet> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl std::fmt::Debug for CertStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertStore")
            .field("files", &self.files)
            .finish_non_exhaustive()
    }
}

impl ResolvesServerCert for CertStore {
    fn resolve(&self, client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.current().pick(client_hello.server_name()).cloned()
    }
}

fn fingerprint(sha256: &dyn Hash, cert: &[u8], key: &[u8]) -> Fingerprint {
    let mut fingerprint = sha256.hash(cert).as_ref().to_vec();
    fingerprint.extend_from_slice(sha256.hash(key).as_ref());
    fingerprint
}

fn read_pair(pair: &CertFiles) -> Result<(Vec<u8>, Vec<u8>), TlsError> {
    let read = |path: &Path| {
        std::fs::read(path).map_err(|e| TlsError::Pem {
            path: path.to_owned(),
            message: e.to_string(),
        })
    };
    Ok((read(&pair.cert)?, read(&pair.key)?))
}

/// The certified key of a pair's file contents, checked to be usable: a chain, a key the
/// provider can sign with, and the key matching the leaf certificate.
fn parse_pair(
    pair: &CertFiles,
    cert: &[u8],
    key: &[u8],
    provider: &CryptoProvider,
) -> Result<Loaded, TlsError> {
    let chain = certs_from_pem(&pair.cert, cert)?;
    let key_err = |message: String| TlsError::Pem {
        path: pair.key.clone(),
        message,
    };
    let key = PrivateKeyDer::from_pem_slice(key).map_err(|e| key_err(e.to_string()))?;
    let signing_key = provider
        .key_provider
        .load_private_key(key)
        .map_err(|e| key_err(e.to_string()))?;
    let certified = CertifiedKey::new(chain, signing_key);
    match certified.keys_match() {
        Ok(()) => {}
        // A key whose public half the provider cannot tell is used as given, as rustls does.
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {}
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) => {
            return Err(TlsError::KeyMismatch {
                cert: pair.cert.clone(),
                key: pair.key.clone(),
            });
        }
        Err(e) => {
            return Err(TlsError::Pem {
                path: pair.cert.clone(),
                message: e.to_string(),
            });
        }
    }
    let names = certified
        .cert
        .first()
        .map(leaf_dns_names)
        .unwrap_or_default();
    Ok(Loaded {
        certified: Arc::new(certified),
        names,
    })
}

/// The chain in a PEM file's bytes.
pub fn certs_from_pem(path: &Path, pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem_err = |message: String| TlsError::Pem {
        path: path.to_owned(),
        message,
    };
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_err(e.to_string()))?;
    if certs.is_empty() {
        return Err(pem_err("no CERTIFICATE found".into()));
    }
    Ok(certs)
}

/// The subjectAltName DNS names of a leaf certificate, lowercase; none when it cannot be
/// parsed (`keys_match` has parsed it already).
fn leaf_dns_names(leaf: &CertificateDer<'_>) -> Vec<String> {
    webpki::EndEntityCert::try_from(leaf)
        .map(|cert| {
            cert.valid_dns_names()
                .map(str::to_ascii_lowercase)
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(names: &[&[&str]]) -> (CertSet, Vec<Arc<CertifiedKey>>) {
        #[derive(Debug)]
        struct NoKey;
        impl rustls::sign::SigningKey for NoKey {
            fn choose_scheme(
                &self,
                _: &[rustls::SignatureScheme],
            ) -> Option<Box<dyn rustls::sign::Signer>> {
                None
            }
            fn algorithm(&self) -> rustls::SignatureAlgorithm {
                rustls::SignatureAlgorithm::ECDSA
            }
        }
        let keys: Vec<_> = names
            .iter()
            .map(|_| Arc::new(CertifiedKey::new(Vec::new(), Arc::new(NoKey))))
            .collect();
        let pairs = names
            .iter()
            .zip(&keys)
            .map(|(names, key)| Loaded {
                certified: key.clone(),
                names: names.iter().map(|n| (*n).to_owned()).collect(),
            })
            .collect();
        (CertSet::new(pairs), keys)
    }

    #[test]
    fn sni_picks_exact_then_wildcard_then_the_default() {
        let (set, keys) = set(&[
            &["default.test"],
            &["a.example.com", "*.example.com"],
            &["b.example.com", "a.example.com"],
            &["*.other.test"],
        ]);
        let pick = |name| set.pick(name).map(Arc::as_ptr);
        assert_eq!(pick(None), Some(Arc::as_ptr(&keys[0])));
        assert_eq!(pick(Some("unknown.test")), Some(Arc::as_ptr(&keys[0])));
        assert_eq!(pick(Some("A.Example.COM")), Some(Arc::as_ptr(&keys[1])));
        assert_eq!(pick(Some("b.example.com")), Some(Arc::as_ptr(&keys[2])));
        assert_eq!(pick(Some("c.example.com")), Some(Arc::as_ptr(&keys[1])));
        assert_eq!(pick(Some("x.other.test")), Some(Arc::as_ptr(&keys[3])));
        // A wildcard covers one label only.
        assert_eq!(pick(Some("x.y.other.test")), Some(Arc::as_ptr(&keys[0])));
        assert_eq!(pick(Some("other.test")), Some(Arc::as_ptr(&keys[0])));
    }
}
