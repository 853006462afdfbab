"""The router's canary pin: read from its file, and refused in one line naming the setting."""

from __future__ import annotations

import pytest

from golive.settings import KubernetesSettings, RouterSettings
from tasks.drill_traffic import drill_headers
from tasks.router_base import RouterError, canary_pin_headers, read_canary_pin


def test_without_a_pin_the_header_says_always_with_one_the_pin(tmp_path):
    assert canary_pin_headers(RouterSettings()) == {"X-Canary": "always"}
    (tmp_path / "pin").write_text("Zq-9_x\n")
    pinned = RouterSettings(canary_pin_file=str(tmp_path / "pin"))
    assert read_canary_pin(pinned) == "Zq-9_x"
    assert drill_headers(pinned) == {"X-Canary": "Zq-9_x", "X-Synthetic": "drill"}
    cluster = RouterSettings(kind="ingress-nginx", kubernetes=KubernetesSettings(canary_header="X-Beta"))
    assert canary_pin_headers(cluster) == {"X-Beta": "always"}


@pytest.mark.parametrize(("content", "error"), [
    (None, "target.router.canary_pin_file: No such file or directory: "),
    ("", "target.router.canary_pin_file: expected one word of printable characters, no quote"),
    ("two words", "target.router.canary_pin_file: expected one word of printable characters, no quote"),
    ('pin"; default canary', "target.router.canary_pin_file: expected one word of printable characters, no quote"),
])
def test_a_missing_or_unusable_pin_is_one_line_naming_the_setting(tmp_path, content, error):
    if content is not None:
        (tmp_path / "pin").write_text(content)
    with pytest.raises(RouterError) as raised:
        read_canary_pin(RouterSettings(canary_pin_file=str(tmp_path / "pin")))
    assert str(raised.value).startswith(error) and "\n" not in str(raised.value)
