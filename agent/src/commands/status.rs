//! `halo status`: one screen of what the pipeline is doing, read from the
//! store (channels, gates, leases, acceptance runs, mirror records, build
//! records) and from what the agent recorded in `STORE/agent/` (the last
//! cycle, the stage of a running one, mirror refreshes, the controller).
//! It reads only; the view is built by `status_view` and printed here.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;
use repofs::model::acceptance::Verdict;
use repofs::Store;
use serde::Serialize;

use crate::build::{git, plan};
use crate::config::Config;
use crate::output::Output;
use crate::workflow::cycle::CycleReport;
use crate::workflow::record::{self, ControllerStatus, Progress};

#[derive(Debug, Serialize)]
struct ChannelView {
    name: String,
    snapshot: Option<String>,
    /// When the snapshot was made (RFC 3339), and how long ago.
    created: Option<String>,
    age: Option<String>,
    gated: bool,
    /// Why the channel is held (`halo channel hold`), when it is.
    held: Option<String>,
}

#[derive(Debug, Serialize)]
struct LeaseView {
    channel: String,
    run: String,
    holder: String,
    live: bool,
    expires: String,
}

#[derive(Debug, Serialize)]
struct VerdictView {
    snapshot: String,
    verdict: Verdict,
    run: String,
    when: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<String>,
}

#[derive(Debug, Serialize)]
struct SourceView {
    source: String,
    head: Option<String>,
    last_commit: Option<String>,
    last_version: Option<String>,
    due: bool,
    /// The branch head, when its build (or its tests) failed, and why: not
    /// rebuilt until the branch moves, or `halo build --retry`.
    failed_at: Option<String>,
    building: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

#[derive(Debug, Serialize)]
struct MirrorView {
    mirror: String,
    last_refresh: Option<String>,
    last_attempt: Option<String>,
    /// The upstream Release's Last-Modified, per dist.
    upstream: Vec<(String, Option<String>)>,
    refreshing: bool,
    error: Option<String>,
}

/// What `halo status` shows; also `halo serve`'s `/api/v1/status`.
#[derive(Debug, Serialize)]
pub struct StatusView {
    channels: Vec<ChannelView>,
    lease: Option<LeaseView>,
    last_verdict: Option<VerdictView>,
    /// The last cycle's stable stage: whether stable moved, and why (not).
    stable_why: Option<String>,
    last_cycle: Option<CycleSummary>,
    running: Option<Progress>,
    sources: Vec<SourceView>,
    mirrors: Vec<MirrorView>,
    controller: Option<ControllerStatus>,
}

#[derive(Debug, Serialize)]
struct CycleSummary {
    started: String,
    exit_code: u8,
    line: String,
}

/// `3d4h`, `5m`: how long ago, roughly.
fn age(created: &str, now: jiff::Timestamp) -> Option<String> {
    let t: jiff::Timestamp = created.parse().ok()?;
    let secs = now.as_second().saturating_sub(t.as_second()).max(0);
    Some(match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m", s / 60),
        s if s < 172_800 => format!("{}h{}m", s / 3600, s % 3600 / 60),
        s => format!("{}d{}h", s / 86_400, s % 86_400 / 3600),
    })
}

fn channels(store: &Store, now: jiff::Timestamp) -> Result<Vec<ChannelView>> {
    let mut out = Vec::new();
    for (name, pointer) in store.list_channels()? {
        let created = match &pointer.snapshot {
            Some(id) => store.load_snapshot(id).ok().map(|s| s.created),
            None => None,
        };
        out.push(ChannelView {
            gated: store.load_gate(&name)?.requires_acceptance,
            age: created.as_deref().and_then(|c| age(c, now)),
            created,
            snapshot: pointer.snapshot,
            held: pointer.hold.as_ref().map(ToString::to_string),
            name,
        });
    }
    Ok(out)
}

