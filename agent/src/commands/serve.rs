//! `halo serve`: resolve the arguments, start the server, say where it
//! listens (one line a script can wait for).

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;

use crate::cli::ServeArgs;
use crate::commands::UserError;
use crate::config::Config;
use crate::output::Output;
use crate::serve::{AppState, ServeConfig};

pub fn run(
    store: repofs::Store,
    config: Option<&Path>,
    args: &ServeArgs,
    out: &Output,
) -> Result<ExitCode> {
    // As `halo status`: the file when there is one, defaults otherwise.
    let path = config.map_or_else(|| store.root().join("halo.toml"), Path::to_path_buf);
    let cfg = if config.is_none() && !path.exists() {
        Config::default()
    } else {
        super::load_config(&store, config)?.0
    };
    // A bad address is the user's mistake (exit 1), said before anything starts.
    let resolves = std::net::ToSocketAddrs::to_socket_addrs(args.listen.as_str())
        .map(|mut a| a.next().is_some())
        .unwrap_or(false);
    if !resolves {
        return Err(UserError(format!(
            "--listen {:?}: not an address to listen on (HOST:PORT, e.g. 127.0.0.1:8080)",
            args.listen
        ))
        .into());
    }
    let tls = args.tls_cert.clone().zip(args.tls_key.clone());
    let scheme = if tls.is_some() { "https" } else { "http" };
    let config = ServeConfig {
        listen: args.listen.clone(),
        tls,
    };
    // Snapshots made through the API carry the configured `Snapshots:` base.
    let store = super::publishing(&store, Some(&cfg));
    let state = AppState::new(store, cfg);
    let json = out.json;
    crate::serve::run(state, &config, |addr| {
        let url = format!("{scheme}://{addr}/");
        // The line a supervisor or a test waits for.
        if json {
            let _ = out.json_line(&serde_json::json!({ "listening": url }));
        } else {
            let _ = out.line(format!("serving on {url}"));
        }
    })?;
    Ok(ExitCode::SUCCESS)
}
