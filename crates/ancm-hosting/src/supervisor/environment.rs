//! The child's environment (protocol §2.3) and the detailed-errors switch read from it
//! (§1.8): pure functions over a lookup, unit-tested on every OS.
use std::ffi::OsString;

use ancm_protocol::env;

/// A variable of the worker's (this process's) environment, by its exact name.
pub(crate) fn worker_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// Everything the environment table needs besides the configuration.
#[derive(Debug, Clone)]
pub(crate) struct EnvInputs<'a> {
    /// web.config `<environmentVariables>`, values already `%VAR%`-expanded, de-duplicated.
    pub(crate) config_vars: &'a [(String, String)],
    /// The port text the child receives.
    pub(crate) port: &'a str,
    /// `ASPNETCORE_APPL_PATH`.
    pub(crate) app_path: &'a str,
    /// `ASPNETCORE_TOKEN`.
    pub(crate) token: &'a str,
    /// `ASPNETCORE_IIS_HTTPAUTH`.
    pub(crate) http_auth: &'a str,
    /// `ASPNETCORE_IIS_WEBSOCKETS_SUPPORTED`.
    pub(crate) websockets: bool,
    /// `ANCM_UNIX_SOCKET`, when the child is reached over a Unix-domain socket (§8.42).
    pub(crate) unix_socket: Option<&'a str>,
}

/// The variables set on top of the worker's inherited environment (protocol §2.3), in order.
/// `lookup` reads the worker's environment.
pub(crate) fn child_env(
    inputs: &EnvInputs<'_>,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Vec<(OsString, OsString)> {
    let prefer_worker = lookup(env::ANCM_PREFER_ENVIRONMENT_VARIABLES)
        .is_some_and(|v| v == "1" || v.eq_ignore_ascii_case("true"));
    let mut table: Vec<(String, String)> = Vec::with_capacity(inputs.config_vars.len() + 6);
    let set = |table: &mut Vec<(String, String)>, name: &str, value: String| {
        if let Some(slot) = table.iter_mut().find(|(n, _)| n.eq_ignore_ascii_case(name)) {
            *slot = (name.to_owned(), value);
        } else {
            table.push((name.to_owned(), value));
        }
    };
    for (name, value) in inputs.config_vars {
        let value = if prefer_worker {
            lookup(name).unwrap_or_else(|| value.clone())
        } else {
            value.clone()
        };
        set(&mut table, name, value);
    }
    let from_config = |name: &str| {
        inputs
            .config_vars
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case(name))
    };
    if !from_config(env::HOSTING_STARTUP_ASSEMBLIES) {
        // ANCM appends unconditionally (protocol §6.14); we skip an exact duplicate.
        let worker = lookup(env::HOSTING_STARTUP_ASSEMBLIES).unwrap_or_default();
        let value = if worker
            .split(';')
            .any(|a| a.trim().eq_ignore_ascii_case(env::IIS_INTEGRATION_ASSEMBLY))
        {
            worker
        } else {
            format!("{worker};{}", env::IIS_INTEGRATION_ASSEMBLY)
        };
        set(&mut table, env::HOSTING_STARTUP_ASSEMBLIES, value);
    }
    set(&mut table, env::IIS_HTTPAUTH, inputs.http_auth.to_owned());
    set(
        &mut table,
        env::IIS_WEBSOCKETS_SUPPORTED,
        if inputs.websockets { "true" } else { "false" }.to_owned(),
    );
    set(&mut table, env::PORT, inputs.port.to_owned());
    set(&mut table, env::APPL_PATH, inputs.app_path.to_owned());
    set(&mut table, env::TOKEN, inputs.token.to_owned());
    if let Some(path) = inputs.unix_socket {
        set(&mut table, env::ANCM_UNIX_SOCKET, path.to_owned());
    }
    table
        .into_iter()
        .map(|(n, v)| (OsString::from(n), OsString::from(v)))
        .collect()
}

