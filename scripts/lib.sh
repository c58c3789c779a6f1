# shellcheck shell=bash
# Shared paths and helpers for the project's scripts. Source it; do not run it.
# Everything heavy (virtualenv, base images, VM images, downloaded .debs) is
# cached OUTSIDE the checkout, keyed by the hash of the recipe that made it.
set -euo pipefail

HOMELAB_REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
HOMELAB_CACHE="${HOMELAB_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/selfhost-homelab}"
mkdir -p "$HOMELAB_CACHE"

# sha256 over the given files, shortened: the cache key of a recipe.
recipe_hash() { cat "$@" | sha256sum | cut -c1-12; }

HOMELAB_VENV="$HOMELAB_CACHE/venv-$(recipe_hash "$HOMELAB_REPO/requirements/test.in" "$HOMELAB_REPO/requirements/constraints.txt")"
# The collection as Ansible and Python see it: ansible_collections/selfhost/homelab
# -> this checkout (ansible.cfg points collections_path at it).
HOMELAB_COLLECTIONS="$HOMELAB_REPO/.cache/collections"

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# Put the project's virtualenv first on PATH and make the collection importable.
activate_env() {
  export PATH="$HOMELAB_VENV/bin:$PATH"
  export VIRTUAL_ENV="$HOMELAB_VENV"
  export ANSIBLE_CONFIG="$HOMELAB_REPO/ansible.cfg"
  # Ansible's home per checkout: a copy of the collection that some tool put in
  # ~/.ansible/collections must never shadow this checkout (ansible-lint, molecule).
  export ANSIBLE_HOME="$HOMELAB_REPO/.cache/ansible-home"
  export PYTHONPATH="$HOMELAB_COLLECTIONS${PYTHONPATH:+:$PYTHONPATH}"
  export HOMELAB_REPO HOMELAB_CACHE HOMELAB_VENV HOMELAB_COLLECTIONS
  HOMELAB_IMAGE_DEBIAN12="$(debian_image_tag 12)"
  HOMELAB_IMAGE_DEBIAN13="$(debian_image_tag 13)"
  export HOMELAB_IMAGE_DEBIAN12 HOMELAB_IMAGE_DEBIAN13
}

# fetch_deb SUITE PACKAGE: download PACKAGE's .deb from another Debian release
# (trixie, bullseye, ...) without touching the system's apt sources, unpack it
# under $HOMELAB_CACHE/debs/SUITE/PACKAGE and print that directory. Cached.
fetch_deb() {
  local suite="$1" pkg="$2"
  local dest="$HOMELAB_CACHE/debs/$suite/$pkg"
  if [ -f "$dest/.complete" ]; then echo "$dest"; return 0; fi
  local aptdir="$HOMELAB_CACHE/apt-$suite"
  local mirror
  mirror="$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)"
  mirror="${mirror:-http://deb.debian.org/debian}"
  mkdir -p "$aptdir/lists/partial" "$aptdir/cache/archives/partial"
  echo "deb $mirror $suite main contrib" > "$aptdir/sources.list"
  local opts=(-o "Dir::Etc::SourceList=$aptdir/sources.list" -o Dir::Etc::SourceParts=/dev/null
              -o "Dir::State::Lists=$aptdir/lists" -o "Dir::Cache=$aptdir/cache"
              -o APT::Architecture=amd64 -o Debug::NoLocking=1)
  if [ ! -f "$aptdir/.updated" ]; then
    apt-get "${opts[@]}" update -qq >/dev/null 2>&1 || { log "fetch_deb: apt update for $suite failed"; return 1; }
    touch "$aptdir/.updated"
  fi
  local tmp
  tmp="$(mktemp -d)"
  (cd "$tmp" && apt-get "${opts[@]}" download "$pkg" >/dev/null 2>&1) || { log "fetch_deb: download $pkg/$suite failed"; rm -rf "$tmp"; return 1; }
  rm -rf "$dest" && mkdir -p "$dest"
  dpkg-deb -x "$tmp"/*.deb "$dest"
  rm -rf "$tmp"
  touch "$dest/.complete"
  echo "$dest"
}

# cached_build ROOT KEY CMD [ARG...]: print ROOT/KEY, a directory built once by
# `CMD ARG... TMPDIR` and kept. A build runs under ROOT/.lock, so parallel callers
# (pytest-xdist workers, bootstrap hooks) wait for it and then use it; CMD fills
# a fresh TMPDIR beside ROOT/KEY (its stdout goes to stderr, stdout is the path's
# alone) in a subshell of its own (its traps and `exit` stay there); on success the
# directory gets a .complete mark and is renamed to ROOT/KEY in one step, on
# failure it is removed and the caller stops (set -e). Call it as a command of its
# own, not inside `if`, `||` or `$(...)`: bash turns `set -e` off there.
cached_build() {
  local root="$1" key="$2"
  shift 2
  local out="$root/$key"
  if [ ! -f "$out/.complete" ]; then
    mkdir -p "$root"
    (
      flock 9
      [ -f "$out/.complete" ] && exit 0
      tmp="$(mktemp -d "$root/.build-XXXXXX")"
      trap 'rm -rf "$tmp"' EXIT
      ("$@" "$tmp") >&2
      touch "$tmp/.complete"
      rm -rf "$out" && mv -T "$tmp" "$out"
    ) 9>"$root/.lock"
  fi
  echo "$out"
}

# The tag of the local Debian base image for VERSION (12, 13) built from the
# current recipe (scripts/images/). Molecule platforms use it through
# HOMELAB_IMAGE_DEBIAN12 / HOMELAB_IMAGE_DEBIAN13, so checkouts with different
# recipes never run each other's images.
debian_image_tag() {
  local images="$HOMELAB_REPO/scripts/images"
  echo "selfhost-homelab/debian:$1-$(recipe_hash "$images/build-debian.sh" "$images/debian.packages")"
}
