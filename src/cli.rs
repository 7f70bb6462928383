//! Command line of the `ancm` gateway.
use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::path::PathBuf;

use ancm_protocol::AppPath;
use clap::{ArgMatches, CommandFactory as _, FromArgMatches as _, Parser, Subcommand, ValueEnum};
use ipnet::IpNet;

/// Run ASP.NET Core–style sites like IIS + the ASP.NET Core Module would, on any OS.
///
/// The gateway reads the `<aspNetCore>` element of a site's web.config, starts the backend
/// process on the first request (with ASPNETCORE_PORT, ASPNETCORE_TOKEN, ASPNETCORE_APPL_PATH,
/// …), restarts it when it crashes, serves app_offline.htm, and forwards every request to it
/// over loopback HTTP with the pairing token, X-Forwarded-For/Proto and the client
/// certificate.
#[derive(Debug, Parser)]
#[command(name = "ancm", version, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// The command line of this process; exits with clap's message and status 2 when it is
    /// not valid. Like `Cli::parse`, plus which listeners `--proxy-protocol` applies to (its
    /// position on the command line says).
    pub fn parse_args() -> Self {
        let mut command = Cli::command();
        let matches = command.get_matches_mut();
        let mut cli =
            Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.format(&mut command).exit());
        if let (Command::Run(run), Some(("run", run_matches))) =
            (&mut cli.command, matches.subcommand())
            && let Err(message) = run.balancer.attach_proxy_protocol(run_matches)
        {
            let mut run_command = command
                .find_subcommand_mut("run")
                .cloned()
                .unwrap_or(command);
            run_command
                .error(clap::error::ErrorKind::ArgumentConflict, message)
                .exit();
        }
        cli
    }
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve a site folder (and optionally more applications) until SIGINT/SIGTERM.
    Run(Box<RunArgs>),
    /// Validate a web.config and print the effective <aspNetCore> configuration.
    ///
    /// Environment variables are listed by name only (their values as "***" in JSON): they
    /// often hold secrets such as a fixed ASPNETCORE_TOKEN. --show-values prints them.
    ///
    /// Exit status 0 when valid; 2 when invalid, with `FILE:LINE:COL: message` on stderr.
    Check(CheckArgs),
    /// Dry-run a site folder: why won't it start?
    #[command(long_about = DOCTOR_HELP)]
    Doctor(DoctorArgs),

    /// Show what a running gateway's applications and backend processes are doing, from its
    /// admin listener (`ancm run --admin-listen`).
    ///
    /// Exit status 0 when the gateway answered; 1 when it could not be reached.
    Status(StatusArgs),
}

/// `ancm doctor --help`: what it does, its exit status and its JSON.
const DOCTOR_HELP: &str = "\
Dry-run a site folder: why won't it start?

