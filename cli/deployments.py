"""`golive deployment add 1.5.0`: the next release's go-live deployment, appended to prefect.yaml.

Appended as text after the last one, so the file's comments and anchors stay as they are.
"""

from __future__ import annotations

import os
from pathlib import Path

import yaml

from golive.validation import parse_release

__all__ = ["DeploymentError", "add_release"]


class DeploymentError(ValueError):
    """prefect.yaml cannot take the deployment; one line saying why."""


def _entry(release: str) -> str:
    return f"""
  - name: v{release}
    entrypoint: flows/go_live.py:go_live
    description: Take v{release} live, 1 → 5 → 25 → 50 → 100 %, gated on the eight golden signals.
    parameters:
      release: "{release}"
      blocks: *blocks
    work_pool: *golive_local
"""


def add_release(path: Path, release: str) -> None:
    try:
        parse_release(release)
    except ValueError as exc:
        raise DeploymentError(f"release: {exc}") from None
    try:
        text = path.read_text()
    except OSError as exc:
        raise DeploymentError(f"{path}: {exc.strerror}") from None
    deployments = (yaml.safe_load(text) or {}).get("deployments") or []
    if any(d.get("name") == f"v{release}" and d.get("entrypoint", "").endswith(":go_live") for d in deployments):
        raise DeploymentError(f"{path}: go-live/v{release} is already there")
    updated = text.rstrip("\n") + "\n" + _entry(release)
    if len(yaml.safe_load(updated)["deployments"]) != len(deployments) + 1:
        raise DeploymentError(f"{path}: the deployments list is not the file's last section")
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(updated)
    os.replace(partial, path)
