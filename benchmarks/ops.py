"""Per-op overhead: forward + backward of add, tanh and matmul against numpy alone.

    python benchmarks/ops.py [--size 64] [--repeats 31] [--number 500]

For each op, one timed sample runs ``number`` iterations of forward + backward through
tinygrad_seq (with a given upstream gradient, leaf gradients reset each time) and the same
arithmetic written directly in numpy (forward, and the input gradients a hand-written
program would compute: fresh arrays for both inputs). Samples of the two contenders are
interleaved in one process, so a busy machine slows both alike; the table shows medians and
their ratio. BLAS runs on one thread (threadpoolctl), as two-thread pools make small
products noisy on a shared 2-core machine.

A second table times backpropagation through a tanh recurrence of 1,000 and 10,000 steps:
the engine is linear in the graph's size, so the ratio should be close to 10.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

import tinygrad_seq as ts

TARGETS = {"add": 5.0, "tanh": 3.0, "matmul": 1.75}


def contenders(size: int) -> dict[str, tuple[Callable[[], None], Callable[[], None]]]:
    rng = np.random.default_rng(0)
    a, b, g = (rng.standard_normal((size, size)).astype(np.float32) for _ in range(3))
    ta, tb = ts.tensor(a, requires_grad=True), ts.tensor(b, requires_grad=True)
    tg = ts.tensor(g)

    def ours(forward: Callable[[], ts.Tensor]) -> Callable[[], None]:
        def step() -> None:
            ta.grad = tb.grad = None
            forward().backward(tg)

        return step

    def numpy_add() -> None:
        a + b
        g.copy(), g.copy()  # ∂L/∂a = ∂L/∂b = g, one array each

    def numpy_tanh() -> None:
        y = np.tanh(a)
        g * (1 - y * y)

    def numpy_matmul() -> None:
        a @ b
        g @ b.T, a.T @ g

    return {
        "add": (ours(lambda: ta + tb), numpy_add),
        "tanh": (ours(lambda: ta.tanh()), numpy_tanh),
        "matmul": (ours(lambda: ta @ tb), numpy_matmul),
    }


def sample(fn: Callable[[], None], number: int) -> float:
    start = time.perf_counter()
    for _ in range(number):
        fn()
    return (time.perf_counter() - start) / number


def recurrence_backward_seconds(steps: int) -> float:
    rng = np.random.default_rng(1)
    w = ts.tensor(rng.standard_normal((16, 16)).astype(np.float32) * 0.3, requires_grad=True)
    x = ts.tensor(rng.standard_normal((steps, 4, 16)).astype(np.float32))
    h = ts.zeros(4, 16)
    for t in range(steps):
        h = (h @ w + x[t]).tanh()
    loss = h.sum()
    start = time.perf_counter()
    loss.backward()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=31, help="samples per contender")
    parser.add_argument("--number", type=int, default=500, help="iterations per sample")
    args = parser.parse_args()

    with threadpool_limits(1):
        blas = ", ".join(
            f"{p['internal_api']} ({p['num_threads']} thread)" for p in threadpool_info()
        )
        print(f"({args.size}, {args.size}) float32, forward + backward; BLAS: {blas}")
        print(f"median of {args.repeats} samples x {args.number} iterations, interleaved\n")
        print(f"{'op':<8}{'tinygrad_seq':>14}{'numpy':>12}{'ratio':>8}{'target':>9}")
        for name, (ours, reference) in contenders(args.size).items():
            ours(), reference()  # warm-up
            times: dict[str, list[float]] = {"ours": [], "numpy": []}
            for _ in range(args.repeats):
                times["ours"].append(sample(ours, args.number))
                times["numpy"].append(sample(reference, args.number))
            t_ours, t_numpy = (statistics.median(times[k]) for k in ("ours", "numpy"))
            ratio = t_ours / t_numpy
            verdict = "ok" if ratio <= TARGETS[name] else "SLOW"
            print(
                f"{name:<8}{t_ours * 1e6:>11.1f} us{t_numpy * 1e6:>9.1f} us{ratio:>7.2f}x"
                f"{TARGETS[name]:>7.1f}x {verdict}"
            )

        print("\nbackward through a tanh recurrence h = tanh(h @ W + x_t), B=4, H=16")
        medians = {}
        for steps in (1_000, 10_000):
            medians[steps] = statistics.median(recurrence_backward_seconds(steps) for _ in range(5))
            print(f"  T={steps:>6}: {medians[steps] * 1e3:8.1f} ms")
        print(
            f"  ratio 10,000 / 1,000 steps: {medians[10_000] / medians[1_000]:.1f}x (target < 20x)"
        )


if __name__ == "__main__":
    main()
