"""The SBOM task remembers the document of an environment it has described, and never serves it
for an environment that changed since."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from golive import layout
from tasks.sbom import described, environment_fingerprint, make_sbom, validate_remembered


def _add_distribution(venv, name: str, version: str, kind: str = "dist-info") -> None:
    (site,) = venv.glob("lib/python*/site-packages")
    meta = site / f"{name}-{version}.{kind}"
    meta.mkdir()
    metadata = "METADATA" if kind == "dist-info" else "PKG-INFO"
    (meta / metadata).write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")


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
    remembered = described(str(venv / "bin" / "python")).stat()
    again = make_sbom.fn(str(tmp_path / "again"), "1.4.0", str(venv))
    assert first.valid and again.sha256 == first.sha256
    assert _components(tmp_path / "first") == [("spark-client", "1.0.0")]
    # Described once: a second description would have replaced the remembered file (a new inode).
    after = described(str(venv / "bin" / "python")).stat()
    assert (after.st_ino, after.st_mtime_ns) == (remembered.st_ino, remembered.st_mtime_ns)

    _add_distribution(venv, "spark-auth", "2.1.0", kind="egg-info")  # a Debian-style package too
    assert environment_fingerprint(str(venv / "bin" / "python")) != before
    changed = make_sbom.fn(str(tmp_path / "changed"), "1.4.0", str(venv))
    assert changed.sha256 != first.sha256
    assert sorted(_components(tmp_path / "changed")) == [("spark-auth", "2.1.0"), ("spark-client", "1.0.0")]


def test_an_environment_that_cannot_be_asked_is_one_line_naming_the_setting(tmp_path, monkeypatch):
    monkeypatch.setenv("GOLIVE_CACHE_DIR", str(tmp_path / "cache"))
    with pytest.raises(RuntimeError, match=r"^process\.sbom_environment: cannot ask .*nowhere "):
        make_sbom.fn(str(tmp_path / "evidence"), "1.4.0", str(tmp_path / "nowhere"))


def test_go_lives_starting_together_describe_and_validate_an_environment_once(tmp_path, monkeypatch):
    import tasks.sbom

    monkeypatch.setenv("GOLIVE_CACHE_DIR", str(tmp_path / "cache"))
    venv = tmp_path / "release-env"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    made, checked = [], []

    def slow_describe(interpreter, remembered):
        made.append(interpreter)
        time.sleep(0.5)  # long enough for the other go-lives to ask meanwhile
        remembered.write_text('{"bomFormat": "CycloneDX"}')
        return remembered

    def slow_validate(text):
        checked.append(text)
        time.sleep(0.5)

    monkeypatch.setattr(tasks.sbom, "_describe", slow_describe)
    monkeypatch.setattr(tasks.sbom, "validate_sbom", slow_validate)
    with ThreadPoolExecutor(3) as pool:
        paths = list(pool.map(lambda _: described(str(venv / "bin" / "python")), range(3)))
        validations = list(pool.map(lambda _: validate_remembered(paths[0].read_text()), range(3)))
    assert len(set(paths)) == 1 and len(made) == 1
    assert len(checked) == 1 and sorted(how for _, how in validations) == [
        "validated", "validated earlier (same sha256)", "validated earlier (same sha256)"]
