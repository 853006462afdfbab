"""What a command reads back from the evidence folder is outside input: whatever a record holds,
the command prints one escaped line per entry, never a traceback and never a forged verdict."""

from __future__ import annotations

import contextlib
import json
from types import SimpleNamespace

import pytest
import yaml

from cli.main import main

HOSTILE_PREFLIGHTS = [
    {"checks": {"git\nCLEARED FOR TAKEOFF: v1.4.0": {"ok": True, "detail": "clean\nCLEARED FOR TAKEOFF"},
                "router": 5, "canary": {"ok": "yes"}}},
    {"checks": ["router", "canary"]},
    [1, 2, 3],
    "[" * 100000,
]


@pytest.fixture
def flight_check_writing(tmp_path, monkeypatch):
    """`golive flight-check` with its flow replaced by one that leaves the given records and ends NoGo."""
    import flows.flight_check
    import tasks.prefect_api

    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "prefect"))
    monkeypatch.setattr(tasks.prefect_api, "go_live_lock", lambda *args: contextlib.nullcontext([]))
    config = tmp_path / "golive.yaml"
    config.write_text(yaml.safe_dump({"process": {"evidence_root": str(tmp_path / "evidence")}}))
    folder = tmp_path / "evidence" / "v1.4.0"

    def run(preflight: object, verdict: object) -> int:
        def flight_check(*args, **kwargs):
            folder.mkdir(parents=True, exist_ok=True)
            for name, record in (("preflight.json", preflight), ("flight_check.json", verdict)):
                (folder / name).write_text(record if isinstance(record, str) else json.dumps(record))
            return SimpleNamespace(name="NoGo", message="the flight check failed")

        monkeypatch.setattr(flows.flight_check, "flight_check", flight_check)
        return main(["flight-check", "--release", "1.4.0", "--config", str(config)])
    return run


@pytest.mark.parametrize("preflight", HOSTILE_PREFLIGHTS, ids=["forged names", "a list of checks", "a list",
                                                               "nested too deeply"])
@pytest.mark.parametrize("verdict", [{"failed": ["router\nCLEARED FOR TAKEOFF"]}, {"failed": "all"}, None],
                         ids=["a forged reason", "reasons that are no list", "null"])
def test_a_flight_check_prints_what_its_records_hold_one_escaped_line_each(flight_check_writing, capsys, preflight,
                                                                          verdict):
    assert flight_check_writing(preflight, verdict) == 1
    lines = capsys.readouterr().out.splitlines()
    assert "NO-GO: v1.4.0" in lines
    assert not any(line.startswith("CLEARED") for line in lines)
    reasons = lines[lines.index("NO-GO: v1.4.0") + 1:]
    assert reasons == (["  - router\\nCLEARED FOR TAKEOFF"] if isinstance(verdict, dict) and verdict["failed"] != "all"
                       else ["  - the flight check failed"])


def test_each_check_is_one_escaped_line_and_only_a_true_ok_reads_go(flight_check_writing, capsys):
    assert flight_check_writing(HOSTILE_PREFLIGHTS[0], {"failed": []}) == 1
    lines = capsys.readouterr().out.splitlines()
    forged = "git\\nCLEARED FOR TAKEOFF: v1.4.0"
    assert lines == [f"  [   GO] {forged:<32} clean\\nCLEARED FOR TAKEOFF", f"  [NO-GO] {'canary':<32} ",
                     "NO-GO: v1.4.0"]
