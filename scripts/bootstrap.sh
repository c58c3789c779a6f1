#!/usr/bin/env bash
# Prepare this machine for the demo and the tests, idempotently and quietly:
#   Debian packages, the virtualenv, dockerd, the local Debian base images,
#   ansible-test's offline pip bootstrap, the collection link, and whatever the
#   feature hooks in scripts/bootstrap.d/ add (real servers, VM images, ...).
# Usage: scripts/bootstrap.sh [--refreeze] [--no-images]
source "$(dirname "$0")/lib.sh"

refreeze=0 images=1
for arg in "$@"; do
  case "$arg" in
    --refreeze) refreeze=1 ;;
    --no-images) images=0 ;;
    *) die "unknown argument: $arg" ;;
  esac
done

apt_install() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'ok installed' || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "apt: installing ${missing[*]}"
  # A fresh machine may have stale lists; update at most once per run.
  if [ -z "${_APT_UPDATED:-}" ]; then apt-get update -qq >/dev/null; _APT_UPDATED=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}
export -f apt_install log die

# 1. Debian packages
mapfile -t pkgs < <(sed -e 's/#.*//' -e '/^\s*$/d' "$HOMELAB_REPO/requirements/apt.txt")
apt_install "${pkgs[@]}"

# 2. virtualenv, keyed by the requirements; ".complete" marks a finished build
if [ "$refreeze" = 1 ]; then
  tmp="$(mktemp -d)"
  python3 -m venv "$tmp/venv"
  "$tmp/venv/bin/pip" install -q -r "$HOMELAB_REPO/requirements/test.in" 2>&1 | grep -v '^WARNING: Location' || true
  "$tmp/venv/bin/pip" freeze | grep -v '^-e' > "$HOMELAB_REPO/requirements/constraints.txt"
  rm -rf "$tmp"
  log "venv: constraints refrozen; run again to build the keyed venv"
  exit 0
fi
if [ ! -f "$HOMELAB_VENV/.complete" ]; then
  log "venv: creating $HOMELAB_VENV"
  rm -rf "$HOMELAB_VENV"
  python3 -m venv "$HOMELAB_VENV"
  "$HOMELAB_VENV/bin/pip" install -q -r "$HOMELAB_REPO/requirements/test.in" \
    -c "$HOMELAB_REPO/requirements/constraints.txt" 2>&1 | grep -v '^WARNING: Location' || true
  "$HOMELAB_VENV/bin/ansible-playbook" --version >/dev/null || die "venv: ansible did not install"
  touch "$HOMELAB_VENV/.complete"
fi
activate_env

# 3. the collection, as ansible_collections/selfhost/homelab
mkdir -p "$HOMELAB_COLLECTIONS/ansible_collections/selfhost"
ln -sfn ../../../.. "$HOMELAB_COLLECTIONS/ansible_collections/selfhost/homelab"

# 4. dockerd (no systemd on the host: run it in the background)
if ! docker info >/dev/null 2>&1; then
  log "docker: starting dockerd"
  nohup dockerd >"$HOMELAB_CACHE/dockerd.log" 2>&1 &
  for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
  docker info >/dev/null 2>&1 || die "docker: dockerd did not come up (see $HOMELAB_CACHE/dockerd.log)"
fi

# 5. local Debian base images (no registry pulls are possible here), built in
#    the background while the feature hooks (step 7) run.
image_jobs=()
if [ "$images" = 1 ]; then
  "$HOMELAB_REPO/scripts/images/build-debian.sh" 12 bookworm & image_jobs+=($!)
  "$HOMELAB_REPO/scripts/images/build-debian.sh" 13 trixie & image_jobs+=($!)
fi

# 6. ansible-test sanity bootstraps pip with a script it downloads from a host
#    that is not reachable here; give it an offline stand-in (ensurepip + pip).
for gp in "$HOME/.ansible/test/cache/get_pip_24_2.py" "$ANSIBLE_HOME/test/cache/get_pip_24_2.py"; do
  if [ ! -f "$gp" ] || ! cmp -s "$HOMELAB_REPO/scripts/offline_get_pip.py" "$gp"; then
    mkdir -p "$(dirname "$gp")"
    cp "$HOMELAB_REPO/scripts/offline_get_pip.py" "$gp"
  fi
done

# 7. feature hooks: each idempotent, each quiet when its work is done. With
#    --no-images, HOMELAB_SKIP_IMAGES=1 tells hooks to skip VM and container
#    images (the lint, sanity and unit layers need none).
export HOMELAB_SKIP_IMAGES=$(( 1 - images ))
for hook in "$HOMELAB_REPO"/scripts/bootstrap.d/*.sh; do
  [ -e "$hook" ] || continue
  bash "$hook" || die "bootstrap hook failed: $hook"
done

for job in "${image_jobs[@]}"; do
  wait "$job" || die "image: a Debian base image failed to build (see $HOMELAB_CACHE/debootstrap-*.log)"
done
