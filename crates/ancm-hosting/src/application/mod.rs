//! One hosted application: its web.config, its backend processes, app_offline.htm, and the
//! tower layer that answers for them (protocol §1.1, §1.7, §1.8, §2).
//!
//! [`Application::new`] reads `<site>/web.config` and watches the site folder;
//! [`Application::layer`] gives a layer whose service, for each request, answers
//! 503 with `app_offline.htm`, 500.0 for an unusable web.config, 500.32 for a
//! self-contained Windows publish (protocol §8.32), 502.5 when the backend cannot be
//! started, 503 while stopping — or picks a ready backend (starting it on first
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
//! * Only a change of web.config's parsed configuration recycles: the file written again with
//!   the same settings (same bytes, reformatted, commented) changes nothing, and reading it
//!   is not even looked at. The request limits ([`Application::request_limits`]) are part of
//!   that configuration and follow its recycles.
//! * Stopping a child (app_offline, recycle, shutdown) first lets the requests already given
//!   it reach it (until answered, at most 1 s), then retires its
//!   [`BackendProcess`](ancm_front::BackendProcess) so every forwarder closes its idle
//!   connections to it, then sends the shutdown message (protocol §2.9, §8.29).
//! * A request answered `502` makes the application try a connect to its child; a child whose
//!   port refuses it gets no further request, even before its exit is recorded (protocol
//!   §2.7).
mod admission;
mod keeper;
mod layer;
mod plan;
mod reload;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use ancm_front::limits::RequestLimits;
use ancm_front::{BackendTarget, Body, RequestTimeout};
use ancm_protocol::AppPath;
use ancm_protocol::http_auth::HttpAuth;
use http::Response;

pub use layer::{ApplicationLayer, ApplicationService};
pub use plan::{LaunchPlan, PortPlan};
use reload::Files;

use crate::app_offline::{AppOffline, Change};
use crate::config::{self, AspNetCoreConfig, ConfigError, IisRequestLimits};
use crate::file_stamp::FileStamp;
use crate::status::{ApplicationState, ApplicationStatus, ExitCause, SlotState, SlotStatus};
use crate::supervisor::environment::{detailed_errors, worker_env};
use crate::supervisor::in_flight::Admission;
use crate::supervisor::{
    HealthCheck, LaunchContext, LaunchSpec, RecyclePolicy, StartError, StartFailure,
    StdoutLogRetention, Supervisor,
};
use crate::sync;

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
    /// Force detailed errors on or off; `None` follows protocol §1.8 (env, then web.config).
    pub detailed_errors: Option<bool>,
    /// Authentication methods told to the child (`ASPNETCORE_IIS_HTTPAUTH`); default
    /// anonymous only.
    pub http_auth: HttpAuth,
    /// `ASPNETCORE_IIS_WEBSOCKETS_SUPPORTED`; default true.
    pub websockets_supported: bool,
    /// Watch the site folder for app_offline.htm and web.config changes; default true (the
    /// per-request check runs either way).
    pub watch: bool,
    /// The request limits where web.config's `<requestLimits>` is silent, like IIS's
    /// server-level settings: IIS's defaults (body 30,000,000 bytes, path 4096, query
    /// string 2048) and the limits layer's header (32 KiB) and request-target (8 KiB) limits.
    /// See [`Application::request_limits`].
    pub request_limits: RequestLimits,
    /// How many stdout log files are kept and how large each grows, where web.config's
    /// handler settings `stdoutLogMaxFiles` / `stdoutLogMaxBytes` are silent (an ancm-rs
    /// addition; default: all, whole, as ANCM).
    pub stdout_log_retention: StdoutLogRetention,
    /// How the backend processes are checked, where web.config's handler settings
    /// (`healthCheckPath`, ...) are silent (an ancm-rs addition; default: not at all).
    pub health: HealthCheck,
    /// When the application is recycled besides a web.config change, where web.config's
    /// handler settings (`recycleTime`, ...) are silent (an ancm-rs addition; default:
    /// never).
    pub recycle: RecyclePolicy,
    /// Whether the backends are started with the gateway ([`Application::start`]) rather
    /// than by the first request, where web.config's handler setting `preload` is silent
    /// (an ancm-rs addition; default false, as ANCM).
    pub preload: bool,
    /// Values of the health, recycling and preload handler settings (`healthCheckPath`,
    /// `recycleTime`, `preload`, ...) that win over web.config's, as `(name, value)`: `ancm
    /// run`'s flags. Default none.
    pub setting_overrides: Vec<(String, String)>,
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
            request_limits: iis_request_limits(),
            stdout_log_retention: StdoutLogRetention::default(),
            health: HealthCheck::default(),
            recycle: RecyclePolicy::default(),
            preload: false,
            setting_overrides: Vec::new(),
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

    /// Sets the request limits that apply where web.config's `<requestLimits>` is silent.
    pub fn request_limits(mut self, limits: RequestLimits) -> Self {
        self.request_limits = limits;
        self
    }

    /// Sets the stdout log retention that applies where web.config's handler settings are
    /// silent.
    pub fn stdout_log_retention(mut self, retention: StdoutLogRetention) -> Self {
        self.stdout_log_retention = retention;
        self
    }

    /// Sets the health checks that apply where web.config's handler settings are silent.
    pub fn health(mut self, health: HealthCheck) -> Self {
        self.health = health;
        self
    }

    /// Sets the recycling policies that apply where web.config's handler settings are
    /// silent.
    pub fn recycle(mut self, recycle: RecyclePolicy) -> Self {
        self.recycle = recycle;
        self
    }

    /// Sets whether the backends start with the gateway where web.config's handler setting
    /// `preload` is silent.
    pub fn preload(mut self, on: bool) -> Self {
        self.preload = on;
        self
    }

    /// Makes handler setting `name` (one of the health, recycling and preload settings) be
    /// `value` whatever web.config says.
    pub fn override_setting(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.setting_overrides.push((name.into(), value.into()));
        self
    }
}

