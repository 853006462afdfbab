"""Packs for a service on Kubernetes, read off what the cluster's router already counts: ingress-nginx
tells the canary's requests apart by its `canary` label (the canary upstream's name, empty for the
primary's), Istio's gateway by the backend Service (`destination_service_name`). A pack says how a
track is selected (`$track_selector`), the target's names fill it in, and every other pack and query
renders as it did (`track="$track"`)."""

from __future__ import annotations

import pytest

from golive.settings import SettingsError, load_settings
from golive.signal_check import metric_names, signal_queries
from golive.signal_packs import PACKS, ClusterNames, selected_by
from golive.signals import CATALOGUE, carried_selectors, render_query, with_track_selectors

CLUSTER = {"router": {"kind": "ingress-nginx", "kubernetes": {"namespace": "shop", "ingress": "web",
                                                              "stable_service": "web-v1", "canary_service": "web-v2"}}}
NGINX_STABLE = 'namespace="shop",ingress="web",canary=""'
NGINX_CANARY = 'namespace="shop",ingress="web",canary!=""'


def _rendered(settings, track: str) -> dict[str, str]:
    return {f"{name}.{kind}": q for (name, t, kind), q in signal_queries(settings.policy.catalogue(), 60).items()
            if t == track}


def test_ingress_nginx_selects_the_canary_by_its_upstream_label_on_the_targets_ingress():
    settings = load_settings({"policy": {"signal_pack": "ingress-nginx"}, "target": CLUSTER}, release="1.4.0")
    assert settings.policy.track_selectors == {"stable": NGINX_STABLE, "canary": NGINX_CANARY}
    canary, stable = _rendered(settings, "canary"), _rendered(settings, "stable")
    assert canary == {
        "http_p95_ms.value": "1000 * histogram_quantile(0.95, sum by (le) (rate("
                             f"nginx_ingress_controller_request_duration_seconds_bucket{{{NGINX_CANARY}}}[60s])))",
        "http_5xx_pct.value": f'100 * (sum(rate(nginx_ingress_controller_requests{{{NGINX_CANARY},status=~"5.."}}'
                              f"[60s])) or vector(0)) / sum(rate(nginx_ingress_controller_requests{{{NGINX_CANARY}}}"
                              "[60s]))",
        "http_5xx_pct.bad": f'sum(increase(nginx_ingress_controller_requests{{{NGINX_CANARY},status=~"5.."}}[60s]))'
                            " or vector(0)",
        "http_5xx_pct.total": f"sum(increase(nginx_ingress_controller_requests{{{NGINX_CANARY}}}[60s]))",
    }
    assert stable == {key: q.replace(NGINX_CANARY, NGINX_STABLE) for key, q in canary.items()}
    # The traffic split: the canary's requests among all of the ingress' requests.
    assert settings.prometheus.traffic_canary_query == (
        f"sum(increase(nginx_ingress_controller_requests{{{NGINX_CANARY}}}[$window]))")
    assert settings.prometheus.traffic_total_query == (
        'sum(increase(nginx_ingress_controller_requests{namespace="shop",ingress="web"}[$window]))')


def test_gateway_istio_selects_each_track_by_its_backend_service_in_milliseconds():
    settings = load_settings({"policy": {"signal_pack": "gateway-istio"}, "target": CLUSTER}, release="1.4.0")
    where = 'reporter="source",destination_service_namespace="shop"'
    canary = _rendered(settings, "canary")
    assert canary["http_p95_ms.value"] == (
        "histogram_quantile(0.95, sum by (le) (rate(istio_request_duration_milliseconds_bucket{"
        f'{where},destination_service_name="web-v2"}}[60s])))')
    assert canary["http_5xx_pct.bad"] == (
        f'sum(increase(istio_requests_total{{{where},destination_service_name="web-v2",response_code=~"5.."}}'
        "[60s])) or vector(0)")
    assert _rendered(settings, "stable")["http_5xx_pct.total"] == (
        f'sum(increase(istio_requests_total{{{where},destination_service_name="web-v1"}}[60s]))')
    assert settings.prometheus.traffic_total_query == (
        f'sum(increase(istio_requests_total{{{where},destination_service_name=~"web-v1|web-v2"}}[$window]))')


