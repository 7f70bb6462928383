//! `ancm_protocol::AppPath::parse` and `AppPath::match_len`.
//!
//! Input: the base, a line feed, the request path (no line feed: both are the whole input).
//!
//! * `parse` accepts exactly the non-empty values that start with `/` and have no control
//!   character, space, `?` or `#`; the result is the value without trailing `/` (or the
//!   root), and parsing it again gives the same path;
//! * `match_len(path)`: the root matches with 0; otherwise `Some(n)` exactly when the first
//!   `n = base.len()` bytes equal the base ignoring ASCII case and the path ends there or
//!   continues with `/`; `n` is at most the path's length and on a character boundary;
//!   changing the ASCII case of the path changes nothing.
#![no_main]

use ancm_protocol::AppPath;
use ancm_protocol::app_path::InvalidAppPath;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (base, path) = text.split_once('\n').unwrap_or((&text, &text));
    check_parse(base);
    check_parse(path);
    if let Ok(app) = AppPath::parse(base) {
        check_match(&app, path);
        check_match(&app, base);
        check_match(&app, &format!("{path}/"));
    }
});

fn check_parse(value: &str) {
    let bad_byte = |b: u8| b.is_ascii_control() || matches!(b, b' ' | b'?' | b'#');
    match AppPath::parse(value) {
        Ok(app) => {
            assert!(value.starts_with('/') && !value.bytes().any(bad_byte));
            let trimmed = value.trim_end_matches('/');
            let expected = if trimmed.is_empty() { "/" } else { trimmed };
            assert_eq!(app.as_str(), expected);
            assert_eq!(app.is_root(), expected == "/");
            assert_eq!(AppPath::parse(app.as_str()).as_ref(), Ok(&app));
        }
        Err(InvalidAppPath::Empty) => assert!(value.is_empty()),
        Err(InvalidAppPath::NoLeadingSlash(v)) => {
            assert_eq!(v, value);
            assert!(!value.is_empty() && !value.starts_with('/'));
        }
        Err(InvalidAppPath::InvalidCharacter(v)) => {
            assert_eq!(v, value);
            assert!(value.starts_with('/') && value.bytes().any(bad_byte));
        }
    }
}

fn check_match(app: &AppPath, path: &str) {
    let got = app.match_len(path);
    let base = app.as_str();
    let expected = if app.is_root() {
        Some(0)
    } else {
        path.as_bytes()
            .get(..base.len())
            .filter(|head| head.eq_ignore_ascii_case(base.as_bytes()))
            .filter(|_| matches!(path.as_bytes().get(base.len()), None | Some(b'/')))
            .map(|_| base.len())
    };
    assert_eq!(got, expected, "{base:?} against {path:?}");
    if let Some(n) = got {
        assert!(n <= path.len() && path.is_char_boundary(n));
        let (matched, rest) = path.split_at(n);
        assert!(app.is_root() || matched.eq_ignore_ascii_case(base));
        assert!(rest.is_empty() || rest.starts_with('/') || app.is_root());
    }
    assert_eq!(app.match_len(&path.to_ascii_uppercase()), got);
    assert_eq!(app.match_len(&path.to_ascii_lowercase()), got);
}
