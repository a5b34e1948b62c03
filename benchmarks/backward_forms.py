"""Why each op's backward is written with numpy: the same derivative run two ways.

    python benchmarks/backward_forms.py [--shape 8,32] [--repeats 15] [--number 20000]

Each op's derivative is written once. The engine runs it on plain arrays when no graph of the
gradient is wanted, and on Tensors (through numpy's protocols) under ``create_graph=True``.
The alternative design writes it in Tensor ops only and runs it under ``no_grad`` on wrapped
arrays. This script times one derivative of each kind both ways, on the small arrays of a
recurrent cell, and prints the medians and the extra cost per numpy operation: what every
backward step of the composed path would pay in the other design.
"""

from __future__ import annotations

import argparse
import statistics
import timeit

import numpy as np
from threadpoolctl import threadpool_limits

import tinygrad_seq as ts

# (name, derivative, number of numpy operations in it)
DERIVATIVES = [
    ("tanh: g·(1 − y²)", lambda g, y: g * (1 - y * y), 3),
    ("sigmoid: g·y·(1 − y)", lambda g, y: g * y * (1 - y), 3),
    ("mul: g·b", lambda g, y: g * y, 1),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", default="8,32")
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--number", type=int, default=20000)
    args = parser.parse_args()
    shape = tuple(int(n) for n in args.shape.split(","))
    rng = np.random.default_rng(0)
    g, y = (rng.standard_normal(shape).astype(np.float32) for _ in range(2))
    tg, ty = ts.tensor(g), ts.tensor(y)
    print(f"{shape} float32, medians of {args.repeats} samples x {args.number} calls")
    print(f"{'derivative':24s} {'arrays':>9s} {'Tensor ops':>11s} {'extra per op':>13s}")
    with threadpool_limits(1), ts.no_grad():
        for name, derivative, count in DERIVATIVES:
            times = {"arrays": [], "tensors": []}
            for _ in range(args.repeats):  # interleaved: a busy machine slows both alike
                for kind, a, b in (("arrays", g, y), ("tensors", tg, ty)):
                    call = lambda a=a, b=b, d=derivative: d(a, b)  # noqa: E731
                    seconds = timeit.timeit(call, number=args.number)
                    times[kind].append(seconds / args.number * 1e6)
            arrays, tensors = (statistics.median(times[k]) for k in ("arrays", "tensors"))
            extra = (tensors - arrays) / count
            print(f"{name:24s} {arrays:7.2f} us {tensors:9.2f} us {extra:10.2f} us")


if __name__ == "__main__":
    main()
