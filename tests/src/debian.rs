//! Real Debian packages for the system and build-root tests: the set
//! `mmdebstrap --variant=apt` installs for this machine's own release
//! (Essential plus apt, without Recommends), or with [`buildd_debs`] what a
//! build root and the example's build dependencies add (build-essential,
//! debhelper), as apt itself resolves it from the host's package lists in
//! an empty dpkg status, fetched with `apt-get download`.
//!
//! The `.deb`s are cached under the target directory
//! (`<target>/halo-test-debs/<codename>/`), so a second run downloads
//! nothing; downloads land in a temp directory first and are renamed in,
//! so two test processes never see half a file.

use std::path::{Path, PathBuf};
use std::process::Command;

use fs_err as fs;

use crate::{bin_dir, need_tool, ok, run};

/// The host's release codename (`bookworm`), from /etc/os-release.
pub fn host_codename() -> String {
    let text = fs::read_to_string("/etc/os-release").expect("/etc/os-release");
    text.lines()
        .find_map(|l| l.strip_prefix("VERSION_CODENAME="))
        .map(|v| v.trim_matches('"').to_string())
        .filter(|v| !v.is_empty())
        .expect("VERSION_CODENAME in /etc/os-release")
}

/// The host's architecture (`amd64`).
pub fn host_arch() -> String {
    ok(Command::new("dpkg").arg("--print-architecture"))
        .trim()
        .to_string()
}

/// One package apt would install: name, version, architecture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pick {
    pub name: String,
    pub version: String,
    pub arch: String,
}

impl Pick {
    /// The file name `apt-get download` gives it (`:` in a version is `%3a`).
    pub fn file_name(&self) -> String {
        format!(
            "{}_{}_{}.deb",
            self.name,
            self.version.replace(':', "%3a"),
            self.arch
        )
    }
}

/// What apt installs, from the host's lists, for `?essential`, `apt` and
/// `extra` in an empty system.
pub fn resolve(extra: &[&str]) -> Vec<Pick> {
    need_tool("apt-get", "apt");
    let dir = tempfile::tempdir().expect("tempdir");
    let status = dir.path().join("status");
    fs::write(&status, "").expect("write");
    let out = run(Command::new("apt-get")
        .arg("-o")
        .arg(format!("Dir::State::status={}", status.display()))
        .args([
            "-o",
            "Debug::NoLocking=1",
            "-o",
            "APT::Install-Recommends=false",
            "install",
            "--simulate",
            "-y",
            "?essential",
            "apt",
        ])
        .args(extra));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "apt-get cannot resolve Essential + apt from the host's lists (run apt-get update): {}{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    let picks: Vec<Pick> = text.lines().filter_map(parse_inst).collect();
    assert!(picks.len() > 20, "too few packages resolved:\n{text}");
    picks
}

/// `Inst libc6 (2.36-9+deb12u14 Debian:12.15/oldstable [amd64])`.
fn parse_inst(line: &str) -> Option<Pick> {
    let rest = line.strip_prefix("Inst ")?;
    let (name, rest) = rest.split_once(" (")?;
    // What follows the parenthesis (` []`) is apt's ordering note.
    let inner = rest.split_once(')')?.0;
    let version = inner.split_whitespace().next()?;
    let arch = inner.rsplit_once('[')?.1.trim_end_matches(']');
    Some(Pick {
        name: name.to_string(),
        version: version.to_string(),
        arch: arch.to_string(),
    })
}

/// The cache directory of this release's `.deb`s.
pub fn cache_dir() -> PathBuf {
    let target = bin_dir().parent().expect("target dir").to_path_buf();
    let dir = target.join("halo-test-debs").join(host_codename());
    fs::create_dir_all(&dir).expect("mkdir cache");
    dir
}

/// The `.deb`s of [`resolve`]`(extra)`, downloading only what the cache
/// lacks.
pub fn debs(extra: &[&str]) -> Vec<PathBuf> {
    let picks = resolve(extra);
    let cache = cache_dir();
    let missing: Vec<&Pick> = picks
        .iter()
        .filter(|p| !cache.join(p.file_name()).exists())
        .collect();
    if !missing.is_empty() {
        download(&cache, &missing);
    }
    picks.iter().map(|p| cache.join(p.file_name())).collect()
}

/// A base `mmdebstrap --variant=buildd` bootstraps from (Essential, apt,
/// build-essential) with debhelper, which the example package
/// build-depends on, and everything they depend on.
pub fn buildd_debs() -> Vec<PathBuf> {
    debs(&["build-essential", "debhelper"])
}

fn download(cache: &Path, picks: &[&Pick]) {
    let tmp = tempfile::Builder::new()
        .prefix(".download-")
        .tempdir_in(cache)
        .expect("tempdir");
    ok(Command::new("apt-get")
        .args(["-q", "-o", "APT::Sandbox::User=root", "download"])
        .args(picks.iter().map(|p| format!("{}={}", p.name, p.version)))
        .current_dir(tmp.path()));
    for p in picks {
        let name = p.file_name();
        let got = tmp.path().join(&name);
        assert!(got.exists(), "apt-get download did not write {name}");
        fs::rename(&got, cache.join(&name)).expect("rename into the cache");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inst_lines_parse() {
        let p = parse_inst("Inst libtasn1-6 (4.19.0-2+deb12u1 Debian:12.15/oldstable, Debian-Security:12/oldstable-security [amd64])").unwrap();
        assert_eq!(
            p,
            Pick {
                name: "libtasn1-6".into(),
                version: "4.19.0-2+deb12u1".into(),
                arch: "amd64".into()
            }
        );
        let p = parse_inst("Inst libcap2 (1:2.66-4+deb12u3+b1 Debian:12.15/oldstable [amd64]) []")
            .unwrap();
        assert_eq!(p.file_name(), "libcap2_1%3a2.66-4+deb12u3+b1_amd64.deb");
        assert_eq!(parse_inst("Conf libc6 (2.36 Debian [amd64])"), None);
    }
}
