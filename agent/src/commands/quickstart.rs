//! `halo quickstart`: the whole pipeline on an embedded default, with
//! nothing to set up: a store in a local directory, the example source
//! package `examples/halo-hello` (embedded in the binary) built with
//! `halo build --path` and a data package built by `dpkg-deb`, snapshots,
//! promotion through the three channels, an export per channel, and the
//! sources.list line to use. Where the build tools are missing (a machine
//! without build-essential and debhelper) the program package is made with
//! `dpkg-deb` instead, and the output says so.

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

/// A package made with `dpkg-deb`: name, version, architecture, Depends.
struct Example {
    name: &'static str,
    version: &'static str,
    arch: &'static str,
    depends: Option<&'static str>,
}

const GREETING: Example = Example {
    name: "halo-greeting",
    version: "1.0-1",
    arch: "all",
    depends: None,
};

/// `examples/halo-hello`, the example source package: (path, content, mode).
const HELLO_SOURCE: [(&str, &str, u32); 10] = [
    (
        "Makefile",
        include_str!("../../../examples/halo-hello/Makefile"),
        0o644,
    ),
    (
        "src/greet.h",
        include_str!("../../../examples/halo-hello/src/greet.h"),
        0o644,
    ),
    (
        "src/greet.c",
        include_str!("../../../examples/halo-hello/src/greet.c"),
        0o644,
    ),
    (
        "src/main.c",
        include_str!("../../../examples/halo-hello/src/main.c"),
        0o644,
    ),
    (
        "src/test_greet.c",
        include_str!("../../../examples/halo-hello/src/test_greet.c"),
        0o644,
    ),
    (
        "debian/changelog",
        include_str!("../../../examples/halo-hello/debian/changelog"),
        0o644,
    ),
    (
        "debian/control",
        include_str!("../../../examples/halo-hello/debian/control"),
        0o644,
    ),
    (
        "debian/copyright",
        include_str!("../../../examples/halo-hello/debian/copyright"),
        0o644,
    ),
    (
        "debian/rules",
        include_str!("../../../examples/halo-hello/debian/rules"),
        0o755,
    ),
    (
        "debian/source/format",
        include_str!("../../../examples/halo-hello/debian/source/format"),
        0o644,
    ),
];

/// The changelog entry of the quickstart's second build.
const HELLO_1_1: &str = "halo-hello (1.1) trusty; urgency=medium\n\n  * A new build, waiting for acceptance in trusty-unstable.\n\n -- rustedhalo <halo@example.org>  Sat, 05 Dec 2026 13:00:00 +0000\n\n";

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
    let greeting = build_deb(&build, &GREETING)?;
    import_debs(&store, &[greeting])?;
    let tree = write_example(&dir)?;
    let how = match source_build_tools() {
        Ok(()) => "built from source with `halo build --path`",
        Err(missing) => {
            out.line(format!(
                "note        {missing}: halo-hello is made with dpkg-deb instead of built from source"
            ))?;
            "made with dpkg-deb"
        }
    };
    let (v1, first) = hello(&store, &tree, &build, Some("trusty-unstable"))?;
    out.line(format!("halo-hello  {v1}, {how}"))?;
    out.line(format!("snapshot    {first} -> trusty-unstable"))?;
    accept(&store)?;
    out.line(format!(
        "accept      {first} frozen in trusty-testing, halo-hello ran and greeted: -> trusty"
    ))?;

    let changelog = tree.join("debian/changelog");
    let old = fs::read_to_string(&changelog)?;
    fs::write(&changelog, format!("{HELLO_1_1}{old}"))?;
    let (v2, second) = hello(&store, &tree, &build, Some("trusty-unstable"))?;
    out.line(format!(
        "snapshot    {second} -> trusty-unstable (halo-hello {v2} waits for acceptance)"
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
    if e.name == "halo-hello" {
        // The stand-in for the C program, for machines without a compiler.
        use std::os::unix::fs::PermissionsExt;
        let bin = root.join("usr/bin/halo-hello");
        fs::create_dir_all(root.join("usr/bin"))?;
        fs::write(&bin, "#!/bin/sh\necho \"Hello, ${1:-world}!\"\n")?;
        fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755))?;
    }
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

