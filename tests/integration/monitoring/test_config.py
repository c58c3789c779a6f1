"""The monitoring role's rendered configurations, checked by the real tools: promtool check
config/rules, amtool check-config, promtool test rules, every PromQL expression parsed by
promtool; and the rendered jobs accepted by the Nomad simulator."""

from __future__ import annotations

import json
import os
import re
import subprocess

import pytest
import yaml
from monitoring_it import (
    HERE,
    REPO,
    TARGET_SETS,
    dashboard_queries,
    load_dashboards,
    local_paths,
    metric_names,
    render_targets,
    rule_expressions,
    substitute,
)


def run(argv, **kwargs):
    return subprocess.run(argv, capture_output=True, text=True, check=False, timeout=300, **kwargs)


@pytest.mark.parametrize("variant", ["rendered", "rendered_notify"])
def test_promtool_check_rules(request, tools, variant):
    files = request.getfixturevalue(variant)
    proc = run([tools["promtool"], "check", "rules", files["rules"]])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS: 17 rules found" in proc.stdout


def test_thresholds_come_from_variables(rendered, rendered_notify):
    assert "homelab_zfs_pool_capacity_ratio > 0.8\n" in open(rendered["rules"]).read()
    assert "homelab_zfs_pool_capacity_ratio > 0.9\n" in open(rendered_notify["rules"]).read()


# A catalog as Consul would answer it (the live test asks a real Consul).
CATALOG = {
    "node-exporter": {"tags": ["metrics"], "instances": [("nas", "10.0.0.2", 9100, {"metrics_path": "/metrics"})]},
    "traefik": {"tags": ["metrics", "traefik.enable=false"], "instances": [("nas", "10.0.0.2", 8082, {})]},
    "alertmanager": {"tags": ["metrics"], "instances": [("nas", "10.0.0.2", 23456, {"metrics_path": "/metrics"})]},
    "consul": {"tags": [], "instances": [("nas", "10.0.0.2", 8300, {})]},
    "nomad": {"tags": ["http", "rpc"], "instances": [("nas", "10.0.0.2", 4646, {})]},
    "web": {"tags": ["traefik.enable=true"], "instances": [("nas", "10.0.0.2", 8080, {})]},
}


def fake_service(query):
    tag, _sep, name = query.rpartition(".")
    entry = CATALOG.get(name)
    if not entry or (tag and tag not in entry["tags"]):
        return []
    return [{"ID": "%s-%d" % (name, i), "Name": name, "Node": node, "Address": addr, "NodeAddress": addr,
             "Port": port, "Tags": entry["tags"], "ServiceMeta": meta}
            for i, (node, addr, port, meta) in enumerate(entry["instances"])]


def fake_services():
    return [{"Name": name, "Tags": entry["tags"]} for name, entry in sorted(CATALOG.items())]


@pytest.mark.parametrize("variant", ["rendered", "rendered_notify"])
def test_promtool_check_config(request, tools, tmp_path, variant):
    """The whole Prometheus config as promtool reads it, with the target files its Nomad
    templates render from a catalog (promtool checks each file_sd file's target groups)."""
    files = request.getfixturevalue(variant)
    (tmp_path / "rules.yml").write_text(open(files["rules"]).read())
    (tmp_path / "consul_token").write_text("token\n")
    render_targets(files, str(tmp_path / "targets"), fake_service, fake_services)
    text = local_paths(open(files["prometheus"]).read(), str(tmp_path))
    (tmp_path / "prometheus.yml").write_text(text)
    config = yaml.safe_load(text)
    proc = run([tools["promtool"], "check", "config", str(tmp_path / "prometheus.yml")])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS: 17 rules found" in proc.stdout
    assert "WARNING" not in proc.stdout + proc.stderr  # every target file exists
    jobs = [j["job_name"] for j in config["scrape_configs"]]
    assert jobs == ["consul-services", "nomad", "consul"]
    sd = {j["job_name"]: j["file_sd_configs"] for j in config["scrape_configs"]}
    assert sd["consul-services"] == [{"files": [str(tmp_path / "targets" / "services.yml")]}]
    assert config["alerting"]["alertmanagers"][0]["file_sd_configs"] == [
        {"files": [str(tmp_path / "targets" / "alertmanager.yml")]}]


