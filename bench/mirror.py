#!/usr/bin/env python3
"""Mirror benchmark (issue 4). Not a test: it prints figures; docs/performance.md records them.

1. Builds a signed upstream of N synthetic packages (bench/gen_debs.py, apt-ftparchive, gpg with
   a throwaway key) and serves it on 127.0.0.1 with tests/upstream_server.py (threaded, logs
   every request).
2. Times `halo mirror update` (cold, then a no-op update, counting the server's requests), and
   where installed, `aptly mirror update` and `debmirror` on the same upstream with the same
   download concurrency (debmirror downloads one file at a time).
3. Times the parse of Debian's real bookworm main amd64 Packages index (LZ4-framed in
   /var/lib/apt/lists after `apt-get update`) and the plan of a mirror update from it (the
   component state, then the pool files to fetch into an empty pool) with
   agent/examples/parse_packages.rs, after checking its InRelease signature and the index's
   SHA256: medians of REPEAT (7) rounds, wall clock and CPU.

Usage: bench/mirror.py [N]    (N = 10000; needs `cargo build --release --workspace --bins --examples`)
"""
import glob
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
# BENCH_PROFILE=debug runs the debug binaries (the CI smoke run, tests/tests/bench_scripts.rs).
PROFILE = os.environ.get("BENCH_PROFILE", "release")
HALO = os.path.join(TARGET, PROFILE, "halo")
PARSE = os.path.join(TARGET, PROFILE, "examples", "parse_packages")
GEN = os.path.join(ROOT, "bench", "gen_debs.py")
SERVER = os.path.join(ROOT, "tests", "upstream_server.py")
CONCURRENCY = 8
DIST = "bench"
# BENCH_TOOLS=halo,aptly skips the others (debmirror fetches one file at a time: slow).
TOOLS = os.environ.get("BENCH_TOOLS", "halo,aptly,debmirror").split(",")


def run(cmd, **kw):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)
    if p.returncode != 0:
        sys.exit(f"{' '.join(cmd[:6])}... failed ({p.returncode}): {p.stderr.strip()[-800:]}")
    return p.stdout


def cpu_children():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def timed(cmd, **kw):
    """Wall seconds, the command's CPU seconds (user + sys, its children included), output."""
    start, cpu0 = time.perf_counter(), cpu_children()
    out = run(cmd, **kw)
    return time.perf_counter() - start, cpu_children() - cpu0, out


def make_upstream(work, n):
    repo = os.path.join(work, "repo")
    pool = os.path.join(repo, "pool", "main", "b")
    subprocess.run([sys.executable, GEN, pool, str(n), "1.0"], check=True, stdout=subprocess.DEVNULL)
    dists = os.path.join(repo, "dists", DIST)
    binary = os.path.join(dists, "main", "binary-amd64")
    os.makedirs(binary)
    packages = run(["apt-ftparchive", "--arch", "amd64", "packages", "pool/main"], cwd=repo)
    with open(os.path.join(binary, "Packages"), "w") as f:
        f.write(packages)
    run(["gzip", "-9kf", os.path.join(binary, "Packages")])
    run(["xz", "-kf", os.path.join(binary, "Packages")])
    release = run(["apt-ftparchive",
                   "-o", "APT::FTPArchive::Release::Origin=Bench",
                   "-o", f"APT::FTPArchive::Release::Suite={DIST}",
                   "-o", f"APT::FTPArchive::Release::Codename={DIST}",
                   "-o", "APT::FTPArchive::Release::Architectures=amd64",
                   "-o", "APT::FTPArchive::Release::Components=main",
                   "release", "."], cwd=dists)
    with open(os.path.join(dists, "Release"), "w") as f:
        f.write(release)
    home = tempfile.mkdtemp(prefix="halo-bench-gpg-", dir="/tmp")
    os.chmod(home, 0o700)
    gpg = ["gpg", "--homedir", home, "--batch", "--yes", "--quiet", "--pinentry-mode", "loopback",
           "--passphrase", ""]
    run(gpg + ["--quick-gen-key", "Bench <bench@example.org>", "ed25519", "sign", "0"])
    run(gpg + ["--clearsign", "-o", os.path.join(dists, "InRelease"), os.path.join(dists, "Release")])
    run(gpg + ["--detach-sign", "--armor", "-o", os.path.join(dists, "Release.gpg"),
               os.path.join(dists, "Release")])
    keyring = os.path.join(work, "upstream.gpg")
    run(gpg + ["--output", keyring, "--export"])
    subprocess.run(["gpgconf", "--homedir", home, "--kill", "all"], check=False)
    return repo, keyring


