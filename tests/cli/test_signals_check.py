"""`golive signals check` against the sandbox's real Prometheus: the runbook's list answers for both
tracks (exit 0); one signal re-pointed at a metric that does not exist is named, exit 2."""

from __future__ import annotations

import pytest
import yaml

from cli.main import main


def _config(tmp_path, sandbox, policy: dict) -> str:
    path = tmp_path / "golive.yaml"
    path.write_text(yaml.safe_dump({"release": "1.4.0", "prometheus": sandbox.golive_settings()["prometheus"],
                                    "policy": policy}))
    return str(path)


@pytest.mark.sandbox
def test_signals_check_names_the_signal_with_a_wrong_metric_name(sandbox, tmp_path, capsys):
    assert main(["signals", "check", "--config", _config(tmp_path, sandbox, {}), "--window", "20"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 9 and all(line.startswith("ok    ") for line in out[:8])
    assert out[-1] == "8/8 signals answer for both tracks over 20 s"

    wrong = {"signals": {"gc_pause_avg_ms": {"value_query": (
        '1000 * sum(rate(spark_gc_pause_secs_sum{track="$track"}[$window]))'
        ' / sum(rate(spark_gc_pause_seconds_count{track="$track"}[$window]))')}}}
    assert main(["signals", "check", "--config", _config(tmp_path, sandbox, wrong), "--window", "20"]) == 2
    captured = capsys.readouterr()
    assert ("FAIL  gc_pause_avg_ms: no such metric in Prometheus: spark_gc_pause_secs_sum (a wrong name, or a "
            "target not scraped); no data on stable and canary") in captured.out.splitlines()
    assert sum(line.startswith("ok    ") for line in captured.out.splitlines()) == 7
    assert captured.err == "golive: 1 of 8 signals cannot be judged: gc_pause_avg_ms\n"


def test_signals_check_refuses_a_list_that_cannot_be_judged_in_one_line(tmp_path, capsys):
    path = tmp_path / "golive.yaml"
    path.write_text(yaml.safe_dump({"release": "1.4.0", "policy": {"signals": []}}))
    assert main(["signals", "check", "--config", str(path)]) == 2
    assert capsys.readouterr().err == "golive: policy.signals: an empty list: nothing to judge a go-live on\n"
