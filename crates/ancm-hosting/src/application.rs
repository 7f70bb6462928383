//! One hosted application: its web.config, its backend processes, app_offline.htm, and the
//! tower layer that answers for them (contract §1.1, §1.7, §1.8, §2).
//!
//! [`Application::new`] reads `<site>/web.config` and watches the site folder;
//! [`Application::layer`] gives a layer whose service, for each request, answers
//! 503 with `app_offline.htm`, 500.0 for an unusable web.config, 502.5 when the backend
//! cannot be started, 503 while stopping — or picks a ready backend (starting it on first
//! use), inserts its [`BackendTarget`] into the request extensions and calls the inner
//! service (the front layers and the forwarder).
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use ancm_hosting::application::{Application, ApplicationOptions};
//! let app = Application::new(ApplicationOptions::new("/srv/site"))?;
//! let layer = app.layer(); // wrap the front layers + forwarder with it
//! # let _ = layer;
//! // ... serve ...
//! app.shutdown().await; // graceful stop of every child
//! # Ok(()) }
//! ```
//!
//! # Decisions where the contract is silent
//!
//! * A web.config change starts the new children and waits until they are ready before
//!   switching requests to them and stopping the old ones gracefully. If the new children
//!   fail to start, requests switch anyway (and get 502.5, as ANCM would give for the new
//!   configuration). When `ASPNETCORE_PORT` is fixed in web.config the old and new children
//!   cannot share the port, so the old ones are stopped first.
//! * An invalid web.config at start gives 500.0 (`configuration_error`) until it is fixed; the
//!   error text is shown only when detailed errors are enabled.
//! * When app_offline.htm disappears, the next request starts a fresh child with the current
//!   configuration.
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime};

use ancm_front::error_page::ErrorPage;
use ancm_front::{BackendTarget, Body, RequestTimeout};
use ancm_protocol::AppPath;
use ancm_protocol::http_auth::HttpAuth;
use http::{Request, Response};
use tower_layer::Layer;
use tower_service::Service;

use crate::app_offline::{AppOffline, Change};
use crate::config::{self, AspNetCoreConfig, ConfigError};
use crate::supervisor::command::{PortChoice, detailed_errors};
use crate::supervisor::{LaunchContext, LaunchSpec, StartError, StartFailure, Supervisor};

/// How often a request may look at app_offline.htm and web.config (contract §1.1: 200 ms).
const CHECK_INTERVAL_MS: u64 = 200;

/// How long old backends keep running after requests switched to new ones.
const SWITCH_DRAIN: Duration = Duration::from_millis(500);

/// The web.config file name.
pub const WEB_CONFIG: &str = "web.config";

/// What [`Application::new`] needs.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ApplicationOptions {
    /// The site folder (physical path): web.config, app_offline.htm, working directory.
    pub site_dir: PathBuf,
    /// The application's virtual path (`ASPNETCORE_APPL_PATH`), `/` by default.
    pub app_path: AppPath,
    /// Force detailed errors on or off; `None` follows contract §1.8 (env, then web.config).
    pub detailed_errors: Option<bool>,
    /// Authentication methods told to the child (`ASPNETCORE_IIS_HTTPAUTH`); default
    /// anonymous only.
    pub http_auth: HttpAuth,
    /// `ASPNETCORE_IIS_WEBSOCKETS_SUPPORTED`; default true.
    pub websockets_supported: bool,
    /// Watch the site folder for app_offline.htm and web.config changes; default true (the
    /// per-request check runs either way).
    pub watch: bool,
}

impl ApplicationOptions {
    /// Defaults for a site folder at app path `/`.
    pub fn new(site_dir: impl Into<PathBuf>) -> Self {
        Self {
            site_dir: site_dir.into(),
            app_path: AppPath::root(),
            detailed_errors: None,
            http_auth: HttpAuth {
                windows: false,
                basic: false,
                anonymous: true,
            },
            websockets_supported: true,
            watch: true,
        }
    }

    /// Sets the application's virtual path.
    pub fn app_path(mut self, app_path: AppPath) -> Self {
        self.app_path = app_path;
        self
    }

