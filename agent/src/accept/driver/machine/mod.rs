//! The machine driver: a system is a qemu virtual machine with its own
//! kernel, systemd and network (docs/acceptance.md, "Machines").
//!
//! - `bootstrap`: the base disk (`base`: mmdebstrap from the snapshot
//!   with a kernel and systemd, cached by content) and the snapshot's
//!   tree as a read-only disk for this machine;
//! - `boot`: qemu boots the base copy-on-write (`qemu`; KVM where it makes
//!   progress, else TCG), halo's channel answers (`channel`), the tree is
//!   mounted and the network configured, and systemd says `running`;
//! - `install`: the machine's own apt installs, services start;
//! - tests: `sh -c COMMAND` in the machine, as root.
//!
//! Machines with the same `network` share a hub (`hub`) made for the
//! run: they reach each other by name and nothing else.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{explain, Driver, Finished};
use crate::accept::run::TestResult;
use crate::accept::system::Context;
use crate::config::system::{Accel, SystemKind, DEFAULT_MEMORY_MB};
use crate::config::SystemConfig;
use crate::process::Captured;
use crate::sysroot::chroot;

pub mod base;
pub mod channel;
pub mod guest;
pub mod hub;
pub mod qemu;

use channel::Channel;
use guest::Address;
use qemu::{Engine, Qemu};

/// Host tools machines need, with their Debian packages.
pub const TOOLS: [(&str, &str); 2] = [
    ("qemu-system-x86_64", "qemu-system-x86"),
    ("mkfs.ext4", "e2fsprogs"),
];

/// How long a KVM boot may show no sign of life before TCG takes over.
const KVM_PROGRESS: Duration = Duration::from_secs(20);

/// The networks of a run: a hub each, and every machine's address.
#[derive(Default)]
pub struct Networks {
    hubs: BTreeMap<String, hub::Hub>,
    addresses: BTreeMap<String, Address>,
}

impl Networks {
    /// Networks in name order get `10.1.0.0/24`, `10.2.0.0/24`, ...; a
    /// network's machines `.10`, `.11`, ... in the configuration's order.
    pub fn plan(systems: &[SystemConfig]) -> Self {
        let mut members: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for s in systems {
            if let (SystemKind::Machine, Some(n)) = (s.kind, &s.network) {
                members.entry(n).or_default().push(&s.name);
            }
        }
        let mut nets = Self::default();
        for (k, (net, names)) in members.iter().enumerate() {
            let k = (k + 1).min(250);
            let hosts: Vec<(String, String)> = names
                .iter()
                .enumerate()
                .map(|(i, n)| (format!("10.{k}.0.{}", i + 10), n.to_string()))
                .collect();
            for (i, n) in names.iter().enumerate() {
                nets.addresses.insert(
                    n.to_string(),
                    Address {
                        ip: hosts[i].0.clone(),
                        mac: format!("52:54:00:{k:02x}:00:{:02x}", (i + 10).min(255)),
                        hosts: hosts.clone(),
                    },
                );
            }
            nets.hubs.insert(net.to_string(), hub::Hub::default());
        }
        nets
    }
}

pub struct Machine<'a> {
    ctx: &'a Context<'a>,
    system: &'a SystemConfig,
    nets: &'a Networks,
    dir: PathBuf,
    prefix: String,
    base: Option<base::Base>,
    qemu: Option<Qemu>,
    channel: Option<Channel>,
    console: qemu::Console,
    /// Fixed environment plus the run's `HALO_*`, for the tests.
    env: BTreeMap<String, String>,
}

impl<'a> Machine<'a> {
    pub fn new(
        ctx: &'a Context<'a>,
        system: &'a SystemConfig,
        dir: PathBuf,
        nets: &'a Networks,
    ) -> Self {
        let mut env = crate::sandbox::spec::base_env("/root");
        env.extend(ctx.env.iter().map(|(k, v)| (k.clone(), v.clone())));
        env.insert("HALO_SYSTEM".into(), system.name.clone());
        Self {
            ctx,
            system,
            nets,
            dir,
            prefix: format!("[{}] ", system.name),
            base: None,
            qemu: None,
            channel: None,
            console: Arc::new(Mutex::new(Captured::default())),
            env,
        }
    }

