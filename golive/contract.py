"""The contract spot check's rule: does a response match what the OpenAPI document promises?

The document's schemas are JSON Schema (OpenAPI 3.1), checked with `jsonschema`; a status the
operation does not declare is itself a breach of contract.
"""

from __future__ import annotations

from collections.abc import Mapping

from jsonschema import Draft202012Validator

__all__ = ["SPOT_CHECKS", "response_problems"]

# (what, method, path, body, headers, expected status): a sample of the API, valid and invalid.
SPOT_CHECKS = (
    ("version", "GET", "/version", None, None, 200),
    ("outbox lag", "GET", "/api/outbox/lag?window_s=5", None, None, 200),
    ("order placed", "POST", "/api/exec/order", {"symbol": "BTCUSD", "side": "buy", "quantity": 0.01}, "fresh-key", 201),
    ("order refused: bad side", "POST", "/api/exec/order", {"symbol": "BTCUSD", "side": "hold", "quantity": 1}, None, 422),
    ("outbox lag refused: bad window", "GET", "/api/outbox/lag?window_s=0", None, None, 422),
)


def response_problems(document: Mapping, method: str, path: str, status: int, body: object,
                      expected_status: int) -> list[str]:
    """Every way the response breaks the contract (empty when it keeps it)."""
    where = f"{method} {path}"
    operation = document.get("paths", {}).get(path.split("?", 1)[0], {}).get(method.lower())
    if operation is None:
        return [f"{where}: not in the contract"]
    problems = []
    if status != expected_status:
        problems.append(f"{where}: answered {status}, expected {expected_status}")
    declared = operation.get("responses", {}).get(str(status))
    if declared is None:
        return problems + [f"{where}: status {status} is not declared"]
    schema = declared.get("content", {}).get("application/json", {}).get("schema")
    if schema is not None:
        for error in sorted(Draft202012Validator(schema).iter_errors(body), key=lambda e: list(e.path)):
            at = "/".join(str(p) for p in error.path) or "(body)"
            problems.append(f"{where} {status}: {at}: {error.message}")
    return problems
