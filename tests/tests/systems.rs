//! `halo accept` with `[[acceptance.system]]`s (every configured system
//! runs: the configuration decides): systems built from scratch from the frozen
//! snapshot alone. The upstream is real Debian: the packages `mmdebstrap
//! --variant=apt` needs for this machine's release (cached under the
//! target directory), signed with a test key, served on 127.0.0.1 and
//! mirrored into the store; our own packages are imported beside it. A
//! system that installs ours and runs its program passes and promotes (from
//! a repofs mount); a failing maintainer script and a package missing from
//! the channel fail the install step with the script's and apt's own words
//! in the JUnit report, and stable stays where it was (from an export).

#![allow(clippy::unwrap_used)]

use std::path::Path;

use fs_err as fs;
use halo_tests::debian::{debs, host_arch, host_codename};
use halo_tests::mount::{is_mounted, Mount};
use halo_tests::upstream::{Publish, Upstream};
use halo_tests::{need_tool, run, Deb, TestStore};

/// The systems of the tests; `{dist}` is the host's codename.
const SYSTEMS: &str = r#"
[[acceptance.system]]
name = "app"
suite = "{dist}"
archives = ["debian", "rustedhalo"]
packages = ["halo-hello"]
tests = [
  "hello=halo-hello | grep -x 'hello from halo'",
  "inside=test \"$HALO_SYSTEM\" = app && test -n \"$HALO_SNAPSHOT\" && cat /etc/apt/sources.list && test -z \"$(ls /etc/apt/sources.list.d)\" && ! grep -v 'signed-by=/etc/apt/keyrings/halo.gpg] file:/run/halo/repo/' /etc/apt/sources.list",
]

[[acceptance.system]]
name = "broken"
suite = "{dist}"
archives = ["debian", "rustedhalo"]
packages = ["halo-broken"]
tests = ["never=true"]

[[acceptance.system]]
name = "missing"
suite = "{dist}"
archives = ["debian", "rustedhalo"]
packages = ["halo-absent"]
"#;

/// The systems of `SYSTEMS` named in `names`, for `dist`: a promoting run
/// runs every configured system, so a test configures only the ones it
/// means to run.
fn systems_toml(names: &[&str], dist: &str) -> String {
    SYSTEMS
        .split("\n[[acceptance.system]]\n")
        .filter(|block| {
            names
                .iter()
                .any(|n| block.starts_with(&format!("name = \"{n}\"\n")))
        })
        .map(|block| format!("\n[[acceptance.system]]\n{}", block.replace("{dist}", dist)))
        .collect()
}

/// A gated store mirroring the Debian base (archive `debian`), with our
/// packages in `rustedhalo` and trusty-unstable at a snapshot of both; the
/// systems `systems` of `SYSTEMS` configured.
/// The upstream is returned to keep it served for the test's lifetime.
fn world(acceptance: &str, systems: &[&str]) -> (TestStore, Upstream, String) {
    need_tool("mmdebstrap", "mmdebstrap");
    need_tool("unshare", "util-linux");
    let dist = host_codename();
    let up = Upstream::new();
    for deb in debs(&[]) {
        up.add_deb("main", &deb);
    }
    up.publish(
        &dist,
        &Publish {
            architectures: vec![host_arch()],
            ..Publish::default()
        },
    );
    let t = TestStore::gated();
    let config = format!(
        "[[mirror]]\nname = \"debian\"\nurl = \"{}\"\ndists = [\"{dist}\"]\ncomponents = [\"main\"]\n\
         architectures = [\"{}\"]\nkeyring = \"{}\"\n\n[acceptance]\n{acceptance}\n{}",
        up.url(),
        host_arch(),
        up.keyring().display(),
        systems_toml(systems, &dist)
    );
    fs::write(t.store().join("halo.toml"), config).unwrap();
    t.ok(&["mirror", "update", "debian"]);
    let debs = t.path("ours/x").parent().unwrap().to_path_buf();
    let hello = Deb::new("halo-hello", "1.0").file(
        "/usr/bin/halo-hello",
        "#!/bin/sh\necho 'hello from halo'\n",
        0o755,
    );
    let broken = Deb::new("halo-broken", "1.0")
        .fields("Depends: halo-hello\n")
        .script(
            "postinst",
            "#!/bin/sh\necho 'halo-broken: cannot configure: the flux capacitor is missing' >&2\nexit 3\n",
        );
    t.import(&dist, &[hello.build(&debs), broken.build(&debs)]);
    let id = t.snapshot();
    t.ok(&["promote", "--to", "trusty-unstable", "--snapshot", &id]);
    (t, up, id)
}

