"""The evidence layout: each name as it lands on disk, and no other module spelling one."""

from __future__ import annotations

import ast
import re
from datetime import datetime, timezone
from fnmatch import fnmatch
from pathlib import Path

from golive import layout

ROOT = Path(__file__).resolve().parents[2]
AT = datetime(2026, 11, 30, 10, 0, 7, tzinfo=timezone.utc).timestamp()


def test_fixed_names():
    assert (layout.MANIFEST, layout.SETTINGS, layout.PREFLIGHT, layout.FLIGHT_CHECK) == (
        "manifest.json", "settings.json", "preflight.json", "flight_check.json")
    assert (layout.MICRO_BLAST_RADIUS, layout.MICRO_BLAST_RADIUS_COUNTERS, layout.MICRO_BLAST_RADIUS_REQUESTS) == (
        "micro_blast_radius.json", "micro_blast_radius_counters.json", "micro_blast_radius_requests.csv")
    assert (layout.PUBLIC_KEY, layout.RELEASE_RITUAL) == ("signing_key.pub.pem", "release_ritual.json")
    assert (layout.FINAL_SNAPSHOT, layout.RELEASE_ONELINER, layout.SUCCESS_CRITERIA) == (
        "final_snapshot.json", "release_oneliner.txt", "success_criteria.json")
    assert (layout.WAR_ROOM_JSON, layout.WAR_ROOM_MD, layout.WAR_ROOM_CSV) == ("war_room.json", "war_room.md",
                                                                             "war_room.csv")
    assert (layout.FIRST_NIGHT_SCHEDULE, layout.FIRST_NIGHT_PLAN, layout.FIRST_NIGHT_FREEZE) == (
        "first_night_schedule.json", "first_night.json", "first_night_freeze.json")
    assert (layout.CONTRACT_CHECK, layout.IDEMPOTENCY_BURST, layout.OUTBOX_SMOKE, layout.OUTBOX_SMOKE_PLOT) == (
        "contract_check.json", "idempotency_burst.json", "outbox_smoke.json", "outbox_smoke_lag.png")


def test_utc_stamp():
    assert layout.utc_stamp(AT) == "20261130T100007Z"


def test_preflight_check():
    assert layout.preflight_check("canary_health") == "preflight_canary_health.json"


def test_preflight_promql_files():
    assert fnmatch(layout.preflight_check("promql_error_rate_stable"), layout.preflight_promql_files("stable"))
    assert not fnmatch(layout.preflight_check("promql_error_rate_canary"), layout.preflight_promql_files("stable"))


def test_ritual_files():
    assert layout.sbom("1.4.0") == "sbom_1.4.0.json"
    assert layout.build_provenance("1.4.0") == "build_provenance_1.4.0.json"
    assert layout.go_nogo("1.4.0") == "go_nogo_signed_1.4.0.txt"


def test_dsse_envelope():
    assert layout.dsse_envelope("go_nogo_signed_1.4.0.txt") == "go_nogo_signed_1.4.0.txt.dsse.json"


def test_sigstore_bundle():
    assert layout.sigstore_bundle("build_provenance_1.4.0.json") == "build_provenance_1.4.0.sigstore.json"


def test_artifact_completeness():
    assert layout.artifact_completeness("takeoff") == "artifact_completeness_takeoff.json"


def test_stage_record():
    assert layout.stage_record(25) == "stage_25.json"


def test_approval():
    assert layout.approval(100) == "approval_stage_100.json"


def test_rollout():
    assert layout.rollout(25) == "rollout_stage_25.json"


def test_weight_set_and_its_parse():
    assert layout.weight_set(25) == "weight_set_stage_25.json"
    assert fnmatch(layout.weight_set(5), layout.ALL_WEIGHT_SETS)
    assert layout.parse_weight_set(layout.weight_set(50)) == 50
    assert layout.parse_weight_set(layout.weight_readback(50)) is None


def test_weight_readback():
    assert layout.weight_readback(100) == "weight_readback_stage_100.json"


def test_traffic_share():
    assert layout.traffic_share(1) == "traffic_share_stage_1.json"


def test_judge_look_and_its_parse():
    assert layout.judge_look(25, 1, 3) == "judge_stage_25_w1_i03.json"
    assert layout.judge_look(5, 2, 12) == "judge_stage_5_w2_i12.json"
    assert fnmatch(layout.judge_look(25, 2, 7), layout.judge_look_files(25))
    assert not fnmatch(layout.judge_look(5, 1, 1), layout.judge_look_files(25))
    assert fnmatch(layout.judge_look(5, 1, 1), layout.ALL_JUDGE_LOOKS)
    assert layout.parse_judge_look(layout.judge_look(50, 3, 4)) == (50, 3, 4)
    assert layout.parse_judge_look(layout.stage_record(50)) is None


