"""Validate a Nomad job (API JSON) against the Job schema of Nomad's OpenAPI description.

The description (../shared/specs/nomad-openapi.yaml, vendored gzipped beside the
simulator) is Nomad 1.1.4's and leaves additionalProperties open, so on top of
jsonschema this walks the job and requires every key to be a property the
description names, except the few fields newer Nomad added (listed below, each
checked against Nomad 1.10's api/ structs). A misspelt key fails here instead of
being silently dropped by the server.
"""

from __future__ import annotations

import copy
import functools
import gzip
import os

import jsonschema
import yaml

SPEC_GZ = os.path.join(os.path.dirname(os.path.abspath(__file__)), "simulators", "nomad", "spec",
                       "nomad-openapi.yaml.gz")

# Fields of Nomad >= 1.2 (api/services.go Provider 1.3, api/tasks.go RenderTemplates 1.6,
# VolumeMount/RestartPolicy, Identity 1.7, Task Vault Role 1.7) that the 1.1.4 description lacks.
NEWER = {
    "Service": {"Provider"},
    "RestartPolicy": {"RenderTemplates"},
    "Vault": {"Role", "AllowTokenExpiration"},
    "Task": {"Identity", "Identities", "Schedule", "Actions"},
    "TaskGroup": {"Consul", "MaxClientDisconnect", "PreventRescheduleOnLost", "Disconnect"},
    "Job": {"NodePool", "UI", "VersionTag"},
    "Template": {"ErrMissingKey", "Once", "ChangeScript"},
}


def nullable(node):
    """Go encodes nil slices, maps and pointers as null, which the generated description does not say."""
    if isinstance(node, dict):
        out = {k: nullable(v) for k, v in node.items()}
        if isinstance(out.get("type"), str):
            out["type"] = [out["type"], "null"]
        out.pop("maximum", None)
        return out
    if isinstance(node, list):
        return [nullable(v) for v in node]
    return node


@functools.lru_cache(maxsize=1)
def components():
    with gzip.open(SPEC_GZ, "rt", encoding="utf-8") as fh:
        doc = yaml.safe_load(fh)
    return nullable(doc["components"])


def _strict(value, schema, comps, where):
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[1]
        return _strict(value, comps["schemas"][name], comps, where + "<%s>" % name)
    if isinstance(value, dict) and "properties" in schema:
        name = where.rsplit("<", 1)[-1].rstrip(">") if "<" in where else ""
        allowed = set(schema["properties"]) | NEWER.get(name, set())
        for key, sub in value.items():
            assert key in allowed, "%s: %r is not a field of Nomad's %s" % (where, key, name or "object")
            if key in schema["properties"]:
                _strict(sub, schema["properties"][key], comps, where + "." + key)
    elif isinstance(value, dict) and isinstance(schema.get("additionalProperties"), dict):
        for key, sub in value.items():
            _strict(sub, schema["additionalProperties"], comps, where + "[%s]" % key)
    elif isinstance(value, list) and "items" in schema:
        for i, sub in enumerate(value):
            _strict(sub, schema["items"], comps, where + "[%d]" % i)


def assert_valid_job(job: dict, strict: bool = True) -> None:
    """jsonschema against JobRegisterRequest, then (strict) no key outside the described fields.

    Strict is for jobs as the collection writes them; a job read back from a server carries
    the server's canonical fields of its own version and is checked against the schema only.
    """
    comps = components()
    schema = dict(copy.deepcopy(comps["schemas"]["JobRegisterRequest"]), components=comps)
    jsonschema.validate({"Job": job}, schema)
    if strict:
        _strict(job, {"$ref": "#/components/schemas/Job"}, comps, "Job")
