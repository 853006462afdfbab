"""Every bad setting is refused in one line naming the field and the rule; one row per input."""

from __future__ import annotations

import dataclasses
import math
import tempfile
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cli.main import main
from golive.policy import JudgePolicy
from golive.settings import (
    SECTIONS, FirstNightSettings, GameDaySettings, GitHubSettings, GoLiveSettings, RouterSettings, SettingsError,
    SigningSettings, load_settings,
)
from golive.signals import CATALOGUE, Signal
from golive.stage import SHADOW_STAGE
from tests.golive.hostile import FAST, json_values, text


BASE = {"release": "1.4.0"}


INF, NAN = math.inf, math.nan


def policy(**fields) -> dict:
    return {"policy": fields}


def process(**fields) -> dict:
    return {"process": fields}


def cluster_router(kind: str = "gateway-api", **kubernetes) -> dict:
    return {"target": {"router": {"kind": kind, "kubernetes": {"namespace": "shop", **kubernetes}}}}


SEMVER = "is not a SemVer 2.0 version (MAJOR.MINOR.PATCH[-pre][+build])"


ROWS = [
    # the release names a folder, a tag and a deployment: a version and nothing else
    ({"release": "1/../../../escaped"}, f"release: '1/../../../escaped' {SEMVER}"),
    ({"release": "1.4.0/../../.golive/keys"}, f"release: '1.4.0/../../.golive/keys' {SEMVER}"),
    ({"release": "1.4"}, f"release: '1.4' {SEMVER}"),
    ({"release": "v1.4.0"}, f"release: 'v1.4.0' {SEMVER}"),
    ({"release": "1.4.0\nweight after: 0"}, f"release: '1.4.0\\nweight after: 0' {SEMVER}"),
    ({"release": "01.4.0"}, f"release: '01.4.0' {SEMVER}"),
    ({"release": "1." + "0" * 200 + ".0"}, "release: '1.000000000000000000000000000000000000… is longer than 128 characters"),
    # signal overrides: typed, in range, from their enums, unique
    (policy(signals={"api_p95_ms": {"threshold": INF}}),
     "policy.signals.api_p95_ms.threshold: expected a finite number >= 0, got inf"),
    (policy(signals={"api_p95_ms": {"threshold": -5}}),
     "policy.signals.api_p95_ms.threshold: expected a finite number >= 0, got -5"),
    (policy(signals={"api_p95_ms": {"threshold": "abc"}}),
     "policy.signals.api_p95_ms.threshold: expected a finite number >= 0, got 'abc'"),
    (policy(signals={"api_p95_ms": {"threshold": NAN}}),
     "policy.signals.api_p95_ms.threshold: expected a finite number >= 0, got nan"),
    (policy(signals={"api_p95_ms": {"rule": "bogus"}}),
     "policy.signals.api_p95_ms.rule: expected one of max, below, max_ratio_to_baseline, got 'bogus'"),
    (policy(signals={"api_p95_ms": {"kind": "bogus"}}),
     "policy.signals.api_p95_ms.kind: expected one of quantile, ratio, gauge, rate, got 'bogus'"),
    (policy(signals={"api_p95_ms": {"name": "http_5xx_pct"}}),
     "policy.signals.api_p95_ms.name: 'http_5xx_pct' is already another signal's name"),
    (policy(signals={"api_p95_ms": {"name": "../p95"}}),
     "policy.signals.api_p95_ms.name: expected a name of letters, digits and _, got '../p95'"),
    (policy(signals={"api_p95_ms": {"colour": "red"}}), "policy.signals.api_p95_ms.colour: unknown field"),
    (policy(signals={"http_5xx_pct": {"total_query": None}}),
     "policy.signals.http_5xx_pct.bad_query: bad_query and total_query are given together or not at all"),
    (policy(signals={"csp_violations_per_min": {"browser_total_query": None}}),
     "policy.signals.csp_violations_per_min.browser_total_query: the browser check's three queries are given "
     "together or not at all"),
    (policy(signals={"csp_violations_per_min": {"browser_bad_query": "  "}}),
     "policy.signals.csp_violations_per_min.browser_bad_query: expected a PromQL query or null, got '  '"),
    (policy(shadow={"browser_pages_per_minute": 0}),
     "policy.shadow.browser_pages_per_minute: Input should be greater than 0"),
    ({"target": {"browser_pages": ["app"]}},
     "target.browser_pages.0: String should match pattern '^/[^\\s]*$'"),
    (policy(signals={"api_p95_ms": {"request_derived": "yes"}}),
     "policy.signals.api_p95_ms.request_derived: expected true or false, got 'yes'"),
    (policy(signals={"api_p95_ms": 5}),
     "policy.signals.api_p95_ms: expected a mapping of fields to override, or null to remove the signal"),
    # the judge's policy
    (policy(judge={"min_seconds": NAN}), "policy.judge.min_seconds: expected a finite number >= 0, got nan"),
    (policy(judge={"breach_alpha": 5}), "policy.judge.breach_alpha: expected a level in (0, 1), got 5"),
    (policy(judge={"deviation_alpha": INF}), "policy.judge.deviation_alpha: expected a level in (0, 1), got inf"),
    (policy(judge={"lean_alpha": 0}), "policy.judge.lean_alpha: expected a level in (0, 1), got 0"),
    (policy(judge={"min_intervals": 2.5}), "policy.judge.min_intervals: expected a whole number >= 1, got 2.5"),
    (policy(judge={"critical_ratio": 0.5}), "policy.judge.critical_ratio: expected a ratio >= 1, got 0.5"),
    (policy(judge={"level_comparison_max_percent": 150}),
     "policy.judge.level_comparison_max_percent: expected a percentage in [0, 100], got 150"),
    (policy(judge={"min_requests": True}), "policy.judge.min_requests: expected a finite number >= 0, got True"),
    # windows, budgets and tolerances
    (policy(dwell_seconds=INF), "policy.dwell_seconds: Input should be a finite number"),
    (policy(hold_budget_seconds=INF), "policy.hold_budget_seconds: Input should be a finite number"),
    (policy(weight_tolerance_points=INF), "policy.weight_tolerance_points: Input should be a finite number"),
    (policy(interval_seconds=NAN), "policy.interval_seconds: Input should be a finite number"),
    (process(first_night={"hour_seconds": INF}), "process.first_night.hour_seconds: Input should be a finite number"),
    # addresses: never with credentials
    ({"prometheus": {"url": "https://u:p@prometheus.internal"}},
     "prometheus.url: credentials in the URL are refused: name a Secret block instead"),
    ({"prometheus": {"url": "http://prometheus:99999"}},
     "prometheus.url: expected the URL's port to be a number from 1 to 65535"),
    ({"target": {"traffic_url": "http://router:abc/"}},
     "target.traffic_url: expected the URL's port to be a number from 1 to 65535"),
    (process(git={"remote": "--upload-pack=touch x"}),
     "process.git.remote: expected a git remote's name such as origin, got '--upload-pack=touch x'"),
    ({"target": {"canary_url": "ftp://canary"}}, "target.canary_url: expected an http:// or https:// URL with a host"),
    # the closing's tag message, checked at load rather than at the closing
    (process(tag_message="{nope}"),
     "process.tag_message: {nope} is not a field of the message (use {green}, {total}, {release})"),
    (process(tag_message="Canary {green"), "process.tag_message: 'Canary {green': expected '}' before end of string"),
    (process(tag_message="{green:>99999999999}"),
     "process.tag_message: {green}: a width or precision over 200 (a tag's subject is one line)"),
    (process(tag_message="{release:d}"),
     "process.tag_message: {release}: Unknown format code 'd' for object of type 'str'"),
    # numbers and switches given as such: a string or a bool is not read as a number, nor a number as a switch
    (policy(dwell_seconds="900"), "policy.dwell_seconds: Input should be a valid number"),
    (policy(dwell_seconds=True), "policy.dwell_seconds: Input should be a valid number"),
    (policy(readiness_failure_threshold=2.0), "policy.readiness_failure_threshold: Input should be a valid integer"),
    (policy(stages=[1, "5", 25, 50, 100]), "policy.stages.1: Input should be a valid integer"),
    (policy(stages=[True, 5, 25, 50, 100]), "policy.stages.0: Input should be a valid integer"),
    (policy(approve_each_stage="yes"), "policy.approve_each_stage: Input should be a valid boolean"),
    (policy(approve_each_stage=1), "policy.approve_each_stage: Input should be a valid boolean"),
    ({"prometheus": {"tls_verify": "false"}}, "prometheus.tls_verify: Input should be a valid boolean"),
    (process(first_night={"hours": "3"}), "process.first_night.hours: Input should be a valid integer"),
    (process(blast_radius_concurrency=True), "process.blast_radius_concurrency: Input should be a valid integer"),
    (process(signing={"required": "no"}), "process.signing.required: Input should be a valid boolean"),
    # upper bounds no real setting reaches
    (policy(dwell_seconds=10 ** 9), "policy.dwell_seconds: Input should be less than or equal to 86400"),
    (policy(approval_timeout_seconds=10 ** 9),
     "policy.approval_timeout_seconds: Input should be less than or equal to 604800"),
    (policy(rollback_budget_seconds=10 ** 6),
     "policy.rollback_budget_seconds: Input should be less than or equal to 3600"),
    (policy(weight_tolerance_points=101), "policy.weight_tolerance_points: Input should be less than or equal to 100"),
    (process(first_night={"hours": 10 ** 6}), "process.first_night.hours: Input should be less than or equal to 168"),
    (process(first_night={"hour_seconds": 10 ** 6}),
     "process.first_night.hour_seconds: Input should be less than or equal to 3600"),
    (process(game_day={"burst_requests": 10 ** 9}),
     "process.game_day.burst_requests: Input should be less than or equal to 100000"),
    (process(github={"repository": "a/b", "max_wait_seconds": 10 ** 9}),
     "process.github.max_wait_seconds: Input should be less than or equal to 3600"),
    # numbers too large for a float, named where they are
    (policy(dwell_seconds=10 ** 400), "policy.dwell_seconds: a number too large to be a setting"),
    (policy(judge={"min_intervals": 10 ** 400}), "policy.judge.min_intervals: a number too large to be a setting"),
    (policy(signals={"api_p95_ms": {"threshold": 10 ** 400}}),
     "policy.signals.api_p95_ms.threshold: a number too large to be a setting"),
    # the game day's folder stays under the evidence root
    (process(game_day={"folder": "../elsewhere"}),
     "process.game_day.folder: expected a folder inside process.evidence_root: relative, without `..`"),
    (process(game_day={"folder": "drills/../../x"}),
     "process.game_day.folder: expected a folder inside process.evidence_root: relative, without `..`"),
    (process(game_day={"folder": "/tmp/drills"}),
     "process.game_day.folder: expected a folder inside process.evidence_root: relative, without `..`"),
    (process(game_day={"folder": ""}),
     "process.game_day.folder: expected a folder inside process.evidence_root: relative, without `..`"),
    (process(game_day={"folder": "."}),
     "process.game_day.folder: expected a folder inside process.evidence_root: relative, without `..`"),
    # the judge's overrides and the signals' thresholds stay within what a scenario may hold
    (policy(judge={"min_requests": 1e300}), "policy.judge.min_requests: expected a number of at most 1e+12"),
    (policy(signals={"api_p95_ms": {"threshold": 1e15}}),
     "policy.signals.api_p95_ms.threshold: expected a number of at most 1e+12"),
    # a path the file system would cut short, or none at all
    (process(evidence_root="evidence\x00/elsewhere"), "process.evidence_root: a path cannot hold a NUL character"),
    (process(evidence_root=""), "process.evidence_root: String should have at least 1 character"),
    (process(signing={"key_path": "key.pem\x00"}), "process.signing.key_path: a path cannot hold a NUL character"),
    (process(git={"repo": "\x00"}), "process.git.repo: a path cannot hold a NUL character"),
    # a name that would break the line is escaped
    (policy(**{"dwell\nseconds": 1}), "policy.dwell\\nseconds: Extra inputs are not permitted"),
    (policy(signals={"api\rp95": {}}), "policy.signals.api\\rp95: unknown signal (known: api_p95_ms, http_5xx_pct, "
     "ws_staleness_s, risk_blocks_per_min, idempotency_conflict_pct, csp_violations_per_min, event_loop_p95_ms, "
     "gc_pause_avg_ms)"),
    (policy(judge={"min\nrequests": 1}), "policy.judge.min\\nrequests: unknown policy field"),
]