Reads web.config as `ancm check` does and resolves the command line exactly as `ancm run` \
would (a .NET publish folder's `.\\MyApp.exe` becomes `dotnet MyApp.dll`, `dotnet` is found \
through DOTNET_ROOT, PATH and the install folders), then checks what stops a start before a \
process exists: the program and a script's #! interpreter, the .NET application, its \
runtimeconfig.json and whether `dotnet --list-runtimes` shows the frameworks it needs under \
its roll-forward policy, the port (a fixed ASPNETCORE_PORT must be free), and \
stdoutLogFile's folder. When nothing failed it starts the backend with the real environment \
as `ancm run` would (up to two attempts of startupTimeLimit each), sends one GET for the \
application's path through the gateway's own layers, and stops the backend gracefully. \
Environment variables are shown by name only, never their values.

Exit status: 0 the site would start (warnings allowed), 1 it would not, 2 web.config cannot \
be used.

--json prints one object:
  site          the site folder
  wouldStart    true when the exit status is 0
  command       null when web.config cannot be used, else:
                  program, arguments (array), commandLine, workingDirectory,
                  environmentVariables (names set on top of the inherited environment)
  findings      array of {check, status, message}, in the order they were made:
                  status: ok | warn | fail
                  check: config, appOffline, command, publish, program, interpreter,
                         dotnetApp, framework, port, token, stdoutLog, start, request, stop";

/// `ancm doctor`.
#[derive(Debug, clap::Args)]
pub struct DoctorArgs {
    /// The site folder holding web.config.
    pub site_dir: PathBuf,

    /// Print one JSON object (keys in --help) instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `ancm run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The site folder holding web.config (served at --app-path). Optional when --app is given.
    pub site_dir: Option<PathBuf>,

    /// Plain-HTTP listen address (HTTP/1.1, and HTTP/2 with prior knowledge). Repeatable.
    /// Default 127.0.0.1:8080 unless only --https-listen is given.
    #[arg(long = "listen", value_name = "ADDR")]
    pub listen: Vec<SocketAddr>,

    /// The application path SITE_DIR is served at, like an IIS application's virtual path.
    /// Requests outside it get 404. The backend receives it as ASPNETCORE_APPL_PATH.
    #[arg(long = "app-path", value_name = "PATH", default_value = "/")]
    pub app_path: AppPath,

    /// Another application under the same listeners: `PATH=SITE_DIR` (repeatable), like IIS
    /// applications under one site. The longest matching path wins.
    #[arg(long = "app", value_name = "PATH=SITE_DIR", value_parser = parse_app)]
    pub apps: Vec<(AppPath, PathBuf)>,

    /// HTTPS listen address (HTTP/1.1 and HTTP/2 via ALPN). Needs --tls-cert and --tls-key.
    /// Repeatable. X-Forwarded-Proto is `https` for requests that arrive here. TLS 1.3 and
    /// 1.2, with session resumption (TLS 1.3 tickets, TLS 1.2 tickets and session IDs); no
    /// 0-RTT.
    #[arg(long = "https-listen", value_name = "ADDR", requires_all = ["tls_cert", "tls_key"])]
    pub https_listen: Vec<SocketAddr>,

    /// PEM file with a server certificate chain (leaf first) for --https-listen. Repeatable,
    /// paired in order with --tls-key: each certificate serves the DNS names of its
    /// subjectAltName (wildcards included) by SNI, and the first one also serves clients
    /// that send no name or an unknown one. The files are reloaded when they change (a
    /// renewal, also through certbot's symbolic links) and on SIGHUP; new files that do not
    /// load are logged and the certificate in use stays.
    #[arg(long = "tls-cert", value_name = "PEM")]
    pub tls_cert: Vec<PathBuf>,

    /// PEM file with the private key (PKCS#8, PKCS#1 or SEC1) of the --tls-cert given in
    /// the same position. Repeatable. A key that does not match its certificate is refused
    /// at start.
    #[arg(long = "tls-key", value_name = "PEM")]
    pub tls_key: Vec<PathBuf>,

    /// PEM file with the CA certificates client certificates must chain to. Enables client
    /// certificates; the one a client presents is forwarded as MS-ASPNETCORE-CLIENTCERT.
    #[arg(long = "client-ca", value_name = "PEM")]
    pub client_ca: Option<PathBuf>,

    /// Whether clients must present a certificate (with --client-ca).
    #[arg(
        long = "client-cert",
        value_name = "MODE",
        default_value = "optional",
        requires = "client_ca"
    )]
    pub client_cert: ClientCertMode,

    /// How long in-flight requests may take to finish after SIGINT/SIGTERM, in seconds.
    #[arg(long = "drain-timeout", value_name = "SECONDS", default_value_t = 30)]
    pub drain_timeout: u64,

    /// Backend connections each application may have in use at once (all its processes and
    /// worker threads together). A request over the cap waits up to
    /// --backend-connection-wait seconds for one, then gets 503.2.
    #[arg(
        long = "max-backend-connections",
        value_name = "N",
        default_value_t = 1024,
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub max_backend_connections: u64,

    /// How long a request over --max-backend-connections waits for a connection, in seconds.
    #[arg(
        long = "backend-connection-wait",
        value_name = "SECONDS",
        default_value_t = 5
    )]
    pub backend_connection_wait: u64,

    /// Worker threads (default: the CPUs this process may run on).
    #[arg(long = "threads", value_name = "N")]
    pub threads: Option<usize>,

    /// How long a client may take to send a request head, in seconds: a new connection has
    /// this long from being accepted to finish its PROXY protocol header (--proxy-protocol),
    /// TLS handshake, HTTP/2 preface and first request head; an HTTP/1.1 keep-alive connection has this long after each response to
    /// send the next request head, so it is also how long an idle HTTP/1.1 connection stays
    /// open. A connection that misses it is closed without an answer.
    #[arg(
        long = "header-timeout",
        value_name = "SECONDS",
        default_value_t = 30,
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub header_timeout: u64,

    /// How long an HTTP/2 connection may go without an open stream, in seconds; then it gets a
    /// GOAWAY and is closed (closed outright if it is still open and idle after as long
    /// again).
    #[arg(
        long = "h2-idle-timeout",
        value_name = "SECONDS",
        default_value_t = 120,
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub h2_idle_timeout: u64,

    /// HTTP/2 keep-alive, in seconds: after this long without a frame from the client the
    /// gateway sends a PING, and closes the connection if the answer does not come within as
    /// long again. This finds dead clients even while their requests are open.
    #[arg(
        long = "h2-ping-interval",
        value_name = "SECONDS",
        default_value_t = 30,
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub h2_ping_interval: u64,

    /// The most client connections open at once, over all listeners and threads. At the cap
    /// the gateway stops accepting: new connections wait in the listen backlog until one
    /// closes. Default: 10000, or half the open-file limit (`ulimit -n`) when that is lower,
    /// since a client connection can hold a backend connection too.
    #[arg(long = "max-connections", value_name = "N")]
    pub max_connections: Option<std::num::NonZeroUsize>,
    /// Largest request body, in bytes; larger ones get 413. A web.config's
    /// <requestLimits maxAllowedContentLength> wins for its application. Default: IIS's
    /// 30000000.
    #[arg(long = "max-request-body", value_name = "BYTES")]
    pub max_request_body: Option<u64>,

    /// Longest URL path (without the query string), in bytes; longer ones get 414. A
    /// web.config's <requestLimits maxUrl> wins for its application. Default: IIS's 4096.
    #[arg(long = "max-url-length", value_name = "BYTES")]
    pub max_url_length: Option<usize>,

    /// Longest query string (after `?`), in bytes; longer ones get 414. A web.config's
    /// <requestLimits maxQueryString> wins for its application. Default: IIS's 2048.
    #[arg(long = "max-query-string-length", value_name = "BYTES")]
    pub max_query_string_length: Option<usize>,

    /// Largest request header block, counted as `name: value\r\n` per header, in bytes;
    /// larger ones get 431. Default 32768. A request head over 64 KiB is refused by the HTTP
    /// server itself, also with 431.
    #[arg(long = "max-header-bytes", value_name = "BYTES")]
    pub max_header_bytes: Option<usize>,

    #[command(flatten)]
    pub balancer: BalancerArgs,

    #[command(flatten)]
    pub observability: ObservabilityArgs,

    #[command(flatten)]
    pub keep: crate::keep_args::KeepArgs,
}

