"""High availability for the Vault simulator: raft ``retry_join``, standbys and request forwarding.

No consensus and no leader election: the node that was initialised (it holds the
data, ``vault-sim.json``) is the **active** node, for good. A node started with
``retry_join`` blocks and no data of its own is a **joiner**: it asks the
``leader_api_addr`` of each block for a join challenge; once one answers (an
initialised, unsealed node) it reports ``initialized: true`` (as Vault does once
its raft join has a challenge), and unsealing it with the leader's key shares
decrypts the challenge (the shares never leave the node), answers it and makes
the node a **standby**, member of the leader's raft configuration. Membership is
kept in the data dir (``raft-member.json``): after a restart the node is sealed
again and the shares are checked against the leader's challenge again.

A standby answers ``sys/health``, ``sys/seal-status``, ``sys/init``,
``sys/unseal``, ``sys/leader`` and ``sys/seal`` itself and forwards every other
request to the active node's ``api_addr``, relaying its answer. With the active
node down or sealed it answers Vault's
``500 {"errors": ["local node not active but active cluster node not found"]}``.

The join challenge is simulator-internal (``POST /v1/sys/sim/raft/challenge``
and ``/v1/sys/sim/raft/answer`` on the leader), standing in for Vault's
``sys/storage/raft/bootstrap/challenge``/``answer`` exchange.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import secrets
import ssl
import threading
import time
import uuid
from typing import Any
from urllib.parse import urlencode, urlsplit

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ..base import HTTPError, Request, Response

MEMBER_FILE = "raft-member.json"
NODE_ID_FILE = "node-id"
NO_ACTIVE = "local node not active but active cluster node not found"
_AAD = b"vault-sim-raft-challenge"
# Hop-by-hop and transport headers that are not forwarded (http.client sets its own).
_NOT_FORWARDED = {"host", "content-length", "connection", "transfer-encoding", "keep-alive", "accept-encoding",
                  "te", "upgrade", "proxy-connection"}
_LOCAL = {"sys/health", "sys/seal-status", "sys/init", "sys/unseal", "sys/leader", "sys/seal"}


def _err(status: int, *messages: str) -> HTTPError:
    return HTTPError(status, {"errors": list(messages)})


def encrypt_challenge(key: bytes, payload: dict[str, Any]) -> str:
    nonce = os.urandom(12)
    return base64.b64encode(nonce + AESGCM(key).encrypt(nonce, json.dumps(payload).encode(), _AAD)).decode()


def decrypt_challenge(key: bytes, blob: str) -> dict[str, Any]:
    raw = base64.b64decode(blob)
    return json.loads(AESGCM(key).decrypt(raw[:12], raw[12:], _AAD))


class Leader:
    """A retry_join target: its API address and the TLS context to reach it."""

    def __init__(self, block: dict[str, Any]):
        self.api_addr = block["leader_api_addr"].rstrip("/")
        split = urlsplit(self.api_addr)
        self.https = split.scheme == "https"
        self.host = split.hostname or "127.0.0.1"
        self.port = split.port or (443 if self.https else 80)
        self.context: ssl.SSLContext | None = None
        self.fallback: ssl.SSLContext | None = None
        if self.https:
            # Vault trusts leader_ca_cert_file (else the system trust store). The simulator falls
            # back to the system trust store when that file cannot verify the leader (see README).
            self.fallback = ssl.create_default_context()
            ca = block.get("leader_ca_cert_file")
            if ca and os.path.exists(ca):
                self.context = ssl.create_default_context(cafile=ca)
            else:
                self.context = self.fallback
            cert, key = block.get("leader_client_cert_file"), block.get("leader_client_key_file")
            if cert and key and os.path.exists(cert) and os.path.exists(key):
                for ctx in {id(self.context): self.context, id(self.fallback): self.fallback}.values():
                    ctx.load_cert_chain(cert, key)

    def _connect(self, context: ssl.SSLContext | None, timeout: float) -> http.client.HTTPConnection:
        if not self.https:
            return http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        return http.client.HTTPSConnection(self.host, self.port, timeout=timeout, context=context)

    def request(self, method: str, target: str, body: bytes = b"", headers: dict[str, str] | None = None,
                timeout: float = 10.0) -> tuple[int, bytes, dict[str, str]]:
        """One HTTP exchange; raises OSError when the leader cannot be reached."""
        contexts = [self.context]
        if self.https and self.context is not self.fallback:
            contexts.append(self.fallback)  # the system trust store, when leader_ca_cert_file cannot verify
        last: Exception | None = None
        for context in contexts:
            conn = self._connect(context, timeout)
            try:
                conn.request(method, target, body=body or None, headers=headers or {})
                resp = conn.getresponse()
                data = resp.read()
                return resp.status, data, {k.lower(): v for k, v in resp.getheaders()}
            except ssl.SSLCertVerificationError as exc:
                last = exc
                continue
            finally:
                conn.close()
        assert last is not None
        raise last

    def call(self, path: str, payload: dict[str, Any], timeout: float = 5.0) -> tuple[int, Any]:
        status, data, _headers = self.request("POST", "/v1/" + path, json.dumps(payload).encode(),
                                              {"Content-Type": "application/json"}, timeout)
        try:
            return status, json.loads(data or b"null")
        except ValueError:
            return status, None


class HANode:
    """The raft/HA side of one simulated node (storage "raft" started from a config file)."""

    def __init__(self, app: Any, data_dir: str, node_id: str | None, api_addr: str | None, cluster_addr: str | None,
                 retry_join: list[dict[str, Any]] | None = None):
        self.app = app
        self.data_dir = data_dir
        self.api_addr = (api_addr or "").rstrip("/")
        self.cluster_addr = cluster_addr or ""
        self.node_id = node_id or self._stored_node_id()
        self.leaders = [Leader(block) for block in (retry_join or [])]
        self.lock = threading.RLock()
        self.member: dict[str, Any] | None = self._read_member()  # persisted raft membership (standby)
        self.pending: dict[str, Any] | None = None  # a challenge fetched from a leader, not yet answered
        self.unsealed = False  # a standby: unsealed with the leader's shares
        self.challenges: dict[str, str] = {}  # on the active: node_id -> expected answer
        self.active_since = ""

    # ------------------------------------------------------------ persistence
    def _stored_node_id(self) -> str:
        path = os.path.join(self.data_dir, NODE_ID_FILE)
        if os.path.exists(path):
            with open(path, encoding="utf-8") as fh:
                return fh.read().strip()
        node_id = str(uuid.uuid4())
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(node_id)
        return node_id

    def _read_member(self) -> dict[str, Any] | None:
        path = os.path.join(self.data_dir, MEMBER_FILE)
        if os.path.exists(path):
            with open(path, encoding="utf-8") as fh:
                return json.load(fh)
        return None

    def _write_member(self) -> None:
        path = os.path.join(self.data_dir, MEMBER_FILE)
        with open(path + ".tmp", "w", encoding="utf-8") as fh:
            json.dump(self.member, fh)
        os.replace(path + ".tmp", path)

    # ------------------------------------------------------------------ roles
    @property
    def ha_enabled(self) -> bool:
        return bool(self.leaders) or self.member is not None

    @property
    def remote(self) -> bool:
        """True when this node serves through another: a joiner or a standby (no data of its own)."""
        return self.app.seal_conf is None and (bool(self.leaders) or self.member is not None)

    def _leader_for(self, api_addr: str) -> Leader:
        for leader in self.leaders:
            if leader.api_addr == api_addr.rstrip("/"):
                return leader
        return Leader({"leader_api_addr": api_addr})

    def _probe(self) -> None:
        """A joiner asks its retry_join leaders for a challenge (as Vault's retry_join loop does)."""
        if self.member is not None or self.pending is not None:
            return
        for leader in self.leaders:
            try:
                status, body = leader.call("sys/sim/raft/challenge", {"node_id": self.node_id}, timeout=3.0)
            except (OSError, ssl.SSLError):
                continue
            if status == 200 and isinstance(body, dict) and body.get("challenge"):
                self.pending = {"leader_api_addr": leader.api_addr, "challenge": body["challenge"],
                                "t": body["t"], "n": body["n"]}
                return

    # ----------------------------------------------------- the active's side
    def serve_leader(self, path: str, req: Request) -> Response:
        """``sys/sim/raft/challenge`` and ``answer`` on a node that holds the data (app lock held)."""
        app = self.app
        if req.method not in ("POST", "PUT"):
            raise _err(405, "unsupported operation")
        if app.seal_conf is None:
            raise _err(503, "Vault is not initialized")
        if app.sealed:
            raise _err(503, "Vault is sealed")
        body = req.json() or {}
        node_id = str(body.get("node_id") or "")
        if not node_id:
            raise _err(400, "node_id is required")
        if path.endswith("/challenge"):
            answer = secrets.token_hex(16)
            self.challenges[node_id] = answer
            blob = encrypt_challenge(app.barrier_key, {
                "answer": answer, "cluster_id": app.core["cluster_id"], "cluster_name": app.core["cluster_name"]})
            return Response(200, {"challenge": blob, "t": app.seal_conf["t"], "n": app.seal_conf["n"],
                                  "leader_node_id": self.node_id})
        if path.endswith("/answer"):
            expected = self.challenges.pop(node_id, None)
            if expected is None or not secrets.compare_digest(expected, str(body.get("answer") or "")):
                raise _err(400, "invalid answer given")
            peers = app.core.setdefault("raft_peers", {})
            peers[node_id] = {"node_id": node_id, "address": str(body.get("cluster_addr") or ""),
                              "api_addr": str(body.get("api_addr") or "")}
            app._save()
            return Response(200, {"cluster_id": app.core["cluster_id"], "cluster_name": app.core["cluster_name"]})
        raise _err(404, "")

    def raft_configuration(self) -> dict[str, Any]:
        def address(addr: str) -> str:
            split = urlsplit(addr)
            return split.netloc or addr

        servers = [{"node_id": self.node_id, "address": address(self.cluster_addr), "leader": True,
                    "protocol_version": "3", "voter": True}]
        for peer in sorted(self.app.core.get("raft_peers", {}).values(), key=lambda p: p["node_id"]):
            if peer["node_id"] != self.node_id:
                servers.append({"node_id": peer["node_id"], "address": address(peer["address"]), "leader": False,
                                "protocol_version": "3", "voter": True})
        return {"config": {"index": len(servers), "servers": servers}}

    def leader_status_active(self) -> dict[str, Any]:
        if not self.active_since:
            self.active_since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        return {"ha_enabled": True, "is_self": True, "active_time": self.active_since,
                "leader_address": self.api_addr, "leader_cluster_address": self.cluster_addr,
                "performance_standby": False, "performance_standby_last_remote_wal": 0,
                "raft_committed_index": 0, "raft_applied_index": 0}

    # ------------------------------------------------ joiner / standby side
    def handle(self, req: Request, path: str, method: str) -> Response | None:
        """Answer a request on a joiner or standby; None means "serve it locally as usual"."""
        bare = path.rstrip("/")
        if bare in _LOCAL:
            with self.lock:
                self._probe()
                return self._local(bare, method, req)
        if self.member is not None and self.unsealed:
            return self.forward(req)
        return None  # sealed / not joined: the app answers "Vault is sealed"

    def _seal_view(self) -> dict[str, Any]:
        info = self.member or self.pending or {}
        return {"initialized": bool(info), "sealed": not self.unsealed, "t": info.get("t", 0),
                "n": info.get("n", 0), "cluster_name": info.get("cluster_name"), "cluster_id": info.get("cluster_id")}

    def seal_status(self) -> dict[str, Any]:
        app = self.app
        view = self._seal_view()
        out = {"type": "shamir", "initialized": view["initialized"], "sealed": view["sealed"], "t": view["t"],
               "n": view["n"], "progress": len(app.unseal_progress), "nonce": app.unseal_nonce,
               "version": app.version, "build_date": app.build_date, "migration": False, "recovery_seal": False,
               "storage_type": "raft"}
        if self.unsealed and self.member:
            out["cluster_name"] = self.member.get("cluster_name")
            out["cluster_id"] = self.member.get("cluster_id")
        return out

    def _local(self, path: str, method: str, req: Request) -> Response | None:
        if path == "sys/seal-status":
            if method != "GET":
                raise _err(405, "unsupported operation")
            return Response(200, self.seal_status())
        if path == "sys/init":
            if method == "GET":
                return Response(200, {"initialized": self._seal_view()["initialized"]})
            if self._seal_view()["initialized"]:
                raise _err(400, "Vault is already initialized")
            return None  # an unjoined node may still be initialised (it then bootstraps the cluster)
        if path == "sys/health":
            if method not in ("GET", "HEAD"):
                raise _err(405, "unsupported operation")
            return self._health(req)
        if path == "sys/unseal":
            if method != "POST":
                raise _err(405, "unsupported operation")
            return self._unseal(req)
        if path == "sys/leader":
            if not self.unsealed:
                raise _err(503, "Vault is sealed")
            leader = self.member["leader_api_addr"] if self.member else ""
            active = self._active_reachable()
            return Response(200, {"ha_enabled": True, "is_self": False, "active_time": "0001-01-01T00:00:00Z",
                                  "leader_address": active.get("leader_address", "") if active else "",
                                  "leader_cluster_address": active.get("leader_cluster_address", "")
                                  if active else "", "performance_standby": False,
                                  "performance_standby_last_remote_wal": 0, "raft_committed_index": 0,
                                  "raft_applied_index": 0} if leader else {})
        if path == "sys/seal":
            return self._seal(req)
        raise _err(404, "")

    def _active_reachable(self) -> dict[str, Any] | None:
        """The active node's own sys/leader answer, or None when it is down or not active."""
        if not self.member:
            return None
        try:
            status, data, _headers = self._leader_for(self.member["leader_api_addr"]).request(
                "GET", "/v1/sys/leader", timeout=3.0)
        except (OSError, ssl.SSLError):
            return None
        try:
            body = json.loads(data or b"null")
        except ValueError:
            return None
        return body if status == 200 and isinstance(body, dict) and body.get("is_self") else None

    def _health(self, req: Request) -> Response:
        app = self.app
        q = req.query

        def code(name: str, default: int) -> int:
            try:
                return int(q[name]) if name in q else default
            except ValueError:
                raise _err(400, "bad code: %s" % q[name])

        view = self._seal_view()
        if not view["initialized"]:
            status = code("uninitcode", 501)
        elif view["sealed"]:
            status = code("sealedcode", 503)
        elif q.get("standbyok", "").lower() == "true":
            status = code("activecode", 200)
        else:
            status = code("standbycode", 429)
        body = {"initialized": view["initialized"], "sealed": view["sealed"], "standby": True,
                "performance_standby": False, "replication_performance_mode": "disabled",
                "replication_dr_mode": "disabled", "server_time_utc": int(time.time()), "version": app.version,
                "enterprise": False, "echo_duration_ms": 0, "clock_skew_ms": 0,
                "replication_primary_canary_age_ms": 0, "removed_from_cluster": False}
        if self.unsealed and self.member:
            body["cluster_name"] = self.member.get("cluster_name")
            body["cluster_id"] = self.member.get("cluster_id")
            body["ha_connection_healthy"] = self._active_reachable() is not None
            body["last_request_forwarding_heartbeat_ms"] = 0
        if req.method == "HEAD":
            return Response(status, None)
        return Response(status, body)

    def _unseal(self, req: Request) -> Response:
        app = self.app
        body = req.json() or {}
        info = self.member or self.pending
        if not info:
            raise _err(400, "Vault is not initialized")
        if body.get("reset"):
            app.unseal_progress, app.unseal_nonce = [], ""
            return Response(200, self.seal_status())
        if self.unsealed:
            return Response(200, self.seal_status())
        candidate = app.take_unseal_share(body, int(info["t"]))
        if candidate is None:
            return Response(200, self.seal_status())
        self._join(candidate)
        return Response(200, self.seal_status())

    def _join(self, key: bytes) -> None:
        """Check the combined key against the leader's challenge and answer it (the join / re-join)."""
        wrong = _err(400, "Error: failed to decrypt keys from storage: cipher: message authentication failed")
        info = self.member or self.pending
        assert info is not None
        leader = self._leader_for(info["leader_api_addr"])
        challenge = None
        try:
            status, body = leader.call("sys/sim/raft/challenge", {"node_id": self.node_id})
            if status == 200 and isinstance(body, dict):
                challenge = body
        except (OSError, ssl.SSLError):
            pass
        if challenge is None:
            if self.member is None:  # a first join needs the leader
                raise _err(500, "failed to join raft cluster: error during raft bootstrap init call: leader "
                                "%s unreachable" % leader.api_addr)
            try:  # a member checks the keys against its own copy while the leader is away
                decrypt_challenge(key, self.member["challenge"])
            except Exception:
                raise wrong
            self.unsealed = True
            return
        try:
            plain = decrypt_challenge(key, challenge["challenge"])
        except Exception:
            raise wrong
        try:
            status, answer = leader.call("sys/sim/raft/answer", {
                "node_id": self.node_id, "answer": plain["answer"], "cluster_addr": self.cluster_addr,
                "api_addr": self.api_addr})
        except (OSError, ssl.SSLError) as exc:
            raise _err(500, "failed to join raft cluster: %s" % exc)
        if status != 200:
            errors = answer.get("errors") if isinstance(answer, dict) else None
            raise _err(500, "failed to join raft cluster: %s" % "; ".join(errors or [str(status)]))
        self.member = {"node_id": self.node_id, "leader_api_addr": leader.api_addr, "t": challenge["t"],
                       "n": challenge["n"], "cluster_id": plain["cluster_id"], "cluster_name": plain["cluster_name"],
                       "challenge": challenge["challenge"]}
        self._write_member()
        self.pending = None
        self.unsealed = True

    def _seal(self, req: Request) -> Response:
        """``sys/seal`` on a standby seals the standby: the token is checked by the active node."""
        if req.method not in ("POST", "PUT"):
            raise _err(405, "unsupported operation")
        if not self.unsealed:
            raise _err(503, "Vault is sealed")
        probe = Request("POST", "/v1/sys/capabilities-self", {}, dict(req.headers),
                        json.dumps({"paths": ["sys/seal"]}).encode())
        resp = self.forward(probe)
        if resp.status != 200:
            return resp
        caps = json.loads(resp.body).get("capabilities") or []
        if "root" not in caps and not ({"sudo", "update"} <= set(caps)):
            raise _err(403, "1 error occurred:\n\t* permission denied\n\n")
        self.unsealed = False
        return Response(204)

    def forward(self, req: Request) -> Response:
        """Vault's request forwarding: the request as it came, to the active node; its answer relayed."""
        assert self.member is not None
        leader = self._leader_for(self.member["leader_api_addr"])
        target = req.path + ("?" + urlencode(req.query) if req.query else "")
        headers = {k: v for k, v in req.headers.items() if k.lower() not in _NOT_FORWARDED}
        try:
            status, data, resp_headers = leader.request(req.method, target, req.body, headers)
        except (OSError, ssl.SSLError):
            raise _err(500, NO_ACTIVE)
        if status == 503 and b"Vault is sealed" in data:
            raise _err(500, NO_ACTIVE)
        out = {"Content-Type": resp_headers.get("content-type", "application/octet-stream")}
        return Response(status, data, out)
