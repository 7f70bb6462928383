//! The XML walk: finds the effective `<aspNetCore>` element and reads it (protocol §3.1), and
//! IIS request filtering's `<requestLimits>` beside it (§3.4).
//!
//! The whole document is read, so malformed XML anywhere is reported, as IIS does. Errors
//! come in the order IIS would raise them: XML and schema-like errors (bad numbers,
//! booleans, timeSpans, `<add>` in a collection) in document order; then, once the document
//! is known to be good, the module's own checks on the section ([`Section::finish`]).
//! Element names, locations and collections are decided here; the attribute values of
//! `<aspNetCore>` are typed in [`super::values`].

use std::path::Path;

use quick_xml::Reader;
use quick_xml::events::attributes::AttrError;
use quick_xml::events::{BytesStart, Event};

use super::source::{self, Source, is_xml_space};
use super::values::{self, Attr, Section, find};
use super::{AspNetCoreConfig, ConfigError, ConfigErrorKind, IisRequestLimits, attr};

/// The namespace a web.config transform (XDT) file declares on its root element.
const XDT_NAMESPACE: &str = "http://schemas.microsoft.com/XML-Document-Transform";

/// ANCM's message for a section the IIS schema rejects (protocol §3.1).
const AUTHORING_ERROR: &str = "Unable to get required configuration section \
     'system.webServer/aspNetCore'. Possible reason is web.config authoring error.";

/// What an open element is, for deciding what its children are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Frame {
    /// The `<configuration>` root.
    Configuration,
    /// `<location>`; `applies` when its path is absent, `""` or `"."`.
    Location { applies: bool },
    /// `<system.webServer>`; `applies` unless inside a `<location>` for a sub-path.
    WebServer { applies: bool },
    /// The effective `<aspNetCore>`.
    AspNetCore,
    /// `<environmentVariables>` or `<handlerSettings>` of the effective `<aspNetCore>`.
    Collection(Collection),
    /// `<security>` of a `<system.webServer>`; `applies` as for that element.
    Security { applies: bool },
    /// `<requestFiltering>` of a `<security>`; `applies` as for that element.
    RequestFiltering { applies: bool },
    /// Anything else: read for well-formedness only.
    Ignored,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Collection {
    Env,
    Handler,
}

impl Collection {
    fn element(self) -> &'static str {
        match self {
            Collection::Env => attr::ENVIRONMENT_VARIABLES,
            Collection::Handler => attr::HANDLER_SETTINGS,
        }
    }

    fn add_element(self) -> &'static str {
        match self {
            Collection::Env => "environmentVariable",
            Collection::Handler => "handlerSetting",
        }
    }
}

struct Open {
    frame: Frame,
    name: String,
    offset: usize,
}

