"""The SBOM of the release's environment: CycloneDX 1.6 JSON by `cyclonedx-bom`, validated strictly.

`--output-reproducible` leaves out the serial number and timestamp, so the same environment
gives the same bytes. Both slow steps are therefore done once and remembered: the document, by
the fingerprint of what cyclonedx-py reads (every file of every installed distribution's
metadata, with the CycloneDX tools' versions), since describing a few hundred packages takes
some twenty CPU seconds; and the strict validation (about ten seconds, most of it checking IRIs), by the
document's sha256.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from importlib.metadata import distributions, version
from pathlib import Path

from prefect import task
from prefect.cache_policies import NO_CACHE

from golive import layout
from golive.attest import (
    Edge, normal_name, project_sbom, requires_dist, runtime_closure, unmet_requirements, without_secrets,
)
from golive.cache import cache_dir
from golive.evidence import EvidenceLedger, sha256_file
from golive.models import SbomResult

SPEC_VERSION = "1.6"


def _validated_marker(digest: str) -> Path:
    return cache_dir() / "sbom-valid" / digest


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
    remembered = cache_dir() / "sbom" / f"{environment_fingerprint(interpreter)}.json"
    if remembered.exists():
        return remembered
    remembered.parent.mkdir(parents=True, exist_ok=True)
    with _made_once(remembered):
        if remembered.exists():  # made by another process while this one waited
            return remembered
        return _describe(interpreter, remembered)


def _describe(interpreter: str, remembered: Path) -> Path:
    handle, partial = tempfile.mkstemp(prefix=f".{remembered.name}.", suffix=".partial", dir=remembered.parent)
    os.close(handle)
    done = subprocess.run(
        [sys.executable, "-m", "cyclonedx_py", "environment", interpreter,
         "--of", "JSON", "--sv", SPEC_VERSION, "--output-reproducible", "--no-validate", "-o", partial],
        capture_output=True, text=True, timeout=300, env=without_secrets(os.environ),
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


def validate_remembered(text: str) -> tuple[str | None, str]:
    """`validate_sbom`, done once per distinct document: (the error or None, how it was found)."""
    marker = _validated_marker(hashlib.sha256(text.encode()).hexdigest())
    if marker.exists():
        return None, "validated earlier (same sha256)"
    marker.parent.mkdir(parents=True, exist_ok=True)
    with _made_once(marker):
        if marker.exists():
            return None, "validated earlier (same sha256)"
        error = validate_sbom(text)
        if error is not None:
            return error, error
        marker.touch()
    return None, "validated"


@contextlib.contextmanager
def _made_once(path: Path) -> Iterator[None]:
    """Held while `path` is made: go-lives starting together on one machine make a slow document
    (or its validation) once, the others wait for it and take it."""
    with open(path.with_name(f".{path.name}.lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def describe_project(project: Path, interpreter: str = sys.executable, env: dict | None = None) -> dict:
    """The CycloneDX document of `interpreter`'s environment with the project of `project` (its
    pyproject.toml) as the root component, as cyclonedx-py makes it (reproducible: no serial
    number; `SOURCE_DATE_EPOCH` in `env`, when set, is its timestamp)."""
    with tempfile.TemporaryDirectory(prefix="golive-sbom-") as scratch:
        target = Path(scratch) / "document"
        done = subprocess.run(
            [sys.executable, "-m", "cyclonedx_py", "environment", interpreter, "--pyproject",
             str(project / "pyproject.toml"), "--mc-type", "library", "--of", "JSON", "--sv", SPEC_VERSION,
             "--output-reproducible", "--no-validate", "-o", str(target)],
            capture_output=True, text=True, timeout=300, env=env,
        )
        if done.returncode != 0:
            lines = done.stderr.strip().splitlines()
            raise RuntimeError(f"cyclonedx-py failed: {lines[-1][:300] if lines else f'exit {done.returncode}'}")
        return json.loads(target.read_text())


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
    error, validation = validate_remembered(text)
    if error is not None:
        remembered.unlink(missing_ok=True)  # described anew next time, never served invalid again
    return SbomResult(name=name, sha256=digest, components=len(json.loads(text).get("components", [])),
                      spec_version=SPEC_VERSION, valid=error is None, validation=validation)


def requirement_edges(requirements: list[str], extras: list[str]) -> list[Edge]:
    """Each requirement that can hold here (its environment marker evaluated for this interpreter)
    as an edge: its name, its extras, and which of `extras` turns it on (None: it always holds)."""
    from packaging.markers import InvalidMarker, UndefinedEnvironmentName
    from packaging.requirements import InvalidRequirement, Requirement

    edges: list[Edge] = []
    for text in requirements:
        try:
            requirement = Requirement(text)
            marker = requirement.marker
            when = next((extra for extra in (None, *extras)
                         if marker is None or marker.evaluate({"extra": extra or ""})), "")
        except (InvalidRequirement, InvalidMarker, UndefinedEnvironmentName):
            continue  # a requirement pip could not have installed from either
        if when != "":
            edges.append((requirement.name, frozenset(requirement.extras), when))
    return edges


def installed_requirements() -> dict[str, list[Edge]]:
    """Every distribution installed for this interpreter, by normal name, with its requirements."""
    found: dict[str, list[Edge]] = {}
    for dist in distributions():
        name = dist.metadata["Name"]
        if name:
            found.setdefault(normal_name(name), requirement_edges(
                dist.requires or [], [normal_name(e) for e in dist.metadata.get_all("Provides-Extra") or []]))
    return found


def write_project_sbom(target: Path, project: Path, metadata: str, env: dict | None = None,
                       allow_incomplete: bool = False) -> dict:
    """Write the SBOM of the project in `project` to `target`, validated: the environment this
    interpreter runs in, as cyclonedx-py describes it with the project's pyproject.toml as its
    root, narrowed to what the wheel's requirements (its METADATA) reach here. A requirement that
    is not installed here would be missing from it: a RuntimeError naming them, unless
    `allow_incomplete` (then they are listed under `missing`)."""
    roots = requirement_edges(requires_dist(metadata), [])
    installed = installed_requirements()
    missing = unmet_requirements(installed, roots)
    if missing and not allow_incomplete:
        raise RuntimeError(f"the SBOM would leave out {', '.join(missing)}: required by the project but not "
                           f"installed where golive runs (install them there, or --allow-incomplete-sbom)")
    reached = runtime_closure(installed, roots)
    document = project_sbom(describe_project(project, env=env), reached, [name for name, _, _ in roots])
    text = json.dumps(document, indent=2, sort_keys=True) + "\n"
    error, validation = validate_remembered(text)
    if error is not None:
        raise RuntimeError(f"{target.name}: not a valid CycloneDX {SPEC_VERSION} document ({error})")
    target.write_text(text)
    return {"name": target.name, "sha256": hashlib.sha256(text.encode()).hexdigest(),
            "components": len(document["components"]), "validation": validation, "missing": missing}
