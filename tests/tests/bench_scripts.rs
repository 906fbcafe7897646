//! Every `bench/` script still runs, at a tiny size, against the debug
//! binaries (`BENCH_PROFILE=debug`): a benchmark nobody runs rots (one
//! stopped at the gate for sessions before anyone noticed). The figures
//! mean nothing here; the scripts finishing and printing their tables do.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use halo_tests::{bin_dir, need_tool, run};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Runs a bench script with `args` and `env`; it must exit 0 and print
/// `expect` on stdout.
fn bench(script: &str, args: &[&str], env: &[(&str, &str)], expect: &str) {
    let target = bin_dir().parent().unwrap().to_path_buf();
    let path = root().join("bench").join(script);
    let mut cmd = if script.ends_with(".sh") {
        let mut c = Command::new("bash");
        c.arg(&path);
        c
    } else {
        let mut c = Command::new("python3");
        c.arg(&path);
        c
    };
    cmd.args(args)
        .env("CARGO_TARGET_DIR", &target)
        .env("BENCH_PROFILE", "debug")
        .envs(env.iter().copied())
        .current_dir(root());
    let out = run(&mut cmd);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "bench/{script} failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    assert!(
        stdout.contains(expect),
        "bench/{script}: no `{expect}` in:\n{stdout}\n{stderr}"
    );
}

#[test]
fn store_py_runs() {
    bench(
        "store.py",
        &["20", "40"],
        &[("BENCH_NO_PEER", "1")],
        "promote(40)/promote(20)",
    );
    // The churn drawn at random instead of the first names.
    bench(
        "store.py",
        &["40"],
        &[("BENCH_NO_PEER", "1"), ("BENCH_CHURN", "random")],
        "(churn: random)",
    );
}

#[test]
fn mirror_py_runs() {
    need_tool("apt-ftparchive", "apt-utils");
    bench("mirror.py", &["30"], &[("BENCH_TOOLS", "halo")], "| halo |");
}

#[test]
fn build_py_runs() {
    need_tool("dpkg-buildpackage", "dpkg-dev");
    bench("build.py", &["1"], &[], "median of 1");
}

#[test]
fn fuse_sh_runs() {
    halo_tests::mount::need_fuse();
    bench(
        "fuse.sh",
        &[],
        &[
            ("N", "30"),
            ("SNAPSHOTS", "2"),
            ("BIG_MB", "4"),
            ("WALKS", "1"),
        ],
        "repofs memory",
    );
}

#[test]
fn systems_py_runs() {
    need_tool("mmdebstrap", "mmdebstrap");
    bench(
        "systems.py",
        &["1"],
        &[],
        "halo accept --systems, from the mount",
    );
}

#[test]
fn serve_py_runs() {
    need_tool("nginx", "nginx-light");
    need_tool("curl", "curl");
    bench(
        "serve.py",
        &["20", "1"],
        &[("BENCH_ROUNDS", "1")],
        "| update + full pool download |",
    );
}

#[test]
fn machines_py_runs() {
    need_tool("mmdebstrap", "mmdebstrap");
    need_tool("qemu-system-x86_64", "qemu-system-x86");
    bench(
        "machines.py",
        &[],
        &[("BENCH_QUICK", "1")],
        "one machine, from scratch (no cached base) | 1 |",
    );
}
