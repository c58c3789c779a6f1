"""The Vault server's configuration file, read and checked like ``vault server -config``.

Vault 1.18 refuses a file it cannot parse, a value of the wrong type, a missing
or unknown storage type and a listener it cannot start (missing TLS files); it
only *warns* about keys it does not know (``WARNING: unknown or unsupported
field ...``) and starts anyway. The simulator does the same. Storage types
other than ``file``, ``raft`` and ``inmem`` are real Vault settings the
simulator cannot serve: they are refused with a message that says so.
"""

from __future__ import annotations

import os
import ssl
from dataclasses import dataclass, field

from ..agentconfig import Block, ConfigError, load

S, INT, B, L, D = "str", "int", "bool", "list", "duration"
FREE = Block(free=True)
_LISTENER = Block({
    "address": S, "cluster_address": S, "tls_disable": B, "tls_cert_file": S, "tls_key_file": S,
    "tls_client_ca_file": S, "tls_min_version": S, "tls_max_version": S, "tls_cipher_suites": S,
    "tls_require_and_verify_client_cert": B, "tls_disable_client_certs": B, "tls_prefer_server_cipher_suites": B,
    "http_idle_timeout": D, "http_read_header_timeout": D, "http_read_timeout": D, "http_write_timeout": D,
    "max_request_size": INT, "max_request_duration": D, "proxy_protocol_behavior": S,
    "proxy_protocol_authorized_addrs": L, "x_forwarded_for_authorized_addrs": L,
    "x_forwarded_for_hop_skips": INT, "x_forwarded_for_reject_not_authorized": B,
    "x_forwarded_for_reject_not_present": B, "unauthenticated_metrics_access": B, "telemetry": FREE,
    "profiling": FREE, "inflight_requests_logging": FREE, "custom_response_headers": FREE,
    "redact_addresses": B, "redact_cluster_name": B, "redact_version": B, "disable_replication_status_endpoints": B,
    "chroot_namespace": S, "disable_request_limiter": B,
}, labels=1)
# Storage backends take backend-specific keys: checked per type below.
_STORAGE = Block(free=True, labels=1)

SCHEMA = {
    "storage": _STORAGE, "backend": _STORAGE, "ha_storage": _STORAGE, "ha_backend": _STORAGE,
    "listener": _LISTENER, "seal": Block(free=True, labels=1), "service_registration": Block(free=True, labels=1),
    "telemetry": FREE, "user_lockout": Block(free=True, labels=1), "entropy": Block(free=True, labels=1),
    "api_addr": S, "cluster_addr": S, "cluster_name": S, "ui": B, "disable_mlock": B, "disable_cache": B,
    "cache_size": INT, "disable_clustering": B, "disable_performance_standby": B, "disable_sealwrap": B,
    "disable_printable_check": B, "default_lease_ttl": D, "max_lease_ttl": D, "default_max_request_duration": D,
    "plugin_directory": S, "plugin_file_uid": INT, "plugin_file_permissions": S, "plugin_tmpdir": S,
    "log_level": S, "log_format": S, "log_file": S, "log_rotate_bytes": INT, "log_rotate_duration": D,
    "log_rotate_max_files": INT, "log_requests_level": S, "pid_file": S, "raw_storage_endpoint": B,
    "introspection_endpoint": B, "enable_response_header_hostname": B, "enable_response_header_raft_node_id": B,
    "detect_deadlocks": S, "license_path": S, "administrative_namespace_path": S,
    "imprecise_lease_role_tracking": B, "enable_post_unseal_trace": B, "post_unseal_trace_directory": S,
    "experiments": L, "disable_unauthed_rekey_endpoints": B, "enable_multiseal": B,
}
_STORAGE_KEYS = {
    "file": {"path"},
    "raft": {"path", "node_id", "performance_multiplier", "trailing_logs", "snapshot_threshold",
             "snapshot_interval", "max_entry_size", "autopilot_reconcile_interval", "autopilot_update_interval",
             "retry_join", "autopilot_redundancy_zone", "max_mount_and_namespace_table_entry_size"},
    "inmem": set(),
}
_REAL_STORAGE = {"consul", "etcd", "postgresql", "mysql", "s3", "gcs", "azure", "dynamodb", "zookeeper",
                 "cassandra", "cockroachdb", "couchdb", "spanner", "swift", "mssql", "oci", "manta", "alicloudoss"}


@dataclass
class ServerConfig:
    storage_type: str
    data_dir: str | None
    address: str
    ssl_context: ssl.SSLContext | None
    api_addr: str | None
    warnings: list[str]
    # raft only: the node's id (None: generated and kept in the data dir, as Vault does), the
    # cluster address and the retry_join blocks ({"leader_api_addr", "leader_ca_cert_file", ...}).
    node_id: str | None = None
    cluster_addr: str | None = None
    retry_join: list[dict] = field(default_factory=list)


