//! `repofs STORE MOUNTPOINT [-o OPTIONS] [-f]`: mounts the read-only view
//! of a rustedhalo store. Arguments -> open the store -> check the
//! mountpoint -> mount (the kernel handshake done) -> detach unless `-f` ->
//! serve until SIGINT/SIGTERM or an external `umount` -> clean unmount.
//!
//! Also the helper `mount.fuse3` runs for an fstab line
//! `STORE MOUNTPOINT fuse.repofs ro,allow_other 0 0`: it calls
//! `repofs STORE MOUNTPOINT -o ro,allow_other,...` and expects it to return
//! once the mount is usable, which is what happens without `-f`.
//!
//! Errors are one line on stderr (`repofs: ...`) and exit code 1.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Parser;
use fuser::Session;
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use repofs::fs::options::{parse_options, MountOptions};
use repofs::fs::{host, RepoFs};
use repofs::Store;

/// Mount the read-only view of a rustedhalo store.
#[derive(Parser)]
#[command(
    name = "repofs",
    version,
    long_about = "Mount the read-only view of a rustedhalo store: every snapshot under \
    snapshots/<id>/ and every channel under channels/<name>/ as a complete APT tree, \
    plus channels/<name>.snapshot -> ../snapshots/<id>.\n\n\
    Example: repofs /srv/halo /srv/apt -o allow_other\n\
    fstab:   /srv/halo /srv/apt fuse.repofs ro,allow_other,_netdev 0 0"
)]
struct Args {
    /// The store directory (what `halo --store` names).
    store: PathBuf,
    /// The directory to mount on.
    mountpoint: PathBuf,
    /// Mount options, comma-separated, repeatable: allow_other, allow_root,
    /// byhash_keep=N (default 4), grace=SECONDS (default 600), trees=N
    /// (default 4), threads=N (default: cores, at most 4), nopassthrough,
    /// fsname=NAME, log=FILE.
    /// mount(8)'s generic options (ro, rw, nodev, noauto, _netdev, ...) are
    /// accepted and ignored.
    #[arg(short = 'o', value_name = "OPTIONS")]
    options: Vec<String>,
    /// Stay in the foreground (else detach once the mount is usable).
    #[arg(short = 'f', long)]
    foreground: bool,
    /// Log every request (implies -f).
    #[arg(short = 'd', long)]
    debug: bool,
}

fn main() -> ExitCode {
    let args = match Args::try_parse() {
        Ok(a) => a,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 1 } else { 0 });
        }
    };
    let opts = match parse_options(args.options.iter().map(String::as_str)) {
        Ok(o) => o,
        Err(e) => return fail(&e.into()),
    };
    init_tracing(
        args.debug,
        args.foreground || args.debug || opts.log.is_some(),
    );
    match run(&args, &opts) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => fail(&err),
    }
}

/// The error chain on one line.
fn fail(err: &anyhow::Error) -> ExitCode {
    eprintln!("repofs: {}", format!("{err:#}").replace('\n', " "));
    ExitCode::from(1)
}

/// Logs to stderr (the journal under systemd, the `log=` file once
/// detached). fuser's own messages only from errors up: it warns about
/// unmounting a mount that is already gone.
fn init_tracing(debug: bool, logging: bool) {
    let default = match (debug, logging) {
        (true, _) => "debug",
        (false, true) => "info,fuser=error",
        // Before detaching, only what explains a failure reaches the terminal.
        (false, false) => "warn,fuser=error",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("REPOFS_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .init();
}

fn run(args: &Args, opts: &MountOptions) -> Result<()> {
    let store_dir = args
        .store
        .canonicalize()
        .with_context(|| format!("store {}", args.store.display()))?;
    let store = Store::open(&store_dir)?;
    let mountpoint = host::check_mountpoint(&args.mountpoint)?;
    host::check_dev_fuse()?;
    let mounted = repofs::fs::mount(store, &mountpoint, opts).with_context(|| {
        format!(
            "cannot mount {} on {}",
            store_dir.display(),
            mountpoint.display()
        )
    })?;
    if !(args.foreground || args.debug) {
        host::daemonize(opts.log.as_deref()).context("cannot detach into the background")?;
    }
    let passthrough = mounted
        .passthrough
        .load(std::sync::atomic::Ordering::Relaxed);
    tracing::info!(store = %store_dir.display(), mountpoint = %mountpoint.display(), passthrough, "mounted");
    repofs::fs::spawn_invalidator(mounted.session.notifier(), mounted.evicted)
        .context("cannot start the invalidation thread")?;
    serve(mounted.session, &mountpoint)
}

/// Serves requests until the mount goes away; SIGINT or SIGTERM unmounts.
fn serve(mut session: Session<RepoFs>, mountpoint: &Path) -> Result<()> {
    let mut signals = Signals::new([SIGINT, SIGTERM]).context("cannot install signal handlers")?;
    let handle = signals.handle();
    let mut fallback = session.unmount_callable();
    let target = mountpoint.to_path_buf();
    let waiter = std::thread::spawn(move || {
        if let Some(signal) = signals.forever().next() {
            tracing::info!(signal, "unmounting");
            match host::unmount(&target) {
                // Not root: fuser goes through fusermount3 -u.
                Err(e) if e.raw_os_error() == Some(libc::EPERM) => {
                    if let Err(e) = fallback.unmount() {
                        tracing::error!("cannot unmount {}: {e}", target.display());
                    }
                }
                Err(e) => tracing::error!("cannot unmount {}: {e}", target.display()),
                Ok(()) => {}
            }
        }
    });
    let served = match session.run() {
        // The kernel ends the connection after FUSE_DESTROY by aborting it:
        // the request thread that took DESTROY returns, the others read
        // ECONNABORTED, which fuser reports as an error (it expects only
        // ENODEV). Either way the mount is gone, which is the normal end.
        Err(e) if e.raw_os_error() == Some(libc::ECONNABORTED) => Ok(()),
        other => other,
    };
    handle.close();
    let _ = waiter.join();
    tracing::info!(mountpoint = %mountpoint.display(), "unmounted");
    served.context("FUSE session failed")
}
