//! `halo init`: a new store with its signing key and default channels.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;
use repofs::sign::SigningKey;
use repofs::store::{StoreMeta, FORMAT};

use crate::cli::InitArgs;
use crate::output::Output;

pub fn run(dir: &Path, args: &InitArgs, out: &Output) -> Result<ExitCode> {
    let key = match &args.key {
        // A key the user names that cannot be read or used is their mistake.
        Some(path) => {
            let data = fs_err::read(path).map_err(|e| super::UserError(format!("--key: {e}")))?;
            SigningKey::from_bytes(&data).map_err(|e| {
                super::UserError(format!(
                    "--key {}: not a usable OpenPGP secret key: {e}",
                    path.display()
                ))
            })?
        }
        None => SigningKey::generate_with(
            &format!("{} repository signing key", args.origin),
            args.key_algorithm.into(),
        )?,
    };
    let meta = StoreMeta {
        format: FORMAT,
        origin: args.origin.clone(),
        label: args.origin.clone(),
        architectures: args.architectures.clone(),
        created: jiff::Timestamp::now().to_string(),
    };
    let store = repofs::Store::init(dir, meta, &key)?;
    let public = store.keys_dir().join("repo.gpg");
    out.line(format!("initialised store {}", dir.display()))?;
    out.line(format!(
        "signing key {} {} (public key: {})",
        key.algorithm(),
        key.fingerprint(),
        public.display()
    ))?;
    out.json(&serde_json::json!({
        "store": dir,
        "fingerprint": key.fingerprint(),
        "algorithm": key.algorithm(),
        "public_key": public,
        "channels": repofs::store::DEFAULT_CHANNELS,
    }))?;
    Ok(ExitCode::SUCCESS)
}
