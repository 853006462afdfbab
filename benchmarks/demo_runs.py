"""Is the demo dependable? Run `golive demo` (default timings) N times in a row and count how each
ended; a healthy demo must end Live every time.

    .venv/bin/python benchmarks/demo_runs.py --runs 10 [--write-readme]

Each run is the real thing: its own sandbox, a go-live of 1.4.0 through the five stages, the
evidence left in a temporary folder (kept for a run that did not end Live, and named).
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from readme_section import write_section  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
ENDING = re.compile(r"\b(Live|RolledBack|RollbackFailed|NoGo|Refused|Cancelled|Crashed): ")


def one_run(index: int, work: Path) -> tuple[str, float, str]:
    evidence = work / f"run{index:02d}"
    started = time.monotonic()
    done = subprocess.run([str(ROOT / ".venv" / "bin" / "golive"), "demo", "--evidence-root", str(evidence)],
                          cwd=ROOT, capture_output=True, text=True, timeout=1800)
    seconds = time.monotonic() - started
    found = ENDING.findall(done.stdout)
    # `golive demo` exits 0 exactly when the go-live ended Live; otherwise its state line names the ending.
    ending = "Live" if done.returncode == 0 else found[-1] if found else f"exit {done.returncode}"
    if ending == "Live":
        shutil.rmtree(evidence, ignore_errors=True)
    last = done.stdout.strip().splitlines()[-3:] if done.stdout.strip() else done.stderr.strip().splitlines()[-3:]
    return ending, seconds, " / ".join(last)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--write-readme", action="store_true")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="golive-demo-runs-"))
    endings: Counter[str] = Counter()
    walls = []
    for i in range(1, args.runs + 1):
        ending, seconds, tail = one_run(i, work)
        endings[ending] += 1
        walls.append(seconds)
        print(f"run {i}: {ending} in {seconds:.0f} s" + ("" if ending == "Live" else f" ({tail}; evidence in {work})"),
              flush=True)
    table = (f"| runs | Live | other endings | wall time per run (min–max) |\n|---|---|---|---|\n"
             f"| {args.runs} | {endings['Live']} | "
             f"{', '.join(f'{k}: {v}' for k, v in endings.items() if k != 'Live') or 'none'} | "
             f"{min(walls):.0f}–{max(walls):.0f} s |")
    print(table)
    if args.write_readme:
        write_section("demo-runs", table)
    return 0 if endings["Live"] == args.runs else 1


if __name__ == "__main__":
    sys.exit(main())
