"""The app roles through ansible-playbook against the Nomad simulator.

No pool (homelab_zfs_pool empty): the internal app role makes directories under
the test's data and scratch roots, registers them as dynamic host volumes, and
submits each job with nomad_job. Asserted: the jobs as submitted validate
against Nomad's Job schema and are what each app needs; the simulator accepted
them (read back, deployment settled); volumes and directories exist; check mode
changes nothing; a second run changes nothing; bad input fails before changes.
"""

from __future__ import annotations

import os
import stat
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

from apps_it import changed_tasks, failures, stats, submitted_jobs  # noqa: E402

from tests.nomad_jobschema import assert_valid_job  # noqa: E402

UID = str(os.getuid())
GID = str(os.getgid())
FOUR = [{"role": "selfhost.homelab.transmission"}, {"role": "selfhost.homelab.nextcloud"},
        {"role": "selfhost.homelab.photoprism"}, {"role": "selfhost.homelab.plex"}]
# Owners the roles give directories, mapped to the test's own user (the real ones need root).
EXTRA = {"photoprism_originals": [{"user": "anna"}, {"user": "bob", "folder": "Camera"}],
         "photoprism_nextcloud_uid": UID, "transmission_uid": UID, "transmission_gid": GID,
         "plex_media": [{"name": "movies", "host_path": "{{ homelab_data_root }}/media/movies"}]}


def _env(job):
    return job["TaskGroups"][0]["Tasks"][0]["Env"]


def _task(job):
    return job["TaskGroups"][0]["Tasks"][0]


def _service(job):
    return job["TaskGroups"][0]["Services"][0]


@pytest.fixture(scope="module")
def deployed(tmp_path_factory, nomad):
    """The four apps deployed once (check mode first); shared by the tests of this module."""
    from apps_it import run_play

    tmp = tmp_path_factory.mktemp("apps")
    (tmp / "data" / "media" / "movies").mkdir(parents=True)
    rc, out, err = run_play(tmp, nomad, FOUR, EXTRA, check=True)
    check = (rc, out, err, nomad.get("/v1/jobs"), nomad.get("/v1/volumes", type="host"), sorted(os.listdir(tmp)),
             sorted(os.listdir(tmp / "data")))
    rc, out, err = run_play(tmp, nomad, FOUR, EXTRA, diff=True)
    assert rc == 0, failures(out) or err
    again = run_play(tmp, nomad, FOUR, EXTRA)
    return {"tmp": tmp, "check": check, "out": out, "again": again, "jobs": submitted_jobs(out)}


def test_check_mode_changes_nothing(deployed):
    rc, out, err, jobs, volumes, listing, data_listing = deployed["check"]
    assert rc == 0, failures(out) or err
    assert stats(out)["changed"] > 0
    ours = ("transmission", "nextcloud", "photoprism", "plex")
    assert [j["ID"] for j in jobs if j["ID"].startswith(ours)] == []
    assert [v["Name"] for v in volumes if v["Name"].startswith(ours)] == []
    assert "scratch" not in listing and data_listing == ["media"]


def test_every_job_validates_and_the_simulator_runs_it(deployed, nomad):
    jobs = deployed["jobs"]
    assert set(jobs) == {"transmission", "nextcloud", "nextcloud-db", "photoprism", "photoprism-db", "plex"}
    for job_id, job in jobs.items():
        assert_valid_job(job)
        current = nomad.job(job_id)
        assert_valid_job(current, strict=False)
        assert current["Status"] == "running" and current["Version"] == 0, job_id
        deployment = nomad.get("/v1/job/%s/deployment" % job_id)
        assert deployment["Status"] == "successful", (job_id, deployment)


def test_second_run_changes_nothing(deployed):
    rc, out, err = deployed["again"]
    assert rc == 0, failures(out) or err
    assert stats(out)["changed"] == 0, changed_tasks(out)


def test_services_and_routing_tags(deployed):
    jobs = deployed["jobs"]
    routed = {"photoprism": "photos", "nextcloud": "cloud", "plex": "plex", "transmission": "torrents"}
    for job_id, name in routed.items():
        assert _service(jobs[job_id])["Name"] == name
        assert _service(jobs[job_id])["Tags"] == ["traefik.enable=true"]
        assert _service(jobs[job_id])["Checks"], job_id
    for db in ("photoprism-db", "nextcloud-db"):
        assert _service(jobs[db])["Tags"] == [], "databases are not routed"
        assert jobs[db]["TaskGroups"][0]["Networks"][0]["ReservedPorts"][0]["Value"] in (3307, 5433)
    assert _service(jobs["plex"])["Checks"][0]["Path"] == "/identity"


