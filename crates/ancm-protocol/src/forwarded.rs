//! `X-Forwarded-For` / `X-Forwarded-Proto` (and `-Host`, `-Prefix`) codecs (protocol §1.3
//! steps 5–6, §4.5).
//!
//! The front *appends* one item per hop (`203.0.113.7:51000`, `[2001:db8::1]:51000`;
//! `http`/`https`); the backend reads lists from the right, last hop first.
//!
//! ```
//! use ancm_protocol::forwarded::{append_for, append_proto, list_items, parse_for};
//! use http::HeaderValue;
//! let client_sent = HeaderValue::from_static("198.51.100.1");
//! let v = append_for([&client_sent], "203.0.113.7:51000".parse().unwrap(), true);
//! assert_eq!(v, "198.51.100.1, 203.0.113.7:51000");
//! let items: Vec<_> = list_items(v.to_str().unwrap()).rev().collect();
//! assert_eq!(items, ["203.0.113.7:51000", "198.51.100.1"]);
//! assert_eq!(parse_for("198.51.100.1"), Some(("198.51.100.1".parse().unwrap(), 0)));
//! assert_eq!(append_proto(None, true), "https");
//! ```
use std::net::{IpAddr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use http::HeaderValue;

/// Scheme of a plain connection.
pub const HTTP: &str = "http";
/// Scheme of a TLS connection.
pub const HTTPS: &str = "https";

/// The items of a comma-separated header list: trimmed, empty items dropped, commas inside
/// double quotes not splitting and surrounding quotes removed. Double-ended, so a reader can
/// walk from the right. The usual value (one item, as ANCM sends it) costs one scan.
pub fn list_items(value: &str) -> ListItems<'_> {
    let mut has_comma = false;
    for b in value.bytes() {
        match b {
            b'"' => return ListItems::Quoted(split_quoted(value).into_iter()),
            b',' => has_comma = true,
            _ => {}
        }
    }
    if has_comma {
        ListItems::Plain(Some(value))
    } else {
        ListItems::Single(Some(trim(value)).filter(|item| !item.is_empty()))
    }
}

/// Iterator returned by [`list_items`].
#[derive(Debug, Clone)]
pub enum ListItems<'a> {
    /// No comma and no quote: the one item, until taken.
    #[doc(hidden)]
    Single(Option<&'a str>),
    /// No quote: the text between the items already taken from either end.
    #[doc(hidden)]
    Plain(Option<&'a str>),
    /// Quotes present: split once up front (rare).
    #[doc(hidden)]
    Quoted(std::vec::IntoIter<&'a str>),
}

impl<'a> Iterator for ListItems<'a> {
    type Item = &'a str;
    fn next(&mut self) -> Option<&'a str> {
        match self {
            ListItems::Single(item) => item.take(),
            ListItems::Plain(rest) => loop {
                let text = (*rest)?;
                let item = match text.bytes().position(|b| b == b',') {
                    Some(comma) => {
                        *rest = Some(&text[comma + 1..]);
                        &text[..comma]
                    }
                    None => {
                        *rest = None;
                        text
                    }
                };
                let item = trim(item);
                if !item.is_empty() {
                    return Some(item);
                }
            },
            ListItems::Quoted(items) => items.next(),
        }
    }
}

impl DoubleEndedIterator for ListItems<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        match self {
            ListItems::Single(item) => item.take(),
            ListItems::Plain(rest) => loop {
                let text = (*rest)?;
                let item = match text.bytes().rposition(|b| b == b',') {
                    Some(comma) => {
                        *rest = Some(&text[..comma]);
                        &text[comma + 1..]
                    }
                    None => {
                        *rest = None;
                        text
                    }
                };
                let item = trim(item);
                if !item.is_empty() {
                    return Some(item);
                }
            },
            ListItems::Quoted(items) => items.next_back(),
        }
    }
}

/// `str::trim`, skipped when both ends are ASCII and not white space (a Unicode white-space
/// character starts and ends with a non-ASCII byte).
fn trim(item: &str) -> &str {
    let solid = |b: &u8| b.is_ascii() && !char::from(*b).is_whitespace();
    match item.as_bytes() {
        [first, .., last] if solid(first) && solid(last) => item,
        [only] if solid(only) => item,
        _ => item.trim(),
    }
}

