"""The app_job filter: app definition -> Nomad job (API JSON), and its host volumes; bad input names app and field."""

from __future__ import annotations

import copy
import re

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.selfhost.homelab.plugins.filter.app_job import (
    FilterModule,
    app_job,
    app_job_vault,
    app_vault_extra_paths,
    app_volumes,
)

from tests.nomad_jobschema import assert_valid_job

APP = {
    "name": "photoprism",
    "subdomain": "photos",
    "image": "photoprism/photoprism:250707",
    "port": 2342,
    "env": {"PHOTOPRISM_DISABLE_TLS": True, "PHOTOPRISM_WORKERS": 2},
    "secrets": {"admin_password": "PHOTOPRISM_ADMIN_PASSWORD"},
    "volumes": [
        {"name": "data", "destination": "/photoprism/storage"},
        {"name": "cache", "kind": "scratch", "destination": "/photoprism/storage/cache"},
        {"name": "originals-anna", "kind": "external", "host_path": "/srv/homelab/nextcloud/data/anna/files/Photos",
         "destination": "/photoprism/originals/anna"},
    ],
    "resources": {"cpu": 500, "memory": 3072},
}
SEC = 10 ** 9


def _job(**over):
    app = copy.deepcopy(APP)
    app.update(over)
    return app_job(app, data_root="/srv/homelab", scratch_root="/srv/scratch", pool="tank")


def test_complete_job_shape():
    job = _job()
    assert_valid_job(job)
    assert job["ID"] == job["Name"] == "photoprism" and job["Type"] == "service"
    (group,) = job["TaskGroups"]
    assert group["RestartPolicy"] == {"Attempts": 2, "Interval": 30 * 60 * SEC, "Delay": 15 * SEC, "Mode": "fail",
                                      "RenderTemplates": False}
    assert group["Networks"] == [{"Mode": "host", "DynamicPorts": [{"Label": "http", "Value": 0, "To": 2342,
                                                                    "HostNetwork": "default"}]}]
    (svc,) = group["Services"]
    assert svc["Name"] == "photos" and svc["PortLabel"] == "http" and svc["Provider"] == "consul"
    # defaultRule derives Host(`photos.<domain>`) from the service name: no per-app rule.
    assert svc["Tags"] == ["traefik.enable=true"]
    assert svc["Checks"] == [{"Name": "alive", "Type": "tcp", "PortLabel": "http", "Interval": 15 * SEC,
                              "Timeout": 5 * SEC}]
    (task,) = group["Tasks"]
    assert task["Driver"] == "docker"
    assert task["Config"] == {"image": "photoprism/photoprism:250707", "ports": ["http"]}
    assert task["Env"] == {"PHOTOPRISM_DISABLE_TLS": "true", "PHOTOPRISM_WORKERS": "2"}
    assert task["Resources"] == {"CPU": 500, "MemoryMB": 3072}
    assert task["Vault"] == {"Role": "photoprism", "ChangeMode": "restart"}
    (tmpl,) = task["Templates"]
    assert tmpl["DestPath"] == "secrets/vault.env" and tmpl["Envvars"] is True
    assert 'with secret "kv/data/photoprism"' in tmpl["EmbeddedTmpl"]
    assert 'PHOTOPRISM_ADMIN_PASSWORD={{ index .Data.data "admin_password" | toJSON }}' in tmpl["EmbeddedTmpl"]
    assert group["Volumes"]["data"] == {"Name": "data", "Type": "host", "Source": "photoprism-data",
                                        "ReadOnly": False, "AccessMode": "single-node-writer",
                                        "AttachmentMode": "file-system", "PerAlloc": False}
    assert group["Volumes"]["originals-anna"]["ReadOnly"] is True
    assert group["Volumes"]["originals-anna"]["AccessMode"] == "single-node-reader-only"
    assert [(m["Volume"], m["Destination"], m["ReadOnly"]) for m in task["VolumeMounts"]] == [
        ("data", "/photoprism/storage", False), ("cache", "/photoprism/storage/cache", False),
        ("originals-anna", "/photoprism/originals/anna", True)]


