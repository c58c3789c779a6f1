# -*- coding: utf-8 -*-
# Copyright (c) selfhost.homelab contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: Nomad dynamic host volumes (Nomad >= 1.10) over the nomad_job connection.

API: https://developer.hashicorp.com/nomad/api-docs/volumes#host-volumes; field names
of hashicorp/nomad api/host_volumes.go (HostVolume, RequestedCapabilities, ...).
"""

from __future__ import annotations

import re

from ansible_collections.selfhost.homelab.plugins.module_utils._nomad import NomadError

ACCESS_MODES = ("single-node-reader-only", "single-node-writer", "single-node-single-writer",
                "single-node-multi-writer")
ATTACHMENT_MODES = ("file-system", "block-device")
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgtp]?i?b?)?\s*$", re.I)
_FACTORS = {"": 1, "b": 1, "k": 1000, "kb": 1000, "m": 1000 ** 2, "mb": 1000 ** 2, "g": 1000 ** 3, "gb": 1000 ** 3,
            "t": 1000 ** 4, "tb": 1000 ** 4, "p": 1000 ** 5, "pb": 1000 ** 5,
            "ki": 1024, "kib": 1024, "mi": 1024 ** 2, "mib": 1024 ** 2, "gi": 1024 ** 3, "gib": 1024 ** 3,
            "ti": 1024 ** 4, "tib": 1024 ** 4, "pi": 1024 ** 5, "pib": 1024 ** 5}
# An item of O(volumes) as the argument spec completes it.
ITEM_DEFAULTS = {"host_path": None, "plugin_id": None, "capacity_min": None, "capacity_max": None, "parameters": None,
                 "capabilities": [{"access_mode": "single-node-writer", "attachment_mode": "file-system"}]}
# The fields this module manages, compared to decide `changed` and shown in the diff.
MANAGED = ("Name", "NodeID", "NodePool", "PluginID", "HostPath", "RequestedCapacityMinBytes",
           "RequestedCapacityMaxBytes", "RequestedCapabilities", "Parameters")


def parse_size(value, field):
    """'10GiB', '500M', 1048576 -> bytes; None stays None."""
    if value is None or value == "":
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 0:
            raise NomadError("%s: must not be negative" % field)
        return value
    match = _SIZE.match(str(value))
    if not match:
        raise NomadError("%s: %r is not a size like 10GiB, 500MB or a number of bytes" % (field, value))
    unit = (match.group(2) or "").lower()
    return int(float(match.group(1)) * _FACTORS[unit])


class HostVolumes:
    """The host volume endpoints, through the same python-nomad requester settings and error handling."""

    def __init__(self, conn):
        from nomad.api import base

        class _Volume(base.Requester):
            ENDPOINT = "volume"

        class _Volumes(base.Requester):
            ENDPOINT = "volumes"

        settings = conn.client.requester_settings
        self.conn = conn
        self._volume = _Volume(**settings)
        self._volumes = _Volumes(**settings)

    def local_node_id(self):
        """The node ID of the agent the module talks to (GET /v1/agent/self, stats.client.node_id)."""
        info = self.conn.call("read agent self", self.conn.client.agent.get_agent) or {}
        node = ((info.get("stats") or {}).get("client") or {}).get("node_id")
        if not node:
            raise NomadError("node_id: not given, and the agent at %s is not a Nomad client (no stats.client.node_id "
                             "in /v1/agent/self); give the node's ID" % self.conn.address)
        return node

    def list_on_node(self, node_id, prefix=""):
        """Stubs of the host volumes on `node_id` in the namespace whose names start with `prefix` (one request).

        The list answers stubs (ID, Name, NodeID, NodePool, PluginID, State, ...), not the managed fields such as
        HostPath or RequestedCapabilities: read() gets those.
        """
        resp = self.conn.call("list host volumes", self._volumes.request, method="get",
                              params={"type": "host", "prefix": prefix, "node_id": node_id})
        return [v for v in (resp.json() if resp is not None else []) or [] if v.get("NodeID") == node_id]

    def read(self, volume_id, name):
        resp = self.conn.call("read host volume %s" % name, self._volume.request, "host", volume_id, method="get")
        return resp.json() if resp is not None else None

    def find(self, name, node_id):
        """The full volume named `name` on `node_id` in the connection's namespace, or None (list, then read)."""
        matches = [v for v in self.list_on_node(node_id, name) if v.get("Name") == name]
        if not matches:
            return None
        _no_duplicates(name, node_id, matches)
        return self.read(matches[0]["ID"], name)

    def write(self, volume, create):
        verb = "create" if create else "register"
        resp = self.conn.call("%s host volume %s" % (verb, volume["Name"]), self._volume.request, "host", verb,
                              method="put", json={"Volume": volume})
        if resp is None:
            raise NomadError("%s host volume %s: this Nomad has no dynamic host volumes (Nomad >= 1.10 needed)"
                             % (verb, volume["Name"]))
        return resp.json()

    def delete(self, volume_id):
        return self.conn.call("delete host volume %s" % volume_id, self._volume.request, "host", volume_id,
                              method="delete")


