"""`golive deployment add`: the next release's deployment in prefect.yaml, and nothing else touched."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from cli.deployments import DeploymentError, add_release

PREFECT_YAML = Path(__file__).resolve().parents[2] / "prefect.yaml"


def test_a_release_is_added_with_the_same_pool_and_blocks(tmp_path):
    target = tmp_path / "prefect.yaml"
    shutil.copy(PREFECT_YAML, target)
    before = target.read_text()
    add_release(target, "1.5.0")
    assert target.read_text().startswith(before.rstrip("\n"))  # comments and anchors kept
    deployments = {(d["entrypoint"], d["name"]): d for d in yaml.safe_load(target.read_text())["deployments"]}
    new, old = deployments[("flows/go_live.py:go_live", "v1.5.0")], deployments[("flows/go_live.py:go_live", "v1.4.0")]
    assert new["parameters"] == {**old["parameters"], "release": "1.5.0"}
    assert new["work_pool"] == old["work_pool"] == {"name": "golive-local", "work_queue_name": "default", "job_variables":
                                                    {"env": {"PREFECT_FLOWS_HEARTBEAT_FREQUENCY": "30"}}}


def test_a_duplicate_or_a_bad_version_is_refused_and_the_file_untouched(tmp_path):
    target = tmp_path / "prefect.yaml"
    shutil.copy(PREFECT_YAML, target)
    with pytest.raises(DeploymentError, match="go-live/v1.4.0 is already there"):
        add_release(target, "1.4.0")
    with pytest.raises(DeploymentError, match="release: '1.5; rm' is not a SemVer 2.0 version"):
        add_release(target, "1.5; rm")
    assert target.read_text() == PREFECT_YAML.read_text()
