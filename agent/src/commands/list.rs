//! `halo list` and `halo show`: read-only views of the working state,
//! the snapshots and the channels.

use std::collections::HashMap;
use std::process::ExitCode;

use anyhow::Result;
use repofs::model::diff::Place;
use repofs::model::edit::EditError;
use repofs::model::query::{find_package, plan_list, plan_show, Found, FoundAt};
use repofs::Store;

use super::UserError;
use crate::cli::{ListArgs, ShowArgs};
use crate::output::Output;

pub fn list(store: &Store, args: &ListArgs, out: &Output) -> Result<ExitCode> {
    let state = store.load_state()?;
    let unknown = |place: String| repofs::Error::from(EditError::UnknownPlace { place });
    let dists = state
        .get(&args.archive)
        .ok_or_else(|| unknown(args.archive.clone()))?;
    if let Some(d) = &args.dist {
        if !dists.contains_key(d) {
            return Err(unknown(format!("{}/{d}", args.archive)).into());
        }
    }
    let mut loaded = Vec::new();
    for (dist, comps) in dists {
        if args.dist.as_ref().is_some_and(|d| d != dist) {
            continue;
        }
        for (comp, hash) in comps {
            let place = Place {
                archive: args.archive.clone(),
                dist: dist.clone(),
                component: comp.clone(),
            };
            loaded.push((place, store.load_component(hash)?));
        }
    }
    let places: Vec<_> = loaded.iter().map(|(p, s)| (p.clone(), s)).collect();
    let listed = plan_list(&places, args.pattern.as_deref());
    for l in &listed {
        out.line(format!(
            "{}/{} {} {} {}",
            l.dist, l.component, l.package, l.version, l.arch
        ))?;
    }
    out.json(&listed)?;
    Ok(ExitCode::SUCCESS)
}

pub fn show(store: &Store, args: &ShowArgs, out: &Output) -> Result<ExitCode> {
    let name = args.package.as_str();
    let state = store.load_state()?;
    let mut snapshot_maps = Vec::new();
    for id in store.list_snapshots()? {
        let snap = store.load_snapshot(&id)?;
        snapshot_maps.push((id, snap.state_map()));
    }
    // A component state shared by the working state and many snapshots is
    // read once.
    let mut found: HashMap<&str, Vec<Found>> = HashMap::new();
    let maps = std::iter::once(&state).chain(snapshot_maps.iter().map(|(_, m)| m));
    for hash in maps.flat_map(|m| m.values().flat_map(|d| d.values().flat_map(|c| c.values()))) {
        if !found.contains_key(hash.as_str()) {
            let component = store.load_component(hash)?;
            found.insert(hash, find_package(&component, name));
        }
    }
    let places = |map: &repofs::model::StateMap| -> FoundAt<'_> {
        let mut out = Vec::new();
        for (archive, dists) in map {
            for (dist, comps) in dists {
                for (comp, hash) in comps {
                    let f = found.get(hash.as_str()).map_or(&[][..], Vec::as_slice);
                    if !f.is_empty() {
                        let place = Place {
                            archive: archive.clone(),
                            dist: dist.clone(),
                            component: comp.clone(),
                        };
                        out.push((place, f));
                    }
                }
            }
        }
        out
    };
    let working = places(&state);
    let in_snapshots: Vec<(String, FoundAt<'_>)> = snapshot_maps
        .iter()
        .map(|(id, map)| (id.clone(), places(map)))
        .collect();
    let channels: Vec<(String, Option<String>)> = store
        .list_channels()?
        .into_iter()
        .map(|(name, p)| (name, p.snapshot))
        .collect();
    let holdings = plan_show(name, &working, &in_snapshots, &channels);
    if holdings.is_empty() {
        return Err(UserError(format!(
            "no package {name:?} in the working state or any snapshot"
        ))
        .into());
    }
    for h in &holdings {
        let mut where_ = Vec::new();
        if h.working {
            where_.push("working state".to_string());
        }
        if !h.snapshots.is_empty() {
            where_.push(format!("snapshots {}", h.snapshots.join(" ")));
        }
        if !h.channels.is_empty() {
            where_.push(format!("channels {}", h.channels.join(" ")));
        }
        out.line(format!(
            "{}/{}/{} {} {} {}: {}",
            h.archive,
            h.dist,
            h.component,
            h.package,
            h.version,
            h.arch,
            where_.join("; ")
        ))?;
    }
    out.json(&holdings)?;
    Ok(ExitCode::SUCCESS)
}
