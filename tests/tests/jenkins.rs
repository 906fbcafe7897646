//! halo's Jenkins side against the Jenkins double (which the real
//! python-jenkins client checks, tests/tests/jenkins_double.rs):
//! `halo jenkins trigger|status` (results as exit codes, the progressive
//! console, folders, crumbs only when asked, 401/403/404 as one line),
//! `halo agent` (node registration and correction, the secret and
//! agent.jar, a real jar built with javac supervised and restarted, no
//! secret in any process's argv or environment or in the log), and
//! `halo agent --once` (one trigger per new snapshot, a 500 retried, a
//! failed trigger made again by the next cycle).

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use fs_err as fs;
use halo_tests::jenkins::Double;
use halo_tests::upstream::{Publish, Upstream};
use halo_tests::{need_tool, ok, run, Deb, TestStore};

const TOKEN: &str = "11aa22bb33cc44dd55ee66ff77889900aa";
/// The supervisor test's own token: it scans every process on the machine,
/// and the other tests (running beside it) use TOKEN.
const AGENT_TOKEN: &str = "99ff88ee77dd66cc55bb44aa3322110000";

/// A store whose halo.toml points at the double; `extra` is appended.
fn store_for(d: &Double, extra: &str) -> TestStore {
    store_with_token(d, extra, TOKEN)
}

fn store_with_token(d: &Double, extra: &str, secret: &str) -> TestStore {
    store_at(&d.url(), extra, secret)
}

/// A store whose halo.toml points at the controller at `url`.
fn store_at(url: &str, extra: &str, secret: &str) -> TestStore {
    let t = TestStore::new();
    let token = t.root().join("jenkins.token");
    fs::write(&token, secret).unwrap();
    halo_tests::set_mode(&token, 0o600);
    let rfs = t.root().join("rfs");
    fs::write(
        t.store().join("halo.toml"),
        format!(
            "[jenkins]\nurl = \"{}\"\nuser = \"halo\"\ntoken_file = \"{}\"\n\n[jenkins.node]\nname = \"halo-test\"\nremote_fs = \"{}\"\n{extra}\n",
            url,
            token.display(),
            rfs.display()
        ),
    )
    .unwrap();
    t
}

fn halo(t: &TestStore, args: &[&str]) -> (i32, String, String) {
    let out = run(t.halo().args(args).env_remove("HALO_JENKINS_TOKEN"));
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn users() -> String {
    format!("--users=halo:{TOKEN}:admin,reader:{TOKEN}:read")
}

#[test]
fn trigger_waits_streams_the_console_and_exits_by_the_result() {
    let d = Double::start(&[
        &users(),
        "--jobs",
        "halo-acceptance:SNAPSHOT,f/halo-gate,broken",
        "--build-result",
        "f/halo-gate=UNSTABLE,broken=ABORTED",
    ]);
    let t = store_for(&d, "");
    let (code, stdout, stderr) = halo(
        &t,
        &[
            "jenkins",
            "trigger",
            "--job",
            "halo-acceptance",
            "--param",
            "SNAPSHOT=20261205T1",
            "--wait",
        ],
    );
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stdout.contains("SNAPSHOT=20261205T1") && stdout.contains("Finished: SUCCESS"),
        "{stdout}"
    );
    // The console came in several pieces, each from the offset the last gave.
    let polls = d.matching("GET", "/logText/progressiveText");
    assert!(polls.len() >= 2, "{polls:?}");
    assert!(
        polls.iter().skip(1).any(|p| p["query"]["start"][0] != "0"),
        "{polls:?}"
    );
    // Parameters in the query string, basic auth, no crumb needed with a token.
    let post = &d.matching("POST", "/job/halo-acceptance/buildWithParameters")[0];
    assert_eq!(post["query"]["SNAPSHOT"][0], "20261205T1");
    assert!(d.matching("GET", "/crumbIssuer").is_empty());
    let (code, _, _) = halo(
        &t,
        &["jenkins", "trigger", "--job", "f/halo-gate", "--wait"],
    );
    assert_eq!(code, 1, "UNSTABLE");
    assert!(!d.matching("POST", "/job/f/job/halo-gate/build").is_empty());
    let (code, _, stderr) = halo(&t, &["jenkins", "trigger", "--job", "broken", "--wait"]);
    assert_eq!(code, 2, "ABORTED: {stderr}");
    // Without --wait: the queue item's URL, exit 0.
    let (code, stdout, _) = halo(
        &t,
        &[
            "jenkins",
            "trigger",
            "--job",
            "halo-acceptance",
            "--param",
            "SNAPSHOT=x",
        ],
    );
    assert_eq!(code, 0);
    assert!(stdout.trim().contains("/queue/item/"), "{stdout}");
    assert!(!stderr.contains(TOKEN));
}

