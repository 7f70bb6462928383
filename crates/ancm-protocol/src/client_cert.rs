//! `MS-ASPNETCORE-CLIENTCERT`: the client certificate as standard base64 (`A–Z a–z 0–9 + /`,
//! `=` padding, no line breaks) of its DER encoding (protocol §1.3 step 7, §4.3 step 5).
//!
//! ```
//! use ancm_protocol::client_cert;
//! let v = client_cert::encode(&[0x30, 0x03, 0x02, 0x01, 0x05]);
//! assert_eq!(v.to_str().unwrap(), "MAMCAQU=");
//! assert_eq!(client_cert::decode(v.as_bytes()).unwrap(), vec![0x30, 0x03, 0x02, 0x01, 0x05]);
//! ```
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use http::HeaderValue;

/// The header value is not valid base64.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the client certificate header is not valid base64: {0}")]
pub struct InvalidClientCert(String);

/// The header value for a DER certificate.
pub fn encode(der: &[u8]) -> HeaderValue {
    HeaderValue::try_from(STANDARD.encode(der))
        .unwrap_or_else(|_| unreachable!("base64 is a valid header value"))
}

/// Decode the header value back to DER. Surrounding whitespace is ignored.
pub fn decode(value: &[u8]) -> Result<Vec<u8>, InvalidClientCert> {
    STANDARD
        .decode(value.trim_ascii())
        .map_err(|e| InvalidClientCert(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn round_trip(der in proptest::collection::vec(any::<u8>(), 0..4096)) {
            let v = encode(&der);
            prop_assert!(v.as_bytes().iter().all(|b| b.is_ascii_alphanumeric() || b"+/=".contains(b)));
            prop_assert_eq!(decode(v.as_bytes()).unwrap(), der);
        }
    }

    #[test]
    fn invalid_is_an_error() {
        assert!(decode(b"not base64!").is_err());
        assert!(decode(b"MAMCAQU").is_err()); // missing padding
    }
}
