//! Reading `X-Forwarded-*` lists from a request: one header's lines joined as ASP.NET Core
//! joins them, then split by [`ancm_protocol::forwarded::list_items`].
use ancm_protocol::forwarded::{ListItems, list_items};
use http::{HeaderMap, HeaderName};

use crate::headers::Lines;

/// The items of header `name`, whose lines `lines` is what [`find`](crate::headers::find)
/// saw: trimmed, empty ones skipped, from either end. They borrow the header's one line, or
/// `joined` when its lines must be joined with `,` (or bytes that are not UTF-8 replaced by
/// U+FFFD, which no entry accepts).
pub(super) fn read<'a>(
    headers: &'a HeaderMap,
    name: &HeaderName,
    lines: Lines<'a>,
    joined: &'a mut String,
) -> ListItems<'a> {
    let text = match lines {
        Lines { first: None, .. } => "",
        Lines {
            first: Some(line),
            more: false,
        } => match std::str::from_utf8(line.as_bytes()) {
            Ok(text) => text,
            Err(_) => {
                push_lossy(joined, line.as_bytes());
                joined
            }
        },
        Lines { more: true, .. } => {
            for (i, line) in headers.get_all(name).iter().enumerate() {
                if i > 0 {
                    joined.push(',');
                }
                push_lossy(joined, line.as_bytes());
            }
            joined
        }
    };
    list_items(text)
}

/// `String::from_utf8_lossy`, appended, through the faster `str::from_utf8` when valid.
fn push_lossy(out: &mut String, bytes: &[u8]) {
    match std::str::from_utf8(bytes) {
        Ok(text) => out.push_str(text),
        Err(_) => out.push_str(&String::from_utf8_lossy(bytes)),
    }
}
