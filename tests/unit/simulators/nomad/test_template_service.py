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


CATALOG = [{"Name": "prometheus", "Tags": ["metrics"]}, {"Name": "web", "Tags": ["traefik.enable=true"]}]


def test_file_sd_targets_as_the_monitoring_role_writes_them():
    """Every passing instance of every service tagged "metrics" (range services, if contains,
    range service .Name); a missing ServiceMeta key is "" (Go's zero value)."""
    INSTANCES["prometheus"][0]["ServiceMeta"] = {"metrics_path": "/metrics"}
    INSTANCES["web"][0]["ServiceMeta"] = {}
    text = ('{{ range services }}{{ if .Tags | contains "metrics" }}{{ range service .Name }}'
            '- {{ .Name }}@{{ .Address }}:{{ .Port }} {{ index .ServiceMeta "metrics_path" }}'
            '|{{ index .ServiceMeta "other" }}|\n{{ end }}{{ end }}{{ end }}')
    assert template.render(text, lambda k: "", _no_secret, service=_service, services=lambda: CATALOG) == \
        "- prometheus@10.0.0.5:9090 /metrics||\n"
    text = '{{ range services }}{{ if in .Tags "traefik.enable=true" }}{{ .Name }}{{ end }}{{ end }}'
    assert template.render(text, lambda k: "", _no_secret, service=_service, services=lambda: CATALOG) == "web"


def test_tagged_query_and_consul_detection():
    asked = []

    def service(query):
        asked.append(query)
        return []

    assert template.render('{{ range service "http.nomad" }}x{{ end }}', lambda k: "", _no_secret,
                           service=service) == ""
    assert asked == ["http.nomad"]
    assert template.uses_consul('a {{ range services }}{{ end }}')
    assert template.uses_consul('[[% range service "x" %]][[% end %]]', "[[%", "%]]")
    assert not template.uses_consul('{{ with secret "kv/data/x" }}{{ .Data.data.a }}{{ end }}')


def test_services_without_consul_and_unknown_conditions_fail_loudly():
    with pytest.raises(template.TemplateError, match="services: no Consul"):
        template.render('{{ range services }}{{ end }}', lambda k: "", _no_secret)
    with pytest.raises(template.TemplateError, match="not defined"):
        template.render('{{ range services }}{{ if eq .Name "x" }}{{ end }}{{ end }}', lambda k: "", _no_secret,
                        service=_service, services=lambda: CATALOG)
