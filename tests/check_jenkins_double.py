#!/usr/bin/env python3
"""Drives tests/jenkins_double.py with the real python-jenkins client (and `jenkins-jobs update`
from jenkins-job-builder), so the double cannot drift from what real Jenkins clients expect.

    python3 tests/check_jenkins_double.py

Starts its own doubles on 127.0.0.1 (port 0), prints one line per check, exits 1 on any mismatch.
Needs the modules of tests/requirements.txt.
"""
import base64
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import traceback
import xml.etree.ElementTree as ET

try:
    import jenkins
    import requests
except ImportError as e:
    print(f"missing python module {e.name!r}: pip install -r tests/requirements.txt")
    sys.exit(1)

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
TOKEN, RO_TOKEN, ADMIN_TOKEN = "11aa22bb33cc44dd55ee66ff77889900", "0123456789abcdef", "feedfacefeedface"
failures, passed = [], 0


def check(what, cond, detail=""):
    global passed
    if cond:
        passed += 1
        print(f"ok    {what}")
    else:
        failures.append(what)
        print(f"FAIL  {what}{': ' + str(detail) if detail else ''}")


def raises(fn, exc=Exception):
    try:
        fn()
    except exc as e:
        return e
    return None


def wait_for(fn, timeout=10.0):
    end = time.time() + timeout
    while time.time() < end:
        value = fn()
        if value:
            return value
        time.sleep(0.05)
    return None


