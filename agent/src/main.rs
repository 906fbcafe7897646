//! `halo`: parse, set up logging, dispatch, and turn any error into one
//! line on stderr with exit code 1 (bad input) or 2 (internal failure).

use std::process::ExitCode;

use clap::error::ErrorKind;
use clap::{CommandFactory, FromArgMatches};

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
    if std::env::args_os()
        .nth(1)
        .is_some_and(|a| a == agent::sandbox::INIT_ARG)
    {
        agent::sandbox::init::main();
    }
    let cli = match parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            // --help and --version: the text the user asked for, exit 0.
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            // A bare `halo`: someone looking for orientation, not a script.
            let _ = e.print();
            return ExitCode::from(1);
        }
        Err(e) => {
            let _ = agent::output::error_line(&usage_error_line(&e));
            return ExitCode::from(1);
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
            let _ = agent::output::error_line(&one_line(&err));
            ExitCode::from(commands::exit_code(&err))
        }
    }
}

/// Parses the command line. A subcommand group given without its
/// subcommand (`halo snapshot`) is a usage error like any other, one line,
/// rather than a screenful of help on stderr: only a bare `halo` shows help.
fn parse() -> Result<Cli, clap::Error> {
    let cmd = Cli::command().mut_subcommands(no_help_instead_of_errors);
    let matches = cmd.try_get_matches()?;
    Cli::from_arg_matches(&matches)
}

fn no_help_instead_of_errors(cmd: clap::Command) -> clap::Command {
    cmd.arg_required_else_help(false)
        .mut_subcommands(no_help_instead_of_errors)
}

/// clap's usage error (message, the missing arguments or valid values
/// indented under it, a blank line, the usage, a hint) as one line: a
/// Jenkins console or a log keeps it whole, a script reads it with one read.
fn usage_error_line(e: &clap::Error) -> String {
    let text = e.render().to_string();
    let mut out = String::new();
    // The command's own words of the usage line (`halo import`), for the hint.
    let mut command = "halo".to_string();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if line.starts_with("For more information") {
            continue;
        }
        let line = line.strip_prefix("error: ").unwrap_or(line);
        if let Some(usage) = line.strip_prefix("Usage: ") {
            out.push_str(&format!("; usage: {usage}"));
            command = usage
                .split_whitespace()
                .take_while(|w| !w.starts_with(['-', '<', '[']))
                .collect::<Vec<_>>()
                .join(" ");
        } else {
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str(line);
        }
    }
    printable(&format!(
        "{} (see {command} --help)",
        out.replace(": ;", ";")
    ))
}

fn init_tracing(verbose: u8) {
    // -vv is our own debug output (phases, timings); the libraries'
    // (OpenPGP packet dumps, HTTP internals) only from -vvv on.
    let default = match verbose {
        // Libraries' logs are for -v: an OpenPGP parser's complaint about
        // a garbage key (a multi-line dump) or a TLS verifier's "failed to
        // verify" must not bury or repeat the one line that says what was
        // wrong; what they fail with comes back as our error.
        0 => "off,agent=warn,halo=warn,repofs=warn",
        1 => "info",
        2 => "info,agent=debug,halo=debug,repofs=debug",
        3 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        // Through the one redacting path, as every line halo prints.
        .with_writer(agent::output::RedactingStderr)
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
    printable(&format!("{err:#}"))
}

/// `text` on one line, passwords in URLs hidden, control characters
/// escaped.
fn printable(text: &str) -> String {
    agent::redact::redact_urls(text)
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
