//! `ancm run`'s flags for health checks, recycling policies and preload (protocol §8.34 to
//! §8.36). Each stands for the web.config handler setting of the same meaning and wins over
//! it for every application.
use ancm_hosting::supervisor::{
    HealthCheck, PRELOAD_SETTING, RecyclePolicy, parse_duration, parse_times_of_day,
};

/// The flags; see the README's "Keeping backends healthy" for the IIS counterparts.
#[derive(Debug, Default, clap::Args)]
pub struct KeepArgs {
    /// Probe each backend process with `GET PATH` (with the pairing token); a process whose
    /// probe fails --health-check-threshold times in a row is replaced with no downtime.
    /// Handler setting healthCheckPath.
    #[arg(long = "health-check-path", value_name = "PATH", value_parser = parse_path)]
    pub health_check_path: Option<String>,

    /// Time between two probes of a process (`10s`, `500ms`, `00:00:10`). Default 10s.
    /// Handler setting healthCheckInterval.
    #[arg(long = "health-check-interval", value_name = "DURATION", value_parser = parse_positive_duration)]
    pub health_check_interval: Option<String>,

    /// How long a probe may wait for its answer. Default 5s. Handler setting
    /// healthCheckTimeout.
    #[arg(long = "health-check-timeout", value_name = "DURATION", value_parser = parse_positive_duration)]
    pub health_check_timeout: Option<String>,

    /// Failed probes in a row that make a process unhealthy. Default 3. Handler setting
    /// healthCheckUnhealthyThreshold.
    #[arg(long = "health-check-threshold", value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub health_check_threshold: Option<u32>,

    /// Requests in a row that fail at a process's port (502.3: refused, reset, no answer
    /// within requestTimeout) that make it unhealthy. Off by default. Handler setting
    /// passiveHealthThreshold.
    #[arg(long = "passive-health-threshold", value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub passive_health_threshold: Option<u32>,

    /// Recycle an application once a process has run this long (IIS periodicRestart time).
    /// Handler setting recycleTime.
    #[arg(long = "recycle-time", value_name = "DURATION", value_parser = parse_positive_duration)]
    pub recycle_time: Option<String>,

    /// Recycle an application once a process has been given N requests (IIS
    /// periodicRestart requests). Handler setting recycleRequests.
    #[arg(long = "recycle-requests", value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub recycle_requests: Option<u64>,

    /// Recycle an application when a process's memory (its tree's resident set on Linux,
    /// its private bytes on Windows) stays above KB kilobytes for
    /// --recycle-memory-duration (IIS periodicRestart privateMemory). Handler setting
    /// recyclePrivateMemory.
    #[arg(long = "recycle-private-memory", value_name = "KB", value_parser = clap::value_parser!(u64).range(1..))]
    pub recycle_private_memory: Option<u64>,

    /// How long memory must stay above --recycle-private-memory. Default 30s. Handler
    /// setting recycleMemoryDuration.
    #[arg(long = "recycle-memory-duration", value_name = "DURATION", value_parser = parse_positive_duration)]
    pub recycle_memory_duration: Option<String>,

    /// Recycle an application at these times of day, in UTC: `hh:mm[:ss]`, separated by
    /// commas (IIS periodicRestart schedule, which is in local time). Handler setting
    /// recycleSchedule.
    #[arg(long = "recycle-schedule", value_name = "TIMES", value_parser = parse_schedule)]
    pub recycle_schedule: Option<String>,

    /// Start every application's backend processes with the gateway instead of on the first
    /// request (IIS preloadEnabled with startMode AlwaysRunning). A failed start shows in
    /// the application's state; the gateway runs on. Handler setting preload.
    #[arg(long = "preload")]
    pub preload: bool,
}

impl KeepArgs {
    /// The flags given, as `(handler setting, value)`.
    pub fn setting_overrides(&self) -> Vec<(&'static str, String)> {
        let text = |v: &Option<String>| v.clone();
        let number = |v: Option<u64>| v.map(|n| n.to_string());
        [
            (HealthCheck::PATH_SETTING, text(&self.health_check_path)),
            (
                HealthCheck::INTERVAL_SETTING,
                text(&self.health_check_interval),
            ),
            (
                HealthCheck::TIMEOUT_SETTING,
                text(&self.health_check_timeout),
            ),
            (
                HealthCheck::THRESHOLD_SETTING,
                number(self.health_check_threshold.map(u64::from)),
            ),
            (
                HealthCheck::PASSIVE_SETTING,
                number(self.passive_health_threshold.map(u64::from)),
            ),
            (RecyclePolicy::TIME_SETTING, text(&self.recycle_time)),
            (
                RecyclePolicy::REQUESTS_SETTING,
                number(self.recycle_requests),
            ),
            (
                RecyclePolicy::MEMORY_SETTING,
                number(self.recycle_private_memory),
            ),
            (
                RecyclePolicy::MEMORY_DURATION_SETTING,
                text(&self.recycle_memory_duration),
            ),
            (
                RecyclePolicy::SCHEDULE_SETTING,
                text(&self.recycle_schedule),
            ),
            (PRELOAD_SETTING, self.preload.then(|| "true".to_owned())),
        ]
        .into_iter()
        .filter_map(|(name, value)| Some((name, value?)))
        .collect()
    }
}

fn parse_path(value: &str) -> Result<String, String> {
    if value.starts_with('/') {
        Ok(value.to_owned())
    } else {
        Err("the path must start with /".to_owned())
    }
}

fn parse_positive_duration(value: &str) -> Result<String, String> {
    match parse_duration(value) {
        Ok(d) if !d.is_zero() => Ok(value.to_owned()),
        Ok(_) => Err("the duration must be positive".to_owned()),
        Err(e) => Err(e.to_string()),
    }
}

fn parse_schedule(value: &str) -> Result<String, String> {
    parse_times_of_day(value)
        .map(|_| value.to_owned())
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_become_handler_settings() {
        let args = KeepArgs {
            health_check_path: Some("/health".into()),
            recycle_requests: Some(5),
            preload: true,
            ..KeepArgs::default()
        };
        assert_eq!(
            args.setting_overrides(),
            [
                ("healthCheckPath", "/health".to_owned()),
                ("recycleRequests", "5".to_owned()),
                ("preload", "true".to_owned()),
            ]
        );
        assert!(parse_positive_duration("0s").is_err());
        assert!(parse_positive_duration("2 weeks").is_err());
        assert!(parse_schedule("25:00").is_err());
        assert!(parse_path("health").is_err());
    }
}
