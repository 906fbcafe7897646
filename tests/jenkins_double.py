#!/usr/bin/env python3
"""An HTTP test double of a Jenkins controller, for the agent's tests (Python stdlib only).

It models the REST surface listed in the Jenkins contract (../shared/jenkins-contract.md, §8),
with the behaviour read from Jenkins' source that the contract cites:
- §1.1 basic auth: `user:API-token` (or `user:password`, see --passwords); a bad or malformed
  Basic header is 401 with `WWW-Authenticate`; no header at all is anonymous, and anonymous
  requests to protected paths get 403 "Authentication required" (HudsonAuthenticationEntryPoint);
  an authenticated user lacking a permission gets 403 with `X-Required-Permission`.
- §1.2/§1.3 CSRF (only with --csrf; without it the issuer is 404, as on a controller with CSRF
  protection off): `/crumbIssuer/api/json` (and the whitelisted xml xpath) issues
  sha256(user;session-id + salt) and sets a `JSESSIONID.<hex>` cookie; a POST needs that crumb
  (header or form field `Jenkins-Crumb`) in the same session, unless it was authenticated with
  an API token; otherwise 403 "No valid crumb was included in the request".
- §2.3 permanent agents: `POST /computer/doCreateItem` (form: name, type, json),
  `POST /computer/createItem` with an XML body (only when --jenkins-version >= 2.539),
  `GET|POST /computer/NAME/config.xml`, `POST /computer/NAME/doDelete`, `/computer[/NAME]/api/json`.
- §2.4 the agent secret: hex HMAC-SHA256 of the node name under a per-instance key, served in
  `/computer/NAME/jenkins-agent.jnlp` (alias `slave-agent.jnlp`); §2.5 `/jnlpJars/agent.jar`
  (aliases slave.jar, remoting.jar) served from --agent-jar the way Stapler serves files
  (Last-Modified, Expires, If-Modified-Since -> 304, Range, no ETag); `GET /wsagents/` with
  `Node-Name`, `Secret-Key`, `X-Remoting-Capability` (WebSocketAgents): 400/403 as core does,
  else `101 Switching Protocols`, and the node is online while that connection stays open. No
  remoting bytes are spoken: a test's fake `java` connects, the double only flips `offline`.
- §3 jobs (folders as `job/a/job/b`): `build`, `buildWithParameters` (201 + Location of the
  queue item; 303 to the waiting item when an equal request is merged; 400 unparameterized;
  405 + `Allow: POST` on GET; 409 disabled; `token=` for jobs with `<authToken>`), queue items
  (waiting for --queue-delay, then `$LeftItem` with `executable{number,url}`, kept
  --left-ttl seconds), builds (`building`, `result`), `consoleText`, `logText/progressiveText`
  (`X-Text-Size`, `X-More-Data`), `stop`, `queue/cancelItem`, `tree=` filtering, `_class`
  everywhere; `POST /createItem?name=` and `GET|POST job/X/config.xml` (what `jenkins-jobs update`
  uses, §6.1), with parameters, label, disabled flag and authToken read from the job XML.
A build prints one console line every --line-delay seconds (cause, node, one `+ echo P=V` per
parameter, a few steps, `Finished: RESULT`), so progressive logging needs several polls.

    jenkins_double.py [--port 0] [--users halo:TOKEN[:PERMS],...] [--jobs NAME[:P[=DEFAULT]]...,...]
                      [--csrf] [--log FILE] [--agent-jar PATH] [--build-result [JOB=]RESULT,...]
                      [--fail-next N] ...   (see --help)

Hostile modes (answers no real controller gives, for the client's bounds): --foreign-root URL
hands out build URLs (a queue item's `executable.url`) on another origin; --huge REGEX:BYTES
answers GETs whose path matches with BYTES of body streamed without a Content-Length; --drip
REGEX answers them with one byte every half second for ten minutes.

Prints the port on the first line of stdout once it listens (as tests/upstream_server.py does).
Every request is appended to --log as one JSON object per line: time, method, path, query,
status, user, the relevant headers (Authorization and Secret-Key values REDACTED) and the body.
"""
import argparse, base64, email.utils, hashlib, hmac, json, os, re, secrets, sys, threading, time, traceback
import xml.etree.ElementTree as ET
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, quote, unquote, urlsplit
from xml.sax.saxutils import escape

# Permission ids as AccessDeniedException3 reports them, and the short names --users accepts.
PERMS = {"Overall/Read": "hudson.model.Hudson.Read", "Overall/Administer": "hudson.model.Hudson.Administer",
         "Agent/Create": "hudson.model.Computer.Create", "Agent/Configure": "hudson.model.Computer.Configure",
         "Agent/Connect": "hudson.model.Computer.Connect", "Agent/Delete": "hudson.model.Computer.Delete",
         "Agent/ExtendedRead": "hudson.model.Computer.ExtendedRead", "Job/Read": "hudson.model.Item.Read",
         "Job/Build": "hudson.model.Item.Build", "Job/Cancel": "hudson.model.Item.Cancel",
         "Job/Create": "hudson.model.Item.Create", "Job/Configure": "hudson.model.Item.Configure"}
SHORT = {"read": ["Overall/Read", "Job/Read"], "build": ["Job/Build", "Job/Cancel"],
         "agent": ["Agent/Create", "Agent/Configure", "Agent/Connect", "Agent/ExtendedRead"],
         "configure": ["Job/Create", "Job/Configure"], "admin": list(PERMS)}
RESULTS = ("SUCCESS", "UNSTABLE", "FAILURE", "NOT_BUILT", "ABORTED")
COLORS = {"SUCCESS": "blue", "UNSTABLE": "yellow", "FAILURE": "red", "NOT_BUILT": "notbuilt", "ABORTED": "aborted"}
JOB_CLASSES = {"project": ("hudson.model.FreeStyleProject", "hudson.model.FreeStyleBuild"),
               "flow-definition": ("org.jenkinsci.plugins.workflow.job.WorkflowJob",
                                   "org.jenkinsci.plugins.workflow.job.WorkflowRun")}
