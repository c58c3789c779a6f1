#!/usr/bin/env bash
# The hashistack test mirror (scripts/hashistack/mirror.sh) plus the next patch
# release of the Nomad and Vault simulators (pack.py --bump: the same code
# reporting X.Y.Z+1), signed with the same test key: an upgrade for
# playbooks/upgrade.yml to roll out in molecule/hashistack_cluster. Cached
# under $HOMELAB_CACHE keyed by its inputs. Prints the mirror directory; the
# bumped versions are the first entries of <mirror>/{nomad,vault}/index.json.
source "$(dirname "$0")/../lib.sh"
activate_env

base="$("$HOMELAB_REPO/scripts/hashistack/mirror.sh")"
key="$(printf '%s\n' "$base" | cat - "$0" "$HOMELAB_REPO/scripts/release-mirror/pack.py" | sha256sum | cut -c1-12)"
root="$HOMELAB_CACHE/hashistack-mirror-bumped"
gnupg="$HOMELAB_CACHE/release-mirror/signing-gnupg"

# build_mirror DIR: the base mirror plus the bumped releases, signed, into DIR.
build_mirror() {
  local out="$1" product dir sums
  [ -f "$gnupg/.complete" ] || die "hashistack bumped mirror: no test signing key in $gnupg"
  trap 'gpgconf --homedir "$gnupg" --kill gpg-agent 2>/dev/null || true' EXIT
  cp -a "$base/." "$out/"
  rm -f "$out/.complete"
  python "$HOMELAB_REPO/scripts/release-mirror/pack.py" --repo "$HOMELAB_REPO" --out "$out/bumped" --bump >/dev/null
  for product in nomad vault; do
    for dir in "$out/bumped/$product"/*/; do
      cp -a "$dir" "$out/$product/"
    done
    for sums in "$out/bumped/$product"/*/*_SHA256SUMS; do
      sums="$out/$product/$(basename "$(dirname "$sums")")/$(basename "$sums")"
      gpg --homedir "$gnupg" --batch --quiet --yes --pinentry-mode loopback --passphrase '' \
        --detach-sign --output "$sums.sig" "$sums" || die "hashistack bumped mirror: signing $sums failed"
    done
    # index.json: the bumped release first, then the mirror's own.
    python - "$out/bumped/$product/index.json" "$out/$product/index.json" <<'PY'
import json, sys
bumped, current = (json.load(open(p)) for p in sys.argv[1:])
current["versions"] = {**bumped["versions"], **current["versions"]}
json.dump(current, open(sys.argv[2], "w"), indent=2)
PY
  done
  rm -rf "$out/bumped"
  log "hashistack bumped mirror: $root/$key (nomad and vault simulators at their next patch version)"
}

cached_build "$root" "$key" build_mirror
