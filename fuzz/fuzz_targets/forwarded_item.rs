//! One `X-Forwarded-*` item: `parse_for`, `format_for`, `is_valid_proto`, `is_valid_host`.
//!
//! * `parse_for` agrees with the standard library's address parsers on every text, and
//!   reads back every endpoint `format_for` writes (IPv4-mapped addresses as IPv4);
//! * what `format_for` writes is one list item and a valid header value;
//! * `is_valid_proto` is exactly "non-empty, only `A–Z a–z 0–9 + - .`";
//! * a valid proto or host is one list item (no comma, quote or white space) and a valid
//!   header value, and a valid host is a valid URI authority with the same host and port
//!   (except an IP literal with more colons than an IPv6 address has: see README.md).
#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use ancm_protocol::forwarded::{format_for, is_valid_host, is_valid_proto, list_items, parse_for};
use http::HeaderValue;
use http::uri::Authority;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(item) = std::str::from_utf8(data) {
        check_item(item);
    }
    check_endpoint(endpoint(data));
});

fn check_item(item: &str) {
    let parsed = parse_for(item);
    assert_eq!(parsed, parse_for_reference(item), "parse_for({item:?})");

    let proto = !item.is_empty()
        && item
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
    assert_eq!(is_valid_proto(item), proto, "is_valid_proto({item:?})");
    if proto {
        assert_one_item(item);
    }

    if is_valid_host(item) {
        assert_one_item(item);
        let authority = match Authority::try_from(item) {
            Ok(authority) => authority,
            // `is_valid_host` is ASP.NET Core's syntax check, which takes any hex digits,
            // colons and dots between brackets; `http` refuses more than 8 colons (more
            // than any IPv6 address has). See README.md, findings.
            Err(_) if ip_literal_colons(item) > 8 => return,
            Err(e) => panic!("valid host {item:?} is not an authority: {e}"),
        };
        let (host, port) = match item.rfind(':') {
            Some(i) if !item[i..].contains(']') => (&item[..i], Some(&item[i + 1..])),
            _ => (item, None),
        };
        assert_eq!(authority.as_str(), item);
        assert_eq!(authority.host(), host, "host of {item:?}");
        // Any digits are a valid port here, as in ASP.NET Core; a u16 is read as one.
        if let Some(port) = port.and_then(|p| p.parse::<u16>().ok()) {
            assert_eq!(authority.port_u16(), Some(port), "port of {item:?}");
        }
    }
}

/// The colons between the brackets of an IP-literal host (0 for a reg-name).
fn ip_literal_colons(host: &str) -> usize {
    host.strip_prefix('[')
        .and_then(|rest| rest.split_once(']'))
        .map_or(0, |(inside, _)| inside.matches(':').count())
}

fn assert_one_item(item: &str) {
    assert_eq!(list_items(item).collect::<Vec<_>>(), [item], "{item:?}");
    assert!(HeaderValue::from_str(item).is_ok(), "{item:?}");
}

fn check_endpoint(client: SocketAddr) {
    for include_port in [true, false] {
        let text = format_for(client, include_port);
        let port = if include_port { client.port() } else { 0 };
        assert_eq!(
            parse_for(&text),
            Some((client.ip().to_canonical(), port)),
            "{client} written as {text:?}"
        );
        assert_one_item(&text);
    }
}

/// The straightforward reading: an address, or an address and port, or `[v6]`.
fn parse_for_reference(item: &str) -> Option<(IpAddr, u16)> {
    if let Ok(ip) = item.parse::<IpAddr>() {
        return Some((ip, 0));
    }
    if let Ok(sa) = item.parse::<SocketAddr>() {
        return Some((sa.ip(), sa.port()));
    }
    let inner = item.strip_prefix('[')?.strip_suffix(']')?;
    inner.parse::<Ipv6Addr>().ok().map(|ip| (IpAddr::V6(ip), 0))
}

/// A client endpoint from the first 19 bytes (zeros where there are fewer): a family
/// selector, 16 address bytes, a port. IPv4, IPv4-mapped IPv6 and IPv6 are all produced.
fn endpoint(data: &[u8]) -> SocketAddr {
    let mut bytes = [0u8; 19];
    let n = data.len().min(19);
    bytes[..n].copy_from_slice(&data[..n]);
    let v4 = Ipv4Addr::new(bytes[1], bytes[2], bytes[3], bytes[4]);
    let ip = match bytes[0] % 3 {
        0 => IpAddr::V4(v4),
        1 => IpAddr::V6(v4.to_ipv6_mapped()),
        _ => IpAddr::V6(Ipv6Addr::from(
            <[u8; 16]>::try_from(&bytes[1..17]).expect("16 bytes"),
        )),
    };
    SocketAddr::new(ip, u16::from_be_bytes([bytes[17], bytes[18]]))
}