/// IIS's request filtering defaults (protocol §3.4) over the limits layer's own.
fn iis_request_limits() -> RequestLimits {
    let silent = IisRequestLimits::default();
    let wide = |n: u32| usize::try_from(n).unwrap_or(usize::MAX);
    RequestLimits::default()
        .max_request_body(Some(silent.max_allowed_content_length_or_default()))
        .max_path_length(Some(wide(silent.max_url_or_default())))
        .max_query_length(Some(wide(silent.max_query_string_or_default())))
}

/// `defaults` with what `written` says in its place (protocol §3.4). The request-target as a
/// whole is allowed what the path and query limits allow together, so that a larger `maxUrl`
/// is not undercut by it.
fn limits_for(defaults: RequestLimits, written: &IisRequestLimits) -> RequestLimits {
    let wide = |n: u32| usize::try_from(n).unwrap_or(usize::MAX);
    let limits = defaults
        .max_request_body(
            written
                .max_allowed_content_length
                .or(defaults.max_request_body),
        )
        .max_path_length(written.max_url.map(wide).or(defaults.max_path_length))
        .max_query_length(
            written
                .max_query_string
                .map(wide)
                .or(defaults.max_query_length),
        );
    match (limits.max_path_length, limits.max_query_length) {
        (Some(path), Some(query)) => {
            // `?`, and an absolute-form or HTTP/2 scheme and authority.
            let room = path
                .saturating_add(query)
                .saturating_add(1 + AUTHORITY_ROOM);
            limits.max_uri_length(limits.max_uri_length.max(room))
        }
        _ => limits,
    }
}

/// What the request-target may hold beyond path and query: `https://`, a host name of up to
/// 253 bytes and `:port`.
const AUTHORITY_ROOM: usize = 8 + 253 + 6;

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

/// One configuration generation: web.config as read, and the children it starts.
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

/// Builds the generation for a load result; warns once about in-process settings (§8.6).
fn make_generation(
    context: &Arc<LaunchContext>,
    detailed_override: Option<bool>,
    loaded: Result<AspNetCoreConfig, ConfigError>,
) -> Arc<Generation> {
    match loaded {
        Ok(config) => {
            for warning in config.warnings() {
                tracing::warn!(site = %context.site_dir.display(), "{warning}");
            }
            let spec = LaunchSpec::new(&config, context, &config::process_env);
            let detailed =
                detailed_override.unwrap_or_else(|| detailed_errors(&spec.config_env, &worker_env));
            Arc::new(Generation::Running {
                config: Arc::new(config),
                supervisor: Supervisor::new(spec),
                detailed,
            })
        }
        Err(error) => {
            tracing::error!(%error, "could not load the configuration; requests get 500.0 until web.config is fixed");
            let detailed = detailed_override.unwrap_or_else(|| detailed_errors(&[], &worker_env));
            Arc::new(Generation::Invalid { error, detailed })
        }
    }
}

