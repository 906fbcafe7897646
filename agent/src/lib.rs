//! The `halo` command: command-line types, output, and one module per
//! subcommand wiring the `repofs` store to the user, the configuration
//! file, and upstream mirroring. Later: building, acceptance and the
//! Jenkins agent.

pub mod accept;
pub mod build;
pub mod cli;
pub mod commands;
pub mod config;
pub mod jenkins;
pub mod junit;
pub mod mirror;
pub mod output;
pub mod process;
pub mod redact;
pub mod repository;
pub mod sandbox;
pub mod serve;
pub mod sysroot;
pub mod workflow;
