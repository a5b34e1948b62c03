"""Long training loops stay flat: no growth in traced memory or in live graph nodes."""

import gc
import tracemalloc

import numpy as np

import tinygrad_seq as ts
from tinygrad_seq import autograd, nn, optim
from tinygrad_seq import functional as F


def live_nodes() -> int:
    gc.collect()
    # type(), not isinstance(): some objects (lazy torch modules) warn when asked __class__
    return sum(issubclass(type(obj), autograd.Function) for obj in gc.get_objects())


def soak(step, steps=2000, checkpoints=(200, 2000)):
    """Run ``step`` repeatedly; return traced memory and live nodes at the checkpoints."""
    memory, nodes = {}, {}
    tracemalloc.start()
    try:
        for i in range(1, steps + 1):
            step()
            if i in checkpoints:
                gc.collect()
                memory[i] = tracemalloc.get_traced_memory()[0]
                nodes[i] = live_nodes()
    finally:
        tracemalloc.stop()
    return memory, nodes


def test_truncated_bptt_training_of_an_lstm_runs_flat_for_2000_steps():
    rng = np.random.default_rng(0)
    model = nn.LSTM(2, 4, rng=rng)
    head = nn.Linear(4, 1, rng=rng)
    opt = optim.Adam([*model.parameters(), *head.parameters()], lr=1e-2)
    stream = ts.tensor(rng.standard_normal((400, 1, 2)).astype(np.float32))
    target = ts.tensor(rng.standard_normal((400, 1, 1)).astype(np.float32))
    position = {"t": 0, "state": None}

    def step():
        start = position["t"] % 400
        chunk, goal = stream[start : start + 2], target[start : start + 2]
        out, state = model(chunk, position["state"])
        loss = F.mse_loss(head(out), goal)
        opt.zero_grad()
        loss.backward()
        opt.step()
        position["state"] = nn.detach_state(state)
        position["t"] += 2

    memory, nodes = soak(step)
    assert nodes[2000] <= nodes[200]  # nothing of old chunks' graphs survives
    assert memory[2000] - memory[200] < 64 * 1024, memory


def test_a_loop_that_forgets_zero_grad_grows_gradients_not_memory():
    rng = np.random.default_rng(1)
    cell = nn.RNNCell(3, 5, rng=rng)
    x = ts.tensor(rng.standard_normal((4, 3)).astype(np.float32))

    def step():
        h = None
        for _ in range(3):
            h = cell(x, h)
        h.sum().backward()  # .grad keeps accumulating: the user forgot zero_grad

    memory, nodes = soak(step)
    assert nodes[2000] <= nodes[200]
    assert memory[2000] - memory[200] < 64 * 1024, memory
    single = cell.weight_hh.grad.data / 2000
    assert np.abs(cell.weight_hh.grad.data).max() > 100 * np.abs(single).max() > 0


def test_the_soak_measurement_would_notice_a_leak():
    kept = []
    x = ts.ones(64, requires_grad=True)

    def leaky_step():
        kept.append(x * 2)  # holds every graph alive

    memory, nodes = soak(leaky_step, steps=400, checkpoints=(100, 400))
    assert nodes[400] - nodes[100] == 300
    assert memory[400] - memory[100] > 64 * 1024
