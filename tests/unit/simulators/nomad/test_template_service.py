"""The simulator's template renderer: consul-template's ``range service "NAME"``.

The monitoring role's Grafana datasource finds Prometheus with
``{{ range service "prometheus" }}{{ .Address }}:{{ .Port }}{{ end }}``; before
this the simulator failed the task ("function 'range' not defined").
"""

from __future__ import annotations

import os
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

from tests.simulators.nomad import template  # noqa: E402

INSTANCES = {
    "prometheus": [{"ID": "a", "Name": "prometheus", "Node": "box", "Address": "10.0.0.5", "Port": 9090,
                    "Tags": ["metrics"]}],
    "web": [{"ID": "w1", "Name": "web", "Node": "n1", "Address": "10.0.0.1", "Port": 80, "Tags": []},
            {"ID": "w2", "Name": "web", "Node": "n2", "Address": "10.0.0.2", "Port": 81, "Tags": []}],
}


def _service(name):
    return INSTANCES.get(name, [])


def _no_secret(path):
    raise AssertionError("no secret read expected: %s" % path)


def test_grafana_datasource_as_the_monitoring_role_writes_it():
    text = 'url: http://{{ range service "prometheus" }}{{ .Address }}:{{ .Port }}{{ end }}\n'
    assert template.render(text, lambda k: "", _no_secret, service=_service) == "url: http://10.0.0.5:9090\n"


def test_every_instance_and_none():
    text = ('{{ range service "web" }}server {{ .Address }}:{{ .Port }};\n{{ end }}'
            '-{{ range service "gone" }}x{{ end }}-')
    assert template.render(text, lambda k: "", _no_secret, service=_service) == \
        "server 10.0.0.1:80;\nserver 10.0.0.2:81;\n--"


def test_range_inside_with_and_with_inside_range():
    secret = {"Data": {"data": {"user": "u"}}}
    text = ('{{ with secret "kv/data/x" }}{{ .Data.data.user }}@{{ range service "prometheus" }}{{ .Address }}'
            '{{ end }}{{ end }}|{{ range service "web" }}{{ with secret "kv/data/x" }}{{ .Data.data.user }}'
            '{{ end }}{{ .ID }} {{ end }}')
    assert template.render(text, lambda k: "", lambda p: secret, service=_service) == "u@10.0.0.5|uw1 uw2 "


def test_without_consul_or_with_other_range_forms_it_fails_loudly():
    with pytest.raises(template.TemplateError, match="no Consul"):
        template.render('{{ range service "web" }}{{ end }}', lambda k: "", _no_secret)
    with pytest.raises(template.TemplateError, match="only .*range service"):
        template.render('{{ range $i, $s := services }}{{ end }}', lambda k: "", _no_secret, service=_service)
    with pytest.raises(template.TemplateError, match="no {{ end }}"):
        template.render('{{ range service "web" }}', lambda k: "", _no_secret, service=_service)