def read(path: str) -> ServerConfig:
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except OSError as exc:
        raise ConfigError("Error loading configuration from %s: %s" % (path, exc)) from exc
    try:
        tree, problems = load(text, path, SCHEMA)
    except ConfigError as exc:
        raise ConfigError("Error loading configuration from %s: %s" % (path, exc)) from exc
    errors = [p for p in problems if not p.startswith("unexpected key ")]
    warnings = ["WARNING: unknown or unsupported field %s found in configuration at %s" % (
        p[len("unexpected key "):], path) for p in problems if p.startswith("unexpected key ")]
    if errors:
        raise ConfigError("Error loading configuration from %s: %s" % (path, "; ".join(errors)))
    storages = (tree.get("storage") or []) + (tree.get("backend") or [])
    if not storages:
        raise ConfigError("A storage backend must be specified")
    if len(storages) > 1:
        raise ConfigError("Error loading configuration from %s: only one 'storage' block is permitted" % path)
    storage = storages[0]
    kind = storage.pop("__label__")
    if kind in _REAL_STORAGE:
        raise ConfigError('Storage type "%s" is a real Vault backend the simulator does not serve '
                          '(use "raft" or "file")' % kind)
    if kind not in _STORAGE_KEYS:
        raise ConfigError("Unknown storage type %s" % kind)
    for key in storage:
        if key not in _STORAGE_KEYS[kind]:
            warnings.append("WARNING: unknown or unsupported field %s found in configuration at %s" % (key, path))
    data_dir = storage.get("path")
    if kind in ("file", "raft") and not data_dir:
        raise ConfigError("Error initializing storage of type %s: 'path' must be set" % kind)
    if kind == "raft" and not tree.get("cluster_addr"):
        raise ConfigError("Cluster address must be set when using raft storage")
    retry_join = _retry_join(storage.get("retry_join") or [], path, warnings) if kind == "raft" else []
    listeners = tree.get("listener") or []
    if not listeners:
        raise ConfigError("Error loading configuration from %s: at least one listener is required" % path)
    listener = listeners[0]
    if listener["__label__"] != "tcp":
        raise ConfigError("Error initializing listener of type %s: unknown listener type: \"%s\"" % (
            listener["__label__"], listener["__label__"]))
    context = None
    if not listener.get("tls_disable", False):
        for key in ("tls_cert_file", "tls_key_file"):
            if not listener.get(key):
                raise ConfigError("Error initializing listener of type tcp: 'tls_cert_file' and 'tls_key_file' "
                                  "must be set when TLS is enabled (tls_disable is false)")
            if not os.path.exists(listener[key]):
                raise ConfigError("Error initializing listener of type tcp: error loading TLS cert: open %s: "
                                  "no such file or directory" % listener[key])
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        try:
            context.load_cert_chain(listener["tls_cert_file"], listener["tls_key_file"])
        except ssl.SSLError as exc:
            raise ConfigError("Error initializing listener of type tcp: error loading TLS cert: %s" % exc) from exc
        if listener.get("tls_require_and_verify_client_cert") and listener.get("tls_client_ca_file"):
            context.load_verify_locations(listener["tls_client_ca_file"])
            context.verify_mode = ssl.CERT_REQUIRED
    return ServerConfig(kind, data_dir, listener.get("address", "127.0.0.1:8200"), context,
                        tree.get("api_addr"), warnings, node_id=storage.get("node_id") if kind == "raft" else None,
                        cluster_addr=tree.get("cluster_addr"), retry_join=retry_join)


_RETRY_JOIN_KEYS = {"leader_api_addr", "auto_join", "auto_join_scheme", "auto_join_port", "leader_tls_servername",
                    "leader_ca_cert_file", "leader_client_cert_file", "leader_client_key_file", "leader_ca_cert",
                    "leader_client_cert", "leader_client_key"}


def _retry_join(blocks: list, path: str, warnings: list[str]) -> list[dict]:
    """The retry_join blocks the simulator can follow: each needs ``leader_api_addr`` (``auto_join``, cloud
    discovery, is a real setting it cannot serve: refused); unknown keys only warn, as in Vault."""
    out = []
    for block in blocks:
        if not isinstance(block, dict):
            raise ConfigError("Error loading configuration from %s: retry_join must be a block" % path)
        for key in block:
            if key not in _RETRY_JOIN_KEYS:
                warnings.append("WARNING: unknown or unsupported field retry_join.%s found in configuration at %s"
                                % (key, path))
        if block.get("auto_join"):
            raise ConfigError("retry_join: auto_join (cloud auto-join) is a real Vault setting the simulator does "
                              "not serve (use leader_api_addr)")
        if not block.get("leader_api_addr"):
            raise ConfigError("failed to parse retry_join config: retry_join requires either leader_api_addr or "
                              "auto_join")
        out.append(dict(block))
    return out
