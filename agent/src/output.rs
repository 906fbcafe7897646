//! Everything halo prints goes through here: human text or, with
//! `--json`, one JSON document on stdout; error lines, warnings, streamed
//! step output and tracing's log lines on stderr. All of it passes one
//! redacting function (`emit`), so a credential in a URL (a mirror's, a
//! git source's) cannot reach a terminal, a log or a Jenkins console by a
//! path someone forgot. Progress bars go to stderr, only when it is a
//! terminal, so scripts and logs never see them.

use std::io::{self, IsTerminal, Write};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

/// Where `emit` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// The one way out: `text` redacted (`crate::redact`), written whole and
/// flushed.
pub fn emit(stream: Stream, text: &str) -> io::Result<()> {
    let text = crate::redact::redact_urls(text);
    match stream {
        Stream::Stdout => {
            let mut out = io::stdout().lock();
            out.write_all(text.as_bytes())?;
            out.flush()
        }
        Stream::Stderr => io::stderr().lock().write_all(text.as_bytes()),
    }
}

/// `halo: TEXT` on stderr: an error or a failure among several, printed
/// where no `Output` is at hand (a step runner, `main`).
pub fn error_line(text: &str) -> io::Result<()> {
    emit(Stream::Stderr, &format!("halo: {text}\n"))
}

/// One line of a step's streamed output on stderr, as it is.
pub fn stderr_line(text: &str) {
    // A closed stderr must not stop the step whose output this is.
    let _ = emit(Stream::Stderr, &format!("{text}\n"));
}

/// tracing's writer: each formatted event (one `write` of the whole
/// line) is redacted on its way to stderr.
#[derive(Debug, Clone, Copy, Default)]
pub struct RedactingStderr;

impl io::Write for RedactingStderr {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        emit(Stream::Stderr, &String::from_utf8_lossy(buf))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        io::stderr().flush()
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for RedactingStderr {
    type Writer = RedactingStderr;

    fn make_writer(&'a self) -> Self::Writer {
        RedactingStderr
    }
}

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
        emit(Stream::Stdout, &format!("{}\n", text.as_ref()))
    }

    /// The one line that bypasses redaction: a new API token that the
    /// operator asked to see on stdout (`halo token add` without
    /// `--output`). Printed in JSON mode too: it is the command's result,
    /// and it exists nowhere else.
    pub fn secret(&self, token: &str) -> io::Result<()> {
        let mut out = io::stdout().lock();
        out.write_all(format!("{token}\n").as_bytes())?;
        out.flush()
    }

    /// A line on stderr, whatever the mode (a failure among several).
    pub fn error_line(&self, text: impl AsRef<str>) -> io::Result<()> {
        error_line(text.as_ref())
    }

    /// A JSON document (only in JSON mode).
    pub fn json<T: Serialize>(&self, value: &T) -> io::Result<()> {
        if !self.json || self.quiet {
            return Ok(());
        }
        let text = serde_json::to_string_pretty(value).map_err(io::Error::other)?;
        emit(Stream::Stdout, &format!("{text}\n"))
    }

    /// A JSON document on one line (only in JSON mode): a feed of one
    /// object per line, as `halo agent --json` prints per cycle.
    pub fn json_line<T: Serialize>(&self, value: &T) -> io::Result<()> {
        if !self.json || self.quiet {
            return Ok(());
        }
        let text = serde_json::to_string(value).map_err(io::Error::other)?;
        emit(Stream::Stdout, &format!("{text}\n"))
    }

    /// Text as it comes, on stdout (a Jenkins console followed by
    /// `--wait`; nothing in JSON mode).
    pub fn text(&self, text: &str) -> io::Result<()> {
        if self.json || self.quiet {
            return Ok(());
        }
        emit(Stream::Stdout, text)
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
