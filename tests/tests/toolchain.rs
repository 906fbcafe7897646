//! The one list of what the tests need (`.ci/packages` for Debian,
//! `tests/requirements.txt` for Python, both installed by `.ci/setup`) and
//! the tools the tests and halo really run agree (issue 21).
//!
//! The commands are read from the sources, not from a second list that
//! could drift: `Command::new("X")`, `need_tool("X", ..)`, and calls
//! `f("X", ..)` of any function `f` whose first parameter ends up in
//! `Command::new` (`Apt::command`, `process::run`, ...), in `tests/` and in
//! the binaries the tests drive; the Python scripts and shell scripts the
//! tests name are read for their imports and `command -v` checks. Each
//! command must come from a listed Debian package (what `dpkg -S` says
//! ships it, or a direct dependency of a listed package, as `javac` comes
//! with `default-jdk-headless`) or be the console script of a pinned Python
//! package; each imported module must be the standard library's or a
//! pinned package's. Every listed package must be installed.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use fs_err as fs;
use halo_tests::{need_tool, ok, run};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// `.ci/packages`: one package a line, `#` comments.
fn listed_packages() -> BTreeSet<String> {
    fs::read_to_string(repo().join(".ci/packages"))
        .unwrap()
        .lines()
        .filter_map(|l| l.split('#').next())
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

/// Normalised distribution names of `tests/requirements.txt`'s pins.
fn pinned() -> BTreeSet<String> {
    fs::read_to_string(repo().join("tests/requirements.txt"))
        .unwrap()
        .lines()
        .filter_map(|l| l.split('#').next())
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| {
            assert!(
                l.contains("=="),
                "tests/requirements.txt: {l:?} is not pinned (name==version)"
            );
            normalise(l.split("==").next().unwrap())
        })
        .collect()
}

/// PEP 503 names: `Python_Jenkins` and `python-jenkins` are one package.
fn normalise(dist: &str) -> String {
    dist.trim().to_ascii_lowercase().replace(['_', '.'], "-")
}

/// Every `.rs` file under the directories whose code the tests run.
fn rust_sources() -> Vec<(PathBuf, String)> {
    fn walk(dir: &Path, out: &mut Vec<(PathBuf, String)>) {
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs")
                // This file's own examples are not commands.
                && !path.ends_with("tests/toolchain.rs")
            {
                let text = fs::read_to_string(&path).unwrap();
                out.push((path, text));
            }
        }
    }
    let mut out = Vec::new();
    for dir in ["tests/src", "tests/tests", "agent/src", "repofs/src"] {
        walk(&repo().join(dir), &mut out);
    }
    out
}

/// The string literals that follow each occurrence of `prefix`
/// (`Command::new("` gives the program names).
fn literals_after<'a>(text: &'a str, prefix: &str) -> Vec<&'a str> {
    text.match_indices(prefix)
        .filter_map(|(i, _)| {
            let rest = &text[i + prefix.len()..];
            rest.find('"').map(|end| &rest[..end])
        })
        .collect()
}

/// Functions whose first parameter (after `self`) becomes the program of a
/// `Command::new`: calls to them with a literal run that literal.
fn command_wrappers(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (i, _) in text.match_indices("fn ") {
        let rest = &text[i + 3..];
        let name_end = rest
            .find(|c: char| !(c.is_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        let name = &rest[..name_end];
        let Some(open) = rest.find('(') else { continue };
        let Some(close) = rest[open..].find(')') else {
            continue;
        };
        let params = &rest[open + 1..open + close];
        let first = params
            .split(',')
            .map(str::trim)
            .find(|p| !p.is_empty() && !p.ends_with("self"));
        let Some(param) = first.and_then(|p| p.split(':').next()).map(str::trim) else {
            continue;
        };
        let body_end = rest[open..].find("fn ").map_or(rest.len(), |e| open + e);
        let body = &rest[open + close..body_end];
        if !name.is_empty()
            && (body.contains(&format!("Command::new({param})"))
                || body.contains(&format!("Command::new(&{param})")))
        {
            out.push(name.to_string());
        }
    }
    out
}

/// What the Rust sources run, with the first file naming each.
fn commands_in_rust(sources: &[(PathBuf, String)]) -> BTreeMap<String, PathBuf> {
    let wrappers: BTreeSet<String> = sources
        .iter()
        .flat_map(|(_, text)| command_wrappers(text))
        .collect();
    let mut prefixes = vec!["Command::new(\"".to_string(), "need_tool(\"".to_string()];
    for w in &wrappers {
        prefixes.push(format!(" {w}(\""));
        prefixes.push(format!(".{w}(\""));
        prefixes.push(format!("::{w}(\""));
        prefixes.push(format!("({w}(\""));
    }
    let mut out = BTreeMap::new();
    for (path, text) in sources {
        for prefix in &prefixes {
            for name in literals_after(text, prefix) {
                if is_command_name(name) {
                    out.entry(name.to_string()).or_insert_with(|| path.clone());
                }
            }
        }
    }
    out
}

/// A bare program name looked up on PATH (not a path, not a format string).
fn is_command_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.+".contains(&b))
}

/// Scripts the tests run, named by a literal ending in `.py` or `.sh` that
/// is a file of the repository (relative to its root or to `tests/`).
fn scripts(sources: &[(PathBuf, String)]) -> BTreeSet<PathBuf> {
    let mut out = BTreeSet::new();
    for (path, text) in sources {
        if !path.starts_with(repo().join("tests")) {
            continue;
        }
        for piece in text.split('"') {
            if !(piece.ends_with(".py") || piece.ends_with(".sh")) {
                continue;
            }
            let rel = piece.trim_start_matches('/');
            for base in [repo(), repo().join("tests")] {
                let p = base.join(rel);
                if p.is_file() {
                    out.insert(p);
                }
            }
        }
    }
    out
}

/// Top-level modules a Python text imports (`import a.b, c`, `from d import e`).
fn imports(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for line in text.lines().map(str::trim) {
        let modules = if let Some(r) = line.strip_prefix("import ") {
            r.split(',').map(str::trim).collect::<Vec<_>>()
        } else if let Some(r) = line.strip_prefix("from ") {
            vec![r]
        } else {
            continue;
        };
        for m in modules {
            let top = m
                .split(|c: char| c == '.' || c.is_whitespace())
                .next()
                .unwrap_or("");
            if !top.is_empty() && top.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                out.insert(top.to_string());
            }
        }
    }
    out
}

