//! The docs test: the shell commands of README.md and docs/guides/*.md that are marked
//! runnable are run, file by file, against a demo stack this test starts itself
//! (`deployments/demo.sh` on free ports and a temporary data directory, so it runs beside a
//! `make demo` and beside the demo e2e test, which holds port 8080), and what they print is
//! compared with what the doc shows.
//!
//! Conventions for writing docs (this comment is where they are defined):
//!
//! - A fenced block whose info string is `sh test` (```` ```sh test ````) is runnable. Other
//!   `sh` blocks are illustrations and are never run.
//! - The runnable blocks of one file run in order in one `bash` with `set -euo pipefail`,
//!   from the repository root, so a variable set by one block (`TOKEN=…`) is there for the
//!   next; every block must exit 0 (a command expected to fail is written `… || echo …`).
//! - A block fenced `text output` right after a runnable block (only blank lines between) is
//!   what that block prints on stdout, compared line by line with trailing spaces dropped:
//!   `…` inside a line matches any text, a line that is only `…` matches any number of
//!   lines. Before comparing, the addresses of this test's stack are written back as the
//!   `make demo` defaults (`http://localhost:8080`, `localhost:50051`, …) and its data
//!   directory as `data`, so the docs show what a reader of `make demo` sees.
//! - The docs name the stack through variables, each defined once at the top of a file
//!   with its `make demo` default: `AUTHZ`, `IDP`, `RS`, `APP` (base URLs), `AUTHZ_GRPC`
//!   (host:port) and `DEMO_DATA` (the data directory); the production-start guide's own
//!   stack uses `PROD_DIR` and `PROD_*_PORT`. This test sets all of them, and puts the
//!   debug binaries (`authz`, `idp`, `rs`, `demo`) first on `PATH`.
//! - Every guide in docs/guides has at least one runnable block.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::harness::workspace;

/// Build, seed and start of the demo stack: a cold build may take minutes.
const START_TIMEOUT: Duration = Duration::from_secs(600);
/// How long the blocks of one file may run together.
const FILE_TIMEOUT: Duration = Duration::from_secs(120);
const READY_LINE: &str = "All three services are ready.";

/// One fenced block of a markdown file.
#[derive(Debug)]
struct Block {
    /// Line number of the opening fence (1-based).
    line: usize,
    code: String,
    /// What the block prints on stdout, when a `text output` block follows it.
    expected: Option<String>,
}

/// The runnable blocks of `markdown`, each with the expected output that follows it.
fn runnable_blocks(markdown: &str) -> Vec<Block> {
    // Every fenced block: (line of the fence, info string, contents).
    let mut fenced: Vec<(usize, String, String, usize)> = Vec::new();
    let mut lines = markdown.lines().enumerate();
    while let Some((n, line)) = lines.next() {
        let trimmed = line.trim_start();
        let Some(info) = trimmed.strip_prefix("```") else {
            continue;
        };
        let indent = line.len() - trimmed.len();
        let mut body = String::new();
        let mut end = n;
        for (m, inner) in lines.by_ref() {
            end = m;
            if inner.trim_start().starts_with("```") {
                break;
            }
            // Blocks inside list items are indented; the commands are not.
            let strip = inner.len() - inner.trim_start().len();
            body.push_str(&inner[strip.min(indent)..]);
            body.push('\n');
        }
        fenced.push((n + 1, info.trim().to_owned(), body, end + 1));
    }
    let mut blocks = Vec::new();
    for (i, (line, info, body, end)) in fenced.iter().enumerate() {
        if info != "sh test" {
            continue;
        }
        let expected = fenced.get(i + 1).and_then(|(next, info, body, _)| {
            let between = markdown
                .lines()
                .skip(*end)
                .take(next - 1 - end)
                .all(|l| l.trim().is_empty());
            (info == "text output" && between).then(|| body.clone())
        });
        blocks.push(Block {
            line: *line,
            code: body.clone(),
            expected,
        });
    }
    blocks
}

