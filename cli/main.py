"""The `golive` command. Each subcommand imports what it needs, so `golive judge` stays light."""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from cli.prefect_env import ServerError
from golive import layout
from golive.validation import check_output_path, escape_line

__all__ = ["main"]


class UsageError(Exception):
    """A bad argument or input: one line on stderr, exit 2."""


def _judge_one(text: str, catalogue: tuple | None = None) -> dict:
    """One scenario's verdict; any input it cannot judge is one ScenarioError line, never a traceback."""
    from golive.judge import judge
    from golive.scenario import ScenarioError, parse_scenario

    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ScenarioError(f"scenario: invalid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    except RecursionError:
        raise ScenarioError("scenario: invalid JSON (nested too deeply)") from None
    except ValueError:  # Python reads no integer of more digits than this
        raise ScenarioError(f"scenario: invalid JSON (a number of more than {sys.get_int_max_str_digits()} "
                            "digits)") from None
    scenario = parse_scenario(raw) if catalogue is None else parse_scenario(raw, catalogue)
    try:
        return judge(scenario).to_dict()
    except (ArithmeticError, ValueError, RecursionError) as exc:  # a bug of the judge's, told as one line
        raise ScenarioError(f"scenario: cannot be judged ({type(exc).__name__}: {exc})") from None


# Far more than any scenario holds (some 20,000 intervals of every signal), far less than a stream
# without an end (/dev/zero, a line that never breaks) would fill memory with.
MAX_SCENARIO_CHARS = 1 << 24


def _scenario_lines(stream):
    """The stream's lines; one longer than MAX_SCENARIO_CHARS comes as None, the rest of it skipped."""
    while line := stream.readline(MAX_SCENARIO_CHARS + 2):
        if len(line.rstrip("\n")) <= MAX_SCENARIO_CHARS:
            yield line
            continue
        while line and not line.endswith("\n"):
            line = stream.readline(1 << 16)
        yield None


def cmd_judge(args: argparse.Namespace) -> int:
    import io

    from golive.scenario import ScenarioError

    source = args.jsonl or args.scenario
    catalogue = _signal_list(args.signals) if args.signals else None
    try:
        # Undecodable bytes become U+FFFD, so a bad line is an invalid-JSON error, not a crash.
        stream = (io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8", errors="replace") if source == "-"
                  else open(source, encoding="utf-8", errors="replace"))
    except OSError as exc:
        raise UsageError(f"{escape_line(source)}: {exc.strerror}") from None
    with stream:
        if not args.jsonl:
            text = stream.read(MAX_SCENARIO_CHARS + 1)
            try:
                if len(text) > MAX_SCENARIO_CHARS:
                    raise ScenarioError(f"scenario: longer than {MAX_SCENARIO_CHARS} characters")
                print(json.dumps(_judge_one(text, catalogue), indent=2))
            except ScenarioError as exc:
                raise UsageError(str(exc)) from None
            return 0
        for line in _scenario_lines(stream):
            if line is not None and not line.strip():
                continue
            try:
                if line is None:
                    raise ScenarioError(f"scenario: longer than {MAX_SCENARIO_CHARS} characters")
                out = _judge_one(line, catalogue)
            except ScenarioError as exc:
                out = {"error": str(exc)}
            sys.stdout.write(json.dumps(out, separators=(",", ":")) + "\n")
    return 0


def _add_judge(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("judge", help="judge a scenario: proceed / hold / rollback (docs/judge.md)")
    p.add_argument("scenario", nargs="?", help="scenario JSON file, or - for stdin")
    p.add_argument("--jsonl", metavar="FILE", help="one scenario per line in, one verdict per line out")
    p.add_argument("--signals", metavar="CONFIG", help="judge on the signal list of these settings (golive.yaml; "
                                                     "default: the runbook's eight)")
    p.set_defaults(func=cmd_judge, check=_check_judge)


def _signal_list(config: str) -> tuple:
    """The signal list of the settings in `config` (the release does not matter to it)."""
    from golive.settings import SettingsError, load_settings

    try:
        return load_settings(config, release="0.0.0").policy.catalogue()
    except SettingsError as exc:
        raise UsageError(f"--signals {exc}") from None


def _check_judge(args: argparse.Namespace) -> None:
    if bool(args.scenario) == bool(args.jsonl):
        raise UsageError("judge: give exactly one of SCENARIO or --jsonl FILE")


def cmd_demo(args: argparse.Namespace) -> int:
    from cli.demo import parse_fault, run_demo

    try:
        faults = [parse_fault(f, args.fault_at) for f in args.fault]
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    from cli.sandbox_commands import DURATIONS, RATES

    for option, value, most in (("--stage-seconds", args.stage_seconds, DURATIONS["stage_seconds"]),
                                ("--interval", args.interval, DURATIONS["interval"])):
        if not (math.isfinite(value) and 0 < value <= most):
            raise UsageError(f"{option}: expected seconds in (0, {most:g}], got {value:g}")
    most, unit = RATES["rate"]
    if not (math.isfinite(args.rate) and 0 < args.rate <= most):
        raise UsageError(f"--rate: expected {unit} in (0, {most:g}], got {args.rate:g}")
    if args.stage_seconds < 3 * args.interval:
        raise UsageError("--stage-seconds: at least three intervals (--interval) per stage")
    from cli.demo import demo_settings
    from golive.settings import SettingsError, load_settings
    from sandbox.control import SandboxError

    try:  # the demo's settings but the sandbox's ports, checked before anything starts
        load_settings(demo_settings(args.release, {}, args.stage_seconds, args.interval, args.evidence_root,
                                    args.pyroscope))
    except SettingsError as exc:
        raise UsageError(str(exc).replace("process.evidence_root", "--evidence-root")
                         .replace("process.profiling.pyroscope_url", "--pyroscope")) from None
    try:
        return run_demo(args.release, faults, args.stage_seconds, args.interval, args.rate, args.evidence_root,
                        pyroscope_url=args.pyroscope)
    except SandboxError as exc:
        print(f"golive demo: {exc}", file=sys.stderr)
        return 1


def _add_demo(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="a whole go-live of the demo release on the sandbox, watched live")
    p.add_argument("--release", type=_release, default="1.4.0")
    p.add_argument("--fault", action="append", default=[], metavar="TRACK:NAME=VALUE",
                   help="break a track, e.g. canary:latency_ms=400 (repeatable)")
    p.add_argument("--fault-at", type=_stage, metavar="STAGE",
                   help="switch the faults on when this stage begins: a percentage, or shadow")
    p.add_argument("--stage-seconds", type=float, default=30.0, help="dwell of every stage (runbook: 900)")
    p.add_argument("--interval", type=float, default=5.0, help="judge every this many seconds (runbook: 60)")
    p.add_argument("--rate", type=float, default=50.0, help="user requests per second")
    p.add_argument("--evidence-root", default="evidence")
    p.add_argument("--pyroscope", metavar="URL", help="push each stage's profiles to this Pyroscope (off by default)")
    p.set_defaults(func=cmd_demo)


DEFAULT_EVIDENCE_ROOT = "evidence"
MAX_NIGHT_HOURS = 168  # as process.first_night.hours allows


def _target_settings(args: argparse.Namespace, **overrides):
    """Settings from --config, else from the running sandbox; a bad field is a UsageError. An
    --evidence-root given on the command line wins over the file's; without one, the file's
    stands (the sandbox's settings name none: `evidence`)."""
    from golive.settings import SettingsError, load_settings
    from sandbox.control import SandboxError

    evidence_root = args.evidence_root
    try:
        source = args.config
        if source is None:
            from sandbox.control import Sandbox

            sandbox = Sandbox(Path(args.sandbox_workdir) if args.sandbox_workdir else None)
            if not sandbox.running():
                raise UsageError(f"{args.command}: give --config, or start the sandbox (`golive sandbox up`)")
            source = sandbox.golive_settings()
            evidence_root = evidence_root or DEFAULT_EVIDENCE_ROOT
        if evidence_root is not None:
            overrides["process"] = {**(overrides.get("process") or {}), "evidence_root": evidence_root}
        return load_settings(source, **overrides)
    except (SettingsError, SandboxError) as exc:
        raise UsageError(str(exc)) from None


def _release(text: str) -> str:
    """`--release`: a SemVer 2.0 version, or argparse's one-line error and exit 2."""
    from golive.validation import parse_release

    try:
        return parse_release(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _stage(text: str) -> int:
    """`--fault-at` (and `rollback --stage`): `shadow` or a stage's percentage (1-100)."""
    from golive.stage import SHADOW_STAGE

    if text == "shadow":
        return SHADOW_STAGE
    if not text.isdigit() or not 1 <= int(text) <= 100:
        raise argparse.ArgumentTypeError(f"expected shadow or a stage's percentage (1-100), got {text!r}")
    return int(text)


def _add_target_options(p: argparse.ArgumentParser, release_required: bool = False) -> None:
    # Where the command changes something, the release it changes is never a default.
    if release_required:
        p.add_argument("--release", type=_release, required=True, help="the release being changed")
    else:
        p.add_argument("--release", type=_release, default="1.4.0")
    p.add_argument("--config", help="golive settings (YAML); default: the running sandbox")
    p.add_argument("--sandbox-workdir", help="the sandbox's folder, when not the default")
    p.add_argument("--evidence-root", help=f"where the release folders are (default: the settings' "
                                           f"process.evidence_root; {DEFAULT_EVIDENCE_ROOT} for the sandbox)")


def cmd_rollback(args: argparse.Namespace) -> int:
    from cli.prefect_env import configure_prefect, server_configured

    settings = _target_settings(args, release=args.release)
    configure_prefect()
    from flows.rollback import roll_back, roll_back_without_the_server, rollback_outcome

    # With no server configured, Prefect would first start a temporary one (16 s to weight 0
    # instead of about 3 on two cores) that stops with this command, its run unseen: the traffic
    # does not wait for it.
    run = roll_back if server_configured() else roll_back_without_the_server
    state = run(reason=args.reason, stage=args.stage, dry_run=args.dry_run, release=args.release,
                settings=settings, triggered_by=f"golive rollback ({os.environ.get('USER', 'operator')})")
    ended = rollback_outcome(state)
    if state.is_completed():
        report = state.result()
        for step in report.steps:
            print(step)
        print(f"{'DRY RUN' if args.dry_run else ended}: recorded in {settings.evidence_dir / report.evidence_file}")
        return 0
    print(f"{ended}: {state.message}")
    records = sorted(settings.evidence_dir.glob(layout.ROLLBACKS))
    if records:
        print(f"recorded in {records[-1]}")
    return 1


def cmd_go_live(args: argparse.Namespace) -> int:
    from cli.prefect_env import configure_prefect, use_a_server_of_its_own

    settings = _target_settings(args, release=args.release)
    configure_prefect()
    use_a_server_of_its_own()
    from cli.interrupt import Interrupted, run_rolling_back_on_interrupt
    from flows.go_live import go_live

    def run():
        return go_live(args.release, settings=settings.model_dump(mode="json"), recover=args.recover, return_state=True)

    try:
        state = run_rolling_back_on_interrupt(settings, run, say=lambda line: print(line, file=sys.stderr))
    except Interrupted as exc:
        print(f"golive: interrupted; rollback: {exc}", file=sys.stderr)
        return 130
    print(f"{state.name}: {state.message}")
    return 0 if state.name == "Live" else 1


def _add_go_live(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("go-live", help="take a release live on the target in this process (no server needed)")
    _add_target_options(p, release_required=True)
    p.add_argument("--recover", action="store_true", help="roll the target back first (a run died with it raised)")
    p.set_defaults(func=cmd_go_live)


def _add_rollback(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("rollback", help="all traffic back to stable, verified and recorded")
    p.add_argument("--reason", required=True)
    p.add_argument("--stage", help="the stage the release was at, shadow or 1-100 (for the record)")
    p.add_argument("--dry-run", action="store_true", help="say every step, change nothing")
    _add_target_options(p, release_required=True)
    p.set_defaults(func=cmd_rollback, check=_check_rollback)


def _check_rollback(args: argparse.Namespace) -> None:
    if args.stage is not None:
        try:
            args.stage = _stage(args.stage)
        except argparse.ArgumentTypeError:
            raise UsageError(f"--stage: expected shadow or the percentage the release was at, 1 to 100, "
                             f"got {escape_line(args.stage)}") from None


def cmd_flight_check(args: argparse.Namespace) -> int:
    from golive.evidence import EvidenceLedger
    from cli.prefect_env import configure_prefect

    try:
        settings = _target_settings(args, release=args.release,
                                    process={"blast_radius_seconds": args.blast_radius_seconds})
    except UsageError as exc:  # the option, as the user gave it
        raise UsageError(str(exc).replace("process.blast_radius_seconds", "--blast-radius-seconds")) from None
    configure_prefect()
    from flows.flight_check import flight_check
    from tasks.prefect_api import GoLiveLocked, go_live_lock

    # The go-live's own lock: a flight check never sets aside the folder of a go-live under way.
    try:
        with go_live_lock(settings.target.router.target, args.release):
            state = flight_check(args.release, settings=settings.model_dump(mode="json"), return_state=True)
    except GoLiveLocked as exc:
        print(f"NO-GO: v{args.release}: {exc}")
        return 1
    ledger = EvidenceLedger(settings.evidence_dir)
    checks = _recorded(ledger, layout.PREFLIGHT, "checks")
    for name, check in checks.items() if isinstance(checks, dict) else ():
        if isinstance(check, dict):
            verdict = "GO" if check.get("ok") is True else "NO-GO"
            print(f"  [{verdict:>5}] {escape_line(name):<32} {escape_line(check.get('detail', ''))}")
    if state.name == "Cleared":
        print(f"CLEARED FOR TAKEOFF: v{args.release}, {len(ledger.files())} evidence files in {settings.evidence_dir}")
        return 0
    failed = _recorded(ledger, layout.FLIGHT_CHECK, "failed")
    print(f"NO-GO: v{args.release}")
    for reason in failed if isinstance(failed, list) else [state.message]:
        print(f"  - {escape_line(reason)}")
    return 1


def _recorded(ledger, name: str, key: str) -> object:
    """`key` of the evidence record `name`; None when the record is not there or is not an object
    (the folder is read as outside input, whoever wrote it)."""
    from golive.evidence import read_regular

    try:
        record = json.loads(read_regular(ledger.path(name)))
    except (OSError, ValueError, RecursionError):
        return None
    return record.get(key) if isinstance(record, dict) else None


def _add_flight_check(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("flight-check", help="preflight, micro blast radius, release ritual, evidence: CLEARED or NO-GO")
    _add_target_options(p)
    p.add_argument("--blast-radius-seconds", type=float, help="how long the canary-only drill runs (default 30)")
    p.set_defaults(func=cmd_flight_check)


def cmd_close(args: argparse.Namespace) -> int:
    from cli.prefect_env import configure_prefect

    settings = _target_settings(args, release=args.release)
    configure_prefect()
    from flows.closing import closing

    state = closing(settings, dry_run=args.dry_run, return_state=True)
    for name in (layout.git_tag(args.dry_run), layout.freeze_lift(args.dry_run)):
        path = settings.evidence_dir / name
        if path.exists():
            print(f"{name}: {path.read_text().strip()}")
    print(f"{state.name}: {state.message}")
    return 0 if state.name == "Closed" else 1


def cmd_first_night(args: argparse.Namespace) -> int:
    from cli.prefect_env import configure_prefect

    settings = _target_settings(args, release=args.release)
    configure_prefect()
    from flows.first_night import first_night

    state = first_night(args.release, settings=settings.model_dump(mode="json"), hours=args.hours,
                        hour_seconds=args.hour_seconds, return_state=True)
    print(f"{state.name}: {state.message}")
    print(f"report: {settings.evidence_dir / layout.first_night_report(args.release)}")
    return 0 if state.is_completed() else 1


def _add_after_live(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("close", help="tag the live release and lift the freeze label from pull requests")
    _add_target_options(p, release_required=True)
    p.add_argument("--dry-run", action="store_true", help="say what would be tagged and which PRs touched")
    p.set_defaults(func=cmd_close)
    p = sub.add_parser("first-night", help="hourly SLO burn-rate checks after Live (restartable)")
    _add_target_options(p)
    p.add_argument("--hours", type=int, help=f"how many hours to watch (default 24, at most {MAX_NIGHT_HOURS})")
    p.add_argument("--hour-seconds", type=float, help="the length of an hour, to compress it (default and most 3600)")
    p.set_defaults(func=cmd_first_night, check=_check_first_night)


def _check_first_night(args: argparse.Namespace) -> None:
    """A night of no hours, or hours of no time, watches nothing and would still end Held."""
    if args.hours is not None and not 1 <= args.hours <= MAX_NIGHT_HOURS:
        raise UsageError(f"--hours: expected a whole number of hours from 1 to {MAX_NIGHT_HOURS}, got {args.hours}")
    if args.hour_seconds is not None and not (math.isfinite(args.hour_seconds) and 0 < args.hour_seconds <= 3600):
        raise UsageError(f"--hour-seconds: expected seconds in (0, 3600], got {args.hour_seconds:g}")


def cmd_server(args: argparse.Namespace) -> int:
    from cli.stack import Stack, StackError

    stack = Stack(Path(args.folder))
    try:
        if args.action == "up":
            api_url = stack.up(args.port, database=args.database, say=lambda line: print(line, file=sys.stderr))
            print(f"export PREFECT_API_URL={api_url}")
        elif args.action == "down":
            print(f"stopped: {', '.join(stack.down()) or 'nothing was running'}")
        else:
            state = stack.state()
            for name, alive in stack.running().items():
                print(f"{name:<8} {'running' if alive else 'stopped'}")
            if state:
                print(f"PREFECT_API_URL={escape_line(state.get('api_url'))}")
                print(f"database: {escape_line(state.get('database', 'sqlite'))}")
    except StackError as exc:
        raise UsageError(str(exc)) from None
    return 0


def _check_server(args: argparse.Namespace) -> None:
    from cli.stack import StackError, asyncpg_url

    if not 1 <= args.port <= 65535:
        raise UsageError(f"--port: expected a port from 1 to 65535, got {args.port}")
    if args.database not in ("sqlite", "postgresql"):
        try:
            asyncpg_url(args.database)
        except StackError as exc:
            raise UsageError(str(exc)) from None


def cmd_blocks_apply(args: argparse.Namespace) -> int:
    from golive.settings import SettingsError, load_settings

    try:
        settings = load_settings(args.config, release=args.release_placeholder)
    except SettingsError as exc:
        raise UsageError(str(exc)) from None
    from cli.prefect_env import configure_prefect

    configure_prefect()
    from blocks import blocks_from_settings

    for role, block in blocks_from_settings(settings).items():
        type(block).register_type_and_schema()
        block.save(args.name, overwrite=True)
        print(f"saved {block.get_block_type_name()!r} block {args.name!r} ({role})")
    names = ", ".join(f'"{role}": "{args.name}"' for role in ("policy", "prometheus", "target", "process"))
    print(f"deployments find them with the parameter blocks = {{{names}}}")
    return 0


def cmd_blocks_cluster(args: argparse.Namespace) -> int:
    from cli.prefect_env import configure_prefect

    configure_prefect()
    from blocks import KubernetesCluster

    if args.in_cluster:
        cluster = KubernetesCluster(context=args.context)
    else:
        import yaml

        try:
            cluster = KubernetesCluster.from_file(args.kubeconfig, args.context)
        except OSError as exc:
            raise UsageError(f"--kubeconfig: {exc.strerror}: {escape_line(exc.filename)}") from None
        except (yaml.YAMLError, ValueError, RecursionError):  # not text, not YAML, not a mapping
            cluster = None
        # An empty file reads as no kubeconfig at all, which the block takes for in-cluster.
        if cluster is None or cluster.kubeconfig is None:
            shown = escape_line(args.kubeconfig) if args.kubeconfig else "the default kubeconfig"
            raise UsageError(f"--kubeconfig: {shown}: not a kubeconfig (a YAML mapping)")
    KubernetesCluster.register_type_and_schema()
    cluster.save(args.name, overwrite=True)
    source = "the pod's service account" if args.in_cluster else "the kubeconfig (stored as a secret)"
    print(f"saved {cluster.get_block_type_name()!r} block {args.name!r} from {source}; "
          f"name it in target.router.kubernetes.credentials_block")
    return 0


def cmd_approve(args: argparse.Namespace) -> int:
    from uuid import UUID

    from cli.prefect_env import configure_prefect

    try:
        UUID(args.run_id)
    except ValueError:
        raise UsageError(f"run_id: expected a flow run's id (a UUID), got {escape_line(args.run_id)[:80]!r}") from None
    configure_prefect()
    from tasks.approval import resume_stage

    try:
        run = resume_stage(args.run_id, approve=not args.reject, approver=args.approver, reason=args.reason)
    except LookupError as exc:
        raise UsageError(str(exc)) from None
    print(f"{'rejected' if args.reject else 'approved'} {escape_line(run)} as {escape_line(args.approver)}")
    return 0


def cmd_deployment_add(args: argparse.Namespace) -> int:
    from cli.deployments import DeploymentError, add_release

    try:
        add_release(Path(args.file), args.release)
    except DeploymentError as exc:
        raise UsageError(str(exc)) from None
    print(f"added go-live/v{args.release} to {escape_line(args.file)}; create it with "
          "`prefect --no-prompt deploy --all`")
    return 0


def cmd_deployment_safety_net(args: argparse.Namespace) -> int:
    from cli.prefect_env import configure_prefect

    configure_prefect()
    from cli.deployments import SILENCE_SECONDS, SILENT_RUNS_AUTOMATION, install_safety_net

    installed = install_safety_net()
    print(f"automation {SILENT_RUNS_AUTOMATION!r} ({installed['automation_id']}): a go-live run silent for "
          f"{SILENCE_SECONDS} s is marked Crashed, and the rollback deployment's trigger rolls it back")
    return 0


def _add_prefect_path(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("server", help="a local Prefect server, the golive-local work pool and a worker")
    p.add_argument("action", choices=("up", "down", "status"))
    p.add_argument("--port", type=int, default=4200, help="from 1 to 65535")
    p.add_argument("--folder", default=os.environ.get("GOLIVE_SERVER_DIR", ".golive/server"),
                   help="where pids and logs are kept (default: $GOLIVE_SERVER_DIR or .golive/server)")
    p.add_argument("--database", default="sqlite",
                   help="sqlite; postgresql: a local PostgreSQL of the stack's own; or a postgresql:// URL to use")
    p.set_defaults(func=cmd_server, check=_check_server)
    blocks = sub.add_parser("blocks", help="the blocks deployments load").add_subparsers(dest="action", required=True)
    p = blocks.add_parser("apply", help="save golive.yaml as the four golive blocks")
    p.add_argument("config")
    p.add_argument("--name", default="default", help="the name of each block")
    p.add_argument("--release-placeholder", default="0.0.0", help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_blocks_apply)
    p = blocks.add_parser("cluster", help="save a cluster's credentials for the Kubernetes routers")
    p.add_argument("name")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--kubeconfig", help="default: $KUBECONFIG or ~/.kube/config")
    where.add_argument("--in-cluster", action="store_true", help="use the worker pod's service account")
    p.add_argument("--context", help="default: the kubeconfig's current-context")
    p.set_defaults(func=cmd_blocks_cluster)
    p = sub.add_parser("approve", help="resume a stage paused for approval (or reject it)")
    p.add_argument("run_id", help="the go-live run, or the paused stage's run")
    p.add_argument("--approver", required=True)
    p.add_argument("--reject", action="store_true")
    p.add_argument("--reason", default="")
    p.set_defaults(func=cmd_approve)
    deployment = sub.add_parser("deployment", help="prefect.yaml").add_subparsers(dest="action", required=True)
    p = deployment.add_parser("add", help="add go-live/v<RELEASE> to prefect.yaml")
    p.add_argument("release", type=_release)
    p.add_argument("--file", default="prefect.yaml")
    p.set_defaults(func=cmd_deployment_add)
    p = deployment.add_parser("safety-net", help="install the automation that marks a silent go-live Crashed "
                                                 "(prefect deploy and golive server up do it too)")
    p.set_defaults(func=cmd_deployment_safety_net)


def cmd_evidence_verify(args: argparse.Namespace) -> int:
    from golive.settings import SigningSettings
    from golive.signing import SigningError, load_public_key, read_key_file
    from golive.verify import describe_key, verdict, verify_folder

    key_path = Path(args.key) if args.key else SigningSettings().public_path
    try:
        public_key = load_public_key(read_key_file(key_path), escape_line(key_path))
    except OSError as exc:
        raise UsageError(f"{escape_line(key_path)}: {exc.strerror} (give the trusted public key with --key)") from None
    except SigningError as exc:
        raise UsageError(str(exc)) from None
    expect_head, published_by = args.expect_head, "as given"
    if expect_head is not None and not re.fullmatch(r"[0-9a-f]{64}", expect_head.strip().lower()):
        shown = escape_line(expect_head)[:80]
        raise UsageError(f"--expect-head: expected a sha256 digest (64 hex digits), got {shown}")
    if args.release:
        from cli.attest_commands import verify_release

        return verify_release(args, public_key)
    if args.from_prefect:
        from cli.evidence_head import HeadNotFound, published_head

        try:
            expect_head, published_by = published_head(args.from_prefect, Path(args.folder).resolve().name)
        except HeadNotFound as exc:
            raise UsageError(str(exc)) from None
    report = verify_folder(args.folder, public_key, args.sigstore_identity, args.sigstore_issuer, expect_head)
    for problem in report.problems:
        print(f"FAIL {problem}")
    print(f"{escape_line(args.folder)}: {verdict(report)}: {report.files} files, {report.links} chain links, "
          f"{report.signatures} signatures checked with {describe_key(public_key)}")
    if report.head:
        checked = (f"expected {published_by}" if expect_head
                   else "not compared: give --expect-head or --from-prefect to prove no link was cut")
        print(f"chain head: {escape_line(report.head)} ({checked})")
    return 0 if report.ok else 1


def cmd_keys_init(args: argparse.Namespace) -> int:
    from golive.settings import SigningSettings
    from golive.signing import SigningError, SigningKey, generate_key

    try:
        if Path(args.dir).absolute() != Path(SigningSettings().key_path).parent.absolute():  # made with its parents
            check_output_path(args.dir, folder=True)
        private_path, public_path = generate_key(args.dir)
    except SigningError as exc:
        raise UsageError(str(exc)) from None
    except ValueError as exc:  # check_output_path's
        raise UsageError(f"--dir {exc}") from None
    except OSError as exc:
        raise UsageError(f"--dir {escape_line(args.dir)[:120]}: {exc.strerror}") from None
    print(f"private key: {escape_line(private_path)} (mode 0600; keep it out of git and evidence)")
    print(f"public key:  {escape_line(public_path)}")
    print(f"key id:      {SigningKey.from_file(private_path).keyid}")
    return 0


def _add_evidence_and_keys(sub: argparse._SubParsersAction) -> None:
    from cli import attest_commands
    from golive.settings import SigningSettings

    evidence = sub.add_parser("evidence", help="check a release's evidence").add_subparsers(dest="action", required=True)
    p = evidence.add_parser("verify", help="every hash, the manifest chain and every signature, offline")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("folder", nargs="?")
    source.add_argument("--release", help="instead of a folder: the assets of this GitHub release (v1.4.0), "
                                          "checked against each other")
    attest_commands.add_release_options(p)
    p.add_argument("--key", help=f"the trusted public key (default {SigningSettings().public_path})")
    p.add_argument("--sigstore-identity", help="the identity sigstore bundles must be signed by")
    p.add_argument("--sigstore-issuer", help="the OIDC issuer of that identity")
    published = p.add_mutually_exclusive_group()
    published.add_argument("--expect-head", metavar="HEAD",
                           help="the chain head published at the last seal; the chain must end there (nothing cut)")
    published.add_argument("--from-prefect", metavar="RUN_ID",
                           help="as --expect-head, with the head the go-live run published (its final state "
                                "message, else its evidence-head artifact) on the Prefect server")
    p.set_defaults(func=cmd_evidence_verify)
    keys = sub.add_parser("keys", help="the local signing key").add_subparsers(dest="action", required=True)
    p = keys.add_parser("init", help="make a P-256 signing key pair")
    p.add_argument("--dir", default=str(Path(SigningSettings().key_path).parent))
    p.set_defaults(func=cmd_keys_init)


def _add_sandbox(sub: argparse._SubParsersAction) -> None:
    from cli import sandbox_commands

    sandbox_commands.add_parser(sub)


def _add_operator(sub: argparse._SubParsersAction) -> None:
    from cli import operator_commands

    operator_commands.add_parsers(sub)


def _add_observability(sub: argparse._SubParsersAction) -> None:
    from cli import observability_commands

    observability_commands.add_parsers(sub)


def _add_signals(sub: argparse._SubParsersAction) -> None:
    from cli import signals_commands

    signals_commands.add_parsers(sub)


def _add_attest(sub: argparse._SubParsersAction) -> None:
    from cli import attest_commands

    attest_commands.add_parsers(sub)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="golive", description="Prefect-native go-live orchestrator")
    sub = parser.add_subparsers(dest="command", required=True)
    adders: Sequence[Callable[[argparse._SubParsersAction], None]] = (
        _add_judge, _add_demo, _add_flight_check, _add_go_live, _add_rollback, _add_after_live, _add_evidence_and_keys,
        _add_prefect_path, _add_sandbox, _add_observability, _add_operator, _add_attest, _add_signals)
    for add in adders:
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        check = getattr(args, "check", None)
        if check:
            check(args)
        code = args.func(args)
        sys.stdout.flush()  # here, where a reader gone away is caught, not in Python's exit
        return code
    except UsageError as exc:
        print(f"golive: {exc}", file=sys.stderr)
        return 2
    except ServerError as exc:
        print(f"golive: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("golive: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (`golive … | head`): nothing left to say, to no one
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # Python's flush at exit must not fail
        return 141


if __name__ == "__main__":
    sys.exit(main())