#[test]
fn refusals_are_one_line_and_exit_2() {
    let d = Double::start(&[&users(), "--jobs", "halo-acceptance:SNAPSHOT"]);
    let t = store_for(&d, "");
    let one_line = |args: &[&str], env: Option<&str>, want: &str| {
        let mut cmd = t.halo();
        cmd.args(args).env_remove("HALO_JENKINS_TOKEN");
        if let Some(tok) = env {
            cmd.env("HALO_JENKINS_TOKEN", tok);
        }
        let out = run(&mut cmd);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        let lines: Vec<_> = stderr.lines().filter(|l| l.starts_with("halo:")).collect();
        assert_eq!(lines.len(), 1, "{stderr}");
        assert!(lines[0].contains(want), "{args:?}: {}", lines[0]);
        assert!(!stderr.contains(TOKEN) && !stderr.contains("wrong-token"));
    };
    one_line(
        &["jenkins", "status"],
        Some("wrong-token"),
        "refused the credentials of user halo (401)",
    );
    one_line(
        &["jenkins", "trigger", "--job", "nope"],
        None,
        "has no job nope (404)",
    );
    // A user without Job/Build.
    let cfg = fs::read_to_string(t.store().join("halo.toml"))
        .unwrap()
        .replace("user = \"halo\"", "user = \"reader\"");
    fs::write(t.store().join("halo.toml"), cfg).unwrap();
    one_line(
        &[
            "jenkins",
            "trigger",
            "--job",
            "halo-acceptance",
            "--param",
            "SNAPSHOT=x",
        ],
        None,
        "(403): user reader lacks hudson.model.Item.Build",
    );
    drop(d);
    one_line(&["jenkins", "status"], None, "does not answer");
}

#[test]
fn a_crumb_and_its_session_cookie_only_when_the_controller_asks() {
    // A password (not an API token) is not exempt from CSRF checks.
    let d = Double::start(&[
        &users(),
        &format!("--passwords=halo:{TOKEN}-pw"),
        "--csrf",
        "--jobs",
        "halo-acceptance:SNAPSHOT",
    ]);
    let t = store_for(&d, "");
    fs::write(t.root().join("jenkins.token"), format!("{TOKEN}-pw")).unwrap();
    let (code, stdout, stderr) = halo(
        &t,
        &[
            "jenkins",
            "trigger",
            "--job",
            "halo-acceptance",
            "--param",
            "SNAPSHOT=s",
        ],
    );
    assert_eq!(code, 0, "{stdout}{stderr}");
    let posts = d.matching("POST", "/buildWithParameters");
    assert_eq!(
        posts.len(),
        2,
        "refused without a crumb, then accepted: {posts:?}"
    );
    assert_eq!(posts[0]["status"], 403);
    assert_eq!(posts[1]["status"], 201);
    assert!(
        posts[1]["headers"]["Jenkins-Crumb"].is_string(),
        "{}",
        posts[1]
    );
    assert!(
        posts[1]["headers"]["Cookie"]
            .as_str()
            .unwrap()
            .contains("JSESSIONID"),
        "{}",
        posts[1]
    );
    assert_eq!(d.matching("GET", "/crumbIssuer/api/json").len(), 1);
}

