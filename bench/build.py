#!/usr/bin/env python3
"""Build benchmark (issue 8): the overhead of `halo build` over a bare
`dpkg-buildpackage -us -uc` of the same tree, for examples/halo-hello.

Each round makes a new git commit (so `version = "git"` gives a new version and
nothing is skipped), then times
  bare: cp -a of the tree + dpkg-buildpackage -us -uc (what a hand build does)
  halo: halo build (ls-remote, shallow fetch, changelog entry, unit tests none,
        dpkg-checkbuilddeps, dpkg-buildpackage, import, snapshot, channel move)
and prints the medians and the overhead halo - bare (target: under 1 s).

With --root, the same source builds in a clean root (issue 8): the Debian
packages the integration tests cache (CARGO_TARGET_DIR/halo-test-debs/<codename>,
filled by `cargo test --test buildroot`) are imported into an archive `debian`,
trusty-unstable points at it, and `[build] root` reads it. Round 0 is cold
(mmdebstrap --variant=buildd, then the build); the others are warm (the cached
root unpacked, apt-get build-dep, unit tests, dpkg-buildpackage inside).

Usage: bench/build.py [--root] [ROUNDS]   (build first: cargo build --release --bins)
Not a test: it prints figures; docs/performance.md records them.
"""
import glob
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
# HALO=path overrides (a debug build: the root's figures are mmdebstrap's, apt's and dpkg's).
HALO = os.environ.get(
    "HALO", os.path.join(TARGET, os.environ.get("BENCH_PROFILE", "release"), "halo"))
EXAMPLE = os.path.join(ROOT, "examples", "halo-hello")


def run(cmd, **kw):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)
    if p.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{p.stdout[-2000:]}\n{p.stderr[-2000:]}")
    return p.stdout


def timed(cmd, **kw):
    start = time.perf_counter()
    run(cmd, **kw)
    return time.perf_counter() - start


def git(repo, *args, env=None):
    return run(["git", "-C", repo, "-c", "user.name=bench", "-c", "user.email=b@b", *args], env=env)


def codename():
    with open("/etc/os-release") as f:
        for line in f:
            if line.startswith("VERSION_CODENAME="):
                return line.split("=", 1)[1].strip().strip('"')
    sys.exit("no VERSION_CODENAME in /etc/os-release")


