//! `MS-ASPNETCORE-WINAUTHTOKEN`: a Windows token handle duplicated into the backend process,
//! as lowercase hexadecimal without `0x` or leading zeros (protocol §1.3 step 4, §4.3 step 6).
//!
//! ```
//! use ancm_protocol::win_token;
//! let v = win_token::encode(0x2a4);
//! assert_eq!(v.to_str().unwrap(), "2a4");
//! assert_eq!(win_token::decode(b"2A4"), Some(0x2a4));
//! assert_eq!(win_token::decode(b"0x2a4"), None);
//! ```
use http::HeaderValue;

/// The header value for a handle.
pub fn encode(handle: u64) -> HeaderValue {
    let mut v = HeaderValue::from_str(&format!("{handle:x}"))
        .unwrap_or_else(|_| unreachable!("hex digits are a valid header value"));
    v.set_sensitive(true);
    v
}

/// Parse a handle as the backend does: a hexadecimal 32-bit integer, surrounding whitespace
/// allowed, no `0x` prefix or sign. Anything else is `None` (ignored).
pub fn decode(value: &[u8]) -> Option<u32> {
    let text = std::str::from_utf8(value).ok()?.trim();
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let significant = text.trim_start_matches('0');
    if significant.len() > 8 {
        return None;
    }
    if significant.is_empty() {
        return Some(0);
    }
    u32::from_str_radix(significant, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn round_trip(handle in any::<u32>()) {
            let v = encode(u64::from(handle));
            prop_assert_eq!(decode(v.as_bytes()), Some(handle));
            prop_assert!(!v.as_bytes().starts_with(b"0") || handle == 0);
        }
    }

    #[test]
    fn rejects_non_hex() {
        for bad in ["", " ", "+1", "-1", "0x1", "g", "1 2", "100000000"] {
            assert_eq!(decode(bad.as_bytes()), None, "{bad}");
        }
        assert_eq!(decode(b" ff "), Some(255));
        assert_eq!(decode(b"FFFFFFFF"), Some(u32::MAX));
    }
}
