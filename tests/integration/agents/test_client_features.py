"""The Nomad simulator's client features the app and backup jobs need, against the real
Consul and the Vault simulator: host volumes (static and dynamic) mounted into docker
tasks (read_only honoured, raw_exec refused as Nomad refuses it), the docker driver's
``volumes``/``mount`` options, ``restart`` attempts, ``lifecycle`` ordering, placement
failures for host volumes, and periodic jobs firing on their cron (``prohibit_overlap``)."""

from __future__ import annotations

from pathlib import Path

from tests.support.net import http
from tests.support.process import wait

from .conftest import STANDIN_IMAGE

DOCKER_BATCH = '''
job "%(name)s" {
  datacenters = ["dc1"]
  type = "batch"
  group "run" {
    %(volumes)s
    restart {
      attempts = 0
      mode     = "fail"
    }
    task "sh" {
      driver = "docker"
      config {
        image   = "%(image)s"
        command = "/bin/sh"
        args    = ["-c", "%(script)s"]
        %(config)s
      }
      %(mounts)s
    }
  }
}
'''
RAW_BATCH = '''
job "%(name)s" {
  datacenters = ["dc1"]
  type = "%(type)s"
  %(periodic)s
  group "run" {
    %(group)s
%(tasks)s
  }
}
'''
RAW_TASK = '''
    task "%(name)s" {
      driver = "raw_exec"
      config {
        command = "/bin/sh"
        args    = ["-c", "%(script)s"]
      }
      %(extra)s
    }
'''


def _docker(stack, name, script, volumes="", mounts="", config=""):
    return stack.run_job(DOCKER_BATCH % {"name": name, "image": STANDIN_IMAGE, "script": script,
                                         "volumes": volumes, "mounts": mounts, "config": config})


def _ended(stack, job_id, timeout=60):
    return wait(lambda: [a for a in stack.allocs(job_id) if a["ClientStatus"] in ("complete", "failed")],
                timeout=timeout, what="%s to end" % job_id)[0]


def _events(stack, alloc_id, task):
    return stack.alloc(alloc_id)["TaskStates"][task]["Events"]


def test_host_volumes_mount_into_docker_tasks_read_only_honoured(stack):
    vols = '''volume "photos" {
      type   = "host"
      source = "photos"
    }
    volume "originals" {
      type      = "host"
      source    = "originals"
      read_only = true
    }'''
    mounts = '''volume_mount {
        volume      = "photos"
        destination = "/photos"
      }
      volume_mount {
        volume      = "originals"
        destination = "/originals"
      }'''
    job_id = _docker(stack, "hv-write", "cat /originals/IMG_0001.jpg > /photos/copy.jpg", vols, mounts)
    alloc = _ended(stack, job_id)
    assert alloc["ClientStatus"] == "complete", _events(stack, alloc["ID"], "sh")
    assert (stack.tmp / "photos" / "copy.jpg").read_text() == "a photo\n"

    # Writing into the read-only volume fails inside the container.
    job_id = _docker(stack, "hv-readonly", "echo x > /originals/new.jpg", vols, mounts)
    alloc = _ended(stack, job_id)
    assert alloc["ClientStatus"] == "failed"
    assert not (stack.tmp / "originals" / "new.jpg").exists()
    # read_only on the mount alone is honoured too.
    ro_mount = mounts.replace('destination = "/photos"', 'destination = "/photos"\n        read_only   = true')
    job_id = _docker(stack, "hv-mount-ro", "echo x > /photos/new.jpg", vols, ro_mount)
    assert _ended(stack, job_id)["ClientStatus"] == "failed"
    assert not (stack.tmp / "photos" / "new.jpg").exists()


