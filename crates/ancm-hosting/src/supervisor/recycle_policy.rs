//! Recycling policies, like an IIS application pool's `periodicRestart` (protocol §8.35):
//! after a running time, a number of requests, memory held too long, or at times of day.
//!
//! ```
//! use std::time::Duration;
//! use ancm_hosting::supervisor::{RecyclePolicy, parse_duration, parse_times_of_day};
//!
//! let policy = RecyclePolicy::default()
//!     .periodic(parse_duration("1.05:00:00").unwrap()) // IIS's default 1740 minutes
//!     .requests(100_000)
//!     .schedule(parse_times_of_day("03:00, 15:30:00").unwrap());
//! assert_eq!(policy.periodic, Some(Duration::from_secs(29 * 3600)));
//! assert_eq!(policy.schedule, [3 * 3600, 15 * 3600 + 30 * 60]);
//! assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
//! ```
//!
//! Every policy recycles the whole application through the zero-downtime recycle a web.config
//! change uses (new processes start and become ready, requests switch to them, the old ones
//! stop gracefully); the exit and recycle counters name the cause. Policy recycles are asked
//! for, so rapid-fail protection does not count them.
use std::time::Duration;

use super::health::duration_setting;

/// When an application is recycled besides a web.config change: an ancm-rs addition with the
/// meaning of IIS's `periodicRestart` settings (ANCM has none of them). `ancm run` sets it
/// with `--recycle-*`; web.config's handler settings (ancm-rs names, which ANCM ignores) win
/// for their application. Default: none.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RecyclePolicy {
    /// Recycle once a process has run this long (IIS `periodicRestart time`).
    pub periodic: Option<Duration>,
    /// Recycle once a process has been given this many requests (IIS `periodicRestart
    /// requests`).
    pub requests: Option<u64>,
    /// Recycle when a process's memory stays above this many KiB for
    /// [`memory_duration`](Self::memory_duration) (IIS `periodicRestart privateMemory`, also
    /// in KB): the resident memory of its whole process tree on Linux, its private bytes on
    /// Windows; not measured elsewhere.
    pub private_memory_kib: Option<u64>,
    /// How long the memory must stay above the limit; default 30 s.
    pub memory_duration: Duration,
    /// Recycle at these times of day, in seconds since midnight **UTC** (IIS `periodicRestart
    /// schedule`, which is in local time).
    pub schedule: Vec<u32>,
}

impl Default for RecyclePolicy {
    fn default() -> Self {
        Self {
            periodic: None,
            requests: None,
            private_memory_kib: None,
            memory_duration: Duration::from_secs(30),
            schedule: Vec::new(),
        }
    }
}

impl RecyclePolicy {
    /// The handler setting for [`periodic`](Self::periodic).
    pub const TIME_SETTING: &str = "recycleTime";
    /// The handler setting for [`requests`](Self::requests).
    pub const REQUESTS_SETTING: &str = "recycleRequests";
    /// The handler setting for [`private_memory_kib`](Self::private_memory_kib).
    pub const MEMORY_SETTING: &str = "recyclePrivateMemory";
    /// The handler setting for [`memory_duration`](Self::memory_duration).
    pub const MEMORY_DURATION_SETTING: &str = "recycleMemoryDuration";
    /// The handler setting for [`schedule`](Self::schedule).
    pub const SCHEDULE_SETTING: &str = "recycleSchedule";

    /// Recycle after `time` of running.
    pub fn periodic(mut self, time: Duration) -> Self {
        self.periodic = Some(time);
        self
    }

    /// Recycle after `n` requests (at least 1).
    pub fn requests(mut self, n: u64) -> Self {
        self.requests = Some(n.max(1));
        self
    }

    /// Recycle when memory stays above `kib` KiB (at least 1).
    pub fn private_memory_kib(mut self, kib: u64) -> Self {
        self.private_memory_kib = Some(kib.max(1));
        self
    }

    /// How long memory must stay above the limit.
    pub fn memory_duration(mut self, duration: Duration) -> Self {
        self.memory_duration = duration;
        self
    }

