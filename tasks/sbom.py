"""The SBOM of the release's environment: CycloneDX 1.6 JSON by `cyclonedx-bom`, validated strictly.

`--output-reproducible` leaves out the serial number and timestamp, so the same environment
gives the same bytes; the strict validation (about ten seconds, most of it checking IRIs) is
therefore done once per distinct SBOM and remembered by its sha256.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from prefect import task
from prefect.cache_policies import NO_CACHE

from golive import layout
from golive.evidence import EvidenceLedger, sha256_file
from golive.models import SbomResult

SPEC_VERSION = "1.6"


def _validated_marker(digest: str) -> Path:
    return Path(os.environ.get("GOLIVE_CACHE_DIR", ".golive/cache")) / "sbom-valid" / digest


def validate_sbom(text: str) -> str | None:
    """None when the document passes the CycloneDX library's strict 1.6 JSON validation, else why not."""
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    error = JsonStrictValidator(SchemaVersion.V1_6).validate_str(text)
    return None if error is None else str(error)[:500]


@task(name="make the SBOM", retries=1, cache_policy=NO_CACHE)
def make_sbom(folder: str, release: str, environment: str | None = None) -> SbomResult:
    """Write sbom_<release>.json for the Python environment `environment` (an interpreter or a
    venv; default: the one running golive) and validate it."""
    ledger = EvidenceLedger(folder)
    name = layout.sbom(release)
    target = ledger.path(name)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{name}.partial")
    done = subprocess.run(
        [sys.executable, "-m", "cyclonedx_py", "environment", environment or sys.executable,
         "--of", "JSON", "--sv", SPEC_VERSION, "--output-reproducible", "--no-validate", "-o", str(partial)],
        capture_output=True, text=True, timeout=300,
    )
    if done.returncode != 0:
        partial.unlink(missing_ok=True)
        raise RuntimeError(f"cyclonedx-py failed: {done.stderr.strip()[-500:]}")
    os.replace(partial, target)
    digest = sha256_file(target)
    text = target.read_text()
    marker = _validated_marker(digest)
    if marker.exists():
        error, validation = None, "validated earlier (same sha256)"
    else:
        error = validate_sbom(text)
        validation = "validated" if error is None else error
        if error is None:
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.touch()
    return SbomResult(name=name, sha256=digest, components=len(json.loads(text).get("components", [])),
                      spec_version=SPEC_VERSION, valid=error is None, validation=validation)
