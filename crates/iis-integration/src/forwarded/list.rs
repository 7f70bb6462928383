//! Reading `X-Forwarded-*` lists from a request: one header's lines joined as ASP.NET Core
//! joins them, then split by [`ancm_protocol::forwarded::list_items`].
use std::borrow::Cow;

use ancm_protocol::forwarded::{ListItems, list_items};
use http::{HeaderMap, HeaderName};

use crate::headers::Lines;

/// The text of one list header: all its lines joined with `,`.
pub(super) struct List<'a> {
    text: Cow<'a, str>,
}

impl<'a> List<'a> {
    /// The header's list; `lines` is what [`find`](crate::headers::find) saw of `name`.
    /// Bytes that are not UTF-8 become U+FFFD, which no entry accepts.
    pub(super) fn read(headers: &'a HeaderMap, name: &HeaderName, lines: Lines<'a>) -> Self {
        let text = match lines {
            Lines { first: None, .. } => Cow::Borrowed(""),
            Lines {
                first: Some(line),
                more: false,
            } => utf8_lossy(line.as_bytes()),
            Lines { more: true, .. } => {
                let mut joined = String::new();
                for (i, line) in headers.get_all(name).iter().enumerate() {
                    if i > 0 {
                        joined.push(',');
                    }
                    joined.push_str(&utf8_lossy(line.as_bytes()));
                }
                Cow::Owned(joined)
            }
        };
        Self { text }
    }

    /// The items, trimmed, empty ones skipped, from either end.
    pub(super) fn items(&self) -> ListItems<'_> {
        list_items(&self.text)
    }
}

/// `String::from_utf8_lossy`, borrowing through the faster `str::from_utf8` when valid.
fn utf8_lossy(bytes: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(text) => Cow::Borrowed(text),
        Err(_) => String::from_utf8_lossy(bytes),
    }
}
