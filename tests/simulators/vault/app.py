"""A Vault 1.18 API simulator: the part of the HTTP API the collection uses.

State lives in memory (``-dev``) or in a data directory, encrypted with the
barrier key that the Shamir unseal shares reconstruct: a restarted server
starts sealed and only the right shares open it, as with Vault's file storage.
Field names, status codes and error bodies follow Vault's API docs and
``../shared/specs/vault-openapi.json``. Differences are listed in README.md.
"""

from __future__ import annotations

import base64
import binascii
import copy
import datetime as dt
import json
import os
import re
import secrets
import string
import threading
import time
import uuid
from typing import Any
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ..base import App, HTTPError, Request, Response
from . import policy as acl_policy
from . import shamir

VERSION = "1.18.5"
BUILD_DATE = "2025-02-24T09:40:28Z"
DEFAULT_TTL = 768 * 3600
PERMISSION_DENIED = "1 error occurred:\n\t* permission denied\n\n"
STATE_FILE = "vault-sim.json"

_UNAUTHENTICATED = {"sys/health", "sys/init", "sys/seal-status", "sys/unseal", "sys/leader"}
_SUDO_EXACT = {"sys/seal", "sys/step-down", "sys/rotate"}
_SUDO_PREFIX = ("sys/auth/", "sys/audit", "sys/raw")
_ALNUM = string.ascii_letters + string.digits


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _ts(when: dt.datetime | None = None) -> str:
    return (when or _now()).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _rand(n: int) -> str:
    return "".join(secrets.choice(_ALNUM) for _char in range(n))


def _err(status: int, *messages: str) -> HTTPError:
    return HTTPError(status, {"errors": list(messages)})


def parse_duration(value: Any, field: str = "ttl") -> int:
    """Vault durations: integer seconds or Go-style strings ("1h30m", "90s")."""
    if value is None or value == "":
        return 0
    if isinstance(value, bool):
        raise _err(400, 'error converting input %s for field "%s"' % (value, field))
    if isinstance(value, (int, float)):
        return int(value)
    text = str(value).strip()
    if text.isdigit():
        return int(text)
    total = 0.0
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
    pos = 0
    for match in re.finditer(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)", text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * units[match.group(2)]
        pos = match.end()
    if pos != len(text) or not text:
        raise _err(400, 'error converting input %s for field "%s": time: invalid duration "%s"' % (text, field, text))
    return int(total)


def _as_list(value: Any) -> list[str]:
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return [str(v) for v in value]


