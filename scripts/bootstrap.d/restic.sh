#!/usr/bin/env bash
# restic for the restic_repo integration tests: Debian 12's restic 0.14 comes
# from apt (requirements/apt.txt); restic 0.18 and rest-server 0.13 come from
# Debian trixie as .debs unpacked under $HOMELAB_CACHE (no apt sources touched).
# The tests find them through $HOMELAB_CACHE/restic/bin (see
# tests/integration/restic/conftest.py). Idempotent; quiet when done.
source "$(dirname "$0")/../lib.sh"

key="$(recipe_hash "$0")"
bin="$HOMELAB_CACHE/restic/bin"
stamp="$HOMELAB_CACHE/restic/.complete-$key"
# Leftovers of integration runs (tests/integration/restic keeps empty run
# directories so that no worker changes another's ancestors mid-test).
for d in /var/tmp/selfhost-homelab-restic /dev/shm/selfhost-homelab-restic; do
  if [ -d "$d" ]; then find "$d" -mindepth 1 -maxdepth 1 -name "run-*" -mmin +720 -exec rm -rf {} +; fi
done
[ -f "$stamp" ] && exit 0

restic_dir="$(fetch_deb trixie restic)" || die "restic: could not fetch restic from trixie"
rest_dir="$(fetch_deb trixie restic-rest-server)" || die "restic: could not fetch restic-rest-server from trixie"
mkdir -p "$bin"
ln -sfn "$restic_dir/usr/bin/restic" "$bin/restic-trixie"
ln -sfn "$rest_dir/usr/bin/restic-rest-server" "$bin/rest-server"
"$bin/restic-trixie" version >/dev/null || die "restic: trixie restic does not run"
"$bin/rest-server" --version >/dev/null 2>&1 || die "restic: rest-server does not run"
rm -f "$HOMELAB_CACHE"/restic/.complete-*
touch "$stamp"
log "restic: $("$bin/restic-trixie" version | cut -d' ' -f1-2) and rest-server ready in $bin"
