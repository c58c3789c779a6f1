#!/usr/bin/env bash
# The monitoring tests run the real programs: Prometheus, promtool,
# Alertmanager, amtool, node-exporter and the smartmon collector script from
# Debian 12, and cAdvisor 0.38 from Debian 11 (bullseye), unpacked from their
# .debs under $HOMELAB_CACHE (no apt sources touched, no service started).
# Consul 1.8.7 comes from the same cache (bullseye). The tests find the
# programs through $HOMELAB_CACHE/monitoring/bin (tests/integration/monitoring).
# Idempotent; quiet when done.
source "$(dirname "$0")/../lib.sh"

key="$(recipe_hash "$0")"
bin="$HOMELAB_CACHE/monitoring/bin"
stamp="$HOMELAB_CACHE/monitoring/.complete-$key"
[ -f "$stamp" ] && exit 0

mkdir -p "$bin"
for pkg in prometheus prometheus-alertmanager prometheus-node-exporter prometheus-node-exporter-collectors smartmontools; do
  dir="$(fetch_deb bookworm "$pkg")" || die "monitoring: could not fetch $pkg from bookworm"
  case $pkg in
    prometheus) ln -sfn "$dir/usr/bin/prometheus" "$bin/prometheus"; ln -sfn "$dir/usr/bin/promtool" "$bin/promtool" ;;
    prometheus-alertmanager)
      ln -sfn "$dir/usr/bin/prometheus-alertmanager" "$bin/alertmanager"; ln -sfn "$dir/usr/bin/amtool" "$bin/amtool"
      # Debian's Alertmanager reads its default notification templates from this fixed path
      # (a Debian patch; the upstream binary embeds them); the package would put them there.
      mkdir -p /usr/share/prometheus/alertmanager
      for tmpl in "$dir"/usr/share/prometheus/alertmanager/*.tmpl; do
        [ -f "/usr/share/prometheus/alertmanager/${tmpl##*/}" ] || cp "$tmpl" /usr/share/prometheus/alertmanager/
      done ;;
    prometheus-node-exporter) ln -sfn "$dir/usr/bin/prometheus-node-exporter" "$bin/node-exporter" ;;
    prometheus-node-exporter-collectors)
      ln -sfn "$dir/usr/share/prometheus-node-exporter-collectors/smartmon.sh" "$bin/smartmon.sh" ;;
    # smartctl for scripts/monitoring/record-textfiles.py (copied into the ZFS test VM)
    smartmontools) ln -sfn "$dir/usr/sbin/smartctl" "$bin/smartctl" ;;
  esac
done
dir="$(fetch_deb bullseye cadvisor)" || die "monitoring: could not fetch cadvisor from bullseye"
ln -sfn "$dir/usr/bin/cadvisor" "$bin/cadvisor"
dir="$(fetch_deb bullseye consul)" || die "monitoring: could not fetch consul from bullseye"
ln -sfn "$dir/usr/bin/consul" "$bin/consul"
for tool in prometheus promtool alertmanager amtool node-exporter; do
  "$bin/$tool" --version >/dev/null 2>&1 || die "monitoring: $tool does not run"
done
"$bin/cadvisor" --version >/dev/null 2>&1 || die "monitoring: cadvisor does not run"
"$bin/consul" version >/dev/null || die "monitoring: consul does not run"
rm -f "$HOMELAB_CACHE"/monitoring/.complete-*
touch "$stamp"
log "monitoring: $("$bin/prometheus" --version 2>&1 | head -1 | cut -d' ' -f1-3), cadvisor and friends ready in $bin"
