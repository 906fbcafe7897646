#!/usr/bin/env python3
"""Acceptance systems benchmark (issue 11): time to a tested system from a 100-package base.

1. Resolves, with the host's apt in an empty dpkg status, Essential + apt (what
   `mmdebstrap --variant=apt` installs) plus a few everyday tools: 99 real Debian packages of
   this machine's release, fetched with `apt-get download` into the cache the tests share
   ($CARGO_TARGET_DIR/halo-test-debs/<codename>/). With our own `halo-hello`: 100 packages.
2. Signs them as an upstream (apt-ftparchive, gpg), serves it on 127.0.0.1
   (tests/upstream_server.py), mirrors it into a store as archive `debian`, imports halo-hello
   into `rustedhalo`, snapshots, and points trusty-unstable at it.
3. Times, ROUNDS times each:
   - baseline: mmdebstrap --variant=apt --include=<the tools> of the same packages from the
     upstream directory as a `file:` mirror (what a hand-made system costs);
   - mount: `halo accept --systems` with [acceptance] mount = a repofs mount of the store;
   - export: the same without the mount (each run exports the snapshot first).
   The system bootstraps Essential + apt, installs the tools and halo-hello with apt (100
   packages in all, counted inside), and runs halo-hello.

Usage: bench/systems.py [ROUNDS]   (ROUNDS = 3; run as root; needs
`cargo build --release --workspace --bins`, mmdebstrap, apt-utils, gnupg, python3)
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
# BENCH_PROFILE=debug runs the debug binaries (the CI smoke run, tests/tests/bench_scripts.rs).
PROFILE = os.environ.get("BENCH_PROFILE", "release")
HALO = os.path.join(TARGET, PROFILE, "halo")
REPOFS = os.path.join(TARGET, PROFILE, "repofs")
SERVER = os.path.join(ROOT, "tests", "upstream_server.py")
TOOLS = ["less", "procps", "psmisc", "nano", "file", "xz-utils"]


def run(cmd, **kw):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)
    if p.returncode != 0:
        sys.exit(f"{' '.join(cmd[:8])}... failed ({p.returncode}):\n{p.stdout[-1500:]}\n{p.stderr[-3000:]}")
    return p


def timed(cmd, **kw):
    start = time.perf_counter()
    p = run(cmd, **kw)
    return time.perf_counter() - start, p


def codename():
    with open("/etc/os-release") as f:
        for line in f:
            if line.startswith("VERSION_CODENAME="):
                return line.split("=", 1)[1].strip().strip('"')
    sys.exit("no VERSION_CODENAME in /etc/os-release")


def resolve(work, extra):
    status = os.path.join(work, "empty-status")
    open(status, "w").close()
    out = run(["apt-get", "-o", f"Dir::State::status={status}", "-o", "Debug::NoLocking=1",
               "-o", "APT::Install-Recommends=false", "install", "--simulate", "-y",
               "?essential", "apt", *extra]).stdout
    picks = []
    for line in out.splitlines():
        if not line.startswith("Inst "):
            continue
        name, rest = line[5:].split(" (", 1)
        inner = rest.split(")", 1)[0]
        version = inner.split()[0]
        arch = inner.rsplit("[", 1)[1].rstrip("]")
        picks.append((name, version, arch))
    return picks


def fetch(picks, cache):
    os.makedirs(cache, exist_ok=True)
    names = [f"{n}_{v.replace(':', '%3a')}_{a}.deb" for n, v, a in picks]
    missing = [f"{n}={v}" for (n, v, _), f in zip(picks, names)
               if not os.path.exists(os.path.join(cache, f))]
    if missing:
        tmp = tempfile.mkdtemp(prefix=".download-", dir=cache)
        run(["apt-get", "-q", "-o", "APT::Sandbox::User=root", "download", *missing], cwd=tmp)
        for f in os.listdir(tmp):
            os.rename(os.path.join(tmp, f), os.path.join(cache, f))
        os.rmdir(tmp)
    return [os.path.join(cache, f) for f in names]


def make_upstream(work, debs, dist, gnupg):
    repo = os.path.join(work, "upstream")
    pool = os.path.join(repo, "pool", "main")
    os.makedirs(pool)
    for d in debs:
        os.link(d, os.path.join(pool, os.path.basename(d)))
    bindir = os.path.join(repo, "dists", dist, "main", "binary-amd64")
    os.makedirs(bindir)
    packages = run(["apt-ftparchive", "--arch", "amd64", "packages", "pool/main"], cwd=repo).stdout
    with open(os.path.join(bindir, "Packages"), "w") as f:
        f.write(packages)
    run(["gzip", "-9kf", os.path.join(bindir, "Packages")])
    o = lambda k, v: ["-o", f"APT::FTPArchive::Release::{k}={v}"]
    release = run(["apt-ftparchive", *o("Suite", dist), *o("Codename", dist), *o("Components", "main"),
                   *o("Architectures", "amd64"), "release", "."],
                  cwd=os.path.join(repo, "dists", dist)).stdout
    with open(os.path.join(repo, "dists", dist, "Release"), "w") as f:
        f.write(release)
    env = dict(os.environ, GNUPGHOME=gnupg)
    os.makedirs(gnupg, mode=0o700)
    run(["gpg", "--batch", "--passphrase", "", "--quick-gen-key", "Bench <b@example.org>",
         "ed25519", "sign", "0"], env=env)
    dists = os.path.join(repo, "dists", dist)
    run(["gpg", "--batch", "--yes", "--clearsign", "-o", os.path.join(dists, "InRelease"),
         os.path.join(dists, "Release")], env=env)
    key = os.path.join(work, "upstream.gpg")
    run(["gpg", "--batch", "--yes", "-o", key, "--export"], env=env)
    return repo, key


def hello_deb(work):
    root = os.path.join(work, "hello")
    os.makedirs(os.path.join(root, "DEBIAN"))
    os.makedirs(os.path.join(root, "usr", "bin"))
    with open(os.path.join(root, "DEBIAN", "control"), "w") as f:
        f.write("Package: halo-hello\nVersion: 1.0\nArchitecture: all\nMaintainer: Bench <b@example.org>\n"
                "Description: says hello\n The acceptance benchmark's own package.\n")
    prog = os.path.join(root, "usr", "bin", "halo-hello")
    with open(prog, "w") as f:
        f.write("#!/bin/sh\necho 'hello from halo'\n")
    os.chmod(prog, 0o755)
    deb = os.path.join(work, "halo-hello_1.0_all.deb")
    run(["dpkg-deb", "--root-owner-group", "--build", root, deb])
    return deb


def wait_mounted(mnt, proc):
    for _ in range(500):
        if proc.poll() is not None:
            sys.exit("repofs exited")
        if os.path.isdir(os.path.join(mnt, "snapshots")):
            return
        time.sleep(0.02)
    sys.exit("repofs did not mount")


def accept_round(store, label):
    elapsed, p = timed([HALO, "--store", store, "accept", "--systems"])
    count = [l for l in p.stderr.splitlines() if l.startswith("[bench] packages: ")]
    return elapsed, p.stderr, count[-1].split(": ")[1] if count else "?"


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    for b in (HALO, REPOFS):
        if not os.path.exists(b):
            sys.exit(f"{b} missing: cargo build --release --workspace --bins")
    dist = codename()
    work = tempfile.mkdtemp(prefix="halo-bench-systems-", dir="/var/tmp")
    os.chmod(work, 0o755)
    server = mount = None
    try:
        picks = resolve(work, TOOLS)
        debs = fetch(picks, os.path.join(TARGET, "halo-test-debs", dist))
        print(f"base: {len(picks)} Debian packages ({sum(os.path.getsize(d) for d in debs) / 1e6:.1f} MB) "
              f"+ halo-hello")
        upstream, key = make_upstream(work, debs, dist, os.path.join(work, "gnupg"))
        control = os.path.join(work, "control")
        os.makedirs(control)
        server = subprocess.Popen([sys.executable, SERVER, upstream, control], stdout=subprocess.PIPE, text=True)
        port = int(server.stdout.readline())
        store = os.path.join(work, "store")
        run([HALO, "--store", store, "init"])
        mnt = os.path.join(work, "mnt")
        config = (f'[[mirror]]\nname = "debian"\nurl = "http://127.0.0.1:{port}/"\ndists = ["{dist}"]\n'
                  f'components = ["main"]\narchitectures = ["amd64"]\nkeyring = "{key}"\n\n'
                  f'[acceptance]\n#MOUNT\n\n[[acceptance.system]]\nname = "bench"\nsuite = "{dist}"\n'
                  f'archives = ["debian", "rustedhalo"]\npackages = {[*TOOLS, "halo-hello"]!r}\n'
                  f'tests = ["hello=halo-hello", "packages=echo packages: $(dpkg-query -f . -W | wc -c)"]\n')
        config = config.replace("'", '"')
        toml = os.path.join(store, "halo.toml")
        with open(toml, "w") as f:
            f.write(config)
        run([HALO, "--store", store, "mirror", "update", "debian"])
        run([HALO, "--store", store, "import", "--archive", "rustedhalo", "--dist", dist,
             "--component", "main", hello_deb(work)])
        snap = run([HALO, "--store", store, "snapshot", "create"]).stdout.split()[-1]
        run([HALO, "--store", store, "promote", "--to", "trusty-unstable", "--snapshot", snap])

        figures = {}
        for label, extra in (("mmdebstrap alone (file: mirror, --include the tools)", []),
                             ("the same with --dpkgopt=force-unsafe-io (as halo runs it)",
                              ["--dpkgopt=force-unsafe-io"])):
            times = []
            for i in range(rounds):
                target = os.path.join(work, f"baseline-{i}")
                t, _ = timed(["mmdebstrap", "--variant=apt", "--mode=root", "--format=directory",
                              "--hook-dir=/usr/share/mmdebstrap/hooks/file-mirror-automount", *extra,
                              f"--include={','.join(TOOLS)}", dist, target,
                              f"deb [signed-by={key}] file:{upstream} {dist} main"])
                times.append(t)
                shutil.rmtree(target)
            figures[label] = (times, "-")

        # The mount point first: repofs started before it exists exits at once.
        os.makedirs(mnt, exist_ok=True)
        mount = subprocess.Popen([REPOFS, store, mnt, "-f", "-o", "allow_other"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_mounted(mnt, mount)
        for label, mount_line in (("halo accept --systems, from the mount", f'mount = "{mnt}"'),
                                  ("halo accept --systems, from an export", "")):
            with open(toml, "w") as f:
                f.write(config.replace("#MOUNT", mount_line))
            times, count = [], "?"
            for _ in range(rounds):
                t, stderr, count = accept_round(store, label)
                times.append(t)
            steps = [l for l in stderr.splitlines() if l.startswith("halo: system bench: ") and l.endswith(" s)")]
            figures[label] = (times, count)
            print(f"{label}: last round's steps: " + "; ".join(s.split(": ", 2)[2] for s in steps))
        print(f"\n| what | rounds | median s | min s | max s | packages in the system |")
        print("| --- | --- | --- | --- | --- | --- |")
        for label, (times, count) in figures.items():
            print(f"| {label} | {len(times)} | {statistics.median(times):.1f} | {min(times):.1f} | "
                  f"{max(times):.1f} | {count} |")
    finally:
        if mount is not None:
            subprocess.run(["umount", mnt])
            mount.wait()
        if server is not None:
            server.kill()
            server.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
