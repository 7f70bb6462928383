//! Finding request headers by comparing names instead of hashing them.
//!
//! A `HeaderMap` lookup hashes the name with FNV, a multiply per byte in one dependent chain:
//! for the 15- to 26-byte `X-Forwarded-*` and `MS-ASPNETCORE-*` names that takes longer than
//! comparing the name with every header of a usual request, where most comparisons stop at
//! the standard-header tag or the length. Lookups that are followed by a removal or an
//! insertion hash anyway and keep using the map.
use http::{HeaderMap, HeaderName, HeaderValue};

/// The lines of one header.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Lines<'a> {
    /// The first line (what `HeaderMap::get` returns), if any.
    pub(crate) first: Option<&'a HeaderValue>,
    /// Whether there is more than one line.
    pub(crate) more: bool,
}

/// The lines of each of `names`, in one pass over `headers`.
pub(crate) fn find<'a, const N: usize>(
    headers: &'a HeaderMap,
    names: [&HeaderName; N],
) -> [Lines<'a>; N] {
    let mut found = [Lines::default(); N];
    // `iter` yields every line of a header together, first line first, as `get_all` does.
    for (name, value) in headers {
        if let Some(i) = names.iter().position(|target| name == *target) {
            let lines = &mut found[i];
            if lines.first.is_none() {
                lines.first = Some(value);
            } else {
                lines.more = true;
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_first_lines_and_repeats_like_the_map() {
        let mut headers = HeaderMap::new();
        headers.append("x-a", HeaderValue::from_static("1"));
        headers.append("host", HeaderValue::from_static("h"));
        headers.append("x-b", HeaderValue::from_static("2"));
        headers.append("x-a", HeaderValue::from_static("3"));
        let x_a = HeaderName::from_static("x-a");
        let x_b = HeaderName::from_static("x-b");
        let x_c = HeaderName::from_static("x-c");
        let [a, b, c, host] = find(&headers, [&x_a, &x_b, &x_c, &http::header::HOST]);
        assert_eq!(a.first, headers.get(&x_a));
        assert!(a.more);
        assert_eq!(b.first.unwrap(), "2");
        assert!(!b.more);
        assert!(c.first.is_none() && !c.more);
        assert_eq!(host.first.unwrap(), "h");
    }
}
