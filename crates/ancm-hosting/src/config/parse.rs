//! The XML walk: finds the effective `<aspNetCore>` element and reads it (contract §3.1).
//!
//! The whole document is read, so malformed XML anywhere is reported, as IIS does. Errors
//! come in the order IIS would raise them: XML and schema-like errors (bad numbers,
//! booleans, timeSpans, `<add>` in a collection) in document order; then, once the document
//! is known to be good, the module's own checks on the section (`hostingModel` first, then
//! `processPath`, as ANCM's `ShimOptions` does).

use std::path::Path;
use std::time::Duration;

use quick_xml::Reader;
use quick_xml::events::attributes::AttrError;
use quick_xml::events::{BytesStart, Event};

use super::timespan::{self, TICKS_PER_SECOND, TimeSpanError};
use super::{AspNetCoreConfig, ConfigError, ConfigErrorKind, HostingModel, Location, source};

/// The namespace a web.config transform (XDT) file declares on its root element.
pub(crate) const XDT_NAMESPACE: &str = "http://schemas.microsoft.com/XML-Document-Transform";

/// ANCM's message for a section the IIS schema rejects (contract §3.1).
pub(crate) const AUTHORING_ERROR: &str = "Unable to get required configuration section \
     'system.webServer/aspNetCore'. Possible reason is web.config authoring error.";

/// The largest `requestTimeout`: 360 hours (contract §3.1).
const MAX_REQUEST_TIMEOUT_SECONDS: u64 = 1_296_000;

/// Every attribute of `<aspNetCore>` ancm-rs reads, as the schema spells them.
const KNOWN_ATTRIBUTES: &[&str] = &[
    "processPath",
    "arguments",
    "startupTimeLimit",
    "shutdownTimeLimit",
    "rapidFailsPerMinute",
    "requestTimeout",
    "stdoutLogEnabled",
    "stdoutLogFile",
    "processesPerApplication",
    "forwardWindowsAuthToken",
    "disableStartUpErrorPage",
    "hostingModel",
];

/// XML white space (what may surround a number, boolean or timeSpan).
pub(crate) fn is_xml_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

/// The decoded text and its file name, to turn byte offsets into located errors.
struct Ctx<'a> {
    text: &'a str,
    file: &'a Path,
}

impl Ctx<'_> {
    fn location(&self, offset: usize) -> Location {
        let (line, column) = source::line_col(self.text, offset);
        Location {
            file: self.file.to_path_buf(),
            line,
            column,
        }
    }

    fn error(
        &self,
        offset: usize,
        kind: ConfigErrorKind,
        message: impl Into<String>,
    ) -> ConfigError {
        ConfigError::new(self.file, Some(self.location(offset)), kind, message)
    }

    /// The offset of a slice borrowed from the text (quick-xml hands out borrowed slices
    /// when reading from a `&str`); `None` if it is not one.
    fn offset_of(&self, slice: &[u8]) -> Option<usize> {
        let base = self.text.as_ptr() as usize;
        (slice.as_ptr() as usize)
            .checked_sub(base)
            .filter(|o| *o <= self.text.len())
    }
}

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
            Collection::Env => "environmentVariables",
            Collection::Handler => "handlerSettings",
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

/// One attribute: name as written, value with entities decoded and white space normalised
/// as XML does, offset of its name.
struct Attr {
    name: String,
    value: String,
    offset: usize,
}

fn find<'a>(attrs: &'a [Attr], name: &str) -> Option<&'a Attr> {
    attrs.iter().find(|a| a.name == name)
}

