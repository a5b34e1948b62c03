"""Truncated backpropagation through time: long sequences in chunks of k steps.

Full BPTT keeps the graph of every step until ``backward``, so memory grows with the length
and one update waits for the whole sequence. Truncated BPTT runs the sequence in chunks:
the state is carried from one chunk to the next, but the graph is cut there with
``detach``, so gradients flow back at most k steps::

    state = None
    for start in range(0, T, k):
        outputs, state = rnn(x[start:start + k], state)
        loss = loss_fn(outputs, targets[start:start + k])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        state = detach_state(state)        # keep the values, forget the graph

:func:`truncated_bptt` is that loop. With k ≥ T there is one chunk and it is full BPTT.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..tensor import Tensor

__all__ = ["TruncatedResult", "detach_state", "truncated_bptt"]


def detach_state(state: Any) -> Any:
    """The same state (a Tensor or nested tuples/lists of them) cut from the graph."""
    if state is None:
        return None
    if isinstance(state, Tensor):
        return state.detach()
    if isinstance(state, tuple | list):
        return type(state)(detach_state(s) for s in state)
    raise TypeError(f"detach_state: a state holds Tensors or tuples of them, not {type(state)}")


@dataclass
class TruncatedResult:
    """What :func:`truncated_bptt` returns: each chunk's loss and the final (detached) state."""

    losses: list[float]
    state: Any


def truncated_bptt(
    model: Callable[..., tuple[Tensor, Any]],
    x: Tensor,
    chunk_size: int,
    loss_fn: Callable[[Tensor, slice], Tensor],
    state: Any = None,
    optimizer: Any = None,
) -> TruncatedResult:
    """Run ``model`` over ``x`` in chunks of ``chunk_size`` steps, backpropagating each chunk.

    ``model(x_chunk, state) -> (outputs, state)`` is a :class:`Recurrent` or an ``RNN`` /
    ``LSTM`` / ``GRU`` layer (time-first or ``batch_first``). ``loss_fn(outputs, steps)``
    returns the chunk's scalar loss; ``steps`` is the slice of time steps the chunk covers,
    to pick the matching targets. With an ``optimizer`` each chunk is one update
    (``zero_grad``, ``backward``, ``step``); without one the chunks' gradients add up in
    ``.grad``, and with ``chunk_size`` ≥ T that is exactly the full-BPTT gradient.
    """
    if chunk_size < 1:
        raise ValueError(f"truncated_bptt: chunk_size must be at least 1, got {chunk_size}")
    x = x if isinstance(x, Tensor) else Tensor(x)
    time_axis = 1 if getattr(model, "batch_first", False) else 0
    length = x.shape[time_axis]
    losses: list[float] = []
    for start in range(0, length, chunk_size):
        steps = slice(start, min(start + chunk_size, length))
        chunk = x[(slice(None),) * time_axis + (steps,)]
        outputs, state = model(chunk, state)
        loss = loss_fn(outputs, steps)
        if optimizer is not None:
            optimizer.zero_grad()
        loss.backward()
        if optimizer is not None:
            optimizer.step()
        losses.append(float(loss.item()))
        state = detach_state(state)
    return TruncatedResult(losses, state)
