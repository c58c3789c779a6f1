"""Bad input through the roles fails before anything changes, naming the app and the field."""

from __future__ import annotations

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

from apps_it import failures, run_play  # noqa: E402


def test_duplicate_subdomain_across_roles(tmp_path, nomad):
    before = nomad.get("/v1/jobs")
    rc, out, _err = run_play(tmp_path, nomad, [{"role": "selfhost.homelab.transmission"},
                                               {"role": "selfhost.homelab.plex"}],
                             {"plex_subdomain": "torrents", "transmission_uid": str(os.getuid()),
                              "transmission_gid": str(os.getgid()), "plex_transmission_downloads": False,
                              "transmission_subdomain": "torrents"}, check=True)
    assert rc != 0
    assert any("app_job: app 'plex': subdomain: 'torrents' is already used by 'transmission'" in f
               for f in failures(out)), failures(out)
    assert nomad.get("/v1/jobs") == before


def test_wrong_types_fail_at_the_argument_spec(tmp_path, nomad):
    rc, out, _err = run_play(tmp_path, nomad, [{"role": "selfhost.homelab.photoprism"}],
                             {"photoprism_port": "web", "photoprism_originals": "anna"})
    assert rc != 0
    text = " ".join(failures(out))
    assert "photoprism_port" in text and "photoprism_originals" in text, text
    assert not os.path.exists(tmp_path / "data") and not os.path.exists(tmp_path / "scratch")


def test_port_out_of_range_names_the_app(tmp_path, nomad):
    rc, out, _err = run_play(tmp_path, nomad, [{"role": "selfhost.homelab.transmission"}],
                             {"transmission_port": 70000, "transmission_uid": str(os.getuid()),
                              "transmission_gid": str(os.getgid())})
    assert rc != 0
    assert any("app_job: app 'transmission': port: 70000 is out of range (1-65535)" in f for f in failures(out))
    assert not os.path.exists(tmp_path / "data") and not os.path.exists(tmp_path / "scratch")
