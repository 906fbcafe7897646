#!/usr/bin/env python3
"""halo serve benchmark (issue 19), against nginx serving `halo export` of the same channel:

1. `apt-get update` and a full pool download (`apt-get download` of every package) through
   `halo serve` vs nginx (target: <= 1.2x);
2. 100 concurrent clients (`curl --parallel --parallel-max 100`) fetching pool files:
   throughput through halo serve vs nginx;
3. import over the API: the real `halo --server URL import --files-from LIST` (tar streams into
   one upload area, one import request) into an empty store, vs a local `halo import` into
   another (target: <= 1.5x); and, for comparison in the same run, the per-file route (a PUT per
   file over four connections, from Python) into a third.

Usage: bench/serve.py [N [BIG]]   N small packages (default 1000), BIG packages of 2 MiB (8)
(build first: cargo build --release --bins). BENCH_ROUNDS (default 3) rounds, medians.
BENCH_DIR puts the work directories elsewhere than /tmp. Runs as root (nginx, apt's _apt).
Not a test: it prints figures; docs/performance.md records them.
"""
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
PROFILE = os.environ.get("BENCH_PROFILE", "release")
HALO = os.path.join(TARGET, PROFILE, "halo")
GEN = os.path.join(ROOT, "bench", "gen_debs.py")
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
CLIENTS = 100


def run(cmd, **kw):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)
    if p.returncode != 0:
        sys.exit(f"{' '.join(cmd[:6])}... failed: {(p.stderr or p.stdout).strip()[-800:]}")
    return p.stdout


