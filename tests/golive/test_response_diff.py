"""The shadow stage's response comparison (after Diffy), on answers made here: noise between stable
and its secondary cancels a field, a difference beyond it is a finding with examples, a route with
too few requests is not judged, statuses are compared, and the report is JSON."""

from __future__ import annotations

import json
import random

import pytest

from golive.response_diff import binomial_sf, checked_responses, compare_responses, flatten_response


def _answer(request_id: str, body: object = None, *, status: int = 200, shadow: bool = False,
            route: str = "/api/quote/{symbol}", method: str = "GET", size: int = 10) -> dict:
    return {"request_id": request_id, "at_ns": 1, "method": method, "path": route, "route": route,
            "status": status, "shadow": shadow, "content_type": "application/json", "bytes": size,
            "sha256": "0" * 64, "json": body}


def _three(count: int, primary, secondary, candidate, **kwargs) -> tuple[list, list, list]:
    """`count` requests, each answered by the three with the bodies (or statuses) each makes of i."""
    ids = [f"req-{i}" for i in range(count)]
    return ([_answer(r, **primary(i), **kwargs) for i, r in enumerate(ids)],
            [_answer(r, **secondary(i), shadow=True, **kwargs) for i, r in enumerate(ids)],
            [_answer(r, **candidate(i), shadow=True, **kwargs) for i, r in enumerate(ids)])


def test_a_field_that_always_differs_between_stable_and_its_secondary_is_noise_and_no_finding():
    primary, secondary, candidate = _three(
        300,
        lambda i: {"body": {"symbol": "BTCUSD", "at_ns": 1000 + i}},
        lambda i: {"body": {"symbol": "BTCUSD", "at_ns": 2000 + i}},
        lambda i: {"body": {"symbol": "BTCUSD", "at_ns": 3000 + i}},
    )
    report = compare_responses(primary, secondary, candidate)
    assert report.findings == () and report.passed
    at = {d.field: d for d in report.fields}["body.at_ns"]
    assert (at.pairs, at.raw, at.noise) == (300, 300, 300)
    assert report.summary().startswith("no response difference beyond the noise in 300 requests compared on 1 routes")


def test_a_difference_beyond_the_noise_is_a_finding_with_the_primarys_and_the_candidates_values():
    rng = random.Random(3)
    moved = {i for i in range(400) if rng.random() < 0.02}  # 2 % noise on the price, the same for both copies

    def price(shift: float):
        return lambda i: {"body": {"symbol": "ETHUSD", "price": 3100.0 + (0.5 if i in moved else 0.0) + shift}}

    primary, secondary, candidate = _three(400, price(0.0), price(0.0), price(31.0))
    report = compare_responses(primary, secondary, candidate, margin_pct=1.0, min_pairs=50)
    assert [(f.diff.route, f.diff.field) for f in report.findings] == [("GET /api/quote/{symbol}", "body.price")]
    finding = report.findings[0]
    assert finding.diff.raw == 400 and finding.diff.p_value < 1e-6
    assert len(finding.examples) == 3
    assert finding.examples[0] == {"request_id": "req-0", "primary": 3100.0, "candidate": 3131.0}
    assert not report.passed and "GET /api/quote/{symbol} body.price: 100.0 % differ" in report.summary()
    evidence = json.loads(json.dumps(report.as_dict()))
    assert evidence["findings"][0]["field"] == "body.price" and evidence["passed"] is False


def test_a_findings_examples_keep_no_secret_a_response_carries():
    primary, secondary, candidate = _three(
        100,
        lambda i: {"body": {"session_token": f"live-{i}", "note": "a"}},
        lambda i: {"body": {"session_token": f"live-{i}", "note": "a"}},
        lambda i: {"body": {"session_token": f"canary-{i}", "note": "b"}},
    )
    report = compare_responses(primary, secondary, candidate)
    examples = {f.diff.field: f.examples[0] for f in report.findings}
    assert examples["body.session_token"] == {"request_id": "req-0", "primary": "***", "candidate": "***"}
    assert examples["body.note"] == {"request_id": "req-0", "primary": "a", "candidate": "b"}
    assert "live-" not in json.dumps(report.as_dict()) and "canary-" not in json.dumps(report.as_dict())


