#!/usr/bin/env bash
# Deploy playbooks/site.yml to the bundled demo target: a local Debian 12
# systemd container built and started here, then print what was deployed.
# Run it again: the second run reports changed=0.  Remove it: scripts/demo.sh --destroy
source "$(dirname "$0")/lib.sh"
name=selfhost-homelab-demo

if [ "${1:-}" = "--destroy" ]; then
  docker rm -f "$name" >/dev/null 2>&1 || true
  log "demo: removed $name"; exit 0
fi

"$HOMELAB_REPO/scripts/bootstrap.sh"
activate_env
cd "$HOMELAB_REPO" || exit 1

# The demo owner's SSH key (the demo inventory authorizes its public half).
keyfile="$HOMELAB_CACHE/demo_owner_key"
[ -f "$keyfile" ] || ssh-keygen -q -t ed25519 -N "" -C demo-owner -f "$keyfile"
cp "$keyfile.pub" inventories/demo/files/owner_key.pub

# The container is made anew when this script or the base image changed.
recipe="$(recipe_hash "$0")-$HOMELAB_IMAGE_DEBIAN12"
if [ "$(docker inspect -f '{{.State.Running}} {{index .Config.Labels "homelab.demo.recipe"}}' "$name" 2>/dev/null)" != "true $recipe" ]; then
  docker rm -f "$name" >/dev/null 2>&1 || true
  log "demo: starting the demo target $name"
  docker run -d --name "$name" --hostname demo --label "homelab.demo.recipe=$recipe" \
    --cap-add SYS_ADMIN --cap-add NET_ADMIN \
    --security-opt seccomp=unconfined --security-opt apparmor=unconfined \
    --tmpfs /run --tmpfs /run/lock --cgroupns host \
    -v /sys/fs/cgroup:/sys/fs/cgroup:rw -v "$HOMELAB_CACHE/host/mirror:/srv/mirror:ro" \
    "$HOMELAB_IMAGE_DEBIAN12" >/dev/null
  for _ in $(seq 1 30); do
    state="$(docker exec "$name" systemctl is-system-running 2>/dev/null || true)"
    case "$state" in running|degraded) break ;; esac
    sleep 1
  done
fi

ansible-playbook playbooks/site.yml -i inventories/demo/hosts.yml "$@"

ip="$(docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$name")"
echo
echo "=== deployed to $name ($ip)"
docker exec "$name" sh -c '
  . /etc/os-release; echo "os:        $PRETTY_NAME"
  echo "timezone:  $(cat /etc/timezone) ($(date +%Z))"
  echo "admins:    $(ls /etc/sudoers.d | sed -n "s/^homelab-//p" | paste -sd" " -)"
  echo "systemd:   $(systemctl is-system-running 2>/dev/null)"
  echo "services:  $(for u in ssh docker dnscrypt-proxy prometheus-node-exporter homelab-firewall; do printf "%s=%s " $u "$(systemctl is-active $u)"; done)"
  echo "firewall:  $(nft list tables 2>/dev/null | grep -c "inet homelab") homelab table(s) loaded"
  echo "metrics:   $(curl -s http://127.0.0.1:9100/metrics | grep -c "^node_") node_* series on :9100"'
echo "log in:    ssh -i $keyfile owner@$ip"
