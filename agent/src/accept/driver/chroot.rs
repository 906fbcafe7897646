//! The chroot driver: a system is a root made by `mmdebstrap
//! --variant=apt` of its dist from the frozen snapshot's archives alone
//! (`blueprint::plan_bootstrap`), entered with a sandbox for the install
//! and every test (`sysroot::chroot`). No kernel, no init: services are
//! refused during the install (policy-rc.d), as mmdebstrap does.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::{explain, Driver, Finished};
use crate::accept::run::{run_step, Step, TestResult};
use crate::accept::system::Context;
use crate::config::SystemConfig;
use crate::sysroot::blueprint::{
    self, Bootstrap, Variant, INSTALL_SCRIPT, KEYRING_IN_SYSTEM, REPO_IN_SYSTEM,
};
use crate::sysroot::chroot;

pub struct Chroot<'a> {
    ctx: &'a Context<'a>,
    system: &'a SystemConfig,
    /// `STORE/work/system-<run>-<name>`, claimed by the run.
    dir: PathBuf,
    root: PathBuf,
    env: BTreeMap<String, String>,
}

impl<'a> Chroot<'a> {
    pub fn new(ctx: &'a Context<'a>, system: &'a SystemConfig, dir: PathBuf) -> Self {
        let mut env = ctx.env.clone();
        env.insert("HALO_SYSTEM".into(), system.name.clone());
        Self {
            ctx,
            system,
            root: dir.join("root"),
            dir,
            env,
        }
    }

    fn step(&self, name: &str, what: &str, cmd: Command) -> TestResult {
        let title = format!("system {}: {name}", self.system.name);
        let prefix = format!("[{}] ", self.system.name);
        let mut r = run_step(
            &Step {
                name,
                title: &title,
                prefix: &prefix,
                what,
            },
            cmd,
            self.ctx.timeout,
        );
        explain(&mut r);
        r
    }

    fn inside(&self, name: &str, what: &str, argv: &[&str]) -> TestResult {
        let c = self.ctx;
        match chroot::command_in(c.mode, &self.root, c.repo, REPO_IN_SYSTEM, argv, &self.env) {
            Ok(cmd) => self.step(name, what, cmd),
            Err(e) => TestResult::refused(name, format!("sandbox: {e}")),
        }
    }

    /// Plans from the manifest (a snapshot without the system's archives
    /// or dist fails here, before anything runs), writes the system's
    /// sources.list beside the root, makes the mmdebstrap command.
    fn plan_bootstrap(&self) -> anyhow::Result<Command> {
        let (ctx, system, dir) = (self.ctx, self.system, &self.dir);
        let sources = blueprint::plan_sources(ctx.snapshot, &system.suite, &system.archives)?;
        let list = blueprint::render_sources_list(
            &sources,
            Path::new(REPO_IN_SYSTEM),
            Path::new(KEYRING_IN_SYSTEM),
        )?;
        if dir.exists() {
            chroot::remove(ctx.mode, dir)?;
        }
        fs_err::create_dir_all(dir)?;
        let system_sources = dir.join("sources.list");
        fs_err::write(&system_sources, list)?;
        // The sandbox's root writes the system (and mmdebstrap's
        // temporary files) in `dir`.
        chroot::give(ctx.mode, dir)?;
        let args = blueprint::plan_bootstrap(&Bootstrap {
            variant: Variant::Apt,
            include: &[],
            dist: &system.suite,
            sources: &sources,
            root: &self.root,
            repo: ctx.repo,
            keyring: ctx.keyring,
            system_sources: &system_sources,
        })?;
        Ok(chroot::mmdebstrap(
            ctx.mode,
            &args,
            &[ctx.repo, ctx.keyring, &system_sources],
            dir,
        )?)
    }
}

impl Driver for Chroot<'_> {
    fn bootstrap(&mut self) -> TestResult {
        match self.plan_bootstrap() {
            Ok(cmd) => {
                let what = format!(
                    "mmdebstrap --variant=apt {} from {}",
                    self.system.suite,
                    self.system.archives.join(", ")
                );
                self.step("bootstrap", &what, cmd)
            }
            Err(e) => {
                let _ = crate::output::error_line(&format!(
                    "system {}: bootstrap: FAILED, {e:#}",
                    self.system.name
                ));
                TestResult::refused("bootstrap", format!("{e:#}"))
            }
        }
    }

    fn install(&mut self) -> TestResult {
        let packages = &self.system.packages;
        let mut argv = vec!["sh", "-c", INSTALL_SCRIPT, "install"];
        argv.extend(packages.iter().map(String::as_str));
        let what = if packages.is_empty() {
            "apt-get update".to_string()
        } else {
            format!("apt-get update && apt-get install {}", packages.join(" "))
        };
        self.inside("install", &what, &argv)
    }

    fn test(&mut self, name: &str, command: &str) -> TestResult {
        self.inside(name, command, &["sh", "-c", command])
    }

    fn finish(&mut self, passed: bool) -> Finished {
        let mut f = Finished::default();
        if !passed && self.ctx.keep && self.root.exists() {
            f.kept = Some(self.root.clone());
        } else if let Err(e) = chroot::remove(self.ctx.mode, &self.dir) {
            tracing::warn!(
                "system {}: cannot remove {}: {e:#}",
                self.system.name,
                self.dir.display()
            );
            f.cleanup_error = Some(format!("{e:#}"));
        }
        f
    }
}
