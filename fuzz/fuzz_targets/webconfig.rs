//! `ancm_hosting::config::parse` on arbitrary bytes.
//!
//! Never panics; every location (of an error or of the `<aspNetCore>` element) lies within
//! the text (line ≤ its line count, column ≤ that line's length + 1); an accepted
//! configuration keeps every documented range and de-duplication rule; the same text with a
//! UTF-8 byte order mark or as UTF-16 parses to the same result.
#![no_main]

use std::path::Path;
use std::time::Duration;

use ancm_hosting::config::{self, AspNetCoreConfig, ConfigError, HostingModel, Location};
use libfuzzer_sys::fuzz_target;

const FILE: &str = "fuzz/web.config";

fuzz_target!(|data: &[u8]| {
    let file = Path::new(FILE);
    let result = config::parse(data, file);
    let text = text_of(data);
    let lines = lines(&text);
    match &result {
        Ok(cfg) => check_config(cfg, &lines),
        Err(e) => check_error(e, &lines),
    }

    // The decoded text is what is parsed: a byte order mark or UTF-16 changes nothing.
    if let Ok(text) = std::str::from_utf8(data)
        && !text.starts_with('\u{FEFF}')
    {
        let with_bom = [b"\xEF\xBB\xBF", data].concat();
        assert_eq!(config::parse(&with_bom, file), result, "UTF-8 with a BOM");
        let utf16le: Vec<u8> = [0xFF, 0xFE]
            .into_iter()
            .chain(text.encode_utf16().flat_map(u16::to_le_bytes))
            .collect();
        assert_eq!(config::parse(&utf16le, file), result, "UTF-16LE");
        let utf16be: Vec<u8> = [0xFE, 0xFF]
            .into_iter()
            .chain(text.encode_utf16().flat_map(u16::to_be_bytes))
            .collect();
        assert_eq!(config::parse(&utf16be, file), result, "UTF-16BE");
    }
});

/// The text as the parser sees it, invalid sequences replaced (an encoding error's location
/// lies in the valid part before them).
fn text_of(data: &[u8]) -> String {
    let utf16 = |rest: &[u8], unit: fn([u8; 2]) -> u16| {
        let units: Vec<u16> = rest.chunks_exact(2).map(|c| unit([c[0], c[1]])).collect();
        String::from_utf16_lossy(&units)
    };
    if let Some(rest) = data.strip_prefix(b"\xEF\xBB\xBF") {
        String::from_utf8_lossy(rest).into_owned()
    } else if let Some(rest) = data.strip_prefix(b"\xFF\xFE") {
        utf16(rest, u16::from_le_bytes)
    } else if let Some(rest) = data.strip_prefix(b"\xFE\xFF") {
        utf16(rest, u16::from_be_bytes)
    } else {
        String::from_utf8_lossy(data).into_owned()
    }
}

/// The lines of `text`, split at LF, CRLF and a lone CR, as XML counts them.
fn lines(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find(['\r', '\n']) {
        out.push(&rest[..i]);
        let width = if rest[i..].starts_with("\r\n") { 2 } else { 1 };
        rest = &rest[i + width..];
    }
    out.push(rest);
    out
}

/// The line `l` points into (panics when it points outside the text).
fn line_of<'a>(l: &Location, lines: &[&'a str]) -> &'a str {
    assert_eq!(l.file, Path::new(FILE));
    assert!(l.line >= 1 && l.column >= 1, "{l}");
    let line = lines
        .get(l.line as usize - 1)
        .unwrap_or_else(|| panic!("{l}: past the last line ({})", lines.len()));
    assert!(
        l.column as usize <= line.chars().count() + 1,
        "{l}: past the end of line {:?}",
        line
    );
    line
}

fn check_config(cfg: &AspNetCoreConfig, lines: &[&str]) {
    let line = line_of(&cfg.location, lines);
    let at: String = line
        .chars()
        .skip(cfg.location.column as usize - 1)
        .collect();
    assert!(at.starts_with("<aspNetCore"), "{}: {at:?}", cfg.location);

    assert!(!cfg.process_path.is_empty());
    assert!(cfg.startup_time_limit <= 3600);
    assert!(cfg.shutdown_time_limit <= 600);
    assert!(cfg.rapid_fails_per_minute <= 100);
    assert!((1..=100).contains(&cfg.processes_per_application));
    assert!(cfg.request_timeout <= Duration::from_secs(360 * 3600));
    if cfg.request_timeout_raw.is_none() {
        assert_eq!(cfg.request_timeout, Duration::from_secs(120));
    }
    let in_process = cfg
        .hosting_model_raw
        .as_deref()
        .is_some_and(|raw| raw.eq_ignore_ascii_case("inprocess"));
    assert_eq!(cfg.hosting_model == HostingModel::InProcess, in_process);

    for (i, (name, _)) in cfg.environment_variables.iter().enumerate() {
        assert!(!name.is_empty() && !name.contains('='), "{name:?}");
        assert!(
            cfg.environment_variables[..i]
                .iter()
                .all(|(n, _)| !n.eq_ignore_ascii_case(name)),
            "environment variable {name:?} twice"
        );
    }
    for (i, (name, _)) in cfg.handler_settings.iter().enumerate() {
        assert!(!name.is_empty());
        assert!(
            cfg.handler_settings[..i]
                .iter()
                .all(|(n, _)| !n.eq_ignore_ascii_case(name)),
            "handler setting {name:?} twice"
        );
    }

    let expanded = cfg.expanded(&|name: &str| Some(format!("<{name}>")));
    assert_eq!(
        expanded.environment_variables.len(),
        cfg.environment_variables.len()
    );
    let _ = cfg.warnings();
}

fn check_error(e: &ConfigError, lines: &[&str]) {
    assert!(!e.message().is_empty());
    assert_eq!(e.file(), Path::new(FILE));
    let text = e.to_string();
    match e.location() {
        Some(l) => {
            line_of(l, lines);
            assert_eq!(text, format!("{l}: {}", e.message()));
        }
        None => assert_eq!(text, format!("{FILE}: {}", e.message())),
    }
}