class Server:
    def __init__(self, repo, control):
        self.control = control
        self.proc = subprocess.Popen([sys.executable, SERVER, repo, control], stdout=subprocess.PIPE,
                                     text=True)
        self.port = int(self.proc.stdout.readline())
        self.url = f"http://127.0.0.1:{self.port}/"

    def requests(self):
        try:
            with open(os.path.join(self.control, "requests.log")) as f:
                return f.read().splitlines()
        except FileNotFoundError:
            return []

    def clear(self):
        try:
            os.remove(os.path.join(self.control, "requests.log"))
        except FileNotFoundError:
            pass

    def cpu(self):
        """The server's CPU seconds so far (user + sys)."""
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self):
        self.proc.kill()
        self.proc.wait()


def bench_halo(work, server, keyring):
    store = os.path.join(work, "halo-store")
    env = dict(os.environ, HALO_STORE=store)
    run([HALO, "init"], env=env)
    with open(os.path.join(store, "halo.toml"), "w") as f:
        f.write(f"[fetch]\ndownload_concurrency = {CONCURRENCY}\n\n[[mirror]]\nname = \"bench\"\n"
                f"url = \"{server.url}\"\ndists = [\"{DIST}\"]\ncomponents = [\"main\"]\n"
                f"architectures = [\"amd64\"]\nkeyring = \"{keyring}\"\n")
    r = {}
    server.clear()
    server_cpu0 = server.cpu()
    r["update"], r["update_cpu"], out = timed([HALO, "mirror", "update", "bench", "--json"], env=env)
    r["server_cpu"] = server.cpu() - server_cpu0
    report = json.loads(out)[0]
    r["files"], r["bytes"], r["requests"] = report["files"], report["bytes"], len(server.requests())
    server.clear()
    r["noop"], r["noop_cpu"], _ = timed([HALO, "mirror", "update", "bench"], env=env)
    r["noop_requests"] = len(server.requests())
    r["snapshot"], _, _ = timed([HALO, "snapshot", "create"], env=env)
    return r


def bench_aptly(work, server, keyring):
    if not shutil.which("aptly"):
        return None
    root = os.path.join(work, "aptly")
    conf = os.path.join(work, "aptly.conf")
    with open(conf, "w") as f:
        json.dump({"rootDir": root, "downloadConcurrency": CONCURRENCY, "architectures": ["amd64"],
                   "gpgDisableVerify": False, "gpgProvider": "gpg"}, f)
    cfg = [f"-config={conf}"]
    run(["aptly"] + cfg + ["mirror", "create", f"-keyring={keyring}", "-architectures=amd64",
                           "bench", server.url, DIST, "main"])
    r = {}
    server.clear()
    server_cpu0 = server.cpu()
    r["update"], r["update_cpu"], _ = timed(["aptly"] + cfg + ["mirror", "update", f"-keyring={keyring}", "bench"])
    r["server_cpu"] = server.cpu() - server_cpu0
    r["requests"] = len(server.requests())
    server.clear()
    r["noop"], r["noop_cpu"], _ = timed(["aptly"] + cfg + ["mirror", "update", f"-keyring={keyring}", "bench"])
    r["noop_requests"] = len(server.requests())
    return r


