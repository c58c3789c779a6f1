#!/usr/bin/env bash
# Build a bootable Debian VM image with real OpenZFS (zfs-dkms built in the
# chroot for the image's own kernel), for the ZFS tests. The host kernel cannot
# load ZFS; this guest can. Usage: build-image.sh SUITE OUTDIR
#   SUITE  bookworm (Debian 12, OpenZFS 2.1) or trixie (Debian 13, OpenZFS 2.3)
#   OUTDIR receives: root.img (ext4, LABEL=root), vmlinuz, initrd.img,
#          id_ed25519 (+.pub, root's SSH key), versions.txt, .complete
# Callers cache OUTDIR by the hash of this recipe (scripts/bootstrap.d/zfs-vm.sh).
source "$(dirname "$0")/../lib.sh"
suite="$1" out="$2"
here="$(cd "$(dirname "$0")" && pwd)"

mirror="$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)"
mirror="${mirror:-http://deb.debian.org/debian}"
work="$(mktemp -d "$HOMELAB_CACHE/vmbuild-$suite.XXXX")"
root="$work/root"
buildlog="$HOMELAB_CACHE/vmbuild-$suite.log"
: >"$buildlog"
cleanup() {
  for m in dev/pts dev proc sys; do mountpoint -q "$root/$m" 2>/dev/null && umount -l "$root/$m"; done
  rm -rf "$work"
}
trap cleanup EXIT
run() { "$@" >>"$buildlog" 2>&1 || die "vm image ($suite): '$*' failed (see $buildlog)"; }

log "vm image: debootstrap $suite (with contrib) -> $out"
run debootstrap --variant=minbase --components=main,contrib \
  --include=systemd,systemd-sysv,udev,dbus,ca-certificates "$suite" "$root" "$mirror"
for m in proc sys dev dev/pts; do mount --bind "/$m" "$root/$m"; done
printf 'deb %s %s main contrib\n' "$mirror" "$suite" >"$root/etc/apt/sources.list"
rm -f "$root/etc/apt/sources.list.d/debian.sources"
# The image's own policy: no services start inside the chroot.
printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d" && chmod +x "$root/usr/sbin/policy-rc.d"
inchroot() { run chroot "$root" env DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8 "$@"; }
inchroot apt-get update -qq
# Kernel and headers first, so zfs-dkms builds for the image's kernel.
inchroot apt-get install -y -qq --no-install-recommends linux-image-amd64 linux-headers-amd64 initramfs-tools
kver="$(find "$root/lib/modules" -mindepth 1 -maxdepth 1 -printf '%f\n' | sort -V | tail -1)"
log "vm image: kernel $kver; building zfs-dkms in the chroot (a few minutes)"
# Packages the tests and the zfs role use, so converges skip apt in the slow guest.
mapfile -t pkgs < <(sed -e 's/#.*//' -e '/^\s*$/d' "$here/vm.packages")
# trixie split systemd-networkd out of systemd; bookworm has it built in.
if chroot "$root" apt-cache show systemd-networkd >/dev/null 2>&1; then pkgs+=(systemd-networkd); fi
inchroot apt-get install -y -qq --no-install-recommends "${pkgs[@]}"
# dh_dkms builds for the running (host) kernel; make sure the guest kernel has it.
if ! ls "$root/lib/modules/$kver"/updates/dkms/zfs.ko* >/dev/null 2>&1; then
  zver="$(chroot "$root" dpkg-query -W -f="\${Version}" zfs-dkms | sed 's/-.*//')"
  inchroot dkms install "zfs/$zver" -k "$kver"
fi
ls "$root/lib/modules/$kver"/updates/dkms/zfs.ko* >/dev/null 2>&1 || die "vm image: zfs module was not built for $kver"
inchroot depmod -a "$kver"
inchroot update-initramfs -u -k "$kver"
inchroot apt-get clean
rm -f "$root/usr/sbin/policy-rc.d"

# System configuration: root on the disk labelled "root", DHCP on QEMU's user
# network, serial console, root login by key only.
echo "LABEL=root / ext4 defaults,noatime 0 1" >"$root/etc/fstab"
echo "zfsvm" >"$root/etc/hostname"
printf '127.0.0.1 localhost\n127.0.1.1 zfsvm\n' >"$root/etc/hosts"
cat >"$root/etc/systemd/network/50-dhcp.network" <<NET
[Match]
Name=en* eth*
[Network]
DHCP=ipv4
NET
chroot "$root" systemctl enable systemd-networkd >>"$buildlog" 2>&1
# The tests need no resolver in the guest (package installs are baked in).
chroot "$root" systemctl mask apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer fstrim.timer \
  systemd-networkd-wait-online.service >>"$buildlog" 2>&1 || true
echo 'zfs' >"$root/etc/modules-load.d/zfs.conf"
mkdir -p "$root/root/.ssh" && chmod 700 "$root/root/.ssh"
rm -f "$out/id_ed25519" "$out/id_ed25519.pub"
mkdir -p "$out"
ssh-keygen -q -t ed25519 -N '' -C "zfsvm-$suite" -f "$out/id_ed25519"
cp "$out/id_ed25519.pub" "$root/root/.ssh/authorized_keys" && chmod 600 "$root/root/.ssh/authorized_keys"
rm -f "$root"/etc/ssh/ssh_host_* && chroot "$root" ssh-keygen -A >>"$buildlog" 2>&1
cat >"$root/etc/ssh/sshd_config.d/zfsvm.conf" <<SSH
PermitRootLogin prohibit-password
PasswordAuthentication no
UseDNS no
SSH
# A stable machine id is fine for a throwaway test guest; zfs hostid too, so
# pools created in one boot import cleanly in the next (same image).
chroot "$root" systemd-machine-id-setup >>"$buildlog" 2>&1 || true
chroot "$root" zgenhostid -f 0x5ef4a1ab >>"$buildlog" 2>&1 || true
{
  echo "suite=$suite"
  echo "kernel=$kver"
  echo "zfs=$(chroot "$root" dpkg-query -W -f="\${Version}" zfsutils-linux)"
} >"$out/versions.txt"

cp "$root/boot/vmlinuz-$kver" "$out/vmlinuz"
cp "$root/boot/initrd.img-$kver" "$out/initrd.img"
for m in dev/pts dev proc sys; do umount -l "$root/$m"; done
rm -f "$out/root.img"
run mkfs.ext4 -q -L root -d "$root" "$out/root.img" 3G
touch "$out/.complete"
log "vm image: built $out ($(tr '\n' ' ' <"$out/versions.txt"))"
