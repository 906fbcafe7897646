//! `halo quickstart`: the whole pipeline on an embedded default, with
//! nothing to set up: a store in a local directory, example packages built
//! by `dpkg-deb`, import, snapshots, promotion through the three channels,
//! an export per channel, and the sources.list line to use.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use fs_err as fs;
use repofs::model::channel::MoveRequest;
use repofs::model::Action;
use repofs::sign::SigningKey;
use repofs::store::import::{import, Target};
use repofs::store::{StoreMeta, FORMAT};
use repofs::Store;

use super::UserError;
use crate::cli::QuickstartArgs;
use crate::output::Output;
use crate::process;

const ARCHIVE: &str = "rustedhalo";
const DIST: &str = "trusty";
const MARKER: &str = ".halo-quickstart";

/// An example package: name, version, architecture, Depends.
struct Example {
    name: &'static str,
    version: &'static str,
    arch: &'static str,
    depends: Option<&'static str>,
}

const FIRST: [Example; 2] = [
    Example {
        name: "halo-greeting",
        version: "1.0-1",
        arch: "all",
        depends: None,
    },
    Example {
        name: "halo-hello",
        version: "1.0-1",
        arch: "all",
        depends: Some("halo-greeting (>= 1.0)"),
    },
];

const SECOND: Example = Example {
    name: "halo-hello",
    version: "1.1-1",
    arch: "all",
    depends: Some("halo-greeting (>= 1.0)"),
};

pub fn run(args: &QuickstartArgs, out: &Output) -> Result<ExitCode> {
    let dir = prepare_dir(&args.dir)?;
    let store_dir = dir.join("store");
    let key = SigningKey::generate("rustedhalo quickstart signing key")?;
    let meta = StoreMeta {
        format: FORMAT,
        origin: "rustedhalo".into(),
        label: "rustedhalo".into(),
        architectures: vec!["amd64".into()],
        created: jiff::Timestamp::now().to_string(),
    };
    let store = Store::init(&store_dir, meta, &key)?;
    out.line(format!("store       {}", store_dir.display()))?;

    let build = dir.join("build");
    let debs: Vec<PathBuf> = FIRST
        .iter()
        .map(|e| build_deb(&build, e))
        .collect::<Result<_>>()?;
    let first = import_and_snapshot(&store, &debs)?;
    for channel in ["trusty-unstable", "trusty-testing", "trusty"] {
        promote(&store, channel, &first, "quickstart: first release")?;
    }
    out.line(format!(
        "snapshot    {first} -> trusty-unstable, trusty-testing, trusty"
    ))?;

    let newer = build_deb(&build, &SECOND)?;
    let second = import_and_snapshot(&store, &[newer])?;
    promote(&store, "trusty-unstable", &second, "quickstart: new build")?;
    out.line(format!(
        "snapshot    {second} -> trusty-unstable (halo-hello 1.1-1 waits for acceptance)"
    ))?;

    let keyring = store.keys_dir().join("repo.gpg");
    for channel in ["trusty-unstable", "trusty-testing", "trusty"] {
        let target = dir.join("export").join(channel);
        store.export(&store.channel_target(channel)?, &target)?;
        out.line(format!(
            "{channel:<15} deb [signed-by={}] file:{}/{ARCHIVE} {DIST} main",
            keyring.display(),
            target.display()
        ))?;
    }
    out.json(&serde_json::json!({
        "store": store_dir,
        "snapshots": [first, second],
        "sources_list": format!(
            "deb [signed-by={}] file:{}/{ARCHIVE} {DIST} main",
            keyring.display(),
            dir.join("export").join("trusty").display()
        ),
    }))?;
    out.line("")?;
    out.line("Put the trusty line into /etc/apt/sources.list.d/rustedhalo.list, then: apt-get update && apt-get install halo-hello")?;
    out.line(format!(
        "Or serve every snapshot and channel without exporting (root, /dev/fuse): \
         repofs {} /mnt/halo -o allow_other, then \
         deb [signed-by={}] file:/mnt/halo/channels/trusty/{ARCHIVE} {DIST} main",
        store_dir.display(),
        keyring.display()
    ))?;
    Ok(ExitCode::SUCCESS)
}

/// A fresh directory: new, empty, or a previous quickstart's (replaced).
fn prepare_dir(dir: &Path) -> Result<PathBuf> {
    if dir.exists() {
        let empty = fs::read_dir(dir)?.next().is_none();
        if !empty && !dir.join(MARKER).exists() {
            return Err(UserError(format!(
                "{} exists and is not a quickstart directory: pass --dir with a new path",
                dir.display()
            ))
            .into());
        }
        fs::remove_dir_all(dir)?;
    }
    fs::create_dir_all(dir)?;
    fs::write(
        dir.join(MARKER),
        "made by halo quickstart; safe to delete\n",
    )?;
    Ok(fs::canonicalize(dir)?)
}

fn build_deb(build: &Path, e: &Example) -> Result<PathBuf> {
    let root = build.join(format!("{}_{}", e.name, e.version));
    let doc = root.join("usr/share/doc").join(e.name);
    fs::create_dir_all(root.join("DEBIAN"))?;
    fs::create_dir_all(&doc)?;
    let mut control = format!(
        "Package: {}\nVersion: {}\nArchitecture: {}\nMaintainer: rustedhalo <halo@example.org>\nSection: misc\nPriority: optional\n",
        e.name, e.version, e.arch
    );
    if let Some(d) = e.depends {
        control.push_str(&format!("Depends: {d}\n"));
    }
    control.push_str(&format!(
        "Description: rustedhalo example package\n Built by halo quickstart to show the pipeline ({}).\n",
        e.version
    ));
    fs::write(root.join("DEBIAN/control"), control)?;
    fs::write(doc.join("README"), format!("{} {}\n", e.name, e.version))?;
    let deb = build.join(format!("{}_{}_{}.deb", e.name, e.version, e.arch));
    process::run(
        "dpkg-deb",
        [
            "--root-owner-group".as_ref(),
            "--build".as_ref(),
            root.as_os_str(),
            deb.as_os_str(),
        ],
    )
    .context("building example packages (apt-get install dpkg)")?;
    Ok(deb)
}

fn import_and_snapshot(store: &Store, debs: &[PathBuf]) -> Result<String> {
    let target = Target {
        archive: ARCHIVE,
        dist: DIST,
        component: "main",
    };
    import(store, &target, debs, &mut |_| {})?;
    Ok(store.create_snapshot(jiff::Timestamp::now())?.id)
}

fn promote(store: &Store, channel: &str, id: &str, reason: &str) -> Result<()> {
    let who = super::whoami();
    let when = jiff::Timestamp::now().to_string();
    store.move_channel(&MoveRequest {
        channel,
        target: id,
        expect: None,
        action: Action::Promote,
        who: &who,
        when: &when,
        reason: Some(reason),
    })?;
    Ok(())
}
