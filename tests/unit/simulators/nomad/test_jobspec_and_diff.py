"""The simulator's HCL2 job parser and plan diff, on the constructs the collection's job templates use."""

from __future__ import annotations

import os
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

from tests.simulators.nomad import jobs, jobspec  # noqa: E402

FULL = r'''
variable "image" {
  type    = string
  default = "photoprism/photoprism:240915"
}

variable "memory" {
  type = number
}

job "photoprism" {
  datacenters = ["dc1"]
  type        = "service"

  constraint {
    attribute = "${meta.ingress}"
    value     = "true"
  }

  group "photoprism" {
    count = 1

    network {
      port "http" {
        to = 2342
      }
      port "metrics" {
        static = 9100
      }
    }

    restart {
      attempts = 2
      interval = "30m"
      delay    = "15s"
      mode     = "fail"
    }

    volume "originals" {
      type      = "host"
      source    = "nextcloud"
      read_only = true
    }

    task "photoprism" {
      driver = "docker"

      config {
        image = var.image
        ports = ["http"]
      }

      env {
        PHOTOPRISM_SITE_URL = "https://photos.example.test/"
        CACHE_DIR           = "${NOMAD_TASK_DIR}/cache"
      }

      volume_mount {
        volume      = "originals"
        destination = "/photoprism/originals"
        read_only   = true
      }

      template {
        data        = "PW={{ with secret \"kv/data/photoprism\" }}{{ .Data.data.admin_password }}{{ end }}"
        destination = "secrets/app.env"
        env         = true
      }

      vault {
        role = "photoprism"
      }

      identity {
        name = "vault_default"
        aud  = ["vault.io"]
        ttl  = "1h"
      }

      service {
        name = "photos"
        port = "http"
        tags = ["traefik.enable=true"]

        check {
          name     = "alive"
          type     = "tcp"
          interval = "15s"
          timeout  = "5s"
        }
      }

      resources {
        cpu    = 500
        memory = var.memory
      }
    }
  }
}
'''


def test_full_job_template_parses_to_api_fields():
    job = jobspec.parse(FULL, "memory = 3072\n")
    assert job["ID"] == job["Name"] == "photoprism"
    assert job["Constraints"] == [{"LTarget": "${meta.ingress}", "RTarget": "true", "Operand": "="}]
    group = job["TaskGroups"][0]
    assert group["RestartPolicy"] == {"Attempts": 2, "Interval": 1800 * 10**9, "Delay": 15 * 10**9, "Mode": "fail"}
    assert group["Networks"][0]["DynamicPorts"] == [{"To": 2342, "Label": "http"}]
    assert group["Networks"][0]["ReservedPorts"] == [{"Value": 9100, "Label": "metrics"}]
    assert group["Volumes"]["originals"] == {"Name": "originals", "Type": "host", "Source": "nextcloud",
                                             "ReadOnly": True}
    task = group["Tasks"][0]
    assert task["Config"] == {"image": "photoprism/photoprism:240915", "ports": ["http"]}
    assert task["Env"]["CACHE_DIR"] == "${NOMAD_TASK_DIR}/cache"
    assert task["Resources"] == {"CPU": 500, "MemoryMB": 3072}
    assert task["Vault"] == {"Role": "photoprism"}
    assert task["Identities"] == [{"Name": "vault_default", "Audience": ["vault.io"], "TTL": 3600 * 10**9}]
    assert task["Templates"][0]["EmbeddedTmpl"].startswith('PW={{ with secret "kv/data/photoprism" }}')
    assert task["Services"][0]["Checks"][0] == {"Name": "alive", "Type": "tcp", "Interval": 15 * 10**9,
                                                "Timeout": 5 * 10**9}
    assert task["VolumeMounts"] == [{"Volume": "originals", "Destination": "/photoprism/originals",
                                     "ReadOnly": True}]
    assert jobs.validate(jobs.canonicalize(job)) == []


