//! Environment variable names the front sets for the backend process (protocol §2.3) and
//! the module reads for itself (§1.8, §2.2, §2.12).
//!
//! ```
//! assert_eq!(ancm_protocol::env::PORT, "ASPNETCORE_PORT");
//! ```

/// Loopback port the backend must listen on.
pub const PORT: &str = "ASPNETCORE_PORT";
/// The pairing token the backend expects in [`crate::headers::TOKEN`].
pub const TOKEN: &str = "ASPNETCORE_TOKEN";
/// The application's virtual path (`/` or `/sub/app`): the backend's path base.
pub const APPL_PATH: &str = "ASPNETCORE_APPL_PATH";
/// Authentication schemes enabled in IIS, see [`crate::http_auth`].
pub const IIS_HTTPAUTH: &str = "ASPNETCORE_IIS_HTTPAUTH";
/// `true`/`false`: whether the front relays WebSocket upgrades.
pub const IIS_WEBSOCKETS_SUPPORTED: &str = "ASPNETCORE_IIS_WEBSOCKETS_SUPPORTED";
/// Hosting startup assemblies; ANCM appends [`IIS_INTEGRATION_ASSEMBLY`].
pub const HOSTING_STARTUP_ASSEMBLIES: &str = "ASPNETCORE_HOSTINGSTARTUPASSEMBLIES";
/// The assembly ANCM appends to [`HOSTING_STARTUP_ASSEMBLIES`], after a `;`.
pub const IIS_INTEGRATION_ASSEMBLY: &str = "Microsoft.AspNetCore.Server.IISIntegration";
/// The physical path (IIS application ID out-of-process; see protocol §2.3).
pub const IIS_PHYSICAL_PATH: &str = "ASPNETCORE_IIS_PHYSICAL_PATH";
/// The site's single HTTPS port, if it has one.
pub const ANCM_HTTPS_PORT: &str = "ASPNETCORE_ANCM_HTTPS_PORT";
/// `Development` enables detailed error pages.
pub const ENVIRONMENT: &str = "ASPNETCORE_ENVIRONMENT";
/// Fallback of [`ENVIRONMENT`].
pub const DOTNET_ENVIRONMENT: &str = "DOTNET_ENVIRONMENT";
/// `1`/`true` enables detailed error pages.
pub const DETAILED_ERRORS: &str = "ASPNETCORE_DETAILEDERRORS";
/// Module debug log levels and sinks (protocol §2.12).
pub const MODULE_DEBUG: &str = "ASPNETCORE_MODULE_DEBUG";
/// Module debug log file (protocol §2.12).
pub const MODULE_DEBUG_FILE: &str = "ASPNETCORE_MODULE_DEBUG_FILE";
/// Replaces `processPath` when set in the front's own environment (Visual Studio).
pub const ANCM_LAUNCHER_PATH: &str = "ANCM_LAUNCHER_PATH";
/// Replaces `arguments` when set in the front's own environment (Visual Studio).
pub const ANCM_LAUNCHER_ARGS: &str = "ANCM_LAUNCHER_ARGS";
/// `1`/`true`: the front's own environment wins over web.config values.
pub const ANCM_PREFER_ENVIRONMENT_VARIABLES: &str = "ANCM_PREFER_ENVIRONMENT_VARIABLES";
/// An extra link on ANCM error pages.
pub const ANCM_ADDITIONAL_ERROR_PAGE_LINK: &str = "ANCM_ADDITIONAL_ERROR_PAGE_LINK";
/// ancm-rs only (protocol §8.42): the Unix-domain socket path the backend listens on instead
/// of [`PORT`], set when the application opts in; a backend built on `iis-integration` binds
/// it. ANCM never sets it.
pub const ANCM_UNIX_SOCKET: &str = "ANCM_UNIX_SOCKET";

/// Parse a .NET boolean (`true`/`false`, any case, surrounding whitespace allowed).
///
/// ```
/// use ancm_protocol::env::parse_dotnet_bool;
/// assert_eq!(parse_dotnet_bool(" True "), Some(true));
/// assert_eq!(parse_dotnet_bool("1"), None);
/// ```
pub fn parse_dotnet_bool(value: &str) -> Option<bool> {
    let value = value.trim();
    if value.eq_ignore_ascii_case("true") {
        Some(true)
    } else if value.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}
