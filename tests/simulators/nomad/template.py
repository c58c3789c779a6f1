"""The subset of consul-template that the collection's jobs use, rendered for real.

Supported: literal text; ``{{ with secret "PATH" }} ... {{ end }}`` (a Vault read;
inside it ``.Data.data.FIELD`` for KV v2 and ``.Data.FIELD`` for KV v1, or
``index .Data.data "FIELD"``, each optionally piped to ``toJSON``); ``{{ env "NAME" }}``; ``{{ .Data.data.FIELD }}``
after a ``with``; ``{{/* comments */}}``; the ``{{-`` / ``-}}`` whitespace trims.
``{{ range service "NAME" }} ... {{ end }}`` (consul-template's service query: the
service's passing instances, each with ``.Address``, ``.Port``, ``.ID``, ``.Name``,
``.Node``, ``.NodeAddress``, ``.Tags``, ``.ServiceMeta``; ``"TAG.NAME"`` keeps the instances
with that tag; the argument may be a field, ``service .Name``); ``{{ range services }}`` (the catalog's
services, each with ``.Name`` and ``.Tags``); ``{{ if PIPELINE }} ... {{ end }}`` with
``FIELD | contains "X"``, ``in FIELD "X"`` or a value; ``index FIELD "KEY"`` (a missing key
is "", Go's zero value for a string map). The caller gives ``service(query)`` and
``services()``; the client re-renders a template that queries Consul while its task runs
(see client.py). Anything else is a template error, so a job using a feature the simulator lacks
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


_STRING = r'"((?:[^"\\]|\\.)*)"'


def _string_arg(expr: str, func: str) -> str | None:
    match = re.fullmatch(r"%s\s+" % func + _STRING, expr)
    return match.group(1) if match else None


def _field(dot: Any, expr: str) -> Any:
    """A value: a field ``.A.B`` (Go's zero value "" for a missing map key under ``index``), a string
    literal, or ``index FIELD "KEY"``."""
    expr = expr.strip()
    match = re.fullmatch(_STRING, expr)
    if match:
        return json.loads(expr)
    match = re.fullmatch(r'index\s+(\.[\w.]*)\s+' + _STRING, expr)
    if match:
        holder = _field(dot, match.group(1))
        return holder.get(match.group(2), "") if isinstance(holder, dict) else None
    if not re.fullmatch(r"\.[\w.]*", expr):
        raise TemplateError("function %r not defined (the simulator renders with secret, service, services, env, "
                            "index, contains, in and fields)" % expr.split()[0])
    value = dot
    for part in [p for p in expr.split(".") if p]:
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _condition(dot: Any, expr: str) -> bool:
    """An ``if`` pipeline: ``FIELD | contains "X"``, ``in FIELD "X"`` (consul-template's list tests), or a
    value (true when not empty, as in Go templates)."""
    match = re.fullmatch(r'(.+?)\s*\|\s*contains\s+' + _STRING, expr.strip()) or \
        re.fullmatch(r'in\s+(\S+)\s+' + _STRING, expr.strip())
    if match:
        held = _field(dot, match.group(1))
        return json.loads('"%s"' % match.group(2)) in (held or [])
    return bool(_field(dot, expr))


def _service_query(dot: Any, expr: str) -> str | None:
    """The argument of ``service ARG``: a string literal or a field (``service .Name``)."""
    match = re.fullmatch(r"service\s+(.+)", expr)
    if not match:
        return None
    arg = match.group(1).strip()
    if not (re.fullmatch(_STRING, arg) or re.fullmatch(r"\.[\w.]*", arg)):
        return None
    value = _field(dot, arg)
    return value if isinstance(value, str) else ""


def render(text: str, env: Callable[[str], str], secret: Callable[[str], dict], name: str = "template",
           left: str = "{{", right: str = "}}", service: Callable[[str], list[dict]] | None = None,
           services: Callable[[], list[dict]] | None = None) -> str:
    """``service(query)`` answers the passing instances of a service (query ``NAME`` or ``TAG.NAME``);
    ``services()`` the catalog's services, each ``{"Name": ..., "Tags": [...]}``, sorted by name."""
    tokens = _tokens(text, left or "{{", right or "}}")
    out: list[str] = []
    end = _render(tokens, 0, None, True, env, secret, (service, services), name, out)
    if end != len(tokens):
        raise TemplateError("%s: unexpected {{end}}" % name)
    return "".join(out)


def uses_consul(text: str, left: str = "{{", right: str = "}}") -> bool:
    """Whether a template queries Consul (its output can change while the task runs)."""
    return any(kind == "action" and re.match(r"range\s+services?\b", value)
               for kind, value in _tokens(text, left or "{{", right or "}}"))


def _block_end(tokens: list[tuple[str, str]], start: int, name: str) -> int:
    """Index of the {{ end }} closing the block opened just before ``start``."""
    depth = 0
    for i in range(start, len(tokens)):
        kind, value = tokens[i]
        if kind != "action":
            continue
        if value.startswith(("with ", "range ", "if ")):
            depth += 1
        elif value == "end":
            if depth == 0:
                return i
            depth -= 1
    raise TemplateError("%s: unexpected EOF (a {{ with }}, {{ range }} or {{ if }} has no {{ end }})" % name)


def _render(tokens, i, dot, emitting, env, secret, consul, name, out) -> int:
    """Render tokens from i up to the {{ end }} of the current block (or the end); answer that index."""
    service, services = consul
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
            _render(tokens, i + 1, data, bool(emitting and data), env, secret, consul, name, out)
            i = close + 1
            continue
        if value.startswith("if "):
            close = _block_end(tokens, i + 1, name)
            _render(tokens, i + 1, dot, bool(emitting and _condition(dot, value[3:])), env, secret, consul, name,
                    out)
            i = close + 1
            continue
        if value.startswith("range "):
            expr = value[6:].strip()
            close = _block_end(tokens, i + 1, name)
            if expr == "services":
                if services is None and emitting:
                    raise TemplateError("%s: services: no Consul to ask" % name)
                items = services() if emitting else []
            else:
                query = _service_query(dot, expr) if emitting else ""
                if query is None:
                    raise TemplateError("%s: only {{ range service \"NAME\" }}, {{ range service .Field }} and "
                                        "{{ range services }} are supported, not {{ %s }}" % (name, value))
                if service is None and emitting:
                    raise TemplateError("%s: service %r: no Consul to ask" % (name, query))
                items = service(query) if emitting else []
            for item in items or [None]:
                _render(tokens, i + 1, item, bool(emitting and item is not None), env, secret, consul, name, out)
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