/// A variable as the child gets it (protocol §2.3): web.config's `<environmentVariables>`
/// (values expanded) unless `ANCM_PREFER_ENVIRONMENT_VARIABLES` lets the worker's own value
/// win, else the worker's. The module's own variables (`ASPNETCORE_PORT`, …) are not looked
/// at: this is for what the child's tools read (`DOTNET_ROOT`, `PATH`, `HOME`).
pub(crate) fn child_var(
    name: &str,
    config_vars: &[(String, String)],
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Option<String> {
    let prefer_worker = lookup(env::ANCM_PREFER_ENVIRONMENT_VARIABLES)
        .is_some_and(|v| v == "1" || v.eq_ignore_ascii_case("true"));
    let configured = || {
        config_vars
            .iter()
            .rev()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    if prefer_worker {
        lookup(name).or_else(configured)
    } else {
        configured().or_else(|| lookup(name))
    }
}

/// Whether the 502.5 page may show details (protocol §1.8): `ASPNETCORE_DETAILEDERRORS` is
/// `1`/`true`, or `ASPNETCORE_ENVIRONMENT`/`DOTNET_ENVIRONMENT` is `Development`; each read
/// from the worker's environment first, then from web.config's variables.
pub(crate) fn detailed_errors(
    config_vars: &[(String, String)],
    lookup: &dyn Fn(&str) -> Option<String>,
) -> bool {
    let get = |name: &str| {
        lookup(name).or_else(|| {
            config_vars
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone())
        })
    };
    let detailed = get(env::DETAILED_ERRORS)
        .is_some_and(|v| v.trim() == "1" || v.trim().eq_ignore_ascii_case("true"));
    let dev =
        |name| get(name).is_some_and(|v: String| v.trim().eq_ignore_ascii_case("Development"));
    detailed || dev(env::ENVIRONMENT) || dev(env::DOTNET_ENVIRONMENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn env_table() {
        let vars = vec![
            ("aspnetcore_token".to_owned(), "ignored-here".to_owned()),
            ("FOO".to_owned(), "bar".to_owned()),
        ];
        let inputs = EnvInputs {
            config_vars: &vars,
            port: "12345",
            app_path: "/app",
            token: "tok",
            http_auth: "anonymous;",
            websockets: true,
            unix_socket: None,
        };
        let lookup = |n: &str| (n == "ASPNETCORE_HOSTINGSTARTUPASSEMBLIES").then(|| "A".to_owned());
        let table = child_env(&inputs, &lookup);
        let get = |n: &str| {
            table
                .iter()
                .find(|(k, _)| k.to_str() == Some(n))
                .and_then(|(_, v)| v.to_str())
                .map(str::to_owned)
        };
        assert_eq!(get("FOO").as_deref(), Some("bar"));
        assert_eq!(get("ASPNETCORE_PORT").as_deref(), Some("12345"));
        assert_eq!(get("ASPNETCORE_TOKEN").as_deref(), Some("tok"));
        assert_eq!(get("ASPNETCORE_APPL_PATH").as_deref(), Some("/app"));
        assert_eq!(
            get("ASPNETCORE_IIS_HTTPAUTH").as_deref(),
            Some("anonymous;")
        );
        assert_eq!(
            get("ASPNETCORE_IIS_WEBSOCKETS_SUPPORTED").as_deref(),
            Some("true")
        );
        assert_eq!(
            get("ASPNETCORE_HOSTINGSTARTUPASSEMBLIES").as_deref(),
            Some("A;Microsoft.AspNetCore.Server.IISIntegration")
        );
        assert_eq!(
            table
                .iter()
                .filter(|(k, _)| k.eq_ignore_ascii_case("aspnetcore_token"))
                .count(),
            1
        );
        let table = child_env(&inputs, &no_env);
        assert!(
            table
                .iter()
                .any(|(k, v)| k == "ASPNETCORE_HOSTINGSTARTUPASSEMBLIES"
                    && v == ";Microsoft.AspNetCore.Server.IISIntegration")
        );
    }

    #[test]
    fn child_var_prefers_web_config_unless_told_otherwise() {
        let vars = vec![("dotnet_root".to_owned(), "/from/web.config".to_owned())];
        let worker = |n: &str| match n {
            "DOTNET_ROOT" => Some("/from/worker".to_owned()),
            "PATH" => Some("/usr/bin".to_owned()),
            _ => None,
        };
        assert_eq!(
            child_var("DOTNET_ROOT", &vars, &worker).as_deref(),
            Some("/from/web.config")
        );
        assert_eq!(
            child_var("PATH", &vars, &worker).as_deref(),
            Some("/usr/bin")
        );
        assert_eq!(child_var("HOME", &vars, &worker), None);
        let prefer = |n: &str| match n {
            "ANCM_PREFER_ENVIRONMENT_VARIABLES" => Some("true".to_owned()),
            other => worker(other),
        };
        assert_eq!(
            child_var("DOTNET_ROOT", &vars, &prefer).as_deref(),
            Some("/from/worker")
        );
    }

    #[test]
    fn detailed_errors_sources() {
        let dev = vec![(
            "ASPNETCORE_ENVIRONMENT".to_owned(),
            "development".to_owned(),
        )];
        assert!(detailed_errors(&dev, &no_env));
        assert!(!detailed_errors(&[], &no_env));
        let prod = |n: &str| (n == "ASPNETCORE_ENVIRONMENT").then(|| "Production".to_owned());
        assert!(!detailed_errors(&dev, &prod));
        let on = |n: &str| (n == "ASPNETCORE_DETAILEDERRORS").then(|| "TRUE".to_owned());
        assert!(detailed_errors(&[], &on));
    }
}
