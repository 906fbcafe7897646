//! Root filesystems made from a snapshot of the store, shared by
//! acceptance systems (`accept::system`) and clean build roots
//! (`build::root`): both bootstrap with mmdebstrap from the snapshot's
//! archives alone, checked with the store's key, and run every command
//! inside in throw-away namespaces.
//!
//! `blueprint` plans sources and the mmdebstrap command line (pure),
//! `chroot` enters, unpacks and removes roots, `repo` provides the
//! snapshot's APT tree they read.

pub mod blueprint;
pub mod chroot;
pub mod repo;