fn accept(t: &TestStore, args: &[&str]) -> (i32, String, String) {
    let out = run(t.halo().arg("accept").args(args));
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `suite|case|result|message` per testcase, as python's junitparser reads it.
fn junitparser(file: &Path) -> Vec<String> {
    halo_tests::junitparser(file)
}

/// Mount points at or below `dir`.
fn mounts_under(dir: &Path) -> Vec<String> {
    let dir = dir.canonicalize().unwrap();
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|p| Path::new(p).starts_with(&dir))
        .map(str::to_string)
        .collect()
}

#[test]
fn a_system_that_installs_our_package_and_runs_it_passes_and_promotes() {
    let (t, _up, id) = world("", &["app"]);
    let mnt = t.root().join("mnt");
    let mount = Mount::start(&t.store(), &mnt, "allow_other");
    let toml = t.store().join("halo.toml");
    let text = fs::read_to_string(&toml).unwrap().replace(
        "[acceptance]\n",
        &format!("[acceptance]\nmount = \"{}\"\n", mnt.display()),
    );
    fs::write(&toml, text).unwrap();
    let junit = t.root().join("systems.xml");
    let (code, stdout, stderr) = accept(&t, &["--junit", junit.to_str().unwrap()]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(
        stdout.contains(&format!("accepted {id}: 4 tests passed")),
        "{stdout}"
    );
    assert_eq!(
        t.channel("trusty"),
        id,
        "stable moved to the tested snapshot"
    );
    assert!(
        stderr.contains("[app] hello from halo"),
        "streamed: {stderr}"
    );
    // Read from the mount: mmdebstrap bound snapshots/<id> into the root.
    assert!(
        stderr.contains(&format!("{}/snapshots/{id}/debian", mnt.display())),
        "{stderr}"
    );
    assert_eq!(
        junitparser(&junit),
        [
            "system app|bootstrap|passed|",
            "system app|install|passed|",
            "system app|hello|passed|",
            "system app|inside|passed|",
        ]
    );
    // The system is gone, and nothing it mounted is left.
    let work = t.store().join("work");
    let left: Vec<_> = fs::read_dir(&work).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
    assert!(is_mounted(&mnt));
    assert_eq!(mounts_under(t.root()), [mnt.display().to_string()]);
    drop(mount);
    assert!(mounts_under(t.root()).is_empty());
    t.assert_sound();
}

#[test]
fn a_failing_maintainer_script_or_a_missing_package_fails_install_and_stable_stays() {
    let (t, _up, id) = world("parallel = 2", &["broken", "missing"]);
    let junit = t.root().join("systems.xml");
    let stable_history = t.ok(&["channel", "history", "trusty"]);
    let (code, stdout, stderr) = accept(&t, &["--keep", "--junit", junit.to_str().unwrap()]);
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    assert!(
        stdout.contains(&format!(
            "rejected {id}: 2 of 5 tests failed (broken/install, missing/install); trusty unchanged"
        )),
        "{stdout}"
    );
    assert_eq!(t.channel("trusty"), "-");
    assert_eq!(t.ok(&["channel", "history", "trusty"]), stable_history);
    assert_eq!(t.channel("trusty-testing"), id);
    let cases = junitparser(&junit);
    assert_eq!(cases.len(), 5, "{cases:?}");
    assert_eq!(cases[0], "system broken|bootstrap|passed|");
    assert!(
        cases[1].starts_with("system broken|install|Failure|exit status 100: ")
            && cases[1].contains("halo-broken: cannot configure: the flux capacitor is missing")
            && cases[1]
                .contains("post-installation script subprocess returned error exit status 3"),
        "{cases:?}"
    );
    assert_eq!(cases[2], "system broken|never|Skipped|install failed");
    assert_eq!(cases[3], "system missing|bootstrap|passed|");
    assert_eq!(
        cases[4],
        "system missing|install|Failure|exit status 100: E: Unable to locate package halo-absent"
    );
    // --keep kept both failed roots and said where; they are real systems.
    let kept: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.split_once(" failed; kept at ").map(|(_, p)| p))
        .collect();
    assert_eq!(kept.len(), 2, "{stdout}");
    for root in kept {
        assert!(Path::new(root).join("usr/bin/apt-get").exists(), "{root}");
        assert!(
            fs::read_to_string(Path::new(root).join("etc/apt/sources.list"))
                .unwrap()
                .contains("[signed-by=/etc/apt/keyrings/halo.gpg] file:/run/halo/repo/rustedhalo"),
        );
        fs::remove_dir_all(Path::new(root).parent().unwrap()).unwrap();
    }
    // The export made for the run is gone; nothing is mounted.
    assert!(fs::read_dir(t.store().join("work"))
        .unwrap()
        .next()
        .is_none());
    assert!(mounts_under(t.root()).is_empty());
    let status: serde_json::Value =
        serde_json::from_str(&t.ok(&["--json", "accept", "--status"])).unwrap();
    let events: Vec<_> = status["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(events, ["freeze", "fail"]);
    t.assert_sound();
}

#[test]
fn systems_are_refused_before_anything_moves_when_misnamed() {
    let t = TestStore::gated();
    fs::write(
        t.store().join("halo.toml"),
        SYSTEMS.replace("{dist}", "bookworm"),
    )
    .unwrap();
    t.import("trusty", &[Deb::new("xx", "1").build(&t.path("in"))]);
    let id = t.snapshot();
    t.ok(&["promote", "--to", "trusty-unstable", "--snapshot", &id]);
    let before = t.ok(&["channel", "list"]);
    // A promoting run takes its systems from the configuration only.
    let (code, _, stderr) = accept(&t, &["--system", "app"]);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("--system app: halo accept runs every configured [[acceptance.system]]"),
        "{stderr}"
    );
    // The gate picks; a name that is not configured is refused.
    let out = run(t.halo().args(["gate", "--system", "nope"]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(
            "--system nope: no such [[acceptance.system]] (configured: app, broken, missing)"
        ),
        "{stderr}"
    );
    // A gate checks what it is told: without --systems nothing would run,
    // refused, naming the way.
    let out = run(t.halo().arg("gate"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--systems"), "{stderr}");
    assert_eq!(
        t.ok(&["channel", "list"]),
        before,
        "refused before anything moved"
    );
    fs::write(
        t.store().join("halo.toml"),
        systems_toml(&["app"], "bookworm"),
    )
    .unwrap();
    // A snapshot without the system's archives fails its bootstrap, named.
    // A promoting run runs every configured system, asked for or not.
    let junit = t.root().join("j.xml");
    let (code, stdout, _) = accept(&t, &["--junit", junit.to_str().unwrap()]);
    assert_eq!(code, 1, "{stdout}");
    let cases = junitparser(&junit);
    assert!(
        cases[0].starts_with(&format!(
            "system app|bootstrap|Failure|snapshot {id} has no archive \"debian\""
        )),
        "{cases:?}"
    );
    assert_eq!(cases[1], "system app|install|Skipped|bootstrap failed");
    assert_eq!(t.channel("trusty"), "-");
    assert_eq!(t.channel("trusty-testing"), id);
}

/// The escape probe (`halo_tests::probe`) as a package's postinst,
/// installed into an acceptance system: every escape runs and is refused.
#[test]
fn a_hostile_postinst_in_a_system_is_refused_every_escape() {
    let (t, _up, _id) = world("", &[]);
    let targets = halo_tests::probe::Targets::new(&t.store());
    let debs = t.path("probe/x").parent().unwrap().to_path_buf();
    fs::create_dir_all(&debs).unwrap();
    let probe = Deb::new("halo-probe", "1.0")
        .script("postinst", &format!("#!/bin/sh\n{}", targets.script()));
    t.import(&host_codename(), &[probe.build(&debs)]);
    let id = t.snapshot();
    t.ok(&["promote", "--to", "trusty-unstable", "--snapshot", &id]);
    let toml = t.store().join("halo.toml");
    let mut text = fs::read_to_string(&toml).unwrap();
    text.push_str(&format!(
        "\n[[acceptance.system]]\nname = \"probe\"\nsuite = \"{}\"\narchives = [\"debian\", \"rustedhalo\"]\n\
         packages = [\"halo-probe\"]\ntests = [\"user=test \\\"$(id -u)\\\" = 0\"]\n",
        host_codename()
    ));
    fs::write(&toml, text).unwrap();
    let (code, stdout, stderr) = accept(&t, &[]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    targets.assert_refused(&stderr);
    t.assert_sound();
}
