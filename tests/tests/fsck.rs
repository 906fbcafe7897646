//! `halo fsck` names every kind of damage it can find (issue 13): each
//! case damages a sound store one way, and fsck must exit 2 and print a
//! PROBLEM line saying what is wrong. A sound store exits 0 first.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use fs_err as fs;
use halo_tests::{run, set_mode, Deb, TestStore};

/// A store with two snapshots (the second newer), trusty at the first.
fn sound_store() -> (TestStore, String, String) {
    let t = TestStore::new();
    t.import("trusty", &[Deb::new("pkg", "1").build(&t.path("in/1"))]);
    let a = t.snapshot();
    t.import("trusty", &[Deb::new("pkg", "2").build(&t.path("in/2"))]);
    let b = t.snapshot();
    t.ok(&["promote", "--to", "trusty", "--snapshot", &a]);
    t.assert_sound();
    (t, a, b)
}

fn manifest_path(t: &TestStore, id: &str) -> PathBuf {
    t.store().join(format!("snapshots/{id}.json"))
}

fn manifest(t: &TestStore, id: &str) -> serde_json::Value {
    serde_json::from_str(&fs::read_to_string(manifest_path(t, id)).unwrap()).unwrap()
}

fn write_json(path: &Path, v: &serde_json::Value) {
    if path.exists() {
        set_mode(path, 0o644);
    }
    fs::write(path, serde_json::to_vec_pretty(v).unwrap()).unwrap();
}

fn blob(t: &TestStore, sha256: &str) -> PathBuf {
    t.store().join("pool").join(&sha256[..2]).join(sha256)
}

/// The dist files of snapshot `id`'s rustedhalo/trusty.
fn files(m: &serde_json::Value) -> Vec<serde_json::Value> {
    m["archives"]["rustedhalo"]["dists"]["trusty"]["files"]
        .as_array()
        .unwrap()
        .clone()
}

fn file_of(m: &serde_json::Value, path: &str) -> serde_json::Value {
    files(m).into_iter().find(|f| f["path"] == path).unwrap()
}

/// fsck must exit 2 and report `want`.
fn damaged(t: &TestStore, case: &str, want: &str) {
    let out = run(t.halo().arg("fsck"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{case}: fsck said {stdout}");
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("PROBLEM") && l.contains(want)),
        "{case}: want {want:?} in:\n{stdout}"
    );
}

