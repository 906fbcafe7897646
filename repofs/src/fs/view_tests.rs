//! Tests of the view over an in-memory catalog: names, listings, inode
//! numbers, promotions and the channel fallbacks, without a mount.

use std::collections::BTreeMap;
use std::time::UNIX_EPOCH;

use super::*;
use crate::fs::channel::{plan_channel_view, ChannelView, Previous};
use crate::model::tree::{Tree, TreeFile};
use crate::model::ChannelPointer;

const A: &str = "20261127T100000.000Z";
const B: &str = "20261127T110000.000Z";

struct Mem {
    trees: BTreeMap<String, Arc<SnapTree>>,
    tree_loads: std::sync::atomic::AtomicUsize,
    channels: Mutex<BTreeMap<String, Arc<ChannelView>>>,
}

fn sha(c: char) -> String {
    c.to_string().repeat(64)
}

fn snap(files: &[(&str, char)], hour: u64) -> Arc<SnapTree> {
    let mut t = Tree::new();
    for (path, c) in files {
        t.insert(
            path.to_string(),
            TreeFile {
                sha256: sha(*c),
                size: 7,
            },
        );
    }
    Arc::new(SnapTree {
        created: UNIX_EPOCH + Duration::from_secs(hour * 3600),
        tree: DirTree::build(&[("rustedhalo".into(), t)]).unwrap(),
    })
}

impl Mem {
    fn new() -> Self {
        let mut trees = BTreeMap::new();
        trees.insert(
            A.to_string(),
            snap(
                &[
                    ("dists/trusty/InRelease", 'a'),
                    ("dists/trusty/main/binary-amd64/Packages", 'b'),
                    ("dists/trusty/main/binary-amd64/by-hash/SHA256/bbbb", 'b'),
                    ("pool/main/h/hello/hello_1_all.deb", 'c'),
                    ("pool/main/o/old/old_1_all.deb", 'd'),
                ],
                10,
            ),
        );
        trees.insert(
            B.to_string(),
            snap(
                &[
                    ("dists/trusty/InRelease", 'e'),
                    ("dists/trusty/main/binary-amd64/Packages", 'f'),
                    ("dists/trusty/main/binary-amd64/by-hash/SHA256/ffff", 'f'),
                    ("pool/main/h/hello/hello_2_all.deb", '9'),
                ],
                11,
            ),
        );
        let m = Mem {
            trees,
            tree_loads: 0.into(),
            channels: Mutex::new(BTreeMap::new()),
        };
        m.point("trusty", &[A]);
        m.point("empty", &[]);
        m
    }

    /// Sets a channel's history: it pointed at each of `targets` in turn,
    /// one minute apart from 2026-11-27T12:00Z.
    fn point(&self, channel: &str, targets: &[&str]) {
        let mut history = Vec::new();
        let mut from = None;
        for (i, t) in targets.iter().enumerate() {
            history.push(crate::model::HistoryEntry {
                seq: i as u64 + 1,
                when: format!("2026-11-27T12:{i:02}:00Z"),
                who: "t".into(),
                action: crate::model::Action::Promote,
                from: from.clone(),
                to: t.to_string(),
                reason: None,
                forced: false,
                run: None,
                restores: None,
                content: None,
                withdraws: None,
                overrode_hold: None,
            });
            from = Some(t.to_string());
        }
        let pointer = ChannelPointer {
            snapshot: from,
            seq: targets.len() as u64,
            hold: None,
        };
        let view = plan_channel_view(&pointer, history);
        self.channels
            .lock()
            .unwrap()
            .insert(channel.into(), Arc::new(view));
    }
}