def main_root(rounds):
    dist = codename()
    debs_dir = os.path.join(TARGET, "halo-test-debs", dist)
    debs = sorted(glob.glob(os.path.join(debs_dir, "*.deb")))
    if not any(os.path.basename(d).startswith("debhelper_") for d in debs):
        sys.exit(f"no buildd base in {debs_dir}: run cargo test --test buildroot first")
    work = tempfile.mkdtemp(prefix="halo-bench-buildroot-")
    # apt reads the store's key and tree as its _apt user: mkdtemp's 0700 would hide them.
    os.chmod(work, 0o755)
    try:
        repo = os.path.join(work, "repo")
        shutil.copytree(EXAMPLE, repo)
        git(repo, "init", "-q", "-b", "master")
        store = os.path.join(work, "store")
        run([HALO, "--store", store, "init"])
        run([HALO, "--store", store, "import", "--archive", "debian", "--dist", dist,
             "--component", "main", *debs])
        snap = run([HALO, "--store", store, "snapshot", "create"]).split()[-1]
        run([HALO, "--store", store, "promote", "--to", "trusty-unstable", "--snapshot", snap])
        with open(os.path.join(store, "halo.toml"), "w") as f:
            f.write(f'[build]\nroot = {{ channel = "trusty-unstable", suite = "{dist}", '
                    'archives = ["debian"] }\n\n'
                    f'[[source]]\nname = "halo-hello"\ngit = "{repo}"\narchive = "rustedhalo"\n'
                    'dist = "trusty"\ncomponent = "main"\nchannel = "trusty-unstable"\n'
                    'version = "git"\ntest = "make check"\n')
        host, cold, warm = [], None, []
        for i in range(rounds):
            with open(os.path.join(repo, "ROUND"), "w") as f:
                f.write(f"{i}\n")
            env = dict(os.environ, GIT_COMMITTER_DATE=f"@{1764900000 + i * 60} +0000",
                       GIT_AUTHOR_DATE=f"@{1764900000 + i * 60} +0000")
            git(repo, "add", "-A")
            git(repo, "commit", "-q", "-m", f"round {i}", env=env)
            start = time.perf_counter()
            out = subprocess.run([HALO, "--store", store, "--json", "build", "halo-hello"],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            # The whole process: the export of the channel's snapshot comes before the steps.
            total = time.perf_counter() - start
            if out.returncode != 0:
                sys.exit(f"halo build failed:\n{out.stderr[-3000:]}")
            report = json.loads(out.stdout)[0]
            secs = {s["name"]: s["seconds"] for s in report["steps"]}
            kind = "warm" if report["root"]["reused"] else "cold"
            if kind == "cold":
                cold = total
            else:
                warm.append(total)
            steps = ", ".join(f"{k} {v:.1f}" for k, v in secs.items() if v >= 0.05)
            print(f"round {i} ({kind}): {total:.1f} s ({steps})", flush=True)
            host.append(timed([HALO, "--store", store, "build", "halo-hello", "--force",
                               "--host"]))
            print(f"round {i}: the same build on the host {host[-1]:.1f} s", flush=True)
        print(f"cold (bootstrap + build) {cold:.1f} s; warm median of {len(warm)} "
              f"{statistics.median(warm):.1f} s; host median {statistics.median(host):.1f} s")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main():
    args = sys.argv[1:]
    root = "--root" in args
    args = [a for a in args if a != "--root"]
    rounds = int(args[0]) if args else (4 if root else 5)
    if not os.path.exists(HALO):
        sys.exit(f"{HALO} missing: cargo build --release --bins")
    if root:
        return main_root(rounds)
    work = tempfile.mkdtemp(prefix="halo-bench-build-")
    try:
        repo = os.path.join(work, "repo")
        shutil.copytree(EXAMPLE, repo)
        git(repo, "init", "-q", "-b", "master")
        store = os.path.join(work, "store")
        run([HALO, "--store", store, "init"])
        with open(os.path.join(store, "halo.toml"), "w") as f:
            f.write(f'[[source]]\nname = "halo-hello"\ngit = "{repo}"\narchive = "rustedhalo"\n'
                    'dist = "trusty"\ncomponent = "main"\nchannel = "trusty-unstable"\nversion = "git"\n')
        bare, halo = [], []
        for i in range(rounds):
            with open(os.path.join(repo, "ROUND"), "w") as f:
                f.write(f"{i}\n")
            env = dict(os.environ, GIT_COMMITTER_DATE=f"@{1764900000 + i * 60} +0000",
                       GIT_AUTHOR_DATE=f"@{1764900000 + i * 60} +0000")
            git(repo, "add", "-A")
            git(repo, "commit", "-q", "-m", f"round {i}", env=env)
            # Bare: a copy of the tree, built by hand (no dbgsym, as halo builds).
            bare_dir = os.path.join(work, f"bare{i}")
            os.makedirs(bare_dir)
            env_b = dict(os.environ, DEB_BUILD_OPTIONS="noautodbgsym")
            start = time.perf_counter()
            run(["cp", "-a", repo, os.path.join(bare_dir, "src")])
            run(["dpkg-buildpackage", "-us", "-uc"], cwd=os.path.join(bare_dir, "src"), env=env_b)
            bare.append(time.perf_counter() - start)
            halo.append(timed([HALO, "--store", store, "build", "halo-hello"]))
            print(f"round {i}: bare {bare[-1]:.2f} s, halo build {halo[-1]:.2f} s", flush=True)
        mb, mh = statistics.median(bare), statistics.median(halo)
        print(f"median of {rounds}: bare dpkg-buildpackage {mb:.2f} s, halo build {mh:.2f} s, "
              f"overhead {mh - mb:+.2f} s ({mh / mb:.2f}x)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
