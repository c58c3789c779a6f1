#!/usr/bin/env bash
# Pack the Nomad and Vault simulators the way HashiCorp packs its releases, into
# a local release mirror (a file:// directory) the roles can install from:
#   MIRROR/nomad/VERSION/nomad_VERSION_linux_amd64.zip   (one executable: nomad)
#   MIRROR/nomad/VERSION/nomad_VERSION_SHA256SUMS
#   MIRROR/nomad/VERSION/nomad_VERSION_SHA256SUMS.sig    (detached, binary, test key)
#   MIRROR/nomad/index.json                              (releases.hashicorp.com shape)
#   MIRROR/release-signing-key.asc                       (the test key's public half)
# and the same for vault. The mirror lives under $HOMELAB_CACHE, keyed by the hash
# of the simulators' sources and this recipe; the signing key is made once and kept.
# Usage: scripts/release-mirror/build.sh   -> prints the mirror directory
source "$(dirname "$0")/../lib.sh"
activate_env

here="$HOMELAB_REPO/scripts/release-mirror"
mapfile -t sources < <(cd "$HOMELAB_REPO" && git ls-files -co --exclude-standard tests/simulators scripts/release-mirror \
  | grep -v -e '/spec/' -e '\.md$' | sort)
[ ${#sources[@]} -gt 0 ] || die "release-mirror: no simulator sources found"
key="$(cd "$HOMELAB_REPO" && recipe_hash "${sources[@]}" requirements/constraints.txt)"
root="$HOMELAB_CACHE/release-mirror"
gnupg="$root/signing-gnupg"

# build_mirror DIR: pack and sign into DIR (run by cached_build, one build at a
# time: pytest-xdist workers and bootstrap may ask at once).
build_mirror() {
  local out="$1" sums
  trap 'gpgconf --homedir "$gnupg" --kill gpg-agent 2>/dev/null || true' EXIT
  # The test signing key: made once, kept beside the mirrors (never a real key).
  if [ ! -f "$gnupg/.complete" ]; then
    rm -rf "$gnupg" && mkdir -p "$gnupg" && chmod 700 "$gnupg"
    gpg --homedir "$gnupg" --batch --quiet --pinentry-mode loopback --passphrase '' \
      --quick-gen-key 'selfhost.homelab test release signing <release-test@selfhost-homelab.invalid>' ed25519 sign never 2>/dev/null \
      || die "release-mirror: gpg key generation failed"
    touch "$gnupg/.complete"
  fi
  python "$here/pack.py" --repo "$HOMELAB_REPO" --out "$out" >/dev/null
  gpg --homedir "$gnupg" --batch --armor --export > "$out/release-signing-key.asc"
  for sums in "$out"/*/*/*_SHA256SUMS; do
    gpg --homedir "$gnupg" --batch --quiet --yes --pinentry-mode loopback --passphrase '' \
      --detach-sign --output "$sums.sig" "$sums" || die "release-mirror: signing $sums failed"
  done
  log "release-mirror: packed nomad and vault into $root/$key"
}

cached_build "$root" "$key" build_mirror
