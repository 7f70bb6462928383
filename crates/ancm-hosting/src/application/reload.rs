//! Watching the site folder: app_offline.htm and web.config, seen by a notify watcher and by
//! a check on requests at most every 200 ms (protocol §1.1), and the recycle a web.config
//! change starts.
//!
//! Only what can change a file's content or presence counts: creation, writes, renames and
//! removal (and, for app_offline.htm, a change of attributes such as `touch`). Reading a
//! file is an event too on some platforms (inotify's open and close-after-read); reacting to
//! it would make every reader of web.config — an editor, `ancm check`, a backup, the gateway
//! itself, a second gateway on the same folder — start another read, for ever. Events are
//! collected for [`DEBOUNCE`] before anything is looked at, so an editor's save or a deploy
//! is handled once, and web.config is recycled only when its parsed configuration differs
//! from the one in use. The per-request check only stats the files; all file I/O runs on
//! blocking threads, never on the runtime's.
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use super::{Generation, Inner, WEB_CONFIG, read_web_config};
use crate::app_offline::{self, Change};
use crate::config::{self, AspNetCoreConfig};
use crate::file_stamp::FileStamp;
use crate::status::ExitCause;
use crate::supervisor::{LaunchSpec, Supervisor};
use crate::sync;

/// How often a request may look at app_offline.htm and web.config (protocol §1.1: 200 ms).
const CHECK_INTERVAL_MS: u64 = 200;

/// How long the watcher collects events before it looks at the files.
const DEBOUNCE: Duration = Duration::from_millis(100);

/// What the file checks keep between runs.
pub(super) struct Files {
    /// `<site>/web.config`; `None` when the configuration was given in code.
    web_config: Option<PathBuf>,
    /// The start of the clock the per-request check counts in.
    base: Instant,
    /// When the per-request check last ran, in ms since `base`.
    last_check: AtomicU64,
    /// web.config as it was on disk when last read, so that the per-request check needs
    /// only a `stat` to know nothing changed.
    seen: Mutex<Option<FileStamp>>,
    /// A reload is waiting for its turn: another request for one adds nothing.
    reload_queued: AtomicBool,
    /// The notify watcher, while watching.
    watcher: Mutex<Option<notify::RecommendedWatcher>>,
}

impl Files {
    /// `web_config` with the stamp it had when it was read at start.
    pub(super) fn new(web_config: Option<(PathBuf, Option<FileStamp>)>) -> Self {
        let (web_config, seen) = match web_config {
            Some((path, stamp)) => (Some(path), stamp),
            None => (None, None),
        };
        Self {
            web_config,
            base: Instant::now(),
            last_check: AtomicU64::new(0),
            seen: Mutex::new(seen),
            reload_queued: AtomicBool::new(false),
            watcher: Mutex::new(None),
        }
    }
}

/// Which files an event concerns.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Concern {
    offline: bool,
    config: bool,
}

impl Concern {
    const BOTH: Concern = Concern {
        offline: true,
        config: true,
    };

    fn merge(self, other: Concern) -> Concern {
        Concern {
            offline: self.offline || other.offline,
            config: self.config || other.config,
        }
    }

    fn any(self) -> bool {
        self.offline || self.config
    }
}

/// What a watcher event means for the two files: only changes of content or presence
/// count, and attribute changes for app_offline.htm; reads never do.
fn concern(event: &notify::Result<notify::Event>) -> Concern {
    use notify::EventKind;
    use notify::event::{AccessKind, AccessMode, ModifyKind};
    let event = match event {
        Ok(event) if !event.need_rescan() => event,
        // Events were lost or the watcher failed: look at both.
        _ => return Concern::BOTH,
    };
    let (content, attributes) = match event.kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => (true, false),
        EventKind::Access(_) => return Concern::default(),
        EventKind::Modify(ModifyKind::Metadata(_)) => (false, true),
        EventKind::Create(_)
        | EventKind::Modify(_)
        | EventKind::Remove(_)
        | EventKind::Any
        | EventKind::Other => (true, false),
    };
    let named = |name: &str| {
        event.paths.iter().any(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.eq_ignore_ascii_case(name))
        })
    };
    Concern {
        offline: (content || attributes) && named(app_offline::FILE_NAME),
        config: content && named(WEB_CONFIG),
    }
}