    /// Forces detailed errors on or off.
    pub fn detailed_errors(mut self, on: bool) -> Self {
        self.detailed_errors = Some(on);
        self
    }

    /// Turns the file watcher on or off.
    pub fn watch(mut self, on: bool) -> Self {
        self.watch = on;
        self
    }
}

/// Why an [`Application`] could not be created (web.config errors are not among them: they
/// are served as 500.0).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApplicationError {
    /// The site folder does not exist or is not a directory.
    #[error("site folder {} is not a directory", path.display())]
    SiteDir {
        /// The path given.
        path: PathBuf,
    },
    /// Not called inside a Tokio runtime.
    #[error("an Application must be created inside a Tokio runtime")]
    NoRuntime,
}

#[derive(Debug)]
enum Generation {
    Running {
        config: Arc<AspNetCoreConfig>,
        supervisor: Supervisor,
        detailed: bool,
    },
    Invalid {
        error: ConfigError,
        detailed: bool,
    },
}

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

/// Builds the generation for a load result; warns once about in-process settings (§8.6).
fn make_generation(
    ctx: &LaunchContext,
    detailed_override: Option<bool>,
    loaded: Result<AspNetCoreConfig, ConfigError>,
) -> Arc<Generation> {
    match loaded {
        Ok(config) => {
            for warning in config.warnings() {
                tracing::warn!(site = %ctx.site_dir.display(), "{warning}");
            }
            let spec = LaunchSpec::new(&config, ctx, &config::process_env);
            let detailed = detailed_override
                .unwrap_or_else(|| detailed_errors(&spec.config_env, &process_env));
            Arc::new(Generation::Running {
                config: Arc::new(config),
                supervisor: Supervisor::new(spec),
                detailed,
            })
        }
        Err(error) => {
            tracing::error!(%error, "could not load the configuration; requests get 500.0 until web.config is fixed");
            let detailed = detailed_override.unwrap_or_else(|| detailed_errors(&[], &process_env));
            Arc::new(Generation::Invalid { error, detailed })
        }
    }
}

struct Inner {
    site_dir: PathBuf,
    app_path: AppPath,
    options: ApplicationOptions,
    web_config: Option<PathBuf>,
    ctx: LaunchContext,
    state: RwLock<Arc<Generation>>,
    offline: AppOffline,
    base: Instant,
    last_check: AtomicU64,
    stamp: Mutex<Option<Stamp>>,
    transition: Mutex<()>,
    reload_lock: tokio::sync::Mutex<()>,
    shutting_down: AtomicBool,
    pending: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    runtime: tokio::runtime::Handle,
    watcher: Mutex<Option<notify::RecommendedWatcher>>,
    extra_link: Option<String>,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application")
            .field("site_dir", &self.site_dir)
            .field("app_path", &self.app_path)
            .finish_non_exhaustive()
    }
}

/// One hosted application. Cheap to clone (shared state).
#[derive(Debug, Clone)]
pub struct Application {
    inner: Arc<Inner>,
}

fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

impl Application {
    /// Reads `<site_dir>/web.config` (an invalid one is served as 500.0 until fixed), checks
    /// app_offline.htm and starts the watcher. Must be called inside a Tokio runtime; no
    /// process starts before the first request.
    pub fn new(options: ApplicationOptions) -> Result<Self, ApplicationError> {
        let path = options.site_dir.join(WEB_CONFIG);
        let initial = config::load(&path);
        Self::build(options, Some(path), initial)
    }

    /// Uses `config` as is, with no web.config (for embedding and tests); app_offline.htm is
    /// still honoured.
    pub fn with_config(
        options: ApplicationOptions,
        config: AspNetCoreConfig,
    ) -> Result<Self, ApplicationError> {
        Self::build(options, None, Ok(config))
    }

