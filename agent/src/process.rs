//! The one way halo runs other programs: logs the argv, captures output,
//! and on failure returns an error carrying argv, exit status and the tail
//! of stderr, so the user sees why `dpkg-deb` (say) refused.

use std::ffi::OsStr;
use std::process::{Command, Output};

#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("cannot run {program} (is it installed?)")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`{argv}` failed ({status}): {stderr_tail}")]
    Failed {
        argv: String,
        status: std::process::ExitStatus,
        stderr_tail: String,
    },
}

/// Runs `program args...` to completion.
pub fn run<I, S>(program: &str, args: I) -> Result<Output, ProcessError>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let args: Vec<_> = args
        .into_iter()
        .map(|a| a.as_ref().to_os_string())
        .collect();
    let argv = std::iter::once(program.to_string())
        .chain(args.iter().map(|a| a.to_string_lossy().into_owned()))
        .collect::<Vec<_>>()
        .join(" ");
    tracing::debug!(%argv, "running");
    let output = Command::new(program)
        .args(&args)
        .output()
        .map_err(|source| ProcessError::Spawn {
            program: program.to_string(),
            source,
        })?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(3).collect();
        return Err(ProcessError::Failed {
            argv,
            status: output.status,
            stderr_tail: tail.into_iter().rev().collect::<Vec<_>>().join(" / "),
        });
    }
    Ok(output)
}

/// The output a streamed process left, bounded: the last [`CAPTURE_MAX`]
/// bytes of lines (a build log can be gigabytes; a report needs its end).
#[derive(Debug, Default, Clone)]
pub struct Captured {
    lines: std::collections::VecDeque<String>,
    bytes: usize,
    /// Lines dropped from the front to stay within the bound.
    pub dropped: usize,
}

/// How much of a streamed process's output is kept for reports.
pub const CAPTURE_MAX: usize = 1 << 20;

impl Captured {
    pub fn push(&mut self, line: &str) {
        self.bytes += line.len() + 1;
        self.lines.push_back(line.to_string());
        while self.bytes > CAPTURE_MAX {
            match self.lines.pop_front() {
                Some(l) => {
                    self.bytes -= l.len() + 1;
                    self.dropped += 1;
                }
                None => break,
            }
        }
    }

    /// The last `n` lines, joined by newlines.
    pub fn tail(&self, n: usize) -> String {
        let skip = self.lines.len().saturating_sub(n);
        self.lines
            .iter()
            .skip(skip)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Everything kept, with a note of what was dropped.
    pub fn text(&self) -> String {
        let mut out = String::new();
        if self.dropped > 0 {
            out.push_str(&format!("[{} earlier lines dropped]\n", self.dropped));
        }
        for l in &self.lines {
            out.push_str(l);
            out.push('\n');
        }
        out
    }
}

/// How a streamed process ended.
#[derive(Debug)]
pub struct Streamed {
    pub status: std::process::ExitStatus,
    pub output: Captured,
    /// It ran past its timeout and its process group was killed.
    pub timed_out: bool,
}

impl Streamed {
    pub fn success(&self) -> bool {
        self.status.success() && !self.timed_out
    }

    /// "exit status 1", "killed by signal 9", "timed out after ...".
    pub fn describe(&self, timeout: Option<std::time::Duration>) -> String {
        use std::os::unix::process::ExitStatusExt;
        if self.timed_out {
            let t = timeout.map_or(0, |t| t.as_secs());
            return format!("timed out after {t} s and was killed");
        }
        match (self.status.code(), self.status.signal()) {
            (Some(c), _) => format!("exit status {c}"),
            (None, Some(s)) => format!("killed by signal {s}"),
            _ => self.status.to_string(),
        }
    }
}

/// Runs `cmd` with stdout and stderr merged into one pipe, handing each
/// line to `on_line` as it comes (the build log Jenkins shows live) and
/// keeping the tail. With a timeout the process runs in its own process
/// group, which is killed whole when time runs out: a hung test's children
/// must not outlive it.
pub fn stream(
    mut cmd: Command,
    timeout: Option<std::time::Duration>,
    on_line: &mut dyn FnMut(&str),
) -> Result<Streamed, ProcessError> {
    use std::os::unix::process::CommandExt;
    let program = cmd.get_program().to_string_lossy().into_owned();
    let spawn_err = |source| ProcessError::Spawn {
        program: program.clone(),
        source,
    };
    let (reader, writer) = std::io::pipe().map_err(spawn_err)?;
    cmd.stdin(std::process::Stdio::null())
        .stdout(writer.try_clone().map_err(spawn_err)?)
        .stderr(writer);
    if timeout.is_some() {
        cmd.process_group(0);
    }
    tracing::debug!(argv = ?cmd, "running");
    let mut child = cmd.spawn().map_err(spawn_err)?;
    // The Command holds the pipe's write ends: drop it, or the reader never
    // sees end of file.
    drop(cmd);
    // Bounded: a reader slower than the process (a busy machine) makes the
    // process wait on its pipe, rather than lines piling up here.
    let (tx, rx) = std::sync::mpsc::sync_channel::<String>(64);
    let pump = std::thread::spawn(move || {
        let mut r = std::io::BufReader::new(reader);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match read_line_bounded(&mut r, &mut buf, LINE_MAX) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let line = String::from_utf8_lossy(&buf);
                    let line = line.trim_end_matches(['\n', '\r']).to_string();
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            }
        }
    });
    let started = std::time::Instant::now();
    let deadline = timeout.map(|t| started + t);
    let mut next_beat = started + HEARTBEAT;
    let mut lines = 0u64;
    let mut output = Captured::default();
    let mut timed_out = false;
    loop {
        let now = std::time::Instant::now();
        let wait = match deadline {
            // After a kill, wait a little for the pipe to close: a process
            // that left the group may hold it open for ever.
            Some(_) if timed_out => std::time::Duration::from_secs(5),
            Some(d) => d.min(next_beat).saturating_duration_since(now),
            None => next_beat.saturating_duration_since(now),
        };
        match rx.recv_timeout(wait) {
            Ok(line) => {
                lines += 1;
                on_line(&line);
                output.push(&line);
            }
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) if timed_out => break,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                let now = std::time::Instant::now();
                if deadline.is_some_and(|d| now >= d) {
                    timed_out = true;
                    kill_group(child.id());
                } else if now >= next_beat {
                    // Long work says it is alive in the logs, quiet or not.
                    let last = output.tail(1);
                    tracing::info!(
                        program,
                        seconds = started.elapsed().as_secs(),
                        lines,
                        last = %last.chars().take(200).collect::<String>(),
                        "still running"
                    );
                    next_beat = now + HEARTBEAT;
                }
            }
        }
    }
    // A pump blocked on a full channel sees it closed and stops.
    drop(rx);
    let status = child.wait().map_err(spawn_err)?;
    if !timed_out || status.code().is_some() {
        let _ = pump.join();
    }
    Ok(Streamed {
        status,
        output,
        timed_out,
    })
}

