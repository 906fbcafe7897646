//! dpkg version order: `repofs::debian::Version` against the real
//! `dpkg --compare-versions` on every pair of a set of tricky versions.

#![allow(clippy::unwrap_used)]

use std::cmp::Ordering;
use std::process::Command;

use halo_tests::need_tool;
use repofs::debian::Version;

const VERSIONS: &[&str] = &[
    "0",
    "1",
    "1.0",
    "1.0-0",
    "1.0-1",
    "1.0-1ubuntu1",
    "1.0-1+b1",
    "1.0-1~bpo1",
    "1.0~rc1",
    "1.0~rc1-1",
    "1.0~~",
    "1.0~",
    "1.0+dfsg",
    "1.0a",
    "1.0A",
    "1.0.0",
    "1.00",
    "1.01",
    "1.1",
    "1.10",
    "1.9",
    "1:0.1",
    "2:1.0",
    "0:1.0",
    "1.0-a",
    "1.0-a.b",
    "1.0+",
    "1.0.",
    "1.0-1.1",
    "1.0-10",
    "1.0-9",
    "2.0-1-1",
    "10",
    "9.9.9",
    "1a1",
    "1a01",
    "1.0~beta2+git20200101",
];

fn dpkg_relation(a: &str, b: &str) -> Ordering {
    let check = |op: &str| {
        Command::new("dpkg")
            .args(["--compare-versions", a, op, b])
            .status()
            .unwrap()
            .success()
    };
    if check("lt") {
        Ordering::Less
    } else if check("eq") {
        Ordering::Equal
    } else {
        Ordering::Greater
    }
}

#[test]
fn version_order_matches_dpkg_compare_versions() {
    need_tool("dpkg", "dpkg");
    let mut checked = 0;
    for a in VERSIONS {
        for b in VERSIONS {
            let ours = Version::parse(a).unwrap().cmp(&Version::parse(b).unwrap());
            assert_eq!(ours, dpkg_relation(a, b), "{a} vs {b}");
            checked += 1;
        }
    }
    assert_eq!(checked, VERSIONS.len() * VERSIONS.len());
}

#[test]
fn versions_dpkg_rejects_are_rejected() {
    // dpkg --compare-versions takes "" as "no version"; a package needs one, so we refuse it
    // too (covered by the unit tests), but dpkg is no oracle for it.
    for bad in ["a1", "1.0 1", "1:a", "x:1", "1_0"] {
        let dpkg_ok = Command::new("dpkg")
            .args(["--compare-versions", bad, "eq", bad])
            .output()
            .unwrap();
        // dpkg warns or fails on these; we refuse them outright.
        assert!(
            !dpkg_ok.stderr.is_empty() || !dpkg_ok.status.success(),
            "dpkg accepted {bad:?} silently"
        );
        assert!(Version::parse(bad).is_err(), "{bad:?} accepted");
    }
}
