//! Activation: whether the process runs behind IIS / ANCM, read from the environment
//! (protocol §4.1).
//!
//! ```
//! use iis_integration::IisConfig;
//!
//! let vars = [
//!     ("ASPNETCORE_PORT", "41234"),
//!     ("ASPNETCORE_APPL_PATH", "/shop/"),
//!     ("ASPNETCORE_TOKEN", "3f2504e0-4f89-41d3-9a0c-0305e82c3301"),
//!     ("ASPNETCORE_IIS_HTTPAUTH", "anonymous;"),
//! ];
//! let lookup = |name: &str| vars.iter().find(|(n, _)| *n == name).map(|(_, v)| v.to_string());
//! let config = IisConfig::from_lookup(lookup).unwrap().expect("all three values are set");
//! assert_eq!(config.port(), 41234);
//! assert_eq!(config.app_path().as_str(), "/shop");
//! assert!(!config.auth_enabled());
//! assert!(config.websockets_supported());
//!
//! // Missing token: not behind IIS, the app runs on its own address.
//! assert!(IisConfig::from_lookup(|_| None).unwrap().is_none());
//! ```
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use ancm_protocol::{AppPath, PairingToken, app_path::InvalidAppPath, env, http_auth};

/// What the front told this process about how it is hosted.
///
/// Built from `ASPNETCORE_PORT`, `ASPNETCORE_APPL_PATH`, `ASPNETCORE_TOKEN`,
/// `ASPNETCORE_IIS_HTTPAUTH`, `ASPNETCORE_IIS_WEBSOCKETS_SUPPORTED` and (ancm-rs only)
/// `ANCM_UNIX_SOCKET` by
/// [`from_env`](Self::from_env), or from explicit values by [`new`](Self::new).
#[derive(Clone, Debug)]
pub struct IisConfig {
    port: u16,
    app_path: AppPath,
    token: PairingToken,
    websockets_supported: bool,
    auth_enabled: bool,
    unix_socket: Option<PathBuf>,
}

/// A hosting variable is set but malformed: the process must not start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IisConfigError {
    /// The variable's value is not valid Unicode.
    #[error("{var} is not valid Unicode")]
    NotUnicode {
        /// The variable name.
        var: &'static str,
    },
    /// `ASPNETCORE_PORT` is not a port number 1–65535.
    #[error("{var}={value:?} is not a port number between 1 and 65535", var = env::PORT)]
    InvalidPort {
        /// The value found.
        value: String,
    },
    /// `ASPNETCORE_APPL_PATH` is not a path starting with `/`.
    #[error("{var} is not a valid application path: {0}", var = env::APPL_PATH)]
    InvalidAppPath(#[from] InvalidAppPath),
    /// `ASPNETCORE_TOKEN` cannot be a header value. The value itself is never shown.
    #[error("{var} is not a valid pairing token: {0}", var = env::TOKEN)]
    InvalidToken(#[from] ancm_protocol::InvalidToken),
}

impl IisConfig {
    /// Explicit values; WebSockets supported and authentication enabled, as when ANCM leaves
    /// the two flags unset.
    pub fn new(port: u16, app_path: AppPath, token: PairingToken) -> Self {
        Self {
            port,
            app_path,
            token,
            websockets_supported: true,
            auth_enabled: true,
            unix_socket: None,
        }
    }

    /// Set the Unix-domain socket to listen on instead of the port (what `ANCM_UNIX_SOCKET`
    /// says, protocol §8.42).
    pub fn with_unix_socket(mut self, path: impl Into<PathBuf>) -> Self {
        self.unix_socket = Some(path.into());
        self
    }

    /// Set whether the front relays WebSocket upgrades (`false` hides hyper's upgrade from
    /// the app).
    pub fn with_websockets_supported(mut self, supported: bool) -> Self {
        self.websockets_supported = supported;
        self
    }

    /// Set whether IIS authentication is on, which turns on the Windows identity step.
    pub fn with_auth_enabled(mut self, enabled: bool) -> Self {
        self.auth_enabled = enabled;
        self
    }

    /// Read the process environment.
    ///
    /// `Ok(None)` means "not behind IIS": one of the port, app path or token is missing or
    /// empty, and the app should run normally. A value that is present but malformed is an
    /// error.
    pub fn from_env() -> Result<Option<Self>, IisConfigError> {
        Self::from_lookup(|name| std::env::var_os(name).map(os_to_string))
    }

    /// [`from_env`](Self::from_env) with another source of variables, e.g. a map in tests.
    pub fn from_lookup(
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<Self>, IisConfigError> {
        let get = |name: &'static str| -> Result<Option<String>, IisConfigError> {
            match lookup(name) {
                Some(v) if v.starts_with(NOT_UNICODE) => {
                    Err(IisConfigError::NotUnicode { var: name })
                }
                Some(v) if !v.is_empty() => Ok(Some(v)),
                _ => Ok(None),
            }
        };
        let (Some(port), Some(app_path), Some(token)) =
            (get(env::PORT)?, get(env::APPL_PATH)?, get(env::TOKEN)?)
        else {
            return Ok(None);
        };
        let port = match port.parse::<u16>() {
            Ok(p) if p != 0 => p,
            _ => return Err(IisConfigError::InvalidPort { value: port }),
        };
        let app_path = AppPath::parse(&app_path)?;
        let token = PairingToken::new(&token)?;
        let http_auth = get(env::IIS_HTTPAUTH)?.unwrap_or_default();
        let websockets = get(env::IIS_WEBSOCKETS_SUPPORTED)?;
        let unix_socket = get(env::ANCM_UNIX_SOCKET)?.map(PathBuf::from);
        Ok(Some(Self {
            port,
            app_path,
            token,
            // Unparsable or missing means supported (ANCM: true on Windows 8 and later).
            websockets_supported: websockets
                .as_deref()
                .and_then(env::parse_dotnet_bool)
                .unwrap_or(true),
            auth_enabled: http_auth::auth_enabled(&http_auth),
            unix_socket,
        }))
    }

    /// The loopback port to listen on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:PORT`, the only address the front connects to.
    pub fn listen_addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }

    /// The application's virtual path: the path base.
    pub fn app_path(&self) -> &AppPath {
        &self.app_path
    }

    /// The pairing token every request must carry.
    pub fn token(&self) -> &PairingToken {
        &self.token
    }

    /// Whether the front relays WebSocket upgrades.
    pub fn websockets_supported(&self) -> bool {
        self.websockets_supported
    }

    /// Whether IIS authentication is enabled (`ASPNETCORE_IIS_HTTPAUTH`, see
    /// [`ancm_protocol::http_auth::auth_enabled`]).
    pub fn auth_enabled(&self) -> bool {
        self.auth_enabled
    }

    /// The Unix-domain socket the front connects to instead of the port (`ANCM_UNIX_SOCKET`,
    /// set by the `ancm` gateway for applications that opt in, protocol §8.42); see
    /// [`bind_front_listener`](crate::bind_front_listener).
    pub fn unix_socket(&self) -> Option<&Path> {
        self.unix_socket.as_deref()
    }
}