    fn build(
        options: ApplicationOptions,
        web_config: Option<PathBuf>,
        initial: Result<AspNetCoreConfig, ConfigError>,
    ) -> Result<Self, ApplicationError> {
        let runtime =
            tokio::runtime::Handle::try_current().map_err(|_| ApplicationError::NoRuntime)?;
        if !options.site_dir.is_dir() {
            tracing::error!(site = %options.site_dir.display(), "the site folder is not a directory");
            return Err(ApplicationError::SiteDir {
                path: options.site_dir.clone(),
            });
        }
        // An absolute site path keeps the child's working directory and log paths stable.
        let site_dir =
            std::fs::canonicalize(&options.site_dir).unwrap_or_else(|_| options.site_dir.clone());
        let ctx = LaunchContext {
            site_dir: site_dir.clone(),
            app_path: options.app_path.clone(),
            http_auth: options.http_auth.env_value(),
            websockets: options.websockets_supported,
        };
        let stamp = web_config.as_deref().and_then(Stamp::full);
        let generation = make_generation(&ctx, options.detailed_errors, initial);
        let inner = Arc::new(Inner {
            offline: AppOffline::new(&site_dir),
            site_dir,
            app_path: options.app_path.clone(),
            web_config,
            ctx,
            state: RwLock::new(generation),
            base: Instant::now(),
            last_check: AtomicU64::new(0),
            stamp: Mutex::new(stamp),
            transition: Mutex::new(()),
            reload_lock: tokio::sync::Mutex::new(()),
            shutting_down: AtomicBool::new(false),
            pending: Mutex::new(Vec::new()),
            runtime,
            watcher: Mutex::new(None),
            extra_link: process_env(ancm_protocol::env::ANCM_ADDITIONAL_ERROR_PAGE_LINK)
                .filter(|l| !l.is_empty()),
            options,
        });
        if inner.offline.check() == Change::WentOffline {
            tracing::info!(file = %inner.offline.path().display(), "app_offline.htm present at start; serving it");
        }
        if inner.options.watch {
            inner.start_watcher();
        }
        Ok(Application { inner })
    }

    /// The tower layer for the gateway's stack.
    pub fn layer(&self) -> ApplicationLayer {
        ApplicationLayer { app: self.clone() }
    }

    /// The site folder (absolute).
    pub fn site_dir(&self) -> &Path {
        &self.inner.site_dir
    }

    /// The application's virtual path.
    pub fn app_path(&self) -> &AppPath {
        &self.inner.app_path
    }

    /// The configuration in use, `None` while web.config is invalid.
    pub fn config(&self) -> Option<Arc<AspNetCoreConfig>> {
        match &*self.inner.current() {
            Generation::Running { config, .. } => Some(config.clone()),
            Generation::Invalid { .. } => None,
        }
    }

    /// The web.config error being served as 500.0, if any.
    pub fn config_error(&self) -> Option<ConfigError> {
        match &*self.inner.current() {
            Generation::Running { .. } => None,
            Generation::Invalid { error, .. } => Some(error.clone()),
        }
    }

    /// `requestTimeout` of the current configuration (2 minutes when there is none).
    pub fn request_timeout(&self) -> Duration {
        self.config()
            .map_or(RequestTimeout::WEB_CONFIG_DEFAULT, |c| c.request_timeout)
    }

    /// `forwardWindowsAuthToken` of the current configuration (true when there is none).
    pub fn forward_windows_auth_token(&self) -> bool {
        self.config().is_none_or(|c| c.forward_windows_auth_token)
    }

    /// Whether app_offline.htm is being served.
    pub fn is_offline(&self) -> bool {
        self.inner.offline.is_offline()
    }

    /// Pids of the children currently serving requests (diagnostics and tests).
    pub fn backend_pids(&self) -> Vec<u32> {
        match &*self.inner.current() {
            Generation::Running { supervisor, .. } => supervisor.pids(),
            Generation::Invalid { .. } => Vec::new(),
        }
    }

    /// The admission decision for one request: a ready backend (started if needed), or the
    /// response to send instead (503 app_offline / 500.0 / 502.5 / 503).
    pub async fn backend(&self) -> Result<BackendTarget, Response<Body>> {
        self.inner.admit().await
    }

