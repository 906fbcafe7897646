#!/usr/bin/env python3
"""Store benchmark (issue 2): import N synthetic packages, snapshot, promote, for
N = 1,000, 10,000, 50,000; a snapshot after 1% churn; peak RSS of import; the bytes apt fetches after the churn with
PDiff (the diff Index and the patch) against the full index. Prints
promote(50k)/promote(1k) and, where aptly is installed, aptly's times for the same steps
(repo add, snapshot create, publish snapshot, publish switch) side by side.

Usage: bench/store.py [N ...]   (build first: cargo build --release --bins)
BENCH_NO_PEER=1 skips aptly; BENCH_DIR puts the work directories elsewhere than /tmp.
BENCH_CHURN=random makes the 1% churn 1% of the names drawn at random (seeded) instead of the
first 1% (clustered, the default): block-cached compression pays differently for the two.
Not a test: it prints figures; docs/performance.md records them.
"""
import json
import os
import resource
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
GEN = os.path.join(ROOT, "bench", "gen_debs.py")


def timed(cmd, **kw):
    """Runs cmd; returns (seconds, peak RSS of the child in MiB, stdout)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)
    elapsed = time.perf_counter() - start
    if p.returncode != 0:
        sys.exit(f"{' '.join(cmd[:6])}... failed: {p.stderr.strip()[-500:]}")
    rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    # ru_maxrss of children is the max over all waited children: only meaningful when it grows.
    return elapsed, max(rss, before) / 1024, p.stdout


def gen(dirname, n, version, first="0"):
    out = subprocess.run([sys.executable, GEN, dirname, str(n), version, str(first)],
                         stdout=subprocess.PIPE, text=True, check=True).stdout
    return out.split()


def bench_halo(work, n, debs, churn):
    store = os.path.join(work, "halo-store")
    env = dict(os.environ, HALO_STORE=store)
    subprocess.run([HALO, "init"], env=env, check=True, stdout=subprocess.DEVNULL)
    lst = os.path.join(work, "list")
    with open(lst, "w") as f:
        f.write("\n".join(debs))
    r = {}
    r["import"], r["import_rss"], _ = timed(
        [HALO, "import", "--archive", "bench", "--dist", "trusty", "--component", "main",
         "--files-from", lst], env=env)
    r["snapshot"], _, out = timed([HALO, "snapshot", "create"], env=env)
    first = out.split()[-1]
    with open(lst, "w") as f:
        f.write("\n".join(churn))
    r["import_churn"], _, _ = timed(
        [HALO, "import", "--archive", "bench", "--dist", "trusty", "--component", "main",
         "--files-from", lst], env=env)
    r["snapshot_churn"], _, out = timed([HALO, "snapshot", "create"], env=env)
    second = out.split()[-1]
    r.update(pdiff_bytes(store, second))
    # Forward moves (to a snapshot newer than the channel's): each of the
    # three channels from nothing to `first`, then to `second`. The store is
    # made by `halo init`, which gates trusty: lift the gate, this measures
    # the move, not acceptance.
    subprocess.run([HALO, "channel", "gate", "trusty", "--off"], env=env, check=True,
                   stdout=subprocess.DEVNULL)
    fwd = []
    for target in (first, second):
        for channel in ("trusty-unstable", "trusty-testing", "trusty"):
            t, _, _ = timed([HALO, "promote", "--to", channel, "--snapshot", target], env=env)
            fwd.append(t)
    r["promote"] = statistics.median(fwd)
    # Backward moves: every one makes a re-dated copy (a Release signed anew
    # per dist) so that clients that already updated follow the move.
    back = []
    for i in range(11):
        target = first if i % 2 == 0 else second
        t, _, _ = timed([HALO, "promote", "--to", "trusty", "--snapshot", target], env=env)
        back.append(t)
    r["promote_back"] = statistics.median(back)
    # The promote process itself: startup dominates; time the store call in-process too.
    return r


def pdiff_bytes(store, snapshot):
    """What `apt-get update` fetches for main/binary-amd64 after the churn, from a client that
    updated at the snapshot before (tests/tests/pdiff.rs shows apt fetching exactly the
    Index and the one patch), against the full index it fetches otherwise (Packages.xz, the
    first compression apt tries). InRelease is fetched either way and left out of both."""
    with open(os.path.join(store, "snapshots", snapshot + ".json")) as f:
        dist = json.load(f)["archives"]["bench"]["dists"]["trusty"]
    sizes = {x["path"]: x["size"] for x in dist["files"] + dist.get("pdiffs", [])}
    base = "main/binary-amd64/Packages"
    index = sizes.get(base + ".diff/Index", 0)
    patch = sizes.get(f"{base}.diff/{snapshot}.gz", 0)
    return {"pdiff_fetch_bytes": index + patch, "full_index_bytes": sizes[base + ".xz"],
            "packages_bytes": sizes[base], "packages_gz_bytes": sizes[base + ".gz"],
            "contents_gz_bytes": sizes.get("main/Contents-amd64.gz", 0)}


def churn_names(work, n):
    """gen_debs.py's FIRST argument for the churn: 0 (the first 1% of names), or with
    BENCH_CHURN=random a file of 1% of the numbers drawn at random (the same ones every run)."""
    mode = os.environ.get("BENCH_CHURN", "first")
    if mode == "first":
        return "0"
    if mode != "random":
        sys.exit(f"BENCH_CHURN={mode}: expected first or random")
    import random
    numbers = sorted(random.Random(22).sample(range(n), max(1, n // 100)))
    path = os.path.join(work, "churn-numbers")
    with open(path, "w") as f:
        f.write("\n".join(map(str, numbers)))
    return "@" + path


def bench_aptly(work, n, debs, churn):
    if not shutil.which("aptly") or os.environ.get("BENCH_NO_PEER"):
        return None
    root = os.path.join(work, "aptly")
    conf = os.path.join(work, "aptly.conf")
    with open(conf, "w") as f:
        # aptly's own OpenPGP code: with the default provider aptly refuses to
        # start when gpg and gpgv differ in version (gpgv1 installed beside gpg 2),
        # and nothing in these steps verifies or signs.
        json.dump({"rootDir": root, "architectures": ["amd64"], "gpgProvider": "internal"}, f)
    a = ["aptly", "-config=" + conf]
    subprocess.run(a + ["repo", "create", "-distribution=trusty", "-component=main", "bench"],
                   check=True, stdout=subprocess.DEVNULL)
    d = os.path.dirname(debs[0])
    r = {}
    r["import"], r["import_rss"], _ = timed(a + ["repo", "add", "bench", d])
    r["snapshot"], _, _ = timed(a + ["snapshot", "create", "s1", "from", "repo", "bench"])
    t_pub, _, _ = timed(a + ["publish", "snapshot", "-skip-signing", "-distribution=trusty", "s1"])
    r["snapshot"] += t_pub
    r["import_churn"], _, _ = timed(a + ["repo", "add", "bench", os.path.dirname(churn[0])])
    t_snap, _, _ = timed(a + ["snapshot", "create", "s2", "from", "repo", "bench"])
    r["snapshot_churn"] = t_snap
    times = []
    for i in range(3):
        t, _, _ = timed(a + ["publish", "switch", "-skip-signing", "trusty", "s2" if i % 2 == 0 else "s1"])
        times.append(t)
    r["promote"] = statistics.median(times)
    return r


def main():
    sizes = [int(x) for x in sys.argv[1:]] or [1000, 10000, 50000]
    if not os.path.exists(HALO):
        sys.exit(f"{HALO} missing: run cargo build --release first")
    results = {}
    for n in sizes:
        work = tempfile.mkdtemp(prefix=f"halo-bench-{n}-", dir=os.environ.get("BENCH_DIR"))
        try:
            debs = gen(os.path.join(work, "debs"), n, "1.0")
            churn = gen(os.path.join(work, "churn"), max(1, n // 100), "1.1", churn_names(work, n))
            # The inputs on disk before either tool is timed: halo's import
            # syncs the file system, which would otherwise write the
            # generator's files out on its clock.
            os.sync()
            h = bench_halo(work, n, debs, churn)
            a = bench_aptly(work, n, debs, churn)
            results[n] = (h, a)
            print(f"N={n}: halo {json.dumps({k: round(v, 4) for k, v in h.items()})}", flush=True)
            if a:
                print(f"N={n}: aptly {json.dumps({k: round(v, 4) for k, v in a.items()})}", flush=True)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    print()
    print(f"{'N':>7} {'step':<15} {'halo s':>9} {'aptly s':>9} {'aptly/halo':>10}")
    for n, (h, a) in results.items():
        for step in ["import", "snapshot", "import_churn", "snapshot_churn", "promote", "promote_back"]:
            av = a.get(step) if a else None
            ratio = f"{av / h[step]:10.1f}" if av else f"{'-':>10}"
            print(f"{n:>7} {step:<15} {h[step]:9.4f} {av if av is not None else float('nan'):9.4f} {ratio}")
        print(f"{n:>7} {'import RSS MiB':<15} {h['import_rss']:9.1f}")
        print(f"index sizes({n}): Packages {h['packages_bytes']} B, .gz {h['packages_gz_bytes']} B, "
              f".xz {h['full_index_bytes']} B, Contents-amd64.gz {h['contents_gz_bytes']} B "
              f"(churn: {os.environ.get('BENCH_CHURN', 'first')})")
        pd, full = h["pdiff_fetch_bytes"], h["full_index_bytes"]
        print(f"pdiff({n}): apt fetches {pd} B (diff Index + patch) instead of {full} B "
              f"(Packages.xz) = {100 * pd / full:.2f}%")
    if len(results) > 1:
        lo, hi = min(results), max(results)
        print(f"\npromote({hi})/promote({lo}) = {results[hi][0]['promote'] / results[lo][0]['promote']:.2f}")
        print(f"promote_back({hi})/promote_back({lo}) = "
              f"{results[hi][0]['promote_back'] / results[lo][0]['promote_back']:.2f}")


if __name__ == "__main__":
    main()
