#!/usr/bin/env python3
"""Acceptance machines benchmark (issue 17): time to a tested machine, under TCG here.

1. Resolves, with the host's apt in an empty dpkg status, Essential + apt + what a machine's
   base adds (the cloud kernel, initramfs-tools, systemd-sysv, udev, dbus): real
   Debian packages of this machine's release, fetched into the cache the tests share
   ($CARGO_TARGET_DIR/halo-test-debs/<codename>/), signed as an upstream on 127.0.0.1 and
   mirrored into a store, with the example's `halo-web` (examples/machines) imported.
2. Times `halo gate --systems` (everything a run does but the lease and the promotion):
   - one machine from scratch (no cached base): bootstrap (mmdebstrap + mkfs), boot, install
     halo-web (its service starts), test;
   - the same machine from the cached base;
   - two machines on one network, side by
     side, from the cached base;
   and beside each the same system(s) as chroots (`kind = "chroot"`, the same packages and the
   same `dpkg -s` test), so the cost of a real machine shows as a ratio.

Usage: bench/machines.py [ROUNDS]   (ROUNDS = 1; run as root; needs
`cargo build --release --workspace --bins`, mmdebstrap, qemu-system-x86, e2fsprogs,
apt-utils, gnupg, python3). BENCH_ACCEL=auto|kvm|tcg (default tcg: KVM makes no progress on
this project's machines); BENCH_QUICK=1 times only the first case. Not a test: it prints figures; docs/performance.md records them.
"""
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import systems as s  # noqa: E402  (the upstream and the cache are the systems benchmark's)

ROOT = s.ROOT
TARGET = s.TARGET
HALO = s.HALO
EXAMPLE = os.path.join(ROOT, "examples", "machines")
# BENCH_QUICK=1: only the first case (tests/tests/bench_scripts.rs runs it so).
QUICK = os.environ.get("BENCH_QUICK") == "1"
BASE = ["linux-image-cloud-amd64", "initramfs-tools", "systemd-sysv", "udev", "dbus"]
ACCEL = os.environ.get("BENCH_ACCEL", "tcg")


def web_deb(work):
    root = os.path.join(work, "web")
    for d in ("DEBIAN", "lib/systemd/system", "usr/share/halo-web"):
        os.makedirs(os.path.join(root, d))
    with open(os.path.join(root, "DEBIAN", "control"), "w") as f:
        f.write("Package: halo-web\nVersion: 1.0\nArchitecture: all\n"
                "Maintainer: Bench <b@example.org>\nDescription: example web server\n"
                " The machines benchmark's own package.\n")
    for src, dst, mode in (("halo-web/postinst", "DEBIAN/postinst", 0o755),
                           ("halo-web/halo-web.socket", "lib/systemd/system/halo-web.socket", 0o644),
                           ("halo-web/halo-web@.service", "lib/systemd/system/halo-web@.service", 0o644),
                           ("halo-web/index.html", "usr/share/halo-web/index.html", 0o644)):
        shutil.copy(os.path.join(EXAMPLE, src), os.path.join(root, dst))
        os.chmod(os.path.join(root, dst), mode)
    deb = os.path.join(work, "halo-web_1.0_all.deb")
    s.run(["dpkg-deb", "--root-owner-group", "--build", root, deb])
    return deb


def system(name, kind, dist, packages, network=None):
    text = (f'\n[[acceptance.system]]\nname = "{name}"\nkind = "{kind}"\nsuite = "{dist}"\n'
            f'archives = ["debian", "rustedhalo"]\npackages = [{", ".join(chr(34) + p + chr(34) for p in packages)}]\n'
            f'tests = ["installed=dpkg -s {packages[0]} >/dev/null"]\n')
    if kind == "machine":
        text += f'memory_mb = 512\naccel = "{ACCEL}"\n'
        if network:
            text += f'network = "{network}"\n'
    return text