    /// Recycle at these times of day (seconds since midnight UTC, below 86 400).
    pub fn schedule(mut self, times: Vec<u32>) -> Self {
        self.schedule = times.into_iter().filter(|t| *t < DAY).collect();
        self.schedule.sort_unstable();
        self.schedule.dedup();
        self
    }

    /// Whether any policy is set.
    pub fn is_set(&self) -> bool {
        self.periodic.is_some()
            || self.requests.is_some()
            || self.private_memory_kib.is_some()
            || !self.schedule.is_empty()
    }

    /// These settings with web.config's handler settings in their place where set; unusable
    /// values are ignored with a warning.
    pub(crate) fn with_handler_settings(self, setting: &dyn Fn(&str) -> Option<String>) -> Self {
        let mut out = self;
        if let Some(d) = duration_setting(setting, Self::TIME_SETTING) {
            out = out.periodic(d);
        }
        if let Some(n) = positive_number(setting, Self::REQUESTS_SETTING) {
            out = out.requests(n);
        }
        if let Some(n) = positive_number(setting, Self::MEMORY_SETTING) {
            out = out.private_memory_kib(n);
        }
        if let Some(d) = duration_setting(setting, Self::MEMORY_DURATION_SETTING) {
            out = out.memory_duration(d);
        }
        if let Some(raw) = setting(Self::SCHEDULE_SETTING) {
            match parse_times_of_day(&raw) {
                Ok(times) => out = out.schedule(times),
                Err(error) => {
                    tracing::warn!(setting = Self::SCHEDULE_SETTING, value = %raw, %error, "ignoring the recycle schedule");
                }
            }
        }
        out
    }
}

/// Seconds in a day.
const DAY: u32 = 86_400;

/// A positive whole-number handler setting, or `None` (with a warning when it is set but
/// unusable).
pub(crate) fn positive_number(setting: &dyn Fn(&str) -> Option<String>, name: &str) -> Option<u64> {
    let raw = setting(name)?;
    match raw.trim().parse::<u64>() {
        Ok(n) if n > 0 => Some(n),
        _ => {
            tracing::warn!(setting = name, value = %raw, "ignoring a handler setting that is not a positive whole number");
            None
        }
    }
}

/// Why a duration or time of day is not usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PolicyValueError(&'static str);

/// A duration as IIS writes one (`[d.]hh:mm:ss[.fraction]`), or a decimal number with a unit
/// `ms`, `s`, `m` or `h` (`250ms`, `1.5s`, `30m`); a bare number is seconds.
pub fn parse_duration(text: &str) -> Result<Duration, PolicyValueError> {
    let s = text.trim();
    if s.contains(':') {
        return crate::config::timespan::parse_ticks(s)
            .map(|ticks| Duration::from_nanos(ticks.saturating_mul(100)))
            .map_err(|_| PolicyValueError("expected [d.]hh:mm:ss[.fraction]"));
    }
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| PolicyValueError("expected a number with ms, s, m or h"))?;
    let seconds = match unit.trim() {
        "ms" => value / 1000.0,
        "" | "s" => value,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        _ => return Err(PolicyValueError("the unit must be ms, s, m or h")),
    };
    Duration::try_from_secs_f64(seconds).map_err(|_| PolicyValueError("out of range"))
}

/// Times of day `hh:mm[:ss]`, separated by commas or spaces, as seconds since midnight.
pub fn parse_times_of_day(text: &str) -> Result<Vec<u32>, PolicyValueError> {
    let mut times = Vec::new();
    for item in text
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
    {
        let mut parts = item.split(':');
        let mut field = |max: u32| -> Result<u32, PolicyValueError> {
            match parts.next() {
                None => Ok(0),
                Some(p) => match p.parse::<u32>() {
                    Ok(n) if n <= max && !p.is_empty() && p.len() <= 2 => Ok(n),
                    _ => Err(PolicyValueError("expected hh:mm[:ss] (hours 0-23)")),
                },
            }
        };
        let (h, m, s) = (field(23)?, field(59)?, field(59)?);
        if parts.next().is_some() || !item.contains(':') {
            return Err(PolicyValueError("expected hh:mm[:ss] (hours 0-23)"));
        }
        times.push(h * 3600 + m * 60 + s);
    }
    if times.is_empty() {
        return Err(PolicyValueError("no time of day given"));
    }
    Ok(times)
}

