//! The FUSE view through a real mount of the real `repofs` binary, judged
//! by Debian's and everyone's tools: `apt-get` sandboxed as `_apt` over
//! `file:` and over HTTP (`python3 -m http.server` serving the mount),
//! `diff -r` against `halo export`, `rsync -a --stats` across a promotion,
//! and plain system calls for the read-only promise.
//!
//! Runs as root with /dev/fuse (CI does); every test mounts its own store.

#![allow(clippy::unwrap_used)]

use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use fs_err as fs;
use halo_tests::mount::{apt_ok, is_mounted, need_fuse, wait_until, HttpServer, Mount};
use halo_tests::{bin, files_under, need_tool, ok, run, Apt, Deb, TestStore};

const OPTS: &str = "allow_other";

/// A store whose channel `trusty` points at a snapshot of version 1.0.
fn store_at_v1() -> (TestStore, String) {
    let t = TestStore::new();
    t.import_pair("1.0");
    let id = t.snapshot();
    t.ok(&["promote", "--to", "trusty", "--snapshot", &id]);
    (t, id)
}

fn mount(t: &TestStore) -> Mount {
    Mount::start(&t.store(), &t.root().join("mnt"), OPTS)
}

fn candidate(apt: &Apt, package: &str) -> Option<String> {
    apt.candidate(package)
}

#[test]
fn apt_installs_from_file_uris_on_the_mount_sandboxed_as_apt() {
    let (t, id) = store_at_v1();
    let m = mount(&t);
    for base in [
        format!("file:{}/channels/trusty/rustedhalo", m.dir.display()),
        format!("file:{}/snapshots/{id}/rustedhalo", m.dir.display()),
    ] {
        let apt = Apt::new(
            &t.root().join(format!("apt-{}", base.len())),
            &t.sources(&base),
        );
        apt_ok(&apt, "apt-get", &["update"]);
        assert_eq!(
            candidate(&apt, "halo-app").as_deref(),
            Some("1.0"),
            "{base}"
        );
        let out = apt_ok(
            &apt,
            "apt-get",
            &["install", "--download-only", "-y", "halo-app"],
        );
        assert!(out.contains("Download complete"), "{out}");
    }
}

#[test]
fn apt_installs_over_http_from_a_web_server_serving_the_mount() {
    let (t, _) = store_at_v1();
    let m = mount(&t);
    let web = HttpServer::start(&m.dir);
    let base = format!("{}/channels/trusty/rustedhalo", web.url());
    let apt = Apt::new(&t.root().join("apt-http"), &t.sources(&base));
    apt_ok(&apt, "apt-get", &["update"]);
    apt_ok(
        &apt,
        "apt-get",
        &["install", "--download-only", "-y", "halo-app"],
    );
    let fetched = apt.dir.join("cache/archives/halo-app_1.0_amd64.deb");
    let original = t.root().join("in/1.0/halo-app_1.0_amd64.deb");
    assert_eq!(fs::read(fetched).unwrap(), fs::read(original).unwrap());
}

