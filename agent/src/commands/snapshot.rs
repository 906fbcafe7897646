//! `halo snapshot create|list|show|diff`.

use std::collections::{BTreeMap, HashMap};
use std::process::ExitCode;

use anyhow::Result;
use repofs::model::diff::{plan_diff, Place};
use repofs::model::{ComponentState, Snapshot};
use repofs::Store;
use serde::Serialize;

use crate::cli::SnapshotCommand;
use crate::output::Output;

pub fn run(
    store: &Store,
    config: Option<&std::path::Path>,
    cmd: &SnapshotCommand,
    out: &Output,
) -> Result<ExitCode> {
    match cmd {
        SnapshotCommand::Create => {
            // The configuration tunes the snapshot when there is one; a
            // store without `halo.toml` snapshots with the defaults.
            let store = if config.is_some() || store.root().join("halo.toml").exists() {
                super::tuned(store, &super::load_config(store, config)?.0)
            } else {
                store.clone()
            };
            create(&store, out)
        }
        SnapshotCommand::List => list(store, out),
        SnapshotCommand::Show { id } => show(store, id, out),
        SnapshotCommand::Diff { a, b } => diff(store, a, b, out),
    }
}

fn create(store: &Store, out: &Output) -> Result<ExitCode> {
    let spinner = out.spinner("snapshot");
    let created = store.create_snapshot(jiff::Timestamp::now())?;
    spinner.finish_and_clear();
    if !created.new {
        tracing::warn!(
            "nothing changed since snapshot {}: no new snapshot made",
            created.id
        );
    }
    out.line(&created.id)?;
    out.json(&created)?;
    Ok(ExitCode::SUCCESS)
}

/// Which channels point at each snapshot.
fn channels_by_snapshot(store: &Store) -> Result<HashMap<String, Vec<String>>> {
    let mut map: HashMap<String, Vec<String>> = HashMap::new();
    for (name, p) in store.list_channels()? {
        if let Some(s) = p.snapshot {
            map.entry(s).or_default().push(name);
        }
    }
    Ok(map)
}

#[derive(Serialize)]
struct ListItem {
    id: String,
    created: String,
    channels: Vec<String>,
}

fn list(store: &Store, out: &Output) -> Result<ExitCode> {
    let channels = channels_by_snapshot(store)?;
    let mut items = Vec::new();
    for id in store.list_snapshots()? {
        let snap = store.load_snapshot(&id)?;
        let ch = channels.get(&id).cloned().unwrap_or_default();
        out.line(format!("{}\t{}\t{}", id, snap.created, ch.join(",")))?;
        items.push(ListItem {
            id,
            created: snap.created,
            channels: ch,
        });
    }
    out.json(&items)?;
    Ok(ExitCode::SUCCESS)
}

#[derive(Serialize)]
struct PackageLine {
    archive: String,
    dist: String,
    component: String,
    package: String,
    version: String,
    arch: String,
    filename: String,
}

fn show(store: &Store, id: &str, out: &Output) -> Result<ExitCode> {
    let snap = store.load_snapshot(id)?;
    let channels = channels_by_snapshot(store)?.remove(id).unwrap_or_default();
    out.line(format!("snapshot {}", snap.id))?;
    out.line(format!("created  {}", snap.created))?;
    out.line(format!("channels {}", channels.join(" ")))?;
    let mut packages = Vec::new();
    for (archive, a) in &snap.archives {
        for (dist, d) in &a.dists {
            out.line(format!(
                "{archive}/{dist}: components {}; architectures {}",
                d.components.keys().cloned().collect::<Vec<_>>().join(" "),
                d.architectures.join(" ")
            ))?;
            for (comp, hash) in &d.components {
                let state = store.load_component(hash)?;
                for b in &state.binaries {
                    out.line(format!("  {comp} {} {} {}", b.package, b.version, b.arch))?;
                    packages.push(PackageLine {
                        archive: archive.clone(),
                        dist: dist.clone(),
                        component: comp.clone(),
                        package: b.package.clone(),
                        version: b.version.clone(),
                        arch: b.arch.clone(),
                        filename: b.file.path.clone(),
                    });
                }
                for s in &state.sources {
                    out.line(format!("  {comp} {} {} source", s.package, s.version))?;
                    packages.push(PackageLine {
                        archive: archive.clone(),
                        dist: dist.clone(),
                        component: comp.clone(),
                        package: s.package.clone(),
                        version: s.version.clone(),
                        arch: "source".into(),
                        filename: s.files.first().map(|f| f.path.clone()).unwrap_or_default(),
                    });
                }
            }
        }
    }
    out.json(&serde_json::json!({
        "id": snap.id,
        "created": snap.created,
        "channels": channels,
        "archives": snap.archives,
        "packages": packages,
    }))?;
    Ok(ExitCode::SUCCESS)
}

fn load_places(store: &Store, snap: &Snapshot) -> Result<BTreeMap<Place, ComponentState>> {
    let mut out = BTreeMap::new();
    for (archive, a) in &snap.archives {
        for (dist, d) in &a.dists {
            for (comp, hash) in &d.components {
                let place = Place {
                    archive: archive.clone(),
                    dist: dist.clone(),
                    component: comp.clone(),
                };
                out.insert(place, store.load_component(hash)?);
            }
        }
    }
    Ok(out)
}

fn diff(store: &Store, a: &str, b: &str, out: &Output) -> Result<ExitCode> {
    let old = load_places(store, &store.load_snapshot(a)?)?;
    let new = load_places(store, &store.load_snapshot(b)?)?;
    let old_refs = old.iter().map(|(k, v)| (k.clone(), v)).collect();
    let new_refs = new.iter().map(|(k, v)| (k.clone(), v)).collect();
    let changes = plan_diff(&old_refs, &new_refs);
    for c in &changes {
        let versions = match (&c.from, &c.to) {
            (Some(f), Some(t)) => format!("{f} -> {t}"),
            (None, Some(t)) => t.clone(),
            (Some(f), None) => f.clone(),
            (None, None) => String::new(),
        };
        out.line(format!(
            "{:<10} {}/{}/{}/{} {} {}",
            format!("{:?}", c.kind).to_lowercase(),
            c.archive,
            c.dist,
            c.component,
            c.arch,
            c.package,
            versions
        ))?;
    }
    out.json(&changes)?;
    Ok(ExitCode::SUCCESS)
}
