#!/usr/bin/env bash
# Machine setup for the hashistack roles' tests: their release mirror (the Nomad
# and Vault simulators plus the real Consul 1.8.7, signed with the test key).
# Idempotent and quiet when done (cached under $HOMELAB_CACHE).
source "$(dirname "$0")/../lib.sh"
"$HOMELAB_REPO/scripts/hashistack/mirror.sh" >/dev/null
