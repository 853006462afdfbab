"""The operator card, its QR code and quick start; the release notes' Deployment Summary."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cli.main import main
from golive import card, layout
from golive.settings import load_settings, merge_settings
from tests.golive.hostile import FAST

SETTINGS = {"release": "1.4.0", "policy": {"signals": {"api_p95_ms": {"threshold": 250}}},
            "target": {"router": {"kind": "ingress-nginx", "kubernetes": {"namespace": "trading", "ingress": "spark"}}},
            "process": {"evidence_root": "evidence", "notify_block": "slack-webhook/war-room",
                        "operator": {"incident_commander": "Ayşe (SRE)", "escalation": ["Mehmet", "CTO"],
                                     "war_room_channel": "#spark-golive"}}}


def test_the_card_holds_the_settings_in_force():
    text = card.card_markdown(load_settings(SETTINGS))
    assert text.startswith(f'<img src="{layout.OPERATOR_CARD_QR_PNG}"')  # the QR code, top left
    assert "| API latency p95 | `p95` | <= 250 ms |" in text  # the override, not the runbook's 200
    assert text.count("| `") == 8
    assert "**Incident commander:** Ayşe (SRE)" in text and "**Escalation:** Mehmet → CTO" in text
    assert "**War room:** #spark-golive (notifications: `slack-webhook/war-room`)" in text
    assert "**Evidence:** `evidence/v1.4.0`" in text
    assert "1% → 5% → 25% → 50% → 100%; each 15 min (100 %: 30 min)" in text
    assert ('  kubectl -n trading annotate ingress spark-canary --overwrite --resource-version="$V" '
            "nginx.ingress.kubernetes.io/canary-weight=0 golive.dev/generation=$((G + 1)) ") in text


def _by_hand(**router) -> str:
    """The by-hand lines of the card's rollback commands for `router` (those after golive's and
    Prefect's), as one shell script."""
    lines = card.rollback_commands(load_settings(merge_settings(SETTINGS, {"target": {"router": router}})))
    assert lines[2].startswith("# by hand")
    return "\n".join(lines[2:])


def test_every_by_hand_rollback_moves_the_generation_with_the_weight():
    ingress = _by_hand(**SETTINGS["target"]["router"])
    assert "golive.dev/generation=$((G + 1))" in ingress and "canary-weight=0" in ingress
    assert ingress.count("kubectl") == 2 and ingress.count(" && ") == 2  # no write without the generation read
    assert '--resource-version="$V"' in ingress  # ... nor on an object changed since

    gateway = _by_hand(kind="gateway-api", kubernetes={"namespace": "trading"})
    assert "# by hand, in one save: weight 0 on spark-canary and 100 on spark-stable, golive.dev/generation one " \
           "more than the current" in gateway
    assert gateway.endswith("kubectl -n trading edit httproute spark")

    sandbox = _by_hand(kind="sandbox")
    assert "curl -fsS -X POST http://127.0.0.1:18070/fence" in sandbox
    assert '-d "{\\"weight\\": 0, \\"generation\\": $G}"' in sandbox


def test_the_by_hand_rollback_quotes_every_name():
    """Settings refuse such names (tests/golive/test_settings.py); the card quotes them all the same,
    for settings made some other way."""
    odd = {"namespace": "team a", "ingress": "spark;rm", "http_route": "route$x", "canary_service": "c d"}

    def by_hand(kind: str) -> str:
        settings = load_settings(merge_settings(SETTINGS, {"target": {"router": {"kind": kind, "kubernetes": {}}}}))
        router = settings.target.router
        router = router.model_copy(update={"kubernetes": router.kubernetes.model_copy(update=odd)})
        lines = card.rollback_commands(settings.model_copy(update={
            "target": settings.target.model_copy(update={"router": router})}))
        return "\n".join(lines[2:])

    ingress = by_hand("ingress-nginx")
    assert "-n 'team a' get ingress 'spark;rm-canary'" in ingress
    assert "-n 'team a' annotate ingress 'spark;rm-canary'" in ingress
    gateway = by_hand("gateway-api")
    assert "kubectl -n 'team a' edit httproute 'route$x'" in gateway and "weight 0 on 'c d'" in gateway


