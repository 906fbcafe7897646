//! `halo`: parse, set up logging, dispatch, and turn any error into one
//! line on stderr with exit code 1 (bad input) or 2 (internal failure).

use std::process::ExitCode;

use clap::Parser;

use agent::cli::Cli;
use agent::commands;
use agent::output::Output;

fn main() -> ExitCode {
    pin_mmap_threshold();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { 1 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    init_tracing(cli.verbose);
    let out = Output { json: cli.json };
    match commands::run(&cli, &out) {
        Ok(code) => code,
        Err(err) => {
            if is_broken_pipe(&err) {
                return ExitCode::SUCCESS;
            }
            eprintln!("halo: {}", one_line(&err));
            ExitCode::from(commands::exit_code(&err))
        }
    }
}

/// glibc raises its mmap threshold after the first large free, after which
/// every imported package's decompression buffers land in the heap between
/// long-lived index entries: RSS grew ~8 KiB per package (380 MB for a
/// 50,000-package import). Pinning the threshold keeps large temporary
/// buffers in their own mappings, returned to the system when freed.
#[cfg(target_env = "gnu")]
#[allow(unsafe_code)]
fn pin_mmap_threshold() {
    // SAFETY: mallopt only adjusts allocator parameters; called before any
    // other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 64 * 1024);
    }
}

#[cfg(not(target_env = "gnu"))]
fn pin_mmap_threshold() {}

fn init_tracing(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
}

/// The error chain on one line (`context: cause: cause`).
fn one_line(err: &anyhow::Error) -> String {
    format!("{err:#}").replace('\n', " ")
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