/// A real agent.jar: a Java program that records its arguments and whether
/// it can see halo's credentials, runs a moment, and exits.
fn fake_agent_jar(dir: &Path) -> PathBuf {
    need_tool("javac", "default-jdk-headless");
    need_tool("jar", "default-jdk-headless");
    fs::create_dir_all(dir).unwrap();
    fs::write(
        dir.join("Main.java"),
        r#"import java.nio.file.*;
public class Main {
  public static void main(String[] a) throws Exception {
    Path log = Paths.get(System.getProperty("user.dir"), "starts.log");
    String env = System.getenv("HALO_JENKINS_TOKEN") == null ? "no-token-env" : "TOKEN-LEAKED";
    Files.writeString(log, String.join(" ", a) + " | " + env + "\n", StandardOpenOption.CREATE, StandardOpenOption.APPEND);
    Thread.sleep(1200);
  }
}
"#,
    )
    .unwrap();
    ok(Command::new("javac").arg("Main.java").current_dir(dir));
    fs::write(dir.join("manifest.txt"), "Main-Class: Main\n").unwrap();
    ok(Command::new("jar")
        .args(["cfm", "agent.jar", "manifest.txt", "Main.class"])
        .current_dir(dir));
    dir.join("agent.jar")
}

/// Every process's argv and environment, as text; `own` (the agent, which
/// was given the token in its environment by the test) only its argv, and
/// not at all `skip` (the double, whose argv lists the tokens it accepts).
fn all_processes(own: u32, skip: u32) -> String {
    let mut text = String::new();
    for e in fs::read_dir("/proc").unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.bytes().all(|b| b.is_ascii_digit()) && name != skip.to_string() {
            let files: &[&str] = if name == own.to_string() {
                &["cmdline"]
            } else {
                &["cmdline", "environ"]
            };
            for f in files {
                if let Ok(b) = std::fs::read(e.path().join(f)) {
                    text.push_str(&String::from_utf8_lossy(&b).replace('\0', " "));
                    text.push('\n');
                }
            }
        }
    }
    text
}

