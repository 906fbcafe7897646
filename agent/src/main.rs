//! `halo`: parse, set up logging, dispatch, and turn any error into one
//! line on stderr with exit code 1 (bad input) or 2 (internal failure).

use std::process::ExitCode;

use clap::Parser;

use agent::cli::Cli;
use agent::commands;
use agent::output::Output;

/// mimalloc instead of glibc's malloc: an import interleaves short-lived
/// decompression buffers with long-lived index entries, and glibc's heap
/// fragmented under that pattern until RSS was ten times the live heap
/// (400 MB for 20,000 packages whose heap peaked at 42 MB).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { 1 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    init_tracing(cli.verbose);
    let out = Output {
        json: cli.json,
        quiet: false,
    };
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

fn init_tracing(verbose: u8) {
    // -vv is our own debug output (phases, timings); the libraries'
    // (OpenPGP packet dumps, HTTP internals) only from -vvv on.
    let default = match verbose {
        0 => "warn",
        1 => "info",
        2 => "info,agent=debug,halo=debug,repofs=debug",
        3 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour codes only for a person at a terminal, never in a log file
        // or a Jenkins console.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .init();
}

/// The error chain on one line (`context: cause: cause`), passwords in
/// URLs hidden. Control
/// characters (from a crafted package's fields, say) are shown escaped:
/// an escape sequence must never reach the terminal.
fn one_line(err: &anyhow::Error) -> String {
    agent::redact::redact_urls(&format!("{err:#}"))
        .replace('\n', " ")
        .chars()
        .flat_map(|c| {
            if c.is_control() {
                c.escape_default().collect::<Vec<_>>()
            } else {
                vec![c]
            }
        })
        .collect()
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