FOLDER = "com.cloudbees.hudson.plugins.folder.Folder"
BAD_NAME_CHARS = set("?*/\\%!@#$^&|<>[]:;")
LOGGED_HEADERS = ("Authorization", "Content-Type", "Jenkins-Crumb", "Cookie", "User-Agent", "If-Modified-Since",
                  "Range", "Upgrade", "Node-Name", "Secret-Key", "X-Remoting-Capability")


class HttpError(Exception):
    def __init__(self, status, message="", headers=()):
        super().__init__(message)
        self.status, self.message, self.headers = status, message, list(headers)


def denied(user, perm):
    """AccessDeniedException3 for an authenticated user, the entry point's 403 for anonymous."""
    if user is None:
        raise HttpError(403, "Authentication required", [("X-You-Are-Authenticated-As", "anonymous")])
    raise HttpError(403, f"{user} is missing the {perm} permission",
                    [("X-You-Are-Authenticated-As", user), ("X-Required-Permission", PERMS[perm])])


def parse_tree(spec):
    """`a,b[c,d{0,2}]` -> {"a": None, "b": {"c": None, "d": None}} (ranges are ignored)."""
    pos, spec = 0, re.sub(r"\{[^}]*\}", "", spec)

    def level():
        nonlocal pos
        out = {}
        while pos < len(spec) and spec[pos] != "]":
            name = re.match(r"[^,\[\]]*", spec[pos:]).group(0)
            pos += len(name)
            sub = None
            if pos < len(spec) and spec[pos] == "[":
                pos += 1
                sub = level()
                pos += 1
            out[name] = sub
            if pos < len(spec) and spec[pos] == ",":
                pos += 1
        return out
    return level()


def prune(value, tree):
    if tree is None:
        return value
    if isinstance(value, list):
        return [prune(v, tree) for v in value]
    if isinstance(value, dict):
        return {k: prune(v, tree.get(k)) for k, v in value.items() if k == "_class" or k in tree}
    return value


class Build:
    def __init__(self, job, number, item, node, result, line_delay):
        self.job, self.number, self.item, self.node = job, number, item, node
        self.result, self.line_delay, self.start, self.aborted_at = result, line_delay, item.ready_at, None
        on = f"remotely on {node['name']} ({' '.join(node['labels'])}) in workspace {node['remoteFS']}" if node \
            else "on the built-in node in workspace /var/jenkins_home"
        self.lines = [item.cause, f"Building {on}/workspace/{job.name}",
                      f"[{job.name.split('/')[-1]}] $ /bin/sh -xe /tmp/jenkins{number}.sh"]
        for k, v in item.params:
            self.lines += [f"+ echo {k}={v}", f"{k}={v}"]
        self.lines += [f"halo double: step {i}/3" for i in (1, 2, 3)]

    def visible(self, now):
        """(log text so far, still building)"""
        lines = lambda t: 1 + int((t - self.start) / self.line_delay) if self.line_delay > 0 else len(self.lines) + 1
        shown = lines(now)  # the cause line is there as soon as the build exists
        if self.aborted_at is not None:
            shown = min(shown, lines(self.aborted_at))
            return "".join(f"{l}\n" for l in self.lines[:shown]) + "Aborted by user\nFinished: ABORTED\n", False
        if shown > len(self.lines):
            return "".join(f"{l}\n" for l in self.lines) + f"Finished: {self.result}\n", False
        return "".join(f"{l}\n" for l in self.lines[:shown]), True

    def final_result(self, now):
        return "ABORTED" if self.aborted_at is not None else (None if self.visible(now)[1] else self.result)


class Item:
    def __init__(self, qid, job, params, cause, ready_at):
        self.id, self.job, self.params, self.cause = qid, job, params, cause
        self.since, self.ready_at, self.build, self.cancelled, self.left_at = time.time(), ready_at, None, False, None


class Job:
    def __init__(self, name, xml):
        self.name, self.builds, self.next_number = name, {}, 1
        self.configure(xml)

    def configure(self, xml):
        root = ET.fromstring(xml)
        if root.tag not in JOB_CLASSES:
            raise HttpError(400, f"unsupported job type <{root.tag}>")
        self.xml, self.cls = xml, JOB_CLASSES[root.tag]
        self.params, self.choices = [], {}  # [(name, default, class)], {name: [choice]}
        for d in root.iterfind(".//parameterDefinitions/*"):
            choices = [s.text or "" for s in d.iterfind("choices//string")]
            self.params.append((d.findtext("name"), d.findtext("defaultValue") or next(iter(choices), ""), d.tag))
            if choices:
                self.choices[d.findtext("name")] = choices
        self.label = (root.findtext("assignedNode") or "").strip()
        self.disabled = (root.findtext("disabled") or "false").strip() == "true"
        self.token = (root.findtext("authToken") or "").strip() or None


def job_xml(params):
    defs = "".join(f"<hudson.model.StringParameterDefinition><name>{escape(n)}</name>"
                   f"<defaultValue>{escape(d)}</defaultValue></hudson.model.StringParameterDefinition>"
                   for n, d in params)
    props = f"<hudson.model.ParametersDefinitionProperty><parameterDefinitions>{defs}</parameterDefinitions>" \
            "</hudson.model.ParametersDefinitionProperty>" if params else ""
    return f"<?xml version='1.1' encoding='UTF-8'?>\n<project><description/><properties>{props}</properties>" \
           "<disabled>false</disabled><builders/><publishers/></project>"


