"""The signal catalogue's queries as rendered for a track and a window."""

from __future__ import annotations

from golive.settings import load_settings
from golive.signals import render_query


def test_a_literal_dollar_in_a_query_is_left_as_written():
    query = 'sum(rate(x{track="$track",path=~"/api$"}[$window])) * $unknown'
    assert render_query(query, "canary", 60) == 'sum(rate(x{track="canary",path=~"/api$"}[60s])) * $unknown'
    load_settings({"release": "1.4.0", "policy": {"signals": {"api_p95_ms": {"value_query": query}}}})
