"""The shared simulator base: routing, error shaping, request log."""

import json
import urllib.error
import urllib.request

import pytest

from tests.simulators.base import App, HTTPError, Response, SimServer


def _app():
    app = App()

    @app.route("GET", r"/v1/item/(?P<name>[^/]+)")
    def read(request):
        if request.params["name"] == "missing":
            raise HTTPError(404, {"errors": ["no such item"]})
        return Response(200, {"name": request.params["name"], "q": request.query})

    @app.route("PUT", r"/v1/item/(?P<name>[^/]+)")
    def write(request):
        return Response(200, {"got": request.json()})

    return app


def _call(server, method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(server.address + path, data=data, method=method)
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


@pytest.fixture
def server(tmp_path):
    with SimServer(_app(), log_path=str(tmp_path / "requests.jsonl")) as srv:
        yield srv


def test_routes_params_and_query(server):
    status, body = _call(server, "GET", "/v1/item/photos?index=3")
    assert status == 200
    assert json.loads(body) == {"name": "photos", "q": {"index": "3"}}


def test_json_body_round_trip(server):
    status, body = _call(server, "PUT", "/v1/item/a", {"x": [1, 2]})
    assert (status, json.loads(body)) == (200, {"got": {"x": [1, 2]}})


def test_errors_keep_the_servers_body(server):
    assert _call(server, "GET", "/v1/item/missing") == (404, json.dumps({"errors": ["no such item"]}))
    assert _call(server, "GET", "/v1/nothing")[0] == 404
    assert _call(server, "DELETE", "/v1/item/a")[0] == 405


def test_bad_json_is_a_400(server):
    req = urllib.request.Request(server.address + "/v1/item/a", data=b"{not json", method="PUT")
    with pytest.raises(urllib.error.HTTPError) as exc:
        urllib.request.urlopen(req, timeout=5)
    assert exc.value.code == 400


def test_request_log_in_memory_and_file(server, tmp_path):
    _call(server, "GET", "/v1/item/a")
    _call(server, "PUT", "/v1/item/a", {})
    assert server.count() == 2
    assert server.count("PUT", "/v1/item") == 1
    lines = [json.loads(x) for x in (tmp_path / "requests.jsonl").read_text().splitlines()]
    assert [(x["method"], x["path"], x["status"]) for x in lines] == [
        ("GET", "/v1/item/a", 200),
        ("PUT", "/v1/item/a", 200),
    ]
    server.reset_log()
    assert server.count() == 0


def test_handler_crash_is_a_500_not_a_hang(tmp_path):
    app = App()

    @app.route("GET", "/boom")
    def boom(request):
        raise RuntimeError("bug")

    with SimServer(app) as srv:
        status, body = _call(srv, "GET", "/boom")
    assert status == 500
    assert "simulator error" in body
