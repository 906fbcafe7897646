//! EDGE: a machine's base disk, made from the frozen snapshot alone and
//! cached in `STORE/machines/<family>-<key>/` (`disk.img`, `vmlinuz`,
//! `initrd.img`). The family is what it is asked to be (suite,
//! architecture, archives, kernel, the guest side of halo), the key what
//! it is made of (the component states its sources read in the snapshot),
//! as for build roots: a new snapshot that changes nothing the base reads
//! reuses it, and a change makes a new one and removes the family's older
//! ones. Machines boot it copy-on-write; nothing ever writes it.
//!
//! Made in the machine's own directory (claimed by the run, so a crash
//! leaves nothing `halo gc` does not remove), under an exclusive lock on
//! `STORE/machines/<name>.lock` (two machines or two runs wanting the same
//! base make it once), then renamed into the cache:
//! 1. `mmdebstrap --variant=apt` with the kernel, `initramfs-tools`,
//!    `systemd-sysv`, `udev` and `dbus`, the system's sources and key, halo's
//!    channel agent and its unit, `systemd-networkd` enabled (in the
//!    sandbox, as a chroot system's bootstrap);
//! 2. `mkfs.ext4 -d` of that root into a sparse image, inside a sandbox
//!    of the host's tools so the files keep the ids they have inside
//!    (root is root in the image, not a subordinate id);
//! 3. the kernel and initramfs copied out of its `/boot`.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _, Result};
use sha2::{Digest, Sha256};

use super::guest::{AGENT, AGENT_PATH, UNIT};
use crate::accept::system::Context;
use crate::config::SystemConfig;
use crate::sandbox::Sandbox;
use crate::sysroot::blueprint::{
    self, AptSource, Bootstrap, Variant, KEYRING_IN_SYSTEM, REPO_IN_SYSTEM,
};
use crate::sysroot::chroot;

/// A base disk's files.
#[derive(Debug, Clone)]
pub struct Base {
    pub dir: PathBuf,
    pub name: String,
    /// Taken from the cache (not made by this run).
    pub cached: bool,
}

impl Base {
    pub fn disk(&self) -> PathBuf {
        self.dir.join("disk.img")
    }
    pub fn kernel(&self) -> PathBuf {
        self.dir.join("vmlinuz")
    }
    pub fn initrd(&self) -> PathBuf {
        self.dir.join("initrd.img")
    }
}

/// The packages a base adds to Essential and apt.
pub fn base_packages(kernel: &str) -> Vec<String> {
    // dbus: what systemd's own tools (networkctl, hostnamectl) talk
    // through, as on any real machine.
    [kernel, "initramfs-tools", "systemd-sysv", "udev", "dbus"]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

/// The size of the (sparse) disk: room for what the install adds.
const DISK_SIZE: &str = "8G";

fn digest(parts: &[&str], len: usize) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0]);
    }
    hex::encode(h.finalize())[..len].to_string()
}

/// `<suite>-<arch>-machine-<8 hex>` and the key. PURE.
pub fn plan_name(
    system: &SystemConfig,
    arch: &str,
    snapshot: &repofs::model::Snapshot,
    sources: &[AptSource],
) -> (String, String) {
    let packages = base_packages(system.kernel());
    let mut asked = vec!["machine", system.suite.as_str(), arch];
    asked.extend(packages.iter().map(String::as_str));
    asked.extend(system.archives.iter().map(String::as_str));
    asked.extend([AGENT, UNIT, DISK_SIZE]);
    let family = format!("{}-{arch}-machine-{}", system.suite, digest(&asked, 8));
    let mut made_of = Vec::new();
    for s in sources {
        if let Some(d) = snapshot
            .archives
            .get(&s.archive)
            .and_then(|a| a.dists.get(&s.dist))
        {
            for (component, state) in &d.components {
                made_of.push(format!("{}/{}/{component}={state}", s.archive, s.dist));
            }
        }
    }
    let parts: Vec<&str> = made_of.iter().map(String::as_str).collect();
    (family, digest(&parts, 16))
}

