#![allow(clippy::unwrap_used)]
//! Test harness for the integration tests: finds the real binaries, makes
//! temp stores, builds packages with Debian's own tools, and runs an
//! isolated `apt-get` that leaves the system's apt untouched.
//!
//! A missing tool fails the test with the package to install: a skipped
//! test is not a passed one.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use fs_err as fs;

pub mod build;
pub mod debian;
pub mod jenkins;
pub mod mount;
pub mod probe;
pub mod serve;
pub mod upstream;

/// The directory holding the workspace's binaries (next to `deps/`, where
/// the test executable runs from).
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let deps = exe.parent().expect("deps dir");
    deps.parent().expect("profile dir").to_path_buf()
}

pub fn bin(name: &str) -> PathBuf {
    let p = bin_dir().join(name);
    assert!(
        p.exists(),
        "{} not built: run `cargo build --workspace --bins` first (the README's test command does)",
        p.display()
    );
    p
}

/// Fails with the Debian package to install when a tool is missing.
pub fn need_tool(tool: &str, package: &str) {
    let found = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|d| d.join(tool).exists()))
        .unwrap_or(false);
    assert!(
        found,
        "{tool} is missing: apt-get install {package} (bash .ci/test installs .ci/packages as root)"
    );
}

/// Runs a command, returning its output whatever the exit status.
pub fn run(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

/// Runs a command that must succeed; returns stdout.
pub fn ok(cmd: &mut Command) -> String {
    let out = run(cmd);
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A store in a temp directory, initialised by `halo init`.
pub struct TestStore {
    pub dir: tempfile::TempDir,
}

impl TestStore {
    /// A store whose stable channel is not gated: these tests exercise the
    /// store, the view and the mirror, and promote to `trusty` directly.
    /// The gate has its own tests (`tests/tests/accept.rs`, `gated()`).
    pub fn new() -> Self {
        let s = Self::gated();
        ok(s.halo().args(["channel", "gate", "trusty", "--off"]));
        s
    }

    /// [`TestStore::new`] made by `halo init ARGS` (`--key-algorithm rsa4096`).
    pub fn with_init(args: &[&str]) -> Self {
        let s = Self::init(args);
        ok(s.halo().args(["channel", "gate", "trusty", "--off"]));
        s
    }

    /// A store exactly as `halo init` makes it: `trusty` gated.
    pub fn gated() -> Self {
        Self::init(&[])
    }

    fn init(args: &[&str]) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("halo-test-")
            .tempdir()
            .expect("tempdir");
        // apt's _apt sandbox user and other users must be able to read.
        set_mode(dir.path(), 0o755);
        let s = Self { dir };
        ok(s.halo().arg("init").args(args));
        s
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn store(&self) -> PathBuf {
        self.root().join("store")
    }

    /// A scratch directory inside the test's temp dir.
    pub fn path(&self, rel: &str) -> PathBuf {
        let p = self.root().join(rel);
        fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        p
    }

    pub fn halo(&self) -> Command {
        let mut c = Command::new(bin("halo"));
        c.arg("--store").arg(self.store());
        c.env_remove("RUST_LOG");
        c
    }

    /// `halo ARGS` that must succeed; stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        ok(self.halo().args(args))
    }

    pub fn import(&self, dist: &str, files: &[PathBuf]) -> String {
        ok(self
            .halo()
            .args([
                "import",
                "--archive",
                "rustedhalo",
                "--dist",
                dist,
                "--component",
                "main",
            ])
            .args(files))
    }

    /// `snapshot create`, returning the id (last word of stdout).
    pub fn snapshot(&self) -> String {
        let out = self.ok(&["snapshot", "create"]);
        out.split_whitespace()
            .last()
            .expect("snapshot id")
            .to_string()
    }

    /// The snapshot whose content a channel serves: what it points at, or
    /// for a re-dated copy (a move back in time) the snapshot it restores.
    pub fn channel_content(&self, name: &str) -> String {
        let id = self.channel(name);
        let manifest: serde_json::Value = serde_json::from_str(
            &fs::read_to_string(self.store().join(format!("snapshots/{id}.json")))
                .expect("manifest"),
        )
        .expect("manifest json");
        manifest["restores"].as_str().map_or(id, str::to_string)
    }

    pub fn channel(&self, name: &str) -> String {
        let list = self.ok(&["channel", "list"]);
        list.lines()
            .find_map(|l| {
                let mut w = l.split_whitespace();
                (w.next() == Some(name)).then(|| w.next().unwrap_or("-").to_string())
            })
            .unwrap_or_else(|| panic!("channel {name} not listed in {list}"))
    }

    /// Exports a channel to a fresh directory and returns it.
    pub fn export_channel(&self, channel: &str) -> PathBuf {
        let n = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_nanos();
        let dir = self.root().join(format!("export-{channel}-{n}"));
        self.ok(&["export", "--channel", channel, dir.to_str().expect("utf8")]);
        dir
    }

    /// Everything a failed command must not change: fsck passes, and the
    /// snapshot list, channel list and working state are what they were.
    pub fn fingerprint(&self) -> (String, String, Vec<u8>) {
        let snapshots = self.ok(&["snapshot", "list"]);
        let channels = self.ok(&["channel", "list"]);
        let state = fs::read(self.store().join("state.json")).unwrap_or_default();
        (snapshots, channels, state)
    }

    /// Temp files in the store, as `halo fsck --json` counts them.
    pub fn temp_files(&self) -> u64 {
        let out = run(self.halo().args(["fsck", "--json"]));
        let report: serde_json::Value =
            serde_json::from_slice(&out.stdout).expect("fsck --json output");
        report["temp_files"].as_u64().expect("temp_files")
    }

    /// A `sources.list` line for suite `trusty`, component `main`, at
    /// `base` (a mount, an export or a served URL), signed by the store's key.
    pub fn sources(&self, base: &str) -> String {
        format!(
            "deb [signed-by={}] {base} trusty main\n",
            self.store().join("keys/repo.gpg").display()
        )
    }

    /// halo-lib and halo-app (depending on it) at `version`, imported into trusty.
    pub fn import_pair(&self, version: &str) -> Vec<PathBuf> {
        let dir = self.path(&format!("in/{version}"));
        let debs = vec![
            Deb::new("halo-lib", version).build(&dir),
            Deb::new("halo-app", version)
                .arch("amd64")
                .fields(&format!("Depends: halo-lib (>= {version})\n"))
                .build(&dir),
        ];
        self.import("trusty", &debs);
        debs
    }

    pub fn assert_sound(&self) {
        let out = run(self.halo().arg("fsck"));
        assert!(
            out.status.success(),
            "fsck failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Every file under `dir`, relative to it, sorted.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).expect("read_dir") {
            let e = e.expect("dir entry");
            if e.file_type().expect("file type").is_dir() {
                stack.push(e.path());
            } else {
                out.push(e.path().strip_prefix(dir).expect("under dir").to_path_buf());
            }
        }
    }
    out.sort();
    out
}

impl Default for TestStore {
    fn default() -> Self {
        Self::new()
    }
}

pub fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// A binary package to build with `dpkg-deb`.
#[derive(Debug, Clone)]
pub struct Deb {
    pub name: String,
    pub version: String,
    pub arch: String,
    /// Extra control fields, verbatim (`"Depends: foo\n"`).
    pub fields: String,
    /// `dpkg-deb -Z` compression: gzip, xz, zstd or none.
    pub compression: String,
    /// Distinguishes two builds of the same name and version.
    pub payload: String,
    /// Extra files: (absolute path in the package, content, mode).
    pub files: Vec<(String, String, u32)>,
    /// Maintainer scripts: (`postinst`, `preinst`, ..., content).
    pub scripts: Vec<(String, String)>,
}

impl Deb {
    pub fn new(name: &str, version: &str) -> Self {
        Self {
            name: name.into(),
            version: version.into(),
            arch: "all".into(),
            fields: String::new(),
            compression: "xz".into(),
            payload: String::new(),
            files: Vec::new(),
            scripts: Vec::new(),
        }
    }

    /// Ships `content` at `path` (absolute) with `mode`.
    pub fn file(mut self, path: &str, content: &str, mode: u32) -> Self {
        self.files.push((path.into(), content.into(), mode));
        self
    }

    /// A maintainer script (`postinst`, `preinst`, `prerm`, `postrm`).
    pub fn script(mut self, name: &str, content: &str) -> Self {
        self.scripts.push((name.into(), content.into()));
        self
    }

    pub fn arch(mut self, arch: &str) -> Self {
        self.arch = arch.into();
        self
    }

    pub fn fields(mut self, fields: &str) -> Self {
        self.fields = fields.into();
        self
    }

    pub fn compression(mut self, c: &str) -> Self {
        self.compression = c.into();
        self
    }

    pub fn payload(mut self, p: &str) -> Self {
        self.payload = p.into();
        self
    }

    /// Builds `<dir>/<name>_<version>_<arch>.deb` (epoch dropped, as dpkg does).
    pub fn build(&self, dir: &Path) -> PathBuf {
        need_tool("dpkg-deb", "dpkg");
        let n = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_nanos();
        let root = dir.join(format!(".build-{}-{n}", self.name));
        fs::create_dir_all(root.join("DEBIAN")).expect("mkdir");
        let doc = root.join("usr/share/doc").join(&self.name);
        fs::create_dir_all(&doc).expect("mkdir");
        fs::write(
            doc.join("README"),
            format!("{} {} {}\n", self.name, self.version, self.payload),
        )
        .expect("write");
        let control = format!(
            "Package: {}\nVersion: {}\nArchitecture: {}\nMaintainer: Test <test@example.org>\n{}Description: test package {}\n A package built by the rustedhalo tests.\n",
            self.name, self.version, self.arch, self.fields, self.name
        );
        fs::write(root.join("DEBIAN/control"), control).expect("write");
        for (path, content, mode) in &self.files {
            let dest = root.join(path.trim_start_matches('/'));
            fs::create_dir_all(dest.parent().expect("parent")).expect("mkdir");
            fs::write(&dest, content).expect("write");
            set_mode(&dest, *mode);
        }
        for (name, content) in &self.scripts {
            let dest = root.join("DEBIAN").join(name);
            fs::write(&dest, content).expect("write");
            set_mode(&dest, 0o755);
        }
        let upstream = self
            .version
            .split_once(':')
            .map_or(self.version.as_str(), |(_, v)| v);
        let deb = dir.join(format!("{}_{}_{}.deb", self.name, upstream, self.arch));
        ok(Command::new("dpkg-deb")
            .arg("--root-owner-group")
            .arg(format!("-Z{}", self.compression))
            .arg("--build")
            .arg(&root)
            .arg(&deb));
        fs::remove_dir_all(&root).expect("cleanup");
        deb
    }
}

/// An isolated apt: its own sources, lists, cache and dpkg status, so the
/// system's apt is untouched.
pub struct Apt {
    pub dir: PathBuf,
}

impl Apt {
    /// `sources` is the content of the sources.list.
    pub fn new(dir: &Path, sources: &str) -> Self {
        need_tool("apt-get", "apt");
        for d in [
            "lists/partial",
            "cache/archives/partial",
            "etc/preferences.d",
            "etc/apt.conf.d",
        ] {
            fs::create_dir_all(dir.join(d)).expect("mkdir");
        }
        fs::write(dir.join("etc/sources.list"), sources).expect("write");
        fs::write(dir.join("status"), "").expect("write");
        set_mode(dir, 0o755);
        Self {
            dir: dir.to_path_buf(),
        }
    }

    pub fn command(&self, tool: &str) -> Command {
        let d = |p: &str| self.dir.join(p).display().to_string();
        let mut c = Command::new(tool);
        for opt in [
            format!("Dir::Etc::SourceList={}", d("etc/sources.list")),
            "Dir::Etc::SourceParts=/dev/null".to_string(),
            format!("Dir::Etc::Preferences={}", d("etc/preferences")),
            format!("Dir::Etc::PreferencesParts={}", d("etc/preferences.d")),
            format!("Dir::Etc::Parts={}", d("etc/apt.conf.d")),
            format!("Dir::State::Lists={}", d("lists")),
            format!("Dir::Cache={}", d("cache")),
            format!("Dir::State::status={}", d("status")),
            "APT::Architecture=amd64".to_string(),
            "APT::Architectures=amd64".to_string(),
            "Debug::NoLocking=1".to_string(),
            "Acquire::Languages=none".to_string(),
            "APT::Sandbox::User=root".to_string(),
        ] {
            c.arg("-o").arg(opt);
        }
        c
    }

    /// `apt-get update`, which must succeed without warnings about
    /// signatures or missing files.
    pub fn update(&self) -> String {
        let out = run(self.command("apt-get").arg("update"));
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "apt-get update failed:\n{text}");
        assert!(
            !text.contains("W:") && !text.contains("E:"),
            "apt-get update warned:\n{text}"
        );
        text
    }

    /// The candidate version apt would install.
    pub fn candidate(&self, package: &str) -> Option<String> {
        let out = ok(self.command("apt-cache").args(["policy", package]));
        out.lines()
            .find_map(|l| l.trim().strip_prefix("Candidate: "))
            .filter(|v| *v != "(none)")
            .map(str::to_string)
    }

    /// Packages and versions `apt-get install -s` would install.
    pub fn simulate_install(&self, packages: &[&str]) -> Vec<(String, String)> {
        let out = ok(self
            .command("apt-get")
            .args(["install", "-s", "-y"])
            .args(packages));
        out.lines()
            .filter_map(|l| l.strip_prefix("Inst "))
            .map(|l| {
                let mut w = l.split_whitespace();
                let name = w.next().unwrap_or_default().to_string();
                let version = w
                    .next()
                    .unwrap_or_default()
                    .trim_start_matches('(')
                    .to_string();
                (name, version)
            })
            .collect()
    }
}