fn sources(
    store: &Store,
    config: &Config,
    running: Option<&Progress>,
    ask_heads: bool,
) -> Result<Vec<SourceView>> {
    let mut out = Vec::new();
    for s in &config.sources {
        let records = store.load_builds(&s.name)?;
        let (head, error) = match ask_heads.then(|| git::load_head(&s.git, &s.branch)) {
            None => (None, None),
            Some(Ok(h)) => (Some(h), None),
            Some(Err(e)) => (None, Some(crate::redact::redact_urls(&e.to_string()))),
        };
        let standing = plan::plan_standing(&records, head.as_deref());
        let last_commit = standing.last.and_then(|r| r.commit.clone());
        let failed_at = standing.failed.map(|r| {
            let why = r.failure.as_ref().map_or("failed".to_string(), |f| {
                format!("{}: {}", f.step, f.reason)
            });
            format!("{} ({why})", r.commit.as_deref().unwrap_or("?"))
        });
        out.push(SourceView {
            due: standing.due,
            building: running
                .is_some_and(|p| p.stage == "build" && p.item.as_deref() == Some(&s.name)),
            source: s.name.clone(),
            head,
            last_commit,
            last_version: standing.last.and_then(|r| r.version.clone()),
            failed_at,
            error,
        });
    }
    Ok(out)
}

fn mirrors(store: &Store, config: &Config, running: Option<&Progress>) -> Result<Vec<MirrorView>> {
    let recorded = record::load_mirrors(store);
    let mut out = Vec::new();
    for m in &config.mirrors {
        let upstream = store
            .load_mirror_record(&m.name)?
            .map(|r| {
                r.dists
                    .into_iter()
                    .map(|(d, f)| (d, f.last_modified))
                    .collect()
            })
            .unwrap_or_default();
        let health = recorded.get(&m.name).cloned().unwrap_or_default();
        out.push(MirrorView {
            mirror: m.name.clone(),
            last_refresh: health.last_refresh,
            last_attempt: health.last_attempt,
            upstream,
            refreshing: running
                .is_some_and(|p| p.stage == "mirror" && p.item.as_deref() == Some(&m.name)),
            error: health.error,
        });
    }
    Ok(out)
}

fn last_verdict(store: &Store, stable: &str) -> Result<Option<VerdictView>> {
    Ok(store.load_run_events()?.into_iter().rev().find_map(|e| {
        let verdict = e.event.verdict()?;
        (e.channel == stable).then_some(VerdictView {
            snapshot: e.snapshot,
            verdict,
            run: e.run,
            when: e.when,
            detail: e.detail,
        })
    }))
}

/// The status of the pipeline. `ask_heads`: ask each source's git for its
/// branch head (`git ls-remote`, slow); a page that polls does not.
pub fn status_view(store: &Store, config: &Config, ask_heads: bool) -> Result<StatusView> {
    let now = jiff::Timestamp::now();
    let acc = &config.acceptance;
    let lease = store.load_lease(&acc.testing)?.map(|l| LeaseView {
        channel: acc.testing.clone(),
        live: l.is_live(now.as_millisecond()),
        expires: jiff::Timestamp::from_millisecond(l.expires_ms)
            .map_or_else(|_| l.expires_ms.to_string(), |t| t.to_string()),
        holder: l.holder.to_string(),
        run: l.run,
    });
    let running = record::cycle_running(store)
        .then(|| record::load_progress(store))
        .flatten();
    let last: Option<CycleReport> = record::load_last_cycle(store);
    Ok(StatusView {
        channels: channels(store, now)?,
        lease,
        last_verdict: last_verdict(store, &acc.stable)?,
        stable_why: last.as_ref().map(|c| {
            if c.stable.moved {
                format!(
                    "moved {} -> {}",
                    c.stable.from.as_deref().unwrap_or("-"),
                    c.stable.to.as_deref().unwrap_or("-")
                )
            } else {
                format!("not moved: {}", c.stable.why)
            }
        }),
        last_cycle: last.map(|c| CycleSummary {
            started: c.started,
            exit_code: c.exit_code,
            line: c.line,
        }),
        sources: sources(store, config, running.as_ref(), ask_heads)?,
        mirrors: mirrors(store, config, running.as_ref())?,
        running,
        controller: config
            .jenkins
            .as_ref()
            .and_then(|_| record::load_controller(store)),
    })
}

pub fn run(store: &Store, config: Option<&Path>, out: &Output) -> Result<ExitCode> {
    let path = config.map_or_else(|| store.root().join("halo.toml"), Path::to_path_buf);
    let cfg = if config.is_none() && !path.exists() {
        Config::default()
    } else {
        super::load_config(store, config)?.0
    };
    let view = status_view(store, &cfg, true)?;
    out.json(&view)?;
    print(&view, &cfg, out)?;
    Ok(ExitCode::SUCCESS)
}

