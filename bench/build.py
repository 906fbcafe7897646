#!/usr/bin/env python3
"""Build benchmark (issue 8): the overhead of `halo build` over a bare
`dpkg-buildpackage -us -uc` of the same tree, for examples/halo-hello.

Each round makes a new git commit (so `version = "git"` gives a new version and
nothing is skipped), then times
  bare: cp -a of the tree + dpkg-buildpackage -us -uc (what a hand build does)
  halo: halo build (ls-remote, shallow fetch, changelog entry, unit tests none,
        dpkg-checkbuilddeps, dpkg-buildpackage, import, snapshot, channel move)
and prints the medians and the overhead halo - bare (target: under 1 s).

Usage: bench/build.py [ROUNDS]   (build first: cargo build --release --bins)
Not a test: it prints figures; docs/performance.md records them.
"""
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
HALO = os.path.join(TARGET, "release", "halo")
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


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    if not os.path.exists(HALO):
        sys.exit(f"{HALO} missing: cargo build --release --bins")
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