def gate(store):
    start = time.perf_counter()
    p = subprocess.run([HALO, "--store", store, "gate", "--systems"], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True)
    elapsed = time.perf_counter() - start
    if p.returncode != 0:
        sys.exit(f"halo gate failed ({p.returncode}):\n{p.stdout[-1500:]}\n{p.stderr[-4000:]}")
    steps = [l.split(": ", 2)[1] + " " + l.split(": ", 2)[2] for l in p.stderr.splitlines()
             if l.startswith("halo: system ") and l.endswith(" s)")]
    return elapsed, steps


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 1
    if not os.path.exists(HALO):
        sys.exit(f"{HALO} missing: cargo build --release --workspace --bins")
    for tool in ("mmdebstrap", "qemu-system-x86_64", "mkfs.ext4"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is missing (.ci/packages lists its package)")
    dist = s.codename()
    work = tempfile.mkdtemp(prefix="halo-bench-machines-", dir="/var/tmp")
    os.chmod(work, 0o755)
    server = None
    try:
        picks = s.resolve(work, BASE)
        debs = s.fetch(picks, os.path.join(TARGET, "halo-test-debs", dist))
        print(f"base: {len(picks)} Debian packages ({sum(os.path.getsize(d) for d in debs) / 1e6:.1f} MB) "
              f"+ halo-web; accelerator {ACCEL}")
        upstream, key = s.make_upstream(work, debs, dist, os.path.join(work, "gnupg"))
        control = os.path.join(work, "control")
        os.makedirs(control)
        server = subprocess.Popen([sys.executable, s.SERVER, upstream, control], stdout=subprocess.PIPE, text=True)
        port = int(server.stdout.readline())
        store = os.path.join(work, "store")
        s.run([HALO, "--store", store, "init"])
        head = (f'[[mirror]]\nname = "debian"\nurl = "http://127.0.0.1:{port}/"\ndists = ["{dist}"]\n'
                f'components = ["main"]\narchitectures = ["amd64"]\nkeyring = "{key}"\n\n'
                f'[acceptance]\nfrom = "trusty-unstable"\n')
        toml = os.path.join(store, "halo.toml")
        with open(toml, "w") as f:
            f.write(head)
        s.run([HALO, "--store", store, "mirror", "update", "debian"])
        s.run([HALO, "--store", store, "import", "--archive", "rustedhalo", "--dist", dist,
               "--component", "main", web_deb(work)])
        snap = s.run([HALO, "--store", store, "snapshot", "create"]).stdout.split()[-1]
        s.run([HALO, "--store", store, "promote", "--to", "trusty-unstable", "--snapshot", snap])

        one = lambda kind: system("web", kind, dist, ["halo-web"])
        two = lambda kind: (system("web", kind, dist, ["halo-web"], "env1")
                            + system("app", kind, dist, ["halo-web"], "env1"))
        cases = [
            ("one machine, from scratch (no cached base)", one("machine"), True),
            ("the same system as a chroot", one("chroot"), False),
            ("one machine, from the cached base", one("machine"), False),
            ("two machines on one network, cached base", two("machine"), False),
            ("the same two systems as chroots", two("chroot"), False),
        ]
        if QUICK:
            # CI's check that the script still runs: one machine, nothing to compare.
            cases = cases[:1]
        figures = {}
        for label, systems, scratch in cases:
            with open(toml, "w") as f:
                f.write(head + systems)
            times = []
            for _ in range(rounds):
                if scratch:
                    shutil.rmtree(os.path.join(store, "machines"), ignore_errors=True)
                t, steps = gate(store)
                times.append(t)
            figures[label] = times
            print(f"{label}: {statistics.median(times):.1f} s; last round's steps: " + "; ".join(steps))
        ratio = lambda a, b: statistics.median(figures[a]) / statistics.median(figures[b])
        print(f"\n| what | rounds | median s | min s | max s |")
        print("| --- | --- | --- | --- | --- |")
        for label, times in figures.items():
            print(f"| {label} | {len(times)} | {statistics.median(times):.1f} | {min(times):.1f} | {max(times):.1f} |")
        if QUICK:
            return
        print(f"\nmachine/chroot, from scratch: {ratio('one machine, from scratch (no cached base)', 'the same system as a chroot'):.1f}x; "
              f"cached: {ratio('one machine, from the cached base', 'the same system as a chroot'):.1f}x; "
              f"two networked: {ratio('two machines on one network, cached base', 'the same two systems as chroots'):.1f}x")
    finally:
        if server is not None:
            server.kill()
            server.wait()
        subprocess.run(["rm", "-rf", work])


if __name__ == "__main__":
    main()
