//! Every file of `tests/fixtures/webconfig-corpus/` (60 real web.config files) against
//! EXPECTED.tsv.
//!
//! Three outcomes, each asserted exactly: files without a processPath give "Attribute
//! 'processPath' is required." at their `<aspNetCore>` element; XDT transforms (marked
//! TRANSFORM in SOURCES.md) are rejected as transforms at their root element, including the
//! two that would also read as full configurations (022, 048), because a transform is never
//! what IIS loads; every other file yields exactly the values in EXPECTED.tsv.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use ancm_hosting::config::{self, AspNetCoreConfig, ConfigErrorKind, HostingModel};

const CORPUS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/webconfig-corpus"
);

fn corpus() -> PathBuf {
    PathBuf::from(CORPUS)
}

/// EXPECTED.tsv as file name → column name → cell.
fn expected() -> BTreeMap<String, BTreeMap<String, String>> {
    let text = std::fs::read_to_string(corpus().join("EXPECTED.tsv")).expect("EXPECTED.tsv");
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().expect("header").split('\t').collect();
    lines
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let cells: Vec<&str> = l.split('\t').collect();
            assert_eq!(cells.len(), header.len(), "EXPECTED.tsv row {l:?}");
            let row = header
                .iter()
                .zip(&cells)
                .map(|(h, c)| ((*h).to_owned(), (*c).to_owned()))
                .collect();
            (cells[0].to_owned(), row)
        })
        .collect()
}

/// Files SOURCES.md marks as TRANSFORM.
fn transforms() -> BTreeSet<String> {
    let text = std::fs::read_to_string(corpus().join("SOURCES.md")).expect("SOURCES.md");
    text.lines()
        .filter(|l| l.starts_with("| `") && l.contains("TRANSFORM"))
        .filter_map(|l| l.split('`').nth(1).map(str::to_owned))
        .collect()
}

fn corpus_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(corpus())
        .expect("corpus directory beside the repository")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "config"))
        .collect();
    files.sort();
    files
}

fn name(p: &Path) -> String {
    p.file_name()
        .expect("file name")
        .to_string_lossy()
        .into_owned()
}

#[test]
fn corpus_matches_expected_tsv() {
    let expected = expected();
    let transforms = transforms();
    let files = corpus_files();
    assert_eq!(files.len(), 60, "corpus size");
    assert_eq!(
        files.iter().map(|p| name(p)).collect::<BTreeSet<_>>(),
        expected.keys().cloned().collect::<BTreeSet<_>>(),
        "EXPECTED.tsv lists exactly the corpus files"
    );
    assert_eq!(
        transforms.iter().map(|t| &t[..3]).collect::<Vec<_>>(),
        ["021", "022", "032", "046", "048", "055"]
    );

    let (mut ok, mut missing, mut rejected) = (Vec::new(), Vec::new(), Vec::new());
    for path in &files {
        let file = name(path);
        let row = &expected[&file];
        let result = config::load(path);
        if transforms.contains(&file) {
            let err = result.expect_err(&file);
            assert_eq!(err.kind(), ConfigErrorKind::Transform, "{file}: {err}");
            assert!(
                err.message().starts_with(&format!(
                    "'{file}' is a web.config transform (XDT), not a configuration file"
                )),
                "{file}: {err}"
            );
            // Located at the root element, which is on line 1 or 2 in every one of them.
            let loc = err.location().expect("location");
            assert!(loc.line <= 2 && loc.column == 1, "{file}: {err}");
            rejected.push(file);
        } else if row["processPath"].is_empty() {
            let err = result.expect_err(&file);
            assert_eq!(
                err.kind(),
                ConfigErrorKind::MissingAttribute,
                "{file}: {err}"
            );
            assert_eq!(
                err.message(),
                "Attribute 'processPath' is required.",
                "{file}"
            );
            let loc = err.location().expect("location");
            assert_eq!(loc.file, *path);
            let text = std::fs::read_to_string(path).expect("read");
            let line = text.lines().nth(loc.line as usize - 1).expect("line");
            let at: String = line
                .chars()
                .skip(loc.column as usize - 1)
                .take(11)
                .collect();
            assert_eq!(at, "<aspNetCore", "{file}: {err}");
            missing.push(file);
        } else {
            let cfg = result.unwrap_or_else(|e| panic!("{file}: {e}"));
            check_values(&file, path, row, &cfg);
            ok.push(file);
        }
    }
    eprintln!(
        "corpus: {} parsed with the expected values, {} without processPath, {} transforms rejected",
        ok.len(),
        missing.len(),
        rejected.len()
    );
    assert_eq!((ok.len(), missing.len(), rejected.len()), (51, 3, 6));
    assert_eq!(
        missing.iter().map(|f| &f[..3]).collect::<Vec<_>>(),
        ["003", "004", "037"]
    );
}