#[test]
fn a_promotion_shows_at_once_while_snapshots_and_open_files_do_not_change() {
    let (t, first) = store_at_v1();
    let m = mount(&t);
    let before = t.root().join("export-first");
    t.ok(&["export", "--snapshot", &first, before.to_str().unwrap()]);
    let channel = m.dir.join("channels/trusty");
    let link = m.dir.join("channels/trusty.snapshot");
    assert_eq!(
        fs::read_link(&link).unwrap(),
        Path::new("../snapshots").join(&first)
    );
    let apt = Apt::new(
        &t.root().join("apt"),
        &t.sources(&format!("file:{}/rustedhalo", channel.display())),
    );
    apt_ok(&apt, "apt-get", &["update"]);
    assert_eq!(candidate(&apt, "halo-app").as_deref(), Some("1.0"));
    let in_release = channel.join("rustedhalo/dists/trusty/InRelease");
    let old_text = fs::read(&in_release).unwrap();
    let mut open = fs::File::open(&in_release).unwrap();

    t.import_pair("1.1");
    let second = t.snapshot();
    t.ok(&["promote", "--to", "trusty", "--snapshot", &second]);

    // No remount: the channel, its symlink and apt see the new snapshot.
    assert_eq!(
        fs::read_link(&link).unwrap(),
        Path::new("../snapshots").join(&second)
    );
    assert_ne!(fs::read(&in_release).unwrap(), old_text);
    apt_ok(&apt, "apt-get", &["update"]);
    assert_eq!(candidate(&apt, "halo-app").as_deref(), Some("1.1"));
    // The file opened before the promotion reads what it opened.
    let mut still = Vec::new();
    open.read_to_end(&mut still).unwrap();
    assert_eq!(still, old_text);
    // The old snapshot is exactly what it was.
    ok(Command::new("diff")
        .arg("-r")
        .arg(m.dir.join("snapshots").join(&first))
        .arg(&before));
    // A listing of snapshots/ made before shows the new one soon (the
    // kernel keeps a listing while the directory's attributes are fresh: 1 s).
    let listed = || -> Vec<String> {
        fs::read_dir(m.dir.join("snapshots"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect()
    };
    assert!(listed().contains(&first));
    t.import_pair("1.2");
    let third = t.snapshot();
    wait_until(
        "snapshots/ to list the new snapshot",
        Duration::from_secs(5),
        || listed().contains(&third),
    );
    assert!(listed().contains(&second));
}

fn assert_erofs<T: std::fmt::Debug>(what: &str, res: std::io::Result<T>) {
    let err = res.expect_err(what);
    assert_eq!(err.raw_os_error(), Some(libc::EROFS), "{what}: {err}");
}

#[allow(unsafe_code)]
fn libc_result(rc: i32) -> std::io::Result<()> {
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

fn c_path(p: &Path) -> std::ffi::CString {
    std::ffi::CString::new(p.as_os_str().as_bytes()).unwrap()
}

#[allow(unsafe_code)]
fn truncate(p: &Path) -> std::io::Result<()> {
    let c = c_path(p);
    // SAFETY: `c` is a valid NUL-terminated path for the call.
    libc_result(unsafe { libc::truncate(c.as_ptr(), 0) })
}

#[allow(unsafe_code)]
fn setxattr(p: &Path) -> std::io::Result<()> {
    let (c, name, value) = (c_path(p), c"user.halo", b"1");
    // SAFETY: valid NUL-terminated path and name; `value` outlives the call.
    libc_result(unsafe {
        libc::setxattr(
            c.as_ptr(),
            name.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    })
}

#[test]
fn every_kind_of_write_fails_with_erofs() {
    use std::os::unix::fs::PermissionsExt;
    let (t, id) = store_at_v1();
    let m = mount(&t);
    let dir = m
        .dir
        .join(format!("snapshots/{id}/rustedhalo/dists/trusty"));
    let file = dir.join("Release");
    let new = dir.join("new-file");
    let open = |o: &mut std::fs::OpenOptions, p: &Path| o.open(p).map(drop);
    assert_erofs("create", std::fs::File::create(&new).map(drop));
    assert_erofs("create over", std::fs::File::create(&file).map(drop));
    assert_erofs(
        "O_WRONLY",
        open(std::fs::OpenOptions::new().write(true), &file),
    );
    assert_erofs(
        "O_RDWR",
        open(std::fs::OpenOptions::new().read(true).write(true), &file),
    );
    assert_erofs(
        "O_APPEND",
        open(std::fs::OpenOptions::new().append(true), &file),
    );
    assert_erofs("mkdir", std::fs::create_dir(dir.join("d")));
    assert_erofs(
        "mkdir snapshots/",
        std::fs::create_dir(m.dir.join("snapshots/x")),
    );
    assert_erofs(
        "mkdir channels/",
        std::fs::create_dir(m.dir.join("channels/x")),
    );
    assert_erofs("unlink", std::fs::remove_file(&file));
    assert_erofs(
        "rmdir",
        std::fs::remove_dir(dir.join("main/binary-amd64/by-hash/SHA256")),
    );
    assert_erofs("rename", std::fs::rename(&file, &new));
    assert_erofs(
        "rename channel",
        std::fs::rename(m.dir.join("channels/trusty"), m.dir.join("channels/x")),
    );
    assert_erofs(
        "chmod",
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)),
    );
    assert_erofs("chown", std::os::unix::fs::chown(&file, Some(1), Some(1)));
    assert_erofs("symlink", std::os::unix::fs::symlink("Release", &new));
    assert_erofs("link", std::fs::hard_link(&file, &new));
    assert_erofs("truncate", truncate(&file));
    assert_erofs("setxattr", setxattr(&file));
    let times = std::fs::FileTimes::new().set_modified(std::time::SystemTime::UNIX_EPOCH);
    assert_erofs(
        "utimes",
        std::fs::File::open(&file).unwrap().set_times(times),
    );
    // Nothing changed, and reading still works.
    let meta = fs::metadata(&file).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o444);
    assert_eq!(
        fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
        0o555
    );
    assert!(!fs::read(&file).unwrap().is_empty());
    assert!(!new.exists());
}

#[test]
fn the_mount_and_halo_export_are_the_same_tree_with_the_same_times() {
    let t = TestStore::new();
    t.import_pair("1.0");
    let other = Deb::new("xenial-only", "3")
        .arch("amd64")
        .build(&t.path("in/x"));
    ok(t.halo()
        .args([
            "import",
            "--archive",
            "ceph",
            "--dist",
            "xenial",
            "--component",
            "main",
        ])
        .arg(&other));
    // A source package too, so Sources, Sources.gz and Sources.xz are compared.
    let src = halo_tests::build_source_package(&t, "halo-src", "1.0");
    t.import("trusty", &[src.join("halo-src_1.0_amd64.changes")]);
    let id = t.snapshot();
    t.ok(&["promote", "--to", "trusty-testing", "--snapshot", &id]);
    let m = mount(&t);
    let export = t.root().join("export");
    t.ok(&["export", "--snapshot", &id, export.to_str().unwrap()]);
    let snap = m.dir.join("snapshots").join(&id);
    ok(Command::new("diff").arg("-r").arg(&snap).arg(&export));
    let channel = t.export_channel("trusty-testing");
    ok(Command::new("diff")
        .arg("-r")
        .arg(m.dir.join("channels/trusty-testing"))
        .arg(&channel));
    // Sizes and mtimes are the pool blobs', which the export hard-links.
    let listed = files_under(&export);
    assert!(listed.len() > 10, "{listed:?}");
    for index in ["Sources", "Sources.gz", "Sources.xz"] {
        let rel = Path::new("rustedhalo/dists/trusty/main/source").join(index);
        assert!(listed.contains(&rel), "{index} missing: {listed:?}");
    }
    assert!(listed
        .iter()
        .any(|p| p.to_string_lossy().ends_with("halo-src_1.0.dsc")));
    for rel in &listed {
        let (a, b) = (
            fs::metadata(snap.join(rel)).unwrap(),
            fs::metadata(export.join(rel)).unwrap(),
        );
        assert_eq!(
            (a.size(), a.mtime(), a.mtime_nsec()),
            (b.size(), b.mtime(), b.mtime_nsec()),
            "{}",
            rel.display()
        );
    }
    // Inode numbers are tied to content: stable across paths and remounts.
    let deb = "rustedhalo/pool/main/h/halo-app/halo-app_1.0_amd64.deb";
    let ino = fs::metadata(snap.join(deb)).unwrap().ino();
    assert_eq!(
        fs::metadata(m.dir.join("channels/trusty-testing").join(deb))
            .unwrap()
            .ino(),
        ino
    );
    let again = m.terminate();
    assert!(again.success());
    let m = mount(&t);
    assert_eq!(
        fs::metadata(m.dir.join("snapshots").join(&id).join(deb))
            .unwrap()
            .ino(),
        ino
    );
}

fn transferred(stats: &str) -> usize {
    stats
        .lines()
        .find_map(|l| l.strip_prefix("Number of regular files transferred: "))
        .unwrap_or_else(|| panic!("no transfer count in rsync --stats:\n{stats}"))
        .trim()
        .replace(',', "")
        .parse()
        .unwrap()
}

#[test]
fn rsync_after_a_one_package_promotion_transfers_only_the_changed_files() {
    need_tool("rsync", "rsync");
    let t = TestStore::new();
    let dir = t.path("in/v1");
    let names = [
        "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india",
        "juliett", "kilo", "lima",
    ];
    let debs: Vec<_> = names
        .iter()
        .map(|n| Deb::new(n, "1.0").build(&dir))
        .collect();
    t.import("trusty", &debs);
    let first = t.snapshot();
    t.ok(&["promote", "--to", "trusty", "--snapshot", &first]);
    let m = mount(&t);
    let src = format!("{}/channels/trusty/", m.dir.display());
    let mirror = t.root().join("mirror");
    let stats = ok(Command::new("rsync")
        .args(["-a", "--delete", "--stats", &src])
        .arg(&mirror));
    let all = files_under(&mirror).len();
    assert_eq!(transferred(&stats), all);

    // rsync's quick check compares whole seconds of mtime (unless
    // --modify-window=-1): blobs of the next snapshot must not be written
    // in the same second as those they replace, or a same-size Release
    // would be skipped (docs/operations.md). Production snapshots are
    // minutes apart; here, wait for the clock's next second.
    let release = m
        .dir
        .join("channels/trusty/rustedhalo/dists/trusty/Release");
    let written = fs::metadata(&release).unwrap().mtime();
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64
    };
    wait_until("the next second", Duration::from_secs(3), || {
        now() > written
    });
    t.import(
        "trusty",
        &[Deb::new("charlie", "1.1").build(&t.path("in/v2"))],
    );
    let second = t.snapshot();
    t.ok(&["promote", "--to", "trusty", "--snapshot", &second]);
    // What really changed: files of the new tree that the old one lacks or
    // holds with other bytes.
    let (old, new) = (t.root().join("old"), t.root().join("new"));
    t.ok(&["export", "--snapshot", &first, old.to_str().unwrap()]);
    t.ok(&["export", "--snapshot", &second, new.to_str().unwrap()]);
    let changed = files_under(&new)
        .into_iter()
        .filter(|rel| fs::read(old.join(rel)).ok() != Some(fs::read(new.join(rel)).unwrap()))
        .count();
    // The new .deb, Packages(.gz, .xz) and their by-hash names, Release,
    // InRelease, Release.gpg; and the index diff: Packages.diff/Index, its
    // by-hash name and the patch.
    assert_eq!(changed, 13, "{:?}", files_under(&new));
    let stats = ok(Command::new("rsync")
        .args(["-a", "--delete", "--stats", "--itemize-changes", &src])
        .arg(&mirror));
    assert_eq!(transferred(&stats), changed, "{stats}");
    assert!(all > changed + 7, "{all} files, {changed} changed");
    // Of the packages, only the new one travels.
    let debs = stats
        .lines()
        .filter(|l| l.starts_with(">f") && l.ends_with(".deb"))
        .count();
    assert_eq!(debs, 1, "{stats}");
    ok(Command::new("diff").arg("-r").arg(&mirror).arg(&new));
}

