#!/usr/bin/env bash
# Build a local Debian systemd base image with debootstrap + docker import.
# No image registry is reachable here. Usage: build-debian.sh VERSION SUITE
# The tag carries the recipe hash, so a changed recipe builds a new image and
# an unchanged one is reused; "selfhost-homelab/debian:VERSION" points at it.
source "$(dirname "$0")/../lib.sh"
version="$1" suite="$2"
here="$(cd "$(dirname "$0")" && pwd)"
tag="$(debian_image_tag "$version")"

if docker image inspect "$tag" >/dev/null 2>&1; then
  docker tag "$tag" "selfhost-homelab/debian:$version"
  exit 0
fi

mirror="$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)"
mirror="${mirror:-http://deb.debian.org/debian}"
include="$(sed -e 's/#.*//' -e '/^\s*$/d' "$here/debian.packages" | paste -sd, -)"
root="$(mktemp -d "$HOMELAB_CACHE/rootfs-$version.XXXX")"
trap 'rm -rf "$root"' EXIT

log "image: debootstrap $suite -> $tag"
debootstrap --variant=minbase --include="$include" "$suite" "$root" "$mirror" \
  >"$HOMELAB_CACHE/debootstrap-$suite.log" 2>&1 \
  || die "debootstrap $suite failed (see $HOMELAB_CACHE/debootstrap-$suite.log)"

# apt lists inside the image, so converges that install a package need no update
cat > "$root/etc/apt/sources.list" <<SRC
deb $mirror $suite main
SRC
chroot "$root" apt-get update -qq >/dev/null 2>&1 || true
chroot "$root" apt-get clean
# Containers have no console/getty, and ssh keys are made per container.
chroot "$root" systemctl mask getty@tty1.service console-getty.service systemd-firstboot.service >/dev/null 2>&1 || true
rm -f "$root"/etc/ssh/ssh_host_*
chroot "$root" systemctl enable ssh >/dev/null 2>&1 || true
mkdir -p "$root/etc/systemd/system/ssh.service.d"
# Host keys first, then the unit's own config test.
printf '[Service]\nExecStartPre=\nExecStartPre=/usr/bin/ssh-keygen -A\nExecStartPre=/usr/sbin/sshd -t\n' \
  > "$root/etc/systemd/system/ssh.service.d/hostkeys.conf"
: > "$root/etc/machine-id"

tar -C "$root" -c . | docker import -c 'CMD ["/sbin/init"]' -c 'ENV container=docker' - "$tag" >/dev/null
docker tag "$tag" "selfhost-homelab/debian:$version"
log "image: built $tag"