/// Parses decoded web.config text.
pub(crate) fn parse_text(text: &str, file: &Path) -> Result<AspNetCoreConfig, ConfigError> {
    let src = Source { text, file };
    let mut reader = Reader::from_str(text);
    // "--" inside a comment is not XML; IIS's parser refuses it, so do we.
    reader.config_mut().check_comments = true;
    // quick-xml skips a U+FEFF at the start (a second byte order mark: decoding removed the
    // first) and counts its positions from after it; ours are offsets into `text`.
    let skipped = if text.starts_with('\u{FEFF}') {
        '\u{FEFF}'.len_utf8()
    } else {
        0
    };
    let offset_in_text =
        |position: u64| usize::try_from(position).map_or(usize::MAX, |p| p.saturating_add(skipped));
    let mut stack: Vec<Open> = Vec::new();
    let mut found = Found::default();
    loop {
        let offset = offset_in_text(reader.buffer_position());
        let event = match reader.read_event() {
            Ok(event) => event,
            Err(e) => {
                let at = offset_in_text(reader.error_position());
                return Err(src.error(
                    at,
                    ConfigErrorKind::MalformedXml,
                    format!("malformed XML: {e}"),
                ));
            }
        };
        match event {
            Event::Start(e) => {
                let (name, frame) = open(&src, &e, offset, &stack, &mut found)?;
                stack.push(Open {
                    frame,
                    name,
                    offset,
                });
            }
            Event::Empty(e) => {
                open(&src, &e, offset, &stack, &mut found)?;
            }
            Event::End(_) => {
                stack.pop();
            }
            Event::Text(t) if stack.is_empty() => {
                // Point at the first character that is not white space.
                if let Some(i) = t.iter().position(|b| !is_xml_space(char::from(*b))) {
                    return Err(outside_root(
                        &src,
                        offset.saturating_add(i),
                        found.root_seen,
                    ));
                }
            }
            Event::Text(ref t) | Event::Comment(ref t) if first_control(t).is_some() => {
                let i = first_control(t).unwrap_or(0);
                let at = src.offset_of(t).unwrap_or(offset).saturating_add(i);
                return Err(src.error(
                    at,
                    ConfigErrorKind::MalformedXml,
                    format!(
                        "malformed XML: the character U+{:04X} is not allowed in XML",
                        t.get(i).copied().unwrap_or(0)
                    ),
                ));
            }
            Event::CData(_) if stack.is_empty() => {
                return Err(outside_root(&src, offset, found.root_seen));
            }
            Event::GeneralRef(r) => {
                if stack.is_empty() {
                    return Err(outside_root(&src, offset, found.root_seen));
                }
                let known = match r.resolve_char_ref() {
                    Ok(Some(_)) => true,
                    Ok(None) => matches!(&*r, b"amp" | b"lt" | b"gt" | b"apos" | b"quot"),
                    Err(_) => false,
                };
                if !known {
                    return Err(src.error(
                        offset,
                        ConfigErrorKind::MalformedXml,
                        format!(
                            "malformed XML: unknown entity '&{};' (only &amp; &lt; &gt; &apos; \
                             &quot; and &#...; are defined)",
                            String::from_utf8_lossy(&r)
                        ),
                    ));
                }
            }
            Event::Eof => break,
            // Comments (commented-out XML is ignored), declarations, processing
            // instructions, DOCTYPE and text inside elements carry nothing we read.
            _ => {}
        }
    }
    if let Some(open) = stack.last() {
        let (line, column) = source::line_col(text, open.offset);
        return Err(src.error(
            text.len(),
            ConfigErrorKind::MalformedXml,
            format!(
                "malformed XML: unexpected end of file: <{}> opened at line {line}, column \
                 {column} is not closed",
                open.name
            ),
        ));
    }
    if !found.root_seen {
        return Err(src.error(
            text.len(),
            ConfigErrorKind::MalformedXml,
            "malformed XML: the file has no root element (expected <configuration>)",
        ));
    }
    match found.section {
        Some(section) => section.finish(&src).map(|mut config| {
            config.request_limits = found.request_limits.unwrap_or_default();
            config
        }),
        None => Err(ConfigError::new(
            file,
            None,
            ConfigErrorKind::NoAspNetCore,
            "no system.webServer/aspNetCore element found (expected <configuration>\
             <system.webServer><aspNetCore processPath=\"...\" .../>, optionally inside \
             <location path=\".\">)",
        )),
    }
}

fn outside_root(src: &Source<'_>, offset: usize, root_seen: bool) -> ConfigError {
    let where_ = if root_seen { "after" } else { "before" };
    src.error(
        offset,
        ConfigErrorKind::MalformedXml,
        format!("malformed XML: text {where_} the root element"),
    )
}

/// What the walk has found so far.
#[derive(Default)]
struct Found {
    root_seen: bool,
    /// The effective `<aspNetCore>`, once its start tag was read.
    section: Option<Section>,
    /// The effective `<requestLimits>`, once read.
    request_limits: Option<IisRequestLimits>,
}

