#!/usr/bin/env bash
# The layer_* functions are called by name ("layer_$layer"), which shellcheck cannot see.
# shellcheck disable=SC2317
# Run the test layers: lint, sanity, unit, integration, molecule.
# Usage: scripts/test.sh [LAYER ...]      (default: all layers, in that order)
#        MOLECULE_SCENARIOS="base zfs" scripts/test.sh molecule   (a subset)
# Prepares the machine first (scripts/bootstrap.sh: idempotent, quiet when done).
# Prints one line per layer with its result and duration; exits non-zero if any
# layer failed. pytest's "no tests collected" (exit 5) counts as a failure.
source "$(dirname "$0")/lib.sh"

all_layers=(lint sanity unit integration molecule)
layers=("$@")
[ ${#layers[@]} -eq 0 ] && layers=("${all_layers[@]}")
for layer in "${layers[@]}"; do
  [[ " ${all_layers[*]} " == *" $layer "* ]] || die "unknown layer '$layer' (known: ${all_layers[*]})"
done

need_images=0
[[ " ${layers[*]} " == *" molecule "* || " ${layers[*]} " == *" integration "* ]] && need_images=1
if [ "$need_images" = 1 ]; then
  "$HOMELAB_REPO/scripts/bootstrap.sh"
else
  "$HOMELAB_REPO/scripts/bootstrap.sh" --no-images
fi
activate_env
cd "$HOMELAB_REPO" || exit 1
# Offline: no Galaxy, no GitHub release checks (see ../shared/ENVIRONMENT.md).
export ANSIBLE_GALAXY_SERVER_LIST="" ANSIBLE_NOCOLOR=1 PY_COLORS=0
export MOLECULE_GLOB="molecule/*/molecule.yml"

layer_lint() {
  local rc=0
  ruff check . || rc=1
  antsibull-changelog lint || rc=1
  yamllint -s . || rc=1
  ansible-lint --offline --profile production || rc=1
  return "$rc"
}

# The collection as users get it: build the tarball, install it offline, and
# check ansible-doc sees every plugin and role in it.
check_build() {
  local tmp rc=0 kind name
  tmp="$(mktemp -d)"
  ansible-galaxy collection build --output-path "$tmp" >/dev/null || { rm -rf "$tmp"; return 1; }
  ansible-galaxy collection install --offline --no-deps -p "$tmp/installed" "$tmp"/selfhost-homelab-*.tar.gz >/dev/null || rc=1
  for kind in module filter role; do
    case $kind in
      module) mapfile -t want < <(find plugins/modules -name '*.py' ! -name '__init__.py' -printf '%f\n' | sed 's/\.py$//') ;;
      filter) mapfile -t want < <(find plugins/filter -name '*.yml' -printf '%f\n' | sed 's/\.yml$//') ;;
      role)   mapfile -t want < <(find roles -mindepth 1 -maxdepth 1 -type d ! -name '_*' -printf '%f\n') ;;
    esac
    listed="$(ANSIBLE_COLLECTIONS_PATH="$tmp/installed" ansible-doc -t "$kind" -l selfhost.homelab 2>/dev/null)"
    for name in "${want[@]}"; do
      grep -q "selfhost\.homelab\.$name\b" <<<"$listed" || { log "build: ansible-doc -t $kind does not list selfhost.homelab.$name"; rc=1; }
    done
  done
  rm -rf "$tmp"
  [ "$rc" -eq 0 ] && log "build: tarball builds, installs, and ansible-doc lists its plugins and roles"
  return "$rc"
}

