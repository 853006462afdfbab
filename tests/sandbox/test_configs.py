"""The nginx configuration: the split's ends and its range."""

from __future__ import annotations

import pytest

from sandbox.configs import Ports, render_nginx


@pytest.mark.parametrize("weight", [0, 100])
def test_nginx_leaves_out_the_server_at_the_ends(tmp_path, weight):
    conf = render_nginx(tmp_path, Ports(), weight)
    weighted = conf[conf.index("upstream weighted"):conf.index("keepalive 32")]
    assert ("18082" in weighted) == (weight == 100)
    assert ("18081" in weighted) == (weight == 0)


def test_nginx_refuses_a_weight_out_of_range(tmp_path):
    with pytest.raises(ValueError, match="weight"):
        render_nginx(tmp_path, Ports(), 101)


def _location(conf: str, name: str) -> str:
    start = conf.index(f"location {name} {{")
    return conf[start:conf.index("\n        }", start)]


@pytest.mark.parametrize("mirror", [False, True])
def test_nginx_sends_its_own_request_id_to_the_track_and_to_the_copy(tmp_path, mirror):
    conf = render_nginx(tmp_path, Ports(), 0, mirror=mirror)
    for location in ("/", "= /__golive/mirror"):
        assert "proxy_set_header X-Request-Id $request_id;" in _location(conf, location)


def test_nginx_keeps_the_services_own_endpoints_from_users(tmp_path):
    conf = render_nginx(tmp_path, Ports(), 50)
    assert "return 404;" in _location(conf, "^~ /__golive/")
    assert "location = /__golive/weight" in conf  # an exact location: nginx's own answer, before the prefix
