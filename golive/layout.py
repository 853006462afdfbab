"""The evidence layout: the name of every file a release's folder holds, and nothing else.

Flows, tasks, the checks of completeness and the command read and write evidence by these names
only, so a file is renamed here or nowhere. Functions ending in `_files` (and the `*` constants)
are glob patterns over the names beside them, as `fnmatch` and `Path.glob` read them.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone

__all__ = [
    "NOTIFICATION_FAILURES", "OPERATOR_CARD", "OPERATOR_CARD_HTML", "OPERATOR_CARD_QR_PNG", "OPERATOR_CARD_QR_SVG",
    "QUICK_START", "RELEASE_NOTES_TEMPLATE", "release_notes", "WAR_ROOM_HTML", "notification_failure", "signal_plot",
    "signal_plot_files", "BUDGET_FREEZE", "BUDGET_LOCK", "budget_change", "budget_override", "BUILD_OUTPUTS",
    "CYCLONEDX_SUFFIX",
    "IN_TOTO_LINES_SUFFIX", "release_assets",
    "ALL_JUDGE_LOOKS", "ALL_WEIGHT_SETS", "CONTRACT_CHECK", "DSSE_SUFFIX", "FINAL_SNAPSHOT", "GO_LIVE_RUN",
    "FIRST_NIGHT_FREEZE",
    "FIRST_NIGHT_HOURS", "FIRST_NIGHT_PLAN", "FIRST_NIGHT_SCHEDULE", "FLIGHT_CHECK", "IDEMPOTENCY_BURST",
    "MANIFEST", "MICRO_BLAST_RADIUS", "MICRO_BLAST_RADIUS_COUNTERS", "MICRO_BLAST_RADIUS_REQUESTS",
    "OUTBOX_SMOKE", "OUTBOX_SMOKE_PLOT", "PREFLIGHT", "PUBLIC_KEY", "RELEASE_ONELINER", "RELEASE_RITUAL",
    "ROLLBACK_DRILLS", "ROLLBACKS", "SETTINGS", "SIGSTORE_BUNDLE_SUFFIX", "SUCCESS_CRITERIA", "WAR_ROOM_CSV",
    "WAR_ROOM_JSON", "WAR_ROOM_MD", "approval", "artifact_completeness", "build_provenance", "chaos", "closing",
    "drill_record", "drill_records", "dsse_envelope", "first_night_hour", "first_night_plot", "first_night_report",
    "freeze_lift", "git_tag", "go_nogo", "judge_look", "judge_look_files", "parse_judge_look", "parse_weight_set",
    "late_rollback_file", "preflight_check", "preflight_promql_files", "profile_diff", "profile_flamegraph",
    "profile_speedscope", "rollback_drill", "rollback_file", "rollout", "sbom",
    "sigstore_bundle", "snapshot", "snapshot_files", "stage_record", "traffic_share", "utc_stamp",
    "weight_readback", "weight_set", "SHADOW_BROWSER", "SHADOW_DRIFT", "SHADOW_DRIFT_PLOT", "SHADOW_RESPONSE_DIFF",
    "shadow_look",
]

# The ledger's own hash chain.
MANIFEST = "manifest.json"
# `X.dsse.json` is a DSSE envelope whose payload is exactly the file `X`.
DSSE_SUFFIX = ".dsse.json"
SIGSTORE_BUNDLE_SUFFIX = ".sigstore.json"

# A build's supply-chain files (`golive attest`): `<name>-<version>` and these, beside the
# wheel and the sdist, SHA256SUMS and the public key.
CYCLONEDX_SUFFIX = ".cdx.json"
IN_TOTO_LINES_SUFFIX = ".intoto.jsonl"
BUILD_OUTPUTS = ("*.whl", "*.tar.gz", "*" + CYCLONEDX_SUFFIX, "*" + IN_TOTO_LINES_SUFFIX,
                 "*" + SIGSTORE_BUNDLE_SUFFIX, "SHA256SUMS", "SHA256SUMS.asc")

# Flight check: settings, preflight, micro blast radius, release ritual.
SETTINGS = "settings.json"
PREFLIGHT = "preflight.json"
MICRO_BLAST_RADIUS = "micro_blast_radius.json"
MICRO_BLAST_RADIUS_COUNTERS = "micro_blast_radius_counters.json"
MICRO_BLAST_RADIUS_REQUESTS = "micro_blast_radius_requests.csv"
PUBLIC_KEY = "signing_key.pub.pem"
RELEASE_RITUAL = "release_ritual.json"
FLIGHT_CHECK = "flight_check.json"

# The go-live's end and the war room.
GO_LIVE_RUN = "go_live_run.json"  # the run, the fencing generation it took, the locks it took over
FINAL_SNAPSHOT = "final_snapshot.json"
RELEASE_ONELINER = "release_oneliner.txt"
SUCCESS_CRITERIA = "success_criteria.json"
WAR_ROOM_JSON = "war_room.json"
WAR_ROOM_MD = "war_room.md"
WAR_ROOM_CSV = "war_room.csv"
WAR_ROOM_HTML = "war_room.html"

# The operator's card, printed before the go-live: the card, its QR code and the page it links to.
OPERATOR_CARD = "OPERATOR_CARD.md"
OPERATOR_CARD_HTML = "OPERATOR_CARD.html"
OPERATOR_CARD_QR_PNG = "operator_card_qr.png"
OPERATOR_CARD_QR_SVG = "operator_card_qr.svg"
QUICK_START = "QUICK_START_DEPLOYMENT.md"
# In the release's repository, not the evidence: the closing fills its Deployment Summary.
RELEASE_NOTES_TEMPLATE = ".github/RELEASE_NOTES_TEMPLATE.md"  # in the release's repository


def release_notes(release: str) -> str:
    """The release notes, the template's Deployment Summary filled at the closing."""
    return f"release_notes_{release}.md"