def test_volumes_registered_and_directories_made(deployed, nomad):
    tmp = deployed["tmp"]
    data, scratch = str(tmp / "data"), str(tmp / "scratch")
    vols = nomad.volumes()
    expect = {
        "transmission-data": data + "/transmission",
        "transmission-complete": scratch + "/transmission/complete",
        "transmission-incomplete": scratch + "/transmission/incomplete",
        "transmission-watch": scratch + "/transmission/watch",
        "nextcloud-db-data": data + "/nextcloud-db",
        "nextcloud-data": data + "/nextcloud",
        "nextcloud-html": data + "/nextcloud/html",
        "photoprism-db-data": data + "/photoprism-db",
        "photoprism-data": data + "/photoprism",
        "photoprism-cache": scratch + "/photoprism/cache",
        "photoprism-originals-anna": data + "/nextcloud/anna/files/Photos",
        "photoprism-originals-bob": data + "/nextcloud/bob/files/Camera",
        "plex-data": data + "/plex",
        "plex-transcode": scratch + "/plex/transcode",
        "plex-downloads": scratch + "/transmission/complete",
        "plex-media-movies": data + "/media/movies",
    }
    assert {n: v["HostPath"] for n, v in vols.items() if not n.startswith("whoami")} == expect
    for path in expect.values():
        assert os.path.isdir(path), path
    modes = {n: [c["AccessMode"] for c in v["RequestedCapabilities"]] for n, v in vols.items()}
    for name in ("photoprism-originals-anna", "plex-downloads", "plex-media-movies"):
        assert modes[name] == ["single-node-reader-only"], name
    assert modes["nextcloud-data"] == ["single-node-writer"]
    assert stat.S_IMODE(os.stat(data + "/nextcloud").st_mode) == 0o770


def test_photoprism(deployed):
    job = deployed["jobs"]["photoprism"]
    env, task = _env(job), _task(job)
    assert env["PHOTOPRISM_SITE_URL"] == "https://photos.home.example.test/"
    assert env["PHOTOPRISM_DISABLE_PLACES"] == "true" and env["PHOTOPRISM_READONLY"] == "true"
    assert env["PHOTOPRISM_DATABASE_SERVER"] == "${attr.unique.network.ip-address}:3307"
    assert "PHOTOPRISM_ADMIN_PASSWORD" not in env and "PHOTOPRISM_DATABASE_PASSWORD" not in env
    tmpl = task["Templates"][0]["EmbeddedTmpl"]
    assert 'with secret "kv/data/photoprism"' in tmpl and "PHOTOPRISM_ADMIN_PASSWORD=" in tmpl
    mounts = {m["Destination"]: m["ReadOnly"] for m in task["VolumeMounts"]}
    assert mounts == {"/photoprism/storage": False, "/photoprism/storage/cache": False,
                      "/photoprism/originals/anna": True, "/photoprism/originals/bob": True}
    db = deployed["jobs"]["photoprism-db"]
    assert 'with secret "kv/data/photoprism"' in _task(db)["Templates"][0]["EmbeddedTmpl"]
    assert "MARIADB_PASSWORD=" in _task(db)["Templates"][0]["EmbeddedTmpl"]


def test_nextcloud(deployed):
    job = deployed["jobs"]["nextcloud"]
    env = _env(job)
    main, cron = job["TaskGroups"][0]["Tasks"]
    assert env["OVERWRITEPROTOCOL"] == "https" and env["TRUSTED_PROXIES"] == "192.168.1.0/24"
    assert env["NEXTCLOUD_TRUSTED_DOMAINS"] == "cloud.home.example.test"
    assert env["POSTGRES_HOST"] == "${attr.unique.network.ip-address}:5433"
    assert cron["Config"]["entrypoint"] == ["/cron.sh"] and cron["Lifecycle"]["Sidecar"] is True
    config = [t for t in main["Templates"] if t["DestPath"] == "local/homelab.config.php"][0]["EmbeddedTmpl"]
    assert config.startswith("<?php\n")
    for needle in ('"updatechecker": false', '"has_internet_connection": false', '"overwriteprotocol": "https"',
                   '"trusted_proxies": ["192.168.1.0/24"]', '"appstoreenabled": false', '"lookup_server": ""'):
        assert needle in config, needle
    assert {"type": "bind", "source": "local/homelab.config.php", "target": "/var/www/html/config/homelab.config.php",
            "readonly": True} in main["Config"]["mount"]
    db = deployed["jobs"]["nextcloud-db"]
    assert "POSTGRES_PASSWORD=" in _task(db)["Templates"][0]["EmbeddedTmpl"]
    assert 'with secret "kv/data/nextcloud"' in _task(db)["Templates"][0]["EmbeddedTmpl"]