/// Runs `rounds` of update + download-only install; every failure's output.
fn apt_loop(apt: &Apt, rounds: usize) -> Vec<String> {
    let mut failures = Vec::new();
    for _ in 0..rounds {
        for args in [
            &["update"][..],
            &["install", "--download-only", "-y", "halo-app"],
        ] {
            let out = run(halo_tests::mount::sandboxed(apt, "apt-get").args(args));
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            let bad = [
                "W:",
                "E:",
                "Err:",
                "Hash Sum mismatch",
                "Not Found",
                "not found",
            ];
            if !out.status.success() || bad.iter().any(|b| text.contains(b)) {
                failures.push(text);
            }
        }
    }
    failures
}

#[test]
fn apt_update_loops_never_fail_while_the_channel_flips() {
    let (t, first) = store_at_v1();
    t.import_pair("1.1");
    let second = t.snapshot();
    let m = mount(&t);
    let web = HttpServer::start(&m.dir);
    let channel = format!("{}/channels/trusty/rustedhalo", m.dir.display());
    let bases = [
        format!("file:{channel}"),
        format!("file:{channel}"),
        format!("{}/channels/trusty/rustedhalo", web.url()),
    ];
    let apts: Vec<_> = bases
        .iter()
        .enumerate()
        .map(|(i, b)| Apt::new(&t.root().join(format!("apt-{i}")), &t.sources(b)))
        .collect();
    let done = AtomicBool::new(false);
    let (failures, flips) = std::thread::scope(|s| {
        let flipper = s.spawn(|| {
            let mut flips = 0;
            while !done.load(Ordering::Relaxed) && flips < 400 {
                let to = if flips % 2 == 0 { &second } else { &first };
                t.ok(&["promote", "--to", "trusty", "--snapshot", to]);
                flips += 1;
            }
            flips
        });
        let loops: Vec<_> = apts
            .iter()
            .map(|apt| s.spawn(|| apt_loop(apt, 6)))
            .collect();
        let failures: Vec<String> = loops.into_iter().flat_map(|l| l.join().unwrap()).collect();
        done.store(true, Ordering::Relaxed);
        (failures, flipper.join().unwrap())
    });
    assert!(
        failures.is_empty(),
        "{} failures, the first:\n{}",
        failures.len(),
        failures[0]
    );
    // Counted, not timed: the apt loops must have run across flips, or
    // they proved nothing about reading during a move.
    assert!(flips >= 10, "only {flips} flips while apt ran");
}

