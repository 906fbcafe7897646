//! `halo key list|rotate|retire`: the store's signing keys.

use std::process::ExitCode;

use anyhow::Result;
use repofs::sign::{KeyAlgorithm, SigningKey};
use repofs::Store;
use serde::Serialize;

use super::UserError;
use crate::cli::KeyCommand;
use crate::output::Output;

pub fn run(store: &Store, cmd: &KeyCommand, out: &Output) -> Result<ExitCode> {
    match cmd {
        KeyCommand::List => list(store, out),
        KeyCommand::Rotate { key_algorithm, key } => {
            let new = match key {
                Some(path) => read_key(path)?,
                None => {
                    let algorithm = match key_algorithm {
                        Some(a) => (*a).into(),
                        None => newest_algorithm(store)?,
                    };
                    let user_id = format!("{} repository signing key", store.meta().origin);
                    SigningKey::generate_with(&user_id, algorithm)?
                }
            };
            let change = store.rotate_key(new)?;
            out.line(format!(
                "added signing key {} {}; every Release is now signed by {}",
                change.algorithm,
                change.fingerprint,
                change.signing.join(" and ")
            ))?;
            out.line(format!(
                "give clients {} (it holds every signing key), make and promote a snapshot, then `halo key retire` the old key",
                store.keys_dir().join("repo.gpg").display()
            ))?;
            out.json(&change)?;
            Ok(ExitCode::SUCCESS)
        }
        KeyCommand::Retire { fingerprint } => {
            let change = store.retire_key(fingerprint)?;
            out.line(format!(
                "retired signing key {} {}; Releases are signed by {} from now on",
                change.algorithm,
                change.fingerprint,
                change.signing.join(" and ")
            ))?;
            out.json(&change)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The algorithm of the newest signing key: a store kept on RSA for its
/// old clients stays on RSA unless told otherwise.
fn newest_algorithm(store: &Store) -> Result<KeyAlgorithm> {
    let keys = store.load_signing_keys()?;
    let newest = keys.keys().last().map(SigningKey::algorithm);
    Ok(match newest.as_deref() {
        Some(a) if a.starts_with("rsa") => KeyAlgorithm::Rsa4096,
        _ => KeyAlgorithm::Ed25519,
    })
}

/// A key the user names that cannot be read or used is their mistake.
fn read_key(path: &std::path::Path) -> Result<SigningKey> {
    let data = fs_err::read(path).map_err(|e| UserError(format!("--key: {e}")))?;
    SigningKey::from_bytes(&data).map_err(|e| {
        UserError(format!(
            "--key {}: not a usable OpenPGP secret key: {}",
            path.display(),
            repofs::error_chain(&e)
        ))
        .into()
    })
}

#[derive(Serialize)]
struct KeyLine {
    fingerprint: String,
    algorithm: String,
    created: String,
    /// `signing` or `retired`.
    status: &'static str,
}

fn list(store: &Store, out: &Output) -> Result<ExitCode> {
    let mut lines: Vec<KeyLine> = store
        .load_signing_keys()?
        .keys()
        .iter()
        .map(|k| KeyLine {
            fingerprint: k.fingerprint(),
            algorithm: k.algorithm(),
            created: k.created(),
            status: "signing",
        })
        .collect();
    if let Some(retired) = store.load_retired_keys()? {
        for f in retired.fingerprints() {
            lines.push(KeyLine {
                fingerprint: f,
                algorithm: String::new(),
                created: String::new(),
                status: "retired",
            });
        }
    }
    for l in &lines {
        out.line(
            format!(
                "{} {} {} {}",
                l.fingerprint, l.status, l.algorithm, l.created
            )
            .trim_end(),
        )?;
    }
    out.json(&lines)?;
    Ok(ExitCode::SUCCESS)
}
