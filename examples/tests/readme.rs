//! The README's Rust snippets are the visible lines of the doc-test in `src/lib.rs`, which runs.

use std::path::Path;

/// The text of every fenced block in `text` whose info string is `rust`.
fn rust_blocks(text: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<Vec<&str>> = None;
    for line in text.lines() {
        let trimmed = line.trim_end();
        match &mut current {
            None if trimmed == "```rust" => current = Some(Vec::new()),
            Some(lines) if trimmed == "```" => {
                blocks.push(lines.join("\n"));
                current = None;
            }
            Some(lines) => lines.push(line),
            None => {}
        }
    }
    assert!(current.is_none(), "an unclosed ```rust block");
    blocks
}

/// The visible lines of a doc-test: rustdoc hides `# ` lines and a lone `#`.
fn visible(code: &str) -> String {
    code.lines()
        .filter(|l| !(l.starts_with("# ") || *l == "#"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn the_readme_snippets_are_the_running_doc_test() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("../README.md")).expect("README.md");
    let lib = std::fs::read_to_string(root.join("src/lib.rs")).expect("src/lib.rs");
    let doc: String = lib
        .lines()
        .filter_map(|l| l.strip_prefix("//!"))
        .map(|l| l.strip_prefix(' ').unwrap_or(l))
        .collect::<Vec<_>>()
        .join("\n");
    let doc_tests = rust_blocks(&doc);
    assert_eq!(doc_tests.len(), 1, "one doc-test in src/lib.rs");
    let readme_blocks = rust_blocks(&readme);
    assert_eq!(
        readme_blocks.len(),
        2,
        "the README has a server and a client snippet"
    );
    let expected = visible(&doc_tests[0]);
    let actual = readme_blocks.join("\n");
    assert_eq!(
        actual, expected,
        "README.md's ```rust blocks must equal the visible lines of the doc-test in \
         examples/src/lib.rs (server block, then client block)"
    );
}
