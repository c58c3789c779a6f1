"""Contract tests: the simulator's requests and answers against Vault's OpenAPI description.

A scenario drives every endpoint the collection uses over HTTP and records each
exchange. Each one must match a path and method of the official description;
request bodies may only use fields it declares; success statuses must be the
ones it lists (a 200 without a body schema may be answered 204, as Vault does);
answer bodies with a schema may only carry declared fields, with declared types
(Vault's ``data`` envelope is unwrapped first).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import time
from pathlib import Path

import jwt
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.simulators.vault import start, start_dev

SPEC_GZ = Path(__file__).resolve().parents[4] / "tests/simulators/vault/spec/vault-openapi.json.gz"
SHARED = Path(__file__).resolve().parents[5] / "shared/specs/vault-openapi.json"


def load_spec() -> dict:
    with gzip.open(SPEC_GZ, "rb") as fh:
        raw = fh.read()
    if SHARED.exists():
        assert hashlib.sha256(raw).hexdigest() == hashlib.sha256(SHARED.read_bytes()).hexdigest(), \
            "tests/simulators/vault/spec differs from ../shared/specs/vault-openapi.json: refresh the vendored copy"
    return json.loads(raw)


SPEC = load_spec()
SCHEMAS = SPEC["components"]["schemas"]


def _compile(template: str, mounts: dict[str, str]) -> re.Pattern[str] | None:
    out = ""
    for part in re.split(r"(\{[^}]+\})", template):
        if part.startswith("{"):
            name = part[1:-1]
            if name.endswith("mount_path"):
                if name not in mounts:
                    return None  # an engine the scenario does not use
                out += re.escape(mounts[name])
            else:
                out += "(?:.+)" if name == "path" else "[^/]+"
        else:
            out += re.escape(part).replace(re.escape("^.*$"), ".*")
    return re.compile("^" + out + "$")


def match(path: str, mounts: dict[str, str]) -> str:
    """The spec path for a concrete API path (mount placeholders resolved with ``mounts``)."""
    candidates = []
    for template in SPEC["paths"]:
        rx = _compile(template, mounts)
        if rx is not None and rx.match(path):
            literal = len(re.sub(r"\{[^}]+\}", "", template))
            candidates.append((literal, template))
    assert candidates, "no path in the OpenAPI description matches %s" % path
    return max(candidates)[1]


def resolve(ref: dict | None) -> dict | None:
    if not ref:
        return None
    if "$ref" in ref:
        return SCHEMAS[ref["$ref"].rsplit("/", 1)[1]]
    return ref


_TYPES = {"string": str, "boolean": bool, "object": dict, "array": list}


def check_value(schema: dict, value, where: str) -> None:
    if value is None:
        return  # Vault (Go) sends null for unset maps and lists
    typ = schema.get("type")
    if typ == "integer":
        assert isinstance(value, int) and not isinstance(value, bool), "%s: %r is not an integer" % (where, value)
    elif typ == "number":
        assert isinstance(value, (int, float)) and not isinstance(value, bool), \
            "%s: %r is not a number" % (where, value)
    elif typ in _TYPES:
        if typ == "string" and schema.get("format") in ("duration", "seconds") and isinstance(value, int):
            return  # Vault accepts and returns durations as seconds or strings
        assert isinstance(value, _TYPES[typ]), "%s: %r is not %s" % (where, value, typ)


def check_object(schema: dict, body: dict, where: str, strict: bool = True) -> None:
    props = schema.get("properties")
    if not props:
        return
    for key, value in body.items():
        if strict:
            assert key in props, "%s: field %r is not in the OpenAPI description" % (where, key)
        if key in props:
            check_value(props[key], value, "%s.%s" % (where, key))


class Recorder:
    def __init__(self, addr: str, token: str | None):
        self.addr, self.token = addr, token
        self.exchanges: list[tuple] = []

    def __call__(self, method, path, body=None, token=None, expect=(200, 204), query=None):
        headers = {}
        tok = token if token is not None else self.token
        if tok:
            headers["X-Vault-Token"] = tok
        resp = requests.request(method, "%s/v1/%s" % (self.addr, path), json=body, headers=headers, params=query,
                                timeout=10)
        data = resp.json() if resp.content and resp.headers.get("content-type", "").startswith(
            "application/json") else None
        self.exchanges.append((method, path, query, body, resp.status_code, data))
        assert resp.status_code in expect, "%s %s -> %d %s" % (method, path, resp.status_code, resp.text)
        return data


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """Run the scenario once on a fresh non-dev server and on a dev server; return exchanges and mounts."""
    mounts = {"kv_v2_mount_path": "kv", "kv_v1_mount_path": "legacy", "jwt_mount_path": "jwt",
              "approle_mount_path": "approle"}
    server = start(str(tmp_path_factory.mktemp("vault-data")))
    try:
        anon = Recorder(server.address, None)
        anon("GET", "sys/health", expect=(501,))
        anon("GET", "sys/init")
        keys = anon("POST", "sys/init", {"secret_shares": 3, "secret_threshold": 2})
        anon("GET", "sys/seal-status")
        anon("GET", "sys/health", expect=(503,))
        anon("POST", "sys/unseal", {"key": keys["keys"][0]})
        anon("POST", "sys/unseal", {"key": keys["keys_base64"][2]})
        anon("GET", "sys/health")
        v = Recorder(server.address, keys["root_token"])
        v("POST", "sys/mounts/kv", {"type": "kv", "options": {"version": "2"}, "description": "homelab"})
        v("POST", "sys/mounts/legacy", {"type": "kv", "options": {"version": "1"}})
        v("GET", "sys/mounts")
        v("GET", "sys/mounts/kv")
        v("GET", "sys/internal/ui/mounts/kv")
        v("POST", "kv/config", {"max_versions": 5, "cas_required": False})
        v("GET", "kv/config")
        v("POST", "kv/data/traefik", {"data": {"do_auth_token": "x"}, "options": {"cas": 0}})
        v("POST", "kv/data/traefik", {"data": {"do_auth_token": "y"}, "options": {"cas": 1}})
        v("GET", "kv/data/traefik")
        v("GET", "kv/data/traefik", query={"version": 1})
        v("POST", "kv/metadata/traefik", {"max_versions": 3, "custom_metadata": {"owner": "traefik"}})
        v("GET", "kv/metadata/traefik")
        v("POST", "kv/data/apps/photoprism", {"data": {"admin_password": "z"}})
        v("GET", "kv/metadata/apps", query={"list": "true"})
        v("POST", "kv/delete/traefik", {"versions": [1]})
        v("POST", "kv/undelete/traefik", {"versions": [1]})
        v("POST", "kv/destroy/traefik", {"versions": [1]})
        v("DELETE", "kv/data/traefik")
        v("DELETE", "kv/metadata/traefik")
        v("POST", "legacy/app", {"key": "value"})
        v("GET", "legacy/app")
        v("POST", "legacy/apps/x", {"key": "value"})
        v("GET", "legacy/apps", query={"list": "true"})
        v("DELETE", "legacy/app")
        v("POST", "sys/policies/acl/traefik", {"policy": 'path "kv/data/traefik" { capabilities = ["read"] }'})
        v("GET", "sys/policies/acl/traefik")
        v("GET", "sys/policies/acl", query={"list": "true"})
        v("POST", "sys/policy/legacy", {"policy": 'path "legacy/*" { capabilities = ["read"] }'})
        v("GET", "sys/policy/legacy")
        v("DELETE", "sys/policy/legacy")
        child = v("POST", "auth/token/create", {"policies": ["traefik"], "ttl": "1h", "display_name": "ci",
                                                "meta": {"who": "ci"}})
        v("GET", "auth/token/lookup-self")
        v("POST", "auth/token/lookup", {"token": child["auth"]["client_token"]})
        v("POST", "sys/capabilities-self", {"paths": ["kv/data/traefik"]})
        v("POST", "auth/token/revoke", {"token": child["auth"]["client_token"]})
        v("POST", "sys/auth/jwt", {"type": "jwt", "description": "nomad workload identity"})
        v("GET", "sys/auth")
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                            serialization.PublicFormat.SubjectPublicKeyInfo).decode()
        v("POST", "auth/jwt/config", {"jwt_validation_pubkeys": [pem], "jwt_supported_algs": ["RS256"],
                                      "default_role": "traefik"})
        v("GET", "auth/jwt/config")
        v("POST", "auth/jwt/role/traefik", {"role_type": "jwt", "bound_audiences": ["vault.io"],
                                            "user_claim": "/nomad_job_id", "user_claim_json_pointer": True,
                                            "bound_claims": {"nomad_job_id": "traefik"},
                                            "claim_mappings": {"nomad_task": "nomad_task"},
                                            "token_policies": ["traefik"], "token_type": "service",
                                            "token_period": "30m"})
        v("GET", "auth/jwt/role/traefik")
        now = int(time.time())
        signed = jwt.encode({"nomad_job_id": "traefik", "nomad_task": "web", "aud": "vault.io", "iat": now,
                             "exp": now + 60}, key, algorithm="RS256")
        anon("POST", "auth/jwt/login", {"role": "traefik", "jwt": signed})
        v("POST", "sys/auth/approle", {"type": "approle"})
        v("POST", "auth/approle/role/backup", {"token_policies": ["traefik"], "secret_id_ttl": "10m",
                                               "token_ttl": "20m"})
        v("GET", "auth/approle/role/backup")
        role_id = v("GET", "auth/approle/role/backup/role-id")["data"]["role_id"]
        secret = v("POST", "auth/approle/role/backup/secret-id", {"metadata": "{\"host\": \"box\"}"})
        anon("POST", "auth/approle/login", {"role_id": role_id, "secret_id": secret["data"]["secret_id"]})
        v("POST", "sys/seal")
        anon("GET", "sys/seal-status")
        exchanges = anon.exchanges + v.exchanges
    finally:
        server.stop()
    dev = start_dev(root_token="root")
    try:
        d = Recorder(dev.address, "root")
        d("GET", "sys/health")
        d("POST", "sys/mounts/kv", {"type": "kv-v2"})
        d("GET", "kv/data/missing", expect=(404,))
        d("GET", "kv/metadata/missing", expect=(404,))
        d("GET", "kv/data/missing", token="hvs.wrong", expect=(403,))
        exchanges += d.exchanges
    finally:
        dev.stop()
    return exchanges, mounts


def test_every_exchange_is_in_the_openapi_description(recorded):
    exchanges, mounts = recorded
    checked = 0
    for method, path, query, body, status, data in exchanges:
        template = match("/" + path.rstrip("/") + ("/" if (query or {}).get("list") else ""), mounts)
        item = SPEC["paths"][template]
        op_method = "get" if method == "GET" else method.lower()
        assert op_method in item, "%s %s (%s) is not in the OpenAPI description" % (method, path, template)
        op = item[op_method]
        where = "%s %s" % (method, template)
        if body is not None:
            schema = resolve(op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema"))
            if schema is not None:
                check_object(schema, body, where + " request")
        if status >= 400:
            continue
        codes = set(op["responses"])
        has_schema = any(r.get("content") for r in op["responses"].values())
        assert str(status) in codes or (status == 204 and "200" in codes and not has_schema), \
            "%s answered %d; the description lists %s" % (where, status, sorted(codes))
        resp_schema = resolve(op["responses"].get(str(status), {}).get("content", {}).get("application/json", {})
                              .get("schema"))
        if resp_schema and isinstance(data, dict):
            payload = data["data"] if "request_id" in data else data
            check_object(resp_schema, payload, where + " response")
        checked += 1
    assert checked >= 50


def test_error_bodies_are_vaults(recorded):
    exchanges, _mounts = recorded
    errors = [(m, p, s, d) for m, p, _q, _b, s, d in exchanges if s >= 400]
    assert errors, "the scenario must include error answers"
    for method, path, _status, data in errors:
        if path == "sys/health":
            continue  # health answers its status with a normal body
        assert isinstance(data, dict) and isinstance(data.get("errors"), list), (method, path, data)


def test_vendored_spec_names_the_endpoints_the_simulator_serves():
    for template in ("/sys/health", "/sys/init", "/sys/unseal", "/sys/seal-status", "/sys/seal", "/sys/mounts/{path}",
                     "/sys/policies/acl/{name}", "/auth/token/create", "/auth/token/lookup-self",
                     "/auth/token/revoke", "/auth/{jwt_mount_path}/login", "/auth/{jwt_mount_path}/role/{name}",
                     "/auth/{approle_mount_path}/login", "/{kv_v2_mount_path}/data/{path}",
                     "/{kv_v2_mount_path}/metadata/{path}", "/{kv_v2_mount_path}/destroy/{path}",
                     "/{kv_v2_mount_path}/undelete/{path}", "/{kv_v1_mount_path}/{path}",
                     "/sys/internal/ui/mounts/{path}"):
        assert template in SPEC["paths"], template


def test_the_requests_vault_kv_sends_are_in_the_openapi_description():
    """Every request the module's unit cases expect (method, path, body) is one the description declares."""
    import yaml

    cases = yaml.safe_load((Path(__file__).resolve().parents[2] / "plugins/modules/vault_kv/cases.yml").read_text())
    mounts = {"kv_v2_mount_path": "kv", "kv_v1_mount_path": "legacy", "approle_mount_path": "approle",
              "jwt_mount_path": "nomad-wi"}
    seen = set()
    for case in cases:
        for req in case["requests"]:
            template = match("/" + req["path"], mounts)
            op = SPEC["paths"][template].get(req["method"].lower())
            assert op is not None, "%s %s (%s) is not in the description" % (req["method"], req["path"], template)
            schema = resolve(op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema"))
            if schema is not None and isinstance(req.get("json"), dict):
                check_object(schema, req["json"], "%s %s request" % (req["method"], template))
            seen.add((req["method"], template))
    assert len(seen) >= 10
