"""HCL2 job files -> Nomad API job JSON, the way ``/v1/jobs/parse`` does it.

python-hcl2 gives a raw tree (quoted strings keep their quotes, expressions are
``${...}``); this module walks it with a schema of the job specification blocks
the collection's job templates use, evaluates ``var.*`` references against the
file's ``variable`` blocks and the request's ``Variables`` (an HCL var file),
and leaves Nomad's runtime interpolations (``${node.unique.id}``,
``${NOMAD_TASK_DIR}``, ``${attr.*}``, ``${meta.*}``) in place, as jobspec2 does.
Errors read like HCL diagnostics: ``input.hcl:LINE,COL-COL: Summary; Detail``.
"""

from __future__ import annotations

import re
from typing import Any

import hcl2
from hcl2 import SerializationOptions

FILENAME = "input.hcl"
_OPTS = SerializationOptions(with_comments=False, preserve_heredocs=False)
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNIT_NS = {"ns": 1, "us": 1000, "µs": 1000, "ms": 10**6, "s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9}


class ParseError(Exception):
    """An HCL diagnostic; ``str()`` is the text Nomad answers with."""


def parse_duration(value: Any, where: str = "") -> int:
    if isinstance(value, int):
        return value
    text = str(value).strip()
    if text in ("0", ""):
        return 0
    pos, total = 0, 0
    for match in _DURATION.finditer(text):
        if match.start() != pos:
            break
        total += int(float(match.group(1)) * _UNIT_NS[match.group(2)])
        pos = match.end()
    if pos != len(text):
        raise ParseError('%s: Unsuitable value type; time: invalid duration "%s"' % (where or FILENAME, text))
    return total


# Schema: block name -> (attribute map, block map). Attribute map: hcl name -> (API name, kind)
# kinds: str, int, bool, list, dur (Go duration -> ns), map (free-form), any.
# Block map: hcl name -> (API name, schema name, mode). Modes: one, list, labeled (list, label -> Name/Label field),
# labeled_map (dict keyed by label), map (free-form attributes).
S: dict[str, tuple[dict, dict]] = {}


def _schema(name: str, attrs: dict, blocks: dict | None = None) -> None:
    S[name] = (attrs, blocks or {})


_CONSTRAINT_ATTRS = {"attribute": ("LTarget", "str"), "value": ("RTarget", "str"),
                     "operator": ("Operand", "str"), "distinct_hosts": ("_distinct_hosts", "bool"),
                     "distinct_property": ("_distinct_property", "str"),
                     "regexp": ("_regexp", "str"), "version": ("_version", "str"), "semver": ("_semver", "str"),
                     "set_contains": ("_set_contains", "str"), "set_contains_any": ("_set_contains_any", "str"),
                     "set_contains_all": ("_set_contains_all", "str")}
_schema("constraint", _CONSTRAINT_ATTRS)
_schema("affinity", {"attribute": ("LTarget", "str"), "value": ("RTarget", "str"), "operator": ("Operand", "str"),
                     "weight": ("Weight", "int")})
_schema("spread", {"attribute": ("Attribute", "str"), "weight": ("Weight", "int")},
        {"target": ("SpreadTarget", "spread_target", "labeled")})
_schema("spread_target", {"percent": ("Percent", "int")})
_schema("restart", {"attempts": ("Attempts", "int"), "interval": ("Interval", "dur"), "delay": ("Delay", "dur"),
                    "mode": ("Mode", "str"), "render_templates": ("RenderTemplates", "bool")})
_schema("reschedule", {"attempts": ("Attempts", "int"), "interval": ("Interval", "dur"), "delay": ("Delay", "dur"),
                       "delay_function": ("DelayFunction", "str"), "max_delay": ("MaxDelay", "dur"),
                       "unlimited": ("Unlimited", "bool")})
_schema("update", {"max_parallel": ("MaxParallel", "int"), "health_check": ("HealthCheck", "str"),
                   "min_healthy_time": ("MinHealthyTime", "dur"), "healthy_deadline": ("HealthyDeadline", "dur"),
                   "progress_deadline": ("ProgressDeadline", "dur"), "auto_revert": ("AutoRevert", "bool"),
                   "auto_promote": ("AutoPromote", "bool"), "canary": ("Canary", "int"), "stagger": ("Stagger", "dur")})
_schema("migrate", {"max_parallel": ("MaxParallel", "int"), "health_check": ("HealthCheck", "str"),
                    "min_healthy_time": ("MinHealthyTime", "dur"), "healthy_deadline": ("HealthyDeadline", "dur")})
_schema("periodic", {"cron": ("Spec", "str"), "crons": ("Specs", "list"),
                     "prohibit_overlap": ("ProhibitOverlap", "bool"),
                     "time_zone": ("TimeZone", "str"), "enabled": ("Enabled", "bool")})
_schema("parameterized", {"payload": ("Payload", "str"), "meta_required": ("MetaRequired", "list"),
                          "meta_optional": ("MetaOptional", "list")})
_schema("ephemeral_disk", {"size": ("SizeMB", "int"), "sticky": ("Sticky", "bool"), "migrate": ("Migrate", "bool")})
_schema("port", {"static": ("Value", "int"), "to": ("To", "int"), "host_network": ("HostNetwork", "str")})
_schema("dns", {"servers": ("Servers", "list"), "searches": ("Searches", "list"), "options": ("Options", "list")})
_schema("network", {"mode": ("Mode", "str"), "hostname": ("Hostname", "str")},
        {"port": ("_ports", "port", "labeled"), "dns": ("DNS", "dns", "one")})
_schema("check_restart", {"limit": ("Limit", "int"), "grace": ("Grace", "dur"),
                          "ignore_warnings": ("IgnoreWarnings", "bool")})
_schema("check", {"name": ("Name", "str"), "type": ("Type", "str"), "path": ("Path", "str"),
                  "protocol": ("Protocol", "str"), "port": ("PortLabel", "str"), "interval": ("Interval", "dur"),
                  "timeout": ("Timeout", "dur"), "method": ("Method", "str"), "address_mode": ("AddressMode", "str"),
                  "command": ("Command", "str"), "args": ("Args", "list"), "initial_status": ("InitialStatus", "str"),
                  "tls_skip_verify": ("TLSSkipVerify", "bool"), "expose": ("Expose", "bool"),
                  "success_before_passing": ("SuccessBeforePassing", "int"),
                  "failures_before_critical": ("FailuresBeforeCritical", "int"), "task": ("TaskName", "str"),
                  "header": ("Header", "map"), "body": ("Body", "str"), "on_update": ("OnUpdate", "str")},
        {"check_restart": ("CheckRestart", "check_restart", "one"), "header": ("Header", None, "map")})
_schema("service", {"name": ("Name", "str"), "port": ("PortLabel", "str"), "tags": ("Tags", "list"),
                    "canary_tags": ("CanaryTags", "list"), "address_mode": ("AddressMode", "str"),
                    "address": ("Address", "str"), "provider": ("Provider", "str"), "task": ("TaskName", "str"),
                    "enable_tag_override": ("EnableTagOverride", "bool"), "on_update": ("OnUpdate", "str"),
                    "meta": ("Meta", "map"), "cluster": ("Cluster", "str")},
        {"check": ("Checks", "check", "list"), "meta": ("Meta", None, "map"),
         "check_restart": ("CheckRestart", "check_restart", "one")})
_schema("template", {"data": ("EmbeddedTmpl", "str"), "destination": ("DestPath", "str"),
                     "source": ("SourcePath", "str"), "env": ("Envvars", "bool"), "change_mode": ("ChangeMode", "str"),
                     "change_signal": ("ChangeSignal", "str"), "splay": ("Splay", "dur"), "perms": ("Perms", "str"),
                     "uid": ("Uid", "int"), "gid": ("Gid", "int"), "left_delimiter": ("LeftDelim", "str"),
                     "right_delimiter": ("RightDelim", "str"),
                     "error_on_missing_key": ("ErrMissingKey", "bool")})
_schema("vault", {"role": ("Role", "str"), "policies": ("Policies", "list"), "change_mode": ("ChangeMode", "str"),
                  "change_signal": ("ChangeSignal", "str"), "env": ("Env", "bool"),
                  "disable_file": ("DisableFile", "bool"),
                  "namespace": ("Namespace", "str"), "cluster": ("Cluster", "str"),
                  "allow_token_expiration": ("AllowTokenExpiration", "bool")})
_schema("identity", {"name": ("Name", "str"), "aud": ("Audience", "list"), "env": ("Env", "bool"),
                     "file": ("File", "bool"), "ttl": ("TTL", "dur"), "change_mode": ("ChangeMode", "str"),
                     "change_signal": ("ChangeSignal", "str"), "filepath": ("Filepath", "str")})
_schema("volume", {"type": ("Type", "str"), "source": ("Source", "str"), "read_only": ("ReadOnly", "bool"),
                   "access_mode": ("AccessMode", "str"), "attachment_mode": ("AttachmentMode", "str"),
                   "per_alloc": ("PerAlloc", "bool"), "sticky": ("Sticky", "bool")})
_schema("volume_mount", {"volume": ("Volume", "str"), "destination": ("Destination", "str"),
                         "read_only": ("ReadOnly", "bool"), "propagation_mode": ("PropagationMode", "str"),
                         "selinux_label": ("SELinuxLabel", "str")})
# Task-level `resources { network {} }` is not part of the schema: current Nomad has no such block.
_schema("resources", {"cpu": ("CPU", "int"), "cores": ("Cores", "int"), "memory": ("MemoryMB", "int"),
                      "memory_max": ("MemoryMaxMB", "int"), "disk": ("DiskMB", "int")})
_schema("logs", {"max_files": ("MaxFiles", "int"), "max_file_size": ("MaxFileSizeMB", "int"),
                 "disabled": ("Disabled", "bool")})
_schema("lifecycle", {"hook": ("Hook", "str"), "sidecar": ("Sidecar", "bool")})
_schema("artifact", {"source": ("GetterSource", "str"), "destination": ("RelativeDest", "str"),
                     "mode": ("GetterMode", "str"), "options": ("GetterOptions", "map"),
                     "headers": ("GetterHeaders", "map")},
        {"options": ("GetterOptions", None, "map")})
_schema("consul", {"namespace": ("Namespace", "str"), "cluster": ("Cluster", "str"), "partition": ("Partition", "str")})
_schema("task", {"driver": ("Driver", "str"), "user": ("User", "str"), "kill_timeout": ("KillTimeout", "dur"),
                 "kill_signal": ("KillSignal", "str"), "leader": ("Leader", "bool"),
                 "shutdown_delay": ("ShutdownDelay", "dur"), "kind": ("Kind", "str"), "env": ("Env", "map"),
                 "meta": ("Meta", "map"), "config": ("Config", "map")},
        {"config": ("Config", None, "map"), "env": ("Env", None, "map"), "meta": ("Meta", None, "map"),
         "constraint": ("Constraints", "constraint", "list"), "affinity": ("Affinities", "affinity", "list"),
         "resources": ("Resources", "resources", "one"), "service": ("Services", "service", "list"),
         "template": ("Templates", "template", "list"), "vault": ("Vault", "vault", "one"),
         "volume_mount": ("VolumeMounts", "volume_mount", "list"), "artifact": ("Artifacts", "artifact", "list"),
         "logs": ("LogConfig", "logs", "one"), "lifecycle": ("Lifecycle", "lifecycle", "one"),
         "restart": ("RestartPolicy", "restart", "one"), "identity": ("_identities", "identity", "list"),
         "consul": ("Consul", "consul", "one")})
_schema("group", {"count": ("Count", "int"), "shutdown_delay": ("ShutdownDelay", "dur"), "meta": ("Meta", "map"),
                  "stop_after_client_disconnect": ("StopAfterClientDisconnect", "dur"),
                  "max_client_disconnect": ("MaxClientDisconnect", "dur"),
                  "prevent_reschedule_on_lost": ("PreventRescheduleOnLost", "bool")},
        {"constraint": ("Constraints", "constraint", "list"), "affinity": ("Affinities", "affinity", "list"),
         "spread": ("Spreads", "spread", "list"), "task": ("Tasks", "task", "labeled"),
         "restart": ("RestartPolicy", "restart", "one"), "reschedule": ("ReschedulePolicy", "reschedule", "one"),
         "ephemeral_disk": ("EphemeralDisk", "ephemeral_disk", "one"), "update": ("Update", "update", "one"),
         "migrate": ("Migrate", "migrate", "one"), "network": ("Networks", "network", "list"),
         "service": ("Services", "service", "list"), "volume": ("Volumes", "volume", "labeled_map"),
         "meta": ("Meta", None, "map"), "vault": ("_vault", "vault", "one"), "consul": ("Consul", "consul", "one")})
_schema("job", {"region": ("Region", "str"), "namespace": ("Namespace", "str"), "type": ("Type", "str"),
                "priority": ("Priority", "int"), "all_at_once": ("AllAtOnce", "bool"),
                "datacenters": ("Datacenters", "list"), "node_pool": ("NodePool", "str"), "name": ("Name", "str"),
                "meta": ("Meta", "map")},
        {"constraint": ("Constraints", "constraint", "list"), "affinity": ("Affinities", "affinity", "list"),
         "spread": ("Spreads", "spread", "list"), "group": ("TaskGroups", "group", "labeled"),
         "update": ("Update", "update", "one"), "periodic": ("Periodic", "periodic", "one"),
         "parameterized": ("ParameterizedJob", "parameterized", "one"), "meta": ("Meta", None, "map"),
         "reschedule": ("Reschedule", "reschedule", "one"), "migrate": ("Migrate", "migrate", "one"),
         "vault": ("_vault", "vault", "one")})


class _Ctx:
    def __init__(self, text: str, variables: dict[str, Any]):
        self.text = text
        self.lines = text.splitlines()
        self.vars = variables
        self.locals: dict[str, Any] = {}

    def locate(self, name: str, after: int = 0) -> tuple[int, int]:
        """Best-effort source position (1-based line, column) of an argument/block named ``name``."""
        pat = re.compile(r"^(\s*)(%s)\b" % re.escape(name))
        for idx, line in enumerate(self.lines[after:], start=after):
            match = pat.match(line)
            if match:
                return idx + 1, len(match.group(1)) + 1
        return 1, 1

    def diag(self, name: str, summary: str, detail: str, after: int = 0) -> ParseError:
        line, col = self.locate(name, after)
        return ParseError("%s:%d,%d-%d: %s; %s" % (FILENAME, line, col, col + len(name), summary, detail))


# ---- values -------------------------------------------------------------

_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\"}
_RUNTIME_ROOTS = ("node.", "attr.", "meta.", "NOMAD_", "env.", "device.", "unique.")


def _unquote(raw: str) -> str:
    body = raw[1:-1]
    out, i = [], 0
    while i < len(body):
        ch = body[i]
        if ch == "\\" and i + 1 < len(body):
            nxt = body[i + 1]
            if nxt in _ESCAPES:
                out.append(_ESCAPES[nxt])
                i += 2
                continue
            if nxt == "u" and i + 5 < len(body) + 1:
                out.append(chr(int(body[i + 2:i + 6], 16)))
                i += 6
                continue
        out.append(ch)
        i += 1
    return "".join(out)


def _template_parts(text: str) -> list[tuple[str, str]]:
    """Split an (unescaped) template string into literal and ``${expr}`` parts; ``$${`` is a literal ``${``."""
    parts: list[tuple[str, str]] = []
    buf, i = [], 0
    while i < len(text):
        if text.startswith("$${", i):
            buf.append("${")
            i += 3
            continue
        if text.startswith("${", i):
            depth, j = 1, i + 2
            while j < len(text) and depth:
                if text[j] == "{":
                    depth += 1
                elif text[j] == "}":
                    depth -= 1
                j += 1
            if buf:
                parts.append(("lit", "".join(buf)))
                buf = []
            parts.append(("expr", text[i + 2:j - 1].strip()))
            i = j
            continue
        if text.startswith("%%{", i):
            buf.append("%{")
            i += 3
            continue
        buf.append(text[i])
        i += 1
    if buf:
        parts.append(("lit", "".join(buf)))
    return parts


def _eval_expr(expr: str, ctx: _Ctx, attr: str) -> tuple[bool, Any]:
    """Evaluate ``expr``; answers (known, value). Unknown runtime references stay as ``${expr}``."""
    match = re.fullmatch(r"var\.([A-Za-z_][A-Za-z0-9_-]*)", expr)
    if match:
        name = match.group(1)
        if name not in ctx.vars:
            raise ctx.diag(attr, "Reference to undeclared input variable",
                           'An input variable with the name "%s" has not been declared.' % name)
        return True, ctx.vars[name]
    match = re.fullmatch(r"local\.([A-Za-z_][A-Za-z0-9_-]*)", expr)
    if match:
        if match.group(1) not in ctx.locals:
            raise ctx.diag(attr, "Unsupported attribute",
                           'This object does not have an attribute named "%s".' % match.group(1))
        return True, ctx.locals[match.group(1)]
    func = re.fullmatch(r"(upper|lower)\((.*)\)", expr)
    if func:
        known, value = _eval_expr(func.group(2).strip(), ctx, attr)
        if known:
            return True, value.upper() if func.group(1) == "upper" else value.lower()
    if re.fullmatch(r'"[^"]*"', expr):
        return True, expr[1:-1]
    if expr.startswith(_RUNTIME_ROOTS) or re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.\[\]-]*", expr):
        return False, "${%s}" % expr
    raise ctx.diag(attr, "Unsupported expression",
                   "the Nomad simulator does not evaluate %r (see tests/simulators/nomad/README.md)" % expr)


