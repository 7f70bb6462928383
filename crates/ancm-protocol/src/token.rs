use std::fmt;
use std::sync::Arc;

use http::HeaderValue;
use subtle::ConstantTimeEq;

/// The secret that pairs a front with the backend process it started.
///
/// The front sends it in `MS-ASPNETCORE-TOKEN` on every request and gives it to the backend
/// in `ASPNETCORE_TOKEN`; the backend rejects requests without it. Generated tokens come from
/// the OS CSPRNG in ANCM's form, a lowercase GUID (`xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`).
///
/// The value never leaves through formatting: `Debug` and `Display` print `<redacted>`, and
/// [`header_value`](Self::header_value) is marked sensitive so HTTP/2 never indexes it and
/// hyper's debug output hides it. Comparison is constant-time (protocol §8.1).
#[derive(Clone)]
pub struct PairingToken {
    header: HeaderValue,
    text: Arc<str>,
}

/// A token that cannot be sent as a header value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidToken {
    /// The token is empty.
    #[error("the pairing token is empty")]
    Empty,
    /// The token has a byte that is not visible ASCII (0x21–0x7e).
    #[error("the pairing token must be visible ASCII without spaces")]
    InvalidCharacter,
}

impl PairingToken {
    /// A new random token from the OS CSPRNG, as a lowercase hyphenated GUID.
    pub fn generate() -> Self {
        let text = uuid::Uuid::new_v4().hyphenated().to_string();
        Self::new(&text).unwrap_or_else(|_| unreachable!("a GUID is visible ASCII"))
    }

    /// A token with a given value (e.g. `ASPNETCORE_TOKEN` fixed in web.config).
    pub fn new(value: &str) -> Result<Self, InvalidToken> {
        if value.is_empty() {
            return Err(InvalidToken::Empty);
        }
        if !value.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
            return Err(InvalidToken::InvalidCharacter);
        }
        let mut header =
            HeaderValue::from_str(value).map_err(|_| InvalidToken::InvalidCharacter)?;
        header.set_sensitive(true);
        Ok(Self {
            header,
            text: value.into(),
        })
    }

    /// Whether `presented` equals this token, in a time that depends only on the lengths.
    ///
    /// The byte differences are folded eight bytes at a time into one word, which `subtle`
    /// then compares with zero; `subtle`'s slice compare hides every byte from the optimiser
    /// and costs several times more for a 36-byte token.
    pub fn matches(&self, presented: &[u8]) -> bool {
        let expected = self.text.as_bytes();
        if expected.len() != presented.len() {
            return false;
        }
        let (expected_words, expected_rest) = expected.as_chunks::<8>();
        let (presented_words, presented_rest) = presented.as_chunks::<8>();
        let mut diff = 0u64;
        for (a, b) in expected_words.iter().zip(presented_words) {
            diff |= u64::from_ne_bytes(*a) ^ u64::from_ne_bytes(*b);
        }
        for (a, b) in expected_rest.iter().zip(presented_rest) {
            diff |= u64::from(a ^ b);
        }
        diff.ct_eq(&0).into()
    }

    /// The header value to send, marked sensitive. Cloning it is cheap.
    pub fn header_value(&self) -> &HeaderValue {
        &self.header
    }

    /// The token text, for handing it to the backend process (`ASPNETCORE_TOKEN`). Never log
    /// this.
    pub fn expose_secret(&self) -> &str {
        &self.text
    }
}

impl PartialEq for PairingToken {
    fn eq(&self, other: &Self) -> bool {
        self.matches(other.text.as_bytes())
    }
}

impl Eq for PairingToken {}

impl fmt::Debug for PairingToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PairingToken(<redacted>)")
    }
}

impl fmt::Display for PairingToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl std::str::FromStr for PairingToken {
    type Err = InvalidToken;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_token_is_a_lowercase_guid() {
        let t = PairingToken::generate();
        let s = t.expose_secret();
        assert_eq!(s.len(), 36);
        for (i, c) in s.chars().enumerate() {
            if [8, 13, 18, 23].contains(&i) {
                assert_eq!(c, '-');
            } else {
                assert!(c.is_ascii_hexdigit() && !c.is_ascii_uppercase(), "{s}");
            }
        }
        assert_ne!(PairingToken::generate(), t);
    }

    #[test]
    fn formatting_never_prints_the_value() {
        let t = PairingToken::new("secret-value").unwrap();
        assert!(!format!("{t:?}{t}").contains("secret"));
        assert!(t.header_value().is_sensitive());
        assert!(!format!("{:?}", t.header_value()).contains("secret"));
    }

    #[test]
    fn a_difference_in_any_byte_is_a_mismatch() {
        let token = PairingToken::generate();
        let bytes = token.expose_secret().as_bytes();
        for i in 0..bytes.len() {
            let mut other = bytes.to_vec();
            other[i] ^= 1;
            assert!(!token.matches(&other), "byte {i}");
        }
        assert!(token.matches(bytes));
    }

    proptest::proptest! {
        #[test]
        fn matches_is_equality(token in "[!-~]{1,80}", presented in proptest::collection::vec(proptest::num::u8::ANY, 0..80)) {
            let t = PairingToken::new(&token).unwrap();
            proptest::prop_assert_eq!(t.matches(&presented), token.as_bytes() == presented.as_slice());
            proptest::prop_assert!(t.matches(token.as_bytes()));
        }
    }

    #[test]
    fn matches_exactly() {
        let t = PairingToken::new("abc").unwrap();
        assert!(t.matches(b"abc"));
        assert!(!t.matches(b"ABC"));
        assert!(!t.matches(b"abcd"));
        assert!(!t.matches(b""));
        assert_eq!(PairingToken::new(""), Err(InvalidToken::Empty));
        assert_eq!(
            PairingToken::new("a b"),
            Err(InvalidToken::InvalidCharacter)
        );
    }
}
