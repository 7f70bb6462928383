//! The attribute values of `<aspNetCore>`: each attribute typed, range-checked and stored
//! (protocol §3.1), then the module's own checks on the section (`hostingModel`, then
//! `processPath`, as ANCM's `ShimOptions` does); and those of IIS request filtering's
//! `<requestLimits>` (protocol §3.4).

use std::time::Duration;

use super::source::{Source, is_xml_space};
use super::timespan::{self, TICKS_PER_SECOND, TimeSpanError};
use super::{AspNetCoreConfig, ConfigError, ConfigErrorKind, HostingModel, IisRequestLimits, attr};

/// The largest `requestTimeout`: 360 hours (protocol §3.1).
const MAX_REQUEST_TIMEOUT_SECONDS: u64 = 1_296_000;

/// One attribute: name as written, value with entities decoded and white space normalised
/// as XML does, offset of its name.
pub(crate) struct Attr {
    pub(crate) name: String,
    pub(crate) value: String,
    pub(crate) offset: usize,
}

/// The attribute called `name`, if written.
pub(crate) fn find<'a>(attrs: &'a [Attr], name: &str) -> Option<&'a Attr> {
    attrs.iter().find(|a| a.name == name)
}

/// The effective `<aspNetCore>` being read.
pub(crate) struct Section {
    /// The values read so far; the collections are filled while walking its children.
    pub(crate) config: AspNetCoreConfig,
    process_path: Option<String>,
    hosting_model_offset: usize,
}

impl Section {
    /// Reads the attributes of the `<aspNetCore>` start tag at `offset`.
    pub(crate) fn start(
        src: &Source<'_>,
        attrs: &[Attr],
        offset: usize,
    ) -> Result<Section, ConfigError> {
        let mut config = AspNetCoreConfig::new(String::new(), src.location(offset));
        let mut process_path = None;
        let mut hosting_model_offset = offset;
        for a in attrs {
            match a.name.as_str() {
                attr::PROCESS_PATH => process_path = Some(a.value.clone()),
                attr::ARGUMENTS => config.arguments = a.value.clone(),
                attr::STARTUP_TIME_LIMIT => config.startup_time_limit = uint(src, a, 0, 3600)?,
                attr::SHUTDOWN_TIME_LIMIT => config.shutdown_time_limit = uint(src, a, 0, 600)?,
                attr::RAPID_FAILS_PER_MINUTE => {
                    config.rapid_fails_per_minute = uint(src, a, 0, 100)?;
                }
                attr::PROCESSES_PER_APPLICATION => {
                    config.processes_per_application = uint(src, a, 1, 100)?;
                }
                attr::REQUEST_TIMEOUT => {
                    config.request_timeout = request_timeout(src, a)?;
                    config.request_timeout_raw = Some(a.value.clone());
                }
                attr::STDOUT_LOG_ENABLED => config.stdout_log_enabled = boolean(src, a)?,
                attr::STDOUT_LOG_FILE => config.stdout_log_file = a.value.clone(),
                attr::FORWARD_WINDOWS_AUTH_TOKEN => {
                    config.forward_windows_auth_token = boolean(src, a)?;
                }
                attr::DISABLE_STARTUP_ERROR_PAGE => {
                    config.disable_startup_error_page = boolean(src, a)?;
                }
                attr::HOSTING_MODEL => {
                    config.hosting_model_raw = Some(a.value.clone());
                    hosting_model_offset = a.offset;
                }
                attr::CONFIG_SOURCE => {
                    return Err(src.error(
                        a.offset,
                        ConfigErrorKind::AuthoringError,
                        "configSource (reading the section from another file) is not supported \
                         by ancm-rs: move the <aspNetCore> element into web.config.",
                    ));
                }
                other => unknown(src, a, other, attr::KNOWN, "aspNetCore")?,
            }
        }
        Ok(Section {
            config,
            process_path,
            hosting_model_offset,
        })
    }