def test_a_read_only_host_volume_requested_writable_is_not_placed(stack):
    vols = 'volume "originals" {\n      type   = "host"\n      source = "originals"\n    }'
    for name, volumes in (("hv-rw-request", vols), ("hv-missing", vols.replace('source = "originals"',
                                                                               'source = "nowhere"'))):
        job_id = _docker(stack, name, "true", volumes)
        assert stack.allocs(job_id) == []
        evals = http("GET", "%s/v1/job/%s/evaluations" % (stack.nomad, job_id))[1]
        failed = [e for e in evals if e.get("FailedTGAllocs")]
        assert failed, evals
        assert failed[0]["FailedTGAllocs"]["run"]["ConstraintFiltered"] == {"missing compatible host volumes": 1}
        assert any(e["Status"] == "blocked" for e in evals)


def test_dynamic_host_volume_is_created_and_mounted(stack):
    status, out = http("PUT", stack.nomad + "/v1/volume/host/create",
                       {"Volume": {"Name": "nextcloud-data", "PluginID": "mkdir"}})
    assert status == 200, out
    host_path = Path(out["Volume"]["HostPath"])
    assert host_path.is_dir() and host_path.is_relative_to(stack.nomad_data)
    vols = 'volume "data" {\n      type   = "host"\n      source = "nextcloud-data"\n    }'
    mounts = 'volume_mount {\n        volume      = "data"\n        destination = "/data"\n      }'
    job_id = _docker(stack, "dhv", "echo kept > /data/file", vols, mounts)
    assert _ended(stack, job_id)["ClientStatus"] == "complete"
    assert (host_path / "file").read_text() == "kept\n"


def test_raw_exec_refuses_a_volume_mount_as_nomad_does(stack):
    vols = 'volume "photos" {\n      type   = "host"\n      source = "photos"\n    }'
    mount = 'volume_mount {\n        volume      = "photos"\n        destination = "/photos"\n      }'
    task = RAW_TASK % {"name": "backup", "script": "true", "extra": mount}
    job_id = stack.run_job(RAW_BATCH % {"name": "raw-volume", "type": "batch", "periodic": "", "group": vols,
                                        "tasks": task})
    alloc = _ended(stack, job_id)
    assert alloc["ClientStatus"] == "failed"
    messages = [e["DisplayMessage"] for e in _events(stack, alloc["ID"], "backup")]
    assert 'volumes: task driver "raw_exec" for "backup" does not support host volumes' in messages


def test_docker_volumes_and_mount_options(stack):
    # A relative host path is the task directory's; an absolute one needs the plugin's volumes enabled.
    config = 'volumes = ["local/shared:/shared"]\n        mount {\n          type   = "bind"\n' \
             '          source = "local"\n          target = "/ro-local"\n          readonly = true\n        }'
    job_id = _docker(stack, "dv", "echo hi > /shared/f && ! echo x > /ro-local/g", config=config)
    alloc = _ended(stack, job_id)
    assert alloc["ClientStatus"] == "complete", _events(stack, alloc["ID"], "sh")
    assert (stack.nomad_data / "alloc" / alloc["ID"] / "sh" / "local" / "shared" / "f").read_text() == "hi\n"

    job_id = _docker(stack, "dv-abs", "true", config='volumes = ["/etc:/host-etc"]')
    alloc = _ended(stack, job_id)
    assert alloc["ClientStatus"] == "failed"
    errors = [e["DriverError"] for e in _events(stack, alloc["ID"], "sh") if e["Type"] == "Driver Failure"]
    assert errors and 'volumes are not enabled; cannot mount host paths: "/etc"' in errors[0]


def test_restart_attempts_then_the_policy_gives_up(stack):
    group = ('restart {\n      attempts = 2\n      delay    = "1s"\n      interval = "1m"\n'
             '      mode     = "fail"\n    }')
    task = RAW_TASK % {"name": "flaky", "script": "echo run >> ${NOMAD_ALLOC_DIR}/data/runs; exit 3", "extra": ""}
    job_id = stack.run_job(RAW_BATCH % {"name": "flaky", "type": "service", "periodic": "", "group": group,
                                        "tasks": task})
    alloc = _ended(stack, job_id)
    state = stack.alloc(alloc["ID"])["TaskStates"]["flaky"]
    assert alloc["ClientStatus"] == "failed" and state["Failed"]
    assert state["Restarts"] == 2
    assert (stack.nomad_data / "alloc" / alloc["ID"] / "alloc" / "data" / "runs").read_text() == "run\n" * 3
    types = [e["Type"] for e in state["Events"]]
    assert types.count("Restarting") == 2 and types.count("Started") == 3
    assert state["Events"][-1]["DisplayMessage"] == \
        'Exceeded allowed attempts 2 in interval 1m0s and mode is "fail"'