def test_volumes_datasets_directories_and_external():
    vols = app_volumes(APP, data_root="/srv/homelab/", scratch_root="/srv/scratch", pool="tank")
    assert [(v["volume"], v["kind"], v["host_path"], v["dataset"]) for v in vols] == [
        ("photoprism-data", "data", "/srv/homelab/photoprism", "tank/apps/photoprism"),
        ("photoprism-cache", "scratch", "/srv/scratch/photoprism/cache", None),
        ("photoprism-originals-anna", "external", "/srv/homelab/nextcloud/data/anna/files/Photos", None)]
    no_pool = app_volumes(APP, data_root="/srv/homelab", scratch_root="/srv/scratch")
    assert [v["dataset"] for v in no_pool] == [None, None, None]
    assert no_pool[0]["host_path"] == "/srv/homelab/photoprism"
    named = app_volumes(dict(APP, volumes=[{"name": "db", "destination": "/var/lib/postgresql/data"}]), pool="tank")
    assert named[0]["dataset"] == "tank/apps/photoprism/db" and named[0]["host_path"] == "/srv/homelab/photoprism/db"


def test_optional_parts():
    job = _job(secrets=None, volumes=None, check={"type": "http", "path": "/status.php", "interval": "30s"},
               restart={"attempts": 5, "delay": "1m30s"}, host="pics.example.test", tags=["x=y"], count=2,
               args=["--foo"], docker={"devices": [{"host_path": "/dev/dri"}]}, user="1000:1000",
               resources={"cpu": 100, "memory": 128, "memory_max": 512}, datacenters=["home"])
    assert_valid_job(job)
    group = job["TaskGroups"][0]
    task = group["Tasks"][0]
    assert "Templates" not in task and "Vault" not in task and "Volumes" not in group
    assert group["Services"][0]["Checks"][0]["Path"] == "/status.php"
    assert group["Services"][0]["Checks"][0]["Interval"] == 30 * SEC
    assert group["RestartPolicy"]["Attempts"] == 5 and group["RestartPolicy"]["Delay"] == 90 * SEC
    assert group["Services"][0]["Tags"] == ["traefik.enable=true",
                                            "traefik.http.routers.photos.rule=Host(`pics.example.test`)", "x=y"]
    assert task["Config"]["args"] == ["--foo"] and task["Config"]["devices"] == [{"host_path": "/dev/dri"}]
    assert task["Resources"]["MemoryMaxMB"] == 512 and task["User"] == "1000:1000"
    assert job["Datacenters"] == ["home"] and group["Count"] == 2


def test_secrets_from_another_job_path():
    app = dict(APP, name="nextcloud", subdomain="cloud",
               secrets=["admin_password"], secrets_from={"nextcloud-db": {"password": "POSTGRES_PASSWORD"}},
               volumes=[])
    job = app_job(app)
    task = job["TaskGroups"][0]["Tasks"][0]
    assert [t["DestPath"] for t in task["Templates"]] == ["secrets/vault.env", "secrets/vault-nextcloud-db.env"]
    assert 'with secret "kv/data/nextcloud-db"' in task["Templates"][1]["EmbeddedTmpl"]
    assert "ADMIN_PASSWORD=" in task["Templates"][0]["EmbeddedTmpl"]
    vault = app_job_vault(app, mount="kv")
    assert 'path "kv/data/nextcloud-db"' in vault["policy"] and 'path "kv/data/nextcloud"' in vault["policy"]


def test_filters_registered():
    assert set(FilterModule().filters()) == {"app_job", "app_volumes", "app_job_vault", "app_vault_extra_paths"}


def test_vault_extra_paths_of_the_jobs_that_read_another_jobs_secret():
    db = {"name": "photoprism-db", "image": "mariadb:11.4", "port": 3306,
          "secrets_from": {"photoprism": {"db_password": "MARIADB_PASSWORD"}}}
    app = dict(APP, secrets_from={"shared-smtp": {"password": "SMTP_PASSWORD"}})
    assert app_vault_extra_paths([db, APP], mount="secret") == {"photoprism-db": ["secret/data/photoprism"]}
    assert app_vault_extra_paths([db, app]) == {"photoprism-db": ["kv/data/photoprism"],
                                                "photoprism": ["kv/data/shared-smtp"]}
    assert app_vault_extra_paths(db) == {"photoprism-db": ["kv/data/photoprism"]}
    assert app_vault_extra_paths([]) == {}
    # What vault_job (the vault role) makes of it: the policy reads the job's own path and the extra one.
    policy = app_job_vault(db)["policy"]
    assert 'path "kv/data/photoprism"' in policy and 'path "kv/data/photoprism-db"' in policy


