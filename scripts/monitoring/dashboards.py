"""The monitoring role's four Grafana dashboards, as code (grafana-foundation-sdk).

    python3 scripts/monitoring/dashboards.py            write roles/monitoring/files/dashboards/<name>.json
    python3 scripts/monitoring/dashboards.py --check    exit 1 when a committed file differs from the code

The committed JSON is what the role provisions; tests/unit/roles/monitoring checks
that it matches this code, and tests/integration/monitoring runs every query on a
real Prometheus scraping the real exporters. Every query uses the Grafana
datasource with uid "prometheus" (provisioned by the role).
"""
import json
import os
import sys

from grafana_foundation_sdk.builders.dashboard import Dashboard, QueryVariable, Row
from grafana_foundation_sdk.builders.prometheus import Dataquery as PrometheusQuery
from grafana_foundation_sdk.builders.stat import Panel as Stat
from grafana_foundation_sdk.builders.table import Panel as Table
from grafana_foundation_sdk.builders.timeseries import Panel as Timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import DataSourceRef

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT = os.path.join(REPO, "roles", "monitoring", "files", "dashboards")
DS = DataSourceRef(type_val="prometheus", uid="prometheus")


def query(expr, legend=None, instant=False):
    q = PrometheusQuery().expr(expr).datasource(DS).ref_id("A")
    if legend:
        q = q.legend_format(legend)
    if instant:
        q = q.instant().format("table")
    return q


def timeseries(title, expr, legend, unit, height=8, width=12):
    return (Timeseries().title(title).datasource(DS).unit(unit).height(height).span(width)
            .with_target(query(expr, legend)))


def stat(title, expr, unit, legend=None, width=6):
    return Stat().title(title).datasource(DS).unit(unit).height(4).span(width).with_target(query(expr, legend))


def instance_variable(metric):
    return (QueryVariable("instance").label("Host").datasource(DS)
            .query("label_values(%s, instance)" % metric).include_all(True).multi(True).refresh(1))


def host():
    sel = 'instance=~"$instance"'
    return (Dashboard("Host").uid("homelab-host").tags(["homelab", "node-exporter"])
            .refresh("1m").time("now-6h", "now").timezone("browser")
            .with_variable(instance_variable("node_uname_info"))
            .with_row(Row("Overview"))
            .with_panel(stat("Uptime", "time() - node_boot_time_seconds{%s}" % sel, "s", "{{instance}}"))
            .with_panel(stat("Load (5m)", "node_load5{%s}" % sel, "short", "{{instance}}"))
            .with_panel(stat("Memory available", "node_memory_MemAvailable_bytes{%s} / node_memory_MemTotal_bytes{%s}"
                             % (sel, sel), "percentunit", "{{instance}}"))
            .with_panel(stat("Root filesystem free",
                             'node_filesystem_avail_bytes{%s,mountpoint="/",fstype!="rootfs"} / '
                             'node_filesystem_size_bytes{%s,mountpoint="/",fstype!="rootfs"}' % (sel, sel),
                             "percentunit", "{{instance}}"))
            .with_row(Row("Resources"))
            .with_panel(timeseries("CPU busy",
                                   '1 - avg by (instance) (rate(node_cpu_seconds_total{%s,mode="idle"}[5m]))' % sel,
                                   "{{instance}}", "percentunit"))
            .with_panel(timeseries("Memory used",
                                   "node_memory_MemTotal_bytes{%s} - node_memory_MemAvailable_bytes{%s}" % (sel, sel),
                                   "{{instance}}", "bytes"))
            .with_panel(timeseries("Disk I/O", "rate(node_disk_io_time_seconds_total{%s}[5m])" % sel,
                                   "{{instance}} {{device}}", "percentunit"))
            .with_panel(timeseries("Network received",
                                   'rate(node_network_receive_bytes_total{%s,device!="lo"}[5m]) * 8' % sel,
                                   "{{instance}} {{device}}", "bps"))
            .with_panel(timeseries("Filesystem free",
                                   'node_filesystem_avail_bytes{%s,fstype!~"rootfs|tmpfs"}' % sel,
                                   "{{instance}} {{mountpoint}}", "bytes"))
            .with_panel(timeseries("Textfile metrics age",
                                   "time() - node_textfile_mtime_seconds{%s}" % sel, "{{instance}} {{file}}", "s"))
            .with_row(Row("Backups"))
            .with_panel(stat("Hours since the last backup",
                             "(time() - homelab_backup_last_success_timestamp_seconds{%s}) / 3600" % sel, "h",
                             "{{set}}"))
            .with_panel(stat("Last backup size", "homelab_backup_size_bytes{%s}" % sel, "bytes", "{{set}}"))
            .with_panel(stat("Restore drill passed", "homelab_restore_drill_success{%s}" % sel, "bool", "{{set}}"))
            .with_panel(stat("Days since the last restore drill",
                             "(time() - homelab_restore_drill_last_run_timestamp_seconds{%s}) / 86400" % sel, "d",
                             "{{set}}")))


