//! The PROXY protocol (HAProxy's, versions 1 and 2) on `--proxy-protocol` listeners: the
//! header a load balancer sends first on each connection, naming the client it accepted
//! (protocol §8.39).
//!
//! The header is read before anything else, TLS handshake included, within the connection's
//! header timeout, and exactly: only its own bytes are taken from the socket (peeked first,
//! then read), so what follows it is left for TLS or HTTP. A connection that sends anything
//! else, or nothing in time, is closed without an answer. The source address it carries
//! becomes the connection's client address for everything downstream (`X-Forwarded-For`,
//! the access log's `c-ip`, `--trusted-proxy`). A `LOCAL` header (v2, the balancer's own
//! health check) or an `UNKNOWN` one (v1) keeps the socket peer.
//!
//! Parsing is `ppp`'s; this module only decides how many bytes to take and what they mean.
use std::net::SocketAddr;
use std::time::Instant;

use ppp::{HeaderResult, PartialResult, v1, v2};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

/// The longest header accepted: a v1 header is at most 107 bytes; a v2 header is 16 bytes and
/// its addresses, plus TLVs (HAProxy's `send-proxy-v2` with SSL or unique-id TLVs stays far
/// below this).
const MAX_HEADER_BYTES: usize = 4096;

/// Why a connection on a `--proxy-protocol` listener was closed before HTTP.
#[derive(Debug, thiserror::Error)]
pub enum ProxyHeaderError {
    /// The connection did not start with a valid PROXY header.
    #[error("no valid PROXY protocol header")]
    Invalid,
    /// The header was longer than [`MAX_HEADER_BYTES`].
    #[error("PROXY protocol header too long")]
    TooLong,
    /// The client closed the connection before the header was whole.
    #[error("connection closed before the PROXY protocol header was whole")]
    Closed,
    /// The header did not arrive within the header timeout.
    #[error("no PROXY protocol header within the header timeout")]
    Timeout,
    /// Reading the socket failed.
    #[error("reading the PROXY protocol header: {0}")]
    Io(#[from] std::io::Error),
}

impl ProxyHeaderError {
    /// A short fixed name for the log.
    pub fn reason(&self) -> &'static str {
        match self {
            ProxyHeaderError::Invalid => "invalid",
            ProxyHeaderError::TooLong => "too_long",
            ProxyHeaderError::Closed => "closed",
            ProxyHeaderError::Timeout => "timeout",
            ProxyHeaderError::Io(_) => "io",
        }
    }
}

/// Reads the PROXY header at the start of `stream` by `deadline`, and returns the client
/// address it names (`peer`, the socket peer, for `LOCAL` and `UNKNOWN` headers).
pub async fn read_client_addr(
    stream: &mut TcpStream,
    peer: SocketAddr,
    deadline: Instant,
) -> Result<SocketAddr, ProxyHeaderError> {
    tokio::time::timeout_at(deadline.into(), read_header(stream, peer))
        .await
        .map_err(|_| ProxyHeaderError::Timeout)?
}

async fn read_header(
    stream: &mut TcpStream,
    peer: SocketAddr,
) -> Result<SocketAddr, ProxyHeaderError> {
    let mut header: Vec<u8> = Vec::with_capacity(128);
    let mut chunk = [0u8; 512];
    loop {
        // Peek, so that bytes after the header stay in the socket for TLS or HTTP.
        let peeked = stream.peek(&mut chunk).await?;
        if peeked == 0 {
            return Err(ProxyHeaderError::Closed);
        }
        let mut candidate = header.clone();
        candidate.extend_from_slice(&chunk[..peeked]);
        let parsed = HeaderResult::parse(&candidate);
        if parsed.is_incomplete() {
            // Every byte seen belongs to the header: take them and wait for more.
            if candidate.len() > MAX_HEADER_BYTES {
                return Err(ProxyHeaderError::TooLong);
            }
            stream.read_exact(&mut chunk[..peeked]).await?;
            header = candidate;
            continue;
        }
        let (length, addr) = client_addr(&parsed, peer).ok_or(ProxyHeaderError::Invalid)?;
        // Take exactly the header's remaining bytes, which the peek showed are there.
        let rest = length
            .checked_sub(header.len())
            .ok_or(ProxyHeaderError::Invalid)?;
        let mut taken = vec![0u8; rest];
        stream.read_exact(&mut taken).await?;
        return Ok(addr);
    }
}

