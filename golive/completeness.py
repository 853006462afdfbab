"""Which evidence a release must have at each point, and whether its folder has it.

A requirement is a file pattern and how many files must match it. The runbook's counts
(40+ files before takeoff, 50+ at the end) are checked too, but the named files come first:
a folder with sixty files and no signed go/no-go is not complete.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from fnmatch import fnmatch

__all__ = ["MINIMUM_FILES", "POINTS", "check_completeness", "requirements"]

POINTS = ("takeoff", "end")
MINIMUM_FILES = {"takeoff": 40, "end": 50}

PREFLIGHT_CHECKS = (
    "config", "scrape_targets", "traffic", "router", "canary_version", "canary_health", "stable_version",
    "stable_health", "evidence_folder", "git_clean", "release_tag_absent", "signing_key",
)


def _takeoff(release: str, signals: int) -> list[tuple[str, int]]:
    return [
        ("settings.json", 1),
        ("preflight.json", 1),
        *((f"preflight_{name}.json", 1) for name in PREFLIGHT_CHECKS),
        ("preflight_promql_*_stable.json", signals),
        ("preflight_promql_*_canary.json", signals),
        ("micro_blast_radius.json", 1),
        ("micro_blast_radius_counters.json", 1),
        ("micro_blast_radius_requests.csv", 1),
        (f"sbom_{release}.json", 1),
        (f"build_provenance_{release}.json", 1),
        (f"go_nogo_signed_{release}.txt", 1),
        (f"go_nogo_signed_{release}.txt.dsse.json", 1),
        ("signing_key.pub.pem", 1),
        ("release_ritual.json", 1),
    ]


def _stage(percent: int) -> list[tuple[str, int]]:
    tag = f"stage_{percent}"
    return [
        (f"weight_set_{tag}.json", 1),
        (f"weight_readback_{tag}.json", 1),
        (f"traffic_share_{tag}.json", 1),
        (f"judge_{tag}_w*_i*.json", 1),
        (f"snapshot_{tag}*.json", 1),
        (f"{tag}.json", 1),
    ]


CLOSING = [("final_snapshot.json", 1), ("release_oneliner.txt", 1),
           ("war_room.json", 1), ("war_room.md", 1), ("war_room.csv", 1)]


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
    minimum_files = MINIMUM_FILES[point]
    return {
        "point": point,
        "ok": not missing and len(files) >= minimum_files,
        "missing": missing,
        "files": len(files),
        "minimum_files": minimum_files,
    }
