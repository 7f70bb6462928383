//! `ancm run`: assemble the applications, listeners and shutdown.
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use ancm_front::forward::{ConnectionLimit, ForwardConfig, Forwarder};
use ancm_front::forwarded_for::ForwardedMode;
use ancm_front::limits::{Limits, LimitsLayer, RequestLimits};
use ancm_front::trace::{PropagateTrace, PropagateTraceLayer};
use ancm_front::{AncmConfig, AncmLayer, Body};
use ancm_hosting::application::{Application, ApplicationOptions, ApplicationService};
use ancm_hosting::debug_log::DebugLogSettings;
use ancm_hosting::supervisor::StdoutLogRetention;
use ancm_protocol::AppPath;
use futures_util::future::{Either, Ready};
use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use tower::{Layer as _, Service};

use crate::admin::{Admin, GatewaySources};
use crate::cli::{LogFormat, ObservabilityArgs, RunArgs};
use crate::connection::{ConnectionLimits, default_max_connections};
use crate::observe::access_log::{AccessLog, AccessLogError, Target};
use crate::observe::{CountedBody, Observability, ObservedFuture, Observer};
use crate::reload::Reloads;
use crate::server::{Listener, Server, ServerHandle};
use crate::tls::watch::{Reloader, Trigger};

/// One application's whole stack: the trace context, request limits, admission and backend
/// choice, the ANCM layers, the forwarder. Every application has this same type, so the
/// router needs no boxing.
type AppStack = PropagateTrace<Limits<ApplicationService<ancm_front::bundle::Ancm<Forwarder>>>>;

/// What answers requests no application takes: `404`, with a trace context like every
/// response.
type NotFound = PropagateTrace<NoApplication>;

/// One application with the forwarder configuration of its stacks (one per runtime thread):
/// clones of one configuration count backend connections together.
#[derive(Debug)]
pub struct Hosted {
    /// Its path.
    pub path: AppPath,
    /// The application.
    pub app: Application,
    /// Its forwarders' configuration.
    pub forward: ForwardConfig,
    /// Its forwarder on each runtime thread (each with its own pool), for the idle count.
    forwarders: Mutex<Vec<Forwarder>>,
}

impl Hosted {
    /// Idle keep-alive backend connections over every runtime thread's pool.
    pub fn idle_connections(&self) -> usize {
        self.forwarders
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(Forwarder::idle_connections_total)
            .sum()
    }
}

impl Hosted {
    /// `app` at its own path, with the forwarder's default configuration.
    pub fn new(app: Application) -> Self {
        Self {
            path: app.app_path().clone(),
            app,
            forward: ForwardConfig::default(),
            forwarders: Mutex::new(Vec::new()),
        }
    }
}

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// A listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: std::net::SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
    /// TLS could not be configured.
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    /// Nothing to serve.
    #[error("no site folder given: pass SITE_DIR or --app PATH=SITE_DIR")]
    NoSite,
    /// A site folder is missing.
    #[error("site folder {0} does not exist")]
    MissingSite(PathBuf),
    /// The runtime or a worker thread could not be set up.
    #[error("cannot start the runtime: {0}")]
    Runtime(std::io::Error),
    /// Two applications have the same path.
    #[error("two applications are mapped to {0}")]
    DuplicateApp(AppPath),
    /// The admin listener would be reachable from other hosts without
    /// `--admin-allow-remote`.
    #[error(
        "--admin-listen {0} is not a loopback address: the admin endpoints have no authentication; pass --admin-allow-remote to serve them there anyway"
    )]
    AdminNotLoopback(SocketAddr),
    /// The admin listener could not be bound.
    #[error("cannot listen on {addr} (--admin-listen): {source}")]
    AdminBind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
    /// The access log could not be set up.
    #[error(transparent)]
    AccessLog(#[from] AccessLogError),
    /// An application could not be set up.
    #[error("application {path} ({dir}): {source}")]
    App {
        /// Its path.
        path: AppPath,
        /// Its site folder.
        dir: PathBuf,
        /// The cause.
        source: ancm_hosting::application::ApplicationError,
    },
}