@pytest.mark.parametrize(("apps", "message"), [
    ("photoprism", "expected a list of app definitions"),
    ([dict(APP, secrets_from={"x": {}})], "app 'photoprism': secrets_from[x]: names no fields"),
    ([APP, APP], "app 'photoprism': name: the job is listed twice"),
    ([{"name": "Bad"}], "app 'Bad': name:"),
])
def test_vault_extra_paths_bad_input(apps, message):
    with pytest.raises(AnsibleFilterError, match=re.escape(message)):
        app_vault_extra_paths(apps)


BAD = [
    ({"image": None}, "image: required"),
    ({"image": "photoprism/photoprism"}, "image: 'photoprism/photoprism' must name a pinned tag or digest"),
    ({"image": "photoprism/photoprism:latest"}, "'latest' is not a pinned version"),
    ({"port": 0}, "port: 0 is out of range (1-65535)"),
    ({"port": 70000}, "port: 70000 is out of range (1-65535)"),
    ({"port": "http"}, "port: 'http' is not an integer"),
    ({"subdomain": "Photo_s"}, "subdomain: 'Photo_s' must be one DNS label"),
    ({"subdomain": "traefik"}, "subdomain: 'traefik' is already used by 'traefik'"),
    ({"volumes": [{"name": "x", "kind": "external", "host_path": "/etc", "destination": "/x"}]},
     "volumes[x].host_path: '/etc' is outside the data root /srv/homelab and the scratch root /srv/scratch"),
    ({"volumes": [{"name": "x", "kind": "external", "host_path": "/srv/homelab/../../etc", "destination": "/x"}]},
     "volumes[x].host_path: '/etc' is outside the data root"),
    ({"volumes": [{"name": "x", "host_path": "/srv/homelab/x", "destination": "/x"}]},
     "volumes[x].host_path: only external volumes take a host_path"),
    ({"volumes": [{"name": "x", "destination": "/x"}, {"name": "x", "destination": "/y"}]},
     "volumes[x].name: duplicate volume name"),
    ({"volumes": [{"name": "x", "destination": "relative"}]},
     "volumes[x].destination: 'relative' must be an absolute path"),
    ({"volumes": [{"name": "x", "kind": "nfs", "destination": "/x"}]},
     "volumes[x].kind: 'nfs' must be one of data, scratch, external"),
    ({"resources": {"cpu": 0}}, "resources.cpu: 0 is out of range"),
    ({"resources": {"ram": 1}}, "resources.ram: unknown key"),
    ({"restart": {"mode": "never"}}, "restart.mode: 'never' must be fail or delay"),
    ({"restart": {"interval": "30 minutes"}}, "restart.interval: '30 minutes' is not a duration"),
    ({"check": {"type": "grpc"}}, "check.type: 'grpc' must be tcp or http"),
    ({"check": {"type": "tcp", "path": "/x"}}, "check.path: only http checks take a path"),
    ({"env": {"1BAD": "x"}}, "env: '1BAD' is not a valid environment variable name"),
    ({"env": {"PHOTOPRISM_ADMIN_PASSWORD": "plain"}}, "env.PHOTOPRISM_ADMIN_PASSWORD: is also a secret"),
    ({"secrets": {"bad field!": None}}, "secrets: vault_job: fields: 'bad field!' is not a valid"),
    ({"docker": {"image": "other:1"}}, "docker.image: is set by the app definition"),
    ({"imagee": "x:1"}, "imagee: unknown key"),
]


@pytest.mark.parametrize(("over", "message"), BAD, ids=[m.split(":")[0] + str(i) for i, (_o, m) in enumerate(BAD)])
def test_bad_input_names_app_and_field(over, message):
    with pytest.raises(AnsibleFilterError) as exc:
        _job(**over)
    text = str(exc.value)
    assert text.startswith("app_job: app 'photoprism': "), text
    assert message in text, text


