"""The Prefect path for real: a local Prefect server, a process worker, `prefect deploy` and
`prefect deployment run`, on the sandbox (the session's stack, from conftest)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from cli.demo import demo_settings
from golive import layout
from sandbox.release_repo import create_release_repo
from tests.deployments._prefect import UUID, client as _client, final as _final, run as _run, wait as _wait

pytestmark = pytest.mark.sandbox

STAGES = (1, 25, 100)  # first, middle and last: every kind of stage, approved, in a third less time


def _assert_mondays_at_ten(env: dict, zone: str) -> None:
    from zoneinfo import ZoneInfo

    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName

    with _client(env) as client:
        deployment = client.read_deployment_by_name("game-day/monday")
        assert [(s.schedule.cron, s.schedule.timezone) for s in deployment.schedules] == [("0 10 * * 1", zone)]
        deadline = time.monotonic() + 60
        while not (runs := client.read_flow_runs(deployment_filter=DeploymentFilter(
                name=DeploymentFilterName(any_=["monday"])))) and time.monotonic() < deadline:
            time.sleep(0.5)
    starts = sorted(r.expected_start_time.astimezone(ZoneInfo(zone)) for r in runs)
    assert len(starts) >= 2
    assert all((s.weekday(), s.hour, s.minute) == (0, 10, 0) for s in starts)
    assert all((b - a).days == 7 for a, b in zip(starts, starts[1:]))


def _approve(env: dict, run_id: str, approver: str) -> int:
    """`golive approve RUN_ID --approver NAME`, in this process, against the stack's server."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from cli.main import main

    with temporary_settings({PREFECT_API_URL: env["PREFECT_API_URL"]}):
        return main(["approve", run_id, "--approver", approver, "--reason", "green"])


def _paused_stage(env: dict, parent_id: str):
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterParentFlowRunId

    def paused(_run) -> bool:
        with _client(env) as client:
            children = client.read_flow_runs(flow_run_filter=FlowRunFilter(
                parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[parent_id])))
        return any(c.state and c.state.is_paused() for c in children)

    return _wait(env, parent_id, lambda run: paused(run) or _final(run))


def _remote_tag(repo: Path, tag: str) -> str:
    shown = subprocess.run(["git", "-C", str(repo.with_name("spark.git")), "tag", "-l",
                            "--format=%(objecttype) %(contents:subject)", tag], capture_output=True, text=True)
    return shown.stdout.strip()


def test_a_release_the_prefect_way_from_deploy_to_the_first_night(prefect, deployed, sandbox, signing_key, github,
                                                                  tmp_path):
    """`prefect deploy`, `prefect deployment run go-live/v1.4.0`, every stage approved with
    `golive approve`, a second run refused, Live with its artifacts, the tag pushed and the freeze
    lifted, the first night run by its deployment, and `rollback/default` at the end."""
    from golive.signing import load_public_key
    from golive.verify import verify_folder

    settings = demo_settings("1.4.0", sandbox.golive_settings(), 12, 4, str(tmp_path / "evidence"))
    settings.pop("release")
    repo = create_release_repo(tmp_path / "release" / "spark", "1.4.0", "1.3.2")
    settings.update(stages=list(STAGES), blast_radius_seconds=2, signing={**signing_key, "sigstore": "off"},
                    git={"repo": str(repo)},
                    github={"repository": github.repository, "api_url": github.url},
                    first_night={"hours": 2, "hour_seconds": 4})
    config = tmp_path / "golive.yaml"
    config.write_text(yaml.safe_dump(settings))
    golive = [sys.executable, "-m", "cli"]
    _run(prefect, *golive, "blocks", "apply", str(config))
    assert all(name in deployed for name in ("go-live/v1.4.0", "rollback/default", "first-night/default",
                                             "game-day/monday"))

    first = UUID.search(_run(prefect, sys.executable, "-m", "prefect", "deployment", "run", "go-live/v1.4.0",
                             "--param", "approve_each_stage=true")).group()
    assert not _final(_paused_stage(prefect, first))

    # A second run of the same release refuses, naming the first.
    second = UUID.search(_run(prefect, sys.executable, "-m", "prefect", "deployment", "run", "go-live/v1.4.0")).group()
    refused = _wait(prefect, second, _final)
    assert refused.state.name == "Refused"
    assert "is already being" in refused.state.message and "flow run 'go-live v1.4.0'" in refused.state.message
    assert first in refused.state.message

    for stage in STAGES:
        assert not _final(_paused_stage(prefect, first)), f"ended before stage {stage}"
        assert _approve(prefect, first, "alice") == 0
    live = _wait(prefect, first, _final)
    assert (live.state.type.value, live.state.name) == ("COMPLETED", "Live"), live.state.message
    folder = tmp_path / "evidence" / "v1.4.0"
    assert yaml.safe_load((folder / layout.approval(100)).read_text())["approver"] == "alice"
    assert _remote_tag(repo, "v1.4.0") == "tag Canary successful: 8/8 signals pass"
    assert [n for n, i in sorted(github.items.items()) if "hold-for-canary" in i.labels] == [4, 5]

    _assert_mondays_at_ten(prefect, "Europe/Istanbul")  # by now the scheduler has run
    keys = [f"stage-{p}-v1-4-0" for p in STAGES] + ["war-room-v1-4-0", "release-v1-4-0",
                                                                  "evidence-v1-4-0"]
    with _client(prefect) as client:
        from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

        artifacts = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=keys)))
    assert {a.key for a in artifacts} == set(keys)
    stage_table = max((a for a in artifacts if a.key == "stage-100-v1-4-0"), key=lambda a: a.created)  # the latest
    assert "api_p95_ms" in str(stage_table.data) and "PROCEED" in stage_table.description

    night = yaml.safe_load((folder / layout.FIRST_NIGHT_SCHEDULE).read_text())
    assert night["scheduled"] is True
    held = _wait(prefect, night["flow_run_id"], _final, timeout=120)
    assert held.state.name == "Held", held.state.message
    assert len(list(folder.glob(layout.FIRST_NIGHT_HOURS))) == 2
    assert (folder / layout.first_night_plot("1.4.0")).read_bytes().startswith(b"\x89PNG")
    assert "### Root cause" in (folder / layout.first_night_report("1.4.0")).read_text()

    back = UUID.search(_run(prefect, sys.executable, "-m", "prefect", "deployment", "run", "rollback/default",
                            "--param", "reason=drill from the UI", "--param", "stage=25")).group()
    rolled = _wait(prefect, back, _final)
    assert rolled.state.is_completed(), rolled.state.message
    assert rolled.name == "rollback v1.4.0 at 25%"
    assert sandbox.weight() == 0
    (record,) = folder.glob(layout.ROLLBACKS)
    assert "drill from the UI" in record.read_text()

    public_key = load_public_key(Path(signing_key["public_key_path"]).read_bytes())
    assert len([p for p in folder.iterdir() if p.is_file()]) >= 50
    assert verify_folder(folder, public_key).problems == []
