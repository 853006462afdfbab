"""The spark API's contract, as an OpenAPI 3.1 document the service serves at /openapi.json."""

from __future__ import annotations

_ERROR_DETAIL = {
    "type": "object", "required": ["detail"], "additionalProperties": False,
    "properties": {"detail": {"type": "array", "minItems": 1, "items": {
        "type": "object", "required": ["field", "error"], "additionalProperties": False,
        "properties": {"field": {"type": "string"}, "error": {"type": "string"}}}}},
}


def _json(schema: dict, description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def document(version: str, symbols: list[str], max_quantity: float) -> dict:
    seconds = {"type": "number", "minimum": 0}
    return {
        "openapi": "3.1.0",
        "info": {"title": "spark", "version": version},
        "paths": {
            "/api/exec/order": {"post": {
                "operationId": "placeOrder",
                "parameters": [{"name": "X-Idempotency-Key", "in": "header", "required": False,
                                "schema": {"type": "string", "minLength": 1, "maxLength": 128}}],
                "requestBody": {"required": True, "content": {"application/json": {"schema": {
                    "type": "object", "required": ["symbol", "side", "quantity"],
                    "properties": {"symbol": {"enum": symbols}, "side": {"enum": ["buy", "sell"]},
                                   "quantity": {"type": "number", "exclusiveMinimum": 0, "maximum": max_quantity}}}}}},
                "responses": {
                    "201": _json({"type": "object", "required": ["order_id", "status", "track", "version"],
                                  "properties": {"order_id": {"type": "integer"}, "status": {"const": "accepted"},
                                                 "track": {"enum": ["stable", "canary"]}, "version": {"type": "string"}}},
                                 "the order is stored and queued in the outbox"),
                    "403": _json({"type": "object", "required": ["error", "symbol"],
                                  "properties": {"error": {"const": "risk_blocked"}, "symbol": {"type": "string"}}},
                                 "the risk engine refused the order"),
                    "409": _json({"type": "object", "required": ["error", "idempotency_key"],
                                  "properties": {"error": {"const": "idempotency_conflict"},
                                                 "idempotency_key": {"type": "string"}}},
                                 "the idempotency key was used before"),
                    "422": _json(_ERROR_DETAIL, "invalid input, the field named"),
                },
            }},
            "/api/outbox/lag": {"get": {
                "operationId": "outboxLag",
                "parameters": [{"name": "window_s", "in": "query", "required": False,
                                "schema": {"type": "number", "exclusiveMinimum": 0, "maximum": 60}}],
                "responses": {
                    "200": _json({"type": "object",
                                  "required": ["p50", "p95", "p99", "max", "pending", "samples", "window_s"],
                                  "properties": {"p50": seconds, "p95": seconds, "p99": seconds, "max": seconds,
                                                 "pending": {"type": "integer", "minimum": 0},
                                                 "samples": {"type": "integer", "minimum": 0},
                                                 "window_s": {"type": "number"}}},
                                 "outbox publication lag over the window, seconds"),
                    "422": _json(_ERROR_DETAIL, "invalid window"),
                },
            }},
            "/version": {"get": {
                "operationId": "version",
                "responses": {"200": _json({"type": "object", "required": ["service", "track", "version"],
                                            "properties": {"service": {"const": "spark"},
                                                           "track": {"enum": ["stable", "canary"]},
                                                           "version": {"type": "string"}}},
                                           "which build answers")},
            }},
        },
    }