/// Run until SIGINT/SIGTERM on `threads` threads, each with its own single-threaded runtime
/// (no work-stealing wake-ups between threads) accepting on shared listening sockets, with
/// its own backend connection pools. The supervisors are shared.
pub fn run(args: RunArgs, threads: usize) -> Result<(), GatewayError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(GatewayError::Runtime)?;
    runtime.block_on(serve(args, threads.max(1)))
}

async fn serve(args: RunArgs, threads: usize) -> Result<(), GatewayError> {
    let mut apps = args.apps.clone();
    if let Some(dir) = &args.site_dir {
        apps.push((args.app_path.clone(), dir.clone()));
    }
    let observe = &args.observability;
    init_logging(&apps, observe.log_format);
    if apps.is_empty() {
        return Err(GatewayError::NoSite);
    }
    if let Some(addr) = observe.admin_listen
        && !addr.ip().is_loopback()
        && !observe.admin_allow_remote
    {
        return Err(GatewayError::AdminNotLoopback(addr));
    }
    // Bound before the gateway's own listeners: once it accepts requests, so does the admin
    // listener.
    let admin_listener = match observe.admin_listen {
        Some(addr) => {
            Some(bind_admin(addr).map_err(|source| GatewayError::AdminBind { addr, source })?)
        }
        None => None,
    };
    for (_, dir) in &apps {
        if !dir.is_dir() {
            return Err(GatewayError::MissingSite(dir.clone()));
        }
    }
    let mut reloads = Reloads::new();
    let tls = if args.https_listen.is_empty() {
        None
    } else {
        let pairs = crate::tls::pairs(&args.tls_cert, &args.tls_key)?;
        let tls = crate::tls::server_config(pairs, args.client_ca.as_deref(), args.client_cert)?;
        let reloader = Reloader::start(tls.certs.clone());
        reloads.add("TLS certificates", move || reloader.reload(Trigger::Signal));
        Some(tls.config)
    };
    // Socket activation: systemd's sockets serve plain HTTP, besides --listen (protocol
    // §8.37).
    let inherited = crate::systemd::inherited_listeners();
    let mut plain = args.listen.clone();
    if plain.is_empty() && args.https_listen.is_empty() && inherited.is_empty() {
        plain.push(std::net::SocketAddr::from(([127, 0, 0, 1], 8080)));
    }
    let balancer = &args.balancer;
    let mut listeners = Vec::new();
    for socket in inherited {
        let listener = Listener::from_std(socket, None).map_err(GatewayError::Runtime)?;
        if let Ok(addr) = listener.local_addr() {
            tracing::info!(%addr, "listening on a socket passed by systemd (LISTEN_FDS)");
        }
        listeners.push(listener);
    }
    for (index, addr) in plain.into_iter().enumerate() {
        let proxy = balancer.proxy_listen.get(index).copied().unwrap_or(false);
        listeners.push(bind(addr, None)?.proxy_protocol(proxy));
    }
    for (index, addr) in args.https_listen.iter().enumerate() {
        let proxy = balancer
            .proxy_https_listen
            .get(index)
            .copied()
            .unwrap_or(false);
        listeners.push(bind(*addr, tls.clone())?.proxy_protocol(proxy));
    }
    for listener in &listeners {
        if listener.expects_proxy_protocol()
            && let Ok(addr) = listener.local_addr()
        {
            tracing::info!(%addr, "PROXY protocol header expected first on each connection");
        }
    }
    if !balancer.trusted_proxy.is_empty() {
        let networks: Vec<String> = balancer
            .trusted_proxy
            .iter()
            .map(ToString::to_string)
            .collect();
        tracing::info!(networks = %networks.join(", "), "trusted proxies: their X-Forwarded-For and X-Forwarded-Proto are kept");
    }
    let mut applications: Vec<Hosted> = Vec::new();
    let backend_connections = usize::try_from(args.max_backend_connections).unwrap_or(usize::MAX);
    for (path, dir) in apps {
        if applications.iter().any(|hosted| hosted.path == path) {
            return Err(GatewayError::DuplicateApp(path));
        }
        let mut options = ApplicationOptions::new(dir.clone())
            .app_path(path.clone())
            .stdout_log_retention(stdout_retention(observe));
        for (name, value) in args.keep.setting_overrides() {
            options = options.override_setting(name, value);
        }
        let iis_defaults = options.request_limits;
        let options = options.request_limits(flag_limits(&args, iis_defaults));
        let app = Application::new(options).map_err(|source| GatewayError::App {
            path: path.clone(),
            dir: dir.clone(),
            source,
        })?;
        tracing::info!(app_path = %path, site = %dir.display(), "application");
        // Each BackendTarget carries its web.config requestTimeout, so a recycle applies a
        // new one; the forwarder's own (ANCM's default) is only the fallback.
        let limit = ConnectionLimit::new(backend_connections)
            .wait(Duration::from_secs(args.backend_connection_wait));
        let forward = ForwardConfig::default().connection_limit(limit);
        applications.push(Hosted {
            path,
            app,
            forward,
            forwarders: Mutex::new(Vec::new()),
        });
    }
    // Longest path first: the most specific application wins, like IIS applications.
    applications.sort_by_key(|hosted| std::cmp::Reverse(hosted.path.as_str().len()));
    let applications = Arc::new(applications);
    let access_log = match &observe.access_log {
        Some(dir) => {
            let target = if dir.as_os_str() == "-" {
                Target::Stdout
            } else {
                Target::Dir(dir.clone())
            };
            let paths: Vec<AppPath> = applications.iter().map(|h| h.path.clone()).collect();
            let log = AccessLog::start(
                target,
                observe.access_log_format,
                observe.access_log_max_bytes,
                &paths,
            )?;
            tracing::info!(target = %dir.display(), format = ?observe.access_log_format, "access log");
            Some(log)
        }
        None => None,
    };
    let observability = Arc::new(Observability::new(
        access_log,
        observe.admin_listen.is_some(),
        applications.len(),
    ));
    add_reloads(
        &mut reloads,
        &applications,
        observability.access_log().cloned(),
    );
    reloads.on_sighup().map_err(GatewayError::Runtime)?;

    let server = Server::new(ConnectionLimits {
        header_timeout: Duration::from_secs(args.header_timeout),
        h2_idle_timeout: Duration::from_secs(args.h2_idle_timeout),
        h2_ping_interval: Duration::from_secs(args.h2_ping_interval),
        max_connections: args.max_connections.unwrap_or_else(default_max_connections),
    })
    .trusting(balancer.trusted_proxy.clone());
    let admin = match admin_listener {
        Some(listener) => {
            let admin = Arc::new(Admin::new(Arc::new(GatewaySources {
                applications: applications.clone(),
                observability: observability.clone(),
                slots: server.handle().connection_slots(),
                tls_handshakes: server.handle().tls_handshakes(),
            })));
            if let Ok(addr) = listener.local_addr() {
                tracing::info!(%addr, "admin listener: /metrics /healthz /readyz /status");
            }
            let task = admin.spawn(listener);
            Some((admin, task))
        }
        None => None,
    };
    let (release, released) = tokio::sync::watch::channel(false);
    let mut workers = Vec::new();
    for index in 1..threads {
        let listeners = listeners
            .iter()
            .map(Listener::try_clone)
            .collect::<std::io::Result<Vec<_>>>()
            .map_err(GatewayError::Runtime)?;
        let worker = worker(
            index,
            listeners,
            applications.clone(),
            observability.clone(),
            server.handle(),
            released.clone(),
        )
        .map_err(GatewayError::Runtime)?;
        workers.push(worker);
    }
    let own_loop = server
        .handle()
        .spawn_accept_loop(listeners, router(&applications, &observability))
        .map_err(GatewayError::Runtime)?;
    tracing::info!(threads, "serving");

    // Preloaded applications start now; systemd hears READY=1 once they are ready (or
    // failed: that shows in their state) — unless a stop signal comes first.
    let signal = ancm_protocol::signal::stop_requested();
    tokio::pin!(signal);
    let signal = tokio::select! {
        signal = &mut signal => signal,
        () = preload(&applications) => {
            crate::systemd::ready(&format!("serving {} application(s)", applications.len()));
            crate::systemd::spawn_watchdog();
            signal.await
        }
    };
    crate::systemd::stopping("stopping: draining requests");
    tracing::info!("{signal} received");
    // Not ready first, then the balancer's grace period, then the drain.
    if let Some((admin, _)) = &admin {
        admin.stopping();
    }
    crate::drain::delay(Duration::from_secs(balancer.drain_delay)).await;
    tracing::info!("shutting down: no new connections, draining in-flight requests");
    server.stop_accepting();
    let _ = own_loop.await;
    for (_, accepting_ended) in &mut workers {
        let _ = accepting_ended.await;
    }
    server.drain(Duration::from_secs(args.drain_timeout)).await;
    tracing::info!("stopping the backend processes");
    // The worker runtimes keep running meanwhile: supervisor tasks they started must see
    // their children exit.
    futures_util::future::join_all(applications.iter().map(|hosted| hosted.app.shutdown())).await;
    let _ = release.send(true);
    for (thread, _) in workers {
        let _ = tokio::task::spawn_blocking(move || thread.join()).await;
    }
    if let Some(log) = observability.access_log().cloned() {
        // Every request has ended: write out and close the files.
        let _ = tokio::task::spawn_blocking(move || log.close()).await;
    }
    if let Some((_, task)) = admin {
        task.abort();
    }
    tracing::info!("stopped");
    Ok(())
}