/// Parses deb822 text into paragraphs of (field, value) in order, values
/// with continuation lines joined by `\n`.
pub fn parse_stanzas(text: &str) -> Vec<Vec<(String, String)>> {
    let mut out = Vec::new();
    let mut cur: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if line.trim().is_empty() {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
        } else if line.starts_with([' ', '\t']) {
            if let Some(last) = cur.last_mut() {
                last.1.push('\n');
                last.1.push_str(line);
            }
        } else if let Some((k, v)) = line.split_once(':') {
            cur.push((k.to_string(), v.trim().to_string()));
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

pub fn field<'a>(stanza: &'a [(String, String)], name: &str) -> Option<&'a str> {
    stanza
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Builds a native source package and its binary with dpkg-buildpackage,
/// returning the directory holding .dsc, .tar.xz, .deb and .changes.
pub fn build_source_package(t: &TestStore, name: &str, version: &str) -> PathBuf {
    need_tool("dpkg-buildpackage", "dpkg-dev");
    let top = t
        .path(&format!("src-{name}/x"))
        .parent()
        .unwrap()
        .to_path_buf();
    let src = top.join(format!("{name}-{version}"));
    fs::create_dir_all(src.join("debian/source")).unwrap();
    fs::write(src.join("debian/source/format"), "3.0 (native)\n").unwrap();
    fs::write(src.join("hello.txt"), format!("{name} {version}\n")).unwrap();
    fs::write(
        src.join("debian/control"),
        format!("Source: {name}\nSection: misc\nPriority: optional\nMaintainer: Test <t@example.org>\nBuild-Depends: make\nStandards-Version: 4.6.2\n\nPackage: {name}\nArchitecture: all\nDescription: test source package\n Built from source by the tests.\n"),
    )
    .unwrap();
    fs::write(
        src.join("debian/changelog"),
        format!("{name} ({version}) trusty; urgency=medium\n\n  * Test.\n\n -- Test <t@example.org>  Fri, 27 Nov 2026 00:00:00 +0000\n"),
    )
    .unwrap();
    let rules = format!(
        "#!/usr/bin/make -f\nbuild build-arch build-indep:\n\ttrue\nclean:\n\trm -rf debian/tmp debian/files\nbinary binary-arch binary-indep:\n\tmkdir -p debian/tmp/DEBIAN debian/tmp/usr/share/{name}\n\tcp hello.txt debian/tmp/usr/share/{name}/\n\tdpkg-gencontrol -p{name} -Pdebian/tmp\n\tdpkg-deb --root-owner-group --build debian/tmp ..\n"
    );
    fs::write(src.join("debian/rules"), rules).unwrap();
    set_mode(&src.join("debian/rules"), 0o755);
    ok(Command::new("dpkg-buildpackage")
        .args(["-us", "-uc", "-d", "-F"])
        .current_dir(&src));
    top
}

/// `suite|case|result|message` per testcase of a JUnit file, as python's
/// junitparser (a real consumer of the format) reads it: the suite's name
/// after its last `: `, the result's kinds (`Failure`, `Skipped`...) or
/// `passed`, the first result's message.
pub fn junitparser(file: &Path) -> Vec<String> {
    let script = r#"
import sys
from junitparser import JUnitXml
for suite in JUnitXml.fromfile(sys.argv[1]):
    for case in suite:
        kinds = [type(r).__name__ for r in case.result]
        msg = case.result[0].message if case.result else ""
        print(suite.name.split(": ")[-1], case.name, ",".join(kinds) or "passed", msg, sep="|")
"#;
    let out = run(Command::new("python3").arg("-c").arg(script).arg(file));
    assert!(
        out.status.success(),
        "junitparser could not read {}: {} (pip install -r tests/requirements.txt)",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}