    /// The module's checks once the document is known to be good: `hostingModel`, then
    /// `processPath`.
    pub(crate) fn finish(self, src: &Source<'_>) -> Result<AspNetCoreConfig, ConfigError> {
        let mut config = self.config;
        config.hosting_model = match config.hosting_model_raw.as_deref() {
            None | Some("") => HostingModel::OutOfProcess,
            Some(v) if v.eq_ignore_ascii_case("outofprocess") => HostingModel::OutOfProcess,
            Some(v) if v.eq_ignore_ascii_case("inprocess") => HostingModel::InProcess,
            Some(v) => {
                return Err(src.error(
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
                    src.file,
                    Some(config.location.clone()),
                    ConfigErrorKind::MissingAttribute,
                    format!("Attribute '{}' is required.", attr::PROCESS_PATH),
                ));
            }
        }
        Ok(config)
    }
}

/// The attributes of a `<requestLimits>` element (protocol §3.4).
pub(crate) fn request_limits(
    src: &Source<'_>,
    attrs: &[Attr],
) -> Result<IisRequestLimits, ConfigError> {
    let mut limits = IisRequestLimits::default();
    for a in attrs {
        match a.name.as_str() {
            attr::MAX_ALLOWED_CONTENT_LENGTH => {
                limits.max_allowed_content_length = Some(uint64(src, a)?);
            }
            attr::MAX_URL => limits.max_url = Some(uint(src, a, 0, u32::MAX)?),
            attr::MAX_QUERY_STRING => limits.max_query_string = Some(uint(src, a, 0, u32::MAX)?),
            other => unknown(
                src,
                a,
                other,
                attr::KNOWN_REQUEST_LIMITS,
                attr::REQUEST_LIMITS,
            )?,
        }
    }
    Ok(limits)
}

/// An attribute ancm-rs does not read on `element`, whose attributes are `known`. IIS rejects
/// unrecognised attributes; we ignore them, except a known name in the wrong case, which is
/// surely a typo that IIS would refuse.
fn unknown(
    src: &Source<'_>,
    a: &Attr,
    name: &str,
    known: &[&str],
    element: &str,
) -> Result<(), ConfigError> {
    if let Some(known) = known.iter().find(|k| k.eq_ignore_ascii_case(name)) {
        return Err(src.error(
            a.offset,
            ConfigErrorKind::AuthoringError,
            format!(
                "Unrecognized attribute '{name}': attribute names are case-sensitive; write \
                 '{known}'."
            ),
        ));
    }
    tracing::debug!(
        location = %src.location(a.offset),
        element,
        attribute = name,
        "web.config: ignoring an unknown attribute"
    );
    Ok(())
}

/// A whole number of bytes up to `u64::MAX`: decimal digits (surrounding XML white space
/// ignored). Wider than IIS's `uint`, so a 10 GB `maxAllowedContentLength` means 10 GB.
fn uint64(src: &Source<'_>, a: &Attr) -> Result<u64, ConfigError> {
    let t = a.value.trim_matches(is_xml_space);
    if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
        return Err(src.error(
            a.offset,
            ConfigErrorKind::InvalidValue,
            format!(
                "Attribute '{}' value '{}' is not a valid whole number: expected decimal \
                 digits.",
                a.name, a.value
            ),
        ));
    }
    t.parse::<u64>().map_err(|_| {
        src.error(
            a.offset,
            ConfigErrorKind::OutOfRange,
            format!(
                "Attribute '{}' value '{}' is out of range: must be between 0 and {}.",
                a.name,
                a.value,
                u64::MAX
            ),
        )
    })
}

/// An IIS `uint` attribute: decimal digits (surrounding XML white space ignored), in range.
fn uint(src: &Source<'_>, a: &Attr, min: u32, max: u32) -> Result<u32, ConfigError> {
    let t = a.value.trim_matches(is_xml_space);
    if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
        return Err(src.error(
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
        _ => Err(src.error(
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
fn boolean(src: &Source<'_>, a: &Attr) -> Result<bool, ConfigError> {
    let t = a.value.trim_matches(is_xml_space);
    if t.eq_ignore_ascii_case("true") {
        Ok(true)
    } else if t.eq_ignore_ascii_case("false") {
        Ok(false)
    } else {
        Err(src.error(
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
fn request_timeout(src: &Source<'_>, a: &Attr) -> Result<Duration, ConfigError> {
    let out_of_range = || {
        src.error(
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
            return Err(src.error(
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
        return Err(src.error(
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