def value(raw: Any, ctx: _Ctx, attr: str) -> Any:
    if isinstance(raw, list):
        return [value(v, ctx, attr) for v in raw]
    if isinstance(raw, dict):
        return {_key(k): value(v, ctx, attr) for k, v in raw.items() if not k.startswith("__")}
    if not isinstance(raw, str):
        return raw
    if raw.startswith('"') and raw.endswith('"') and len(raw) >= 2:
        parts = _template_parts(_unquote(raw))
        out = []
        for kind, text in parts:
            if kind == "lit":
                out.append(text)
            else:
                out.append(str(_eval_expr(text, ctx, attr)[1]))
        return "".join(out)
    if raw.startswith("${") and raw.endswith("}"):
        known, val = _eval_expr(raw[2:-1].strip(), ctx, attr)
        return val
    return raw


def _key(k: str) -> str:
    return _unquote(k) if k.startswith('"') and k.endswith('"') else k


def _coerce(val: Any, kind: str, ctx: _Ctx, attr: str) -> Any:
    try:
        if kind == "int":
            return int(val)
        if kind == "bool":
            if isinstance(val, str):
                return {"true": True, "false": False}[val]
            return bool(val)
        if kind == "dur":
            return parse_duration(val, FILENAME)
        if kind == "list" and not isinstance(val, list):
            raise ValueError
        if kind == "str" and not isinstance(val, str):
            return str(val).lower() if isinstance(val, bool) else str(val)
    except (ValueError, KeyError, TypeError):
        raise ctx.diag(attr, "Incorrect attribute value type",
                       'Inappropriate value for attribute "%s": %s required.'
                       % (attr, {"dur": "string"}.get(kind, kind)))
    return val


