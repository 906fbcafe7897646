//! Whether the process that wrote a lease or claimed a work directory
//! still runs, decided with no I/O from what it recorded about itself and
//! what the host says now (`store::process` reads `/proc`).
//!
//! A pid alone is not an identity: pids are reused, and a host that
//! rebooted reuses them all. So a process records its host name, the
//! kernel's boot id and its start time (clock ticks since boot, field 22 of
//! `/proc/PID/stat`). Only a process on this host can be checked at all: one
//! on another host is `Unknown`, and whatever it holds expires by time.

use serde::{Deserialize, Serialize};

/// What a process records about itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessStamp {
    pub host: String,
    pub pid: u32,
    /// `/proc/sys/kernel/random/boot_id` when it started (absent in
    /// records written before it was recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boot_id: Option<String>,
    /// Its start time in clock ticks since boot (`/proc/PID/stat`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started: Option<u64>,
}

/// This host, as `store::process` reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostIdentity {
    pub host: String,
    pub boot_id: Option<String>,
}

/// What the host says about a pid now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Observed {
    NoSuchProcess,
    /// A process with that pid runs, started at these ticks since boot.
    Started(u64),
    /// It exists but its start time could not be read.
    Unreadable,
}

/// The verdict on a recorded process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Liveness {
    /// It runs (or it cannot be told from a process that does).
    Alive,
    /// It is gone: no such pid, another process under its pid, or the host
    /// rebooted since.
    Gone,
    /// It ran on another host: only time tells.
    Unknown,
}

/// Why a recorded process is gone, for the history and for operators.
pub fn judge(stamp: &ProcessStamp, here: &HostIdentity, observed: Observed) -> Liveness {
    if stamp.host != here.host {
        return Liveness::Unknown;
    }
    if let (Some(then), Some(now)) = (&stamp.boot_id, &here.boot_id) {
        if then != now {
            return Liveness::Gone;
        }
    }
    match observed {
        Observed::NoSuchProcess => Liveness::Gone,
        Observed::Started(ticks) if stamp.started.is_some_and(|s| s != ticks) => Liveness::Gone,
        Observed::Started(_) | Observed::Unreadable => Liveness::Alive,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamp(host: &str, boot: Option<&str>, started: Option<u64>) -> ProcessStamp {
        ProcessStamp {
            host: host.into(),
            pid: 42,
            boot_id: boot.map(str::to_string),
            started,
        }
    }

    #[test]
    fn a_process_is_gone_only_when_this_host_can_tell() {
        let here = HostIdentity {
            host: "h".into(),
            boot_id: Some("b1".into()),
        };
        let s = stamp("h", Some("b1"), Some(100));
        assert_eq!(judge(&s, &here, Observed::Started(100)), Liveness::Alive);
        assert_eq!(judge(&s, &here, Observed::NoSuchProcess), Liveness::Gone);
        // Pid reused by a later process.
        assert_eq!(judge(&s, &here, Observed::Started(101)), Liveness::Gone);
        assert_eq!(judge(&s, &here, Observed::Unreadable), Liveness::Alive);
        // The host rebooted: whatever runs under that pid is someone else.
        let rebooted = stamp("h", Some("b0"), Some(100));
        assert_eq!(
            judge(&rebooted, &here, Observed::Started(100)),
            Liveness::Gone
        );
        // Another host: only time tells.
        let other = stamp("g", Some("b1"), Some(100));
        assert_eq!(
            judge(&other, &here, Observed::NoSuchProcess),
            Liveness::Unknown
        );
        // An old record (pid only): the pid decides.
        let old = stamp("h", None, None);
        assert_eq!(judge(&old, &here, Observed::Started(5)), Liveness::Alive);
        assert_eq!(judge(&old, &here, Observed::NoSuchProcess), Liveness::Gone);
    }
}
