#!/usr/bin/env bash
# The host roles' molecule scenarios: Debian 12 has no dnscrypt-proxy package,
# so the dnscrypt_proxy role installs Debian 13's .deb from a URL with a pinned
# checksum. Tests cannot reach a real mirror from that role, so this hook keeps
# the trixie .deb in a local mirror directory that molecule/dnscrypt_proxy
# mounts into its containers and gives to the role as a file:// URL.
# Idempotent; quiet when done.
source "$(dirname "$0")/../lib.sh"

key="$(recipe_hash "$0")"
mirror="$HOMELAB_CACHE/host/mirror"
stamp="$HOMELAB_CACHE/host/.complete-$key"
[ -f "$stamp" ] && exit 0

aptdir="$HOMELAB_CACHE/apt-trixie-host"
upstream="$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)"
upstream="${upstream:-http://deb.debian.org/debian}"
mkdir -p "$aptdir/lists/partial" "$aptdir/cache/archives/partial" "$mirror"
echo "deb $upstream trixie main" > "$aptdir/sources.list"
opts=(-o "Dir::Etc::SourceList=$aptdir/sources.list" -o Dir::Etc::SourceParts=/dev/null
      -o "Dir::State::Lists=$aptdir/lists" -o "Dir::Cache=$aptdir/cache"
      -o APT::Architecture=amd64 -o Debug::NoLocking=1)
apt-get "${opts[@]}" update -qq >/dev/null 2>&1 || die "host: apt update for trixie failed"
tmp="$(mktemp -d)"
(cd "$tmp" && apt-get "${opts[@]}" download dnscrypt-proxy >/dev/null 2>&1) || { rm -rf "$tmp"; die "host: could not download dnscrypt-proxy from trixie"; }
deb="$(ls "$tmp"/*.deb)"
dpkg-deb -I "$deb" >/dev/null || die "host: $deb is not a .deb"
cp "$deb" "$mirror/dnscrypt-proxy.deb"
sha256sum "$mirror/dnscrypt-proxy.deb" | cut -d' ' -f1 > "$mirror/dnscrypt-proxy.deb.sha256"
basename "$deb" > "$mirror/dnscrypt-proxy.deb.name"
rm -rf "$tmp"
rm -f "$HOMELAB_CACHE"/host/.complete-*
touch "$stamp"
log "host: $(cat "$mirror/dnscrypt-proxy.deb.name") ready in $mirror"