def test_target_templates_select_what_consul_discovery_would(rendered, tmp_path):
    """Tagged services only (with their metrics_path, "" when unset), the Nomad agents' "http"
    port, Alertmanager and the Consul servers, with Prometheus' __meta_consul_* labels."""
    directory = render_targets(rendered, str(tmp_path), fake_service, fake_services)

    def groups(name):
        return yaml.safe_load(open(os.path.join(directory, name + ".yml"))) or []

    services = groups("services")
    assert [g["labels"]["__meta_consul_service"] for g in services] == ["alertmanager", "node-exporter", "traefik"]
    assert services[1] == {"targets": ["10.0.0.2:9100"], "labels": {
        "__meta_consul_service": "node-exporter", "__meta_consul_service_id": "node-exporter-0",
        "__meta_consul_node": "nas", "__meta_consul_address": "10.0.0.2",
        "__meta_consul_service_metadata_metrics_path": "/metrics"}}
    assert services[2]["labels"]["__meta_consul_service_metadata_metrics_path"] == ""
    assert [g["targets"] for g in groups("nomad")] == [["10.0.0.2:4646"]]
    assert [g["targets"] for g in groups("alertmanager")] == [["10.0.0.2:23456"]]
    assert [g["labels"]["__meta_consul_address"] for g in groups("consul")] == ["10.0.0.2"]


def test_prometheus_job_carries_the_target_templates(rendered):
    job = json.load(open(rendered["job-prometheus.json"]))
    templates = {t["DestPath"]: t for t in job["TaskGroups"][0]["Tasks"][0]["Templates"]}
    for name in TARGET_SETS:
        spec = templates["local/targets/%s.yml" % name]
        assert spec["EmbeddedTmpl"] == open(rendered["targets_" + name]).read()
        assert spec["ChangeMode"] == "noop"  # Prometheus watches its file_sd files
        assert (spec["LeftDelim"], spec["RightDelim"]) == ("[[%", "%]]")


def test_every_discovery_block_relabels(rendered):
    """Targets are named after their Consul service and node, and Consul's own scrape goes to its HTTP port."""
    config = yaml.safe_load(open(rendered["prometheus"]).read())
    for holder in config["alerting"]["alertmanagers"] + config["scrape_configs"]:
        assert holder.get("relabel_configs"), "every discovery block keeps its relabelling"
    jobs = {j["job_name"]: j for j in config["scrape_configs"]}
    assert {"source_labels": ["__meta_consul_service"], "target_label": "job"} in jobs["consul-services"][
        "relabel_configs"]
    assert jobs["consul"]["relabel_configs"][0]["replacement"] == "${1}:8500"
    assert jobs["nomad"]["params"] == {"format": ["prometheus"]}


@pytest.mark.parametrize("variant", ["rendered", "rendered_notify"])
def test_amtool_check_config(request, tools, tmp_path, variant):
    files = request.getfixturevalue(variant)
    text = open(files["alertmanager"]).read().replace("/secrets/smtp_password", str(tmp_path / "smtp_password"))
    (tmp_path / "smtp_password").write_text("secret\n")
    (tmp_path / "alertmanager.yml").write_text(text)
    proc = run([tools["amtool"], "check-config", str(tmp_path / "alertmanager.yml")])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout
    config = yaml.safe_load(text)
    receivers = {r["name"]: r for r in config["receivers"]}
    if variant == "rendered":
        # no receiver configured: the UI only
        assert config["route"]["receiver"] == "ui-only" and list(receivers) == ["ui-only"]
        assert "global" not in config
    else:
        assert config["route"]["receiver"] == "owner"
        assert receivers["owner"]["email_configs"] == [{"to": "owner@example.org", "send_resolved": True}]
        assert receivers["owner"]["webhook_configs"][0]["url"] == "https://ntfy.example.org/homelab"
        assert config["global"]["smtp_auth_password_file"] == str(tmp_path / "smtp_password")
        # the password itself is read from a file rendered from Vault, never written in the config
        assert "smtp_auth_password:" not in open(files["alertmanager"]).read()


def test_amtool_routes(tools, rendered_notify, tmp_path):
    """A pool alert goes to the owner, grouped by alert, instance and pool."""
    text = open(rendered_notify["alertmanager"]).read().replace("/secrets/smtp_password", str(tmp_path / "pw"))
    (tmp_path / "pw").write_text("x\n")
    (tmp_path / "am.yml").write_text(text)
    proc = run([tools["amtool"], "config", "routes", "test", "--config.file", str(tmp_path / "am.yml"),
                "alertname=ZfsPoolDegraded", "pool=tank"])
    assert proc.returncode == 0 and proc.stdout.strip() == "owner", proc.stdout + proc.stderr


def _rules_test(tmp_path, rendered, name):
    # Text, not a YAML round trip: PyYAML reads series values such as 0x900 as hex numbers.
    text = open(os.path.join(HERE, name)).read()
    assert "\nevaluation_interval:" in text
    (tmp_path / "rules.yml").write_text(open(rendered["rules"]).read())
    path = tmp_path / name
    path.write_text(text.replace("\nevaluation_interval:", "\nrule_files: [%s]\nevaluation_interval:"
                                 % json.dumps(str(tmp_path / "rules.yml")), 1))
    return path


