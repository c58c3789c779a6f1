#!/usr/bin/env bash
# Deploy playbooks/site.yml to the bundled demo target: a local Debian 12
# systemd container built and started here, then print what was deployed and
# each service's URL with whether it answers through Traefik.
# The whole stack runs, with these parts simulated or stood in for (said again
# at the end): the Nomad and Vault simulators in place of the real binaries,
# a stand-in responder in place of the app containers and Grafana, directories
# in place of ZFS datasets (inventories/demo/group_vars/homelab/stack.yml).
# Secrets: an ansible-vault file made here once under $HOMELAB_CACHE/demo with
# generated values, its password in a file beside it.
# Run it again: the second run reports changed=0.  Remove it: scripts/demo.sh --destroy
source "$(dirname "$0")/lib.sh"
name=selfhost-homelab-demo

if [ "${1:-}" = "--destroy" ]; then
  docker rm -f "$name" >/dev/null 2>&1 || true
  rm -f "$HOMELAB_CACHE/demo/bootstrap.vault.yml"
  log "demo: removed $name"; exit 0
fi

"$HOMELAB_REPO/scripts/bootstrap.sh"
activate_env
cd "$HOMELAB_REPO" || exit 1

# The demo owner's SSH key (the demo inventory authorizes its public half).
keyfile="$HOMELAB_CACHE/demo_owner_key"
[ -f "$keyfile" ] || ssh-keygen -q -t ed25519 -N "" -C demo-owner -f "$keyfile"
cp "$keyfile.pub" inventories/demo/files/owner_key.pub

# The demo's secrets: generated once, kept in an ansible-vault file (the real path:
# the preflight checks them, the vault role writes them to Vault).
demo="$HOMELAB_CACHE/demo"
"$HOMELAB_REPO/scripts/demo-secrets.sh" "$demo"
passfile="$demo/vault-password" secrets="$demo/secrets.vault.yml"
vault_args=(-e "@$secrets" --vault-password-file "$passfile")

# The container is made anew when this script or the base image changed.
recipe="$(recipe_hash "$0")-$HOMELAB_IMAGE_DEBIAN12"
if [ "$(docker inspect -f '{{.State.Running}} {{index .Config.Labels "homelab.demo.recipe"}}' "$name" 2>/dev/null)" != "true $recipe" ]; then
  docker rm -f "$name" >/dev/null 2>&1 || true
  # A new box has a new Vault: the old one's tokens and unseal keys are void.
  rm -f "$demo/bootstrap.vault.yml"
  log "demo: starting the demo target $name"
  docker run -d --name "$name" --hostname demo --label "homelab.demo.recipe=$recipe" \
    --cap-add SYS_ADMIN --cap-add NET_ADMIN \
    --security-opt seccomp=unconfined --security-opt apparmor=unconfined \
    --tmpfs /run --tmpfs /run/lock --tmpfs /tmp --cgroupns host \
    -v /sys/fs/cgroup:/sys/fs/cgroup:rw -v "$HOMELAB_CACHE/host/mirror:/srv/mirror:ro" \
    "$HOMELAB_IMAGE_DEBIAN12" >/dev/null
  for _ in $(seq 1 30); do
    state="$(docker exec "$name" systemctl is-system-running 2>/dev/null || true)"
    case "$state" in running|degraded) break ;; esac
    sleep 1
  done
fi

# The simulated parts first (nested Docker daemon with the local images, the Nomad
# simulator's stand-ins), then the whole stack.
ansible-playbook inventories/demo/prepare.yml -i inventories/demo/hosts.yml "${vault_args[@]}"
ansible-playbook playbooks/site.yml -i inventories/demo/hosts.yml "${vault_args[@]}" "$@"

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

# Each service at its URL, asked through Traefik on the box (Host header, HTTPS;
# Traefik serves its self-signed default certificate: no ACME in the demo). The
# demo's agents, and so Traefik's ports, are on the box's loopback: the question
# is asked on the box.
domain=home.example.test
echo
echo "=== services through Traefik on the box (browse them through an SSH tunnel, see below)"
while read -r sub what; do
  answer="$(docker exec "$name" curl -sk -o /tmp/demo-answer -w '%{http_code} ' --max-time 10 \
    --resolve "$sub.$domain:443:127.0.0.1" "https://$sub.$domain/" 2>/dev/null || true)"
  answer="$answer$(docker exec "$name" sh -c 'head -1 /tmp/demo-answer 2>/dev/null; rm -f /tmp/demo-answer' || true)"
  code="${answer%% *}"
  case "$code" in
    200) body="${answer#* }"; say="answers (${body:0:60})" ;;
    401) say="answers: 401, behind Traefik's basic auth (the dashboard's users)" ;;
    *) say="does NOT answer (HTTP ${code:-none})" ;;
  esac
  printf '  %-36s %-40s %s\n' "https://$sub.$domain/" "$what" "$say"
done <<'EOF'
photos PhotoPrism (stand-in)
cloud Nextcloud (stand-in)
plex Plex (stand-in)
torrents Transmission (stand-in)
grafana Grafana (stand-in)
prometheus Prometheus (real, Debian's package)
alertmanager Alertmanager (real, Debian's package)
traefik Traefik's dashboard (real Traefik)
EOF
echo
echo "Browse them: ssh -i $keyfile -L 8443:127.0.0.1:443 owner@$ip, add"
echo "'127.0.0.1 photos.$domain cloud.$domain ...' to /etc/hosts, open https://photos.$domain:8443/"
echo "and accept the self-signed certificate."
echo
echo "What is real and what is not in this demo:"
echo "  real:        Consul 1.8.7, Traefik (a Nomad docker task), Prometheus, Alertmanager, cAdvisor,"
echo "               node-exporter, dnscrypt-proxy, restic, nftables, systemd, Docker"
echo "  simulated:   Nomad and Vault (the project's simulators, tests/simulators, installed as releases)"
echo "  stand-ins:   the app containers (PhotoPrism, Nextcloud, Plex, Transmission, their databases) and"
echo "               Grafana answer with a busybox responder saying 'stand-in for <image>'"
echo "  directories: /srv/homelab and /srv/scratch stand in for ZFS datasets; no ACME (self-signed)"