impl Catalog for Mem {
    fn snapshot_ids(&self) -> Result<Vec<String>, FsError> {
        Ok(self.trees.keys().cloned().collect())
    }
    fn snapshot_info(&self, id: &str) -> Result<Option<SnapshotInfo>, FsError> {
        Ok(self.trees.get(id).map(|t| SnapshotInfo {
            created: t.created,
            archives: ["rustedhalo".to_string()].into(),
        }))
    }
    fn tree(&self, id: &str) -> Result<Arc<SnapTree>, FsError> {
        self.tree_loads
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.trees.get(id).cloned().ok_or(FsError::NotFound)
    }
    fn channels(&self) -> Result<Vec<(String, Arc<ChannelView>)>, FsError> {
        Ok(self
            .channels
            .lock()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }
    fn channel(&self, name: &str) -> Result<Option<Arc<ChannelView>>, FsError> {
        Ok(self.channels.lock().unwrap().get(name).cloned())
    }
    fn blob_mtime(&self, blob: &Blob) -> Result<SystemTime, FsError> {
        Ok(UNIX_EPOCH + Duration::from_secs(u64::from(blob.sha256[0])))
    }
    fn top_mtime(&self, _dir: Top) -> SystemTime {
        UNIX_EPOCH
    }
}

/// 2026-11-27T12:00Z plus `secs`.
fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_795_780_800 + secs)
}

fn view() -> View<Mem> {
    View::new(
        Mem::new(),
        FallbackPolicy {
            byhash_keep: 1,
            grace: Duration::from_secs(600),
        },
    )
}

/// Walks `path` from the root, returning the last entry.
fn walk(v: &View<Mem>, path: &str, now: SystemTime) -> Result<Entry, FsError> {
    let mut ino = inodes::ROOT;
    let mut last = None;
    for part in path.split('/') {
        let e = v.lookup(ino, part, now)?;
        ino = e.ino;
        last = Some(e);
    }
    last.ok_or(FsError::NotFound)
}

fn names(v: &View<Mem>, ino: u64) -> Vec<String> {
    v.list(ino, at(0))
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect()
}

#[test]
fn snapshot_paths_resolve_to_blobs_with_content_inodes() {
    let v = view();
    let deb = walk(
        &v,
        &format!("snapshots/{A}/rustedhalo/pool/main/h/hello/hello_1_all.deb"),
        at(0),
    )
    .unwrap();
    assert_eq!(deb.attr.kind, Kind::File);
    assert_eq!(deb.attr.size, 7);
    assert_eq!(deb.ttl, IMMUTABLE_TTL);
    assert_eq!(v.blob(deb.ino).unwrap().hex(), sha('c'));
    // The same content through the channel is the same inode.
    let same = walk(
        &v,
        "channels/trusty/rustedhalo/pool/main/h/hello/hello_1_all.deb",
        at(0),
    )
    .unwrap();
    assert_eq!(same.ino, deb.ino);
    // A by-hash name and its index are one inode too.
    let p = walk(
        &v,
        &format!("snapshots/{A}/rustedhalo/dists/trusty/main/binary-amd64/Packages"),
        at(0),
    )
    .unwrap();
    let h = walk(
        &v,
        &format!("snapshots/{A}/rustedhalo/dists/trusty/main/binary-amd64/by-hash/SHA256/bbbb"),
        at(0),
    )
    .unwrap();
    assert_eq!(p.ino, h.ino);
    let dir = walk(&v, &format!("snapshots/{A}/rustedhalo/pool"), at(0)).unwrap();
    assert_eq!(dir.attr.kind, Kind::Dir);
    assert_eq!(dir.attr.mtime, UNIX_EPOCH + Duration::from_secs(36000));
    assert!(matches!(v.blob(dir.ino), Err(FsError::IsDir)));
    assert!(matches!(
        walk(&v, &format!("snapshots/{A}/rustedhalo/nope"), at(0)),
        Err(FsError::NotFound)
    ));
    assert!(matches!(
        walk(&v, "snapshots/not-an-id", at(0)),
        Err(FsError::NotFound)
    ));
}

