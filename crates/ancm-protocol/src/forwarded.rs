//! `X-Forwarded-For` / `X-Forwarded-Proto` (and `-Host`, `-Prefix`) codecs (protocol §1.3
//! steps 5–6, §4.5).
//!
//! The front *appends* one item per hop (`203.0.113.7:51000`, `[2001:db8::1]:51000`;
//! `http`/`https`); the backend reads lists from the right, last hop first.
//!
//! ```
//! use ancm_protocol::forwarded::{append_for, append_proto, list_items, parse_for, split_last_entry};
//! use http::HeaderValue;
//! let client_sent = HeaderValue::from_static("198.51.100.1, \"6.6.6.6");
//! let v = append_for([&client_sent], "203.0.113.7:51000".parse().unwrap(), true);
//! // The client's item that is not an address is dropped; the valid one is kept.
//! assert_eq!(v, "198.51.100.1, 203.0.113.7:51000");
//! let items: Vec<_> = list_items(v.to_str().unwrap()).rev().collect();
//! assert_eq!(items, ["203.0.113.7:51000", "198.51.100.1"]);
//! // The entry the nearest proxy appended: the text after the last comma.
//! assert_eq!(split_last_entry("\", 203.0.113.7:51000"), ("\"", "203.0.113.7:51000"));
//! assert_eq!(parse_for("198.51.100.1"), Some(("198.51.100.1".parse().unwrap(), 0)));
//! assert_eq!(append_proto(None, true), "https");
//! ```
//!
//! # Quotes cannot hide the appended entry
//!
//! ASP.NET Core reads these lists honouring double quotes ([`list_items`]). A proxy that
//! appends `, item` to whatever the client sent therefore lets one client-sent `"` swallow the
//! item it appended: `"` becomes `", 203.0.113.7:51000`, a single unparsable item. Two rules
//! close that (protocol §8.24):
//!
//! * the front keeps only client items that are valid tokens ([`is_for_token`],
//!   [`is_proto_token`]) before appending its own, so what it sends never holds a quote, a
//!   stray byte or anything else a reader could misread, and an unmodified ASP.NET Core
//!   backend reads the front's item as the last one;
//! * the backend takes the entry its trusted peer appended as the text after the last comma
//!   ([`split_last_entry`]), and the entries before it as the texts between commas
//!   ([`comma_items`]), with no quote handling: each proxy appends `, item`, so a quote
//!   anyone put earlier cannot swallow a proxy's entry.
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

/// The items of a list whose items never contain a comma (`X-Forwarded-For`, `-Proto`):
/// split at **every** comma, trimmed, empty items dropped. A double quote is an ordinary
/// character here, so it cannot group the items after it into one, as it does in
/// [`list_items`]. Double-ended, like [`list_items`].
pub fn comma_items(value: &str) -> ListItems<'_> {
    if value.bytes().any(|b| b == b',') {
        ListItems::Plain(Some(value))
    } else {
        ListItems::Single(Some(trim(value)).filter(|item| !item.is_empty()))
    }
}

/// Iterator returned by [`list_items`] and [`comma_items`].
#[derive(Debug, Clone)]
pub enum ListItems<'a> {
    /// No comma and no quote: the one item, until taken.
    #[doc(hidden)]
    Single(Option<&'a str>),
    /// No quote (or quotes not special): the text between the items already taken from
    /// either end.
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

/// The `unknown` identifier of RFC 7239 §6, which a proxy may write for a client it cannot
/// name.
const UNKNOWN: &[u8] = b"unknown";

/// Whether a client-sent `X-Forwarded-For` item is one the front passes on: an address
/// [`parse_for`] reads (`1.2.3.4`, `1.2.3.4:80`, `::1`, `[::1]`, `[::1]:80`) or `unknown`
/// (any case). Anything else (quotes, obfuscated identifiers, bytes that are not UTF-8) is
/// not.
pub fn is_for_token(item: &[u8]) -> bool {
    item.eq_ignore_ascii_case(UNKNOWN)
        || std::str::from_utf8(item).is_ok_and(|item| parse_for(item).is_some())
}

/// Whether a client-sent `X-Forwarded-Proto` item is one the front passes on: `http` or
/// `https`, in any case (URI schemes are case-insensitive, RFC 3986 §3.1), kept as sent.
pub fn is_proto_token(item: &[u8]) -> bool {
    item.eq_ignore_ascii_case(HTTP.as_bytes()) || item.eq_ignore_ascii_case(HTTPS.as_bytes())
}

/// Append `item` to a list header whose incoming lines are `existing`: the items of those
/// lines (split at every comma, trimmed) that `keep` accepts, in order, joined with `", "`,
/// then `", "` and the item. Several incoming lines become one value; empty and rejected
/// items are dropped, so with [`is_for_token`] or [`is_proto_token`] the value holds no
/// quote, no byte outside visible ASCII and nothing else a list reader could misread.
pub fn append_item<'a>(
    existing: impl IntoIterator<Item = &'a HeaderValue>,
    keep: fn(&[u8]) -> bool,
    item: &[u8],
) -> HeaderValue {
    let mut out = Vec::with_capacity(item.len() + 32);
    for line in existing {
        for client_item in line.as_bytes().split(|b| *b == b',') {
            let client_item = client_item.trim_ascii();
            if !client_item.is_empty() && keep(client_item) {
                out.extend_from_slice(client_item);
                out.extend_from_slice(b", ");
            }
        }
    }
    out.extend_from_slice(item);
    HeaderValue::from_bytes(&out)
        .unwrap_or_else(|_| unreachable!("kept header value items and a token are a valid value"))
}