def test_plex(deployed):
    job = deployed["jobs"]["plex"]
    main, prefs = job["TaskGroups"][0]["Tasks"]
    assert "PLEX_CLAIM=" in main["Templates"][0]["EmbeddedTmpl"] and "PLEX_CLAIM" not in main["Env"]
    mounts = {m["Destination"]: m["ReadOnly"] for m in main["VolumeMounts"]}
    assert mounts == {"/config": False, "/transcode": False, "/media/downloads": True, "/media/movies": True}
    assert prefs["Lifecycle"] == {"Hook": "prestart", "Sidecar": False}
    script = [t for t in main["Templates"] if t["DestPath"] == "local/plex-preferences.sh"][0]["EmbeddedTmpl"]
    assert 'sendCrashReports="0"' in script and 'PublishServerOnPlexOnlineKey="0"' in script


def test_transmission(deployed):
    job = deployed["jobs"]["transmission"]
    env, task = _env(job), _task(job)
    assert env["HOST_WHITELIST"] == "torrents.home.example.test" and env["USER"] == "admin"
    assert "PASS=" in task["Templates"][0]["EmbeddedTmpl"] and "PASS" not in env
    mounts = {m["Destination"]: m["ReadOnly"] for m in task["VolumeMounts"]}
    assert mounts == {"/config": False, "/downloads/complete": False, "/downloads/incomplete": False,
                      "/watch": False}


FILES = os.path.join(HERE, "files")


def _parse(nomad, name):
    import requests

    with open(os.path.join(FILES, name), encoding="utf-8") as fh:
        hcl = fh.read()
    return requests.post(nomad.address + "/v1/jobs/parse", json={"JobHCL": hcl, "Canonicalize": True},
                         headers={"X-Nomad-Token": nomad.token}, timeout=10)


def test_photoprism_matches_the_owners_original_job(deployed, nomad):
    """Same restart policy, resources, service and check as the owner's job, in current syntax."""
    old = _parse(nomad, "photoprism-original-2020.nomad")
    assert old.status_code == 400 and "Unsupported block type" in old.text, "2020 syntax is rejected, as by Nomad"
    resp = _parse(nomad, "photoprism-original-current.nomad.hcl")
    assert resp.status_code == 200, resp.text
    original = resp.json()
    assert_valid_job(original, strict=False)
    ours = deployed["jobs"]["photoprism"]
    (og,), (group,) = original["TaskGroups"], ours["TaskGroups"]
    policy = ("Attempts", "Interval", "Delay", "Mode")
    assert {k: group["RestartPolicy"][k] for k in policy} == {k: og["RestartPolicy"][k] for k in policy}
    assert og["Count"] == group["Count"] == 1
    (otask,), task = og["Tasks"], group["Tasks"][0]
    assert {k: task["Resources"][k] for k in ("CPU", "MemoryMB")} == {
        k: otask["Resources"][k] for k in ("CPU", "MemoryMB")} == {"CPU": 500, "MemoryMB": 3072}
    assert otask["Driver"] == task["Driver"] == "docker"
    (osvc,), (svc,) = og["Services"], group["Services"]
    assert osvc["Name"] == svc["Name"] == "photos"
    (ocheck,), (check,) = osvc["Checks"], svc["Checks"]
    fields = ("Name", "Type", "Interval", "Timeout")
    assert {k: check[k] for k in fields} == {k: ocheck[k] for k in fields}
    assert ocheck["PortLabel"] == osvc["PortLabel"] and check["PortLabel"] == svc["PortLabel"]
    # The service's port is the container's 2342 in both.
    (oport,), (port,) = og["Networks"][0]["DynamicPorts"], group["Networks"][0]["DynamicPorts"]
    assert oport["Label"] == osvc["PortLabel"] and port["Label"] == svc["PortLabel"]
    assert oport["To"] == port["To"] == 2342
    # Differences on purpose: Traefik opts in by tag (the original relied on exposing everything), the
    # image is current and pinned, the data is on host volumes instead of bind mounts of host paths.
    assert osvc["Tags"] == ["photos"] and svc["Tags"] == ["traefik.enable=true"]