/// The header's length in bytes and the client address, or `None` when it is not a valid
/// header.
fn client_addr(parsed: &HeaderResult<'_>, peer: SocketAddr) -> Option<(usize, SocketAddr)> {
    match parsed {
        HeaderResult::V1(Ok(header)) => {
            let addr = match header.addresses {
                v1::Addresses::Tcp4(a) => SocketAddr::from((a.source_address, a.source_port)),
                v1::Addresses::Tcp6(a) => SocketAddr::from((a.source_address, a.source_port)),
                v1::Addresses::Unknown => peer,
            };
            Some((header.header.len(), addr))
        }
        HeaderResult::V2(Ok(header)) => {
            let addr = match (header.command, header.addresses) {
                (v2::Command::Local, _) => peer,
                (v2::Command::Proxy, v2::Addresses::IPv4(a)) => {
                    SocketAddr::from((a.source_address, a.source_port))
                }
                (v2::Command::Proxy, v2::Addresses::IPv6(a)) => {
                    SocketAddr::from((a.source_address, a.source_port))
                }
                // Unix sockets and unspecified families name no IP client.
                (v2::Command::Proxy, _) => peer,
            };
            Some((header.len(), addr))
        }
        HeaderResult::V1(Err(_)) | HeaderResult::V2(Err(_)) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(bytes: &[u8]) -> Option<(usize, SocketAddr)> {
        client_addr(&HeaderResult::parse(bytes), "10.0.0.1:9".parse().unwrap())
    }

    #[test]
    fn v1_header_followed_by_a_request() {
        let bytes = b"PROXY TCP4 203.0.113.7 10.0.0.2 51000 80\r\nGET / HTTP/1.1\r\n\r\n";
        let (len, addr) = parse(bytes).unwrap();
        assert_eq!(&bytes[len..len + 3], b"GET");
        assert_eq!(addr, "203.0.113.7:51000".parse().unwrap());
        let (_, addr) = parse(b"PROXY TCP6 2001:db8::1 ::1 51000 443\r\n").unwrap();
        assert_eq!(addr, "[2001:db8::1]:51000".parse().unwrap());
        let (_, addr) = parse(b"PROXY UNKNOWN\r\n").unwrap();
        assert_eq!(addr, "10.0.0.1:9".parse().unwrap());
    }

    #[test]
    fn v2_proxy_and_local() {
        let header = v2::Builder::with_addresses(
            v2::Version::Two | v2::Command::Proxy,
            v2::Protocol::Stream,
            (
                "203.0.113.7:51000".parse::<SocketAddr>().unwrap(),
                "10.0.0.2:443".parse::<SocketAddr>().unwrap(),
            ),
        )
        .build()
        .unwrap();
        let mut bytes = header.clone();
        bytes.extend_from_slice(b"\x16\x03\x01");
        let (len, addr) = parse(&bytes).unwrap();
        assert_eq!(len, header.len());
        assert_eq!(addr, "203.0.113.7:51000".parse().unwrap());
        let local = v2::Builder::with_addresses(
            v2::Version::Two | v2::Command::Local,
            v2::Protocol::Unspecified,
            v2::Addresses::Unspecified,
        )
        .build()
        .unwrap();
        assert_eq!(parse(&local).unwrap().1, "10.0.0.1:9".parse().unwrap());
    }

    #[test]
    fn anything_else_is_invalid() {
        assert!(parse(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n").is_none());
        assert!(parse(b"PROXY TCP4 not-an-ip 10.0.0.2 1 2\r\n").is_none());
        assert!(HeaderResult::parse(b"PROXY TCP4 not-an-ip 10.0.0.2 1 2\r\n").is_complete());
        assert!(HeaderResult::parse(b"GET / HTTP/1.1\r\n").is_complete());
        assert!(parse(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03").is_none());
        assert!(HeaderResult::parse(b"PROXY TCP4 203.0.").is_incomplete());
    }
}