@pytest.mark.parametrize(("data", "error"), ROWS, ids=[r[1].split(":")[0] + f"-{i}" for i, r in enumerate(ROWS)])
def test_a_bad_setting_is_one_line_naming_the_field(data, error):
    with pytest.raises(SettingsError) as exc:
        load_settings({**BASE, **data})
    assert str(exc.value) == error
    assert "\n" not in str(exc.value)


@pytest.mark.parametrize("release", ["1.4.0", "0.0.0", "2.0.0-rc.1", "1.0.0-alpha.beta+exp.sha.5114f85", "10.20.30+build.7"])
def test_semver_versions_are_releases(release):
    assert load_settings({"release": release}).release == release


def test_a_release_folder_that_is_a_link_out_of_the_evidence_root_is_refused(tmp_path):
    root, elsewhere = tmp_path / "evidence", tmp_path / "keys"
    root.mkdir()
    elsewhere.mkdir()
    (root / "v1.4.0").symlink_to(elsewhere)
    with pytest.raises(SettingsError, match=r"^release: the folder .*v1\.4\.0 leaves process\.evidence_root"):
        load_settings({"release": "1.4.0", **process(evidence_root=str(root))})


def test_the_github_token_is_read_only_from_a_variable_named_for_one():
    github = {"repository": "owner/name"}
    for name in ("GH_TOKEN", "GH_ENTERPRISE_TOKEN", "GITHUB_PAT", "RELEASE_GITHUB_TOKEN"):
        assert load_settings({"release": "1.4.0", **process(github={**github, "token_env": name})}) \
            .process.github.token_env == name
    for name in ("GOLIVE_GPG_PASSPHRASE", "AWS_SECRET_ACCESS_KEY", "PREFECT_API_KEY", "TOKENS", "VAULT_TOKEN",
                 "AWS_SESSION_TOKEN", "CI_JOB_TOKEN", "ACTIONS_RUNTIME_TOKEN"):
        with pytest.raises(SettingsError, match=r"^process\.github\.token_env: expected the name of a variable "
                                                r"holding a GitHub token"):
            load_settings({"release": "1.4.0", **process(github={**github, "token_env": name})})


