#!/usr/bin/env python3
"""Git's smart HTTP protocol behind basic auth, for the build tests (Python stdlib and the real
git-http-backend): serves the repositories under ROOT on 127.0.0.1.

    git_http_server.py ROOT LOG USERS_FILE

USERS_FILE holds one USER:PASSWORD a line (a file: the argv of this server is what the tests
watch for credentials).

Prints the port on the first line of stdout once it listens. A request without valid
credentials gets 401 with `WWW-Authenticate: Basic` (git then asks its credential helper); a
PASSWORD of `*` accepts any password for that user (a token given as the user). Every request
appends "METHOD PATH STATUS USER" to LOG (the user as authenticated, `-` for none), so a test
sees that the credentials were used.
"""
import base64, os, subprocess, sys, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

ROOT, LOG = os.path.abspath(sys.argv[1]), sys.argv[2]
USERS = dict(l.split(":", 1) for l in open(sys.argv[3]).read().split())
BACKEND = "/usr/lib/git-core/git-http-backend"
lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"

    def log_message(self, *args):
        pass

    def record(self, status, user):
        with lock, open(LOG, "a") as f:
            f.write(f"{self.command} {urlsplit(self.path).path} {status} {user or '-'}\n")

    def user(self):
        h = self.headers.get("Authorization") or ""
        if not h.lower().startswith("basic "):
            return None
        try:
            name, _, secret = base64.b64decode(h[6:]).decode().partition(":")
        except ValueError:
            return None
        want = USERS.get(name)
        return name if want is not None and (want == "*" or want == secret) else None

    def do_GET(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        user = self.user()
        if user is None:
            self.record(401, None)
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="git"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        url = urlsplit(self.path)
        env = dict(os.environ, GIT_PROJECT_ROOT=ROOT, GIT_HTTP_EXPORT_ALL="1", PATH_INFO=url.path,
                   QUERY_STRING=url.query, REQUEST_METHOD=self.command, REMOTE_USER=user,
                   REMOTE_ADDR="127.0.0.1", CONTENT_TYPE=self.headers.get("Content-Type") or "",
                   CONTENT_LENGTH=str(len(body)), GIT_PROTOCOL=self.headers.get("Git-Protocol") or "")
        out = subprocess.run([BACKEND], input=body, env=env, capture_output=True).stdout
        head, _, payload = out.partition(b"\r\n\r\n")
        if not _:
            head, _, payload = out.partition(b"\n\n")
        headers = [l.split(":", 1) for l in head.decode("latin-1").splitlines() if ":" in l]
        status = next((int(v.strip().split()[0]) for k, v in headers if k.lower() == "status"), 200)
        self.record(status, user)
        self.send_response(status)
        for k, v in headers:
            if k.lower() != "status":
                self.send_header(k, v.strip())
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_POST = do_GET


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
server.daemon_threads = True
print(server.server_address[1], flush=True)
server.serve_forever()
