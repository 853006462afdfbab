"""The operator card, its QR code and quick start; the release notes' Deployment Summary."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from cli.main import main
from golive import card, layout
from golive.settings import load_settings, merge_settings

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
    assert ("kubectl -n trading annotate ingress spark-canary nginx.ingress.kubernetes.io/canary-weight=0 "
            "--overwrite") in text


def test_the_quick_start_is_minute_by_minute_for_this_target():
    text = card.quick_start(load_settings(SETTINGS, policy={"stages": [5, 100], "dwell_seconds": 600}))
    assert "| T+0 | start the go-live | `prefect deployment run go-live/v1.4.0 --watch` |" in text
    assert "| T+0 min | 5 % |" in text and "| T+10 min | 100 % |" in text and "| T+40 min | Live |" in text


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
