"""Contract: the simulator's requests and responses against Nomad's OpenAPI description.

/work/shared/specs/nomad-openapi.yaml (Nomad 1.1.4) is the authority where it has the
operation. Go encodes nil slices, maps and pointers as JSON null, which the generated
description does not say; so every schema here also accepts null. Fields newer than
1.1.4 pass because the description leaves additionalProperties open.
"""

from __future__ import annotations

import copy
import gzip
import os
import sys

import jsonschema
import pytest
import requests
import yaml

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

from tests.nomad_jobschema import nullable  # noqa: E402
from tests.simulators.base import SimServer  # noqa: E402
from tests.simulators.nomad import NomadSim  # noqa: E402

# The vendored copy (a clean clone carries it) and, when present, the shared
# original it must equal.
SPEC_GZ = os.path.join(REPO, "tests", "simulators", "nomad", "spec", "nomad-openapi.yaml.gz")
SHARED_SPEC = os.path.join(REPO, "..", "shared", "specs", "nomad-openapi.yaml")

HCL = '''
variable "image" {
  default = "nginx:1"
}
job "web" {
  group "g" {
    network {
      port "http" { to = 80 }
    }
    task "t" {
      driver = "docker"
      config {
        image = var.image
        ports = ["http"]
      }
    }
  }
}
'''


@pytest.fixture(scope="module")
def spec():
    with gzip.open(SPEC_GZ, "rt", encoding="utf-8") as fh:
        text = fh.read()
    doc = yaml.safe_load(text)
    return {"components": nullable(doc["components"]), "paths": doc["paths"]}


@pytest.fixture(scope="module")
def server():
    srv = SimServer(NomadSim(settle_seconds=0.0)).start()
    yield srv
    srv.stop()


def _schema(spec, ref_or_schema):
    root = {"components": spec["components"]}
    if "$ref" in ref_or_schema and ref_or_schema["$ref"].startswith("#/components/responses/"):
        name = ref_or_schema["$ref"].rsplit("/", 1)[1]
        resp = spec["components"]["responses"][name]
        content = resp.get("content", {}).get("application/json")
        if content is None:
            return None
        schema = content["schema"]
    else:
        schema = ref_or_schema
    return dict(copy.deepcopy(schema), **root)


def _operation(spec, method, path):
    op = spec["paths"][path][method]
    return op


def check(spec, server, method, api_path, url, body=None, status=200):
    op = _operation(spec, method.lower(), api_path)
    if body is not None and "requestBody" in op:
        req_schema = _schema(spec, op["requestBody"]["content"]["application/json"]["schema"])
        jsonschema.validate(body, req_schema)
    resp = requests.request(method, server.address + "/v1" + url, json=body, timeout=5)
    assert resp.status_code == status, resp.text
    if status == 404 and "404" not in op["responses"]:
        # The generated description omits 404; Nomad answers a missing object with 404 and a text body.
        assert resp.headers["Content-Type"].startswith("text/plain")
        return resp
    assert str(status) in op["responses"], "status %d is not in the description of %s %s" % (status, method, api_path)
    resp_schema = _schema(spec, op["responses"][str(status)])
    if resp_schema is not None and resp.content:
        jsonschema.validate(resp.json(), resp_schema)
    return resp


def test_job_lifecycle_matches_description(spec, server):
    job = check(spec, server, "POST", "/jobs/parse", "/jobs/parse", {"JobHCL": HCL, "Canonicalize": True}).json()
    assert job["ID"] == "web" and job["TaskGroups"][0]["Tasks"][0]["Config"]["image"] == "nginx:1"
    plan = check(spec, server, "POST", "/job/{jobName}/plan", "/job/web/plan", {"Job": job, "Diff": True}).json()
    assert plan["Diff"]["Type"] == "Added"
    check(spec, server, "POST", "/job/{jobName}", "/job/web", {"Job": job})
    check(spec, server, "POST", "/jobs", "/jobs", {"Job": job})
    plan = check(spec, server, "POST", "/job/{jobName}/plan", "/job/web/plan", {"Job": job, "Diff": True}).json()
    assert plan["Diff"]["Type"] == "None"
    check(spec, server, "GET", "/job/{jobName}", "/job/web")
    check(spec, server, "GET", "/jobs", "/jobs")
    check(spec, server, "GET", "/job/{jobName}/versions", "/job/web/versions")
    allocs = check(spec, server, "GET", "/job/{jobName}/allocations", "/job/web/allocations").json()
    check(spec, server, "GET", "/allocation/{allocID}", "/allocation/%s" % allocs[0]["ID"])
    check(spec, server, "GET", "/job/{jobName}/deployment", "/job/web/deployment")
    check(spec, server, "GET", "/job/{jobName}/deployments", "/job/web/deployments")
    check(spec, server, "GET", "/job/{jobName}/evaluations", "/job/web/evaluations")
    check(spec, server, "GET", "/job/{jobName}/summary", "/job/web/summary")
    check(spec, server, "DELETE", "/job/{jobName}", "/job/web?purge=true")
    check(spec, server, "GET", "/job/{jobName}", "/job/web", status=404)
    # Job.Deregister of an unknown job returns a zero-valued reply, no evaluation.
    gone = check(spec, server, "DELETE", "/job/{jobName}", "/job/web?purge=true").json()
    assert gone["EvalID"] == "" and gone["JobModifyIndex"] == 0


