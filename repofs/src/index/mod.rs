//! APT indices, bytes in and bytes out: rendering `Packages`/`Sources`
//! stanzas, per-component index files with their compressed variants, and
//! `Release` (deterministic for a given snapshot content and date); the
//! index diffs apt fetches with `Acquire::PDiffs` (`pdiff`); and
//! reading an upstream's (`read`).

pub mod blocks;
pub mod common;
pub mod compress;
pub mod contents;
pub mod dist;
pub mod gzblocks;
pub mod pdiff;
pub mod read;
pub mod release;
pub mod stanza;
pub mod xzblocks;