/// `command -v X` checks of a shell script: programs it needs.
fn shell_commands(text: &str) -> BTreeSet<String> {
    literals_words_after(text, "command -v ")
}

fn literals_words_after(text: &str, prefix: &str) -> BTreeSet<String> {
    text.match_indices(prefix)
        .filter_map(|(i, _)| text[i + prefix.len()..].split_whitespace().next())
        .map(|w| w.trim_matches(|c| c == '"' || c == '\'').to_string())
        .filter(|w| is_command_name(w))
        .collect()
}

/// The packages `dpkg -S` names for a program: the first of /usr/bin,
/// /bin, /usr/sbin, /sbin holding it, and what its symlinks resolve to
/// (`javac` is an alternative of the JDK's).
fn shipped_by(program: &str) -> BTreeSet<String> {
    let mut paths = Vec::new();
    for dir in ["/usr/bin", "/bin", "/usr/sbin", "/sbin"] {
        let p = Path::new(dir).join(program);
        if p.exists() {
            paths.push(p.display().to_string());
            if let Ok(real) = std::fs::canonicalize(&p) {
                paths.push(real.display().to_string());
            }
        }
    }
    if paths.is_empty() {
        return BTreeSet::new();
    }
    let out = run(Command::new("dpkg-query").arg("-S").args(&paths));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.starts_with("diversion "))
        .filter_map(|l| l.split_once(": ").map(|(pkgs, _)| pkgs))
        .flat_map(|pkgs| pkgs.split(','))
        .map(|p| p.trim().split(':').next().unwrap_or("").to_string())
        .filter(|p| !p.is_empty())
        .collect()
}

/// Listed packages and their direct dependencies (`Depends`,
/// `Pre-Depends`; an alternative's first choice only: `apt` depends on
/// `gpgv | gpgv1` and brings gpgv), each with the listed package that
/// brings it.
fn listed_with_dependencies(listed: &BTreeSet<String>) -> BTreeMap<String, String> {
    let out = ok(Command::new("dpkg-query")
        .args(["-W", "-f", "${Package}\t${Depends}, ${Pre-Depends}\n"])
        .args(listed));
    let mut map: BTreeMap<String, String> = listed.iter().map(|p| (p.clone(), p.clone())).collect();
    for line in out.lines() {
        let Some((pkg, deps)) = line.split_once('\t') else {
            continue;
        };
        // Only an alternative's first choice is what installing brings.
        for dep in deps.split(',') {
            let first = dep.split('|').next().unwrap_or("");
            let name = first.split_whitespace().next().unwrap_or("");
            let name = name.split(':').next().unwrap_or("");
            if !name.is_empty() {
                map.entry(name.to_string())
                    .or_insert_with(|| pkg.to_string());
            }
        }
    }
    map
}

/// For each module: "stdlib", the distributions providing it, or nothing;
/// and for each program: the distribution whose console script it is.
fn python_facts(
    modules: &BTreeSet<String>,
    programs: &BTreeSet<String>,
) -> BTreeMap<String, String> {
    need_tool("python3", "python3");
    let script = r#"
import sys
from importlib import metadata
dists = metadata.packages_distributions()
scripts = {e.name: e.dist.name for e in metadata.entry_points(group="console_scripts")}
kind, names = sys.argv[1], sys.argv[2:]
for n in names:
    if kind == "module":
        print(n + "\t" + ("stdlib" if n in sys.stdlib_module_names else ",".join(dists.get(n, []))))
    else:
        print(n + "\t" + scripts.get(n, ""))
"#;
    let mut facts = BTreeMap::new();
    for (kind, names) in [("module", modules), ("program", programs)] {
        let out = ok(Command::new("python3")
            .args(["-c", script, kind])
            .args(names));
        for line in out.lines() {
            if let Some((n, v)) = line.split_once('\t') {
                facts.insert(format!("{kind} {n}"), v.to_string());
            }
        }
    }
    facts
}

