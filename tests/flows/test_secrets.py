"""Secrets stay secret: a go-live to Live, closing included, with a Prometheus password in a Secret
block and a GitHub token in the environment leaves neither in the evidence, in an artifact, in a
flow run's parameters or states, nor in a log line."""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from golive import layout
from golive.evidence import MANIFEST
from tests.flows.helpers import flow_settings

pytestmark = pytest.mark.sandbox

PROMETHEUS_PASSWORD = "prom-pw-Zq7XwB3kLq9sVn2"
GITHUB_TOKEN = "ghp_secretsTest_R4nd0mT0k3nUq81"
SECRET_BLOCK = "secrets-test-prometheus-auth"


def _forms(secret: str) -> list[str]:
    """The secret as it could be written: itself, and inside a basic-auth or DSSE base64."""
    forms = [secret, base64.b64encode(f"golive:{secret}".encode()).decode()]
    return forms + [base64.b64encode(secret.encode()).decode().rstrip("=")]


SECRETS = {"Prometheus password": _forms(PROMETHEUS_PASSWORD), "GitHub token": _forms(GITHUB_TOKEN)}


def _found_in(text: str) -> list[str]:
    return [name for name, forms in SECRETS.items() if any(form in text for form in forms)]


def _dsse_payloads(data: object) -> Iterator[str]:
    """Signed envelopes carry their statement base64-encoded: decoded, so it is read too."""
    if isinstance(data, dict):
        for key, value in data.items():
            if key == "payload" and isinstance(value, str):
                try:
                    yield base64.b64decode(value).decode(errors="replace")
                except ValueError:
                    pass
            else:
                yield from _dsse_payloads(value)
    elif isinstance(data, list):
        for item in data:
            yield from _dsse_payloads(item)


def _evidence_texts(root: Path) -> Iterator[tuple[str, str]]:
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        text = path.read_bytes().decode(errors="replace")
        yield str(path.relative_to(root)), text
        if path.suffix == ".json":
            try:
                data = json.loads(text)
            except json.JSONDecodeError:
                continue
            for payload in _dsse_payloads(data):
                yield f"{path.relative_to(root)} (signed payload)", payload


def _every(read: Callable[..., list], **kwargs) -> list:
    """Every object a client's read_* call lists, page by page."""
    found, offset = [], 0
    while True:
        page = read(limit=200, offset=offset, **kwargs)
        found += page
        if len(page) < 200:
            return found
        offset += 200


def _prefect_texts() -> Iterator[tuple[str, str]]:
    from prefect import get_client
    from prefect.client.schemas.sorting import LogSort

    with get_client(sync_client=True) as client:
        for artifact in _every(client.read_artifacts):
            yield f"artifact {artifact.key}", json.dumps([artifact.data, artifact.description], default=str)
        for run in _every(client.read_flow_runs):
            yield f"flow run {run.name} parameters", json.dumps(run.parameters, default=str)
            for state in client.read_flow_run_states(run.id):
                yield f"flow run {run.name} state {state.name}", f"{state.name} {state.message}"
        for task_run in _every(client.read_task_runs):
            state = task_run.state
            yield f"task run {task_run.name}", f"{task_run.name} {state.message if state else ''}"
        for log in _every(client.read_logs, sort=LogSort.TIMESTAMP_ASC):
            yield f"server log of {log.name}", log.message


@pytest.fixture
def prometheus_auth_block():
    from prefect.blocks.system import Secret

    Secret(value={"username": "golive", "password": PROMETHEUS_PASSWORD}).save(SECRET_BLOCK, overwrite=True)
    return SECRET_BLOCK


def test_a_go_live_to_live_leaves_no_secret_anywhere(sandbox, canary_weight, signing_key, github, prometheus_auth_block,
                                                     monkeypatch, tmp_path, caplog, capfd):
    from flows.go_live import go_live
    from golive.settings import load_settings
    from tasks.prometheus import _client

    github.token = GITHUB_TOKEN
    monkeypatch.setenv("GITHUB_TOKEN", GITHUB_TOKEN)
    settings = flow_settings(
        sandbox, signing_key, tmp_path, [100], prometheus={"auth_secret_block": prometheus_auth_block},
        process={"github": {"repository": github.repository, "api_url": github.url, "max_wait_seconds": 10}})
    assert _client(load_settings(settings).prometheus).auth == ("golive", PROMETHEUS_PASSWORD)  # basic auth only

    caplog.set_level(logging.INFO)
    state = go_live(settings["release"], settings=settings, return_state=True)

    out, err = capfd.readouterr()
    places = [*_evidence_texts(tmp_path), *_prefect_texts(), ("captured log records", caplog.text),
              ("captured stdout", out), ("captured stderr", err)]
    leaks = [f"{where}: {name}" for where, text in places for name in _found_in(text)]
    assert leaks == []
    assert state.name == "Live", state.message  # so the closing ran: the tag pushed, the freeze lifted
    assert github.calls and (tmp_path / "v1.4.0" / layout.SETTINGS).exists()
    looked_at = {where.split(" ")[0] for where, _ in places} | {Path(where).name for where, _ in places}
    assert {"artifact", "flow", "task", "server", layout.SETTINGS, MANIFEST} <= looked_at
    assert any(where.startswith("artifact evidence-head-") for where, _ in places)
    assert any(where.endswith("parameters") and SECRET_BLOCK in text for where, text in places)
