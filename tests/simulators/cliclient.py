"""The HTTP side of the simulators' `nomad` and `vault` CLI subcommands: one request to the
agent named by the address flag or environment, with its CA file, answering (status, body)."""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from typing import Any


class APIError(Exception):
    """A request that got no answer (connection refused, TLS failure)."""


def request(method: str, url: str, body: Any = None, headers: dict | None = None, cacert: str = "",
            raw: bool = False, timeout: float = 30.0) -> tuple[int, Any]:
    data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    context = None
    if url.startswith("https://"):
        context = ssl.create_default_context(cafile=cacert or None)
    try:
        with urllib.request.urlopen(req, timeout=timeout, context=context) as resp:
            status, payload = resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        status, payload = exc.code, exc.read()
    except (urllib.error.URLError, OSError) as exc:
        raise APIError(str(getattr(exc, "reason", exc))) from exc
    if raw and status == 200:
        return status, payload
    try:
        return status, json.loads(payload) if payload else None
    except ValueError:
        return status, payload.decode(errors="replace")
