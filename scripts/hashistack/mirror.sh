#!/usr/bin/env bash
# A release mirror for the hashistack roles' tests, laid out like
# releases.hashicorp.com: the Nomad and Vault simulators from the project's
# release mirror (scripts/release-mirror/build.sh) plus the real Consul 1.8.7
# (Debian bullseye's static binary) packed as consul_<v>_linux_amd64.zip with
# its SHA256SUMS signed by the same test key, so the roles install all three
# through one code path (download, gpgv, sha256sum). Cached under
# $HOMELAB_CACHE keyed by its inputs. Prints the mirror directory.
source "$(dirname "$0")/../lib.sh"
activate_env

sims="$("$HOMELAB_REPO/scripts/release-mirror/build.sh")"
consul_bin="$(fetch_deb bullseye consul)/usr/bin/consul"
[ -x "$consul_bin" ] || die "hashistack mirror: no consul binary at $consul_bin"
key="$(printf '%s\n' "$sims" | cat - "$0" "$consul_bin" | sha256sum | cut -c1-12)"
root="$HOMELAB_CACHE/hashistack-mirror"
gnupg="$HOMELAB_CACHE/release-mirror/signing-gnupg"

# build_mirror DIR: the simulators' releases and consul's, signed, into DIR.
build_mirror() {
  local out="$1" version dir
  trap 'gpgconf --homedir "$gnupg" --kill gpg-agent 2>/dev/null || true' EXIT
  version="$("$consul_bin" version | awk 'NR==1 {sub(/^v/, "", $2); print $2}')"
  cp -a "$sims/nomad" "$sims/vault" "$sims/release-signing-key.asc" "$out/"
  dir="$out/consul/$version"
  mkdir -p "$dir"
  python - "$consul_bin" "$dir/consul_${version}_linux_amd64.zip" <<'PY'
import sys, zipfile
info = zipfile.ZipInfo("consul", (2020, 1, 1, 0, 0, 0))
info.external_attr = 0o100755 << 16
info.compress_type = zipfile.ZIP_DEFLATED
with open(sys.argv[1], "rb") as src, zipfile.ZipFile(sys.argv[2], "w") as zf:
    zf.writestr(info, src.read())
PY
  (cd "$dir" && sha256sum "consul_${version}_linux_amd64.zip" > "consul_${version}_SHA256SUMS")
  gpg --homedir "$gnupg" --batch --quiet --yes --pinentry-mode loopback --passphrase '' \
    --detach-sign --output "$dir/consul_${version}_SHA256SUMS.sig" "$dir/consul_${version}_SHA256SUMS" \
    || die "hashistack mirror: signing consul's SHA256SUMS failed"
  printf '{"name": "consul", "versions": {"%s": {"name": "consul", "version": "%s"}}}\n' "$version" "$version" \
    > "$out/consul/index.json"
  log "hashistack mirror: $root/$key (consul $version, nomad and vault simulators)"
}

cached_build "$root" "$key" build_mirror
