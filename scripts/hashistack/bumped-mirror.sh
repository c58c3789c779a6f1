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
mirror="$root/$key"
if [ -f "$mirror/.complete" ]; then echo "$mirror"; exit 0; fi
mkdir -p "$root"
exec 9>"$root/.lock"
flock 9
if [ -f "$mirror/.complete" ]; then echo "$mirror"; exit 0; fi

gnupg="$HOMELAB_CACHE/release-mirror/signing-gnupg"
[ -f "$gnupg/.complete" ] || die "hashistack bumped mirror: no test signing key in $gnupg"
tmp="$(mktemp -d "$root/.build-XXXXXX")"
trap 'rm -rf "$tmp"; gpgconf --homedir "$gnupg" --kill gpg-agent 2>/dev/null || true' EXIT
cp -a "$base/." "$tmp/"
rm -f "$tmp/.complete"
python "$HOMELAB_REPO/scripts/release-mirror/pack.py" --repo "$HOMELAB_REPO" --out "$tmp/bumped" --bump >/dev/null
for product in nomad vault; do
  for dir in "$tmp/bumped/$product"/*/; do
    cp -a "$dir" "$tmp/$product/"
  done
  for sums in "$tmp/bumped/$product"/*/*_SHA256SUMS; do
    sums="$tmp/$product/$(basename "$(dirname "$sums")")/$(basename "$sums")"
    gpg --homedir "$gnupg" --batch --quiet --yes --pinentry-mode loopback --passphrase '' \
      --detach-sign --output "$sums.sig" "$sums" || die "hashistack bumped mirror: signing $sums failed"
  done
  # index.json: the bumped release first, then the mirror's own.
  python - "$tmp/bumped/$product/index.json" "$tmp/$product/index.json" <<'PY'
import json, sys
bumped, current = (json.load(open(p)) for p in sys.argv[1:])
current["versions"] = {**bumped["versions"], **current["versions"]}
json.dump(current, open(sys.argv[2], "w"), indent=2)
PY
done
rm -rf "$tmp/bumped"
touch "$tmp/.complete"
rm -rf "$mirror" && mv -T "$tmp" "$mirror"
log "hashistack bumped mirror: $mirror (nomad and vault simulators at their next patch version)"
echo "$mirror"
