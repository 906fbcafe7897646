//! Benchmark helper (not a test): times the mirror's Packages parser and
//! planner on a real index, e.g. Debian's bookworm main amd64 list that
//! `apt-get update` leaves LZ4-framed in /var/lib/apt/lists.
//!
//! ```text
//! cargo run --release -p agent --example parse_packages -- PACKAGES[.lz4] [INRELEASE KEYRING PATH]
//! ```
//! With INRELEASE, KEYRING and the index's PATH in the Release
//! (`main/binary-amd64/Packages`), the InRelease signature is verified and
//! the decoded index's SHA256 checked against it first. Prints one JSON line.

#![allow(clippy::print_stdout)]

use std::io::Read;
use std::time::{Instant, SystemTime};

use agent::mirror::plan::{plan_component, ComponentInput, Parsed};
use anyhow::{bail, Context, Result};
use repofs::index::read::packages::parse_packages;
use repofs::index::read::release::parse_release;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(file) = args.first() else {
        bail!("usage: parse_packages PACKAGES[.lz4] [INRELEASE KEYRING PATH]");
    };
    let raw = fs_err::read(file)?;
    let t = Instant::now();
    let data = if file.ends_with(".lz4") {
        let mut out = Vec::new();
        lz4_flex::frame::FrameDecoder::new(&raw[..]).read_to_end(&mut out)?;
        out
    } else {
        raw
    };
    let decode_s = t.elapsed().as_secs_f64();
    let mut sha256_ok = None;
    if let [_, inrelease, keyring, path] = &args[..] {
        let keys = repofs::sign::Keyring::from_bytes(&fs_err::read(keyring)?)?;
        let v = keys
            .verify_cleartext(&fs_err::read(inrelease)?, SystemTime::now())
            .context("InRelease")?;
        let release = parse_release(std::str::from_utf8(&v.text)?)?;
        let listed = release
            .sha256
            .get(path)
            .context("path not in the Release")?;
        sha256_ok = Some(
            listed.hash == repofs::hash::sha256_hex(&data) && listed.size == data.len() as u64,
        );
    }
    let text = std::str::from_utf8(&data)?;
    let t = Instant::now();
    let records = parse_packages(text)?;
    let parse_s = t.elapsed().as_secs_f64();
    let stanzas = records.len();
    let t = Instant::now();
    let input = ComponentInput {
        packages: vec![Parsed {
            url: file.clone(),
            records,
        }],
        sources: vec![],
    };
    let state = plan_component(&input, None)?;
    let plan_s = t.elapsed().as_secs_f64();
    println!(
        "{}",
        serde_json::json!({
            "bytes": data.len(),
            "stanzas": stanzas,
            "entries": state.binaries.len(),
            "decode_lz4_s": decode_s,
            "parse_s": parse_s,
            "parse_mb_per_s": data.len() as f64 / parse_s / 1e6,
            "plan_component_s": plan_s,
            "sha256_matches_inrelease": sha256_ok,
        })
    );
    Ok(())
}
