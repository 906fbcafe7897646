//! `halo accept` with `kind = "machine"` systems (issue 17): real qemu
//! machines under TCG, booted from a base disk made from the frozen
//! snapshot alone. The upstream is real Debian: Essential, apt, the cloud
//! kernel, initramfs-tools, systemd and udev (cached under the target
//! directory, served on 127.0.0.1, mirrored into the store); our own
//! packages beside them.
//!
//! One store and one cached base serve the whole file (a base costs a
//! minute to make; CI runs this once), in phases:
//! 1. `kill -9` of `halo accept` mid-boot leaves no qemu; `halo fsck`
//!    reports what it left and `halo gc` removes it;
//! 2. a package whose service fails to start fails its test with
//!    systemd's own words, stable unchanged (and `accel = "auto"` falls
//!    back to TCG where KVM makes no progress, and says so);
//! 3. the example (`examples/machines`), three machines: a server whose
//!    systemd service must be active and answer, a client on its network
//!    that reaches it by name, and a machine on a second network that
//!    cannot: passes and promotes.

#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use fs_err as fs;
use halo_tests::debian::{debs, host_arch, host_codename};
use halo_tests::upstream::{Publish, Upstream};
use halo_tests::{need_tool, run, Deb, TestStore};

/// The packages a machine's base needs beyond Essential and apt.
const BASE: [&str; 5] = [
    "linux-image-cloud-amd64",
    "initramfs-tools",
    "systemd-sysv",
    "udev",
    "dbus",
];

const BAD_UNIT: &str = "[Unit]
Description=a service that cannot start

[Service]
ExecStart=/bin/sh -c 'echo \"halo-bad: cannot start: the flux capacitor is missing\" >&2; exit 3'

[Install]
WantedBy=multi-user.target
";

/// A postinst as the example's (debhelper's): enable and start, on a
/// machine with systemd.
fn postinst(unit: &str) -> String {
    format!(
        "#!/bin/sh\nset -e\nif [ -d /run/systemd/system ]; then\n  systemctl daemon-reload\n  \
         systemctl enable {unit} >/dev/null 2>&1 || true\n  systemctl start {unit} || true\nfi\n"
    )
}

/// The example environment (`examples/machines`), for this host's release,
/// under TCG (KVM makes no progress on CI's machines: `auto` would spend
/// its probe on each).
fn example(file: &str) -> String {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/machines");
    fs::read_to_string(dir.join(file)).unwrap()
}

fn machines(dist: &str) -> String {
    example("systems.toml")
        .replace("suite = \"bookworm\"", &format!("suite = \"{dist}\""))
        .replace("memory_mb = 512\n", "memory_mb = 512\naccel = \"tcg\"\n")
}

fn bad(dist: &str, accel: &str) -> String {
    format!(
        r#"
[[acceptance.system]]
name = "bad"
kind = "machine"
suite = "{dist}"
archives = ["debian", "rustedhalo"]
packages = ["halo-bad"]
tests = ["up=systemctl --no-pager status halo-bad"]
memory_mb = 512
accel = "{accel}"
"#
    )
}

/// `halo accept ARGS`; the steps' progress lines go to the test's log
/// (where the time of a slow CI run went).
fn accept(t: &TestStore, args: &[&str]) -> (i32, String, String) {
    let out = run(t.halo().arg("accept").args(args));
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    for line in stderr.lines().filter(|l| l.starts_with("halo: system ")) {
        eprintln!("{line}");
    }
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr,
    )
}

fn configure(t: &TestStore, head: &str, systems: &str) {
    fs::write(t.store().join("halo.toml"), format!("{head}{systems}")).unwrap();
}

/// qemu processes whose command line names `dir`.
fn qemus_under(dir: &Path) -> Vec<String> {
    let needle = dir.display().to_string();
    fs::read_dir("/proc")
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().parse::<u32>().is_ok())
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .filter(|c| c.starts_with("qemu-system") && c.contains(&needle))
        .collect()
}