#[test]
fn listings_match_lookups() {
    let v = view();
    assert_eq!(names(&v, inodes::ROOT), ["snapshots", "channels"]);
    assert_eq!(names(&v, inodes::SNAPSHOTS), [A, B]);
    assert_eq!(
        names(&v, inodes::CHANNELS),
        ["empty", "trusty", "trusty.snapshot"]
    );
    let h = walk(&v, &format!("snapshots/{A}/rustedhalo/pool/main/h"), at(0)).unwrap();
    let listed = v.list(h.ino, at(0)).unwrap();
    assert_eq!(listed.len(), 1);
    let looked = v.lookup(h.ino, "hello", at(0)).unwrap();
    assert_eq!(listed[0].ino, looked.ino);
    assert_eq!(listed[0].kind, Kind::Dir);
    let files = v.list(looked.ino, at(0)).unwrap();
    let deb = v.lookup(looked.ino, "hello_1_all.deb", at(0)).unwrap();
    assert_eq!(files[0].ino, deb.ino);
    for e in v.list(inodes::CHANNELS, at(0)).unwrap() {
        assert_eq!(
            v.lookup(inodes::CHANNELS, &e.name, at(0)).unwrap().ino,
            e.ino,
            "{}",
            e.name
        );
    }
}

#[test]
fn listing_a_snapshot_root_or_looking_up_an_archive_loads_no_tree() {
    let v = view();
    let loads = || {
        v.catalog()
            .tree_loads
            .load(std::sync::atomic::Ordering::Relaxed)
    };
    let root = walk(&v, &format!("snapshots/{A}"), at(0)).unwrap();
    let listed = v.list(root.ino, at(0)).unwrap();
    let archive = v.lookup(root.ino, "rustedhalo", at(0)).unwrap();
    assert_eq!(loads(), 0);
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].ino, archive.ino);
    assert!(v.lookup(root.ino, "nope", at(0)).is_err());
    // Going inside loads it.
    assert!(v.lookup(archive.ino, "dists", at(0)).is_ok());
    assert_eq!(loads(), 1);
    let names: Vec<_> = v
        .list(archive.ino, at(0))
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert_eq!(names, ["dists", "pool"]);
}

#[test]
fn channel_link_and_empty_channel() {
    let v = view();
    let link = walk(&v, "channels/trusty.snapshot", at(0)).unwrap();
    assert_eq!(link.attr.kind, Kind::Symlink);
    assert_eq!(link.ttl, CHANNEL_TTL);
    assert_eq!(v.readlink(link.ino).unwrap(), format!("../snapshots/{A}"));
    let empty = walk(&v, "channels/empty", at(0)).unwrap();
    assert!(v.list(empty.ino, at(0)).unwrap().is_empty());
    assert!(walk(&v, "channels/empty.snapshot", at(0)).is_err());
    assert!(walk(&v, "channels/nope", at(0)).is_err());
}

#[test]
fn a_promotion_shows_at_once_and_an_old_directory_stays_consistent() {
    let v = view();
    let before = walk(&v, "channels/trusty/rustedhalo/dists/trusty", at(0)).unwrap();
    let old_release = v.lookup(before.ino, "InRelease", at(0)).unwrap();
    v.catalog().point("trusty", &[A, B]);
    let after = walk(&v, "channels/trusty/rustedhalo/dists/trusty", at(0)).unwrap();
    assert_ne!(before.ino, after.ino);
    let new_release = v.lookup(after.ino, "InRelease", at(0)).unwrap();
    assert_eq!(v.blob(new_release.ino).unwrap().hex(), sha('e'));
    // A process sitting in the old directory still reads the old snapshot.
    assert_eq!(
        v.lookup(before.ino, "InRelease", at(0)).unwrap().ino,
        old_release.ino
    );
    // The snapshot itself never changes.
    let snap = walk(
        &v,
        &format!("snapshots/{A}/rustedhalo/dists/trusty/InRelease"),
        at(0),
    )
    .unwrap();
    assert_eq!(snap.ino, old_release.ino);
}