fn split_quoted(value: &str) -> Vec<&str> {
    let mut items = Vec::new();
    let mut start = 0;
    let mut in_quotes = false;
    for (i, b) in value.bytes().enumerate() {
        match b {
            b'"' => in_quotes = !in_quotes,
            b',' if !in_quotes => {
                push_item(&mut items, &value[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    push_item(&mut items, &value[start..]);
    items
}

fn push_item<'a>(items: &mut Vec<&'a str>, raw: &'a str) {
    let mut item = raw.trim();
    if item.len() >= 2 && item.starts_with('"') && item.ends_with('"') {
        item = item[1..item.len() - 1].trim();
    }
    if !item.is_empty() {
        items.push(item);
    }
}

/// Parse one `X-Forwarded-For` item: `1.2.3.4`, `1.2.3.4:80`, `::1`, `[::1]`, `[::1]:80`.
/// A missing port is 0. The form ANCM writes (`a.b.c.d:port`) is read by hand first; no
/// text parses as more than one form, so the order does not change the result.
pub fn parse_for(item: &str) -> Option<(IpAddr, u16)> {
    if let Some(bracketed) = item.strip_prefix('[') {
        if let Ok(addr) = item.parse::<SocketAddrV6>() {
            return Some((IpAddr::V6(*addr.ip()), addr.port()));
        }
        let ip = bracketed.strip_suffix(']')?.parse::<Ipv6Addr>().ok()?;
        return Some((IpAddr::V6(ip), 0));
    }
    if let Some(addr) = parse_plain_v4_endpoint(item.as_bytes()) {
        return Some((IpAddr::V4(*addr.ip()), addr.port()));
    }
    if let Ok(addr) = item.parse::<SocketAddrV4>() {
        return Some((IpAddr::V4(*addr.ip()), addr.port()));
    }
    item.parse::<IpAddr>().ok().map(|ip| (ip, 0))
}

/// `a.b.c.d:port` in the shape ANCM writes it (octets without leading zeros, a port of one to
/// five digits); `None` for anything else, which the standard parsers then see. Whatever this
/// accepts, `SocketAddrV4::from_str` reads the same way.
fn parse_plain_v4_endpoint(item: &[u8]) -> Option<SocketAddrV4> {
    let mut octets = [0u8; 4];
    let mut rest = item;
    for (i, octet) in octets.iter_mut().enumerate() {
        let separator = if i < 3 { b'.' } else { b':' };
        let end = rest.iter().position(|b| *b == separator)?;
        let (digits, after) = rest.split_at(end);
        *octet = u8::try_from(decimal(digits, 3)?).ok()?;
        rest = &after[1..];
    }
    let port = u16::try_from(decimal(rest, 5)?).ok()?;
    Some(SocketAddrV4::new(octets.into(), port))
}

/// One to `max` ASCII digits without a leading zero (other than `0` itself).
fn decimal(digits: &[u8], max: usize) -> Option<u32> {
    if digits.is_empty() || digits.len() > max || (digits.len() > 1 && digits[0] == b'0') {
        return None;
    }
    digits.iter().try_fold(0u32, |n, d| {
        d.is_ascii_digit().then(|| n * 10 + u32::from(d - b'0'))
    })
}

/// Format one `X-Forwarded-For` item for a client endpoint: IPv4 `a.b.c.d:port`, IPv6
/// `[v6]:port`; without the port, the bare address. IPv4-mapped IPv6 addresses (from
/// dual-stack sockets) are written as IPv4.
pub fn format_for(client: SocketAddr, include_port: bool) -> String {
    let ip = client.ip().to_canonical();
    match (ip, include_port) {
        (IpAddr::V4(v4), true) => format!("{v4}:{}", client.port()),
        (IpAddr::V6(v6), true) => format!("[{v6}]:{}", client.port()),
        (ip, false) => ip.to_string(),
    }
}

/// Whether an `X-Forwarded-Proto` item is acceptable: non-empty, only `A–Z a–z 0–9 + - .`.
pub fn is_valid_proto(item: &str) -> bool {
    !item.is_empty()
        && item
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'-' || b == b'.')
}

/// Whether an `X-Forwarded-Host` item is a syntactically valid host: a reg-name of
/// `A–Z a–z 0–9 ! $ & ' ( ) - . _ ~` or `[`IPv6`]`, then optionally `:digits`.
pub fn is_valid_host(item: &str) -> bool {
    let (host, port) = if let Some(rest) = item.strip_prefix('[') {
        let Some(end) = rest.find(']') else {
            return false;
        };
        let inside = &rest[..end];
        if inside.len() < 3
            || !inside
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
        {
            return false;
        }
        (None, &rest[end + 1..])
    } else {
        match item.find(':') {
            Some(i) => (Some(&item[..i]), &item[i..]),
            None => (Some(item), ""),
        }
    };
    if let Some(host) = host {
        let ok = |b: u8| b.is_ascii_alphanumeric() || b"!$&'()-._~".contains(&b);
        if host.is_empty() || !host.bytes().all(ok) {
            return false;
        }
    }
    match port.strip_prefix(':') {
        None => port.is_empty(),
        Some(digits) => !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()),
    }
}

/// Append `item` to a list header whose incoming lines are `existing`: the non-empty lines
/// joined with `", "`, then `", "` and the item. Several incoming lines become one value.
pub fn append_item<'a>(
    existing: impl IntoIterator<Item = &'a HeaderValue>,
    item: &[u8],
) -> HeaderValue {
    let mut out = Vec::with_capacity(item.len() + 32);
    for line in existing {
        let line = line.as_bytes().trim_ascii();
        if !line.is_empty() {
            out.extend_from_slice(line);
            out.extend_from_slice(b", ");
        }
    }
    out.extend_from_slice(item);
    HeaderValue::from_bytes(&out)
        .unwrap_or_else(|_| unreachable!("joined header values and a token are a valid value"))
}

/// [`append_item`] with the client endpoint ([`format_for`]).
pub fn append_for<'a>(
    existing: impl IntoIterator<Item = &'a HeaderValue>,
    client: SocketAddr,
    include_port: bool,
) -> HeaderValue {
    append_item(existing, format_for(client, include_port).as_bytes())
}

