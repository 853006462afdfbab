"""`golive sandbox up|down|status|weight|fault`: the embedded target, from the command line."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from golive.signals import readiness_queries

__all__ = ["add_parser"]


class _Exit(Exception):
    def __init__(self, message: str, code: int = 2):
        super().__init__(message)
        self.code = code


def _version(text: str) -> str:
    """`--release`, `--stable`: a SemVer 2.0 version, or argparse's one-line error and exit 2."""
    from golive.validation import parse_release

    try:
        return parse_release(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _sandbox(args: argparse.Namespace):
    from sandbox.control import Sandbox

    return Sandbox(Path(args.workdir) if args.workdir else None)


def _run(fn):
    """Turn the sandbox's own errors into one line on stderr and an exit code."""

    def wrapper(args: argparse.Namespace) -> int:
        from sandbox.control import SandboxError

        try:
            return fn(args)
        except SandboxError as exc:
            print(f"golive sandbox: {exc}", file=sys.stderr)
            return 1
        except _Exit as exc:
            print(f"golive sandbox: {exc}", file=sys.stderr)
            return exc.code

    return wrapper


def _print_urls(sandbox) -> None:
    width = max(len(k) for k in sandbox.urls())
    for name, url in sandbox.urls().items():
        print(f"  {name:<{width}}  {url}")


@_run
def cmd_up(args: argparse.Namespace) -> int:
    from sandbox.control import Sandbox

    def progress(message: str) -> None:
        print(f"… {message}", file=sys.stderr, flush=True)

    sandbox = Sandbox.up(
        Path(args.workdir) if args.workdir else None,
        release=args.release, stable_version=args.stable, rate=args.rate, port_base=args.port_base,
        free_ports=args.free_ports, seed=args.seed, timeout=args.timeout, progress=progress,
        ready_queries=readiness_queries(),
    )
    print(f"sandbox up: stable {args.stable}, canary {args.release}, canary weight 0, "
          f"load {args.rate:g} req/s (folder {sandbox.workdir})")
    _print_urls(sandbox)
    return 0


@_run
def cmd_down(args: argparse.Namespace) -> int:
    stopped = _sandbox(args).down()
    print(f"stopped: {', '.join(stopped)}" if stopped else "no sandbox was running")
    return 0


@_run
def cmd_status(args: argparse.Namespace) -> int:
    sandbox = _sandbox(args)
    components = sandbox.status()
    if not components:
        print(f"no sandbox running in {sandbox.workdir}")
        return 3
    for c in components:
        state = "up" if c.healthy else ("dead" if not c.alive else "not listening")
        port = f"  port {c.port}" if c.port else ""
        print(f"  {c.name:<11} {state:<14} pid {c.pid:<8}{port}")
    down = [c.name for c in components if not c.healthy]
    if down:
        print(f"not running: {', '.join(down)}")
        return 1
    print(f"all {len(components)} components up; canary weight {sandbox.weight()}")
    return 0


@_run
def cmd_weight(args: argparse.Namespace) -> int:
    sandbox = _sandbox(args)
    if args.weight is None:
        print(sandbox.weight())
        return 0
    print(sandbox.set_weight(args.weight))
    return 0


@_run
def cmd_fault(args: argparse.Namespace) -> int:
    sandbox = _sandbox(args)
    if args.clear:
        if args.assignments:
            raise _Exit("fault: give NAME=VALUE pairs or --clear, not both")
        result = sandbox.clear_faults(args.track)
    elif args.assignments:
        values = {}
        for item in args.assignments:
            name, sep, value = item.partition("=")
            if not sep:
                raise _Exit(f"fault: expected NAME=VALUE, got {item!r}")
            values[name] = value
        result = sandbox.set_faults(args.track, values)
    else:
        result = sandbox.faults(args.track)
    print(json.dumps(result, indent=2))
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sandbox", help="the embedded target: two service versions, Prometheus, nginx, load")
    p.add_argument("--workdir", help="the sandbox's folder (default: $GOLIVE_SANDBOX_DIR or a temp folder)")
    verbs = p.add_subparsers(dest="verb", required=True)

    up = verbs.add_parser("up", help="start everything and wait until every signal has data")
    up.add_argument("--release", type=_version, default="1.4.0", help="the canary's version")
    up.add_argument("--stable", type=_version, default="1.3.2", help="the stable version")
    up.add_argument("--rate", type=float, default=50.0, help="user requests per second through the router")
    up.add_argument("--port-base", type=int, help="router on this port, the rest after it (default 18080)")
    up.add_argument("--free-ports", action="store_true", help="let the kernel pick free ports")
    up.add_argument("--seed", type=int, help="seed the services' and the load's randomness")
    up.add_argument("--timeout", type=float, default=45.0)
    up.set_defaults(func=cmd_up)

    verbs.add_parser("down", help="stop exactly what `up` started").set_defaults(func=cmd_down)
    verbs.add_parser("status", help="which components run").set_defaults(func=cmd_status)

    weight = verbs.add_parser("weight", help="read, or set, the canary weight in force (0-100)")
    weight.add_argument("weight", nargs="?", type=int)
    weight.set_defaults(func=cmd_weight)

    fault = verbs.add_parser("fault", help="show, set (NAME=VALUE …) or --clear a track's faults")
    fault.add_argument("track", choices=("stable", "canary"))
    fault.add_argument("assignments", nargs="*", metavar="NAME=VALUE")
    fault.add_argument("--clear", action="store_true")
    fault.set_defaults(func=cmd_fault)