/// `ancm run`'s flags for running behind a load balancer or a proxy.
#[derive(Debug, clap::Args)]
pub struct BalancerArgs {
    /// The --listen or --https-listen just before this flag expects a PROXY protocol header
    /// (v1 or v2, as HAProxy's `send-proxy`/`send-proxy-v2` and cloud load balancers send)
    /// first on each connection, before the TLS handshake, within --header-timeout. The
    /// client it names is the client (X-Forwarded-For, the access log). A connection without
    /// a valid header is closed; a header sent to a listener without this flag gets 400.
    /// Example: `--listen 0.0.0.0:8080 --proxy-protocol --listen 127.0.0.1:8081`.
    #[arg(long = "proxy-protocol", num_args = 0, default_missing_value = "true", action = clap::ArgAction::Append)]
    pub proxy_protocol: Vec<bool>,

    /// A proxy in front whose X-Forwarded-For and X-Forwarded-Proto are kept as it sent them
    /// (ours is appended after them): `10.0.0.0/8`, `192.0.2.7`, `2001:db8::/32`.
    /// Repeatable. Matched against the client address (a PROXY header's, if any). From any
    /// other client they are sanitized as always. Default: trust nobody. The backend must
    /// then accept one more X-Forwarded-For entry per trusted proxy in a row (README,
    /// "Behind a load balancer").
    #[arg(long = "trusted-proxy", value_name = "CIDR", value_parser = parse_network)]
    pub trusted_proxy: Vec<IpNet>,

    /// After SIGINT/SIGTERM, how long to keep accepting connections and serving requests
    /// while /readyz already answers 503, in seconds, so that a load balancer's health check
    /// or Kubernetes takes the instance out of rotation first; then the drain
    /// (--drain-timeout) begins. A second signal ends the delay at once.
    #[arg(long = "drain-delay", value_name = "SECONDS", default_value_t = 0)]
    pub drain_delay: u64,