class _SandboxRouterStandIn(BaseHTTPRequestHandler):
    """The sandbox router's control API as far as a rollback by hand uses it: `POST /fence` hands
    out generation 8, and a weight write must carry it."""

    seen: list = []

    def _reply(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> dict:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.seen.append((self.command, self.path, body))
        return body

    def do_POST(self):  # noqa: N802 - the stdlib's naming
        body = self._body()
        self._reply(200, {"generation": 8, "holder": {**body["holder"], "run": None, "at": 1.0}})

    def do_PUT(self):  # noqa: N802
        body = self._body()
        if body.get("generation") != 8:
            return self._reply(409, {"error": f"generation {body.get('generation')} is fenced"})
        self._reply(200, {"weight": body["weight"]})

    def log_message(self, *_args) -> None:
        pass


@pytest.mark.skipif(not (shutil.which("curl") and shutil.which("jq")), reason="curl and jq not installed")
def test_the_sandbox_rollback_by_hand_takes_a_generation_then_writes_zero_with_it():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _SandboxRouterStandIn)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _SandboxRouterStandIn.seen = []
    try:
        script = _by_hand(kind="sandbox", control_url=f"http://127.0.0.1:{server.server_address[1]}")
        done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=30)
    finally:
        server.shutdown()
        server.server_close()
    assert done.returncode == 0, done.stderr
    assert _SandboxRouterStandIn.seen == [
        ("POST", "/fence", {"holder": {"kind": "operator", "name": "rollback by hand"}}),
        ("PUT", "/weight", {"weight": 0, "generation": 8}),
    ]


@pytest.mark.skipif(not shutil.which("kubectl"), reason="kubectl not installed")
def test_the_ingress_rollback_by_hand_fences_a_go_live(kube_emulator, cluster):
    from golive.fencing import FenceHolder
    from golive.settings import KubernetesSettings
    from tasks.kubernetes import IngressNginxRouter
    from tasks.router_base import RouterFenced

    go_live = IngressNginxRouter(KubernetesSettings(**cluster))
    taken = go_live.take_generation(FenceHolder(kind="go-live", name="go-live v1.4.0"))
    go_live.set_weight(25, taken.generation)

    script = _by_hand(kind="ingress-nginx", kubernetes={"namespace": cluster["namespace"]})
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "KUBECONFIG": cluster["kubeconfig"]})
    assert done.returncode == 0, done.stderr

    assert kube_emulator.canary_weight(cluster["namespace"]) == 0
    state = go_live.read()
    assert (state.weight, state.fence.generation, state.fence.holder.name) == (0, 2, "rollback by hand")
    with pytest.raises(RouterFenced, match="generation 1 is fenced: the target is at generation 2, taken by "
                                           "rollback by hand"):
        go_live.set_weight(25, taken.generation)  # the go-live wakes: refused
    assert kube_emulator.canary_weight(cluster["namespace"]) == 0