#[test]
fn every_kind_of_damage_is_named() {
    type Damage = fn(&TestStore, &str, &str);
    let cases: Vec<(&str, &str, Damage)> = vec![
        ("stray pool file", "stray file in the pool", |t, _, _| {
            fs::create_dir_all(t.store().join("pool/zz")).unwrap();
            fs::write(t.store().join("pool/zz/notahash"), "x").unwrap();
        }),
        ("blob content changed", "content hashes to", |t, a, _| {
            let f = file_of(&manifest(t, a), "main/binary-amd64/Packages.gz");
            let p = blob(t, f["sha256"].as_str().unwrap());
            set_mode(&p, 0o644);
            fs::write(&p, "flipped").unwrap();
        }),
        ("blob missing", "is missing or damaged", |t, a, _| {
            let f = file_of(&manifest(t, a), "main/binary-amd64/Packages.xz");
            fs::remove_file(blob(t, f["sha256"].as_str().unwrap())).unwrap();
        }),
        ("component state missing", "component state", |t, a, _| {
            let m = manifest(t, a);
            let hash = m["archives"]["rustedhalo"]["dists"]["trusty"]["components"]["main"]
                .as_str()
                .unwrap()
                .to_string();
            fs::remove_file(blob(t, &hash)).unwrap();
        }),
        (
            "manifest under another id",
            "manifest says it is",
            |t, a, _| {
                let m = manifest(t, a);
                write_json(&t.store().join("snapshots/20991231T000000.000Z.json"), &m);
            },
        ),
        ("manifest not JSON", "snapshots", |t, _, b| {
            let p = manifest_path(t, b);
            set_mode(&p, 0o644);
            fs::write(&p, "{ not json").unwrap();
        }),
        (
            "size in the manifest wrong",
            "bytes, expected",
            |t, a, _| {
                let mut m = manifest(t, a);
                let fs_ = m["archives"]["rustedhalo"]["dists"]["trusty"]["files"]
                    .as_array_mut()
                    .unwrap();
                let f = fs_
                    .iter_mut()
                    .find(|f| f["path"] == "main/binary-amd64/Packages")
                    .unwrap();
                f["size"] = serde_json::json!(f["size"].as_u64().unwrap() + 1);
                write_json(&manifest_path(t, a), &m);
            },
        ),
        (
            "Release does not list the index served",
            "does not list main/binary-amd64/Packages.xz",
            |t, a, b| {
                // A's Packages.xz entry now names B's Packages.xz (a real blob).
                let other = file_of(&manifest(t, b), "main/binary-amd64/Packages.xz");
                let mut m = manifest(t, a);
                let fs_ = m["archives"]["rustedhalo"]["dists"]["trusty"]["files"]
                    .as_array_mut()
                    .unwrap();
                let f = fs_
                    .iter_mut()
                    .find(|f| f["path"] == "main/binary-amd64/Packages.xz")
                    .unwrap();
                *f = other;
                write_json(&manifest_path(t, a), &m);
            },
        ),
        (
            "InRelease signs another text",
            "InRelease does not sign Release's text",
            |t, a, b| {
                let other = file_of(&manifest(t, b), "Release");
                let mut m = manifest(t, a);
                let fs_ = m["archives"]["rustedhalo"]["dists"]["trusty"]["files"]
                    .as_array_mut()
                    .unwrap();
                let f = fs_.iter_mut().find(|f| f["path"] == "Release").unwrap();
                *f = other;
                write_json(&manifest_path(t, a), &m);
            },
        ),
        (
            "InRelease not signed by the store key",
            "InRelease",
            |t, a, _| {
                let rel = file_of(&manifest(t, a), "Release");
                let mut m = manifest(t, a);
                let fs_ = m["archives"]["rustedhalo"]["dists"]["trusty"]["files"]
                    .as_array_mut()
                    .unwrap();
                let f = fs_.iter_mut().find(|f| f["path"] == "InRelease").unwrap();
                *f = serde_json::json!({"path": "InRelease", "sha256": rel["sha256"], "md5": rel["md5"], "size": rel["size"]});
                write_json(&manifest_path(t, a), &m);
            },
        ),
        (
            "channel points at a missing snapshot",
            "points at missing snapshot",
            |t, _, _| {
                let p = t.store().join("channels/trusty.json");
                let mut v: serde_json::Value =
                    serde_json::from_str(&fs::read_to_string(&p).unwrap()).unwrap();
                v["snapshot"] = serde_json::json!("20991231T000000.000Z");
                write_json(&p, &v);
            },
        ),
        (
            "pointer without its history",
            "history does not end with the move",
            |t, _, b| {
                let p = t.store().join("channels/trusty.json");
                let mut v: serde_json::Value =
                    serde_json::from_str(&fs::read_to_string(&p).unwrap()).unwrap();
                v["snapshot"] = serde_json::json!(b);
                write_json(&p, &v);
            },
        ),
        (
            "public key missing",
            "public key missing or unreadable",
            |t, _, _| {
                fs::remove_file(t.store().join("keys/repo.gpg")).unwrap();
            },
        ),
        (
            "secret key readable by others",
            "readable by others",
            |t, _, _| {
                set_mode(&t.store().join("keys/secret.asc"), 0o644);
            },
        ),
        (
            "working state names a missing component",
            "state.json",
            |t, _, _| {
                let p = t.store().join("state.json");
                let mut v: serde_json::Value =
                    serde_json::from_str(&fs::read_to_string(&p).unwrap()).unwrap();
                v["rustedhalo"]["trusty"]["main"] = serde_json::json!("0".repeat(64));
                write_json(&p, &v);
            },
        ),
        ("working state not JSON", "state.json", |t, _, _| {
            let p = t.store().join("state.json");
            set_mode(&p, 0o644);
            fs::write(&p, "[").unwrap();
        }),
    ];
    for (case, want, damage) in cases {
        let (t, a, b) = sound_store();
        damage(&t, &a, &b);
        damaged(&t, case, want);
    }
}