#[test]
fn sigterm_unmounts_and_exits_zero() {
    let (t, _) = store_at_v1();
    let m = mount(&t);
    let dir = m.dir.clone();
    let log = m.dir.with_extension("log");
    let status = m.terminate();
    assert!(
        status.success(),
        "{status}:\n{}",
        fs::read_to_string(log).unwrap_or_default()
    );
    assert!(!is_mounted(&dir));
}

#[test]
fn sigint_detaches_a_busy_mount_at_once_and_exits_when_it_is_let_go() {
    let (t, _) = store_at_v1();
    let mut m = mount(&t);
    let dir = m.dir.clone();
    let in_release = dir.join("channels/trusty/rustedhalo/dists/trusty/InRelease");
    let expect = fs::read(&in_release).unwrap();
    // An open file and a process inside the mount keep it busy.
    let mut held = fs::File::open(&in_release).unwrap();
    let mut inside = Command::new("sleep")
        .arg("60")
        .current_dir(dir.join("snapshots"))
        .spawn()
        .unwrap();
    halo_tests::mount::send_signal(m.pid(), libc::SIGINT);
    wait_until(
        "the mount to leave the namespace",
        Duration::from_secs(10),
        || !is_mounted(&dir),
    );
    // Gone for new users, still serving the open file.
    assert!(
        m.running(),
        "repofs exited under an open file:\n{}",
        m.log()
    );
    let mut text = Vec::new();
    held.read_to_end(&mut text).unwrap();
    assert_eq!(text, expect);
    drop(held);
    inside.kill().unwrap();
    inside.wait().unwrap();
    let log = m.dir.with_extension("log");
    let status = m.wait();
    assert!(
        status.success(),
        "{status}:\n{}",
        fs::read_to_string(log).unwrap_or_default()
    );
}

