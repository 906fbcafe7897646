//! `halo agent [--once]`: the daemon. Registers the node and keeps
//! agent.jar connected (`jenkins::remoting`), and runs the refresh cycle on
//! a schedule. The cycle's steps are halo's own commands, run as child
//! processes of this binary: each takes the store's lock as it always does,
//! and a failing step (a source that does not build) never stops the rest.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use repofs::Store;
use serde::{Deserialize, Serialize};

use super::jenkins::{connect, node_name};
use super::InfraError;
use crate::cli::AgentArgs;
use crate::config::{Config, JenkinsConfig};
use crate::jenkins::api::{node_matches, NodeSpec};
use crate::jenkins::client::Client;
use crate::jenkins::remoting::{self, Launch};
use crate::output::Output;

/// `STORE/agent/state.json`: what the agents of this store handed to
/// acceptance last, so a trigger that failed is made again next cycle
/// and a snapshot is handed over once.
#[derive(Debug, Default, Serialize, Deserialize)]
struct AgentState {
    handed: Option<String>,
}

/// One cycle, as logged and printed with `--json`.
#[derive(Debug, Default, Serialize)]
struct CycleReport {
    started: String,
    built: Vec<String>,
    build_failures: Vec<String>,
    mirrors_changed: Vec<String>,
    mirror_failures: Vec<String>,
    snapshot: Option<String>,
    new_snapshot: bool,
    promoted: bool,
    /// Where the snapshot went for acceptance: a queue URL, or "halo accept".
    handed_to: Option<String>,
    errors: Vec<String>,
    seconds: f64,
}

pub fn run(
    store: &Store,
    config: Option<&Path>,
    args: &AgentArgs,
    out: &Output,
) -> Result<ExitCode> {
    let (cfg, config_path) = super::load_config(store, config)?;
    let jenkins = match &cfg.jenkins {
        Some(_) => Some(connect(store, config)?),
        None => None,
    };
    let ctx = Cycle {
        store,
        cfg: &cfg,
        config_path: &config_path,
        client: jenkins.as_ref().map(|(_, c)| c),
        runtime: tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?,
    };
    if args.once {
        let report = ctx.run_locked()?;
        print_report(&report, out)?;
        return Ok(if report.errors.is_empty() {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(2)
        });
    }
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(sig, Arc::clone(&stop))
            .context("installing signal handlers")?;
    }
    let supervisor = match &jenkins {
        Some((j, client)) => Some(start_remoting(&ctx, j, client, &stop)?),
        None => None,
    };
    let interval = Duration::from_secs_f64(cfg.agent.interval_minutes * 60.0);
    while !stop.load(Ordering::SeqCst) {
        match ctx.run_locked() {
            Ok(report) => print_report(&report, out)?,
            Err(e) => tracing::error!("cycle failed: {e:#}"),
        }
        let wait = interval + jitter(interval);
        let until = Instant::now() + wait;
        while Instant::now() < until && !stop.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    tracing::info!("stopping");
    if let Some(h) = supervisor {
        let _ = h.join();
    }
    Ok(ExitCode::SUCCESS)
}

/// Up to a tenth of the interval, so agents started together spread out.
fn jitter(interval: Duration) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    interval.mul_f64(f64::from(nanos % 1000) / 10_000.0)
}