/// Starts the backends of the applications that ask for preload (`--preload`, handler
/// setting `preload`) and waits until each is ready or failed (protocol §8.36). A failure
/// shows in the application's state; the gateway runs on.
async fn preload(applications: &[Hosted]) {
    let starts = applications
        .iter()
        .filter(|hosted| hosted.app.preload())
        .map(|hosted| async move {
            tracing::info!(app_path = %hosted.path, "preloading the application");
            if let Err(failure) = hosted.app.start().await {
                tracing::error!(app_path = %hosted.path, error = %failure.error, "the preloaded application failed to start; the next request tries again");
            }
        });
    futures_util::future::join_all(starts).await;
}

/// What SIGHUP does besides the TLS certificates: every application reads its web.config
/// again (recycling the changed ones), and the log files are opened again by name, for
/// logrotate.
fn add_reloads(
    reloads: &mut Reloads,
    applications: &Arc<Vec<Hosted>>,
    log: Option<Arc<AccessLog>>,
) {
    let apps = applications.clone();
    reloads.add("web.config", move || {
        for hosted in apps.iter() {
            hosted.app.reload_web_config();
        }
    });
    let apps = applications.clone();
    reloads.add("log files", move || {
        if let Some(log) = &log {
            log.reopen();
        }
        for hosted in apps.iter() {
            hosted.app.reopen_logs();
        }
    });
}

