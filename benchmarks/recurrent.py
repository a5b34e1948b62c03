"""One training step of a recurrent model: fused kernels, composed cells, PyTorch, the floor.

    python benchmarks/recurrent.py [--quick] [--repeats 9] [--skip-memory] [--skip-long]

A training step is: forward through a single-layer LSTM or RNN (float32), a linear head on
the last hidden state, the MSE loss, backward through all steps, one SGD update. Contenders:

- ``fused``: ``nn.LSTM`` / ``nn.RNN`` of tinygrad_seq (the default, one kernel per layer);
- ``composed``: the same layer with ``fused=False`` (the cells, one graph node per op);
- ``torch``: ``torch.nn.LSTM`` / ``torch.nn.RNN`` (when torch is installed);
- ``torch cells``: a Python loop over ``torch.nn.LSTMCell`` / ``RNNCell`` (the composed
  path's natural opponent);
- ``floor``: numpy doing only the matrix products of a step (input projection, the T
  recurrent products forward and backward, the weight and input gradients): no framework
  can do the step faster with the same BLAS.

Before timing, every contender computes the loss and all gradients from the same weights
and data, and they must agree (float32 rounding). Samples of all contenders are interleaved
in one process, so a busy machine slows all alike; the table shows medians. Every BLAS and
OpenMP pool and torch run on one thread (threadpoolctl, ``torch.set_num_threads(1)``).
Objects made before timing (torch's modules, the data) are frozen out of the garbage
collector's scans, so no contender pays for scanning another's imports (see
``time_contenders``).

Peak memory is measured per contender in a fresh process: for the numpy contenders the
peak of ``tracemalloc`` during one step (numpy reports its buffers to tracemalloc, so this
counts exactly the arrays alive at the worst moment), for torch the growth of the process's
peak resident set (``VmHWM``, reset just before the step) during one step — coarser (pages,
allocator caching, the first step's lazy set-up), as torch's CPU allocations are invisible
to tracemalloc. The fused LSTM's peak at the medium
size is compared with the activations BPTT must keep (gates, cell and hidden state of every
step), and a long-sequence check times T = 10,000 against T = 1,000 on both paths.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

import tinygrad_seq as ts
from tinygrad_seq import nn

try:
    import torch
except ImportError:  # the torch columns are left out
    torch = None

SIZES = {  # name: (T, B, D, H)
    "small": (50, 32, 16, 64),
    "medium": (100, 64, 32, 256),
    "long": (1000, 8, 8, 32),
}
KINDS = ("lstm", "rnn")
LR = 0.01


# --------------------------------------------------------------------------- the models


def weights(kind: str, size: str, seed: int = 0) -> dict[str, np.ndarray]:
    """The shared starting point: layer and head weights, input and target (float32)."""
    T, B, D, H = SIZES[size]
    G = 4 * H if kind == "lstm" else H
    rng = np.random.default_rng(seed)
    bound = 1 / np.sqrt(H)

    def uniform(*shape: int) -> np.ndarray:
        return rng.uniform(-bound, bound, shape).astype(np.float32)

    return {
        "weight_ih_l0": uniform(G, D),
        "weight_hh_l0": uniform(G, H),
        "bias_ih_l0": uniform(G),
        "bias_hh_l0": uniform(G),
        "head.weight": uniform(1, H),
        "head.bias": uniform(1),
        "x": rng.standard_normal((T, B, D)).astype(np.float32),
        "y": rng.standard_normal((B, 1)).astype(np.float32),
    }


class Contender:
    """A training step and the gradients it computes (layer weights first, then the head)."""

    step: Callable[[], float]
    gradients: Callable[[], list[np.ndarray]]


def ours(kind: str, size: str, fused: bool) -> Contender:
    w = weights(kind, size)
    T, B, D, H = SIZES[size]
    layer_type = nn.LSTM if kind == "lstm" else nn.RNN
    layer, head = layer_type(D, H, fused=fused), nn.Linear(H, 1)
    layer.load_state_dict({k: v for k, v in w.items() if k.endswith("_l0")})
    head.load_state_dict({"weight": w["head.weight"], "bias": w["head.bias"]})
    params = [*layer.parameters(), *head.parameters()]
    optimizer = ts.optim.SGD(params, lr=LR)
    x, y = ts.tensor(w["x"]), ts.tensor(w["y"])

    contender = Contender()

    def step() -> float:
        optimizer.zero_grad()
        output, _ = layer(x)
        loss = ts.functional.mse_loss(head(output[-1]), y)
        loss.backward()
        optimizer.step()
        return float(loss.item())

    contender.step = step
    contender.gradients = lambda: [p.grad.data for p in params]
    return contender


def pytorch(kind: str, size: str, cells: bool) -> Contender:
    w = weights(kind, size)
    T, B, D, H = SIZES[size]
    if cells:
        layer = (torch.nn.LSTMCell if kind == "lstm" else torch.nn.RNNCell)(D, H)
        state = {k.removesuffix("_l0"): torch.from_numpy(v) for k, v in w.items() if "_l0" in k}
    else:
        layer = (torch.nn.LSTM if kind == "lstm" else torch.nn.RNN)(D, H)
        state = {k: torch.from_numpy(v) for k, v in w.items() if k.endswith("_l0")}
    layer.load_state_dict(state)
    head = torch.nn.Linear(H, 1)
    head.load_state_dict(
        {"weight": torch.from_numpy(w["head.weight"]), "bias": torch.tensor(w["head.bias"])}
    )
    params = [*layer.parameters(), *head.parameters()]
    optimizer = torch.optim.SGD(params, lr=LR)
    x, y = torch.from_numpy(w["x"]), torch.from_numpy(w["y"])

    def last_hidden() -> Any:
        if not cells:
            return layer(x)[0][-1]
        state = None
        for t in range(T):
            state = layer(x[t], state)
        return state[0] if kind == "lstm" else state

    contender = Contender()

    def step() -> float:
        optimizer.zero_grad()
        loss = torch.nn.functional.mse_loss(head(last_hidden()), y)
        loss.backward()
        optimizer.step()
        return float(loss.item())

    contender.step = step
    contender.gradients = lambda: [p.grad.numpy() for p in params]
    return contender


def floor(kind: str, size: str) -> Contender:
    """Only the matrix products of a training step, into preallocated arrays."""
    T, B, D, H = SIZES[size]
    G = 4 * H if kind == "lstm" else H
    rng = np.random.default_rng(0)
    w_ih, w_hh = (rng.standard_normal(s).astype(np.float32) for s in ((G, D), (G, H)))
    x_rows = rng.standard_normal((T * B, D)).astype(np.float32)
    states = rng.standard_normal((T, B, H)).astype(np.float32)
    delta = rng.standard_normal((T, B, G)).astype(np.float32)
    projection, grad_x = np.empty((T * B, G), np.float32), np.empty((T * B, D), np.float32)
    step_out, step_back = np.empty((B, G), np.float32), np.empty((B, H), np.float32)
    grad_ih, grad_hh = np.empty((G, D), np.float32), np.empty((G, H), np.float32)

    def step() -> float:
        np.matmul(x_rows, w_ih.T, out=projection)  # input projection of all steps
        w_hh_t = np.ascontiguousarray(w_hh.T)  # the faster layout for few rows (see kernels)
        for t in range(T):
            np.matmul(states[t], w_hh_t, out=step_out)  # forward recurrence
        for t in reversed(range(T)):
            np.matmul(delta[t], w_hh, out=step_back)  # backward recurrence
        rows = delta.reshape(T * B, G)
        np.matmul(rows.T, x_rows, out=grad_ih)
        np.matmul(rows.T, states.reshape(T * B, H), out=grad_hh)
        np.matmul(rows, w_ih, out=grad_x)
        return 0.0

    contender = Contender()
    contender.step = step
    contender.gradients = lambda: []
    return contender


def contenders(kind: str, size: str) -> dict[str, Contender]:
    found = {"fused": ours(kind, size, True), "composed": ours(kind, size, False)}
    if torch is not None:
        found["torch"] = pytorch(kind, size, cells=False)
        found["torch cells"] = pytorch(kind, size, cells=True)
    found["floor"] = floor(kind, size)
    return found


# --------------------------------------------------------------------------- checks, timing


def check_agreement(kind: str, size: str, found: dict[str, Contender]) -> str:
    """Every contender's first step gives the loss and gradients of the fused one."""
    reference_loss, reference = None, None
    worst = 0.0
    for name, contender in found.items():
        if name == "floor":
            continue
        loss = contender.step()
        grads = contender.gradients()
        if reference is None:
            reference_loss, reference = loss, [g.copy() for g in grads]
            continue
        if abs(loss - reference_loss) > 1e-4 * max(abs(reference_loss), 1e-3):
            raise SystemExit(f"{kind} {size}: {name} loss {loss} != fused loss {reference_loss}")
        for k, (g, r) in enumerate(zip(grads, reference, strict=True)):
            error = float(np.max(np.abs(g - r)) / max(np.max(np.abs(r)), 1e-30))
            worst = max(worst, error)
            if error > 1e-3:
                raise SystemExit(
                    f"{kind} {size}: {name} gradient {k} differs from fused's by {error:.2e} "
                    "(relative to its largest entry)"
                )
    return f"{worst:.1e}"


