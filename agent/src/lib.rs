//! The `halo` command: command-line types, output, and one module per
//! subcommand wiring the `repofs` store to the user. Later: mirroring,
//! building, acceptance and the Jenkins agent.

pub mod cli;
pub mod commands;
pub mod output;
pub mod process;
