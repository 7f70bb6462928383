//! Temporary site folders, as `ancm run` and `ancm_hosting::Application` take them, and
//! web.config files that run the test backends.
//!
//! ```
//! use test_support::site;
//!
//! let dir = site::with_config(&site::python_echo_config(r#"stdoutLogEnabled="false""#, &[("TEST_MARK", "1")]));
//! let text = std::fs::read_to_string(dir.path().join("web.config")).unwrap();
//! assert!(text.contains(r#"<environmentVariable name="TEST_MARK" value="1" />"#));
//! ```
use std::fmt::Write as _;

use tempfile::TempDir;

use crate::backends::{python_echo, test_backend};

/// An empty site folder, removed when dropped.
///
/// # Panics
///
/// If no temporary folder can be made.
pub fn empty() -> TempDir {
    tempfile::tempdir().expect("a temporary folder")
}

/// A site folder with `web.config` = `config`, removed when dropped.
///
/// # Panics
///
/// If it cannot be written.
pub fn with_config(config: &str) -> TempDir {
    let dir = empty();
    std::fs::write(dir.path().join("web.config"), config).expect("write web.config");
    dir
}

/// A web.config that runs the Rust echo backend: ancm-hosting's `test_backend` example
/// ([`backends::test_backend`](crate::backends::test_backend)) in `echo` mode, which answers as the python echo backend does
/// (JSON of what it saw; `…/crash`, `…/slow?ms=N`, `…/ws`). Out of process, with
/// `startupTimeLimit="20"` and `shutdownTimeLimit="5"`, then `attrs` on the `<aspNetCore>`
/// element and `env` as its environment variables.
pub fn rust_echo_config(attrs: &str, env: &[(&str, &str)]) -> String {
    test_backend_config("echo", attrs, env)
}

/// [`rust_echo_config`] with `test_backend` in another mode (`ANCM_TEST_MODE`: `leaky`,
/// `ignore-event`, …; see the example's documentation).
pub fn test_backend_config(mode: &str, attrs: &str, env: &[(&str, &str)]) -> String {
    let mut vars = env.to_vec();
    vars.push(("ANCM_TEST_MODE", mode));
    config(&test_backend().display().to_string(), "", attrs, &vars, &[])
}

/// A web.config that runs `python3` with the python echo backend
/// ([`backends::python_echo`](crate::backends::python_echo)), out of process, with
/// `startupTimeLimit="20"` and `shutdownTimeLimit="5"`, then `attrs` on the `<aspNetCore>`
/// element and `env` as its environment variables.
pub fn python_echo_config(attrs: &str, env: &[(&str, &str)]) -> String {
    python_echo_config_with_settings(attrs, env, &[])
}

/// [`python_echo_config`] with `settings` as its `<handlerSettings>` (none: no element).
pub fn python_echo_config_with_settings(
    attrs: &str,
    env: &[(&str, &str)],
    settings: &[(&str, &str)],
) -> String {
    let arguments = format!("&quot;{}&quot;", python_echo().display());
    config("python3", &arguments, attrs, env, settings)
}

/// The web.config the configurations above share.
fn config(
    process_path: &str,
    arguments: &str,
    attrs: &str,
    env: &[(&str, &str)],
    settings: &[(&str, &str)],
) -> String {
    let vars = env.iter().fold(String::new(), |mut vars, (name, value)| {
        let _ = writeln!(
            vars,
            "        <environmentVariable name=\"{name}\" value=\"{value}\" />"
        );
        vars
    });
    let handler = if settings.is_empty() {
        String::new()
    } else {
        let items = settings
            .iter()
            .fold(String::new(), |mut items, (name, value)| {
                let _ = writeln!(
                    items,
                    "          <handlerSetting name=\"{name}\" value=\"{value}\" />"
                );
                items
            });
        format!("        <handlerSettings>\n{items}        </handlerSettings>\n")
    };
    format!(
        r#"<?xml version="1.0" encoding="utf-8"?>
<configuration>
  <location path="." inheritInChildApplications="false">
    <system.webServer>
      <aspNetCore processPath="{process_path}" arguments="{arguments}" hostingModel="outofprocess" startupTimeLimit="20" shutdownTimeLimit="5" {attrs}>
        <environmentVariables>
{vars}        </environmentVariables>
{handler}      </aspNetCore>
    </system.webServer>
  </location>
</configuration>
"#
    )
}
