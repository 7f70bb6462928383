//! IIS `timeSpan` attribute values: `[-][d.]hh:mm:ss[.fraction]`.

use std::time::Duration;

use super::source::is_xml_space;

/// 100-nanosecond ticks per second, the unit IIS hands to the module.
pub(crate) const TICKS_PER_SECOND: u64 = 10_000_000;

/// Why a timeSpan text is not usable.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum TimeSpanError {
    /// Not of the form `[-][d.]hh:mm:ss[.fraction]`; the text says what is wrong.
    Format(&'static str),
    /// Well-formed but negative.
    Negative,
}

/// Parses `[-][d.]hh:mm:ss[.fraction]` (the .NET `TimeSpan` "c" form IIS writes and reads)
/// into 100-ns ticks. Hours are 0–23, minutes and seconds 0–59, the fraction 1–7 digits.
/// Surrounding XML whitespace is ignored.
pub(crate) fn parse_ticks(text: &str) -> Result<u64, TimeSpanError> {
    use TimeSpanError::Format;
    let s = text.trim_matches(is_xml_space);
    let (negative, s) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let mut parts = s.split(':');
    let (first, minutes, seconds) = match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(a), Some(b), Some(c), None) => (a, b, c),
        _ => return Err(Format("expected [d.]hh:mm:ss[.fraction]")),
    };
    let (days, hours) = match first.split_once('.') {
        Some((d, h)) => (number(d, 8).ok_or(Format("the days are not a number"))?, h),
        None => (0, first),
    };
    let hours = number(hours, 9).ok_or(Format("the hours are not a number"))?;
    let minutes = number(minutes, 9).ok_or(Format("the minutes are not a number"))?;
    let (seconds, fraction) = match seconds.split_once('.') {
        Some((s, f)) => (s, Some(f)),
        None => (seconds, None),
    };
    let seconds = number(seconds, 9).ok_or(Format("the seconds are not a number"))?;
    if hours > 23 {
        return Err(Format("hours must be 0-23 (write 36 hours as 1.12:00:00)"));
    }
    if minutes > 59 {
        return Err(Format("minutes must be 0-59"));
    }
    if seconds > 59 {
        return Err(Format("seconds must be 0-59"));
    }
    let fraction_ticks = match fraction {
        None => 0,
        Some(f) => {
            let n = number(f, 7).ok_or(Format("the fraction of a second is not 1-7 digits"))?;
            let scale = 10u64.pow(7 - u32::try_from(f.len()).unwrap_or(7));
            n * scale
        }
    };
    // Saturates: anything near u64::MAX ticks is far out of every range anyway.
    let total = ((days * 24 + hours) * 60 + minutes) * 60 + seconds;
    let ticks = total
        .saturating_mul(TICKS_PER_SECOND)
        .saturating_add(fraction_ticks);
    if negative && ticks != 0 {
        return Err(TimeSpanError::Negative);
    }
    Ok(ticks)
}

fn number(s: &str, max_digits: usize) -> Option<u64> {
    if s.is_empty() || s.len() > max_digits || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// A tick count as a [`Duration`].
pub(crate) fn ticks_to_duration(ticks: u64) -> Duration {
    Duration::new(
        ticks / TICKS_PER_SECOND,
        ((ticks % TICKS_PER_SECOND) * 100) as u32,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        assert_eq!(parse_ticks("00:02:00"), Ok(120 * TICKS_PER_SECOND));
        assert_eq!(parse_ticks("1.02:03:04"), Ok(93_784 * TICKS_PER_SECOND));
        assert_eq!(
            parse_ticks("1.02:03:04.5"),
            Ok(93_784 * TICKS_PER_SECOND + 5_000_000)
        );
        assert_eq!(parse_ticks("0:0:1.0000001"), Ok(TICKS_PER_SECOND + 1));
        assert_eq!(
            parse_ticks(" 15.00:00:00 "),
            Ok(1_296_000 * TICKS_PER_SECOND)
        );
        assert_eq!(parse_ticks("-00:00:00"), Ok(0));
        assert_eq!(parse_ticks("99999999.23:59:59.9999999"), Ok(u64::MAX));
        assert_eq!(parse_ticks("-00:00:01"), Err(TimeSpanError::Negative));
        for bad in [
            "",
            "120",
            "00:02",
            "24:00:00",
            "00:60:00",
            "00:00:60",
            "1.2.3:00:00",
            "a:00:00",
            "00:00:00.",
            "00:00:00.12345678",
            "1 .00:00:00",
            "+00:00:01",
            "00:00:00:00",
            "999999999.00:00:00",
            "360:00:00",
        ] {
            assert!(
                matches!(parse_ticks(bad), Err(TimeSpanError::Format(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn durations() {
        assert_eq!(ticks_to_duration(15_000_000), Duration::from_millis(1500));
    }
}
