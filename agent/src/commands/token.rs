//! `halo token add|list|remove`: the server's API tokens, changed under
//! the store's lock. A new token leaves halo exactly once: into the file
//! the operator named, or on stdout when none was named.

use fs_err::os::unix::fs::OpenOptionsExt;
use std::io::Write;
use std::process::ExitCode;

use anyhow::{Context, Result};

use crate::cli::TokenCommand;
use crate::commands::UserError;
use crate::output::Output;
use crate::serve::api::tokens::change;
use crate::serve::tokens::{Role, TokenError, TokenFile};

pub fn run(store: &repofs::Store, cmd: &TokenCommand, out: &Output) -> Result<ExitCode> {
    match cmd {
        TokenCommand::Add(args) => {
            let role = Role::parse(&args.role)
                .ok_or_else(|| UserError(format!("unknown role {}", args.role)))?;
            // The file first, new and private: a token must not end up in
            // a file others could read, nor be made and then lost.
            let mut file = match &args.output {
                Some(path) => Some(
                    fs_err::OpenOptions::new()
                        .write(true)
                        .create_new(true)
                        .mode(0o600)
                        .open(path)
                        .map_err(|e| UserError(format!("--output: {e}")))?,
                ),
                None => None,
            };
            let now = jiff::Timestamp::now().to_string();
            let added = change(store, |f| f.add(&args.name, role, &now));
            let token = match added {
                Ok(t) => t,
                Err(e) => {
                    if let Some(path) = &args.output {
                        let _ = fs_err::remove_file(path);
                    }
                    return Err(user_or(e));
                }
            };
            match (&mut file, &args.output) {
                (Some(f), Some(path)) => {
                    f.write_all(format!("{token}\n").as_bytes())
                        .and_then(|()| f.sync_all())
                        .with_context(|| format!("writing the token to {}", path.display()))?;
                    out.line(format!(
                        "token {} (role {role}) written to {}",
                        args.name,
                        path.display()
                    ))?;
                    out.json(&serde_json::json!({
                        "name": args.name, "role": role, "output": path,
                    }))?;
                }
                _ => out.secret(&token)?,
            }
            Ok(ExitCode::SUCCESS)
        }
        TokenCommand::List => {
            let file = TokenFile::load(&crate::serve::tokens::path(store.root()))?;
            if out.json {
                let list: Vec<_> = file
                    .tokens
                    .iter()
                    .map(|t| serde_json::json!({"name": t.name, "role": t.role, "created": t.created}))
                    .collect();
                out.json(&list)?;
            } else {
                for t in &file.tokens {
                    out.line(format!("{}\t{}\t{}", t.name, t.role, t.created))?;
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        TokenCommand::Remove { name } => {
            change(store, |f| f.remove(name)).map_err(user_or)?;
            out.line(format!("token {name} removed"))?;
            out.json(&serde_json::json!({ "removed": name }))?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// A bad name or an unknown token is the user's mistake (exit 1).
fn user_or(e: anyhow::Error) -> anyhow::Error {
    match e.downcast_ref::<TokenError>() {
        Some(TokenError::Exists(_) | TokenError::Unknown(_) | TokenError::BadName(_)) => {
            UserError(e.to_string()).into()
        }
        _ => e,
    }
}
