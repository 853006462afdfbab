"""The temporary Prefect server's start (`golive go-live`, `golive demo`, the flow tests): from an
empty home, without and with the migrated database template, in alternating rounds.

    .venv/bin/python benchmarks/server_start.py [--rounds 5] [--write-readme]

- **from nothing**: no template in the cache; the server migrates a new SQLite database and
  registers Prefect's block types before it answers (the template is removed first).
- **from the template**: the cache holds the template the first start left; the new home's
  database is a copy of it, so the server only checks the migrations and registers the blocks.

Seconds from `start_server` called to the server answering `/health`, each start in a new
temporary home and a cache of this run's own; each server is stopped before the next starts.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from readme_section import write_section  # noqa: E402


def _start(work: Path, from_template: bool) -> float:
    from cli.prefect_env import _database_template, start_server, stop_server

    if not from_template:
        _database_template().unlink(missing_ok=True)
    home = Path(tempfile.mkdtemp(dir=work))
    began = time.monotonic()
    server, _ = start_server(home)
    seconds = time.monotonic() - began
    stop_server(server)
    shutil.rmtree(home, ignore_errors=True)
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--write-readme", action="store_true")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="golive-bench-server-"))
    os.environ["GOLIVE_CACHE_DIR"] = str(work / "cache")
    for name in ("PREFECT_SERVER_DATABASE_CONNECTION_URL", "PREFECT_API_DATABASE_CONNECTION_URL"):
        os.environ.pop(name, None)
    seconds: dict[bool, list[float]] = {False: [], True: []}
    try:
        _start(work, False)  # the template the first "from the template" start copies
        for round_no in range(args.rounds):
            for from_template in ((True, False) if round_no % 2 else (False, True)):
                seconds[from_template].append(_start(work, from_template))
                print(f"round {round_no + 1}: {'template' if from_template else 'nothing'} "
                      f"{seconds[from_template][-1]:.2f} s", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    load = os.getloadavg()[0]
    before, after = statistics.median(seconds[False]), statistics.median(seconds[True])
    lines = [f"{args.rounds} rounds, alternating; load average {load:.1f} at the end", "",
             "| start | median (s) | max (s) |", "|---|---:|---:|",
             f"| from nothing | {before:.2f} | {max(seconds[False]):.2f} |",
             f"| from the template | {after:.2f} | {max(seconds[True]):.2f} |",
             f"| template ÷ nothing | {after / before:.2f}× | |"]
    print("\n".join(lines))
    if args.write_readme:
        write_section("server-start", "\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
