"""The exporter packs leave out the exporter's own /metrics where the exporter counts Prometheus' scrapes
as requests (starlette-exporter by `path`, OpenTelemetry's FastAPI and Starlette instrumentations by
`http_route`): every series each query of the pack reads, the traffic split's too, carries the matcher.
tests/sandbox/test_exporter_packs.py shows it on the real exporters."""

from __future__ import annotations

import re

import pytest

from golive.signal_packs import PACKS
from golive.signals import render_query

SCRAPES_LEFT_OUT = [
    pytest.param("starlette-exporter", 'path!="/metrics"', id="starlette-exporter"),
    pytest.param("opentelemetry", 'http_route!="/metrics"', id="opentelemetry"),
    pytest.param("fastapi-instrumentator", 'handler!="/metrics"', id="fastapi-instrumentator"),
]


def _rendered_queries(pack_name: str) -> list[str]:
    pack = PACKS[pack_name]
    templates = [q for sig in pack.signals for q in (sig.value_query, sig.bad_query, sig.total_query) if q]
    canary_query, total_query = pack.traffic_queries()
    return ([render_query(q, track, 60) for q in templates for track in ("stable", "canary")]
            + [render_query(canary_query, "canary", 60), render_query(total_query, "", 60)])


@pytest.mark.parametrize(("pack_name", "matcher"), SCRAPES_LEFT_OUT)
def test_every_series_a_pack_reads_leaves_the_metrics_path_out(pack_name, matcher):
    for query in _rendered_queries(pack_name):
        selectors = re.findall(r"[A-Za-z_:][A-Za-z0-9_:]*\{([^}]*)\}", query)
        assert selectors, query
        for selector in selectors:
            assert matcher in selector.split(","), query


def test_the_traffic_split_selects_the_canary_of_the_same_series_as_its_total():
    for pack_name in ("starlette-exporter", "opentelemetry"):
        canary_query, total_query = PACKS[pack_name].traffic_queries()
        assert canary_query.replace('track="canary",', "") == total_query, pack_name
