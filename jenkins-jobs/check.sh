#!/usr/bin/env bash
# Renders every job of jenkins-jobs/ with the real `jenkins-jobs test` (jenkins-job-builder 6.5.0,
# no server needed) and checks the XML: each expected job exists, with its label, parameters,
# shell step (HALO_* exports, the halo command, unstableReturn), triggers, JUnit publisher and
# log rotation; no `{placeholder}` is left unexpanded; every shell step parses (`sh -n`/`bash -n`).
# Exit 0 only when all of that holds. Run from anywhere: bash jenkins-jobs/check.sh
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
if ! command -v jenkins-jobs >/dev/null; then
    echo "jenkins-jobs is missing: pip install -r tests/requirements.txt" >&2
    exit 1
fi
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
# No /etc/jenkins_jobs/jenkins_jobs.ini needed: `test` never talks to a server.
if ! jenkins-jobs --log_level warning test -r "$here" --config-xml -o "$out" >"$out/render.log" 2>&1; then
    echo "jenkins-jobs test failed:" >&2
    cat "$out/render.log" >&2
    exit 1
fi
python3 - "$out" <<'PY'
import os, re, subprocess, sys, xml.etree.ElementTree as ET

out = sys.argv[1]
SHELL = "hudson.tasks.Shell"
JUNIT = "hudson.tasks.junit.JUnitResultArchiver"
# job -> (label, {parameter: (type, default)}, command fragments, unstableReturn, junit file, trigger)
EXPECTED = {
    "halo-build-halo-hello": ("halo-build", {}, ["halo build halo-hello --junit build-junit.xml"], None,
                              "build-junit.xml", ("hudson.triggers.SCMTrigger", "H/5 * * * *")),
    "halo-build-puppet-rjil": ("halo-build", {}, ["halo build puppet-rjil --junit build-junit.xml"], None,
                               "build-junit.xml", ("hudson.triggers.SCMTrigger", "H/5 * * * *")),
    "halo-refresh": ("halo-snapshot", {}, ["halo agent --once --junit cycle-junit.xml"], "1",
                     "cycle-junit.xml", ("hudson.triggers.TimerTrigger", "H/30 * * * *")),
    "halo-acceptance": ("halo-acceptance", {"SNAPSHOT": ("String", "")},
                        ['halo accept ${SNAPSHOT:+--snapshot "$SNAPSHOT"} --junit accept-junit.xml\n'], "1", "accept-junit.xml", None),
    "halo-gate": ("halo-acceptance", {}, ["halo gate --channel trusty-unstable --junit gate-junit.xml"], "1",
                  "gate-junit.xml", None),
    "halo-promote": ("halo-snapshot", {"CHANNEL": ("Choice", "trusty-testing"), "SNAPSHOT": ("String", ""),
                                       "REASON": ("String", "")},
                     ['halo promote --to "$CHANNEL" --snapshot "$SNAPSHOT" --reason "$REASON"'], None, None, None),
    "halo-rollback": ("halo-snapshot", {"CHANNEL": ("Choice", "trusty"), "TO": ("String", ""),
                                        "REASON": ("String", "")},
                      ['halo channel rollback "$CHANNEL" ${TO:+--to "$TO"} --reason "$REASON"'], None, None, None),
}
errors = []


def expect(job, what, cond):
    if not cond:
        errors.append(f"{job}: {what}")


jobs = sorted(d for d in os.listdir(out) if os.path.isfile(os.path.join(out, d, "config.xml")))
expect("*", f"jobs {sorted(EXPECTED)} rendered, got {jobs}", set(jobs) == set(EXPECTED))
for job, (label, params, fragments, unstable, junit, trigger) in EXPECTED.items():
    path = os.path.join(out, job, "config.xml")
    if not os.path.exists(path):
        continue
    text = open(path).read()
    root = ET.parse(path).getroot()
    expect(job, f"runs on label {label}", root.findtext("assignedNode") == label and root.findtext("canRoam") == "false")
    expect(job, "no concurrent builds", root.findtext("concurrentBuild") == "false")
    rotator = root.find("properties/jenkins.model.BuildDiscarderProperty/strategy")
    expect(job, "log rotation (build discarder)", rotator is not None and int(rotator.findtext("numToKeep")) > 0)
    got = {}
    for d in root.iterfind("properties/hudson.model.ParametersDefinitionProperty/parameterDefinitions/*"):
        kind = d.tag.rsplit(".", 1)[-1].replace("ParameterDefinition", "")
        default = d.findtext("defaultValue") if kind == "String" else d.findtext("choices/a/string")
        got[d.findtext("name")] = (kind, default or "")
    expect(job, f"parameters {params}, got {got}", got == params)
    shells = root.findall(f"builders/{SHELL}")
    expect(job, "one shell step", len(shells) == 1)
    command = shells[0].findtext("command") if shells else ""
    remote = ["export HALO_SERVER="] if label in ("halo-build", "halo-acceptance") else []
    for fragment in ["export HALO_STORE=", "export HALO_CONFIG="] + remote + fragments:
        expect(job, f"shell step contains {fragment!r}", fragment in command)
    expect(job, f"unstableReturn {unstable}", (shells[0].findtext("unstableReturn") if shells else None) == unstable)
    interpreter = command.splitlines()[0][2:].split() if command.startswith("#!") else ["sh", "-xe"]
    parse = subprocess.run([interpreter[0].rsplit("/", 1)[-1], "-n"], input=command, text=True, capture_output=True)
    expect(job, f"shell step parses with {interpreter[0]} -n: {parse.stderr.strip()}", parse.returncode == 0)
    results = root.findtext(f"publishers/{JUNIT}/testResults")
    expect(job, f"JUnit publisher on {junit}, got {results}", results == junit)
    if trigger:
        spec = root.findtext(f"triggers/{trigger[0]}/spec")
        expect(job, f"trigger {trigger}, got {spec}", spec == trigger[1])
    leftover = re.findall(r"(?<![$])\{[a-z][a-z_-]*\}", text)
    expect(job, f"no unexpanded placeholder, found {leftover}", not leftover)
    expect(job, "JJB marks it managed", "Managed by Jenkins Job Builder" in (root.findtext("description") or ""))

# One store path for every job (the docs' /srv/halo).
for job in EXPECTED:
    path = os.path.join(out, job, "config.xml")
    if os.path.exists(path):
        command = ET.parse(path).getroot().findtext(f"builders/{SHELL}/command") or ""
        expect(job, "HALO_STORE is /srv/halo", "export HALO_STORE='/srv/halo'\n" in command)

# The refresh job is the agent's cycle: it starts no other job itself (the cycle hands a
# snapshot not yet judged to acceptance), so an unchanged snapshot is never judged twice.
refresh = os.path.join(out, "halo-refresh", "config.xml")
if os.path.exists(refresh):
    root = ET.parse(refresh).getroot()
    expect("halo-refresh", "no parameterized trigger publisher",
           root.find("publishers/hudson.plugins.parameterizedtrigger.BuildTrigger") is None)

for e in errors:
    print(f"FAIL {e}")
print(f"jenkins-jobs/check.sh: {len(EXPECTED)} jobs rendered and checked, {len(errors)} problem(s)")
sys.exit(1 if errors else 0)
PY
