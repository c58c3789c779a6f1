"""A server without a local client places allocations on the client nodes that client-only agents
register (cluster.py): datacenters, drivers, constraints and host volumes decide; a system job
gets one allocation per node; the nodes' client state drives deployments. The internal
``/v1/sim/node/*`` endpoints take only the node's own secret. ``/v1/nodes`` and ``/v1/node/:id``
answer as the API description says."""

from __future__ import annotations

import copy
import gzip
import os
import sys
import uuid

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

SPEC_GZ = os.path.join(REPO, "tests", "simulators", "nomad", "spec", "nomad-openapi.yaml.gz")


def _node(name: str, dc: str = "dc1", drivers=("raw_exec",), meta=None, volumes=None) -> dict:
    return {"ID": str(uuid.uuid5(uuid.NAMESPACE_DNS, name)), "Name": name, "Datacenter": dc, "SecretID": "s-" + name,
            "HTTPAddr": "127.0.0.9:4646", "Meta": meta or {}, "NodeClass": "", "NodePool": "default",
            "Attributes": {"kernel.name": "linux", **{"driver.%s" % d: "1" for d in drivers}},
            "Drivers": {d: {"Attributes": None, "Detected": True, "Healthy": True, "HealthDescription": "Healthy",
                            "UpdateTime": "2026-01-01T00:00:00Z"} for d in drivers},
            "HostVolumes": {n: {"Name": n, "Path": "/srv/" + n, "ReadOnly": False, "ID": ""} for n in volumes or ()},
            "HostVolumesDir": "/opt/nomad/data/host_volumes"}


def _job(job_id: str, kind: str = "service", count: int = 1, dcs=("dc1",), driver: str = "raw_exec",
         constraints=None, volume: str = "") -> dict:
    task = {"Name": "t", "Driver": driver, "Config": {"command": "/bin/true"}}
    group = {"Name": "g", "Count": count, "Tasks": [task], "Constraints": constraints}
    if volume:
        group["Volumes"] = {"v": {"Name": "v", "Type": "host", "Source": volume, "ReadOnly": False}}
    return {"ID": job_id, "Name": job_id, "Type": kind, "Datacenters": list(dcs), "TaskGroups": [group]}


@pytest.fixture
def cluster():
    sim = NomadSim(settle_seconds=0.0)
    srv = SimServer(sim).start()
    nodes = {"a": _node("node-a", meta={"role": "apps"}, volumes=("media",)),
             "b": _node("node-b", drivers=("raw_exec", "docker")),
             "c": _node("node-c", dc="dc2")}
    for node in nodes.values():
        resp = requests.put(srv.address + "/v1/sim/node/register", json=node, timeout=5)
        assert resp.status_code == 200, resp.text
    yield srv.address, nodes
    srv.stop()


def _register(addr: str, job: dict) -> dict:
    resp = requests.put(addr + "/v1/jobs", json={"Job": job}, timeout=5)
    assert resp.status_code == 200, resp.text
    return resp.json()


def _placed(addr: str, job_id: str) -> list[str]:
    return sorted(a["NodeName"] for a in requests.get(addr + "/v1/job/%s/allocations" % job_id, timeout=5).json())


def test_system_job_one_allocation_per_eligible_node(cluster):
    addr = cluster[0]
    _register(addr, _job("sys", kind="system", dcs=("dc1", "dc2")))
    assert _placed(addr, "sys") == ["node-a", "node-b", "node-c"]
    _register(addr, _job("sys1", kind="system", dcs=("dc1",)))
    assert _placed(addr, "sys1") == ["node-a", "node-b"]
    _register(addr, _job("star", kind="system", dcs=("*",), driver="docker"))
    assert _placed(addr, "star") == ["node-b"]


def test_service_job_placed_where_constraints_and_host_volumes_fit(cluster):
    addr = cluster[0]
    _register(addr, _job("svc", count=3))
    assert _placed(addr, "svc") == ["node-a", "node-a", "node-b"]  # spread over the dc1 nodes
    con = [{"LTarget": "${meta.role}", "RTarget": "apps", "Operand": "="}]
    _register(addr, _job("apps", count=2, constraints=con))
    assert _placed(addr, "apps") == ["node-a", "node-a"]
    _register(addr, _job("vol", volume="media"))
    assert _placed(addr, "vol") == ["node-a"]


@pytest.mark.parametrize("job, filtered, evaluated", [
    (_job("nodrv", driver="docker", dcs=("dc1", "dc2"), constraints=[
        {"LTarget": "${attr.kernel.name}", "RTarget": "windows", "Operand": "="}]),
     {"missing drivers": 2, "${attr.kernel.name} = windows": 1}, 3),
    (_job("novol", volume="nope"), {"missing compatible host volumes": 2}, 2),
    (_job("nodc", dcs=("dc9",)), None, 0),
])
def test_nothing_fits_a_blocked_evaluation(cluster, job, filtered, evaluated):
    addr = cluster[0]
    res = _register(addr, job)
    ev = requests.get(addr + "/v1/evaluation/" + res["EvalID"], timeout=5).json()
    failed = ev["FailedTGAllocs"]["g"]
    assert failed["ConstraintFiltered"] == filtered and failed["NodesEvaluated"] == evaluated
    assert failed["NodesInPool"] == 3
    assert requests.get(addr + "/v1/evaluation/" + ev["BlockedEval"], timeout=5).json()["Status"] == "blocked"
    assert _placed(addr, job["ID"]) == []