def _as_bool(value: Any, field: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false", "1", "0"):
        return value.lower() in ("true", "1")
    if isinstance(value, int):
        return bool(value)
    raise _err(400, 'error converting input %r for field "%s"' % (value, field))


def _as_int(value: Any, field: str) -> int:
    if isinstance(value, bool):
        raise _err(400, 'error converting input %r for field "%s"' % (value, field))
    try:
        return int(value)
    except (TypeError, ValueError):
        raise _err(400, 'error converting input %r for field "%s"' % (value, field))


class VaultApp(App):
    """The simulated Vault server (one per SimServer)."""

    version = VERSION
    build_date = BUILD_DATE

    def __init__(self, data_dir: str | None = None, dev: bool = False, dev_root_token: str | None = None):
        super().__init__()
        self.data_dir = data_dir
        if data_dir:
            os.makedirs(data_dir, exist_ok=True)
        self.lock = threading.RLock()
        self.core: dict[str, Any] | None = None  # the decrypted state; None while sealed
        self.seal_conf: dict[str, Any] | None = None  # {"t", "n", "barrier"} once initialised
        self.unseal_progress: list[bytes] = []
        self.unseal_nonce = ""
        self.barrier_key: bytes | None = None
        self.faults: list[dict[str, Any]] = []
        self.dev_unseal_key: str | None = None
        self.dev_root_token: str | None = None
        self.ha: Any = None  # an ha.HANode for raft storage started from a config file (see ha.py)
        self._load()
        if dev:
            self._dev_init(dev_root_token)
        self.add_route("GET", r"/v1/(?P<path>.*)", self.handle)
        for method in ("PUT", "POST", "DELETE", "PATCH", "LIST", "HEAD"):
            self.add_route(method, r"/v1/(?P<path>.*)", self.handle)
        self.add_route("POST", r"/_sim/fault", self._sim_fault)
        self.add_route("DELETE", r"/_sim/fault", self._sim_fault_clear)

    # ------------------------------------------------------------------ errors
    def error_response(self, status: int, body: Any) -> Response:
        if isinstance(body, str) and status != 404:
            body = {"errors": [body]}
        return Response(status, body)

    # ------------------------------------------------------------- persistence
    @property
    def _state_path(self) -> str | None:
        return os.path.join(self.data_dir, STATE_FILE) if self.data_dir else None

    def _load(self) -> None:
        path = self._state_path
        if path and os.path.exists(path):
            with open(path, encoding="utf-8") as fh:
                self.seal_conf = json.load(fh)

    def _save(self) -> None:
        if self.core is None or self.barrier_key is None or not self._state_path:
            return
        nonce = os.urandom(12)
        blob = AESGCM(self.barrier_key).encrypt(nonce, json.dumps(self.core).encode(), b"vault-sim-barrier")
        assert self.seal_conf is not None
        self.seal_conf["barrier"] = base64.b64encode(nonce + blob).decode()
        tmp = self._state_path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(self.seal_conf, fh)
        os.replace(tmp, self._state_path)

    def _open_barrier(self, key: bytes) -> dict[str, Any]:
        assert self.seal_conf is not None
        raw = base64.b64decode(self.seal_conf["barrier"])
        data = AESGCM(key).decrypt(raw[:12], raw[12:], b"vault-sim-barrier")
        return json.loads(data)

    # ----------------------------------------------------------- initialising
    def _fresh_core(self) -> dict[str, Any]:
        return {
            "cluster_name": "vault-cluster-" + secrets.token_hex(4),
            "cluster_id": str(uuid.uuid4()),
            "tokens": {},
            "accessors": {},
            "policies": {"default": acl_policy.DEFAULT_POLICY.strip() + "\n"},
            "mounts": {
                "cubbyhole/": self._mount_entry("cubbyhole", "per-token private secret storage", local=True),
                "identity/": self._mount_entry("identity", "identity store"),
                "sys/": self._mount_entry("system", "system endpoints used for control, policy and debugging"),
            },
            "auth": {"token/": self._mount_entry("token", "token based credentials", auth=True)},
            "kv": {},
            "jwt": {},
            "approle": {},
        }

    @staticmethod
    def _mount_entry(mtype: str, description: str = "", options: dict | None = None, local: bool = False,
                     auth: bool = False) -> dict[str, Any]:
        prefix = "auth_" if auth else ""
        builtin = "v%s+builtin.vault" % VERSION if mtype in ("cubbyhole", "identity", "system", "token") else ""
        return {
            "accessor": "%s%s_%s" % (prefix, mtype.replace("-", "_"), secrets.token_hex(4)),
            "config": {"default_lease_ttl": 0, "force_no_cache": False, "max_lease_ttl": 0},
            "description": description,
            "external_entropy_access": False,
            "local": local,
            "options": options,
            "plugin_version": "",
            "running_plugin_version": builtin,
            "running_sha256": "",
            "seal_wrap": False,
            "type": mtype,
            "uuid": str(uuid.uuid4()),
        }

    def _initialize(self, shares: int, threshold: int) -> tuple[list[bytes], str]:
        key = os.urandom(32)
        parts = [key] if shares == 1 else shamir.split(key, shares, threshold)
        self.core = self._fresh_core()
        root = self._new_token(["root"], display_name="root", ttl=0, orphan=True, path="auth/token/root")
        self.seal_conf = {"type": "shamir", "t": threshold, "n": shares, "barrier": ""}
        self.barrier_key = key
        self._save()
        return parts, root

    def _dev_init(self, root_id: str | None) -> None:
        parts, root = self._initialize(1, 1)
        assert self.core is not None
        if root_id:
            entry = self.core["tokens"].pop(root)
            entry["id"] = root_id
            self.core["tokens"][root_id] = entry
            self.core["accessors"][entry["accessor"]] = root_id
            root = root_id
        self.core["mounts"]["secret/"] = self._mount_entry("kv", "key/value secret storage", {"version": "2"})
        self._kv_store("secret/")
        self.dev_unseal_key = base64.b64encode(parts[0]).decode()
        self.dev_root_token = root
        self._save()

    @property
    def initialized(self) -> bool:
        return self.seal_conf is not None

    @property
    def sealed(self) -> bool:
        return self.core is None

    def seal(self) -> None:
        with self.lock:
            self._save()
            self.core = None
            self.barrier_key = None
            self.unseal_progress = []
            self.unseal_nonce = ""

    # ----------------------------------------------------------------- tokens
    def _new_token(self, policies: list[str], display_name: str = "token", ttl: int = DEFAULT_TTL,
                   orphan: bool = False, parent: str | None = None, meta: dict | None = None,
                   num_uses: int = 0, renewable: bool = True, path: str = "auth/token/create",
                   token_id: str | None = None, explicit_max_ttl: int = 0, period: int = 0,
                   entity_id: str = "") -> str:
        assert self.core is not None
        token = token_id or "hvs." + _rand(24)
        accessor = _rand(24)
        now = _now()
        self.core["tokens"][token] = {
            "id": token,
            "accessor": accessor,
            "policies": sorted(set(policies)),
            "display_name": display_name,
            "creation_time": int(now.timestamp()),
            "issue_time": now.isoformat(),
            "creation_ttl": ttl,
            "expire_at": (now.timestamp() + ttl) if ttl else None,
            "explicit_max_ttl": explicit_max_ttl,
            "period": period,
            "orphan": orphan,
            "parent": None if orphan else parent,
            "meta": meta or None,
            "num_uses": num_uses,
            "renewable": renewable and ttl != 0,
            "path": path,
            "entity_id": entity_id,
        }
        self.core["accessors"][accessor] = token
        return token

    def _auth_block(self, token: str, token_policies: list[str] | None = None) -> dict[str, Any]:
        assert self.core is not None
        entry = self.core["tokens"][token]
        return {
            "client_token": token,
            "accessor": entry["accessor"],
            "policies": entry["policies"],
            "token_policies": sorted(token_policies if token_policies is not None else entry["policies"]),
            "metadata": entry["meta"],
            "lease_duration": entry["creation_ttl"],
            "renewable": entry["renewable"],
            "entity_id": entry["entity_id"],
            "token_type": "service",
            "orphan": entry["orphan"],
            "mfa_requirement": None,
            "num_uses": entry["num_uses"],
        }

    def _lookup_token(self, token: str | None) -> dict[str, Any] | None:
        assert self.core is not None
        if not token:
            return None
        entry = self.core["tokens"].get(token)
        if entry and entry["expire_at"] is not None and entry["expire_at"] < time.time():
            self._revoke(token)
            return None
        return entry

    def _revoke(self, token: str, orphan_children: bool = False) -> None:
        assert self.core is not None
        entry = self.core["tokens"].pop(token, None)
        if not entry:
            return
        self.core["accessors"].pop(entry["accessor"], None)
        for child, centry in list(self.core["tokens"].items()):
            if centry.get("parent") == token:
                if orphan_children:
                    centry["parent"] = None
                    centry["orphan"] = True
                else:
                    self._revoke(child)

    def _token_view(self, entry: dict[str, Any]) -> dict[str, Any]:
        ttl = 0
        expire = None
        if entry["expire_at"] is not None:
            ttl = max(0, int(entry["expire_at"] - time.time()))
            expire = dt.datetime.fromtimestamp(entry["expire_at"], dt.UTC).isoformat()
        return {
            "accessor": entry["accessor"],
            "creation_time": entry["creation_time"],
            "creation_ttl": entry["creation_ttl"],
            "display_name": entry["display_name"],
            "entity_id": entry["entity_id"],
            "expire_time": expire,
            "explicit_max_ttl": entry["explicit_max_ttl"],
            "id": entry["id"],
            "issue_time": entry["issue_time"],
            "meta": entry["meta"],
            "num_uses": entry["num_uses"],
            "orphan": entry["orphan"],
            "path": entry["path"],
            "policies": entry["policies"],
            "renewable": entry["renewable"],
            "ttl": ttl,
            "type": "service",
        }

    def _acl(self, entry: dict[str, Any]) -> acl_policy.ACL:
        assert self.core is not None
        if "root" in entry["policies"]:
            return acl_policy.ACL([], root=True)
        rules = []
        for name in entry["policies"]:
            text = self.core["policies"].get(name)
            if text is not None:
                rules.append(acl_policy.parse(text))
        return acl_policy.ACL(rules)

    # --------------------------------------------------------------- routing
    def _sim_fault(self, req: Request) -> Response:
        body = req.json() or {}
        with self.lock:
            self.faults.append({
                "status": int(body.get("status", 500)),
                "count": int(body.get("count", 1)),
                "path_prefix": body.get("path_prefix", "/v1/"),
                "method": (body.get("method") or "").upper(),
                "errors": body.get("errors") or ["simulated fault"],
            })
        return Response(204)

    def _sim_fault_clear(self, req: Request) -> Response:
        with self.lock:
            self.faults.clear()
        return Response(204)

    def _take_fault(self, req: Request) -> Response | None:
        for fault in self.faults:
            if req.path.startswith(fault["path_prefix"]) and fault["method"] in ("", req.method):
                fault["count"] -= 1
                if fault["count"] <= 0:
                    self.faults.remove(fault)
                return Response(fault["status"], {"errors": fault["errors"]})
        return None

    @staticmethod
    def _path_method(req: Request) -> tuple[str, str]:
        path = req.params["path"]
        while "//" in path:
            path = path.replace("//", "/")
        method = req.method
        if method == "GET" and req.query.get("list", "").lower() == "true":
            method = "LIST"
        if method == "PUT":
            method = "POST"
        return path, method

    def handle(self, req: Request) -> Response:
        if self.ha is not None:
            path, method = self._path_method(req)
            if path.startswith("sys/sim/raft/"):  # the join challenge, served by the node with the data
                with self.lock:
                    return self.ha.serve_leader(path, req)
            if self.ha.remote:  # a joiner or standby: answers locally or forwards (outside the lock)
                with self.lock:
                    fault = self._take_fault(req)
                if fault:
                    return fault
                response = self.ha.handle(req, path, method)
                if response is not None:
                    return response
        with self.lock:
            fault = self._take_fault(req)
            if fault:
                return fault
            path, method = self._path_method(req)
            unauth = path.rstrip("/") in _UNAUTHENTICATED
            if unauth:
                return self._sys_unauthenticated(path.rstrip("/"), method, req)
            if self.sealed:
                raise _err(503, "Vault is sealed")
            assert self.core is not None
            is_login = re.match(r"^auth/([^/]+(?:/[^/]+)*)/login$", path)
            if is_login and not path.startswith("auth/token/"):
                response = self._auth_login(path, req)
                self._save()
                return response
            token_id = req.header("x-vault-token")
            auth_header = req.header("authorization") or ""
            if not token_id and auth_header.lower().startswith("bearer "):
                token_id = auth_header[7:].strip()
            token = self._lookup_token(token_id)
            if token is None:
                raise _err(403, "permission denied")
            acl = self._acl(token)
            response = self._dispatch_logical(path, method, req, token, acl)
            if token.get("num_uses"):
                token["num_uses"] -= 1
                if token["num_uses"] == 0:
                    self._revoke(token["id"])
            if method != "GET" and method != "LIST":
                self._save()
            return response

    def _check(self, acl: acl_policy.ACL, path: str, capability: str, sudo: bool = False) -> None:
        if not acl.allows(path, capability) or (sudo and not acl.allows(path, "sudo")):
            raise _err(403, PERMISSION_DENIED)

    def _capability_for(self, path: str, method: str) -> str:
        if method == "GET" or method == "HEAD":
            return "read"
        if method == "LIST":
            return "list"
        if method == "DELETE":
            return "delete"
        if method == "PATCH":
            return "patch"
        return "update" if self._exists(path) else "create"

    def _dispatch_logical(self, path: str, method: str, req: Request, token: dict, acl: acl_policy.ACL) -> Response:
        assert self.core is not None
        acl_path = path
        if method == "LIST" and not acl_path.endswith("/"):
            acl_path += "/"
        if path.startswith("sys/internal/ui/mounts/"):
            return self._sys_ui_mount(path[len("sys/internal/ui/mounts/"):], acl)
        cap = self._capability_for(path, method)
        sudo = path in _SUDO_EXACT or (path.startswith(_SUDO_PREFIX) and method != "GET")
        self._check(acl, acl_path, cap, sudo)
        if path.startswith("sys/"):
            return self._sys(path, method, req, token, acl)
        if path.startswith("auth/token/"):
            return self._token_api(path[len("auth/token/"):], method, req, token, acl)
        if path.startswith("auth/"):
            return self._auth_api(path, method, req)
        mount, rest = self._match_mount(path)
        if mount is None:
            raise _err(404, "no handler for route \"%s\". route entry not found." % path)
        entry = self.core["mounts"][mount]
        if entry["type"] == "kv":
            if (entry.get("options") or {}).get("version") == "2":
                return self._kv2(mount, rest, method, req)
            return self._kv1(mount, rest, method, req)
        if entry["type"] == "cubbyhole":
            raise _err(405, "unsupported operation")
        raise _err(405, "unsupported path")

    def _match_mount(self, path: str, table: str = "mounts") -> tuple[str | None, str]:
        assert self.core is not None
        best = None
        for mount in self.core[table]:
            if (path + "/").startswith(mount) and (best is None or len(mount) > len(best)):
                best = mount
        if best is None:
            return None, path
        return best, path[len(best):]

    def _exists(self, path: str) -> bool:
        assert self.core is not None
        if path.startswith(("sys/", "auth/")):
            return True  # no existence check there: Vault treats writes as "update"
        mount, rest = self._match_mount(path)
        if mount is None:
            return False
        entry = self.core["mounts"][mount]
        if entry["type"] != "kv":
            return True
        store = self.core["kv"].get(entry["uuid"], {})
        if (entry.get("options") or {}).get("version") == "2":
            for prefix in ("data/", "metadata/"):
                if rest.startswith(prefix):
                    return rest[len(prefix):] in store.get("secrets", {})
            return True
        return rest in store.get("secrets", {})

    # ------------------------------------------------------------------- sys
    def seal_status(self) -> dict[str, Any]:
        conf = self.seal_conf or {}
        out = {
            "type": "shamir",
            "initialized": self.initialized,
            "sealed": self.sealed,
            "t": conf.get("t", 0),
            "n": conf.get("n", 0),
            "progress": len(self.unseal_progress),
            "nonce": self.unseal_nonce,
            "version": VERSION,
            "build_date": BUILD_DATE,
            "migration": False,
            "recovery_seal": False,
            "storage_type": getattr(self, "storage_type", "") or ("file" if self.data_dir else "inmem"),
        }
        if self.core is not None:
            out["cluster_name"] = self.core["cluster_name"]
            out["cluster_id"] = self.core["cluster_id"]
        return out

    def _sys_unauthenticated(self, path: str, method: str, req: Request) -> Response:
        if path == "sys/health":
            if method not in ("GET", "HEAD"):
                raise _err(405, "unsupported operation")
            return self._health(req)
        if path == "sys/seal-status":
            if method != "GET":
                raise _err(405, "unsupported operation")
            return Response(200, self.seal_status())
        if path == "sys/leader":
            if self.sealed:
                raise _err(503, "Vault is sealed")
            if self.ha is not None and self.ha.ha_enabled:
                return Response(200, self.ha.leader_status_active())
            return Response(200, {"ha_enabled": False, "is_self": False, "active_time": "0001-01-01T00:00:00Z",
                                  "leader_address": "", "leader_cluster_address": "",
                                  "performance_standby": False, "performance_standby_last_remote_wal": 0})
        if path == "sys/init":
            if method == "GET":
                return Response(200, {"initialized": self.initialized})
            if method != "POST":
                raise _err(405, "unsupported operation")
            return self._init(req)
        if path == "sys/unseal":
            if method != "POST":
                raise _err(405, "unsupported operation")
            return self._unseal(req)
        raise _err(404, "")

    def _raft_snapshot(self, force: bool, method: str, req: Request) -> Response:
        """Snapshot save (GET) and restore (POST): the barrier-encrypted state and the seal configuration,
        gzipped. A restore must be made with the same barrier key unless forced; a forced restore takes
        the snapshot's seal and seals the server (unseal with the snapshot's keys)."""
        import gzip

        assert self.core is not None and self.barrier_key is not None and self.seal_conf is not None
        if method == "GET" and not force:
            nonce = secrets.token_bytes(12)
            blob = AESGCM(self.barrier_key).encrypt(nonce, json.dumps(self.core).encode(), b"vault-sim-barrier")
            snap = {"format": "vault-sim-snapshot-1", "version": VERSION,
                    "seal": {k: v for k, v in self.seal_conf.items() if k != "barrier"},
                    "barrier": base64.b64encode(nonce + blob).decode()}
            return Response(200, gzip.compress(json.dumps(snap).encode()),
                            {"Content-Type": "application/octet-stream"})
        if method not in ("POST", "PUT"):
            raise _err(405, "unsupported operation")
        try:
            snap = json.loads(gzip.decompress(req.body))
            raw = base64.b64decode(snap["barrier"])
        except (OSError, ValueError, KeyError, TypeError):
            raise _err(500, "failed to restore snapshot: unexpected EOF")
        try:
            core = json.loads(AESGCM(self.barrier_key).decrypt(raw[:12], raw[12:], b"vault-sim-barrier"))
        except Exception:
            if not force:
                raise _err(400, "failed to restore snapshot: failed to decrypt keyring: cipher: message "
                                "authentication failed; this snapshot is from a different cluster "
                                "(use sys/storage/raft/snapshot-force)")
            self.seal_conf = {**snap["seal"], "barrier": snap["barrier"]}
            self._write_state_file()
            self.seal()
            return Response(204)
        self.core = core
        self._save()
        return Response(204)

    def _write_state_file(self) -> None:
        if self._state_path:
            tmp = self._state_path + ".tmp"
            with open(tmp, "w", encoding="utf-8") as fh:
                json.dump(self.seal_conf, fh)
            os.replace(tmp, self._state_path)

    def _health(self, req: Request) -> Response:
        q = req.query

        def code(name: str, default: int) -> int:
            try:
                return int(q[name]) if name in q else default
            except ValueError:
                raise _err(400, "bad code: %s" % q[name])

        if not self.initialized:
            status = code("uninitcode", 501)
        elif self.sealed:
            status = code("sealedcode", 503)
        else:
            status = code("activecode", 200)
        body = {
            "initialized": self.initialized,
            "sealed": self.sealed,
            "standby": self.sealed,
            "performance_standby": False,
            "replication_performance_mode": "disabled",
            "replication_dr_mode": "disabled",
            "server_time_utc": int(time.time()),
            "version": VERSION,
            "enterprise": False,
            "echo_duration_ms": 0,
            "clock_skew_ms": 0,
            "replication_primary_canary_age_ms": 0,
            "removed_from_cluster": False,
        }
        if self.core is not None:
            body["cluster_name"] = self.core["cluster_name"]
            body["cluster_id"] = self.core["cluster_id"]
        if req.method == "HEAD":
            return Response(status, None)
        return Response(status, body)

    def _init(self, req: Request) -> Response:
        body = req.json() or {}
        if self.initialized:
            raise _err(400, "Vault is already initialized")
        if body.get("pgp_keys") or body.get("root_token_pgp_key"):
            raise _err(400, "the simulator does not support PGP-encrypted key shares")
        shares = _as_int(body.get("secret_shares", 0), "secret_shares")
        threshold = _as_int(body.get("secret_threshold", 0), "secret_threshold")
        if shares < 1:
            raise _err(400, "invalid seal configuration: share count must be at least one")
        if threshold < 1:
            raise _err(400, "invalid seal configuration: threshold must be at least one")
        if shares > 1 and threshold == 1:
            raise _err(400, "invalid seal configuration: threshold must be greater than one for multiple shares")
        if threshold > shares:
            raise _err(400, "invalid seal configuration: threshold cannot be larger than share count")
        if shares > 255:
            raise _err(400, "invalid seal configuration: share count must be less than 256")
        parts, root = self._initialize(shares, threshold)
        # Vault stays sealed after init (unless auto-unseal): the shares open it.
        self.core = None
        self.barrier_key = None
        return Response(200, {
            "keys": [p.hex() for p in parts],
            "keys_base64": [base64.b64encode(p).decode() for p in parts],
            "root_token": root,
        })

    def take_unseal_share(self, body: dict[str, Any], threshold: int) -> bytes | None:
        """Add ``body["key"]`` to the unseal progress; return the combined key once ``threshold`` shares are in.

        Shared by a sealed node and a joining standby (ha.py). As in Vault, a share given twice is ignored,
        and shares that cannot be combined (two with the same x coordinate) are a 400 that resets progress.
        """
        key_text = body.get("key")
        if not key_text:
            raise _err(400, "'key' must be specified in request body as JSON, or 'reset' set to true")
        try:
            key = bytes.fromhex(key_text)
        except ValueError:
            try:
                key = base64.b64decode(key_text, validate=True)
            except (binascii.Error, ValueError):
                raise _err(400, "'key' must be a valid hex or base64 string")
        if key in self.unseal_progress:
            return None
        if not self.unseal_nonce:
            self.unseal_nonce = str(uuid.uuid4())
        self.unseal_progress.append(key)
        if len(self.unseal_progress) < threshold:
            return None
        parts, self.unseal_progress, self.unseal_nonce = self.unseal_progress, [], ""
        if len(parts) == 1:
            return parts[0]
        try:
            return shamir.combine(parts)
        except ValueError as exc:
            raise _err(400, "failed to compute combined key: %s" % exc)

    def _unseal(self, req: Request) -> Response:
        body = req.json() or {}
        if not self.initialized:
            raise _err(400, "Vault is not initialized")
        if body.get("reset"):
            self.unseal_progress = []
            self.unseal_nonce = ""
            return Response(200, self.seal_status())
        if not self.sealed:
            return Response(200, self.seal_status())
        assert self.seal_conf is not None
        candidate = self.take_unseal_share(body, self.seal_conf["t"])
        if candidate is None:
            return Response(200, self.seal_status())
        try:
            core = self._open_barrier(candidate)
        except Exception:
            raise _err(400, "Error: failed to decrypt keys from storage: cipher: message authentication failed")
        self.core = core
        self.barrier_key = candidate
        return Response(200, self.seal_status())

    def _sys(self, path: str, method: str, req: Request, token: dict, acl: acl_policy.ACL) -> Response:
        assert self.core is not None
        if path in ("sys/storage/raft/snapshot", "sys/storage/raft/snapshot-force"):
            return self._raft_snapshot(path.endswith("-force"), method, req)
        if path == "sys/storage/raft/configuration" and self.ha is not None:
            if method != "GET":
                raise _err(405, "unsupported operation")
            data = self.ha.raft_configuration()
            return Response(200, self._envelope(data))
        if path == "sys/seal":
            if method != "POST":
                raise _err(405, "unsupported operation")
            self.seal()
            return Response(204)
        if path in ("sys/mounts", "sys/auth"):
            if method != "GET":
                raise _err(405, "unsupported operation")
            table = self.core["mounts" if path == "sys/mounts" else "auth"]
            data = {k: self._public_mount(v) for k, v in sorted(table.items())}
            return Response(200, {**data, **self._envelope(data)})
        m = re.match(r"^sys/(mounts|auth)/(.+?)(/tune)?$", path)
        if m:
            return self._sys_mount(m.group(1), m.group(2).strip("/") + "/", bool(m.group(3)), method, req)
        if path.rstrip("/") == "sys/policies/acl" or path.rstrip("/") == "sys/policy":
            if method not in ("LIST", "GET"):
                raise _err(405, "unsupported operation")
            keys = sorted(set(self.core["policies"]) | {"root"})
            if path.startswith("sys/policy"):
                data = {"policies": keys, "keys": keys}
                return Response(200, {**data, **self._envelope(data)})
            return Response(200, {"keys": keys, **self._envelope({"keys": keys})})
        m = re.match(r"^sys/(policies/acl|policy)/(.+)$", path)
        if m:
            return self._sys_policy(m.group(1) == "policy", m.group(2), method, req)
        if path == "sys/capabilities-self" or path == "sys/capabilities":
            body = req.json() or {}
            paths = body.get("paths") or ([body["path"]] if body.get("path") else [])
            target = acl
            if path == "sys/capabilities":
                other = self._lookup_token(body.get("token"))
                if other is None:
                    raise _err(400, "invalid token")
                target = self._acl(other)
            result = {}
            for p in paths:
                caps = target.capabilities(p)
                result[p] = sorted(caps) if caps else ["deny"]
            data = dict(result)
            if len(paths) == 1:
                data["capabilities"] = result[paths[0]]
            return Response(200, {**data, **self._envelope(data)})
        raise _err(404, "no handler for route \"%s\". route entry not found." % path)

    def _envelope(self, data: Any = None, auth: Any = None, warnings: Any = None, mount_type: str = "") -> dict:
        return {
            "request_id": str(uuid.uuid4()),
            "lease_id": "",
            "renewable": False,
            "lease_duration": 0,
            "data": data,
            "wrap_info": None,
            "warnings": warnings,
            "auth": auth,
            "mount_type": mount_type,
        }

    def _ok(self, data: Any = None, auth: Any = None, mount_type: str = "") -> Response:
        return Response(200, self._envelope(data, auth, mount_type=mount_type))

    @staticmethod
    def _public_mount(entry: dict[str, Any]) -> dict[str, Any]:
        return dict(entry)

    def _sys_ui_mount(self, path: str, acl: acl_policy.ACL) -> Response:
        assert self.core is not None
        mount, _rest = self._match_mount(path.strip("/"))
        if mount is None or not acl.has_any_under(mount):
            # Vault answers a missing mount like a forbidden one, so mounts cannot be probed.
            raise _err(403, "permission denied")
        entry = self._public_mount(self.core["mounts"][mount])
        entry["path"] = mount
        return self._ok(entry)

    def _sys_mount(self, table: str, mpath: str, tune: bool, method: str, req: Request) -> Response:
        assert self.core is not None
        mounts = self.core[table]
        if tune:
            if mpath not in mounts:
                raise _err(400, "cannot fetch sysview for path \"%s\"" % mpath)
            entry = mounts[mpath]
            if method == "GET":
                data = {"default_lease_ttl": entry["config"]["default_lease_ttl"] or DEFAULT_TTL,
                        "max_lease_ttl": entry["config"]["max_lease_ttl"] or DEFAULT_TTL,
                        "force_no_cache": False, "description": entry["description"],
                        "options": entry.get("options")}
                return Response(200, {**data, **self._envelope(data)})
            body = req.json() or {}
            if "description" in body:
                entry["description"] = body["description"]
            if "options" in body and entry["type"] == "kv":
                current = (entry.get("options") or {}).get("version", "1")
                version = str((body["options"] or {}).get("version", current))
                old = (entry.get("options") or {}).get("version", "1")
                if version == "1" and old == "2":
                    raise _err(400, "cannot downgrade mount from version 2")
                if version == "2" and old != "2":
                    store = self.core["kv"].setdefault(entry["uuid"], {"secrets": {}})
                    upgraded = {}
                    for key, data in store.get("secrets", {}).items():
                        upgraded[key] = self._kv2_new_record()
                        self._kv2_add_version(upgraded[key], data, None)
                    store["secrets"] = upgraded
                    store["config"] = {"max_versions": 0, "cas_required": False, "delete_version_after": "0s"}
                entry["options"] = {"version": version}
            for k in ("default_lease_ttl", "max_lease_ttl"):
                if k in body:
                    entry["config"][k] = parse_duration(body[k], k)
            return Response(204)
        if method == "GET":
            if mpath not in mounts:
                raise _err(400, "No secret engine mount at %s" % mpath)
            data = self._public_mount(mounts[mpath])
            return Response(200, {**data, **self._envelope(data)})
        if method == "DELETE":
            entry = mounts.pop(mpath, None)
            if entry is not None:
                self.core["kv"].pop(entry["uuid"], None)
                self.core["jwt"].pop(entry["uuid"], None)
                self.core["approle"].pop(entry["uuid"], None)
            return Response(204)
        if method != "POST":
            raise _err(405, "unsupported operation")
        body = req.json() or {}
        mtype = body.get("type")
        if not mtype:
            raise _err(400, "backend type must be specified as a string")
        options = dict(body.get("options") or {})
        if table == "mounts":
            if mpath.split("/")[0] in ("sys", "cubbyhole", "identity", "auth") or mpath == "auth/":
                raise _err(400, "cannot mount under reserved path \"%s\"" % mpath)
            if mtype == "kv-v2":
                mtype, options["version"] = "kv", "2"
            allowed = {"kv", "generic", "pki", "transit", "database", "totp", "ssh"}
        else:
            if mpath == "token/":
                raise _err(400, "token credential backend cannot be mounted")
            allowed = {"jwt", "oidc", "approle"}
        if mtype not in allowed:
            raise _err(400, "plugin not found in the catalog: %s" % mtype)
        for existing in mounts:
            if existing.startswith(mpath) or mpath.startswith(existing):
                raise _err(400, "path is already in use at %s" % existing)
        if mtype == "generic":
            mtype = "kv"
        if mtype == "kv":
            options["version"] = str(options.get("version", "1"))
            if options["version"] not in ("1", "2"):
                raise _err(400, "invalid version: %s" % options["version"])
        entry = self._mount_entry(mtype, body.get("description", ""), options or None,
                                  local=bool(body.get("local")), auth=table == "auth")
        mounts[mpath] = entry
        if mtype == "kv":
            self._kv_store(mpath)
        return Response(204)

    def _sys_policy(self, legacy: bool, name: str, method: str, req: Request) -> Response:
        assert self.core is not None
        name = name.strip("/").lower()
        policies = self.core["policies"]
        if method == "GET":
            if name == "root":
                text = ""
            elif name not in policies:
                raise _err(404)
            else:
                text = policies[name]
            if legacy:
                data = {"name": name, "rules": text}
                return Response(200, {**data, **self._envelope(data)})
            return self._ok({"name": name, "policy": text})
        if method == "DELETE":
            if name in ("root", "default"):
                raise _err(400, "cannot delete \"%s\" policy" % name)
            policies.pop(name, None)
            return Response(204)
        if method != "POST":
            raise _err(405, "unsupported operation")
        body = req.json() or {}
        text = body.get("policy") if body.get("policy") is not None else body.get("rules")
        if name == "root":
            raise _err(400, "cannot update \"root\" policy")
        if text is None or (isinstance(text, str) and not text.strip()):
            raise _err(400, "'policy' parameter not supplied or empty")
        if not isinstance(text, str):
            raise _err(400, "'policy' parameter must be a string")
        stripped = text.strip()
        if stripped and not stripped.startswith(("{", "path", "#", "//", "/*")):
            try:
                decoded = base64.b64decode(stripped, validate=True).decode()
                text = decoded
            except (binascii.Error, ValueError, UnicodeDecodeError):
                pass
        try:
            acl_policy.parse(text)
        except acl_policy.PolicyError as exc:
            raise _err(400, str(exc))
        policies[name] = text
        return Response(204)

    # ---------------------------------------------------------------- tokens
    def _token_api(self, rest: str, method: str, req: Request, token: dict, acl: acl_policy.ACL) -> Response:
        assert self.core is not None
        body = req.json() or {} if method == "POST" else {}
        if rest in ("lookup-self", "lookup") and (method == "GET" or rest == "lookup-self"):
            if rest == "lookup" and method == "GET":
                raise _err(400, "missing token to lookup")
            return self._ok(self._token_view(token))
        if rest == "lookup" and method == "POST":
            target = self._lookup_token(body.get("token"))
            if target is None:
                raise _err(403, "bad token")
            return self._ok(self._token_view(target))
        if rest == "lookup-accessor" and method == "POST":
            tid = self.core["accessors"].get(body.get("accessor", ""))
            target = self._lookup_token(tid)
            if target is None:
                raise _err(400, "invalid accessor")
            view = self._token_view(target)
            view["id"] = ""
            return self._ok(view)
        if rest == "revoke-self" and method == "POST":
            self._revoke(token["id"])
            return Response(204)
        if rest in ("revoke", "revoke-orphan") and method == "POST":
            if not body.get("token"):
                raise _err(400, "missing token")
            self._revoke(body["token"], orphan_children=rest == "revoke-orphan")
            return Response(204)
        if rest == "revoke-accessor" and method == "POST":
            tid = self.core["accessors"].get(body.get("accessor", ""))
            if tid:
                self._revoke(tid)
            return Response(204)
        if rest == "renew-self" and method == "POST":
            if not token["renewable"]:
                raise _err(400, "lease is not renewable")
            inc = parse_duration(body.get("increment"), "increment") or token["creation_ttl"]
            token["expire_at"] = time.time() + inc
            return Response(200, self._envelope(auth=self._auth_block(token["id"])))
        if rest in ("create", "create-orphan") and method == "POST":
            return self._token_create(body, token, acl, orphan_endpoint=rest == "create-orphan")
        raise _err(405, "unsupported operation")

    def _token_create(self, body: dict, parent: dict, acl: acl_policy.ACL, orphan_endpoint: bool) -> Response:
        parent_root = "root" in parent["policies"]
        sudo = acl.allows("auth/token/create", "sudo")
        policies = _as_list(body.get("policies"))
        if not policies:
            policies = list(parent["policies"])
        if not parent_root and not set(p for p in policies if p != "default") <= set(parent["policies"]):
            raise _err(400, "child policies must be subset of parent")
        if "root" in policies and not parent_root:
            raise _err(400, "root tokens may not be created without parent token being root")
        if not body.get("no_default_policy") and "root" not in policies:
            policies.append("default")
        no_parent = _as_bool(body.get("no_parent", False), "no_parent") or orphan_endpoint
        if body.get("no_parent") and not (parent_root or sudo):
            raise _err(400, "root or sudo privileges required to create orphan token")
        if body.get("id") and not (parent_root or sudo):
            raise _err(400, "root or sudo privileges required to specify token id")
        ttl = parse_duration(body.get("ttl"), "ttl") or parse_duration(body.get("period"), "period")
        if not ttl:
            ttl = 0 if "root" in policies else DEFAULT_TTL
        meta = body.get("meta") or None
        display = "token" + ("-" + str(body["display_name"]) if body.get("display_name") else "")
        token = self._new_token(policies, display_name=display, ttl=ttl, orphan=no_parent,
                                parent=parent["id"], meta=meta,
                                num_uses=_as_int(body.get("num_uses", 0), "num_uses"),
                                renewable=_as_bool(body.get("renewable", True), "renewable"),
                                path="auth/token/create" + ("-orphan" if orphan_endpoint else ""),
                                token_id=body.get("id") or None,
                                explicit_max_ttl=parse_duration(body.get("explicit_max_ttl"), "explicit_max_ttl"),
                                period=parse_duration(body.get("period"), "period"))
        return Response(200, self._envelope(auth=self._auth_block(token)))

    # ---------------------------------------------------- auth methods (jwt, approle)
    def _auth_mount(self, path: str) -> tuple[dict, str]:
        assert self.core is not None
        mount, rest = self._match_mount(path[len("auth/"):], table="auth")
        if mount is None:
            raise _err(404, "no handler for route \"%s\". route entry not found." % path)
        return self.core["auth"][mount], rest

    def _auth_api(self, path: str, method: str, req: Request) -> Response:
        entry, rest = self._auth_mount(path)
        if entry["type"] == "jwt" or entry["type"] == "oidc":
            return self._jwt_api(entry, rest, method, req)
        if entry["type"] == "approle":
            return self._approle_api(entry, rest, method, req)
        raise _err(405, "unsupported path")

    def _auth_login(self, path: str, req: Request) -> Response:
        if req.method not in ("POST", "PUT"):
            raise _err(405, "unsupported operation")
        entry, _rest = self._auth_mount(path)
        body = req.json() or {}
        if entry["type"] in ("jwt", "oidc"):
            return self._jwt_login(entry, body)
        if entry["type"] == "approle":
            return self._approle_login(entry, body)
        raise _err(405, "unsupported operation")

    @staticmethod
    def _token_params(body: dict, current: dict | None = None) -> dict:
        cur = dict(current or {})
        policies = body.get("token_policies", body.get("policies"))
        if policies is not None:
            cur["token_policies"] = _as_list(policies)
        cur.setdefault("token_policies", [])
        for key in ("token_ttl", "token_max_ttl", "token_period", "token_explicit_max_ttl"):
            legacy = key.replace("token_", "")
            if key in body or legacy in body:
                cur[key] = parse_duration(body.get(key, body.get(legacy)), key)
            cur.setdefault(key, 0)
        if "token_num_uses" in body:
            cur["token_num_uses"] = _as_int(body["token_num_uses"], "token_num_uses")
        cur.setdefault("token_num_uses", 0)
        if "token_type" in body:
            if body["token_type"] not in ("default", "service", "default-service"):
                raise _err(400, "the simulator issues service tokens only; token_type %r unsupported"
                           % body["token_type"])
            cur["token_type"] = body["token_type"]
        cur.setdefault("token_type", "default")
        for key in ("token_bound_cidrs",):
            if key in body:
                cur[key] = _as_list(body[key])
            cur.setdefault(key, [])
        cur.setdefault("token_no_default_policy", False)
        if "token_no_default_policy" in body:
            cur["token_no_default_policy"] = _as_bool(body["token_no_default_policy"], "token_no_default_policy")
        return cur

    def _issue_login_token(self, role: dict, display: str, meta: dict, path: str) -> Response:
        policies = list(role["token_policies"])
        if not role.get("token_no_default_policy"):
            policies.append("default")
        ttl = role.get("token_ttl") or role.get("token_period") or DEFAULT_TTL
        token = self._new_token(policies, display_name=display, ttl=ttl, orphan=True, meta=meta,
                                num_uses=role.get("token_num_uses", 0), path=path,
                                entity_id=str(uuid.uuid5(uuid.NAMESPACE_URL, path + json.dumps(meta,
                                                                                               sort_keys=True))))
        auth = self._auth_block(token, token_policies=policies)
        return Response(200, self._envelope(auth=auth))

    # JWT -------------------------------------------------------------------
    def _jwt_api(self, entry: dict, rest: str, method: str, req: Request) -> Response:
        assert self.core is not None
        state = self.core["jwt"].setdefault(entry["uuid"], {"config": None, "roles": {}})
        body = (req.json() or {}) if method == "POST" else {}
        if rest == "config":
            if method == "GET":
                if state["config"] is None:
                    return self._ok(None)
                return self._ok(state["config"])
            if method != "POST":
                raise _err(405, "unsupported operation")
            sources = [k for k in ("jwks_url", "jwt_validation_pubkeys", "oidc_discovery_url") if body.get(k)]
            if len(sources) != 1:
                raise _err(400, "exactly one of 'jwt_validation_pubkeys', 'jwks_url' or 'oidc_discovery_url' must "
                                "be set")
            if body.get("oidc_discovery_url"):
                raise _err(400, "the simulator supports 'jwks_url' and 'jwt_validation_pubkeys' only")
            if body.get("jwks_url"):
                host = urlsplit(body["jwks_url"]).hostname or ""
                if not (host.startswith("127.") or host in ("localhost", "::1")):
                    raise _err(400, "error checking jwks URL: the simulator fetches JWKS from loopback only")
            keys = _as_list(body.get("jwt_validation_pubkeys"))
            for pem in keys:
                try:
                    from cryptography.hazmat.primitives.serialization import load_pem_public_key
                    load_pem_public_key(pem.encode())
                except Exception:
                    raise _err(400, "error parsing public key: data does not contain any valid RSA or ECDSA "
                                    "public keys")
            state["config"] = {
                "bound_issuer": body.get("bound_issuer", ""),
                "default_role": body.get("default_role", ""),
                "jwks_ca_pem": body.get("jwks_ca_pem", ""),
                "jwks_url": body.get("jwks_url", ""),
                "jwt_supported_algs": _as_list(body.get("jwt_supported_algs")),
                "jwt_validation_pubkeys": keys,
                "oidc_discovery_url": "",
                "namespace_in_state": True,
                "provider_config": {},
            }
            return Response(204)
        if rest.rstrip("/") == "role" and method == "LIST":
            if not state["roles"]:
                raise _err(404)
            return self._ok({"keys": sorted(state["roles"])})
        m = re.match(r"^role/([^/]+)$", rest)
        if not m:
            raise _err(405, "unsupported path")
        name = m.group(1).lower()
        if method == "GET":
            if name not in state["roles"]:
                raise _err(404)
            return self._ok(state["roles"][name])
        if method == "DELETE":
            state["roles"].pop(name, None)
            return Response(204)
        if method != "POST":
            raise _err(405, "unsupported operation")
        current = state["roles"].get(name, {})
        role = self._token_params(body, current)
        default_type = "oidc" if entry["type"] == "oidc" else "jwt"
        role["role_type"] = body.get("role_type", current.get("role_type", default_type))
        if role["role_type"] != "jwt":
            raise _err(400, "the simulator supports role_type \"jwt\" only")
        role["user_claim"] = body.get("user_claim", current.get("user_claim", ""))
        if not role["user_claim"]:
            raise _err(400, "a user claim must be defined on the role")
        role["user_claim_json_pointer"] = _as_bool(body.get("user_claim_json_pointer",
                                                            current.get("user_claim_json_pointer", False)),
                                                   "user_claim_json_pointer")
        role["bound_audiences"] = _as_list(body.get("bound_audiences", current.get("bound_audiences")))
        role["bound_subject"] = body.get("bound_subject", current.get("bound_subject", ""))
        role["bound_claims_type"] = body.get("bound_claims_type", current.get("bound_claims_type", "string"))
        if role["bound_claims_type"] not in ("string", "glob"):
            raise _err(400, "invalid 'bound_claims_type': %s" % role["bound_claims_type"])
        bound = body.get("bound_claims", current.get("bound_claims"))
        if bound is not None and not isinstance(bound, dict):
            raise _err(400, "error converting input for field \"bound_claims\"")
        role["bound_claims"] = bound or None
        mappings = body.get("claim_mappings", current.get("claim_mappings"))
        if mappings is not None and not isinstance(mappings, dict):
            raise _err(400, "error converting input for field \"claim_mappings\"")
        role["claim_mappings"] = mappings or None
        role["groups_claim"] = body.get("groups_claim", current.get("groups_claim", ""))
        role["clock_skew_leeway"] = parse_duration(body.get("clock_skew_leeway", current.get("clock_skew_leeway",
                                                                                             60)))
        role["expiration_leeway"] = parse_duration(body.get("expiration_leeway", current.get("expiration_leeway",
                                                                                             150)))
        role["not_before_leeway"] = parse_duration(body.get("not_before_leeway", current.get("not_before_leeway",
                                                                                             150)))
        role["verbose_oidc_logging"] = False
        role["allowed_redirect_uris"] = []
        state["roles"][name] = role
        return Response(204)

    def _jwt_keys(self, config: dict, token: str) -> list[Any]:
        import jwt as pyjwt
        from cryptography.hazmat.primitives.serialization import load_pem_public_key

        if config.get("jwt_validation_pubkeys"):
            return [load_pem_public_key(p.encode()) for p in config["jwt_validation_pubkeys"]]
        try:
            client = pyjwt.PyJWKClient(config["jwks_url"], cache_keys=False, timeout=5)
            return [client.get_signing_key_from_jwt(token).key]
        except Exception as exc:
            raise _err(400, "error validating token: error verifying token signature: %s" % exc)

    def _jwt_login(self, entry: dict, body: dict) -> Response:
        import jwt as pyjwt

        assert self.core is not None
        state = self.core["jwt"].get(entry["uuid"]) or {"config": None, "roles": {}}
        config = state["config"]
        if config is None:
            raise _err(400, "could not load configuration")
        name = (body.get("role") or config.get("default_role") or "").lower()
        if not name:
            raise _err(400, "missing role")
        role = state["roles"].get(name)
        if role is None:
            raise _err(400, "role \"%s\" could not be found" % name)
        token = body.get("jwt")
        if not token:
            raise _err(400, "missing token")
        algs = config.get("jwt_supported_algs") or ["RS256"]
        try:
            header = pyjwt.get_unverified_header(token)
        except pyjwt.PyJWTError as exc:
            raise _err(400, "error validating token: %s" % exc)
        if header.get("alg") not in algs:
            raise _err(400, "error validating token: token signed with unsupported algorithm %r"
                       % header.get("alg"))
        claims = None
        last_error: Exception | None = None
        for key in self._jwt_keys(config, token):
            try:
                claims = pyjwt.decode(token, key=key, algorithms=algs,
                                      options={"verify_aud": False, "verify_exp": False, "verify_nbf": False,
                                               "verify_iat": False})
                break
            except pyjwt.PyJWTError as exc:
                last_error = exc
        if claims is None:
            raise _err(400, "error validating token: failed to verify id token signature (%s)" % last_error)
        now = time.time()
        if "exp" in claims and now > float(claims["exp"]) + role["expiration_leeway"] + role["clock_skew_leeway"]:
            raise _err(400, "error validating token: token is expired (exp)")
        if "nbf" in claims and now < float(claims["nbf"]) - role["not_before_leeway"] - role["clock_skew_leeway"]:
            raise _err(400, "error validating token: token not valid yet (nbf)")
        if config.get("bound_issuer") and claims.get("iss") != config["bound_issuer"]:
            raise _err(400, "error validating token: invalid issuer (iss) claim")
        aud = claims.get("aud")
        auds = [aud] if isinstance(aud, str) else list(aud or [])
        if role["bound_audiences"]:
            if not set(auds) & set(role["bound_audiences"]):
                raise _err(400, "error validating token: invalid audience (aud) claim: audience claim does not "
                                "match any expected audience")
        elif auds:
            raise _err(400, "error validating token: audience claim found in JWT but no audiences bound to the "
                            "role")
        if role["bound_subject"] and claims.get("sub") != role["bound_subject"]:
            raise _err(400, "error validating token: sub claim does not match bound subject")
        for claim, allowed in (role.get("bound_claims") or {}).items():
            value = self._claim(claims, claim)
            values = value if isinstance(value, list) else [value]
            allowed_list = allowed if isinstance(allowed, list) else [allowed]
            if role["bound_claims_type"] == "glob":
                import fnmatch
                ok = any(isinstance(v, str) and fnmatch.fnmatchcase(v, str(a)) for v in values for a in allowed_list)
            else:
                ok = any(v is not None and str(v) == str(a) for v in values for a in allowed_list)
            if not ok:
                raise _err(400, "error validating claims: claim \"%s\" does not match any associated bound claim "
                                "values" % claim)
        user = (self._claim(claims, role["user_claim"]) if role.get("user_claim_json_pointer")
                else claims.get(role["user_claim"]))
        if user is None or user == "":
            raise _err(400, "claim \"%s\" not found in token" % role["user_claim"])
        meta = {"role": name}
        for claim, meta_key in (role.get("claim_mappings") or {}).items():
            value = self._claim(claims, claim)
            if value is not None:
                meta[meta_key] = value if isinstance(value, str) else json.dumps(value)
        return self._issue_login_token(role, "%s-%s" % (entry["type"], user), meta, "auth/jwt/login")

    @staticmethod
    def _claim(claims: dict, name: str) -> Any:
        if name.startswith("/"):  # JSON pointer
            value: Any = claims
            for part in name.strip("/").split("/"):
                if not isinstance(value, dict) or part not in value:
                    return None
                value = value[part]
            return value
        return claims.get(name)

    # AppRole ---------------------------------------------------------------
    def _approle_api(self, entry: dict, rest: str, method: str, req: Request) -> Response:
        assert self.core is not None
        state = self.core["approle"].setdefault(entry["uuid"], {"roles": {}})
        body = (req.json() or {}) if method == "POST" else {}
        if rest.rstrip("/") == "role" and method == "LIST":
            if not state["roles"]:
                raise _err(404)
            return self._ok({"keys": sorted(state["roles"])})
        m = re.match(r"^role/([^/]+)(?:/(role-id|secret-id|secret-id/lookup|secret-id/destroy))?/?$", rest)
        if not m:
            raise _err(405, "unsupported path")
        name, sub = m.group(1).lower(), m.group(2)
        role = state["roles"].get(name)
        if sub is None:
            if method == "GET":
                if role is None:
                    raise _err(404)
                return self._ok({k: v for k, v in role.items() if k not in ("role_id", "secret_ids")})
            if method == "DELETE":
                state["roles"].pop(name, None)
                return Response(204)
            if method != "POST":
                raise _err(405, "unsupported operation")
            new = self._token_params(body, role)
            new.setdefault("role_id", (role or {}).get("role_id") or str(uuid.uuid4()))
            new.setdefault("secret_ids", {})
            new["bind_secret_id"] = _as_bool(body.get("bind_secret_id", new.get("bind_secret_id", True)),
                                             "bind_secret_id")
            new["secret_id_ttl"] = parse_duration(body.get("secret_id_ttl", new.get("secret_id_ttl", 0)))
            new["secret_id_num_uses"] = _as_int(body.get("secret_id_num_uses", new.get("secret_id_num_uses", 0)),
                                                "secret_id_num_uses")
            new["secret_id_bound_cidrs"] = _as_list(body.get("secret_id_bound_cidrs",
                                                             new.get("secret_id_bound_cidrs")))
            new["local_secret_ids"] = False
            if not new["bind_secret_id"] and not new["secret_id_bound_cidrs"] and not new["token_bound_cidrs"]:
                raise _err(400, "at least one constraint should be enabled on the role")
            state["roles"][name] = new
            return Response(204)
        if role is None:
            raise _err(400, "role \"%s\" does not exist" % name) if method == "POST" else _err(404)
        if sub == "role-id":
            if method == "GET":
                return self._ok({"role_id": role["role_id"]})
            if not body.get("role_id"):
                raise _err(400, "missing role_id")
            role["role_id"] = body["role_id"]
            return Response(204)
        if sub == "secret-id" and method == "POST":
            secret_id = str(uuid.uuid4())
            accessor = str(uuid.uuid4())
            ttl = role["secret_id_ttl"]
            role["secret_ids"][secret_id] = {
                "accessor": accessor, "metadata": body.get("metadata") or {},
                "expire_at": time.time() + ttl if ttl else None, "num_uses": role["secret_id_num_uses"],
                "creation_time": _ts(),
            }
            return self._ok({"secret_id": secret_id, "secret_id_accessor": accessor, "secret_id_ttl": ttl,
                             "secret_id_num_uses": role["secret_id_num_uses"]})
        if sub == "secret-id/destroy" and method in ("POST", "DELETE"):
            role["secret_ids"].pop((req.json() or {}).get("secret_id", ""), None)
            return Response(204)
        raise _err(405, "unsupported operation")

    def _approle_login(self, entry: dict, body: dict) -> Response:
        assert self.core is not None
        state = self.core["approle"].get(entry["uuid"]) or {"roles": {}}
        role_id = body.get("role_id")
        if not role_id:
            raise _err(400, "missing role_id")
        found = [(n, r) for n, r in state["roles"].items() if r["role_id"] == role_id]
        if not found:
            raise _err(400, "invalid role or secret ID")
        name, role = found[0]
        if role["bind_secret_id"]:
            secret = role["secret_ids"].get(body.get("secret_id") or "")
            if secret is None or (secret["expire_at"] is not None and secret["expire_at"] < time.time()):
                raise _err(400, "invalid role or secret ID")
            if secret["num_uses"]:
                secret["num_uses"] -= 1
                if secret["num_uses"] == 0:
                    role["secret_ids"].pop(body["secret_id"], None)
        return self._issue_login_token(role, "approle", {"role_name": name}, "auth/approle/login")

    # ------------------------------------------------------------------- KV
    def _kv_store(self, mount: str) -> dict[str, Any]:
        assert self.core is not None
        entry = self.core["mounts"][mount]
        store = self.core["kv"].setdefault(entry["uuid"], {"secrets": {}})
        if (entry.get("options") or {}).get("version") == "2":
            store.setdefault("config", {"max_versions": 0, "cas_required": False, "delete_version_after": "0s"})
        return store

    def _kv1(self, mount: str, key: str, method: str, req: Request) -> Response:
        store = self._kv_store(mount)["secrets"]
        if method == "LIST":
            keys = self._list_keys(store.keys(), key)
            if not keys:
                raise _err(404)
            return self._ok({"keys": keys}, mount_type="kv")
        if not key:
            raise _err(405, "unsupported operation") if method != "GET" else _err(404)
        if method == "GET":
            if key not in store:
                raise _err(404)
            resp = self._envelope(copy.deepcopy(store[key]), mount_type="kv")
            resp["lease_duration"] = DEFAULT_TTL
            return Response(200, resp)
        if method == "DELETE":
            store.pop(key, None)
            return Response(204)
        if method == "POST":
            body = req.json()
            if not isinstance(body, dict) or not body:
                raise _err(400, "missing data fields")
            store[key] = body
            return Response(204)
        raise _err(405, "unsupported operation")

    @staticmethod
    def _list_keys(all_keys, prefix: str) -> list[str]:
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        out = set()
        for key in all_keys:
            if key.startswith(prefix):
                rest = key[len(prefix):]
                out.add(rest.split("/")[0] + "/" if "/" in rest else rest)
        return sorted(out)

    @staticmethod
    def _kv2_new_record() -> dict[str, Any]:
        now = _ts()
        return {"created_time": now, "updated_time": now, "current_version": 0, "oldest_version": 0,
                "max_versions": 0, "cas_required": False, "delete_version_after": "0s",
                "custom_metadata": None, "versions": {}}

    def _kv2_add_version(self, record: dict, data: dict, mount_config: dict | None) -> dict:
        version = record["current_version"] + 1
        now = _ts()
        record["versions"][str(version)] = {"created_time": now, "deletion_time": "", "destroyed": False,
                                            "data": data}
        record["current_version"] = version
        record["updated_time"] = now
        if record["oldest_version"] == 0:
            record["oldest_version"] = 1
        limit = record["max_versions"] or (mount_config or {}).get("max_versions") or 10
        while len(record["versions"]) > limit:
            oldest = min(int(v) for v in record["versions"])
            record["versions"].pop(str(oldest))
        record["oldest_version"] = min(int(v) for v in record["versions"])
        return self._kv2_version_meta(record, version)

    @staticmethod
    def _kv2_version_meta(record: dict, version: int) -> dict:
        v = record["versions"][str(version)]
        return {"created_time": v["created_time"], "custom_metadata": record["custom_metadata"],
                "deletion_time": v["deletion_time"], "destroyed": v["destroyed"], "version": version}

    def _kv2(self, mount: str, rest: str, method: str, req: Request) -> Response:
        store = self._kv_store(mount)
        secrets_ = store["secrets"]
        config = store["config"]
        if rest == "config":
            if method == "GET":
                return self._ok(dict(config), mount_type="kv")
            if method != "POST":
                raise _err(405, "unsupported operation")
            body = req.json() or {}
            if "max_versions" in body:
                config["max_versions"] = _as_int(body["max_versions"], "max_versions")
            if "cas_required" in body:
                config["cas_required"] = _as_bool(body["cas_required"], "cas_required")
            if "delete_version_after" in body:
                config["delete_version_after"] = "%ds" % parse_duration(body["delete_version_after"])
            return Response(204)
        m = re.match(r"^(data|metadata|delete|undelete|destroy|subkeys)(?:/(.*))?$", rest)
        if not m:
            raise _err(404, "Invalid path for a versioned K/V secrets engine. See the API docs for the "
                            "appropriate API endpoints to use. If using the Vault CLI, use 'vault kv get' for "
                            "this operation.")
        kind, key = m.group(1), m.group(2) or ""
        if kind == "metadata" and method == "LIST":
            keys = self._list_keys(secrets_.keys(), key)
            if not keys:
                raise _err(404)
            return self._ok({"keys": keys}, mount_type="kv")
        if not key:
            raise _err(404)
        record = secrets_.get(key)
        if kind == "data":
            return self._kv2_data(secrets_, key, record, config, method, req)
        if kind == "metadata":
            return self._kv2_metadata(secrets_, key, record, config, method, req)
        if kind == "subkeys":
            raise _err(405, "unsupported operation")
        if method != "POST":
            raise _err(405, "unsupported operation")
        body = req.json() or {}
        versions = body.get("versions")
        if not versions:
            raise _err(400, "no version number provided")
        try:
            numbers = [int(v) for v in versions]
        except (TypeError, ValueError):
            raise _err(400, 'error converting input %r for field "versions"' % (versions,))
        if record is None:
            return Response(204)
        for number in numbers:
            version = record["versions"].get(str(number))
            if version is None or version["destroyed"]:
                continue
            if kind == "delete" and not version["deletion_time"]:
                version["deletion_time"] = _ts()
            elif kind == "undelete":
                version["deletion_time"] = ""
            elif kind == "destroy":
                version["destroyed"] = True
                version["data"] = None
        return Response(204)

    def _kv2_data(self, secrets_: dict, key: str, record: dict | None, config: dict, method: str,
                  req: Request) -> Response:
        if method == "GET":
            if record is None or not record["versions"]:
                raise _err(404)
            number = _as_int(req.query.get("version", 0) or 0, "version") or record["current_version"]
            version = record["versions"].get(str(number))
            if version is None:
                raise _err(404)
            meta = self._kv2_version_meta(record, number)
            if version["deletion_time"] or version["destroyed"]:
                # Vault answers 404 with the version's metadata and null data.
                return Response(404, self._envelope({"data": None, "metadata": meta}, mount_type="kv"))
            return self._ok({"data": copy.deepcopy(version["data"]), "metadata": meta}, mount_type="kv")
        if method == "DELETE":
            if record is not None and record["current_version"]:
                version = record["versions"].get(str(record["current_version"]))
                if version and not version["deletion_time"] and not version["destroyed"]:
                    version["deletion_time"] = _ts()
            return Response(204)
        if method not in ("POST", "PATCH"):
            raise _err(405, "unsupported operation")
        body = req.json()
        if not isinstance(body, dict):
            raise _err(400, "no data provided")
        data = body.get("data")
        if data is None:
            raise _err(400, "no data provided")
        if not isinstance(data, dict):
            raise _err(400, "data must be a map")
        options = body.get("options") or {}
        cas = options.get("cas")
        cas_required = config["cas_required"] or (record or {}).get("cas_required", False)
        if method == "PATCH":
            ctype = (req.header("content-type") or "").split(";")[0].strip()
            if ctype != "application/merge-patch+json":
                raise _err(415, "Unsupported Media Type")
            if record is None or not record["versions"]:
                raise _err(404)
            current = record["versions"].get(str(record["current_version"]))
            if current is None or current["deletion_time"] or current["destroyed"]:
                raise _err(404)
            merged = copy.deepcopy(current["data"])
            self._merge_patch(merged, data)
            data = merged
        if cas is None and cas_required:
            raise _err(400, "check-and-set parameter required for this call")
        if cas is not None:
            cas = _as_int(cas, "cas")
            current_version = record["current_version"] if record else 0
            if cas != current_version:
                raise _err(400, "check-and-set parameter did not match the current version")
        if record is None:
            record = secrets_[key] = self._kv2_new_record()
        meta = self._kv2_add_version(record, data, config)
        return self._ok(meta, mount_type="kv")

    @classmethod
    def _merge_patch(cls, target: dict, patch: dict) -> None:
        for k, v in patch.items():
            if v is None:
                target.pop(k, None)
            elif isinstance(v, dict) and isinstance(target.get(k), dict):
                cls._merge_patch(target[k], v)
            else:
                target[k] = copy.deepcopy(v)

    def _kv2_metadata(self, secrets_: dict, key: str, record: dict | None, config: dict, method: str,
                      req: Request) -> Response:
        if method == "GET":
            if record is None:
                raise _err(404)
            versions = {n: {"created_time": v["created_time"], "deletion_time": v["deletion_time"],
                            "destroyed": v["destroyed"]} for n, v in record["versions"].items()}
            data = {k: record[k] for k in ("cas_required", "created_time", "current_version", "custom_metadata",
                                           "delete_version_after", "max_versions", "oldest_version",
                                           "updated_time")}
            data["versions"] = versions
            return self._ok(data, mount_type="kv")
        if method == "DELETE":
            secrets_.pop(key, None)
            return Response(204)
        if method not in ("POST", "PATCH"):
            raise _err(405, "unsupported operation")
        body = req.json() or {}
        if method == "PATCH":
            ctype = (req.header("content-type") or "").split(";")[0].strip()
            if ctype != "application/merge-patch+json":
                raise _err(415, "Unsupported Media Type")
            if record is None:
                raise _err(404)
        if record is None:
            record = secrets_[key] = self._kv2_new_record()
        if "max_versions" in body:
            record["max_versions"] = _as_int(body["max_versions"], "max_versions")
        if "cas_required" in body:
            record["cas_required"] = _as_bool(body["cas_required"], "cas_required")
        if "delete_version_after" in body:
            record["delete_version_after"] = "%ds" % parse_duration(body["delete_version_after"],
                                                                    "delete_version_after")
        if "custom_metadata" in body:
            custom = body["custom_metadata"]
            if custom is not None and not isinstance(custom, dict):
                raise _err(400, "error converting input for field \"custom_metadata\"")
            if custom:
                if len(custom) > 64:
                    raise _err(400, "1 error occurred:\n\t* custom_metadata can only have up to 64 keys\n\n")
                for k, v in custom.items():
                    if not isinstance(v, str):
                        raise _err(400, "error converting input for field \"custom_metadata\"")
                    if len(k) > 128 or len(v) > 512:
                        raise _err(400, "1 error occurred:\n\t* length of key \"%s\" is greater than 128 or value "
                                        "greater than 512\n\n" % k)
            if method == "PATCH":
                merged = dict(record["custom_metadata"] or {})
                for k, v in (custom or {}).items():
                    if v is None:
                        merged.pop(k, None)
                    else:
                        merged[k] = v
                custom = merged
            record["custom_metadata"] = custom or None
        record["updated_time"] = _ts()
        if record["max_versions"]:
            while len(record["versions"]) > record["max_versions"]:
                record["versions"].pop(str(min(int(v) for v in record["versions"])))
            if record["versions"]:
                record["oldest_version"] = min(int(v) for v in record["versions"])
        return Response(204)
