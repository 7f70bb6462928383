//! The module debug log (protocol §2.12) mapped onto `tracing`.
//!
//! `ASPNETCORE_MODULE_DEBUG` / `ASPNETCORE_MODULE_DEBUG_FILE` and the handler settings
//! `debugLevel` / `debugFile` (which win when present) give a level (`error`, `warning`,
//! `info`, `trace`, matched case-insensitively by prefix) and sinks (`console`, `file`,
//! `eventlog`); sinks alone imply `info`. [`DebugLogSettings::layer`] turns them into a
//! boxed `tracing_subscriber` layer for the gateway's registry.
//!
//! ```
//! use ancm_hosting::debug_log::{DebugLevel, DebugLogSettings};
//! use tracing_subscriber::prelude::*;
//! let site = tempfile::tempdir().unwrap();
//! let s = DebugLogSettings::from_values(Some("FILE,Warn"), None, None, None, site.path());
//! assert_eq!(s.level, Some(DebugLevel::Warning));
//! assert_eq!(s.file.as_deref(), Some(site.path().join("aspnetcore-debug.log").as_path()));
//! let layer = s.layer::<tracing_subscriber::Registry>().unwrap();
//! let _subscriber = tracing_subscriber::registry().with(layer);
//! ```
//!
//! Decisions where ANCM's behaviour has no equivalent: a level without any sink logs to the
//! console (or to the file when a debug file is named); naming a debug file enables the file
//! sink; `eventlog` is accepted and ignored (the gateway has no event log); the filter applies
//! to the `ancm*` crates' events only, so the module debug log does not pick up other
//! libraries' chatter.
use std::path::{Path, PathBuf};

use tracing::level_filters::LevelFilter;
use tracing_subscriber::Layer;
use tracing_subscriber::registry::LookupSpan;

use crate::config::AspNetCoreConfig;

/// A module debug level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum DebugLevel {
    /// `error`.
    Error,
    /// `warning`.
    Warning,
    /// `info`.
    Info,
    /// `trace` (includes `debug` events).
    Trace,
}

impl DebugLevel {
    /// The `tracing` filter for this level.
    pub fn filter(self) -> LevelFilter {
        match self {
            DebugLevel::Error => LevelFilter::ERROR,
            DebugLevel::Warning => LevelFilter::WARN,
            DebugLevel::Info => LevelFilter::INFO,
            DebugLevel::Trace => LevelFilter::TRACE,
        }
    }
}

/// The effective module debug settings.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DebugLogSettings {
    /// The level; `None` means the module debug log is off.
    pub level: Option<DebugLevel>,
    /// Write to the console (stderr).
    pub console: bool,
    /// Write to this file (resolved against the site folder), appending.
    pub file: Option<PathBuf>,
    /// `eventlog` was asked for (ignored: no event log here).
    pub eventlog: bool,
}

/// The default debug file name.
pub const DEFAULT_FILE: &str = "aspnetcore-debug.log";

#[derive(Default)]
struct Parsed {
    level: Option<DebugLevel>,
    console: bool,
    file: bool,
    eventlog: bool,
    any: bool,
}

fn parse_list(value: &str) -> Parsed {
    let mut p = Parsed::default();
    for item in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let item = item.to_ascii_lowercase();
        let is = |word: &str| word.starts_with(item.as_str());
        let level = if is("error") {
            Some(DebugLevel::Error)
        } else if is("warning") {
            Some(DebugLevel::Warning)
        } else if is("info") {
            Some(DebugLevel::Info)
        } else if is("trace") {
            Some(DebugLevel::Trace)
        } else {
            None
        };
        if let Some(l) = level {
            // Several levels: the most verbose wins, as ANCM ORs the flags.
            p.level = p.level.max(Some(l));
            p.any = true;
        } else if is("console") {
            p.console = true;
            p.any = true;
        } else if is("file") {
            p.file = true;
            p.any = true;
        } else if is("eventlog") {
            p.eventlog = true;
            p.any = true;
        } else {
            tracing::warn!(item = %item, "unknown module debug level or sink; ignored");
        }
    }
    p
}

impl DebugLogSettings {
    /// From explicit values: the env's `ASPNETCORE_MODULE_DEBUG` and
    /// `ASPNETCORE_MODULE_DEBUG_FILE`, then handler settings `debugLevel` and `debugFile`
    /// (which override the env when present). Relative files resolve against `site_dir`.
    pub fn from_values(
        env_level: Option<&str>,
        env_file: Option<&str>,
        handler_level: Option<&str>,
        handler_file: Option<&str>,
        site_dir: &Path,
    ) -> Self {
        let level_text = handler_level
            .filter(|v| !v.trim().is_empty())
            .or(env_level.filter(|v| !v.trim().is_empty()));
        let file_text = handler_file
            .filter(|v| !v.trim().is_empty())
            .or(env_file.filter(|v| !v.trim().is_empty()));
        let p = level_text.map(parse_list).unwrap_or_default();
        let wants_file = p.file || file_text.is_some();
        if !p.any && file_text.is_none() {
            return Self::default();
        }
        let level = p.level.or(Some(DebugLevel::Info));
        let file = wants_file.then(|| {
            let name = file_text.unwrap_or(DEFAULT_FILE);
            let name = if cfg!(windows) {
                name.to_owned()
            } else {
                name.replace('\\', "/")
            };
            site_dir
                .join(name)
                .components()
                .filter(|c| !matches!(c, std::path::Component::CurDir))
                .collect()
        });
        let console = p.console || (!wants_file && !p.eventlog);
        Self {
            level,
            console,
            file,
            eventlog: p.eventlog,
        }
    }

