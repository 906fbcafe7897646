//! A signed upstream APT repository for the mirror tests, made with
//! Debian's own tools: packages by `dpkg-deb` (via [`crate::Deb`]), indices
//! and Release by `apt-ftparchive`, `.gz`/`.xz` by `gzip`/`xz`, InRelease
//! and Release.gpg by `gpg` with a throwaway key, served over 127.0.0.1 by
//! `tests/upstream_server.py` (request log, conditional requests, injected
//! faults).

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use fs_err as fs;

use crate::{need_tool, ok};

/// A throwaway GnuPG home with one Ed25519 signing key.
pub struct Gpg {
    home: tempfile::TempDir,
    pub fingerprint: String,
}

impl Gpg {
    pub fn new(user: &str) -> Self {
        need_tool("gpg", "gnupg");
        let home = tempfile::Builder::new()
            .prefix("halo-gpg-")
            .tempdir_in("/tmp")
            .expect("tempdir");
        crate::set_mode(home.path(), 0o700);
        let mut g = Self {
            home,
            fingerprint: String::new(),
        };
        ok(g.command().args([
            "--passphrase",
            "",
            "--quick-gen-key",
            user,
            "ed25519",
            "sign",
            "0",
        ]));
        let listing = ok(g.command().args(["--with-colons", "--list-secret-keys"]));
        g.fingerprint = listing
            .lines()
            .find_map(|l| l.strip_prefix("fpr:"))
            .and_then(|l| l.split(':').find(|f| !f.is_empty()))
            .expect("a fingerprint")
            .to_string();
        g
    }

    pub fn command(&self) -> Command {
        let mut c = Command::new("gpg");
        c.env("GNUPGHOME", self.home.path()).args([
            "--batch",
            "--yes",
            "--quiet",
            "--pinentry-mode",
            "loopback",
        ]);
        c
    }

    /// The public key, binary (what `signed-by=` and `keyring =` take).
    pub fn export(&self, dest: &Path) {
        ok(self
            .command()
            .arg("--output")
            .arg(dest)
            .args(["--export", &self.fingerprint]));
    }

    /// `InRelease` and `Release.gpg` for the `Release` in `dir`.
    pub fn sign_release(&self, dir: &Path) {
        let release = dir.join("Release");
        let key = ["--local-user", &self.fingerprint, "--passphrase", ""];
        ok(self
            .command()
            .args(key)
            .arg("--output")
            .arg(dir.join("InRelease"))
            .arg("--clearsign")
            .arg(&release));
        ok(self
            .command()
            .args(key)
            .arg("--output")
            .arg(dir.join("Release.gpg"))
            .args(["--detach-sign", "--armor"])
            .arg(&release));
    }
}

impl Drop for Gpg {
    fn drop(&mut self) {
        let _ = Command::new("gpgconf")
            .env("GNUPGHOME", self.home.path())
            .args(["--kill", "all"])
            .output();
    }
}

/// How to publish a dist.
#[derive(Debug, Clone)]
pub struct Publish {
    pub components: Vec<String>,
    pub architectures: Vec<String>,
    /// Offer indices under `by-hash/SHA256/` and say `Acquire-By-Hash: yes`.
    pub by_hash: bool,
    /// A `Valid-Until` line (RFC 2822 date).
    pub valid_until: Option<String>,
    /// Publish `source/Sources` for each component too.
    pub sources: bool,
    /// Publish `i18n/Translation-en.bz2` for each component (as Debian does).
    pub translations: bool,
    /// Publish `debian-installer/binary-<arch>/Packages` of the `.udeb`s.
    pub udebs: bool,
}

impl Default for Publish {
    fn default() -> Self {
        Self {
            components: vec!["main".into()],
            architectures: vec!["amd64".into()],
            by_hash: true,
            valid_until: None,
            sources: false,
            translations: false,
            udebs: false,
        }
    }
}

/// `tests/upstream_server.py` serving a directory on 127.0.0.1; stopped on drop.
pub struct Server {
    child: Child,
    pub port: u16,
    control: PathBuf,
}