# A war-room message the channel refused (the decision stands; the failure is on record).
NOTIFICATION_FAILURES = "notification_failed_*.json"

# First night.
FIRST_NIGHT_SCHEDULE = "first_night_schedule.json"
FIRST_NIGHT_PLAN = "first_night.json"
FIRST_NIGHT_FREEZE = "first_night_freeze.json"
FIRST_NIGHT_HOURS = "first_night_hour_*.json"

# The error budget's freeze (golive.error_budget), in its own folder of the evidence root.
BUDGET_FREEZE = "freeze.json"
BUDGET_LOCK = ".lock"  # held by the one writer of the freeze at a time; no evidence, never sealed


def budget_change(change: str, stamp: str) -> str:
    """A freeze or a lift of the error budget's freeze, as it happened (`change`: freeze | lift)."""
    return f"{change}_{stamp}.json"


def budget_override(release: str) -> str:
    """Who let `release` go live on a frozen budget, and why."""
    return f"override_{release}.json"


# Game day (in the day's own folder).
CONTRACT_CHECK = "contract_check.json"
IDEMPOTENCY_BURST = "idempotency_burst.json"
OUTBOX_SMOKE = "outbox_smoke.json"
OUTBOX_SMOKE_PLOT = "outbox_smoke_lag.png"
ROLLBACK_DRILLS = "rollback_drill_*.txt"

ROLLBACKS = "rollback_*.txt"