/// Registers the node, fetches its secret and agent.jar, and starts the
/// supervisor thread. A controller that is down is waited for.
fn start_remoting(
    ctx: &Cycle<'_>,
    j: &JenkinsConfig,
    client: &Client,
    stop: &Arc<AtomicBool>,
) -> Result<std::thread::JoinHandle<()>> {
    let name = node_name(j);
    let spec = NodeSpec {
        name: name.clone(),
        description: format!("rustedhalo agent ({})", super::whoami()),
        labels: j.node.labels.clone(),
        executors: j.node.executors,
        remote_fs: j.node.remote_fs.clone(),
    };
    let dir = PathBuf::from(&j.node.remote_fs).join("halo-agent");
    fs_err::create_dir_all(&dir)?;
    let mut attempt = 0;
    let (secret_file, jar) = loop {
        match ctx.runtime.block_on(register(client, &spec, &dir)) {
            Ok(v) => break v,
            Err(e) => {
                attempt += 1;
                let wait = remoting::plan_backoff(attempt);
                tracing::error!(
                    "registering node {name}: {e}; retrying in {} s",
                    wait.as_secs()
                );
                let until = Instant::now() + wait;
                while Instant::now() < until {
                    if stop.load(Ordering::SeqCst) {
                        return Err(
                            InfraError("stopped before the node was registered".into()).into()
                        );
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        }
    };
    let launch = Launch {
        java: j.node.java.clone(),
        jar,
        url: client.root().to_string(),
        name,
        secret_file,
        work_dir: PathBuf::from(&j.node.remote_fs),
    };
    let stop = Arc::clone(stop);
    Ok(std::thread::spawn(move || {
        remoting::supervise(&launch, &stop)
    }))
}

/// Creates or corrects the node; saves its secret and agent.jar in `dir`.
async fn register(client: &Client, spec: &NodeSpec, dir: &Path) -> Result<(PathBuf, PathBuf)> {
    match client.computer(&spec.name).await? {
        None => {
            client.create_node(spec).await?;
            tracing::info!(node = spec.name, "node created");
        }
        Some(_) => {
            let xml = client.node_config(&spec.name).await?;
            if !node_matches(&xml, spec) {
                client.update_node(spec).await?;
                tracing::info!(node = spec.name, "node updated to the configuration");
            }
        }
    }
    let secret = client.node_secret(&spec.name).await?;
    let secret_file = dir.join("secret");
    remoting::save_secret(&secret_file, &secret)?;
    let jar = dir.join("agent.jar");
    let stamp = dir.join("agent.jar.last-modified");
    let since = if jar.exists() {
        fs_err::read_to_string(&stamp).ok()
    } else {
        None
    };
    if let Some((bytes, modified)) = client.agent_jar(since.as_deref()).await? {
        let tmp = dir.join("agent.jar.tmp");
        fs_err::write(&tmp, &bytes)?;
        fs_err::rename(&tmp, &jar)?;
        fs_err::write(&stamp, modified.unwrap_or_default())?;
        tracing::info!(bytes = bytes.len(), "agent.jar downloaded");
    }
    Ok((secret_file, jar))
}

struct Cycle<'a> {
    store: &'a Store,
    cfg: &'a Config,
    config_path: &'a Path,
    client: Option<&'a Client>,
    runtime: tokio::runtime::Runtime,
}

impl Cycle<'_> {
    /// Runs a cycle unless another process is running one on this store.
    fn run_locked(&self) -> Result<CycleReport> {
        let dir = self.store.root().join("agent");
        fs_err::create_dir_all(&dir)?;
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join("cycle.lock"))?;
        if lock.try_lock().is_err() {
            tracing::warn!("a cycle is already running on this store: this one is skipped");
            return Ok(CycleReport {
                errors: vec!["skipped: another cycle is running".into()],
                ..CycleReport::default()
            });
        }
        Ok(self.run())
    }

    /// `halo ARGS` (this binary, same store and configuration); its output
    /// goes to our stderr line by line; returns (exit code, stdout).
    fn halo(&self, args: &[&str]) -> Result<(i32, String)> {
        let exe = std::env::current_exe().context("finding the halo binary")?;
        let out = Command::new(exe)
            .arg("--store")
            .arg(self.store.root())
            .arg("--config")
            .arg(self.config_path)
            .args(args)
            // The cycle's steps need no Jenkins credentials.
            .env_remove("HALO_JENKINS_TOKEN")
            .stderr(std::process::Stdio::inherit())
            .output()
            .context("running halo")?;
        Ok((
            out.status.code().unwrap_or(2),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        ))
    }

    fn run(&self) -> CycleReport {
        let started = Instant::now();
        let mut r = CycleReport {
            started: jiff::Timestamp::now().to_string(),
            ..CycleReport::default()
        };
        if let Err(e) = self.steps(&mut r) {
            r.errors.push(format!("{e:#}"));
        }
        r.seconds = started.elapsed().as_secs_f64();
        r
    }

    fn steps(&self, r: &mut CycleReport) -> Result<()> {
        if !self.cfg.sources.is_empty() {
            let (code, json) = self.halo(&["--json", "build", "--all"])?;
            for b in serde_json::from_str::<Vec<serde_json::Value>>(&json).unwrap_or_default() {
                let name = b["source"].as_str().unwrap_or("?").to_string();
                match b["status"].as_str() {
                    Some("built") => r.built.push(name),
                    Some("skipped") => {}
                    _ => r.build_failures.push(name),
                }
            }
            if code != 0 {
                tracing::warn!(code, "some sources did not build");
            }
        }
        if !self.cfg.mirrors.is_empty() {
            let (code, json) = self.halo(&["--json", "mirror", "update", "--all"])?;
            for m in serde_json::from_str::<Vec<serde_json::Value>>(&json).unwrap_or_default() {
                if m["changed"] == true {
                    r.mirrors_changed
                        .push(m["mirror"].as_str().unwrap_or("?").to_string());
                }
            }
            if code != 0 {
                r.mirror_failures
                    .push(format!("halo mirror update exited {code}"));
            }
        }
        let (code, json) = self.halo(&["--json", "snapshot", "create"])?;
        let created: serde_json::Value = serde_json::from_str(&json).unwrap_or_default();
        if code != 0 {
            anyhow::bail!("snapshot create exited {code}");
        }
        let id = created["id"].as_str().unwrap_or_default().to_string();
        r.new_snapshot = created["new"] == true;
        let unstable = &self.cfg.acceptance.from;
        let changed = r.new_snapshot || !r.built.is_empty() || !r.mirrors_changed.is_empty();
        let unstable_hold = self.store.load_channel(unstable)?.hold;
        if let (Some(h), true) = (&unstable_hold, changed) {
            tracing::warn!("{unstable} is {h}: {id} not promoted to it");
        }
        if changed && !id.is_empty() && unstable_hold.is_none() {
            let (code, _) = self.halo(&[
                "promote",
                "--to",
                unstable,
                "--snapshot",
                &id,
                "--reason",
                "halo agent: refresh cycle",
            ])?;
            if code != 0 {
                anyhow::bail!("promote --to {unstable} exited {code}");
            }
            r.promoted = true;
        }
        let target = self.store.load_channel(unstable)?.snapshot;
        r.snapshot = target.clone();
        let Some(target) = target else {
            return Ok(());
        };
        let state_path = self.store.root().join("agent/state.json");
        let state: AgentState = fs_err::read(&state_path)
            .ok()
            .and_then(|d| serde_json::from_slice(&d).ok())
            .unwrap_or_default();
        let stable = &self.cfg.acceptance.stable;
        // A held testing or stable: nothing is handed to acceptance.
        for c in [&self.cfg.acceptance.testing, stable] {
            if let Some(h) = self.store.load_channel(c)?.hold {
                tracing::warn!("{c} is {h}: acceptance not run, {stable} not moved");
                return Ok(());
            }
        }
        if state.handed.as_deref() == Some(target.as_str())
            || self.store.passed_acceptance(stable, &target)?
        {
            return Ok(());
        }
        let handed = match self.client {
            Some(client) => {
                let job = self
                    .cfg
                    .jenkins
                    .as_ref()
                    .map_or("halo-acceptance", |j| j.acceptance_job.as_str());
                let params = [("SNAPSHOT".to_string(), target.clone())];
                let (_, url) = self
                    .runtime
                    .block_on(client.trigger(job, &params))
                    .with_context(|| {
                        format!("triggering {job} for {target} (the next cycle tries again)")
                    })?;
                url
            }
            None => {
                let acceptance = &self.cfg.acceptance;
                if acceptance.tests.is_empty() && acceptance.systems.is_empty() {
                    // Nothing to test with: stable must not move, and that
                    // is the configuration's state, not a failing cycle.
                    tracing::warn!(
                        "no [[acceptance.test]] or [[acceptance.system]] and no [jenkins]: \
                         {target} stays in {unstable}, {stable} is not moved"
                    );
                    return Ok(());
                }
                let mut args = vec!["accept", "--snapshot", &target];
                if !acceptance.systems.is_empty() {
                    args.push("--systems");
                }
                let (code, _) = self.halo(&args)?;
                if code == 2 {
                    anyhow::bail!(
                        "halo accept could not run for {target} (the next cycle tries again)"
                    );
                }
                "halo accept".to_string()
            }
        };
        let data = serde_json::to_vec_pretty(&AgentState {
            handed: Some(target.clone()),
        })?;
        repofs::store::fsutil::write_atomic(&self.store.tmp_dir(), &state_path, &data)?;
        r.handed_to = Some(handed);
        Ok(())
    }
}

fn print_report(r: &CycleReport, out: &Output) -> Result<()> {
    let line = format!(
        "cycle: built {}, mirrors changed {}, snapshot {}{}, {}{}",
        if r.built.is_empty() {
            "nothing".into()
        } else {
            r.built.join(",")
        },
        if r.mirrors_changed.is_empty() {
            "none".into()
        } else {
            r.mirrors_changed.join(",")
        },
        r.snapshot.as_deref().unwrap_or("-"),
        if r.new_snapshot { " (new)" } else { "" },
        r.handed_to
            .as_deref()
            .map_or("nothing handed to acceptance".into(), |h| format!(
                "acceptance: {h}"
            )),
        if r.errors.is_empty() {
            String::new()
        } else {
            format!("; errors: {}", r.errors.join("; "))
        }
    );
    tracing::info!("{line}");
    out.line(&line)?;
    // One JSON object per line, one line per cycle: a monitoring feed.
    out.json_line(r)?;
    if !r.errors.is_empty() {
        out.error_line(&line)?;
    }
    Ok(())
}
