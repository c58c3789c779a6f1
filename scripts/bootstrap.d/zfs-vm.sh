#!/usr/bin/env bash
# Bootstrap hook: the real-OpenZFS test VM image (Debian 12 by default), built
# once by scripts/vm/build-image.sh and cached under $HOMELAB_CACHE/vm keyed by
# the recipe's hash. Quiet when the image is already there.
#   HOMELAB_ZFS_VM_SUITES="bookworm trixie"  also builds the Debian 13 image
#   (OpenZFS 2.3, used to record its unit-test fixtures).
source "$(dirname "$0")/../lib.sh"
[ "${HOMELAB_SKIP_IMAGES:-0}" = 1 ] && exit 0
vmdir="$HOMELAB_REPO/scripts/vm"
mkdir -p "$HOMELAB_CACHE/vm"
for suite in ${HOMELAB_ZFS_VM_SUITES:-bookworm}; do
  out="$HOMELAB_CACHE/vm/zfs-$suite-$(python3 "$vmdir/zfsvm.py" recipe-hash)"
  [ -f "$out/.complete" ] && continue
  (
    # Two bootstraps at once (test layers in parallel) build it only once.
    flock 9
    [ -f "$out/.complete" ] && exit 0
    "$vmdir/build-image.sh" "$suite" "$out"
  ) 9>"$HOMELAB_CACHE/vm/.lock-$suite"
done