/// [`append_item`] with `https` for TLS connections, else `http`.
pub fn append_proto<'a>(
    existing: impl IntoIterator<Item = &'a HeaderValue>,
    tls: bool,
) -> HeaderValue {
    append_item(existing, if tls { HTTPS } else { HTTP }.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn any_ip() -> impl Strategy<Value = IpAddr> {
        prop_oneof![
            any::<u32>().prop_map(|v| IpAddr::V4(Ipv4Addr::from(v))),
            any::<u128>().prop_map(|v| IpAddr::V6(Ipv6Addr::from(v)))
        ]
    }

    proptest! {
        #[test]
        fn for_round_trips_right_to_left(
            prior in proptest::collection::vec(any_ip(), 0..4),
            ip in any_ip(),
            port in any::<u16>(),
            include_port in any::<bool>(),
        ) {
            let prior: Vec<HeaderValue> = prior
                .iter()
                .map(|ip| HeaderValue::from_str(&ip.to_string()).unwrap())
                .collect();
            let v = append_for(&prior, SocketAddr::new(ip, port), include_port);
            let text = v.to_str().unwrap();
            let mut items = list_items(text);
            let (got_ip, got_port) = parse_for(items.next_back().unwrap()).unwrap();
            prop_assert_eq!(got_ip, ip.to_canonical());
            prop_assert_eq!(got_port, if include_port { port } else { 0 });
            prop_assert_eq!(items.count(), prior.len());
            prop_assert_eq!(v.as_bytes().iter().filter(|b| **b == b'\n').count(), 0);
        }

        #[test]
        fn proto_round_trips(prior in proptest::collection::vec("[a-z][a-z0-9+.-]{0,8}", 0..4), tls in any::<bool>()) {
            let prior: Vec<HeaderValue> = prior.iter().map(|p| HeaderValue::from_str(p).unwrap()).collect();
            let v = append_proto(&prior, tls);
            let items: Vec<&str> = list_items(v.to_str().unwrap()).collect();
            prop_assert_eq!(items.len(), prior.len() + 1);
            prop_assert_eq!(*items.last().unwrap(), if tls { "https" } else { "http" });
            prop_assert!(items.iter().all(|i| is_valid_proto(i)));
        }
    }

    /// The straightforward implementations the optimised ones must agree with.
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

    fn list_reference(value: &str) -> Vec<&str> {
        if value.contains('"') {
            split_quoted(value)
        } else {
            value
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .collect()
        }
    }

    proptest! {
        #[test]
        fn parse_for_matches_the_reference(item in "[\\[\\]0-9a-f.:%]{0,24}") {
            prop_assert_eq!(parse_for(&item), parse_for_reference(&item));
        }

        #[test]
        fn plain_v4_endpoints_match_the_reference(item in "[0-9]{0,4}\\.[0-9]{0,4}\\.[0-9]{0,4}\\.[0-9]{0,4}:[0-9]{0,6}") {
            prop_assert_eq!(parse_for(&item), parse_for_reference(&item));
        }

        #[test]
        fn parse_for_reads_every_address_form(addr in any::<SocketAddr>(), bare in any::<bool>(), bracket in any::<bool>()) {
            let item = match (bare, addr.ip()) {
                (true, IpAddr::V6(ip)) if bracket => format!("[{ip}]"),
                (true, ip) => ip.to_string(),
                (false, _) => addr.to_string(),
            };
            prop_assert_eq!(parse_for(&item), parse_for_reference(&item));
            prop_assert!(parse_for(&item).is_some());
        }

        #[test]
        fn list_items_match_the_reference_from_both_ends(
            text in "[a1,; \t\u{b}\u{a0}\u{3000}\"é]{0,16}",
            from_back in proptest::collection::vec(any::<bool>(), 0..20),
        ) {
            let mut ours = list_items(&text);
            let mut reference = list_reference(&text).into_iter();
            for back in from_back {
                if back {
                    prop_assert_eq!(ours.next_back(), reference.next_back());
                } else {
                    prop_assert_eq!(ours.next(), reference.next());
                }
            }
            prop_assert_eq!(ours.collect::<Vec<_>>(), reference.collect::<Vec<_>>());
        }
    }

    #[test]
    fn parse_for_forms() {
        let v6: IpAddr = "::1".parse().unwrap();
        assert_eq!(parse_for("1.2.3.4"), Some(("1.2.3.4".parse().unwrap(), 0)));
        assert_eq!(
            parse_for("1.2.3.4:80"),
            Some(("1.2.3.4".parse().unwrap(), 80))
        );
        assert_eq!(parse_for("::1"), Some((v6, 0)));
        assert_eq!(parse_for("[::1]"), Some((v6, 0)));
        assert_eq!(parse_for("[::1]:80"), Some((v6, 80)));
        for bad in [
            "",
            "unknown",
            "1.2.3.4:",
            "1.2.3.4:99999",
            "[::1",
            "1.2.3",
            "_hidden",
        ] {
            assert_eq!(parse_for(bad), None, "{bad}");
        }
    }

    #[test]
    fn lists_trim_drop_empty_and_honour_quotes() {
        assert_eq!(list_items(" a , ,b,").collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(list_items("\"a,b\", c").collect::<Vec<_>>(), ["a,b", "c"]);
        assert_eq!(list_items("a, \"b\"").rev().collect::<Vec<_>>(), ["b", "a"]);
        assert_eq!(list_items("").count(), 0);
    }

    #[test]
    fn several_lines_become_one_value() {
        let a = HeaderValue::from_static("1.1.1.1");
        let b = HeaderValue::from_static("2.2.2.2, 3.3.3.3");
        let empty = HeaderValue::from_static("");
        let v = append_for([&a, &empty, &b], "[::1]:6000".parse().unwrap(), true);
        assert_eq!(v, "1.1.1.1, 2.2.2.2, 3.3.3.3, [::1]:6000");
        let mapped: SocketAddr = "[::ffff:203.0.113.7]:51000".parse().unwrap();
        assert_eq!(format_for(mapped, true), "203.0.113.7:51000");
        assert_eq!(
            format_for("[2001:db8::1]:1".parse().unwrap(), false),
            "2001:db8::1"
        );
    }

    #[test]
    fn proto_and_host_syntax() {
        assert!(is_valid_proto("https") && is_valid_proto("1a+b-c.d"));
        assert!(!is_valid_proto("") && !is_valid_proto("ht tp") && !is_valid_proto("a/b"));
        for ok in [
            "example.com",
            "example.com:8080",
            "[::1]",
            "[::1]:80",
            "a_b~c",
        ] {
            assert!(is_valid_host(ok), "{ok}");
        }
        for bad in [
            "",
            ":80",
            "exa mple",
            "example.com:",
            "[::]x",
            "[1]",
            "a/b",
            "a:b",
        ] {
            assert!(!is_valid_host(bad), "{bad}");
        }
    }
}
