//! Inputs the cargo-fuzz `webconfig` target (`fuzz/`) found, kept as regression tests.

use std::path::Path;

use ancm_hosting::config::{self, ConfigErrorKind};

const FILE: &str = "web.config";

/// Line and column of the `<aspNetCore>` element, or of the error.
fn position(text: &str) -> (u32, u32, Option<ConfigErrorKind>) {
    match config::parse(text.as_bytes(), Path::new(FILE)) {
        Ok(cfg) => (cfg.location.line, cfg.location.column, None),
        Err(e) => {
            let l = e.location().expect("a located error");
            (l.line, l.column, Some(e.kind()))
        }
    }
}

/// A byte order mark, then U+FEFF (a file saved twice with a BOM): decoding removes the
/// first, quick-xml skipped the second and counted its positions from after it, so every
/// location was three bytes early — on the previous line when near the start of one.
#[test]
fn a_second_byte_order_mark_does_not_shift_locations() {
    let ok = "<configuration>\n<system.webServer>\n<aspNetCore processPath=\"a\"/>\n\
              </system.webServer></configuration>";
    assert_eq!(position(&format!("\u{FEFF}{ok}")), (3, 1, None));
    assert_eq!(position(&format!("\u{FEFF}\u{FEFF}{ok}")), (3, 1, None));

    let one_line = "<configuration><system.webServer><aspNetCore processPath=\"a\"/>\
                    </system.webServer></configuration>";
    // U+FEFF is a character of line 1: one column.
    assert_eq!(
        position(&format!("\u{FEFF}\u{FEFF}{one_line}")),
        (1, 35, None)
    );

    let unclosed = "<configuration>\n<system.webServer>\n<aspNetCore processPath=\"a\">";
    let expected = position(&format!("\u{FEFF}{unclosed}"));
    assert_eq!(expected.2, Some(ConfigErrorKind::MalformedXml));
    assert_eq!(position(&format!("\u{FEFF}\u{FEFF}{unclosed}")), expected);

    let mismatched = "<configuration>\n<system.webServer>\n</configuration>";
    let expected = position(&format!("\u{FEFF}{mismatched}"));
    assert_eq!(expected.2, Some(ConfigErrorKind::MalformedXml));
    assert_eq!(position(&format!("\u{FEFF}\u{FEFF}{mismatched}")), expected);
}
