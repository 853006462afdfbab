"""The Prefect path for real: a local Prefect server (on PostgreSQL where it is installed), a
process worker, `prefect deploy` and `prefect deployment run`, on the sandbox (the session's
stack, from conftest); the README's commands as written; the golive-k8s pool's template."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from cli.demo import demo_settings
from golive import layout
from golive.settings import merge_settings
from sandbox.release_repo import create_release_repo
from tests.deployments._prefect import (ROOT, UUID, client as _client, final as _final, run as _run, wait as _wait,
                                       wait_for)

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


def _paused_stage(env: dict, parent_id: str, seen: set[str] = frozenset()):
    """The parent's paused stage run not in `seen` (a stage just resumed may still read paused), once
    there is one; None if the parent ended first."""
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterParentFlowRunId

    found = {}

    def paused(_run) -> bool:
        with _client(env) as client:
            children = client.read_flow_runs(flow_run_filter=FlowRunFilter(
                parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[parent_id])))
        found["stage"] = next((c for c in children if c.state and c.state.is_paused() and str(c.id) not in seen), None)
        return found["stage"] is not None

    ended = _final(_wait(env, parent_id, lambda run: paused(run) or _final(run)))
    return None if ended else found["stage"]


def _settle(env: dict, timeout: float = 240) -> None:
    """Cancel go-live runs an earlier test left running, then wait until no run is active (the
    cancels' rollbacks included): the next go-live needs its release's lock and weight 0."""
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterState, FlowRunFilterStateType
    from prefect.client.schemas.objects import StateType
    from prefect.states import Cancelling

    active = FlowRunFilter(state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[
        StateType.PENDING, StateType.RUNNING, StateType.PAUSED, StateType.CANCELLING])))
    deadline = time.monotonic() + timeout
    with _client(env) as client:
        for run in client.read_flow_runs(flow_run_filter=active):
            if run.name.startswith("go-live "):
                client.set_flow_run_state(run.id, Cancelling(), force=True)
        while (runs := client.read_flow_runs(flow_run_filter=active)) and time.monotonic() < deadline:
            time.sleep(1)
    assert not runs, f"still active after {timeout:g} s: {[r.name for r in runs]}"


def _remote_tag(repo: Path, tag: str) -> str:
    shown = subprocess.run(["git", "-C", str(repo.with_name("spark.git")), "tag", "-l",
                            "--format=%(objecttype) %(contents:subject)", tag], capture_output=True, text=True)
    return shown.stdout.strip()


def _postgres_rows(stack, query: str) -> str | None:
    """`query`'s answer from the stack's own PostgreSQL; None when the server runs on SQLite."""
    from cli.stack import LocalPostgres

    postgres = (stack.state() or {}).get("postgres")
    if postgres is None:
        return None
    done = subprocess.run([str(LocalPostgres.binaries() / "psql"), "-h", "127.0.0.1", "-p", str(postgres["port"]),
                           "-U", postgres["user"], "-d", postgres["database"], "-tAc", query],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_the_session_server_runs_on_postgresql(prefect_stack):
    from cli.stack import LocalPostgres, StackError

    try:
        LocalPostgres.binaries()
    except StackError as exc:
        pytest.skip(f"the session server runs on SQLite: {exc}")
    stack, _env = prefect_stack
    assert stack.state()["database"].startswith("postgresql (local")
    assert _postgres_rows(stack, "select count(*) from work_pool where name = 'golive-local'") == "1"


def test_a_release_the_prefect_way_from_deploy_to_the_first_night(prefect_stack, prefect, deployed, sandbox,
                                                                  signing_key, github, tmp_path):
    """`prefect deploy`, `prefect deployment run go-live/v1.4.0`, every stage approved with
    `golive approve`, a second run refused, Live with its artifacts, the tag pushed and the freeze
    lifted, the first night run by its deployment, and `rollback/default` at the end; every run
    stored in the server's PostgreSQL, where it runs on one."""
    from golive.signing import load_public_key
    from golive.verify import verify_folder

    settings = demo_settings("1.4.0", sandbox.golive_settings(), 12, 4, str(tmp_path / "evidence"))
    settings.pop("release")
    repo = create_release_repo(tmp_path / "release" / "spark", "1.4.0", "1.3.2")
    settings = merge_settings(settings, {"policy": {"stages": list(STAGES)}, "process": {
        "blast_radius_seconds": 2, "signing": {**signing_key, "sigstore": "off"}, "git": {"repo": str(repo)},
        "github": {"repository": github.repository, "api_url": github.url},
        "first_night": {"hours": 2, "hour_seconds": 4}}})
    config = tmp_path / "golive.yaml"
    config.write_text(yaml.safe_dump(settings))
    golive = [sys.executable, "-m", "cli"]
    _run(prefect, *golive, "blocks", "apply", str(config))
    assert all(name in deployed for name in ("go-live/v1.4.0", "rollback/default", "first-night/default",
                                             "game-day/monday"))

    first = UUID.search(_run(prefect, sys.executable, "-m", "prefect", "deployment", "run", "go-live/v1.4.0",
                             "--param", "approve_each_stage=true")).group()
    assert _paused_stage(prefect, first) is not None

    # A second run of the same release refuses, naming the first.
    second = UUID.search(_run(prefect, sys.executable, "-m", "prefect", "deployment", "run", "go-live/v1.4.0")).group()
    refused = _wait(prefect, second, _final)
    assert refused.state.name == "Refused"
    assert "is already being" in refused.state.message and "flow run 'go-live v1.4.0'" in refused.state.message
    assert first in refused.state.message

    approved: set[str] = set()
    for stage in STAGES:
        paused = _paused_stage(prefect, first, approved)
        assert paused is not None, f"ended before stage {stage}"
        assert _approve(prefect, str(paused.id), "alice") == 0
        approved.add(str(paused.id))
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
    assert _postgres_rows(prefect_stack[0], f"select state_name from flow_run where id = '{first}'") in (None, "Live")


def _readme_block(heading: str) -> str:
    """The first code block under a README heading, as written."""
    section = (ROOT / "README.md").read_text().split(f"\n{heading}\n", 1)[1]
    return re.search(r"^```\n(.*?)^```", section, re.S | re.M).group(1)


def _latency_only_no_go(folder: Path) -> str | None:
    """The flight check's refusals when each is about latency alone (a busy machine, not the path)."""
    try:
        failed = json.loads((folder / layout.FLIGHT_CHECK).read_text())["failed"]
    except (OSError, ValueError, KeyError):
        return None
    return "; ".join(failed) if failed and all("p95" in reason for reason in failed) else None


def test_the_readme_prefect_path_runs_as_written(prefect_stack, prefect, sandbox, tmp_path):
    """The README's Prefect path, pasted into a shell in a folder that looks like the checkout:
    `golive server up` and `golive sandbox up` find the session's server and sandbox running and
    use them (the folders come from the environment), the rest runs as it would for a new user."""
    from golive.signing import load_public_key
    from golive.verify import verify_folder

    stack, _env = prefect_stack
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    for name in (".venv", "prefect.yaml", "flows"):
        (checkout / name).symlink_to(ROOT / name)
    _settle(prefect)
    sandbox.set_weight(0)
    commands = _readme_block("## The Prefect path")
    env = {**prefect, "PWD": str(checkout), "GOLIVE_SERVER_DIR": str(stack.folder),
           "GOLIVE_SANDBOX_DIR": str(sandbox.workdir)}
    done = subprocess.run(["bash", "-euxo", "pipefail", "-c", commands], cwd=checkout, env=env, capture_output=True,
                          text=True, timeout=600)
    folder = checkout / "evidence" / "v1.4.0"
    if done.returncode != 0 and (failed := _latency_only_no_go(folder)):
        sandbox.set_weight(0)
        pytest.xfail(f"the README's commands ran; the flight check found this machine too busy: {failed}")
    assert done.returncode == 0, f"{done.stdout[-3000:]}{done.stderr[-3000:]}"
    assert "Flow run finished successfully in 'Live'" in done.stdout, done.stdout[-3000:]
    assert sandbox.weight() == 0  # the README ends with a rollback
    # The first night follows the go-live on the server; the folder is whole once it reported.
    wait_for(lambda: (folder / layout.first_night_report("1.4.0")).exists(), 240, "the first night's report", 1)
    _settle(prefect)
    public_key = load_public_key((checkout / ".golive" / "keys" / "signing_key.pub.pem").read_bytes())
    assert verify_folder(folder, public_key).problems == []


def test_the_kubernetes_pool_template_is_accepted_and_renders_a_job(prefect):
    """`prefect work-pool create golive-k8s --type kubernetes --base-job-template` on the session's
    server, and the Job prefect-kubernetes' worker makes from it: the image, the service account
    and namespace of rbac.yaml, the evidence claim mounted."""
    from prefect_kubernetes.worker import KubernetesWorkerJobConfiguration

    template = ROOT / "deploy" / "kubernetes" / "golive-k8s-pool.json"
    _run(prefect, sys.executable, "-m", "prefect", "work-pool", "create", "golive-k8s", "--type", "kubernetes",
         "--base-job-template", str(template), "--overwrite")
    with _client(prefect) as client:
        pool = client.read_work_pool("golive-k8s")
    assert (pool.type, pool.base_job_template) == ("kubernetes", json.loads(template.read_text()))

    configuration = asyncio.run(KubernetesWorkerJobConfiguration.from_template_and_values(
        pool.base_job_template, {}, client=object()))
    job = configuration.job_manifest
    pod = job["spec"]["template"]["spec"]
    account = next(d for d in yaml.safe_load_all((ROOT / "deploy" / "kubernetes" / "rbac.yaml").read_text())
                   if d["kind"] == "ServiceAccount")["metadata"]
    assert (pod["serviceAccountName"], job["metadata"]["namespace"]) == (account["name"], account["namespace"])
    (container,) = pod["containers"]
    assert container["image"] == "golive:0.1.0"
    claim = yaml.safe_load((ROOT / "deploy" / "kubernetes" / "evidence.yaml").read_text())["metadata"]["name"]
    assert pod["volumes"] == [{"name": "evidence", "persistentVolumeClaim": {"claimName": claim}}]
    assert container["volumeMounts"] == [{"name": "evidence", "mountPath": "/evidence"}]
