//! EDGE: what `/proc` says about processes, for `model::process` to judge:
//! this host's name and boot id, this process's stamp, whether a recorded
//! pid still runs as the same process. Used by the acceptance lease (a dead
//! run's lease is taken over at once) and the work directories runs claim
//! (a dead run's are leftovers `gc` removes).

use fs_err as fs;

use crate::model::process::{judge, HostIdentity, Liveness, Observed, ProcessStamp};

/// This host: `/proc/sys/kernel/hostname` and the boot id.
pub fn here() -> HostIdentity {
    HostIdentity {
        host: fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| "localhost".into()),
        boot_id: fs::read_to_string("/proc/sys/kernel/random/boot_id")
            .ok()
            .map(|b| b.trim().to_string())
            .filter(|b| !b.is_empty()),
    }
}

/// The stamp of the calling process.
pub fn current() -> ProcessStamp {
    let h = here();
    let pid = std::process::id();
    ProcessStamp {
        host: h.host,
        pid,
        boot_id: h.boot_id,
        started: match observe(pid) {
            Observed::Started(t) => Some(t),
            _ => None,
        },
    }
}

/// What `/proc/PID/stat` says about `pid`.
pub fn observe(pid: u32) -> Observed {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(text) => parse_start_ticks(&text).map_or(Observed::Unreadable, Observed::Started),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Observed::NoSuchProcess,
        Err(_) => Observed::Unreadable,
    }
}

/// Whether the process `stamp` names still runs, as far as this host can
/// tell.
pub fn liveness(stamp: &ProcessStamp) -> Liveness {
    let h = here();
    if stamp.host != h.host {
        return Liveness::Unknown;
    }
    judge(stamp, &h, observe(stamp.pid))
}

/// Field 22 (`starttime`) of `/proc/PID/stat`. The command name (field 2)
/// is in parentheses and may hold spaces and parentheses itself, so the
/// fields are counted from the last `)`.
fn parse_start_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    // After the name: state is field 3, so starttime is the 20th here.
    rest.split_whitespace().nth(19)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_time_is_read_past_a_name_with_parentheses() {
        let stat =
            "1234 (a) b) c) S 1 1234 1234 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 100";
        assert_eq!(parse_start_ticks(stat), Some(987_654));
        assert_eq!(parse_start_ticks("garbage"), None);
    }

    #[test]
    fn this_process_is_alive_and_a_stale_stamp_of_it_is_not() {
        let me = current();
        assert!(me.started.is_some());
        assert_eq!(liveness(&me), Liveness::Alive);
        let reused = ProcessStamp {
            started: me.started.map(|s| s + 1),
            ..me.clone()
        };
        assert_eq!(liveness(&reused), Liveness::Gone);
        let elsewhere = ProcessStamp {
            host: format!("{}-elsewhere", me.host),
            ..me
        };
        assert_eq!(liveness(&elsewhere), Liveness::Unknown);
    }
}