def test_client_state_drives_the_deployment_and_only_the_node_may_report(cluster):
    addr, nodes = cluster
    on_b = [{"LTarget": "${node.unique.name}", "RTarget": "node-b", "Operand": "="}]
    _register(addr, _job("web", constraints=on_b))
    node = nodes["b"]
    path = "/v1/sim/node/%s/allocs" % node["ID"]
    assert requests.get(addr + path, headers={"X-Nomad-Token": "s-node-a"}, timeout=5).status_code == 403
    work = requests.get(addr + path, headers={"X-Nomad-Token": node["SecretID"]}, timeout=5).json()
    (alloc,) = work["Allocs"]
    assert alloc["Job"]["ID"] == "web" and alloc["Job"]["Version"] == alloc["JobVersion"] == 0
    assert requests.get(addr + "/v1/job/web/deployment", timeout=5).json()["Status"] == "running"
    update = {"ID": alloc["ID"], "ClientStatus": "running", "ClientDescription": "Tasks are running",
              "TaskStates": {"t": {"State": "running", "Failed": False, "Restarts": 0, "Events": []}},
              "DeploymentStatus": {"Healthy": True, "Timestamp": "2026-01-01T00:00:00Z", "Canary": False}}
    assert requests.put(addr + path, json={"Allocs": [update]}, headers={"X-Nomad-Token": "s-node-a"},
                        timeout=5).status_code == 403
    assert requests.put(addr + path, json={"Allocs": [update]}, headers={"X-Nomad-Token": node["SecretID"]},
                        timeout=5).status_code == 200
    assert requests.get(addr + "/v1/job/web/deployment", timeout=5).json()["Status"] == "successful"
    assert requests.get(addr + "/v1/job/web", timeout=5).json()["Status"] == "running"
    # re-registering with another secret is refused (Nomad: the node secret must match)
    assert requests.put(addr + "/v1/sim/node/register", json=dict(node, SecretID="other"),
                        timeout=5).status_code == 403
    # a stopped job: the node is told so
    requests.delete(addr + "/v1/job/web", timeout=5)
    work = requests.get(addr + path, headers={"X-Nomad-Token": node["SecretID"]}, timeout=5).json()
    assert [(a["ID"], a["DesiredStatus"], "Job" in a) for a in work["Allocs"]] == [(alloc["ID"], "stop", False)]


def test_node_endpoints_match_the_description(cluster):
    addr, nodes = cluster
    with gzip.open(SPEC_GZ, "rt", encoding="utf-8") as fh:
        doc = yaml.safe_load(fh.read())
    components = nullable(doc["components"])

    def validate(body, path):
        resp = doc["paths"][path]["get"]["responses"]["200"]
        if "$ref" in resp:
            resp = doc["components"]["responses"][resp["$ref"].rsplit("/", 1)[1]]
        schema = resp["content"]["application/json"]["schema"]
        jsonschema.validate(body, dict(copy.deepcopy(schema), components=components))

    listed = requests.get(addr + "/v1/nodes", timeout=5).json()
    validate(listed, "/nodes")
    assert sorted((n["Name"], n["Status"], n["Datacenter"]) for n in listed) == [
        ("node-a", "ready", "dc1"), ("node-b", "ready", "dc1"), ("node-c", "ready", "dc2")]
    node = requests.get(addr + "/v1/node/" + nodes["a"]["ID"], timeout=5).json()
    validate(node, "/node/{nodeId}")
    assert node["SecretID"] == "" and node["Meta"] == {"role": "apps"} and node["HostVolumes"]["media"]["Path"]
    assert requests.get(addr + "/v1/node/" + nodes["a"]["ID"][:8], timeout=5).json()["Name"] == "node-a"
    assert requests.get(addr + "/v1/node/nope", timeout=5).status_code == 404
    _register(addr, _job("sys", kind="system"))
    allocs = requests.get(addr + "/v1/node/%s/allocations" % nodes["a"]["ID"], timeout=5).json()
    validate(allocs, "/node/{nodeId}/allocations")
    assert [a["JobID"] for a in allocs] == ["sys"]


def test_a_new_node_or_host_volume_unblocks_what_could_not_be_placed(cluster):
    addr = cluster[0]
    res = _register(addr, _job("later", dcs=("dc3",)))
    blocked = requests.get(addr + "/v1/evaluation/" + res["EvalID"], timeout=5).json()["BlockedEval"]
    assert _placed(addr, "later") == []
    node = _node("node-d", dc="dc3")
    assert requests.put(addr + "/v1/sim/node/register", json=node, timeout=5).status_code == 200
    assert _placed(addr, "later") == ["node-d"]
    assert requests.get(addr + "/v1/evaluation/" + blocked, timeout=5).json()["Status"] == "complete"
    assert requests.put(addr + "/v1/sim/node/register", json=node, timeout=5).status_code == 200  # a heartbeat
    assert _placed(addr, "later") == ["node-d"], "a heartbeat places nothing again"

    _register(addr, _job("needs-vol", volume="late"))
    assert _placed(addr, "needs-vol") == []
    resp = requests.put(addr + "/v1/volume/host/register", json={"Volume": {
        "Name": "late", "NodeID": node["ID"], "HostPath": "/srv/late"}}, timeout=5)
    assert resp.status_code == 200, resp.text
    assert _placed(addr, "needs-vol") == [], "a volume on a node of another datacenter places nothing"
    resp = requests.put(addr + "/v1/volume/host/register", json={"Volume": {
        "Name": "late", "NodeID": _node("node-b")["ID"], "HostPath": "/srv/late"}}, timeout=5)
    assert _placed(addr, "needs-vol") == ["node-b"]
