//! Harness for the FUSE tests: a real `repofs` mount in a guard that
//! unmounts on drop, a web server serving it, and apt sandboxed as `_apt`
//! (the harness' [`Apt`] runs as root; a mount must serve other users).
//!
//! Readiness is polled (mount table, a listing that answers, a port that
//! accepts), never slept for.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use fs_err as fs;

use crate::{bin, need_tool, run, Apt};

/// Polls `ready` every 20 ms until it holds; panics naming `what` after `timeout`.
pub fn wait_until(what: &str, timeout: Duration, mut ready: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ready() {
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// True when `/proc/self/mountinfo` lists `dir` as a mount point.
pub fn is_mounted(dir: &Path) -> bool {
    let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    let want = dir.to_string_lossy().replace(' ', "\\040");
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .any(|l| l.split(' ').nth(4) == Some(want.as_str()))
}

/// Fails (naming the fix) when FUSE cannot work here.
pub fn need_fuse() {
    assert!(
        Path::new("/dev/fuse").exists(),
        "/dev/fuse is missing: load the fuse module (modprobe fuse) or run the container with --device /dev/fuse"
    );
}

/// Sends `signal` to `pid`.
#[allow(unsafe_code)]
pub fn send_signal(pid: u32, signal: i32) {
    let pid = i32::try_from(pid).expect("pid");
    // SAFETY: kill(2) takes plain integers and touches no memory.
    let rc = unsafe { libc::kill(pid, signal) };
    assert_eq!(rc, 0, "kill({pid}, {signal}) failed");
}

/// A `repofs` process serving a mount; dropping it unmounts.
pub struct Mount {
    pub dir: PathBuf,
    log: PathBuf,
    child: Option<Child>,
}

impl Mount {
    /// Runs `repofs STORE DIR -f -o OPTS` (DIR is created) and waits until
    /// the mount answers.
    pub fn start(store: &Path, dir: &Path, opts: &str) -> Mount {
        need_fuse();
        fs::create_dir_all(dir).expect("mkdir mountpoint");
        let log = dir.with_extension("log");
        let out = fs::File::create(&log).expect("log file");
        let child = Command::new(bin("repofs"))
            .arg(store)
            .arg(dir)
            .arg("-f")
            .args(["-o", opts])
            .env("REPOFS_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(out.into_parts().0))
            .spawn()
            .expect("spawn repofs");
        let mut m = Mount {
            dir: dir.to_path_buf(),
            log,
            child: Some(child),
        };
        let probe = dir.join("snapshots");
        wait_until("the mount to answer", Duration::from_secs(30), || {
            if let Some(status) = m.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                panic!("repofs exited early ({status}):\n{}", m.log());
            }
            is_mounted(dir) && probe.is_dir()
        });
        m
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).expect("running")
    }

    /// What repofs logged so far.
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends SIGTERM and waits for repofs to exit.
    pub fn terminate(self) -> ExitStatus {
        self.stop(libc::SIGTERM)
    }

    /// Sends `signal` and waits for repofs to exit.
    pub fn stop(self, signal: i32) -> ExitStatus {
        send_signal(self.pid(), signal);
        self.wait()
    }

    /// Waits for repofs to exit (after a signal or an external umount).
    pub fn wait(mut self) -> ExitStatus {
        let mut child = self.child.take().expect("running");
        wait_exit(&mut child, Duration::from_secs(30))
            .unwrap_or_else(|| panic!("repofs did not exit:\n{}", self.log()))
    }

    /// Whether repofs is still running.
    pub fn running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }
}

fn wait_exit(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let start = Instant::now();
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        if start.elapsed() > timeout {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            send_signal(child.id(), libc::SIGTERM);
            if wait_exit(&mut child, Duration::from_secs(10)).is_none() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        if is_mounted(&self.dir) {
            let _ = run(Command::new("umount").arg("-l").arg(&self.dir));
        }
    }
}

/// `python3 -m http.server` serving `dir` on 127.0.0.1; killed on drop.
pub struct HttpServer {
    pub port: u16,
    child: Child,
}

impl HttpServer {
    pub fn start(dir: &Path) -> HttpServer {
        need_tool("python3", "python3");
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let child = Command::new("python3")
            .args(["-m", "http.server", "--bind", "127.0.0.1"])
            .arg(port.to_string())
            .arg("--directory")
            .arg(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn python3 -m http.server");
        let mut s = HttpServer { port, child };
        wait_until("the web server", Duration::from_secs(30), || {
            if let Ok(Some(status)) = s.child.try_wait() {
                panic!("python3 -m http.server exited ({status})");
            }
            TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        s
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An apt command sandboxed as `_apt`, as on a real system (the harness'
/// `Apt::command` runs everything as root; a later `-o` wins).
pub fn sandboxed(apt: &Apt, tool: &str) -> Command {
    let mut c = apt.command(tool);
    c.args(["-o", "APT::Sandbox::User=_apt"]);
    // A proxy from the environment must not intercept 127.0.0.1.
    for var in ["http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"] {
        c.env_remove(var);
    }
    c
}

/// Runs a sandboxed apt command that must succeed without any warning
/// (signature, missing file, hash mismatch, or "unsandboxed"); its output.
pub fn apt_ok(apt: &Apt, tool: &str, args: &[&str]) -> String {
    let out = run(sandboxed(apt, tool).args(args).current_dir(&apt.dir));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{tool} {args:?} failed:\n{text}");
    for bad in [
        "W:",
        "E:",
        "Err:",
        "unsandboxed",
        "Hash Sum mismatch",
        "Not Found",
        "not found",
    ] {
        assert!(
            !text.contains(bad),
            "{tool} {args:?} printed {bad:?}:\n{text}"
        );
    }
    text
}
