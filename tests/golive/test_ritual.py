"""The release ritual's documents: the provenance statement and the GO/NO-GO checklist."""

from __future__ import annotations

from golive.ritual import go_nogo_text, provenance_statement


def test_provenance_is_an_in_toto_statement_with_a_slsa_predicate():
    statement = provenance_statement("1.4.0", {"sbom_1.4.0.json": "ab" * 32}, "urn:golive:builder:ci", {"x": 1},
                                     {"url": "/srv/spark.git", "branch": "main", "commit": "c0ffee"},
                                     "2026-11-27T09:00:00Z", "2026-11-27T09:00:09Z", "run-1")
    assert statement["_type"] == "https://in-toto.io/Statement/v1"
    assert statement["predicateType"] == "https://slsa.dev/provenance/v1"
    assert statement["subject"] == [{"name": "sbom_1.4.0.json", "digest": {"sha256": "ab" * 32}}]
    (dependency,) = statement["predicate"]["buildDefinition"]["resolvedDependencies"]
    assert dependency == {"uri": "git+file:///srv/spark.git@refs/heads/main", "digest": {"gitCommit": "c0ffee"}}
    assert statement["predicate"]["buildDefinition"]["externalParameters"] == {"release": "1.4.0", "x": 1}


def test_the_go_nogo_checklist_is_go_only_when_every_line_is():
    go = go_nogo_text("1.4.0", "now", [("config", True, "valid"), ("router", True, "weight 0")])
    assert go.splitlines()[-1] == "DECISION: GO" and "[   GO] router  weight 0" in go
    nogo = go_nogo_text("1.4.0", "now", [("config", True, "valid"), ("canary_version", False, "serves 1.3.2")])
    assert nogo.splitlines()[-1] == "DECISION: NO-GO" and "[NO-GO] canary_version  serves 1.3.2" in nogo
