"""Agent configuration files (HCL via python-hcl2, or JSON) checked against a schema.

The real agents refuse a configuration they do not understand at start-up, so a
broken template fails a test instead of passing silently. A schema is a dict
``key -> kind``; a kind is one of the attribute types (``str``, ``int``,
``bool``, ``number``, ``list``, ``duration``, ``any``, ``map``) or a :class:`Block`
with its own schema (``labels=1`` for ``plugin "docker" {}``; ``free=True`` for a
block whose contents are not checked, such as a plugin's ``config``).

:func:`load` returns the normalised tree (strings unquoted; every block a list of
bodies; a labelled body carries its label under ``"__label__"``) plus the
problems found: type errors and unknown keys, each named by its dotted path.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import hcl2

_DURATION = re.compile(r"^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$")


@dataclass
class Block:
    schema: dict[str, Any] = field(default_factory=dict)
    labels: int = 0
    free: bool = False


class ConfigError(Exception):
    pass


def _unquote(value: Any) -> Any:
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    return value


def parse(text: str, name: str) -> dict:
    if text.lstrip().startswith("{") or name.endswith(".json"):
        try:
            return json.loads(text)
        except ValueError as exc:
            raise ConfigError("%s: invalid JSON: %s" % (name, exc)) from exc
    try:
        return hcl2.loads(text)
    except Exception as exc:  # lark raises many kinds; all are syntax errors here
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError("%s: HCL syntax error: %s" % (name, first)) from exc


def _plain(value: Any) -> Any:
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {_unquote(k): _plain(v) for k, v in value.items() if not k.startswith("__")}
    return _unquote(value)


def _check_attr(kind: str, value: Any, path: str, problems: list[str]) -> Any:
    value = _plain(value)
    ok = True
    if kind == "str":
        ok = isinstance(value, str)
    elif kind == "int":
        if isinstance(value, str) and re.fullmatch(r"-?\d+", value):
            value = int(value)
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif kind == "number":
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    elif kind == "bool":
        if isinstance(value, str) and value.lower() in ("true", "false"):
            value = value.lower() == "true"
        ok = isinstance(value, bool)
    elif kind == "list":
        ok = isinstance(value, list)
    elif kind == "map":
        if isinstance(value, list) and len(value) == 1 and isinstance(value[0], dict):
            value = value[0]
        ok = isinstance(value, dict)
    elif kind == "duration":
        ok = isinstance(value, str) and (_DURATION.match(value) is not None or value == "0")
    if not ok:
        problems.append("%s: invalid value %s for a %s" % (path, json.dumps(value), kind))
    return value


def _bodies(raw: Any) -> list[dict]:
    if isinstance(raw, dict):
        return [raw]
    if isinstance(raw, list) and all(isinstance(b, dict) for b in raw):
        return raw
    return []


def _check_block(block: Block, raw: Any, path: str, problems: list[str]) -> list[dict]:
    bodies = _bodies(raw)
    if not bodies and raw not in ([], {}):
        problems.append("%s: expected a block" % path)
        return []
    out = []
    for body in bodies:
        if block.labels:
            for label, inner in body.items():
                if label.startswith("__"):
                    continue
                for sub in _bodies(inner) or [{}]:
                    checked = _check_body(block, sub, "%s.%s" % (path, _unquote(label)), problems)
                    checked["__label__"] = _unquote(label)
                    out.append(checked)
        else:
            out.append(_check_body(block, body, path, problems))
    return out


def _check_body(block: Block, body: dict, path: str, problems: list[str]) -> dict:
    if block.free:
        return _plain(body)
    out: dict[str, Any] = {}
    for key, raw in body.items():
        if key.startswith("__"):
            continue
        key = _unquote(key)
        where = "%s.%s" % (path, key) if path else key
        kind = block.schema.get(key)
        if kind is None:
            problems.append("unexpected key %s" % where)
        elif isinstance(kind, Block):
            out[key] = _check_block(kind, raw, where, problems)
        else:
            out[key] = _check_attr(kind, raw, where, problems)
    return out


def load(text: str, name: str, schema: dict[str, Any]) -> tuple[dict, list[str]]:
    """(normalised tree, problems) of one configuration file."""
    problems: list[str] = []
    tree = _check_body(Block(schema), parse(text, name), "", problems)
    return tree, problems


def first(tree: dict, *path: str, default: Any = None) -> Any:
    """The value at ``path``, taking the first body of each block on the way."""
    node: Any = tree
    for key in path:
        if isinstance(node, list):
            node = node[0] if node else {}
        if not isinstance(node, dict) or key not in node:
            return default
        node = node[key]
    return node