/// An exclusive lock held while it lives.
struct Lock(#[allow(dead_code)] std::fs::File);

fn lock(path: &Path) -> Result<Lock> {
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))?;
    rustix::fs::flock(&f, rustix::fs::FlockOperation::LockExclusive)
        .with_context(|| format!("locking {}", path.display()))?;
    Ok(Lock(f))
}

/// The base `system` boots, from the cache or made now in `work` (the
/// machine's directory); `run` runs one streamed command of the step and
/// says whether it succeeded.
pub fn obtain(
    ctx: &Context<'_>,
    system: &SystemConfig,
    work: &Path,
    run: &mut dyn FnMut(&str, std::process::Command) -> Result<()>,
) -> Result<Base> {
    let sources = blueprint::plan_sources(ctx.snapshot, &system.suite, &system.archives)?;
    let (family, key) = plan_name(system, std::env::consts::ARCH, ctx.snapshot, &sources);
    let name = format!("{family}-{key}");
    fs_err::create_dir_all(ctx.machines)?;
    let _lock = lock(&ctx.machines.join(format!("{name}.lock")))?;
    let dir = ctx.machines.join(&name);
    let base = Base {
        dir: dir.clone(),
        name: name.clone(),
        cached: true,
    };
    if base.disk().is_file() && base.kernel().is_file() && base.initrd().is_file() {
        return Ok(base);
    }
    let made = work.join("base");
    if made.exists() {
        chroot::remove(ctx.mode, &made)?;
    }
    fs_err::create_dir_all(&made)?;
    let system_sources = made.join("sources.list");
    fs_err::write(
        &system_sources,
        blueprint::render_sources_list(
            &sources,
            Path::new(REPO_IN_SYSTEM),
            Path::new(KEYRING_IN_SYSTEM),
        )?,
    )?;
    let agent = made.join("halo-guest");
    fs_err::write(&agent, AGENT)?;
    let unit = made.join("halo-guest.service");
    fs_err::write(&unit, UNIT)?;
    chroot::give(ctx.mode, &made)?;
    let root = made.join("root");
    let include = base_packages(system.kernel());
    let mut args = blueprint::plan_bootstrap(&Bootstrap {
        variant: Variant::Apt,
        include: &include,
        dist: &system.suite,
        sources: &sources,
        root: &root,
        repo: ctx.repo,
        keyring: ctx.keyring,
        system_sources: &system_sources,
    })?;
    // The hooks go before the positional arguments (dist, root, sources).
    let at = args.len() - 2 - sources.len();
    let hooks = [
        format!("--customize-hook=upload {} {AGENT_PATH}", agent.display()),
        format!("--customize-hook=chmod 755 \"$1{AGENT_PATH}\""),
        format!(
            "--customize-hook=upload {} /etc/systemd/system/halo-guest.service",
            unit.display()
        ),
        "--customize-hook=chroot \"$1\" systemctl enable halo-guest.service systemd-networkd.service".into(),
        // Nothing waits for a network a machine may not have.
        "--customize-hook=ln -sf /dev/null \"$1/etc/systemd/system/systemd-networkd-wait-online.service\"".into(),
        "--customize-hook=rm -f \"$1/etc/hostname\"".into(),
    ];
    args.splice(at..at, hooks);
    let cmd = chroot::mmdebstrap(
        ctx.mode,
        &args,
        &[ctx.repo, ctx.keyring, &system_sources],
        &made,
    )?;
    run(
        &format!(
            "mmdebstrap --variant=apt --include={} {}",
            include.join(","),
            system.suite
        ),
        cmd,
    )?;
    let disk = made.join("disk.img");
    let mkfs = Sandbox::host_tools(None)
        .bind(&made, "/base", true)
        .command(
            ctx.mode.ids()?,
            &[
                "mkfs.ext4",
                "-q",
                "-F",
                "-L",
                "halo-root",
                "-d",
                "/base/root",
                "/base/disk.img",
                DISK_SIZE,
            ],
        )?;
    run("mkfs.ext4 -d root disk.img", mkfs)?;
    for (prefix, to) in [("vmlinuz-", "vmlinuz"), ("initrd.img-", "initrd.img")] {
        let found: Vec<PathBuf> = fs_err::read_dir(root.join("boot"))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with(prefix))
            })
            .collect();
        let [one] = found.as_slice() else {
            bail!(
                "the base has {} {prefix}* in /boot (is {} a kernel package?)",
                found.len(),
                system.kernel()
            );
        };
        fs_err::copy(one, made.join(to))?;
    }
    if !disk.is_file() {
        bail!("mkfs.ext4 made no disk");
    }
    chroot::remove(ctx.mode, &root)?;
    for f in [system_sources, agent, unit] {
        fs_err::remove_file(f)?;
    }
    if dir.exists() {
        fs_err::remove_dir_all(&dir)?;
    }
    fs_err::rename(&made, &dir)?;
    // The family's older bases are stale now.
    for e in fs_err::read_dir(ctx.machines)?.filter_map(Result::ok) {
        let n = e.file_name().to_string_lossy().into_owned();
        if n != name && n != format!("{name}.lock") && n.starts_with(&format!("{family}-")) {
            let p = e.path();
            let _ = if p.is_dir() {
                fs_err::remove_dir_all(&p)
            } else {
                fs_err::remove_file(&p)
            };
        }
    }
    Ok(Base {
        cached: false,
        ..base
    })
}

