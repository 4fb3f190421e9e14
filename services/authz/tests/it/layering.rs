//! The core never imports the edge: no module of authz, idp or rs outside `http/`, `grpc/`
//! and `cli/` (and `main.rs` / `lib.rs`, which wire everything together) names `crate::http`,
//! `crate::grpc` or `crate::cli`. Services return their own errors and take what they need
//! from the edge (such as the resume URL) as values when the application is built.

use std::path::{Path, PathBuf};

/// Modules that may import the edges: the edges themselves and the wiring.
const EDGES: &[&str] = &["http", "grpc", "cli", "admin"];
/// Files at the top of `src/` that wire the edges to the core.
const WIRING: &[&str] = &["main.rs", "lib.rs"];
/// The services whose layering is checked, as folders beside this crate.
const SERVICES: &[&str] = &["authz", "idp", "rs"];

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Whether `text` starting at `at` is the whole identifier `word`.
fn word_at(text: &str, at: usize, word: &str) -> bool {
    text[at..].starts_with(word)
        && !text[at + word.len()..].starts_with(is_ident)
        && !text[..at].ends_with(is_ident)
}

/// Every `(line, edge)` where `source` refers to an edge module through `crate::`:
/// `crate::http…` paths and `crate::{…, http…}` groups. Comment lines are ignored.
fn edge_references(source: &str) -> Vec<(usize, &'static str)> {
    let code: String = source
        .lines()
        .map(|l| {
            if l.trim_start().starts_with("//") {
                ""
            } else {
                l
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    let line_of = |at: usize| code[..at].matches('\n').count() + 1;
    let mut found = Vec::new();
    for (at, _) in code.match_indices("crate::") {
        let rest = at + "crate::".len();
        if let Some(edge) = EDGES.iter().find(|e| word_at(&code, rest, e)) {
            found.push((line_of(at), *edge));
        } else if code[rest..].starts_with('{') {
            let mut depth = 0;
            let mut end = code.len();
            for (i, c) in code[rest..].char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' => {
                        depth -= 1;
                        if depth == 0 {
                            end = rest + i;
                            break;
                        }
                    }
                    _ => {}
                }
            }
            // Only top-level names of the group are modules of the crate root.
            let group = &code[rest + 1..end];
            let mut depth = 0;
            let mut start_of_item = true;
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    ',' if depth == 0 => start_of_item = true,
                    c if c.is_whitespace() => {}
                    _ if depth == 0 && start_of_item => {
                        start_of_item = false;
                        if let Some(edge) = EDGES.iter().find(|e| word_at(group, i, e)) {
                            found.push((line_of(at), *edge));
                        }
                    }
                    _ => {}
                }
            }
        }
    }
    found
}

/// Every `.rs` file below `dir` that is part of the core, recursively.
fn core_files(src: &Path, dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        let top = dir == src;
        let stem = name.strip_suffix(".rs").unwrap_or(&name);
        if top && EDGES.contains(&stem) {
            // An edge, as a folder (`http/`) or a single file (idp's `cli.rs`).
            continue;
        }
        if path.is_dir() {
            core_files(src, &path, out);
        } else if name.ends_with(".rs") && !(top && WIRING.contains(&name.as_str())) {
            out.push(path);
        }
    }
}

#[test]
fn the_core_never_imports_the_edge() {
    let services = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files = Vec::new();
    for service in SERVICES {
        let src = services.join(service).join("src");
        core_files(&src, &src, &mut files);
    }
    files.sort();
    for covered in [
        "authz/src/flow/service.rs",
        "idp/src/config/mod.rs",
        "rs/src/items.rs",
    ] {
        assert!(
            files.iter().any(|f| f.ends_with(covered)),
            "the scan must cover {covered}: {files:?}"
        );
    }
    let mut offences = Vec::new();
    for file in &files {
        let source = std::fs::read_to_string(file).unwrap();
        for (line, edge) in edge_references(&source) {
            offences.push(format!(
                "{}:{line}: imports crate::{edge}",
                file.strip_prefix(&services).unwrap().display()
            ));
        }
    }
    assert!(
        offences.is_empty(),
        "core modules must not import http/, grpc/ or cli/:\n{}",
        offences.join("\n")
    );
}

#[test]
fn edge_references_are_found() {
    let source = "//! Docs may mention crate::http.\n\
                  use crate::flow::Flow;\n\
                  use crate::http::RESUME_PATH;\n\
                  use crate::{clients::Client, grpc::caller};\n\
                  fn f() { crate::cli::keys::run(); }\n\
                  use crate::{httpx, tokens::{http_like, cli}};\n\
                  use crate::{\n    AppState,\n    http,\n};\n";
    assert_eq!(
        edge_references(source),
        vec![(3, "http"), (4, "grpc"), (5, "cli"), (7, "http")]
    );
}