fn or_dash(v: Option<&str>) -> &str {
    v.unwrap_or("-")
}

fn print(v: &StatusView, cfg: &Config, out: &Output) -> std::io::Result<()> {
    out.line("channels:")?;
    for c in &v.channels {
        let mut line = format!(
            "  {:<20} {:<24} {:>8}",
            c.name,
            or_dash(c.snapshot.as_deref()),
            c.age.as_deref().map_or("-".into(), |a| format!("{a} old"))
        );
        if c.gated {
            line.push_str("  gated");
        }
        if let Some(h) = &c.held {
            line.push_str(&format!("  HELD: {h}"));
        }
        out.line(line)?;
    }
    out.line(match &v.lease {
        Some(l) if l.live => format!(
            "acceptance: {} held by run {} ({}) until {}",
            l.channel, l.run, l.holder, l.expires
        ),
        Some(l) => format!(
            "acceptance: lease of run {} on {} expired (its holder stopped)",
            l.run, l.channel
        ),
        None => format!("acceptance: no run holds {}", cfg.acceptance.testing),
    })?;
    match &v.last_verdict {
        Some(d) => out.line(format!(
            "last verdict: {} {} ({}, run {}){}",
            d.snapshot,
            d.verdict,
            d.when,
            d.run,
            d.detail
                .as_deref()
                .map_or(String::new(), |x| format!(": {x}"))
        ))?,
        None => out.line("last verdict: none yet")?,
    }
    if let Some(why) = &v.stable_why {
        out.line(format!("{}: {why}", cfg.acceptance.stable))?;
    }
    match (&v.running, &v.last_cycle) {
        (Some(p), _) => out.line(format!(
            "cycle: running, {} {} since {} (pid {})",
            p.stage,
            or_dash(p.item.as_deref()),
            p.since,
            p.pid
        ))?,
        (None, Some(c)) => out.line(format!(
            "last cycle {} (exit {}): {}",
            c.started, c.exit_code, c.line
        ))?,
        (None, None) => out.line("cycle: none recorded")?,
    }
    for s in &v.sources {
        let state = match (&s.error, s.building, s.due) {
            (Some(e), _, _) => format!("error: {e}"),
            (None, true, _) => "building".into(),
            (None, false, true) => "due".into(),
            (None, false, false) => "up to date".into(),
        };
        out.line(format!(
            "source {}: {state}; head {}, built {} {}{}",
            s.source,
            short(s.head.as_deref()),
            short(s.last_commit.as_deref()),
            or_dash(s.last_version.as_deref()),
            s.failed_at
                .as_deref()
                .map_or(String::new(), |f| format!("; failed at {f}"))
        ))?;
    }
    for m in &v.mirrors {
        let upstream: Vec<String> = m
            .upstream
            .iter()
            .map(|(d, t)| format!("{d} {}", or_dash(t.as_deref())))
            .collect();
        out.line(format!(
            "mirror {}: {}last refresh {}; upstream {}{}",
            m.mirror,
            if m.refreshing { "refreshing; " } else { "" },
            or_dash(m.last_refresh.as_deref()),
            if upstream.is_empty() {
                "-".into()
            } else {
                upstream.join(", ")
            },
            m.error
                .as_deref()
                .map_or(String::new(), |e| format!("; last error: {e}"))
        ))?;
    }
    if let Some(j) = &cfg.jenkins {
        out.line(match &v.controller {
            Some(c) if c.reachable => format!(
                "jenkins {}: reachable ({} at {})",
                c.url, c.attempt, c.checked
            ),
            Some(c) => format!(
                "jenkins {}: UNREACHABLE ({} at {}: {})",
                c.url,
                c.attempt,
                c.checked,
                or_dash(c.error.as_deref())
            ),
            None => format!(
                "jenkins {}: not contacted yet",
                crate::redact::redact_urls(&j.url)
            ),
        })?;
    }
    Ok(())
}

fn short(c: Option<&str>) -> &str {
    c.map_or("-", |c| &c[..c.len().min(12)])
}