/// Handles a start (or empty) tag: checks it, reads it when it matters, and says what it is.
fn open(
    src: &Source<'_>,
    e: &BytesStart<'_>,
    offset: usize,
    stack: &[Open],
    found: &mut Found,
) -> Result<(String, Frame), ConfigError> {
    let Found {
        root_seen,
        section,
        request_limits,
    } = found;
    let name = String::from_utf8_lossy(e.name().as_ref()).into_owned();
    let attrs = attributes(src, e, offset)?;
    let Some(parent) = stack.last().map(|o| o.frame) else {
        if *root_seen {
            return Err(src.error(
                offset,
                ConfigErrorKind::MalformedXml,
                format!("malformed XML: a second root element <{name}> (only one is allowed)"),
            ));
        }
        *root_seen = true;
        let xdt = attrs.iter().any(|a| {
            (a.name == "xmlns" || a.name.starts_with("xmlns:")) && a.value == XDT_NAMESPACE
        });
        if xdt {
            let file_name = src.file.file_name().map_or_else(
                || src.file.display().to_string(),
                |n| n.to_string_lossy().into_owned(),
            );
            return Err(src.error(
                offset,
                ConfigErrorKind::Transform,
                format!(
                    "'{file_name}' is a web.config transform (XDT), not a configuration file: \
                     its root element declares the namespace {XDT_NAMESPACE}; point ancm at \
                     the web.config the transform is applied to"
                ),
            ));
        }
        let frame = if name == "configuration" {
            Frame::Configuration
        } else {
            Frame::Ignored
        };
        return Ok((name, frame));
    };
    let frame = match (parent, name.as_str()) {
        (Frame::Configuration, "location") => {
            let path = find(&attrs, "path").map(|a| a.value.as_str());
            let applies = matches!(path, None | Some("" | "."));
            if !applies {
                tracing::debug!(
                    location = %src.location(offset),
                    path = path.unwrap_or_default(),
                    "web.config: ignoring a <location> for a sub-path"
                );
            }
            Frame::Location { applies }
        }
        (Frame::Configuration, "system.webServer") => Frame::WebServer { applies: true },
        (Frame::Location { applies }, "system.webServer") => Frame::WebServer { applies },
        (Frame::WebServer { applies: true }, "aspNetCore") if section.is_none() => {
            *section = Some(Section::start(src, &attrs, offset)?);
            Frame::AspNetCore
        }
        (Frame::WebServer { .. }, "aspNetCore") => {
            tracing::debug!(
                location = %src.location(offset),
                "web.config: ignoring an <aspNetCore> element (not the first one, or for a sub-path)"
            );
            Frame::Ignored
        }
        (Frame::WebServer { applies }, "security") => Frame::Security { applies },
        (Frame::Security { applies }, "requestFiltering") => Frame::RequestFiltering { applies },
        (Frame::RequestFiltering { applies: true }, attr::REQUEST_LIMITS)
            if request_limits.is_none() =>
        {
            *request_limits = Some(values::request_limits(src, &attrs)?);
            Frame::Ignored
        }
        (Frame::AspNetCore, attr::ENVIRONMENT_VARIABLES) => Frame::Collection(Collection::Env),
        (Frame::AspNetCore, attr::HANDLER_SETTINGS) => Frame::Collection(Collection::Handler),
        (Frame::Collection(kind), item) => {
            if let Some(section) = section.as_mut() {
                collection_item(src, &mut section.config, kind, item, &attrs, offset)?;
            }
            Frame::Ignored
        }
        _ => Frame::Ignored,
    };
    Ok((name, frame))
}

/// Reads every attribute of a tag; quick-xml checks quoting and duplicates, we check `<`
/// and entities, and normalise white space as XML requires.
fn attributes(
    src: &Source<'_>,
    e: &BytesStart<'_>,
    tag_offset: usize,
) -> Result<Vec<Attr>, ConfigError> {
    let mut out = Vec::new();
    for a in e.attributes() {
        let a = a.map_err(|err| {
            // AttrError positions count from the character after '<'.
            let pos = match &err {
                AttrError::ExpectedEq(p)
                | AttrError::ExpectedValue(p)
                | AttrError::UnquotedValue(p)
                | AttrError::ExpectedQuote(p, _)
                | AttrError::Duplicated(p, _) => *p,
            };
            src.error(
                tag_offset.saturating_add(1).saturating_add(pos),
                ConfigErrorKind::MalformedXml,
                format!("malformed XML: {}", attr_error_text(&err)),
            )
        })?;
        let offset = src.offset_of(a.key.as_ref()).unwrap_or(tag_offset);
        let name = String::from_utf8_lossy(a.key.as_ref()).into_owned();
        let raw = String::from_utf8_lossy(&a.value);
        if raw.contains('<') {
            return Err(src.error(
                offset,
                ConfigErrorKind::MalformedXml,
                format!("malformed XML: '<' in the value of attribute '{name}' (write &lt;)"),
            ));
        }
        let normalized = normalize_attribute_space(&raw);
        let value = match quick_xml::escape::unescape(&normalized) {
            Ok(v) => v.into_owned(),
            Err(err) => {
                return Err(src.error(
                    offset,
                    ConfigErrorKind::MalformedXml,
                    format!("malformed XML: in the value of attribute '{name}': {err}"),
                ));
            }
        };
        // XML 1.0 allows no C0 controls but tab, CR and LF, literal or as &#...; (a NUL
        // would otherwise surface much later, when the child is spawned).
        if let Some(c) = value.chars().find(|c| !is_xml_char(*c)) {
            return Err(src.error(
                offset,
                ConfigErrorKind::MalformedXml,
                format!(
                    "malformed XML: the value of attribute '{name}' contains the character \
                     U+{:04X}, which XML does not allow",
                    u32::from(c)
                ),
            ));
        }
        out.push(Attr {
            name,
            value,
            offset,
        });
    }
    Ok(out)
}

