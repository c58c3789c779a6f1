#!/usr/bin/env bash
# The demo's secrets (scripts/demo.sh; tests/integration/site): generated once
# into DIR/secrets.vault.yml, an ansible-vault file encrypted with the password
# in DIR/vault-password (both mode 0600), in the layout of
# inventories/example-single/group_vars/all/vault.yml.example. Kept when present.
# Usage: scripts/demo-secrets.sh DIR   (then: -e @DIR/secrets.vault.yml --vault-password-file DIR/vault-password)
source "$(dirname "$0")/lib.sh"
activate_env
dir="${1:?usage: scripts/demo-secrets.sh DIR}"
mkdir -p "$dir" && chmod 700 "$dir"
passfile="$dir/vault-password" secrets="$dir/secrets.vault.yml"
[ -s "$passfile" ] || (umask 077 && openssl rand -hex 24 >"$passfile")
[ -s "$secrets" ] && exit 0
pw() { openssl rand -hex 12; }
dashboard_pw="$(pw)"
(umask 077 && cat >"$secrets.tmp" <<EOF
# The demo's secrets (scripts/demo-secrets.sh); Traefik's dashboard: admin / $dashboard_pw
homelab_bootstrap_password: $(pw)
homelab_secrets:
  traefik: {dashboard_users: 'admin:$(openssl passwd -apr1 "$dashboard_pw")'}
  grafana: {admin_password: $(pw)}
  backup-apps: {restic_password: $(pw)}
  photoprism: {admin_password: $(pw), db_password: $(pw), db_root_password: $(pw)}
  nextcloud: {admin_password: $(pw), db_password: $(pw)}
  plex: {claim_token: claim-demo-not-a-real-token}
  transmission: {rpc_password: $(pw)}
EOF
)
ansible-vault encrypt --vault-password-file "$passfile" "$secrets.tmp" >/dev/null
mv "$secrets.tmp" "$secrets"
