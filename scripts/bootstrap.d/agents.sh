#!/usr/bin/env bash
# Machine setup for the agent tests (tests/integration/agents): the real Consul
# (Debian bullseye's static 1.8.7 binary, unpacked under $HOMELAB_CACHE/debs) and
# the local release mirror with the Nomad and Vault simulators packed as
# HashiCorp releases (scripts/release-mirror/build.sh). Idempotent and quiet
# when done: both are cached under $HOMELAB_CACHE keyed by their recipes.
source "$(dirname "$0")/../lib.sh"
fetch_deb bullseye consul >/dev/null || die "agents: could not fetch consul from bullseye"
"$HOMELAB_REPO/scripts/release-mirror/build.sh" >/dev/null
