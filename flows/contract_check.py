"""contract-spot-check: a sample of the API, valid and invalid calls, against the OpenAPI
document the canary publishes (or, on a real system, the team's configured contract test)."""

from __future__ import annotations

import uuid

from prefect import flow

from golive import layout
from golive.contract import SPOT_CHECKS, response_problems
from golive.settings import GoLiveSettings
from golive.signals import DRILL_MARK
from tasks.evidence import ReleaseFolder
from tasks.faults import run_command
from tasks.service import call_api, fetch_openapi

@flow(name="contract-spot-check", flow_run_name="contract spot check")
def contract_check(settings: GoLiveSettings, folder: str) -> dict:
    if settings.process.game_day.contract_command:
        run = run_command(settings.process.game_day.contract_command)
        result = {"ok": run["exit_code"] == 0, "run": run, "summary": f"exit {run['exit_code']}",
                  "failures": [] if run["exit_code"] == 0 else [f"the contract test exited {run['exit_code']}"]}
    else:
        document = fetch_openapi(settings.target.canary_url)
        calls, failures = [], []
        for what, method, path, body, key, expected in SPOT_CHECKS:
            headers = dict(DRILL_MARK, **({"X-Idempotency-Key": f"contract-{uuid.uuid4().hex}"} if key else {}))
            answer = call_api(settings.target.canary_url, method, path, body, headers)
            problems = response_problems(document, method, path, answer["status"], answer["body"], expected)
            calls.append({"what": what, **answer, "expected": expected, "problems": problems})
            failures += problems
        result = {"ok": not failures, "failures": failures, "calls": calls,
                  "summary": f"{len(calls)} calls against the contract of {document['info']['version']}, "
                             f"{len(failures)} problems"}
    result["inputs"] = {"url": settings.target.canary_url, "checks": [c[0] for c in SPOT_CHECKS]}
    evidence = ReleaseFolder(path=folder, signing=settings.process.signing)
    evidence.record(layout.CONTRACT_CHECK, result)
    evidence.seal("contract-spot-check")
    return result