@pytest.mark.parametrize(("argv", "error"), [
    (["rollback", "--reason", "x"], "the following arguments are required: --release"),
    (["close"], "the following arguments are required: --release"),
    (["rollback", "--reason", "x", "--release", "1/../../x"], f"argument --release: '1/../../x' {SEMVER}"),
    (["flight-check", "--release", "1.4"], f"argument --release: '1.4' {SEMVER}"),
    (["deployment", "add", "1.5; rm"], f"argument release: '1.5; rm' {SEMVER}"),
])
def test_the_command_line_refuses_a_release_in_one_line_and_writes_nothing(argv, error, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1].endswith(error)
    assert list(tmp_path.iterdir()) == []


def test_settings_default_to_the_runbook():
    s = load_settings({"release": "1.4.0"})
    assert s.policy.stages == (1, 5, 25, 50, 100)
    assert (s.policy.dwell_for(25), s.policy.dwell_for(100), s.policy.interval_seconds,
            s.policy.hold_seconds) == (900, 1800, 60, 600)
    assert str(s.evidence_dir) == "evidence/v1.4.0"
    assert [s.policy.stage_plan(p).defers_to for p in (SHADOW_STAGE, 1, 5, 25)] == [1, 5, None, None]
    asked = load_settings({"release": "1.4.0", **policy(defer_insufficient_up_to_percent=0)})
    assert asked.policy.stage_plan(1).defers_to is None


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"release": "1.0.0", **policy(stages=[1, 50, 25, 100])}, "policy.stages: expected rising percentages"),
        ({"release": "1.0.0", **policy(stages=[1, 50])}, "policy.stages: the last stage must be 100"),
        ({"release": "1.0.0", **policy(dwell=3)}, "policy.dwell: Extra inputs are not permitted"),
        # The older flat settings: refused, saying where each moved.
        ({"release": "1.0.0", "dwell_seconds": 900}, "dwell_seconds: settings are four sections now; this one is "
                                                     "policy.dwell_seconds"),
        ({"release": "1.0.0", "prometheus_url": "http://127.0.0.1:9090"}, "this one is prometheus.url"),
        ({"release": "1.0.0", "kind": "sandbox"}, "kind: settings are four sections now; this one is target.router.kind"),
        ({"release": "1.0.0", "patience": 1}, "patience: Extra inputs are not permitted"),
        ({"release": "1.0.0", **policy(hold_seconds=100)},
         "policy.hold_seconds: 100 s is shorter than the judge's minimum"),
        ({"release": "1.0.0", **policy(judge={"patience": 1})}, "policy.judge.patience: unknown policy field"),
        ({"release": "1.0.0", **policy(defer_insufficient_up_to_percent=True)},
         "policy.defer_insufficient_up_to_percent: Input should be a valid integer"),
        ({"release": "1.0.0", **policy(signals={"latency": {"threshold": 3}})},
         "policy.signals.latency: unknown signal"),
        ({"release": "1.0.0", "target": {"router": {"kind": "gateway-api"}}},
         "target.router: the gateway-api router needs `kubernetes` settings"),
        ({"release": ""}, "release: '' is not a SemVer 2.0 version"),
        ({"release": "1.0.0", "target": {"router": {"mirror_routes": [{"methods": ["GET"], "path": "/a\n}"}]}}},
         "target.router.mirror_routes.0.path: expected / then letters, digits"),
        ({"release": "1.0.0", "target": {"router": {"mirror_routes": [{"methods": ["TRACE"], "path": "/a"}]}}},
         "target.router.mirror_routes.0.methods.0: Input should be 'GET', 'HEAD'"),
        ({"release": "1.0.0", "target": {"router": {"mirror_routes": []}}}, "target.router.mirror_routes: "),
        ({"release": "1.0.0", "target": {"router": {"kind": "gateway-api", "kubernetes": {},
                                                    "mirror_routes": [{"methods": ["GET"], "path": "/*"}]}}},
         "target.router.mirror_routes: the gateway-api router's mirror copies every request its route sends"),
        ({"release": "1.0.0", **cluster_router(shadow_service="spark-shadow")},
         "target.router.kubernetes.shadow_port: needed with shadow_service"),
        ({"release": "1.0.0", **cluster_router(shadow_service="spark-shadow", shadow_port="8081")},
         "target.router.kubernetes.shadow_port: Input should be a valid integer"),
        ({"release": "1.0.0", **cluster_router(shadow_service="spark-shadow", shadow_port=0)},
         "target.router.kubernetes.shadow_port: Input should be greater than or equal to 1"),
        ({"release": "1.0.0", **cluster_router(shadow_service="spark$request_uri;", shadow_port=8081)},
         "target.router.kubernetes.shadow_service: expected a Kubernetes name (lower-case letters, digits and -, "
         "at most 63)"),
        ({"release": "1.0.0", **cluster_router(shadow_service="spark-shadow", shadow_port=8081, namespace="Shop_1")},
         "target.router.kubernetes.namespace: expected a Kubernetes name (lower-case letters, digits and -, "
         "at most 63), got 'Shop_1'"),
        ({"release": "1.0.0", **cluster_router(ingress="Spark_1")},
         "target.router.kubernetes.ingress: expected a Kubernetes object's name"),
        ({"release": "1.0.0", "prometheus": {"traffic_total_query": ""}},
         "prometheus.traffic_total_query: String should have at least 1 character"),
        ({"release": "1.0.0", "process": {"notify_block": ""}}, "process.notify_block: String should have at least"),
        ({"release": "1.0.0", "policy": {"signals": None}}, "policy.signals: Input should be a valid dictionary"),
        ({"release": "1.0.0", "policy": {"signals": {1: {}}}}, "policy.signals.1: Input should be a valid string"),
        ({"release": "1.0.0", "process": {"signing": {"key_path": "/"}}},
         "process.signing.key_path: expected a key file's path, got '/'"),
        ({"release": "1.0.0", "process": {"signing": {"key_path": "keys/"}}},
         "process.signing.key_path: expected a key file's path, got 'keys/'"),
        ({"release": "1.0.0", **cluster_router(canary_deployment="../x")},
         "target.router.kubernetes.canary_deployment: expected a Kubernetes object's name (lower-case letters, digits, "
         "- and .), got '../x'"),
        ({"release": "1.0.0", **cluster_router(cluster_domain="cluster.local;")},
         "target.router.kubernetes.cluster_domain: expected a DNS domain"),
    ],
)
def test_bad_settings_name_the_field_in_one_line(data, message):
    with pytest.raises(SettingsError) as exc:
        load_settings(data)
    assert message in str(exc.value)
    assert "\n" not in str(exc.value)


