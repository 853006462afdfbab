"""A Python project's distributions, built offline with its own build backend.

The wheel by `pip wheel --no-deps --no-build-isolation` and the sdist by the project's own PEP 517
backend (`build_sdist`), both in the interpreter running golive, so nothing is downloaded: the
backend must be installed there. `SOURCE_DATE_EPOCH` is the commit's time when the project is a
git work tree, so wheels of one commit keep their timestamps.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from pathlib import Path

from golive.attest import without_secrets
from golive.validation import escape_line

__all__ = ["BuildError", "Distributions", "build_distributions", "build_environment"]

_TIMEOUT = 600
# The backend's build_sdist, called the way a PEP 517 frontend would, in the project's folder.
_SDIST = """
import importlib, sys, tomllib
system = tomllib.load(open("pyproject.toml", "rb")).get("build-system", {})
name = system.get("build-backend", "setuptools.build_meta:__legacy__")
module, _, attribute = name.partition(":")
backend = importlib.import_module(module)
for part in filter(None, attribute.split(".")):
    backend = getattr(backend, part)
print(backend.build_sdist(sys.argv[1]))
"""


class BuildError(RuntimeError):
    """The project could not be built; one line with the builder's last words."""


class Distributions:
    """What a build made: the wheel, the sdist, and the wheel's name, version and METADATA."""

    def __init__(self, wheel: Path, sdist: Path):
        self.wheel, self.sdist = wheel, sdist
        self.metadata = _wheel_metadata(wheel)
        self.name = self._field("Name")
        self.version = self._field("Version")

    def _field(self, key: str) -> str:
        for line in self.metadata.splitlines():
            if line.startswith(f"{key}:"):
                return line.partition(":")[2].strip()
        raise BuildError(f"{self.wheel.name}: its METADATA has no {key}")

    @property
    def stem(self) -> str:
        """`<name>-<version>` as the wheel's file name spells it."""
        return "-".join(self.wheel.name.split("-")[:2])


def _wheel_metadata(wheel: Path) -> str:
    try:
        with zipfile.ZipFile(wheel) as archive:
            (name,) = [n for n in archive.namelist() if n.count("/") == 1 and n.endswith(".dist-info/METADATA")]
            return archive.read(name).decode()
    except (OSError, ValueError, zipfile.BadZipFile):
        raise BuildError(f"{wheel.name}: not a wheel with one METADATA") from None


def _last_words(done: subprocess.CompletedProcess) -> str:
    """What a failed build says went wrong: the backend's `error:` line (pip indents the backend's
    output and ends on its own summary and "hint: See above for details."), else pip's, else the
    last line."""
    raw = [line for line in (done.stderr or done.stdout or "").splitlines() if line.strip()]
    backend = [line.strip() for line in raw if line[:1].isspace() and line.strip().startswith("error:")]
    errors = backend or [line.strip() for line in raw if line.strip().startswith("error:")]
    words = errors[-1] if errors else raw[-1].strip() if raw else ""
    return escape_line(words)[:300] if words else f"exit {done.returncode}"


def _commit_time(project: Path) -> str | None:
    try:
        done = subprocess.run(["git", "-C", str(project), "log", "-1", "--format=%ct"], capture_output=True, text=True,
                              timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 and done.stdout.strip().isdigit() else None


def build_environment(project: Path) -> dict:
    """The environment a build of `project` runs in: golive's without its secrets (the project's
    backend and the SBOM tool are the project's code and tools, not golive's), and
    `SOURCE_DATE_EPOCH` the commit's time, unless set."""
    env = without_secrets(os.environ)
    if "SOURCE_DATE_EPOCH" not in env and (epoch := _commit_time(project)):
        env["SOURCE_DATE_EPOCH"] = epoch
    return env


def build_distributions(project: Path, out: Path, env: dict | None = None) -> Distributions:
    """Build the project's wheel and sdist into `out` (files of an earlier build there replaced)."""
    if not (project / "pyproject.toml").is_file():
        raise BuildError(f"{escape_line(project)}: no pyproject.toml (--project names the project's folder)")
    try:
        tomllib.loads((project / "pyproject.toml").read_text())
    except (OSError, ValueError) as exc:
        raise BuildError(f"{escape_line(project / 'pyproject.toml')}: {exc}") from None
    out.mkdir(parents=True, exist_ok=True)
    env = env if env is not None else build_environment(project)
    built = []
    with tempfile.TemporaryDirectory(prefix=".build-", dir=out.resolve()) as scratch:
        for what, suffix, command in (
            ("wheel", ".whl", [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-input",
                               "-q", "--disable-pip-version-check", "-w", scratch, "."]),
            ("sdist", ".tar.gz", [sys.executable, "-c", _SDIST, scratch]),
        ):
            try:
                done = subprocess.run(command, cwd=project, env=env, capture_output=True, text=True, timeout=_TIMEOUT)
            except subprocess.TimeoutExpired:
                raise BuildError(f"the {what} build did not finish within {_TIMEOUT} s") from None
            if done.returncode != 0:
                raise BuildError(f"the {what} build failed: {_last_words(done)}")
            made = [p for p in Path(scratch).iterdir() if p.name.endswith(suffix)]
            if len(made) != 1:
                raise BuildError(f"the {what} build made {len(made)} {suffix} files, not one")
            built.append(out / made[0].name)
            os.replace(made[0], built[-1])
    return Distributions(*built)
