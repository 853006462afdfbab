"""The `golive` command. Each subcommand imports what it needs, so `golive judge` stays light."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

__all__ = ["main"]


class UsageError(Exception):
    """A bad argument or input: one line on stderr, exit 2."""


def _judge_one(text: str) -> dict:
    from golive.judge import judge
    from golive.scenario import ScenarioError, parse_scenario

    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ScenarioError(f"scenario: invalid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    return judge(parse_scenario(raw)).to_dict()


def cmd_judge(args: argparse.Namespace) -> int:
    from golive.scenario import ScenarioError

    source = args.jsonl or args.scenario
    try:
        stream = sys.stdin if source == "-" else open(source, encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"{source}: {exc.strerror}") from None
    with stream:
        if not args.jsonl:
            try:
                print(json.dumps(_judge_one(stream.read()), indent=2))
            except ScenarioError as exc:
                raise UsageError(str(exc)) from None
            return 0
        for line in stream:
            if not line.strip():
                continue
            try:
                out = _judge_one(line)
            except ScenarioError as exc:
                out = {"error": str(exc)}
            sys.stdout.write(json.dumps(out, separators=(",", ":")) + "\n")
    return 0


def _add_judge(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("judge", help="judge a scenario: proceed / hold / rollback (contracts/judge.md)")
    p.add_argument("scenario", nargs="?", help="scenario JSON file, or - for stdin")
    p.add_argument("--jsonl", metavar="FILE", help="one scenario per line in, one verdict per line out")
    p.set_defaults(func=cmd_judge, check=_check_judge)


def _check_judge(args: argparse.Namespace) -> None:
    if bool(args.scenario) == bool(args.jsonl):
        raise UsageError("judge: give exactly one of SCENARIO or --jsonl FILE")


def cmd_demo(args: argparse.Namespace) -> int:
    from golive.demo import parse_fault, run_demo

    try:
        faults = [parse_fault(f, args.fault_at) for f in args.fault]
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if args.stage_seconds < 3 * args.interval:
        raise UsageError("--stage-seconds: at least three intervals (--interval) per stage")
    return run_demo(args.release, faults, args.stage_seconds, args.interval, args.rate, args.evidence_root)


def _add_demo(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="a whole go-live of the demo release on the sandbox, watched live")
    p.add_argument("--release", default="1.4.0")
    p.add_argument("--fault", action="append", default=[], metavar="TRACK:NAME=VALUE",
                   help="break a track, e.g. canary:latency_ms=400 (repeatable)")
    p.add_argument("--fault-at", type=int, metavar="STAGE", help="switch the faults on when this stage begins")
    p.add_argument("--stage-seconds", type=float, default=30.0, help="dwell of every stage (runbook: 900)")
    p.add_argument("--interval", type=float, default=5.0, help="judge every this many seconds (runbook: 60)")
    p.add_argument("--rate", type=float, default=50.0, help="user requests per second")
    p.add_argument("--evidence-root", default="evidence")
    p.set_defaults(func=cmd_demo)


def cmd_rollback(args: argparse.Namespace) -> int:
    from golive.prefect_env import configure_prefect
    from golive.settings import SettingsError, load_settings

    configure_prefect()
    try:
        source = args.config
        if source is None:
            from sandbox.control import Sandbox

            sandbox = Sandbox(Path(args.sandbox_workdir) if args.sandbox_workdir else None)
            if not sandbox.running():
                raise UsageError("rollback: give --config, or start the sandbox (`golive sandbox up`)")
            source = {**sandbox.golive_settings(), "evidence_root": args.evidence_root}
        settings = load_settings(source, release=args.release)
    except SettingsError as exc:
        raise UsageError(str(exc)) from None
    from flows.rollback import rollback

    report = rollback(reason=args.reason, stage=args.stage, dry_run=args.dry_run, release=args.release,
                      settings=settings, triggered_by=f"golive rollback ({os.environ.get('USER', 'operator')})")
    for step in report.steps:
        print(step)
    print(f"recorded in {settings.evidence_dir / report.evidence_file}")
    return 0


def _add_rollback(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("rollback", help="all traffic back to stable, verified and recorded")
    p.add_argument("--reason", required=True)
    p.add_argument("--stage", type=int, default=0, help="the stage the release was at (for the record)")
    p.add_argument("--dry-run", action="store_true", help="say every step, change nothing")
    p.add_argument("--release", default="1.4.0")
    p.add_argument("--config", help="golive settings (YAML); default: the running sandbox")
    p.add_argument("--sandbox-workdir", help="the sandbox's folder, when not the default")
    p.add_argument("--evidence-root", default="evidence")
    p.set_defaults(func=cmd_rollback)


def _add_sandbox(sub: argparse._SubParsersAction) -> None:
    from golive import sandbox_cli

    sandbox_cli.add_parser(sub)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="golive", description="Prefect-native go-live orchestrator")
    sub = parser.add_subparsers(dest="command", required=True)
    adders: Sequence[Callable[[argparse._SubParsersAction], None]] = (_add_judge, _add_demo, _add_rollback, _add_sandbox)
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
        return args.func(args)
    except UsageError as exc:
        print(f"golive: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("golive: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
