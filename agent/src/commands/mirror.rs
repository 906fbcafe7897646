//! `halo mirror update [NAME...|--all]`: reads the configuration, runs each
//! mirror's update (`mirror::update`) on a tokio runtime, prints a summary
//! line per mirror (or `--json`). A failed mirror does not stop the others;
//! the command then exits non-zero with each failure on its own line.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use repofs::Store;

use super::{load_config, UserError};
use crate::cli::{MirrorCommand, MirrorUpdateArgs};
use crate::config::MirrorConfig;
use crate::mirror::fetch::Fetcher;
use crate::mirror::update::{Update, UpdateReport};
use crate::mirror::{Error, Progress};
use crate::output::Output;

pub fn run(
    store: &Store,
    config: Option<&Path>,
    cmd: &MirrorCommand,
    out: &Output,
) -> Result<ExitCode> {
    match cmd {
        MirrorCommand::Update(args) => update(store, config, args, out),
    }
}

/// The keyring file of a mirror; relative paths are relative to the configuration.
pub fn load_keyring(mirror: &MirrorConfig, config_path: &Path) -> Result<Option<Vec<u8>>, Error> {
    let Some(k) = &mirror.keyring else {
        return Ok(None);
    };
    let path = config_path.parent().unwrap_or(Path::new(".")).join(k);
    // A keyring at /dev/zero or a FIFO is refused, not read for ever.
    repofs::bounded::read_regular(&path, repofs::bounded::KEY_LIMIT)
        .map(Some)
        .map_err(|source| Error::KeyringRead { path, source })
}

fn update(
    store: &Store,
    config: Option<&Path>,
    args: &MirrorUpdateArgs,
    out: &Output,
) -> Result<ExitCode> {
    let (config, config_path) = load_config(store, config)?;
    let mirrors = config.select(&args.names, args.all).map_err(UserError)?;
    if mirrors.is_empty() {
        return Err(UserError(format!(
            "{} configures no [[mirror]]",
            config_path.display()
        ))
        .into());
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let fetcher = Fetcher::new(&config.fetch).context("cannot set up the HTTP client")?;
    let mut reports = Vec::new();
    let mut errors: Vec<anyhow::Error> = Vec::new();
    for mirror in mirrors {
        let bar = Bar::new(out, &mirror.name);
        let result = load_keyring(mirror, &config_path).and_then(|keyring| {
            let update = Update {
                store,
                mirror,
                keyring: keyring.as_deref(),
                fetcher: &fetcher,
                concurrency: config.fetch.download_concurrency,
                now: jiff::Timestamp::now(),
                progress: &bar,
            };
            runtime.block_on(update.run())
        });
        bar.bar.finish_and_clear();
        crate::workflow::record::save_mirror_outcome(
            store,
            &mirror.name,
            result
                .as_ref()
                .err()
                .map(|e| crate::redact::redact_urls(&repofs::error_chain(e))),
        );
        match result {
            Ok(report) => {
                out.line(summary(&report))?;
                reports.push(report);
            }
            Err(e) => errors.push(anyhow::Error::new(e).context(format!("mirror {}", mirror.name))),
        }
    }
    out.json(&reports)?;
    // Every failure but the gravest is printed here; main prints that one
    // and exits with its code.
    errors.sort_by_key(super::exit_code);
    match errors.pop() {
        None => Ok(ExitCode::SUCCESS),
        Some(worst) => {
            for e in &errors {
                out.error_line(format!("{e:#}").replace('\n', " "))?;
            }
            Err(worst)
        }
    }
}

fn summary(r: &UpdateReport) -> String {
    let packages: usize = r.dists.iter().map(|d| d.packages).sum();
    format!(
        "mirror {}: {} files, {} bytes downloaded in {:.2} s ({} requests); {}",
        r.mirror,
        r.files,
        r.bytes,
        r.seconds,
        r.requests,
        if r.changed {
            format!("state updated ({packages} packages in changed dists)")
        } else {
            "unchanged".to_string()
        }
    )
}

/// The progress bar of one mirror (hidden unless stderr is a terminal).
struct Bar {
    bar: ProgressBar,
    name: String,
}

impl Bar {
    fn new(out: &Output, name: &str) -> Self {
        let bar = out.spinner("mirror");
        bar.set_message(format!("{name}: starting"));
        Self {
            bar,
            name: name.to_string(),
        }
    }
}

impl Progress for Bar {
    fn stage(&self, text: &str) {
        self.bar.set_message(format!("{}: {text}", self.name));
    }

    fn start_downloads(&self, files: u64, bytes: u64) {
        let style = ProgressStyle::with_template(
            "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
        self.bar.set_style(style);
        self.bar.set_length(bytes);
        self.bar.set_position(0);
        self.bar
            .set_message(format!("{}: {files} files", self.name));
        self.bar.enable_steady_tick(Duration::from_millis(200));
    }

    fn downloaded(&self, bytes: u64) {
        self.bar.inc(bytes);
    }
}
