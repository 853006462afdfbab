"""Which evidence a release must have at each point, and whether its folder has it.

A requirement is a file pattern and how many files must match it. The runbook's counts
(40+ files before takeoff, 50+ at the end) are checked too, but the named files come first:
a folder with sixty files and no signed go/no-go is not complete.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from fnmatch import fnmatch

from golive import layout

__all__ = ["MINIMUM_FILES", "POINTS", "check_completeness", "requirements"]

POINTS = ("takeoff", "end")
MINIMUM_FILES = {"takeoff": 40, "end": 50}
RUNBOOK_SIGNALS = 8

PREFLIGHT_CHECKS = (
    "config", "scrape_targets", "traffic", "router", "canary_version", "canary_health", "stable_version",
    "stable_health", "evidence_folder", "git_clean", "release_tag_absent", "signing_key",
)


def _takeoff(release: str, signals: int) -> list[tuple[str, int]]:
    return [
        (layout.SETTINGS, 1),
        (layout.PREFLIGHT, 1),
        *((layout.preflight_check(name), 1) for name in PREFLIGHT_CHECKS),
        (layout.preflight_promql_files("stable"), signals),
        (layout.preflight_promql_files("canary"), signals),
        (layout.MICRO_BLAST_RADIUS, 1),
        (layout.MICRO_BLAST_RADIUS_COUNTERS, 1),
        (layout.MICRO_BLAST_RADIUS_REQUESTS, 1),
        (layout.sbom(release), 1),
        (layout.build_provenance(release), 1),
        (layout.go_nogo(release), 1),
        (layout.dsse_envelope(layout.go_nogo(release)), 1),
        (layout.PUBLIC_KEY, 1),
        (layout.RELEASE_RITUAL, 1),
    ]


def _stage(percent: int) -> list[tuple[str, int]]:
    return [
        (layout.weight_set(percent), 1),
        (layout.weight_readback(percent), 1),
        (layout.traffic_share(percent), 1),
        (layout.judge_look_files(percent), 1),
        (layout.snapshot_files(percent), 1),
        (layout.stage_record(percent), 1),
    ]


CLOSING = [(layout.FINAL_SNAPSHOT, 1), (layout.RELEASE_ONELINER, 1),
           (layout.WAR_ROOM_JSON, 1), (layout.WAR_ROOM_MD, 1), (layout.WAR_ROOM_CSV, 1)]


def requirements(point: str, release: str, stages: Sequence[int], signals: int) -> list[tuple[str, int]]:
    """The (pattern, minimum count) pairs a folder must satisfy at `point`."""
    if point not in POINTS:
        raise ValueError(f"point: expected one of {', '.join(POINTS)}, got {point!r}")
    required = _takeoff(release, signals)
    if point == "end":
        for percent in stages:
            required += _stage(percent)
        required += CLOSING
    return required


def check_completeness(point: str, release: str, stages: Sequence[int], signals: int,
                       files: Iterable[str]) -> dict:
    """What is missing at `point` and whether the count reaches the runbook's minimum."""
    files = list(files)
    missing = []
    for pattern, minimum in requirements(point, release, stages, signals):
        found = sum(fnmatch(name, pattern) for name in files)
        if found < minimum:
            missing.append(pattern if minimum == 1 else f"{pattern} ({found} of {minimum})")
    # The runbook's counts are of eight signals, each with a PromQL check per track at preflight.
    minimum_files = MINIMUM_FILES[point] - 2 * max(0, RUNBOOK_SIGNALS - signals)
    return {
        "point": point,
        "ok": not missing and len(files) >= minimum_files,
        "missing": missing,
        "files": len(files),
        "minimum_files": minimum_files,
    }
