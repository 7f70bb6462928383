//! Why a backend could not be made ready: the cause behind a 502.5 page.

/// Why a backend could not be made ready (the cause behind a 502.5).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// More than `rapidFailsPerMinute` unexpected exits in the last 60 seconds.
    #[error("maximum rapid fail count per minute of '{limit}' exceeded; not starting the process")]
    RapidFailLimit {
        /// `rapidFailsPerMinute`.
        limit: u32,
    },
    /// `ASPNETCORE_PORT` in web.config is not a port in 1025–48000 (critical: no retry).
    #[error("ASPNETCORE_PORT {raw:?} from web.config is outside the allowed range 1025-48000")]
    InvalidPort {
        /// The configured text.
        raw: String,
    },
    /// `ASPNETCORE_TOKEN` in web.config cannot be sent as a header value (critical).
    #[error("ASPNETCORE_TOKEN from web.config is not usable: {reason}")]
    InvalidToken {
        /// Why.
        reason: String,
    },
    /// No free port found in 10000–48000 after 10 draws.
    #[error("no free port found in the range 10000-48000")]
    NoFreePort,
    /// The process could not be created.
    #[error("could not start '{program}': {reason}")]
    Spawn {
        /// The program.
        program: String,
        /// The OS error.
        reason: String,
    },
    /// The process exited before it listened.
    #[error("process '{program}' (pid {pid}) exited during startup with {status}")]
    Exited {
        /// The program.
        program: String,
        /// Its pid.
        pid: u32,
        /// How it exited.
        status: String,
    },
    /// The process did not listen on its port in time.
    #[error(
        "process '{program}' (pid {pid}) did not listen on port {port} within {limit_s} s (startupTimeLimit)"
    )]
    Timeout {
        /// The program.
        program: String,
        /// Its pid.
        pid: u32,
        /// The port it was given.
        port: u16,
        /// `startupTimeLimit` in seconds.
        limit_s: u64,
    },
    /// `processPath` names a Windows apphost (`MyApp.exe`) that cannot run here, and its
    /// folder is a self-contained publish, which `dotnet MyApp.dll` cannot run either
    /// (critical: no attempt; `500.32`, protocol §8.32).
    #[error(
        "'{apphost}' is a self-contained Windows publish and cannot run on {os}: the apphost \
         {why} and {runtime_config} carries its own .NET runtime instead of naming a shared \
         framework, so dotnet cannot run it either. Publish the application framework-dependent \
         (dotnet publish --self-contained false) or for this system (dotnet publish -r {rid}).",
        os = std::env::consts::OS,
        rid = super::publish::runtime_identifier()
    )]
    SelfContainedPublish {
        /// The apphost named by `processPath`.
        apphost: String,
        /// Why it cannot run: `is a Windows executable`, `does not exist`, ….
        why: &'static str,
        /// The runtimeconfig.json beside it.
        runtime_config: String,
    },
    /// web.config cannot be used (served as `500.0`): there is nothing to start. Boxed: it
    /// is rare and large, and every failed start carries a `StartError`.
    #[error("web.config cannot be used: {0}")]
    Configuration(Box<crate::config::ConfigError>),
    /// The application is stopping (app_offline, recycle or shutdown).
    #[error("the application is shutting down")]
    Stopping,
}

/// A failed start: the cause and the child's first output (when not logging to a file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartFailure {
    /// The last attempt's error.
    pub error: StartError,
    /// Up to 30 000 characters of the child's stdout/stderr.
    pub output: Option<String>,
}

impl StartFailure {
    /// A failure with no output to show.
    pub(crate) fn new(error: StartError) -> Self {
        Self {
            error,
            output: None,
        }
    }

    /// The text for the "Specific error detected by ANCM" block.
    pub fn detail(&self) -> String {
        match self.output.as_deref().map(str::trim_end) {
            Some(out) if !out.is_empty() => format!("{}\n\nProcess output:\n{out}", self.error),
            _ => self.error.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_detail_includes_output() {
        let f = StartFailure {
            error: StartError::NoFreePort,
            output: Some("boom\n".into()),
        };
        assert!(f.detail().ends_with("Process output:\nboom"));
        assert_eq!(
            StartFailure::new(StartError::Stopping).detail(),
            "the application is shutting down"
        );
    }
}
