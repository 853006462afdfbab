"""Packs for a service on Kubernetes, read off what the cluster's router already counts: ingress-nginx
tells the canary's requests apart by its `canary` label (the canary upstream's name, empty for the
primary's), Istio's gateway by the backend Service (`destination_service_name`). A pack says how a
track is selected (`$track_selector`), the target's names fill it in, and every other pack and query
renders as it did (`track="$track"`). Rendered here; asked of a real Prometheus in the last test,
where an exposition in the controller's names stands in for ingress-nginx."""

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
    policy = {"signal_pack": "ingress-nginx", "track_selectors": mine, "signals": {"conns": queue}}
    # The traffic split counts all of the service's requests, which matchers per track do not say.
    with pytest.raises(SettingsError, match=r"^policy.track_selectors: give prometheus.traffic_canary_query and "):
        load_settings({"policy": policy, "target": CLUSTER}, release="1.4.0")
    split = {"traffic_canary_query": 'sum(increase(nginx_ingress_controller_requests{namespace="shop",'
                                     'canary=~"shop-web-v2-.*"}[$window]))',
             "traffic_total_query": 'sum(increase(nginx_ingress_controller_requests{namespace="shop"}[$window]))'}
    settings = load_settings({"policy": policy, "target": CLUSTER, "prometheus": split}, release="1.4.0")
    assert settings.prometheus.traffic_canary_query == split["traffic_canary_query"]
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


class _ControllerExposition:
    """What ingress-nginx's controller serves on /metrics, in its names and labels
    (internal/ingress/metric/collectors/socket.go): requests and their durations on one primary
    Ingress, stable's with an empty `canary`, the canary's with the canary upstream's name. Stable
    answers 1 % 5xx, the canary 20 %; the counters grow with time, as a controller's do."""

    RATES = {("", "200"): 99.0, ("", "503"): 1.0, ("shop-web-v2-80", "200"): 20.0, ("shop-web-v2-80", "503"): 5.0}
    BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)

    def __init__(self):
        import time

        self.started = time.monotonic()

    def text(self) -> str:
        import time

        elapsed = time.monotonic() - self.started
        lines = ["# TYPE nginx_ingress_controller_requests counter",
                 "# TYPE nginx_ingress_controller_request_duration_seconds histogram"]
        const = 'controller_class="k8s.io/ingress-nginx",controller_namespace="ingress-nginx",controller_pod="c-1"'
        for (canary, status), rate in self.RATES.items():
            labels = (f'{const},canary="{canary}",ingress="web",method="GET",namespace="shop",path="/",'
                      f'service="web-v1",status="{status}"')
            count = int(rate * elapsed)
            lines.append(f"nginx_ingress_controller_requests{{{labels}}} {count}")
            # Stable's requests take 20 ms, the canary's 40 ms.
            seconds = 0.04 if canary else 0.02
            for le in (*self.BUCKETS, "+Inf"):
                within = count if le == "+Inf" or seconds <= le else 0
                lines.append(f'nginx_ingress_controller_request_duration_seconds_bucket{{{labels},le="{le}"}} {within}')
            lines.append(f"nginx_ingress_controller_request_duration_seconds_sum{{{labels}}} {count * seconds}")
            lines.append(f"nginx_ingress_controller_request_duration_seconds_count{{{labels}}} {count}")
        return "\n".join(lines) + "\n"


@pytest.fixture
def ingress_prometheus(tmp_path):
    """A real Prometheus scraping, every second, an exposition that stands in for ingress-nginx's
    controller (there is no cluster here), served on a free loopback port; its URL once it holds
    12 s of samples."""
    import shutil
    import subprocess
    import threading
    import time
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    import httpx

    from sandbox.processes import free_ports

    binary = shutil.which("prometheus")
    if binary is None:
        pytest.skip("prometheus is not installed (apt-get install prometheus)")
    exposition = _ControllerExposition()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's name)
            body = exposition.text().encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = free_ports(1)[0]
    config = tmp_path / "prometheus.yml"
    config.write_text(f"""global:
  scrape_interval: 1s
  scrape_timeout: 900ms
scrape_configs:
  - job_name: ingress-nginx
    static_configs:
      - targets: ["127.0.0.1:{server.server_address[1]}"]
""")
    process = subprocess.Popen([binary, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'data'}",
                                f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                up = httpx.get(f"{url}/api/v1/query", params={"query": "count_over_time(up[1m])"}, timeout=2).json()
                if up["data"]["result"] and float(up["data"]["result"][0]["value"][1]) >= 14:
                    break
            except (httpx.HTTPError, ValueError, KeyError):
                pass
            assert process.poll() is None and time.monotonic() < deadline, "Prometheus did not scrape in time"
            time.sleep(0.5)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)
        server.shutdown()
        server.server_close()


