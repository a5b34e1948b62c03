"""Batching as in ``torch.utils.data``: ``Dataset``, ``TensorDataset``, ``DataLoader``.

A data set is anything with ``len(dataset)`` and ``dataset[i]`` (a list works); a
:class:`DataLoader` cuts it into batches, shuffled or not, and :func:`default_collate` turns
each list of examples into one batch::

    loader = DataLoader(TensorDataset(x, y), batch_size=32, shuffle=True,
                        generator=np.random.default_rng(0))
    for epoch in range(10):
        for x_batch, y_batch in loader:       # Tensors (32, …): the examples stacked
            ...

Everything runs in this process (there are no worker processes), and a shuffle draws from a
numpy ``Generator``: the one given, or the library's default one (seeded by
``ts.manual_seed``), as PyTorch draws from its global generator.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from .. import functional as F
from ..tensor import Tensor, default_generator, tensor

__all__ = ["DataLoader", "Dataset", "TensorDataset", "default_collate"]

# PyTorch's options that make sense only with worker processes or custom samplers: their
# default values do here what they do in PyTorch, any other value is refused.
_PROCESS_OPTIONS = {
    "num_workers": 0,
    "pin_memory": False,
    "timeout": 0,
    "worker_init_fn": None,
    "prefetch_factor": None,
    "persistent_workers": False,
    "sampler": None,
    "batch_sampler": None,
}


class Dataset:
    """Base class of map-style data sets: subclasses define ``__getitem__`` and ``__len__``."""

    def __getitem__(self, index: int) -> Any:
        raise NotImplementedError(
            f"{type(self).__name__} does not define __getitem__: add "
            "`def __getitem__(self, index) -> example`"
        )


class TensorDataset(Dataset):
    """Examples along the first axis of tensors of equal length: ``dataset[i]`` is the tuple
    ``(t[i] for t in tensors)``, as ``torch.utils.data.TensorDataset``. Arrays become Tensors.
    """

    def __init__(self, *tensors: Tensor | np.ndarray) -> None:
        if not tensors:
            raise ValueError("TensorDataset: needs at least one tensor")
        self.tensors = tuple(t if isinstance(t, Tensor) else tensor(t) for t in tensors)
        if any(t.ndim == 0 for t in self.tensors) or len({len(t) for t in self.tensors}) > 1:
            shapes = ", ".join(str(t.shape) for t in self.tensors)
            raise ValueError(
                "TensorDataset: every tensor needs the same first dimension (the number of "
                f"examples); got shapes {shapes}"
            )

    def __getitem__(self, index: Any) -> tuple[Tensor, ...]:
        return tuple(t[index] for t in self.tensors)

    def __len__(self) -> int:
        return len(self.tensors[0])


def default_collate(batch: Sequence[Any]) -> Any:
    """A list of examples as one batch, the way PyTorch's ``default_collate`` does it.

    Tensors, numpy arrays and numpy scalars are stacked along a new first axis (keeping their
    dtype); Python floats become a float64 Tensor, ints int64, bools bool; strings stay a
    list. A dict (or a named tuple) of such things becomes a dict (named tuple) of batches;
    a tuple or list becomes a *list* of batches, one per position, as in PyTorch.
    """
    if len(batch) == 0:
        raise ValueError("default_collate: the batch is empty")
    first = batch[0]
    if isinstance(first, Tensor):
        _same_shapes(batch, [t.shape for t in batch])
        return F.stack(batch, axis=0)
    if isinstance(first, np.ndarray | np.generic):
        if first.dtype.kind in "USOV":
            raise TypeError(
                f"default_collate: cannot batch numpy arrays of dtype {first.dtype}; convert "
                "them to numbers or pass a collate_fn"
            )
        _same_shapes(batch, [np.shape(a) for a in batch])
        return tensor(np.stack(batch))
    if isinstance(first, bool | int | float):
        dtype = bool if isinstance(first, bool) else np.int64 if isinstance(first, int) else None
        return tensor(np.asarray(batch, dtype=dtype or np.float64))
    if isinstance(first, str | bytes):
        return list(batch)
    if isinstance(first, Mapping):
        return {key: default_collate([example[key] for example in batch]) for key in first}
    if isinstance(first, tuple | list):
        if len({len(example) for example in batch}) > 1:
            raise ValueError(
                "default_collate: every example must have the same number of elements; got "
                f"lengths {sorted({len(example) for example in batch})}"
            )
        columns = [default_collate(list(column)) for column in zip(*batch, strict=True)]
        return type(first)(*columns) if hasattr(first, "_fields") else columns
    raise TypeError(
        "default_collate: an example must hold Tensors, numpy arrays, numbers, strings, "
        f"dicts, tuples or lists; found {type(first).__name__} (pass a collate_fn for it)"
    )


def _same_shapes(batch: Sequence[Any], shapes: list[tuple[int, ...]]) -> None:
    if len(set(shapes)) > 1:
        raise ValueError(
            f"default_collate: cannot stack examples of different shapes {sorted(set(shapes))}; "
            "pad variable-length sequences with collate_fn=pad_collate()"
        )


class DataLoader:
    """Batches of a data set: ``DataLoader(dataset, batch_size=1, shuffle=False,
    drop_last=False, collate_fn=None, generator=None)``, as ``torch.utils.data.DataLoader``.

    Each pass (``for batch in loader``) visits every example once: in order, or in a new
    random order drawn from ``generator`` (a numpy ``Generator``; by default the library's,
    seeded by ``ts.manual_seed``) when ``shuffle``. A batch is
    ``collate_fn([dataset[i] for i in indices])`` (:func:`default_collate` by default); the
    last one is smaller unless ``drop_last``. ``len(loader)`` is the number of batches.
    """

    def __init__(
        self,
        dataset: Any,
        batch_size: int = 1,
        shuffle: bool = False,
        drop_last: bool = False,
        collate_fn: Callable[[list[Any]], Any] | None = None,
        generator: np.random.Generator | None = None,
        **pytorch_options: Any,
    ) -> None:
        for name, value in pytorch_options.items():
            if name not in _PROCESS_OPTIONS:
                raise TypeError(f"DataLoader got an unexpected keyword argument {name!r}")
            if value != _PROCESS_OPTIONS[name]:
                raise ValueError(
                    f"DataLoader: {name}={value!r} is not supported (batches are made in this "
                    "process, in order or shuffled); leave it out"
                )
        if not (hasattr(dataset, "__len__") and hasattr(dataset, "__getitem__")):
            raise TypeError(
                f"DataLoader: the dataset ({type(dataset).__name__}) needs __len__ and "
                "__getitem__ (a map-style data set such as a list or a TensorDataset)"
            )
        if isinstance(batch_size, bool) or not isinstance(batch_size, int | np.integer):
            raise TypeError(
                f"DataLoader: batch_size must be a positive int, got {batch_size!r}"
                + ("; for one example at a time iterate the dataset" if batch_size is None else "")
            )
        if batch_size < 1:
            raise ValueError(f"DataLoader: batch_size must be a positive int, got {batch_size}")
        if generator is not None and not isinstance(generator, np.random.Generator):
            raise TypeError(
                "DataLoader: generator must be a numpy Generator, such as "
                f"np.random.default_rng(0); got {type(generator).__name__}"
            )
        self.dataset, self.batch_size = dataset, int(batch_size)
        self.shuffle, self.drop_last = bool(shuffle), bool(drop_last)
        self.collate_fn, self.generator = collate_fn, generator

    def __len__(self) -> int:
        count = len(self.dataset) / self.batch_size
        return math.floor(count) if self.drop_last else math.ceil(count)

    def __iter__(self) -> Iterator[Any]:
        size = len(self.dataset)
        if self.shuffle:
            order = (self.generator or default_generator()).permutation(size)
        else:
            order = np.arange(size)
        for start in range(0, len(self) * self.batch_size, self.batch_size):
            yield self._batch(order[start : start + self.batch_size])

    def _batch(self, indices: np.ndarray) -> Any:
        if self.collate_fn is None and _plain_tensor_dataset(self.dataset):
            # The same as stacking the examples one by one, in one indexing per tensor.
            return [t[indices] for t in self.dataset.tensors]
        collate = self.collate_fn or default_collate
        return collate([self.dataset[int(i)] for i in indices])

    def __repr__(self) -> str:
        return (
            f"DataLoader({len(self.dataset)} examples, batch_size={self.batch_size}, "
            f"shuffle={self.shuffle}, drop_last={self.drop_last})"
        )


def _plain_tensor_dataset(dataset: Any) -> bool:
    return getattr(type(dataset), "__getitem__", None) is TensorDataset.__getitem__
