"""The subset of consul-template that the collection's jobs use, rendered for real.

Supported: literal text; ``{{ with secret "PATH" }} ... {{ end }}`` (a Vault read;
inside it ``.Data.data.FIELD`` for KV v2 and ``.Data.FIELD`` for KV v1, or
``index .Data.data "FIELD"``, each optionally piped to ``toJSON``); ``{{ env "NAME" }}``; ``{{ .Data.data.FIELD }}``
after a ``with``; ``{{/* comments */}}``; the ``{{-`` / ``-}}`` whitespace trims.
``{{ range service "NAME" }} ... {{ end }}`` (consul-template's service query: the
service's passing instances, each with ``.Address``, ``.Port``, ``.ID``, ``.Name``,
``.Node``, ``.Tags``; the caller gives ``service(name)``, read once when the task
starts, not watched). Anything else is a template error, so a job using a feature the simulator lacks
fails loudly instead of rendering something else. The template block's
``left_delimiter``/``right_delimiter`` replace ``{{``/``}}`` (``left``/``right``).

``secret(path)`` is given by the caller; it raises :class:`SecretError` with the
error text Vault's API client would print (consul-template shows it as
``vault.read(PATH): ...``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

_ACTION = re.compile(r"\{\{(-?)\s*(.*?)\s*(-?)\}\}", re.S)


def _action(left: str, right: str) -> re.Pattern:
    if (left, right) == ("{{", "}}"):
        return _ACTION
    return re.compile(r"%s(-?)\s*(.*?)\s*(-?)%s" % (re.escape(left), re.escape(right)), re.S)


class TemplateError(Exception):
    pass


class SecretError(Exception):
    pass


def _tokens(text: str, left: str = "{{", right: str = "}}") -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    for match in _action(left, right).finditer(text):
        literal = text[pos:match.start()]
        if match.group(1):
            literal = literal.rstrip()
        out.append(("text", literal))
        out.append(("action", match.group(2)))
        pos = match.end()
        if match.group(3):
            rest = text[pos:]
            pos += len(rest) - len(rest.lstrip())
    out.append(("text", text[pos:]))
    return out


def _string_arg(expr: str, func: str) -> str | None:
    match = re.fullmatch(r'%s\s+"((?:[^"\\]|\\.)*)"' % func, expr)
    return match.group(1) if match else None


def _field(dot: Any, expr: str) -> Any:
    match = re.fullmatch(r'index\s+(\.[\w.]*)\s+"([^"]+)"', expr)
    if match:
        return _field(dot, match.group(1)).get(match.group(2)) if isinstance(_field(dot, match.group(1)), dict) \
            else None
    if not re.fullmatch(r"\.[\w.]*", expr):
        raise TemplateError("function %r not defined (the simulator renders with secret, service, env, index and "
                            "fields)"
                            % expr.split()[0])
    value = dot
    for part in [p for p in expr.split(".") if p]:
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def render(text: str, env: Callable[[str], str], secret: Callable[[str], dict], name: str = "template",
           left: str = "{{", right: str = "}}", service: Callable[[str], list[dict]] | None = None) -> str:
    tokens = _tokens(text, left or "{{", right or "}}")
    out: list[str] = []
    end = _render(tokens, 0, None, True, env, secret, service, name, out)
    if end != len(tokens):
        raise TemplateError("%s: unexpected {{end}}" % name)
    return "".join(out)


def _block_end(tokens: list[tuple[str, str]], start: int, name: str) -> int:
    """Index of the {{ end }} closing the block opened just before ``start``."""
    depth = 0
    for i in range(start, len(tokens)):
        kind, value = tokens[i]
        if kind != "action":
            continue
        if value.startswith(("with ", "range ")):
            depth += 1
        elif value == "end":
            if depth == 0:
                return i
            depth -= 1
    raise TemplateError("%s: unexpected EOF (a {{ with }} or {{ range }} has no {{ end }})" % name)


def _render(tokens, i, dot, emitting, env, secret, service, name, out) -> int:
    """Render tokens from i up to the {{ end }} of the current block (or the end); answer that index."""
    while i < len(tokens):
        kind, value = tokens[i]
        if kind == "text":
            if emitting:
                out.append(value)
            i += 1
            continue
        if value.startswith("/*"):
            i += 1
            continue
        if value == "end":
            return i
        if value.startswith("with "):
            path = _string_arg(value[5:].strip(), "secret")
            if path is None:
                raise TemplateError("%s: only {{ with secret \"PATH\" }} is supported, not {{ %s }}" % (name, value))
            close = _block_end(tokens, i + 1, name)
            data = secret(path) if emitting else None
            _render(tokens, i + 1, data, bool(emitting and data), env, secret, service, name, out)
            i = close + 1
            continue
        if value.startswith("range "):
            sname = _string_arg(value[6:].strip(), "service")
            if sname is None:
                raise TemplateError("%s: only {{ range service \"NAME\" }} is supported, not {{ %s }}" % (name, value))
            if service is None and emitting:
                raise TemplateError("%s: service %r: no Consul to ask" % (name, sname))
            close = _block_end(tokens, i + 1, name)
            instances = service(sname) if emitting else []
            for instance in instances or [None]:
                _render(tokens, i + 1, instance, bool(emitting and instance is not None), env, secret, service,
                        name, out)
            i = close + 1
            continue
        i += 1
        if not emitting:
            continue
        arg = _string_arg(value, "env")
        if arg is not None:
            out.append(env(arg))
            continue
        pipe = re.fullmatch(r"(.*?)\s*\|\s*toJSON", value, re.S)
        result = _field(dot, pipe.group(1) if pipe else value)
        if pipe:  # consul-template's toJSON: a JSON encoding of the value (a string in double quotes)
            out.append(json.dumps(result, separators=(",", ":")))
            continue
        out.append("<no value>" if result is None else str(result))
    return i


def parse_env_file(text: str) -> dict[str, str]:
    """KEY=VALUE lines of a template with ``env = true`` (blank lines and # comments skipped)."""
    out = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, val = line.partition("=")
        if sep:
            val = val.strip()
            if len(val) > 1 and val[0] == val[-1] == '"':  # go-envparse: a double-quoted value takes escapes
                try:
                    val = json.loads(val)
                except ValueError:
                    val = val[1:-1]
            out[key.strip()] = val
    return out