def test_enforce_index(spec, server):
    job = requests.post(server.address + "/v1/jobs/parse", json={"JobHCL": HCL.replace('"web"', '"enf"')},
                        timeout=5).json()
    resp = check(spec, server, "POST", "/job/{jobName}", "/job/enf",
                 {"Job": job, "EnforceIndex": True, "JobModifyIndex": 7}, status=500)
    assert resp.text == "Enforcing job modify index 7: job does not exist"
    created = check(spec, server, "POST", "/job/{jobName}", "/job/enf",
                    {"Job": job, "EnforceIndex": True, "JobModifyIndex": 0}).json()
    resp = check(spec, server, "POST", "/job/{jobName}", "/job/enf",
                 {"Job": job, "EnforceIndex": True, "JobModifyIndex": 0}, status=500)
    assert resp.text == "Enforcing job modify index 0: job already exists"
    check(spec, server, "POST", "/job/{jobName}", "/job/enf",
          {"Job": job, "EnforceIndex": True, "JobModifyIndex": created["JobModifyIndex"]})


def test_errors_match_description(spec, server):
    check(spec, server, "POST", "/jobs/parse", "/jobs/parse", {"JobHCL": "job {"}, status=400)
    job = requests.post(server.address + "/v1/jobs/parse", json={"JobHCL": HCL}, timeout=5).json()
    check(spec, server, "POST", "/job/{jobName}", "/job/other", {"Job": job}, status=400)
    job["TaskGroups"][0]["Tasks"][0].pop("Driver")
    resp = check(spec, server, "POST", "/job/{jobName}/plan", "/job/web/plan", {"Job": job}, status=500)
    assert "Missing task driver" in resp.text


def test_periodic_force(spec, server):
    hcl = 'job "cron" {\n  type = "batch"\n  periodic {\n    cron = "@daily"\n  }\n  group "g" {\n    task "t" {\n' \
          '      driver = "raw_exec"\n      config {\n        command = "/bin/true"\n      }\n    }\n  }\n}\n'
    job = requests.post(server.address + "/v1/jobs/parse", json={"JobHCL": hcl}, timeout=5).json()
    check(spec, server, "POST", "/job/{jobName}", "/job/cron", {"Job": job})
    check(spec, server, "POST", "/job/{jobName}/periodic/force", "/job/cron/periodic/force")
    children = requests.get(server.address + "/v1/jobs?prefix=cron/periodic-", timeout=5).json()
    assert len(children) == 1 and children[0]["ParentID"] == "cron"


def test_status_namespaces_variables(spec, server):
    assert check(spec, server, "GET", "/status/leader", "/status/leader").json() == "127.0.0.1:4647"
    check(spec, server, "POST", "/namespace/{namespaceName}", "/namespace/apps", {"Name": "apps"})
    check(spec, server, "GET", "/namespace/{namespaceName}", "/namespace/apps")
    names = [n["Name"] for n in check(spec, server, "GET", "/namespaces", "/namespaces").json()]
    assert names == ["apps", "default"]
    var = {"Path": "nomad/jobs/web", "Items": {"user": "web"}}
    check(spec, server, "PUT", "/var/{path}", "/var/nomad/jobs/web", var)
    got = check(spec, server, "GET", "/var/{path}", "/var/nomad/jobs/web").json()
    assert got["Items"] == {"user": "web"}
    assert [v["Path"] for v in check(spec, server, "GET", "/vars", "/vars?prefix=nomad").json()] == ["nomad/jobs/web"]
    resp = requests.put(server.address + "/v1/var/nomad/jobs/web?cas=1", json=var, timeout=5)
    assert resp.status_code == 409 and resp.json()["Path"] == "nomad/jobs/web"


