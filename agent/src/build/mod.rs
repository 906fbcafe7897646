//! `halo build`: from a monitored git source (or a tree on disk) to
//! packages in an archive, a snapshot and a channel.
//!
//! `plan` decides (versions, tags, changelog entries), `git` and `orig`
//! fetch, `run` builds in a work directory, `steps` records what ran for
//! the reports. Publishing goes through the store in `commands::build`.

pub mod git;
pub mod orig;
pub mod plan;
pub mod root;
pub mod root_plan;
pub mod run;
pub mod steps;
