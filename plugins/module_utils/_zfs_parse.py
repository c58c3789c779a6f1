# -*- coding: utf-8 -*-
# Copyright: selfhost.homelab contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one parser for OpenZFS command output (private to the collection).

Pure functions from text to plain data, so unit tests feed them outputs
recorded from real OpenZFS (tests/unit/plugins/modules/zpool/fixtures/).

- ``zpool status -P -p POOL`` (text, OpenZFS 2.1+) -> parse_status()
- ``zpool status -j --json-int -P POOL`` (OpenZFS 2.3+) -> parse_status_json()
- ``zpool get -Hp all POOL`` / ``zfs get -Hp -o property,value,source ...`` -> parse_properties()
- ``zpool import`` (list of importable pools) -> parse_import_list()
- ``blkid -p -o export DEV...`` -> parse_blkid()

Pool facts share one shape whatever the source::

    {name, state, guid, status, action, errors,
     scan: {function, state, errors, repaired, start, end, raw},
     layout: {data|log|cache|spare|special|dedup: [vdev...]}}
    vdev = {type, name, state, devices: [leaf...], children: [...]}
    leaf = {path, state, read, write, cksum, note}
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import re
import time

ROLES = ("data", "log", "cache", "spare", "special", "dedup")
# Section headers of `zpool status` and the role each one holds.
_SECTIONS = {"logs": "log", "cache": "cache", "spares": "spare", "special": "special", "dedup": "dedup"}
_INTERIOR = re.compile(r"^(mirror|raidz[123]?|draid[123]?(:[^-]*)?|replacing|spare|root)-\d+$")


class ParseError(ValueError):
    pass


def vdev_type(name):
    """`mirror-0` -> mirror, `raidz1-0` -> raidz1, `draid2:3d:5c:1s-0` -> draid2."""
    m = re.match(r"^(mirror|raidz[123]?|draid[123]?|replacing|spare)(?::[^-]*)?-\d+$", name)
    if not m:
        return "disk"
    kind = m.group(1)
    if kind == "raidz":
        return "raidz1"
    if kind == "draid":
        return "draid1"
    return kind


def _leaves(node):
    if not node["children"]:
        return [{k: node[k] for k in ("path", "state", "read", "write", "cksum", "note")}]
    out = []
    for child in node["children"]:
        out.extend(_leaves(child))
    return out


def _vdev(node):
    kind = vdev_type(node["path"]) if node["children"] else "disk"
    vdev = {"type": kind, "name": node["path"], "state": node["state"], "devices": _leaves(node)}
    if kind.startswith("draid"):
        vdev["spec"] = node["path"].rsplit("-", 1)[0]
    return vdev


def _to_int(text):
    try:
        return int(text)
    except (TypeError, ValueError):
        return text


_SCAN_PATTERNS = [
    (re.compile(r"^(scrub|resilver)(?:ed)? repaired (\S+) in (\S+) with (\d+) errors on (.+)$"), "finished"),
    (re.compile(r"^(resilver)ed (\S+) in (\S+) with (\d+) errors on (.+)$"), "finished"),
    (re.compile(r"^(scrub|resilver) in progress since (.+)$"), "scanning"),
    (re.compile(r"^(scrub|resilver) canceled on (.+)$"), "canceled"),
    (re.compile(r"^(scrub) paused since (.+)$"), "paused"),
]


def parse_scan(text):
    """The `scan:` line of zpool status -> {function, state, errors, repaired, start, end, raw}."""
    first = (text or "").strip().splitlines()[0].strip() if (text or "").strip() else "none requested"
    scan = {"function": None, "state": "none", "errors": None, "repaired": None,
            "start": None, "end": None, "raw": (text or "").strip()}
    if first.startswith("none requested"):
        return scan
    for pattern, state in _SCAN_PATTERNS:
        m = pattern.match(first)
        if not m:
            continue
        scan["function"] = m.group(1)
        scan["state"] = state
        if state == "finished":
            scan["repaired"] = m.group(2)
            scan["duration"] = m.group(3)
            scan["errors"] = int(m.group(4))
            scan["end"] = m.group(5).strip()
        elif state in ("scanning", "paused"):
            scan["start"] = m.group(2).strip()
        else:
            scan["end"] = m.group(2).strip()
        return scan
    scan["state"] = "unknown"
    return scan