/// Whether `line` matches `pattern`, in which `…` stands for any text.
fn line_matches(pattern: &str, line: &str) -> bool {
    let mut parts = pattern.split('…');
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = line.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    for (i, part) in parts.iter().enumerate() {
        if i + 1 == parts.len() {
            return rest.ends_with(part);
        }
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.is_empty()
}

/// Whether `actual` matches the `expected` lines (a line `…` matches any number of lines).
fn output_matches(expected: &[&str], actual: &[&str]) -> bool {
    match expected.split_first() {
        None => actual.is_empty(),
        Some((&"…", rest)) => {
            (0..=actual.len()).any(|skip| output_matches(rest, &actual[skip..]))
        }
        Some((first, rest)) => actual
            .split_first()
            .is_some_and(|(line, more)| line_matches(first, line) && output_matches(rest, more)),
    }
}

/// The ports and data directory of the stacks the docs run against.
struct Stack {
    /// `(variable, value)` for the blocks' shell.
    env: Vec<(String, String)>,
    /// `(this run's text, the make demo default)`, applied to the blocks' output.
    rewrites: Vec<(String, String)>,
}

impl Stack {
    fn new(demo_data: &Path, prod_dir: &Path) -> Self {
        let probes: Vec<std::net::TcpListener> = (0..23)
            .map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("bind a probe"))
            .collect();
        let ports: Vec<u16> = probes
            .iter()
            .map(|l| l.local_addr().expect("probe address").port())
            .collect();
        drop(probes);
        let demo = [
            ("DEMO_AUTHZ_PORT", ports[0], "8080"),
            ("DEMO_AUTHZ_GRPC_PORT", ports[1], "50051"),
            ("DEMO_AUTHZ_ADMIN_PORT", ports[2], "9080"),
            ("DEMO_IDP_PORT", ports[3], "8081"),
            ("DEMO_IDP_GRPC_PORT", ports[4], "50052"),
            ("DEMO_IDP_ADMIN_PORT", ports[5], "9081"),
            ("DEMO_RS_PORT", ports[6], "8082"),
            ("DEMO_RS_ADMIN_PORT", ports[7], "9082"),
            ("DEMO_APP_PORT", ports[8], "3000"),
            ("DEMO_SSO_AUTHZ_PORT", ports[17], "8180"),
            ("DEMO_SSO_AUTHZ_GRPC_PORT", ports[18], "50151"),
            ("DEMO_SSO_AUTHZ_ADMIN_PORT", ports[19], "9180"),
            ("DEMO_SSO_IDP_PORT", ports[20], "8181"),
            ("DEMO_SSO_IDP_GRPC_PORT", ports[21], "50152"),
            ("DEMO_SSO_IDP_ADMIN_PORT", ports[22], "9181"),
        ];
        let prod = [
            ("PROD_AUTHZ_PORT", ports[9], "18080"),
            ("PROD_AUTHZ_GRPC_PORT", ports[10], "51051"),
            ("PROD_AUTHZ_ADMIN_PORT", ports[11], "19080"),
            ("PROD_IDP_PORT", ports[12], "18081"),
            ("PROD_IDP_GRPC_PORT", ports[13], "51052"),
            ("PROD_IDP_ADMIN_PORT", ports[14], "19081"),
            ("PROD_RS_PORT", ports[15], "18082"),
            ("PROD_RS_ADMIN_PORT", ports[16], "19082"),
        ];
        let mut env: Vec<(String, String)> = demo
            .iter()
            .chain(&prod)
            .map(|(k, p, _)| ((*k).to_owned(), p.to_string()))
            .collect();
        let url = |p: u16| format!("http://localhost:{p}");
        env.extend([
            ("AUTHZ".to_owned(), url(ports[0])),
            ("AUTHZ_GRPC".to_owned(), format!("localhost:{}", ports[1])),
            ("IDP".to_owned(), url(ports[3])),
            ("RS".to_owned(), url(ports[6])),
            ("APP".to_owned(), url(ports[8])),
            ("DEMO_DATA".to_owned(), demo_data.display().to_string()),
            ("PROD_DIR".to_owned(), prod_dir.display().to_string()),
        ]);
        let mut rewrites = vec![
            (prod_dir.display().to_string(), "$PWD/prod".to_owned()),
            (demo_data.display().to_string(), "data".to_owned()),
        ];
        for (_, port, default) in demo.iter().chain(&prod) {
            rewrites.push((format!("localhost:{port}"), format!("localhost:{default}")));
            rewrites.push((format!("127.0.0.1:{port}"), format!("127.0.0.1:{default}")));
            // As a query parameter (`iss=http%3A%2F%2Flocalhost%3A8080`).
            rewrites.push((
                format!("localhost%3A{port}"),
                format!("localhost%3A{default}"),
            ));
        }
        // Longest first: `localhost:4123` must not rewrite part of `localhost:41234`.
        rewrites.sort_by_key(|(from, _)| std::cmp::Reverse(from.len()));
        Self { env, rewrites }
    }

    fn get(&self, key: &str) -> &str {
        self.env
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .expect("a stack variable")
    }

    fn normalise(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for (from, to) in &self.rewrites {
            out = out.replace(from, to);
        }
        out
    }
}

