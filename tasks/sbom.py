"""The SBOM of the release's environment: CycloneDX 1.6 JSON by `cyclonedx-bom`, validated strictly.

`--output-reproducible` leaves out the serial number and timestamp, so the same environment
gives the same bytes. Both slow steps are therefore done once and remembered: the document, by
the fingerprint of what cyclonedx-py reads (every file of every installed distribution's
metadata, with the CycloneDX tools' versions), since describing a few hundred packages takes
some twenty CPU seconds; and the strict validation (about ten seconds, most of it checking IRIs), by the
document's sha256.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
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


_METADATA = ("*.dist-info", "*.egg-info", "*.egg")  # what importlib.metadata, and so cyclonedx-py, reads
_TOOLS = ("cyclonedx-bom", "cyclonedx-python-lib")


def environment_fingerprint(interpreter: str) -> str:
    """sha256 of what an SBOM of `interpreter`'s environment is made from: every distribution's
    metadata on its `sys.path` (each folder's files, or the file), by path and content, and the
    versions of the tools that describe it."""
    try:
        paths = subprocess.run([interpreter, "-c", "import json, sys; print(json.dumps(sys.path))"],
                               capture_output=True, text=True, timeout=60, check=True).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        raise RuntimeError(f"process.sbom_environment: cannot ask {interpreter} for its packages ({exc})") from None
    tools = ", ".join(f"{tool} {version(tool)}" for tool in _TOOLS)
    digest = hashlib.sha256(f"{tools}\n{interpreter}\n".encode())
    for entry in json.loads(paths):
        for pattern in _METADATA:
            for meta in sorted(Path(entry or ".").glob(pattern)):
                for file in [meta] if meta.is_file() else sorted(p for p in meta.rglob("*") if p.is_file()):
                    digest.update(f"{file}\n".encode())
                    digest.update(hashlib.sha256(file.read_bytes()).digest())
    return digest.hexdigest()


def _interpreter(environment: str | None) -> str:
    """The Python of `environment`: an interpreter, a venv's folder, or (None) golive's own."""
    if environment is None:
        return sys.executable
    path = Path(environment)
    return str(path / "bin" / "python") if path.is_dir() else environment


def described(interpreter: str) -> Path:
    """The remembered cyclonedx-py document of the environment, made now when its fingerprint
    is new."""
    remembered = _cache() / "sbom" / f"{environment_fingerprint(interpreter)}.json"
    if remembered.exists():
        return remembered
    remembered.parent.mkdir(parents=True, exist_ok=True)
    handle, partial = tempfile.mkstemp(prefix=f".{remembered.name}.", suffix=".partial", dir=remembered.parent)
    os.close(handle)
    done = subprocess.run(
        [sys.executable, "-m", "cyclonedx_py", "environment", interpreter,
         "--of", "JSON", "--sv", SPEC_VERSION, "--output-reproducible", "--no-validate", "-o", partial],
        capture_output=True, text=True, timeout=300,
    )
    if done.returncode != 0:
        Path(partial).unlink(missing_ok=True)
        raise RuntimeError(f"cyclonedx-py failed: {done.stderr.strip()[-500:]}")
    os.replace(partial, remembered)
    return remembered


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
    remembered = described(_interpreter(environment))
    partial.write_bytes(remembered.read_bytes())
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
        else:
            remembered.unlink(missing_ok=True)  # described anew next time, never served invalid again
    return SbomResult(name=name, sha256=digest, components=len(json.loads(text).get("components", [])),
                      spec_version=SPEC_VERSION, valid=error is None, validation=validation)