    /// From the gateway's environment and (when loaded) the configuration's handler settings.
    pub fn from_env_and_config(config: Option<&AspNetCoreConfig>, site_dir: &Path) -> Self {
        let env_level = std::env::var(ancm_protocol::env::MODULE_DEBUG).ok();
        let env_file = std::env::var(ancm_protocol::env::MODULE_DEBUG_FILE).ok();
        Self::from_values(
            env_level.as_deref(),
            env_file.as_deref(),
            config.and_then(|c| c.handler_setting("debugLevel")),
            config.and_then(|c| c.handler_setting("debugFile")),
            site_dir,
        )
    }

    /// Whether anything is to be logged.
    pub fn is_enabled(&self) -> bool {
        self.level.is_some() && (self.console || self.file.is_some())
    }

    /// A layer writing the `ancm*` crates' events at the configured level to the configured
    /// sinks, or `None` when the debug log is off. Creates the file's folders; the file is
    /// opened for append.
    pub fn layer<S>(&self) -> std::io::Result<Option<Box<dyn Layer<S> + Send + Sync + 'static>>>
    where
        S: tracing::Subscriber + for<'a> LookupSpan<'a> + Send + Sync,
    {
        let Some(level) = self.level.filter(|_| self.is_enabled()) else {
            return Ok(None);
        };
        let filter = level.filter();
        let ours = tracing_subscriber::filter::filter_fn(move |meta| {
            meta.target().starts_with("ancm") && *meta.level() <= filter
        });
        let mut layers: Vec<Box<dyn Layer<S> + Send + Sync + 'static>> = Vec::new();
        if self.console {
            layers.push(
                tracing_subscriber::fmt::layer()
                    .with_writer(std::io::stderr)
                    .with_filter(ours.clone())
                    .boxed(),
            );
        }
        if let Some(path) = &self.file {
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)?;
            layers.push(
                tracing_subscriber::fmt::layer()
                    .with_ansi(false)
                    .with_writer(std::sync::Mutex::new(file))
                    .with_filter(ours)
                    .boxed(),
            );
        }
        Ok(Some(Box::new(layers)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(level: Option<&str>, file: Option<&str>) -> DebugLogSettings {
        DebugLogSettings::from_values(level, file, None, None, Path::new("/site"))
    }

    #[test]
    fn levels_and_sinks() {
        assert_eq!(s(None, None), DebugLogSettings::default());
        assert!(!s(None, None).is_enabled());
        let t = s(Some("TRACE"), None);
        assert_eq!(t.level, Some(DebugLevel::Trace));
        assert!(t.console && t.file.is_none());
        let c = s(Some("console"), None);
        assert_eq!(c.level, Some(DebugLevel::Info));
        assert!(c.console);
        let e = s(Some("err,warn,file"), None);
        assert_eq!(e.level, Some(DebugLevel::Warning));
        assert!(!e.console);
        if !cfg!(windows) {
            assert_eq!(e.file, Some(PathBuf::from("/site/aspnetcore-debug.log")));
            let f = s(None, Some(r".\logs\debug.txt"));
            assert_eq!(f.file, Some(PathBuf::from("/site/logs/debug.txt")));
            assert_eq!(f.level, Some(DebugLevel::Info));
        }
        let ev = s(Some("eventlog"), None);
        assert!(ev.eventlog && !ev.is_enabled());
        assert_eq!(s(Some("bogus"), None), DebugLogSettings::default());
    }

    #[test]
    fn handler_settings_win() {
        let x = DebugLogSettings::from_values(
            Some("error,console"),
            None,
            Some("trace,file"),
            Some("/abs/x.log"),
            Path::new("/site"),
        );
        assert_eq!(x.level, Some(DebugLevel::Trace));
        assert!(!x.console);
        assert_eq!(x.file, Some(PathBuf::from("/abs/x.log")));
    }

    #[test]
    fn file_layer_writes() {
        use tracing_subscriber::prelude::*;
        let dir = tempfile::tempdir().expect("tempdir");
        let st = DebugLogSettings::from_values(
            Some("info,file"),
            Some("sub/d.log"),
            None,
            None,
            dir.path(),
        );
        let layer = st
            .layer::<tracing_subscriber::Registry>()
            .expect("io")
            .expect("enabled");
        let sub = tracing_subscriber::registry().with(layer);
        tracing::subscriber::with_default(sub, || {
            tracing::info!(target: "ancm_hosting::x", "hello debug log");
            tracing::debug!(target: "ancm_hosting::x", "too verbose");
            tracing::error!(target: "other", "not ours");
        });
        let text = std::fs::read_to_string(dir.path().join("sub/d.log")).expect("read");
        assert!(text.contains("hello debug log"));
        assert!(!text.contains("too verbose"));
        assert!(!text.contains("not ours"));
    }
}
