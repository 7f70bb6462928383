//! Reading `X-Forwarded-*` lists from a request: one header's lines joined as ASP.NET Core
//! joins them, then split into entries.
use ancm_protocol::forwarded::{ListItems, comma_items, list_items, split_last_entry};
use http::{HeaderMap, HeaderName};

use crate::headers::Lines;

/// The entries of one header, to be taken from the right: for a header each proxy appends
/// to (`X-Forwarded-For`, `-Proto`), first the entry the nearest one appended, then the
/// items before it; for the others, the items.
#[derive(Clone, Debug)]
pub(super) struct Entries<'a> {
    /// The items before `appended`: [`comma_items`] for a header proxies append to,
    /// else [`list_items`] (double quotes honoured, as ASP.NET Core reads them).
    before: ListItems<'a>,
    /// The entry the nearest proxy appended, until taken.
    appended: Option<&'a str>,
}

impl<'a> Iterator for Entries<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        self.before.next().or_else(|| self.appended.take())
    }
}

impl DoubleEndedIterator for Entries<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        self.appended.take().or_else(|| self.before.next_back())
    }
}

/// The entries of header `name`, whose lines `lines` is what [`find`](crate::headers::find)
/// saw. They borrow the header's one line, or `joined` when its lines must be joined with `,`
/// (or bytes that are not UTF-8 replaced by U+FFFD, which no entry accepts).
///
/// With `appended_last` (a header each proxy appends `, item` to), the entries are the texts
/// between commas, with no quote handling, so that an unbalanced `"` a client put in cannot
/// swallow the entry of any proxy after it (protocol §8.24): the last entry is the text after
/// the last comma ([`split_last_entry`]), what the nearest proxy appended, and may be empty
/// (`1.2.3.4,`); the ones before it are [`comma_items`], trimmed, empty ones skipped. A
/// header whose entries are all empty (`, ,`) has none, like an absent one. Otherwise the
/// entries are the items of [`list_items`]: trimmed, empty ones skipped, quotes honoured, as
/// ASP.NET Core reads them.
pub(super) fn read<'a>(
    headers: &'a HeaderMap,
    name: &HeaderName,
    lines: Lines<'a>,
    joined: &'a mut String,
    appended_last: bool,
) -> Entries<'a> {
    let text = match lines {
        Lines { first: None, .. } => "",
        Lines {
            first: Some(line),
            more: false,
        } => match line.to_str() {
            // Visible ASCII, as a proxy writes it: the same text `from_utf8` gives, found
            // with a cheaper check.
            Ok(text) => text,
            Err(_) => match std::str::from_utf8(line.as_bytes()) {
                Ok(text) => text,
                Err(_) => {
                    push_lossy(joined, line.as_bytes());
                    joined
                }
            },
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
    if !appended_last {
        return Entries {
            before: list_items(text),
            appended: None,
        };
    }
    let (before, appended) = split_last_entry(text);
    let before = comma_items(before);
    // An empty last entry counts only when there are others: `, ,` is no list at all.
    let appended =
        Some(appended).filter(|entry| !entry.is_empty() || before.clone().next().is_some());
    Entries { before, appended }
}

/// `String::from_utf8_lossy`, appended, through the faster `str::from_utf8` when valid.
fn push_lossy(out: &mut String, bytes: &[u8]) {
    match std::str::from_utf8(bytes) {
        Ok(text) => out.push_str(text),
        Err(_) => out.push_str(&String::from_utf8_lossy(bytes)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::headers::find;
    use http::HeaderValue;

    fn entries(values: &[&[u8]], appended_last: bool) -> Vec<String> {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append("x-list", HeaderValue::from_bytes(value).unwrap());
        }
        let name = HeaderName::from_static("x-list");
        let [lines] = find(&headers, [&name]);
        let mut joined = String::new();
        read(&headers, &name, lines, &mut joined, appended_last)
            .rev()
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn the_appended_entry_ignores_quotes_before_it() {
        for (value, expected) in [
            (&b"\", 1.2.3.4:5"[..], &["1.2.3.4:5", "\""][..]),
            (
                b"\"6.6.6.6\", \", 1.2.3.4:5",
                &["1.2.3.4:5", "\"", "\"6.6.6.6\""],
            ),
            (b"\xff\", 1.2.3.4:5", &["1.2.3.4:5", "\u{fffd}\""]),
            (b"1.2.3.4:5", &["1.2.3.4:5"]),
            (b"1.2.3.4,", &["", "1.2.3.4"]),
            (b", ,", &[]),
            (b"", &[]),
        ] {
            assert_eq!(entries(&[value], true), expected, "{value:?}");
        }
        // Several lines are joined first: the last line's last entry is the appended one.
        assert_eq!(
            entries(&[b"\"a", b"b, 9.9.9.9"], true),
            ["9.9.9.9", "b", "\"a"]
        );
        // Without the rule, ASP.NET Core's reading: the quote swallows the rest.
        assert_eq!(entries(&[b"\", 1.2.3.4:5"], false), ["\", 1.2.3.4:5"]);
    }
}
