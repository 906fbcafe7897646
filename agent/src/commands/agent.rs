//! `halo agent [--once]`: the daemon's wiring. The cycle itself is the
//! library workflow `crate::workflow::cycle`, called in this process; this
//! file schedules it, prints its report (one line, or one JSON object per
//! line), writes its JUnit, and in the background registers the node and
//! keeps agent.jar connected (`jenkins::remoting`): a controller that does
//! not answer is retried with back-off and stops nothing local.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use repofs::Store;

use super::jenkins::{connect, node_name};
use crate::cli::AgentArgs;
use crate::config::JenkinsConfig;
use crate::jenkins::api::{node_matches, NodeSpec};
use crate::jenkins::client::Client;
use crate::jenkins::remoting::{self, Launch};
use crate::junit::render_junit;
use crate::output::Output;
use crate::workflow::cycle::{self, Cycle, CycleReport};
use crate::workflow::record::{self, ControllerStatus};

pub fn run(
    store: &Store,
    config: Option<&Path>,
    args: &AgentArgs,
    out: &Output,
) -> Result<ExitCode> {
    let (cfg, config_path) = super::load_config(store, config)?;
    let store = &super::tuned(store, &cfg);
    // The client is shared with the registration thread.
    let jenkins = match &cfg.jenkins {
        Some(_) => {
            let (j, client) = connect(store, config)?;
            Some((j, Arc::new(client)))
        }
        None => None,
    };
    // Multi-threaded: a mirror update moves its hashing off the workers
    // (`block_in_place`), as under `halo mirror update`.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let junit = args
        .junit
        .clone()
        .or_else(|| cfg.agent.junit.as_ref().map(PathBuf::from));
    let cycle = Cycle {
        store,
        config: &cfg,
        config_path: &config_path,
        jenkins: jenkins.as_ref().map(|(j, c)| (j, c.as_ref())),
        runtime: &runtime,
    };
    if args.once {
        let report = cycle.run_locked()?;
        publish(&report, junit.as_deref(), out)?;
        return Ok(ExitCode::from(report.exit_code));
    }
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(sig, Arc::clone(&stop))
            .context("installing signal handlers")?;
    }
    let supervisor = match &jenkins {
        Some((j, client)) => Some(start_remoting(store, j, client, &stop)?),
        None => None,
    };
    let interval = Duration::from_secs_f64(cfg.agent.interval_minutes * 60.0);
    while !stop.load(Ordering::SeqCst) {
        match cycle.run_locked() {
            Ok(report) => publish(&report, junit.as_deref(), out)?,
            Err(cycle::Error::Busy) => tracing::warn!("{}", cycle::Error::Busy),
            Err(e) => tracing::error!("cycle failed: {}", repofs::error_chain(&e)),
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

/// The cycle's line (stdout, and stderr too when something failed, so a
/// log or a Jenkins console shows it), its JSON on one line, its JUnit.
fn publish(r: &CycleReport, junit: Option<&Path>, out: &Output) -> Result<()> {
    if r.exit_code == 0 {
        tracing::info!("{}", r.line);
    }
    out.line(&r.line)?;
    out.json_line(r)?;
    if r.exit_code != 0 {
        out.error_line(&r.line)?;
    }
    if let Some(file) = junit {
        fs_err::write(file, render_junit(&r.suites)).context("writing the cycle's JUnit report")?;
    }
    Ok(())
}

/// Up to a tenth of the interval, so agents started together spread out.
fn jitter(interval: Duration) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    interval.mul_f64(f64::from(nanos % 1000) / 10_000.0)
}

/// Starts a thread that registers the node (a controller that is down is
/// retried with back-off, each attempt logged and recorded in
/// `STORE/agent/controller.json`), fetches its secret and agent.jar, and
/// then supervises agent.jar. The cycle does not wait for it.
fn start_remoting(
    store: &Store,
    j: &JenkinsConfig,
    client: &Arc<Client>,
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
    let (store, client, java) = (store.clone(), Arc::clone(client), j.node.java.clone());
    let work_dir = PathBuf::from(&j.node.remote_fs);
    let stop = Arc::clone(stop);
    Ok(std::thread::spawn(move || {
        let runtime = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(r) => r,
            Err(e) => {
                tracing::error!("cannot start the registration's runtime: {e}");
                return;
            }
        };
        let Some((secret_file, jar)) =
            register_until_done(&store, &runtime, &client, &spec, &dir, &stop)
        else {
            return;
        };
        let launch = Launch {
            java,
            jar,
            url: client.root().to_string(),
            name,
            secret_file,
            work_dir,
        };
        remoting::supervise(&launch, &stop);
    }))
}

/// Registers until it works or the agent stops; `None` when stopped.
fn register_until_done(
    store: &Store,
    runtime: &tokio::runtime::Runtime,
    client: &Client,
    spec: &NodeSpec,
    dir: &Path,
    stop: &AtomicBool,
) -> Option<(PathBuf, PathBuf)> {
    let mut attempt = 0;
    loop {
        let result = runtime.block_on(register(client, spec, dir));
        let mut status = ControllerStatus {
            url: crate::redact::redact_urls(client.root().as_str()),
            reachable: true,
            checked: jiff::Timestamp::now().to_string(),
            attempt: "register".into(),
            error: None,
        };
        match result {
            Ok(v) => {
                record::save_controller(store, &status);
                tracing::info!(node = spec.name, "node registered");
                return Some(v);
            }
            Err(e) => {
                attempt += 1;
                let wait = remoting::plan_backoff(attempt);
                let error = crate::redact::redact_urls(&format!("{e:#}"));
                tracing::error!(
                    "registering node {}: {error}; retrying in {} s (the local cycle goes on)",
                    spec.name,
                    wait.as_secs()
                );
                status.reachable = false;
                status.error = Some(error);
                record::save_controller(store, &status);
                let until = Instant::now() + wait;
                while Instant::now() < until {
                    if stop.load(Ordering::SeqCst) {
                        tracing::info!("stopped before the node was registered");
                        return None;
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        }
    }
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