    fn say(&self, line: &str) {
        let _ = crate::output::error_line(&format!("system {}: {line}", self.system.name));
    }

    fn repo_disk(&self) -> PathBuf {
        self.dir.join("repo.img")
    }

    /// The bootstrap's work; each command streamed into `out`.
    fn make(&mut self, out: &mut Captured) -> anyhow::Result<()> {
        if self.dir.exists() {
            chroot::remove(self.ctx.mode, &self.dir)?;
        }
        fs_err::create_dir_all(&self.dir)?;
        let prefix = self.prefix.clone();
        let timeout = self.ctx.timeout;
        let mut run = |what: &str, cmd: std::process::Command| -> anyhow::Result<()> {
            out.push(&format!("$ {what}"));
            crate::output::stderr_line(&format!("{prefix}$ {what}"));
            let s = crate::process::stream(cmd, Some(timeout), &mut |l| {
                crate::output::stderr_line(&format!("{prefix}{l}"));
            })?;
            for l in s.output.text().lines() {
                out.push(l);
            }
            if !s.success() {
                anyhow::bail!("{what}: {}", s.describe(Some(timeout)));
            }
            Ok(())
        };
        let base = base::obtain(self.ctx, self.system, &self.dir, &mut run)?;
        run(
            "mkfs.ext4 -d <snapshot tree> repo.img",
            base::repo_disk(self.ctx.repo, &self.repo_disk())?,
        )?;
        let note = format!(
            "base disk {} ({})",
            base.name,
            if base.cached { "cached" } else { "made now" }
        );
        out.push(&note);
        crate::output::stderr_line(&format!("{prefix}{note}"));
        self.base = Some(base);
        Ok(())
    }

    /// Starts qemu with `engine`; with `probe`, gives up (and stops it)
    /// when the kernel shows no sign of life in time, and says why.
    fn start(&mut self, engine: Engine, probe: bool) -> anyhow::Result<Option<String>> {
        let base = self
            .base
            .clone()
            .ok_or_else(|| anyhow::anyhow!("no base disk"))?;
        let address = self.nets.addresses.get(&self.system.name);
        let control = qemu::control_socket(&self.dir);
        let _ = std::fs::remove_file(&control);
        let disk = if self.ctx.keep {
            // A disk of its own, so a failed machine's can be kept.
            let own = self.dir.join("disk.img");
            if !own.exists() {
                crate::process::run(
                    "cp",
                    [
                        "--sparse=always".as_ref(),
                        base.disk().as_os_str(),
                        own.as_os_str(),
                    ],
                )?;
            }
            own
        } else {
            base.disk()
        };
        let boot = qemu::Boot {
            kernel: &base.kernel(),
            initrd: &base.initrd(),
            disk: &disk,
            snapshot: !self.ctx.keep,
            repo_disk: &self.repo_disk(),
            control: &control,
            hostname: &self.system.name,
            memory_mb: self.system.memory_mb.unwrap_or(DEFAULT_MEMORY_MB),
            cpus: 1,
            mac: address.map(|a| a.mac.as_str()),
        };
        let net = match (&self.system.network, address) {
            (Some(n), Some(_)) => match self.nets.hubs.get(n) {
                Some(h) => Some(std::os::fd::OwnedFd::from(h.attach()?)),
                None => None,
            },
            _ => None,
        };
        let args = qemu::plan_args(&boot, engine);
        let q = Qemu::start(
            &args,
            net,
            &self.dir.join("console.log"),
            &self.prefix,
            &self.dir,
            Arc::clone(&self.console),
        )?;
        if probe && !q.wait_alive(KVM_PROGRESS) {
            let mut q = q;
            let why = match q.exited() {
                Some(status) => format!("qemu ended at once ({status}; its own words are above)"),
                None => format!("showed no sign of life in {} s", KVM_PROGRESS.as_secs()),
            };
            drop(q);
            return Ok(Some(why));
        }
        self.qemu = Some(q);
        Ok(None)
    }