@pytest.mark.parametrize("kind", ["ingress-nginx", "gateway-api"])
def test_a_cluster_router_runs_the_shadow_stage_only_with_a_shadow_service(kind):
    without = load_settings({"release": "1.4.0", **cluster_router(kind)})
    assert (without.shadow_runs, without.target.router.kubernetes.mirrors) == (False, False)
    assert without.planned_stages == (1, 5, 25, 50, 100)

    shadowed = load_settings({"release": "1.4.0",
                              **cluster_router(kind, shadow_service="spark-shadow", shadow_port=8081)})
    assert (shadowed.shadow_runs, shadowed.target.router.kubernetes.mirrors) == (True, True)
    assert shadowed.planned_stages[:2] == (SHADOW_STAGE, 1)

    switched_off = load_settings({"release": "1.4.0", "policy": {"shadow": {"enabled": False}},
                                  **cluster_router(kind, shadow_service="spark-shadow", shadow_port=8081)})
    assert switched_off.shadow_runs is False


def test_settings_from_yaml_with_overrides(tmp_path):
    path = tmp_path / "golive.yaml"
    path.write_text("release: '1.4.0'\npolicy:\n  interval_seconds: 30\n  signals:\n    api_p95_ms: {threshold: 250}\n")
    s = load_settings(path, release="1.5.0", policy={"interval_seconds": None, "hold_seconds": 400})
    assert (s.release, s.policy.interval_seconds, s.policy.hold_seconds) == ("1.5.0", 30, 400)
    assert {sig.name: sig.threshold for sig in s.policy.catalogue()}["api_p95_ms"] == 250