def node_xml(n):
    ws = n["launcher"].get("workDirSettings", {})
    launcher = f"""<launcher class="hudson.slaves.JNLPLauncher">
    <workDirSettings>
      <disabled>{str(ws.get("disabled", False)).lower()}</disabled>{
      f"{chr(10)}      <workDirPath>{escape(ws['workDirPath'])}</workDirPath>" if ws.get("workDirPath") else ""}
      <internalDir>{escape(ws.get("internalDir", "remoting"))}</internalDir>
      <failIfWorkDirIsMissing>{str(ws.get("failIfWorkDirIsMissing", False)).lower()}</failIfWorkDirIsMissing>
    </workDirSettings>
    <webSocket>{str(n["launcher"].get("webSocket", False)).lower()}</webSocket>
  </launcher>"""
    return f"""<?xml version='1.1' encoding='UTF-8'?>
<slave>
  <name>{escape(n["name"])}</name>
  <description>{escape(n["description"])}</description>
  <remoteFS>{escape(n["remoteFS"])}</remoteFS>
  <numExecutors>{n["numExecutors"]}</numExecutors>
  <mode>{n["mode"]}</mode>
  <retentionStrategy class="hudson.slaves.RetentionStrategy$Always"/>
  {launcher}
  <label>{escape(" ".join(n["labels"]))}</label>
  {n["nodeProperties"]}
</slave>"""


def node_from_xml(body, name=None):
    try:
        root = ET.fromstring(body)
    except ET.ParseError as e:
        raise HttpError(400, f"invalid node XML: {e}")
    if root.tag != "slave":
        raise HttpError(400, "Node types do not match")
    ws = root.find("launcher/workDirSettings")
    props = root.find("nodeProperties")
    return {"name": name or root.findtext("name", ""), "description": root.findtext("description", ""),
            "remoteFS": root.findtext("remoteFS", ""), "numExecutors": int(root.findtext("numExecutors", "1")),
            "mode": root.findtext("mode", "NORMAL"), "labels": root.findtext("label", "").split(),
            "nodeProperties": ET.tostring(props, encoding="unicode").strip() if props is not None else "<nodeProperties/>",
            "launcher": {"webSocket": root.findtext("launcher/webSocket", "false") == "true",
                         "workDirSettings": {} if ws is None else {
                             "disabled": ws.findtext("disabled") == "true", "workDirPath": ws.findtext("workDirPath"),
                             "internalDir": ws.findtext("internalDir") or "remoting",
                             "failIfWorkDirIsMissing": ws.findtext("failIfWorkDirIsMissing") == "true"}}}


class Controller:
    """All state, behind one lock; time moves queue items and builds forward when asked."""

    def __init__(self, opts):
        self.opts, self.lock = opts, threading.Lock()
        self.users = {}  # name -> {"token", "password", "perms"}
        for spec in filter(None, opts.users.split(",")):
            name, token, *perms = spec.split(":")
            granted = set()
            for p in (perms[0].split("+") if perms else ["admin"]):
                granted.update(SHORT.get(p, [p]))
            if granted - set(PERMS):
                sys.exit(f"unknown permission(s) {sorted(granted - set(PERMS))} in --users {spec}")
            self.users[name] = {"token": token, "password": None, "perms": granted}
        for spec in filter(None, opts.passwords.split(",")):
            name, password = spec.split(":", 1)
            if name not in self.users:
                sys.exit(f"--passwords {name}: not a user of --users")
            self.users[name]["password"] = password
        self.results = {}
        for spec in opts.build_result.split(","):
            job, _, result = spec.rpartition("=")
            if result not in RESULTS:
                sys.exit(f"--build-result {spec}: the result is one of {', '.join(RESULTS)}")
            self.results[job or None] = result
        self.jobs, self.folders, self.nodes, self.items = {}, set(), {}, {}
        self.next_queue_id, self.fail_next = 1, opts.fail_next
        self.sessions, self.cookie = set(), "JSESSIONID." + secrets.token_hex(4)
        self.salt, self.node_key = secrets.token_hex(16), secrets.token_bytes(32)
        for spec in filter(None, opts.jobs.split(",")):
            name, *params = spec.split(":")
            self.add_job(name, job_xml([p.partition("=")[::2] for p in params]), make_folders=True)

    def add_job(self, full, xml, make_folders=False):
        parent = full.rpartition("/")[0]
        if parent and parent not in self.folders and make_folders:
            self.add_job(parent, f"<{FOLDER}/>", make_folders)
        if full in self.jobs or full in self.folders:
            raise HttpError(400, f"A job already exists with the name ‘{full.split('/')[-1]}’")
        if xml.lstrip().startswith(f"<{FOLDER}") or f"\n<{FOLDER}" in xml:
            self.folders.add(full)
        else:
            self.jobs[full] = Job(full, xml)

    def secret(self, node):
        return hmac.new(self.node_key, node.encode(), hashlib.sha256).hexdigest()

    def crumb(self, user, session):
        return hashlib.sha256(f"{user or 'anonymous'};{session}{self.salt}".encode()).hexdigest()

    def tick(self):
        """Starts queue items whose time has come; forgets left items older than --left-ttl."""
        now = time.time()
        for item in list(self.items.values()):
            if item.left_at is None and not item.cancelled and now >= item.ready_at:
                job = item.job
                node = next((n for n in self.nodes.values() if n["online"] and
                             (not job.label or job.label in n["labels"])), None)
                result = self.results.get(job.name, self.results.get(None, "SUCCESS"))
                item.build = Build(job, job.next_number, item, node, result, self.opts.line_delay)
                job.builds[job.next_number] = item.build
                job.next_number += 1
                item.left_at = now
            if item.left_at is not None and now - item.left_at > self.opts.left_ttl:
                del self.items[item.id]

    def schedule(self, job, params, cause):
        for item in self.items.values():
            if item.job is job and item.left_at is None and not item.cancelled and item.params == params:
                return item, False
        item = Item(self.next_queue_id, job, params, cause, time.time() + self.opts.queue_delay)
        self.items[item.id] = item
        self.next_queue_id += 1
        return item, True


def job_url(root, full):
    return root + "".join(f"job/{quote(seg, safe='')}/" for seg in full.split("/"))