/// Parses decoded web.config text.
pub(crate) fn parse_text(text: &str, file: &Path) -> Result<AspNetCoreConfig, ConfigError> {
    let ctx = Ctx { text, file };
    let mut reader = Reader::from_str(text);
    // "--" inside a comment is not XML; IIS's parser refuses it, so do we.
    reader.config_mut().check_comments = true;
    let mut stack: Vec<Open> = Vec::new();
    let mut root_seen = false;
    let mut section: Option<Section> = None;
    loop {
        let offset = usize::try_from(reader.buffer_position()).unwrap_or(usize::MAX);
        let event = match reader.read_event() {
            Ok(event) => event,
            Err(e) => {
                let at = usize::try_from(reader.error_position()).unwrap_or(usize::MAX);
                return Err(ctx.error(
                    at,
                    ConfigErrorKind::MalformedXml,
                    format!("malformed XML: {e}"),
                ));
            }
        };
        match event {
            Event::Start(e) => {
                let (name, frame) = open(&ctx, &e, offset, &stack, &mut section, &mut root_seen)?;
                stack.push(Open {
                    frame,
                    name,
                    offset,
                });
            }
            Event::Empty(e) => {
                open(&ctx, &e, offset, &stack, &mut section, &mut root_seen)?;
            }
            Event::End(_) => {
                stack.pop();
            }
            Event::Text(t) if stack.is_empty() => {
                // Point at the first character that is not white space.
                if let Some(i) = t.iter().position(|b| !is_xml_space(char::from(*b))) {
                    return Err(outside_root(&ctx, offset.saturating_add(i), root_seen));
                }
            }
            Event::Text(ref t) | Event::Comment(ref t) if first_control(t).is_some() => {
                let i = first_control(t).unwrap_or(0);
                let at = ctx.offset_of(t).unwrap_or(offset).saturating_add(i);
                return Err(ctx.error(
                    at,
                    ConfigErrorKind::MalformedXml,
                    format!(
                        "malformed XML: the character U+{:04X} is not allowed in XML",
                        t.get(i).copied().unwrap_or(0)
                    ),
                ));
            }
            Event::CData(_) if stack.is_empty() => {
                return Err(outside_root(&ctx, offset, root_seen));
            }
            Event::GeneralRef(r) => {
                if stack.is_empty() {
                    return Err(outside_root(&ctx, offset, root_seen));
                }
                let known = match r.resolve_char_ref() {
                    Ok(Some(_)) => true,
                    Ok(None) => matches!(&*r, b"amp" | b"lt" | b"gt" | b"apos" | b"quot"),
                    Err(_) => false,
                };
                if !known {
                    return Err(ctx.error(
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
        return Err(ctx.error(
            text.len(),
            ConfigErrorKind::MalformedXml,
            format!(
                "malformed XML: unexpected end of file: <{}> opened at line {line}, column \
                 {column} is not closed",
                open.name
            ),
        ));
    }
    if !root_seen {
        return Err(ctx.error(
            text.len(),
            ConfigErrorKind::MalformedXml,
            "malformed XML: the file has no root element (expected <configuration>)",
        ));
    }
    match section {
        Some(section) => section.finish(&ctx),
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

fn outside_root(ctx: &Ctx<'_>, offset: usize, root_seen: bool) -> ConfigError {
    let where_ = if root_seen { "after" } else { "before" };
    ctx.error(
        offset,
        ConfigErrorKind::MalformedXml,
        format!("malformed XML: text {where_} the root element"),
    )
}

/// Handles a start (or empty) tag: checks it, reads it when it matters, and says what it is.
fn open(
    ctx: &Ctx<'_>,
    e: &BytesStart<'_>,
    offset: usize,
    stack: &[Open],
    section: &mut Option<Section>,
    root_seen: &mut bool,
) -> Result<(String, Frame), ConfigError> {
    let name = String::from_utf8_lossy(e.name().as_ref()).into_owned();
    let attrs = attributes(ctx, e, offset)?;
    let Some(parent) = stack.last().map(|o| o.frame) else {
        if *root_seen {
            return Err(ctx.error(
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
            let file_name = ctx.file.file_name().map_or_else(
                || ctx.file.display().to_string(),
                |n| n.to_string_lossy().into_owned(),
            );
            return Err(ctx.error(
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
                    location = %ctx.location(offset),
                    path = path.unwrap_or_default(),
                    "web.config: ignoring a <location> for a sub-path"
                );
            }
            Frame::Location { applies }
        }
        (Frame::Configuration, "system.webServer") => Frame::WebServer { applies: true },
        (Frame::Location { applies }, "system.webServer") => Frame::WebServer { applies },
        (Frame::WebServer { applies: true }, "aspNetCore") if section.is_none() => {
            *section = Some(Section::start(ctx, &attrs, offset)?);
            Frame::AspNetCore
        }
        (Frame::WebServer { .. }, "aspNetCore") => {
            tracing::debug!(
                location = %ctx.location(offset),
                "web.config: ignoring an <aspNetCore> element (not the first one, or for a sub-path)"
            );
            Frame::Ignored
        }
        (Frame::AspNetCore, "environmentVariables") => Frame::Collection(Collection::Env),
        (Frame::AspNetCore, "handlerSettings") => Frame::Collection(Collection::Handler),
        (Frame::Collection(kind), item) => {
            if let Some(section) = section.as_mut() {
                section.collection_item(ctx, kind, item, &attrs, offset)?;
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
    ctx: &Ctx<'_>,
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
            ctx.error(
                tag_offset.saturating_add(1).saturating_add(pos),
                ConfigErrorKind::MalformedXml,
                format!("malformed XML: {}", attr_error_text(&err)),
            )
        })?;
        let offset = ctx.offset_of(a.key.as_ref()).unwrap_or(tag_offset);
        let name = String::from_utf8_lossy(a.key.as_ref()).into_owned();
        let raw = String::from_utf8_lossy(&a.value);
        if raw.contains('<') {
            return Err(ctx.error(
                offset,
                ConfigErrorKind::MalformedXml,
                format!("malformed XML: '<' in the value of attribute '{name}' (write &lt;)"),
            ));
        }
        let normalized = normalize_attribute_space(&raw);
        let value = match quick_xml::escape::unescape(&normalized) {
            Ok(v) => v.into_owned(),
            Err(err) => {
                return Err(ctx.error(
                    offset,
                    ConfigErrorKind::MalformedXml,
                    format!("malformed XML: in the value of attribute '{name}': {err}"),
                ));
            }
        };
        // XML 1.0 allows no C0 controls but tab, CR and LF, literal or as &#...; (a NUL
        // would otherwise surface much later, when the child is spawned).
        if let Some(c) = value.chars().find(|c| !is_xml_char(*c)) {
            return Err(ctx.error(
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

/// The effective `<aspNetCore>` being read.
struct Section {
    config: AspNetCoreConfig,
    process_path: Option<String>,
    hosting_model_offset: usize,
}

impl Section {
    fn start(ctx: &Ctx<'_>, attrs: &[Attr], offset: usize) -> Result<Section, ConfigError> {
        let mut config = AspNetCoreConfig::new(String::new(), ctx.location(offset));
        let mut process_path = None;
        let mut hosting_model_offset = offset;
        for a in attrs {
            match a.name.as_str() {
                "processPath" => process_path = Some(a.value.clone()),
                "arguments" => config.arguments = a.value.clone(),
                "startupTimeLimit" => config.startup_time_limit = uint(ctx, a, 0, 3600)?,
                "shutdownTimeLimit" => config.shutdown_time_limit = uint(ctx, a, 0, 600)?,
                "rapidFailsPerMinute" => config.rapid_fails_per_minute = uint(ctx, a, 0, 100)?,
                "processesPerApplication" => {
                    config.processes_per_application = uint(ctx, a, 1, 100)?;
                }
                "requestTimeout" => {
                    config.request_timeout = request_timeout(ctx, a)?;
                    config.request_timeout_raw = Some(a.value.clone());
                }
                "stdoutLogEnabled" => config.stdout_log_enabled = boolean(ctx, a)?,
                "stdoutLogFile" => config.stdout_log_file = a.value.clone(),
                "forwardWindowsAuthToken" => config.forward_windows_auth_token = boolean(ctx, a)?,
                "disableStartUpErrorPage" => config.disable_startup_error_page = boolean(ctx, a)?,
                "hostingModel" => {
                    config.hosting_model_raw = Some(a.value.clone());
                    hosting_model_offset = a.offset;
                }
                "configSource" => {
                    return Err(ctx.error(
                        a.offset,
                        ConfigErrorKind::AuthoringError,
                        "configSource (reading the section from another file) is not supported \
                         by ancm-rs: move the <aspNetCore> element into web.config.",
                    ));
                }
                other => {
                    // IIS rejects unrecognised attributes; we ignore them, except a known
                    // name in the wrong case, which is surely a typo that IIS would refuse.
                    if let Some(known) = KNOWN_ATTRIBUTES
                        .iter()
                        .find(|k| k.eq_ignore_ascii_case(other))
                    {
                        return Err(ctx.error(
                            a.offset,
                            ConfigErrorKind::AuthoringError,
                            format!(
                                "Unrecognized attribute '{other}': attribute names are \
                                 case-sensitive; write '{known}'."
                            ),
                        ));
                    }
                    tracing::debug!(
                        location = %ctx.location(a.offset),
                        attribute = other,
                        "web.config: ignoring an unknown <aspNetCore> attribute"
                    );
                }
            }
        }
        Ok(Section {
            config,
            process_path,
            hosting_model_offset,
        })
    }

    fn collection_item(
        &mut self,
        ctx: &Ctx<'_>,
        kind: Collection,
        element: &str,
        attrs: &[Attr],
        offset: usize,
    ) -> Result<(), ConfigError> {
        let list = match kind {
            Collection::Env => &mut self.config.environment_variables,
            Collection::Handler => &mut self.config.handler_settings,
        };
        let required_name = || match find(attrs, "name") {
            Some(a) if !a.value.is_empty() => Ok(a.value.clone()),
            _ => Err(ctx.error(
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
                return Err(ctx.error(
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
            return Err(ctx.error(
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

    fn finish(self, ctx: &Ctx<'_>) -> Result<AspNetCoreConfig, ConfigError> {
        let mut config = self.config;
        config.hosting_model = match config.hosting_model_raw.as_deref() {
            None | Some("") => HostingModel::OutOfProcess,
            Some(v) if v.eq_ignore_ascii_case("outofprocess") => HostingModel::OutOfProcess,
            Some(v) if v.eq_ignore_ascii_case("inprocess") => HostingModel::InProcess,
            Some(v) => {
                return Err(ctx.error(
                    self.hosting_model_offset,
                    ConfigErrorKind::InvalidValue,
                    format!(
                        "Unknown hosting model '{v}'. Please specify either \
                         hostingModel=\"inprocess\" or hostingModel=\"outofprocess\" in the \
                         web.config file."
                    ),
                ));
            }
        };
        match self.process_path {
            Some(p) if !p.is_empty() => config.process_path = p,
            _ => {
                return Err(ConfigError::new(
                    ctx.file,
                    Some(config.location.clone()),
                    ConfigErrorKind::MissingAttribute,
                    "Attribute 'processPath' is required.",
                ));
            }
        }
        Ok(config)
    }
}

/// An IIS `uint` attribute: decimal digits (surrounding XML white space ignored), in range.
fn uint(ctx: &Ctx<'_>, a: &Attr, min: u32, max: u32) -> Result<u32, ConfigError> {
    let t = a.value.trim_matches(is_xml_space);
    if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ctx.error(
            a.offset,
            ConfigErrorKind::InvalidValue,
            format!(
                "Attribute '{}' value '{}' is not a valid whole number: expected decimal \
                 digits between {min} and {max}.",
                a.name, a.value
            ),
        ));
    }
    match t.parse::<u32>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(ctx.error(
            a.offset,
            ConfigErrorKind::OutOfRange,
            format!(
                "Attribute '{}' value '{}' is out of range: must be between {min} and {max}.",
                a.name, a.value
            ),
        )),
    }
}

/// An IIS `bool` attribute: `true` or `false` in any case.
fn boolean(ctx: &Ctx<'_>, a: &Attr) -> Result<bool, ConfigError> {
    let t = a.value.trim_matches(is_xml_space);
    if t.eq_ignore_ascii_case("true") {
        Ok(true)
    } else if t.eq_ignore_ascii_case("false") {
        Ok(false)
    } else {
        Err(ctx.error(
            a.offset,
            ConfigErrorKind::InvalidValue,
            format!(
                "Attribute '{}' value '{}' is not a valid boolean: expected 'true' or 'false'.",
                a.name, a.value
            ),
        ))
    }
}

/// `requestTimeout`: a timeSpan from 0 to 360 hours in whole seconds (the schema's
/// `timeSpanRange` "0,1296000,1": minimum, maximum, granularity in seconds).
fn request_timeout(ctx: &Ctx<'_>, a: &Attr) -> Result<Duration, ConfigError> {
    let out_of_range = || {
        ctx.error(
            a.offset,
            ConfigErrorKind::OutOfRange,
            format!(
                "Attribute '{}' value '{}' is out of range: must be between 00:00:00 and \
                 15.00:00:00 (360 hours).",
                a.name, a.value
            ),
        )
    };
    let ticks = match timespan::parse_ticks(&a.value) {
        Ok(t) => t,
        Err(TimeSpanError::Negative) => return Err(out_of_range()),
        Err(TimeSpanError::Format(why)) => {
            return Err(ctx.error(
                a.offset,
                ConfigErrorKind::InvalidValue,
                format!(
                    "Attribute '{}' value '{}' is not a valid timeSpan ({why}): expected \
                     [d.]hh:mm:ss[.fraction], e.g. 00:02:00 or 1.12:00:00.",
                    a.name, a.value
                ),
            ));
        }
    };
    if ticks > MAX_REQUEST_TIMEOUT_SECONDS * TICKS_PER_SECOND {
        return Err(out_of_range());
    }
    if ticks % TICKS_PER_SECOND != 0 {
        return Err(ctx.error(
            a.offset,
            ConfigErrorKind::OutOfRange,
            format!(
                "Attribute '{}' value '{}' is not a whole number of seconds: IIS accepts it \
                 only in steps of 1 second.",
                a.name, a.value
            ),
        ));
    }
    Ok(timespan::ticks_to_duration(ticks))
}
