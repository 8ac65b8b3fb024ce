"""``make bench``: every benchmark, one after the other, each printing its figures as
ratios against a baseline measured in the same run (these machines are noisy).

Extra arguments after ``--`` go to every script, e.g. ``make bench BENCH_ARGS="--quick"``.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
# (script, arguments): the order is cheapest first.
BENCHES = [
    ("letters_bench.py", []),
    ("import_bench.py", []),
]


def main(argv: list[str]) -> int:
    failures = 0
    for script, args in BENCHES:
        path = HERE / script
        if not path.exists():
            print(f"== {script}: missing, skipped", flush=True)
            failures += 1
            continue
        print(f"\n== {script} {' '.join(args + argv)}", flush=True)
        started = time.perf_counter()
        rc = subprocess.call([sys.executable, str(path), *args, *argv], cwd=HERE.parent)
        print(f"== {script}: exit {rc} after {time.perf_counter() - started:.1f} s", flush=True)
        failures += rc != 0
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
