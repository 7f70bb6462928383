//! The application's virtual path (`ASPNETCORE_APPL_PATH`) and the path-base match both
//! halves use (protocol §4.4).
//!
//! ```
//! use ancm_protocol::AppPath;
//! let base = AppPath::parse("/Shop/").unwrap();
//! assert_eq!(base.as_str(), "/Shop");
//! assert_eq!(base.match_len("/SHOP/cart"), Some(5));
//! assert_eq!(base.match_len("/shopping"), None);
//! ```
use std::fmt;
use std::sync::Arc;

/// A validated application virtual path: starts with `/`, no trailing `/` except the root.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct AppPath(Arc<str>);

/// Why a string is not an application path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidAppPath {
    /// The value is empty.
    #[error("the application path is empty")]
    Empty,
    /// The value does not start with `/`.
    #[error("the application path {0:?} does not start with '/'")]
    NoLeadingSlash(String),
    /// The value has a character that cannot appear in a URI path (control, space, `?`, `#`).
    #[error("the application path {0:?} contains a character not allowed in a URI path")]
    InvalidCharacter(String),
}

impl AppPath {
    /// Validate and normalise (trailing `/` trimmed; `/` alone stays the root).
    pub fn parse(value: &str) -> Result<Self, InvalidAppPath> {
        if value.is_empty() {
            return Err(InvalidAppPath::Empty);
        }
        if !value.starts_with('/') {
            return Err(InvalidAppPath::NoLeadingSlash(value.to_owned()));
        }
        if value
            .bytes()
            .any(|b| b.is_ascii_control() || b == b' ' || b == b'?' || b == b'#')
        {
            return Err(InvalidAppPath::InvalidCharacter(value.to_owned()));
        }
        let trimmed = value.trim_end_matches('/');
        if trimmed.is_empty() {
            Ok(Self::root())
        } else {
            Ok(AppPath(trimmed.into()))
        }
    }

    /// The root path `/`.
    pub fn root() -> Self {
        AppPath("/".into())
    }

    /// Whether this is `/` (no path base at all).
    pub fn is_root(&self) -> bool {
        &*self.0 == "/"
    }

    /// The normalised path, `/` or `/a/b`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// If `path` is under this base — an ASCII-case-insensitive prefix ending at the end of
    /// `path` or right before a `/` — the length of the matched prefix in `path`. The root
    /// matches every path with length 0.
    pub fn match_len(&self, path: &str) -> Option<usize> {
        if self.is_root() {
            return Some(0);
        }
        let base = self.0.as_bytes();
        let bytes = path.as_bytes();
        if bytes.len() < base.len() || !bytes[..base.len()].eq_ignore_ascii_case(base) {
            return None;
        }
        match bytes.get(base.len()) {
            None | Some(b'/') => Some(base.len()),
            Some(_) => None,
        }
    }
}

impl fmt::Debug for AppPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for AppPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Default for AppPath {
    fn default() -> Self {
        Self::root()
    }
}

impl std::str::FromStr for AppPath {
    type Err = InvalidAppPath;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_normalises() {
        assert!(AppPath::parse("/").unwrap().is_root());
        assert!(AppPath::parse("///").unwrap().is_root());
        assert_eq!(AppPath::parse("/a/b/").unwrap().as_str(), "/a/b");
        assert_eq!(AppPath::parse(""), Err(InvalidAppPath::Empty));
        assert!(matches!(
            AppPath::parse("a"),
            Err(InvalidAppPath::NoLeadingSlash(_))
        ));
        assert!(matches!(
            AppPath::parse("/a b"),
            Err(InvalidAppPath::InvalidCharacter(_))
        ));
    }

    #[test]
    fn match_at_segment_boundary_ignoring_case() {
        let base = AppPath::parse("/base").unwrap();
        assert_eq!(base.match_len("/base"), Some(5));
        assert_eq!(base.match_len("/BASE/"), Some(5));
        assert_eq!(base.match_len("/Base/x/y"), Some(5));
        assert_eq!(base.match_len("/baseandsomething"), None);
        assert_eq!(base.match_len("/ba"), None);
        assert_eq!(base.match_len("/something"), None);
        assert_eq!(AppPath::root().match_len("/anything"), Some(0));
    }
}
