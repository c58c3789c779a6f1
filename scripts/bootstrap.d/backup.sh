#!/usr/bin/env bash
# Bootstrap hook: molecule/backup runs on the converged single box, the
# selfhost-homelab/hashistack image of this checkout (scripts/hashistack/image.sh:
# built once per hash of the HashiCorp roles, about 5 minutes, then cached).
# Quiet when the image is there. It starts from the Debian 12 base image, which
# bootstrap.sh may still be building in the background: wait for it (bounded).
source "$(dirname "$0")/../lib.sh"
[ "${HOMELAB_SKIP_IMAGES:-0}" = 1 ] && exit 0
activate_env   # sets HOMELAB_IMAGE_DEBIAN12
for _ in $(seq 1 180); do
  docker image inspect "$HOMELAB_IMAGE_DEBIAN12" >/dev/null 2>&1 && break
  sleep 5
done
docker image inspect "$HOMELAB_IMAGE_DEBIAN12" >/dev/null 2>&1 \
  || die "backup: the base image $HOMELAB_IMAGE_DEBIAN12 did not appear within 15 minutes"
"$HOMELAB_REPO/scripts/hashistack/image.sh" >/dev/null
