"""`golive sandbox up|down|status|weight|fault|config`: the embedded target, from the command line.

`up` and `config` write the `golive.yaml` that takes the demo release live on the running sandbox
through a Prefect server: the sandbox's addresses and git repository, and the compressed timings
and judge overrides `golive demo` uses (the sandbox itself knows nothing of golive's settings).

`up --app module:attribute` serves a user's ASGI or WSGI application as both tracks in the demo
service's place (sandbox.app_wrapper), with load on `--paths`; its settings judge it on
`--pack` (default: the router's signals, which need nothing of the application).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from golive.settings import SECTIONS, merge_settings
from golive.signals import readiness_queries

__all__ = ["add_parser", "sandbox_config"]

CONFIG_MARK = "# golive sandbox config:"
FIRST_NIGHT = {"hours": 3, "hour_seconds": 10.0}  # the first night compressed to half a minute
# The sandbox's ports run from --port-base - 10 to --port-base + 1013 (sandbox.configs.Ports), each
# one a user may bind.
PORT_BASES = (1034, 65535 - 1013)
# Bounds no sandbox needs to reach: past them a number is a typo (a NaN rate, a negative timeout).
# A rate may be 0 (no load of that kind); a duration may not.
RATES = {"rate": (1000.0, "requests a second"), "probe_rate": (100.0, "probes a second per track")}
DURATIONS = {"timeout": 3600.0, "stage_seconds": 86400.0, "interval": 86400.0}


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


def _check_numbers(args: argparse.Namespace) -> None:
    """Every number given is finite and within its bounds (RATES, DURATIONS, PORT_BASES): one line
    naming the option, before anything starts or is written."""
    for name, (most, unit) in RATES.items():
        value = getattr(args, name, None)
        if value is not None and not (math.isfinite(value) and 0 <= value <= most):
            raise _Exit(f"--{name.replace('_', '-')}: expected {unit} in [0, {most:g}], got {value:g}")
    for name, most in DURATIONS.items():
        value = getattr(args, name, None)
        if value is not None and not (math.isfinite(value) and 0 < value <= most):
            raise _Exit(f"--{name.replace('_', '-')}: expected seconds in (0, {most:g}], got {value:g}")
    stage_seconds, interval = getattr(args, "stage_seconds", None), getattr(args, "interval", None)
    if stage_seconds is not None and interval is not None and stage_seconds < 3 * interval:
        raise _Exit("--stage-seconds: at least three intervals (--interval) per stage")
    base = getattr(args, "port_base", None)
    if base is not None and not PORT_BASES[0] <= base <= PORT_BASES[1]:
        raise _Exit(f"--port-base: expected a port from {PORT_BASES[0]} to {PORT_BASES[1]} (the sandbox's ports run "
                    f"from it - 10 to it + 1013), got {base}")


def _sandbox(args: argparse.Namespace):
    from sandbox.control import Sandbox

    if args.workdir and Path(args.workdir).exists() and not Path(args.workdir).is_dir():
        raise _Exit(f"--workdir {_shown(args.workdir)}: not a folder")
    return Sandbox(Path(args.workdir) if args.workdir else None)


def _run(fn):
    """Turn the sandbox's own errors into one line on stderr and an exit code."""

    def wrapper(args: argparse.Namespace) -> int:
        from sandbox.control import SandboxError, SandboxFolderError

        try:
            return fn(args)
        except SandboxFolderError as exc:  # a folder or file that is not the sandbox's: refused, nothing touched
            print(f"golive sandbox: {exc}", file=sys.stderr)
            return 2
        except SandboxError as exc:
            print(f"golive sandbox: {exc}", file=sys.stderr)
            return 1
        except _Exit as exc:
            print(f"golive sandbox: {exc}", file=sys.stderr)
            return exc.code

    return wrapper


def sandbox_config(sandbox, stage_seconds: float, interval: float) -> dict:
    """Settings for any release on the running sandbox: its addresses, compressed timings, and
    the evidence under ./evidence (flow runs start in the deploying checkout); for a user's
    application, the signal pack it was started with."""
    from cli.demo import demo_settings

    settings = demo_settings("0.0.0", sandbox.golive_settings(), stage_seconds, interval, "evidence")
    settings = merge_settings(settings, {"process": {"first_night": dict(FIRST_NIGHT)}})
    app = sandbox.config.get("app")
    if app:
        from golive.signal_packs import PACKS

        router = PACKS["router"]
        # The drill GETs the load's paths; users' share is the router's count (an application's own
        # request counter counts golive's probes too).
        settings = merge_settings(settings, {
            "policy": {"signal_pack": app.get("pack", "router")},
            "target": {"drill_paths": list(app.get("paths") or ["/"])},
            "prometheus": {"traffic_canary_query": router.traffic_canary_query,
                           "traffic_total_query": router.traffic_total_query},
        })
    return {section: settings[section] for section in SECTIONS}