impl Server {
    /// Serves `root`; the request log and faults live in `control`.
    pub fn start(root: &Path, control: &Path) -> Self {
        need_tool("python3", "python3");
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/upstream_server.py");
        let mut child = Command::new("python3")
            .arg(script)
            .arg(root)
            .arg(control)
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the upstream server");
        let mut line = String::new();
        let stdout = child.stdout.take().expect("server stdout");
        std::io::BufReader::new(stdout)
            .read_line(&mut line)
            .expect("server port");
        let port = line.trim().parse().unwrap_or_else(|_| {
            let _ = child.kill();
            panic!("upstream server printed {line:?} instead of its port")
        });
        Self {
            child,
            port,
            control: control.to_path_buf(),
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }

    /// Every request so far: (path, status).
    pub fn requests(&self) -> Vec<(String, u16)> {
        fs::read_to_string(self.control.join("requests.log"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| {
                let mut w = l.split_whitespace();
                let _method = w.next()?;
                Some((w.next()?.to_string(), w.next()?.parse().ok()?))
            })
            .collect()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The upstream repository and its HTTP server.
pub struct Upstream {
    dir: tempfile::TempDir,
    pub gpg: Gpg,
    server: Server,
}

impl Upstream {
    pub fn new() -> Self {
        for (tool, pkg) in [
            ("apt-ftparchive", "apt-utils"),
            ("gzip", "gzip"),
            ("xz", "xz-utils"),
            ("python3", "python3"),
        ] {
            need_tool(tool, pkg);
        }
        let dir = tempfile::Builder::new()
            .prefix("halo-upstream-")
            .tempdir()
            .expect("tempdir");
        for d in ["repo/pool", "control", "debs"] {
            fs::create_dir_all(dir.path().join(d)).expect("mkdir");
        }
        let gpg = Gpg::new("Upstream Test <upstream@example.org>");
        gpg.export(&dir.path().join("upstream.gpg"));
        let server = Server::start(&dir.path().join("repo"), &dir.path().join("control"));
        Self { dir, gpg, server }
    }

    pub fn url(&self) -> String {
        self.server.url()
    }

    /// The served directory.
    pub fn repo(&self) -> PathBuf {
        self.dir.path().join("repo")
    }

    /// The upstream's public key (binary keyring).
    pub fn keyring(&self) -> PathBuf {
        self.dir.path().join("upstream.gpg")
    }

    /// Where to build packages before adding them.
    pub fn debs(&self) -> PathBuf {
        self.dir.path().join("debs")
    }

    /// Builds `deb` and puts it into the pool of `component`; returns its
    /// path relative to the repository root.
    pub fn add(&self, component: &str, deb: &crate::Deb) -> String {
        let built = deb.build(&self.debs());
        let file = built
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        let rel = format!("pool/{component}/{}/{}/{file}", &deb.name[..1], deb.name);
        let dest = self.repo().join(&rel);
        fs::create_dir_all(dest.parent().expect("parent")).expect("mkdir");
        fs::copy(&built, &dest).expect("copy");
        rel
    }

    /// Puts an existing `.deb` (named `<package>_...`) into the pool of
    /// `component` (a hard link when it can); returns its path relative to
    /// the repository root.
    pub fn add_deb(&self, component: &str, deb: &Path) -> String {
        let file = deb
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        let name = file.split('_').next().expect("package name");
        let letter = if name.starts_with("lib") {
            &name[..4]
        } else {
            &name[..1]
        };
        let rel = format!("pool/{component}/{letter}/{name}/{file}");
        let dest = self.repo().join(&rel);
        fs::create_dir_all(dest.parent().expect("parent")).expect("mkdir");
        if fs::hard_link(deb, &dest).is_err() {
            fs::copy(deb, &dest).expect("copy");
        }
        rel
    }

    /// Like [`Upstream::add`], as an installer package (`.udeb`).
    pub fn add_udeb(&self, component: &str, deb: &crate::Deb) -> String {
        let rel = self.add(component, deb);
        let udeb = rel.replace(".deb", ".udeb");
        fs::rename(self.repo().join(&rel), self.repo().join(&udeb)).expect("rename");
        udeb
    }

    /// Makes a native source package with `dpkg-source -b` and puts its
    /// files into the pool of `component`; returns their paths.
    pub fn add_source(&self, component: &str, name: &str, version: &str) -> Vec<String> {
        need_tool("dpkg-source", "dpkg-dev");
        let top = self.debs().join(format!("src-{name}-{version}"));
        let src = top.join(format!("{name}-{version}"));
        fs::create_dir_all(src.join("debian/source")).expect("mkdir");
        fs::write(src.join("debian/source/format"), "3.0 (native)\n").expect("write");
        fs::write(src.join("README"), format!("{name} {version}\n")).expect("write");
        fs::write(
            src.join("debian/control"),
            format!("Source: {name}\nMaintainer: Test <t@example.org>\nStandards-Version: 4.6.2\n\nPackage: {name}\nArchitecture: all\nDescription: test\n test\n"),
        )
        .expect("write");
        fs::write(
            src.join("debian/changelog"),
            format!("{name} ({version}) stable; urgency=medium\n\n  * Test.\n\n -- Test <t@example.org>  Fri, 27 Nov 2026 00:00:00 +0000\n"),
        )
        .expect("write");
        fs::write(src.join("debian/rules"), "#!/usr/bin/make -f\n").expect("write");
        ok(Command::new("dpkg-source")
            .arg("-b")
            .arg(format!("{name}-{version}"))
            .current_dir(&top));
        let dir = format!("pool/{component}/{}/{name}", &name[..1]);
        fs::create_dir_all(self.repo().join(&dir)).expect("mkdir");
        let mut out = Vec::new();
        for e in fs::read_dir(&top).expect("read") {
            let path = e.expect("entry").path();
            if path.is_file() {
                let rel = format!(
                    "{dir}/{}",
                    path.file_name().expect("name").to_string_lossy()
                );
                fs::copy(&path, self.repo().join(&rel)).expect("copy");
                out.push(rel);
            }
        }
        out.sort();
        out
    }

    /// Writes the indices, Release, InRelease and Release.gpg of `dist`.
    pub fn publish(&self, dist: &str, p: &Publish) {
        let repo = self.repo();
        let dists = repo.join("dists").join(dist);
        if dists.exists() {
            fs::remove_dir_all(&dists).expect("clean dists");
        }
        for comp in &p.components {
            fs::create_dir_all(repo.join("pool").join(comp)).expect("mkdir");
            for arch in &p.architectures {
                let dir = dists.join(comp).join(format!("binary-{arch}"));
                fs::create_dir_all(&dir).expect("mkdir");
                let packages = ok(Command::new("apt-ftparchive")
                    .current_dir(&repo)
                    .args(["--arch", arch, "packages"])
                    .arg(format!("pool/{comp}")));
                fs::write(dir.join("Packages"), &packages).expect("write");
                ok(Command::new("gzip")
                    .args(["-9knf"])
                    .arg(dir.join("Packages")));
                ok(Command::new("xz").args(["-kf"]).arg(dir.join("Packages")));
                if p.by_hash {
                    by_hash(&dir, &["Packages", "Packages.gz", "Packages.xz"]);
                }
                if p.udebs {
                    let di = dists
                        .join(comp)
                        .join(format!("debian-installer/binary-{arch}"));
                    fs::create_dir_all(&di).expect("mkdir");
                    let udebs = ok(Command::new("apt-ftparchive")
                        .current_dir(&repo)
                        .args(["-o", "APT::FTPArchive::Packages::Extensions=.udeb"])
                        .args(["--arch", arch, "packages"])
                        .arg(format!("pool/{comp}")));
                    fs::write(di.join("Packages"), &udebs).expect("write");
                    ok(Command::new("xz").args(["-kf"]).arg(di.join("Packages")));
                }
            }
        }
        if p.sources {
            for comp in &p.components {
                let dir = dists.join(comp).join("source");
                fs::create_dir_all(&dir).expect("mkdir");
                let sources = ok(Command::new("apt-ftparchive")
                    .current_dir(&repo)
                    .arg("sources")
                    .arg(format!("pool/{comp}")));
                fs::write(dir.join("Sources"), &sources).expect("write");
                ok(Command::new("xz").args(["-kf"]).arg(dir.join("Sources")));
                if p.by_hash {
                    by_hash(&dir, &["Sources", "Sources.xz"]);
                }
            }
        }
        if p.translations {
            for comp in &p.components {
                let dir = dists.join(comp).join("i18n");
                fs::create_dir_all(&dir).expect("mkdir");
                fs::write(
                    dir.join("Translation-en"),
                    "Package: lib\nDescription-md5: 00000000000000000000000000000000\nDescription-en: the library\n A translated long description.\n\n",
                )
                .expect("write");
                ok(Command::new("bzip2")
                    .arg("-f")
                    .arg(dir.join("Translation-en")));
                if p.by_hash {
                    by_hash(&dir, &["Translation-en.bz2"]);
                }
            }
        }
        let set = |k: &str, v: String| format!("APT::FTPArchive::Release::{k}={v}");
        let release = ok(Command::new("apt-ftparchive")
            .current_dir(&dists)
            .arg("-o")
            .arg(set("Origin", "Upstream".into()))
            .arg("-o")
            .arg(set("Label", "Upstream".into()))
            .arg("-o")
            .arg(set("Suite", dist.into()))
            .arg("-o")
            .arg(set("Codename", dist.into()))
            .arg("-o")
            .arg(set("Architectures", p.architectures.join(" ")))
            .arg("-o")
            .arg(set("Components", p.components.join(" ")))
            .args(["release", "."]));
        let mut extra = String::new();
        if let Some(v) = &p.valid_until {
            extra.push_str(&format!("Valid-Until: {v}\n"));
        }
        if p.by_hash {
            extra.push_str("Acquire-By-Hash: yes\n");
        }
        let release = match release.find("\nArchitectures:") {
            Some(i) => format!("{}\n{extra}{}", &release[..i], &release[i + 1..]),
            None => format!("{extra}{release}"),
        };
        fs::write(dists.join("Release"), release).expect("write");
        self.gpg.sign_release(&dists);
    }

    pub fn dist_file(&self, dist: &str, path: &str) -> PathBuf {
        self.repo().join("dists").join(dist).join(path)
    }

    /// Replaces the injected faults (`[{"path": ..., "kind": ..., "times": n}]`).
    pub fn faults(&self, json: &str) {
        let control = self.dir.path().join("control");
        // Write then rename, so the server never reads half a file.
        fs::write(control.join("faults.tmp"), json).expect("write");
        fs::rename(control.join("faults.tmp"), control.join("faults.json")).expect("rename");
    }

    /// Every request so far: (path, status).
    pub fn requests(&self) -> Vec<(String, u16)> {
        self.server.requests()
    }

    /// Lets the requests a "hold" fault keeps waiting be answered.
    pub fn release_held(&self) {
        fs::write(self.dir.path().join("control/release"), "").expect("write");
    }

    /// Requests for exactly this path (`/pool/...`).
    pub fn count(&self, path: &str) -> usize {
        self.requests().iter().filter(|(p, _)| p == path).count()
    }

    pub fn clear_requests(&self) {
        let _ = fs::remove_file(self.dir.path().join("control/requests.log"));
    }
}

impl Default for Upstream {
    fn default() -> Self {
        Self::new()
    }
}

/// Copies `names` in `dir` to `dir/by-hash/SHA256/<hex>`, as dak does.
fn by_hash(dir: &Path, names: &[&str]) {
    let by_hash = dir.join("by-hash/SHA256");
    fs::create_dir_all(&by_hash).expect("mkdir");
    for name in names {
        let data = fs::read(dir.join(name)).expect("read");
        fs::write(by_hash.join(sha256_hex(&data)), data).expect("write");
    }
}

fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(data))
}