def _no_duplicates(name, node_id, matches, field="name"):
    if len(matches) > 1:
        raise NomadError("%s: %d host volumes named %r on node %s; remove the extra ones by ID (%s)"
                         % (field, len(matches), name, node_id, ", ".join(v["ID"] for v in matches)))


def desired_volume(params, node_id):
    caps = []
    for i, cap in enumerate(params["capabilities"] or []):
        access, attach = cap.get("access_mode"), cap.get("attachment_mode") or "file-system"
        if access not in ACCESS_MODES:
            raise NomadError("capabilities[%d].access_mode: %r must be one of %s"
                             % (i, access, ", ".join(ACCESS_MODES)))
        if attach not in ATTACHMENT_MODES:
            raise NomadError("capabilities[%d].attachment_mode: %r must be one of %s"
                             % (i, attach, ", ".join(ATTACHMENT_MODES)))
        caps.append({"AccessMode": access, "AttachmentMode": attach})
    if not caps:
        raise NomadError("capabilities: at least one access mode is needed")
    cmin = parse_size(params["capacity_min"], "capacity_min")
    cmax = parse_size(params["capacity_max"], "capacity_max")
    if cmin is not None and cmax is not None and cmax < cmin:
        raise NomadError("capacity_max: %d is below capacity_min %d" % (cmax, cmin))
    host_path, plugin = params["host_path"], params["plugin_id"]
    if bool(host_path) == bool(plugin):
        raise NomadError("host_path: give either host_path (register an existing path) or plugin_id (let a plugin "
                         "create the volume), not %s" % ("both" if host_path else "neither"))
    if host_path and not host_path.startswith("/"):
        raise NomadError("host_path: %r must be an absolute path on the node" % host_path)
    vol = {"Name": params["name"], "NodeID": node_id, "RequestedCapabilities": caps,
           "RequestedCapacityMinBytes": cmin or 0, "RequestedCapacityMaxBytes": cmax or 0,
           "Parameters": dict((k, str(v)) for k, v in (params["parameters"] or {}).items()) or None}
    if host_path:
        vol["HostPath"] = host_path.rstrip("/") or "/"
    else:
        vol["PluginID"] = plugin
    if params["node_pool"]:
        vol["NodePool"] = params["node_pool"]
    return vol


def _norm(field, value):
    if field == "RequestedCapabilities":
        return sorted((c.get("AccessMode"), c.get("AttachmentMode")) for c in value or [])
    if field == "Parameters":
        return dict(value or {})
    if field in ("RequestedCapacityMinBytes", "RequestedCapacityMaxBytes"):
        return value or 0
    return value or ""


def differences(current, desired):
    """Fields of `desired` that differ from `current` (None: the volume does not exist)."""
    if current is None:
        return [f for f in MANAGED if f in desired]
    return [f for f in MANAGED if f in desired and _norm(f, current.get(f)) != _norm(f, desired[f])]


def summary(volume):
    """The managed fields as text lines, for the diff."""
    if not volume:
        return ""
    lines = []
    for field in MANAGED:
        if field not in volume:
            continue
        value = volume[field]
        if field == "RequestedCapabilities":
            value = ", ".join("%s/%s" % pair for pair in _norm(field, value))
        elif field == "Parameters":
            value = ", ".join("%s=%s" % kv for kv in sorted(_norm(field, value).items()))
        lines.append("%s: %s\n" % (field, value))
    return "".join(lines)


class PartialError(NomadError):
    """A request failed after others had changed Nomad: carries what was done, for the failure result."""

    def __init__(self, message, result):
        super().__init__(message)
        self.result = result


def _diff(name, before, after):
    return dict(before_header="host volume %s" % name, after_header="host volume %s" % name,
                before=summary(before), after=summary(after))


def plan_present(current, desired):
    """(changes, planned volume) for one volume; `desired` gets the current ID so a write updates in place."""
    changes = differences(current, desired)
    if current is not None:
        desired["ID"] = current["ID"]
    return changes, dict(current or {}, **desired)