def test_a_rate_just_above_the_noise_by_less_than_the_margin_is_no_finding():
    primary, secondary, candidate = _three(
        1000,
        lambda i: {"body": {"n": 0}},
        lambda i: {"body": {"n": 1 if i % 20 == 0 else 0}},  # 5 % noise
        lambda i: {"body": {"n": 1 if i % 20 == 0 or i % 200 == 7 else 0}},  # 5.5 %
    )
    assert compare_responses(primary, secondary, candidate, margin_pct=1.0).findings == ()
    # With no margin the same half point is still within chance of the noise's rate.
    assert compare_responses(primary, secondary, candidate, margin_pct=0.0, alpha=0.01).findings == ()


def test_a_page_that_varies_at_random_in_every_version_is_no_finding_in_any_of_400_short_windows():
    """The sandbox's page carries a third-party script in about 15 % of answers of every version, so
    its size differs between any two of them about a quarter of the time. Over ~100 requests the
    noise rate is itself a rough estimate: judged as if it were exact, 4 of these 400 windows were
    findings; judged on the same requests' split (McNemar), none is."""
    windows_with_a_finding = 0
    for seed in range(400):
        rng = random.Random(seed)

        def page(_i: int) -> dict:
            return {"size": 160 if rng.random() < 0.15 else 100}

        primary, secondary, candidate = _three(106, page, page, page, route="/app")
        windows_with_a_finding += bool(compare_responses(primary, secondary, candidate, margin_pct=1.0,
                                                         min_pairs=50).findings)
    assert windows_with_a_finding == 0


def test_too_few_paired_requests_is_no_finding_however_they_differ():
    primary, secondary, candidate = _three(
        20, lambda i: {"body": {"price": 1.0}}, lambda i: {"body": {"price": 1.0}}, lambda i: {"body": {"price": 2.0}})
    report = compare_responses(primary, secondary, candidate, min_pairs=50)
    assert report.findings == ()
    assert report.too_few == ("GET /api/quote/{symbol}",)
    assert "1 routes under 50 requests not judged" in report.summary()
    assert len(compare_responses(primary, secondary, candidate, min_pairs=20).findings) == 1


def test_statuses_are_compared():
    primary, secondary, candidate = _three(
        200,
        lambda i: {"body": {"ok": True}},
        lambda i: {"body": {"ok": True}},
        lambda i: {"body": {"ok": True}, "status": 500 if i % 4 == 0 else 200},
    )
    report = compare_responses(primary, secondary, candidate)
    assert [f.diff.field for f in report.findings] == ["status"]
    assert report.findings[0].examples[0] == {"request_id": "req-0", "primary": 200, "candidate": 500}
    assert report.findings[0].diff.raw == 50


def test_only_requests_all_three_answered_are_compared_and_a_canary_answer_to_a_user_is_not_a_copy():
    primary, secondary, candidate = _three(
        100, lambda i: {"body": {"v": 1}}, lambda i: {"body": {"v": 1}}, lambda i: {"body": {"v": 2}})
    del secondary[:40]
    for answer in candidate[40:70]:
        answer["shadow"] = False  # the canary answering users itself (weight above 0), not a copy
    report = compare_responses(primary, secondary, candidate, min_pairs=10)
    assert report.routes == {"GET /api/quote/{symbol}": 30}
    assert report.counts == {"primary": 100, "secondary": 60, "candidate": 70}


def test_a_field_only_the_candidate_has_differs_and_an_ignored_field_is_not_compared():
    primary, secondary, candidate = _three(
        100,
        lambda i: {"body": {"v": 1, "version": "1.3.2"}},
        lambda i: {"body": {"v": 1, "version": "1.3.2"}},
        lambda i: {"body": {"v": 1, "version": "1.4.0", "extra": True}},
    )
    found = compare_responses(primary, secondary, candidate)
    assert sorted(f.diff.field for f in found.findings) == ["body.extra", "body.version"]
    assert found.findings[0].examples[0]["primary"] == "<absent>"
    assert [f.diff.field for f in compare_responses(primary, secondary, candidate,
                                                    ignored_fields=("version",)).findings] == ["body.extra"]