class Double:
    """tests/jenkins_double.py as a child process; the request log in a temp dir."""

    def __init__(self, tmp, *args):
        self.log = os.path.join(tmp, f"requests-{len(os.listdir(tmp))}.jsonl")
        self.proc = subprocess.Popen([sys.executable, os.path.join(HERE, "jenkins_double.py"), "--port", "0",
                                      "--log", self.log, "--queue-delay", "1", "--line-delay", "0.1", *args], stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if not line.strip().isdigit():
            self.proc.kill()
            sys.exit(f"the double printed {line!r} instead of its port")
        self.url = f"http://127.0.0.1:{int(line)}/"

    def requests(self):
        with open(self.log) as f:
            return [json.loads(line) for line in f]

    def stop(self):
        self.proc.terminate()
        self.proc.wait()


def get(url, user=None, secret=None, **kw):
    return requests.get(url, auth=(user, secret) if user else None, **kw)


def post(url, user=None, secret=None, **kw):
    return requests.post(url, auth=(user, secret) if user else None, allow_redirects=False, **kw)


def check_identity(d, server):
    check("get_whoami names the token's user", server.get_whoami().get("id") == "halo")
    check("get_version reads X-Jenkins", server.get_version() == "2.578")
    info = server.get_info()
    check("get_info lists top-level jobs and folders",
          {j["name"] for j in info["jobs"]} == {"halo-acceptance", "halo-gate", "f"}, info["jobs"])
    r = get(d.url + "api/json")
    check("anonymous request -> 403 Authentication required (entry point), with X-Jenkins",
          r.status_code == 403 and "Authentication required" in r.text and r.headers.get("X-Jenkins") == "2.578")
    r = get(d.url + "api/json", "halo", "wrong")
    check("bad token -> 401 with WWW-Authenticate", r.status_code == 401 and
          r.headers.get("WWW-Authenticate") == 'Basic realm="Jenkins"', r.status_code)
    bad = jenkins.Jenkins(d.url, "halo", "wrong")
    e = raises(bad.get_whoami, jenkins.JenkinsException)
    check("python-jenkins raises on a bad token (401)", e is not None and "401" in str(e), e)
    r = get(d.url + "api/json", headers={"Authorization": "Basic " + base64.b64encode(b"nocolon").decode()})
    check("malformed basic header -> 401", r.status_code == 401)
    r = get(d.url + "crumbIssuer/api/json", "halo", TOKEN)
    check("crumb issuer is 404 without --csrf (python-jenkins then sends no crumb)", r.status_code == 404)
    r = get(d.url + "api/json?tree=jobs[name]", "halo", TOKEN)
    check("tree= keeps only the named fields plus _class",
          r.json() == {"_class": "hudson.model.Hudson", "jobs": [
              {"_class": "com.cloudbees.hudson.plugins.folder.Folder", "name": "f"},
              {"_class": "hudson.model.FreeStyleProject", "name": "halo-acceptance"},
              {"_class": "hudson.model.FreeStyleProject", "name": "halo-gate"}]}, r.text)


def check_nodes(d, server):
    server.create_node("halo-1", numExecutors=2, nodeDescription="halo agent", remoteFS="/var/lib/halo",
                       labels="halo-build halo-acceptance", launcher=jenkins.LAUNCHER_JNLP,
                       launcher_params={"webSocket": True})
    check("create_node (JNLP launcher) through computer/doCreateItem", server.node_exists("halo-1"))
    cfg = ET.fromstring(server.get_node_config("halo-1"))
    check("get_node_config returns the node XML",
          cfg.tag == "slave" and cfg.findtext("label") == "halo-build halo-acceptance" and
          cfg.findtext("numExecutors") == "2" and cfg.findtext("remoteFS") == "/var/lib/halo" and
          cfg.find("launcher").get("class") == "hudson.slaves.JNLPLauncher" and
          cfg.findtext("launcher/webSocket") == "true", ET.tostring(cfg))
    info = server.get_node_info("halo-1")
    check("a new inbound node is offline", info["offline"] is True and info["jnlpAgent"] is True, info)
    r = post(d.url + "computer/doCreateItem", "halo", TOKEN, data={
        "name": "halo-1", "type": "hudson.slaves.DumbSlave$DescriptorImpl", "json": "{}"})
    check("creating an existing node -> 400 already exists", r.status_code == 400 and "already exists" in r.text, r.text)
    cfg.find("label").text = "halo-build halo-acceptance halo-snapshot"
    server.reconfig_node("halo-1", ET.tostring(cfg, encoding="unicode"))
    check("reconfig_node (POST config.xml) replaces the node",
          "halo-snapshot" in ET.fromstring(server.get_node_config("halo-1")).findtext("label"))
    xml = ET.tostring(cfg, encoding="unicode").replace("<name>halo-1</name>", "<name>halo-2</name>")
    r = post(d.url + "computer/createItem?name=halo-2", "halo", TOKEN, data=xml,
             headers={"Content-Type": "application/xml"})
    check("computer/createItem with an XML body creates a node (2.539+)",
          r.status_code == 200 and server.node_exists("halo-2"), r.status_code)
    jenkins.Jenkins(d.url, "admin", ADMIN_TOKEN).delete_node("halo-2")
    check("delete_node (doDelete, as admin: Agent/Delete)", not server.node_exists("halo-2"))
    check("doDelete needs Agent/Delete", post(d.url + "computer/halo-1/doDelete", "halo", TOKEN).status_code == 403)
    r = get(d.url + "computer/halo-1/jenkins-agent.jnlp", "halo", TOKEN)
    args = [a.text for a in ET.fromstring(r.text).iter("argument")]
    check("JNLP file: secret, name, -webSocket, -workDir, -internalDir, -url",
          r.headers["Content-Type"] == "application/x-java-jnlp-file" and re.fullmatch(r"[0-9a-f]{64}", args[0])
          and args[1:] == ["halo-1", "-webSocket", "-workDir", "/var/lib/halo", "-internalDir", "remoting",
                           "-url", d.url], args)
    again = [a.text for a in ET.fromstring(get(d.url + "computer/halo-1/slave-agent.jnlp", "halo", TOKEN).text)
             .iter("argument")]
    check("the secret is stable (slave-agent.jnlp alias)", again[0] == args[0])
    check("the secret needs Agent/Connect",
          get(d.url + "computer/halo-1/jenkins-agent.jnlp", "ro", RO_TOKEN).status_code == 403)
    check_websocket(d, server, args[0])


def websocket(d, name, secret):
    host, port = d.url[len("http://"):].rstrip("/").split(":")
    s = socket.create_connection((host, int(port)))
    s.sendall((f"GET /wsagents/ HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               f"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nNode-Name: {name}\r\n"
               f"Secret-Key: {secret}\r\nX-Remoting-Capability: rO0ABXNyABpodWRzb24ucmVtb3Rpbmc=\r\n\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += s.recv(4096)
    return s, head.decode()


def check_websocket(d, server, secret):
    s, head = websocket(d, "halo-1", "0" * 64)
    s.close()
    check("wsagents with a wrong secret -> 403", head.startswith("HTTP/1.1 403"), head.splitlines()[0])
    s, head = websocket(d, "halo-1", secret)
    check("wsagents with the JNLP secret -> 101 Switching Protocols",
          head.startswith("HTTP/1.1 101") and "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" in head, head)
    check("the node is online while the agent stays connected",
          wait_for(lambda: not server.get_node_info("halo-1")["offline"]))
    s.close()
    check("the node goes offline when the agent disconnects",
          wait_for(lambda: server.get_node_info("halo-1")["offline"]))


def check_agent_jar(d, jar_bytes):
    r = get(d.url + "jnlpJars/agent.jar", "halo", TOKEN)
    check("agent.jar serves --agent-jar with Last-Modified (no ETag, as Stapler)",
          r.content == jar_bytes and "Last-Modified" in r.headers and "ETag" not in r.headers
          and r.headers["Content-Type"] == "application/java-archive", r.headers)
    r2 = get(d.url + "jnlpJars/agent.jar", "halo", TOKEN, headers={"If-Modified-Since": r.headers["Last-Modified"]})
    check("agent.jar If-Modified-Since -> 304", r2.status_code == 304 and r2.content == b"")
    check("agent.jar needs Overall/Read (anonymous -> 403)", get(d.url + "jnlpJars/agent.jar").status_code == 403)


def follow(server, job, params):
    """build_job -> queue item -> build number -> finished build info."""
    qid = server.build_job(job, params)
    item = server.get_queue_item(qid)
    waited = "why" in item and item.get("executable") is None
    item = wait_for(lambda: server.get_queue_item(qid).get("executable"))
    number = item["number"] if item else None
    info = wait_for(lambda: (lambda b: b if not b["building"] else None)(server.get_build_info(job, number)))
    return qid, waited, number, info


def check_builds(d, server):
    e = raises(lambda: server.build_job("halo-acceptance", {"SNAPSHOT": "x"}), jenkins.JenkinsException)
    check("--fail-next 1: the first buildWithParameters answers 500", e is not None and "500" in str(e), e)
    snapshot = "20260101T000000Z a&b"
    qid, waited, number, info = follow(server, "halo-acceptance", {"SNAPSHOT": snapshot})
    check("build_job returns the queue id; the item waits first (why)", qid >= 1 and waited, qid)
    check("the queue item gets executable.number", number == 1, number)
    check("get_build_info: building false, result SUCCESS, number",
          info and info["result"] == "SUCCESS" and info["number"] == 1, info)
    params = info["actions"][0]["parameters"] if info else []
    check("the build carries the parameter", params == [
        {"_class": "hudson.model.StringParameterValue", "name": "SNAPSHOT", "value": snapshot}], params)
    console = server.get_build_console_output("halo-acceptance", 1)
    check("get_build_console_output echoes the parameter and the result",
          f"SNAPSHOT={snapshot}\n" in console and console.endswith("Finished: SUCCESS\n"), console)
    sent = [r for r in d.requests() if r["path"].endswith("/buildWithParameters") and r["status"] == 201]
    check("the log records the parameters in the query, Authorization redacted",
          sent and sent[0]["query"] == {"SNAPSHOT": [snapshot]} and
          sent[0]["headers"]["Authorization"] == "Basic REDACTED", sent[:1])
    check("no API token appears in the log", TOKEN not in open(d.log).read())
    check_progressive(d, server)
    _, _, number, info = follow(server, "f/halo-build-hello", {"REF": "v1"})
    check("folder job job/f/job/halo-build-hello builds", info and info["result"] == "UNSTABLE"
          and info["url"] == d.url + "job/f/job/halo-build-hello/1/", info)
    check("get_job_info on a folder job", server.get_job_info("f/halo-build-hello")["fullName"] == "f/halo-build-hello")


def check_progressive(d, server):
    qid = server.build_job("halo-acceptance", {"SNAPSHOT": "s2"})
    number = wait_for(lambda: server.get_queue_item(qid).get("executable"))["number"]
    url = f"{d.url}job/halo-acceptance/{number}/logText/progressiveText"
    start, text, chunks, more = 0, "", 0, True
    while more:
        r = get(url, "halo", TOKEN, params={"start": start})
        more = r.headers.get("X-More-Data") == "true"
        chunks += bool(r.text)
        text += r.text
        start = int(r.headers["X-Text-Size"])
        time.sleep(0.03)
    full = get(f"{d.url}job/halo-acceptance/{number}/consoleText", "halo", TOKEN).text
    check("progressiveText: several non-empty chunks, X-Text-Size offsets add up to consoleText",
          chunks >= 2 and text == full and full.endswith("Finished: SUCCESS\n"), (chunks, text))
    r = get(url, "halo", TOKEN, params={"start": 10 ** 6})
    check("progressiveText start past the end restarts at 0", r.text == full)


def check_errors(d, server):
    check("build_job on a missing job -> NotFoundException (404)",
          raises(lambda: server.build_job("nope", {"A": "b"}), jenkins.NotFoundException) is not None)
    check("get_job_info on a missing job raises", raises(lambda: server.get_job_info("nope")) is not None)
    check("get_build_info on a missing build raises",
          raises(lambda: server.get_build_info("halo-acceptance", 99)) is not None)
    check("missing node -> 404", get(d.url + "computer/nope/api/json", "halo", TOKEN).status_code == 404)
    r = get(d.url + "job/halo-acceptance/buildWithParameters?SNAPSHOT=x", "halo", TOKEN)
    check("GET buildWithParameters -> 405 Allow: POST", r.status_code == 405 and r.headers.get("Allow") == "POST")
    r = post(d.url + "job/halo-gate/buildWithParameters?X=1", "halo", TOKEN)
    check("buildWithParameters on an unparameterized job -> 400", r.status_code == 400, r.status_code)
    r = post(d.url + "job/halo-gate/build", "halo", TOKEN)
    check("POST build -> 201 + Location of the queue item",
          r.status_code == 201 and re.fullmatch(d.url + r"queue/item/\d+/", r.headers["Location"]), r.headers)
    a = post(d.url + "job/halo-acceptance/buildWithParameters?SNAPSHOT=same", "halo", TOKEN)
    b = post(d.url + "job/halo-acceptance/buildWithParameters?SNAPSHOT=same", "halo", TOKEN)
    check("an equal request while the first waits -> 303 to the same item",
          a.status_code == 201 and b.status_code == 303 and a.headers["Location"] == b.headers["Location"])
    ro = jenkins.Jenkins(d.url, "ro", RO_TOKEN)
    e = raises(lambda: ro.build_job("halo-acceptance", {"SNAPSHOT": "x"}), jenkins.JenkinsException)
    check("a user without Job/Build gets 403", e is not None and "403" in str(e), e)
    r = post(d.url + "job/halo-acceptance/buildWithParameters?SNAPSHOT=x", "ro", RO_TOKEN)
    check("the 403 names the missing permission",
          r.headers.get("X-Required-Permission") == "hudson.model.Item.Build", r.headers)


def check_csrf(tmp):
    d = Double(tmp, "--csrf", "--users", f"alice:{TOKEN}:read+build,admin:{ADMIN_TOKEN}",
               "--passwords", "alice:s3cret", "--jobs", "halo-acceptance:SNAPSHOT")
    try:
        r = get(d.url + "crumbIssuer/api/json", "alice", "s3cret")
        crumb = r.json()
        cookie = r.cookies
        check("crumb issuer: hex crumb, Jenkins-Crumb field, JSESSIONID.<hex> cookie",
              re.fullmatch(r"[0-9a-f]{64}", crumb["crumb"]) and crumb["crumbRequestField"] == "Jenkins-Crumb"
              and any(re.fullmatch(r"JSESSIONID\.[0-9a-f]{8}", c.name) for c in cookie), (crumb, list(cookie)))
        check("crumb issuer refuses jsonp", get(d.url + "crumbIssuer/api/json?jsonp=x", "alice", "s3cret").status_code == 403)
        url = d.url + "job/halo-acceptance/buildWithParameters?SNAPSHOT=c"
        r = post(url, "alice", "s3cret")
        check("--csrf: password POST without crumb -> 403 No valid crumb",
              r.status_code == 403 and "No valid crumb" in r.text, r.status_code)
        r = post(url, "alice", "s3cret", headers={"Jenkins-Crumb": crumb["crumb"]})
        check("--csrf: crumb without its session cookie -> 403", r.status_code == 403, r.status_code)
        r = post(url, "alice", "s3cret", headers={"Jenkins-Crumb": crumb["crumb"]}, cookies=cookie)
        check("--csrf: crumb header + session cookie -> 201", r.status_code == 201, r.status_code)
        r = post(url + "2", "alice", "s3cret", data={"Jenkins-Crumb": crumb["crumb"]}, cookies=cookie)
        check("--csrf: crumb as form field + session cookie -> 201", r.status_code == 201, r.status_code)
        r = post(url + "3", "alice", TOKEN)
        check("--csrf: API-token POST needs no crumb", r.status_code == 201, r.status_code)
        server = jenkins.Jenkins(d.url, "alice", "s3cret")
        qid = server.build_job("halo-acceptance", {"SNAPSHOT": "pj"})
        check("python-jenkins with a password fetches the crumb and builds under --csrf", qid >= 1)
        posts = [r for r in d.requests() if r["method"] == "POST" and r["query"] == {"SNAPSHOT": ["pj"]}]
        check("python-jenkins sent Jenkins-Crumb and the session cookie",
              posts and "Jenkins-Crumb" in posts[0]["headers"] and "JSESSIONID." in posts[0]["headers"]["Cookie"], posts)
        check_jjb(d, tmp)
    finally:
        d.stop()


def check_jjb(d, tmp):
    """`jenkins-jobs update` of the repository's jobs against the double (createItem, config.xml)."""
    ini = os.path.join(tmp, "jjb.ini")
    with open(ini, "w") as f:
        f.write(f"[job_builder]\nignore_cache=True\n\n[jenkins]\nurl={d.url}\nuser=admin\n"
                f"password={ADMIN_TOKEN}\nquery_plugins_info=False\n")
    if shutil.which("jenkins-jobs") is None:
        check("jenkins-jobs is installed (pip install -r tests/requirements.txt)", False)
        return
    env = dict(os.environ, XDG_CACHE_HOME=os.path.join(tmp, "cache"), HOME=tmp)
    out = subprocess.run(["jenkins-jobs", "--conf", ini, "update", os.path.join(REPO, "jenkins-jobs")],
                         capture_output=True, text=True, env=env)
    check("jenkins-jobs update jenkins-jobs/ against the double", out.returncode == 0, out.stderr[-2000:])
    server = jenkins.Jenkins(d.url, "admin", ADMIN_TOKEN)
    names = {j["name"] for j in server.get_info()["jobs"]}
    want = {"halo-build-halo-hello", "halo-build-puppet-rjil", "halo-refresh", "halo-acceptance", "halo-gate",
            "halo-promote", "halo-rollback"}
    check("every pipeline job exists after the update", want <= names, sorted(names))
    prop = server.get_job_info("halo-promote")["property"]
    defs = {p["name"]: p for p in prop[0]["parameterDefinitions"]} if prop else {}
    check("halo-promote is parameterized from its XML (CHANNEL choice, SNAPSHOT, REASON)",
          set(defs) == {"CHANNEL", "SNAPSHOT", "REASON"} and
          defs["CHANNEL"]["defaultParameterValue"]["value"] == "trusty-testing", defs)
    qid = server.build_job("halo-promote", {"SNAPSHOT": "s", "REASON": "tested"})
    number = wait_for(lambda: server.get_queue_item(qid).get("executable"))["number"]
    console = wait_for(lambda: (lambda t: t if "Finished" in t else None)(
        server.get_build_console_output("halo-promote", number)))
    check("a missing parameter takes its default (CHANNEL=trusty-testing)", "CHANNEL=trusty-testing\n" in console)
    r = post(d.url + "job/halo-promote/buildWithParameters?CHANNEL=trusty-unstable&SNAPSHOT=s&REASON=r",
             "admin", ADMIN_TOKEN)
    check("a value outside a choice parameter's choices is refused", r.status_code == 500 and
          "Illegal choice for parameter CHANNEL" in r.text, r.status_code)


def guarded(part):
    """Runs a group of checks; an exception fails that group, and the others still run."""
    try:
        part()
    except Exception:
        check("a group of checks ran to its end", False, traceback.format_exc())


def main():
    with tempfile.TemporaryDirectory(prefix="jenkins-double-") as tmp:
        jar = os.path.join(tmp, "agent.jar")
        with open(jar, "wb") as f:
            f.write(b"PK\x05\x06" + bytes(18) + b"agent")
        d = Double(tmp, "--users", f"halo:{TOKEN}:read+build+agent,ro:{RO_TOKEN}:read,admin:{ADMIN_TOKEN}",
                   "--jobs", "halo-acceptance:SNAPSHOT,halo-gate,f/halo-build-hello:REF=main",
                   "--build-result", "SUCCESS,f/halo-build-hello=UNSTABLE", "--agent-jar", jar, "--fail-next", "1")
        try:
            server = jenkins.Jenkins(d.url, "halo", TOKEN)
            for part in (lambda: check_identity(d, server), lambda: check_nodes(d, server),
                         lambda: check_agent_jar(d, open(jar, "rb").read()), lambda: check_builds(d, server),
                         lambda: check_errors(d, server)):
                guarded(part)
        finally:
            d.stop()
        guarded(lambda: check_csrf(tmp))
    print(f"check_jenkins_double: {passed} checks ok, {len(failures)} failed")
    if failures:
        print("failed: " + "; ".join(failures))
        sys.exit(1)


if __name__ == "__main__":
    main()
