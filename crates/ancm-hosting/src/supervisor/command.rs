//! Building the child's command line and environment from the configuration (contract §2.2,
//! §2.3, §2.4): pure functions, unit-tested on every OS.
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use ancm_protocol::env;

/// What to execute: the program and its arguments, in the target OS's form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CommandLine {
    /// The program: a resolved path, or a bare name for the `PATH` lookup.
    pub(crate) program: PathBuf,
    /// Unix: the arguments split into words. Windows: unused (see `raw`).
    pub(crate) args: Vec<String>,
    /// The arguments exactly as configured (Windows passes `"program" args` as one string).
    pub(crate) raw_args: String,
}

/// Resolves `processPath` against the site folder (contract §2.2): a relative path that names
/// an existing file inside the site is used as that file; anything else is kept as written so
/// a bare `dotnet` is found on `PATH`.
pub(crate) fn resolve_program(process_path: &str, site_dir: &Path) -> PathBuf {
    // Windows-authored web.config files say `.\app.exe`; on Unix the separator is '/'.
    let native: String = if cfg!(windows) {
        process_path.to_owned()
    } else {
        process_path.replace('\\', "/")
    };
    let candidate = Path::new(&native);
    // ANCM skips the site-relative attempt for anything with ':' (drive letters) or '%'.
    if candidate.is_absolute() || native.contains(':') || native.contains('%') {
        return candidate.to_path_buf();
    }
    let joined = site_dir.join(candidate);
    if joined.is_file() {
        return normalise(&joined);
    }
    candidate.to_path_buf()
}

/// Removes `.` components so logs and `/proc` show a clean path.
fn normalise(path: &Path) -> PathBuf {
    path.components()
        .filter(|c| !matches!(c, std::path::Component::CurDir))
        .collect()
}

/// Builds the command line from the (expanded) configuration, honouring the worker's
/// `ANCM_LAUNCHER_PATH` / `ANCM_LAUNCHER_ARGS` overrides.
pub(crate) fn command_line(
    process_path: &str,
    arguments: &str,
    site_dir: &Path,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> CommandLine {
    let path = lookup(env::ANCM_LAUNCHER_PATH)
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| process_path.to_owned());
    let raw_args = lookup(env::ANCM_LAUNCHER_ARGS).unwrap_or_else(|| arguments.to_owned());
    CommandLine {
        program: resolve_program(&path, site_dir),
        args: split_unix_words(&raw_args),
        raw_args,
    }
}

/// Splits an argument string the way a POSIX shell splits words (without expansions):
/// whitespace separates, `'…'` is literal, `"…"` groups with `\"`, `\\`, `\$`, `` \` ``
/// escapes, and a backslash outside quotes escapes whitespace, a quote or a backslash (and is
/// literal otherwise, unlike a shell, for Windows-authored paths).
pub(crate) fn split_unix_words(s: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                for c in chars.by_ref() {
                    if c == '\'' {
                        break;
                    }
                    cur.push(c);
                }
            }
            '"' => {
                in_word = true;
                while let Some(c) = chars.next() {
                    match c {
                        '"' => break,
                        '\\' => match chars.peek() {
                            Some(&n @ ('"' | '\\' | '$' | '`')) => {
                                cur.push(n);
                                chars.next();
                            }
                            _ => cur.push('\\'),
                        },
                        c => cur.push(c),
                    }
                }
            }
            '\\' => {
                in_word = true;
                // Only an escape before whitespace, a quote or a backslash, so Windows-style
                // paths such as `.\app.dll` survive.
                match chars.peek() {
                    Some(&n) if n.is_whitespace() || matches!(n, '"' | '\'' | '\\') => {
                        cur.push(n);
                        chars.next();
                    }
                    _ => cur.push('\\'),
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    words
}

/// The Windows command line ANCM builds: `"path" arguments` (always a space after the quote).
/// `Command::raw_arg` after the (quoted) program produces the same string.
#[cfg(test)]
pub(crate) fn windows_command_line(program: &Path, raw_args: &str) -> String {
    format!("\"{}\" {}", program.display(), raw_args)
}

/// How the child's port is chosen (contract §2.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PortChoice {
    /// A random free port in 10000–48000 per attempt.
    Random,
    /// `ASPNETCORE_PORT` from web.config: the raw text is what the child receives.
    Fixed {
        /// As written.
        raw: String,
        /// The parsed value.
        port: u16,
    },
}

/// The configured port is outside 1025–48000 or not a number (a critical start error).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("ASPNETCORE_PORT {raw:?} is not a port in the range 1025-48000")]
pub(crate) struct InvalidPort {
    pub(crate) raw: String,
}

/// Reads a configured `ASPNETCORE_PORT`: parsed like C's `atoi` (leading digits; anything
/// else is 0), valid in 1025–48000. Empty means random.
pub(crate) fn port_choice(configured: Option<&str>) -> Result<PortChoice, InvalidPort> {
    let Some(raw) = configured.filter(|v| !v.is_empty()) else {
        return Ok(PortChoice::Random);
    };
    let n = atoi(raw);
    match u16::try_from(n) {
        Ok(port) if (1025..=48000).contains(&port) => Ok(PortChoice::Fixed {
            raw: raw.to_owned(),
            port,
        }),
        _ => Err(InvalidPort {
            raw: raw.to_owned(),
        }),
    }
}