def test_a_body_that_is_not_json_is_compared_by_type_size_and_digest():
    flat = flatten_response({**_answer("r"), "json": None, "content_type": "text/html", "bytes": 80,
                             "sha256": "ab" * 32})
    assert flat == {"status": 200, "content_type": "text/html", "bytes": 80, "sha256": "ab" * 32}
    nested = flatten_response(_answer("r", {"detail": [{"field": "symbol"}], "empty": {}}))
    assert nested == {"status": 200, "body.detail[]": 1, "body.detail[0].field": "symbol", "body.empty": {}}


def test_routes_are_kept_apart_by_method_and_route():
    quotes = _three(60, lambda i: {"body": {"p": 1}}, lambda i: {"body": {"p": 1}}, lambda i: {"body": {"p": 1}})
    orders = _three(60, lambda i: {"body": {"p": 1}}, lambda i: {"body": {"p": 1}}, lambda i: {"body": {"p": 2}},
                    route="/api/exec/order", method="POST")
    for group in orders:
        for answer in group:
            answer["request_id"] += "-order"
    report = compare_responses(*(q + o for q, o in zip(quotes, orders)))
    assert report.routes == {"GET /api/quote/{symbol}": 60, "POST /api/exec/order": 60}
    assert [(f.diff.route, f.diff.field) for f in report.findings] == [("POST /api/exec/order", "body.p")]


def test_the_binomial_tail():
    assert binomial_sf(0, 10, 0.3) == 1.0
    assert binomial_sf(11, 10, 0.3) == 0.0
    assert binomial_sf(10, 10, 0.5) == pytest.approx(0.5 ** 10)
    assert binomial_sf(1, 10, 0.1) == pytest.approx(1 - 0.9 ** 10)
    assert binomial_sf(3, 3, 0.0) == 0.0


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"margin_pct": 100}, "margin_pct"), ({"margin_pct": -1}, "margin_pct"),
    ({"min_pairs": 0}, "min_pairs"), ({"min_pairs": True}, "min_pairs"), ({"alpha": 1.0}, "alpha"),
])
def test_thresholds_out_of_range_are_refused_naming_the_field(kwargs, field):
    with pytest.raises(ValueError, match=f"^{field}: expected "):
        compare_responses([], [], [], **kwargs)


@pytest.mark.parametrize(("answer", "field"), [
    ([], "expected a JSON object"),
    ({"clock": "wall", "now_ns": 1, "responses": []}, "clock"),
    ({"clock": "monotonic_ns", "now_ns": "1", "responses": []}, "now_ns"),
    ({"clock": "monotonic_ns", "now_ns": 1, "responses": {}}, "responses"),
    ({"clock": "monotonic_ns", "now_ns": 1, "responses": [{"request_id": "r"}]}, "responses[0].at_ns: missing"),
    ({"clock": "monotonic_ns", "now_ns": 1, "responses": [{**_answer("r"), "status": "200"}]}, "responses[0].status"),
    ({"clock": "monotonic_ns", "now_ns": 1, "responses": [{**_answer("r"), "shadow": 1}]}, "responses[0].shadow"),
    ({"clock": "monotonic_ns", "now_ns": 1, "responses": [{**_answer(""), "shadow": True}]},
     "responses[0].request_id"),
])
def test_an_answer_of_another_shape_is_refused_in_one_line_naming_the_field(answer, field):
    with pytest.raises(ValueError, match="^http://s/__golive/responses: ") as refused:
        checked_responses(answer, "http://s/__golive/responses")
    assert field in str(refused.value) and "\n" not in str(refused.value)
    good = {"clock": "monotonic_ns", "now_ns": 5, "responses": [_answer("r")]}
    assert checked_responses(good, "w") is good