#[test]
fn machines_boot_from_the_snapshot_install_test_and_promote_or_refuse() {
    need_tool("mmdebstrap", "mmdebstrap");
    need_tool("qemu-system-x86_64", "qemu-system-x86");
    need_tool("mkfs.ext4", "e2fsprogs");
    let dist = host_codename();
    let up = Upstream::new();
    for deb in debs(&BASE) {
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
    let head = format!(
        "[[mirror]]\nname = \"debian\"\nurl = \"{}\"\ndists = [\"{dist}\"]\ncomponents = [\"main\"]\n\
         architectures = [\"{}\"]\nkeyring = \"{}\"\n\n[acceptance]\ntimeout_minutes = 10\n",
        up.url(),
        host_arch(),
        up.keyring().display(),
    );
    configure(&t, &head, "");
    t.ok(&["mirror", "update", "debian"]);
    let debs_dir = t.path("ours/x").parent().unwrap().to_path_buf();
    let web = Deb::new("halo-web", "1.0")
        .file(
            "/lib/systemd/system/halo-web.socket",
            &example("halo-web/halo-web.socket"),
            0o644,
        )
        .file(
            "/lib/systemd/system/halo-web@.service",
            &example("halo-web/halo-web@.service"),
            0o644,
        )
        .file(
            "/usr/share/halo-web/index.html",
            &example("halo-web/index.html"),
            0o644,
        )
        .script("postinst", &example("halo-web/postinst"));
    let bad_deb = Deb::new("halo-bad", "1.0")
        .file("/lib/systemd/system/halo-bad.service", BAD_UNIT, 0o644)
        .script("postinst", &postinst("halo-bad.service"));
    t.import(&dist, &[web.build(&debs_dir), bad_deb.build(&debs_dir)]);
    let id = t.snapshot();
    t.ok(&["promote", "--to", "trusty-unstable", "--snapshot", &id]);

    let junit = t.root().join("machines.xml");

    // 1. kill -9 mid-boot (the base is made first, and cached): no qemu
    // stays; fsck reports what the run left, gc removes it.
    configure(&t, &head, &bad(&dist, "tcg"));
    let mut child = t
        .halo()
        .args(["accept"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    for line in lines.lines() {
        let line = line.unwrap();
        seen.push_str(&line);
        seen.push('\n');
        if line.starts_with("[bad] [") && line.contains("Linux version") {
            break;
        }
    }
    assert!(!qemus_under(t.root()).is_empty(), "qemu runs: {seen}");
    child.kill().unwrap();
    child.wait().unwrap();
    let killed = Instant::now();
    while !qemus_under(t.root()).is_empty() && killed.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        qemus_under(t.root()).is_empty(),
        "qemu outlived halo accept: {:?}",
        qemus_under(t.root())
    );
    let fsck = run(t.halo().arg("fsck"));
    let report = String::from_utf8_lossy(&fsck.stdout);
    assert!(report.contains("LEFTOVER"), "{report}");
    t.ok(&["gc"]);
    let left: Vec<_> = fs::read_dir(t.store().join("work")).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");

    // 2. A service that fails to start: its test fails in systemd's words;
    // stable stays. `auto` tries KVM first and says what ran. The same
    // snapshot: the cached base serves (a new package of ours would change
    // what the base reads, and make a new one). The dead run's lease is
    // taken over.
    let stable_history = t.ok(&["channel", "history", "trusty"]);
    configure(&t, &head, &bad(&dist, "auto"));
    let started = Instant::now();
    let (code, stdout, stderr) = accept(&t, &["--junit", junit.to_str().unwrap()]);
    eprintln!("phase 2: {:.0} s", started.elapsed().as_secs_f64());
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    assert!(
        stdout.contains(&format!("rejected {id}: 1 of 4 tests failed (bad/up)")),
        "{stdout}"
    );
    assert_eq!(
        t.ok(&["channel", "history", "trusty"]),
        stable_history,
        "stable unchanged"
    );
    let cases = halo_tests::junitparser(&junit);
    assert_eq!(cases[0], "system bad|bootstrap|passed|", "{cases:?}");
    assert_eq!(cases[1], "system bad|boot|passed|");
    assert_eq!(cases[2], "system bad|install|passed|");
    assert!(
        cases[3].starts_with("system bad|up|Failure|exit status 3"),
        "{cases:?}"
    );
    let xml = fs::read_to_string(&junit).unwrap();
    assert!(xml.contains("Active: failed (Result: exit-code)"), "{xml}");
    assert!(xml.contains("halo-bad: cannot start: the flux capacitor is missing"));
    assert!(
        stderr.contains("base disk") && stderr.contains("(cached)"),
        "the base was reused: {stderr}"
    );
    let kvm = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .is_ok();
    assert!(
        stderr.contains(if kvm {
            "system bad: accelerator: kvm"
        } else {
            "system bad: accelerator: tcg"
        }),
        "{stderr}"
    );

    // 3. The example: three machines, two networks: passes and promotes.
    configure(&t, &head, &machines(&dist));
    let started = Instant::now();
    let (code, stdout, stderr) = accept(&t, &["--junit", junit.to_str().unwrap()]);
    eprintln!("phase 3: {:.0} s", started.elapsed().as_secs_f64());
    let xml = fs::read_to_string(&junit).unwrap();
    assert_eq!(code, 0, "{stdout}\n{xml}");
    assert!(
        stdout.contains(&format!("accepted {id}: 14 tests passed")),
        "{stdout}"
    );
    assert_eq!(
        t.channel("trusty"),
        id,
        "stable moved to the tested snapshot"
    );
    let cases = halo_tests::junitparser(&junit);
    for machine in ["web", "app", "stranger"] {
        for step in ["bootstrap", "boot", "install"] {
            assert!(
                cases.contains(&format!("system {machine}|{step}|passed|")),
                "{machine}/{step}: {cases:?}"
            );
        }
    }
    assert!(cases.contains(&"system app|reaches-web|passed|".to_string()));
    assert!(cases.contains(&"system stranger|isolated|passed|".to_string()));
    // Streamed with the machine's name: its console and its commands.
    assert!(
        stderr.contains("[web] [    0.000000] Linux version"),
        "{stderr}"
    );
    assert!(stderr.contains("[web] systemd: running"), "{stderr}");
    assert!(stderr.contains("system web: accelerator: tcg"), "{stderr}");
    // The console log is the boot testcase's output.
    assert!(
        xml.contains("Reached target multi-user.target"),
        "console in <system-out>"
    );
    // One base, cached; nothing else left; no qemu.
    let bases: Vec<_> = fs::read_dir(t.store().join("machines"))
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.path().is_dir())
        .collect();
    assert_eq!(bases.len(), 1, "{bases:?}");
    let left: Vec<_> = fs::read_dir(t.store().join("work")).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
    assert!(qemus_under(t.root()).is_empty());
}