@pytest.mark.parametrize("name", ["rules_test.yml", "rules_test_long.yml"])
def test_promtool_test_rules(tools, rendered, tmp_path, name):
    path = _rules_test(tmp_path, rendered, name)
    proc = run([tools["promtool"], "test", "rules", str(path)])
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_promtool_test_rules_can_fail(tools, rendered, tmp_path):
    """The unit tests are not vacuous: with a lower capacity threshold the 'not firing' case fails."""
    path = _rules_test(tmp_path, rendered, "rules_test.yml")
    (tmp_path / "rules.yml").write_text(open(rendered["rules"]).read().replace(
        "homelab_zfs_pool_capacity_ratio > 0.8", "homelab_zfs_pool_capacity_ratio > 0.7"))
    proc = run([tools["promtool"], "test", "rules", str(path)])
    assert proc.returncode != 0 and "ZfsPoolAlmostFull" in proc.stdout + proc.stderr


def test_every_alert_is_tested_both_ways_and_documented(rendered):
    alerts = {name for name, _expr in rule_expressions(open(rendered["rules"]).read())}
    firing, quiet = set(), set()
    for name in ("rules_test.yml", "rules_test_long.yml"):
        for group in yaml.safe_load(open(os.path.join(HERE, name)).read())["tests"]:
            for case in group["alert_rule_test"]:
                (firing if case["exp_alerts"] else quiet).add(case["alertname"])
    assert alerts - firing == set(), "alerts without a firing test"
    assert alerts - quiet == set(), "alerts without a not-firing test"
    doc = open(os.path.join(REPO, "docs", "monitoring.md")).read().split("\n## Alerts\n", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"^\| `(\w+)` \|", doc, re.M))
    assert documented == alerts, "docs/monitoring.md's alert table differs from the rules"


def test_every_expression_parses(tools, rendered, tmp_path):
    """Each dashboard query and rule expression, as a recording rule promtool parses."""
    exprs = [expr for _n, expr in rule_expressions(open(rendered["rules"]).read())]
    for dashboard in load_dashboards().values():
        exprs += [substitute(expr) for _where, expr in dashboard_queries(dashboard)]
    rules = {"groups": [{"name": "parse", "rules": [{"record": "check:expr_%d" % i, "expr": e}
                                                    for i, e in enumerate(exprs)]}]}
    (tmp_path / "exprs.yml").write_text(yaml.safe_dump(rules))
    proc = run([tools["promtool"], "check", "rules", str(tmp_path / "exprs.yml")])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS: %d rules found" % len(exprs) in proc.stdout
    # and a broken one is caught
    (tmp_path / "bad.yml").write_text(yaml.safe_dump(
        {"groups": [{"name": "bad", "rules": [{"record": "x", "expr": "sum(rate(x[5m])"}]}]}))
    assert run([tools["promtool"], "check", "rules", str(tmp_path / "bad.yml")]).returncode != 0


def test_metric_name_extraction():
    assert metric_names('1 - avg by (instance) (rate(node_cpu_seconds_total{mode="idle"}[5m]))') == {
        "node_cpu_seconds_total"}
    assert metric_names("homelab_zfs_pool_online unless on(instance, pool) homelab_zfs_pool_last_scrub_end_"
                        "timestamp_seconds") == {"homelab_zfs_pool_online",
                                                 "homelab_zfs_pool_last_scrub_end_timestamp_seconds"}
    assert metric_names("time() - x{a=\"b\"} > 35 * 86400") == {"x"}


def test_dashboards_use_the_provisioned_datasource():
    for dashboard in load_dashboards().values():
        assert dashboard["uid"].startswith("homelab-")
        for panel in dashboard["panels"]:
            if panel["type"] != "row":
                assert panel["datasource"] == {"type": "prometheus", "uid": "prometheus"}, panel["title"]
                assert panel["targets"], "%s / %s has no query" % (dashboard["title"], panel["title"])


