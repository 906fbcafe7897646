//! The acceptance step: freeze testing, run the tests against the frozen
//! snapshot, promote exactly what was tested to stable, or nothing.
//!
//! `run` executes the tests (each `sh -c`, streamed, timed out with its
//! process group), `repo` provides the APT tree they read (`HALO_REPO`),
//! `lease` holds the lease on testing for the run's lifetime. The gate's
//! rules live in the store (`repofs::model::acceptance`), which applies them
//! to every channel move; `commands::accept` wires the steps together.

pub mod lease;
pub mod repo;
pub mod run;
