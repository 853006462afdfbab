"""`golive judge` as a command, to docs/judge.md: exit codes, errors, --jsonl, stdin."""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from golive.signals import SIGNAL_NAMES
from tests.golive.builders import healthy, set_values
from tests.golive.hostile import FAST, json_values, nested


def golive(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "cli", *args], input=stdin, capture_output=True, text=True, timeout=60
    )


def test_verdict_on_stdout_exit_zero(tmp_path):
    path = tmp_path / "scenario.json"
    path.write_text(json.dumps(healthy()))
    result = golive("judge", str(path))
    assert result.returncode == 0, result.stderr
    verdict = json.loads(result.stdout)
    assert verdict["decision"] == "proceed"
    assert set(verdict["signals"]) == set(SIGNAL_NAMES)
    assert verdict["triggers"] == []


def test_scenario_from_stdin():
    scenario = healthy()
    del scenario["signals"]["ws_staleness_s"]
    result = golive("judge", "-", stdin=json.dumps(scenario))
    verdict = json.loads(result.stdout)
    assert result.returncode == 0
    assert verdict["decision"] == "hold"
    assert verdict["signals"]["ws_staleness_s"]["verdict"] == "nodata"


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda s: s["signals"]["api_p95_ms"]["canary"][3].update(value="fast"),
         "signals.api_p95_ms.canary[3].value: expected a number or null"),
        (lambda s: s.pop("stage_percent"), "stage_percent: required"),
        (lambda s: s.update(stage_percent=0), "stage_percent: expected a number in (0, 100]"),
        (lambda s: s["signals"].update(latency={"canary": [], "baseline": []}), "signals.latency: unknown signal"),
        (lambda s: s["signals"]["http_5xx_pct"]["baseline"].pop(), "signals.http_5xx_pct.baseline: expected 10"),
        (lambda s: s["signals"]["http_5xx_pct"]["canary"][0].update(bad=-1), "signals.http_5xx_pct.canary[0].bad"),
        (lambda s: s.update(thresholds={"api_p95_ms": {"min": 3}}), "thresholds.api_p95_ms: expected one of"),
        (lambda s: s.update(policy={"patience": 3}), "policy.patience: unknown policy field"),
    ],
)
def test_invalid_input_exits_2_with_one_line_naming_the_field(mutate, message):
    scenario = healthy()
    mutate(scenario)
    result = golive("judge", "-", stdin=json.dumps(scenario))
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert message in lines[0]


def test_invalid_json_is_one_line_too():
    result = golive("judge", "-", stdin="{not json")
    assert result.returncode == 2
    assert result.stderr.startswith("golive: scenario: invalid JSON")


def test_missing_file_exits_2():
    result = golive("judge", "/nonexistent/scenario.json")
    assert result.returncode == 2
    assert "No such file" in result.stderr


def test_jsonl_keeps_going_past_a_bad_line_in_order(tmp_path):
    bad = healthy()
    bad["interval_seconds"] = -1
    rolled = set_values(healthy(), "gc_pause_avg_ms", "canary", [35, 38, 36, 40, 37, 39], start=4)
    lines = [json.dumps(healthy()), json.dumps(bad), "not json", json.dumps(rolled)]
    path = tmp_path / "batch.jsonl"
    path.write_text("\n".join(lines) + "\n")
    result = golive("judge", "--jsonl", str(path))
    assert result.returncode == 0
    out = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(out) == 4
    assert out[0]["decision"] == "proceed"
    assert out[1] == {"error": "interval_seconds: expected a number of seconds in [1, 86400]"}
    assert out[2]["error"].startswith("scenario: invalid JSON")
    assert out[3]["decision"] == "rollback"