def test_snapshot():
    assert layout.snapshot(25) == "snapshot_stage_25.json"
    assert layout.snapshot(25, hold=2) == "snapshot_stage_25_hold2.json"
    assert all(fnmatch(name, layout.snapshot_files(25)) for name in (layout.snapshot(25), layout.snapshot(25, 1)))


def test_rollback_file():
    assert layout.rollback_file(AT, dry_run=False) == "rollback_20261130T100007Z.txt"
    assert layout.rollback_file(AT, dry_run=True) == "rollback_dryrun_20261130T100007Z.txt"
    assert fnmatch(layout.rollback_file(AT, dry_run=True), layout.ROLLBACKS)


def test_rollback_report_names_its_file_through_the_layout():
    from golive.rollback_report import rollback_file_name

    name = rollback_file_name(AT, True)
    assert name.startswith(layout.rollback_file(AT, True).removesuffix(".txt")) and fnmatch(name, layout.ROLLBACKS)


def test_closing_files():
    assert (layout.git_tag(), layout.freeze_lift(), layout.closing()) == (
        "git_tag.json", "freeze_lift.json", "closing.json")
    assert (layout.git_tag(True), layout.freeze_lift(True), layout.closing(True)) == (
        "git_tag_dryrun.json", "freeze_lift_dryrun.json", "closing_dryrun.json")


def test_first_night_files():
    assert layout.first_night_hour(3) == "first_night_hour_03.json"
    assert fnmatch(layout.first_night_hour(24), layout.FIRST_NIGHT_HOURS)
    assert layout.first_night_plot("1.4.0") == "first_night_burn_1.4.0.png"
    assert layout.first_night_report("1.4.0") == "first_night_1.4.0.md"


def test_game_day_files():
    assert layout.rollback_drill(AT) == "rollback_drill_20261130T100007Z.txt"
    assert fnmatch(layout.rollback_drill(AT), layout.ROLLBACK_DRILLS)
    assert layout.chaos("error-burst") == "chaos_error-burst.json"
    assert layout.drill_record("20261130") == "weekly_drill_20261130.txt"
    assert layout.drill_record("20261130", first_flight=True) == "first_flight_drill_20261130.txt"
    assert fnmatch(layout.drill_record("20261130"), layout.drill_records())


# Names that are not evidence: the local stack's own state, the signing key pair where it is kept.
NOT_EVIDENCE = {("cli/stack.py", "state.json"), ("golive/settings.py", ".pub.pem"), ("golive/signing.py", "{}.pub.pem")}
# A bare file name (or glob, or regex) with an evidence file's extension; "/x.json" is a URL path.
EVIDENCE_NAME = re.compile(r"[^\s/]*\w[^\s/]*?\\?\.(json|txt|md|csv|png|pem)")


def _literals(tree: ast.AST):
    """Every string constant, and every f-string whole, with its fields as {}."""
    parts = {id(v) for node in ast.walk(tree) if isinstance(node, ast.JoinedStr) for v in node.values}
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in parts:
            yield node.lineno, node.value
        elif isinstance(node, ast.JoinedStr):
            yield node.lineno, "".join(v.value if isinstance(v, ast.Constant) else "{}" for v in node.values)


def test_the_pattern_finds_names_globs_and_regexes():
    found = [text for _, text in _literals(ast.parse(
        'a = "stage_25.json"\nb = f"judge_stage_{p}_w*_i*.json"\nc = r"judge_(\\d+)\\.json"\n'
        'd = ".dsse.json"\ne = "/openapi.json"\nf = ".json"\ng = "see war_room.md"\n'))
        if EVIDENCE_NAME.fullmatch(text)]
    assert found == ["stage_25.json", "judge_stage_{}_w*_i*.json", "judge_(\\d+)\\.json", ".dsse.json"]


def test_no_evidence_name_is_spelled_outside_the_layout():
    offences = []
    for package in ("golive", "flows", "tasks", "cli"):
        for path in sorted((ROOT / package).rglob("*.py")):
            where = path.relative_to(ROOT).as_posix()
            if where == "golive/layout.py":
                continue
            for line, text in _literals(ast.parse(path.read_text(), where)):
                if EVIDENCE_NAME.fullmatch(text) and (where, text) not in NOT_EVIDENCE:
                    offences.append(f"{where}:{line}: {text!r}")
    assert offences == []