def _config_text(sandbox, args: argparse.Namespace) -> str:
    import yaml

    header = (f"{CONFIG_MARK} the sandbox in {_shown(sandbox.workdir)}, stages of {args.stage_seconds:g} s judged "
              f"every {args.interval:g} s.\n# Rewritten by `golive sandbox up`; `golive blocks apply` saves it as "
              "blocks.\n")
    return header + yaml.safe_dump(sandbox_config(sandbox, args.stage_seconds, args.interval), sort_keys=False)


def _shown(text: object) -> str:
    from golive.validation import escape_line

    return escape_line(text)


def _write_config(sandbox, args: argparse.Namespace, path: Path, overwrite: bool) -> str:
    """Write golive.yaml (whole, replacing a link rather than following it); one we did not write
    is left alone unless asked (`config --out`)."""
    from golive.validation import check_output_path, escape_line, write_whole

    text = _config_text(sandbox, args)
    shown = escape_line(path)
    try:
        check_output_path(path)
        if not overwrite and path.exists() and not _written_by_the_sandbox(path):
            return (f"{shown} exists and is not the sandbox's: left alone "
                    "(`golive sandbox config --out FILE` writes one)")
        write_whole(path, text)
    except ValueError as exc:
        raise _Exit(f"settings file {exc}") from None
    except OSError as exc:
        raise _Exit(f"settings file {shown}: {exc.strerror}") from None
    return f"wrote {shown}: `golive blocks apply {shown}` saves it for the deployments"


def _written_by_the_sandbox(path: Path) -> bool:
    """`path` is a regular file (not a link) that starts with the sandbox's mark."""
    if path.is_symlink() or not path.is_file():
        return False
    with open(path, "rb") as f:
        return f.read(len(CONFIG_MARK)) == CONFIG_MARK.encode()


def _print_urls(sandbox) -> None:
    width = max(len(k) for k in sandbox.urls())
    for name, url in sandbox.urls().items():
        print(f"  {name:<{width}}  {url}")


@_run
def cmd_up(args: argparse.Namespace) -> int:
    from sandbox.control import Sandbox

    def progress(message: str) -> None:
        print(f"… {message}", file=sys.stderr, flush=True)

    _check_numbers(args)
    sandbox = _sandbox(args)
    if args.config:
        from golive.validation import check_output_path

        try:
            check_output_path(args.config)  # before anything starts, so a bad path starts nothing
        except ValueError as exc:
            raise _Exit(f"--config {exc}") from None
    if sandbox.running():
        serving = sandbox.config.get("release")
        if serving != args.release:
            raise _Exit(f"a sandbox serving canary {_shown(serving)} already runs in {_shown(sandbox.workdir)}; "
                        f"stop it first with `golive sandbox down`")
        print(f"sandbox already up: canary {args.release}, canary weight {sandbox.weight()} (folder {sandbox.workdir})")
    else:
        app, ready = _app(args)
        sandbox = Sandbox.up(
            sandbox.workdir, release=args.release, stable_version=args.stable, rate=args.rate,
            probe_rate=args.probe_rate, port_base=args.port_base, free_ports=args.free_ports, seed=args.seed,
            timeout=args.timeout, progress=progress, ready_queries=ready, app=app,
        )
        print(f"sandbox up: stable {args.stable}, canary {args.release}, canary weight 0, "
              f"load {args.rate:g} req/s (folder {sandbox.workdir})")
    _print_urls(sandbox)
    if args.config:
        print(_write_config(sandbox, args, Path(args.config), overwrite=False))
    return 0


def _app(args: argparse.Namespace) -> tuple[dict | None, dict[str, str]]:
    """`--app` as the sandbox records it, and what Prometheus must answer before `up` returns:
    every signal of the pack (the demo's eight without `--app`)."""
    import os

    from golive.signal_packs import PACKS

    if not args.app:
        return None, readiness_queries()
    module, _, attribute = args.app.partition(":")
    if not module or not attribute:
        raise _Exit(f"--app: expected module:attribute, got {_shown(args.app)}")
    paths = [p for p in args.paths.split(",") if p]
    if not paths or any(not p.startswith("/") for p in paths):
        raise _Exit(f"--paths: expected paths starting with /, got {_shown(args.paths)}")
    if args.pack not in PACKS:
        raise _Exit(f"--pack: unknown pack {_shown(args.pack)} (known: {', '.join(PACKS)})")
    app = {"spec": args.app, "factory": args.factory, "paths": paths, "path": os.getcwd(), "pack": args.pack}
    return app, readiness_queries(PACKS[args.pack].signals)