/// Two configurations that start the same children and apply the same limits: everything
/// but where in the file the element is.
fn same_settings(a: &AspNetCoreConfig, b: &AspNetCoreConfig) -> bool {
    let mut a = a.clone();
    a.location = b.location.clone();
    a == *b
}

impl Inner {
    /// The per-request check, at most every 200 ms: app_offline.htm, and a `stat` of
    /// web.config (read only when that changed), on a blocking thread.
    pub(super) async fn poll_files(self: &Arc<Self>) {
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
        let this = self.clone();
        let config_changed = tokio::task::spawn_blocking(move || {
            this.check_offline();
            this.web_config_changed()
        })
        .await
        .unwrap_or(false);
        if config_changed {
            self.spawn_reload();
        }
    }

    /// Whether web.config's `stat` differs from the version last read. Blocking.
    fn web_config_changed(&self) -> bool {
        let Some(path) = &self.files.web_config else {
            return false;
        };
        FileStamp::read(path) != *sync::lock(&self.files.seen)
    }

    /// Follows app_offline.htm: stops the children when it appears, gives the next request a
    /// fresh supervisor when it goes. Blocking (reads the file).
    fn check_offline(self: &Arc<Self>) {
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
                    // The stop lets requests already given a child reach it first (bounded).
                    self.spawn_pending(async move { supervisor.stop(ExitCause::Offline).await });
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
                    let supervisor = Supervisor::new(spec);
                    if supervisor.spec().preload {
                        // Preloaded applications do not wait for a request (protocol §8.36).
                        let starting = supervisor.clone();
                        self.spawn_pending(async move {
                            let _ = starting.start_all().await;
                        });
                    }
                    self.set_state(Arc::new(Generation::Running {
                        config: config.clone(),
                        supervisor,
                        detailed: *detailed,
                    }));
                }
            }
        }
    }

    /// Starts a reload unless one is already waiting for its turn. A reload reads web.config
    /// whatever its stamp says.
    pub(super) fn spawn_reload(self: &Arc<Self>) {
        if self.files.web_config.is_none() || self.files.reload_queued.swap(true, Ordering::AcqRel)
        {
            return;
        }
        let this = self.clone();
        self.runtime.spawn(async move { this.reload().await });
    }

    /// Re-reads web.config; recycles when its configuration changed.
    async fn reload(self: Arc<Self>) {
        let Some(path) = self.files.web_config.clone() else {
            return;
        };
        let _guard = self.reload_lock.lock().await;
        // From here on a change needs another reload: this one may have read too early.
        self.files.reload_queued.store(false, Ordering::Release);
        if self.shutting_down.load(Ordering::Acquire) {
            return;
        }
        let read = {
            let path = path.clone();
            // The stamp first: a write after the read then shows as a change next time.
            tokio::task::spawn_blocking(move || (FileStamp::read(&path), read_web_config(&path)))
        };
        let Ok((stamp, (loaded, digest))) = read.await else {
            return;
        };
        *sync::lock(&self.files.seen) = stamp;
        // The digest follows the configuration in use: not an invalid file that is ignored.
        let in_use = !matches!(
            (&loaded, &*self.current()),
            (Err(_), Generation::Running { .. })
        );
        if in_use {
            *sync::lock(&self.web_config_sha256) = digest;
        }
        let current = self.current();
        match (loaded, &*current) {
            (Err(error), Generation::Running { .. }) => {
                let (line, column) = error.location().map_or((0, 0), |l| (l.line, l.column));
                tracing::error!(%error, line, column, "web.config changed but is invalid; keeping the current configuration");
            }
            (Err(error), Generation::Invalid { error: old, .. }) if error == *old => {}
            (Ok(config), Generation::Running { config: old, .. })
                if same_settings(&config, old) =>
            {
                tracing::debug!(file = %path.display(), "web.config was written without a change of configuration; not recycling");
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
                tracing::info!(file = %path.display(), processes = old_config.processes_per_application, cause = %ExitCause::Recycle, "web.config changed; recycling the application");
                let generation = self.generation_for(Ok(config));
                self.switch_to(old, generation, ExitCause::Recycle).await;
            }
        }
    }

    /// The zero-downtime recycle: starts `generation`'s children and waits until they are
    /// ready, switches requests to them, then stops `old`'s children gracefully (letting the
    /// requests given them reach them first) for `cause`. When either fixes
    /// `ASPNETCORE_PORT`, the old children stop first (with downtime). Runs under the reload
    /// lock.
    pub(super) async fn switch_to(
        self: &Arc<Self>,
        old: &Supervisor,
        generation: Arc<Generation>,
        cause: ExitCause,
    ) {
        let Generation::Running {
            supervisor: new, ..
        } = &*generation
        else {
            self.set_state(generation);
            return;
        };
        let new = new.clone();
        let fixed_port = old.spec().has_fixed_port() || new.spec().has_fixed_port();
        self.context.stats.recycled(cause);
        if fixed_port {
            // Both generations would need the same port: stop first (with downtime).
            old.stop(cause).await;
        } else if !self.offline.is_offline()
            && let Err(failure) = new.start_all().await
        {
            tracing::error!(error = %failure.error, %cause, "the new process failed to start; switching to it anyway");
        }
        {
            let _t = sync::lock(&self.transition);
            self.set_state(generation.clone());
            let stop_new = if self.shutting_down.load(Ordering::Acquire) {
                Some(ExitCause::Shutdown)
            } else {
                self.offline.is_offline().then_some(ExitCause::Offline)
            };
            if let Some(stop) = stop_new {
                let new = new.clone();
                self.spawn_pending(async move { new.stop(stop).await });
            }
        }
        tracing::info!(%cause, "switched requests to the new processes; stopping the old ones");
        // Requests that picked an old backend just before the switch reach it first: the
        // stop waits for them (bounded).
        old.stop(cause).await;
    }

    /// Watches the site folder; on failure the per-request check is all there is. The
    /// watcher's callback only passes on what an event concerns; a task on the runtime
    /// collects events for [`DEBOUNCE`], then checks the files on a blocking thread.
    pub(super) fn start_watcher(self: &Arc<Self>) {
        use notify::Watcher as _;
        let (events, pending) = tokio::sync::mpsc::unbounded_channel();
        let handler = move |event: notify::Result<notify::Event>| {
            let concern = concern(&event);
            if concern.any() {
                // The receiver is gone only when the application is.
                let _ = events.send(concern);
            }
        };
        let site_dir = &self.context.site_dir;
        match notify::recommended_watcher(handler) {
            Ok(mut w) => match w.watch(site_dir, notify::RecursiveMode::NonRecursive) {
                Ok(()) => {
                    *sync::lock(&self.files.watcher) = Some(w);
                    self.runtime
                        .spawn(follow_events(Arc::downgrade(self), pending));
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

/// Acts on the watcher's events: waits [`DEBOUNCE`] after the first of a burst, takes
/// everything that arrived meanwhile, then checks what they concern. Ends when the watcher
/// is dropped (shutdown, or the application is gone).
async fn follow_events(
    app: Weak<Inner>,
    mut pending: tokio::sync::mpsc::UnboundedReceiver<Concern>,
) {
    while let Some(first) = pending.recv().await {
        tokio::time::sleep(DEBOUNCE).await;
        let mut concern = first;
        while let Ok(more) = pending.try_recv() {
            concern = concern.merge(more);
        }
        let Some(inner) = app.upgrade() else { return };
        if concern.offline {
            let this = inner.clone();
            let _ = tokio::task::spawn_blocking(move || this.check_offline()).await;
        }
        if concern.config {
            inner.spawn_reload();
        }
    }
}
