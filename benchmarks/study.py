"""How long the vanishing-gradient study and its horizon sweep take, and where the time goes.

    python benchmarks/study.py [--quick] [--repeats 1] [--cells rnn,lstm] [--sweep]

The study part runs ``run_study`` with the default settings (T = 50, 1,500 steps, rnn and
lstm; ``--quick``: the ``--quick`` settings), one process per model as the command line
does (``--jobs 1``: one after the other, in this process) and prints, per model, the
training time, the part spent on the gradient-flow measurements (recorder and Jacobian
spectra) and their share; then the same study with ``diagnostics=False``. The figure the
project tracks is the total study time of the default run (target: at most 20 s on a quiet
2-core machine). ``--sweep`` also times the default horizon sweep (``python -m tinygrad_seq
sweep``, 45 runs on every core; target: at most 6 minutes) in a temporary folder.

The machine's load average is printed before and after: on a shared machine the numbers are
upper bounds. Timing lives here, never in the test suite.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace

from tinygrad_seq.lab.study import StudySettings, run_study


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f}, {five:.2f}, {fifteen:.2f} on {os.cpu_count()} cores"


def time_study(
    settings: StudySettings, cells: tuple[str, ...], jobs: int | None
) -> dict[str, float]:
    start = time.perf_counter()
    result = run_study(settings, progress=False, models=cells, jobs=jobs)
    total = time.perf_counter() - start
    print(f"  {'model':<10} {'seconds':>8} {'measuring':>10} {'share':>6} {'test MSE':>9}")
    for run in result.runs.values():
        share = run.diagnostic_seconds / run.seconds if run.seconds else 0.0
        print(
            f"  {run.label:<10} {run.seconds:>8.1f} {run.diagnostic_seconds:>10.1f} "
            f"{share:>6.0%} {run.final_test_mse:>9.4f}"
        )
    print(f"  total {total:.1f} s (measuring {result.diagnostic_share:.0%})")
    return {"total": total, "share": result.diagnostic_share}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the --quick study (seconds)")
    parser.add_argument("--repeats", type=int, default=1, help="study runs to time (1)")
    parser.add_argument("--cells", default="rnn,lstm", help="models of the study (rnn,lstm)")
    parser.add_argument("--sweep", action="store_true", help="also time the default sweep")
    parser.add_argument(
        "--jobs", type=int, default=None, help="models at a time (default: every core, as the CLI)"
    )
    args = parser.parse_args()
    cells = tuple(args.cells.split(","))
    settings = StudySettings.quick() if args.quick else StudySettings()
    print(f"before: {load()}")
    print(
        f"study: T = {settings.seq_len}, {settings.steps} steps, {', '.join(cells)}, "
        f"flow recorded every {settings.record_every} steps on {settings.probe_size} "
        f"sequences, spectra on {settings.spectrum_size}"
    )
    totals = []
    for repeat in range(args.repeats):
        print(f"with diagnostics, run {repeat + 1}:")
        totals.append(time_study(settings, cells, args.jobs)["total"])
    print("without diagnostics:")
    time_study(replace(settings, diagnostics=False), cells, args.jobs)
    print(
        f"study with diagnostics: median {statistics.median(totals):.1f} s of {len(totals)} "
        f"(best {min(totals):.1f} s; target: at most 20 s)"
    )
    if args.sweep:
        with tempfile.TemporaryDirectory() as folder:
            command = [sys.executable, "-m", "tinygrad_seq", "sweep", "--out", folder]
            command += ["--quick"] if args.quick else []
            start = time.perf_counter()
            subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
            print(
                f"sweep ({'quick' if args.quick else 'default'}): "
                f"{time.perf_counter() - start:.1f} s"
            )
    print(f"after: {load()}")


if __name__ == "__main__":
    main()
