"""The Prefect path for real: a local Prefect server (on PostgreSQL where it is installed), a
process worker and the session's sandbox (the stack from conftest). The README's Prefect
commands run once, as written, and the tests read what they left: the run Live and its
artifacts, the tag, the first night run by its deployment, the rollback drill, the evidence, the
run as the Prefect UI shows it in a real browser; and the golive-k8s pool's template."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from golive import layout
from tests.deployments._prefect import ROOT, client as _client, final, wait

pytestmark = pytest.mark.sandbox

CHROMIUM = "/usr/bin/chromium"
BROWSER_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


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


def _latency_only_rollback(folder: Path) -> str | None:
    """The stage the go-live rolled back at, when the judge found nothing but API latency off in
    any of its looks (the machine too busy for the sandbox's p95 to stay under 200 ms), else None."""
    from golive.warroom import SIGNAL_COLUMNS

    try:
        rows = json.loads((folder / layout.WAR_ROOM_JSON).read_text())
    except (OSError, ValueError):
        return None
    rolled_back = [row for row in rows if row.get("Decision") == "Rollback"]
    if not rolled_back:
        return None
    stage = rolled_back[-1].get("Stage")
    off = {column for row in rows if row.get("Stage") == stage for column, cell in (row.get("cells") or {}).items()
           if cell.get("verdict") not in ("pass", "within noise", "insufficient", "no data")}
    latency = SIGNAL_COLUMNS["api_p95_ms"]
    return f"rolled back at {stage} on {latency} alone" if off == {latency} else None


def _too_busy(folder: Path) -> str | None:
    """Why the README's go-live ended short on latency alone (this machine too busy), else None."""
    if failed := _latency_only_no_go(folder):
        return f"the flight check found this machine too busy: {failed}"
    if failed := _latency_only_rollback(folder):
        return f"this machine was too busy for the healthy canary: {failed}"
    return None


def _ended_runs(env: dict) -> str:
    """Each run's name, state and message: why a command that watched a run failed."""
    with _client(env) as client:
        runs = client.read_flow_runs(limit=20)
    return "\n".join(f"{r.name}: {r.state_name}: {r.state.message if r.state else ''}" for r in runs)


@dataclass
class ReadmeRun:
    done: subprocess.CompletedProcess
    checkout: Path
    folder: Path  # the release's evidence
    go_live_id: str  # the go-live run that ended Live


@pytest.fixture(scope="module")
def readme_run(prefect_stack, prefect, sandbox, tmp_path_factory) -> ReadmeRun:
    """The README's Prefect path, pasted into a shell in a folder that looks like the checkout:
    `golive server up` and `golive sandbox up` find the session's server and sandbox running and
    use them (the folders come from the environment), the rest runs as it would for a new user.
    Returned once the first night that follows the go-live has ended and no run is active."""
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName, FlowRunFilterState, \
        FlowRunFilterStateName

    stack, _env = prefect_stack
    checkout = tmp_path_factory.mktemp("readme") / "checkout"
    checkout.mkdir()
    for name in (".venv", "prefect.yaml", "flows"):
        (checkout / name).symlink_to(ROOT / name)
    _settle(prefect)
    sandbox.set_weight(0)
    env = {**prefect, "PWD": str(checkout), "GOLIVE_SERVER_DIR": str(stack.folder),
           "GOLIVE_SANDBOX_DIR": str(sandbox.workdir)}
    done = subprocess.run(["bash", "-euxo", "pipefail", "-c", _readme_block("## The Prefect path")], cwd=checkout,
                          env=env, capture_output=True, text=True, timeout=600)
    folder = checkout / "evidence" / "v1.4.0"
    if done.returncode != 0 and (busy := _too_busy(folder)):
        sandbox.set_weight(0)
        pytest.xfail(f"the README's commands ran; {busy}")
    assert done.returncode == 0, f"{_ended_runs(prefect)}\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
    # The first night follows the go-live on the server, an hour a run; the folder is whole once
    # the last hour has ended the night.
    night = yaml.safe_load((folder / layout.FIRST_NIGHT_SCHEDULE).read_text())
    wait(prefect, night["flow_run_id"], final, timeout=240)
    _settle(prefect)
    with _client(prefect) as client:
        live = client.read_flow_runs(flow_run_filter=FlowRunFilter(
            name=FlowRunFilterName(any_=["go-live v1.4.0"]), state=FlowRunFilterState(
                name=FlowRunFilterStateName(any_=["Live"]))))
    assert len(live) == 1, f"expected the README's go-live alone to be Live: {_ended_runs(prefect)}"
    return ReadmeRun(done, checkout, folder, str(live[0].id))


def test_the_session_server_runs_on_postgresql(prefect_stack):
    from cli.stack import LocalPostgres, StackError

    try:
        LocalPostgres.binaries()
    except StackError as exc:
        pytest.skip(f"the session server runs on SQLite: {exc}")
    stack, _env = prefect_stack
    assert stack.state()["database"].startswith("postgresql (local")
    assert _postgres_rows(stack, "select count(*) from work_pool where name = 'golive-local'") == "1"


def test_the_readme_prefect_path_goes_live_closes_watches_the_night_and_drills_a_rollback(
        readme_run, prefect_stack, prefect, sandbox):
    """Live with its artifacts and the tag pushed, the first night run hour by hour by its
    deployment, `rollback/default` with the README's reason last, every file verified, and the
    run stored in the server's PostgreSQL where it runs on one."""
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    from golive.signing import load_public_key
    from golive.verify import verify_folder

    assert "Flow run finished successfully in 'Live'" in readme_run.done.stdout, readme_run.done.stdout[-3000:]
    assert sandbox.weight() == 0  # the README ends with a rollback
    folder = readme_run.folder
    config = yaml.safe_load((readme_run.checkout / "golive.yaml").read_text())
    stages = config["policy"].get("stages", [1, 5, 25, 50, 100])

    keys = [f"stage-{p}-v1-4-0" for p in stages] + ["war-room-v1-4-0", "release-v1-4-0", "evidence-v1-4-0"]
    with _client(prefect) as client:
        artifacts = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=keys)))
    assert {a.key for a in artifacts} == set(keys)
    stage_table = max((a for a in artifacts if a.key == "stage-100-v1-4-0"), key=lambda a: a.created)  # the latest
    assert "api_p95_ms" in str(stage_table.data) and "PROCEED" in stage_table.description
    assert _remote_tag(Path(config["process"]["git"]["repo"]), "v1.4.0") == "tag Canary successful: 8/8 signals pass"

    night = yaml.safe_load((folder / layout.FIRST_NIGHT_SCHEDULE).read_text())
    assert night["scheduled"] is True
    with _client(prefect) as client:
        last_hour = client.read_flow_run(night["flow_run_id"])
    assert last_hour.state.name == "Held", last_hour.state.message  # the night is over and sealed
    assert len(list(folder.glob(layout.FIRST_NIGHT_HOURS))) == config["process"]["first_night"]["hours"]
    assert (folder / layout.first_night_plot("1.4.0")).read_bytes().startswith(b"\x89PNG")
    assert "### Root cause" in (folder / layout.first_night_report("1.4.0")).read_text()

    (record,) = folder.glob(layout.ROLLBACKS)
    assert "rollback drill" in record.read_text()
    public_key = load_public_key((readme_run.checkout / ".golive" / "keys" / "signing_key.pub.pem").read_bytes())
    assert len([p for p in folder.iterdir() if p.is_file()]) >= 50
    assert verify_folder(folder, public_key).problems == []
    stored = _postgres_rows(prefect_stack[0], f"select state_name from flow_run where id = '{readme_run.go_live_id}'")
    assert stored in (None, "Live")