def test_missing_settings_file_is_one_line(tmp_path):
    with pytest.raises(SettingsError, match="No such file"):
        load_settings(tmp_path / "absent.yaml")


def _alias_bomb(levels: int = 8) -> str:
    lines = ["a0: &a0 [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]"]
    for level in range(1, levels):
        lines.append(f"a{level}: &a{level} [" + ", ".join([f"*a{level - 1}"] * 10) + "]")
    return "\n".join(lines) + "\n"


def _deep_signals(depth: int) -> str:
    inner = "1"
    for level in range(depth):
        inner = "{k%d: %s}" % (level, inner)
    return f"release: '1.4.0'\npolicy:\n  signals:\n    api_p95_ms: {inner}\n"


@pytest.mark.parametrize(("content", "error"), [
    (b"policy:\n  dwell_seconds: \xff\n", "golive.yaml: not UTF-8 text (byte 25)"),
    (b"[" * 100000, "golive.yaml: nested too deeply"),
    (b"- " * 20000 + b"1", "golive.yaml: nested too deeply"),
    (_deep_signals(30).encode(), "policy.signals.api_p95_ms.k29.k28.k27.k26.k25.k24.k23.k22.k21.k20.k19.k18.k17: "
                                 "nested too deeply (settings go 16 levels deep at most)"),
    (_alias_bomb().encode(), "settings: more than 10000 values (YAML aliases repeating one?)"),
    (b"policy: [unclosed\n",
     "golive.yaml: invalid YAML at line 2 column 1 (expected ',' or ']', but got '<stream end>')"),
    (b"policy:\n\tdwell_seconds: 1\n", "golive.yaml: invalid YAML at line 2 column 1 (found character '\\\\t' that "
                                      "cannot start any token)"),
    (b"# " + b"x" * (1 << 20) + b"\n", "golive.yaml: larger than 1024 KiB, not a settings file"),
    (b"!!python/object:os.system {}\n", "golive.yaml: invalid YAML at line 1 column 1 (could not determine a "
                                        "constructor for the tag 'tag:yaml.org,2002:python/object:os.system')"),
])
def test_a_settings_file_that_cannot_be_settings_is_one_line(tmp_path, content, error):
    path = tmp_path / "golive.yaml"
    path.write_bytes(content)
    with pytest.raises(SettingsError) as exc:
        load_settings(path, release="1.4.0")
    assert str(exc.value).removeprefix(f"{tmp_path}/") == error


