//! The README's Rust snippets are the visible lines of the doc-test in `src/lib.rs`, which runs;
//! the README's and the protocol document's relative links name files of the repository.

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

/// Every relative link `](path)` in `text`, without its `#fragment`.
fn relative_links(text: &str) -> Vec<String> {
    let mut links = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("](") {
        rest = &rest[at + 2..];
        let Some(end) = rest.find(')') else { break };
        let target = &rest[..end];
        if !target.contains("://") && !target.starts_with('#') && !target.starts_with("mailto:") {
            let path = target.split('#').next().unwrap_or(target);
            if !path.is_empty() {
                links.push(path.to_string());
            }
        }
        rest = &rest[end..];
    }
    links
}

#[test]
fn the_readme_and_the_protocol_document_link_to_files_of_the_repository() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut checked = 0;
    for doc in [
        "README.md",
        "docs/PROTOCOL.md",
        "tests/interop/COMPATIBILITY.md",
    ] {
        let path = root.join(doc);
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{doc}: {e}"));
        if doc != "tests/interop/COMPATIBILITY.md" {
            assert!(
                !text.contains("spec/WAMP1.md") && !text.contains("shared folder"),
                "{doc} points outside the repository; cite docs/PROTOCOL.md"
            );
        }
        let dir = path.parent().unwrap();
        for link in relative_links(&text) {
            assert!(
                dir.join(&link).exists(),
                "{doc} links to {link}, which is not in the repository"
            );
            checked += 1;
        }
    }
    assert!(checked >= 3, "only {checked} links found");
    assert!(relative_links("[a](docs/X.md#s) [b](https://x/y) [c](#top)") == ["docs/X.md"]);
}
