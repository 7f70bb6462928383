//! The child's command line (protocol §2.2): `processPath` resolved against the site folder,
//! the launcher overrides, and `arguments` split into words (Unix) or passed as written
//! (Windows), with Windows-style paths among the arguments made native on Unix. Functions of
//! their inputs and the files of the site folder, unit-tested on every OS; .NET publish
//! folders are taken into account afterwards ([`super::publish`]).
//!
//! On Unix `arguments` is split into words **before** `%VAR%` expansion, and each word is
//! expanded on its own, so a variable's value is always part of one argument and can never
//! add arguments (`%EXTRA%` = `a --b` is the one argument `a --b`). Windows passes one command
//! line string that the child splits itself, as ANCM does: there the expanded value is
//! part of that string and spaces or quotes in it do separate arguments (protocol §8.23).
use std::path::{Path, PathBuf};

use ancm_protocol::env;

use crate::config::expand_env_vars;

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

/// Resolves `processPath` against the site folder (protocol §2.2): a relative path that names
/// an existing file inside the site is used as that file; anything else is kept as written so
/// a bare `dotnet` is found on `PATH`.
pub(crate) fn resolve_program(process_path: &str, site_dir: &Path) -> PathBuf {
    let native = native_separators(process_path);
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

/// A path as written in web.config with native separators: Windows-authored files say
/// `.\app.exe`; on Unix the separator is '/'.
pub(crate) fn native_separators(path: &str) -> String {
    if cfg!(windows) {
        path.to_owned()
    } else {
        path.replace('\\', "/")
    }
}

/// An argument written as a Windows path, in native form on Unix (protocol §2.2): a word
/// with a backslash becomes the same word with slashes when it starts with `.\` or `..\`
/// (`.\MyApp.dll`), or when only the slashed form names an existing file or folder (relative
/// to the site folder). Any other word, and every word on Windows, is kept.
pub(crate) fn native_argument(word: String, site_dir: &Path) -> String {
    if cfg!(windows) || !word.contains('\\') {
        return word;
    }
    let native = word.replace('\\', "/");
    let exists = |p: &str| site_dir.join(p).exists();
    if word.starts_with(".\\") || word.starts_with("..\\") || (!exists(&word) && exists(&native)) {
        native
    } else {
        word
    }
}

/// Removes `.` components so logs and `/proc` show a clean path.
pub(crate) fn normalise(path: &Path) -> PathBuf {
    path.components()
        .filter(|c| !matches!(c, std::path::Component::CurDir))
        .collect()
}

/// Builds the command line from the configuration: `process_path` already expanded,
/// `arguments` as written (split, then expanded word by word, on Unix), honouring the
/// worker's `ANCM_LAUNCHER_PATH` / `ANCM_LAUNCHER_ARGS` overrides (used as given).
pub(crate) fn command_line(
    process_path: &str,
    arguments: &str,
    site_dir: &Path,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> CommandLine {
    let path = lookup(env::ANCM_LAUNCHER_PATH)
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| process_path.to_owned());
    let (args, raw_args) = match lookup(env::ANCM_LAUNCHER_ARGS) {
        Some(launcher_args) => (split_unix_words(&launcher_args), launcher_args),
        None => (
            split_unix_words(arguments)
                .iter()
                .map(|word| native_argument(expand_env_vars(word, lookup), site_dir))
                .collect(),
            expand_env_vars(arguments, lookup),
        ),
    };
    CommandLine {
        program: resolve_program(&path, site_dir),
        args,
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
pub(crate) fn windows_command_line(program: &Path, raw_args: &str) -> String {
    format!("\"{}\" {}", program.display(), raw_args)
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[cfg(unix)]
    #[test]
    fn windows_paths_in_arguments_are_made_native() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("bin/Release")).expect("mkdir");
        std::fs::write(dir.path().join("bin/Release/app.dll"), b"").expect("write");
        let cl = command_line(
            "dotnet",
            r#".\app.dll ..\shared\x.json bin\Release\app.dll "a\b" --pattern=\d+ C:\x"#,
            dir.path(),
            &|_| None,
        );
        assert_eq!(
            cl.args,
            [
                "./app.dll",
                "../shared/x.json",
                "bin/Release/app.dll",
                r"a\b",
                r"--pattern=\d+",
                r"C:\x"
            ]
        );
        // A word naming an existing file as written is left alone.
        std::fs::write(dir.path().join(r"odd\name"), b"").expect("write");
        assert_eq!(native_argument(r"odd\name".into(), dir.path()), r"odd\name");
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
        let cl = command_line("dotnet", "app.dll", dir.path(), &|_| None);
        assert_eq!(cl.args, ["app.dll"]);
        assert_eq!(cl.raw_args, "app.dll");
        assert_eq!(
            windows_command_line(&cl.program, &cl.raw_args),
            "\"dotnet\" app.dll"
        );
    }
}