/// [`append_item`] with the client endpoint ([`format_for`]), keeping the client's items
/// that are [`is_for_token`].
pub fn append_for<'a>(
    existing: impl IntoIterator<Item = &'a HeaderValue>,
    client: SocketAddr,
    include_port: bool,
) -> HeaderValue {
    append_item(
        existing,
        is_for_token,
        format_for(client, include_port).as_bytes(),
    )
}

/// [`append_item`] with `https` for TLS connections, else `http`, keeping the client's items
/// that are [`is_proto_token`].
pub fn append_proto<'a>(
    existing: impl IntoIterator<Item = &'a HeaderValue>,
    tls: bool,
) -> HeaderValue {
    append_item(
        existing,
        is_proto_token,
        if tls { HTTPS } else { HTTP }.as_bytes(),
    )
}

/// Split a list header's value into what came before the entry the nearest proxy appended,
/// and that entry: the text after the last comma (the whole value when there is none),
/// trimmed, with **no quote handling**. A proxy appends `, item` to whatever it received, so
/// this is its item whatever the client or earlier proxies sent; [`comma_items`] reads the
/// part before it. The entry is empty when the value ends with a comma (or is empty).
pub fn split_last_entry(value: &str) -> (&str, &str) {
    match value.bytes().rposition(|b| b == b',') {
        Some(comma) => (&value[..comma], trim(&value[comma + 1..])),
        None => ("", trim(value)),
    }
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
        fn proto_round_trips(prior in proptest::collection::vec("[a-zA-Z][a-z0-9+.-]{0,8}", 0..4), tls in any::<bool>()) {
            let prior: Vec<HeaderValue> = prior.iter().map(|p| HeaderValue::from_str(p).unwrap()).collect();
            let v = append_proto(&prior, tls);
            let items: Vec<&str> = list_items(v.to_str().unwrap()).collect();
            // The client's `http`/`https` items (any case) are kept in order, the rest dropped.
            let kept: Vec<&str> = prior
                .iter()
                .map(|p| p.to_str().unwrap())
                .filter(|p| p.eq_ignore_ascii_case("http") || p.eq_ignore_ascii_case("https"))
                .collect();
            prop_assert_eq!(&items[..items.len() - 1], &kept[..]);
            prop_assert_eq!(*items.last().unwrap(), if tls { "https" } else { "http" });
            prop_assert!(items.iter().all(|i| is_valid_proto(i)));
        }
    }

    /// Any header value a client can send: visible ASCII, space, tab and obs-text bytes,
    /// weighted towards the characters list readers treat specially.
    fn client_line() -> impl Strategy<Value = HeaderValue> {
        let byte = prop_oneof![
            4 => proptest::sample::select(b"\",, \t[]:.0123456789abcdef%unknownhttps".to_vec()),
            1 => 0x20u8..0x7f,
            1 => 0x80u8..=0xff,
            1 => Just(b'\t'),
        ];
        proptest::collection::vec(byte, 0..24)
            .prop_map(|bytes| HeaderValue::from_bytes(&bytes).expect("a valid header value"))
    }

    proptest! {
        /// Whatever the client sent, the value the front sends holds only valid tokens, and
        /// every reader, the quote-honouring list reader of ASP.NET Core included, finds the
        /// front's item last.
        #[test]
        fn for_the_client_cannot_hide_the_appended_endpoint(
            lines in proptest::collection::vec(client_line(), 0..3),
            peer in any::<SocketAddr>(),
        ) {
            let v = append_for(&lines, peer, true);
            let text = v.to_str().expect("only visible ASCII is sent");
            prop_assert!(!text.contains('"'));
            let expected = (peer.ip().to_canonical(), peer.port());
            let (_, last) = split_last_entry(text);
            prop_assert_eq!(parse_for(last), Some(expected));
            prop_assert_eq!(list_items(text).next_back().and_then(parse_for), Some(expected));
            prop_assert!(list_items(text).all(|item| is_for_token(item.as_bytes())));
        }

        #[test]
        fn proto_the_client_cannot_hide_the_appended_scheme(
            lines in proptest::collection::vec(client_line(), 0..3),
            tls in any::<bool>(),
        ) {
            let v = append_proto(&lines, tls);
            let text = v.to_str().expect("only visible ASCII is sent");
            let scheme = if tls { "https" } else { "http" };
            prop_assert!(!text.contains('"'));
            prop_assert_eq!(split_last_entry(text).1, scheme);
            prop_assert_eq!(list_items(text).next_back(), Some(scheme));
            prop_assert!(list_items(text).all(|item| is_proto_token(item.as_bytes())));
        }

        /// The text after the last comma is the appended entry, whatever came before it.
        #[test]
        fn split_last_entry_finds_what_was_appended(
            before in client_line(),
            item in "[0-9a-z.:\\[\\]]{1,12}",
        ) {
            let before = String::from_utf8_lossy(before.as_bytes()).into_owned();
            let value = format!("{before}, {item}");
            prop_assert_eq!(split_last_entry(&value), (before.as_str(), item.as_str()));
        }
    }

    #[test]
    fn client_items_that_are_not_tokens_are_dropped() {
        let lines = [
            HeaderValue::from_static("\""),
            HeaderValue::from_static("6.6.6.6\", UNKNOWN , [::1]:80,_hidden"),
            HeaderValue::from_bytes(b"\xff\", 1.2.3.4:5").unwrap(),
            HeaderValue::from_static("\"6.6.6.6\", \""),
        ];
        let v = append_for(&lines, "203.0.113.7:51000".parse().unwrap(), true);
        assert_eq!(v, "UNKNOWN, [::1]:80, 1.2.3.4:5, 203.0.113.7:51000");
        let lines = [HeaderValue::from_static("HTTPS, \"http, wss, http\"")];
        assert_eq!(append_proto(&lines, false), "HTTPS, http");
        for bad in [
            &b"unknown1"[..],
            b"http",
            b"\"1.2.3.4\"",
            b"1.2.3.4 5",
            b"\xff",
        ] {
            assert!(!is_for_token(bad), "{bad:?}");
        }
        for bad in [&b"wss"[..], b"ftp", b"\"https\"", b"http s", b""] {
            assert!(!is_proto_token(bad), "{bad:?}");
        }
        assert!(is_proto_token(b"Https") && is_for_token(b"Unknown") && is_for_token(b"::1"));
    }

    #[test]
    fn comma_items_ignore_quotes() {
        assert_eq!(
            comma_items("\"a, b\", c").collect::<Vec<_>>(),
            ["\"a", "b\"", "c"]
        );
        assert_eq!(
            comma_items(" a , ,b,").rev().collect::<Vec<_>>(),
            ["b", "a"]
        );
        assert_eq!(comma_items(" \" ").collect::<Vec<_>>(), ["\""]);
        assert_eq!(comma_items(" ").count(), 0);
    }

    #[test]
    fn split_last_entry_forms() {
        assert_eq!(split_last_entry("1.2.3.4"), ("", "1.2.3.4"));
        assert_eq!(split_last_entry(" a , b "), (" a ", "b"));
        assert_eq!(split_last_entry("\"a, b\""), ("\"a", "b\""));
        assert_eq!(split_last_entry("1.2.3.4,"), ("1.2.3.4", ""));
        assert_eq!(split_last_entry(""), ("", ""));
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