def test_schema_check_catches_a_misspelt_field():
    job = _job()
    job["TaskGroups"][0]["RestartPolicy"]["Attempt"] = 3
    with pytest.raises(AssertionError, match="'Attempt' is not a field of Nomad's RestartPolicy"):
        assert_valid_job(job)
    job = _job()
    job["TaskGroups"][0]["Tasks"][0]["Resources"]["CPU"] = "500"
    with pytest.raises(Exception, match="is not of type"):
        assert_valid_job(job)


def test_duplicate_subdomain_names_both_apps():
    with pytest.raises(AnsibleFilterError, match=r"app 'plex': subdomain: 'photos' is already used by 'photoprism'"):
        app_job(dict(APP, name="plex", volumes=[]), taken={"photos": "photoprism"})
    # the same app deploying again is not a duplicate
    assert app_job(dict(APP, volumes=[]), taken={"photos": "photoprism"})["ID"] == "photoprism"


def test_bad_name_and_roots():
    with pytest.raises(AnsibleFilterError, match=r"app 'Photo Prism': name: must be a job name"):
        app_job(dict(APP, name="Photo Prism"))
    with pytest.raises(AnsibleFilterError, match=r"app 'photoprism': data_root: 'relative' must be an absolute"):
        app_job(APP, data_root="relative")
    with pytest.raises(AnsibleFilterError, match=r"the app definition must be a dict"):
        app_job(["photoprism"])


def test_files_sidecars_and_unexposed_fixed_port():
    job = _job(files=[{"name": "homelab.config.php", "destination": "/var/www/html/config/homelab.config.php",
                       "content": "<?php $CONFIG = ['updatechecker' => false];\n", "mode": "0644"}],
               sidecars=[{"name": "cron", "command": "/cron.sh"}])
    assert_valid_job(job)
    main, cron = job["TaskGroups"][0]["Tasks"]
    assert main["Config"]["mount"] == [{"type": "bind", "source": "local/homelab.config.php",
                                        "target": "/var/www/html/config/homelab.config.php", "readonly": True}]
    assert [t["DestPath"] for t in main["Templates"]] == ["secrets/vault.env", "local/homelab.config.php"]
    assert main["Templates"][1]["Envvars"] is False and main["Templates"][1]["Perms"] == "0644"
    assert cron["Config"]["image"] == main["Config"]["image"] and cron["Config"]["command"] == "/cron.sh"
    assert "ports" not in cron["Config"] and cron["Config"]["mount"] == main["Config"]["mount"]
    assert cron["Lifecycle"] == {"Hook": "poststart", "Sidecar": True}
    assert cron["VolumeMounts"] == main["VolumeMounts"] and cron["Vault"] == main["Vault"]
    assert cron["Templates"] == main["Templates"] and cron["Env"] == main["Env"]

    db = app_job({"name": "nextcloud-db", "subdomain": "nextcloud-db", "image": "postgres:16.9", "port": 5432,
                  "host_port": 5433, "expose": False, "volumes": [{"name": "data", "destination": "/d"}]})
    assert_valid_job(db)
    group = db["TaskGroups"][0]
    assert group["Networks"] == [{"Mode": "host", "ReservedPorts": [{"Label": "http", "Value": 5433, "To": 5432,
                                                                     "HostNetwork": "default"}]}]
    assert group["Services"][0]["Tags"] == [], "a database is not routed by Traefik"
    assert "Templates" not in group["Tasks"][0] and "Vault" not in group["Tasks"][0]


@pytest.mark.parametrize(("over", "message"), [
    ({"files": [{"name": "../x", "destination": "/x", "content": ""}]}, "files[0].name: '../x' must be a plain"),
    ({"files": [{"name": "x", "destination": "x", "content": ""}]}, "files[x].destination: 'x' must be absolute"),
    ({"sidecars": [{"name": "photoprism"}]}, "sidecars[0].name: 'photoprism' must be a task name other than"),
    ({"sidecars": [{"name": "cron", "lifecycle": "later"}]}, "sidecars[cron].lifecycle: 'later' must be"),
    ({"host_port": 99999}, "host_port: 99999 is out of range"),
    ({"expose": False, "host": "x.example.test"}, "host: an app that is not exposed"),
])
def test_bad_files_sidecars_ports(over, message):
    with pytest.raises(AnsibleFilterError) as exc:
        _job(**over)
    assert message.replace(" must be absolute", " must be an absolute path") in str(exc.value), str(exc.value)
