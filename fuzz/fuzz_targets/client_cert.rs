//! `ancm_protocol::client_cert::{encode, decode}`.
//!
//! * encode → decode gives the bytes back, and the encoding is standard padded base64 of the
//!   expected length, a valid header value;
//! * the input as a header value: whatever decodes is canonical, so encoding the result gives
//!   the value back (surrounding ASCII white space aside); what does not decode is an error,
//!   never a panic.
#![no_main]

use ancm_protocol::client_cert::{decode, encode};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let value = encode(data);
    let text = value.as_bytes();
    assert_eq!(text.len(), data.len().div_ceil(3) * 4);
    assert!(
        text.iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='))
    );
    assert_eq!(decode(text).as_deref(), Ok(data));

    if let Ok(der) = decode(data) {
        assert_eq!(encode(&der).as_bytes(), data.trim_ascii(), "{data:?}");
    }
});
