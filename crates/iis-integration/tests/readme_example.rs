//! The axum example is written three times for three readers: `examples/axum_app.rs` (built
//! and smoke-tested), this crate's README (compiled as a doc test, shown by crates.io) and the
//! repository README. They must not drift apart.
#![allow(missing_docs, clippy::unwrap_used)]

use std::path::Path;

/// The first `rust,no_run` block of the Markdown file at `path`.
fn rust_block(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    let (_, block) = text.split_once("```rust,no_run\n").unwrap();
    let (code, _) = block.split_once("```").unwrap();
    code.to_owned()
}

/// The example's code, without its `//!` header.
fn example_code() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/axum_app.rs");
    let text = std::fs::read_to_string(path).unwrap();
    text.lines()
        .skip_while(|line| line.starts_with("//!"))
        .map(|line| format!("{line}\n"))
        .collect()
}

#[test]
fn the_crate_readme_shows_examples_axum_app_rs() {
    let readme = rust_block(&Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"));
    assert_eq!(
        readme,
        example_code(),
        "crates/iis-integration/README.md and examples/axum_app.rs differ: change both"
    );
}

#[test]
fn the_repository_readme_shows_examples_axum_app_rs() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md");
    assert_eq!(
        rust_block(&root),
        example_code(),
        "README.md and crates/iis-integration/examples/axum_app.rs differ: change both"
    );
}
