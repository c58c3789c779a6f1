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
  export PYTHONPATH="$HOMELAB_COLLECTIONS${PYTHONPATH:+:$PYTHONPATH}"
  export HOMELAB_REPO HOMELAB_CACHE HOMELAB_VENV HOMELAB_COLLECTIONS
}