#[test]
fn earlier_targets_answer_for_missing_names_but_are_not_listed() {
    let v = view();
    v.catalog().point("trusty", &[A, B]); // left A at 12:01
    let old_hash = "channels/trusty/rustedhalo/dists/trusty/main/binary-amd64/by-hash/SHA256/bbbb";
    let old_deb = "channels/trusty/rustedhalo/pool/main/h/hello/hello_1_all.deb";
    let old_dir_deb = "channels/trusty/rustedhalo/pool/main/o/old/old_1_all.deb";
    let soon = at(120);
    for p in [old_hash, old_deb, old_dir_deb] {
        let e = walk(&v, p, soon).unwrap_or_else(|e| panic!("{p}: {e}"));
        assert_eq!(e.ttl, FALLBACK_TTL, "{p}");
    }
    // Not listed: the channel lists exactly its snapshot.
    let hello = walk(&v, "channels/trusty/rustedhalo/pool/main/h/hello", soon).unwrap();
    let listed: Vec<_> = v
        .list(hello.ino, soon)
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert_eq!(listed, ["hello_2_all.deb"]);
    let main = walk(&v, "channels/trusty/rustedhalo/pool/main", soon).unwrap();
    assert_eq!(names(&v, main.ino), ["h"]);
    // After the grace period only by-hash names remain.
    let late = at(3600);
    assert!(walk(&v, old_hash, late).is_ok());
    assert!(matches!(walk(&v, old_deb, late), Err(FsError::NotFound)));
    assert!(matches!(
        walk(&v, old_dir_deb, late),
        Err(FsError::NotFound)
    ));
    // Snapshots never fall back.
    let p = format!("snapshots/{B}/rustedhalo/pool/main/h/hello/hello_1_all.deb");
    assert!(matches!(walk(&v, &p, soon), Err(FsError::NotFound)));
}

#[test]
fn a_walk_that_started_before_a_promotion_finds_the_new_files() {
    let v = view();
    let hello = walk(&v, "channels/trusty/rustedhalo/pool/main/h/hello", at(0)).unwrap();
    v.catalog().point("trusty", &[A, B]);
    // The directory node is still "trusty at A"; the new target answers.
    let e = v.lookup(hello.ino, "hello_2_all.deb", at(0)).unwrap();
    assert_eq!(v.blob(e.ino).unwrap().hex(), "9".repeat(64));
    assert_eq!(e.ttl, FALLBACK_TTL);
    // And the other way round, flipping back.
    v.catalog().point("trusty", &[A, B, A]);
    let sha = walk(
        &v,
        "channels/trusty/rustedhalo/dists/trusty/main/binary-amd64/by-hash/SHA256",
        at(0),
    )
    .unwrap();
    v.catalog().point("trusty", &[A, B, A, B]);
    assert!(v.lookup(sha.ino, "ffff", at(0)).is_ok());
}

#[test]
fn forgotten_inodes_are_dropped_and_tree_directories_need_no_entry() {
    let v = view();
    let deb = walk(
        &v,
        &format!("snapshots/{A}/rustedhalo/pool/main/h/hello/hello_1_all.deb"),
        at(0),
    )
    .unwrap();
    // The archive and the file are in the table; the tree directories
    // (snapshot root, pool, main, h, hello) decode from their numbers.
    assert_eq!(v.inode_count(), 2);
    let hello = walk(
        &v,
        &format!("snapshots/{A}/rustedhalo/pool/main/h/hello"),
        at(0),
    )
    .unwrap();
    assert_eq!(v.getattr(hello.ino).unwrap().0, hello.attr);
    v.forget(hello.ino, 1);
    assert!(v.getattr(hello.ino).is_ok());
    v.forget(deb.ino, 2);
    assert_eq!(v.inode_count(), 1);
    assert!(matches!(v.getattr(deb.ino), Err(FsError::UnknownInode(_))));
    assert!(v.getattr(inodes::ROOT).is_ok());
}

#[test]
fn the_channel_view_names_earlier_targets_with_the_time_they_were_left() {
    let v = view();
    v.catalog().point("trusty", &[A, B]);
    let view = v.catalog().channel("trusty").unwrap().unwrap();
    assert_eq!(
        view.previous,
        [Previous {
            snapshot: A.into(),
            left_ms: Some(1_795_780_860_000)
        }]
    );
}