fn import_debs(store: &Store, debs: &[PathBuf]) -> Result<()> {
    let target = Target {
        archive: ARCHIVE,
        dist: DIST,
        component: "main",
    };
    import(store, &target, debs, &mut |_| {})?;
    Ok(())
}

/// The quickstart's acceptance test: unpack halo-hello from the frozen
/// snapshot's APT tree (`HALO_REPO`) and run it.
const HELLO_TEST: &str =
    "root=$(mktemp -d) && deb=$(find . -name 'halo-hello_*.deb' | head -n1) && \
dpkg-deb -x \"$deb\" \"$root\" && \"$root/usr/bin/halo-hello\" quickstart | tee /dev/stderr | \
grep -qx 'Hello, quickstart!'; rc=$?; rm -rf \"$root\"; exit $rc";

/// `halo accept`: trusty-unstable frozen into trusty-testing, tested, and
/// (passed) promoted to trusty, the gated stable channel.
fn accept(store: &Store) -> Result<()> {
    let args = crate::cli::AcceptArgs {
        from: None,
        testing: None,
        stable: None,
        snapshot: None,
        test: crate::cli::TestArgs {
            tests: vec![format!("halo-hello-runs={HELLO_TEST}")],
            junit: None,
            timeout_minutes: Some(5.0),
            systems: false,
            system: Vec::new(),
            keep: false,
        },
        force: false,
        reason: None,
        lease_minutes: None,
        status: false,
    };
    let code = super::accept::accept(store, None, &args, &Output::quiet())?;
    if code != ExitCode::SUCCESS {
        return Err(anyhow::anyhow!(
            "the quickstart's acceptance test failed (its output is above)"
        ));
    }
    Ok(())
}

/// Writes the embedded example source tree to `DIR/src/halo-hello`.
fn write_example(dir: &Path) -> Result<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let tree = dir.join("src/halo-hello");
    for (path, content, mode) in HELLO_SOURCE {
        let file = tree.join(path);
        if let Some(parent) = file.parent() {
            fs::create_dir_all(parent)?;
        }
        fs::write(&file, content)?;
        fs::set_permissions(&file, std::fs::Permissions::from_mode(mode))?;
    }
    Ok(tree)
}

/// Whether this machine can build the example from source: the build
/// tools, and a sandbox to build in (docs/operations.md, "Sandboxes"),
/// which a fresh machine has not set up.
fn source_build_tools() -> Result<(), String> {
    for (tool, package) in [
        ("dpkg-buildpackage", "dpkg-dev"),
        ("dh", "debhelper"),
        ("cc", "build-essential"),
        ("make", "make"),
        ("newuidmap", "uidmap"),
    ] {
        let found = std::env::var_os("PATH")
            .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()));
        if !found {
            return Err(format!("{tool} is missing (apt-get install {package})"));
        }
    }
    if crate::sandbox::subids::load().is_err() {
        return Err(
            "no subordinate ids for the build sandbox (`usermod --add-subuids 100000-165535 --add-subgids 100000-165535 root`)"
                .into(),
        );
    }
    Ok(())
}

/// halo-hello at the tree's changelog version: built from source where the
/// tools are there, else a dpkg-deb stand-in. Returns (version, snapshot).
fn hello(
    store: &Store,
    tree: &Path,
    build: &Path,
    channel: Option<&str>,
) -> Result<(String, String)> {
    if source_build_tools().is_ok() {
        return super::build::build_path(store, tree, channel);
    }
    let text = fs::read_to_string(tree.join("debian/changelog"))?;
    let version = if text.starts_with("halo-hello (1.1)") {
        "1.1"
    } else {
        "1.0"
    };
    let example = Example {
        name: "halo-hello",
        version,
        arch: "all",
        depends: None,
    };
    import_debs(store, &[build_deb(build, &example)?])?;
    let id = store.create_snapshot(jiff::Timestamp::now())?.id;
    if let Some(c) = channel {
        promote(store, c, &id, "quickstart: new build")?;
    }
    Ok((version.to_string(), id))
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
        lease: None,
        force: false,
    })?;
    Ok(())
}
