"""`golive rollback` where no Prefect server is configured: seconds from the command to weight 0
read at the router, and to the command's end, before and after a change, in alternating rounds.

    .venv/bin/python benchmarks/manual_rollback.py --before <rev> [--after <rev>] [--rounds 3] [--write-readme]

Each version comes out of git into a temporary folder and runs as `python -m cli.main rollback`
there, from a new working folder each time (so Prefect's home, `.golive/prefect`, is new), with
no PREFECT_* variable set, against one sandbox whose weight is set to 25 before each command.
The weight is read at the router every 0.1 s.
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from readme_section import write_section  # noqa: E402


def _checkout(rev: str, into: Path) -> Path:
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", rev], capture_output=True,
                             check=True).stdout
    into.mkdir(parents=True)
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into


def _one(code: Path, sandbox, work: Path, signing: dict) -> tuple[float | None, float]:
    sandbox.set_weight(25)
    folder = Path(tempfile.mkdtemp(dir=work))
    config = folder / "golive.yaml"
    config.write_text(yaml.safe_dump({**sandbox.golive_settings(), "process": {
        "evidence_root": str(folder / "evidence"), "signing": signing}}))
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(PYTHONPATH=str(code), GOLIVE_CACHE_DIR=str(work / "cache"))
    began = time.monotonic()
    command = subprocess.Popen([sys.executable, "-m", "cli.main", "rollback", "--release", "1.4.0", "--reason",
                                "benchmark", "--config", str(config)], cwd=folder, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    at_zero = None
    while command.poll() is None:
        if at_zero is None and sandbox.weight() == 0:
            at_zero = time.monotonic() - began
        time.sleep(0.1)
    ended = time.monotonic() - began
    if command.returncode != 0 or sandbox.weight() != 0:
        raise SystemExit(f"{code.name}: golive rollback ended {command.returncode}, weight {sandbox.weight()}")
    return at_zero if at_zero is not None else ended, ended


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", required=True)
    parser.add_argument("--after", default="HEAD")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--write-readme", action="store_true")
    args = parser.parse_args()
    from golive.signals import readiness_queries
    from golive.signing import generate_key
    from sandbox.control import Sandbox

    work = Path(tempfile.mkdtemp(prefix="golive-bench-rollback-"))
    versions = {"before": _checkout(args.before, work / "before"), "after": _checkout(args.after, work / "after")}
    private, public = generate_key(work / "keys")
    signing = {"key_path": str(private), "public_key_path": str(public)}
    sandbox = Sandbox.up(work / "sandbox", free_ports=True, owner_pid=os.getpid(), rate=20, probe_rate=1,
                         ready_queries=readiness_queries())
    seconds: dict[str, list[tuple[float, float]]] = {"before": [], "after": []}
    try:
        for round_no in range(args.rounds):
            for side in (("before", "after") if round_no % 2 == 0 else ("after", "before")):
                seconds[side].append(_one(versions[side], sandbox, work, signing))
                print(f"round {round_no + 1} {side}: weight 0 after {seconds[side][-1][0]:.1f} s, "
                      f"command {seconds[side][-1][1]:.1f} s", flush=True)
    finally:
        sandbox.down()
        shutil.rmtree(work, ignore_errors=True)

    def median(side: str, i: int) -> float:
        return statistics.median(s[i] for s in seconds[side])

    lines = [f"{args.rounds} rounds each, alternating; before `{args.before}`, after `{args.after}`; "
             f"load average {os.getloadavg()[0]:.1f} at the end", "",
             "| measure (median) | before | after | after ÷ before |", "|---|---:|---:|---:|"]
    for i, name in enumerate(("command → weight 0 (s)", "command → its end (s)")):
        lines.append(f"| {name} | {median('before', i):.1f} | {median('after', i):.1f} | "
                     f"{median('after', i) / median('before', i):.2f}× |")
    print("\n".join(lines))
    if args.write_readme:
        write_section("manual-rollback", "\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
