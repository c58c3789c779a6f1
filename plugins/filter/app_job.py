# Copyright: selfhost.homelab contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The app_job and app_volumes filters: one app definition -> a complete Nomad job, and its host volumes.

Every app role is a set of defaults describing its app (image, port, subdomain,
env, secrets, volumes, resources, check); these filters are the one mechanism
that turns such a definition into the Nomad job (API JSON, the form
selfhost.homelab.nomad_job takes as a dict) and into the list of host volumes
the internal `app` role creates (ZFS datasets or directories) and registers as
Nomad dynamic host volumes. Names follow docs/design.md: Consul service name =
subdomain, Vault path/policy/role by the vault_job filter, datasets
<pool>/apps/<job>[/<volume>], scratch under <scratch_root>/<job>[/<volume>].
"""

from __future__ import annotations

import copy
import posixpath
import re
from collections.abc import Mapping

from ansible.errors import AnsibleFilterError

from ansible_collections.selfhost.homelab.plugins.filter.vault_job import vault_job

_JOB = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_VOLUME = re.compile(r"^[a-z0-9](?:[a-z0-9_-]{0,62}[a-z0-9])?$")
_ENV = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# An image reference with an explicit tag or digest: "name:tag" or "name@sha256:...".
_IMAGE = re.compile(r"^[a-z0-9][a-z0-9._/-]*(?::[0-9]+/[a-z0-9._/-]+)?"
                    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}|@sha256:[0-9a-f]{64})$")
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNITS = {"ns": 1, "us": 1000, "µs": 1000, "ms": 10 ** 6, "s": 10 ** 9, "m": 60 * 10 ** 9, "h": 3600 * 10 ** 9}
_RESERVED_SUBDOMAINS = {"traefik": "traefik"}  # Traefik's own service (docs/design.md, "Names")
_KINDS = ("data", "scratch", "external")
_ACCESS = {False: "single-node-writer", True: "single-node-reader-only"}
_RESTART_MODES = ("fail", "delay")
_CHECK_TYPES = ("tcp", "http")
_KNOWN = {"name", "subdomain", "image", "port", "env", "secrets", "volumes", "resources", "check", "restart",
          "command", "args", "docker", "tags", "count", "datacenters", "host", "meta", "secrets_from",
          "kill_timeout", "user", "expose", "host_port", "files", "sidecars"}

DEFAULT_RESTART = {"attempts": 2, "interval": "30m", "delay": "15s", "mode": "fail"}
DEFAULT_CHECK = {"type": "tcp", "interval": "15s", "timeout": "5s"}


class _Err:
    def __init__(self, app):
        self.app = app

    def __call__(self, field, msg, *args):
        return AnsibleFilterError("app_job: app %r: %s: %s" % (self.app, field, msg % args if args else msg))


def duration_ns(value, field, err):
    """'30m', '1h30m', '15s' or a number of seconds -> nanoseconds (the API's unit)."""
    if isinstance(value, bool):
        raise err(field, "%r is not a duration", value)
    if isinstance(value, (int, float)):
        if value < 0:
            raise err(field, "%r must not be negative", value)
        return int(value * 10 ** 9)
    if not isinstance(value, str) or not value:
        raise err(field, "%r is not a duration like 15s, 30m or 1h", value)
    pos, total = 0, 0
    for m in _DURATION.finditer(value):
        if m.start() != pos:
            break
        total += int(float(m.group(1)) * _UNITS[m.group(2)])
        pos = m.end()
    if pos != len(value):
        raise err(field, "%r is not a duration like 15s, 30m or 1h", value)
    return total


def _int(value, field, err, low, high):
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value)
        else:
            raise err(field, "%r is not an integer", value)
    if not low <= value <= high:
        raise err(field, "%d is out of range (%d-%d)", value, low, high)
    return value


def _under(path, root):
    root = posixpath.normpath(root)
    return path == root or path.startswith(root.rstrip("/") + "/")


