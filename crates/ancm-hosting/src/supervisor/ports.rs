//! The child's port (protocol §2.4): fixed by `ASPNETCORE_PORT` in web.config, or a random
//! free one per start attempt.
use std::hash::{BuildHasher, Hasher};
use std::net::{Ipv4Addr, Ipv6Addr, TcpListener};

/// How the child's port is chosen (protocol §2.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PortChoice {
    /// A random free port in 10000–48000 per attempt.
    Random,
    /// `ASPNETCORE_PORT` from web.config: the raw text is what the child receives.
    Fixed {
        /// As written.
        raw: String,
        /// The parsed value.
        port: u16,
    },
}

/// The configured port is outside 1025–48000 or not a number (a critical start error).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("ASPNETCORE_PORT {raw:?} is not a port in the range 1025-48000")]
pub(crate) struct InvalidPort {
    pub(crate) raw: String,
}

/// Reads a configured `ASPNETCORE_PORT`: parsed like C's `atoi` (leading digits; anything
/// else is 0), valid in 1025–48000. Empty means random.
pub(crate) fn port_choice(configured: Option<&str>) -> Result<PortChoice, InvalidPort> {
    let Some(raw) = configured.filter(|v| !v.is_empty()) else {
        return Ok(PortChoice::Random);
    };
    let n = atoi(raw);
    match u16::try_from(n) {
        Ok(port) if (1025..=48000).contains(&port) => Ok(PortChoice::Fixed {
            raw: raw.to_owned(),
            port,
        }),
        _ => Err(InvalidPort {
            raw: raw.to_owned(),
        }),
    }
}

/// C `atoi` without overflow: optional whitespace and sign, then leading digits.
fn atoi(s: &str) -> i64 {
    let s = s.trim_start();
    let (neg, digits) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let mut n: i64 = 0;
    for b in digits.bytes().take_while(u8::is_ascii_digit) {
        n = n.saturating_mul(10).saturating_add(i64::from(b - b'0'));
    }
    if neg { -n } else { n }
}

/// A random port in 10000–48000 that is free on 127.0.0.1 (and ::1 where IPv6 exists);
/// up to 10 draws as ANCM does.
pub(crate) fn random_free_port() -> Option<u16> {
    let state = std::collections::hash_map::RandomState::new();
    for i in 0..10u64 {
        let mut h = state.build_hasher();
        h.write_u64(i);
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0),
        );
        let port = 10_000 + u16::try_from(h.finish() % 38_001).unwrap_or(0);
        if port_is_free(port) {
            return Some(port);
        }
    }
    None
}

/// A new path for a child's Unix-domain socket (§8.42): `ancm-<gateway pid>-<random>.sock` in
/// the temporary folder, short enough for `sun_path` wherever that folder is. The backend
/// creates it with its umask (others cannot connect under the usual 022); the supervisor
/// removes it when the child has exited.
pub(crate) fn unix_socket_path() -> std::path::PathBuf {
    let random = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    std::env::temp_dir().join(format!("ancm-{}-{random:016x}.sock", std::process::id()))
}

/// Whether `port` can be bound on IPv4 loopback, and on IPv6 loopback where IPv6 exists.
fn port_is_free(port: u16) -> bool {
    if TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_err() {
        return false;
    }
    match TcpListener::bind((Ipv6Addr::LOCALHOST, port)) {
        Ok(_) => true,
        Err(e) => e.kind() != std::io::ErrorKind::AddrInUse,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_rules() {
        assert_eq!(port_choice(None), Ok(PortChoice::Random));
        assert_eq!(port_choice(Some("")), Ok(PortChoice::Random));
        assert_eq!(
            port_choice(Some("1025")),
            Ok(PortChoice::Fixed {
                raw: "1025".into(),
                port: 1025
            })
        );
        assert_eq!(
            port_choice(Some("48000abc")),
            Ok(PortChoice::Fixed {
                raw: "48000abc".into(),
                port: 48000
            })
        );
        for bad in [
            "1024",
            "48001",
            "noninteger",
            "-5000",
            "99999999999999999999",
        ] {
            assert!(port_choice(Some(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn random_ports_are_in_range_and_free() {
        for _ in 0..20 {
            let p = random_free_port().expect("a free port");
            assert!((10_000..=48_000).contains(&p));
        }
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        assert!(!port_is_free(l.local_addr().expect("addr").port()));
    }
}
