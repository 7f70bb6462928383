//! `ancm_protocol::win_token::{encode, decode}`.
//!
//! * encode → decode gives every 32-bit handle back; the encoding is lowercase hexadecimal
//!   without leading zeros; a handle wider than 32 bits does not decode;
//! * the input as a header value: `decode` is exactly "UTF-8, trimmed, one or more hex
//!   digits, at most 32 bits", and what it reads encodes to the canonical form.
#![no_main]

use ancm_protocol::win_token::{decode, encode};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut wide = [0u8; 8];
    wide[..data.len().min(8)].copy_from_slice(&data[..data.len().min(8)]);
    let handle = u64::from_le_bytes(wide);
    let value = encode(handle);
    let text = value.as_bytes();
    assert!(value.is_sensitive());
    assert!(text.iter().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')));
    assert!(!text.starts_with(b"0") || handle == 0);
    assert_eq!(decode(text), u32::try_from(handle).ok());

    let expected = std::str::from_utf8(data).ok().and_then(|s| {
        let s = s.trim();
        let hex = !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit());
        hex.then(|| u32::from_str_radix(s, 16).ok()).flatten()
    });
    let decoded = decode(data);
    assert_eq!(decoded, expected, "{data:?}");
    if let Some(handle) = decoded {
        assert_eq!(decode(encode(u64::from(handle)).as_bytes()), Some(handle));
    }
});
