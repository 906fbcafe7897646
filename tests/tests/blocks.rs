//! Block-cached compression of large indices (`repofs::index::blocks`),
//! judged by the real tools: a `Packages` above the block threshold is
//! served as one gzip member and one xz stream that `gzip -t`, `xz -t`,
//! `zcat`, `xzcat` and apt read back to exactly the plain index, after
//! snapshots that change, add and remove packages (blocks copied from the
//! previous snapshot and blocks compressed anew), the same bytes a
//! compression from scratch gives; a block map that is torn, altered or
//! missing only costs a whole compression, never a wrong index; gc removes
//! the maps of indices it removed.
//!
//! One store for the whole story: building packages is the expensive part
//! (packages with long descriptions, so ~150 of them make an index above
//! the 1 MiB threshold).

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use fs_err as fs;
use halo_tests::{need_tool, ok, run, Apt, Deb, TestStore};
use repofs::index::blocks;

const PACKAGES: usize = 150;

/// A package whose stanza is about 8 KiB (a long, varied description).
fn deb(t: &TestStore, i: usize, version: &str) -> PathBuf {
    let dir = t.path(&format!("in/{version}"));
    let mut long = String::new();
    for line in 0..100 {
        long.push_str(&format!(
            " line {line} of package bk-{i:03} at {version}: {}\n",
            "lorem ipsum dolor sit amet ".repeat(1 + (i * 7 + line) % 3)
        ));
    }
    Deb::new(&format!("bk-{i:03}"), version)
        .fields(&format!(
            "Homepage: https://example.org/bk-{i:03}\nX-Notes: notes\n{long}"
        ))
        .build(&dir)
}

