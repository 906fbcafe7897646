//! APT index rendering, bytes in and bytes out: `Packages`/`Sources`
//! stanzas, per-component index files with their compressed variants, and
//! `Release`. Deterministic for a given snapshot content and date.

pub mod compress;
pub mod dist;
pub mod release;
pub mod stanza;
