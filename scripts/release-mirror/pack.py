"""Build the ``nomad`` and ``vault`` executables from the simulators and pack them as releases.

Each executable is a Python zip application (``#!/usr/bin/env python3`` + a zip)
carrying the simulators and their dependencies (python-hcl2, lark, regex, PyJWT,
cryptography, cffi: the compiled ones for the packing Python's version, 3.11).
On first run it unpacks itself into a directory keyed by its own hash
(``$HOMELAB_SIM_UNPACK_DIR`` or ``/var/tmp/homelab-sim-UID``) and runs from
there, because python-hcl2 reads its grammar from a file.

The release layout is HashiCorp's (releases.hashicorp.com): one directory per
product and version, a zip holding one executable, ``<p>_<v>_SHA256SUMS`` and an
index.json. Signing is done by build.sh with gpg.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import io
import json
import os
import re
import zipfile

PRODUCTS = {
    "nomad": "tests/simulators/nomad/server.py",
    "vault": "tests/simulators/vault/app.py",
}
DEPENDENCIES = ("hcl2", "lark", "regex", "jwt", "cryptography", "cffi", "_cffi_backend")
EPOCH = (2020, 1, 1, 0, 0, 0)  # fixed timestamps: the same sources give the same zip

BOOT = '''\
import hashlib, os, sys, tempfile, zipfile

def _unpacked():
    archive = os.path.dirname(os.path.abspath(__file__))
    with open(archive, "rb") as fh:
        digest = hashlib.sha256(fh.read()).hexdigest()[:16]
    # Not /tmp: it is often mounted noexec (Docker's --tmpfs is), and the bundled .so files must load.
    base = os.environ.get("HOMELAB_SIM_UNPACK_DIR") or os.path.join(
        "/var/tmp" if os.access("/var/tmp", os.W_OK) else tempfile.gettempdir(), "homelab-sim-%%d" %% os.getuid())
    target = os.path.join(base, digest)
    if not os.path.isdir(target):
        os.makedirs(base, mode=0o700, exist_ok=True)
        work = tempfile.mkdtemp(dir=base)
        with zipfile.ZipFile(archive) as zf:
            zf.extractall(work)
        try:
            os.rename(work, target)
        except OSError:  # another process unpacked it first
            import shutil
            shutil.rmtree(work, ignore_errors=True)
    return target

sys.path.insert(0, _unpacked())
from simulators.%(product)s.__main__ import main
sys.exit(main())
'''


def _version(repo: str, path: str) -> str:
    with open(os.path.join(repo, path), encoding="utf-8") as fh:
        match = re.search(r'^VERSION = "([^"]+)"', fh.read(), re.M)
    if not match:
        raise SystemExit("no VERSION in %s" % path)
    return match.group(1)


def _add(zf: zipfile.ZipFile, arcname: str, data: bytes, mode: int = 0o644) -> None:
    info = zipfile.ZipInfo(arcname, EPOCH)
    info.external_attr = (0o100000 | mode) << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    zf.writestr(info, data)


def _bumped(version: str) -> str:
    """The next patch release: 1.10.5 -> 1.10.6."""
    major, minor, patch = version.split(".")[:3]
    return "%s.%s.%d" % (major, minor, int(patch) + 1)


def _add_tree(zf: zipfile.ZipFile, src: str, prefix: str, replace: dict[str, bytes] | None = None) -> None:
    for dirpath, dirnames, filenames in os.walk(src):
        dirnames[:] = sorted(d for d in dirnames if d not in ("__pycache__", "spec", "bin"))
        for name in sorted(filenames):
            if name.endswith((".pyc", ".md")):
                continue
            full = os.path.join(dirpath, name)
            arcname = prefix + os.path.relpath(full, src).replace(os.sep, "/")
            if replace and arcname in replace:
                _add(zf, arcname, replace[arcname])
                continue
            with open(full, "rb") as fh:
                _add(zf, arcname, fh.read())


def executable(repo: str, product: str, version: str | None = None) -> bytes:
    """The product's executable; with ``version``, one that reports that version instead of the source's."""
    replace = {}
    if version is not None:
        with open(os.path.join(repo, PRODUCTS[product]), encoding="utf-8") as fh:
            source = re.sub(r'^VERSION = "[^"]+"', 'VERSION = "%s"' % version, fh.read(), count=1, flags=re.M)
        replace["simulators/" + PRODUCTS[product].split("tests/simulators/", 1)[1]] = source.encode()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        _add(zf, "__main__.py", (BOOT % {"product": product}).encode())
        _add_tree(zf, os.path.join(repo, "tests", "simulators"), "simulators/", replace)
        for dep in DEPENDENCIES:
            spec = importlib.util.find_spec(dep)
            if spec is None:
                raise SystemExit("pack: the dependency %s is not installed in this Python" % dep)
            if spec.submodule_search_locations:
                _add_tree(zf, list(spec.submodule_search_locations)[0], dep + "/")
            else:  # a single-file (extension) module such as _cffi_backend
                with open(spec.origin, "rb") as fh:
                    _add(zf, os.path.basename(spec.origin), fh.read(), 0o755)
    return b"#!/usr/bin/env python3\n" + buf.getvalue()


def release(repo: str, out: str, product: str, version: str, patched: bool = False) -> None:
    directory = os.path.join(out, product, version)
    os.makedirs(directory, exist_ok=True)
    zip_name = "%s_%s_linux_amd64.zip" % (product, version)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        _add(zf, product, executable(repo, product, version if patched else None), 0o755)
    data = buf.getvalue()
    with open(os.path.join(directory, zip_name), "wb") as fh:
        fh.write(data)
    sums = "%s  %s\n" % (hashlib.sha256(data).hexdigest(), zip_name)
    with open(os.path.join(directory, "%s_%s_SHA256SUMS" % (product, version)), "w", encoding="utf-8") as fh:
        fh.write(sums)
    index = {"name": product, "versions": {version: {
        "name": product, "version": version, "shasums": "%s_%s_SHA256SUMS" % (product, version),
        "shasums_signature": "%s_%s_SHA256SUMS.sig" % (product, version),
        "builds": [{"name": product, "version": version, "os": "linux", "arch": "amd64",
                    "filename": zip_name, "url": "%s/%s" % (version, zip_name)}]}}}
    with open(os.path.join(out, product, "index.json"), "w", encoding="utf-8") as fh:
        json.dump(index, fh, indent=2)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repo", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--bump", action="store_true",
                        help="pack the next patch version (X.Y.Z+1) instead: an upgrade to roll out in tests")
    args = parser.parse_args()
    for product, path in PRODUCTS.items():
        version = _version(args.repo, path)
        if args.bump:
            version = _bumped(version)
        release(args.repo, args.out, product, version, patched=args.bump)
        print("%s %s" % (product, version))


if __name__ == "__main__":
    main()
