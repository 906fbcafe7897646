//! Benchmark helper (not a test): times what a mirror update does with a
//! real index between fetching it and downloading pool files: parse it,
//! plan the component state, plan the fetch against a pool. E.g. Debian's
//! bookworm main amd64 list that `apt-get update` leaves LZ4-framed in
//! /var/lib/apt/lists.
//!
//! ```text
//! cargo run --release -p agent --example parse_packages -- PACKAGES[.lz4] [INRELEASE KEYRING PATH]
//! ```
//! With INRELEASE, KEYRING and the index's PATH in the Release
//! (`main/binary-amd64/Packages`), the InRelease signature is verified and
//! the decoded index's SHA256 checked against it first.
//!
//! - `REPEAT=n` (default 5): rounds of parse + plan in this process; each
//!   phase is reported as the first round (what one `halo mirror update`
//!   pays, thread pool start included), the median and the best.
//! - `PLAN_POOL=DIR`: plan the fetch against the pool in DIR (default: a
//!   new empty pool, a first mirror: every file is to fetch);
//!   `PLAN_POOL_FILL=1` first puts every blob of the index in it as a
//!   sparse file of the listed size (an update of a mirror that holds
//!   everything: one `stat` per file, nothing to fetch).
//!
//! Runs on mimalloc, as `halo` does. Prints one JSON line.

#![allow(clippy::print_stdout)]

use std::io::Read;
use std::time::{Instant, SystemTime};

use agent::mirror::plan::{plan_component, plan_fetch, ComponentInput, Parsed};
use anyhow::{bail, Context, Result};
use repofs::index::read::packages::parse_packages;
use repofs::index::read::release::parse_release;
use repofs::store::Pool;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Seconds of each phase in one round: wall clock, and the CPU time of
/// the process (every thread, user + system), which a machine shared with
/// other work disturbs less.
struct Round {
    parse: f64,
    plan_component: f64,
    plan_fetch: f64,
    parse_cpu: f64,
    plan_cpu: f64,
}

/// CPU seconds (user + system) this process has used.
fn cpu_s() -> f64 {
    use nix::sys::resource::{getrusage, UsageWho};
    getrusage(UsageWho::RUSAGE_SELF).map_or(f64::NAN, |u| {
        let s = |t: nix::sys::time::TimeVal| t.tv_sec() as f64 + t.tv_usec() as f64 / 1e6;
        s(u.user_time()) + s(u.system_time())
    })
}

impl Round {
    fn plan(&self) -> f64 {
        self.plan_component + self.plan_fetch
    }

    fn total(&self) -> f64 {
        self.parse + self.plan()
    }
}

fn round(text: &str, url: &str, pool: &Pool) -> Result<(Round, usize, usize, usize)> {
    let (t, c) = (Instant::now(), cpu_s());
    let records = parse_packages(text)?;
    let parse = t.elapsed().as_secs_f64();
    let (parse_cpu, c) = (cpu_s() - c, cpu_s());
    let stanzas = records.len();
    let t = Instant::now();
    let input = ComponentInput {
        packages: vec![Parsed {
            url: url.to_string(),
            records,
        }],
        sources: vec![],
    };
    let state = plan_component(&input, None)?;
    let plan_component_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    // As `halo mirror update` asks.
    let presence = pool.open_dir();
    let probe = presence.as_ref().map(|p| p.probe());
    let wanted = plan_fetch([&state], |h, s| match &probe {
        Some(p) => p.has(h, s),
        None => pool.has(h, s),
    })?;
    let plan_fetch_s = t.elapsed().as_secs_f64();
    let r = Round {
        parse,
        plan_component: plan_component_s,
        plan_fetch: plan_fetch_s,
        parse_cpu,
        plan_cpu: cpu_s() - c,
    };
    Ok((r, stanzas, state.binaries.len(), wanted.len()))
}

/// (first, median, best) of `f` over the rounds.
fn stats(rounds: &[Round], f: impl Fn(&Round) -> f64) -> serde_json::Value {
    let mut v: Vec<f64> = rounds.iter().map(&f).collect();
    let first = v[0];
    v.sort_by(f64::total_cmp);
    serde_json::json!({"first": first, "median": v[v.len() / 2], "best": v[0]})
}

/// Every blob of `text` as a sparse file of its size in `pool`.
fn fill(pool: &Pool, text: &str) -> Result<()> {
    for r in parse_packages(text)? {
        let path = pool.path(&r.sha256.to_ascii_lowercase());
        if let Some(dir) = path.parent() {
            fs_err::create_dir_all(dir)?;
        }
        fs_err::File::create(&path)?.set_len(r.size)?;
    }
    Ok(())
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(file) = args.first() else {
        bail!("usage: parse_packages PACKAGES[.lz4] [INRELEASE KEYRING PATH]");
    };
    let repeat: usize = match std::env::var("REPEAT") {
        Ok(v) => v.parse().context("REPEAT")?,
        Err(_) => 5,
    };
    if repeat == 0 {
        bail!("REPEAT must be at least 1");
    }
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
    let scratch = tempfile::tempdir()?;
    let pool_dir = match std::env::var_os("PLAN_POOL") {
        Some(d) => d.into(),
        None => scratch.path().join("pool"),
    };
    fs_err::create_dir_all(&pool_dir)?;
    let pool = Pool::new(pool_dir.clone(), scratch.path().join("tmp"));
    if std::env::var_os("PLAN_POOL_FILL").is_some_and(|v| v == "1") {
        fill(&pool, text)?;
    }
    let mut rounds = Vec::new();
    let (mut stanzas, mut entries, mut to_fetch) = (0, 0, 0);
    for _ in 0..repeat {
        let (r, s, e, w) = round(text, file, &pool)?;
        (stanzas, entries, to_fetch) = (s, e, w);
        rounds.push(r);
    }
    let parse_median = stats(&rounds, |r| r.parse)["median"]
        .as_f64()
        .unwrap_or(f64::NAN);
    println!(
        "{}",
        serde_json::json!({
            "bytes": data.len(),
            "stanzas": stanzas,
            "entries": entries,
            "to_fetch": to_fetch,
            "pool": pool_dir,
            "rounds": repeat,
            "threads": rayon::current_num_threads(),
            "decode_lz4_s": decode_s,
            "parse_s": stats(&rounds, |r| r.parse),
            "parse_mb_per_s": data.len() as f64 / parse_median / 1e6,
            "plan_component_s": stats(&rounds, |r| r.plan_component),
            "plan_fetch_s": stats(&rounds, |r| r.plan_fetch),
            "plan_s": stats(&rounds, Round::plan),
            "parse_plan_s": stats(&rounds, Round::total),
            "parse_cpu_s": stats(&rounds, |r| r.parse_cpu),
            "plan_cpu_s": stats(&rounds, |r| r.plan_cpu),
            "parse_plan_cpu_s": stats(&rounds, |r| r.parse_cpu + r.plan_cpu),
            "sha256_matches_inrelease": sha256_ok,
        })
    );
    Ok(())
}