def test_lifecycle_prestart_main_poststart_order(stack):
    order = "${NOMAD_ALLOC_DIR}/data/order"
    tasks = "".join([
        RAW_TASK % {"name": "main", "script": "echo main >> %s; sleep 2" % order, "extra": ""},
        RAW_TASK % {"name": "post", "script": "echo post >> %s" % order,
                    "extra": 'lifecycle {\n        hook = "poststart"\n      }'},
        RAW_TASK % {"name": "pre", "script": "sleep 1; echo pre >> %s" % order,
                    "extra": 'lifecycle {\n        hook = "prestart"\n      }'},
    ])
    job_id = stack.run_job(RAW_BATCH % {"name": "ordered", "type": "batch", "periodic": "", "group": "",
                                        "tasks": tasks})
    alloc = _ended(stack, job_id)
    assert alloc["ClientStatus"] == "complete", stack.alloc(alloc["ID"])["TaskStates"]
    assert (stack.nomad_data / "alloc" / alloc["ID"] / "alloc" / "data" / "order").read_text() == "pre\nmain\npost\n"


def test_a_failed_prestart_task_keeps_the_main_task_from_starting(stack):
    tasks = "".join([
        RAW_TASK % {"name": "main", "script": "echo main > ${NOMAD_ALLOC_DIR}/data/main", "extra": ""},
        RAW_TASK % {"name": "migrate", "script": "exit 1", "extra": 'lifecycle {\n        hook = "prestart"\n      }'},
    ])
    group = 'restart {\n      attempts = 0\n      mode     = "fail"\n    }'
    job_id = stack.run_job(RAW_BATCH % {"name": "premigrate", "type": "batch", "periodic": "", "group": group,
                                        "tasks": tasks})
    alloc = _ended(stack, job_id)
    states = stack.alloc(alloc["ID"])["TaskStates"]
    assert alloc["ClientStatus"] == "failed"
    assert states["migrate"]["Failed"] and states["main"]["State"] == "pending"
    assert not (stack.nomad_data / "alloc" / alloc["ID"] / "alloc" / "data" / "main").exists()


def test_periodic_job_fires_on_its_cron_and_prohibits_overlap(stack):
    # Every 2 seconds (cronexpr's seven fields, seconds first); each run lasts 5 s.
    periodic = 'periodic {\n    crons            = ["*/2 * * * * * *"]\n    prohibit_overlap = true\n  }'
    task = RAW_TASK % {"name": "tick", "script": "date +%%s >> ${NOMAD_ALLOC_DIR}/data/t; sleep 5", "extra": ""}
    job_id = stack.run_job(RAW_BATCH % {"name": "ticker", "type": "batch", "periodic": periodic, "group": "",
                                        "tasks": task})

    def children():
        return sorted(j["ID"] for j in http("GET", stack.nomad + "/v1/jobs")[1]
                      if j["ID"].startswith(job_id + "/periodic-"))

    wait(lambda: len(children()) >= 2, timeout=40, what="two launches by cron")
    launched = [int(c.rsplit("-", 1)[1]) for c in children()]
    # prohibit_overlap: a launch waits until the previous child has ended (5 s), not every 2 s.
    assert all(b - a >= 5 for a, b in zip(launched, launched[1:], strict=False)), launched
    assert all(t % 2 == 0 for t in launched), launched
    assert http("DELETE", "%s/v1/job/%s" % (stack.nomad, job_id))[0] == 200
    before = children()
    wait(lambda: not [a for a in http("GET", stack.nomad + "/v1/allocations")[1]
                      if a["JobID"].startswith(job_id + "/") and a["ClientStatus"] == "running"], timeout=30,
         what="the last child to end")
    assert children() == before  # a stopped periodic job launches no more