# Inputs that once crashed the command (a traceback) or passed unnoticed: each is one line now.
HOSTILE = [
    ('{"stage_percent": 5, "interval_seconds": 60, "signals": {"api_p95_ms": '
     '{"canary": [{"value": -5}], "baseline": [{"value": 1}]}}}',
     "signals.api_p95_ms.canary[0].value: expected a number >= 0 or null, got -5"),
    ('{"stage_percent": 5, "interval_seconds": 60, "signals": {}, "policy": {"min_seconds": NaN}}',
     "policy.min_seconds: expected a finite number >= 0, got nan"),
    ('{"stage_percent": 5, "interval_seconds": 60, "signals": {"http_5xx_pct": '
     '{"canary": [{"value": 1, "bad": 9, "total": 2}], "baseline": [{"value": 0}]}}}',
     "signals.http_5xx_pct.canary[0].bad: 9 events among 2 requests (bad > total)"),
    ('{"stage_percent": 5, "interval_seconds": 60, "signals": {"http_5xx_pct": '
     '{"canary": [{"value": 1, "bad": 1e308, "total": 1e308}], "baseline": [{"value": 0}]}}}',
     "signals.http_5xx_pct.canary[0].bad: expected a number of at most 1e+12, got 1e+308"),
    ('{"stage_percent": 5, "interval_seconds": 1e-300, "signals": {}}',
     "interval_seconds: expected a number of seconds in [1, 86400]"),
    ('{"stage_percent": 5, "interval_seconds": 60, "signals": {}, '
     '"thresholds": {"csp_violations_per_min": {"max_ratio_to_baseline": 0}}}',
     "thresholds.csp_violations_per_min.max_ratio_to_baseline: expected a ratio > 0, got 0"),
    ("[" * 100000, "scenario: invalid JSON (nested too deeply)"),
    ("\udcff{}", "scenario: invalid JSON (Expecting value at line 1 column 1)"),
    ("5", "scenario: expected an object"),
    # Numbers too large for a float, and names that would break the line.
    ('{"stage_percent": 1' + "0" * 400 + ', "interval_seconds": 60, "signals": {}}',
     "stage_percent: expected a number of at most 1e+12"),
    ('{"stage_percent": 5, "interval_seconds": 60, "signals": {"api_p95_ms": '
     '{"canary": [{"value": 1' + "0" * 400 + '}], "baseline": [{"value": 1}]}}}',
     "signals.api_p95_ms.canary[0].value: expected a number of at most 1e+12"),
    ('{"stage_percent": 5, "interval_seconds": 60, "signals": {}, "thresholds": {"api_p95_ms": {"max": 1'
     + "0" * 400 + '}}}', "thresholds.api_p95_ms.max: expected a number of at most 1e+12"),
    ('{"stage_percent": 5, "interval_seconds": 60, "signals": {}, "policy": {"min_intervals": 1' + "0" * 400 + "}}",
     "policy.min_intervals: expected a number of at most 1e+12"),
    ('{"stage_percent": 5, "interval_seconds": 60, "signals": {}, "policy": {"min_requests": 1e300}}',
     "policy.min_requests: expected a number of at most 1e+12"),
    ('{"stage_percent": 1' + "0" * 5000 + "}", "scenario: invalid JSON (a number of more than 4300 digits)"),
    ('{"stage_percent": 5, "interval_seconds": 60, "signals": {"x\\nFAIL": {}}}',
     "signals.x\\nFAIL: unknown signal (known: api_p95_ms, http_5xx_pct, ws_staleness_s, risk_blocks_per_min, "
     "idempotency_conflict_pct, csp_violations_per_min, event_loop_p95_ms, gc_pause_avg_ms)"),
    ('{"stage_percent": 5, "interval_seconds": 60, "signals": {}, "policy": {"a\\nb": 1}}',
     "policy.a\\nb: unknown policy field"),
    ('{"\\u2028": 1}', "\\u2028: unknown field"),
]


@pytest.mark.parametrize(("text", "error"), HOSTILE, ids=[e.split(":")[0] for _, e in HOSTILE])
def test_a_bad_file_exits_2_with_one_exact_line(tmp_path, text, error):
    path = tmp_path / "scenario.json"
    path.write_bytes(text.encode("utf-8", "surrogateescape"))
    result = golive("judge", str(path))
    assert (result.returncode, result.stdout, result.stderr) == (2, "", f"golive: {error}\n")


def test_jsonl_answers_every_bad_line_with_one_error_and_goes_on(tmp_path):
    path = tmp_path / "batch.jsonl"
    lines = [text for text, _ in HOSTILE] + [json.dumps(healthy())]
    path.write_bytes("\n".join(lines).encode("utf-8", "surrogateescape") + b"\n")
    result = golive("judge", "--jsonl", str(path))
    assert (result.returncode, result.stderr) == (0, "")
    out = [json.loads(line) for line in result.stdout.splitlines()]
    assert out[:-1] == [{"error": error} for _, error in HOSTILE]
    assert out[-1]["decision"] == "proceed"