def utc_stamp(at: float) -> str:
    """`at` (seconds since the epoch) as the compact UTC stamp file names carry: 20261130T100000Z."""
    return datetime.fromtimestamp(at, timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def _dry(dry_run: bool) -> str:
    return "_dryrun" if dry_run else ""


# Flight check.

def preflight_check(name: str) -> str:
    return f"preflight_{name}.json"


def preflight_promql_files(track: str) -> str:
    """Every signal's PromQL check on `track` (stable or canary)."""
    return preflight_check(f"promql_*_{track}")


def sbom(release: str) -> str:
    return f"sbom_{release}.json"


def build_provenance(release: str) -> str:
    return f"build_provenance_{release}.json"


def go_nogo(release: str) -> str:
    return f"go_nogo_signed_{release}.txt"


def dsse_envelope(name: str) -> str:
    """The envelope signing the file `name` as it reads."""
    return name + DSSE_SUFFIX


def sigstore_bundle(name: str) -> str:
    """The sigstore bundle over the statement in `name`."""
    return name.removesuffix(".json") + SIGSTORE_BUNDLE_SUFFIX


def artifact_completeness(point: str) -> str:
    return f"artifact_completeness_{point}.json"


# A canary stage.

def _stage(percent: int | str) -> str:
    return "shadow" if percent == 0 else f"stage_{percent}"


def stage_record(percent: int) -> str:
    """How the stage ended (the closing's source of truth)."""
    return f"{_stage(percent)}.json"


def approval(percent: int) -> str:
    return f"approval_{_stage(percent)}.json"


def rollout(percent: int) -> str:
    return f"rollout_{_stage(percent)}.json"


def weight_set(percent: int | str) -> str:
    return f"weight_set_{_stage(percent)}.json"


ALL_WEIGHT_SETS = "weight_set_*.json"  # the shadow stage's too


def weight_readback(percent: int) -> str:
    return f"weight_readback_{_stage(percent)}.json"


def traffic_share(percent: int) -> str:
    return f"traffic_share_{_stage(percent)}.json"


def judge_look(percent: int, window: int, interval: int) -> str:
    """The judge's verdict on interval `interval` of window `window` of the stage."""
    return f"judge_{_stage(percent)}_w{window}_i{interval:02d}.json"


def judge_look_files(percent: int | str = "*") -> str:
    return f"judge_{_stage(percent)}_w*_i*.json"


ALL_JUDGE_LOOKS = "judge_*_w*_i*.json"
_JUDGE_LOOK = re.compile(r"judge_(?:stage_(\d+)|shadow)_w(\d+)_i(\d+)\.json")
_WEIGHT_SET = re.compile(r"weight_set_(?:stage_(\d+)|shadow)\.json")


def parse_judge_look(name: str) -> tuple[int, int, int] | None:
    """(percent, window, interval) of a `judge_look` name; None for any other name."""
    match = _JUDGE_LOOK.fullmatch(name)
    return None if match is None else (int(match[1] or 0), int(match[2]), int(match[3]))


def parse_weight_set(name: str) -> int | None:
    """The percent of a `weight_set` name; None for any other name."""
    match = _WEIGHT_SET.fullmatch(name)
    return None if match is None else int(match[1] or 0)


def signal_plot(percent: int, signal: str) -> str:
    """One signal over the stage, canary against stable, with its threshold and the decisions."""
    return f"plot_{_stage(percent)}_{signal}.png"


def signal_plot_files(percent: int | str = "*") -> str:
    return f"plot_{_stage(percent)}_*.png"


def _profile(percent: int, hold: int | None) -> str:
    return f"profile_{_stage(percent)}{'' if hold is None else f'_hold{hold}'}"


def profile_speedscope(percent: int, track: str, hold: int | None = None) -> str:
    """A track's profile of a stage (py-spy's speedscope JSON); a hold's cut numbered from 1."""
    return f"{_profile(percent, hold)}_{track}.speedscope.json"


def profile_flamegraph(percent: int, track: str, hold: int | None = None) -> str:
    """The flame graph of that profile."""
    return f"{_profile(percent, hold)}_{track}.png"


def profile_diff(percent: int, hold: int | None = None) -> str:
    """Canary vs stable: the frames that grew and the advice (`golive.profiles`)."""
    return f"{_profile(percent, hold)}_diff.json"


def snapshot(percent: int, hold: int | None = None) -> str:
    """The stage's decision with its series; a hold's snapshot is numbered from 1."""
    return f"snapshot_{_stage(percent)}{'' if hold is None else f'_hold{hold}'}.json"


def snapshot_files(percent: int) -> str:
    return f"snapshot_{_stage(percent)}*.json"


# The shadow stage's own (its other files are a stage's, named `shadow`).
SHADOW_DRIFT = "shadow_drift.json"  # live vs paper fills matched, at the stage's end
SHADOW_DRIFT_PLOT = "shadow_drift.png"
SHADOW_RESPONSE_DIFF = "shadow_response_diff.json"  # the canary's answers vs stable's and its secondary's
SHADOW_BROWSER = "shadow_browser.json"  # the browser check: its page loads per track, and any failure


def shadow_look(look: int) -> str:
    """Stable's latency with the mirror and the fills' drift so far, at one look."""
    return f"shadow_look_{look:02d}.json"


# Rollback and closing.

def rollback_file(at: float, dry_run: bool) -> str:
    """The rollback record, stamped with when the rollback started."""
    return f"rollback_{'dryrun_' if dry_run else ''}{utc_stamp(at)}.txt"


def late_rollback_file(at: float) -> str:
    """The record of a rollback that came late for a go-live a newer one had already replaced: it
    left the target alone, so it is not a rollback of the release (and matches no ROLLBACKS)."""
    return f"late_rollback_{utc_stamp(at)}.txt"


def git_tag(dry_run: bool = False) -> str:
    return f"git_tag{_dry(dry_run)}.json"


def freeze_lift(dry_run: bool = False) -> str:
    return f"freeze_lift{_dry(dry_run)}.json"


def release_assets(dry_run: bool = False) -> str:
    """What the closing attached to the GitHub release (or would, in a dry run)."""
    return f"release_assets{_dry(dry_run)}.json"


def closing(dry_run: bool = False) -> str:
    return f"closing{_dry(dry_run)}.json"


def notification_failure(at: float, decision: str) -> str:
    """A message that did not reach the channel, stamped to the microsecond (decisions come fast)."""
    return f"notification_failed_{utc_stamp(at)}_{round(at * 1e6) % 1_000_000:06d}_{decision}.json"


# First night.

def first_night_hour(hour: int) -> str:
    return f"first_night_hour_{hour:02d}.json"


def first_night_plot(release: str) -> str:
    return f"first_night_burn_{release}.png"


def first_night_report(release: str) -> str:
    return f"first_night_{release}.md"


# Game day.

def rollback_drill(at: float) -> str:
    return f"rollback_drill_{utc_stamp(at)}.txt"


def chaos(scenario: str) -> str:
    return f"chaos_{scenario}.json"


def drill_record(day: str, first_flight: bool = False) -> str:
    """The game day's record in the runbook's form; `day` is YYYYMMDD."""
    return f"{'first_flight' if first_flight else 'weekly'}_drill_{day}.txt"


def drill_records(first_flight: bool = False) -> str:
    return drill_record("*", first_flight)
