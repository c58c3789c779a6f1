"""The Nomad agent's configuration files: the keys Nomad 1.10 accepts (those this
simulator knows of; see README), read from ``-config`` files and directories in
name order (``*.hcl`` and ``*.json``), merged, and checked the way
``nomad agent`` checks them at start-up."""

from __future__ import annotations

import os

from ..agentconfig import Block, ConfigError, load

S, INT, B, N, L, D, M = "str", "int", "bool", "number", "list", "duration", "map"
FREE = Block(free=True)
_ADDRS = Block({"http": S, "rpc": S, "serf": S})
_PORTS = Block({"http": INT, "rpc": INT, "serf": INT})
_JOIN = Block({"retry_join": L, "retry_interval": D, "retry_max": INT, "start_join": L})
_IDENTITY = Block({"aud": L, "ttl": D, "env": B, "file": B, "name": S, "change_mode": S, "change_signal": S})

SCHEMA = {
    "region": S, "datacenter": S, "name": S, "data_dir": S, "plugin_dir": S, "log_level": S, "log_json": B,
    "log_file": S, "log_rotate_bytes": INT, "log_rotate_duration": D, "log_rotate_max_files": INT,
    "log_include_location": B, "bind_addr": S, "enable_debug": B, "enable_syslog": B, "syslog_facility": S,
    "disable_update_check": B, "disable_anonymous_signature": B, "leave_on_interrupt": B,
    "leave_on_terminate": B, "http_api_response_headers": FREE,
    "ports": _PORTS, "addresses": _ADDRS, "advertise": _ADDRS,
    "server": Block({
        "enabled": B, "bootstrap_expect": INT, "data_dir": S, "encrypt": S, "num_schedulers": INT,
        "enabled_schedulers": L, "raft_protocol": INT, "raft_multiplier": INT, "heartbeat_grace": D,
        "min_heartbeat_ttl": D, "max_heartbeats_per_second": N, "job_gc_interval": D, "job_gc_threshold": D,
        "eval_gc_threshold": D, "deployment_gc_threshold": D, "node_gc_threshold": D, "rejoin_after_leave": B,
        "license_path": S, "authoritative_region": S, "server_join": _JOIN, "retry_join": L,
        "default_scheduler_config": FREE, "plan_rejection_tracker": FREE, "oidc_issuer": S,
        "start_join": L, "redundancy_zone": S, "upgrade_version": S, "job_max_priority": INT,
        "job_default_priority": INT, "job_tracked_versions": INT,
    }),
    "client": Block({
        "enabled": B, "state_dir": S, "alloc_dir": S, "alloc_mounts_dir": S, "servers": L, "node_class": S,
        "node_pool": S, "meta": M, "options": M, "network_interface": S, "preferred_address_family": S,
        "cpu_total_compute": INT, "memory_total_mb": INT, "disk_total_mb": INT, "disk_free_mb": INT,
        "max_kill_timeout": D, "gc_interval": D, "gc_disk_usage_threshold": N, "gc_inode_usage_threshold": N,
        "gc_max_allocs": INT, "gc_parallel_destroys": INT, "no_host_uuid": B, "drain_on_shutdown": FREE,
        "reserved": Block({"cpu": INT, "cores": S, "memory": INT, "disk": INT, "reserved_ports": S}),
        "server_join": _JOIN, "host_volume": Block({"path": S, "read_only": B}, labels=1),
        "host_network": Block({"cidr": S, "interface": S, "reserved_ports": S}, labels=1),
        "chroot_env": M, "template": FREE, "artifact": FREE, "cni_path": S, "cni_config_dir": S,
        "bridge_network_name": S, "bridge_network_subnet": S, "host_volumes_dir": S, "host_volume_plugin_dir": S,
        "min_dynamic_port": INT, "max_dynamic_port": INT, "cgroup_parent": S,
    }),
    "acl": Block({"enabled": B, "token_ttl": D, "policy_ttl": D, "role_ttl": D, "replication_token": S,
                  "token_min_expiration_ttl": D, "token_max_expiration_ttl": D}),
    "tls": Block({"http": B, "rpc": B, "ca_file": S, "cert_file": S, "key_file": S, "rpc_upgrade_mode": B,
                  "verify_server_hostname": B, "verify_https_client": B, "tls_min_version": S,
                  "tls_cipher_suites": S}),
    "consul": Block({
        "name": S, "address": S, "grpc_address": S, "token": S, "auth": S, "ssl": B, "verify_ssl": B,
        "ca_file": S, "cert_file": S, "key_file": S, "auto_advertise": B, "server_auto_join": B,
        "client_auto_join": B, "server_service_name": S, "client_service_name": S, "checks_use_advertise": B,
        "tags": L, "share_ssl": B, "namespace": S, "service_auth_method": S, "task_auth_method": S,
        "service_identity": _IDENTITY, "task_identity": _IDENTITY, "timeout": D, "allow_unauthenticated": B,
        "server_http_check_name": S, "server_serf_check_name": S, "server_rpc_check_name": S,
        "client_http_check_name": S,
    }, labels=0),
    "vault": Block({
        "name": S, "enabled": B, "address": S, "jwt_auth_backend_path": S, "create_from_role": S,
        "ca_file": S, "ca_path": S, "cert_file": S, "key_file": S, "tls_server_name": S, "tls_skip_verify": B,
        "namespace": S, "default_identity": _IDENTITY,
    }),
    "telemetry": FREE, "autopilot": FREE, "limits": FREE, "ui": FREE, "audit": FREE, "reporting": FREE,
    "sentinel": FREE, "keyring": FREE,
    "plugin": Block({"config": FREE, "args": L}, labels=1),
}