    /// Boots, connects, configures; the script's result.
    fn bring_up(&mut self, out: &mut Captured, until: Instant) -> anyhow::Result<channel::Exec> {
        let accel = self.system.accel.unwrap_or(Accel::Auto);
        let engines = qemu::plan_engines(accel, qemu::kvm_usable());
        let mut ran = None;
        for (i, &engine) in engines.iter().enumerate() {
            let probe = i + 1 < engines.len();
            let line = format!("accelerator: {}", engine.name());
            out.push(&line);
            self.say(&line);
            let Some(why) = self.start(engine, probe)? else {
                ran = Some(engine);
                break;
            };
            let line = format!("accelerator: {} {why}; falling back", engine.name());
            out.push(&line);
            self.say(&line);
        }
        if ran.is_none() {
            anyhow::bail!("no accelerator booted the machine");
        }
        let left = until.saturating_duration_since(Instant::now());
        let mut ch = Channel::connect(&qemu::control_socket(&self.dir), left)?;
        let address = self.nets.addresses.get(&self.system.name);
        let script = guest::boot_script(&self.system.name, address);
        let prefix = self.prefix.clone();
        let left = until.saturating_duration_since(Instant::now());
        let r = ch.run(&script, left, &mut |l| {
            crate::output::stderr_line(&format!("{prefix}{l}"));
        })?;
        self.channel = Some(ch);
        Ok(r)
    }

    /// Runs `script` in the machine as the step `name`.
    fn inside(&mut self, name: &str, what: &str, script: &str) -> TestResult {
        self.say(&format!("{name}: {what}"));
        let started = Instant::now();
        let prefix = self.prefix.clone();
        let Some(ch) = self.channel.as_mut() else {
            return TestResult::refused(name, "the machine is not running".into());
        };
        let r = ch.run(script, self.ctx.timeout, &mut |l| {
            crate::output::stderr_line(&format!("{prefix}{l}"));
        });
        let seconds = started.elapsed().as_secs_f64();
        let mut result = match r {
            Ok(exec) => {
                let failure = match exec.status {
                    Some(0) => None,
                    Some(n) => Some(format!("exit status {n}")),
                    None => Some(format!("timed out after {} s", self.ctx.timeout.as_secs())),
                };
                TestResult {
                    name: name.to_string(),
                    passed: failure.is_none(),
                    seconds,
                    failure,
                    skipped: None,
                    tail: exec.output.tail(40),
                    output: exec.output.text(),
                }
            }
            Err(e) => TestResult {
                seconds,
                ..TestResult::refused(name, e.to_string())
            },
        };
        explain(&mut result);
        self.say(&format!(
            "{name}: {} ({seconds:.1} s)",
            result
                .failure
                .as_deref()
                .map_or("passed".to_string(), |f| format!("FAILED, {f}"))
        ));
        result
    }
}

/// Why a boot failed, from the boot script's output: systemd's verdict
/// and the failed units, else the script's last line.
fn boot_failure(text: &str) -> String {
    let Some(state) = text.lines().find_map(|l| l.strip_prefix("systemd: ")) else {
        return text
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("no output")
            .to_string();
    };
    let failed: Vec<&str> = text
        .lines()
        .skip_while(|l| *l != "failed units:")
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    format!(
        "system {state}; failed units: {}",
        if failed.is_empty() {
            "none".to_string()
        } else {
            failed.join(", ")
        }
    )
}

fn result(name: &str, started: Instant, out: Captured, failure: Option<String>) -> TestResult {
    TestResult {
        name: name.to_string(),
        passed: failure.is_none(),
        seconds: started.elapsed().as_secs_f64(),
        failure,
        skipped: None,
        tail: out.tail(40),
        output: out.text(),
    }
}