@_run
def cmd_config(args: argparse.Namespace) -> int:
    _check_numbers(args)
    sandbox = _sandbox(args)
    if not sandbox.running():
        raise _Exit(f"no sandbox running in {sandbox.workdir}; start one with `golive sandbox up`", code=3)
    if args.out:
        print(_write_config(sandbox, args, Path(args.out), overwrite=True))
    else:
        print(_config_text(sandbox, args), end="")
    return 0


@_run
def cmd_down(args: argparse.Namespace) -> int:
    sandbox = _sandbox(args)
    left_alone = sandbox.unproven()
    stopped = sandbox.down()
    print(f"stopped: {', '.join(_shown(name) for name in stopped)}" if stopped else "no sandbox was running")
    for process in left_alone:
        print(f"left alone: {process}")
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
        print(f"  {_shown(c.name):<11} {state:<14} pid {c.pid:<8}{port}")
    down = [_shown(c.name) for c in components if not c.healthy]
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


def _router_faults(values: dict[str, str]) -> dict:
    """`refuse=N delay_seconds=S` for the router's control API, checked here for one clear line."""
    unknown = sorted(set(values) - {"refuse", "delay_seconds"})
    if unknown:
        raise _Exit(f"fault router: unknown fault {unknown[0]!r} (known: refuse, delay_seconds)")
    try:
        return {"refuse": int(values.get("refuse", 0)), "delay_seconds": float(values.get("delay_seconds", 0))}
    except ValueError:
        raise _Exit("fault router: refuse is a whole number, delay_seconds a number of seconds") from None


@_run
def cmd_fault(args: argparse.Namespace) -> int:
    sandbox = _sandbox(args)
    router = args.track == "router"
    if args.clear:
        if args.assignments:
            raise _Exit("fault: give NAME=VALUE pairs or --clear, not both")
        result = sandbox.clear_router_faults() if router else sandbox.clear_faults(args.track)
    elif args.assignments:
        values = {}
        for item in args.assignments:
            name, sep, value = item.partition("=")
            if not sep:
                raise _Exit(f"fault: expected NAME=VALUE, got {item!r}")
            values[name] = value
        result = sandbox.set_router_faults(**_router_faults(values)) if router else sandbox.set_faults(args.track, values)
    else:
        result = sandbox.router_faults() if router else sandbox.faults(args.track)
    print(json.dumps(result, indent=2))
    return 0


def _add_timings(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--stage-seconds", type=float, default=12.0, help="dwell of every stage (runbook: 900)")
    parser.add_argument("--interval", type=float, default=4.0, help="judge every this many seconds (runbook: 60)")


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
    up.add_argument("--probe-rate", type=float, default=5.0, help="synthetic probes per second to each track")
    up.add_argument("--timeout", type=float, default=45.0)
    up.add_argument("--app", help="serve this ASGI or WSGI application (module:attribute) as both tracks instead "
                                  "of the demo service")
    up.add_argument("--factory", action="store_true", help="--app names a function that makes the application")
    up.add_argument("--paths", default="/", help="with --app: comma-separated paths the load sends GET requests to")
    up.add_argument("--pack", default="router", help="with --app: the signal pack its settings judge it on")
    up.add_argument("--config", default="golive.yaml",
                    help="write golive settings for this sandbox here, unless a file not written by the sandbox "
                         "is there ('' for none)")
    _add_timings(up)
    up.set_defaults(func=cmd_up)

    config = verbs.add_parser("config", help="golive settings (YAML) for the running sandbox")
    config.add_argument("--out", help="write them to this file (default: print them)")
    _add_timings(config)
    config.set_defaults(func=cmd_config)

    verbs.add_parser("down", help="stop exactly what `up` started").set_defaults(func=cmd_down)
    verbs.add_parser("status", help="which components run").set_defaults(func=cmd_status)

    weight = verbs.add_parser("weight", help="read, or set, the canary weight in force (0-100)")
    weight.add_argument("weight", nargs="?", type=int)
    weight.set_defaults(func=cmd_weight)

    fault = verbs.add_parser("fault", help="show, set (NAME=VALUE …) or --clear a track's faults, or the "
                                           "router control API's (refuse=N delay_seconds=S)")
    fault.add_argument("track", choices=("stable", "canary", "router"))
    fault.add_argument("assignments", nargs="*", metavar="NAME=VALUE")
    fault.add_argument("--clear", action="store_true")
    fault.set_defaults(func=cmd_fault)
