//! The `-o` mount options of `repofs`, as `mount -o`, `/etc/fstab` (via
//! `mount.fuse3`) and the command line give them.
//!
//! Options of our own: `allow_other`, `allow_root`, `byhash_keep=N`,
//! `grace=SECONDS`, `trees=N`, `threads=N`, `nopassthrough`, `fsname=NAME`,
//! `log=FILE`. The generic options mount(8) and mount.fuse pass along
//! (`ro`, `rw`, `nodev`, `noauto`, `_netdev`, `x-systemd.*`, ...) are
//! accepted and ignored: the mount is always read-only, nodev and nosuid.
//! Anything else is refused, so a typo does not go unnoticed.
//!
//! PURE.

use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::time::Duration;

use super::channel::FallbackPolicy;

/// Everything the options decide.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountOptions {
    /// Let every user read the mount (apt's `_apt` sandbox needs it).
    pub allow_other: bool,
    /// Let root read a mount made by another user.
    pub allow_root: bool,
    pub fallback: FallbackPolicy,
    /// Parsed snapshot trees kept in memory.
    pub trees: NonZeroUsize,
    /// FUSE request threads.
    pub threads: usize,
    /// Ask the kernel for FUSE passthrough of file reads.
    pub passthrough: bool,
    /// The source name in /proc/mounts.
    pub fsname: String,
    /// Where a daemonized repofs logs (else nowhere).
    pub log: Option<PathBuf>,
}

impl Default for MountOptions {
    fn default() -> Self {
        Self {
            allow_other: false,
            allow_root: false,
            fallback: FallbackPolicy::default(),
            trees: NonZeroUsize::new(4).unwrap_or(NonZeroUsize::MIN),
            threads: default_threads(),
            passthrough: true,
            fsname: "repofs".to_string(),
            log: None,
        }
    }
}

/// One request thread per core, at most 4: opens and lookups of many small
/// pool files by parallel clients (an rsync, several apt) queue behind a
/// single thread (52,500 cold files read by 4 clients without passthrough:
/// 10.1 s with one thread, 7.3 s with two on two cores); beyond the cores
/// more threads only contend.
fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().min(4))
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OptionError {
    #[error("unknown mount option {0:?}")]
    Unknown(String),
    #[error("mount option {option}: {value:?} is not {expected}")]
    BadValue {
        option: String,
        value: String,
        expected: &'static str,
    },
}

/// Generic options mount(8), mount.fuse3 and fstab pass that change nothing here.
const IGNORED: &[&str] = &[
    "ro",
    "rw",
    "dev",
    "nodev",
    "suid",
    "nosuid",
    "exec",
    "noexec",
    "atime",
    "noatime",
    "relatime",
    "norelatime",
    "strictatime",
    "diratime",
    "nodiratime",
    "lazytime",
    "nolazytime",
    "auto",
    "noauto",
    "user",
    "nouser",
    "users",
    "owner",
    "group",
    "_netdev",
    "nofail",
    "defaults",
    "async",
    "sync",
    "dirsync",
    "silent",
    "loud",
    "default_permissions",
];

fn number<T: std::str::FromStr>(
    option: &str,
    value: &str,
    expected: &'static str,
) -> Result<T, OptionError> {
    value.parse().map_err(|_| OptionError::BadValue {
        option: option.to_string(),
        value: value.to_string(),
        expected,
    })
}

/// Parses `-o` values (each a comma-separated list), later ones winning.
pub fn parse_options<'a, I: IntoIterator<Item = &'a str>>(
    lists: I,
) -> Result<MountOptions, OptionError> {
    let mut o = MountOptions::default();
    for opt in lists.into_iter().flat_map(|l| l.split(',')).map(str::trim) {
        let (key, value) = opt.split_once('=').unwrap_or((opt, ""));
        match key {
            "" => {}
            "allow_other" => o.allow_other = true,
            "allow_root" => o.allow_root = true,
            "nopassthrough" => o.passthrough = false,
            "passthrough" => o.passthrough = true,
            "byhash_keep" => o.fallback.byhash_keep = number(key, value, "a count")?,
            "grace" => {
                o.fallback.grace = Duration::from_secs(number(key, value, "a number of seconds")?)
            }
            "trees" => o.trees = number(key, value, "a positive count")?,
            "threads" => {
                o.threads = number(key, value, "a count from 1 to 64")?;
                if !(1..=64).contains(&o.threads) {
                    return Err(OptionError::BadValue {
                        option: key.into(),
                        value: value.into(),
                        expected: "a count from 1 to 64",
                    });
                }
            }
            "fsname" if !value.is_empty() => o.fsname = value.to_string(),
            "log" if !value.is_empty() => o.log = Some(PathBuf::from(value)),
            "subtype" | "comment" => {}
            k if IGNORED.contains(&k) || k.starts_with("x-") => {}
            _ => return Err(OptionError::Unknown(opt.to_string())),
        }
    }
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fstab_style_options_are_accepted() {
        let o = parse_options([
            "rw,nosuid,nodev,allow_other,noauto,_netdev,x-systemd.automount",
            "subtype=repofs",
        ])
        .unwrap();
        assert!(o.allow_other);
        assert_eq!(o.fallback, FallbackPolicy::default());
        assert!(o.passthrough);
    }

    #[test]
    fn our_options_are_parsed() {
        let o = parse_options(["byhash_keep=9,grace=30,trees=2,threads=2,nopassthrough,fsname=halo,log=/var/log/repofs.log"]).unwrap();
        assert_eq!(o.fallback.byhash_keep, 9);
        assert_eq!(o.fallback.grace, Duration::from_secs(30));
        assert_eq!(o.trees.get(), 2);
        assert_eq!(o.threads, 2);
        assert!(!o.passthrough);
        assert_eq!(o.fsname, "halo");
        assert_eq!(o.log, Some(PathBuf::from("/var/log/repofs.log")));
    }

    #[test]
    fn typos_and_bad_values_are_refused() {
        assert_eq!(
            parse_options(["allow_others"]),
            Err(OptionError::Unknown("allow_others".into()))
        );
        assert!(matches!(
            parse_options(["grace=soon"]),
            Err(OptionError::BadValue { .. })
        ));
        assert!(matches!(
            parse_options(["trees=0"]),
            Err(OptionError::BadValue { .. })
        ));
        assert!(matches!(
            parse_options(["threads=0"]),
            Err(OptionError::BadValue { .. })
        ));
        assert!(matches!(
            parse_options(["log="]),
            Err(OptionError::Unknown(_))
        ));
    }
}
