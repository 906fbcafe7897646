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
pub mod serve;
pub mod snapshot;
pub mod status;
pub mod token;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;

use crate::cli::{Cli, Command};
use crate::output::Output;
use crate::repository::Repository;

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

/// Where the store is reached: the store itself (`--store`), or, with
/// `--server`, the API of `halo serve` on the repository host.
pub fn open_repository(cli: &Cli) -> Result<Box<dyn Repository>> {
    let Some(url) = &cli.server else {
        return Ok(Box::new(open_store(cli)?));
    };
    let token = match &cli.token_file {
        Some(file) => {
            let text = repofs::bounded::read_regular_string(file, 4096)
                .map_err(|e| UserError(format!("--token-file {}: {e}", file.display())))?;
            // No build or test on this host reads it.
            crate::sandbox::hide(file);
            Some(text.trim().to_string())
        }
        None => std::env::var("HALO_TOKEN").ok(),
    };
    // Builds and tests run as children of this process: none inherits it.
    std::env::remove_var("HALO_TOKEN");
    let work = cli
        .work_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from("/var/tmp/halo"));
    let ca = match &cli.ca_cert {
        Some(file) => Some(
            repofs::bounded::read_regular_string(file, 1 << 20)
                .map_err(|e| UserError(format!("--ca-cert {}: {e}", file.display())))?,
        ),
        None => None,
    };
    let remote = crate::repository::Remote::new(url, token, ca.as_deref(), &work)
        .map_err(|e| UserError(format!("{e:#}")))?;
    Ok(Box::new(remote))
}

/// The configuration when there is one: `--config` (which must exist),
/// else `STORE/halo.toml` if present. For commands that work without one
/// and only read settings from it (`keep_versions`, `[publish]`).
pub fn optional_config(
    store: &dyn Repository,
    given: Option<&std::path::Path>,
) -> Result<Option<crate::config::Config>> {
    if given.is_none() {
        // A remote agent has no store, so no STORE/halo.toml.
        let in_store = store
            .local_store()
            .is_some_and(|s| s.root().join("halo.toml").exists());
        if !in_store {
            return Ok(None);
        }
    }
    Ok(Some(load_config(store, given)?.0))
}

/// The store handle as the configuration tunes the snapshots it makes
/// (`[publish] snapshots_url`, `[pdiff] history`); defaults without one.
pub fn publishing(store: &repofs::Store, config: Option<&crate::config::Config>) -> repofs::Store {
    let Some(config) = config else {
        return store.clone();
    };
    store
        .clone()
        .with_snapshots_url(config.publish.snapshots_url.clone())
        .with_pdiff_history(config.pdiff.history)
}

/// [`publishing`] for a workflow's repository: a remote one makes its
/// snapshots on the server, whose own configuration names the URL.
pub fn publishing_repository(
    repo: &dyn Repository,
    config: Option<&crate::config::Config>,
) -> Box<dyn Repository> {
    match repo.local_store() {
        Some(store) => Box::new(publishing(store, config)),
        None => repo.boxed(),
    }
}

/// For channel moves (a move back makes a re-dated copy, whose Release is
/// rendered anew): the store with `[publish] snapshots_url` when the
/// configuration gives it. A configuration that does not load must not stop
/// a rollback: it is warned about, and the copy goes without the field.
fn publishing_for_moves(cli: &Cli) -> Result<repofs::Store> {
    let store = open_store(cli)?;
    match optional_config(&store, cli.config.as_deref()) {
        Ok(config) => Ok(publishing(&store, config.as_ref())),
        Err(e) => {
            tracing::warn!("{e:#}: a re-dated copy this move makes has no Snapshots: field");
            Ok(store)
        }
    }
}

/// `--config`/`$HALO_CONFIG` (resolved by clap), else `STORE/halo.toml`
/// (a remote agent has no store: it needs `--config`).
pub fn load_config(
    store: &dyn Repository,
    given: Option<&std::path::Path>,
) -> Result<(crate::config::Config, PathBuf)> {
    use anyhow::Context;
    let path = match (given, store.local_store()) {
        (Some(p), _) => p.to_path_buf(),
        (None, Some(s)) => s.root().join("halo.toml"),
        (None, None) => {
            return Err(UserError(
                "no configuration: with --server, pass --config FILE or set HALO_CONFIG".into(),
            )
            .into())
        }
    };
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
    let remote_step = matches!(
        cli.command,
        Command::Build(_)
            | Command::Accept(_)
            | Command::Gate(_)
            | Command::Agent(_)
            | Command::Import(_)
    );
    if cli.server.is_some() && !remote_step {
        return Err(UserError(
            "--server runs build, accept, gate, agent and import: run this command on the repository host"
                .into(),
        )
        .into());
    }
    match &cli.command {
        Command::Init(args) => init::run(&store_dir(cli)?, args, out),
        Command::Import(args) if cli.server.is_some() => {
            import::run_remote(&*open_repository(cli)?, args, out)
        }
        Command::Import(args) => import::run(&open_store(cli)?, cli.config.as_deref(), args, out),
        Command::Key(cmd) => key::run(&open_store(cli)?, cmd, out),
        Command::Remove(args) => remove::run(&open_store(cli)?, cli.config.as_deref(), args, out),
        Command::Copy(args) => copy::run(&open_store(cli)?, args, out),
        Command::List(args) => list::list(&open_store(cli)?, args, out),
        Command::Show(args) => list::show(&open_store(cli)?, args, out),
        Command::Snapshot(cmd) => snapshot::run(&open_store(cli)?, cli.config.as_deref(), cmd, out),
        Command::Promote(args) => channel::promote(&publishing_for_moves(cli)?, args, out),
        Command::Channel(cmd) => channel::run(&publishing_for_moves(cli)?, cmd, out),
        Command::Export(args) => export::run(&open_store(cli)?, args, out),
        Command::Fsck => fsck::fsck(&open_store(cli)?, out),
        Command::Gc(args) => fsck::gc(&open_store(cli)?, args, out),
        Command::Mirror(cmd) => mirror::run(&open_store(cli)?, cli.config.as_deref(), cmd, out),
        Command::Accept(args) => {
            accept::accept(&*open_repository(cli)?, cli.config.as_deref(), args, out)
        }
        Command::Gate(args) => {
            accept::gate(&*open_repository(cli)?, cli.config.as_deref(), args, out)
        }
        Command::Jenkins(cmd) => jenkins::run(&open_store(cli)?, cli.config.as_deref(), cmd, out),
        Command::Agent(args) => {
            agent::run(&*open_repository(cli)?, cli.config.as_deref(), args, out)
        }
        Command::Build(args) => {
            build::run(&*open_repository(cli)?, cli.config.as_deref(), args, out)
        }
        Command::Sources(cmd) => build::sources(&open_store(cli)?, cli.config.as_deref(), cmd, out),
        Command::Quickstart(args) => quickstart::run(args, out),
        Command::Status => status::run(&open_store(cli)?, cli.config.as_deref(), out),
        Command::Serve(args) => serve::run(open_store(cli)?, cli.config.as_deref(), args, out),
        Command::Token(cmd) => token::run(&open_store(cli)?, cmd, out),
    }
}