def sample(step: Callable[[], float], number: int) -> float:
    start = time.perf_counter()
    for _ in range(number):
        step()
    return (time.perf_counter() - start) / number


def time_contenders(found: dict[str, Contender], repeats: int, number: int) -> dict[str, float]:
    """Median seconds per step, samples interleaved across contenders.

    The objects that exist before timing (imported modules, torch's many among them, the
    weights and data) are frozen out of the garbage collector's reach (``gc.freeze``).
    Python's full collections scan every object in the process, so otherwise the composed
    contender, which makes Python objects for every op, would pay for scanning torch's
    module objects, which a process that only uses tinygrad_seq does not hold. Each
    contender still pays for the collections its own objects cause.
    """
    for contender in found.values():
        contender.step()  # warm-up
    gc.collect()
    gc.freeze()
    try:
        times: dict[str, list[float]] = {name: [] for name in found}
        for _ in range(repeats):
            for name, contender in found.items():
                times[name].append(sample(contender.step, number))
    finally:
        gc.unfreeze()
    return {name: statistics.median(t) for name, t in times.items()}


# --------------------------------------------------------------------------- memory


def measure_memory(kind: str, size: str, contender: str, T: int | None = None) -> dict[str, float]:
    """Peak memory of one step of ``contender``, measured in a fresh process."""
    command = [sys.executable, __file__, "--memory-child", kind, size, contender]
    if T is not None:
        command += ["--child-T", str(T)]
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def memory_child(kind: str, size: str, name: str) -> None:
    with threadpool_limits(1):
        if torch is not None:
            torch.set_num_threads(1)
        if name.startswith("torch"):
            contender = pytorch(kind, size, cells=name == "torch cells")
        else:
            contender = ours(kind, size, fused=name == "fused")
        rss_before = _reset_peak_rss()
        tracemalloc.start()
        baseline, _ = tracemalloc.get_traced_memory()
        contender.step()
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        rss_growth = _status_kb("VmHWM") - rss_before
    print(json.dumps({"tracemalloc_mb": (peak - baseline) / 2**20, "rss_mb": rss_growth / 1024}))


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field + ":"))


