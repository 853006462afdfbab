"""The nginx configuration: the split's ends and its range."""

from __future__ import annotations

import re

import pytest

from sandbox.configs import DEFAULT_MIRROR_ROUTES, Ports, check_mirror_routes, render_nginx


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


def _mirrorable(conf: str) -> str:
    return conf[conf.index("$golive_mirrorable {"):conf.index("}", conf.index("$golive_mirrorable {"))]


def test_the_mirror_copies_the_routes_it_is_given_exact_or_by_prefix(tmp_path):
    routes = [{"methods": ["GET"], "path": "/api/quote/*"}, {"methods": ["POST", "PUT"], "path": "/api/exec/order"}]
    mapped = _mirrorable(render_nginx(tmp_path, Ports(), 0, mirror=True, mirror_routes=check_mirror_routes(routes)))
    assert mapped.count(" 1;") == 2 and "default 0;" in mapped
    assert '"~^\\|(GET)\\|/api/quote/[^|]*\\|$" 1;' in mapped
    assert '"~^\\|(POST|PUT)\\|/api/exec/order(\\?[^|]*)?\\|$" 1;' in mapped
    assert check_mirror_routes(DEFAULT_MIRROR_ROUTES) == DEFAULT_MIRROR_ROUTES


@pytest.mark.parametrize(("routes", "field"), [
    ([{"methods": ["GET"], "path": '/x" 1; } server { listen 9; }'}], "mirror_routes[0].path"),
    ([{"methods": ["GET"], "path": "/a\n"}], "mirror_routes[0].path"),
    ([{"methods": ["GET"], "path": "/$host"}], "mirror_routes[0].path"),
    ([{"methods": ["GET"], "path": "no-slash"}], "mirror_routes[0].path"),
    ([{"methods": ["GET"], "path": "/a"}, {"methods": ["TRACE"], "path": "/b"}], "mirror_routes[1].methods"),
    ([{"methods": "GET", "path": "/a"}], "mirror_routes[0].methods"),
    ([{"methods": [], "path": "/a"}], "mirror_routes[0].methods"),
    ([["GET"], "/a"], "mirror_routes[0]"),
    (["GET /a"], "mirror_routes[0]"),
    ([], "mirror_routes"),
    ("GET /", "mirror_routes"),
])
def test_a_route_nginx_could_read_as_configuration_is_refused_in_one_line_naming_it(routes, field):
    with pytest.raises(ValueError, match=r"^" + re.escape(field) + r": expected ") as refused:
        check_mirror_routes(routes)
    assert "\n" not in str(refused.value)


def test_the_mirror_copies_to_the_canary_and_to_stables_secondary_as_shadow_traffic(tmp_path):
    ports = Ports.from_base(28080)
    conf = render_nginx(tmp_path, ports, 0, mirror=True)
    assert "mirror /__golive/mirror; mirror /__golive/mirror-secondary;" in _location(conf, "/")
    assert f"upstream secondary {{ server 127.0.0.1:{ports.secondary};" in conf
    for location, upstream in (("= /__golive/mirror", "canary"), ("= /__golive/mirror-secondary", "secondary")):
        copy = _location(conf, location)
        assert "internal;" in copy and "if ($golive_mirrorable = 0) { return 204; }" in copy
        assert f"proxy_pass http://{upstream}$request_uri;" in copy
        assert "proxy_set_header X-Golive-Shadow 1;" in copy and "proxy_set_header X-Request-Id $request_id;" in copy
    # Only the mirror's locations name the secondary: no user request is routed to it.
    outside = conf.replace(_location(conf, "= /__golive/mirror-secondary"), "")
    assert outside.count("http://secondary") == 0 and str(ports.secondary) not in conf.split("upstream weighted")[1]
    off = render_nginx(tmp_path, ports, 0)
    assert "mirror off;" in _location(off, "/") and "mirror /__golive/mirror-secondary" not in off


def test_every_part_of_the_sandbox_has_a_port_of_its_own():
    for ports in (Ports(), Ports.from_base(28080)):
        assert len(set(ports.as_dict().values())) == len(ports.as_dict())
    assert (Ports.from_base(28080).secondary, Ports.from_base(28080).secondary_admin) == (28083, 28093)
