"""The SBOM of the release's environment: CycloneDX 1.6 JSON by `cyclonedx-bom`, validated strictly.

`--output-reproducible` leaves out the serial number and timestamp, so the same environment
gives the same bytes. Both slow steps are therefore done once and remembered: the document, by
the fingerprint of what cyclonedx-py reads (every file of every installed distribution's
metadata, with the tool's version), since describing a few hundred packages takes some twenty
CPU seconds; and the strict validation (about ten seconds, most of it checking IRIs), by the
document's sha256.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

from prefect import task
from prefect.cache_policies import NO_CACHE

from golive import layout
from golive.evidence import EvidenceLedger, sha256_file
from golive.models import SbomResult

SPEC_VERSION = "1.6"


def _cache() -> Path:
    return Path(os.environ.get("GOLIVE_CACHE_DIR", ".golive/cache"))


def _validated_marker(digest: str) -> Path:
    return _cache() / "sbom-valid" / digest


def environment_fingerprint(interpreter: str) -> str:
    """sha256 of what an SBOM of `interpreter`'s environment is made from: the path of each
    distribution's metadata folder on its `sys.path` and every file in it, and cyclonedx-py's version."""
    paths = subprocess.run([interpreter, "-c", "import json, sys; print(json.dumps(sys.path))"],
                           capture_output=True, text=True, timeout=60, check=True).stdout
    digest = hashlib.sha256(f"cyclonedx-bom {version('cyclonedx-bom')}\n{interpreter}\n".encode())
    for entry in json.loads(paths):
        for meta in sorted(Path(entry or ".").glob("*.dist-info")):
            for file in sorted(p for p in meta.rglob("*") if p.is_file()):
                digest.update(f"{file}\n".encode())
                digest.update(hashlib.sha256(file.read_bytes()).digest())
    return digest.hexdigest()


def _interpreter(environment: str | None) -> str:
    """The Python of `environment`: an interpreter, a venv's folder, or (None) golive's own."""
    if environment is None:
        return sys.executable
    path = Path(environment)
    return str(path / "bin" / "python") if path.is_dir() else environment


def _describe(interpreter: str, out: Path) -> None:
    """cyclonedx-py's document of the environment into `out`, or the one it made before for the
    same fingerprint."""
    remembered = _cache() / "sbom" / f"{environment_fingerprint(interpreter)}.json"
    if not remembered.exists():
        partial = remembered.with_name(f".{remembered.name}.{os.getpid()}.partial")
        partial.parent.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(
            [sys.executable, "-m", "cyclonedx_py", "environment", interpreter,
             "--of", "JSON", "--sv", SPEC_VERSION, "--output-reproducible", "--no-validate", "-o", str(partial)],
            capture_output=True, text=True, timeout=300,
        )
        if done.returncode != 0:
            partial.unlink(missing_ok=True)
            raise RuntimeError(f"cyclonedx-py failed: {done.stderr.strip()[-500:]}")
        os.replace(partial, remembered)
    out.write_bytes(remembered.read_bytes())


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
    _describe(_interpreter(environment), partial)
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