@pytest.mark.skipif(not shutil.which("kubectl"), reason="kubectl not installed")
def test_the_ingress_rollback_by_hand_conflicts_with_a_writer_between_its_read_and_edit(kube_emulator, cluster):
    """A go-live takes the next generation right after the by-hand line read the current one: the
    edit is refused (its resourceVersion is stale) instead of writing the go-live's generation
    again, which would leave the go-live free to write."""
    from golive.fencing import FenceHolder
    from golive.settings import KubernetesSettings
    from tasks.kubernetes import FENCE_HOLDER, GENERATION, IngressNginxRouter
    from tests.emulators.kubernetes import INGRESSES

    namespace = cluster["namespace"]
    go_live = IngressNginxRouter(KubernetesSettings(**cluster))
    go_live.set_weight(25, go_live.take_generation(FenceHolder(kind="go-live", name="go-live v1.4.0")).generation)
    newer_go_live = json.dumps({"kind": "go-live", "name": "go-live v1.4.1", "run": None, "at": 1.0})
    kube_emulator.write_after_next_read("ingresses", "spark-canary",
                                        {"metadata": {"annotations": {GENERATION: "2", FENCE_HOLDER: newer_go_live}}})

    script = _by_hand(kind="ingress-nginx", kubernetes={"namespace": namespace})
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "KUBECONFIG": cluster["kubeconfig"]})

    assert done.returncode != 0 and "Conflict" in done.stderr
    annotations = kube_emulator.stored(INGRESSES, namespace, "spark-canary")["metadata"]["annotations"]
    assert (annotations[GENERATION], json.loads(annotations[FENCE_HOLDER])["name"]) == ("2", "go-live v1.4.1")
    assert kube_emulator.canary_weight(namespace) == 25  # left as it was: the operator runs the line again

    again = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60,
                           env={**os.environ, "KUBECONFIG": cluster["kubeconfig"]})
    assert again.returncode == 0, again.stderr
    assert kube_emulator.canary_weight(namespace) == 0
    assert go_live.read().fence.generation == 3


def test_the_quick_start_is_minute_by_minute_for_this_target():
    text = card.quick_start(load_settings(SETTINGS, policy={"stages": [5, 100], "dwell_seconds": 600}))
    assert "| T+0 | start the go-live | `prefect deployment run go-live/v1.4.0 --watch` |" in text
    assert "| T+0 min | 5% |" in text and "| T+10 min | 100% |" in text and "| T+40 min | Live |" in text
    assert "shadow" not in text  # no shadow stage on a cluster's router yet
    sandbox = {"release": "1.4.0", "policy": {"stages": [5, 100], "dwell_seconds": 600}}
    mirrored = card.quick_start(load_settings(sandbox))
    assert "| T+0 min | shadow |" in mirrored and "| T+10 min | 5% |" in mirrored


def _decoded(png_path) -> str:
    """The QR code's text: Debian's zbarimg where installed, else the PNG's modules read back and
    compared with the symbol segno makes of the expected link."""
    zbarimg = shutil.which("zbarimg")
    if zbarimg is None:
        pytest.skip("zbarimg (zbar-tools) not installed")
    done = subprocess.run([zbarimg, "-q", "--raw", str(png_path)], capture_output=True, text=True, timeout=30)
    return done.stdout.strip()


