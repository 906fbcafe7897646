//! `halo jenkins trigger|status`: the `[jenkins]` settings resolved, a
//! client built, one job queued and followed, or the controller asked.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use repofs::Store;

use super::{InfraError, UserError};
use crate::cli::JenkinsCommand;
use crate::config::JenkinsConfig;
use crate::jenkins::api::result_exit_code;
use crate::jenkins::client::Client;
use crate::output::Output;

/// The token: `HALO_JENKINS_TOKEN`, else `[jenkins] token_file` (relative
/// to the configuration file). A file others can read is refused.
pub fn load_token(j: &JenkinsConfig, config_path: &Path) -> Result<String> {
    if let Ok(t) = std::env::var("HALO_JENKINS_TOKEN") {
        if !t.trim().is_empty() {
            return Ok(t.trim().to_string());
        }
    }
    let Some(file) = &j.token_file else {
        return Err(UserError(
            "no Jenkins API token: set [jenkins] token_file or HALO_JENKINS_TOKEN".into(),
        )
        .into());
    };
    let path = config_path.parent().unwrap_or(Path::new(".")).join(file);
    use std::os::unix::fs::PermissionsExt;
    let meta =
        fs_err::metadata(&path).map_err(|e| UserError(format!("[jenkins] token_file: {e}")))?;
    if meta.permissions().mode() & 0o077 != 0 {
        return Err(UserError(format!(
            "[jenkins] token_file {} is readable by others: chmod 600 it (and consider the token exposed)",
            path.display()
        ))
        .into());
    }
    crate::sandbox::hide(&path);
    // A directory, a FIFO or /dev/zero is refused at once, not waited on.
    let token = repofs::bounded::read_regular_string(&path, repofs::bounded::TOKEN_LIMIT)
        .map_err(|e| UserError(format!("[jenkins] token_file {}: {e}", path.display())))?
        .trim()
        .to_string();
    if token.is_empty() {
        return Err(UserError(format!("[jenkins] token_file {} is empty", path.display())).into());
    }
    Ok(token)
}

/// The `[jenkins]` section and a client for it.
pub fn connect(
    store: &dyn crate::repository::Repository,
    config: Option<&Path>,
) -> Result<(JenkinsConfig, Client)> {
    let (cfg, path) = super::load_config(store, config)?;
    let j = cfg.jenkins.ok_or_else(|| {
        UserError(format!(
            "{} has no [jenkins] section (docs/jenkins.md)",
            path.display()
        ))
    })?;
    let token = load_token(&j, &path)?;
    let client = Client::new(&j.url, &j.user, &token).map_err(|e| InfraError(e.to_string()))?;
    Ok((j, client))
}

/// This host's node name: `[jenkins.node] name`, else the host name.
pub fn node_name(j: &JenkinsConfig) -> String {
    j.node.name.clone().unwrap_or_else(|| {
        fs_err::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| "halo".into())
    })
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

pub fn run(
    store: &Store,
    config: Option<&Path>,
    cmd: &JenkinsCommand,
    out: &Output,
) -> Result<ExitCode> {
    let (j, client) = connect(store, config)?;
    let rt = runtime()?;
    match cmd {
        JenkinsCommand::Trigger {
            job,
            params,
            wait,
            timeout,
        } => {
            let params = params
                .iter()
                .map(|p| {
                    p.split_once('=')
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .ok_or_else(|| UserError(format!("--param {p:?}: expected K=V")))
                })
                .collect::<Result<Vec<_>, _>>()?;
            // clap checked the range: finite, above 0, at most a week.
            let timeout = timeout.map(|m| Duration::from_secs_f64(m * 60.0));
            let run = trigger(&client, job, &params, *wait, timeout, out);
            match timeout {
                // The whole command, every reply included: a controller
                // that drips its answers cannot outlast it.
                Some(t) => rt.block_on(async {
                    tokio::time::timeout(t, run).await.unwrap_or_else(|_| {
                        Err(
                            InfraError(format!("{job}: --timeout of {} s passed", t.as_secs_f64()))
                                .into(),
                        )
                    })
                }),
                None => rt.block_on(run),
            }
        }
        JenkinsCommand::Status => rt.block_on(status(&client, &j, out)),
    }
}

