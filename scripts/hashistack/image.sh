#!/usr/bin/env bash
# The converged single-box HashiCorp layer as a local Docker image, so later
# scenarios (Traefik, apps, monitoring, backups, site) start from it instead of
# converging Consul, Vault and Nomad again:
#   selfhost-homelab/hashistack:<hash of the roles, the playbook, the
#   collection's plugins (the roles' modules and actions), the test mirror,
#   the base image and this script>   (also tagged :latest)
# Older hashistack:<hash> images no container uses are removed after a build
# (each is about 1 GB).
# Built once per hash by converging playbooks/hashistack.yml on a Debian 12
# systemd container with the variables of molecule/hashistack (Consul bound to
# 127.0.0.1 so a new container's address does not matter), stopping the agents
# cleanly and committing the container. The encrypted bootstrap file is kept
# in the image at /root/homelab-bootstrap.vault.yml (test password:
# molecule-test-only-password). Vault starts sealed in a new container:
# molecule/hashistack/reuse/prepare.yml fetches the bootstrap file and unseals.
# Usage: scripts/hashistack/image.sh   -> prints the image tag
source "$(dirname "$0")/../lib.sh"
activate_env

mirror="$("$HOMELAB_REPO/scripts/hashistack/mirror.sh")"
base="$HOMELAB_IMAGE_DEBIAN12"
mapfile -t sources < <(cd "$HOMELAB_REPO" && git ls-files -co --exclude-standard \
  roles/hashicorp_release roles/consul roles/vault roles/nomad playbooks/hashistack.yml \
  molecule/hashistack/molecule.yml plugins | sort)
key="$(cd "$HOMELAB_REPO" && { cat "${sources[@]}" "$0"; echo "$mirror $base"; } | sha256sum | cut -c1-12)"
tag="selfhost-homelab/hashistack:$key"
if docker image inspect "$tag" >/dev/null 2>&1; then
  docker tag "$tag" selfhost-homelab/hashistack:latest
  echo "$tag"; exit 0
fi
lockdir="$HOMELAB_CACHE/hashistack-image" && mkdir -p "$lockdir"
exec 9>"$lockdir/.lock"
flock 9
if docker image inspect "$tag" >/dev/null 2>&1; then echo "$tag"; exit 0; fi

name="hashistack-image-build-$$"
tmp="$(mktemp -d "$lockdir/.build-XXXXXX")"
trap 'docker rm -f "$name" >/dev/null 2>&1 || true; rm -rf "$tmp"' EXIT
docker run -d --name "$name" --hostname hashistack-single \
  --cap-add SYS_ADMIN --security-opt seccomp=unconfined --security-opt apparmor=unconfined \
  --tmpfs /run --tmpfs /run/lock --tmpfs /tmp -v /sys/fs/cgroup:/sys/fs/cgroup:rw --cgroupns host \
  "$base" >/dev/null || die "hashistack image: could not start $base"

# The inventory: the scenario's group_vars, this one container in every group.
python - "$HOMELAB_REPO/molecule/hashistack/molecule.yml" "$tmp" "$name" <<'PY'
import os, sys, yaml
scenario, out, name = sys.argv[1:]
with open(scenario) as fh:
    group_vars = yaml.safe_load(fh)["provisioner"]["inventory"]["group_vars"]["all"]
group_vars["consul_bind_address"] = "127.0.0.1"
os.makedirs(os.path.join(out, "group_vars"))
with open(os.path.join(out, "group_vars", "all.yml"), "w") as fh:
    yaml.safe_dump(group_vars, fh)
host = {"hashistack-single": {"ansible_connection": "community.docker.docker", "ansible_host": name,
                              "ansible_python_interpreter": "/usr/bin/python3"}}
groups = ["homelab", "consul_servers", "vault_servers", "nomad_servers", "nomad_clients", "ingress"]
with open(os.path.join(out, "inventory.yml"), "w") as fh:
    yaml.safe_dump({"all": {"children": {g: {"hosts": host} for g in groups}}}, fh)
PY
MOLECULE_PROJECT_DIRECTORY="$HOMELAB_REPO" MOLECULE_EPHEMERAL_DIRECTORY="$tmp" \
  ansible-playbook -i "$tmp/inventory.yml" "$HOMELAB_REPO/playbooks/hashistack.yml" >"$tmp/converge.log" 2>&1 \
  || { tail -40 "$tmp/converge.log" >&2; die "hashistack image: converge failed"; }
docker cp "$tmp/homelab-bootstrap.yml" "$name:/root/homelab-bootstrap.vault.yml"
docker exec "$name" systemctl stop nomad vault consul
docker commit -c 'CMD ["/sbin/init"]' "$name" "$tag" >/dev/null
docker tag "$tag" selfhost-homelab/hashistack:latest
log "hashistack image: built $tag"
# Drop the images of earlier hashes (docker refuses to remove one a container still uses).
docker images --format '{{.Repository}}:{{.Tag}}' selfhost-homelab/hashistack \
  | grep -v -e ":latest$" -e "^$tag$" | xargs -r docker rmi >/dev/null 2>&1 || true
echo "$tag"
