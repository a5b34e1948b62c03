"""The horizon sweep: for which sequence lengths T does each cell solve the adding problem?

``python -m tinygrad_seq sweep --out DIR`` trains every (cell, T, seed) of a grid with the
study's settings (:class:`~tinygrad_seq.lab.study.StudySettings`, no diagnostics) until it is
*solved* — the test MSE at an evaluation falls below ``threshold`` (0.05 by default, well
under the 1/12 a model reaches by remembering only the recent marker) — or out of steps
(``SWEEP_STEPS``, twice the study's 1,500, by default).

- Every finished run is appended at once to ``DIR/runs.jsonl`` (one JSON object a line), so
  Ctrl-C loses at most the runs in flight; the same command on the same DIR resumes, skipping
  the runs already there. Runs are independent and seeded, so a resumed sweep ends with the
  same numbers as an uninterrupted one.
- Each run is its own process (``jobs`` at a time), BLAS on one thread in each.
- At the end :func:`write_sweep` adds ``DIR/sweep.json`` (the runs and the table of solved
  fractions), ``DIR/horizon.png`` and ``.svg`` and ``DIR/report.html``.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import statistics
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from .study import (
    MODEL_LABELS,
    MSE_PREDICT_MEAN,
    MSE_SECOND_MARKER_ONLY,
    StudySettings,
    ignore_interrupts,
    load_cell,
    one_blas_thread,
    train_model,
    wait_for,
)

__all__ = [
    "DEFAULT_CELLS",
    "DEFAULT_SEEDS",
    "DEFAULT_SEQ_LENS",
    "RUNS_NAME",
    "SOLVED_BELOW",
    "SWEEP_STEPS",
    "SweepError",
    "SweepPlan",
    "horizon_summary",
    "outputs_complete",
    "read_runs",
    "run_one",
    "run_sweep",
    "write_sweep",
]

DEFAULT_CELLS = ("rnn", "lstm", "gru")
DEFAULT_SEQ_LENS = (10, 20, 30, 50, 100)
DEFAULT_SEEDS = (0, 1, 2)
SOLVED_BELOW = 0.05
"""A run is solved when its test MSE falls below this (1/12 ≈ 0.083 needs the recent marker
only; 0.05 needs the first value too)."""
SWEEP_STEPS = 3000
"""Most training steps of a run: twice the study's. A run stops once solved, so the budget
costs time only where a cell fails; it is the budget, not the cell, that decides a run whose
breakthrough comes at the end of it (a tanh RNN at T = 20 solves in 700 to 1,600 steps)."""

RUNS_NAME, SWEEP_NAME, REPORT_NAME, HORIZON_NAME = (
    "runs.jsonl",
    "sweep.json",
    "report.html",
    "horizon",
)


class SweepError(ValueError):
    """A sweep that cannot start (settings that differ from the runs already in DIR, ...)."""


@dataclass(frozen=True)
class SweepPlan:
    """The grid and the settings every run shares (``seq_len`` and ``seed`` come from the grid).

    ``cells`` are built-in names (see ``study.MODELS``); ``specs`` maps a user cell's name to
    its ``--cell`` SPEC, which each run's process imports itself.
    """

    cells: tuple[str, ...] = DEFAULT_CELLS
    specs: tuple[tuple[str, str], ...] = ()
    seq_lens: tuple[int, ...] = DEFAULT_SEQ_LENS
    seeds: tuple[int, ...] = DEFAULT_SEEDS
    settings: StudySettings = StudySettings(steps=SWEEP_STEPS, diagnostics=False)
    threshold: float = SOLVED_BELOW

    @classmethod
    def quick(cls, **overrides: Any) -> SweepPlan:
        """A few seconds: short sequences, one seed, few steps, a small test set."""
        small = StudySettings(steps=150, eval_every=25, test_size=200, diagnostics=False)
        return cls(**{"seq_lens": (4, 8), "seeds": (0,), "settings": small, **overrides})

    @property
    def names(self) -> tuple[str, ...]:
        return self.cells + tuple(name for name, _ in self.specs)

    def tasks(self) -> list[tuple[str, int, int]]:
        """Every (cell, T, seed), cells outermost."""
        return [(c, T, s) for c in self.names for T in self.seq_lens for s in self.seeds]

    def shared_settings(self) -> dict[str, Any]:
        """What every run's numbers depend on besides (cell, T, seed): stored in each record."""
        shared = asdict(self.settings)
        for name in ("seq_len", "seed", "diagnostics"):
            shared.pop(name)
        return {**shared, "threshold": self.threshold}


def run_one(task: tuple[str, str | None, int, int, StudySettings, float]) -> dict[str, Any]:
    """Train one (cell, T, seed) until solved or out of steps; return its record."""
    name, spec, seq_len, seed, settings, threshold = task
    settings = replace(settings, seq_len=seq_len, seed=seed, diagnostics=False)
    factory = None if spec is None else load_cell(spec)[1]
    with one_blas_thread():
        run = train_model(name, settings, factory=factory, solved_below=threshold)
    solved = run.best_test_mse < threshold
    return {
        "cell": name,
        "seq_len": seq_len,
        "seed": seed,
        "solved": bool(solved),
        "steps_to_solve": int(run.eval_steps[-1]) if solved else None,
        "steps_trained": len(run.train_loss),
        "best_test_mse": run.best_test_mse,
        "final_test_mse": run.final_test_mse,
        "seconds": round(run.seconds, 3),
    }


def _key(record: dict[str, Any]) -> tuple[str, int, int]:
    return record["cell"], record["seq_len"], record["seed"]