def test_blocks_apply_refuses_a_file_of_bad_bytes_in_one_line(tmp_path, capsys):
    path = tmp_path / "golive.yaml"
    path.write_bytes(b"\xfe\xff")
    assert main(["blocks", "apply", str(path)]) == 2
    assert capsys.readouterr().err == f"golive: {path}: not UTF-8 text (byte 0)\n"


def _fields(model) -> list[str]:
    return list(model.model_fields)


_SECTION_FIELDS = {section: _fields(GoLiveSettings.model_fields[section].annotation) for section in SECTIONS}
_NESTED = {"process": {"first_night": _fields(FirstNightSettings), "game_day": _fields(GameDaySettings),
                       "signing": _fields(SigningSettings), "github": [*_fields(GitHubSettings)]},
           "target": {"router": _fields(RouterSettings)},
           # the policy's open mappings: the judge's overrides, and each signal's
           "policy": {"judge": [f.name for f in dataclasses.fields(JudgePolicy)],
                      **{f"signals.{s.name}": list(Signal.__dataclass_fields__) for s in CATALOGUE}}}


@st.composite
def hostile_settings(draw) -> dict:
    """Settings with hostile values in real fields (so the validators meet them), and stray keys."""
    data: dict = {"release": "1.4.0" if draw(st.booleans()) else draw(json_values)}
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        section = draw(st.sampled_from(SECTIONS))
        fields = data.setdefault(section, {})
        if not isinstance(fields, dict):
            continue
        nested = _NESTED.get(section, {})
        if nested and draw(st.booleans()):
            group = draw(st.sampled_from(sorted(nested)))
            place = fields
            for step in group.split("."):
                place = place.setdefault(step, {}) if isinstance(place, dict) else None
            if isinstance(place, dict):
                place[draw(st.sampled_from(nested[group]) | text)] = draw(json_values)
        else:
            fields[draw(st.sampled_from(_SECTION_FIELDS[section]) | text)] = draw(json_values)
    if draw(st.booleans()):
        data[draw(text)] = draw(json_values)
    return data


@FAST
@given(data=hostile_settings())
def test_any_settings_mapping_loads_or_is_refused_in_one_line(data):
    try:
        load_settings(data)
    except SettingsError as exc:
        assert "\n" not in str(exc) and "\r" not in str(exc)


@FAST
@given(content=st.one_of(st.binary(max_size=200),
                         st.text(max_size=200).map(lambda t: t.encode("utf-8", "surrogatepass"))))
def test_any_settings_file_loads_or_is_refused_in_one_line(content):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "golive.yaml"
        path.write_bytes(content)
        try:
            load_settings(path, release="1.4.0")
        except SettingsError as exc:
            assert "\n" not in str(exc) and "\r" not in str(exc)