layer_sanity() {
  check_build || return 1
  # ansible-test needs the collection at ansible_collections/NS/NAME inside a
  # git repository: copy the working tree (tracked and new files) there.
  # One copy per checkout: worktrees share $HOMELAB_CACHE and may run at once.
  local top
  top="$HOMELAB_CACHE/sanity/$(printf %s "$HOMELAB_REPO" | sha256sum | cut -c1-8)/ansible_collections/selfhost/homelab"
  rm -rf "$top" && mkdir -p "$top"
  git ls-files -co --exclude-standard -z | tar --null -T - -cf - | tar -C "$top" -xf -
  (cd "$top" && git init -q && git add -A && git -c user.name=t -c user.email=t@t commit -qm sanity)
  (cd "$top" && ansible-test sanity --python "$(python -c 'import sys; print("%d.%d" % sys.version_info[:2])')" \
     --color no)
}

run_pytest() {
  local rc=0
  pytest "$@" || rc=$?
  if [ "$rc" -eq 5 ]; then log "pytest collected no tests: that is a failure"; fi
  return "$rc"
}

layer_unit() { run_pytest -q -n 2 tests/unit; }

layer_integration() { run_pytest -q -n 2 tests/integration; }

layer_molecule() {
  local scenarios
  if [ -n "${MOLECULE_SCENARIOS:-}" ]; then
    read -r -a scenarios <<<"$MOLECULE_SCENARIOS"
  else
    mapfile -t scenarios < <(find molecule -mindepth 2 -maxdepth 2 -name molecule.yml -printf '%h\n' | xargs -rn1 basename | sort)
  fi
  [ ${#scenarios[@]} -gt 0 ] || { log "no molecule scenarios found"; return 1; }
  # Longest first (by their CI times), so the two slots finish close together
  # instead of one long scenario running alone at the end.
  local longest=(hashistack_cluster site apps zfs hashistack backup_zfs) ordered=() s
  for s in "${longest[@]}"; do
    if [[ " ${scenarios[*]} " == *" $s "* ]]; then ordered+=("$s"); fi
  done
  for s in "${scenarios[@]}"; do
    if [[ " ${longest[*]} " != *" $s "* ]]; then ordered+=("$s"); fi
  done
  scenarios=("${ordered[@]}")
  local logdir="$HOMELAB_CACHE/molecule-logs"
  mkdir -p "$logdir"
  # Scenarios that start from the converged HashiCorp layer run its image
  # (selfhost-homelab/hashistack, molecule/hashistack/reuse): build it once here,
  # before scenarios run in parallel (it is cached by a hash of its sources), and
  # hand them this checkout's tag (HOMELAB_HASHISTACK_IMAGE), not the shared :latest.
  for s in "${scenarios[@]}"; do
    if grep -qs 'selfhost-homelab/hashistack' "molecule/$s/molecule.yml"; then
      HOMELAB_HASHISTACK_IMAGE="$("$HOMELAB_REPO/scripts/hashistack/image.sh")" \
        || { log "the hashistack image could not be built"; return 1; }
      export HOMELAB_HASHISTACK_IMAGE
      break
    fi
  done
  # Two at a time (two cores); each scenario's output goes to its own log,
  # printed in full when it fails.
  # shellcheck disable=SC2016 # the inner script expands its own arguments
  printf '%s\n' "${scenarios[@]}" | xargs -P "${MOLECULE_JOBS:-2}" -I{} bash -c '
    start=$(date +%s)
    if molecule test -s "$1" >"$2/$1.log" 2>&1; then
      echo "  molecule $1: ok ($(( $(date +%s) - start ))s)"
    else
      echo "  molecule $1: FAILED ($(( $(date +%s) - start ))s)"; cat "$2/$1.log"; exit 1
    fi' _ {} "$logdir"
}

summary=()
failed=0
for layer in "${layers[@]}"; do
  log "=== layer: $layer"
  start=$(date +%s)
  if "layer_$layer"; then result=ok; else result=FAILED; failed=1; fi
  summary+=("$(printf '%-12s %-7s %5ss' "$layer" "$result" "$(( $(date +%s) - start ))")")
done

echo "=== summary"
printf '%s\n' "${summary[@]}"
[ $failed -eq 0 ] && echo "all layers passed" || echo "some layers FAILED"
exit $failed
