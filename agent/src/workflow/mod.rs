//! The workflows: build, accept (and gate) and the agent's cycle, as
//! library functions that return typed reports (statuses and verdicts as
//! enums; the verdict is `repofs`'s own, shared with the gate that reads
//! it). Each has one error type that decides its exit code (`exit`). A
//! `halo` command resolves settings, calls one and prints its report; the
//! daemon calls the same functions, never its own binary; Jenkins job
//! steps call `halo`. Every trigger runs one flow, with the checks the
//! configuration names.
//!
//! - `build`: a source fetched, built, published; `BuildStatus`.
//! - `accept`: freeze testing, run the configured checks, decide, move
//!   stable by compare-and-swap; `gate` the same checks without moving.
//! - `cycle`: mirror, build, snapshot, move unstable, then accept (or
//!   trigger the acceptance job) a snapshot not yet judged.
//! - `record`: what the agent leaves in `STORE/agent/` for the next cycle
//!   and for `halo status`.
//! - `exit`: the shared exit codes.

pub mod accept;
pub mod build;
pub mod cycle;
pub mod exit;
pub mod record;
pub mod runs;
