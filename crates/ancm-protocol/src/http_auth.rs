//! `ASPNETCORE_IIS_HTTPAUTH`: the IIS authentication methods enabled for the app
//! (protocol §2.3, §4.1).
//!
//! ```
//! use ancm_protocol::http_auth::{HttpAuth, auth_enabled};
//! let v = HttpAuth { windows: true, basic: false, anonymous: true }.env_value();
//! assert_eq!(v, "windows;anonymous;");
//! assert!(auth_enabled(&v));
//! assert!(!auth_enabled("anonymous;"));
//! assert!(auth_enabled("none")); // ANCM's quirk, kept
//! ```

/// Which IIS authentication methods are enabled at the application's config path.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HttpAuth {
    /// Windows authentication (Negotiate/NTLM).
    pub windows: bool,
    /// Basic authentication.
    pub basic: bool,
    /// Anonymous access.
    pub anonymous: bool,
}

impl HttpAuth {
    /// The value ANCM puts in the env var: `windows;` `basic;` `anonymous;` in that order for
    /// each enabled method, or `none`.
    pub fn env_value(&self) -> String {
        let mut v = String::new();
        for (on, name) in [
            (self.windows, "windows;"),
            (self.basic, "basic;"),
            (self.anonymous, "anonymous;"),
        ] {
            if on {
                v.push_str(name);
            }
        }
        if v.is_empty() { "none".to_owned() } else { v }
    }
}

/// Whether the backend enables its Windows authentication handling for this env value:
/// empty → enabled (back-compat); otherwise enabled if any `;`-separated non-empty part is
/// not `anonymous` (case-insensitive). So `none` enables it, as in ANCM.
pub fn auth_enabled(value: &str) -> bool {
    if value.is_empty() {
        return true;
    }
    value
        .split(';')
        .filter(|p| !p.is_empty())
        .any(|p| !p.eq_ignore_ascii_case("anonymous"))
}
