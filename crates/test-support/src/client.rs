//! A raw HTTP/1.1 client: the test writes the exact request bytes and reads the answer as the
//! server sent it.
//!
//! ```
//! use test_support::client::RawResponse;
//!
//! let res = RawResponse::parse(b"HTTP/1.1 202 Accepted\r\nContent-Length: 2\r\nX-A: 1\r\n\r\nokIGNORED");
//! assert_eq!(res.status, 202);
//! assert_eq!(res.headers, [("content-length".into(), "2".into()), ("x-a".into(), "1".into())]);
//! assert_eq!(res.body, b"ok");
//! ```
//!
//! Made for what a typed client would not send: repeated or lowercase header names, methods
//! such as `post`, several values of one header on separate lines. Each request goes over a
//! new connection with `Connection: close`, and the answer is read to the close.
use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::LIMIT;

/// The `Host` header [`send`] sends.
pub const HOST: &str = "test.local";

/// A response as read off the wire.
#[derive(Debug)]
pub struct RawResponse {
    /// The status code.
    pub status: u16,
    /// The header lines in order, names lowercased, values trimmed.
    pub headers: Vec<(String, String)>,
    /// The body: up to `Content-Length` when there is one, else all the server sent.
    pub body: Vec<u8>,
}

impl RawResponse {
    /// Parse a response from its bytes.
    ///
    /// # Panics
    ///
    /// If the bytes are not an HTTP/1.x response head: the test has failed.
    pub fn parse(bytes: &[u8]) -> Self {
        let end = bytes
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap_or_else(|| panic!("no header end in {:?}", String::from_utf8_lossy(bytes)));
        let head = std::str::from_utf8(&bytes[..end]).expect("a UTF-8 response head");
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        let status = status_line
            .split(' ')
            .nth(1)
            .and_then(|code| code.parse().ok())
            .unwrap_or_else(|| panic!("no status code in {status_line:?}"));
        let headers: Vec<(String, String)> = lines
            .map(|line| {
                let (name, value) = line
                    .split_once(':')
                    .unwrap_or_else(|| panic!("not a header line: {line:?}"));
                (name.trim().to_ascii_lowercase(), value.trim().to_owned())
            })
            .collect();
        let mut body = bytes[end + 4..].to_vec();
        if let Some((_, len)) = headers.iter().find(|(name, _)| name == "content-length") {
            body.truncate(len.parse().expect("a numeric Content-Length"));
        }
        Self {
            status,
            headers,
            body,
        }
    }

    /// The body as JSON.
    ///
    /// # Panics
    ///
    /// If it is not JSON: the test has failed.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(&self.body)))
    }
}

/// Send `method target` with `Host: test.local`, `Connection: close` and `headers` (each its
/// own line, as given), over a new connection, and read the answer.
///
/// # Panics
///
/// If the server cannot be reached or does not answer within [`LIMIT`].
pub async fn send(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
) -> RawResponse {
    let mut raw = format!("{method} {target} HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n");
    for (name, value) in headers {
        raw.push_str(&format!("{name}: {value}\r\n"));
    }
    raw.push_str("\r\n");
    send_raw(addr, raw.as_bytes()).await
}

/// Write `raw` over a new connection and read the answer to the close.
///
/// # Panics
///
/// If the server cannot be reached or does not answer within [`LIMIT`].
pub async fn send_raw(addr: SocketAddr, raw: &[u8]) -> RawResponse {
    send_raw_from(addr, raw).await.1
}

/// [`send_raw`], also giving the connection's local address: the peer the server saw.
///
/// # Panics
///
/// If the server cannot be reached or does not answer within [`LIMIT`].
pub async fn send_raw_from(addr: SocketAddr, raw: &[u8]) -> (SocketAddr, RawResponse) {
    let exchange = async {
        let mut stream = TcpStream::connect(addr)
            .await
            .expect("connect to the server");
        let local = stream.local_addr().expect("the connection's local address");
        stream.write_all(raw).await.expect("write the request");
        let mut bytes = Vec::new();
        stream
            .read_to_end(&mut bytes)
            .await
            .expect("read the response");
        (local, bytes)
    };
    let (local, bytes) = tokio::time::timeout(LIMIT, exchange)
        .await
        .expect("the server answers in time");
    (local, RawResponse::parse(&bytes))
}
