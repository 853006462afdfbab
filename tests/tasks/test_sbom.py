"""The SBOM task remembers the document of an environment it has described, and never serves it
for an environment that changed since."""

from __future__ import annotations

import json
import subprocess
import sys

from golive import layout
from tasks.sbom import environment_fingerprint, make_sbom


def _add_distribution(venv, name: str, version: str) -> None:
    (site,) = venv.glob("lib/python*/site-packages")
    meta = site / f"{name}-{version}.dist-info"
    meta.mkdir()
    (meta / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")


def _components(folder) -> list[tuple[str, str]]:
    sbom = json.loads((folder / layout.sbom("1.4.0")).read_text())
    return [(c["name"], c["version"]) for c in sbom.get("components", [])]


def test_a_changed_environment_gets_a_new_sbom_an_unchanged_one_the_same(tmp_path, monkeypatch):
    monkeypatch.setenv("GOLIVE_CACHE_DIR", str(tmp_path / "cache"))
    venv = tmp_path / "release-env"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    _add_distribution(venv, "spark-client", "1.0.0")
    before = environment_fingerprint(str(venv / "bin" / "python"))

    first = make_sbom.fn(str(tmp_path / "first"), "1.4.0", str(venv))
    again = make_sbom.fn(str(tmp_path / "again"), "1.4.0", str(venv))
    assert first.valid and again.sha256 == first.sha256
    assert _components(tmp_path / "first") == [("spark-client", "1.0.0")]
    assert len(list((tmp_path / "cache" / "sbom").glob("*.json"))) == 1  # described once

    _add_distribution(venv, "spark-auth", "2.1.0")
    assert environment_fingerprint(str(venv / "bin" / "python")) != before
    changed = make_sbom.fn(str(tmp_path / "changed"), "1.4.0", str(venv))
    assert changed.sha256 != first.sha256
    assert sorted(_components(tmp_path / "changed")) == [("spark-auth", "2.1.0"), ("spark-client", "1.0.0")]
