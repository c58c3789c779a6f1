"""Helpers for the monitoring role's tests: the real tools, the role rendered by Ansible,
the PromQL found in rules and dashboards, and the Prometheus job's target templates
rendered as Nomad renders them.

Prometheus finds its targets through file_sd files that the job's Nomad templates write
from Consul's catalog (Debian's Prometheus, 2.42 in bookworm and 2.53 in trixie, is built
without Consul discovery; this way every build works). The tests render those templates
with the Nomad simulator's consul-template engine, against a real Consul in the live test.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

import pytest
import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
FIXTURES = os.path.join(HERE, "fixtures")
CACHE = os.environ.get("HOMELAB_CACHE") or os.path.join(
    os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "selfhost-homelab")
BIN = os.path.join(CACHE, "monitoring", "bin")
TOOLS = ("prometheus", "promtool", "alertmanager", "amtool", "node-exporter", "cadvisor", "consul")
DASHBOARDS = ("host", "zfs", "containers", "smart")
# Values for the dashboards' template variables when a query is run outside Grafana.
VARIABLES = {"$instance": ".*", "$pool": ".*"}


@pytest.fixture(scope="session")
def tools():
    missing = [t for t in TOOLS if not os.access(os.path.join(BIN, t), os.X_OK)]
    if missing:
        pytest.fail("missing %s in %s: run scripts/bootstrap.sh (scripts/bootstrap.d/monitoring.sh)"
                    % (", ".join(missing), BIN))
    return {t: os.path.join(BIN, t) for t in TOOLS}


def render(out, **extra):
    """Render the role with ansible-playbook into OUT; return {name: path}."""
    os.makedirs(out, exist_ok=True)
    extra = dict({"out": out, "monitoring_domain": "home.example.org", "monitoring_data_root": "/srv/homelab"},
                 **extra)
    varfile = os.path.join(out, "vars.json")
    with open(varfile, "w") as f:
        json.dump(extra, f)
    proc = subprocess.run(["ansible-playbook", os.path.join(HERE, "render.yml"), "-e", "@" + varfile],
                          capture_output=True, text=True, check=False, timeout=300, cwd=REPO)
    assert proc.returncode == 0, "rendering the role failed:\n%s\n%s" % (proc.stdout[-4000:], proc.stderr[-2000:])
    return {name: os.path.join(out, name) for name in os.listdir(out)}


@pytest.fixture(scope="session")
def rendered(tmp_path_factory):
    """The role with its defaults: no receiver configured."""
    return render(str(tmp_path_factory.mktemp("monitoring-default")))


@pytest.fixture(scope="session")
def rendered_notify(tmp_path_factory):
    """The role with email (authenticated SMTP), a webhook and Traefik middlewares."""
    return render(str(tmp_path_factory.mktemp("monitoring-notify")),
                  monitoring_alertmanager_email_to=["owner@example.org"],
                  monitoring_alertmanager_smtp_smarthost="smtp.example.org:587",
                  monitoring_alertmanager_smtp_auth_username="alerts@example.org",
                  monitoring_alertmanager_webhook_url="https://ntfy.example.org/homelab",
                  monitoring_traefik_auth_middlewares=["lan-auth@file"],
                  monitoring_alert_pool_capacity_ratio=0.9)


# --- PromQL in rules and dashboards -------------------------------------------------------

def rule_expressions(rules_text):
    """[(alert name, expr)] of a rules file."""
    doc = yaml.safe_load(rules_text)
    return [(r.get("alert") or r.get("record"), r["expr"]) for g in doc["groups"] for r in g["rules"]]


def dashboard_queries(dashboard):
    """[(where, expr)] of a dashboard: every panel target and every query variable (its metric)."""
    out = []
    for panel in dashboard["panels"]:
        for target in panel.get("targets") or []:
            out.append(("%s / %s" % (dashboard["title"], panel["title"]), target["expr"]))
    for var in dashboard.get("templating", {}).get("list", []):
        if var.get("type") == "query":
            m = re.fullmatch(r"label_values\((.*),\s*(\w+)\)", var["query"])
            assert m, "variable %s: only label_values(metric, label) queries are supported" % var["name"]
            out.append(("%s / variable %s" % (dashboard["title"], var["name"]), m.group(1)))
    return out


def load_dashboards():
    return {name: json.load(open(os.path.join(REPO, "roles", "monitoring", "files", "dashboards", name + ".json")))
            for name in DASHBOARDS}


def substitute(expr):
    for var, value in VARIABLES.items():
        expr = expr.replace(var, value)
    return expr


_KEYWORDS = {"and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right", "bool",
             "offset", "inf", "nan"}


def metric_names(expr):
    """The metric names an expression reads (functions, labels, keywords and numbers removed)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)            # string literals
    text = re.sub(r"\{[^}]*\}", " ", text)                      # label matchers
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)                     # range and subquery durations
    names = set()
    for m in re.finditer(r"(?<![\w.])([A-Za-z_:][\w:]*)(\s*\()?", text):
        if m.group(2) or m.group(1).lower() in _KEYWORDS:
            continue
        names.add(m.group(1))
    return names