def _modules_match(png_path, link: str) -> bool:
    import matplotlib.image
    import segno

    pixels = matplotlib.image.imread(str(png_path))[..., None]  # grey or RGB(A): a channel axis either way
    matrix = segno.make(link, error="m", micro=False).matrix
    scale, border = 6, 2
    return all(
        (pixels[(border + r) * scale + scale // 2, (border + c) * scale + scale // 2].reshape(-1)[:3].mean() < 0.5)
        == bool(dark)
        for r, row in enumerate(matrix) for c, dark in enumerate(row))


def test_golive_card_writes_the_card_and_a_qr_code_to_the_quick_start(tmp_path, capsys):
    config = tmp_path / "golive.yaml"
    import yaml

    config.write_text(yaml.safe_dump(merge_settings(SETTINGS, {"process": {"github": {"repository": "spark/trading"}}})))
    out = tmp_path / "card"
    assert main(["card", "--release", "1.4.0", "--config", str(config), "--out", str(out)]) == 0
    link = f"https://github.com/spark/trading/blob/HEAD/{layout.QUICK_START}"
    assert f"QR code links to {link}" in capsys.readouterr().out
    for name in (layout.OPERATOR_CARD, layout.OPERATOR_CARD_HTML, layout.OPERATOR_CARD_QR_PNG,
                 layout.OPERATOR_CARD_QR_SVG, layout.QUICK_START):
        assert (out / name).stat().st_size > 0
    assert _modules_match(out / layout.OPERATOR_CARD_QR_PNG, link)
    assert _decoded(out / layout.OPERATOR_CARD_QR_PNG) == link
    page = (out / layout.OPERATOR_CARD_HTML).read_text()
    assert "@page{size:A5" in page and page.index("<svg") < page.index("<h1>")  # the QR code first, top left
    assert "<td>API latency p95</td>" in page


def test_without_a_repository_the_code_links_to_the_file_written(tmp_path):
    assert main(["card", "--release", "1.4.0", "--out", str(tmp_path)]) == 0
    assert _decoded(tmp_path / layout.OPERATOR_CARD_QR_PNG) == (tmp_path / layout.QUICK_START).resolve().as_uri()


def test_a_bad_release_is_one_line(capsys):
    assert main(["card", "--release", "1.4"]) == 2
    assert capsys.readouterr().err.startswith("golive: release: ")


STAGES = [{"stage": 1, "outcome": "proceed", "holds": 0, "decisions": []},
          {"stage": 100, "outcome": "proceed", "holds": 1, "decisions": [{"decision": "proceed", "signals": {
              "api_p95_ms": {"canary": 141.2}, "http_5xx_pct": {"canary": 0.18}, "ws_staleness_s": {"canary": 2.1},
              "risk_blocks_per_min": {"canary": 0.12}, "idempotency_conflict_pct": {"canary": 0.21},
              "csp_violations_per_min": {"canary": 10.3, "baseline": 10.0}, "event_loop_p95_ms": {"canary": 11.8},
              "gc_pause_avg_ms": {"canary": 4.9}}}]}]


def test_the_deployment_summary_in_the_runbooks_words():
    assert card.deployment_summary("1.4.0", STAGES, 3 * 3600 + 12 * 60) == (
        "v1.4.0 canary: 1%→100% in 3h12m, holds=1, rollback=0; p95=~141ms, 5xx=0.18%, ws_stale_p95=2.1s, "
        "risk_block=0.12/min, idemp_conflict=0.21%, csp_viol=baseline+3%, event-loop p95=11.8ms, GC avg=4.9ms")


def test_the_release_notes_template_gets_its_summary_and_keeps_the_rest():
    from tests.golive.test_layout import ROOT

    template = (ROOT / layout.RELEASE_NOTES_TEMPLATE).read_text()
    filled = card.fill_release_notes(template, "v1.4.0 canary: 1%→100% in 0h06m")
    assert "## Deployment Summary\n\nv1.4.0 canary: 1%→100% in 0h06m\n\n## Evidence" in filled
    assert filled.replace("v1.4.0 canary: 1%→100% in 0h06m", "") != template
    assert filled.startswith("# Release vX.Y.Z") and filled.endswith(template[template.index("## Evidence"):])
    assert card.fill_release_notes("# Notes\n", "S") == "# Notes\n\n## Deployment Summary\n\nS\n"


HOSTILE_PEOPLE = {"incident_commander": "[Ayşe](javascript:alert(document.cookie))",
                  "escalation": ["<img src=x onerror=alert(1)>", "Mehmet | CTO"],
                  "war_room_channel": "#war`room\n<script>alert(2)</script>"}


def _hostile_card() -> tuple[str, str]:
    settings = load_settings(merge_settings(SETTINGS, {"process": {"operator": HOSTILE_PEOPLE,
                                                                  "notify_block": "slack`](javascript:x)"}}))
    markdown = card.card_markdown(settings)
    return markdown, card.card_html(markdown, "<svg></svg>", settings.release)


def test_names_from_the_settings_never_become_links_or_markup_in_the_cards_html():
    _, page = _hostile_card()
    body = page[page.index("<body>"):]
    assert "javascript:" not in "".join(re.findall(r'href="([^"]*)"', body))
    assert re.findall(r"<a href=\"([^\"]*)\"", body) == [layout.QUICK_START]  # the card's own link, and only it
    assert "<img" not in body and "<script" not in body
    assert "&lt;img src=x onerror=alert(1)&gt;" in body and "&lt;script&gt;alert(2)&lt;/script&gt;" in body
    assert "[Ayşe](javascript:alert(document.cookie))" in body  # shown as written


def test_names_from_the_settings_are_escaped_in_the_cards_markdown():
    markdown, _ = _hostile_card()
    assert "**Incident commander:** \\[Ayşe\\](javascript:alert(document.cookie))" in markdown
    assert "**Escalation:** \\<img src=x onerror=alert(1)> → Mehmet \\| CTO" in markdown
    assert "**War room:** #war\\`room\\\\n\\<script>alert(2)\\</script>" in markdown  # one line, no raw tag
    assert "(notifications: slack\\`\\](javascript:x))" in markdown
    assert len(markdown.splitlines()) == len(card.card_markdown(load_settings(SETTINGS)).splitlines())


def test_the_quick_start_escapes_names_and_quotes_the_paths_of_its_commands():
    settings = load_settings(merge_settings(SETTINGS, {"process": {"operator": HOSTILE_PEOPLE,
                                                                  "evidence_root": "my evidence"}}))
    text = card.quick_start(settings, config="conf dir/golive.yaml")
    assert "| T-5 min | announce in #war\\`room\\\\n\\<script>alert(2)\\</script> | IC: \\[Ayşe\\](javascript:" in text
    assert "`golive flight-check --release 1.4.0 --config 'conf dir/golive.yaml'`" in text
    assert "check it with `golive evidence verify 'my evidence/v1.4.0'`" in text


def _people_card(**people) -> tuple[str, str]:
    settings = load_settings(merge_settings(SETTINGS, {"process": {"operator": people}}))
    markdown = card.card_markdown(settings)
    return markdown, card.card_html(markdown, "<svg></svg>", settings.release)


def _shown_text(page: str) -> str:
    import html

    return html.unescape(re.sub(r"<[^>]+>", "", page[page.index("<body>"):]))


def test_names_from_the_settings_never_become_emphasis_or_entities():
    markdown, page = _people_card(escalation=["**", "**"], incident_commander="__Ayşe__ &amp; ~~Mehmet~~")
    assert "**Escalation:** \\*\\* → \\*\\*" in markdown
    assert "**Incident commander:** \\_\\_Ayşe\\_\\_ \\&amp; \\~\\~Mehmet\\~\\~" in markdown
    assert "Escalation: ** → **" in _shown_text(page) and "<b> → </b>" not in page
    assert "Incident commander: __Ayşe__ &amp; ~~Mehmet~~" in _shown_text(page)


_MARKUP_PIECES = ["*", "**", "_", "~~", "&amp;", "&#60;", "`", "[", "](javascript:x)", "|", "<", "<b>", "\\", "\n",
                  "(QUICK_START_DEPLOYMENT.md)", "[q](QUICK_START_DEPLOYMENT.md)"]
_names = st.lists(st.sampled_from(_MARKUP_PIECES) | st.text(max_size=4), min_size=1, max_size=6).map("".join) \
    .filter(bool)  # the settings refuse an empty name


@FAST
@given(commander=_names, channel=_names, escalation=st.lists(_names, max_size=3))
def test_any_name_is_shown_as_written_and_the_cards_only_link_is_its_own(commander, channel, escalation):
    from golive.validation import escape_line

    _, page = _people_card(incident_commander=commander, war_room_channel=channel, escalation=escalation)
    body = page[page.index("<body>"):]
    assert re.findall(r"<a\b[^>]*>", body) == [f'<a href="{layout.QUICK_START}">']
    assert {tag.split()[0] for tag in re.findall(r"<([a-z]+)[\s>]", body)} <= {
        "body", "div", "svg", "h1", "h2", "p", "ul", "li", "table", "tr", "td", "b", "code", "pre", "a"}
    shown = _shown_text(page)
    for name in (commander, channel, *escalation):
        assert escape_line(name) in shown
