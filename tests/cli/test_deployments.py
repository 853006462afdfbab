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


@pytest.mark.parametrize(("content", "error"), [
    (b"deployments: [unclosed\n", "invalid YAML at line 2 column 1"),
    (b"- a list\n- not a mapping\n", "expected a mapping with a `deployments` list"),
    (b"deployments: {v1: x}\n", "expected a mapping with a `deployments` list"),
    (b"deployments:\n  - just a name\n", "deployments[0]: expected a mapping"),
    (b"deployments:\n  - {name: v1.5.0, entrypoint: [flows]}\n", "deployments[0].entrypoint: expected text"),
    (b"deployments: []\nname: \xff\n", "not UTF-8 text"),
    (b"deployments: " + b"[" * 50000, "nested too deeply"),
    (b"deployments: []\nbuild: |\n  trailing block\n", "the deployments list is not the file's last section"),
])
def test_a_malformed_prefect_yaml_is_one_line_and_untouched(tmp_path, content, error):
    target = tmp_path / "prefect.yaml"
    target.write_bytes(content)
    with pytest.raises(DeploymentError) as exc:
        add_release(target, "1.5.0")
    assert str(exc.value).startswith(f"{target}: ") and error in str(exc.value) and "\n" not in str(exc.value)
    assert target.read_bytes() == content
    assert sorted(p.name for p in tmp_path.iterdir()) == ["prefect.yaml"]


@pytest.mark.parametrize("scratch", ["folder", "symlink"])
def test_a_folder_or_link_where_the_old_scratch_file_went_changes_nothing(tmp_path, scratch):
    target = tmp_path / "prefect.yaml"
    shutil.copy(PREFECT_YAML, target)
    victim = tmp_path / "victim.txt"
    victim.write_text("keep\n")
    old_scratch = tmp_path / ".prefect.yaml.partial"
    old_scratch.mkdir() if scratch == "folder" else old_scratch.symlink_to(victim)
    add_release(target, "1.5.0")
    assert "v1.5.0" in target.read_text() and victim.read_text() == "keep\n"


def test_deployment_add_on_a_bad_file_exits_2_with_one_line(tmp_path, capsys):
    from cli.main import main

    target = tmp_path / "prefect.yaml"
    target.write_text("deployments: [unclosed\n")
    assert main(["deployment", "add", "1.5.0", "--file", str(target)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"golive: {target}: invalid YAML") and err.count("\n") == 1


def test_a_prefect_yaml_that_is_a_link_a_device_or_too_large_is_one_line_and_untouched(tmp_path):
    from cli.deployments import MAX_FILE_BYTES

    real = tmp_path / "real.yaml"
    shutil.copy(PREFECT_YAML, real)
    (tmp_path / "linked.yaml").symlink_to(real)
    large = tmp_path / "large.yaml"
    large.write_bytes(PREFECT_YAML.read_bytes() + b"#" * MAX_FILE_BYTES)
    for path, error in [(tmp_path / "linked.yaml", "a symbolic link; name the file it points to"),
                        (Path("/dev/zero"), "not a file"),
                        (large, f"larger than {MAX_FILE_BYTES // 1024} KiB, not a prefect.yaml")]:
        with pytest.raises(DeploymentError) as exc:
            add_release(path, "1.5.0")
        assert str(exc.value).startswith(f"{path}: {error}")
    assert real.read_bytes() == PREFECT_YAML.read_bytes() and (tmp_path / "linked.yaml").is_symlink()