def files_of(paths: list[str]) -> list[str]:
    """Config files in load order: each -config path, a directory giving its *.hcl and *.json in name order."""
    out = []
    for path in paths:
        if os.path.isdir(path):
            out += [os.path.join(path, f) for f in sorted(os.listdir(path)) if f.endswith((".hcl", ".json"))]
        elif os.path.exists(path):
            out.append(path)
        else:
            raise ConfigError("Error loading configuration from %s: stat %s: no such file or directory" % (path, path))
    return out


def _merge(into: dict, tree: dict) -> None:
    for key, value in tree.items():
        if isinstance(value, list) and value and isinstance(value[0], dict) and key in into:
            if any("__label__" in b for b in value):
                into[key] = into[key] + value
            else:  # a block given again merges into the first: later files win per key
                merged = dict(into[key][0])
                merged.update(value[0])
                into[key] = [merged]
        else:
            into[key] = value


def read(paths: list[str]) -> dict:
    """The merged configuration of ``-config`` paths; ConfigError with Nomad's wording if one is refused."""
    merged: dict = {}
    for path in files_of(paths):
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
        try:
            tree, problems = load(text, path, SCHEMA)
        except ConfigError as exc:
            raise ConfigError("Error loading configuration from %s: %s" % (path, exc)) from exc
        if problems:
            raise ConfigError("Error loading configuration from %s: %d error(s) occurred:\n%s" % (
                path, len(problems), "\n".join("\t* " + p for p in problems)))
        _merge(merged, tree)
    return merged


def check(cfg: dict, dev: bool, data_dir: str | None) -> None:
    """The start-up checks of ``nomad agent`` on the merged configuration."""
    server = bool((cfg.get("server") or [{}])[0].get("enabled"))
    client = bool((cfg.get("client") or [{}])[0].get("enabled"))
    if not (dev or server or client):
        raise ConfigError("Must specify either server, client or dev mode for the agent.")
    if not dev and not data_dir:
        raise ConfigError("Must specify data directory")
    if data_dir and not os.path.isabs(data_dir):
        raise ConfigError("data_dir must be given as an absolute path: found %s" % data_dir)
    tls = (cfg.get("tls") or [{}])[0]
    if tls.get("http"):
        for key in ("cert_file", "key_file"):
            if not tls.get(key):
                raise ConfigError("Failed to load TLS configuration: tls.%s is required when tls.http is true" % key)
            if not os.path.exists(tls[key]):
                raise ConfigError("Failed to load TLS configuration: open %s: no such file or directory" % tls[key])
    for plugin in cfg.get("plugin") or []:
        if plugin["__label__"] not in ("raw_exec", "docker", "exec", "java", "qemu"):
            raise ConfigError('Error loading plugin "%s": plugin not found in plugin_dir' % plugin["__label__"])