def parse_status(text):
    """Parse the text of `zpool status -P [-p] POOL` (one pool) into pool facts."""
    header = {}
    key = None
    config_lines = []
    in_config = False
    errors_text = None
    for raw in text.splitlines():
        if in_config:
            if raw.startswith("errors:"):
                errors_text = raw.split(":", 1)[1].strip()
                in_config = False
                continue
            if raw.strip():
                config_lines.append(raw)
            continue
        m = re.match(r"^\s*([a-z]+): ?(.*)$", raw)
        if m and not raw.startswith("\t"):
            key = m.group(1)
            if key == "config":
                in_config = True
                continue
            if key == "errors":
                errors_text = m.group(2).strip()
                continue
            header[key] = m.group(2).strip()
        elif key and raw.startswith("\t"):
            header[key] = (header.get(key, "") + "\n" + raw.strip()).strip()
    if "pool" not in header:
        raise ParseError("no 'pool:' line in zpool status output")

    # The config tree: a NAME/STATE/READ/WRITE/CKSUM table indented two spaces a level.
    nodes = []
    for raw in config_lines:
        line = raw[1:] if raw.startswith("\t") else raw
        stripped = line.lstrip(" ")
        fields = stripped.split()
        if not fields or fields[0] == "NAME":
            continue
        depth = (len(line) - len(stripped)) // 2
        node = {"path": fields[0], "state": fields[1] if len(fields) > 1 else None,
                "read": None, "write": None, "cksum": None, "note": None, "depth": depth, "children": []}
        if len(fields) >= 5 and all(re.match(r"^[0-9.]+[KMGTP]?$", f) for f in fields[2:5]):
            node["read"], node["write"], node["cksum"] = (_to_int(f) for f in fields[2:5])
            rest = fields[5:]
        else:
            rest = fields[2:]
        if rest:
            node["note"] = " ".join(rest)
        nodes.append(node)

    layout = {role: [] for role in ROLES}
    stack = []
    sections = []  # (role, section node)
    for node in nodes:
        if node["depth"] == 0:
            role = "data" if node["path"] == header["pool"] else _SECTIONS.get(node["path"])
            if role is None:
                raise ParseError("unknown section %r in zpool status config" % node["path"])
            sections.append((role, node))
            stack = [node]
            continue
        while stack and stack[-1]["depth"] >= node["depth"]:
            stack.pop()
        if not stack:
            raise ParseError("unexpected indentation at %r" % node["path"])
        stack[-1]["children"].append(node)
        stack.append(node)
    root = None
    for role, section in sections:
        if role == "data":
            root = section
        for child in section["children"]:
            layout[role].append(_vdev(child))

    errors = None
    if errors_text is not None:
        if errors_text.startswith("No known data errors"):
            errors = 0
        else:
            m = re.match(r"^(\d+) data errors", errors_text)
            errors = int(m.group(1)) if m else errors_text
    return {
        "name": header["pool"],
        "state": header.get("state") or (root or {}).get("state"),
        "guid": header.get("id"),
        "status": header.get("status"),
        "action": header.get("action"),
        "errors": errors,
        "scan": parse_scan(header.get("scan")),
        "layout": layout,
    }


# OpenZFS 2.3 `zpool status -j`: vdev classes -> our roles.
_JSON_CLASS = {"normal": "data", "log": "log", "logs": "log", "l2cache": "cache", "spares": "spare",
               "spare": "spare", "special": "special", "dedup": "dedup"}


def _json_leaf(v):
    return {"path": v.get("path") or v.get("name"), "state": v.get("state"),
            "read": _to_int(v.get("read_errors")), "write": _to_int(v.get("write_errors")),
            "cksum": _to_int(v.get("checksum_errors")), "note": None}