def bench_debmirror(work, server, keyring):
    if not shutil.which("debmirror"):
        return None
    dest = os.path.join(work, "debmirror")
    cmd = ["debmirror", f"--host=127.0.0.1:{server.port}", "--root=/", "--method=http",
           f"--dist={DIST}", "--section=main", "--arch=amd64", "--nosource", "--no-check-gpg",
           "--rsync-extra=none", "--diff=none", "--nocleanup", dest]
    r = {}
    server.clear()
    server_cpu0 = server.cpu()
    r["update"], r["update_cpu"], _ = timed(cmd)
    r["server_cpu"] = server.cpu() - server_cpu0
    r["requests"] = len(server.requests())
    server.clear()
    r["noop"], r["noop_cpu"], _ = timed(cmd)
    r["noop_requests"] = len(server.requests())
    r["note"] = "signature check off (--no-check-gpg): debmirror wants the key in a GnuPG home"
    return r


def bench_parse():
    lists = "/var/lib/apt/lists"
    pkgs = glob.glob(os.path.join(lists, "*_debian_dists_bookworm_main_binary-amd64_Packages.lz4"))
    if not pkgs:
        return {"missing": "no bookworm main amd64 Packages in /var/lib/apt/lists (run apt-get update)"}
    inrelease = pkgs[0].replace("_main_binary-amd64_Packages.lz4", "_InRelease")
    args = [PARSE, pkgs[0]]
    if os.path.exists(inrelease):
        args += [inrelease, "/usr/share/keyrings/debian-archive-keyring.gpg", "main/binary-amd64/Packages"]
    # Rounds of parse + plan in one process (the example reports the first, the median and
    # the best of each phase); one round against the debug build of the CI smoke run.
    env = dict(os.environ, REPEAT=os.environ.get("REPEAT", "1" if PROFILE == "debug" else "7"))
    return json.loads(subprocess.run(args, check=True, capture_output=True, text=True, env=env).stdout)


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10000
    for tool in (HALO, PARSE):
        if not os.path.exists(tool):
            sys.exit(f"{tool} missing: cargo build --release --workspace --bins --examples")
    work = tempfile.mkdtemp(prefix="halo-bench-mirror-", dir=os.environ.get("BENCH_DIR", "/var/tmp"))
    try:
        t0 = time.perf_counter()
        repo, keyring = make_upstream(work, n)
        print(f"upstream of {n} packages built in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
        server = Server(repo, os.path.join(work, "control"))
        try:
            results = {"packages": n}
            for name, bench in (("halo", bench_halo), ("aptly", bench_aptly),
                                ("debmirror", bench_debmirror)):
                results[name] = bench(work, server, keyring) if name in TOOLS else None
        finally:
            server.stop()
        results["parse"] = bench_parse()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(results, indent=2))
    h, a, d = results["halo"], results["aptly"], results["debmirror"]
    print(f"\n| tool | update {n} pkgs (s) | CPU user+sys (s) | server CPU (s) | requests "
          "| no-op update (s) | no-op requests |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, r in (("halo", h), ("aptly", a), ("debmirror", d)):
        if r:
            print(f"| {name} | {r['update']:.2f} | {r['update_cpu']:.2f} | {r['server_cpu']:.2f} | {r['requests']} "
                  f"| {r['noop']:.2f} | {r['noop_requests']} |")
    if a and h:
        print(f"\naptly/halo, update wall: {a['update'] / h['update']:.2f}, "
              f"CPU: {a['update_cpu'] / h['update_cpu']:.2f}; no-op wall: {a['noop'] / h['noop']:.1f}")
    p = results["parse"]
    if "parse_s" in p:
        m = {k: p[k]["median"] for k in ("parse_s", "plan_component_s", "plan_fetch_s", "parse_plan_s",
                                         "parse_plan_cpu_s")}
        print(f"bookworm main amd64 Packages: {p['bytes']} bytes, {p['stanzas']} stanzas, "
              f"SHA256 matches signed InRelease: {p['sha256_matches_inrelease']}; medians of {p['rounds']} "
              f"rounds on {p['threads']} threads: parse {m['parse_s']:.3f} s "
              f"({p['parse_mb_per_s']:.0f} MB/s), plan {m['plan_component_s']:.3f} s + fetch plan "
              f"{m['plan_fetch_s']:.3f} s ({p['to_fetch']} files to fetch into an empty pool); "
              f"parse + plan {m['parse_plan_s']:.3f} s wall, {m['parse_plan_cpu_s']:.3f} s CPU")


if __name__ == "__main__":
    main()