/// C `atoi` without overflow: optional whitespace and sign, then leading digits.
fn atoi(s: &str) -> i64 {
    let s = s.trim_start();
    let (neg, digits) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let mut n: i64 = 0;
    for b in digits.bytes().take_while(u8::is_ascii_digit) {
        n = n.saturating_mul(10).saturating_add(i64::from(b - b'0'));
    }
    if neg { -n } else { n }
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
}

/// The variables set on top of the worker's inherited environment (contract §2.3), in order.
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
        // ANCM appends unconditionally (contract §6.14); we skip an exact duplicate.
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
    table
        .into_iter()
        .map(|(n, v)| (OsString::from(n), OsString::from(v)))
        .collect()
}

/// Whether the 502.5 page may show details (contract §1.8): `ASPNETCORE_DETAILEDERRORS` is
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

/// `stdoutLogFile` resolved against the site folder, plus `_<UTC yyyyMMddHHmmss>_<pid>.log`.
pub(crate) fn stdout_log_path(
    stdout_log_file: &str,
    site_dir: &Path,
    now: std::time::SystemTime,
    pid: u32,
) -> PathBuf {
    let native: String = if cfg!(windows) {
        stdout_log_file.to_owned()
    } else {
        stdout_log_file.replace('\\', "/")
    };
    let base = normalise(&site_dir.join(native));
    let mut name = base.into_os_string();
    name.push(format!("_{}_{pid}.log", utc_stamp(now)));
    PathBuf::from(name)
}

/// `yyyyMMddHHmmss` in UTC.
pub(crate) fn utc_stamp(now: std::time::SystemTime) -> String {
    let secs = now
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}{m:02}{d:02}{:02}{:02}{:02}",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = u32::try_from(doy - (153 * mp + 2) / 5 + 1).unwrap_or(1);
    let m = u32::try_from(if mp < 10 { mp + 3 } else { mp - 9 }).unwrap_or(1);
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn words_split_like_a_shell() {
        assert_eq!(split_unix_words(""), Vec::<String>::new());
        assert_eq!(split_unix_words("  a  b "), ["a", "b"]);
        assert_eq!(
            split_unix_words(r#".\app.dll "with space" 'single "q"' a\ b "x\"y" ''"#),
            [
                r".\app.dll",
                "with space",
                "single \"q\"",
                "a b",
                "x\"y",
                ""
            ]
        );
        assert_eq!(split_unix_words(r#"un"closed"#), ["unclosed"]);
    }

    #[test]
    fn port_rules() {
        assert_eq!(port_choice(None), Ok(PortChoice::Random));
        assert_eq!(port_choice(Some("")), Ok(PortChoice::Random));
        assert_eq!(
            port_choice(Some("1025")),
            Ok(PortChoice::Fixed {
                raw: "1025".into(),
                port: 1025
            })
        );
        assert_eq!(
            port_choice(Some("48000abc")),
            Ok(PortChoice::Fixed {
                raw: "48000abc".into(),
                port: 48000
            })
        );
        for bad in [
            "1024",
            "48001",
            "noninteger",
            "-5000",
            "99999999999999999999",
        ] {
            assert!(port_choice(Some(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn program_resolution() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("app"), b"").expect("write");
        assert_eq!(
            resolve_program(r".\app", dir.path()),
            dir.path().join("app")
        );
        assert_eq!(resolve_program("app", dir.path()), dir.path().join("app"));
        assert_eq!(
            resolve_program("dotnet", dir.path()),
            PathBuf::from("dotnet")
        );
        assert_eq!(
            resolve_program("/bin/sh", dir.path()),
            PathBuf::from("/bin/sh")
        );
    }

    #[test]
    fn launcher_overrides() {
        let dir = tempfile::tempdir().expect("tempdir");
        let lookup = |n: &str| match n {
            "ANCM_LAUNCHER_PATH" => Some("python3".to_owned()),
            "ANCM_LAUNCHER_ARGS" => Some("-u 'x y'".to_owned()),
            _ => None,
        };
        let cl = command_line("dotnet", "app.dll", dir.path(), &lookup);
        assert_eq!(cl.program, PathBuf::from("python3"));
        assert_eq!(cl.args, ["-u", "x y"]);
        let cl = command_line("dotnet", "app.dll", dir.path(), &no_env);
        assert_eq!(cl.args, ["app.dll"]);
        assert_eq!(
            windows_command_line(&cl.program, &cl.raw_args),
            "\"dotnet\" app.dll"
        );
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

    #[test]
    fn stdout_names() {
        let t = UNIX_EPOCH + Duration::from_secs(1_704_164_645); // 2024-01-02 03:04:05 UTC
        assert_eq!(utc_stamp(t), "20240102030405");
        let p = stdout_log_path(r".\logs\stdout", Path::new("/site"), t, 4242);
        if cfg!(windows) {
            assert!(
                p.to_string_lossy()
                    .ends_with(r"logs\stdout_20240102030405_4242.log")
            );
        } else {
            assert_eq!(
                p,
                PathBuf::from("/site/logs/stdout_20240102030405_4242.log")
            );
        }
        assert_eq!(
            utc_stamp(UNIX_EPOCH + Duration::from_secs(951_782_400)),
            "20000229000000"
        );
    }
}