def _config(tmp_path, url: str, signals: dict | None = None) -> str:
    import yaml

    path = tmp_path / "golive.yaml"
    path.write_text(yaml.safe_dump({
        "release": "1.4.0", "prometheus": {"url": url}, "target": CLUSTER,
        "policy": {"signal_pack": "ingress-nginx", "interval_seconds": 2, **({"signals": signals} if signals else {})},
    }))
    return str(path)


@pytest.mark.sandbox
def test_ingress_nginx_pack_on_a_real_prometheus_has_both_tracks_and_judges_the_5xx_canary(
        ingress_prometheus, tmp_path, capsys):
    """On a real Prometheus scraping an exposition that stands in for ingress-nginx's controller (no
    cluster here; its metric names and labels as the controller's source has them): `golive signals
    check` finds data for both tracks, the judge's queries of a stage's look breach the canary's 20 %
    of 5xx, the traffic split counts the canary's share, and a wrong metric name is named, exit 2."""
    import time

    from cli.main import main
    from golive.judge import judge
    from tasks.prometheus import observe_share, query_signals

    assert main(["signals", "check", "--config", _config(tmp_path, ingress_prometheus), "--window", "6"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in out[:2]] == ["ok    http_p95_ms", "ok    http_5xx_pct"]
    assert out[-1] == "2/2 signals answer for both tracks over 6 s"

    # The judge's own queries, as a stage's look asks them: the canary's 20 % of 5xx is a breach.
    settings = load_settings(_config(tmp_path, ingress_prometheus), release="1.4.0")
    end = time.time()
    window = query_signals.fn(settings.prometheus, settings.policy, 25, end - 12, end)
    assert all('canary!=""' in q for q in window.queries["http_5xx_pct"]["canary"].values())
    assert all('canary=""' in q for q in window.queries["http_5xx_pct"]["stable"].values())
    verdict = judge(window.scenario)
    # A breach; whether it is already called sustained (a rollback) or re-measured first (a hold)
    # depends on how many of the 2-s intervals a busy machine's scrapes filled.
    assert verdict.signals["http_5xx_pct"].verdict == "breach", verdict.reason
    assert verdict.decision in ("rollback", "hold") and verdict.decision != "proceed"
    # Every request in its histogram's (25, 50] ms bucket: interpolated, the canary's p95 is 48.75 ms.
    assert verdict.signals["http_p95_ms"].canary == pytest.approx(48.75, abs=0.5)
    # The traffic split from the controller's counts: 25 of every 125 requests went to the canary.
    share = observe_share.fn(settings.prometheus, 20, 2.0, end - 10, end)
    assert share.observed_pct == pytest.approx(20, abs=2) and share.ok

    typo = {"http_p95_ms": {"value_query": "1000 * histogram_quantile(0.95, sum by (le) (rate("
                                           "nginx_ingress_controller_request_duration_second_bucket{$track_selector}"
                                           "[$window])))"}}
    assert main(["signals", "check", "--config", _config(tmp_path, ingress_prometheus, typo), "--window", "6"]) == 2
    captured = capsys.readouterr()
    assert ("FAIL  http_p95_ms: no such metric in Prometheus: nginx_ingress_controller_request_duration_second_bucket"
            " (a wrong name, or a target not scraped); no data on stable and canary") in captured.out.splitlines()
    assert captured.err == "golive: 1 of 2 signals cannot be judged: http_p95_ms\n"


def test_matchers_for_a_pack_that_selects_by_the_track_label_are_refused_not_ignored():
    with pytest.raises(SettingsError, match=r"^policy.track_selectors: the router pack selects a track by its track "):
        load_settings({"policy": {"signal_pack": "router", "track_selectors": {"stable": 'a="1"', "canary": 'a="2"'}}},
                      release="1.4.0")