# ---- blocks -------------------------------------------------------------

def _is_block(item: Any) -> bool:
    if not isinstance(item, dict):
        return False
    if item.get("__is_block__"):
        return True
    keys = [k for k in item if not k.startswith("__")]
    return len(keys) == 1 and isinstance(item[keys[0]], dict) and bool(item[keys[0]].get("__is_block__"))


def _block(body: dict, schema: str, ctx: _Ctx) -> dict:
    attrs, blocks = S[schema]
    out: dict[str, Any] = {}
    for key, raw in body.items():
        if key.startswith("__"):
            continue
        is_block = isinstance(raw, list) and raw and all(_is_block(b) for b in raw)
        if is_block:
            if key not in blocks:
                raise ctx.diag(key, "Unsupported block type", 'Blocks of type "%s" are not expected here.' % key)
            api, sub, mode = blocks[key]
            if mode == "map":
                merged: dict[str, Any] = {}
                for b in raw:
                    merged.update(value(b, ctx, key))
                out[api] = merged
            elif mode == "one":
                if len(raw) > 1:
                    raise ctx.diag(key, "Duplicate %s block" % key,
                                   'Only one block of type "%s" is allowed.' % key)
                out[api] = _block(raw[0], sub, ctx)
            elif mode == "list":
                out.setdefault(api, []).extend(_block(b, sub, ctx) for b in raw)
            else:  # labeled / labeled_map
                for b in raw:
                    labels = [k for k in b if not k.startswith("__")]
                    if len(labels) != 1 or not isinstance(b[labels[0]], dict):
                        raise ctx.diag(key, "Missing name for %s" % key,
                                       'All %s blocks must have 1 labels (name).' % key)
                    label = _key(labels[0])
                    item = _block(b[labels[0]], sub, ctx)
                    if mode == "labeled_map":
                        item["Name"] = label
                        out.setdefault(api, {})[label] = item
                    else:
                        item["Label" if sub in ("port", "spread_target") else "Name"] = label
                        out.setdefault(api, []).append(item)
            continue
        if key not in attrs:
            raise ctx.diag(key, "Unsupported argument", 'An argument named "%s" is not expected here.' % key)
        api, kind = attrs[key]
        val = value(raw, ctx, key)
        out[api] = val if kind in ("map", "any") else _coerce(val, kind, ctx, key)
    return _post(schema, out)


