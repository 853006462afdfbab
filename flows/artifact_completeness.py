"""artifact-completeness: the evidence a release must have at a point, checked against its folder."""

from __future__ import annotations

from prefect import flow, get_run_logger

from golive import layout
from golive.completeness import check_completeness
from golive.settings import GoLiveSettings
from tasks.evidence import ReleaseFolder, list_evidence


@flow(name="artifact-completeness", flow_run_name="artifact completeness v{settings.release} at {point}")
def artifact_completeness(settings: GoLiveSettings, point: str, stages: list[int] | None = None) -> dict:
    """`point` is "takeoff" (after the flight check) or "end" (after the closing), `stages` the
    stages run so far; writes artifact_completeness_<point>.json, which counts itself."""
    evidence = ReleaseFolder.of(settings)
    name = layout.artifact_completeness(point)
    files = sorted({*list_evidence(evidence.path), name})
    result = check_completeness(point, settings.release, stages if stages is not None else list(settings.policy.stages),
                                len(settings.policy.catalogue()), files)
    evidence.record(name, result)
    get_run_logger().info("evidence at %s: %d files (minimum %d)%s", point, result["files"], result["minimum_files"],
                          f"; missing {', '.join(result['missing'])}" if result["missing"] else "")
    return result
