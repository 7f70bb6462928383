//! W3C Trace Context (`traceparent`, `tracestate`): the request id both halves log.
//!
//! The front keeps a valid incoming `traceparent` and forwards it with a new parent id (its
//! own span), or starts a new trace when there is none; the backend reads the trace id from
//! the same header, so both logs carry one id per request.
//!
//! ```
//! use ancm_protocol::trace::TraceParent;
//!
//! let incoming = TraceParent::parse(b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").unwrap();
//! let hop = incoming.child();
//! assert_eq!(hop.trace_id(), incoming.trace_id());
//! assert_ne!(hop.parent_id(), incoming.parent_id());
//! assert!(hop.sampled());
//! assert_eq!(TraceParent::parse(hop.to_string().as_bytes()), Some(hop));
//!
//! assert_eq!(TraceParent::parse(b"00-00000000000000000000000000000000-00f067aa0ba902b7-01"), None);
//! let fresh = TraceParent::generate();
//! assert_eq!(fresh.to_string().len(), 55);
//! ```
use std::fmt;

use http::HeaderValue;

/// A parsed `traceparent` (W3C Trace Context Level 1, version `00`).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TraceParent {
    trace_id: [u8; 16],
    parent_id: [u8; 8],
    flags: u8,
}

impl TraceParent {
    /// Parse a `traceparent` value. Version `00` must be exactly
    /// `00-<32 hex>-<16 hex>-<2 hex>`, lowercase; a higher version (not `ff`) is read by its
    /// first four fields, as the specification asks. All-zero ids are invalid.
    pub fn parse(value: &[u8]) -> Option<Self> {
        if value.len() < 55 {
            return None;
        }
        let (head, rest) = value.split_at(55);
        let version = hex_byte(&head[0..2])?;
        if version == 0xff || (version == 0 && !rest.is_empty()) {
            return None;
        }
        if version != 0 && !rest.is_empty() && rest[0] != b'-' {
            return None;
        }
        if head[2] != b'-' || head[35] != b'-' || head[52] != b'-' {
            return None;
        }
        let mut trace_id = [0u8; 16];
        for (i, byte) in trace_id.iter_mut().enumerate() {
            *byte = hex_byte(&head[3 + 2 * i..5 + 2 * i])?;
        }
        let mut parent_id = [0u8; 8];
        for (i, byte) in parent_id.iter_mut().enumerate() {
            *byte = hex_byte(&head[36 + 2 * i..38 + 2 * i])?;
        }
        let flags = hex_byte(&head[53..55])?;
        if trace_id == [0; 16] || parent_id == [0; 8] {
            return None;
        }
        Some(Self {
            trace_id,
            parent_id,
            flags,
        })
    }

    /// A new trace with a random trace id and parent id, sampled flag unset.
    pub fn generate() -> Self {
        let mut ids = [0u8; 24];
        // Both ids from the OS CSPRNG; an all-zero id is invalid, so draw again (2^-64 odds).
        loop {
            if !random::fill(&mut ids) {
                // No OS randomness: fall back to a v4 UUID's random bits (same source family).
                ids[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
                ids[16..].copy_from_slice(&uuid::Uuid::new_v4().as_bytes()[..8]);
            }
            let (trace, parent) = ids.split_at(16);
            if trace.iter().any(|b| *b != 0) && parent.iter().any(|b| *b != 0) {
                break;
            }
        }
        let mut trace_id = [0u8; 16];
        trace_id.copy_from_slice(&ids[..16]);
        let mut parent_id = [0u8; 8];
        parent_id.copy_from_slice(&ids[16..]);
        Self {
            trace_id,
            parent_id,
            flags: 0,
        }
    }

    /// The same trace, with a new random parent id: the hop this proxy adds. Flags are kept.
    pub fn child(&self) -> Self {
        let fresh = Self::generate();
        Self {
            trace_id: self.trace_id,
            parent_id: fresh.parent_id,
            flags: self.flags,
        }
    }

    /// The trace id (16 bytes).
    pub fn trace_id(&self) -> [u8; 16] {
        self.trace_id
    }

    /// The trace id as 32 lowercase hex digits, as logs show it.
    pub fn trace_id_hex(&self) -> String {
        hex(&self.trace_id)
    }

    /// The parent (span) id (8 bytes).
    pub fn parent_id(&self) -> [u8; 8] {
        self.parent_id
    }

    /// The trace flags.
    pub fn flags(&self) -> u8 {
        self.flags
    }

    /// Whether the sampled flag is set.
    pub fn sampled(&self) -> bool {
        self.flags & 1 == 1
    }

    /// The version-`00` header value.
    pub fn header_value(&self) -> HeaderValue {
        HeaderValue::from_bytes(&self.encode())
            .unwrap_or_else(|_| unreachable!("a traceparent is lowercase hex and dashes"))
    }

    /// `00-<trace id>-<parent id>-<flags>`, written in place (no allocation per request).
    fn encode(&self) -> [u8; 55] {
        let mut out = [b'-'; 55];
        out[..2].copy_from_slice(b"00");
        hex_into(&self.trace_id, &mut out[3..35]);
        hex_into(&self.parent_id, &mut out[36..52]);
        hex_into(&[self.flags], &mut out[53..55]);
        out
    }
}

impl fmt::Display for TraceParent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let encoded = self.encode();
        f.write_str(std::str::from_utf8(&encoded).map_err(|_| fmt::Error)?)
    }
}