/// The snapshot's APT tree as a read-only ext4 image for the machine's
/// second disk: the machine reads it at `REPO_IN_SYSTEM`, as a chroot
/// system does, and sees nothing else of the host.
pub fn repo_disk(repo: &Path, image: &Path) -> Result<std::process::Command> {
    let bytes = tree_size(repo)?;
    // ext4's own overhead, 4 KiB per file, and room to spare.
    let mib = bytes / (1 << 20) + bytes / (1 << 22) + 64;
    let mut cmd = std::process::Command::new("mkfs.ext4");
    cmd.args(["-q", "-F", "-L", "halo-repo", "-N", "200000", "-d"])
        .arg(repo)
        .arg(image)
        .arg(format!("{mib}M"));
    Ok(cmd)
}

fn tree_size(dir: &Path) -> Result<u64> {
    let mut total = 0u64;
    for e in fs_err::read_dir(dir)? {
        let e = e?;
        let meta = e.metadata()?;
        total += 4096;
        if meta.is_dir() {
            total += tree_size(&e.path())?;
        } else {
            total += meta.len().div_ceil(4096) * 4096;
        }
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_base_is_named_by_what_it_is_and_what_it_reads() {
        let cfg = crate::config::parse_config(
            "[[acceptance.system]]\nname = \"db\"\nkind = \"machine\"\nsuite = \"bookworm\"\narchives = [\"debian\"]\n",
        )
        .unwrap();
        let s = &cfg.acceptance.systems[0];
        let snap = |state: &str| repofs::model::Snapshot {
            id: "x".into(),
            created: "y".into(),
            archives: [(
                "debian".to_string(),
                repofs::model::ArchiveSnapshot {
                    dists: [(
                        "bookworm".to_string(),
                        repofs::model::DistSnapshot {
                            components: [("main".to_string(), state.to_string())].into(),
                            ..Default::default()
                        },
                    )]
                    .into(),
                },
            )]
            .into(),
            restores: None,
        };
        let a = snap("aa");
        let sources = blueprint::plan_sources(&a, "bookworm", &s.archives).unwrap();
        let (family, key) = plan_name(s, "x86_64", &a, &sources);
        assert!(family.starts_with("bookworm-x86_64-machine-"), "{family}");
        let (family2, key2) = plan_name(s, "x86_64", &snap("bb"), &sources);
        assert_eq!(family, family2);
        assert_ne!(key, key2);
        let mut other = s.clone();
        other.kernel = Some("linux-image-amd64".into());
        assert_ne!(plan_name(&other, "x86_64", &a, &sources).0, family);
        assert_eq!(
            base_packages(s.kernel()),
            [
                "linux-image-cloud-amd64",
                "initramfs-tools",
                "systemd-sysv",
                "udev",
                "dbus"
            ]
        );
    }
}
