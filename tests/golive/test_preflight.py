"""The preflight's rules: a test per rule, from what a check saw to GO or NO-GO."""

from __future__ import annotations

import json

from golive.models import Check, GitState, WeightReading
from golive.preflight import (config_check, git_checks, promql_check, router_check, scrape_targets_check,
                              signing_key_check, summary, traffic_check)
from golive.settings import load_settings


def _git(**changes) -> GitState:
    facts = dict(repo=".", commit="c0ffee", branch="main", remote_url="/srv/spark.git", dirty=[], tag="v1.4.0",
                 tag_local=False, tag_remote=False)
    return GitState(**{**facts, **changes})


def test_git_checks_want_a_clean_tree_and_no_release_tag_anywhere():
    assert [c.ok for c in git_checks(_git())] == [True, True]
    dirty, _ = git_checks(_git(dirty=["service.py"]))
    assert (dirty.ok, dirty.detail) == (False, "1 uncommitted: service.py")
    _, tagged = git_checks(_git(tag_remote=True))
    assert (tagged.ok, tagged.detail) == (False, "v1.4.0 already exists on the remote")
    skipped = git_checks(None, configured=False)
    assert all(c.ok and c.skipped for c in skipped)


def test_the_router_must_start_at_weight_zero():
    assert router_check(WeightReading(in_force=0, at=0)).ok
    assert router_check(WeightReading(in_force=5, at=0)).detail.startswith(
        "weight 5 in force, expected 0: the canary still holds users (a go-live that died?). Roll it back with")
    assert router_check(None, "connection refused").detail == "unreachable: connection refused"
    pinless = router_check(WeightReading(in_force=0, at=0), pin_problem="target.router.canary_pin_file: No such file")
    assert not pinless.ok and pinless.detail == "target.router.canary_pin_file: No such file"


def test_one_failed_check_or_an_overrun_budget_is_no_go():
    checks = [Check(name="config", ok=True, detail="valid"), Check(name="canary_version", ok=False, detail="serves 1.3.2")]
    result = summary(checks, 3.0, 90)
    assert (result["decision"], result["failed"]) == ("NO-GO", ["canary_version"])
    slow = summary(checks[:1], 95.0, 90)
    assert (slow["decision"], slow["reasons"]) == ("NO-GO", ["budget: took 95 s of 90 s"])


def test_the_config_check_records_the_judges_policy_as_json():
    check = config_check(load_settings({"release": "1.4.0", "policy": {"judge": {"min_intervals": 4}}}).policy)
    assert check.ok and check.facts["judge_policy"]["min_intervals"] == 4
    assert json.loads(check.model_dump_json())["facts"]["judge_policy"]["min_requests"] is None


def test_a_signals_query_must_answer_a_number():
    queries = {"value": "q"}
    ok = promql_check("api_p95_ms", "canary", 30, queries, {"value": 141.0})
    assert (ok.name, ok.ok, ok.detail) == ("promql_api_p95_ms_canary", True, "api_p95_ms[canary] = 141")
    empty = promql_check("api_p95_ms", "stable", 30, queries, {"value": None})
    assert not empty.ok and empty.detail == "api_p95_ms[stable]: no value over 30 s"
    refused = promql_check("api_p95_ms", "canary", 30, queries, None, "bad_data")
    assert not refused.ok and refused.detail == "refused or unanswered: bad_data"


def test_every_scrape_target_must_be_up_and_there_must_be_one():
    up = {"scrapeUrl": "http://a/metrics", "health": "up"}
    down = {"scrapeUrl": "http://b/metrics", "health": "down", "lastError": "connection refused"}
    assert scrape_targets_check([up]).detail == "1 targets up"
    assert scrape_targets_check([up, down]).detail == "down: http://b/metrics (connection refused)"
    assert not scrape_targets_check([]).ok and scrape_targets_check([]).detail == "no active targets"
    assert not scrape_targets_check(None, "timed out").ok


def test_users_traffic_must_be_measured():
    queries = {"canary": "c", "total": "t"}
    assert traffic_check(30, queries, {"canary": 0.0, "total": 120.0}).ok
    for total in (0.0, None):
        assert traffic_check(30, queries, {"canary": 0.0, "total": total}).detail == "no user requests measured in 30 s"
    assert not traffic_check(30, queries, None, "refused").ok


def test_the_signing_key_must_load_and_verify():
    ok = signing_key_check("ab" * 32, "keys/signing_key.pem")
    assert ok.ok and ok.facts == {"keyid": "ab" * 32, "source": "keys/signing_key.pem"}
    failed = signing_key_check(None, None, "no signing key at keys/signing_key.pem")
    assert not failed.ok and failed.detail == "no signing key at keys/signing_key.pem"
