//! `%VAR%` expansion with Windows `ExpandEnvironmentStrings` semantics (protocol §2.2, §2.3).

/// Expands `%NAME%` references in `text` using `lookup`.
///
/// As `ExpandEnvironmentStrings` does: `%NAME%` is replaced by the value when `lookup`
/// knows NAME; when it does not, `%NAME` is kept as written and the closing `%` is looked at
/// again as the possible start of the next reference (so `%NOPE%PATH%` keeps `%NOPE` and
/// expands `%PATH%`; .NET's own emulation for Unix, `Environment.ExpandEnvironmentVariables`,
/// does the same). `%%` and an unpaired `%` stay as they are. A value is inserted
/// verbatim, never expanded again. Case sensitivity is the lookup's business: see
/// [`process_env`](super::process_env) for the one ancm-rs uses.
///
/// ```
/// use ancm_hosting::config::expand_env_vars;
/// let env = |n: &str| (n == "HOME").then(|| "/home/u".to_string());
/// assert_eq!(expand_env_vars(r"%HOME%\logs %X% 100%", &env), r"/home/u\logs %X% 100%");
/// ```
pub fn expand_env_vars(text: &str, lookup: &dyn Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find('%') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        match after.find('%') {
            Some(end) => {
                let name = &after[..end];
                match (!name.is_empty()).then(|| lookup(name)).flatten() {
                    Some(value) => {
                        out.push_str(&value);
                        rest = &after[end + 1..];
                    }
                    None => {
                        out.push('%');
                        out.push_str(name);
                        // The closing '%' may open the next reference.
                        rest = &after[end..];
                    }
                }
            }
            None => {
                out.push_str(&rest[start..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "A" => Some("1".into()),
            "PATH" => Some("/bin".into()),
            "PCT" => Some("%A%".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn windows_semantics() {
        let x = |s: &str| expand_env_vars(s, &env);
        assert_eq!(x("%A%"), "1");
        assert_eq!(x("x%A%y%A%z"), "x1y1z");
        assert_eq!(x("%NOPE%"), "%NOPE%");
        assert_eq!(x("%NOPE%PATH%"), "%NOPE/bin");
        assert_eq!(x("%%"), "%%");
        assert_eq!(x("%%A%"), "%1");
        assert_eq!(x("100%"), "100%");
        assert_eq!(x("%A"), "%A");
        assert_eq!(x("%PCT%"), "%A%");
        assert_eq!(x("[%EMPTY%]"), "[]");
        assert_eq!(x("é%A%é"), "é1é");
        assert_eq!(x(""), "");
    }
}
