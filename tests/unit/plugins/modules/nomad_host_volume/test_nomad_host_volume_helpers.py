"""nomad_host_volume's pure parts: sizes, the desired volume, what differs."""

from __future__ import annotations

import pytest
from ansible_collections.selfhost.homelab.plugins.module_utils._nomad import NomadError
from ansible_collections.selfhost.homelab.plugins.module_utils._nomad_host_volume import (
    desired_volume,
    differences,
    parse_size,
    summary,
)


@pytest.mark.parametrize(("value", "expected"), [
    (None, None), ("", None), (0, 0), (1048576, 1048576), ("10GiB", 10 * 1024 ** 3), ("500MB", 500 * 10 ** 6),
    ("1.5G", 1500 * 10 ** 6), ("2 TiB", 2 * 1024 ** 4), ("512", 512), ("1k", 1000),
])
def test_parse_size(value, expected):
    assert parse_size(value, "capacity_min") == expected


@pytest.mark.parametrize("value", ["lots", "10 parsecs", -1, "-5G"])
def test_parse_size_refuses(value):
    with pytest.raises(NomadError, match="capacity_min: "):
        parse_size(value, "capacity_min")


def _params(**over):
    params = {"name": "photoprism-data", "host_path": "/srv/homelab/photoprism/", "plugin_id": None,
              "capacity_min": None, "capacity_max": None, "node_pool": None, "parameters": None,
              "capabilities": [{"access_mode": "single-node-writer", "attachment_mode": "file-system"}]}
    params.update(over)
    return params


def test_desired_and_differences():
    want = desired_volume(_params(), "node-1")
    assert want == {"Name": "photoprism-data", "NodeID": "node-1", "HostPath": "/srv/homelab/photoprism",
                    "RequestedCapabilities": [{"AccessMode": "single-node-writer", "AttachmentMode": "file-system"}],
                    "RequestedCapacityMinBytes": 0, "RequestedCapacityMaxBytes": 0, "Parameters": None}
    assert differences(None, want) == ["Name", "NodeID", "HostPath", "RequestedCapacityMinBytes",
                                       "RequestedCapacityMaxBytes", "RequestedCapabilities", "Parameters"]
    # As Nomad answers it: server-owned fields, empty parameters as {}, capabilities in another order.
    current = dict(want, ID="v1", State="ready", CreateIndex=5, Parameters={}, PluginID="", NodePool="default",
                   RequestedCapabilities=[{"AttachmentMode": "file-system", "AccessMode": "single-node-writer"}])
    assert differences(current, want) == []
    changed = desired_volume(_params(capabilities=[{"access_mode": "single-node-reader-only",
                                                   "attachment_mode": "file-system"}], capacity_max="1G"), "node-1")
    assert differences(current, changed) == ["RequestedCapacityMaxBytes", "RequestedCapabilities"]
    assert "RequestedCapabilities: single-node-writer/file-system\n" in summary(current)


@pytest.mark.parametrize(("over", "message"), [
    ({"host_path": None}, "host_path: give either host_path"),
    ({"plugin_id": "mkdir"}, "host_path: give either host_path (register an existing path) or plugin_id"),
    ({"host_path": "data"}, "host_path: 'data' must be an absolute path"),
    ({"capabilities": []}, "capabilities: at least one access mode"),
    ({"capabilities": [{"access_mode": "rw"}]}, "capabilities[0].access_mode: 'rw' must be one of"),
    ({"capacity_min": "2G", "capacity_max": "1G"}, "capacity_max: 1000000000 is below capacity_min 2000000000"),
])
def test_desired_refuses(over, message):
    with pytest.raises(NomadError) as exc:
        desired_volume(_params(**over), "node-1")
    assert message in str(exc.value)