#[test]
fn without_f_repofs_returns_once_the_mount_is_usable_and_takes_fstab_options() {
    need_fuse();
    let (t, _) = store_at_v1();
    let dir = t.root().join("mnt");
    fs::create_dir_all(&dir).unwrap();
    // What mount.fuse3 runs for `STORE DIR fuse.repofs ro,allow_other,noauto,_netdev 0 0`.
    let out = run(Command::new(bin("repofs"))
        .arg(t.store())
        .arg(&dir)
        .args(["-o", "rw,nosuid,nodev,noatime,allow_other,noauto,_netdev"]));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Usable the moment the command returned.
    assert!(is_mounted(&dir));
    assert!(dir.join("channels/trusty.snapshot").is_symlink());
    let mounts = fs::read_to_string("/proc/self/mounts").unwrap();
    let line = mounts
        .lines()
        .find(|l| l.split(' ').nth(1) == Some(dir.to_str().unwrap()))
        .unwrap();
    assert!(line.contains(" fuse.repofs ro,"), "{line}");
    ok(Command::new("umount").arg(&dir));
    wait_until("the mount to go", Duration::from_secs(10), || {
        !is_mounted(&dir)
    });
}

fn one_line_failure(args: &[&std::ffi::OsStr], expect: &str) {
    let out = run(Command::new(bin("repofs")).args(args));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
    assert!(
        stderr.starts_with("repofs: ") && stderr.contains(expect),
        "{args:?}: {stderr}"
    );
}