def causes_json(item):
    user = item.cause.removeprefix("Started by user ")
    cause = {"_class": "hudson.model.Cause$RemoteCause", "shortDescription": item.cause} if user == item.cause \
        else {"_class": "hudson.model.Cause$UserIdCause", "shortDescription": item.cause, "userId": user, "userName": user}
    actions = [{"_class": "hudson.model.CauseAction", "causes": [cause]}]
    if item.job.params:
        actions.insert(0, {"_class": "hudson.model.ParametersAction", "parameters": [
            {"_class": "hudson.model.StringParameterValue", "name": k, "value": v} for k, v in item.params]})
    return actions


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes; without TCP_NODELAY the body waits for the client's
    # delayed ACK on every request of a kept-alive connection (see tests/upstream_server.py).
    disable_nagle_algorithm = True
    server_version = "Jetty(12.0.25)"
    sys_version = ""

    def log_message(self, *args):
        pass

    def handle(self):
        try:
            super().handle()
        except (ConnectionResetError, BrokenPipeError):
            pass  # the client went away; nothing to answer

    def hostile(self, path):
        """--huge and --drip: True when this request got one of those answers."""
        opts = self.server.controller.opts
        huge = opts.huge and opts.huge.rsplit(":", 1)
        if huge and re.search(huge[0], path):
            size, chunk = int(huge[1]), b" " * (1 << 20)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(b"[")
            sent = 1
            while sent < size:
                self.wfile.write(chunk[:size - sent])
                sent += len(chunk)
            self.close_connection = True
            return True
        if opts.drip and re.search(opts.drip, path):
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", "1200")
            self.end_headers()
            for _ in range(1200):
                self.wfile.write(b" ")
                self.wfile.flush()
                time.sleep(0.5)
            return True
        return False

    def do_GET(self):
        c = self.server.controller
        url = urlsplit(self.path)
        if self.hostile(url.path):
            return
        self.query = parse_qs(url.query, keep_blank_values=True)
        self.body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.params = {k: v[0] for k, v in self.query.items()}
        if (self.headers.get("Content-Type") or "").startswith("application/x-www-form-urlencoded"):
            self.params.update({k: v[0] for k, v in parse_qs(self.body.decode(), keep_blank_values=True).items()})
        self.user, self.via_token, self.extra, self.set_cookie, hold = None, False, [], None, None
        try:
            with c.lock:
                c.tick()
                self.root = f"http://{self.headers.get('Host') or '127.0.0.1:%d' % self.server.server_port}/"
                self.authenticate(c)
                self.check_crumb(c)
                status, ctype, body = self.route(c, url.path)
                if status == 101:
                    hold = body
        except HttpError as e:
            status, ctype, body, self.extra = e.status, "text/plain;charset=utf-8", e.message, self.extra + e.headers
        except Exception:  # a bug in the double: say so loudly instead of dropping the connection
            traceback.print_exc()
            status, ctype, body = 500, "text/plain;charset=utf-8", traceback.format_exc()
        self.reply(status, ctype, b"" if hold else body)
        if hold:
            self.hold_agent(c, hold)

    do_POST = do_HEAD = do_GET

    def reply(self, status, ctype, body):
        data = body.encode() if isinstance(body, str) else body
        self.record(status)  # before answering, so a client that got its answer finds it logged
        self.send_response(status)
        for k, v in [("X-Hudson", "1.395"), ("X-Jenkins", self.server.controller.opts.jenkins_version),
                     ("X-Jenkins-Session", self.server.session_hash)] + self.extra:
            self.send_header(k, v.encode("latin-1", "replace").decode("latin-1"))
        if self.set_cookie:
            self.send_header("Set-Cookie", f"{self.server.controller.cookie}={self.set_cookie}; Path=/; HttpOnly")
        if status != 101:
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def record(self, status):
        if not self.server.controller.opts.log:
            return
        headers = {h: self.headers[h] for h in LOGGED_HEADERS if h in self.headers}
        for h in ("Authorization", "Secret-Key"):
            if h in headers:
                headers[h] = headers[h].split(" ")[0] + " REDACTED" if h == "Authorization" else "REDACTED"
        entry = {"time": time.time(), "method": self.command, "path": urlsplit(self.path).path, "query": self.query,
                 "status": status, "user": self.user, "headers": headers,
                 "body": self.body[:65536].decode("utf-8", "replace")}
        with self.server.log_lock, open(self.server.controller.opts.log, "a") as f:
            f.write(json.dumps(entry) + "\n")

    # --- security (§1) ---
    def authenticate(self, c):
        h = self.headers.get("Authorization") or ""
        if not h.lower().startswith("basic "):
            return
        try:
            name, sep, secret = base64.b64decode(h[6:], validate=True).decode().partition(":")
        except ValueError:
            name, sep, secret = "", "", ""
        u = c.users.get(name)
        realm = [("WWW-Authenticate", 'Basic realm="Jenkins"')]
        if not sep:
            raise HttpError(401, "Malformed HTTP basic Authorization header", realm)
        if u and hmac.compare_digest(secret.encode(), u["token"].encode()):
            self.user, self.via_token = name, True
        elif u and u["password"] and hmac.compare_digest(secret.encode(), u["password"].encode()):
            self.user = name
        else:
            raise HttpError(401, f"Invalid password/token for user: {name}", realm)

    def session(self, c, create):
        for part in (self.headers.get("Cookie") or "").split(";"):
            k, _, v = part.strip().partition("=")
            if k == c.cookie and v in c.sessions:
                return v
        if create:
            self.set_cookie = "node0" + secrets.token_hex(12)
            c.sessions.add(self.set_cookie)
            return self.set_cookie

    def check_crumb(self, c):
        if self.command != "POST" or not c.opts.csrf or self.via_token:
            return  # CrumbFilter checks POSTs only; ApiCrumbExclusion passes API-token requests
        crumb = self.headers.get("Jenkins-Crumb") or self.params.get("Jenkins-Crumb")
        if not crumb or not hmac.compare_digest(crumb, c.crumb(self.user, self.session(c, True))):
            raise HttpError(403, "No valid crumb was included in the request")

    def need(self, perm):
        if self.user is None or perm not in self.server.controller.users[self.user]["perms"]:
            denied(self.user, perm)

    def post_only(self):
        if self.command != "POST":
            raise HttpError(405, "This URL requires POST", [("Allow", "POST")])

    def json(self, value):
        tree = self.params.get("tree")
        return 200, "application/json;charset=utf-8", json.dumps(prune(value, parse_tree(tree) if tree else None))

    # --- routing ---
    def route(self, c, path):
        if path.rstrip("/") in ("/login", "/tcpSlaveAgentListener"):
            return 200, "text/html;charset=utf-8", "<html><body>Jenkins</body></html>"
        if path.rstrip("/") == "/wsagents":
            return self.ws_agent(c)
        self.need("Overall/Read")  # Jenkins.getTarget()
        if path == "/":
            return 200, "text/html;charset=utf-8", "<html><head><title>Dashboard [Jenkins]</title></head></html>"
        if path == "/api/json":
            return self.json(self.root_json(c))
        if path == "/me/api/json":
            return self.json({"_class": "hudson.model.User", "absoluteUrl": f"{self.root}user/{self.user}",
                              "description": None, "fullName": self.user, "id": self.user, "property": []})
        if path.startswith("/crumbIssuer/api/") and c.opts.csrf:
            crumb = c.crumb(self.user, self.session(c, True))
            if "jsonp" in self.params:
                raise HttpError(403, "jsonp is not allowed")
            if path == "/crumbIssuer/api/xml" and self.params.get("xpath") == 'concat(//crumbRequestField,":",//crumb)':
                return 200, "text/plain;charset=utf-8", f"Jenkins-Crumb:{crumb}"
            return self.json({"_class": "hudson.security.csrf.DefaultCrumbIssuer", "crumb": crumb,
                              "crumbRequestField": "Jenkins-Crumb"})
        if re.fullmatch(r"/jnlpJars/(agent|slave|remoting)\.jar/?", path):
            return self.agent_jar(c, path)
        if path.startswith("/computer"):
            return self.computer(c, path)
        if path.startswith("/queue/"):
            return self.queue(c, path)
        m = re.fullmatch(r"((?:/job/[^/]+)*)/createItem", path)
        if m:
            return self.create_job(c, "/".join(unquote(s) for s in re.findall(r"/job/([^/]+)", m.group(1))))
        m = re.fullmatch(r"((?:/job/[^/]+)+)(/.*)?", path)
        if m:
            return self.job(c, "/".join(unquote(s) for s in re.findall(r"/job/([^/]+)", m.group(1))),
                            (m.group(2) or "/").rstrip("/") or "/")
        raise HttpError(404, "Not Found")

    def root_json(self, c):
        top = sorted(n for n in list(c.jobs) + list(c.folders) if "/" not in n)
        return {"_class": "hudson.model.Hudson", "assignedLabels": [{"name": "built-in"}], "mode": "NORMAL",
                "nodeDescription": "the Jenkins controller's built-in node", "nodeName": "", "numExecutors": 0,
                "description": None, "jobs": [self.item_summary(c, n) for n in top], "quietingDown": False,
                "primaryView": {"_class": "hudson.model.AllView", "name": "all", "url": self.root},
                "slaveAgentPort": -1, "url": self.root, "useCrumbs": c.opts.csrf, "useSecurity": True,
                "views": [{"_class": "hudson.model.AllView", "name": "all", "url": self.root}]}

    def item_summary(self, c, full):
        if full in c.folders:
            return {"_class": FOLDER, "name": full.split("/")[-1], "url": job_url(self.root, full)}
        job = c.jobs[full]
        return {"_class": job.cls[0], "name": full.split("/")[-1], "url": job_url(self.root, full),
                "color": self.color(job)}

    # --- agents (§2) ---
    def agent_jar(self, c, path):
        jar = c.opts.agent_jar
        data = open(jar, "rb").read() if jar else b"PK\x05\x06" + bytes(18)  # an empty zip as stub
        mtime = int(os.stat(jar).st_mtime if jar else self.server.started)
        stamp = email.utils.formatdate(mtime, usegmt=True)
        self.extra = [("Content-Disposition", f"attachment; filename={path.strip('/').split('/')[-1]}"),
                      ("Last-Modified", stamp), ("Expires", stamp), ("Accept-Ranges", "bytes"),
                      ("X-Content-Type-Options", "nosniff")]
        since = self.headers.get("If-Modified-Since")
        try:
            if since and mtime < email.utils.parsedate_to_datetime(since).timestamp() + 1:
                self.extra = [h for h in self.extra if h[0] not in ("Last-Modified", "Expires")]
                return 304, "application/java-archive", b""
        except (TypeError, ValueError):
            pass
        m = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range") or "")
        if m:
            start, end = int(m.group(1)), min(int(m.group(2) or len(data) - 1) + 1, len(data))
            self.extra.append(("Content-Range", f"bytes {start}-{end - 1}/{len(data)}"))
            return 206, "application/java-archive", data[start:end]
        return 200, "application/java-archive", data

    def computer(self, c, path):
        if path in ("/computer", "/computer/"):
            return 200, "text/html;charset=utf-8", "<html><head><title>Nodes [Jenkins]</title></head></html>"
        if path == "/computer/api/json":
            return self.json({"_class": "hudson.model.ComputerSet", "displayName": "Nodes", "busyExecutors": 0,
                              "totalExecutors": sum(n["numExecutors"] for n in c.nodes.values() if n["online"]),
                              "computer": [{"_class": "hudson.model.Hudson$MasterComputer", "displayName": "Built-In Node",
                                            "offline": False, "idle": True, "numExecutors": 0}]
                              + [self.node_json(c, n) for n in c.nodes.values()]})
        if path in ("/computer/doCreateItem", "/computer/createItem"):
            self.post_only()
            self.need("Agent/Create")
            return self.create_node(c, path.endswith("doCreateItem"))
        m = re.fullmatch(r"/computer/([^/]+)(/.*)?", path)
        node = c.nodes.get(unquote(m.group(1))) if m else None
        if node is None:
            raise HttpError(404, "Not Found")
        rest = (m.group(2) or "/").rstrip("/")
        if rest == "/api/json":
            return self.json(self.node_json(c, node))
        if rest == "/config.xml":
            if self.command == "GET":
                self.need("Agent/ExtendedRead")
                return 200, "application/xml", node_xml(node)
            self.need("Agent/Configure")
            new = node_from_xml(self.body)  # replaceNode: same computer, possibly a new name
            del c.nodes[node["name"]]
            node.update(new)
            c.nodes[node["name"]] = node
            return 200, "text/plain", ""
        if rest == "/doDelete":
            self.post_only()
            self.need("Agent/Delete")
            del c.nodes[node["name"]]
            self.extra.append(("Location", f"{self.root}computer/"))
            return 302, "text/plain", ""
        if rest in ("/jenkins-agent.jnlp", "/slave-agent.jnlp"):
            self.need("Agent/Connect")
            return 200, "application/x-java-jnlp-file", self.jnlp(c, node)
        raise HttpError(404, "Not Found")

    def create_node(self, c, form):
        if form:  # ComputerSet.doDoCreateItem: name + type + structured json
            name = (self.params.get("name") or "").strip()
            if self.params.get("type") != "hudson.slaves.DumbSlave$DescriptorImpl":
                raise HttpError(500, f"unknown node type {self.params.get('type')}")
            try:
                f = json.loads(self.params.get("json") or "")
            except ValueError:
                raise HttpError(400, "Nothing is submitted")
            launcher = f.get("launcher") or {}
            if launcher.get("stapler-class", "hudson.slaves.JNLPLauncher") != "hudson.slaves.JNLPLauncher":
                raise HttpError(400, "the double models inbound (JNLPLauncher) agents only")
            node = {"name": name, "description": f.get("nodeDescription") or "", "remoteFS": f.get("remoteFS") or "",
                    "numExecutors": int(f.get("numExecutors") or 1), "mode": f.get("mode") or "NORMAL",
                    "labels": (f.get("labelString") or "").split(), "nodeProperties": "<nodeProperties/>",
                    "launcher": {"webSocket": bool(launcher.get("webSocket")),
                                 "workDirSettings": launcher.get("workDirSettings") or {}}}
        else:  # ComputerSet.doCreateItem with an XML body (2.539 and later)
            ctype = self.headers.get("Content-Type") or ""
            new = tuple(int(x) for x in c.opts.jenkins_version.split(".")[:2]) >= (2, 539)
            if not new or not ctype.startswith(("application/xml", "text/xml")):
                raise HttpError(400, "No mode given", [("X-Error", "No mode given")])
            node = node_from_xml(self.body, (self.params.get("name") or "").strip() or None)
            name = node["name"]
            if name in c.nodes:
                raise HttpError(400, f"Node '{name}' already exists", [("X-Error", f"Node '{name}' already exists")])
        if not name or name in (".", "..") or BAD_NAME_CHARS & set(name):
            raise HttpError(400, f"‘{name}’ is an unsafe name", [("X-Error", "unsafe name")])
        if name in c.nodes:
            msg = f"Agent called ‘{name}’ already exists"
            raise HttpError(400, msg, [("X-Error", msg)])
        node["online"] = False
        c.nodes[name] = node
        if not form:
            return 200, "text/plain", ""
        self.extra.append(("Location", f"{self.root}computer/"))
        return 302, "text/plain", ""

    def node_json(self, c, n):
        busy = any(b.node is n and b.visible(time.time())[1] for j in c.jobs.values() for b in j.builds.values())
        return {"_class": "hudson.slaves.SlaveComputer", "displayName": n["name"], "description": n["description"],
                "offline": not n["online"], "temporarilyOffline": False, "idle": not busy,
                "offlineCause": None, "offlineCauseReason": "", "numExecutors": n["numExecutors"],
                "executors": [{}] * n["numExecutors"] if n["online"] else [], "oneOffExecutors": [],
                "jnlpAgent": True, "launchSupported": False, "manualLaunchAllowed": True,
                "assignedLabels": [{"name": l} for l in n["labels"] + [n["name"]]], "icon": "symbol-computer",
                "iconClassName": "symbol-computer", "absoluteRemotePath": n["remoteFS"] if n["online"] else None,
                "loadStatistics": {"_class": "hudson.model.Label$1"}, "monitorData": {}}

    def jnlp(self, c, n):
        ws = n["launcher"].get("workDirSettings") or {}
        args = [c.secret(n["name"]), n["name"]] + (["-webSocket"] if n["launcher"].get("webSocket") else [])
        if not ws.get("disabled"):
            args += ["-workDir", ws.get("workDirPath") or n["remoteFS"], "-internalDir", ws.get("internalDir") or "remoting"]
            args += ["-failIfWorkDirIsMissing"] if ws.get("failIfWorkDirIsMissing") else []
        args += ["-url", self.root]
        return "<jnlp><application-desc>" + "".join(f"<argument>{escape(a)}</argument>" for a in args) + \
            "</application-desc></jnlp>"

    def ws_agent(self, c):
        name, secret = self.headers.get("Node-Name"), self.headers.get("Secret-Key")
        if not (name and secret and self.headers.get("X-Remoting-Capability")):
            raise HttpError(400, "This endpoint is only for use from agent.jar in WebSocket mode")
        if name not in c.nodes:
            raise HttpError(400, "no such agent")
        if not hmac.compare_digest(secret.encode(), c.secret(name).encode()):
            raise HttpError(403, "Forbidden")
        if c.nodes[name]["online"]:
            raise HttpError(400, f"{name} is already connected to this controller. Rejecting this connection.")
        key = self.headers.get("Sec-WebSocket-Key") or ""
        accept = base64.b64encode(hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest())
        self.extra = [("Upgrade", "websocket"), ("Connection", "Upgrade"), ("Sec-WebSocket-Accept", accept.decode()),
                      ("X-Remoting-Capability", self.headers["X-Remoting-Capability"]),
                      ("X-Remoting-Minimum-Version", "3107.v665000b_51092"), ("Connection-Cookie", secrets.token_hex(16))]
        c.nodes[name]["online"] = True
        return 101, "", c.nodes[name]

    def hold_agent(self, c, node):
        """The node stays online until the agent closes its connection."""
        self.close_connection = True
        try:
            while self.connection.recv(4096):
                pass
        except OSError:
            pass
        with c.lock:
            node["online"] = False

    # --- jobs, queue, builds (§3) ---
    def color(self, job):
        done = [b.final_result(time.time()) for b in job.builds.values()]
        last = next((r for r in reversed(done) if r), None)
        color = "disabled" if job.disabled else COLORS[last] if last else "notbuilt"
        return color + "_anime" if any(r is None for r in done) else color

    def create_job(self, c, folder):
        self.post_only()
        self.need("Job/Create")
        if folder and folder not in c.folders:
            raise HttpError(404, "Not Found")
        name = (self.params.get("name") or "").strip()
        if not name or BAD_NAME_CHARS & set(name):
            raise HttpError(400, f"‘{name}’ is an unsafe name")
        try:
            c.add_job(f"{folder}/{name}" if folder else name, self.body.decode())
        except ET.ParseError as e:
            raise HttpError(400, f"invalid job XML: {e}")
        return 200, "text/plain", ""

    def job(self, c, full, rest):
        if full in c.folders and rest == "/api/json":
            kids = sorted(n for n in list(c.jobs) + list(c.folders) if n.rpartition("/")[0] == full)
            return self.json({"_class": FOLDER, "name": full.split("/")[-1], "fullName": full,
                              "url": job_url(self.root, full), "jobs": [self.item_summary(c, n) for n in kids]})
        job = c.jobs.get(full)
        if job is None or "Job/Read" not in c.users[self.user]["perms"]:
            raise HttpError(404, "Not Found")  # items the user cannot read do not exist for them
        if rest == "/api/json":
            return self.json(self.job_json(c, job))
        if rest == "/config.xml":
            self.need("Job/Configure")
            if self.command == "GET":
                return 200, "application/xml", job.xml
            try:
                job.configure(self.body.decode())
            except ET.ParseError as e:
                raise HttpError(400, f"invalid job XML: {e}")
            return 200, "text/plain", ""
        if rest in ("/build", "/buildWithParameters"):
            return self.trigger(c, job, rest == "/build")
        m = re.fullmatch(r"/(\d+|lastBuild|lastCompletedBuild|lastSuccessfulBuild|lastFailedBuild)(/.*)?", rest)
        build = self.permalink(job, m.group(1)) if m else None
        if build is None:
            raise HttpError(404, "Not Found")
        sub, now = m.group(2) or "/", time.time()
        text, building = build.visible(now)
        if sub == "/api/json":
            return self.json(self.build_json(build, now))
        if sub == "/consoleText":
            return 200, "text/plain;charset=utf-8", text
        if sub == "/logText/progressiveText":
            data = text.encode()
            start = int(self.params.get("start") or 0)
            start = 0 if start > len(data) else start
            self.extra = [("X-Text-Size", str(len(data)))] + ([("X-More-Data", "true")] if building else [])
            return 200, "text/plain;charset=utf-8", data[start:]
        if sub == "/stop":
            self.post_only()
            self.need("Job/Cancel")
            if building:
                build.aborted_at = now
            self.extra.append(("Location", job_url(self.root, job.name) + f"{build.number}/"))
            return 302, "text/plain", ""
        raise HttpError(404, "Not Found")

    def permalink(self, job, which):
        if which.isdigit():
            return job.builds.get(int(which))
        want = {"lastBuild": lambda r: True, "lastCompletedBuild": lambda r: r is not None,
                "lastSuccessfulBuild": lambda r: r == "SUCCESS",
                "lastFailedBuild": lambda r: r == "FAILURE"}[which]
        return next((b for b in reversed(job.builds.values()) if want(b.final_result(time.time()))), None)

    def trigger(self, c, job, plain):
        """ParameterizedJobMixIn.doBuild / doBuildWithParameters, BuildAuthorizationToken."""
        token = self.params.get("token")
        if job.token and token is not None:
            if not hmac.compare_digest(token.encode(), job.token.encode()):
                raise HttpError(403, "Invalid token provided.")
        else:
            self.need("Job/Build")
            if self.command != "POST":
                raise HttpError(405, "This URL requires POST", [("Allow", "POST")])
        if not plain and c.fail_next > 0:
            c.fail_next -= 1
            raise HttpError(500, "injected failure (--fail-next)")
        if job.disabled:
            raise HttpError(409, f"{job.name} is not buildable")
        if not job.params and not plain:
            raise HttpError(400, f"{job.name} is not parameterized")
        given = self.params
        if job.params and plain:  # the UI's form: json={"parameter": [{"name":..., "value":...}]}
            if not self.params.get("json"):
                raise HttpError(400, "Nothing is submitted")
            given = {p["name"]: p["value"] for p in json.loads(self.params["json"]).get("parameter", [])}
            unknown = set(given) - {n for n, _, _ in job.params}
            if unknown:
                raise HttpError(500, f"No such parameter definition: {sorted(unknown)[0]}")
        params = [(n, given.get(n, d)) for n, d, _ in job.params]
        for n, v in params:  # ChoiceParameterDefinition.checkValue
            if n in job.choices and v not in job.choices[n]:
                raise HttpError(500, f"Illegal choice for parameter {n}: {v}")
        cause = "Started by remote host" if job.token and token else f"Started by user {self.user}"
        item, created = c.schedule(job, params, cause)
        self.extra.append(("Location", f"{self.root}queue/item/{item.id}/"))
        return (201 if created or plain else 303), "text/plain", ""

    def queue(self, c, path):
        if path == "/queue/api/json":
            return self.json({"_class": "hudson.model.Queue", "discoverableItems": [],
                              "items": [self.item_json(i) for i in c.items.values() if i.left_at is None]})
        if path == "/queue/cancelItem":
            self.post_only()
            item = c.items.get(int(self.params.get("id") or -1))
            if item is None or item.left_at is not None:
                raise HttpError(404, f"Provided id ({self.params.get('id')}) not found")
            self.need("Job/Cancel")
            item.cancelled, item.left_at = True, time.time()
            return 204, "text/plain", ""
        m = re.fullmatch(r"/queue/item/(\d+)/api/json", path)
        if not m or int(m.group(1)) not in c.items:
            raise HttpError(404, "Not Found")
        return self.json(self.item_json(c.items[int(m.group(1))]))

    def item_json(self, item):
        job, now = item.job, time.time()
        out = {"actions": causes_json(item), "blocked": False, "buildable": False, "id": item.id,
               "inQueueSince": int(item.since * 1000), "params": "".join(f"\n{k}={v}" for k, v in item.params),
               "stuck": False, "task": {"_class": job.cls[0], "name": job.name.split("/")[-1],
                                        "url": job_url(self.root, job.name), "color": self.color(job)},
               "url": f"queue/item/{item.id}/"}
        if item.left_at is None:
            return {"_class": "hudson.model.Queue$WaitingItem", **out, "timestamp": int(item.ready_at * 1000),
                    "why": f"In the quiet period. Expires in {max(item.ready_at - now, 0):.2f} sec"}
        executable = None if item.cancelled else {
            "_class": job.cls[1], "number": item.build.number,
            "url": job_url(self.server.controller.opts.foreign_root or self.root, job.name) + f"{item.build.number}/"}
        return {"_class": "hudson.model.Queue$LeftItem", **out, "why": None,
                "cancelled": item.cancelled, "executable": executable}

    def build_json(self, b, now):
        text, building = b.visible(now)
        result = b.final_result(now)
        end = b.aborted_at if b.aborted_at else b.start + len(b.lines) * b.line_delay
        short = b.job.name.split("/")[-1]
        return {"_class": b.job.cls[1], "actions": causes_json(b.item), "artifacts": [], "building": building,
                "description": None, "displayName": f"#{b.number}", "duration": 0 if building else int((end - b.start) * 1000),
                "estimatedDuration": int((len(b.lines) + 1) * b.line_delay * 1000), "executor": None,
                "fullDisplayName": f"{b.job.name.replace('/', ' » ')} #{b.number}", "id": str(b.number),
                "inProgress": building, "keepLog": False, "number": b.number, "queueId": b.item.id, "result": result,
                "timestamp": int(b.start * 1000), "url": job_url(self.root, b.job.name) + f"{b.number}/",
                "builtOn": b.node["name"] if b.node else "", "changeSet": {"_class": "hudson.scm.EmptyChangeLogSet",
                                                                           "items": [], "kind": None},
                "culprits": [], "fullName": f"{short} #{b.number}"}

    def job_json(self, c, job):
        builds = sorted(job.builds.values(), key=lambda b: -b.number)
        ref = lambda b: b and {"_class": job.cls[1], "number": b.number, "url": job_url(self.root, job.name) + f"{b.number}/"}
        waiting = [i for i in c.items.values() if i.job is job and i.left_at is None]
        defs = [{"_class": f"hudson.model.{cls.split('.')[-1]}", "name": n, "type": cls.split(".")[-1].replace("Definition", ""),
                 "defaultParameterValue": {"_class": "hudson.model.StringParameterValue", "name": n, "value": d}}
                for n, d, cls in job.params]
        return {"_class": job.cls[0], "actions": [], "description": "", "displayName": job.name.split("/")[-1],
                "fullDisplayName": job.name.replace("/", " » "), "fullName": job.name,
                "name": job.name.split("/")[-1], "url": job_url(self.root, job.name), "buildable": not job.disabled,
                "builds": [ref(b) for b in builds], "color": self.color(job), "firstBuild": ref(builds[-1] if builds else None),
                "healthReport": [], "inQueue": bool(waiting), "keepDependencies": False,
                "lastBuild": ref(self.permalink(job, "lastBuild")),
                "lastCompletedBuild": ref(self.permalink(job, "lastCompletedBuild")),
                "lastFailedBuild": ref(self.permalink(job, "lastFailedBuild")),
                "lastSuccessfulBuild": ref(self.permalink(job, "lastSuccessfulBuild")),
                "nextBuildNumber": job.next_number, "queueItem": self.item_json(waiting[0]) if waiting else None,
                "concurrentBuild": False, "disabled": job.disabled,
                "property": [{"_class": "hudson.model.ParametersDefinitionProperty", "parameterDefinitions": defs}]
                if defs else []}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0, help="0 = any free port; the port is printed on stdout")
    ap.add_argument("--users", default="", help="NAME:API_TOKEN[:PERMS],... PERMS: '+'-joined read, build, agent, "
                    "configure, admin (default) or Jenkins names like Agent/Connect")
    ap.add_argument("--passwords", default="", help="NAME:PASSWORD,... for users of --users (no CSRF exemption)")
    ap.add_argument("--jobs", default="", help="FOLDER/NAME[:PARAM[=DEFAULT]]...,... string parameters")
    ap.add_argument("--csrf", action="store_true", help="crumb issuer on; POSTs need a crumb unless API-token auth")
    ap.add_argument("--log", help="append one JSON object per request to this file")
    ap.add_argument("--agent-jar", help="file served as /jnlpJars/agent.jar (default: an empty zip)")
    ap.add_argument("--build-result", default="SUCCESS", help="[JOB=]RESULT,... the result builds end with")
    ap.add_argument("--fail-next", type=int, default=0, help="the next N trigger requests (buildWithParameters) get 500")
    ap.add_argument("--queue-delay", type=float, default=0.3, help="seconds a queue item waits before its build starts")
    ap.add_argument("--line-delay", type=float, default=0.05, help="seconds between two console lines of a build")
    ap.add_argument("--left-ttl", type=float, default=300, help="seconds a left queue item stays visible")
    ap.add_argument("--jenkins-version", default="2.578", help="X-Jenkins; < 2.539 refuses XML node creation")
    ap.add_argument("--foreign-root", help="hostile: queue items name their build under this root URL")
    ap.add_argument("--huge", help="hostile: REGEX:BYTES, GETs of matching paths get BYTES of body")
    ap.add_argument("--drip", help="hostile: REGEX, GETs of matching paths get a byte every 0.5 s")
    server = ThreadingHTTPServer((ap.parse_args().host, ap.parse_args().port), Handler)
    server.daemon_threads = True
    server.controller, server.log_lock = Controller(ap.parse_args()), threading.Lock()
    server.session_hash, server.started = secrets.token_hex(4), time.time()
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
