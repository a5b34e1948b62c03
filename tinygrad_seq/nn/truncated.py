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

The state carried from chunk to chunk is the state at the *end* of a chunk, which starts the
next one: that only makes sense for a model that reads forwards in time. A reverse or
bidirectional model is refused when there is more than one chunk (its backward direction
would start each chunk from the state of the chunk before, which it has not yet read).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..tensor import Tensor
from .cells import map_state

__all__ = ["TruncatedResult", "detach_state", "truncated_bptt"]


def detach_state(state: Any) -> Any:
    """The same state (a Tensor, or tuples, lists and dicts of them) cut from the graph."""
    if state is None:
        return None
    try:
        return map_state(Tensor.detach, state)
    except TypeError as error:
        raise TypeError(f"detach_state: {error}") from None


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

    A model that reads backwards (``reverse=True``, ``bidirectional=True``) is refused unless
    ``chunk_size`` ≥ T: its state cannot be carried forwards from chunk to chunk.
    """
    if chunk_size < 1:
        raise ValueError(f"truncated_bptt: chunk_size must be at least 1, got {chunk_size}")
    x = x if isinstance(x, Tensor) else Tensor(x)
    time_axis = 1 if getattr(model, "batch_first", False) else 0
    length = x.shape[time_axis]
    backwards = [flag for flag in ("reverse", "bidirectional") if getattr(model, flag, False)]
    if backwards and chunk_size < length:
        raise ValueError(
            f"truncated_bptt: {type(model).__name__} has {backwards[0]}=True, so it reads the "
            f"sequence backwards, but the state is carried forwards from one chunk of "
            f"{chunk_size} steps to the next ({length} steps): truncate a forward-only model, "
            f"or pass chunk_size >= {length} for full BPTT"
        )
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