/// The `--stdout-log-max-*` flags.
fn stdout_retention(observe: &ObservabilityArgs) -> StdoutLogRetention {
    let mut retention = StdoutLogRetention::default();
    if let Some(max) = observe.stdout_log_max_files {
        retention = retention.max_files(max);
    }
    if let Some(max) = observe.stdout_log_max_bytes {
        retention = retention.max_bytes(max);
    }
    retention
}

/// A thread with its own runtime serving clones of the listeners. Its receiver resolves when
/// its accept loop has ended; the thread then keeps its runtime running until `released`.
fn worker(
    index: usize,
    listeners: Vec<Listener>,
    applications: Arc<Vec<Hosted>>,
    observability: Arc<Observability>,
    handle: ServerHandle,
    mut released: tokio::sync::watch::Receiver<bool>,
) -> std::io::Result<(
    std::thread::JoinHandle<()>,
    tokio::sync::oneshot::Receiver<()>,
)> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (accepting_ended, ended) = tokio::sync::oneshot::channel();
    let thread = std::thread::Builder::new()
        .name(format!("ancm-worker-{index}"))
        .spawn(move || {
            runtime.block_on(async move {
                match handle.spawn_accept_loop(listeners, router(&applications, &observability)) {
                    Ok(accept_loop) => {
                        let _ = accept_loop.await;
                    }
                    Err(error) => tracing::error!(%error, worker = index, "cannot accept"),
                }
                // Let the drain see that this runtime accepts no more connections.
                drop(handle);
                let _ = accepting_ended.send(());
                let _ = released.wait_for(|released| *released).await;
            });
        })?;
    Ok((thread, ended))
}