struct Inner {
    /// The site folder (absolute) and app path: kept here only.
    context: Arc<LaunchContext>,
    /// [`ApplicationOptions::detailed_errors`].
    detailed_errors: Option<bool>,
    state: RwLock<Arc<Generation>>,
    offline: AppOffline,
    files: Files,
    /// Held while switching generations for app_offline.htm or a recycle.
    transition: Mutex<()>,
    /// Held by a reload, so reloads run one at a time and shutdown can wait for one.
    reload_lock: tokio::sync::Mutex<()>,
    shutting_down: AtomicBool,
    /// Stops started in the background, awaited by shutdown.
    pending: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    runtime: tokio::runtime::Handle,
    /// `ANCM_ADDITIONAL_ERROR_PAGE_LINK`.
    extra_link: Option<String>,
    /// [`ApplicationOptions::request_limits`].
    request_limits: RequestLimits,
    /// SHA-256 of the web.config the current generation comes from, lowercase hex.
    web_config_sha256: Mutex<Option<String>>,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application")
            .field("site_dir", &self.context.site_dir)
            .field("app_path", &self.context.app_path)
            .finish_non_exhaustive()
    }
}

/// One hosted application. Cheap to clone (shared state).
#[derive(Debug, Clone)]
pub struct Application {
    inner: Arc<Inner>,
}

impl Application {
    /// Reads `<site_dir>/web.config` (an invalid one is served as 500.0 until fixed), checks
    /// app_offline.htm and starts the watcher. Must be called inside a Tokio runtime; no
    /// process starts before the first request.
    pub fn new(options: ApplicationOptions) -> Result<Self, ApplicationError> {
        let path = options.site_dir.join(WEB_CONFIG);
        // The stamp before the read: a write in between then shows as a change.
        let stamp = FileStamp::read(&path);
        let (initial, digest) = read_web_config(&path);
        let app = Self::build(options, Some((path, stamp)), initial)?;
        *sync::lock(&app.inner.web_config_sha256) = digest;
        Ok(app)
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
        web_config: Option<(PathBuf, Option<FileStamp>)>,
        initial: Result<AspNetCoreConfig, ConfigError>,
    ) -> Result<Self, ApplicationError> {
        let runtime =
            tokio::runtime::Handle::try_current().map_err(|_| ApplicationError::NoRuntime)?;
        let ApplicationOptions {
            site_dir,
            app_path,
            detailed_errors,
            http_auth,
            websockets_supported,
            watch,
            request_limits,
            stdout_log_retention,
            health,
            recycle,
            preload,
            setting_overrides,
        } = options;
        if !site_dir.is_dir() {
            tracing::error!(site = %site_dir.display(), "the site folder is not a directory");
            return Err(ApplicationError::SiteDir { path: site_dir });
        }
        // An absolute site path keeps the child's working directory and log paths stable.
        let site_dir = std::fs::canonicalize(&site_dir).unwrap_or(site_dir);
        let context = Arc::new(LaunchContext {
            site_dir,
            app_path,
            http_auth: http_auth.env_value(),
            websockets: websockets_supported,
            stats: Arc::default(),
            stdout_retention: stdout_log_retention,
            health,
            recycle,
            preload,
            setting_overrides,
        });
        let files = Files::new(web_config);
        let generation = make_generation(&context, detailed_errors, initial);
        let inner = Arc::new(Inner {
            offline: AppOffline::new(&context.site_dir),
            context,
            detailed_errors,
            state: RwLock::new(generation),
            files,
            transition: Mutex::new(()),
            reload_lock: tokio::sync::Mutex::new(()),
            shutting_down: AtomicBool::new(false),
            pending: Mutex::new(Vec::new()),
            runtime,
            extra_link: worker_env(ancm_protocol::env::ANCM_ADDITIONAL_ERROR_PAGE_LINK)
                .filter(|l| !l.is_empty()),
            request_limits,
            web_config_sha256: Mutex::new(None),
        });
        if inner.offline.check() == Change::WentOffline {
            tracing::info!(file = %inner.offline.path().display(), "app_offline.htm present at start; serving it");
        }
        if watch {
            inner.start_watcher();
        }
        inner.runtime.spawn(keeper::keep(Arc::downgrade(&inner)));
        Ok(Application { inner })
    }

    /// The tower layer for the gateway's stack.
    pub fn layer(&self) -> ApplicationLayer {
        ApplicationLayer::new(self.clone())
    }

    /// The site folder (absolute).
    pub fn site_dir(&self) -> &Path {
        &self.inner.context.site_dir
    }

