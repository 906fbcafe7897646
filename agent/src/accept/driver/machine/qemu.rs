//! EDGE: one qemu process per machine. Its command line (PURE:
//! [`plan_args`]) boots the base disk's kernel and initramfs with the
//! disk copy-on-write (`snapshot=on`: the cached base is never written),
//! the snapshot's tree as a read-only second disk, the command channel on
//! a virtio-serial port and, on a network, one NIC on the run's hub. The
//! serial console is qemu's stdout: every line goes to the console log,
//! to stderr prefixed with the machine's name, and serves as the boot's
//! sign of life.
//!
//! qemu gets `PR_SET_PDEATHSIG`: when halo dies, even by SIGKILL, the
//! kernel kills it; and [`Qemu`] kills it when dropped.

use std::io::{BufRead, BufReader, Write};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use command_fds::{CommandFdExt, FdMapping};

use crate::config::system::Accel;
use crate::process::Captured;

/// The descriptor the NIC's socket gets in qemu.
const NET_FD: i32 = 3;

/// What one boot is made of.
#[derive(Debug, Clone)]
pub struct Boot<'a> {
    pub kernel: &'a Path,
    pub initrd: &'a Path,
    pub disk: &'a Path,
    /// Copy-on-write: the disk is never written (`false` for a disk of
    /// the machine's own, kept with `--keep`).
    pub snapshot: bool,
    pub repo_disk: &'a Path,
    /// The command channel's socket (qemu listens).
    pub control: &'a Path,
    pub hostname: &'a str,
    pub memory_mb: u32,
    pub cpus: u32,
    /// The NIC's MAC, when the machine is on a network.
    pub mac: Option<&'a str>,
}

/// The accelerator a boot is tried with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Kvm,
    Tcg,
}

impl Engine {
    pub fn name(self) -> &'static str {
        match self {
            Self::Kvm => "kvm",
            Self::Tcg => "tcg",
        }
    }
}

/// The engines to try, in order: `auto` is KVM where `/dev/kvm` opens,
/// then TCG if KVM shows no sign of life.
pub fn plan_engines(accel: Accel, kvm_usable: bool) -> Vec<Engine> {
    match accel {
        Accel::Kvm => vec![Engine::Kvm],
        Accel::Tcg => vec![Engine::Tcg],
        Accel::Auto if kvm_usable => vec![Engine::Kvm, Engine::Tcg],
        Accel::Auto => vec![Engine::Tcg],
    }
}

/// Whether this process can use KVM.
pub fn kvm_usable() -> bool {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .is_ok()
}