impl Driver for Machine<'_> {
    fn bootstrap(&mut self) -> TestResult {
        self.say(&format!(
            "bootstrap: base disk of {} with {} from {}",
            self.system.suite,
            self.system.kernel(),
            self.system.archives.join(", ")
        ));
        let started = Instant::now();
        let mut out = Captured::default();
        let failure = self.make(&mut out).err().map(|e| format!("{e:#}"));
        let mut r = result("bootstrap", started, out, failure);
        explain(&mut r);
        self.say(&format!(
            "bootstrap: {} ({:.1} s)",
            r.failure
                .as_deref()
                .map_or("passed".to_string(), |f| format!("FAILED, {f}")),
            r.seconds
        ));
        r
    }

    fn boots(&self) -> bool {
        true
    }

    fn boot(&mut self) -> TestResult {
        self.say("boot: qemu, then systemctl is-system-running --wait");
        let started = Instant::now();
        let until = started + self.ctx.timeout;
        let mut out = Captured::default();
        let failure = match self.bring_up(&mut out, until) {
            Ok(exec) => {
                for l in exec.output.text().lines() {
                    out.push(l);
                }
                match exec.status {
                    Some(0) => None,
                    Some(n) => Some(format!(
                        "exit status {n}: {}",
                        boot_failure(&exec.output.text())
                    )),
                    None => Some(format!("timed out after {} s", self.ctx.timeout.as_secs())),
                }
            }
            Err(e) => Some(format!("{e:#}")),
        };
        let r = result("boot", started, out, failure);
        self.say(&format!(
            "boot: {} ({:.1} s)",
            r.failure
                .as_deref()
                .map_or("passed".to_string(), |f| format!("FAILED, {f}")),
            r.seconds
        ));
        r
    }

    fn install(&mut self) -> TestResult {
        let packages = &self.system.packages;
        let what = if packages.is_empty() {
            "apt-get update".to_string()
        } else {
            format!("apt-get update && apt-get install {}", packages.join(" "))
        };
        let script = guest::install_script(packages);
        self.inside("install", &what, &script)
    }

    fn test(&mut self, name: &str, command: &str) -> TestResult {
        let script = guest::test_script(command, &self.env);
        self.inside(name, command, &script)
    }

    fn finish(&mut self, passed: bool) -> Finished {
        self.channel = None;
        if let Some(mut q) = self.qemu.take() {
            q.stop();
        }
        let console = self
            .console
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .text();
        let mut f = Finished {
            console: (!console.is_empty()).then_some(console),
            ..Finished::default()
        };
        if !passed && self.ctx.keep && self.dir.exists() {
            let _ = fs_err::remove_file(self.repo_disk());
            let _ = fs_err::remove_file(qemu::control_socket(&self.dir));
            f.kept = Some(self.dir.clone());
        } else if let Err(e) = chroot::remove(self.ctx.mode, &self.dir) {
            f.cleanup_error = Some(format!("{e:#}"));
        }
        f
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_boot_says_what_systemd_says() {
        assert_eq!(
            boot_failure("systemd: degraded\nfailed units:\nx.service loaded failed failed X\n"),
            "system degraded; failed units: x.service"
        );
        assert_eq!(
            boot_failure("mount: /run/halo/repo: wrong fs type\n"),
            "mount: /run/halo/repo: wrong fs type"
        );
    }

    #[test]
    fn networks_give_each_machine_an_address_and_the_names_of_its_peers() {
        let cfg = crate::config::parse_config(
            "[[acceptance.system]]\nname = \"db\"\nkind = \"machine\"\nsuite = \"b\"\narchives = [\"d\"]\nnetwork = \"env1\"\n\n\
             [[acceptance.system]]\nname = \"app\"\nkind = \"machine\"\nsuite = \"b\"\narchives = [\"d\"]\nnetwork = \"env1\"\n\n\
             [[acceptance.system]]\nname = \"x\"\nkind = \"machine\"\nsuite = \"b\"\narchives = [\"d\"]\nnetwork = \"env2\"\n\n\
             [[acceptance.system]]\nname = \"solo\"\nkind = \"machine\"\nsuite = \"b\"\narchives = [\"d\"]\n",
        )
        .unwrap();
        let n = Networks::plan(&cfg.acceptance.systems);
        assert_eq!(n.hubs.len(), 2);
        assert_eq!(n.addresses["db"].ip, "10.1.0.10");
        assert_eq!(n.addresses["app"].ip, "10.1.0.11");
        assert_eq!(n.addresses["app"].hosts.len(), 2);
        assert_eq!(n.addresses["x"].ip, "10.2.0.10");
        assert_eq!(n.addresses["x"].hosts.len(), 1);
        assert!(!n.addresses.contains_key("solo"));
        assert_eq!(
            crate::accept::system::plan_units(&cfg.acceptance.systems),
            [vec![0, 1], vec![2], vec![3]]
        );
    }
}
