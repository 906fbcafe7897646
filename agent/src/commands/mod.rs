//! One module per subcommand; each takes its resolved inputs and the
//! printer, does load/decide/commit through the store, and prints.

pub mod accept;
pub mod agent;
pub mod build;
pub mod channel;
pub mod copy;
pub mod export;
pub mod fsck;
pub mod import;
pub mod init;
pub mod jenkins;
pub mod key;
pub mod list;
pub mod mirror;
pub mod quickstart;
pub mod remove;
pub mod snapshot;
pub mod status;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;

use crate::cli::{Cli, Command};
use crate::output::Output;

pub use crate::workflow::exit::{exit_code, InfraError, UserError, EXIT_BUSY};

fn store_dir(cli: &Cli) -> Result<PathBuf> {
    cli.store.clone().ok_or_else(|| {
        UserError("no store given: pass --store DIR or set HALO_STORE".into()).into()
    })
}

/// Opens the store named on the command line.
pub fn open_store(cli: &Cli) -> Result<repofs::Store> {
    let wait = cli
        .wait_timeout
        .map(|s| std::time::Duration::from_secs_f64(s.max(0.0)));
    Ok(repofs::Store::open(&store_dir(cli)?)?.with_wait_timeout(wait))
}

/// `--config`/`$HALO_CONFIG` (resolved by clap), else `STORE/halo.toml`.
pub fn load_config(
    store: &repofs::Store,
    given: Option<&std::path::Path>,
) -> Result<(crate::config::Config, PathBuf)> {
    use anyhow::Context;
    let path = given.map_or_else(
        || store.root().join("halo.toml"),
        std::path::Path::to_path_buf,
    );
    // Regular and bounded: a FIFO or a device given as --config is refused.
    let text = match repofs::bounded::read_regular_string(&path, repofs::bounded::CONFIG_LIMIT) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(UserError(format!(
                "no configuration: {} does not exist (pass --config FILE or set HALO_CONFIG)",
                path.display()
            ))
            .into())
        }
        // A directory, a file that is not UTF-8, no permission: the
        // user's configuration is wrong, not halo.
        Err(e) => {
            let why = if e.kind() == std::io::ErrorKind::InvalidData {
                "not UTF-8 text".to_string()
            } else {
                e.to_string()
            };
            return Err(UserError(format!("configuration {}: {why}", path.display())).into());
        }
    };
    let config = crate::config::parse_config(&text)
        .with_context(|| format!("configuration {}", path.display()))?;
    // Its URLs may carry credentials: no build on the host reads it.
    crate::sandbox::hide(&path);
    Ok((config, path))
}

/// The store handle as the configuration tunes it (`[pdiff] history`).
pub fn tuned(store: &repofs::Store, config: &crate::config::Config) -> repofs::Store {
    store.clone().with_pdiff_history(config.pdiff.history)
}

/// `user@host` for channel history.
pub fn whoami() -> String {
    let user = std::env::var("SUDO_USER")
        .or_else(|_| std::env::var("USER"))
        .unwrap_or_else(|_| "unknown".into());
    let host = fs_err::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".into());
    format!("{user}@{host}")
}

pub fn run(cli: &Cli, out: &Output) -> Result<ExitCode> {
    match &cli.command {
        Command::Init(args) => init::run(&store_dir(cli)?, args, out),
        Command::Import(args) => import::run(&open_store(cli)?, args, out),
        Command::Key(cmd) => key::run(&open_store(cli)?, cmd, out),
        Command::Remove(args) => remove::run(&open_store(cli)?, cli.config.as_deref(), args, out),
        Command::Copy(args) => copy::run(&open_store(cli)?, args, out),
        Command::List(args) => list::list(&open_store(cli)?, args, out),
        Command::Show(args) => list::show(&open_store(cli)?, args, out),
        Command::Snapshot(cmd) => snapshot::run(&open_store(cli)?, cli.config.as_deref(), cmd, out),
        Command::Promote(args) => channel::promote(&open_store(cli)?, args, out),
        Command::Channel(cmd) => channel::run(&open_store(cli)?, cmd, out),
        Command::Export(args) => export::run(&open_store(cli)?, args, out),
        Command::Fsck => fsck::fsck(&open_store(cli)?, out),
        Command::Gc(args) => fsck::gc(&open_store(cli)?, args, out),
        Command::Mirror(cmd) => mirror::run(&open_store(cli)?, cli.config.as_deref(), cmd, out),
        Command::Accept(args) => {
            accept::accept(&open_store(cli)?, cli.config.as_deref(), args, out)
        }
        Command::Gate(args) => accept::gate(&open_store(cli)?, cli.config.as_deref(), args, out),
        Command::Jenkins(cmd) => jenkins::run(&open_store(cli)?, cli.config.as_deref(), cmd, out),
        Command::Agent(args) => agent::run(&open_store(cli)?, cli.config.as_deref(), args, out),
        Command::Build(args) => build::run(&open_store(cli)?, cli.config.as_deref(), args, out),
        Command::Sources(cmd) => build::sources(&open_store(cli)?, cli.config.as_deref(), cmd, out),
        Command::Quickstart(args) => quickstart::run(args, out),
        Command::Status => status::run(&open_store(cli)?, cli.config.as_deref(), out),
    }
}
