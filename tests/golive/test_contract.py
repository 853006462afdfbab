"""The contract check: a response outside its schema or status breaks it."""

from __future__ import annotations

from golive.contract import response_problems


DOCUMENT = {"paths": {"/version": {"get": {"responses": {"200": {"content": {"application/json": {"schema": {
    "type": "object", "required": ["version"], "properties": {"version": {"type": "string"}}}}}}}}}}}


def test_a_response_outside_its_schema_or_status_breaks_the_contract():
    assert response_problems(DOCUMENT, "GET", "/version", 200, {"version": "1.4.0"}, 200) == []
    assert response_problems(DOCUMENT, "GET", "/version", 200, {"version": 14}, 200) == [
        "GET /version 200: version: 14 is not of type 'string'"]
    assert response_problems(DOCUMENT, "GET", "/version", 500, None, 200) == [
        "GET /version: answered 500, expected 200", "GET /version: status 500 is not declared"]
    assert response_problems(DOCUMENT, "GET", "/health", 200, {}, 200) == ["GET /health: not in the contract"]