def _post(schema: str, out: dict) -> dict:
    if schema == "constraint":
        for special in ("distinct_hosts", "distinct_property", "regexp", "version", "semver",
                        "set_contains", "set_contains_any", "set_contains_all"):
            val = out.pop("_" + special, None)
            if val is None:
                continue
            out["Operand"] = special
            if special == "distinct_hosts":
                out["RTarget"] = "true" if val else "false"
            elif special == "distinct_property":
                out["LTarget"] = val
            else:
                out["RTarget"] = val
        out.setdefault("Operand", "=")
    elif schema == "affinity":
        out.setdefault("Operand", "=")
    elif schema == "network":
        ports = out.pop("_ports", [])
        reserved = [p for p in ports if p.get("Value")]
        dynamic = [p for p in ports if not p.get("Value")]
        if reserved:
            out["ReservedPorts"] = reserved
        if dynamic:
            out["DynamicPorts"] = dynamic
    elif schema == "periodic":
        out["SpecType"] = "cron"
    elif schema == "task":
        idents = out.pop("_identities", [])
        for ident in idents:
            if ident.get("Name", "default") == "default":
                out["Identity"] = ident
            else:
                out.setdefault("Identities", []).append(ident)
    return out


def _declare(tree: dict, ctx: _Ctx, var_file: str) -> dict[str, Any]:
    declared: dict[str, dict] = {}
    for block in tree.get("variable", []):
        for label, body in block.items():
            if label.startswith("__"):
                continue
            declared[_key(label)] = body
    given: dict[str, Any] = {}
    if var_file and var_file.strip():
        try:
            raw = hcl2.loads(var_file, serialization_options=_OPTS)
        except Exception as exc:  # lark raises several types
            raise ParseError(_syntax_error(exc, "<value for var file>"))
        for name, val in raw.items():
            if name.startswith("__"):
                continue
            if name not in declared:
                raise ParseError('<value for var file>: Undefined variable; A variable named "%s" was assigned a '
                                 "value, but was not declared." % name)
            given[name] = value(val, _Ctx("", {}), name)
    values: dict[str, Any] = {}
    empty = _Ctx(ctx.text, {})
    for name, body in declared.items():
        if name in given:
            val = given[name]
        elif "default" in body:
            val = value(body["default"], empty, "default")
        else:
            line, col = ctx.locate("variable")
            raise ParseError('%s:%d,%d-%d: Unset variable "%s"; A used variable must be set or have a default '
                             "value; see https://developer.hashicorp.com/nomad/docs/job-specification/hcl2/variables "
                             "for details." % (FILENAME, line, col, col + 8, name))
        vtype = str(body.get("type", "")).strip('"$ {}')
        if vtype == "number" and isinstance(val, str):
            val = float(val) if "." in val else int(val)
        elif vtype == "bool" and isinstance(val, str):
            val = val == "true"
        values[name] = val
    return values