/// A process group that is killed when dropped: demo.sh with its services, or one file's
/// shell with whatever it started in the background.
struct Group(Child);

impl Drop for Group {
    fn drop(&mut self) {
        if let Some(pid) = self.0.id() {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", "--", &format!("-{pid}")])
                .status();
        }
    }
}

async fn start_demo(stack: &Stack, data: &Path) -> Group {
    let mut child = Command::new("bash")
        .arg(workspace().join("deployments/demo.sh"))
        .current_dir(workspace())
        .env("DEMO_DATA", data)
        .envs(
            stack
                .env
                .iter()
                .filter(|(k, _)| k.starts_with("DEMO_") && k != "DEMO_DATA")
                .map(|(k, v)| (k.as_str(), v.as_str())),
        )
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .expect("spawn demo.sh");
    let mut lines = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
    let mut output = Vec::new();
    let ready = tokio::time::timeout(START_TIMEOUT, async {
        while let Ok(Some(line)) = lines.next_line().await {
            let done = line.contains(READY_LINE);
            output.push(line);
            if done {
                return true;
            }
        }
        false
    })
    .await;
    assert!(
        matches!(ready, Ok(true)),
        "demo.sh did not get ready:\n{}",
        output.join("\n")
    );
    // Keep draining stdout so the services never block on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Group(child)
}

/// The debug binaries' directory, where demo.sh's `cargo build` put them.
fn binaries() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| workspace().join("target"), PathBuf::from)
        .join("debug")
}