impl fmt::Debug for TraceParent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TraceParent({self})")
    }
}

/// Whether a `tracestate` value may be forwarded: at most 512 bytes, visible ASCII, spaces
/// and tabs (the specification's character set), so a kept value is a valid header value.
pub fn is_valid_tracestate(value: &[u8]) -> bool {
    value.len() <= 512
        && value
            .iter()
            .all(|b| matches!(b, b' ' | b'\t' | 0x21..=0x7e))
}

fn hex_byte(digits: &[u8]) -> Option<u8> {
    let nibble = |d: u8| match d {
        b'0'..=b'9' => Some(d - b'0'),
        b'a'..=b'f' => Some(d - b'a' + 10),
        _ => None,
    };
    Some(nibble(digits[0])? << 4 | nibble(digits[1])?)
}

fn hex(bytes: &[u8]) -> String {
    let mut out = vec![0; bytes.len() * 2];
    hex_into(bytes, &mut out);
    String::from_utf8(out).unwrap_or_else(|_| unreachable!("hex digits are ASCII"))
}

/// Lowercase hex of `bytes` into `out` (twice as long).
fn hex_into(bytes: &[u8], out: &mut [u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for (b, pair) in bytes.iter().zip(out.chunks_exact_mut(2)) {
        pair[0] = DIGITS[usize::from(b >> 4)];
        pair[1] = DIGITS[usize::from(b & 15)];
    }
}

/// OS randomness for the ids, drawn a block at a time per thread: one `getrandom` call per
/// 170 new traces or hops instead of one per request.
mod random {
    use std::cell::RefCell;

    const BLOCK: usize = 4096;

    struct Pool {
        bytes: [u8; BLOCK],
        used: usize,
    }

    thread_local! {
        static POOL: RefCell<Pool> = const {
            RefCell::new(Pool { bytes: [0; BLOCK], used: BLOCK })
        };
    }

    /// Fills `out` (at most [`BLOCK`] bytes) from the OS CSPRNG; `false` when the OS has
    /// none to give.
    pub(super) fn fill(out: &mut [u8]) -> bool {
        if out.len() > BLOCK {
            return getrandom::fill(out).is_ok();
        }
        POOL.with(|pool| {
            let mut pool = pool.borrow_mut();
            if BLOCK - pool.used < out.len() {
                if getrandom::fill(&mut pool.bytes).is_err() {
                    return false;
                }
                pool.used = 0;
            }
            let start = pool.used;
            out.copy_from_slice(&pool.bytes[start..start + out.len()]);
            pool.used += out.len();
            true
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &[u8] = b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn parses_and_formats_version_00() {
        let t = TraceParent::parse(VALID).unwrap();
        assert_eq!(t.to_string().as_bytes(), VALID);
        assert_eq!(t.trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert!(t.sampled());
    }

    #[test]
    fn rejects_what_the_specification_rejects() {
        let bad: &[&[u8]] = &[
            b"",
            b"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", // uppercase
            b"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", // zero parent
            b"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", // version ff
            b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x", // 00 with more
            b"00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            b"00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",
            b"\"0-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ];
        for value in bad {
            assert_eq!(TraceParent::parse(value), None, "{value:?}");
        }
    }

    #[test]
    fn reads_a_future_version_by_its_first_fields() {
        let t = TraceParent::parse(b"cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what")
            .unwrap();
        assert_eq!(t.trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert!(
            TraceParent::parse(b"cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x")
                .is_none()
        );
    }

    #[test]
    fn pooled_randomness_is_never_handed_out_twice() {
        // 200 draws of 24 bytes cross the refill of the 4 KiB block.
        let mut seen = std::collections::HashSet::new();
        for _ in 0..200 {
            let mut ids = [0u8; 24];
            assert!(random::fill(&mut ids));
            assert!(seen.insert(ids));
        }
        let mut big = vec![0u8; 5000];
        assert!(random::fill(&mut big));
        assert!(big.iter().any(|b| *b != 0));
    }

    #[test]
    fn the_header_value_is_the_display_form() {
        let t = TraceParent::generate();
        assert_eq!(t.header_value().as_bytes(), t.to_string().as_bytes());
        assert_eq!(
            TraceParent::parse(VALID).unwrap().header_value().as_bytes(),
            VALID
        );
    }

    #[test]
    fn generated_ids_are_valid_and_differ() {
        let a = TraceParent::generate();
        let b = TraceParent::generate();
        assert_ne!(a.trace_id(), b.trace_id());
        assert_eq!(TraceParent::parse(a.to_string().as_bytes()), Some(a));
        assert!(!a.sampled());
        let child = a.child();
        assert_eq!(child.trace_id(), a.trace_id());
        assert_ne!(child.parent_id(), a.parent_id());
    }

    #[test]
    fn tracestate_charset_and_length() {
        assert!(is_valid_tracestate(
            b"rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"
        ));
        assert!(!is_valid_tracestate(b"a=\x01"));
        assert!(!is_valid_tracestate(&[b'a'; 513]));
    }

    proptest::proptest! {
        #[test]
        fn parse_never_panics_and_round_trips(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..80)) {
            if let Some(t) = TraceParent::parse(&bytes) {
                proptest::prop_assert_eq!(TraceParent::parse(t.to_string().as_bytes()), Some(t));
            }
        }
    }
}
