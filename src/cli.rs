//! Command line of the `ancm` gateway.
use std::net::SocketAddr;
use std::path::PathBuf;

use ancm_protocol::AppPath;
use clap::{Parser, Subcommand, ValueEnum};

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

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve a site folder (and optionally more applications) until SIGINT/SIGTERM.
    Run(Box<RunArgs>),
    /// Validate a web.config and print the effective <aspNetCore> configuration.
    ///
    /// Exit status 0 when valid; 2 when invalid, with `FILE:LINE:COL: message` on stderr.
    Check(CheckArgs),
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
    /// Repeatable. X-Forwarded-Proto is `https` for requests that arrive here.
    #[arg(long = "https-listen", value_name = "ADDR", requires_all = ["tls_cert", "tls_key"])]
    pub https_listen: Vec<SocketAddr>,

    /// PEM file with the server certificate chain for --https-listen.
    #[arg(long = "tls-cert", value_name = "PEM")]
    pub tls_cert: Option<PathBuf>,

    /// PEM file with the private key (PKCS#8, PKCS#1 or SEC1) for --https-listen.
    #[arg(long = "tls-key", value_name = "PEM")]
    pub tls_key: Option<PathBuf>,

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

    #[test]
    fn app_flag_parses() {
        assert_eq!(parse_app("/shop=sites/shop").unwrap().0.as_str(), "/shop");
        assert!(parse_app("shop=x").is_err());
        assert!(parse_app("/shop").is_err());
        assert!(parse_app("/shop=").is_err());
    }
}