    /// Stops every child gracefully (HTTP shutdown message, signals, then kill after
    /// `shutdownTimeLimit`) and waits until they are gone; afterwards requests get 503.
    pub async fn shutdown(&self) {
        let inner = &self.inner;
        if inner.shutting_down.swap(true, Ordering::AcqRel) {
            tracing::debug!("shutdown already requested");
        }
        if let Ok(mut w) = inner.watcher.lock() {
            w.take();
        }
        tracing::info!(site = %inner.site_dir.display(), "stopping the application");
        if let Generation::Running { supervisor, .. } = &*inner.current() {
            supervisor.stop().await;
        }
        // A reload in progress notices the flag and stops what it started.
        let _reload = inner.reload_lock.lock().await;
        if let Generation::Running { supervisor, .. } = &*inner.current() {
            supervisor.stop().await;
        }
        let pending: Vec<_> = inner
            .pending
            .lock()
            .map(|mut p| std::mem::take(&mut *p))
            .unwrap_or_default();
        for p in pending {
            let _ = p.await;
        }
        tracing::info!(site = %inner.site_dir.display(), "application stopped");
    }
}

impl Inner {
    fn current(&self) -> Arc<Generation> {
        match self.state.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn set_state(&self, g: Arc<Generation>) -> Arc<Generation> {
        match self.state.write() {
            Ok(mut w) => std::mem::replace(&mut *w, g),
            Err(poisoned) => std::mem::replace(&mut *poisoned.into_inner(), g),
        }
    }

    fn generation_for(&self, loaded: Result<AspNetCoreConfig, ConfigError>) -> Arc<Generation> {
        make_generation(&self.ctx, self.options.detailed_errors, loaded)
    }

    fn spawn_pending(&self, fut: impl Future<Output = ()> + Send + 'static) {
        let handle = self.runtime.spawn(fut);
        if let Ok(mut p) = self.pending.lock() {
            p.retain(|h| !h.is_finished());
            p.push(handle);
        }
    }

    /// The per-request check, at most every 200 ms.
    fn poll_files(self: &Arc<Self>) {
        let now = u64::try_from(self.base.elapsed().as_millis()).unwrap_or(u64::MAX);
        let last = self.last_check.load(Ordering::Relaxed);
        if now.saturating_sub(last) < CHECK_INTERVAL_MS
            || self
                .last_check
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        self.check_offline();
        if let Some(path) = &self.web_config {
            let quick = Stamp::quick(path);
            let changed = match (self.stamp.lock().ok().and_then(|s| s.clone()), &quick) {
                (Some(old), Some(new)) => !old.same_file_state(new),
                (None, None) => false,
                _ => true,
            };
            if changed {
                self.spawn_reload();
            }
        }
    }

    fn check_offline(self: &Arc<Self>) {
        let Ok(_t) = self.transition.lock() else {
            return;
        };
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
                    let spec = LaunchSpec::new(config, &self.ctx, &config::process_env);
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
        let Some(path) = self.web_config.clone() else {
            return;
        };
        let _guard = self.reload_lock.lock().await;
        if self.shutting_down.load(Ordering::Acquire) {
            return;
        }
        let stamp = Stamp::full(&path);
        {
            let Ok(mut s) = self.stamp.lock() else { return };
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
                let fixed_port = matches!(old.spec().port, Ok(PortChoice::Fixed { .. }))
                    || matches!(new.spec().port, Ok(PortChoice::Fixed { .. }));
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
                    let _t = self.transition.lock();
                    self.set_state(generation.clone());
                    if self.offline.is_offline() || self.shutting_down.load(Ordering::Acquire) {
                        let new = new.clone();
                        self.spawn_pending(async move { new.stop().await });
                    }
                }
                tracing::info!(
                    "switched requests to the new configuration; stopping the old processes"
                );
                // Requests that picked an old backend just before the switch still have to
                // reach it before it stops listening.
                tokio::time::sleep(SWITCH_DRAIN).await;
                old.stop().await;
            }
        }
    }

    fn start_watcher(self: &Arc<Self>) {
        use notify::Watcher as _;
        let weak: Weak<Inner> = Arc::downgrade(self);
        let handler = move |res: notify::Result<notify::Event>| {
            let Some(inner) = weak.upgrade() else { return };
            let relevant = match &res {
                Ok(ev) => {
                    ev.need_rescan()
                        || ev.paths.iter().any(|p| {
                            p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                                n.eq_ignore_ascii_case(crate::app_offline::FILE_NAME)
                                    || n.eq_ignore_ascii_case(WEB_CONFIG)
                            })
                        })
                }
                Err(_) => true,
            };
            if relevant {
                inner.check_offline();
                if inner.web_config.is_some() {
                    inner.spawn_reload();
                }
            }
        };
        match notify::recommended_watcher(handler) {
            Ok(mut w) => match w.watch(&self.site_dir, notify::RecursiveMode::NonRecursive) {
                Ok(()) => {
                    if let Ok(mut slot) = self.watcher.lock() {
                        *slot = Some(w);
                    }
                }
                Err(error) => {
                    tracing::warn!(site = %self.site_dir.display(), %error, "could not watch the site folder; relying on per-request checks");
                }
            },
            Err(error) => {
                tracing::warn!(%error, "could not create a file watcher; relying on per-request checks");
            }
        }
    }

    async fn admit(self: &Arc<Self>) -> Result<BackendTarget, Response<Body>> {
        self.poll_files();
        for _ in 0..4 {
            if self.shutting_down.load(Ordering::Acquire) {
                return Err(ErrorPage::shutting_down().into_response());
            }
            if self.offline.is_offline() {
                return Err(self.offline.response());
            }
            let generation = self.current();
            match &*generation {
                Generation::Invalid { error, detailed } => {
                    let mut page = ErrorPage::configuration_error();
                    if *detailed {
                        page = page.with_detail(error.to_string());
                    }
                    return Err(self.finish_page(page).into_response());
                }
                Generation::Running {
                    config,
                    supervisor,
                    detailed,
                } => match supervisor.acquire().await {
                    Ok(target) => return Ok(target),
                    Err(failure) if failure.error == StartError::Stopping => {
                        // A recycle or app_offline switched generations under us: look again.
                        if Arc::ptr_eq(&generation, &self.current()) {
                            tokio::time::sleep(Duration::from_millis(10)).await;
                        }
                    }
                    Err(failure) => {
                        return Err(self.startup_failure(config, *detailed, &failure));
                    }
                },
            }
        }
        if self.offline.is_offline() {
            return Err(self.offline.response());
        }
        Err(ErrorPage::shutting_down().into_response())
    }

    fn finish_page(&self, page: ErrorPage) -> ErrorPage {
        match &self.extra_link {
            Some(link) => page.with_extra_link(link.clone()),
            None => page,
        }
    }

    fn startup_failure(
        &self,
        config: &AspNetCoreConfig,
        detailed: bool,
        failure: &StartFailure,
    ) -> Response<Body> {
        let page = ErrorPage::startup_failure();
        if config.disable_startup_error_page {
            return page.into_bare_response();
        }
        let page = if detailed {
            page.with_detail(failure.detail())
        } else {
            page
        };
        self.finish_page(page).into_response()
    }
}

/// Layer of [`Application`]: see the module docs.
#[derive(Debug, Clone)]
pub struct ApplicationLayer {
    app: Application,
}

impl<S> Layer<S> for ApplicationLayer {
    type Service = ApplicationService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ApplicationService {
            app: self.app.clone(),
            inner,
        }
    }
}

/// Service of [`ApplicationLayer`]: admission, backend selection, then the inner service.
#[derive(Debug, Clone)]
pub struct ApplicationService<S> {
    app: Application,
    inner: S,
}

impl<S, B> Service<Request<B>> for ApplicationService<S>
where
    S: Service<Request<B>, Response = Response<Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, S::Error>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // Readiness of the inner service is awaited in the call, on the clone that serves it.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let app = self.app.inner.clone();
        Box::pin(async move {
            match app.admit().await {
                Ok(target) => {
                    req.extensions_mut().insert(target);
                    std::future::poll_fn(|cx| inner.poll_ready(cx)).await?;
                    inner.call(req).await
                }
                Err(resp) => Ok(resp),
            }
        })
    }
}
