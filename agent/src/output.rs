//! Everything halo prints on stdout goes through here: human text or,
//! with `--json`, one JSON document. Progress bars go to stderr, only when
//! it is a terminal, so scripts and logs never see them.

use std::io::{self, IsTerminal, Write};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

#[derive(Debug, Clone, Copy)]
pub struct Output {
    pub json: bool,
    /// Print nothing on stdout: a command run inside another (the
    /// quickstart's acceptance run) whose caller reports for it.
    pub quiet: bool,
}

impl Output {
    /// The printer of a command run inside another.
    pub fn quiet() -> Self {
        Self {
            json: false,
            quiet: true,
        }
    }

    /// One line of human output (nothing in JSON mode).
    pub fn line(&self, text: impl AsRef<str>) -> io::Result<()> {
        if self.json || self.quiet {
            return Ok(());
        }
        let mut out = io::stdout().lock();
        writeln!(out, "{}", text.as_ref())
    }

    /// A line on stderr, whatever the mode (a failure among several).
    pub fn error_line(&self, text: impl AsRef<str>) -> io::Result<()> {
        writeln!(io::stderr().lock(), "halo: {}", text.as_ref())
    }

    /// A JSON document (only in JSON mode).
    pub fn json<T: Serialize>(&self, value: &T) -> io::Result<()> {
        if !self.json || self.quiet {
            return Ok(());
        }
        let mut out = io::stdout().lock();
        serde_json::to_writer_pretty(&mut out, value).map_err(io::Error::other)?;
        writeln!(out)
    }

    /// A JSON document on one line (only in JSON mode): a feed of one
    /// object per line, as the agent prints one per cycle.
    pub fn json_line<T: Serialize>(&self, value: &T) -> io::Result<()> {
        if !self.json || self.quiet {
            return Ok(());
        }
        let mut out = io::stdout().lock();
        serde_json::to_writer(&mut out, value).map_err(io::Error::other)?;
        writeln!(out)
    }

    /// A progress bar of `len` steps on a terminal; hidden otherwise.
    pub fn progress(&self, len: u64, message: &'static str) -> ProgressBar {
        if !io::stderr().is_terminal() {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::new(len);
        let style = ProgressStyle::with_template("{msg:>10} [{bar:40}] {pos}/{len} {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
        bar.set_style(style);
        bar.set_message(message);
        bar.enable_steady_tick(Duration::from_millis(200));
        bar
    }

    /// A spinner for work of unknown length.
    pub fn spinner(&self, message: &'static str) -> ProgressBar {
        if !io::stderr().is_terminal() {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::new_spinner();
        bar.set_message(message);
        bar.enable_steady_tick(Duration::from_millis(120));
        bar
    }
}
