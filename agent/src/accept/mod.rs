//! The acceptance step: freeze testing, run the tests against the frozen
//! snapshot, promote exactly what was tested to stable, or nothing.
//!
//! `run` executes the plain tests (each `sh -c`, streamed, timed out with
//! its process group), `system` builds systems from scratch and tests
//! inside them (`crate::sysroot` plans, makes, enters and removes them;
//! `summary` says why a step failed; `sysroot::repo` provides the APT tree
//! both read, `HALO_REPO`), `lease` holds the lease on testing for the
//! run's lifetime. The gate's rules live in the store
//! (`repofs::model::acceptance`), which applies them to every channel move;
//! `commands::accept` wires the steps together.

pub mod driver;
pub mod lease;
pub mod run;
pub mod summary;
pub mod system;