# --- processes and HTTP -------------------------------------------------------------------

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_json(url, data=None, method=None, timeout=10):
    body = json.dumps(data).encode() if data is not None else None
    req = urllib.request.Request(url, data=body, method=method or ("POST" if body else "GET"),
                                 headers={"Content-Type": "application/json"} if body else {})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        text = resp.read().decode()
    return json.loads(text) if text.strip() else None


def wait_until(check, timeout, what):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        try:
            result = check()
            if result:
                return result
        except (OSError, ValueError) as exc:
            last = exc
        time.sleep(0.5)
    raise AssertionError("timed out after %ss waiting for %s (last error: %s)" % (timeout, what, last))


class Processes:
    """Programs a test starts; each stopped by its own pid, its output kept in a log file."""

    def __init__(self, logdir):
        self.logdir, self.procs = logdir, []

    def start(self, name, argv, **kwargs):
        log = open(os.path.join(self.logdir, name + ".log"), "w")
        proc = subprocess.Popen(["timeout", "--signal=KILL", "600"] + argv, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True, **kwargs)
        self.procs.append((name, proc, log))
        return proc

    def log(self, name):
        with open(os.path.join(self.logdir, name + ".log")) as f:
            return f.read()[-3000:]

    def stop(self):
        for _name, proc, log in reversed(self.procs):
            if proc.poll() is None:
                os.killpg(proc.pid, 15)
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, 9)
                    proc.wait(5)
            log.close()


# --- the job's target templates (file_sd), rendered as Nomad renders them -------------------

TARGET_SETS = ("services", "alertmanager", "nomad", "consul")


def render_targets(rendered_files, directory, service, services):
    """Render the Prometheus job's target templates into DIRECTORY/<set>.yml with the Nomad
    simulator's consul-template engine; ``service``/``services`` answer Consul's queries
    (client.consul_service_reader/consul_services_reader for a real Consul)."""
    if REPO not in sys.path:
        sys.path.insert(0, REPO)
    from tests.simulators.nomad import template

    os.makedirs(directory, exist_ok=True)
    for name in TARGET_SETS:
        text = template.render(open(rendered_files["targets_" + name]).read(), lambda k: "", _no_secret,
                               name, "[[%", "%]]", service=service, services=services)
        with open(os.path.join(directory, name + ".yml"), "w") as f:
            f.write(text)
    return directory


def consul_readers(consul):
    """consul-template's ``service`` and ``services`` answered by a real Consul (the simulator's client code)."""
    if REPO not in sys.path:
        sys.path.insert(0, REPO)
    from tests.simulators.nomad.client import consul_service_reader, consul_services_reader

    return consul_service_reader(consul), consul_services_reader(consul)


def _no_secret(path):
    raise AssertionError("the target templates read no secret (%s)" % path)


def local_paths(text, directory, rules=None, targets=None):
    """A rendered Prometheus config with the task-local paths pointed into DIRECTORY."""
    return (text.replace("/local/rules/homelab.yml", rules or os.path.join(directory, "rules.yml"))
            .replace("/local/targets/", (targets or os.path.join(directory, "targets")) + "/")
            .replace("/secrets/consul_token", os.path.join(directory, "consul_token")))


def copy_rules(rendered_files, directory):
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, "homelab.yml")
    shutil.copy(rendered_files["rules"], path)
    return path