#[test]
fn bad_invocations_fail_with_one_line() {
    let (t, _) = store_at_v1();
    let store = t.store();
    let missing = t.root().join("no-such-dir");
    let not_store = t.path("not-a-store");
    fs::create_dir_all(&not_store).unwrap();
    let free = t.path("free");
    fs::create_dir_all(&free).unwrap();
    one_line_failure(&[store.as_os_str(), missing.as_os_str()], "does not exist");
    one_line_failure(
        &[not_store.as_os_str(), free.as_os_str()],
        "not a rustedhalo store",
    );
    one_line_failure(
        &[
            store.as_os_str(),
            free.as_os_str(),
            "-o".as_ref(),
            "grace=soon".as_ref(),
        ],
        "grace",
    );
    // No /dev/fuse: in a private mount namespace whose /dev is an empty tmpfs.
    need_tool("unshare", "util-linux");
    let out = run(Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg("mount -t tmpfs none /dev && exec \"$0\" \"$1\" \"$2\" -f")
        .arg(bin("repofs"))
        .arg(&store)
        .arg(&free));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("/dev/fuse is missing"), "{stderr}");
    assert!(!is_mounted(&free));
    let m = mount(&t);
    one_line_failure(&[store.as_os_str(), m.dir.as_os_str()], "busy");
    assert!(is_mounted(&m.dir), "the running mount is untouched");
}

#[test]
fn mount_8_mounts_an_fstab_line() {
    need_fuse();
    // mount(8) looks for its helpers in /sbin whatever PATH says.
    assert!(
        ["/sbin/mount.fuse3", "/usr/sbin/mount.fuse3"]
            .iter()
            .any(|p| Path::new(p).exists()),
        "mount.fuse3 is missing: apt-get install fuse3 (bash .ci/test installs .ci/packages as root)"
    );
    let (t, id) = store_at_v1();
    let dir = t.root().join("mnt-fstab");
    fs::create_dir_all(&dir).unwrap();
    // mount(8) runs helpers with a fixed PATH, so the test names the binary
    // by its absolute path in the `PROGRAM#SOURCE` form mount.fuse3 takes;
    // with repofs installed on PATH the line reads `STORE DIR fuse.repofs ...`.
    let fstab = t.path("fstab");
    fs::write(
        &fstab,
        format!(
            "{}#{} {} fuse ro,allow_other,noatime,_netdev 0 0\n",
            bin("repofs").display(),
            t.store().display(),
            dir.display()
        ),
    )
    .unwrap();
    ok(Command::new("mount").arg("-T").arg(&fstab).arg(&dir));
    assert!(is_mounted(&dir));
    assert_eq!(
        fs::read_link(dir.join("channels/trusty.snapshot")).unwrap(),
        Path::new("../snapshots").join(&id)
    );
    let mounts = fs::read_to_string("/proc/self/mounts").unwrap();
    let line = mounts
        .lines()
        .find(|l| l.split(' ').nth(1) == Some(dir.to_str().unwrap()))
        .unwrap();
    assert!(
        line.contains(" fuse.repofs ro,") && line.contains("allow_other"),
        "{line}"
    );
    ok(Command::new("umount").arg(&dir));
    wait_until("the mount to go", Duration::from_secs(10), || {
        !is_mounted(&dir)
    });
    // A line naming something that is not a store fails with repofs's reason.
    let bad = t.path("fstab-bad");
    let not_store = t.path("not-a-store");
    fs::create_dir_all(&not_store).unwrap();
    fs::write(
        &bad,
        format!(
            "{}#{} {} fuse ro 0 0\n",
            bin("repofs").display(),
            not_store.display(),
            dir.display()
        ),
    )
    .unwrap();
    let out = run(Command::new("mount").arg("-T").arg(&bad).arg(&dir));
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("not a rustedhalo store"), "{stderr}");
    assert!(!is_mounted(&dir));
}