def _plain(value):
    """Plain dicts and lists (resolves Ansible's lazy template containers once, before anything copies them)."""
    if isinstance(value, Mapping):
        return dict((k, _plain(v)) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _app_name(app):
    if not isinstance(app, dict):
        raise AnsibleFilterError("app_job: the app definition must be a dict, got %s" % type(app).__name__)
    name = app.get("name")
    if not isinstance(name, str) or not _JOB.match(name):
        raise AnsibleFilterError("app_job: app %r: name: must be a job name of lower-case letters, digits and '-' "
                                 "(1-64 characters)" % (name,))
    unknown = sorted(set(app) - _KNOWN)
    if unknown:
        raise _Err(name)(unknown[0], "unknown key (known: %s)", ", ".join(sorted(_KNOWN)))
    return name


def app_volumes(app, data_root="/srv/homelab", scratch_root="/srv/scratch", pool=None):
    """The host volumes an app needs: [{name, volume, kind, host_path, dataset, read_only, destination}].

    kind data: the app's own data, dataset <pool>/apps/<job> (volume 'data') or <pool>/apps/<job>/<volume>,
    mounted at <data_root>/<job>[/<volume>]; a plain directory there when no pool is given.
    kind scratch: a directory <scratch_root>/<job>[/<volume>] (not backed up).
    kind external: an existing path (another app's data, shared read-only), under the data or scratch root.
    """
    app = _plain(app)
    name = _app_name(app)
    err = _Err(name)
    for root, field in ((data_root, "data_root"), (scratch_root, "scratch_root")):
        if not isinstance(root, str) or not root.startswith("/") or posixpath.normpath(root) == "/":
            raise err(field, "%r must be an absolute path other than /", root)
    data_root, scratch_root = posixpath.normpath(data_root), posixpath.normpath(scratch_root)
    volumes = app.get("volumes") or []
    if not isinstance(volumes, list):
        raise err("volumes", "must be a list")
    out, seen, dests = [], set(), set()
    for i, vol in enumerate(volumes):
        where = "volumes[%d]" % i
        if not isinstance(vol, dict):
            raise err(where, "must be a dict with name and destination")
        vname = vol.get("name")
        if not isinstance(vname, str) or not _VOLUME.match(vname):
            raise err(where + ".name", "%r must be lower-case letters, digits, '-' or '_'", vname)
        where = "volumes[%s]" % vname
        if vname in seen:
            raise err(where + ".name", "duplicate volume name")
        seen.add(vname)
        unknown = sorted(set(vol) - {"name", "kind", "destination", "read_only", "host_path", "owner", "group",
                                     "mode", "properties"})
        if unknown:
            raise err(where, "unknown key %r", unknown[0])
        kind = vol.get("kind", "data")
        if kind not in _KINDS:
            raise err(where + ".kind", "%r must be one of %s", kind, ", ".join(_KINDS))
        dest = vol.get("destination")
        if not isinstance(dest, str) or not dest.startswith("/"):
            raise err(where + ".destination", "%r must be an absolute path in the container", dest)
        if dest in dests:
            raise err(where + ".destination", "%r is mounted twice", dest)
        dests.add(dest)
        read_only = vol.get("read_only", kind == "external")
        if not isinstance(read_only, bool):
            raise err(where + ".read_only", "must be a boolean")
        suffix = "" if vname == "data" else "/" + vname
        dataset = None
        if kind == "external":
            host_path = vol.get("host_path")
            if not isinstance(host_path, str) or not host_path.startswith("/"):
                raise err(where + ".host_path", "%r must be an absolute path (an external volume mounts an "
                                                "existing path)", host_path)
            host_path = posixpath.normpath(host_path)
            if not (_under(host_path, data_root) or _under(host_path, scratch_root)):
                raise err(where + ".host_path", "%r is outside the data root %s and the scratch root %s",
                          host_path, data_root, scratch_root)
        else:
            if vol.get("host_path") is not None:
                raise err(where + ".host_path", "only external volumes take a host_path; a %s volume lives at "
                                                "%s", kind, (data_root if kind == "data" else scratch_root)
                          + "/" + name + suffix)
            root = data_root if kind == "data" else scratch_root
            host_path = root + "/" + name + suffix
            if kind == "data" and pool:
                dataset = "%s/apps/%s%s" % (pool, name, suffix)
        props = vol.get("properties") or {}
        if not isinstance(props, dict) or (props and dataset is None and kind != "data"):
            raise err(where + ".properties", "ZFS properties apply to data volumes only (a dict)")
        out.append({
            "name": vname,
            "volume": "%s-%s" % (name, vname),
            "kind": kind,
            "host_path": host_path,
            "dataset": dataset,
            "properties": dict(props),
            "read_only": read_only,
            "destination": dest,
            "access_mode": _ACCESS[read_only],
            "owner": vol.get("owner"),
            "group": vol.get("group"),
            "mode": vol.get("mode"),
        })
    return out


def _secrets(app, err, mount):
    """Own secrets through vault_job; secrets_from another job's path as extra templates and policy paths."""
    own = app.get("secrets") or {}
    if isinstance(own, list):
        own = dict((f, None) for f in own)
    if not isinstance(own, dict):
        raise err("secrets", "must be a list of field names or a {field: ENV_NAME} mapping")
    try:
        vj = vault_job(app["name"], mount=mount, fields=own or None)
    except AnsibleFilterError as exc:
        raise err("secrets", "%s", str(exc))
    templates = [vj["template_api"]] if vj["template_api"] else []
    extra = app.get("secrets_from") or {}
    if not isinstance(extra, dict):
        raise err("secrets_from", "must be a mapping {job: {field: ENV_NAME}}")
    extra_paths = []
    for other, fields in sorted(extra.items()):
        try:
            ov = vault_job(other, mount=mount, fields=fields,
                           destination="secrets/vault-%s.env" % other)
        except AnsibleFilterError as exc:
            raise err("secrets_from[%s]" % other, "%s", str(exc))
        if not ov["template_api"]:
            raise err("secrets_from[%s]" % other, "names no fields")
        templates.append(ov["template_api"])
        extra_paths.append(ov["path"])
    env_names = []
    for tmpl in templates:
        env_names += re.findall(r"^([A-Za-z_][A-Za-z0-9_]*)=", tmpl["EmbeddedTmpl"], re.M)
    dup = sorted(set(n for n in env_names if env_names.count(n) > 1))
    if dup:
        raise err("secrets", "environment variable %s is set by two secrets", dup[0])
    if extra_paths:
        vj = vault_job(app["name"], mount=mount, fields=own or None, extra_paths=extra_paths)
    return vj, templates, env_names, extra_paths


def _files(app, err, config):
    """Non-secret configuration files: a template each, bind-mounted read-only into the container."""
    files = app.get("files") or []
    if not isinstance(files, list):
        raise err("files", "must be a list of {name, destination, content}")
    templates = []
    for i, item in enumerate(files):
        where = "files[%d]" % i
        if not isinstance(item, dict) or set(item) - {"name", "destination", "content", "mode"}:
            raise err(where, "must be a dict of name, destination, content and mode")
        fname = item.get("name")
        if not isinstance(fname, str) or not re.match(r"^[A-Za-z0-9][A-Za-z0-9._-]*$", fname):
            raise err(where + ".name", "%r must be a plain file name", fname)
        dest = item.get("destination")
        if not isinstance(dest, str) or not dest.startswith("/"):
            raise err("files[%s].destination" % fname, "%r must be an absolute path in the container", dest)
        content = item.get("content")
        if not isinstance(content, str):
            raise err("files[%s].content" % fname, "must be a string")
        tmpl = {"EmbeddedTmpl": content, "DestPath": "local/" + fname, "Envvars": False, "ChangeMode": "restart"}
        if item.get("mode"):
            tmpl["Perms"] = str(item["mode"])
        templates.append(tmpl)
        config.setdefault("mount", []).append({"type": "bind", "source": "local/" + fname, "target": dest,
                                               "readonly": True})
    return templates


def _sidecars(app, err, main):
    """More tasks in the group (same image, env, volumes and secrets unless told), e.g. a cron runner."""
    sidecars = app.get("sidecars") or []
    if not isinstance(sidecars, list):
        raise err("sidecars", "must be a list")
    out = []
    for i, item in enumerate(sidecars):
        where = "sidecars[%d]" % i
        known = {"name", "image", "command", "args", "entrypoint", "env", "lifecycle", "resources", "user"}
        if not isinstance(item, dict) or set(item) - known:
            raise err(where, "must be a dict of %s", ", ".join(sorted(known)))
        sname = item.get("name")
        if not isinstance(sname, str) or not _JOB.match(sname) or sname == main["Name"]:
            raise err(where + ".name", "%r must be a task name other than the app's", sname)
        where = "sidecars[%s]" % sname
        image = item.get("image", main["Config"]["image"])
        if not isinstance(image, str) or not _IMAGE.match(image):
            raise err(where + ".image", "%r must name a pinned tag or digest", image)
        config = dict((k, v) for k, v in main["Config"].items() if k not in ("ports", "image"))
        config["image"] = image
        for key in ("command", "args", "entrypoint"):
            if item.get(key) is not None:
                config[key] = item[key]
        hook = item.get("lifecycle", "poststart")
        if hook not in ("prestart", "poststart", "poststop"):
            raise err(where + ".lifecycle", "%r must be prestart, poststart or poststop", hook)
        env = dict(main.get("Env") or {})
        env.update(dict((str(k), str(v)) for k, v in (item.get("env") or {}).items()))
        res = item.get("resources") or {}
        task = {"Name": sname, "Driver": "docker", "Config": config, "Env": env or None,
                "Lifecycle": {"Hook": hook, "Sidecar": hook == "poststart"},
                "Resources": {"CPU": _int(res.get("cpu", 100), where + ".resources.cpu", err, 1, 1000000),
                              "MemoryMB": _int(res.get("memory", 128), where + ".resources.memory", err, 10,
                                               10 ** 7)},
                "VolumeMounts": copy.deepcopy(main.get("VolumeMounts")),
                "Templates": copy.deepcopy(main.get("Templates")),
                "Vault": copy.deepcopy(main.get("Vault")), "KillTimeout": main["KillTimeout"]}
        if item.get("user") or main.get("User"):
            task["User"] = item.get("user") or main.get("User")
        out.append(dict((k, v) for k, v in task.items() if v is not None))
    return out


def app_job(app, data_root="/srv/homelab", scratch_root="/srv/scratch", pool=None, mount="kv",
            taken=None, datacenters=None):
    """A complete Nomad job (API JSON) for one app definition."""
    app = _plain(app)
    name = _app_name(app)
    err = _Err(name)

    image = app.get("image")
    if not image:
        raise err("image", "required (an image with a pinned tag, for example photoprism/photoprism:250707)")
    if not isinstance(image, str) or not _IMAGE.match(image):
        raise err("image", "%r must name a pinned tag or digest (repository:tag), not a bare or floating name",
                  image)
    if image.endswith(":latest"):
        raise err("image", "%r: 'latest' is not a pinned version", image)

    subdomain = app.get("subdomain")
    if not isinstance(subdomain, str) or not _LABEL.match(subdomain):
        raise err("subdomain", "%r must be one DNS label (letters, digits, '-'); it is also the Consul service name",
                  subdomain)
    taken = dict(_RESERVED_SUBDOMAINS, **(taken or {}))
    if subdomain in taken and taken[subdomain] != name:
        raise err("subdomain", "%r is already used by %r", subdomain, taken[subdomain])

    port = _int(app.get("port"), "port", err, 1, 65535)

    env = app.get("env") or {}
    if not isinstance(env, dict):
        raise err("env", "must be a mapping of variable name to value")
    for key, val in env.items():
        if not isinstance(key, str) or not _ENV.match(key):
            raise err("env", "%r is not a valid environment variable name", key)
        if isinstance(val, (dict, list)) or val is None:
            raise err("env.%s" % key, "must be a string, number or boolean")
    env = dict((k, (("true" if v else "false") if isinstance(v, bool) else str(v))) for k, v in env.items())

    res = app.get("resources") or {}
    if not isinstance(res, dict):
        raise err("resources", "must be a mapping with cpu and memory")
    unknown = sorted(set(res) - {"cpu", "memory", "memory_max"})
    if unknown:
        raise err("resources.%s" % unknown[0], "unknown key (cpu, memory, memory_max)")
    resources = {"CPU": _int(res.get("cpu", 100), "resources.cpu", err, 1, 1000000),
                 "MemoryMB": _int(res.get("memory", 256), "resources.memory", err, 10, 10 ** 7)}
    if res.get("memory_max") is not None:
        resources["MemoryMaxMB"] = _int(res["memory_max"], "resources.memory_max", err, resources["MemoryMB"],
                                        10 ** 7)

    restart = dict(DEFAULT_RESTART, **(app.get("restart") or {}))
    unknown = sorted(set(restart) - set(DEFAULT_RESTART))
    if unknown:
        raise err("restart.%s" % unknown[0], "unknown key (attempts, interval, delay, mode)")
    if restart["mode"] not in _RESTART_MODES:
        raise err("restart.mode", "%r must be fail or delay", restart["mode"])
    restart_policy = {"Attempts": _int(restart["attempts"], "restart.attempts", err, 0, 1000),
                      "Interval": duration_ns(restart["interval"], "restart.interval", err),
                      "Delay": duration_ns(restart["delay"], "restart.delay", err),
                      "Mode": restart["mode"], "RenderTemplates": False}

    check = dict(DEFAULT_CHECK, **(app.get("check") or {}))
    unknown = sorted(set(check) - {"type", "path", "interval", "timeout", "name", "protocol"})
    if unknown:
        raise err("check.%s" % unknown[0], "unknown key (type, path, interval, timeout, name, protocol)")
    if check["type"] not in _CHECK_TYPES:
        raise err("check.type", "%r must be tcp or http", check["type"])
    consul_check = {"Name": check.get("name") or "alive", "Type": check["type"], "PortLabel": "http",
                    "Interval": duration_ns(check["interval"], "check.interval", err),
                    "Timeout": duration_ns(check["timeout"], "check.timeout", err)}
    if consul_check["Interval"] < 10 ** 9 or consul_check["Timeout"] < 10 ** 9:
        raise err("check", "interval and timeout must be at least 1s")
    if check["type"] == "http":
        path = check.get("path") or "/"
        if not isinstance(path, str) or not path.startswith("/"):
            raise err("check.path", "%r must start with /", path)
        consul_check["Path"] = path
        consul_check["Protocol"] = check.get("protocol") or "http"
    elif check.get("path"):
        raise err("check.path", "only http checks take a path")

    expose = app.get("expose", True)
    if not isinstance(expose, bool):
        raise err("expose", "must be a boolean")
    tags = ["traefik.enable=true"] if expose else []
    if app.get("host") and not expose:
        raise err("host", "an app that is not exposed (expose: false) has no host name")
    if app.get("host"):
        # The provider's defaultRule derives Host(`<service>.<domain>`); only a different name needs a rule.
        host = app["host"]
        if not isinstance(host, str) or not all(_LABEL.match(part) for part in host.split(".")):
            raise err("host", "%r is not a DNS name", host)
        tags.append("traefik.http.routers.%s.rule=Host(`%s`)" % (subdomain, host))
    extra_tags = app.get("tags") or []
    if not isinstance(extra_tags, list) or not all(isinstance(t, str) for t in extra_tags):
        raise err("tags", "must be a list of strings")
    tags += [t for t in extra_tags if t not in tags]

    volumes = app_volumes(app, data_root=data_root, scratch_root=scratch_root, pool=pool)
    group_volumes = {}
    mounts = []
    for vol in volumes:
        group_volumes[vol["name"]] = {"Name": vol["name"], "Type": "host", "Source": vol["volume"],
                                      "ReadOnly": vol["read_only"], "AccessMode": vol["access_mode"],
                                      "AttachmentMode": "file-system", "PerAlloc": False}
        mounts.append({"Volume": vol["name"], "Destination": vol["destination"], "ReadOnly": vol["read_only"],
                       "PropagationMode": "private"})

    docker = app.get("docker") or {}
    if not isinstance(docker, dict):
        raise err("docker", "must be a mapping of extra docker driver options")
    for key in ("image", "ports"):
        if key in docker:
            raise err("docker.%s" % key, "is set by the app definition (image, port), not in docker")
    config = {"image": image, "ports": ["http"]}
    for key in ("command", "args"):
        if app.get(key) is not None:
            config[key] = app[key]
    args = config.get("args")
    if args is not None and not (isinstance(args, list) and all(isinstance(a, str) for a in args)):
        raise err("args", "must be a list of strings")
    config.update(docker)

    vj, templates, secret_env, extra_paths = _secrets(app, err, mount)
    clash = sorted(set(secret_env) & set(env))
    if clash:
        raise err("env.%s" % clash[0], "is also a secret; a secret must not be given in plain env")

    task = {"Name": name, "Driver": "docker", "Config": config, "Env": env or None, "Resources": resources,
            "VolumeMounts": mounts or None, "Templates": templates,
            "Vault": vj["vault_api"] if templates else None,
            "KillTimeout": duration_ns(app.get("kill_timeout", "30s"), "kill_timeout", err)}
    if app.get("user") is not None:
        if not isinstance(app["user"], str):
            raise err("user", "must be a string like 1000:1000")
        task["User"] = app["user"]
    task = dict((k, v) for k, v in task.items() if v is not None)
    task["Templates"] = templates  # filled in further by files below; dropped again when empty

    port_spec = {"Label": "http", "Value": 0, "To": port, "HostNetwork": "default"}
    if app.get("host_port") is not None:
        # A fixed port on the node, for services other jobs reach by address (a database).
        port_spec["Value"] = _int(app["host_port"], "host_port", err, 1, 65535)
        network = {"Mode": "host", "ReservedPorts": [port_spec]}
    else:
        network = {"Mode": "host", "DynamicPorts": [port_spec]}

    templates += _files(app, err, config)
    tasks = [task] + _sidecars(app, err, task)
    count = _int(app.get("count", 1), "count", err, 0, 100)
    dcs = app.get("datacenters") or datacenters or ["*"]
    if not isinstance(dcs, list) or not all(isinstance(d, str) and d for d in dcs):
        raise err("datacenters", "must be a list of datacenter names")
    meta = app.get("meta") or {}
    if not isinstance(meta, dict):
        raise err("meta", "must be a mapping")
    group = {
        "Name": name,
        "Count": count,
        "RestartPolicy": restart_policy,
        "Networks": [network],
        "Services": [{"Name": subdomain, "PortLabel": "http", "Provider": "consul", "AddressMode": "auto",
                      "Tags": tags, "Checks": [consul_check]}],
        "Tasks": tasks,
    }
    if group_volumes:
        group["Volumes"] = group_volumes
    for t in tasks:
        if not t.get("Templates"):
            t.pop("Templates", None)
    job = {"ID": name, "Name": name, "Type": "service", "Datacenters": dcs, "TaskGroups": [group],
           "Meta": dict({"homelab_app": name, "homelab_subdomain": subdomain},
                        **dict((str(k), str(v)) for k, v in meta.items()))}
    return job


def app_job_vault(app, mount="kv"):
    """The Vault side of an app (vault_job's answer with the policy's extra paths), for the vault role."""
    app = _plain(app)
    name = _app_name(app)
    return _secrets(app, _Err(name), mount)[0]


def app_vault_extra_paths(apps, mount="kv"):
    """{job: [path, ...]} for every app definition that reads another job's secret (secrets_from).

    The answer is the vault role's vault_job_extra_paths: each such job gets a policy that also reads those paths.
    """
    apps = _plain(apps)
    if isinstance(apps, dict):
        apps = [apps]
    if not isinstance(apps, list):
        raise AnsibleFilterError("app_vault_extra_paths: expected a list of app definitions, got %s"
                                 % type(apps).__name__)
    out, seen = {}, set()
    for app in apps:
        name = _app_name(app)
        if name in seen:
            raise _Err(name)("name", "the job is listed twice")
        seen.add(name)
        paths = _secrets(app, _Err(name), mount)[3]
        if paths:
            out[name] = paths
    return out


class FilterModule:
    """selfhost.homelab app-to-job filters."""

    def filters(self):
        return {"app_job": app_job, "app_volumes": app_volumes, "app_job_vault": app_job_vault,
                "app_vault_extra_paths": app_vault_extra_paths}