/// The `--max-*` flags over `defaults` (IIS's): the limits where web.config is silent.
fn flag_limits(args: &RunArgs, defaults: RequestLimits) -> RequestLimits {
    let mut limits = defaults;
    if let Some(max) = args.max_request_body {
        limits = limits.max_request_body(Some(max));
    }
    if let Some(max) = args.max_url_length {
        limits = limits.max_path_length(Some(max));
    }
    if let Some(max) = args.max_query_string_length {
        limits = limits.max_query_length(Some(max));
    }
    if let Some(max) = args.max_header_bytes {
        limits = limits.max_header_bytes(max);
    }
    limits
}

/// This runtime's router: one stack per application, with its own backend connection pool,
/// and its own observer (counters no other thread writes). `ancm doctor` sends its request
/// through it too.
pub(crate) fn router(applications: &[Hosted], observability: &Observability) -> Router {
    let observer = observability.observer();
    // The observer reads each response's trace context; without one nothing does.
    let trace = if observer.records() {
        PropagateTraceLayer::new()
    } else {
        PropagateTraceLayer::request_only()
    };
    let routes: Vec<Route> = applications
        .iter()
        .map(|hosted| {
            let limits = hosted.app.request_limits();
            Route {
                path: hosted.path.clone(),
                app: hosted.app.clone(),
                stack: stack(hosted, limits, trace),
                limits,
            }
        })
        .collect();
    Router {
        routes: routes.into(),
        not_found: trace.layer(NoApplication),
        observer,
    }
}

fn stack(hosted: &Hosted, limits: RequestLimits, trace: PropagateTraceLayer) -> AppStack {
    let app = &hosted.app;
    let forwarder = Forwarder::new(hosted.forward.clone());
    hosted
        .forwarders
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(forwarder.clone());
    // A connection is marked as from a trusted proxy only under --trusted-proxy; any other
    // is treated as with ANCM's appending mode.
    let ancm = AncmLayer::new(AncmConfig {
        app_path: app.app_path().clone(),
        forward_windows_auth_token: app.forward_windows_auth_token(),
        forwarded_for: ForwardedMode::TrustingProxies,
        forwarded_proto: ForwardedMode::TrustingProxies,
        ..AncmConfig::default()
    });
    // The trace context first, so every response has one, also the front's own answers.
    // Limits next, as IIS's request filtering runs before the module: an oversize request
    // starts no backend. The layer enforces the limits of the stack's start; a request
    // carries its application's current limits when a recycle changed them since.
    trace.layer(LimitsLayer::new(limits).layer(app.layer().layer(ancm.layer(forwarder))))
}

/// One application under the router.
#[derive(Clone)]
struct Route {
    path: AppPath,
    app: Application,
    stack: AppStack,
    /// The limits `stack` was built with.
    limits: RequestLimits,
}

/// Picks the application whose path the request is under (longest first); 404 otherwise.
/// Gives the request that application's current request limits. Hands the request to the
/// [`Observer`] when anything records requests (metrics, the access log, debug events).
#[derive(Clone)]
pub(crate) struct Router {
    routes: Arc<[Route]>,
    not_found: NotFound,
    observer: Observer,
}

/// The stack's future for a request with body `B`: an application's, or the 404's.
type StackFuture<B> =
    Either<<AppStack as Service<Request<B>>>::Future, <NotFound as Service<Request<B>>>::Future>;

type RouterFuture =
    Either<StackFuture<Incoming>, ObservedFuture<StackFuture<CountedBody<Incoming>>>>;

