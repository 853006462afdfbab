"""The `golive` command. Each subcommand imports what it needs, so `golive judge` stays light."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence

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


def _add_sandbox(sub: argparse._SubParsersAction) -> None:
    from golive import sandbox_cli

    sandbox_cli.add_parser(sub)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="golive", description="Prefect-native go-live orchestrator")
    sub = parser.add_subparsers(dest="command", required=True)
    adders: Sequence[Callable[[argparse._SubParsersAction], None]] = (_add_judge, _add_sandbox)
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