def _reset_peak_rss() -> int:
    """Reset the peak resident set (VmHWM) to the current one and return it, in kB."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    return _status_kb("VmRSS")


def activation_mb(kind: str, size: str) -> float:
    """What BPTT must keep: per step the gates (4H or H), the cell state and h (float32)."""
    T, B, _, H = SIZES[size]
    per_step = 6 * H if kind == "lstm" else H
    return T * B * per_step * 4 / 2**20


# --------------------------------------------------------------------------- report


def machine() -> str:
    blas = ", ".join(f"{p['internal_api']} {p.get('version', '')}" for p in threadpool_info())
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if "model name" in line)
    except (OSError, StopIteration):
        pass
    versions = f"numpy {np.__version__}" + (f", torch {torch.__version__}" if torch else "")
    return (
        f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, {versions}, "
        f"BLAS: {blas}; everything on one thread"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few samples, shorter long check")
    parser.add_argument("--repeats", type=int, default=9, help="samples per contender")
    parser.add_argument("--sizes", default=",".join(SIZES))
    parser.add_argument("--kinds", default=",".join(KINDS))
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--skip-long", action="store_true")
    parser.add_argument("--memory-child", nargs=3, help=argparse.SUPPRESS)
    parser.add_argument("--child-T", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.memory_child:
        kind, size, name = args.memory_child
        if args.child_T:
            SIZES[size] = (args.child_T, *SIZES[size][1:])
        memory_child(kind, size, name)
        return

    repeats = 3 if args.quick else args.repeats
    print(machine())
    print(f"median of {repeats} interleaved samples; ms per training step\n")
    header = f"{'model':<14}{'contender':<13}{'ms':>9}{'/ torch':>9}{'/ floor':>9}"
    header += "" if args.skip_memory else f"{'peak MB':>10}"
    print(header, end="")
    with threadpool_limits(1):
        if torch is not None:
            torch.set_num_threads(1)
        for kind in args.kinds.split(","):
            for size in args.sizes.split(","):
                found = contenders(kind, size)
                agreement = check_agreement(kind, size, found)
                T = SIZES[size][0]
                number = max(1, int(400 / (T * (4 if size == "medium" else 1))))
                medians = time_contenders(found, repeats, number)
                print(f"\n{kind} {size} {SIZES[size]} (T, B, D, H); gradients agree to {agreement}")
                for name, seconds in medians.items():
                    torch_ratio = (
                        f"{seconds / medians['torch']:>8.2f}x" if "torch" in medians else f"{'':>9}"
                    )
                    line = f"  {'':<12}{name:<13}{seconds * 1e3:>9.2f}{torch_ratio}"
                    line += f"{seconds / medians['floor']:>8.2f}x"
                    if not args.skip_memory and name != "floor":
                        memory = measure_memory(kind, size, name)
                        key = "rss_mb" if name.startswith("torch") else "tracemalloc_mb"
                        line += f"{memory[key]:>9.1f}{'*' if key == 'rss_mb' else ''}"
                    print(line)
                if "torch cells" in medians:
                    print(
                        f"  composed / torch cells: "
                        f"{medians['composed'] / medians['torch cells']:.2f}x"
                    )
        if not args.skip_memory:
            print("\n* torch: growth of the peak resident set (VmHWM) during the step")
            peak = measure_memory("lstm", "medium", "fused")["tracemalloc_mb"]
            needed = activation_mb("lstm", "medium")
            print(
                f"fused LSTM, medium: peak {peak:.1f} MB during a step; activations BPTT must "
                f"keep (gates 4H, cell H, hidden H per step) {needed:.1f} MB: "
                f"{peak / needed:.2f}x"
            )
        if not args.skip_long:
            long_check(args.quick)


def long_check(quick: bool) -> None:
    """One LSTM step at T and 10·T (B=8, D=8, H=32): time and peak memory on both paths."""
    short, long = (200, 2_000) if quick else (1_000, 10_000)
    print(f"\nlong sequences: LSTM (B=8, D=8, H=32), T={long:,} against T={short:,}")
    for fused in (True, False):
        name = "fused" if fused else "composed"
        seconds, peaks = {}, {}
        for T in (short, long):
            SIZES["check"] = (T, 8, 8, 32)
            contender = ours("lstm", "check", fused)
            contender.step()
            seconds[T] = statistics.median(sample(contender.step, 1) for _ in range(3))
            peaks[T] = measure_memory("lstm", "long", name, T)["tracemalloc_mb"]
        print(
            f"  {name:<9} {seconds[short] * 1e3:8.1f} ms -> {seconds[long] * 1e3:9.1f} ms "
            f"({seconds[long] / seconds[short]:.1f}x);  peak {peaks[short]:.1f} MB -> "
            f"{peaks[long]:.1f} MB ({peaks[long] / peaks[short]:.1f}x)"
        )


if __name__ == "__main__":
    main()
