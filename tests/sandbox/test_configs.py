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
