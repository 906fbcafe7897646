//! The error contract over the whole command line, found by walking it:
//! every command `halo --help` lists, given no input of any kind (no
//! arguments, empty strings, empty files, garbage files, /dev/null, a store that is
//! missing, empty, a file; a configuration that is empty, a directory, not
//! UTF-8), ends with an exit code and one `halo: ...` line, never a panic
//! (exit 101), a signal or a hang. New commands are covered without
//! editing this file, because the walk reads the help.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use halo_tests::{bin, ok, TestStore};

/// Every leaf command, as its words (`["snapshot", "create"]`).
fn leaf_commands() -> Vec<Vec<String>> {
    let mut leaves = Vec::new();
    let mut todo = vec![Vec::<String>::new()];
    while let Some(path) = todo.pop() {
        let help = ok(Command::new(bin("halo")).args(&path).arg("--help"));
        let subs = subcommands(&help);
        if subs.is_empty() {
            leaves.push(path);
        } else {
            for s in subs {
                let mut p = path.clone();
                p.push(s);
                todo.push(p);
            }
        }
    }
    leaves.sort();
    leaves
}

/// The names under `Commands:` in a help text, without `help`.
fn subcommands(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|l| l.trim() != "Commands:")
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter(|l| l.starts_with("  ") && !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|w| *w != "help")
        .map(str::to_string)
        .collect()
}

/// What a command's usage line requires: options outside `[...]` (with
/// whether they take a value) and positional arguments outside `[...]`.
#[derive(Debug, Default)]
struct Required {
    options: Vec<(String, bool)>,
    positionals: usize,
}

fn required(path: &[String]) -> Required {
    let help = ok(Command::new(bin("halo")).args(path).arg("--help"));
    let usage = help
        .lines()
        .find_map(|l| l.strip_prefix("Usage: "))
        .unwrap_or_else(|| panic!("{path:?}: no usage line in {help}"));
    let mut req = Required::default();
    let mut depth = 0i32;
    let words: Vec<&str> = usage.split_whitespace().collect();
    let mut i = 0;
    while i < words.len() {
        let w = words[i];
        let opening = w.starts_with('[');
        if opening {
            depth += 1;
        }
        if depth == 0 {
            if w.starts_with("--") {
                let takes_value = words.get(i + 1).is_some_and(|n| n.starts_with('<'));
                req.options.push((w.to_string(), takes_value));
                if takes_value {
                    i += 1;
                }
            } else if w.starts_with('<') {
                req.positionals += 1;
            }
        }
        depth -= w.matches(']').count() as i32;
        i += 1;
    }
    req
}

struct Outcome {
    code: Option<i32>,
    stderr: String,
    hung: bool,
}

fn run_bounded(mut cmd: Command) -> Outcome {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn halo");
    let started = Instant::now();
    let mut hung = false;
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if started.elapsed() > Duration::from_secs(120) {
            hung = true;
            child.kill().expect("kill");
            break child.wait().expect("wait");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    use std::io::Read;
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut stderr)
        .expect("read stderr");
    Outcome {
        code: status.code(),
        stderr,
        hung,
    }
}

/// The places a store or a configuration can point at when it holds
/// nothing usable.
struct Scene {
    _dir: tempfile::TempDir,
    store: TestStore,
    empty_file: PathBuf,
    garbage: PathBuf,
    empty_dir: PathBuf,
    missing: PathBuf,
    not_utf8: PathBuf,
    home: PathBuf,
}

impl Scene {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = |n: &str| dir.path().join(n);
        fs::write(p("empty"), b"").expect("write");
        fs::create_dir(p("empty-dir")).expect("mkdir");
        fs::write(p("latin1.toml"), b"[fetch]\nname = \"\xe9\"\n").expect("write");
        fs::create_dir(p("home")).expect("mkdir");
        // Bytes no parser can make sense of, the same every run.
        let garbage: Vec<u8> = (0u32..4096)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        fs::write(p("garbage"), garbage).expect("write");
        Self {
            store: TestStore::new(),
            empty_file: p("empty"),
            garbage: p("garbage"),
            empty_dir: p("empty-dir"),
            missing: p("missing"),
            not_utf8: p("latin1.toml"),
            home: p("home"),
            _dir: dir,
        }
    }

    /// `halo` isolated from the host: its own HOME and working directory,
    /// no inherited store, configuration or Jenkins token.
    fn halo(&self, cwd: &Path) -> Command {
        let mut c = Command::new(bin("halo"));
        c.current_dir(cwd)
            .env("HOME", &self.home)
            .env_remove("HALO_STORE")
            .env_remove("HALO_CONFIG")
            .env_remove("HALO_JENKINS_TOKEN")
            .env_remove("RUST_LOG")
            .env("HALO_WAIT_TIMEOUT", "30");
        c
    }
}

/// The arguments that make `path` a complete command (`agent` runs one
/// cycle instead of forever).
fn base_args(path: &[String]) -> Vec<String> {
    let mut a = path.to_vec();
    if path == ["agent"] {
        a.push("--once".into());
    }
    a
}