    /// Which --listen addresses expect a PROXY header, in their order (set from the
    /// command line's order, not a flag of its own).
    #[arg(skip)]
    pub proxy_listen: Vec<bool>,

    /// Which --https-listen addresses expect a PROXY header, in their order.
    #[arg(skip)]
    pub proxy_https_listen: Vec<bool>,
}

impl BalancerArgs {
    /// Attach each `--proxy-protocol` to the `--listen` or `--https-listen` before it.
    fn attach_proxy_protocol(&mut self, matches: &ArgMatches) -> Result<(), String> {
        let positions = |id: &str| -> Vec<usize> {
            matches
                .indices_of(id)
                .map(Iterator::collect)
                .unwrap_or_default()
        };
        let listen = positions("listen");
        let https_listen = positions("https_listen");
        self.proxy_listen = vec![false; listen.len()];
        self.proxy_https_listen = vec![false; https_listen.len()];
        for flag in positions("proxy_protocol") {
            let before =
                |list: &[usize]| list.iter().rposition(|&at| at < flag).map(|i| (i, list[i]));
            match (before(&listen), before(&https_listen)) {
                (Some((i, at)), Some((_, https_at))) if at > https_at => {
                    self.proxy_listen[i] = true
                }
                (Some((i, _)), None) => self.proxy_listen[i] = true,
                (_, Some((i, _))) => self.proxy_https_listen[i] = true,
                (None, None) => {
                    return Err(
                        "--proxy-protocol applies to the --listen or --https-listen just before it; none comes before it".to_owned(),
                    );
                }
            }
        }
        Ok(())
    }
}

/// `--trusted-proxy`: a network, or one address.
fn parse_network(value: &str) -> Result<IpNet, String> {
    value
        .parse::<IpNet>()
        .or_else(|_| value.parse::<std::net::IpAddr>().map(IpNet::from))
        .map_err(|_| format!("expected an address or a network such as 10.0.0.0/8, got {value:?}"))
}

/// `ancm run`'s flags for access logs, metrics, health, status and the logs.
#[derive(Debug, clap::Args)]
pub struct ObservabilityArgs {
    /// Write an access log: one file per application under DIR, in IIS's W3C format by
    /// default (`DIR/ROOT/u_exYYMMDD.log` for `/`, `DIR/ROOT_shop/…` for `/shop`; UTC, a new
    /// file each day), or `-` for standard output. Off by default.
    #[arg(long = "access-log", value_name = "DIR|-")]
    pub access_log: Option<PathBuf>,

    /// The access log's format: `w3c` (IIS's W3C Extended Log File Format) or `json` (JSON
    /// lines with the same fields and the trace id).
    #[arg(
        long = "access-log-format",
        value_name = "FORMAT",
        default_value = "w3c",
        requires = "access_log"
    )]
    pub access_log_format: AccessLogFormat,

    /// Start a new access log file (`u_exYYMMDD_1.log`, …) before one would grow past this
    /// many bytes.
    #[arg(
        long = "access-log-max-bytes",
        value_name = "BYTES",
        requires = "access_log",
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub access_log_max_bytes: Option<u64>,

    /// Serve /metrics (Prometheus), /healthz, /readyz and /status on this address, which
    /// must be a loopback address unless --admin-allow-remote is given. Off by default.
    #[arg(long = "admin-listen", value_name = "ADDR")]
    pub admin_listen: Option<SocketAddr>,

    /// Allow --admin-listen on an address other hosts can reach (the admin endpoints have
    /// no authentication: put them behind a firewall).
    #[arg(long = "admin-allow-remote", requires = "admin_listen")]
    pub admin_allow_remote: bool,

    /// Keep at most N stdoutLogFile files per application: creating one removes the oldest
    /// beyond N. web.config's handler setting stdoutLogMaxFiles (ancm only) wins for its
    /// application.
    #[arg(long = "stdout-log-max-files", value_name = "N")]
    pub stdout_log_max_files: Option<NonZeroUsize>,

    /// Start a new stdoutLogFile file (named with the current time) before one would grow
    /// past this many bytes. web.config's handler setting stdoutLogMaxBytes (ancm only) wins
    /// for its application.
    #[arg(
        long = "stdout-log-max-bytes",
        value_name = "BYTES",
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub stdout_log_max_bytes: Option<u64>,

    /// The gateway's own log on stderr: `text` or `json` (one object per line). RUST_LOG
    /// chooses what is logged, as always.
    #[arg(long = "log-format", value_name = "FORMAT", default_value = "text")]
    pub log_format: LogFormat,
}