/// Marks a value that was not Unicode in the environment; no valid value starts with NUL
/// because environment strings cannot contain it.
const NOT_UNICODE: &str = "\0";

fn os_to_string(value: std::ffi::OsString) -> String {
    value
        .into_string()
        .unwrap_or_else(|_| NOT_UNICODE.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> Result<Option<IisConfig>, IisConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        IisConfig::from_lookup(|name| map.get(name).cloned())
    }

    const FULL: [(&str, &str); 3] = [
        ("ASPNETCORE_PORT", "8080"),
        ("ASPNETCORE_APPL_PATH", "/"),
        ("ASPNETCORE_TOKEN", "abc"),
    ];

    #[test]
    fn active_only_with_all_three_values() {
        let c = config(&FULL).unwrap().unwrap();
        assert_eq!(c.listen_addr(), "127.0.0.1:8080".parse().unwrap());
        assert!(c.app_path().is_root());
        assert!(c.token().matches(b"abc"));
        assert!(c.auth_enabled(), "empty HTTPAUTH enables auth");
        assert!(c.websockets_supported());
        for (missing, (name, _)) in FULL.iter().enumerate() {
            let mut partial = FULL.to_vec();
            partial.remove(missing);
            assert!(config(&partial).unwrap().is_none());
            partial.insert(missing, (name, ""));
            assert!(config(&partial).unwrap().is_none(), "empty is missing");
        }
    }

    #[test]
    fn malformed_values_are_errors() {
        for port in ["0", "65536", "-1", "http", " 80"] {
            let mut v = FULL.to_vec();
            v[0].1 = port;
            assert_eq!(
                config(&v).unwrap_err(),
                IisConfigError::InvalidPort {
                    value: port.to_owned()
                }
            );
        }
        let mut v = FULL.to_vec();
        v[1].1 = "app";
        assert!(matches!(config(&v), Err(IisConfigError::InvalidAppPath(_))));
        let mut v = FULL.to_vec();
        v[2].1 = "a b";
        let err = config(&v).unwrap_err();
        assert!(matches!(err, IisConfigError::InvalidToken(_)));
        assert!(!err.to_string().contains("a b"), "the token is never shown");
        let mut v = FULL.to_vec();
        v[0].1 = NOT_UNICODE;
        assert_eq!(
            config(&v).unwrap_err(),
            IisConfigError::NotUnicode {
                var: "ASPNETCORE_PORT"
            }
        );
    }

    #[test]
    fn flags() {
        let with = |name: &'static str, value: &'static str| {
            let mut v = FULL.to_vec();
            v.push((name, value));
            config(&v).unwrap().unwrap()
        };
        assert!(!with(env::IIS_WEBSOCKETS_SUPPORTED, " FALSE ").websockets_supported());
        assert!(with(env::IIS_WEBSOCKETS_SUPPORTED, "True").websockets_supported());
        assert!(with(env::IIS_WEBSOCKETS_SUPPORTED, "0").websockets_supported());
        assert!(!with(env::IIS_HTTPAUTH, "anonymous;").auth_enabled());
        assert!(with(env::IIS_HTTPAUTH, "windows;anonymous;").auth_enabled());
        assert!(with(env::IIS_HTTPAUTH, "none").auth_enabled());
    }
}