def zfs():
    sel = 'instance=~"$instance", pool=~"$pool"'
    return (Dashboard("ZFS pool").uid("homelab-zfs").tags(["homelab", "zfs"])
            .refresh("1m").time("now-7d", "now").timezone("browser")
            .with_variable(instance_variable("homelab_zfs_pool_online"))
            .with_variable(QueryVariable("pool").label("Pool").datasource(DS)
                           .query('label_values(homelab_zfs_pool_online{instance=~"$instance"}, pool)')
                           .include_all(True).multi(True).refresh(1))
            .with_row(Row("Health"))
            .with_panel(Table().title("Pool health").datasource(DS).height(6).span(12)
                        .with_target(query("homelab_zfs_pool_health{%s} == 1" % sel, instant=True)))
            .with_panel(stat("Capacity used", "homelab_zfs_pool_capacity_ratio{%s}" % sel, "percentunit",
                             "{{pool}}"))
            .with_panel(stat("Days since last scrub",
                             "(time() - homelab_zfs_pool_last_scrub_end_timestamp_seconds{%s}) / 86400" % sel,
                             "d", "{{pool}}"))
            .with_row(Row("Space and errors"))
            .with_panel(timeseries("Allocated", "homelab_zfs_pool_allocated_bytes{%s}" % sel, "{{pool}}", "bytes"))
            .with_panel(timeseries("Free", "homelab_zfs_pool_free_bytes{%s}" % sel, "{{pool}}", "bytes"))
            .with_panel(timeseries("Fragmentation", "homelab_zfs_pool_fragmentation_ratio{%s}" % sel, "{{pool}}",
                                   "percentunit"))
            .with_panel(timeseries("Device errors", "homelab_zfs_pool_device_errors{%s}" % sel,
                                   "{{pool}} {{kind}}", "short"))
            .with_panel(timeseries("Scrub errors and data errors",
                                   "homelab_zfs_pool_scan_errors{%s} + homelab_zfs_pool_data_errors{%s}" % (sel, sel),
                                   "{{pool}}", "short")))


def containers():
    sel = 'instance=~"$instance", image!=""'
    return (Dashboard("Containers").uid("homelab-containers").tags(["homelab", "cadvisor"])
            .refresh("1m").time("now-6h", "now").timezone("browser")
            .with_variable(instance_variable("container_last_seen"))
            .with_row(Row("Containers"))
            .with_panel(stat("Running containers", 'count(container_last_seen{%s})' % sel, "short", width=12))
            .with_panel(timeseries("CPU", "sum by (name) (rate(container_cpu_usage_seconds_total{%s}[5m]))" % sel,
                                   "{{name}}", "short"))
            .with_panel(timeseries("Memory (working set)", "sum by (name) (container_memory_working_set_bytes{%s})"
                                   % sel, "{{name}}", "bytes"))
            .with_panel(timeseries("Network received",
                                   "sum by (name) (rate(container_network_receive_bytes_total{%s}[5m]))" % sel,
                                   "{{name}}", "Bps"))
            .with_panel(timeseries("Network sent",
                                   "sum by (name) (rate(container_network_transmit_bytes_total{%s}[5m]))" % sel,
                                   "{{name}}", "Bps"))
            .with_panel(timeseries("Filesystem used", "sum by (name) (container_fs_usage_bytes{%s})" % sel,
                                   "{{name}}", "bytes")))


def smart():
    sel = 'instance=~"$instance"'
    return (Dashboard("Disk health (SMART)").uid("homelab-smart").tags(["homelab", "smart"])
            .refresh("5m").time("now-7d", "now").timezone("browser")
            .with_variable(instance_variable("smartmon_device_smart_healthy"))
            .with_row(Row("Health"))
            .with_panel(Table().title("Disks").datasource(DS).height(6).span(24)
                        .with_target(query("smartmon_device_info{%s}" % sel, instant=True)))
            .with_panel(stat("SMART health passed", "smartmon_device_smart_healthy{%s}" % sel, "bool",
                             "{{instance}} {{disk}}", width=12))
            .with_panel(stat("Disks in standby", "1 - smartmon_device_active{%s}" % sel, "bool",
                             "{{instance}} {{disk}}", width=12))
            .with_row(Row("Attributes"))
            .with_panel(timeseries("Reallocated sectors", "smartmon_reallocated_sector_ct_raw_value{%s}" % sel,
                                   "{{instance}} {{disk}}", "short"))
            .with_panel(timeseries("Temperature", "smartmon_airflow_temperature_cel_raw_value{%s} "
                                   "or smartmon_temperature_celsius_raw_value{%s}" % (sel, sel),
                                   "{{instance}} {{disk}}", "celsius"))
            .with_panel(timeseries("Power-on hours", "smartmon_power_on_hours_raw_value{%s}" % sel,
                                   "{{instance}} {{disk}}", "h"))
            .with_panel(timeseries("Read error rate", "smartmon_raw_read_error_rate_raw_value{%s}" % sel,
                                   "{{instance}} {{disk}}", "short")))


DASHBOARDS = {"host": host, "zfs": zfs, "containers": containers, "smart": smart}


def render(name):
    built = json.loads(JSONEncoder(sort_keys=True, indent=2).encode(DASHBOARDS[name]().build()))
    # Grafana needs each panel's id unique within its dashboard; the builders leave them unset.
    for number, panel in enumerate(built["panels"], start=1):
        panel["id"] = number
    return json.dumps(built, indent=2, sort_keys=True) + "\n"


def main(argv):
    check = "--check" in argv
    stale = []
    os.makedirs(OUT, exist_ok=True)
    for name in DASHBOARDS:
        path = os.path.join(OUT, name + ".json")
        text = render(name)
        current = open(path).read() if os.path.exists(path) else None
        if current != text:
            if check:
                stale.append(path)
            else:
                with open(path, "w") as f:
                    f.write(text)
                print("wrote %s" % os.path.relpath(path, REPO))
    if stale:
        print("stale, run python3 scripts/monitoring/dashboards.py: %s" % " ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