def _json_vdev(v):
    children = list((v.get("vdevs") or {}).values())
    if not children:
        return {"type": "disk", "name": v.get("path") or v.get("name"), "state": v.get("state"),
                "devices": [_json_leaf(v)]}

    def leaves(node):
        kids = list((node.get("vdevs") or {}).values())
        if not kids:
            return [_json_leaf(node)]
        out = []
        for kid in kids:
            out.extend(leaves(kid))
        return out

    name = v.get("name")
    vdev = {"type": vdev_type(name), "name": name, "state": v.get("state"), "devices": leaves(v)}
    if vdev["type"].startswith("draid"):
        vdev["spec"] = name.rsplit("-", 1)[0]
    return vdev


def nicebytes(num):
    """Bytes as OpenZFS's zfs_nicebytes() prints them in `zpool status` (0B, 18K, 1.21M)."""
    num = int(num)
    units = "BKMGTPE"
    index, n = 0, num
    while n >= 1024 and index < len(units) - 1:
        n //= 1024
        index += 1
    if index == 0 or num % (1024 ** index) == 0:
        return "%d%s" % (n, units[index])
    for precision in (2, 1, 0):
        out = "%.*f%s" % (precision, float(num) / 1024 ** index, units[index])
        if len(out) <= 5:
            break
    return out