/// Whether a time of day in `schedule` lies in `(from, to]`, both seconds since the Unix
/// epoch (UTC).
pub(crate) fn scheduled_between(schedule: &[u32], from: u64, to: u64) -> bool {
    if to <= from {
        return false;
    }
    // More than a day: every time of day passed.
    if to - from >= u64::from(DAY) {
        return !schedule.is_empty();
    }
    let day = u64::from(DAY);
    schedule.iter().any(|t| {
        let t = u64::from(*t);
        // The first occurrence of `t` after `from`.
        let base = from - from % day + t;
        let next = if base > from { base } else { base + day };
        next <= to
    })
}

/// The memory of `pid`'s process tree in KiB: the resident set of it and its descendants on
/// Linux (at most [`TREE_LIMIT`] processes), its private bytes on Windows; `None` where it
/// cannot be read.
pub(crate) fn memory_kib(pid: u32) -> Option<u64> {
    #[cfg(target_os = "linux")]
    {
        linux_tree_rss_kib(pid)
    }
    #[cfg(windows)]
    {
        super::windows::private_bytes(pid).map(|b| b / 1024)
    }
    #[cfg(not(any(target_os = "linux", windows)))]
    {
        let _ = pid;
        None
    }
}

/// The most processes of one tree whose memory is added up.
#[cfg(target_os = "linux")]
const TREE_LIMIT: usize = 256;

/// `VmRSS` of `pid` and its descendants (through `/proc/PID/task/*/children`).
#[cfg(target_os = "linux")]
fn linux_tree_rss_kib(pid: u32) -> Option<u64> {
    let rss = |pid: u32| -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    };
    let mut total = rss(pid)?;
    let mut seen = vec![pid];
    let mut next = 0;
    while next < seen.len() && seen.len() < TREE_LIMIT {
        let parent = seen[next];
        next += 1;
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{parent}/task")) else {
            continue;
        };
        for task in tasks.flatten() {
            let Ok(children) = std::fs::read_to_string(task.path().join("children")) else {
                continue;
            };
            for child in children.split_whitespace().filter_map(|c| c.parse().ok()) {
                if seen.len() >= TREE_LIMIT || seen.contains(&child) {
                    continue;
                }
                seen.push(child);
                total += rss(child).unwrap_or(0);
            }
        }
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("00:00:02"), Ok(Duration::from_secs(2)));
        assert_eq!(
            parse_duration("1.00:00:00"),
            Ok(Duration::from_secs(86_400))
        );
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert!(parse_duration("2 weeks").is_err());
        assert!(parse_duration("").is_err());
        assert!(parse_duration("-1s").is_err());
    }

    #[test]
    fn times_of_day() {
        assert_eq!(parse_times_of_day("03:00"), Ok(vec![3 * 3600]));
        assert_eq!(
            parse_times_of_day("23:59:59, 00:00 12:30"),
            Ok(vec![86_399, 0, 12 * 3600 + 30 * 60])
        );
        assert!(parse_times_of_day("24:00").is_err());
        assert!(parse_times_of_day("3").is_err());
        assert!(parse_times_of_day("").is_err());
        assert!(parse_times_of_day("01:02:03:04").is_err());
    }

    #[test]
    fn schedule_windows() {
        let day = 86_400u64;
        let at = |d: u64, s: u64| d * day + s;
        // 03:00 passes between 02:59:59 and 03:00:00, not before or after.
        assert!(scheduled_between(&[10_800], at(5, 10_799), at(5, 10_800)));
        assert!(!scheduled_between(&[10_800], at(5, 10_800), at(5, 10_801)));
        assert!(!scheduled_between(&[10_800], at(5, 0), at(5, 10_799)));
        // Across midnight.
        assert!(scheduled_between(&[0], at(5, 86_399), at(6, 1)));
        assert!(!scheduled_between(&[], at(5, 0), at(9, 0)));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn reads_this_process_memory() {
        let kib = memory_kib(std::process::id()).expect("our own memory");
        assert!(kib > 100, "{kib}");
    }
}