fn check_values(file: &str, path: &Path, row: &BTreeMap<String, String>, cfg: &AspNetCoreConfig) {
    let text = String::from_utf8_lossy(&std::fs::read(path).expect("read")).into_owned();
    assert_eq!(cfg.process_path, row["processPath"], "{file} processPath");
    assert_eq!(cfg.arguments, row["arguments"], "{file} arguments");
    assert_eq!(
        cfg.hosting_model_raw.as_deref().unwrap_or_default(),
        row["hostingModel"],
        "{file} hostingModel"
    );
    let model = if row["hostingModel"].eq_ignore_ascii_case("inprocess") {
        HostingModel::InProcess
    } else {
        HostingModel::OutOfProcess
    };
    assert_eq!(cfg.hosting_model, model, "{file} hosting model");
    assert_eq!(
        cfg.stdout_log_enabled.to_string(),
        row["stdoutLogEnabled"],
        "{file} stdoutLogEnabled"
    );
    // An empty cell is "absent" (the default) unless the file writes stdoutLogFile="".
    let stdout = match row["stdoutLogFile"].as_str() {
        "" if text.contains("stdoutLogFile=\"\"") => "",
        "" => AspNetCoreConfig::DEFAULT_STDOUT_LOG_FILE,
        v => v,
    };
    assert_eq!(cfg.stdout_log_file, stdout, "{file} stdoutLogFile");
    assert_eq!(
        cfg.request_timeout_raw.as_deref().unwrap_or_default(),
        row["requestTimeout"],
        "{file} requestTimeout"
    );
    let timeout_secs = match row["requestTimeout"].as_str() {
        "" => 120,
        v => {
            let p: Vec<u64> = v.split(':').map(|x| x.parse().expect("hh:mm:ss")).collect();
            p[0] * 3600 + p[1] * 60 + p[2]
        }
    };
    assert_eq!(
        cfg.request_timeout.as_secs(),
        timeout_secs,
        "{file} request timeout"
    );
    assert_eq!(
        cfg.request_timeout_text(),
        if row["requestTimeout"].is_empty() {
            "00:02:00"
        } else {
            &row["requestTimeout"]
        }
    );
    let startup = match row["startupTimeLimit"].as_str() {
        "" => 120,
        v => v.parse().expect("startupTimeLimit"),
    };
    assert_eq!(cfg.startup_time_limit, startup, "{file} startupTimeLimit");
    assert_eq!(
        cfg.environment_variables.len().to_string(),
        row["envVarCount"],
        "{file} envVarCount: {:?}",
        cfg.environment_variables
    );
    let first = cfg
        .environment_variables
        .first()
        .map(|(n, v)| format!("{n}={v}"))
        .unwrap_or_default();
    assert_eq!(first, row["firstEnvVar"], "{file} firstEnvVar");
    assert_eq!(
        cfg.handler_settings.len().to_string(),
        row["handlerSettingCount"],
        "{file} handlerSettingCount"
    );
    assert_eq!(cfg.location.file, path, "{file} location file");
}

/// Every corpus file also parses (to a value or an error) from CRLF, LF-only and BOM-less /
/// BOM-ed variants of itself with the same outcome, and error locations stay put.
#[test]
fn corpus_outcome_independent_of_bom_and_line_endings() {
    for path in corpus_files() {
        let file = name(&path);
        let bytes = std::fs::read(&path).expect("read");
        let body = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&bytes);
        let lf = String::from_utf8(body.to_vec())
            .expect("utf8")
            .replace("\r\n", "\n");
        let crlf = lf.replace('\n', "\r\n");
        let variants: [Vec<u8>; 4] = [
            lf.clone().into_bytes(),
            crlf.clone().into_bytes(),
            [b"\xEF\xBB\xBF".as_slice(), lf.as_bytes()].concat(),
            [b"\xEF\xBB\xBF".as_slice(), crlf.as_bytes()].concat(),
        ];
        let reference = config::parse(&variants[0], &path);
        for v in &variants[1..] {
            let got = config::parse(v, &path);
            match (&reference, &got) {
                (Ok(a), Ok(b)) => assert_eq!(a, b, "{file}"),
                (Err(a), Err(b)) => assert_eq!(a, b, "{file}"),
                _ => panic!("{file}: {reference:?} vs {got:?}"),
            }
        }
    }
}
