//! The byte tunnel behind a `101 Switching Protocols` (WebSocket, protocol §1.9).
use std::net::SocketAddr;

use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio::io::AsyncWriteExt as _;

use super::error::Chain;
use super::pool::Checkout;

/// Once both sides have switched protocols, copy bytes both ways until either side closes
/// or fails, then close the other side. Runs on its own task: the 101 response has to go out
/// to the client before the client side can upgrade at all.
pub(crate) fn spawn_tunnel(
    client: OnUpgrade,
    backend: OnUpgrade,
    checkout: Checkout,
    addr: SocketAddr,
) {
    tokio::spawn(async move {
        // The backend connection leaves the pool for good (it now speaks another protocol)
        // but counts under the connection limit until the tunnel closes.
        let _checkout = checkout;
        let (client, backend) = tokio::join!(client, backend);
        let (client, backend) = match (client, backend) {
            (Ok(client), Ok(backend)) => (client, backend),
            (Err(error), _) => {
                tracing::debug!(backend = %addr, error = %Chain(&error), "client upgrade failed; closing the backend side");
                return;
            }
            (_, Err(error)) => {
                tracing::warn!(backend = %addr, error = %Chain(&error), "backend upgrade failed; closing the client side");
                return;
            }
        };
        let (mut client_rd, mut client_wr) = tokio::io::split(TokioIo::new(client));
        let (mut backend_rd, mut backend_wr) = tokio::io::split(TokioIo::new(backend));
        let up = async {
            let copied = tokio::io::copy(&mut client_rd, &mut backend_wr).await;
            let _ = backend_wr.shutdown().await;
            ("client to backend", copied)
        };
        let down = async {
            let copied = tokio::io::copy(&mut backend_rd, &mut client_wr).await;
            let _ = client_wr.shutdown().await;
            ("backend to client", copied)
        };
        // The first direction to end closes the tunnel: both sockets are dropped here.
        let (direction, copied) = tokio::select! {
            done = up => done,
            done = down => done,
        };
        match copied {
            Ok(bytes) => {
                tracing::debug!(backend = %addr, direction, bytes, "upgraded connection closed")
            }
            Err(error) => {
                tracing::debug!(backend = %addr, direction, %error, "upgraded connection failed")
            }
        }
    });
}