/// How often a streamed process still running is logged.
const HEARTBEAT: std::time::Duration = std::time::Duration::from_secs(60);

/// The longest line kept whole: a process that writes gigabytes without a
/// newline is cut into lines of this size, never buffered whole.
pub const LINE_MAX: usize = 64 << 10;

/// Reads up to and including the next newline, or `max` bytes, whichever
/// comes first; 0 at end of file.
pub fn read_line_bounded(
    r: &mut impl std::io::BufRead,
    buf: &mut Vec<u8>,
    max: usize,
) -> std::io::Result<usize> {
    let mut total = 0;
    loop {
        let available = match r.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if available.is_empty() {
            return Ok(total);
        }
        let room = max - buf.len();
        let (take, done) = match available.iter().take(room).position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (available.len().min(room), available.len() >= room),
        };
        buf.extend_from_slice(&available[..take]);
        r.consume(take);
        total += take;
        if done {
            return Ok(total);
        }
    }
}

/// SIGTERM to one process: asks it to stop (a supervised agent.jar).
#[allow(unsafe_code)]
pub fn terminate(pid: u32) {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return;
    };
    // SAFETY: kill(2) takes plain integers and touches no memory of ours.
    unsafe {
        libc::kill(pid, libc::SIGTERM);
    }
}

/// SIGKILL to a whole process group (the child made it with `process_group(0)`).
#[allow(unsafe_code)]
fn kill_group(pid: u32) {
    let Ok(pgid) = libc::pid_t::try_from(pid) else {
        return;
    };
    tracing::warn!(pgid, "timed out: killing the process group");
    // SAFETY: kill(2) takes plain integers and touches no memory of ours.
    unsafe {
        libc::kill(-pgid, libc::SIGKILL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> Command {
        let mut c = Command::new("sh");
        c.arg("-c").arg(script);
        c
    }

    #[test]
    fn streams_merged_lines_in_order_and_keeps_the_tail() {
        let mut seen = Vec::new();
        let s = stream(
            sh("echo one; echo two >&2; printf three; exit 3"),
            None,
            &mut |l| seen.push(l.to_string()),
        )
        .unwrap();
        assert_eq!(seen, ["one", "two", "three"]);
        assert!(!s.success());
        assert_eq!(s.describe(None), "exit status 3");
        assert_eq!(s.output.tail(2), "two\nthree");
    }

    #[test]
    fn a_timeout_kills_the_whole_group() {
        let started = std::time::Instant::now();
        let s = stream(
            sh("sleep 30 & echo started; wait"),
            Some(std::time::Duration::from_millis(300)),
            &mut |_| {},
        )
        .unwrap();
        assert!(s.timed_out && !s.success());
        assert_eq!(s.output.tail(1), "started");
        // The backgrounded sleep died with its group, or this would wait 30 s.
        assert!(started.elapsed() < std::time::Duration::from_secs(20));
    }

    #[test]
    fn a_line_without_end_is_cut_not_buffered_whole() {
        let mut seen = 0usize;
        let mut longest = 0usize;
        // 8 MiB without a newline.
        let s = stream(
            sh("head -c 8388608 /dev/zero | tr '\\0' x"),
            None,
            &mut |l| {
                seen += l.len();
                longest = longest.max(l.len());
            },
        )
        .unwrap();
        assert!(s.success());
        assert_eq!(seen, 8 << 20);
        assert_eq!(longest, LINE_MAX);
    }

    #[test]
    fn capture_is_bounded() {
        let mut c = Captured::default();
        let line = "x".repeat(1000);
        for _ in 0..2000 {
            c.push(&line);
        }
        assert!(c.dropped > 0);
        assert!(c.text().len() <= CAPTURE_MAX + 100);
        assert!(c.text().starts_with('['));
    }
}