fn attr_error_text(err: &AttrError) -> &'static str {
    match err {
        AttrError::ExpectedEq(_) => "an attribute name must be followed by '='",
        AttrError::ExpectedValue(_) => "'=' must be followed by a quoted attribute value",
        AttrError::UnquotedValue(_) => "an attribute value must be in quotes",
        AttrError::ExpectedQuote(..) => "an attribute value is missing its closing quote",
        AttrError::Duplicated(..) => "the same attribute is written twice on one element",
    }
}

/// XML attribute-value normalisation (XML 1.0 §3.3.3): each literal tab, CR, LF or CRLF
/// becomes one space; `&#10;` and friends, decoded afterwards, are kept.
fn normalize_attribute_space(raw: &str) -> std::borrow::Cow<'_, str> {
    if !raw.contains(['\t', '\r', '\n']) {
        return raw.into();
    }
    raw.replace("\r\n", " ")
        .replace(['\t', '\r', '\n'], " ")
        .into()
}

/// Where the first C0 control character other than tab, CR and LF is, if any.
fn first_control(bytes: &[u8]) -> Option<usize> {
    bytes
        .iter()
        .position(|b| *b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r'))
}

/// A character XML 1.0 allows in a document.
fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// Environment variable names are case-insensitive (Windows compares them upper-cased).
fn same_name(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b) || (!a.is_ascii() && a.to_uppercase() == b.to_uppercase())
}

/// A child of `<environmentVariables>` or `<handlerSettings>`: `<clear/>`, `<remove/>` or the
/// collection's add element.
fn collection_item(
    src: &Source<'_>,
    config: &mut AspNetCoreConfig,
    kind: Collection,
    element: &str,
    attrs: &[Attr],
    offset: usize,
) -> Result<(), ConfigError> {
    let list = match kind {
        Collection::Env => &mut config.environment_variables,
        Collection::Handler => &mut config.handler_settings,
    };
    let required_name = || match find(attrs, "name") {
        Some(a) if !a.value.is_empty() => Ok(a.value.clone()),
        _ => Err(src.error(
            offset,
            ConfigErrorKind::MissingAttribute,
            format!(
                "Element '{element}' is missing the required attribute 'name' (or it is empty)."
            ),
        )),
    };
    if element == "clear" {
        list.clear();
    } else if element == "remove" {
        // IIS collections support <remove name=...>: drop that entry if present.
        let name = required_name()?;
        list.retain(|(n, _)| !same_name(n, &name));
    } else if element == kind.add_element() {
        let name = required_name()?;
        if kind == Collection::Env && name.contains('=') {
            return Err(src.error(
                offset,
                ConfigErrorKind::InvalidValue,
                format!(
                    "Environment variable name '{name}' contains '=', which no operating \
                     system allows in a variable name."
                ),
            ));
        }
        let value = find(attrs, "value")
            .map(|a| a.value.clone())
            .unwrap_or_default();
        match kind {
            // Later wins: the earlier entry goes, the survivor keeps its own position.
            Collection::Env => {
                list.retain(|(n, _)| !same_name(n, &name));
                list.push((name, value));
            }
            // First wins, as ANCM's out-of-process reader does.
            Collection::Handler => {
                if !list.iter().any(|(n, _)| same_name(n, &name)) {
                    list.push((name, value));
                }
            }
        }
    } else {
        // The IIS schema allows only the add/clear/remove elements of the collection;
        // anything else (typically <add>) makes the whole section unreadable.
        let add = kind.add_element();
        return Err(src.error(
            offset,
            ConfigErrorKind::AuthoringError,
            format!(
                "{AUTHORING_ERROR} (<{element}> is not allowed in <{}>: write <{add} \
                 name=\"...\" value=\"...\" />.)",
                kind.element()
            ),
        ));
    }
    Ok(())
}