/// The command with every required option and positional filled by `value`.
fn filled(path: &[String], req: &Required, value: &str) -> Vec<String> {
    let mut a = base_args(path);
    for (opt, takes_value) in &req.options {
        a.push(opt.clone());
        if *takes_value {
            a.push(value.to_string());
        }
    }
    for _ in 0..req.positionals {
        a.push(value.to_string());
    }
    a
}

#[test]
fn no_input_of_any_kind_panics_hangs_or_says_more_than_one_line() {
    let scene = Scene::new();
    let leaves = leaf_commands();
    // The walk must have found the command line, or it checks nothing.
    for expected in [
        vec!["import"],
        vec!["snapshot", "create"],
        vec!["mirror", "update"],
        vec!["jenkins", "trigger"],
        vec!["key", "rotate"],
    ] {
        assert!(
            leaves.iter().any(|l| l == &expected),
            "{expected:?} not found in {leaves:?}"
        );
    }
    assert!(
        leaves.len() >= 25,
        "only {} commands: {leaves:?}",
        leaves.len()
    );

    let store = scene.store.store();
    let stores: [(&str, &Path); 4] = [
        ("a store", &store),
        ("a missing store", &scene.missing),
        ("a store that is a file", &scene.empty_file),
        ("an empty store directory", &scene.empty_dir),
    ];
    let configs: [(&str, &Path); 3] = [
        ("an empty config", &scene.empty_file),
        ("a config that is a directory", &scene.empty_dir),
        ("a config that is not UTF-8", &scene.not_utf8),
    ];
    let dev_null = PathBuf::from("/dev/null");
    let values: [(&str, &Path); 4] = [
        ("empty strings", Path::new("")),
        ("an empty file", &scene.empty_file),
        ("a file of binary garbage", &scene.garbage),
        ("/dev/null", &dev_null),
    ];

    let mut failures = BTreeSet::new();
    let mut runs = 0;
    for leaf in &leaves {
        // quickstart makes its own store from the embedded example: it has
        // no input to be empty; it is the README's first command and has its
        // own test.
        if leaf == &["quickstart"] || leaf == &["help"] {
            continue;
        }
        let req = required(leaf);
        let mut cases: Vec<(String, Vec<String>)> = Vec::new();
        for (what, s) in &stores {
            let mut a = vec!["--store".to_string(), s.display().to_string()];
            a.extend(base_args(leaf));
            cases.push((format!("no arguments, {what}"), a));
        }
        for (what, c) in &configs {
            let mut a = vec![
                "--store".to_string(),
                store.display().to_string(),
                "--config".to_string(),
                c.display().to_string(),
            ];
            a.extend(base_args(leaf));
            cases.push((format!("no arguments, {what}"), a));
        }
        if !req.options.is_empty() || req.positionals > 0 {
            for (what, v) in &values {
                let mut a = vec!["--store".to_string(), store.display().to_string()];
                a.extend(filled(leaf, &req, &v.display().to_string()));
                cases.push((format!("{what} for every required argument"), a));
            }
        }
        for (what, args) in cases {
            runs += 1;
            let cwd = tempfile::tempdir().expect("cwd");
            let mut cmd = scene.halo(cwd.path());
            cmd.args(&args);
            let out = run_bounded(cmd);
            let said: Vec<&str> = out
                .stderr
                .lines()
                .filter(|l| l.starts_with("halo: "))
                .collect();
            let problem = if out.hung {
                Some("still running after 120 s".to_string())
            } else if out.code.is_none() {
                Some("killed by a signal".to_string())
            } else if out.code == Some(101) || out.stderr.contains("panicked") {
                Some(format!("panicked: {}", out.stderr.trim()))
            } else if out.code != Some(0) && (said.len() != 1 || out.stderr.lines().count() != 1) {
                Some(format!(
                    "exit {:?} with {} `halo:` lines: {}",
                    out.code,
                    said.len(),
                    out.stderr.trim()
                ))
            } else if out.stderr.contains('\u{1b}') {
                Some("colour codes on a stderr that is not a terminal".to_string())
            } else {
                None
            };
            if let Some(p) = problem {
                failures.insert(format!("halo {} ({what}): {p}", args.join(" ")));
            }
        }
    }
    assert!(runs > 150, "only {runs} runs");
    assert!(
        failures.is_empty(),
        "{} of {runs} runs broke the contract:\n{}",
        failures.len(),
        failures.into_iter().collect::<Vec<_>>().join("\n")
    );
    scene.store.assert_sound();
}

/// Without Jenkins and without acceptance tests the agent has nothing to
/// test with: the cycle still refreshes unstable, says why stable stays,
/// and is not a failure (exit 0) that would page someone every 30 minutes.
#[test]
fn an_agent_without_acceptance_config_leaves_stable_and_says_so() {
    let t = TestStore::gated();
    let stable_before = t.channel("trusty");
    fs::write(t.store().join("halo.toml"), "# nothing configured\n").expect("write config");
    let out = halo_tests::run(t.halo().args(["agent", "--once"]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("stays in trusty-unstable, trusty is not moved"),
        "{stderr}"
    );
    assert_ne!(t.channel("trusty-unstable"), "-");
    assert_eq!(t.channel("trusty"), stable_before);
}
