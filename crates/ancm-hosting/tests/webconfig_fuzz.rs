//! `config::parse` never panics: random bytes, XML-ish noise, mutated and truncated corpus
//! files. Every error it returns is well-formed (1-based position, `FILE:` prefix).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use ancm_hosting::config::{self, ConfigError};
use proptest::prelude::*;

const CORPUS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/webconfig-corpus"
);

fn corpus() -> &'static [Vec<u8>] {
    static FILES: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    FILES.get_or_init(|| {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(CORPUS)
            .expect("corpus")
            .map(|e| e.expect("entry").path())
            .filter(|p| p.extension().is_some_and(|e| e == "config"))
            .collect();
        paths.sort();
        paths
            .iter()
            .map(|p| std::fs::read(p).expect("read"))
            .collect()
    })
}

/// Fragments that steer mutations into the interesting parts of the grammar.
const TOKENS: &[&str] = &[
    "<",
    ">",
    "/>",
    "</",
    "\"",
    "'",
    "=",
    "&",
    ";",
    "&amp;",
    "&#",
    "&#x",
    "&#0;",
    "&#xD800;",
    "&#1114112;",
    "&nbsp;",
    "<!--",
    "-->",
    "<![CDATA[",
    "]]>",
    "<?xml version=\"1.0\"?>",
    "<!DOCTYPE x>",
    "\u{FEFF}",
    "\r",
    "\n",
    "\r\n",
    "\t",
    "%",
    "%PATH%",
    "é",
    "😀",
    "\u{0}",
    "\u{FFFF}",
    "<aspNetCore processPath=\"a\">",
    "</aspNetCore>",
    "<aspNetCore/>",
    "<environmentVariables>",
    "<environmentVariable name=\"N\" value=\"V\"/>",
    "<add name=\"x\"/>",
    "<clear/>",
    "<remove name=\"N\"/>",
    "<handlerSettings>",
    "<handlerSetting name=\"a\"/>",
    "<location path=\".\">",
    "<location path=\"x\">",
    "</location>",
    "<system.webServer>",
    "</system.webServer>",
    "<configuration>",
    "</configuration>",
    " requestTimeout=\"99999999.23:59:59.9999999\"",
    " requestTimeout=\"-1.00:00:00\"",
    " startupTimeLimit=\"99999999999999999999999\"",
    " hostingModel=\"x\"",
    " xmlns:xdt=\"http://schemas.microsoft.com/XML-Document-Transform\"",
    "\u{FF}\u{FE}",
    "\\x",
];

fn check(bytes: &[u8]) {
    let file = Path::new("fuzz/web.config");
    match config::parse(bytes, file) {
        Ok(cfg) => {
            assert!(!cfg.process_path.is_empty());
            assert!(cfg.location.line >= 1 && cfg.location.column >= 1);
            let _ = cfg.expanded(&|n: &str| Some(format!("<{n}>")));
            let _ = cfg.warnings();
        }
        Err(e) => check_error(&e, file),
    }
}

fn check_error(e: &ConfigError, file: &Path) {
    let text = e.to_string();
    assert!(text.starts_with("fuzz/web.config"), "{text}");
    assert!(!e.message().is_empty());
    assert_eq!(e.file(), file);
    if let Some(l) = e.location() {
        assert!(l.line >= 1 && l.column >= 1, "{text}");
        assert_eq!(text, format!("{l}: {}", e.message()));
    } else {
        assert_eq!(text, format!("fuzz/web.config: {}", e.message()));
    }
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Delete(usize, usize),
    Insert(usize, usize),
    Truncate(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(p, b)| Mutation::Flip(p, b)),
        (any::<usize>(), 1usize..64).prop_map(|(p, n)| Mutation::Delete(p, n)),
        (any::<usize>(), 0..TOKENS.len()).prop_map(|(p, t)| Mutation::Insert(p, t)),
        any::<usize>().prop_map(Mutation::Truncate),
    ]
}

fn apply(mut bytes: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    for m in mutations {
        let len = bytes.len();
        let at = |p: usize| if len == 0 { 0 } else { p % (len + 1) };
        match *m {
            Mutation::Flip(p, b) if len > 0 => bytes[p % len] = b,
            Mutation::Flip(..) => {}
            Mutation::Delete(p, n) => {
                let s = at(p);
                let e = (s + n).min(len);
                bytes.drain(s..e);
            }
            Mutation::Insert(p, t) => {
                let s = at(p);
                bytes.splice(s..s, TOKENS[t].bytes());
            }
            Mutation::Truncate(p) => bytes.truncate(at(p)),
        }
    }
    bytes
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..1024)) {
        check(&bytes);
    }

    #[test]
    fn random_token_soup(parts in proptest::collection::vec(0..TOKENS.len(), 0..60)) {
        let text: String = parts.iter().map(|i| TOKENS[*i]).collect();
        check(text.as_bytes());
    }

    #[test]
    fn mutated_corpus_files(
        index in 0usize..60,
        mutations in proptest::collection::vec(mutation(), 1..8),
    ) {
        let files = corpus();
        let bytes = apply(files[index % files.len()].clone(), &mutations);
        check(&bytes);
    }
}

/// Every prefix of every corpus file (a web.config being written while it is read).
#[test]
fn every_truncation_of_the_corpus() {
    for bytes in corpus() {
        for end in 0..=bytes.len() {
            check(&bytes[..end]);
        }
    }
}
