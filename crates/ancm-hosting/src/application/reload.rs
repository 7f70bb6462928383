//! Watching the site folder: app_offline.htm and web.config, seen by a notify watcher and by
//! a check on requests at most every 200 ms (protocol §1.1), and the recycle a valid
//! web.config change starts.
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Instant, SystemTime};

use super::{Generation, Inner, WEB_CONFIG};
use crate::app_offline::{self, Change};
use crate::config;
use crate::supervisor::{LaunchSpec, Supervisor};
use crate::sync;

/// How often a request may look at app_offline.htm and web.config (protocol §1.1: 200 ms).
const CHECK_INTERVAL_MS: u64 = 200;

/// What identifies a version of web.config: modification time, length and content hash.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp {
    mtime: Option<SystemTime>,
    len: u64,
    hash: Option<u64>,
}

impl Stamp {
    fn quick(path: &Path) -> Option<Stamp> {
        let m = std::fs::metadata(path).ok()?;
        Some(Stamp {
            mtime: m.modified().ok(),
            len: m.len(),
            hash: None,
        })
    }

    fn full(path: &Path) -> Option<Stamp> {
        use std::hash::{Hash, Hasher};
        let mut s = Self::quick(path)?;
        let bytes = std::fs::read(path).ok()?;
        let mut h = std::collections::hash_map::DefaultHasher::new();
        bytes.hash(&mut h);
        s.hash = Some(h.finish());
        Some(s)
    }

    fn same_file_state(&self, other: &Stamp) -> bool {
        self.mtime == other.mtime && self.len == other.len
    }
}

/// What the file checks keep between runs.
pub(super) struct Files {
    /// `<site>/web.config`; `None` when the configuration was given in code.
    web_config: Option<PathBuf>,
    /// The start of the clock the per-request check counts in.
    base: Instant,
    /// When the per-request check last ran, in ms since `base`.
    last_check: AtomicU64,
    /// The version of web.config in use.
    stamp: Mutex<Option<Stamp>>,
    /// The notify watcher, while watching.
    watcher: Mutex<Option<notify::RecommendedWatcher>>,
}

impl Files {
    /// Records the version of `web_config` read at start.
    pub(super) fn new(web_config: Option<PathBuf>) -> Self {
        let stamp = web_config.as_deref().and_then(Stamp::full);
        Self {
            web_config,
            base: Instant::now(),
            last_check: AtomicU64::new(0),
            stamp: Mutex::new(stamp),
            watcher: Mutex::new(None),
        }
    }
}

impl Inner {
    /// The per-request check, at most every 200 ms.
    pub(super) fn poll_files(self: &Arc<Self>) {
        let files = &self.files;
        let now = u64::try_from(files.base.elapsed().as_millis()).unwrap_or(u64::MAX);
        let last = files.last_check.load(Ordering::Relaxed);
        if now.saturating_sub(last) < CHECK_INTERVAL_MS
            || files
                .last_check
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        self.check_offline();
        if let Some(path) = &files.web_config {
            let quick = Stamp::quick(path);
            let in_use = sync::lock(&files.stamp).clone();
            let changed = match (in_use, &quick) {
                (Some(old), Some(new)) => !old.same_file_state(new),
                (None, None) => false,
                _ => true,
            };
            if changed {
                self.spawn_reload();
            }
        }
    }

    /// Follows app_offline.htm: stops the children when it appears, gives the next request a
    /// fresh supervisor when it goes.
    pub(super) fn check_offline(self: &Arc<Self>) {
        let _t = sync::lock(&self.transition);
        if self.shutting_down.load(Ordering::Acquire) {
            return;
        }
        match self.offline.check() {
            Change::None => {}
            Change::WentOffline => {
                tracing::info!(file = %self.offline.path().display(), "app_offline.htm detected; stopping the application's processes");
                if let Generation::Running { supervisor, .. } = &*self.current() {
                    let supervisor = supervisor.clone();
                    self.spawn_pending(async move { supervisor.stop().await });
                }
            }
            Change::CameOnline => {
                tracing::info!(file = %self.offline.path().display(), "app_offline.htm removed; the next request starts the application");
                let current = self.current();
                if let Generation::Running {
                    config, detailed, ..
                } = &*current
                {
                    let spec = LaunchSpec::new(config, &self.context, &config::process_env);
                    self.set_state(Arc::new(Generation::Running {
                        config: config.clone(),
                        supervisor: Supervisor::new(spec),
                        detailed: *detailed,
                    }));
                }
            }
        }
    }