    /// The application's virtual path.
    pub fn app_path(&self) -> &AppPath {
        &self.inner.context.app_path
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

    /// The request limits of the current configuration: web.config's `<requestLimits>`
    /// where it says something, [`ApplicationOptions::request_limits`] elsewhere (and
    /// everywhere while web.config is invalid). A gateway inserts them into each request's
    /// extensions in front of an [`ancm_front::limits::LimitsLayer`], so a changed
    /// web.config applies from its recycle on:
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
    /// use ancm_hosting::application::{Application, ApplicationOptions};
    /// let app = Application::new(ApplicationOptions::new("/srv/site"))?;
    /// let mut req = http::Request::new(());
    /// req.extensions_mut().insert(app.request_limits());
    /// # Ok(()) }
    /// ```
    pub fn request_limits(&self) -> RequestLimits {
        let defaults = self.inner.request_limits;
        match &*self.inner.current() {
            Generation::Running { config, .. } => limits_for(defaults, &config.request_limits),
            Generation::Invalid { .. } => defaults,
        }
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

    /// What the current configuration would start: the command line exactly as the
    /// supervisor runs it (.NET publish folders resolved), the names of the variables it
    /// sets, the port, the limits. `None` while web.config is invalid.
    pub fn launch_plan(&self) -> Option<LaunchPlan> {
        match &*self.inner.current() {
            Generation::Running { supervisor, .. } => Some(LaunchPlan::new(supervisor.spec())),
            Generation::Invalid { .. } => None,
        }
    }

    /// Starts the backend processes now, as the first request would, and returns once each
    /// listens or its start failed (protocol §2.6: up to two attempts of `startupTimeLimit`):
    /// a warm-up before traffic, and what `ancm doctor` tries. The failure is the one a
    /// request would be shown (`502.5`, `500.32`). While app_offline.htm is served nothing
    /// is started (`Ok`), as for requests; an invalid web.config is
    /// [`StartError::Configuration`].
    pub async fn start(&self) -> Result<(), Arc<StartFailure>> {
        if self.inner.offline.is_offline() {
            return Ok(());
        }
        match &*self.inner.current() {
            Generation::Running { supervisor, .. } => supervisor.start_all().await,
            Generation::Invalid { error, .. } => Err(Arc::new(StartFailure::new(
                StartError::Configuration(Box::new(error.clone())),
            ))),
        }
    }

    /// Whether the configuration in use asks for its backends to start with the gateway
    /// (handler setting `preload`, else [`ApplicationOptions::preload`]); false while
    /// web.config is invalid.
    pub fn preload(&self) -> bool {
        match &*self.inner.current() {
            Generation::Running { supervisor, .. } => supervisor.spec().preload,
            Generation::Invalid { .. } => false,
        }
    }

    /// Reads web.config again now, whatever the watcher saw, and recycles the application
    /// when its configuration changed, as a change of the file does (for SIGHUP). Returns at
    /// once; the reload runs on the application's runtime.
    pub fn reload_web_config(&self) {
        self.inner.spawn_reload();
    }

    /// Opens the stdout log files of the running backend processes again by name (SIGHUP,
    /// for logrotate). Only the size-capped logs (`stdoutLogMaxBytes`), which the gateway
    /// writes, can be; a process that writes its log file itself keeps its handle.
    pub fn reopen_logs(&self) {
        if let Generation::Running { supervisor, .. } = &*self.inner.current() {
            for (_, ready) in supervisor.serving() {
                ready.reopen_log();
            }
        }
    }

    /// A snapshot of what the application and its backend processes are doing, for metrics,
    /// health checks and status pages (see [`status`](crate::status)).
    pub fn status(&self) -> ApplicationStatus {
        let inner = &self.inner;
        let generation = inner.current();
        let slots = match &*generation {
            Generation::Running { supervisor, .. } => supervisor.slot_statuses(),
            Generation::Invalid { .. } => Vec::new(),
        };
        let (state, reason) = if inner.shutting_down.load(Ordering::Acquire) {
            (
                ApplicationState::Stopping,
                Some("the application is shutting down".to_owned()),
            )
        } else if inner.offline.is_offline() {
            (ApplicationState::Offline, None)
        } else {
            match &*generation {
                Generation::Invalid { error, .. } => (
                    ApplicationState::InvalidConfig,
                    Some(format!("web.config is invalid: {error}")),
                ),
                Generation::Running { supervisor, .. } if supervisor.rapid_fail_blocked() => (
                    ApplicationState::RapidFail,
                    Some(format!(
                        "more than rapidFailsPerMinute ({}) unexpected exits in the last minute: starts are refused",
                        supervisor.spec().rapid_fails
                    )),
                ),
                Generation::Running { .. } => running_state(&slots),
            }
        };
        ApplicationStatus {
            app_path: inner.context.app_path.clone(),
            site_dir: inner.context.site_dir.clone(),
            state,
            reason,
            web_config_sha256: sync::lock(&inner.web_config_sha256).clone(),
            slots,
            counters: inner.context.stats.snapshot(),
        }
    }

    /// The admission decision for one request: a ready backend (started if needed), or the
    /// response to send instead (503 app_offline / 500.0 / 502.5 / 503). The request is not
    /// counted in flight: a stop does not wait for it (the [layer](Self::layer) does that).
    pub async fn backend(&self) -> Result<BackendTarget, Response<Body>> {
        self.inner.admit().await.map(|(target, _)| target)
    }

    /// [`backend`](Self::backend), with the request counted in flight until the
    /// [`Admission`] is dropped.
    pub(crate) async fn admit(&self) -> Result<(BackendTarget, Admission), Response<Body>> {
        self.inner.admit().await
    }

    /// Stops every child gracefully (HTTP shutdown message, signals, then kill after
    /// `shutdownTimeLimit`) and waits until they are gone; afterwards requests get 503.
    pub async fn shutdown(&self) {
        let inner = &self.inner;
        if inner.shutting_down.swap(true, Ordering::AcqRel) {
            tracing::debug!("shutdown already requested");
        }
        inner.stop_watcher();
        tracing::info!(site = %inner.context.site_dir.display(), "stopping the application");
        if let Generation::Running { supervisor, .. } = &*inner.current() {
            supervisor.stop(ExitCause::Shutdown).await;
        }
        // A reload in progress notices the flag and stops what it started.
        let _reload = inner.reload_lock.lock().await;
        if let Generation::Running { supervisor, .. } = &*inner.current() {
            supervisor.stop(ExitCause::Shutdown).await;
        }
        let pending = std::mem::take(&mut *sync::lock(&inner.pending));
        for p in pending {
            let _ = p.await;
        }
        tracing::info!(site = %inner.context.site_dir.display(), "application stopped");
    }
}

/// The state of a running generation from its slots: failed when a slot's last start
/// failed, else starting, ready or idle.
fn running_state(slots: &[SlotStatus]) -> (ApplicationState, Option<String>) {
    if let Some(slot) = slots.iter().find(|s| s.state == SlotState::Failed) {
        let why = slot.failure.as_deref().unwrap_or("unknown");
        return (
            ApplicationState::Failed,
            Some(format!(
                "the last start of slot {} failed: {why}",
                slot.index
            )),
        );
    }
    let state = if slots.iter().any(|s| s.state == SlotState::Starting) {
        ApplicationState::Starting
    } else if slots.iter().any(|s| s.state == SlotState::Ready) {
        ApplicationState::Ready
    } else {
        ApplicationState::Idle
    };
    (state, None)
}

/// Reads web.config once: its configuration and the SHA-256 of its bytes (lowercase hex;
/// `None` when it cannot be read). Blocking.
pub(crate) fn read_web_config(
    path: &Path,
) -> (Result<AspNetCoreConfig, ConfigError>, Option<String>) {
    use sha2::Digest as _;
    match std::fs::read(path) {
        Ok(bytes) => {
            let digest = sha2::Sha256::digest(&bytes);
            let hex = digest
                .iter()
                .fold(String::with_capacity(64), |mut hex, byte| {
                    use std::fmt::Write as _;
                    let _ = write!(hex, "{byte:02x}");
                    hex
                });
            (config::parse(&bytes, path), Some(hex))
        }
        // The same error `load` gives.
        Err(_) => (config::load(path), None),
    }
}

impl Inner {
    fn current(&self) -> Arc<Generation> {
        sync::read(&self.state).clone()
    }

    fn set_state(&self, g: Arc<Generation>) -> Arc<Generation> {
        std::mem::replace(&mut *sync::write(&self.state), g)
    }

    fn generation_for(&self, loaded: Result<AspNetCoreConfig, ConfigError>) -> Arc<Generation> {
        make_generation(&self.context, self.detailed_errors, loaded)
    }

    fn spawn_pending(&self, fut: impl Future<Output = ()> + Send + 'static) {
        let handle = self.runtime.spawn(fut);
        let mut pending = sync::lock(&self.pending);
        pending.retain(|h| !h.is_finished());
        pending.push(handle);
    }
}