/// The snapshot's files: path -> sha256.
fn files(t: &TestStore, id: &str) -> Vec<(String, String)> {
    let m: serde_json::Value = serde_json::from_str(
        &fs::read_to_string(t.store().join(format!("snapshots/{id}.json"))).unwrap(),
    )
    .unwrap();
    m["archives"]["rustedhalo"]["dists"]["trusty"]["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["path"].as_str().unwrap().to_string(),
                f["sha256"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn blob(t: &TestStore, id: &str, path: &str) -> (String, PathBuf) {
    let sha = files(t, id)
        .into_iter()
        .find(|(p, _)| p == path)
        .unwrap_or_else(|| panic!("{path} not in snapshot {id}"))
        .1;
    let file = t.store().join("pool").join(&sha[..2]).join(&sha);
    (sha, file)
}

/// `tool ARGS file` succeeds; its stdout.
fn tool(name: &str, args: &[&str], file: &Path) -> Vec<u8> {
    let out = run(Command::new(name).args(args).arg(file));
    assert!(
        out.status.success(),
        "{name} {args:?} {}: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Checks the snapshot's `Packages.gz`/`.xz` with the real tools and
/// against a compression from scratch; returns the plain index.
fn check_indices(t: &TestStore, id: &str) -> Vec<u8> {
    let base = "main/binary-amd64/Packages";
    let (plain_sha, plain_file) = blob(t, id, base);
    let plain = fs::read(&plain_file).unwrap();
    assert!(
        plain.len() >= blocks::BLOCKS_FROM,
        "the index ({} B) must be large enough to be compressed in blocks",
        plain.len()
    );
    let (_, gz) = blob(t, id, &format!("{base}.gz"));
    let (_, xz) = blob(t, id, &format!("{base}.xz"));
    // gzip -t / xz -t read the member and stream whole (CRC, sizes, index).
    tool("gzip", &["-t"], &gz);
    tool("xz", &["-t"], &xz);
    assert!(
        tool("zcat", &[], &gz) == plain,
        "zcat of {id}'s Packages.gz"
    );
    assert!(
        tool("xzcat", &[], &xz) == plain,
        "xzcat of {id}'s Packages.xz"
    );
    // One stream of many blocks (apt reads only a first stream).
    let list = String::from_utf8(tool("xz", &["--robot", "--list"], &xz)).unwrap();
    let totals = list.lines().find(|l| l.starts_with("totals")).unwrap();
    let cols: Vec<&str> = totals.split('\t').collect();
    assert_eq!(cols[1], "1", "streams: {list}");
    assert!(cols[2].parse::<u32>().unwrap() > 3, "blocks: {list}");
    // Copied or compressed, the bytes are those of a compression from scratch.
    let fresh = blocks::compress(
        &plain,
        blocks::Records::Stanzas,
        blocks::Forms { gz: true, xz: true },
        None,
    )
    .unwrap();
    assert!(
        fresh.gz.unwrap() == fs::read(&gz).unwrap(),
        "{id}: gz differs"
    );
    assert!(
        fresh.xz.unwrap() == fs::read(&xz).unwrap(),
        "{id}: xz differs"
    );
    assert!(
        t.store()
            .join("blocks")
            .join(&plain_sha[..2])
            .join(&plain_sha)
            .exists(),
        "{id}: no block map kept"
    );
    plain
}

/// `halo -vv snapshot create`: the id and how many blocks were copied and
/// compressed (from the debug log's `indices rendered` line).
fn snapshot_counting(t: &TestStore) -> (String, u64, u64) {
    let out = run(t
        .halo()
        .env("RUST_LOG", "repofs=debug")
        .args(["snapshot", "create"]));
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}");
    let id = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .last()
        .unwrap()
        .to_string();
    let line = stderr
        .lines()
        .find(|l| l.contains("indices rendered") && l.contains("blocks_reused"))
        .unwrap_or_else(|| panic!("no block counts logged:\n{stderr}"));
    let field = |name: &str| -> u64 {
        let at = line.find(&format!("{name}=")).unwrap() + name.len() + 1;
        line[at..]
            .split(|c: char| !c.is_ascii_digit())
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    (id, field("blocks_reused"), field("blocks_compressed"))
}

fn maps(t: &TestStore) -> Vec<PathBuf> {
    halo_tests::files_under(&t.store().join("blocks"))
}

fn next_second() {
    std::thread::sleep(std::time::Duration::from_millis(1100));
}

#[test]
fn block_compressed_indices_are_exact_after_every_kind_of_change() {
    need_tool("gzip", "gzip");
    need_tool("xz", "xz-utils");
    let t = TestStore::new();
    let first: Vec<PathBuf> = (0..PACKAGES).map(|i| deb(&t, i, "1.0")).collect();
    t.import("trusty", &first);
    let (s1, reused, compressed) = snapshot_counting(&t);
    assert_eq!(reused, 0, "nothing to copy from in the first snapshot");
    assert!(compressed > 3);
    check_indices(&t, &s1);

    // Changed (new versions near the start), added (new names in the
    // middle and at the end): most blocks are copied.
    let changed: Vec<PathBuf> = (0..3)
        .map(|i| deb(&t, i, "1.1"))
        .chain([deb(&t, 500, "1.0"), deb(&t, 75, "2.0")])
        .collect();
    t.import("trusty", &changed);
    next_second();
    let (s2, reused, compressed) = snapshot_counting(&t);
    assert!(
        reused > compressed,
        "{reused} copied, {compressed} compressed"
    );
    assert!(compressed >= 1);
    check_indices(&t, &s2);

    // Removed: old versions go (the pool keeps them until gc).
    t.ok(&[
        "remove",
        "--archive",
        "rustedhalo",
        "--dist",
        "trusty",
        "--component",
        "main",
        "bk-100",
        "bk-101",
    ]);
    next_second();
    let (s3, reused, _) = snapshot_counting(&t);
    assert!(reused > 0);
    let plain = check_indices(&t, &s3);
    assert!(!String::from_utf8_lossy(&plain).contains("Package: bk-100\n"));

    // apt reads the block-compressed index (Packages.xz, its first choice)
    // from an export to the same packages.
    t.ok(&["promote", "--to", "trusty", "--snapshot", &s3]);
    let export = t.export_channel("trusty");
    let apt = Apt::new(
        &t.root().join("apt"),
        &t.sources(&format!("file:{}", export.join("rustedhalo").display())),
    );
    apt.update();
    assert_eq!(apt.candidate("bk-001").as_deref(), Some("1.1"));
    assert_eq!(apt.candidate("bk-500").as_deref(), Some("1.0"));
    assert_eq!(apt.candidate("bk-100"), None);
    assert_eq!(apt.candidate("bk-149").as_deref(), Some("1.0"));

    // A torn map: the next index is compressed whole, and right.
    let (plain_sha, _) = blob(&t, &s3, "main/binary-amd64/Packages");
    let map = t
        .store()
        .join("blocks")
        .join(&plain_sha[..2])
        .join(&plain_sha);
    let text = fs::read(&map).unwrap();
    fs::write(&map, &text[..text.len() / 2]).unwrap();
    t.import("trusty", &[deb(&t, 40, "1.1")]);
    next_second();
    let (s4, reused, _) = snapshot_counting(&t);
    assert_eq!(reused, 0, "a torn map is not used");
    check_indices(&t, &s4);

    // A map whose blob is gone (removed by hand): compressed whole.
    let (plain_sha, _) = blob(&t, &s4, "main/binary-amd64/Packages");
    let (_, xz) = blob(&t, &s4, "main/binary-amd64/Packages.xz");
    let kept_xz = fs::read(&xz).unwrap();
    fs::remove_file(&xz).unwrap();
    t.import("trusty", &[deb(&t, 41, "1.1")]);
    next_second();
    let (s5, reused, _) = snapshot_counting(&t);
    assert_eq!(reused, 0, "a map naming a missing blob is not used");
    check_indices(&t, &s5);
    fs::write(&xz, kept_xz).unwrap();
    let _ = plain_sha;

    // A missing map: the same.
    let (plain_sha, _) = blob(&t, &s5, "main/binary-amd64/Packages");
    fs::remove_file(
        t.store()
            .join("blocks")
            .join(&plain_sha[..2])
            .join(&plain_sha),
    )
    .unwrap();
    t.import("trusty", &[deb(&t, 42, "1.1")]);
    next_second();
    let (s6, reused, _) = snapshot_counting(&t);
    assert_eq!(reused, 0);
    check_indices(&t, &s6);
    t.assert_sound();

    // gc keeps the maps of kept indices and removes the others.
    let before = maps(&t).len();
    ok(t.halo().args(["gc", "--keep-snapshots", "1"]));
    let after = maps(&t);
    assert!(
        after.len() < before,
        "{} maps before gc, {} after",
        before,
        after.len()
    );
    let (plain_sha, _) = blob(&t, &s6, "main/binary-amd64/Packages");
    assert!(
        after.iter().any(|p| p.ends_with(&plain_sha)),
        "gc removed the map of the kept snapshot's index: {after:?}"
    );
    t.assert_sound();
    // And the next snapshot copies from the kept one.
    t.import("trusty", &[deb(&t, 43, "1.1")]);
    next_second();
    let (s7, reused, _) = snapshot_counting(&t);
    assert!(reused > 0);
    check_indices(&t, &s7);
}