def timed(cmd, **kw):
    start = time.perf_counter()
    run(cmd, **kw)
    return time.perf_counter() - start


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, what):
    for _ in range(500):
        if proc.poll() is not None:
            sys.exit(f"{what} exited: {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.02)
    sys.exit(f"{what} did not listen on {port}")


def big_debs(work, count):
    """`count` packages of 2 MiB of incompressible data, built by dpkg-deb."""
    out = []
    for i in range(count):
        root = os.path.join(work, f"big{i}")
        os.makedirs(os.path.join(root, "DEBIAN"))
        os.makedirs(os.path.join(root, "usr/share/big"))
        with open(os.path.join(root, "DEBIAN/control"), "w") as f:
            f.write(f"Package: big-{i}\nVersion: 1.0\nArchitecture: all\n"
                    "Maintainer: Bench <bench@example.org>\nDescription: big payload\n")
        with open(os.path.join(root, "usr/share/big/data"), "wb") as f:
            f.write(os.urandom(2 << 20))
        deb = os.path.join(work, f"big-{i}_1.0_all.deb")
        run(["dpkg-deb", "-Znone", "--root-owner-group", "-b", root, deb])
        shutil.rmtree(root)
        out.append(deb)
    return out


def nginx(export, port, work):
    conf = os.path.join(work, "nginx.conf")
    with open(conf, "w") as f:
        f.write(f"""
worker_processes 2;
daemon off;
user root;
pid {work}/nginx.pid;
error_log {work}/nginx.error.log;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 100000;
    client_body_temp_path {work}/nginx-body;
    proxy_temp_path {work}/nginx-proxy;
    fastcgi_temp_path {work}/nginx-fastcgi;
    uwsgi_temp_path {work}/nginx-uwsgi;
    scgi_temp_path {work}/nginx-scgi;
    server {{
        listen 127.0.0.1:{port};
        root {export};
    }}
}}
""")
    proc = subprocess.Popen(["nginx", "-c", conf, "-p", work], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    wait_port(port, proc, "nginx")
    return proc


def halo_serve(store, port):
    proc = subprocess.Popen([HALO, "--store", store, "serve", "--listen", f"127.0.0.1:{port}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(port, proc, "halo serve")
    return proc


def apt_cmd(adir, tool):
    opts = [
        f"Dir::Etc::SourceList={adir}/sources.list", "Dir::Etc::SourceParts=/dev/null",
        f"Dir::Etc::Parts={adir}/apt.conf.d", f"Dir::State::Lists={adir}/lists",
        f"Dir::Cache={adir}/cache", f"Dir::State::status={adir}/status",
        "APT::Architecture=amd64", "APT::Architectures=amd64", "Debug::NoLocking=1",
        "Acquire::Languages=none", "APT::Sandbox::User=root", "Acquire::http::Proxy=false",
    ]
    cmd = [tool]
    for o in opts:
        cmd += ["-o", o]
    return cmd


def apt_round(work, base, key, names):
    """A fresh apt: update, then download every package. (update s, download s)."""
    adir = tempfile.mkdtemp(dir=work, prefix="apt-")
    for d in ("lists/partial", "cache/archives/partial", "apt.conf.d", "dl"):
        os.makedirs(os.path.join(adir, d))
    with open(os.path.join(adir, "sources.list"), "w") as f:
        f.write(f"deb [signed-by={key}] {base} trusty main\n")
    open(os.path.join(adir, "status"), "w").close()
    up = timed(apt_cmd(adir, "apt-get") + ["update"])
    dl = timed(apt_cmd(adir, "apt-get") + ["download"] + names, cwd=os.path.join(adir, "dl"))
    got = len(os.listdir(os.path.join(adir, "dl")))
    if got != len(names):
        sys.exit(f"apt-get download fetched {got} of {len(names)} packages from {base}")
    shutil.rmtree(adir)
    return up, dl


def concurrent(work, urls, total_bytes):
    """Every URL fetched by curl over CLIENTS parallel transfers: MB/s."""
    cfg = os.path.join(work, "urls.curl")
    with open(cfg, "w") as f:
        for u in urls:
            f.write(f'url = "{u}"\noutput = "/dev/null"\n')
    t = timed(["curl", "-sS", "--fail", "--noproxy", "*", "--parallel", "--parallel-max",
               str(CLIENTS), "-K", cfg])
    return total_bytes / t / 1e6


def remote_import(work, url, token, lst):
    """The real client: `halo --server URL import --files-from LST`; seconds."""
    env = dict(os.environ, HALO_TOKEN=token)
    env.pop("HALO_STORE", None)
    return timed([HALO, "--server", url, "--work-dir", os.path.join(work, "agent-work"), "import",
                  "--archive", "bench", "--dist", "trusty", "--component", "main",
                  "--files-from", lst], env=env)


def per_file_import(work, host, port, token, debs, connections=4):
    """Upload and import `debs` through the per-file route (one upload area, a PUT per file
    with its SHA-256 over `connections` keep-alive connections at once, one import):
    (seconds, of which uploads)."""
    import hashlib
    import http.client
    import threading
    auth = {"Authorization": f"Bearer {token}"}

    def call(conn, method, path, body=None, headers=None):
        conn.request(method, f"/api/v1{path}", body=body, headers={**auth, **(headers or {})})
        r = conn.getresponse()
        data = r.read()
        if r.status >= 300:
            raise RuntimeError(f"{method} {path}: {r.status} {data[:300]}")
        return json.loads(data) if data else {}

    start = time.perf_counter()
    conn = http.client.HTTPConnection(host, port)
    area = call(conn, "POST", "/uploads")
    pending = list(debs)
    lock = threading.Lock()
    errors = []

    def worker():
        c = http.client.HTTPConnection(host, port)
        while True:
            with lock:
                if not pending or errors:
                    break
                deb = pending.pop()
            with open(deb, "rb") as f:
                data = f.read()
            try:
                call(c, "PUT", f"/uploads/{area['upload']}/{os.path.basename(deb)}", data,
                     {"X-Halo-Sha256": hashlib.sha256(data).hexdigest(),
                      "Content-Type": "application/octet-stream"})
            except RuntimeError as e:
                with lock:
                    errors.append(str(e))
        c.close()

    threads = [threading.Thread(target=worker) for _ in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        sys.exit(errors[0])
    uploaded = time.perf_counter() - start
    names = [os.path.basename(d) for d in debs]
    body = json.dumps({"archive": "bench", "dist": "trusty", "component": "main",
                       "files": names})
    call(conn, "POST", f"/uploads/{area['upload']}/import", body,
         {"Content-Type": "application/json"})
    conn.close()
    return time.perf_counter() - start, uploaded


def import_round(work, i, lst, debs, served):
    """One round of the import comparison, each import into an empty store of its own (all of
    them write every blob): the real remote client (into `served`, (url, token), or a server
    of its own), a local import, the per-file route. Seconds by name."""
    def fresh(name):
        env = dict(os.environ, HALO_STORE=os.path.join(work, f"{name}-{i}"))
        run([HALO, "init"], env=env)
        return env

    def server(name):
        env = fresh(name)
        port = free_port()
        proc = halo_serve(env["HALO_STORE"], port)
        tok = run([HALO, "token", "add", "bench", "--role", "writer"], env=env).strip()
        return proc, port, tok

    out = {}
    extra = []
    try:
        if served is None:
            proc, port, tok = server("api-store")
            extra.append(proc)
            served = (f"http://127.0.0.1:{port}", tok)
        out["api"] = remote_import(work, served[0], served[1], lst)
        out["local"] = timed([HALO, "import", "--archive", "bench", "--dist", "trusty",
                              "--component", "main", "--files-from", lst], env=fresh("local"))
        proc, port, tok = server("per-file-store")
        extra.append(proc)
        out["per-file"], out["per-file uploads"] = per_file_import(
            work, "127.0.0.1", port, tok, debs)
    finally:
        for p in extra:
            p.terminate()
            p.wait()
    return out


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    big = int(sys.argv[2]) if len(sys.argv) > 2 else 8
    for tool in ("nginx", "curl", "apt-get", "dpkg-deb"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is missing (see .ci/packages)")
    work = tempfile.mkdtemp(dir=os.environ.get("BENCH_DIR"), prefix="halo-bench-serve-")
    os.chmod(work, 0o755)
    procs = []
    try:
        store = os.path.join(work, "store")
        env = dict(os.environ, HALO_STORE=store)
        run([HALO, "init"], env=env)
        run([HALO, "channel", "gate", "trusty", "--off"], env=env)
        debs = run([sys.executable, GEN, os.path.join(work, "debs"), str(n), "1.0"]).split()
        debs += big_debs(work, big)
        names = sorted({os.path.basename(d).split("_")[0] for d in debs})
        lst = os.path.join(work, "list")
        with open(lst, "w") as f:
            f.write("\n".join(debs))
        hp, np_ = free_port(), free_port()
        procs.append(halo_serve(store, hp))
        # The served store gets the packages through the API (the first round's import).
        token = run([HALO, "token", "add", "bench", "--role", "writer"], env=env).strip()
        imports = {"api": [], "local": [], "per-file": [], "per-file uploads": []}
        for i in range(ROUNDS):
            for k, v in import_round(work, i, lst, debs,
                                     (f"http://127.0.0.1:{hp}", token) if i == 0 else None
                                     ).items():
                imports[k].append(v)
        snap = run([HALO, "snapshot", "create"], env=env).split()[-1]
        run([HALO, "promote", "--to", "trusty", "--snapshot", snap], env=env)
        export = os.path.join(work, "export")
        run([HALO, "export", "--channel", "trusty", export], env=env)
        key = os.path.join(store, "keys", "repo.gpg")

        procs.append(nginx(export, np_, work))
        bases = {
            "halo serve": f"http://127.0.0.1:{hp}/channels/trusty/bench",
            "nginx": f"http://127.0.0.1:{np_}/bench",
        }
        pool = []
        for d, _, fs in os.walk(os.path.join(export, "bench", "pool")):
            for f in fs:
                p = os.path.join(d, f)
                pool.append((os.path.relpath(p, os.path.join(export, "bench")), os.path.getsize(p)))
        total = sum(s for _, s in pool)

        res = {k: {"update": [], "download": [], "mbps": []} for k in bases}
        for _ in range(ROUNDS):
            for name, base in bases.items():
                up, dl = apt_round(work, base, key, names)
                res[name]["update"].append(up)
                res[name]["download"].append(dl)
                urls = [f"{base}/{rel}" for rel, _ in pool]
                res[name]["mbps"].append(concurrent(work, urls, total))
        med = {k: {m: statistics.median(v) for m, v in r.items()} for k, r in res.items()}

        print(f"\n{n} small + {big} x 2 MiB packages, {len(pool)} pool files, "
              f"{total / 1e6:.1f} MB; median of {ROUNDS}\n")
        print("| step | halo serve | nginx (export) | halo/nginx |")
        print("| --- | --- | --- | --- |")
        for label, m, unit in (("apt-get update", "update", "s"),
                               ("apt-get download (every package)", "download", "s")):
            h, x = med["halo serve"][m], med["nginx"][m]
            print(f"| {label} | {h:.2f} {unit} | {x:.2f} {unit} | {h / x:.2f}x |")
        h, x = med["halo serve"]["update"] + med["halo serve"]["download"], \
            med["nginx"]["update"] + med["nginx"]["download"]
        print(f"| update + full pool download | {h:.2f} s | {x:.2f} s | {h / x:.2f}x |")
        h, x = med["halo serve"]["mbps"], med["nginx"]["mbps"]
        print(f"| {CLIENTS} concurrent clients, pool files | {h:.0f} MB/s | {x:.0f} MB/s | "
              f"{x / h:.2f}x slower |" if h < x else
              f"| {CLIENTS} concurrent clients, pool files | {h:.0f} MB/s | {x:.0f} MB/s | "
              f"{h / x:.2f}x faster |")

        print()
        m = {k: statistics.median(v) for k, v in imports.items()}
        print(f"import of {len(debs)} packages, median of {ROUNDS}: "
              f"`halo --server URL import` {m['api']:.2f} s, local `halo import` "
              f"{m['local']:.2f} s, API/local {m['api'] / m['local']:.2f}x (target <= 1.5x); "
              f"per-file route {m['per-file']:.2f} s (uploads {m['per-file uploads']:.2f} s, "
              f"import request {m['per-file'] - m['per-file uploads']:.2f} s), "
              f"{m['per-file'] / m['local']:.2f}x")
    finally:
        for p in procs:
            p.terminate()
            p.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
