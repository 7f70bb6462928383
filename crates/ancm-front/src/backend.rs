//! The backend a request is routed to, as a request extension.
//!
//! ```
//! use ancm_front::AddExtensionLayer;
//! use ancm_front::backend::BackendTarget;
//! use ancm_protocol::PairingToken;
//! let target = BackendTarget::new("127.0.0.1:5000".parse().unwrap(), Some(PairingToken::generate()));
//! // One known upstream: every request goes to it.
//! let _layer = AddExtensionLayer::new(target);
//! ```
//!
//! Whoever selects the backend — the supervisor in `ancm-hosting`, or an
//! [`AddExtensionLayer`](crate::AddExtensionLayer) for a single known upstream — inserts a
//! [`BackendTarget`]; the pairing-token layer, the Windows-token layer and the forwarder read
//! it.
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use ancm_protocol::{AppPath, PairingToken};

use crate::RequestTimeout;
use crate::forward::PoolLinks;
use crate::transport::Transport;

/// Where a request goes: the backend's loopback address, its pairing token, and its process.
#[derive(Clone, Debug)]
pub struct BackendTarget {
    /// The backend's listening address, normally `127.0.0.1:PORT`.
    pub addr: SocketAddr,
    /// A Unix-domain socket to reach the backend on instead of `addr` (ancm-rs only, on
    /// Unix, protocol §8.42); `addr` then only names the backend in logs and pool counts.
    pub unix_socket: Option<Arc<Path>>,
    /// The token the backend expects in `MS-ASPNETCORE-TOKEN`; `None` sends none.
    pub token: Option<PairingToken>,
    /// The backend's application path (its `ASPNETCORE_APPL_PATH`).
    pub app_path: AppPath,
    /// The process listening on `addr`, when the front owns it (needed to duplicate Windows
    /// token handles into it).
    pub process: Option<Arc<BackendProcess>>,
    /// The backend's `requestTimeout` (per phase); [`RequestTimeout::Inherit`] (the default)
    /// uses the forwarder's own.
    pub request_timeout: RequestTimeout,
}

impl BackendTarget {
    /// A target at `addr` (over TCP) with `token`, app path `/`, no known process, the
    /// forwarder's `requestTimeout`.
    pub fn new(addr: SocketAddr, token: Option<PairingToken>) -> Self {
        Self {
            addr,
            unix_socket: None,
            token,
            app_path: AppPath::root(),
            process: None,
            request_timeout: RequestTimeout::Inherit,
        }
    }

    /// How to reach the backend: [`unix_socket`](Self::unix_socket) when set, else `addr`.
    pub fn transport(&self) -> Transport {
        match &self.unix_socket {
            Some(path) => Transport::Unix(path.clone()),
            None => Transport::Tcp(self.addr),
        }
    }
}

/// The backend process, as far as the front needs to know it: its pid, and whether it is
/// retired.
///
/// Forwarders keep keep-alive connections per backend process, not per address alone: an
/// old and a new process may listen on the same fixed port one after the other.
/// [`retire`](Self::retire) it before telling the process to shut down (protocol §2.9): every
/// forwarder drops its idle connections to it at once and pools none afterwards, so no
/// request is handed a connection the backend is about to close.
///
/// ```
/// use ancm_front::BackendProcess;
/// let process = BackendProcess::new(4242);
/// assert!(!process.is_retired());
/// process.retire();
/// assert!(process.is_retired());
/// ```
#[derive(Debug)]
pub struct BackendProcess {
    /// Process id of the process that listens on the backend port.
    pub pid: u32,
    /// A handle to that process with `PROCESS_DUP_HANDLE` access (Windows only).
    #[cfg(windows)]
    pub handle: Option<std::os::windows::io::OwnedHandle>,
    /// Its identity in the connection pools and the pools that hold connections to it.
    pools: PoolLinks,
}

impl BackendProcess {
    /// The process `pid`, not retired (on Windows without a handle: use `with_handle` to
    /// forward Windows tokens to it).
    pub fn new(pid: u32) -> Self {
        Self {
            pid,
            #[cfg(windows)]
            handle: None,
            pools: PoolLinks::new(),
        }
    }

    /// The process `pid` with a handle for duplicating Windows tokens into it.
    #[cfg(windows)]
    pub fn with_handle(pid: u32, handle: Option<std::os::windows::io::OwnedHandle>) -> Self {
        Self {
            handle,
            ..Self::new(pid)
        }
    }

    /// Marks the process as about to shut down: every forwarder drops its idle keep-alive
    /// connections to it now and pools none afterwards. Requests that still carry it as their
    /// target open fresh connections. Idempotent.
    pub fn retire(&self) {
        self.pools.retire();
    }

    /// Whether [`retire`](Self::retire) was called.
    pub fn is_retired(&self) -> bool {
        self.pools.is_retired()
    }

    pub(crate) fn pool_links(&self) -> &PoolLinks {
        &self.pools
    }
}