def test_jobs_carry_configs_services_and_auth(rendered, rendered_notify):
    jobs = {name: json.load(open(rendered["job-%s.json" % name])) for name in
            ("prometheus", "alertmanager", "grafana", "cadvisor")}
    assert jobs["cadvisor"]["Type"] == "system"
    for name, job in jobs.items():
        group = job["TaskGroups"][0]
        service = group["Services"][0]
        assert service["Name"] == name and "metrics" in service["Tags"]
        task = group["Tasks"][0]
        assert task["Driver"] == "docker"
    prom = jobs["prometheus"]["TaskGroups"][0]["Tasks"][0]
    templates = {t["DestPath"]: t for t in prom["Templates"]}
    assert templates["local/prometheus.yml"]["EmbeddedTmpl"] == open(rendered["prometheus"]).read()
    assert templates["local/rules/homelab.yml"]["EmbeddedTmpl"] == open(rendered["rules"]).read()
    assert templates["local/rules/homelab.yml"]["LeftDelim"] == "[[%"
    assert templates["secrets/consul_token"]["EmbeddedTmpl"] == \
        '{{ with secret "kv/data/prometheus" }}{{ index .Data.data "consul_token" }}{{ end }}'
    # Nomad writes it as root; Prometheus (nobody in its image) must be able to read it
    assert (templates["secrets/consul_token"]["Uid"], templates["secrets/consul_token"]["Gid"]) == (65534, 65534)
    assert prom["Vault"]["Role"] == "prometheus"
    assert "--storage.tsdb.retention.time=90d" in prom["Config"]["args"]
    assert prom["Config"]["volumes"] == ["/srv/homelab/prometheus:/prometheus"]
    grafana = jobs["grafana"]["TaskGroups"][0]["Tasks"][0]
    assert grafana["Env"]["GF_ANALYTICS_REPORTING_ENABLED"] == "false"
    assert grafana["Env"]["GF_ANALYTICS_CHECK_FOR_UPDATES"] == "false"
    assert grafana["Env"]["GF_AUTH_ANONYMOUS_ENABLED"] == "false"
    dests = {t["DestPath"] for t in grafana["Templates"]}
    assert {"local/dashboards/%s.json" % d for d in ("host", "zfs", "containers", "smart")} <= dests
    assert "GF_SECURITY_ADMIN_PASSWORD" in grafana["Templates"][0]["EmbeddedTmpl"]
    # Routes: Grafana (own login) always; the others only behind an auth middleware.
    tags = {n: j["TaskGroups"][0]["Services"][0]["Tags"] for n, j in jobs.items()}
    assert "traefik.http.routers.grafana.rule=Host(`grafana.home.example.org`)" in tags["grafana"]
    for name in ("prometheus", "alertmanager", "cadvisor"):
        assert "traefik.enable=false" in tags[name]
    notify = {n: json.load(open(rendered_notify["job-%s.json" % n]))["TaskGroups"][0]["Services"][0]["Tags"]
              for n in ("prometheus", "alertmanager", "cadvisor")}
    for name, service_tags in notify.items():
        assert "traefik.http.routers.%s.rule=Host(`%s.home.example.org`)" % (name, name) in service_tags
        assert "traefik.http.routers.%s.middlewares=lan-auth@file" % name in service_tags
    am = json.load(open(rendered_notify["job-alertmanager.json"]))["TaskGroups"][0]["Tasks"][0]
    assert {t["DestPath"] for t in am["Templates"]} == {"local/alertmanager.yml", "secrets/smtp_password"}
    assert am["Vault"]["Role"] == "alertmanager"


def test_jobs_accepted_by_the_nomad_simulator(rendered):
    from tests.simulators.base import SimServer
    from tests.simulators.nomad import NomadSim

    with SimServer(NomadSim(acl_enabled=False, settle_seconds=0.1)) as server:
        import requests

        for name in ("prometheus", "alertmanager", "grafana", "cadvisor"):
            job = json.load(open(rendered["job-%s.json" % name]))
            plan = requests.post(server.address + "/v1/job/%s/plan" % name, json={"Job": job, "Diff": True},
                                 timeout=10)
            assert plan.status_code == 200, plan.text
            reg = requests.post(server.address + "/v1/jobs", json={"Job": job}, timeout=10)
            assert reg.status_code == 200, reg.text
            stored = requests.get(server.address + "/v1/job/" + name, timeout=10).json()
            assert stored["Type"] == job["Type"]
            task = stored["TaskGroups"][0]["Tasks"][0]
            assert [t["EmbeddedTmpl"] for t in task.get("Templates") or []] == \
                [t["EmbeddedTmpl"] for t in job["TaskGroups"][0]["Tasks"][0].get("Templates") or []]
            assert stored["TaskGroups"][0]["Services"][0]["Tags"] == job["TaskGroups"][0]["Services"][0]["Tags"]


@pytest.mark.parametrize("variable, value, message", [
    ("monitoring_alert_pool_capacity_ratio", 80, "must be a ratio between 0 and 1"),
    ("monitoring_prometheus_retention_time", "ninety days", "is not a Prometheus duration"),
    ("monitoring_alertmanager_webhook_url", "ntfy.example.org", "must be an http:// or https:// URL"),
])
def test_bad_input_fails_before_anything_changes(tmp_path, variable, value, message):
    import monitoring_it

    with pytest.raises(AssertionError) as failure:
        monitoring_it.render(str(tmp_path / "out"), **{variable: value})
    assert variable in str(failure.value) and message in str(failure.value)
    assert not [f for f in os.listdir(tmp_path / "out") if f != "vars.json"], "nothing is written"
