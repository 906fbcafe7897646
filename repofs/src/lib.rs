//! repofs: rustedhalo's store, APT index rendering and signing.
//!
//! A tour, from the pure core outwards:
//!
//! - [`deb822`]: the `Field: value` paragraph format, byte-faithful.
//! - [`debian`]: dpkg version order, names that become paths, typed
//!   control paragraphs (`.deb` control, `.dsc`, `.changes`), the `.deb`
//!   container.
//! - [`hash`]: MD5/SHA1/SHA256 in one pass, as APT indices list them.
//! - [`index`]: `Packages`/`Sources` stanzas as dpkg-scanpackages prints
//!   them, per-component indices with `.gz`/`.xz`, `Release`, and the
//!   index diffs (`Packages.diff/`) between one snapshot's index and the
//!   next one's.
//! - [`model`]: component states, snapshot manifests and ids, channel moves
//!   (compare-and-swap), snapshot diffs, the APT tree of a snapshot; removing
//!   and copying packages, dependency closures, list and show.
//! - [`sign`] (edge): OpenPGP signing of Release (by one key or, during a
//!   rotation, several; Ed25519 or RSA) and verification of upstream
//!   signatures, with rPGP.
//! - [`store`] (edge): the directory on disk. Blobs are content-addressed
//!   and immutable; everything else is replaced by rename under one writer
//!   lock; readers never lock. See docs/store-format.md.
//! - [`bounded`] (edge): the one reader of files halo did not write (keys,
//!   keyrings, tokens, configuration, a source tree's metadata): regular
//!   files only, never through a symlink, bounded in size.
//! - [`fs`] (edge): the read-only FUSE view (`repofs STORE MOUNTPOINT`):
//!   every snapshot and channel as an APT tree, served from the pool.

pub mod bounded;
pub mod deb822;
pub mod debian;
pub mod fs;
pub mod hash;
pub mod index;
pub mod model;
pub mod sign;
pub mod store;

#[cfg(test)]
mod properties;

pub use store::{Error, Store};

/// An error and its causes on one line (`what: why: why`), for the places
/// that keep an error as text (a report, a refusal's reason). Errors here
/// never repeat their cause in their own message (it is their `source`),
/// so nothing is printed twice.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}