@pytest.mark.parametrize("text,variables,message", [
    (FULL, "", 'Unset variable "memory"'),
    (FULL, "memory = 1\nundeclared = 2\n", 'Undefined variable; A variable named "undeclared"'),
    ('job "a" {\n  group "g" {\n    task "t" {\n      resources {\n        network {\n          mbits = 10\n'
     '        }\n      }\n    }\n  }\n}\n', "", 'input.hcl:5,9-16: Unsupported block type; Blocks of type "network"'),
    ('job "a" {\n  bogus = 1\n}\n', "", 'input.hcl:2,3-8: Unsupported argument; An argument named "bogus"'),
    ('job "a" {\n}\njob "b" {\n}\n', "", "input.hcl:3,1-4: Duplicate job block"),
    ('job "a" {\n  type = \n}\n', "", "input.hcl:"),
    ('variable "x" {\n  default = 1\n}\n', "", "Missing job block"),
])
def test_parse_errors_read_like_hcl_diagnostics(text, variables, message):
    with pytest.raises(jobspec.ParseError) as err:
        jobspec.parse(text, variables)
    assert message in str(err.value)


def test_durations():
    assert jobspec.parse_duration("1h30m") == 5400 * 10**9
    assert jobspec.parse_duration("250ms") == 250 * 10**6
    with pytest.raises(jobspec.ParseError):
        jobspec.parse_duration("ten seconds")


def test_diff_types_and_shape():
    old = jobs.canonicalize(jobspec.parse(FULL, "memory = 3072\n"))
    assert jobs.job_diff(old, old)["Type"] == "None"
    added = jobs.job_diff(None, old)
    assert added["Type"] == "Added" and added["TaskGroups"][0]["Updates"] == {"create": 1}
    new = jobs.canonicalize(jobspec.parse(FULL, 'memory = 4096\nimage = "photoprism/photoprism:250101"\n'))
    new["Meta"] = {"owner": "me"}
    diff = jobs.job_diff(old, new, contextual=False)
    assert diff["Type"] == "Edited"
    assert diff["Fields"] == [{"Type": "Added", "Name": "Meta[owner]", "Old": "", "New": "me", "Annotations": None}]
    task = diff["TaskGroups"][0]["Tasks"][0]
    assert task["Type"] == "Edited" and task["Annotations"] == ["forces create/destroy update"]
    objects = {o["Name"]: o for o in task["Objects"]}
    assert objects["Config"]["Fields"] == [{"Type": "Edited", "Name": "image", "Old": "photoprism/photoprism:240915",
                                            "New": "photoprism/photoprism:250101", "Annotations": None}]
    assert objects["Resources"]["Fields"] == [{"Type": "Edited", "Name": "MemoryMB", "Old": "3072", "New": "4096",
                                               "Annotations": None}]
    assert diff["TaskGroups"][0]["Updates"] == {"create/destroy update": 1}
    removed = jobs.job_diff(old, {**new, "TaskGroups": []}, contextual=False)
    assert removed["TaskGroups"][0]["Type"] == "Deleted"


def test_vault_block_needs_workload_identity_when_no_default():
    job = jobs.canonicalize(jobspec.parse(FULL.replace('name = "vault_default"', 'name = "other"'), "memory = 1\n"))
    errors = jobs.validate(job, vault_default_identity=False)
    assert len(errors) == 1 and "no identity for Vault" in errors[0]
    assert jobs.validate(jobs.canonicalize(jobspec.parse(FULL, "memory = 1\n")), vault_default_identity=False) == []


def test_locals_are_evaluated():
    text = ('variable "tag" {\n  default = "1"\n}\nlocals {\n  image = "nginx:${var.tag}"\n}\n'
            'job "l" {\n  group "g" {\n    task "t" {\n      driver = "docker"\n      config {\n'
            '        image = local.image\n      }\n    }\n  }\n}\n')
    job = jobspec.parse(text, 'tag = "2"\n')
    assert job["TaskGroups"][0]["Tasks"][0]["Config"]["image"] == "nginx:2"
    with pytest.raises(jobspec.ParseError, match='attribute named "nope"'):
        jobspec.parse(text.replace("local.image", "local.nope"))


def test_admission_adds_workload_identities():
    job = jobs.admit(jobs.canonicalize(jobspec.parse(FULL.replace('name = "vault_default"', 'name = "x"'),
                                                     "memory = 1\n")))
    task = job["TaskGroups"][0]["Tasks"][0]
    assert task["Identity"]["Name"] == "default" and task["Identity"]["Audience"] == ["nomad.io"]
    assert [i["Name"] for i in task["Identities"]] == ["x", "vault_default"]
    again = jobs.admit(job)
    assert jobs.job_diff(job, again)["Type"] == "None"
    assert jobs.admit(jobs.canonicalize(jobspec.parse(FULL, "memory = 1\n")), vault_default_identity=False)[
        "TaskGroups"][0]["Tasks"][0]["Identities"][-1]["Name"] == "vault_default"