/// `--access-log-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AccessLogFormat {
    /// IIS's W3C Extended Log File Format.
    W3c,
    /// JSON lines.
    Json,
}

/// `--log-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Where `ancm status` looks when not told: the address the README's examples give
/// `--admin-listen`.
pub const DEFAULT_ADMIN: &str = "127.0.0.1:9180";

/// `ancm status`.
#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// The gateway's admin listener (its --admin-listen).
    #[arg(long = "admin", value_name = "ADDR", default_value = DEFAULT_ADMIN)]
    pub admin: SocketAddr,

    /// Print the /status JSON as the gateway gave it.
    #[arg(long)]
    pub json: bool,
}

/// `--client-cert`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ClientCertMode {
    /// Ask for a certificate; connections without one are accepted.
    Optional,
    /// Refuse the TLS handshake without a valid certificate.
    Required,
}

/// `ancm check`.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// A site folder (its web.config is read) or a path to a web.config file.
    pub path: PathBuf,

    /// Print one JSON object with keys named as the web.config attributes.
    #[arg(long)]
    pub json: bool,

    /// Also print the values of the environment variables, which may be secrets (by default
    /// only their names; "***" in JSON).
    #[arg(long = "show-values")]
    pub show_values: bool,
}

fn parse_app(value: &str) -> Result<(AppPath, PathBuf), String> {
    let (path, dir) = value
        .split_once('=')
        .ok_or_else(|| format!("expected PATH=SITE_DIR, got {value:?}"))?;
    let path = AppPath::parse(path).map_err(|e| e.to_string())?;
    if dir.is_empty() {
        return Err(format!("no site folder given for application {path}"));
    }
    Ok((path, PathBuf::from(dir)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    fn run_args(line: &[&str]) -> Result<BalancerArgs, String> {
        let matches = Cli::command()
            .try_get_matches_from(line)
            .map_err(|e| e.to_string())?;
        let cli = Cli::from_arg_matches(&matches).map_err(|e| e.to_string())?;
        let (Command::Run(run), Some(("run", m))) = (cli.command, matches.subcommand()) else {
            return Err("not run".to_owned());
        };
        let mut balancer = run.balancer;
        balancer.attach_proxy_protocol(m)?;
        Ok(balancer)
    }

    #[test]
    fn proxy_protocol_applies_to_the_listener_before_it() {
        let b = run_args(&[
            "ancm",
            "run",
            "site",
            "--listen",
            "0.0.0.0:1",
            "--proxy-protocol",
            "--listen",
            "0.0.0.0:2",
            "--https-listen",
            "0.0.0.0:3",
            "--proxy-protocol",
            "--tls-cert",
            "c",
            "--tls-key",
            "k",
            "--listen",
            "0.0.0.0:4",
            "--proxy-protocol",
        ])
        .unwrap();
        assert_eq!(b.proxy_listen, [true, false, true]);
        assert_eq!(b.proxy_https_listen, [true]);
        let err = run_args(&[
            "ancm",
            "run",
            "site",
            "--proxy-protocol",
            "--listen",
            "0.0.0.0:1",
        ]);
        assert!(err.unwrap_err().contains("just before it"));
        let b = run_args(&[
            "ancm",
            "run",
            "site",
            "--trusted-proxy",
            "10.0.0.0/8",
            "--trusted-proxy",
            "192.0.2.7",
        ])
        .unwrap();
        assert_eq!(
            b.trusted_proxy,
            [
                "10.0.0.0/8".parse::<IpNet>().unwrap(),
                "192.0.2.7/32".parse().unwrap()
            ]
        );
        assert!(run_args(&["ancm", "run", "site", "--trusted-proxy", "nope"]).is_err());
    }

    #[test]
    fn app_flag_parses() {
        assert_eq!(parse_app("/shop=sites/shop").unwrap().0.as_str(), "/shop");
        assert!(parse_app("shop=x").is_err());
        assert!(parse_app("/shop").is_err());
        assert!(parse_app("/shop=").is_err());
    }
}