@pytest.fixture
def page():
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no browser: Debian's chromium is not installed ({CHROMIUM}); scripts/setup.sh installs it")
    sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed (pip install playwright)")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=BROWSER_FLAGS)
        try:
            yield browser.new_page(viewport={"width": 1400, "height": 1000})
        finally:
            browser.close()


def test_the_prefect_ui_shows_the_go_live_live_with_its_war_room(readme_run, prefect, page, tmp_path):
    """A real browser (Debian's chromium, driven by Playwright) on the server's own UI."""
    url = prefect["PREFECT_API_URL"].removesuffix("/api")
    page.goto(f"{url}/runs", wait_until="networkidle")
    page.get_by_text("go-live v1.4.0", exact=True).first.wait_for(timeout=60_000)

    page.goto(f"{url}/runs/flow-run/{readme_run.go_live_id}", wait_until="networkidle")
    page.get_by_text("go-live v1.4.0", exact=True).first.wait_for(timeout=30_000)
    page.get_by_text("Live", exact=True).first.wait_for(timeout=30_000)  # the state badge
    page.get_by_text("Artifacts", exact=True).first.click()  # the run's tab
    artifact = page.get_by_text("war-room-v1-4-0", exact=True).first
    artifact.wait_for(timeout=30_000)
    page.screenshot(path=str(tmp_path / "flow_run_artifacts.png"))
    artifact.click()
    page.get_by_text("Decision", exact=True).first.wait_for(timeout=30_000)  # the table's own column
    assert page.get_by_text("Proceed", exact=True).count() >= 1
    # The run it belongs to: the artifact's page names it once its run is read, after the table.
    page.get_by_text("go-live v1.4.0", exact=True).first.wait_for(timeout=30_000)


def test_the_kubernetes_pool_template_is_accepted_and_renders_a_job(prefect):
    """`prefect work-pool create golive-k8s --type kubernetes --base-job-template` on the session's
    server, and the Job prefect-kubernetes' worker makes from it: the image, the service account
    and namespace of rbac.yaml, the evidence claim mounted."""
    from prefect_kubernetes.worker import KubernetesWorkerJobConfiguration

    from tests.deployments._prefect import run as _run

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