/// qemu's arguments. PURE.
pub fn plan_args(b: &Boot<'_>, engine: Engine) -> Vec<String> {
    let mut a: Vec<String> = [
        "-nodefaults",
        "-no-user-config",
        "-display",
        "none",
        "-no-reboot",
        "-serial",
        "stdio",
        "-monitor",
        "none",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    match engine {
        Engine::Kvm => a.extend(["-accel".into(), "kvm".into(), "-cpu".into(), "host".into()]),
        Engine::Tcg => a.extend(["-accel".into(), "tcg".into()]),
    }
    a.extend([
        "-m".into(),
        b.memory_mb.to_string(),
        "-smp".into(),
        b.cpus.to_string(),
        "-kernel".into(),
        b.kernel.display().to_string(),
        "-initrd".into(),
        b.initrd.display().to_string(),
        "-append".into(),
        format!(
            "console=ttyS0 root=/dev/vda rw net.ifnames=0 systemd.hostname={} systemd.log_color=0",
            b.hostname
        ),
        "-drive".into(),
        format!(
            "file={},format=raw,if=virtio,cache=unsafe{}",
            b.disk.display(),
            if b.snapshot { ",snapshot=on" } else { "" }
        ),
        "-drive".into(),
        format!(
            "file={},format=raw,if=virtio,readonly=on",
            b.repo_disk.display()
        ),
        "-device".into(),
        "virtio-serial-pci".into(),
        "-chardev".into(),
        format!(
            "socket,id=halo,path={},server=on,wait=off",
            b.control.display()
        ),
        "-device".into(),
        "virtserialport,chardev=halo,name=halo".into(),
    ]);
    match b.mac {
        Some(mac) => a.extend([
            "-netdev".into(),
            format!("stream,id=net0,server=off,addr.type=fd,addr.str={NET_FD}"),
            "-device".into(),
            format!("virtio-net-pci,netdev=net0,mac={mac}"),
        ]),
        None => a.extend(["-nic".into(), "none".into()]),
    }
    a
}

/// A running qemu; killed when dropped.
pub struct Qemu {
    child: Child,
    /// A line of the kernel's own (a printk timestamp) came on the console.
    alive: Receiver<()>,
    console: Arc<Mutex<Captured>>,
}

/// The console's lines so far (kept for the report).
pub type Console = Arc<Mutex<Captured>>;

impl Qemu {
    /// Starts qemu with `args`; its console is appended to `log` and
    /// streamed with `prefix`. `tmp` takes qemu's copy-on-write file.
    pub fn start(
        args: &[String],
        net: Option<OwnedFd>,
        log: &Path,
        prefix: &str,
        tmp: &Path,
        console: Console,
    ) -> std::io::Result<Self> {
        let mut cmd = Command::new("qemu-system-x86_64");
        cmd.args(args)
            .env("TMPDIR", tmp)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(fd) = net {
            cmd.fd_mappings(vec![FdMapping {
                parent_fd: fd,
                child_fd: NET_FD,
            }])
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        }
        die_with_parent(&mut cmd);
        tracing::debug!(argv = ?cmd, "starting qemu");
        let mut child = cmd.spawn()?;
        let (tx, alive) = std::sync::mpsc::channel();
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)?;
        let (stdout, stderr) = (child.stdout.take(), child.stderr.take());
        let eprefix = format!("{prefix}qemu: ");
        let prefix = prefix.to_string();
        let log_lines = Arc::clone(&console);
        std::thread::spawn(move || {
            let Some(out) = stdout else { return };
            let mut told = false;
            for line in BufReader::new(out).split(b'\n').map_while(Result::ok) {
                let line = String::from_utf8_lossy(&line);
                let line = line.trim_end_matches('\r');
                let _ = writeln!(file, "{line}");
                crate::output::stderr_line(&format!("{prefix}{line}"));
                log_lines
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .push(line);
                if !told && is_kernel_line(line) {
                    told = true;
                    let _ = tx.send(());
                }
            }
        });
        let errs = Arc::clone(&console);
        std::thread::spawn(move || {
            let Some(err) = stderr else { return };
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                crate::output::stderr_line(&format!("{eprefix}{line}"));
                errs.lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .push(&format!("qemu: {line}"));
            }
        });
        Ok(Self {
            child,
            alive,
            console,
        })
    }

    /// Waits for the kernel's first line; false if none came in `within`
    /// or qemu ended first.
    pub fn wait_alive(&self, within: Duration) -> bool {
        match self.alive.recv_timeout(within) {
            Ok(()) => true,
            Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => false,
        }
    }

    /// qemu has exited (a crash, a poweroff).
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    pub fn console(&self) -> String {
        self.console
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .text()
    }

    /// Kills qemu and waits for it.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let started = Instant::now();
        while self.exited().is_none() && started.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Qemu {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `[    1.234567] ...`: the kernel itself is running (the real-mode
/// setup's "Probing EDD" is printed before it, and is all a KVM boot that
/// makes no progress shows).
pub fn is_kernel_line(line: &str) -> bool {
    let Some(rest) = line.strip_prefix('[') else {
        return false;
    };
    let Some((stamp, _)) = rest.split_once(']') else {
        return false;
    };
    let stamp = stamp.trim();
    !stamp.is_empty()
        && stamp.contains('.')
        && stamp.chars().all(|c| c.is_ascii_digit() || c == '.')
}

/// The kernel kills the child when the thread that spawned it ends
/// (halo killed with SIGKILL included), so no qemu outlives a run.
#[allow(unsafe_code)]
fn die_with_parent(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    let parent = std::process::id();
    // SAFETY: between fork and exec the closure calls only prctl(2) and
    // getppid(2), both async-signal-safe, and touches no shared memory.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The parent died before prctl: the signal will never come.
            if u32::try_from(libc::getppid()).ok() != Some(parent) {
                return Err(std::io::Error::other("halo ended while starting qemu"));
            }
            Ok(())
        });
    }
}

/// Where a machine's files live.
pub fn control_socket(dir: &Path) -> PathBuf {
    dir.join("halo.sock")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_tries_kvm_then_tcg_and_a_forced_accelerator_alone() {
        assert_eq!(plan_engines(Accel::Auto, true), [Engine::Kvm, Engine::Tcg]);
        assert_eq!(plan_engines(Accel::Auto, false), [Engine::Tcg]);
        assert_eq!(plan_engines(Accel::Kvm, false), [Engine::Kvm]);
        assert_eq!(plan_engines(Accel::Tcg, true), [Engine::Tcg]);
    }

    #[test]
    fn the_kernel_is_alive_at_its_first_timestamped_line() {
        assert!(is_kernel_line("[    0.000000] Linux version 6.1.0"));
        assert!(!is_kernel_line("Probing EDD (edd=off to disable)... ok"));
        assert!(!is_kernel_line("[  OK  ] Started halo-guest.service"));
    }

    #[test]
    fn the_disk_is_copy_on_write_and_the_tree_read_only() {
        let b = Boot {
            kernel: Path::new("/c/vmlinuz"),
            initrd: Path::new("/c/initrd.img"),
            disk: Path::new("/c/disk.img"),
            snapshot: true,
            repo_disk: Path::new("/w/repo.img"),
            control: Path::new("/w/halo.sock"),
            hostname: "db",
            memory_mb: 512,
            cpus: 1,
            mac: Some("52:54:00:01:00:0a"),
        };
        let a = plan_args(&b, Engine::Tcg).join(" ");
        assert!(a.contains("file=/c/disk.img,format=raw,if=virtio,cache=unsafe,snapshot=on"));
        assert!(a.contains("file=/w/repo.img,format=raw,if=virtio,readonly=on"));
        assert!(a.contains("-accel tcg"));
        assert!(a.contains("addr.type=fd,addr.str=3"));
        assert!(a.contains("systemd.hostname=db"));
        let solo = plan_args(&Boot { mac: None, ..b }, Engine::Kvm).join(" ");
        assert!(solo.contains("-nic none") && solo.contains("-accel kvm -cpu host"));
    }
}