def test_host_volumes_follow_api_structs(server):
    """Not in the 1.1.4 description: checked against api/host_volumes.go field names."""
    vol = {"Name": "photoprism", "NodeID": "n1", "HostPath": "/tank/apps/photoprism",
           "RequestedCapabilities": [{"AttachmentMode": "file-system", "AccessMode": "single-node-writer"}]}
    resp = requests.put(server.address + "/v1/volume/host/register", json={"Volume": vol}, timeout=5)
    assert resp.status_code == 200, resp.text
    out = resp.json()
    assert set(out) >= {"Volume", "Warnings"}
    created = out["Volume"]
    for field in ("Namespace", "ID", "Name", "PluginID", "NodePool", "NodeID", "RequestedCapacityMinBytes",
                  "RequestedCapacityMaxBytes", "CapacityBytes", "RequestedCapabilities", "HostPath", "State",
                  "CreateIndex", "CreateTime", "ModifyIndex", "ModifyTime"):
        assert field in created, field
    listed = requests.get(server.address + "/v1/volumes?type=host", timeout=5).json()
    assert [v["ID"] for v in listed] == [created["ID"]]
    assert "HostPath" not in listed[0]
    assert requests.get(server.address + "/v1/volume/host/" + created["ID"], timeout=5).json()["State"] == "ready"
    bad = requests.put(server.address + "/v1/volume/host/register", json={"Volume": {"Name": "x"}}, timeout=5)
    assert bad.status_code == 400
    assert requests.delete(server.address + "/v1/volume/host/" + created["ID"], timeout=5).status_code == 200
    assert requests.get(server.address + "/v1/volume/host/" + created["ID"], timeout=5).status_code == 404


def test_acl_bootstrap_and_token_check():
    srv = SimServer(NomadSim(acl_enabled=True)).start()
    try:
        base = srv.address + "/v1"
        assert requests.get(base + "/jobs", timeout=5).status_code == 403
        token = requests.post(base + "/acl/bootstrap", timeout=5).json()
        assert token["Type"] == "management" and token["Name"] == "Bootstrap Token"
        again = requests.post(base + "/acl/bootstrap", timeout=5)
        assert again.status_code == 400 and "already done" in again.text
        assert requests.get(base + "/jobs", headers={"X-Nomad-Token": "nope"}, timeout=5).status_code == 403
        ok = requests.get(base + "/acl/token/self", headers={"X-Nomad-Token": token["SecretID"]}, timeout=5)
        assert ok.json()["AccessorID"] == token["AccessorID"]
        bearer = requests.get(base + "/jobs", headers={"Authorization": "Bearer " + token["SecretID"]}, timeout=5)
        assert bearer.status_code == 200
        jwks = requests.get(srv.address + "/.well-known/jwks.json", timeout=5)  # public, like Nomad's
        assert jwks.status_code == 200 and jwks.json()["keys"][0]["use"] == "sig"
    finally:
        srv.stop()


def test_vendored_spec_is_the_shared_one():
    """The gzipped copy must be the project's shared description, byte for byte."""
    if not os.path.exists(SHARED_SPEC):
        pytest.skip("../shared/specs is not beside this checkout; the vendored copy is used as is")
    with gzip.open(SPEC_GZ, "rb") as fh, open(SHARED_SPEC, "rb") as shared:
        assert fh.read() == shared.read(), "tests/simulators/nomad/spec differs from ../shared/specs: refresh it"


def test_placement_failure_and_raft_configuration_match_description(spec, tmp_path):
    """A group this client cannot take (client meta, host volume): FailedTGAllocs as an AllocationMetric."""
    from tests.simulators.nomad.client import ClientConfig, Runner

    sim = NomadSim(settle_seconds=0.0)
    sim.attach_runner(Runner(sim, ClientConfig(data_dir=str(tmp_path), meta={"ingress": "false"})))
    hcl = ('job "edge" {\n  constraint {\n    attribute = "${meta.ingress}"\n    value     = "true"\n  }\n'
           '  group "g" {\n    volume "data" {\n      type   = "host"\n      source = "nowhere"\n    }\n'
           '    task "t" {\n      driver = "exec"\n      config {\n        command = "/bin/true"\n      }\n    }\n'
           '  }\n}\n')
    with SimServer(sim) as srv:
        job = requests.post(srv.address + "/v1/jobs/parse", json={"JobHCL": hcl, "Canonicalize": True},
                            timeout=5).json()
        check(spec, srv, "POST", "/jobs", "/jobs", {"Job": job})
        evals = check(spec, srv, "GET", "/job/{jobName}/evaluations", "/job/edge/evaluations").json()
        failed = [e for e in evals if e.get("FailedTGAllocs")]
        assert failed[0]["FailedTGAllocs"]["g"]["ConstraintFiltered"] == {"${meta.ingress} = true": 1}
        assert [e["Status"] for e in evals if e["ID"] == failed[0]["BlockedEval"]] == ["blocked"]
        assert check(spec, srv, "GET", "/job/{jobName}/allocations", "/job/edge/allocations").json() == []
        conf = check(spec, srv, "GET", "/operator/raft/configuration", "/operator/raft/configuration").json()
        assert [(s["Leader"], s["Voter"]) for s in conf["Servers"]] == [(True, True)]
