"""Vault ACL policies: parsing (HCL or JSON) and capability checks.

Follows https://developer.hashicorp.com/vault/docs/concepts/policies:
capabilities of the same path in several policies are merged (``deny`` wins),
a request is matched against exact paths first, then against glob (``*`` at
the end) and ``+`` (one whole segment) patterns, and only the single most
specific pattern applies, by Vault's priority rules.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import hcl2

CAPABILITIES = {"create", "read", "update", "patch", "delete", "list", "sudo", "deny", "subscribe", "recover"}
# Pre-0.9 ``policy = "..."`` shorthand, still accepted by Vault.
_LEGACY = {
    "deny": {"deny"},
    "read": {"read", "list"},
    "write": {"create", "read", "update", "patch", "delete", "list"},
    "sudo": {"create", "read", "update", "patch", "delete", "list", "sudo"},
}


class PolicyError(ValueError):
    pass


def _unquote(value):
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def parse(text: str) -> dict[str, set[str]]:
    """Return {path pattern: capabilities} or raise PolicyError."""
    text = text or ""
    doc = None
    stripped = text.strip()
    if stripped.startswith("{"):
        try:
            doc = json.loads(stripped)
        except ValueError as exc:
            raise PolicyError("failed to parse policy: %s" % exc)
        blocks = doc.get("path", {})
        if isinstance(blocks, dict):
            blocks = [blocks]
    else:
        try:
            doc = hcl2.loads(text)
        except Exception as exc:  # lark raises several error types
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise PolicyError("failed to parse policy: %s" % first)
        blocks = doc.get("path", [])
    unknown = {k for k in doc if not k.startswith("__")} - {"path", "name"}
    if unknown:
        raise PolicyError("failed to parse policy: invalid key %r on line 1" % sorted(unknown)[0])
    rules: dict[str, set[str]] = {}
    for block in blocks:
        for raw_path, body in block.items():
            if raw_path.startswith("__"):
                continue
            path = _unquote(raw_path)
            caps: set[str] = set()
            for cap in body.get("capabilities", []) or []:
                cap = _unquote(cap)
                if cap not in CAPABILITIES:
                    raise PolicyError('failed to parse policy: path "%s": invalid capability "%s"' % (path, cap))
                caps.add(cap)
            legacy = _unquote(body.get("policy")) if body.get("policy") is not None else None
            if legacy is not None:
                if legacy not in _LEGACY:
                    raise PolicyError('failed to parse policy: path "%s": invalid policy "%s"' % (path, legacy))
                caps |= _LEGACY[legacy]
            if path.startswith("/"):
                path = path[1:]
            merged = rules.setdefault(path, set())
            merged |= caps
    for path, caps in rules.items():
        if "deny" in caps:
            rules[path] = {"deny"}
    return rules


@dataclass
class _Pattern:
    path: str
    caps: set[str]

    @property
    def is_glob(self) -> bool:
        return self.path.endswith("*")

    def matches(self, request_path: str) -> bool:
        pattern = self.path[:-1] if self.is_glob else self.path
        if "+" not in pattern.split("/"):
            return request_path.startswith(pattern) if self.is_glob else request_path == pattern
        p_segs = pattern.split("/")
        r_segs = request_path.split("/")
        if self.is_glob:
            if len(r_segs) < len(p_segs):
                return False
            for i, seg in enumerate(p_segs):
                last = i == len(p_segs) - 1
                if seg == "+":
                    continue
                if last:
                    if not r_segs[i].startswith(seg):
                        return False
                elif seg != r_segs[i]:
                    return False
            return True
        if len(r_segs) != len(p_segs):
            return False
        return all(p == "+" or p == r for p, r in zip(p_segs, r_segs, strict=True))

    def priority_key(self):
        """Higher sorts as more specific (Vault's documented priority rules)."""
        first_wild = len(self.path)
        for i, ch in enumerate(self.path):
            if ch in "*+" and (ch == "*" or self._is_plus_segment(i)):
                first_wild = i
                break
        plus_count = sum(1 for s in self.path.split("/") if s == "+")
        return (first_wild, 0 if self.is_glob else 1, -plus_count, len(self.path), self.path)

    def _is_plus_segment(self, idx: int) -> bool:
        before_ok = idx == 0 or self.path[idx - 1] == "/"
        after_ok = idx == len(self.path) - 1 or self.path[idx + 1] == "/"
        return before_ok and after_ok


class ACL:
    """The merged rules of a token's policies."""

    def __init__(self, policies: list[dict[str, set[str]]], root: bool = False):
        self.root = root
        merged: dict[str, set[str]] = {}
        for rules in policies:
            for path, caps in rules.items():
                merged.setdefault(path, set()).update(caps)
        self.patterns = [_Pattern(p, {"deny"} if "deny" in c else c) for p, c in merged.items()]

    def capabilities(self, path: str) -> set[str]:
        if self.root:
            return {"root"}
        matches = [p for p in self.patterns if p.matches(path)]
        if not matches:
            return set()
        exact = [p for p in matches if not p.is_glob and "+" not in p.path.split("/")]
        best = exact[0] if exact else max(matches, key=_Pattern.priority_key)
        return set(best.caps)

    def allows(self, path: str, capability: str) -> bool:
        caps = self.capabilities(path)
        if "root" in caps:
            return True
        if "deny" in caps:
            return False
        return capability in caps

    def has_any_under(self, prefix: str) -> bool:
        """True if any non-deny rule could grant something under ``prefix``."""
        if self.root:
            return True
        for p in self.patterns:
            if "deny" in p.caps or not p.caps:
                continue
            base = p.path.rstrip("*")
            if base.startswith(prefix) or prefix.startswith(base) or _Pattern(p.path, p.caps).matches(prefix):
                return True
            if "+" in p.path and p.path.split("/")[0] == prefix.rstrip("/").split("/")[0]:
                return True
        return False


DEFAULT_POLICY = """
# Allow tokens to look up their own properties
path "auth/token/lookup-self" {
    capabilities = ["read"]
}
path "auth/token/renew-self" {
    capabilities = ["update"]
}
path "auth/token/revoke-self" {
    capabilities = ["update"]
}
path "sys/capabilities-self" {
    capabilities = ["update"]
}
path "sys/internal/ui/resultant-acl" {
    capabilities = ["read"]
}
path "sys/leases/renew" {
    capabilities = ["update"]
}
path "sys/leases/lookup" {
    capabilities = ["update"]
}
path "cubbyhole/*" {
    capabilities = ["create", "read", "update", "delete", "list"]
}
path "cubbyhole" {
    capabilities = ["list"]
}
path "sys/wrapping/wrap" {
    capabilities = ["update"]
}
path "sys/wrapping/lookup" {
    capabilities = ["update"]
}
path "sys/wrapping/unwrap" {
    capabilities = ["update"]
}
path "sys/tools/hash" {
    capabilities = ["update"]
}
path "sys/tools/hash/*" {
    capabilities = ["update"]
}
path "sys/control-group/request" {
    capabilities = ["update"]
}
"""