    fn spawn_reload(self: &Arc<Self>) {
        let this = self.clone();
        self.runtime.spawn(async move { this.reload().await });
    }

    /// Re-reads web.config if it changed; recycles on a valid change.
    async fn reload(self: Arc<Self>) {
        let Some(path) = self.files.web_config.clone() else {
            return;
        };
        let _guard = self.reload_lock.lock().await;
        if self.shutting_down.load(Ordering::Acquire) {
            return;
        }
        let stamp = Stamp::full(&path);
        {
            let mut s = sync::lock(&self.files.stamp);
            if *s == stamp {
                return;
            }
            *s = stamp;
        }
        let loaded = config::load(&path);
        let current = self.current();
        match (loaded, &*current) {
            (Err(error), Generation::Running { .. }) => {
                let (line, column) = error.location().map_or((0, 0), |l| (l.line, l.column));
                tracing::error!(%error, line, column, "web.config changed but is invalid; keeping the current configuration");
            }
            (loaded, Generation::Invalid { .. }) => {
                if loaded.is_ok() {
                    tracing::info!(file = %path.display(), "web.config is valid again");
                }
                let generation = self.generation_for(loaded);
                self.set_state(generation);
            }
            (
                Ok(config),
                Generation::Running {
                    supervisor: old,
                    config: old_config,
                    ..
                },
            ) => {
                let generation = self.generation_for(Ok(config));
                let Generation::Running {
                    supervisor: new, ..
                } = &*generation
                else {
                    return;
                };
                let new = new.clone();
                let fixed_port = old.spec().has_fixed_port() || new.spec().has_fixed_port();
                tracing::info!(file = %path.display(), processes = old_config.processes_per_application, "web.config changed; recycling the application");
                if fixed_port {
                    // Both generations would need the same port: stop first (with downtime).
                    old.stop().await;
                } else if !self.offline.is_offline()
                    && let Err(failure) = new.start_all().await
                {
                    tracing::error!(error = %failure.error, "the new configuration's process failed to start; switching to it anyway");
                }
                {
                    let _t = sync::lock(&self.transition);
                    self.set_state(generation.clone());
                    if self.offline.is_offline() || self.shutting_down.load(Ordering::Acquire) {
                        let new = new.clone();
                        self.spawn_pending(async move { new.stop().await });
                    }
                }
                tracing::info!(
                    "switched requests to the new configuration; stopping the old processes"
                );
                // Requests that picked an old backend just before the switch reach it first:
                // the stop waits for them (bounded).
                old.stop().await;
            }
        }
    }

    /// Watches the site folder; on failure the per-request check is all there is.
    pub(super) fn start_watcher(self: &Arc<Self>) {
        use notify::Watcher as _;
        let weak: Weak<Inner> = Arc::downgrade(self);
        let handler = move |res: notify::Result<notify::Event>| {
            let Some(inner) = weak.upgrade() else { return };
            let relevant = match &res {
                Ok(ev) => {
                    ev.need_rescan()
                        || ev.paths.iter().any(|p| {
                            p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                                n.eq_ignore_ascii_case(app_offline::FILE_NAME)
                                    || n.eq_ignore_ascii_case(WEB_CONFIG)
                            })
                        })
                }
                Err(_) => true,
            };
            if relevant {
                inner.check_offline();
                if inner.files.web_config.is_some() {
                    inner.spawn_reload();
                }
            }
        };
        let site_dir = &self.context.site_dir;
        match notify::recommended_watcher(handler) {
            Ok(mut w) => match w.watch(site_dir, notify::RecursiveMode::NonRecursive) {
                Ok(()) => {
                    *sync::lock(&self.files.watcher) = Some(w);
                }
                Err(error) => {
                    tracing::warn!(site = %site_dir.display(), %error, "could not watch the site folder; relying on per-request checks");
                }
            },
            Err(error) => {
                tracing::warn!(%error, "could not create a file watcher; relying on per-request checks");
            }
        }
    }

    /// Stops the watcher (at shutdown).
    pub(super) fn stop_watcher(&self) {
        sync::lock(&self.files.watcher).take();
    }
}