def _dhms(secs):
    """Seconds as `zpool status` prints a scan's duration (secs_to_dhms)."""
    secs = max(int(secs), 0)
    days, rest = divmod(secs, 86400)
    hms = "%02d:%02d:%02d" % (rest // 3600, rest % 3600 // 60, rest % 60)
    return "%d days %s" % (days, hms) if days else hms


def _ctime(epoch):
    """An epoch as `zpool status` prints it (ctime(3), the host's local time)."""
    return time.ctime(int(epoch)) if epoch not in (None, 0) else None


def _json_text(value):
    """Multi-line status/action text: JSON keeps zpool's tabs and newlines; the
    text parser joins the stripped lines with newlines. Same result here."""
    if value is None:
        return None
    return "\n".join(line.strip() for line in str(value).strip().splitlines())


_JSON_SCAN_STATE = {"FINISHED": "finished", "SCANNING": "scanning", "CANCELED": "canceled"}


def parse_json_scan(stats):
    """`scan_stats` of `zpool status -j` (2.3: function SCRUB/RESILVER, state
    FINISHED/SCANNING/CANCELED, epoch start_time/end_time, processed = bytes
    repaired) -> the same dict parse_scan() gives for the text `scan:` line."""
    scan = {"function": None, "state": "none", "errors": None, "repaired": None,
            "start": None, "end": None, "raw": stats or None}
    if not stats or not stats.get("function") or stats.get("function") == "NONE":
        return scan
    scan["function"] = stats["function"].lower()
    state = stats.get("state") or "unknown"
    scan["state"] = _JSON_SCAN_STATE.get(state, state.lower())
    if scan["state"] == "scanning" and _to_int(stats.get("scrub_pause")):
        scan["state"] = "paused"
    if scan["state"] == "finished":
        scan["repaired"] = nicebytes(_to_int(stats.get("processed")) or 0)
        scan["errors"] = _to_int(stats.get("errors"))
        scan["end"] = _ctime(_to_int(stats.get("end_time")))
        start, end = _to_int(stats.get("start_time")), _to_int(stats.get("end_time"))
        if isinstance(start, int) and isinstance(end, int):
            scan["duration"] = _dhms(end - start)
    elif scan["state"] in ("scanning", "paused"):
        scan["start"] = _ctime(_to_int(stats.get("start_time")))
    else:
        scan["end"] = _ctime(_to_int(stats.get("end_time")))
    return scan


def parse_status_json(text, pool=None):
    """Parse `zpool status -j --json-int -P POOL` (OpenZFS 2.3+) into the same facts.

    As recorded from OpenZFS 2.3.9: {"output_version": ..., "pools": {NAME:
    {name, state, pool_guid, status?, action?, scan_stats?, vdevs: {NAME: root
    vdev with its data vdevs under "vdevs"}, logs?, l2cache?, spares?,
    special?, dedup?, error_count}}}; each vdev keyed by name (the full path
    with -P) with name, vdev_type, path (leaves), state, read_errors,
    write_errors, checksum_errors."""
    try:
        data = json.loads(text)
    except ValueError as e:
        raise ParseError("zpool status -j did not return JSON: %s" % e)
    if not isinstance(data, dict):
        raise ParseError("zpool status -j did not return a JSON object")
    pools = data.get("pools") or {}
    if pool is None:
        if len(pools) != 1:
            raise ParseError("expected one pool in zpool status -j, got %d" % len(pools))
        pool = next(iter(pools))
    p = pools.get(pool)
    if p is None:
        raise ParseError("pool %r not in zpool status -j output" % pool)
    layout = {role: [] for role in ROLES}
    seen = set()
    root = (p.get("vdevs") or {}).get(p.get("name", pool)) or {}
    for child in (root.get("vdevs") or {}).values():
        role = _JSON_CLASS.get(child.get("class", "normal"), "data")
        layout[role].append(_json_vdev(child))
        seen.add(child.get("name"))
    # 2.3 lists log, cache, spare, special and dedup vdevs beside the root vdev.
    for key, role in (("logs", "log"), ("l2cache", "cache"), ("spares", "spare"),
                      ("special", "special"), ("dedup", "dedup")):
        for child in (p.get(key) or {}).values():
            if child.get("name") not in seen:
                layout[role].append(_json_vdev(child))
    guid = p.get("pool_guid")
    return {
        "name": p.get("name", pool),
        "state": p.get("state"),
        "guid": str(guid) if guid is not None else None,
        "status": _json_text(p.get("status")),
        "action": _json_text(p.get("action")),
        "errors": _to_int(p.get("error_count")),
        "scan": parse_json_scan(p.get("scan_stats")),
        "layout": layout,
    }


def parse_properties(text, columns=("name", "property", "value", "source")):
    """`zpool get -Hp all POOL` (name, property, value, source) or
    `zfs get -Hp -o property,value,source ...` -> {property: {value, source}}."""
    props = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        fields = line.split("\t")
        row = dict(zip(columns, fields))  # noqa: B905 - Python 2.7-compatible module_utils
        if "property" not in row or "value" not in row:
            raise ParseError("unexpected property line %r" % line)
        props[row["property"]] = {"value": row["value"], "source": row.get("source")}
    return props


def parse_import_list(text):
    """`zpool import` (no pool named) -> [{name, id, state, status, config_text}]."""
    pools = []
    current = None
    for line in text.splitlines():
        m = re.match(r"^\s*([a-z]+): ?(.*)$", line)
        if m and m.group(1) == "pool":
            current = {"name": m.group(2).strip(), "id": None, "state": None, "status": None}
            pools.append(current)
        elif m and current is not None and m.group(1) in ("id", "state", "status", "action"):
            current[m.group(1)] = m.group(2).strip()
    return pools


def parse_blkid(text):
    """`blkid -p -o export DEV...` -> {devname: {TYPE, LABEL, PTTYPE, ...}}."""
    found = {}
    current = None
    for line in text.splitlines():
        if not line.strip():
            current = None
            continue
        if "=" not in line:
            continue
        key, value = line.split("=", 1)
        if key == "DEVNAME":
            current = found.setdefault(value, {})
        elif current is not None:
            current[key] = value
    return found


_SIZE = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([KMGTPE]?)i?B?\s*$", re.I)


def normalize_value(wanted, actual):
    """Compare a wanted property value with the one `get -p` reports.

    Booleans (YAML `on`) become on/off; sizes like 1M compare as bytes when
    the actual value is a plain number."""
    if isinstance(wanted, bool):
        wanted = "on" if wanted else "off"
    wanted = str(wanted)
    if actual is not None and re.match(r"^[0-9]+$", str(actual)):
        m = _SIZE.match(wanted)
        if m:
            mult = 1024 ** "_KMGTPE".index(m.group(2).upper() or "_")
            return str(int(float(m.group(1)) * mult)), str(actual)
    return wanted, actual