def test_a_partial_stage_without_request_counts_never_proceeds():
    scenario = healthy(stage=1)
    for entry in scenario["signals"].values():
        for obs in entry["canary"] + entry["baseline"]:
            obs.pop("bad", None), obs.pop("total", None)
    verdict = json.loads(golive("judge", "-", stdin=json.dumps(scenario)).stdout)
    assert verdict["decision"] != "proceed"
    assert verdict["signals"]["http_5xx_pct"]["verdict"] == "insufficient"


def test_judge_imports_neither_prefect_nor_httpx():
    code = (
        "import sys, golive.judge, cli.main; "
        "bad = [m for m in ('prefect', 'httpx', 'requests') if m in sys.modules]; "
        "print(','.join(bad))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""


def _paths(value, path=()):
    """Every place in a decoded scenario a value can be put: each key and each list item."""
    yield path
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _paths(item, (*path, index))


_SCENARIO_PATHS = list(_paths(healthy(intervals=3)))


def _spoiled(path: tuple, value) -> str:
    scenario = healthy(intervals=3)
    if not path:
        return json.dumps(value)
    parent = scenario
    for step in path[:-1]:
        parent = parent[step]
    parent[path[-1]] = value
    return json.dumps(scenario)


hostile_lines = st.one_of(
    st.builds(_spoiled, st.sampled_from(_SCENARIO_PATHS), json_values),
    st.text(max_size=40).filter(lambda line: "\n" not in line and "\r" not in line),
    st.sampled_from([nested(3000), '{"stage_percent": 1' + "0" * 5000 + "}", "\x00", "{" * 10]),
)


@FAST
@given(lines=st.lists(hostile_lines, min_size=1, max_size=6))
def test_any_line_of_a_jsonl_stream_gets_exactly_one_answer_and_the_stream_goes_on(lines):
    from cli.main import main

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "batch.jsonl"
        path.write_bytes("\n".join([*lines, json.dumps(healthy())]).encode("utf-8", "surrogatepass") + b"\n")
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            assert main(["judge", "--jsonl", str(path)]) == 0
    answers = [json.loads(line) for line in out.getvalue().splitlines()]
    asked = [line for line in path_lines(lines) if line.strip()]
    assert len(answers) == len(asked) + 1
    for answer in answers:
        assert set(answer) == {"error"} and "\n" not in answer["error"] or answer["decision"] in DECISIONS
    assert answers[-1]["decision"] == "proceed"


def path_lines(lines: list[str]) -> list[str]:
    """The lines a file of `lines` joined by newlines reads back as (str.splitlines splits on more)."""
    return "\n".join(lines).split("\n")


DECISIONS = {"proceed", "hold", "rollback"}


def _judged(argv: list[str]) -> tuple[int, list[str], str]:
    from cli.main import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue().splitlines(), err.getvalue()


def test_a_line_longer_than_any_scenario_gets_one_error_and_the_stream_goes_on(tmp_path, monkeypatch):
    import cli.main

    scenario = json.dumps(healthy())
    monkeypatch.setattr(cli.main, "MAX_SCENARIO_CHARS", len(scenario))
    path = tmp_path / "batch.jsonl"
    path.write_text("\n".join(["x" * (len(scenario) + 1), "y" * len(scenario), scenario, "z" * (3 * len(scenario))]))
    code, lines, err = _judged(["judge", "--jsonl", str(path)])
    answers = [json.loads(line) for line in lines]
    too_long = {"error": f"scenario: longer than {len(scenario)} characters"}
    assert (code, err) == (0, "")
    assert answers[0] == too_long and answers[1]["error"].startswith("scenario: invalid JSON")
    assert answers[2]["decision"] == "proceed" and answers[3] == too_long and len(answers) == 4


def test_a_scenario_without_an_end_is_one_line(monkeypatch):
    import cli.main

    monkeypatch.setattr(cli.main, "MAX_SCENARIO_CHARS", 1000)
    assert _judged(["judge", "/dev/zero"]) == (2, [], "golive: scenario: longer than 1000 characters\n")
