"""Wall time of ``python -m medlib compute`` with N local jobs at once, side by side, each into a fresh run store.

Every N computes the same chapters' runs (pre-trainings, then adaptations) from an empty store, one N after the
other in this one invocation, so the figures are comparable on a machine shared with other work only as far as
that work stays the same while this runs. Prints one line per N: wall seconds, runs computed, the speed-up over
the first N. Needs MEDLIB_DATA (and MEDLIB_OFFLINE=1 for the offline files).

    python -m benchmarks.compute_jobs --profile smoke --only 03_head_to_head --jobs 1 2
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="smoke")
    parser.add_argument("--only", nargs="+", default=["03_head_to_head"])
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    first = None
    for n in args.jobs:
        with tempfile.TemporaryDirectory() as store:
            t0 = time.perf_counter()
            run = subprocess.run([sys.executable, "-m", "medlib", "compute", "--profile", args.profile, "--only",
                                  *args.only, "--executor", "local", "--jobs", str(n)],
                                 env=os.environ | {"MEDLIB_RUNS": store}, capture_output=True, text=True)
            seconds = time.perf_counter() - t0
        if run.returncode:
            sys.exit(f"--jobs {n} failed (exit {run.returncode}):\n{run.stdout[-2000:]}{run.stderr[-2000:]}")
        first = first or seconds
        print(f"--jobs {n}: {seconds:7.1f} s wall, {run.stdout.strip().splitlines()[-1]}; "
              f"speed-up {first / seconds:.2f}x over --jobs {args.jobs[0]}", flush=True)


if __name__ == "__main__":
    main()