def run_single(module, api):
    """One volume (O(name)): GET agent/self (without node_id), GET volumes list, GET the volume, then one write."""
    params = module.params
    if params["state"] == "present":
        # Validate everything before the first request that could change anything.
        desired = desired_volume(params, params["node_id"] or "(local node)")
    node_id = params["node_id"] or api.local_node_id()
    current = api.find(params["name"], node_id)
    result = dict(changed=False, node_id=node_id, volume_id=(current or {}).get("ID", ""), changes=[])
    if params["state"] == "absent":
        if current is None:
            return result
        result.update(changed=True, changes=["deleted"])
        if module._diff:
            result["diff"] = dict(before=summary(current), after="")
        if not module.check_mode:
            api.delete(current["ID"])
        return result
    desired["NodeID"] = node_id
    changes, planned = plan_present(current, desired)
    result["changes"] = changes
    if module._diff:
        result["diff"] = _diff(params["name"], current, planned)
    if not changes:
        result["volume"] = current
        return result
    result["changed"] = True
    if module.check_mode:
        result["volume"] = planned
        return result
    answer = api.write(desired, create=bool(params["plugin_id"]))
    result["volume"] = answer.get("Volume") or planned
    result["volume_id"] = result["volume"].get("ID", "")
    if answer.get("Warnings"):
        module.warn("Nomad: %s" % answer["Warnings"])
    return result


def validate_items(items, state, node_pool, node_hint):
    """All of O(volumes) checked before any request: [(name, desired volume or None)], errors name the index."""
    out, seen = [], {}
    for i, item in enumerate(items):
        name = item.get("name") or ""
        if not name.strip():
            raise NomadError("volumes[%d].name: must not be empty" % i)
        if name in seen:
            raise NomadError("volumes[%d].name: %r is also volumes[%d]; each volume once" % (i, name, seen[name]))
        seen[name] = i
        desired = None
        if state == "present":
            try:
                given = dict((k, v) for k, v in item.items() if v is not None)
                desired = desired_volume(dict(ITEM_DEFAULTS, node_pool=node_pool, **given), node_hint)
            except NomadError as exc:
                raise NomadError("volumes[%d].%s" % (i, exc))
        out.append((name, desired))
    return out


def _common_prefix(names):
    first, last = min(names), max(names)
    size = 0
    while size < len(first) and first[size] == last[size]:
        size += 1
    return first[:size]


def run_many(module, api):
    """Many volumes (O(volumes)) on one node in one module run.

    Requests: GET /v1/agent/self (only without node_id); ONE GET /v1/volumes (type=host, node_id, the names'
    common prefix); with state=present one GET /v1/volume/host/:id per named volume that exists (the list has
    no HostPath or capabilities to compare); then one PUT register/create per volume that differs (none in
    check mode). With state=absent: one DELETE per named volume that exists (none in check mode), and in diff
    mode one GET per existing volume for the diff's before.
    """
    params = module.params
    state, check, diff = params["state"], module.check_mode, module._diff
    plans = validate_items(params["volumes"], state, params["node_pool"], params["node_id"] or "(local node)")
    node_id = params["node_id"] or api.local_node_id()
    by_name = {}
    if plans:
        names = set(plan[0] for plan in plans)
        for stub in api.list_on_node(node_id, _common_prefix(names)):
            if stub.get("Name") in names:
                by_name.setdefault(stub["Name"], []).append(stub)
    for i, plan in enumerate(plans):
        _no_duplicates(plan[0], node_id, by_name.get(plan[0], []), field="volumes[%d].name" % i)
    results, diffs, todo = [], [], []
    for name, desired in plans:
        stub = (by_name.get(name) or [None])[0]
        res = dict(name=name, changed=False, volume_id=(stub or {}).get("ID", ""), changes=[])
        if state == "absent":
            if stub is not None:
                res.update(changed=True, changes=["deleted"])
                todo.append((res, stub))
                if diff:
                    diffs.append(_diff(name, api.read(stub["ID"], name) or stub, None))
        else:
            current = api.read(stub["ID"], name) if stub is not None else None
            desired["NodeID"] = node_id
            changes, planned = plan_present(current, desired)
            res.update(changes=changes, changed=bool(changes), volume=planned if changes else current)
            if diff:
                diffs.append(_diff(name, current, planned))
            if changes:
                todo.append((res, desired))
        results.append(res)
    result = dict(changed=bool(todo), node_id=node_id, volumes=results)
    if diff:
        result["diff"] = diffs
    if check:
        return result
    done = 0
    for res, what in todo:
        try:
            if state == "absent":
                api.delete(what["ID"])
            else:
                answer = api.write(what, create=bool(what.get("PluginID")))
                res["volume"] = answer.get("Volume") or res["volume"]
                res["volume_id"] = res["volume"].get("ID", "")
                if answer.get("Warnings"):
                    module.warn("Nomad: %s: %s" % (res["name"], answer["Warnings"]))
        except NomadError as exc:
            result["changed"] = done > 0
            for pending in todo[done:]:
                pending[0]["changed"] = False
            res["error"] = str(exc)
            raise PartialError("volumes[%d] (%s): %s; %d of %d changes were made before"
                               % (results.index(res), res["name"], exc, done, len(todo)), result)
        done += 1
    return result
