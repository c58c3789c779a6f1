"""Helpers for the monitoring role's tests: the real tools, the role rendered by Ansible,
the PromQL found in rules and dashboards, and a Consul catalog -> file_sd bridge.

Debian's Prometheus (2.42 in bookworm, 2.53 in trixie) is built without Consul service
discovery ("Disable Consul SD until its Debian package is back in shape", its changelog),
and no other Prometheus build can be installed here. The role's configuration uses
consul_sd_configs (the upstream images have it); for the Debian binaries the tests turn
each consul_sd_configs block into a file_sd_configs block whose targets are read from a
real Consul with the same filters (services, tags) and carry the same __meta_consul_*
labels Prometheus' Consul discovery sets (prometheus/discovery/consul/consul.go), so the
role's relabelling and scraping run for real on what Consul answers.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import time
import urllib.parse
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


# --- Consul catalog -> file_sd (see the module docstring) ---------------------------------

def consul_targets(consul, sd):
    """The targets Prometheus' Consul discovery makes of one consul_sd_configs entry."""
    separator = sd.get("tag_separator", ",")
    names = sd.get("services") or list(http_json(consul + "/v1/catalog/services"))
    groups = []
    for name in names:
        for entry in http_json(consul + "/v1/health/service/" + urllib.parse.quote(name)):
            node, svc = entry["Node"], entry["Service"]
            if not set(sd.get("tags") or []) <= set(svc.get("Tags") or []):
                continue
            checks = [c["Status"] for c in entry.get("Checks") or []]
            health = next((s for s in ("critical", "warning", "maintenance") if s in checks), "passing")
            address = svc.get("Address") or node["Address"]
            labels = {
                "__meta_consul_address": node["Address"],
                "__meta_consul_dc": node.get("Datacenter", ""),
                "__meta_consul_health": health,
                "__meta_consul_node": node["Node"],
                "__meta_consul_service": svc["Service"],
                "__meta_consul_service_address": svc.get("Address", ""),
                "__meta_consul_service_id": svc["ID"],
                "__meta_consul_service_port": str(svc["Port"]),
                "__meta_consul_tags": separator + separator.join(svc.get("Tags") or []) + separator,
            }
            for key, value in (node.get("Meta") or {}).items():
                labels["__meta_consul_metadata_" + re.sub(r"\W", "_", key)] = value
            for key, value in (svc.get("Meta") or {}).items():
                labels["__meta_consul_service_metadata_" + re.sub(r"\W", "_", key)] = value
            for key, value in (node.get("TaggedAddresses") or {}).items():
                labels["__meta_consul_tagged_address_" + re.sub(r"\W", "_", key)] = value
            groups.append({"targets": ["%s:%d" % (address, svc["Port"])], "labels": labels})
    return groups


def consul_sd_to_file_sd(config_text, outdir):
    """The config with every consul_sd_configs block replaced by file_sd_configs read from the
    same Consul (its server address in the block); returns the new config text."""
    config = yaml.safe_load(config_text)
    count = 0

    def convert(holder):
        nonlocal count
        blocks = holder.pop("consul_sd_configs", None)
        if not blocks:
            return
        files = []
        for sd in blocks:
            consul = "%s://%s" % (sd.get("scheme", "http"), sd["server"])
            count += 1
            path = os.path.join(outdir, "consul-sd-%d.json" % count)
            with open(path, "w") as f:
                json.dump(consul_targets(consul, sd), f)
            files.append(path)
        holder["file_sd_configs"] = [{"files": files, "refresh_interval": "1s"}]

    for am in config.get("alerting", {}).get("alertmanagers", []):
        convert(am)
    for job in config.get("scrape_configs", []):
        convert(job)
    return yaml.safe_dump(config, sort_keys=False)


def copy_rules(rendered_files, directory):
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, "homelab.yml")
    shutil.copy(rendered_files["rules"], path)
    return path
