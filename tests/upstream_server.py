#!/usr/bin/env python3
"""A small HTTP server for the mirror tests: serves a directory on 127.0.0.1, logs every request,
honours conditional requests, and injects faults on demand.

    upstream_server.py ROOT CONTROL_DIR

Prints the port on the first line of stdout once it listens.

- Every request appends "METHOD PATH STATUS" to CONTROL_DIR/requests.log (flushed at once), so
  the tests count requests per path.
- Responses carry ETag (content hash) and Last-Modified; If-None-Match / If-Modified-Since give
  304 Not Modified.
- CONTROL_DIR/faults.json (re-read whenever it changes) lists faults:
      [{"path": "/dists/x/InRelease", "kind": "500", "times": 1}, ...]
  kinds: "500" (status 500), "404", "drop" (headers with the full Content-Length, half the body,
  then the connection is closed), "truncate" (half the body with a matching Content-Length),
  "corrupt" (same length, bytes flipped), "hold" (the answer waits until the file
  CONTROL_DIR/release exists, at most 60 s: a download the test keeps in flight). "times" is
  how many requests the fault hits (default: all).
"""
import email.utils
import hashlib
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ROOT = os.path.abspath(sys.argv[1])
CONTROL = os.path.abspath(sys.argv[2])
LOG = os.path.join(CONTROL, "requests.log")
FAULTS = os.path.join(CONTROL, "faults.json")

lock = threading.Lock()
state = {"stamp": None, "faults": []}


def take_fault(path):
    """The fault for this request, if any (counting down its `times`)."""
    with lock:
        try:
            st = os.stat(FAULTS)
            stamp = (st.st_mtime_ns, st.st_size)
        except FileNotFoundError:
            stamp = None
        if stamp != state["stamp"]:
            state["stamp"] = stamp
            faults = []
            if stamp is not None:
                with open(FAULTS) as f:
                    faults = json.load(f)
            state["faults"] = faults
        for fault in state["faults"]:
            if fault["path"] == path:
                times = fault.get("times")
                if times is None:
                    return fault["kind"]
                if times > 0:
                    fault["times"] = times - 1
                    return fault["kind"]
        return None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes; with Nagle's algorithm the body waits for the
    # client's (delayed, up to 40 ms) ACK of the headers, on every request of a kept-alive
    # connection. Real servers set TCP_NODELAY too.
    disable_nagle_algorithm = True

    def log_message(self, *args):
        pass

    def record(self, status):
        with lock:
            with open(LOG, "a") as f:
                f.write(f"{self.command} {self.path} {status}\n")

    def plain(self, status, text=b""):
        self.record(status)
        self.send_response(status)
        self.send_header("Content-Length", str(len(text)))
        self.end_headers()
        self.wfile.write(text)

    def do_GET(self):
        path = self.path.split("?", 1)[0]
        fault = take_fault(path)
        if fault == "hold":
            self.record(0)
            deadline = time.monotonic() + 60
            while not os.path.exists(os.path.join(CONTROL, "release")) and time.monotonic() < deadline:
                time.sleep(0.05)
            fault = None
        if fault == "500":
            return self.plain(500, b"injected failure\n")
        if fault == "404":
            return self.plain(404, b"injected not found\n")
        full = os.path.normpath(os.path.join(ROOT, path.lstrip("/")))
        if not full.startswith(ROOT + os.sep) or not os.path.isfile(full):
            return self.plain(404, b"not found\n")
        with open(full, "rb") as f:
            data = f.read()
        st = os.stat(full)
        etag = '"' + hashlib.sha256(data).hexdigest()[:32] + '"'
        last_modified = email.utils.formatdate(int(st.st_mtime), usegmt=True)
        inm = self.headers.get("If-None-Match")
        ims = self.headers.get("If-Modified-Since")
        if fault is None and (inm == etag or (inm is None and ims == last_modified)):
            self.record(304)
            self.send_response(304)
            self.send_header("ETag", etag)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body, length = data, len(data)
        if fault == "truncate":
            body = data[: len(data) // 2]
            length = len(body)
        elif fault == "drop":
            body = data[: len(data) // 2]
        elif fault == "corrupt":
            body = bytes(b ^ 0xFF for b in data)
        self.record(200)
        self.send_response(200)
        self.send_header("Content-Length", str(length))
        self.send_header("ETag", etag)
        self.send_header("Last-Modified", last_modified)
        self.end_headers()
        self.wfile.write(body)
        if fault == "drop":
            self.wfile.flush()
            self.close_connection = True
            try:
                self.connection.shutdown(2)
            except OSError:
                pass


def main():
    os.makedirs(CONTROL, exist_ok=True)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
