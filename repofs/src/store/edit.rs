//! `halo remove` and `halo copy` on disk: load the component states under
//! the writer lock, decide with `model::edit`, commit the changed component
//! states and `state.json` by one rename, as an import does. A refusal
//! (a spec matching nothing, a mirror's archive, a conflict) leaves the
//! store exactly as it was.
//!
//! A mirror owns its archive (`mirrors/<name>.json` exists): what is
//! removed from it comes back on the next update and what is copied into
//! it is dropped. So a copy into it is refused, and a removal from it is
//! refused unless the mirror's `packages` filter (as configured now) leaves
//! out everything it takes; copying *from* a mirror is what copies are for.

use std::collections::BTreeMap;

use super::state::add_component;
use super::{Error, Result, Store};
use crate::debian::name;
use crate::model::copy::{plan_copy, CopyInput};
use crate::model::edit::{
    kept_by_filter, plan_remove, EditError, EntryRef, MirrorFilter, PackageSpec,
};
use crate::model::{ComponentState, StateMap};

/// An archive's dist, and optionally one component of it.
#[derive(Debug, Clone, Copy)]
pub struct DistTarget<'a> {
    pub archive: &'a str,
    pub dist: &'a str,
    pub component: Option<&'a str>,
}

impl DistTarget<'_> {
    fn check(&self) -> Result<()> {
        name::check_segment("archive", self.archive)?;
        name::check_segment("dist", self.dist)?;
        if let Some(c) = self.component {
            name::check_segment("component", c)?;
        }
        Ok(())
    }

    fn place(&self) -> String {
        match self.component {
            Some(c) => format!("{}/{}/{c}", self.archive, self.dist),
            None => format!("{}/{}", self.archive, self.dist),
        }
    }
}

/// What a removal took out.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct RemoveReport {
    pub removed: Vec<EntryRef>,
}

/// What a copy added, and what the target held already.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct CopyReport {
    pub copied: Vec<EntryRef>,
    pub unchanged: Vec<EntryRef>,
}

/// Takes the entries `specs` match out of `target`'s working state. A
/// mirror's archive only with the mirror's `packages` filter (`filter`, from
/// its configuration) and only entries that filter leaves out: anything else
/// would come back on the next update.
pub fn remove(
    store: &Store,
    target: &DistTarget<'_>,
    specs: &[PackageSpec],
    filter: Option<&MirrorFilter<'_>>,
) -> Result<RemoveReport> {
    target.check()?;
    let lock = store.lock()?;
    let mirror = store.load_mirror_record(target.archive)?.is_some();
    if mirror && filter.is_none() {
        return Err(EditError::MirrorArchive {
            archive: target.archive.to_string(),
            why: "what is removed here comes back on the next `halo mirror update`; \
                  leave it out with the mirror's `packages` setting instead (docs/config.md)",
        }
        .into());
    }
    let mut state = store.load_state()?;
    let components = load_dist(store, &state, target)?;
    let removal = plan_remove(&components, specs, &target.place())?;
    if let Some(filter) = filter.filter(|_| mirror) {
        let archive = store.load_archive_components(&state, target.archive)?;
        if let Some(entry) = kept_by_filter(&archive, target.dist, filter, &removal.removed)? {
            return Err(EditError::KeptByMirror {
                archive: target.archive.to_string(),
                entry: entry.to_string(),
            }
            .into());
        }
    }
    commit(
        store,
        &lock,
        &mut state,
        target.archive,
        target.dist,
        removal.components,
    )?;
    tracing::info!(
        archive = target.archive,
        dist = target.dist,
        removed = removal.removed.len(),
        "remove committed"
    );
    Ok(RemoveReport {
        removed: removal.removed,
    })
}

/// Copies what `specs` name from `from` into the dist `to` (its archive and
/// dist; the components keep their names).
pub fn copy(
    store: &Store,
    from: &DistTarget<'_>,
    to: &DistTarget<'_>,
    specs: &[PackageSpec],
    with_deps: bool,
) -> Result<CopyReport> {
    from.check()?;
    to.check()?;
    let lock = store.lock()?;
    refuse_mirror(
        store,
        to.archive,
        "`halo mirror update` rewrites it and would drop what is copied in; \
         copy into an archive of your own",
    )?;
    let mut state = store.load_state()?;
    let components = load_dist(store, &state, from)?;
    let to_archive = store.load_archive_components(&state, to.archive)?;
    let input = CopyInput {
        from: &components,
        from_place: &from.place(),
        to_archive: &to_archive,
        to_dist: to.dist,
        to_place: &to.place(),
    };
    let plan = plan_copy(&input, specs, with_deps)?;
    drop(to_archive);
    commit(
        store,
        &lock,
        &mut state,
        to.archive,
        to.dist,
        plan.components,
    )?;
    tracing::info!(
        from = %from.place(),
        to = %to.place(),
        copied = plan.copied.len(),
        "copy committed"
    );
    Ok(CopyReport {
        copied: plan.copied,
        unchanged: plan.unchanged,
    })
}

fn refuse_mirror(store: &Store, archive: &str, why: &'static str) -> Result<()> {
    if store.load_mirror_record(archive)?.is_some() {
        return Err(EditError::MirrorArchive {
            archive: archive.to_string(),
            why,
        }
        .into());
    }
    Ok(())
}

/// The components of `target` (all of its dist, or the one named), which
/// must exist.
fn load_dist(
    store: &Store,
    state: &StateMap,
    target: &DistTarget<'_>,
) -> Result<BTreeMap<String, ComponentState>> {
    let unknown = || EditError::UnknownPlace {
        place: target.place(),
    };
    let comps = state
        .get(target.archive)
        .and_then(|a| a.get(target.dist))
        .ok_or_else(unknown)?;
    let mut out = BTreeMap::new();
    for (comp, hash) in comps {
        if target.component.is_none_or(|c| c == comp) {
            out.insert(comp.clone(), store.load_component(hash)?);
        }
    }
    if out.is_empty() {
        return Err(unknown().into());
    }
    Ok(out)
}

/// Writes the changed component states, then `state.json` (the commit
/// point). Nothing changed, nothing written.
fn commit(
    store: &Store,
    lock: &super::WriteLock,
    state: &mut StateMap,
    archive: &str,
    dist: &str,
    components: BTreeMap<String, ComponentState>,
) -> Result<()> {
    if components.is_empty() {
        return Ok(());
    }
    let pool = store.pool();
    let mut batch = pool.batch();
    let mut hashes = Vec::new();
    for (comp, c) in &components {
        hashes.push((comp.clone(), add_component(&mut batch, c)?));
    }
    batch.commit()?;
    super::failpoint::hit("edit:before-state");
    let comps = state
        .entry(archive.to_string())
        .or_default()
        .entry(dist.to_string())
        .or_default();
    for (comp, hash) in hashes {
        comps.insert(comp, hash);
    }
    store.save_state(lock, state)?;
    Ok(())
}

impl From<EditError> for Error {
    fn from(e: EditError) -> Self {
        Error::Edit(Box::new(e))
    }
}