async fn trigger(
    client: &Client,
    job: &str,
    params: &[(String, String)],
    wait: bool,
    timeout: Option<Duration>,
    out: &Output,
) -> Result<ExitCode> {
    let (id, queue_url) = client
        .trigger(job, params)
        .await
        .map_err(|e| InfraError(e.to_string()))?;
    if !wait {
        out.line(&queue_url)?;
        out.json(&serde_json::json!({"job": job, "queue_item": id, "queue_url": queue_url}))?;
        return Ok(ExitCode::SUCCESS);
    }
    let deadline = tokio::time::Instant::now() + timeout.unwrap_or(Duration::from_secs(86_400 * 7));
    let build = client
        .wait_for_build(id, deadline)
        .await
        .map_err(|e| InfraError(e.to_string()))?;
    tracing::info!(url = build.url, "build started");
    let mut start = 0;
    loop {
        let (text, next, more) = client
            .progressive_log(&build.url, start)
            .await
            .map_err(|e| InfraError(e.to_string()))?;
        out.text(&text)?;
        start = next;
        if !more {
            break;
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(
                InfraError(format!("{} still running after the timeout", build.url)).into(),
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // The log is complete a moment before the result is set.
    let info = loop {
        let info = client
            .build_info(&build.url)
            .await
            .map_err(|e| InfraError(e.to_string()))?;
        if !info.building && info.result.is_some() {
            break info;
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(
                InfraError(format!("{} still running after the timeout", build.url)).into(),
            );
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    let result = info.result.unwrap_or_default();
    out.json(
        &serde_json::json!({"job": job, "build": info.number, "url": info.url, "result": result}),
    )?;
    let code = result_exit_code(&result);
    if code != 0 {
        out.error_line(format!("{job} #{} finished {result}", info.number))?;
    }
    Ok(ExitCode::from(code))
}

async fn status(client: &Client, j: &JenkinsConfig, out: &Output) -> Result<ExitCode> {
    let version = client
        .version()
        .await
        .map_err(|e| InfraError(e.to_string()))?;
    let name = node_name(j);
    let node = client
        .computer(&name)
        .await
        .map_err(|e| InfraError(e.to_string()))?;
    let last = client
        .last_build(&j.acceptance_job)
        .await
        .map_err(|e| InfraError(e.to_string()))?;
    out.line(format!("controller  {} (Jenkins {version})", client.root()))?;
    match &node {
        Some(n) => out.line(format!(
            "node        {name}: {}, {}, {} executors, labels {}",
            if n.offline { "offline" } else { "online" },
            if n.idle { "idle" } else { "busy" },
            n.num_executors,
            n.assigned_labels
                .iter()
                .map(|l| l.name.as_str())
                .collect::<Vec<_>>()
                .join(" ")
        ))?,
        None => out.line(format!(
            "node        {name}: not registered (halo agent registers it)"
        ))?,
    }
    match &last {
        Some(b) => out.line(format!(
            "acceptance  {} #{}: {}",
            j.acceptance_job,
            b.number,
            b.result.as_deref().unwrap_or("running")
        ))?,
        None => out.line(format!("acceptance  {}: no build yet", j.acceptance_job))?,
    }
    out.json(&serde_json::json!({
        "url": client.root().as_str(),
        "version": version,
        "node": {"name": name, "registered": node.is_some(), "offline": node.as_ref().map(|n| n.offline), "idle": node.as_ref().map(|n| n.idle),
                 "labels": node.as_ref().map(|n| n.assigned_labels.iter().map(|l| l.name.clone()).collect::<Vec<_>>())},
        "acceptance_job": j.acceptance_job,
        "last_build": last.as_ref().map(|b| serde_json::json!({"number": b.number, "result": b.result, "building": b.building})),
    }))?;
    Ok(ExitCode::SUCCESS)
}
