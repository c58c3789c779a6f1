#!/usr/bin/env bash
# Wheels the roles install on test hosts that have no PyPI of their own: the
# nomad role puts python-nomad on the Nomad servers (the collection's Nomad
# modules run there; Debian does not package it). The containers reach Debian's
# archive but not this machine's package index, so the wheel is downloaded here,
# at the version the controller's venv pins (requirements/constraints.txt), and
# scenarios hand the directory to the role (nomad_python_wheels_dir).
# Idempotent; quiet when done.
source "$(dirname "$0")/../lib.sh"

spec="$(grep -i '^python-nomad==' "$HOMELAB_REPO/requirements/constraints.txt")" \
  || die "wheels: python-nomad is not pinned in requirements/constraints.txt"
dir="$HOMELAB_CACHE/wheels"
version="${spec#*==}"
ls "$dir"/python_nomad-"$version"-*.whl >/dev/null 2>&1 && exit 0
mkdir -p "$dir"
python3 -m pip download --quiet --no-deps --only-binary=:all: --dest "$dir" "$spec" \
  || die "wheels: could not download $spec"
log "wheels: $(cd "$dir" && ls python_nomad-"$version"-*.whl) ready in $dir"