impl Router {
    /// The index of the application `path` is under.
    fn route(&self, path: &str) -> Option<usize> {
        self.routes
            .iter()
            .position(|route| route.path.match_len(path).is_some())
    }

    /// Hands `req` to application `index`'s stack, or to the 404.
    fn dispatch<B>(&self, index: Option<usize>, mut req: Request<B>) -> StackFuture<B>
    where
        AppStack: Service<Request<B>>,
        NotFound: Service<Request<B>>,
    {
        match index.and_then(|i| self.routes.get(i)) {
            Some(route) => {
                // web.config's limits follow its recycles: read them for each request, and
                // hand them on only when they differ from the stack's (an insert is an
                // allocation, and with the others a growth of the extensions map).
                let limits = route.app.request_limits();
                if limits != route.limits {
                    req.extensions_mut().insert(limits);
                }
                // The trace, limits and application layers are always ready: the last
                // awaits its inner service in the call.
                Either::Left(route.stack.clone().call(req))
            }
            None => Either::Right(self.not_found.clone().call(req)),
        }
    }
}

impl Service<Request<Incoming>> for Router {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = RouterFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Incoming>) -> Self::Future {
        let index = self.route(req.uri().path());
        if !self.observer.records() {
            return Either::Left(self.dispatch(index, req));
        }
        let (req, pending) = self.observer.start(index, req);
        Either::Right(ObservedFuture::new(self.dispatch(index, req), pending))
    }
}

/// The answer to requests outside every application: an empty `404`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct NoApplication;

impl<B> Service<Request<B>> for NoApplication {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Ready<Result<Response<Body>, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _req: Request<B>) -> Self::Future {
        let mut resp = Response::new(Body::empty());
        *resp.status_mut() = StatusCode::NOT_FOUND;
        futures_util::future::ready(Ok(resp))
    }
}

/// The admin listener's socket, on the current runtime.
fn bind_admin(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let socket = std::net::TcpListener::bind(addr)?;
    socket.set_nonblocking(true)?;
    tokio::net::TcpListener::from_std(socket)
}

fn bind(
    addr: std::net::SocketAddr,
    tls: Option<std::sync::Arc<rustls::ServerConfig>>,
) -> Result<Listener, GatewayError> {
    let https = tls.is_some();
    let listener =
        Listener::bind(addr, tls).map_err(|source| GatewayError::Bind { addr, source })?;
    let addr = listener.local_addr().unwrap_or(addr);
    tracing::info!(%addr, https, "listening");
    Ok(listener)
}

/// `RUST_LOG` (default `info`) to stderr as text or JSON lines, plus each application's
/// module debug log (handlerSettings `debugLevel`/`debugFile`,
/// `ASPNETCORE_MODULE_DEBUG[_FILE]`).
fn init_logging(apps: &[(AppPath, PathBuf)], format: LogFormat) {
    use tracing_subscriber::prelude::*;
    use tracing_subscriber::{EnvFilter, Registry};
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let console = match format {
        LogFormat::Text => fmt
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .boxed(),
        LogFormat::Json => fmt.json().with_current_span(false).boxed(),
    }
    .with_filter(filter);
    let mut debug_layers = Vec::new();
    let mut failures = Vec::new();
    for (_, dir) in apps {
        let config = ancm_hosting::config::load(dir).ok();
        let settings = DebugLogSettings::from_env_and_config(config.as_ref(), dir);
        match settings.layer::<Registry>() {
            Ok(Some(layer)) => debug_layers.push(layer),
            Ok(None) => {}
            Err(err) => failures.push((settings.file.clone(), err)),
        }
    }
    // An empty Vec of layers would answer "never" for every callsite and silence the console
    // layer too: add the debug layers only when there are some.
    let debug_layers = (!debug_layers.is_empty()).then_some(debug_layers);
    let _ = tracing_subscriber::registry()
        .with(debug_layers)
        .with(console)
        .try_init();
    for (file, err) in failures {
        tracing::warn!(file = ?file, error = %err, "cannot open the module debug log file");
    }
}