#[test]
fn the_agent_registers_its_node_and_supervises_agent_jar_without_leaking_secrets() {
    let work = tempfile::tempdir().unwrap();
    let jar = fake_agent_jar(&work.path().join("jar"));
    let d = Double::start(&[
        &format!("--users=halo:{AGENT_TOKEN}:admin"),
        "--jobs",
        "halo-acceptance:SNAPSHOT",
        "--agent-jar",
        jar.to_str().unwrap(),
    ]);
    let t = store_with_token(&d, "[agent]\ninterval_minutes = 600\n", AGENT_TOKEN);
    // A node of that name exists already with other settings: corrected.
    let create = format!(
        "import jenkins; j = jenkins.Jenkins('{}', 'halo', '{AGENT_TOKEN}'); j.create_node('halo-test', numExecutors=5, remoteFS='/elsewhere', labels='old', launcher=jenkins.LAUNCHER_JNLP)",
        d.url()
    );
    ok(Command::new("python3").arg("-c").arg(&create));
    let log = t.root().join("agent.log");
    let mut agent = t
        .halo()
        .args(["-v", "agent"])
        .env("HALO_JENKINS_TOKEN", AGENT_TOKEN)
        .stdout(Stdio::null())
        .stderr(fs::File::create(&log).unwrap().into_parts().0)
        .spawn()
        .unwrap();
    let starts = t.root().join("rfs/starts.log");
    let secret_file = t.root().join("rfs/halo-agent/secret");
    // Bounded wait for two starts: the jar exits after 1.2 s and is restarted.
    let mut seen = String::new();
    let mut procs = String::new();
    for _ in 0..200 {
        std::thread::sleep(Duration::from_millis(100));
        if procs.is_empty() && starts.exists() {
            procs = all_processes(agent.id(), d.pid());
        }
        seen = fs::read_to_string(&starts).unwrap_or_default();
        if seen.lines().count() >= 2 {
            break;
        }
    }
    assert!(
        seen.lines().count() >= 2,
        "agent.jar was not restarted: {seen}\n{}",
        fs::read_to_string(&log).unwrap()
    );
    let secret = fs::read_to_string(&secret_file).unwrap();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        fs::metadata(&secret_file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let first = seen.lines().next().unwrap();
    assert_eq!(
        first,
        format!(
            "-url {} -name halo-test -secret @{} -webSocket -workDir {} | no-token-env",
            d.url(),
            secret_file.display(),
            t.root().join("rfs").display()
        )
    );
    assert!(!procs.is_empty());
    assert!(
        !procs.contains(&secret),
        "the node secret is in some process's argv or environment"
    );
    assert!(
        !procs.contains(AGENT_TOKEN),
        "the API token is in some child's argv or environment"
    );
    // The node is as configured now.
    let xml = ok(Command::new("python3").arg("-c").arg(format!(
        "import jenkins; print(jenkins.Jenkins('{}', 'halo', '{AGENT_TOKEN}').get_node_config('halo-test'))",
        d.url()
    )));
    assert!(
        xml.contains("<numExecutors>2</numExecutors>") && xml.contains("halo-acceptance"),
        "{xml}"
    );
    assert_eq!(
        d.matching("POST", "/computer/halo-test/config.xml").len(),
        1
    );
    // SIGTERM stops the agent and its java child.
    ok(Command::new("kill").args(["-TERM", &agent.id().to_string()]));
    let status = agent.wait().unwrap();
    assert!(status.success(), "{status}");
    let text = fs::read_to_string(&log).unwrap();
    assert!(text.contains("agent.jar stopped"), "{text}");
    assert!(
        !text.contains(&secret) && !text.contains(AGENT_TOKEN),
        "a secret in the log:\n{text}"
    );
    let supervised = t.root().join("rfs/halo-agent/agent.jar");
    let left = run(Command::new("pgrep").args(["-f", &supervised.display().to_string()]));
    assert!(!left.status.success(), "agent.jar still runs");
}

const DIST: &str = "stable";

fn with_mirror(d: &Double, up: &Upstream) -> TestStore {
    store_for(
        d,
        &format!(
            "[fetch]\nretries = 1\nretry_backoff_ms = 20\n\n[[mirror]]\nname = \"up\"\nurl = \"{}\"\ndists = [\"{DIST}\"]\ncomponents = [\"main\"]\narchitectures = [\"amd64\"]\nkeyring = \"{}\"\n",
            up.url(),
            up.keyring().display()
        ),
    )
}

fn once(t: &TestStore) -> (i32, serde_json::Value, String) {
    let out = run(t
        .halo()
        .args(["--json", "agent", "--once"])
        .env("HALO_JENKINS_TOKEN", TOKEN));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report = stdout
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| {
            panic!(
                "no JSON report: {stdout}\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
    (
        out.status.code().unwrap_or(-1),
        report,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn one_cycle_triggers_acceptance_once_per_new_snapshot_and_retries_a_failed_trigger() {
    let up = Upstream::new();
    up.add("main", &Deb::new("lib", "1.0"));
    up.publish(DIST, &Publish::default());
    let d = Double::start(&[
        &users(),
        "--jobs",
        "halo-acceptance:SNAPSHOT",
        "--fail-next",
        "1",
    ]);
    let t = with_mirror(&d, &up);
    let (code, r, stderr) = once(&t);
    assert_eq!(code, 0, "{r}\n{stderr}");
    assert_eq!(r["mirrors"][0]["mirror"], "up", "{r}");
    assert_eq!(r["mirrors"][0]["outcome"], "changed", "{r}");
    let snap = r["snapshot"]["id"].as_str().unwrap().to_string();
    assert_eq!(r["snapshot"]["new"], true, "{r}");
    assert_eq!(t.channel("trusty-unstable"), snap);
    assert_eq!(r["acceptance"]["status"], "triggered", "{r}");
    assert_eq!(r["acceptance"]["snapshot"], snap.as_str(), "{r}");
    assert!(
        r["line"]
            .as_str()
            .unwrap()
            .contains(&format!("acceptance of {snap} triggered")),
        "{r}"
    );
    // The first POST got a 500 and was retried.
    let posts = d.matching("POST", "/job/halo-acceptance/buildWithParameters");
    assert_eq!(
        posts
            .iter()
            .map(|p| p["status"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        [500, 201]
    );
    assert_eq!(posts[1]["query"]["SNAPSHOT"][0], snap.as_str());
    let status = t.ok(&["status"]);
    assert!(
        status.contains("jenkins ") && status.contains(": reachable (trigger"),
        "{status}"
    );

    // Nothing changed: no snapshot, no trigger (handed over already).
    let (code, r, _) = once(&t);
    assert_eq!(code, 0);
    assert_eq!(r["snapshot"]["new"], false, "{r}");
    assert_eq!(r["acceptance"]["status"], "nothing-to-judge", "{r}");
    assert!(
        r["acceptance"]["why"]
            .as_str()
            .unwrap()
            .contains("handed to the acceptance job already"),
        "{r}"
    );
    assert_eq!(d.matching("POST", "/buildWithParameters").len(), 2);

    // The upstream changes while the controller is down: the local cycle
    // runs (mirror, snapshot, unstable), the trigger fails (exit 2), status
    // says the controller is unreachable, and the next cycle triggers for
    // that snapshot.
    up.add("main", &Deb::new("lib", "2.0"));
    up.publish(DIST, &Publish::default());
    let port = d.port;
    drop(d);
    let (code, r, stderr) = once(&t);
    assert_eq!(code, 2, "{r}");
    assert!(stderr.contains("triggering halo-acceptance"), "{stderr}");
    assert_eq!(r["mirrors"][0]["outcome"], "changed", "{r}");
    assert_eq!(r["acceptance"]["status"], "failed", "{r}");
    let newer = r["snapshot"]["id"].as_str().unwrap().to_string();
    assert_ne!(newer, snap);
    assert_eq!(t.channel("trusty-unstable"), newer);
    let status = t.ok(&["status"]);
    assert!(status.contains(": UNREACHABLE (trigger at "), "{status}");
    let status: serde_json::Value = serde_json::from_str(&t.ok(&["--json", "status"])).unwrap();
    assert_eq!(status["controller"]["reachable"], false, "{status}");
    let d = Double::start(&[&users(), "--jobs", "halo-acceptance:SNAPSHOT"]);
    let cfg = fs::read_to_string(t.store().join("halo.toml"))
        .unwrap()
        .replace(&format!(":{port}/"), &format!(":{}/", d.port));
    fs::write(t.store().join("halo.toml"), cfg).unwrap();
    let (code, r, _) = once(&t);
    assert_eq!(code, 0, "{r}");
    let posts = d.matching("POST", "/buildWithParameters");
    assert_eq!(posts.len(), 1);
    assert_eq!(posts[0]["query"]["SNAPSHOT"][0], newer.as_str());
    t.assert_sound();
}

/// A listener standing for another host: every connection's request
/// bytes, as they came.
fn foreign_host() -> (u16, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use std::io::Read;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            let _ = conn.set_read_timeout(Some(Duration::from_millis(500)));
            let mut buf = [0u8; 4096];
            let n = conn.read(&mut buf).unwrap_or(0);
            log.lock()
                .unwrap()
                .push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
    });
    (port, seen)
}

/// The `halo:` lines of stderr.
fn error_lines(stderr: &str) -> Vec<&str> {
    stderr.lines().filter(|l| l.starts_with("halo:")).collect()
}

/// Issue 20 item 4: a controller that names a build on another host gets
/// the command refused in one line, and that host sees no request at all
/// (so no Authorization header: the token goes only to the configured
/// origin).
#[test]
fn a_build_url_on_another_origin_is_refused_and_never_sent_the_token() {
    let (port, seen) = foreign_host();
    let foreign = format!("http://127.0.0.1:{port}/");
    let d = Double::start(&[
        &users(),
        "--jobs",
        "halo-acceptance:SNAPSHOT",
        "--foreign-root",
        &foreign,
    ]);
    let t = store_for(&d, "");
    let (code, stdout, stderr) = halo(
        &t,
        &[
            "jenkins",
            "trigger",
            "--job",
            "halo-acceptance",
            "--param",
            "SNAPSHOT=x",
            "--wait",
            "--timeout",
            "1",
        ],
    );
    assert_eq!(code, 2, "{stdout}{stderr}");
    let lines = error_lines(&stderr);
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(
        lines[0].contains("not on its origin") && lines[0].contains(&foreign),
        "{stderr}"
    );
    // The double did hand out the foreign build (the refusal was real).
    assert!(!d.matching("GET", "/queue/item/").is_empty());
    std::thread::sleep(Duration::from_millis(300));
    let seen = seen.lock().unwrap();
    assert!(seen.is_empty(), "the foreign host was contacted: {seen:?}");
    assert!(!stderr.contains(TOKEN) && !stdout.contains(TOKEN));
}

/// Issue 20 item 4: a 1.5 GB reply is refused at its cap; halo runs
/// under a 1 GiB address-space limit, so buffering the reply would fail
/// the test rather than pass it.
#[test]
fn a_huge_reply_is_refused_at_its_cap_under_a_memory_limit() {
    need_tool("prlimit", "util-linux");
    let d = Double::start(&[&users(), "--huge", "^/api/json$:1610612736"]);
    let t = store_for(&d, "");
    let out = run(Command::new("prlimit")
        .arg(format!("--as={}", 1u64 << 30))
        .arg("--")
        .arg(halo_tests::bin("halo"))
        .arg("--store")
        .arg(t.store())
        .args(["jenkins", "status"])
        .env_remove("HALO_JENKINS_TOKEN"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let lines = error_lines(&stderr);
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(lines[0].contains("more than 16777216 bytes"), "{stderr}");
}

/// Issue 20 item 4: a controller dripping its reply a byte at a time
/// cannot outlast `--timeout` (6 s here): the deadline covers the whole
/// command, bodies included.
#[test]
fn a_dripping_controller_cannot_outlast_the_timeout() {
    let d = Double::start(&[
        &users(),
        "--jobs",
        "halo-acceptance:SNAPSHOT",
        "--drip",
        "^/queue/item/",
    ]);
    let t = store_for(&d, "");
    let started = std::time::Instant::now();
    let (code, stdout, stderr) = halo(
        &t,
        &[
            "jenkins",
            "trigger",
            "--job",
            "halo-acceptance",
            "--param",
            "SNAPSHOT=x",
            "--wait",
            "--timeout",
            "0.1",
        ],
    );
    let took = started.elapsed();
    assert_eq!(code, 2, "{stdout}{stderr}");
    assert!(took < Duration::from_secs(15), "took {took:?}");
    assert!(
        took >= Duration::from_secs(5),
        "took {took:?}: the drip ran"
    );
    let lines = error_lines(&stderr);
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(lines[0].contains("--timeout"), "{stderr}");
}

/// Issue 20 item 4: a controller that is down from the start is one line
/// and exit 2, within the command's timeout; a timeout that is not a
/// finite positive number of minutes is a usage error (exit 1, one line),
/// never a panic.
#[test]
fn a_controller_down_at_start_and_impossible_timeouts() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let t = store_at(&format!("http://127.0.0.1:{port}/"), "", TOKEN);
    let started = std::time::Instant::now();
    let (code, _, stderr) = halo(
        &t,
        &[
            "jenkins",
            "trigger",
            "--job",
            "j",
            "--wait",
            "--timeout",
            "0.05",
        ],
    );
    assert_eq!(code, 2, "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(12), "{stderr}");
    assert_eq!(error_lines(&stderr).len(), 1, "{stderr}");
    let (code, _, stderr) = halo(&t, &["jenkins", "status"]);
    assert_eq!(code, 2, "{stderr}");
    let lines = error_lines(&stderr);
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(lines[0].contains("does not answer"), "{stderr}");
    for bad in ["inf", "1e300", "NaN", "-1", "0", "soon"] {
        let (code, _, stderr) = halo(
            &t,
            &[
                "jenkins",
                "trigger",
                "--job",
                "j",
                "--wait",
                &format!("--timeout={bad}"),
            ],
        );
        assert_eq!(code, 1, "--timeout {bad}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "--timeout {bad}: {stderr}");
        assert!(
            stderr.contains("--timeout") && !stderr.contains("panicked"),
            "--timeout {bad}: {stderr}"
        );
        let (code, _, stderr) = halo(&t, &[&format!("--wait-timeout={bad}"), "jenkins", "status"]);
        if bad == "0" {
            continue;
        }
        assert_eq!(code, 1, "--wait-timeout {bad}: {stderr}");
        assert!(
            stderr.contains("--wait-timeout") && !stderr.contains("panicked"),
            "--wait-timeout {bad}: {stderr}"
        );
    }
}

/// Issue 18 item 5: with `[jenkins]` set and the controller gone, the
/// daemon's local cycle still runs (snapshot, unstable), registration is
/// retried in the background and logged, and `halo status` says the
/// controller is unreachable.
#[test]
fn issue_18_a_controller_that_does_not_answer_stops_nothing_local() {
    let d = Double::start(&[&users(), "--jobs", "halo-acceptance:SNAPSHOT"]);
    let t = store_for(&d, "[agent]\ninterval_minutes = 600\n");
    drop(d);
    t.import("trusty", &[Deb::new("lib", "1.0").build(&t.path("in"))]);
    let log = t.root().join("agent.log");
    let mut agent = t
        .halo()
        .args(["-v", "agent"])
        .env("HALO_JENKINS_TOKEN", TOKEN)
        .stdout(Stdio::null())
        .stderr(fs::File::create(&log).unwrap().into_parts().0)
        .spawn()
        .unwrap();
    let last = t.store().join("agent/last-cycle.json");
    for _ in 0..300 {
        if last.exists() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let text = fs::read_to_string(&log).unwrap();
    assert!(last.exists(), "no cycle ran: {text}");
    let unstable = t.channel("trusty-unstable");
    assert_ne!(unstable, "-", "the local cycle made and moved a snapshot");
    let cycle: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(&last).unwrap()).unwrap();
    assert_eq!(cycle["snapshot"]["id"], unstable.as_str(), "{cycle}");
    assert_eq!(cycle["acceptance"]["status"], "failed", "{cycle}");
    let status = t.ok(&["status"]);
    assert!(status.contains(": UNREACHABLE ("), "{status}");
    ok(Command::new("kill").args(["-TERM", &agent.id().to_string()]));
    let code = agent.wait().unwrap();
    let text = fs::read_to_string(&log).unwrap();
    assert!(code.success(), "{code}: {text}");
    assert!(
        text.contains("registering node halo-test") && text.contains("the local cycle goes on"),
        "{text}"
    );
    assert!(!text.contains(TOKEN));
}
