//! The web.config text: decoding its bytes, XML white space, and byte offsets turned into
//! 1-based line and column and into located errors.
use std::path::Path;

use super::{ConfigError, ConfigErrorKind, Location};

/// XML white space (what may surround a number, boolean or timeSpan).
pub(crate) fn is_xml_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

/// The decoded text and its file name, to turn byte offsets into located errors.
pub(crate) struct Source<'a> {
    pub(crate) text: &'a str,
    pub(crate) file: &'a Path,
}

impl Source<'_> {
    pub(crate) fn location(&self, offset: usize) -> Location {
        let (line, column) = line_col(self.text, offset);
        Location {
            file: self.file.to_path_buf(),
            line,
            column,
        }
    }

    pub(crate) fn error(
        &self,
        offset: usize,
        kind: ConfigErrorKind,
        message: impl Into<String>,
    ) -> ConfigError {
        ConfigError::new(self.file, Some(self.location(offset)), kind, message)
    }

    /// The offset of a slice borrowed from the text (quick-xml hands out borrowed slices
    /// when reading from a `&str`); `None` if it is not one.
    pub(crate) fn offset_of(&self, slice: &[u8]) -> Option<usize> {
        let base = self.text.as_ptr() as usize;
        (slice.as_ptr() as usize)
            .checked_sub(base)
            .filter(|o| *o <= self.text.len())
    }
}

/// Why the bytes are not text, with the 1-based line and column where it went wrong.
pub(crate) struct DecodeError {
    pub(crate) line_col: (u32, u32),
    pub(crate) message: String,
}

/// The text of a web.config: UTF-8 (the byte order mark, if any, removed) or UTF-16 with a
/// byte order mark (decoded). Offsets everywhere else are byte offsets into this text, so
/// the BOM is never counted in a column.
pub(crate) fn decode(bytes: &[u8]) -> Result<String, DecodeError> {
    if let Some(rest) = bytes.strip_prefix(b"\xEF\xBB\xBF") {
        return utf8(rest);
    }
    // IIS reads UTF-16 web.config files too (Notepad's "Unicode"); they always carry a BOM.
    if let Some(rest) = bytes.strip_prefix(b"\xFF\xFE") {
        return utf16(rest, u16::from_le_bytes);
    }
    if let Some(rest) = bytes.strip_prefix(b"\xFE\xFF") {
        return utf16(rest, u16::from_be_bytes);
    }
    utf8(bytes)
}

fn utf8(bytes: &[u8]) -> Result<String, DecodeError> {
    match std::str::from_utf8(bytes) {
        Ok(s) => Ok(s.to_owned()),
        Err(e) => Err(DecodeError {
            line_col: line_col(
                std::str::from_utf8(&bytes[..e.valid_up_to()]).unwrap_or_default(),
                e.valid_up_to(),
            ),
            message: format!(
                "the file is not valid UTF-8 (byte 0x{:02X}); save it as UTF-8",
                bytes.get(e.valid_up_to()).copied().unwrap_or(0)
            ),
        }),
    }
}

fn utf16(bytes: &[u8], unit: fn([u8; 2]) -> u16) -> Result<String, DecodeError> {
    let units = bytes.chunks(2).map(|c| match c {
        [a, b] => Ok(unit([*a, *b])),
        _ => Err(()),
    });
    let mut out = String::with_capacity(bytes.len() / 2);
    let mut pending = Vec::new();
    for u in units {
        match u {
            Ok(u) => pending.push(u),
            Err(()) => {
                return Err(DecodeError {
                    line_col: line_col(&out, out.len()),
                    message: "the UTF-16 file has an odd number of bytes".into(),
                });
            }
        }
    }
    for c in char::decode_utf16(pending) {
        match c {
            Ok(c) => out.push(c),
            Err(e) => {
                return Err(DecodeError {
                    line_col: line_col(&out, out.len()),
                    message: format!(
                        "the UTF-16 file has an unpaired surrogate 0x{:04X}",
                        e.unpaired_surrogate()
                    ),
                });
            }
        }
    }
    Ok(out)
}

/// 1-based line and column (in characters) of a byte offset. Line breaks are LF, CRLF (one
/// break) and a lone CR, as XML counts them. An offset past the end or inside a character
/// is moved back to the nearest character start.
pub(crate) fn line_col(text: &str, offset: usize) -> (u32, u32) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let mut line: u32 = 1;
    let mut line_start = 0;
    let bytes = before.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\n' => {
                line = line.saturating_add(1);
                line_start = i + 1;
            }
            // CRLF is one break: let the LF count it.
            b'\r' if text.as_bytes().get(i + 1) != Some(&b'\n') => {
                line = line.saturating_add(1);
                line_start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    let column = before[line_start..].chars().count();
    (
        line,
        u32::try_from(column).unwrap_or(u32::MAX).saturating_add(1),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions() {
        let t = "ab\r\ncd\ne\rfé g";
        assert_eq!(line_col(t, 0), (1, 1));
        assert_eq!(line_col(t, 2), (1, 3));
        assert_eq!(line_col(t, 3), (1, 4)); // on the LF of CRLF: still line 1
        assert_eq!(line_col(t, 4), (2, 1));
        assert_eq!(line_col(t, 7), (3, 1));
        assert_eq!(line_col(t, 9), (4, 1));
        assert_eq!(line_col(t, 13), (4, 4)); // after "fé ": é is one column
        assert_eq!(line_col(t, 11), (4, 2)); // inside é: moved back
        assert_eq!(line_col(t, 1000), (4, 5));
    }

    #[test]
    fn boms() {
        assert_eq!(decode(b"\xEF\xBB\xBFab").ok().as_deref(), Some("ab"));
        assert_eq!(decode(b"\xFF\xFEa\0b\0").ok().as_deref(), Some("ab"));
        assert_eq!(decode(b"\xFE\xFF\0a\0b").ok().as_deref(), Some("ab"));
        assert!(decode(b"\xFF\xFEa").is_err());
        assert!(decode(b"a\n\xFFb").is_err_and(|e| e.line_col == (2, 1)));
    }
}