#[test]
fn every_listed_package_is_installed() {
    need_tool("dpkg-query", "dpkg");
    let listed = listed_packages();
    assert!(listed.len() > 10, ".ci/packages lists {listed:?}");
    let out = run(Command::new("dpkg-query")
        .args(["-W", "-f", "${Package} ${db:Status-Abbrev}\n"])
        .args(&listed));
    let text = String::from_utf8_lossy(&out.stdout);
    let installed: BTreeSet<&str> = text
        .lines()
        .filter_map(|l| l.split_once(' '))
        .filter(|(_, status)| status.trim() == "ii")
        .map(|(p, _)| p)
        .collect();
    let missing: Vec<&String> = listed
        .iter()
        .filter(|p| !installed.contains(p.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "listed in .ci/packages but not installed: {missing:?} (bash .ci/setup installs them, as root)"
    );
}

#[test]
fn every_command_the_tests_run_comes_from_the_one_list() {
    need_tool("dpkg-query", "dpkg");
    let listed = listed_packages();
    let available = listed_with_dependencies(&listed);
    let sources = rust_sources();
    let mut commands = commands_in_rust(&sources);
    // The sweep must see the tools it is about, or it checks nothing.
    for expected in [
        "dpkg-deb",
        "gpgv",
        "gpgv1",
        "apt-get",
        "git",
        "mmdebstrap",
        "javac",
    ] {
        assert!(
            commands.contains_key(expected),
            "the scan of the sources misses {expected}: {:?}",
            commands.keys()
        );
    }
    let scripts = scripts(&sources);
    let mut modules = BTreeSet::new();
    for script in &scripts {
        let text = fs::read_to_string(script).unwrap();
        modules.extend(imports(&text));
        if script.extension().is_some_and(|e| e == "sh") {
            for c in shell_commands(&text) {
                commands.entry(c).or_insert_with(|| script.clone());
            }
        }
    }
    assert!(
        modules.contains("jenkins") && modules.contains("http"),
        "the scan of {scripts:?} misses imports: {modules:?}"
    );

    let mut unknown = BTreeSet::new();
    let mut problems = Vec::new();
    let mut from_packages = BTreeMap::new();
    for (command, file) in &commands {
        let owners = shipped_by(command);
        match owners.iter().find_map(|o| available.get(o)) {
            Some(listed_as) => {
                from_packages.insert(command.clone(), listed_as.clone());
            }
            None if owners.is_empty() => {
                unknown.insert(command.clone());
            }
            None => problems.push(format!(
                "{command} (run in {}) comes from {owners:?}, which .ci/packages does not list",
                file.display()
            )),
        }
    }
    let pins = pinned();
    let facts = python_facts(&modules, &unknown);
    for command in &unknown {
        let dist = facts
            .get(&format!("program {command}"))
            .map_or("", String::as_str);
        if dist.is_empty() || !pins.contains(&normalise(dist)) {
            problems.push(format!(
                "{command} (run in {}) is in no installed Debian package and no pinned Python package: \
                 add the package that ships it to .ci/packages",
                commands[command].display()
            ));
        }
    }
    for module in &modules {
        let dists = facts
            .get(&format!("module {module}"))
            .map_or("", String::as_str);
        if dists == "stdlib" {
            continue;
        }
        if !dists.split(',').any(|d| pins.contains(&normalise(d))) {
            problems.push(format!(
                "python module {module} (imported by {scripts:?}) comes from {dists:?}, which \
                 tests/requirements.txt does not pin"
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "the one list and the tools the tests run disagree:\n{}",
        problems.join("\n")
    );
    // What the sweep found, for the log of a passing run.
    eprintln!("{from_packages:?}");
}

#[test]
fn the_scan_finds_wrappers_and_imports() {
    let rust = r#"
        pub fn command(&self, tool: &str) -> Command { let mut c = Command::new(tool); c }
        fn other(x: &str) { println!("{x}"); }
        fn f() { apt.command("apt-cache"); other("not-a-command"); Command::new("dpkg-deb"); }
    "#;
    assert_eq!(command_wrappers(rust), ["command"]);
    let found = commands_in_rust(&[(PathBuf::from("x.rs"), rust.to_string())]);
    assert_eq!(
        found.keys().collect::<Vec<_>>(),
        ["apt-cache", "dpkg-deb"],
        "{found:?}"
    );
    let py =
        "import os, xml.etree.ElementTree as ET\nfrom http.server import X\n    import jenkins\n";
    assert_eq!(
        imports(py).into_iter().collect::<Vec<_>>(),
        ["http", "jenkins", "os", "xml"]
    );
    assert_eq!(
        shell_commands("if ! command -v jenkins-jobs >/dev/null; then")
            .into_iter()
            .collect::<Vec<_>>(),
        ["jenkins-jobs"]
    );
}