def read_runs(path: Path, shared: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """The records of ``runs.jsonl``; a last line cut short by a kill is dropped from the file.

    With ``shared``, a record made with other settings raises :class:`SweepError`.
    """
    if not path.exists():
        return []
    text = path.read_text(encoding="utf-8")
    if text and not text.endswith("\n"):  # killed while writing: keep the whole lines
        text = text[: text.rfind("\n") + 1]
        path.write_text(text, encoding="utf-8")
    records = [json.loads(line) for line in text.splitlines() if line.strip()]
    for record in records:
        if shared is not None and record.get("settings") != shared:
            different = sorted(
                name
                for name in set(shared) | set(record.get("settings") or {})
                if shared.get(name) != (record.get("settings") or {}).get(name)
            )
            raise SweepError(
                f"{path} holds runs made with other settings ({', '.join(different)}); "
                "use another --out, or the same settings"
            )
    return records


def run_sweep(
    plan: SweepPlan,
    folder: Path,
    jobs: int | None = None,
    report: Callable[[dict[str, Any], int, int], None] | None = None,
) -> list[dict[str, Any]]:
    """Run the tasks of ``plan`` not yet in ``folder/runs.jsonl``; return every record.

    ``jobs`` processes at a time (default: every core), each process running one task.
    ``report(record, done, total)`` is called as each run finishes. On Ctrl-C the workers
    are stopped and KeyboardInterrupt propagates; finished runs are already on disk.
    """
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / RUNS_NAME
    shared = plan.shared_settings()
    records = read_runs(path, shared)
    finished = {_key(r) for r in records}
    specs = dict(plan.specs)
    todo = [t for t in plan.tasks() if t not in finished]
    tasks = [(c, specs.get(c), T, s, plan.settings, plan.threshold) for c, T, s in todo]
    total, done = len(plan.tasks()), len(plan.tasks()) - len(todo)
    if not tasks:
        return records
    jobs = max(1, min(jobs or os.cpu_count() or 1, len(tasks)))
    # fork: each run's process starts in milliseconds, with the package already imported.
    context = multiprocessing.get_context("fork")
    pool = context.Pool(jobs, initializer=ignore_interrupts, maxtasksperchild=1)
    try:
        with path.open("a", encoding="utf-8") as runs_file:
            results = pool.imap_unordered(run_one, tasks)
            for record in (wait_for(results.next) for _ in tasks):
                record["settings"] = shared
                runs_file.write(json.dumps(record) + "\n")
                runs_file.flush()
                os.fsync(runs_file.fileno())
                records.append(record)
                done += 1
                if report is not None:
                    report(record, done, total)
        pool.close()
    except BaseException:
        pool.terminate()
        raise
    finally:
        pool.join()
    return records


def horizon_summary(records: Iterable[dict[str, Any]], plan: SweepPlan) -> dict[str, Any]:
    """``sweep.json``: the runs in grid order, solved fractions per (cell, T), and per cell
    the longest T solved in every seed and in any seed (None when there is none)."""
    by_key = {_key(r): r for r in records}
    runs = [by_key[t] for t in plan.tasks() if t in by_key]
    table: dict[str, dict[str, Any]] = {}
    longest: dict[str, dict[str, int | None]] = {}
    for cell in plan.names:
        table[cell] = {}
        every, some = None, None
        for T in plan.seq_lens:
            cell_runs = [r for r in runs if r["cell"] == cell and r["seq_len"] == T]
            if not cell_runs:
                continue
            solved = [r for r in cell_runs if r["solved"]]
            table[cell][str(T)] = {
                "solved": len(solved),
                "runs": len(cell_runs),
                "median_final_test_mse": statistics.median(r["final_test_mse"] for r in cell_runs),
                "median_steps_to_solve": (
                    statistics.median(r["steps_to_solve"] for r in solved) if solved else None
                ),
            }
            if len(solved) == len(cell_runs):
                every = T
            if solved:
                some = T
        longest[cell] = {"every_seed": every, "any_seed": some}
    return {
        "task": "adding problem (Le et al. 2015; Arjovsky et al. 2016)",
        "threshold": plan.threshold,
        "settings": plan.shared_settings(),
        "cells": {name: MODEL_LABELS.get(name, name) for name in plan.names},
        "seq_lens": list(plan.seq_lens),
        "seeds": list(plan.seeds),
        "baselines": {
            "predict_mean": MSE_PREDICT_MEAN,
            "second_marker_only": MSE_SECOND_MARKER_ONLY,
        },
        "table": table,
        "longest_solved": longest,
        "runs": runs,
        "seconds": round(sum(r["seconds"] for r in runs), 1),
    }


def write_sweep(summary: dict[str, Any], folder: Path) -> list[str]:
    """Write ``sweep.json``, ``horizon.png``/``.svg`` and ``report.html`` (staged, all at once)."""
    from .plots import horizon_figure, save_figure
    from .report import render_sweep_html, staged_output

    with staged_output(folder) as stage:
        figure = horizon_figure(summary)
        pictures = save_figure(figure, stage / HORIZON_NAME, ("png", "svg"))
        page = render_sweep_html(summary, (stage / f"{HORIZON_NAME}.png").read_bytes())
        (stage / SWEEP_NAME).write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
        (stage / REPORT_NAME).write_text(page, encoding="utf-8")
    return [p.name for p in pictures] + [SWEEP_NAME, REPORT_NAME]


def outputs_complete(folder: Path) -> bool:
    """True when every file :func:`write_sweep` makes is in ``folder``."""
    names = (SWEEP_NAME, REPORT_NAME, f"{HORIZON_NAME}.png", f"{HORIZON_NAME}.svg")
    return all((folder / name).exists() for name in names)