/// Runs the runnable blocks of `file` in one shell; every problem found, as text.
async fn run_file(file: &Path, stack: &Stack, scratch: &Path) -> Vec<String> {
    let rel = file
        .strip_prefix(workspace())
        .unwrap_or(file)
        .display()
        .to_string();
    let markdown = std::fs::read_to_string(file).expect("read a doc");
    let blocks = runnable_blocks(&markdown);
    if blocks.is_empty() {
        return vec![format!("{rel}: no runnable (```sh test) block")];
    }
    let out = scratch.join(rel.replace('/', "_"));
    std::fs::create_dir_all(&out).expect("scratch directory");
    let mut script = String::from("set -euo pipefail\n");
    for (i, block) in blocks.iter().enumerate() {
        let o = out.display();
        writeln!(script, "echo {i} > '{o}/at'").expect("write to a String");
        writeln!(
            script,
            "{{\n{}}} > '{o}/{i}.out' 2> '{o}/{i}.err'",
            block.code
        )
        .expect("write to a String");
    }
    writeln!(script, "echo done > '{}/at'", out.display()).expect("write to a String");
    let path = format!(
        "{}:{}",
        binaries().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let log = std::fs::File::create(out.join("shell.log")).expect("shell log");
    let child = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .current_dir(workspace())
        .envs(stack.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env("PATH", path)
        .stdin(Stdio::null())
        .stdout(Stdio::from(log.try_clone().expect("clone log")))
        .stderr(Stdio::from(log))
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .expect("spawn bash");
    let mut group = Group(child);
    let started = Instant::now();
    let status = tokio::time::timeout(FILE_TIMEOUT, group.0.wait()).await;
    let read = |name: String| std::fs::read_to_string(out.join(name)).unwrap_or_default();
    let at = read("at".to_owned()).trim().to_owned();
    let mut problems = Vec::new();
    match status {
        Ok(Ok(s)) if s.success() && at == "done" => {}
        other => {
            let i: usize = at.parse().unwrap_or(0);
            let block = &blocks[i.min(blocks.len() - 1)];
            problems.push(format!(
                "{rel}:{}: the block {} after {:?}:\n{}--- stdout:\n{}--- stderr:\n{}{}",
                block.line,
                match other {
                    Ok(Ok(s)) => format!("failed ({s})"),
                    Ok(Err(e)) => format!("could not be waited for ({e})"),
                    Err(_) => format!("did not finish within {FILE_TIMEOUT:?}"),
                },
                started.elapsed(),
                block.code,
                read(format!("{i}.out")),
                read(format!("{i}.err")),
                read("shell.log".to_owned()),
            ));
            return problems;
        }
    }
    for (i, block) in blocks.iter().enumerate() {
        let Some(expected) = &block.expected else {
            continue;
        };
        let actual = stack.normalise(&read(format!("{i}.out")));
        let actual: Vec<&str> = actual.lines().map(str::trim_end).collect();
        let expected: Vec<&str> = expected.lines().map(str::trim_end).collect();
        if !output_matches(&expected, &actual) {
            problems.push(format!(
                "{rel}:{}: the output differs from the doc's\n--- doc:\n{}\n--- printed (normalised):\n{}\n",
                block.line,
                expected.join("\n"),
                actual.join("\n"),
            ));
        }
    }
    problems
}

/// Every runnable block of README.md and docs/guides/*.md runs and prints what the docs
/// show, against one demo stack on free ports (and the production-start guide's own).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runnable_blocks_of_the_docs_run_as_written() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let demo_data = tmp.path().join("demo-data");
    let prod_dir = tmp.path().join("prod");
    let scratch = tmp.path().join("blocks");
    let stack = Stack::new(&demo_data, &prod_dir);
    let started = Instant::now();
    let demo = start_demo(&stack, &demo_data).await;
    eprintln!("docs: demo stack ready after {:?}", started.elapsed());
    assert!(stack.get("AUTHZ").starts_with("http://localhost:"));

    let mut files = vec![workspace().join("README.md")];
    let mut guides: Vec<PathBuf> = std::fs::read_dir(workspace().join("docs/guides"))
        .expect("docs/guides")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    guides.sort();
    assert!(guides.len() >= 8, "the guides are there: {guides:?}");
    files.extend(guides);

    let mut problems = Vec::new();
    for file in &files {
        let started = Instant::now();
        problems.extend(run_file(file, &stack, &scratch).await);
        eprintln!("docs: {} ran in {:?}", file.display(), started.elapsed());
    }
    drop(demo);
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
}

#[test]
fn blocks_and_their_expected_output_are_found() {
    let md = "text\n\n```sh test\nA=1\necho $A\n```\n\n```text output\n1\n```\n\n```sh\nnot run\n```\n\n- item\n\n  ```sh test\n  echo indented\n  ```\n  prose\n  ```text output\n  not expected: prose between\n  ```\n";
    let blocks = runnable_blocks(md);
    assert_eq!(blocks.len(), 2);
    assert_eq!(blocks[0].code, "A=1\necho $A\n");
    assert_eq!(blocks[0].expected.as_deref(), Some("1\n"));
    assert_eq!(blocks[0].line, 3);
    assert_eq!(blocks[1].code, "echo indented\n");
    assert_eq!(blocks[1].expected, None);
}

#[test]
fn ellipses_match_any_text_and_any_lines() {
    assert!(line_matches("a…c", "abbbc"));
    assert!(line_matches(
        "{\"token\":\"…\",\"n\":…}",
        "{\"token\":\"xyz\",\"n\":3}"
    ));
    assert!(line_matches("…", "anything"));
    assert!(!line_matches("a…c", "abd"));
    assert!(!line_matches("abc", "abcd"));
    assert!(output_matches(&["x", "…", "z"], &["x", "1", "2", "z"]));
    assert!(output_matches(&["x", "…"], &["x"]));
    assert!(!output_matches(&["x", "z"], &["x", "y", "z"]));
    assert!(!output_matches(&["x"], &[]));
}

/// The runner itself can fail: a block that exits non-zero, a block printing something else
/// than its `text output` block, and a guide without runnable blocks are each reported.
#[tokio::test]
async fn failing_blocks_and_wrong_output_are_reported() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let stack = Stack::new(&tmp.path().join("demo"), &tmp.path().join("prod"));
    let doc = |name: &str, text: &str| {
        let path = tmp.path().join(name);
        std::fs::write(&path, text).expect("write a doc");
        path
    };
    let scratch = tmp.path().join("blocks");

    let ok = doc(
        "ok.md",
        "```sh test\nX=$AUTHZ\n```\n\n```sh test\necho \"$X\"; echo tail\n```\n\n```text output\nhttp://localhost:8080\n…\n```\n",
    );
    assert_eq!(run_file(&ok, &stack, &scratch).await, Vec::<String>::new());

    let failing = doc(
        "failing.md",
        "```sh test\necho before\nfalse\necho after\n```\n",
    );
    let problems = run_file(&failing, &stack, &scratch).await;
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].contains("failing.md:1: the block failed"),
        "{problems:?}"
    );
    assert!(
        problems[0].contains("--- stdout:\nbefore\n"),
        "{problems:?}"
    );

    let wrong = doc(
        "wrong.md",
        "```sh test\necho 2\n```\n\n```text output\n1\n```\n",
    );
    let problems = run_file(&wrong, &stack, &scratch).await;
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].contains("the output differs"), "{problems:?}");

    let none = doc("none.md", "```sh\necho illustration\n```\n");
    let problems = run_file(&none, &stack, &scratch).await;
    assert!(problems[0].contains("no runnable"), "{problems:?}");
}