def _syntax_error(exc: Exception, filename: str = FILENAME) -> str:
    line = getattr(exc, "line", 1) or 1
    col = getattr(exc, "column", 1) or 1
    token = getattr(exc, "token", None)
    found = ("found %r" % str(token).strip()) if token is not None else "found an invalid token"
    return ("%s:%d,%d-%d: Invalid expression; Expected the start of an expression or a closing brace, but %s."
            % (filename, line, col, col + 1, found))


def parse(text: str, variables: str = "") -> dict:
    """Parse an HCL2 job file into an (uncanonicalised) API job. Raises ParseError."""
    try:
        tree = hcl2.loads(text, serialization_options=_OPTS)
    except Exception as exc:
        raise ParseError(_syntax_error(exc))
    ctx = _Ctx(text, {})
    for key in tree:
        if key not in ("job", "variable", "variables", "locals") and not key.startswith("__"):
            raise ctx.diag(key, "Unsupported block type", 'Blocks of type "%s" are not expected here.' % key)
    jobs = tree.get("job", [])
    if not jobs:
        raise ParseError('%s:1,1-1: Missing job block; A job block is required' % FILENAME)
    if len(jobs) > 1:
        first = ctx.locate("job")[0]
        second, col = ctx.locate("job", first)
        raise ParseError('%s:%d,%d-%d: Duplicate job block; Only one block of type "job" is allowed. Previous '
                         "definition was at %s:%d,1-4." % (FILENAME, second, col, col + 3, FILENAME, first))
    ctx.vars = _declare(tree, ctx, variables)
    for block in tree.get("locals", []):
        for name, raw in block.items():
            if not name.startswith("__"):
                ctx.locals[name] = value(raw, ctx, name)
    (label, body), = [(k, v) for k, v in jobs[0].items() if not k.startswith("__")]
    job = _block(body, "job", ctx)
    job["ID"] = _key(label)
    job.setdefault("Name", job["ID"])
    _push_vault(job)
    return job


def _push_vault(job: dict) -> None:
    """jobspec2 copies job- and group-level vault blocks down to tasks that have none."""
    job_vault = job.pop("_vault", None)
    for group in job.get("TaskGroups", []):
        group_vault = group.pop("_vault", None) or job_vault
        for task in group.get("Tasks", []):
            if group_vault and "Vault" not in task:
                task["Vault"] = dict(group_vault)
