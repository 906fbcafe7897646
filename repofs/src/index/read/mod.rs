//! Reading what an upstream publishes, bytes in and values out: its
//! `Release`, which index files it asks us to fetch, and its `Packages` and
//! `Sources` indices. The mirror acts on these; `fsck` checks what we serve
//! with the same Release parser.

pub mod packages;
pub mod plan;
pub mod release;
pub mod stanzas;