def test_without_kubernetes_settings_the_targets_defaults_name_the_objects():
    settings = load_settings({"policy": {"signal_pack": "ingress-nginx"}}, release="1.4.0")
    assert settings.policy.track_selectors == PACKS["ingress-nginx"].track_selectors(ClusterNames())
    assert settings.policy.track_selectors["canary"] == 'namespace="default",ingress="spark",canary!=""'


def test_the_policy_may_say_how_tracks_are_selected_and_a_signal_of_its_own_uses_it():
    mine = {"stable": 'namespace="shop",canary=~""', "canary": 'namespace="shop",canary=~"shop-web-v2-.*"'}
    queue = {"kind": "gauge", "rule": "max", "threshold": 10,
             "value_query": "max(nginx_ingress_controller_nginx_process_connections{$track_selector})"}
    settings = load_settings({"policy": {"signal_pack": "ingress-nginx", "track_selectors": mine,
                                         "signals": {"conns": queue}}, "target": CLUSTER}, release="1.4.0")
    rendered = _rendered(settings, "canary")
    assert rendered["conns.value"] == f"max(nginx_ingress_controller_nginx_process_connections{{{mine['canary']}}})"
    assert rendered["http_5xx_pct.total"] == (
        f"sum(increase(nginx_ingress_controller_requests{{{mine['canary']}}}[60s]))")


def test_every_other_pack_and_query_renders_as_before():
    for name, pack in PACKS.items():
        if pack.track_rule is None:
            assert pack.track_selectors() is None and pack.traffic_queries() == (
                pack.traffic_canary_query, pack.traffic_total_query), name
            assert all("$track_selector" not in (q or "") for s in pack.signals
                       for q in (s.value_query, s.bad_query, s.total_query)), name
    assert selected_by(CATALOGUE, None) == CATALOGUE
    assert selected_by(CATALOGUE, {"stable": 'a="1"', "canary": 'a="2"'}) == CATALOGUE  # no $track_selector there
    assert render_query('up{track="$track"}', "canary", 5) == 'up{track="canary"}'
    # Without matchers given or carried, $track_selector is the scrape's track label.
    assert render_query("sum(rate(x{$track_selector,path=~\"/a$\"}[$window]))", "stable", 9.6) == (
        'sum(rate(x{track="stable",path=~"/a$"}[10s]))')


def test_a_query_carries_its_matchers_and_renders_clean_for_each_track():
    carried = with_track_selectors("sum(x{${track_selector}})", {"stable": 'c=""', "canary": 'c!=""'})
    assert carried.startswith("# track_selector ") and metric_names(carried) == ["x"]
    assert carried_selectors(carried) == ({"stable": 'c=""', "canary": 'c!=""'}, "sum(x{${track_selector}})")
    assert render_query(carried, "canary", 30) == 'sum(x{c!=""})'
    assert render_query(carried, "stable", 30, selectors={"stable": 'd="1"', "canary": 'd="2"'}) == 'sum(x{d="1"})'
    assert with_track_selectors(carried, {"stable": 'e=""', "canary": 'e!=""'}).count("# track_selector") == 1
    with pytest.raises(ValueError, match="no label matchers select the track ''"):
        render_query(carried, "", 30)


@pytest.mark.parametrize(("selectors", "error"), [
    ({"stable": 'a="1"'}, 'policy.track_selectors.canary: required (the matchers that select its requests, '
                          'such as canary!="")'),
    ({"stable": 'a="1"', "canary": "web-v2"},
     "policy.track_selectors.canary: expected label matchers such as namespace=\"shop\",canary!=\"\", got 'web-v2'"),
    ({"stable": 'a="1"', "canary": '{a="2"}'},
     "policy.track_selectors.canary: expected label matchers such as namespace=\"shop\",canary!=\"\", "
     "got '{a=\"2\"}'"),
    ({"stable": 'a="1"', "canary": 'a="2"', "baseline": 'a="0"'},
     "policy.track_selectors.baseline: unknown track (expected stable and canary)"),
    ("canary!=\"\"", "policy.track_selectors: expected a mapping of stable and canary to label matchers, got str"),
])
def test_matchers_that_cannot_select_a_track_are_refused_in_one_line(selectors, error):
    with pytest.raises(SettingsError) as exc:
        load_settings({"policy": {"signal_pack": "ingress-nginx", "track_selectors": selectors}}, release="1.4.0")
    assert str(exc.value) == error
