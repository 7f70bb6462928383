//! `ancm_protocol::forwarded::list_items` and `append_item` / `append_for` / `append_proto`.
//!
//! Input: header lines separated by `\n` (each line that is a valid header value is used),
//! then the bytes that choose an endpoint and an order of taking items from either end.
//!
//! * `list_items` gives the items of a straightforward reference splitter (commas inside
//!   double quotes do not split, surrounding quotes removed, trimmed, empty items dropped),
//!   taken from the front, from the back, or from both ends in any interleaving;
//! * every item is non-empty, trimmed, and a slice of the value;
//! * appending an item to the lines gives one value ending in `, item` (or the item alone),
//!   and — when the lines have balanced quotes — reading it back gives the lines' items and
//!   then the appended item, which `parse_for` reads as the endpoint appended.
#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use ancm_protocol::forwarded::{
    append_for, append_item, append_proto, is_for_token, is_proto_token, list_items, parse_for,
};
use http::HeaderValue;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The last 19 bytes (when there are that many) drive the choices; all of it is a value.
    let choices = data
        .get(data.len().saturating_sub(19)..)
        .unwrap_or_default();
    let text = String::from_utf8_lossy(data);
    check_list(&text, choices);

    let lines: Vec<HeaderValue> = data
        .split(|b| *b == b'\n')
        .filter_map(|line| HeaderValue::from_bytes(line).ok())
        .collect();
    let client = endpoint(choices);
    let include_port = choices.first().is_some_and(|b| b & 1 == 1);
    let tls = choices.first().is_some_and(|b| b & 2 == 2);

    let combined = append_for(&lines, client, include_port);
    let item = check_append(&lines, is_for_token, &combined);
    if let Some(item) = item {
        let port = if include_port { client.port() } else { 0 };
        assert_eq!(parse_for(item), Some((client.ip().to_canonical(), port)));
    }

    let combined = append_proto(&lines, tls);
    if let Some(item) = check_append(&lines, is_proto_token, &combined) {
        assert_eq!(item, if tls { "https" } else { "http" });
    }

    let token: Vec<u8> = choices
        .iter()
        .copied()
        .filter(|b| b.is_ascii_alphanumeric())
        .collect();
    if !token.is_empty() {
        let combined = append_item(&lines, keep_all, &token);
        if let Some(item) = check_append(&lines, keep_all, &combined) {
            assert_eq!(item.as_bytes(), token);
        }
    }
});

fn check_list(text: &str, choices: &[u8]) {
    let reference = reference_items(text);
    let forward: Vec<&str> = list_items(text).collect();
    assert_eq!(forward, reference, "{text:?} from the front");
    let mut backward: Vec<&str> = list_items(text).rev().collect();
    backward.reverse();
    assert_eq!(backward, reference, "{text:?} from the back");

    let range = text.as_ptr() as usize..=text.as_ptr() as usize + text.len();
    for item in &forward {
        assert!(!item.is_empty(), "{text:?}: empty item");
        assert_eq!(*item, item.trim(), "{text:?}: untrimmed item");
        let start = item.as_ptr() as usize;
        assert!(range.contains(&start) && range.contains(&(start + item.len())));
    }

    // Interleaved: each bit of the choices takes from the front (0) or the back (1).
    let mut items = list_items(text);
    let (mut front, mut back) = (0, reference.len());
    for bit in choices.iter().flat_map(|b| (0..8).map(move |i| b >> i & 1)) {
        if bit == 0 {
            assert_eq!(
                items.next(),
                reference.get(front).copied().filter(|_| front < back)
            );
            front = (front + 1).min(back);
        } else {
            let expected = (back > front).then(|| reference[back - 1]);
            assert_eq!(items.next_back(), expected);
            back = back.saturating_sub(1).max(front);
        }
    }
    assert_eq!(items.collect::<Vec<_>>(), reference[front..back]);
}

/// The items of a list value, the obvious way.
fn reference_items(text: &str) -> Vec<&str> {
    let mut items = Vec::new();
    let mut start = 0;
    let mut quoted = false;
    for (i, c) in text.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => {
                items.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    items.push(&text[start..]);
    items
        .into_iter()
        .map(|item| {
            let item = item.trim();
            match item.strip_prefix('"').and_then(|i| i.strip_suffix('"')) {
                Some(inner) => inner.trim(),
                None => item,
            }
        })
        .filter(|item| !item.is_empty())
        .collect()
}

fn keep_all(_: &[u8]) -> bool {
    true
}

/// Checks an appended value against the lines it was appended to: the lines' items (split at
/// every comma, trimmed) that `keep` accepts, in order, then the item. Returns the appended
/// item read back with `list_items` when the kept items' quotes are balanced (the front's
/// filters keep no quote at all: protocol §8.24).
fn check_append<'a>(
    lines: &[HeaderValue],
    keep: fn(&[u8]) -> bool,
    combined: &'a HeaderValue,
) -> Option<&'a str> {
    // The front's filters accept no quote; `keep_all` does.
    let filtered = !keep(b"\"");
    let bytes = combined.as_bytes();
    assert!(!bytes.contains(&b'\r') && !bytes.contains(&b'\n'));
    let prior: Vec<&[u8]> = lines
        .iter()
        .flat_map(|l| l.as_bytes().split(|b| *b == b','))
        .map(<[u8]>::trim_ascii)
        .filter(|item| !item.is_empty() && keep(item))
        .collect();
    let joined = prior.join(&b", "[..]);
    assert!(bytes.starts_with(&joined));
    let item = if prior.is_empty() {
        bytes
    } else {
        bytes[joined.len()..]
            .strip_prefix(b", ")
            .expect("', ' before the item")
    };
    // The entry the front appended is the text after the last comma.
    let last = bytes.rsplit(|b| *b == b',').next().unwrap_or_default();
    assert_eq!(last.trim_ascii(), item);
    if filtered {
        assert!(!bytes.contains(&b'"'), "a filtered value holds no quote");
    }

    let text = std::str::from_utf8(bytes).ok()?;
    if joined.iter().filter(|b| **b == b'"').count() % 2 == 1 {
        return None;
    }
    let items: Vec<&str> = list_items(text).collect();
    let prior_text = std::str::from_utf8(&joined).expect("a prefix of UTF-8 at a comma");
    let (appended, before) = items.split_last().expect("the appended item");
    assert_eq!(before, list_items(prior_text).collect::<Vec<_>>());
    assert_eq!(appended.as_bytes(), item);
    Some(appended)
}

/// A client endpoint from 19 bytes (zeros where there are fewer): a family bit, 16 address
/// bytes, a port. IPv4 and IPv4-mapped IPv6 addresses are both produced.
fn endpoint(choices: &[u8]) -> SocketAddr {
    let mut bytes = [0u8; 19];
    bytes[..choices.len().min(19)].copy_from_slice(&choices[..choices.len().min(19)]);
    let v4 = Ipv4Addr::new(bytes[1], bytes[2], bytes[3], bytes[4]);
    let ip = match bytes[0] & 12 {
        0 => IpAddr::V4(v4),
        4 => IpAddr::V6(v4.to_ipv6_mapped()),
        _ => IpAddr::V6(Ipv6Addr::from(
            <[u8; 16]>::try_from(&bytes[1..17]).expect("16 bytes"),
        )),
    };
    SocketAddr::new(ip, u16::from_be_bytes([bytes[17], bytes[18]]))
}