/// The Packages index of `tree`'s trusty/main/amd64 and its by-hash path.
fn packages_by_hash(tree: &Path) -> (Vec<u8>, PathBuf) {
    let dir = tree.join("rustedhalo/dists/trusty/main/binary-amd64");
    let data = fs::read(dir.join("Packages")).unwrap();
    let hex = repofs::hash::sha256_hex(&data);
    (data, dir.join("by-hash/SHA256").join(hex))
}

#[test]
fn a_channel_keeps_answering_for_what_it_left_within_the_grace_but_lists_only_its_target() {
    let (t, first) = store_at_v1();
    t.import_pair("1.1");
    let second = t.snapshot();
    // Moving back from `second` to `first` leaves the 1.1 packages behind.
    for (opts, grace) in [("allow_other", true), ("allow_other,grace=0", false)] {
        t.ok(&["promote", "--to", "trusty", "--snapshot", &second]);
        let m = Mount::start(&t.store(), &t.root().join("mnt-grace"), opts);
        let channel = m.dir.join("channels/trusty");
        let (old_packages, old_by_hash) = packages_by_hash(&channel);
        let left = channel.join("rustedhalo/pool/main/h/halo-app/halo-app_1.1_amd64.deb");
        assert!(left.is_file());
        t.ok(&["promote", "--to", "trusty", "--snapshot", &first]);
        wait_until("the channel to move", Duration::from_secs(5), || {
            packages_by_hash(&channel).0 != old_packages
        });
        // by-hash names of the previous target always answer (byhash_keep).
        assert_eq!(fs::read(&old_by_hash).unwrap(), old_packages, "{opts}");
        // Its pool files only within the grace period.
        assert_eq!(left.is_file(), grace, "{opts}");
        // Listings show exactly the current target.
        let names = |dir: &Path| -> Vec<String> {
            fs::read_dir(dir)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        };
        assert_eq!(
            names(left.parent().unwrap()),
            ["halo-app_1.0_amd64.deb"],
            "{opts}"
        );
        let old_name = old_by_hash
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let hashes = names(old_by_hash.parent().unwrap());
        assert!(
            !hashes.is_empty() && !hashes.contains(&old_name),
            "{opts}: {hashes:?}"
        );
        assert!(m.terminate().success());
    }
}

#[test]
fn an_open_file_keeps_reading_after_gc_removes_its_snapshot() {
    let (t, first) = store_at_v1();
    t.import_pair("1.1");
    let second = t.snapshot();
    let m = mount(&t);
    let deb = m
        .dir
        .join("snapshots")
        .join(&first)
        .join("rustedhalo/pool/main/h/halo-app/halo-app_1.0_amd64.deb");
    let expect = fs::read(t.root().join("in/1.0/halo-app_1.0_amd64.deb")).unwrap();
    let mut open = fs::File::open(&deb).unwrap();
    t.ok(&["promote", "--to", "trusty", "--snapshot", &second]);
    t.ok(&["gc", "--keep-snapshots", "0", "--keep-previous", "0"]);
    assert!(!t.ok(&["snapshot", "list"]).contains(&first));
    let mut got = Vec::new();
    open.read_to_end(&mut got).unwrap();
    assert_eq!(got, expect);
    wait_until(
        "the removed snapshot to leave the listing",
        Duration::from_secs(5),
        || !m.dir.join("snapshots").join(&first).exists(),
    );
}
