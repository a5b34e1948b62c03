"""The vanishing-gradient study: recurrent models on the adding problem, side by side.

Every model reads a sequence x_1 … x_T of pairs (value, marker) and answers once, from its
last output, with the sum of the two marked values (many-to-one: y = V·s_T + β_o). One
marker lies in the first half of the sequence, so the answer needs information carried over
at least T/2 steps. Trivial answers set the bar:

- predict the mean, 1, always: MSE = Var(U₁ + U₂) = 1/6 ≈ 0.167;
- use only the second (recent) marker perfectly: MSE = Var(U₁) = 1/12 ≈ 0.083.

A test MSE below 1/12 proves the first value crossed at least T/2 steps.

**The models.** :data:`MODELS` names the built-in ones: ``rnn`` (the tanh Elman RNN),
``lstm`` (forget-gate bias ``forget_bias``), ``gru`` and ``irnn`` (a ReLU RNN whose
recurrent weights start as the identity and whose biases start at zero, Le, Jaitly & Hinton
2015). Any other cell enters through ``run_study(settings, models={"name": factory})``: the
factory is called as ``factory(input_size, hidden_size)`` and returns a cell that follows
the Cell protocol (driven by :class:`~tinygrad_seq.nn.Recurrent`) or a recurrent layer;
:func:`load_cell` makes a factory from ``package.module:Class`` or ``path/file.py:Class``.

The settings (explained in ``docs/vanishing-gradients.md``): hidden size 32, batch 64, Adam
with learning rate 10⁻², the global gradient norm clipped at 1, float64, weights drawn from
U(±1/√H) as in PyTorch (the tanh RNN's W too — an orthogonal W is the stronger baseline and
flickers; ``init`` chooses), and the LSTM's forget-gate bias set to 1.

While training, :func:`~tinygrad_seq.viz.flow.gradient_flow` measures every few steps, on
a fixed probe batch and with the loss at the last step only, the per-step gradient norms
‖∂L/∂s_t‖ (and ‖∂L/∂C_t‖ where the state has a cell part): the data of the heat maps in
:mod:`tinygrad_seq.lab.plots`. At the start, the middle and the end it also records the
singular values of products of state Jacobians ∂s_T/∂s_{T−k}. ``diagnostics=False`` skips
all of it (training and test loss only).

Nothing here draws: :func:`run_study` returns a :class:`StudyResult`, and
:mod:`tinygrad_seq.lab.report` turns it into pictures, ``report.html`` and ``summary.json``.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import math
import multiprocessing
import os
import queue
import re
import signal
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from .. import functional as F
from ..autograd import no_grad
from ..data import adding_problem
from ..nn import GRU, LSTM, RNN, Linear, Module, Recurrent, init
from ..nn.recurrent import _RecurrentLayer
from ..nn.utils import clip_grad_norm_
from ..optim import Adam
from ..tensor import Tensor, manual_seed
from ..viz.flow import GradientFlow, gradient_flow, jacobian_product_spectrum

__all__ = [
    "INITS",
    "MODELS",
    "MODEL_LABELS",
    "MSE_PREDICT_MEAN",
    "MSE_SECOND_MARKER_ONLY",
    "AddingModel",
    "CellSpecError",
    "ModelRun",
    "StudyResult",
    "StudySettings",
    "build_model",
    "ignore_interrupts",
    "load_cell",
    "measure_snapshots",
    "one_blas_thread",
    "resolve_models",
    "run_study",
    "train_model",
    "wait_for",
]

MSE_PREDICT_MEAN = 1 / 6
"""Test MSE of always answering 1, the mean of U₁ + U₂: Var(U₁ + U₂) = 2 · 1/12."""
MSE_SECOND_MARKER_ONLY = 1 / 12
"""Test MSE of a model that knows the second marked value exactly and guesses ½ for the first."""

MODEL_LABELS = {"rnn": "tanh RNN", "lstm": "LSTM", "gru": "GRU", "irnn": "IRNN"}
MODELS = tuple(MODEL_LABELS)
"""The built-in models, by the names ``--cells`` accepts."""
INITS = ("default", "orthogonal", "identity")
"""Choices for the recurrent weights W of rnn, lstm and gru (each gate's block on its own):
PyTorch's U(±1/√H), an orthogonal matrix, or the identity. The irnn always starts from the
identity, and a user's cell keeps its own initialisation."""
DTYPE = np.float64  # the note's diagnostics see ratios of 10⁻³⁰ and below; float32 underflows
INPUT_SIZE = 2  # (value, marker)

# Independent random streams, all derived from the one --seed (np.random.default_rng((seed, k))).
SEED_STREAMS = {"init": 0, "train_batches": 1, "probe_batch": 2, "test_set": 3}

Factory = Callable[[int, int], Any]


@dataclass(frozen=True)
class StudySettings:
    """Everything that decides the numbers of a run; two runs with equal settings agree."""

    seq_len: int = 50
    steps: int = 1500
    seed: int = 0
    hidden_size: int = 32
    batch_size: int = 64
    learning_rate: float = 1e-2
    max_grad_norm: float = 1.0
    forget_bias: float = 1.0
    init: str = "default"
    diagnostics: bool = True
    record_every: int = 25
    eval_every: int = 100
    probe_size: int = 256
    test_size: int = 1000
    spectrum_size: int = 32

    def __post_init__(self) -> None:
        if not isinstance(self.seq_len, int) or self.seq_len < 2:
            raise ValueError(
                f"seq_len must be a whole number of at least 2 (the two markers lie in different "
                f"halves of the sequence), got {self.seq_len!r}"
            )
        counts = ("steps", "hidden_size", "batch_size", "record_every", "eval_every")
        for name in counts + ("probe_size", "test_size", "spectrum_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a whole number of at least 1, got {value!r}")
        for name in ("learning_rate", "max_grad_norm"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive number, got {value!r}")
        if not math.isfinite(self.forget_bias):
            raise ValueError(f"forget_bias must be a finite number, got {self.forget_bias!r}")
        if not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed must be a whole number ≥ 0, got {self.seed!r}")
        if self.init not in INITS:
            raise ValueError(f"init must be one of {', '.join(INITS)}, got {self.init!r}")

    @classmethod
    def quick(cls, **overrides: Any) -> StudySettings:
        """A smoke-test run of a few seconds: short sequences, few steps, small sets."""
        small = dict(
            seq_len=8,
            steps=20,
            record_every=5,
            eval_every=10,
            probe_size=32,
            test_size=128,
            spectrum_size=4,
        )
        return cls(**{**small, **overrides})

    @property
    def spectrum_steps(self) -> tuple[int, ...]:
        """Training steps at which the Jacobian-product spectrum is taken: start, middle, end."""
        return tuple(sorted({0, self.steps // 2, self.steps}))

    @property
    def seeds(self) -> dict[str, list[int]]:
        """The seed of each random stream, as passed to ``np.random.default_rng``."""
        return {name: [self.seed, stream] for name, stream in SEED_STREAMS.items()}

    def rng(self, stream: str) -> np.random.Generator:
        return np.random.default_rng(self.seeds[stream])


@dataclass
class ModelRun:
    """What training one model produced: its curves, its gradient flow and the model itself.

    ``flow_steps`` are the training steps at which the gradient flow was recorded (0 is
    the initialisation); ``hidden_ratio[i, t]`` is, at record i, the mean over the probe
    batch of log₁₀(‖∂L/∂s_t‖ / ‖∂L/∂s_T‖) (``GradientFlow.log_ratio``), and ``cell_ratio``
    the same for a cell part of the state such as the LSTM's C_t (None without one).
    ``flow_records`` is the recorder's own ``to_dict()`` (batch-mean norms per record),
    ``final_flow`` the last record: the trained model. ``spectra`` maps a training step to
    the singular values of ∂z_T/∂z_{T−k} (z = s, or (h, C) for the LSTM), one row per
    k = 1 … T. Without diagnostics the flow fields are empty (``final_flow`` None).
    ``diagnostic_seconds`` is the part of ``seconds`` spent measuring; ``grad_norms`` the
    global gradient norm of each training step before clipping.
    """

    name: str
    label: str
    model: AddingModel
    train_loss: np.ndarray
    eval_steps: np.ndarray
    test_mse: np.ndarray
    flow_steps: np.ndarray
    hidden_ratio: np.ndarray | None
    cell_ratio: np.ndarray | None
    flow_records: dict[str, Any] | None
    final_flow: GradientFlow | None
    spectra: dict[int, np.ndarray]
    seconds: float
    diagnostic_seconds: float = 0.0
    grad_norms: np.ndarray = field(default_factory=lambda: np.zeros(0))

    @property
    def final_test_mse(self) -> float:
        return float(self.test_mse[-1])

    @property
    def best_test_mse(self) -> float:
        return float(np.min(self.test_mse))


@dataclass
class StudyResult:
    settings: StudySettings
    runs: dict[str, ModelRun]
    baselines: dict[str, float] = field(
        default_factory=lambda: {
            "predict_mean": MSE_PREDICT_MEAN,
            "second_marker_only": MSE_SECOND_MARKER_ONLY,
        }
    )

    @property
    def diagnostic_share(self) -> float:
        """The fraction of the training time spent on the gradient-flow measurements."""
        total = sum(run.seconds for run in self.runs.values())
        return sum(run.diagnostic_seconds for run in self.runs.values()) / total if total else 0.0

    def summary(self) -> dict[str, Any]:
        """The numbers of the run as plain JSON types (what ``summary.json`` holds)."""
        models = {}
        for name, run in self.runs.items():
            entry: dict[str, Any] = {
                "label": run.label,
                "test_mse": run.final_test_mse,
                "best_test_mse": run.best_test_mse,
                "train_loss": _floats(run.train_loss),
                "eval_steps": [int(s) for s in run.eval_steps],
                "test_mse_curve": _floats(run.test_mse),
            }
            if run.final_flow is not None:
                entry |= {
                    "hidden_norms": _floats(run.final_flow.hidden_norms),
                    "flow_steps": [int(s) for s in run.flow_steps],
                    "hidden_log_ratio": _jsonable(run.hidden_ratio),
                    "flow_records": _jsonable(run.flow_records),
                    "jacobian_spectra": {
                        str(step): _jsonable(values) for step, values in run.spectra.items()
                    },
                }
                if run.final_flow.cell_norms is not None:
                    entry["cell_norms"] = _floats(run.final_flow.cell_norms)
                    entry["cell_log_ratio"] = _jsonable(run.cell_ratio)
            models[name] = entry
        return {
            "task": "adding problem (Le et al. 2015; Arjovsky et al. 2016)",
            "settings": {**asdict(self.settings), "dtype": np.dtype(DTYPE).name},
            "seeds": self.settings.seeds,
            "baselines": dict(self.baselines),
            "models": models,
            "timings_seconds": {name: run.seconds for name, run in self.runs.items()},
            "diagnostic_seconds": {name: run.diagnostic_seconds for name, run in self.runs.items()},
        }


class AddingModel(Module):
    """Many-to-one: a recurrent model reads x_1 … x_T, then y = V·s_T + β_o.

    ``rnn`` is the recurrent part — an ``RNN``/``LSTM``/``GRU`` layer (the fused kernel;
    gradient-flow measurements run a copy through the cells, with the same numbers) or a
    :class:`~tinygrad_seq.nn.Recurrent` driving any cell — and ``head`` the linear read-out
    V, β_o of its output at the last step.
    """

    def __init__(self, rnn: Module, head: Linear) -> None:
        super().__init__()
        self.rnn, self.head = rnn, head

    def forward(self, x: Tensor) -> Tensor:
        output, _ = self.rnn(x)
        return self.head(output[-1])  # the output at t = T


def build_model(
    name: str,
    settings: StudySettings,
    rng: np.random.Generator,
    factory: Factory | None = None,
) -> AddingModel:
    """One of :data:`MODELS` (or ``factory``'s cell) of ``settings.hidden_size``, with a head.

    Every weight of a built-in model is drawn from ``rng``, from U(±1/√H) as in PyTorch,
    then ``settings.init`` may replace the recurrent weights. For the LSTM the forget-gate
    bias is set to ``settings.forget_bias``: PyTorch's layout has two biases whose sum β_f
    enters f_t = σ(U_f·x_t + W_f·h_{t−1} + β_f), so the f block (rows H … 2H−1, gate order
    i, f, g, o) of ``bias_ih_l0`` becomes ``forget_bias`` and that of ``bias_hh_l0`` 0. The
    irnn's W is the identity and its biases are zero.

    With ``factory``, ``factory(2, H)`` is called after seeding the default generator from
    ``rng`` (so a cell that draws its weights from it is reproducible) and cast to float64.
    """
    H = settings.hidden_size
    if factory is not None:
        manual_seed(int(rng.integers(2**63)))
        rnn = _as_recurrent(factory(INPUT_SIZE, H), name).to(DTYPE)
    elif name in ("rnn", "irnn"):
        rnn = RNN(
            INPUT_SIZE, H, nonlinearity="tanh" if name == "rnn" else "relu", dtype=DTYPE, rng=rng
        )
    elif name == "lstm":
        rnn = LSTM(INPUT_SIZE, H, dtype=DTYPE, rng=rng)
    elif name == "gru":
        rnn = GRU(INPUT_SIZE, H, dtype=DTYPE, rng=rng)
    else:
        raise ValueError(f"build_model: unknown model {name!r}; choose one of {', '.join(MODELS)}")
    if factory is None:
        _initialise(name, rnn, settings, rng)
    return AddingModel(rnn, Linear(H, 1, dtype=DTYPE, rng=rng))


def _initialise(
    name: str, rnn: _RecurrentLayer, settings: StudySettings, rng: np.random.Generator
) -> None:
    """Apply ``settings.init`` to each gate block of W, the irnn's identity, the forget bias.

    Writes through ``.data`` of freshly made parameters (nothing has read them yet).
    """
    H = settings.hidden_size
    weight = rnn.weight_hh_l0
    choice = "identity" if name == "irnn" else settings.init
    for k in range(weight.shape[0] // H) if choice != "default" else ():
        block = Tensor(np.zeros((H, H), dtype=DTYPE))
        if choice == "orthogonal":
            init.orthogonal_(block, rng=rng)
        else:
            init.eye_(block)
        weight.data[k * H : (k + 1) * H] = block.data
    if name == "irnn":
        rnn.bias_ih_l0.data[...] = 0.0
        rnn.bias_hh_l0.data[...] = 0.0
    if name == "lstm":
        rnn.bias_ih_l0.data[H : 2 * H] = settings.forget_bias
        rnn.bias_hh_l0.data[H : 2 * H] = 0.0


def _as_recurrent(made: Any, name: str) -> Module:
    """A layer as it is; a cell wrapped in ``Recurrent`` (which checks the Cell protocol)."""
    if isinstance(made, Recurrent | _RecurrentLayer):
        return made
    if not isinstance(made, Module):
        raise TypeError(
            f"{name}: the factory returned a {type(made).__name__}, not a Module; a cell is an "
            "nn.Module with forward(x_t, state) -> state"
        )
    return Recurrent(made)


class CellSpecError(ValueError):
    """A ``--cell`` SPEC that names no usable cell; the message is one line."""


def load_cell(spec: str) -> tuple[str, Factory]:
    """``(name, class)`` for ``package.module:Class`` or ``path/to/file.py:Class``.

    The name is the class's own. A file is imported under a private module name (its
    ``if __name__ == "__main__":`` part does not run). Raises :class:`CellSpecError` with one
    line when the module or file cannot be imported or has no such class; whether the class
    follows the Cell protocol is checked by :func:`resolve_models`.
    """
    module_name, colon, class_name = spec.rpartition(":")
    if not colon or not module_name or not class_name.isidentifier():
        raise CellSpecError(
            f"--cell {spec!r}: expected package.module:Class or path/to/file.py:Class"
        )
    if module_name.endswith(".py") or "/" in module_name or "\\" in module_name:
        path = Path(module_name)
        if not path.is_file():
            raise CellSpecError(f"--cell {spec!r}: no file {path}")
        private = "tinygrad_seq_user_cell_" + re.sub(r"\W", "_", str(path.resolve()))
        loader_spec = importlib.util.spec_from_file_location(private, path)
        if loader_spec is None or loader_spec.loader is None:
            raise CellSpecError(f"--cell {spec!r}: {path} is not a Python file")
        module = importlib.util.module_from_spec(loader_spec)
        sys.modules[private] = module  # dataclasses and pickling look their module up
        try:
            loader_spec.loader.exec_module(module)
        except Exception as error:
            del sys.modules[private]
            raise CellSpecError(
                f"--cell {spec!r}: importing {path} failed: {_one_line(error)}"
            ) from None
    else:
        try:
            module = importlib.import_module(module_name)
        except Exception as error:
            raise CellSpecError(
                f"--cell {spec!r}: cannot import module {module_name}: {_one_line(error)}"
            ) from None
    made = getattr(module, class_name, None)
    if not callable(made):
        raise CellSpecError(f"--cell {spec!r}: {module_name} has no class {class_name}")
    return class_name, made


def _one_line(error: BaseException) -> str:
    return f"{type(error).__name__}: " + " ".join(str(error).split())


def resolve_models(
    models: Sequence[str] | Mapping[str, Factory | None], settings: StudySettings
) -> dict[str, Factory | None]:
    """Names of :data:`MODELS` and ``{name: factory}`` as ``{name: factory or None}``, checked.

    Every model is built and run for one step on a tiny batch, so a cell that breaks the
    Cell protocol (or returns an output that is not (batch, hidden_size)) fails here, before
    any training, with a :class:`CellSpecError` naming it.
    """
    resolved = dict(models) if isinstance(models, Mapping) else dict.fromkeys(models)
    if not resolved:
        raise CellSpecError("no model to train")
    for name, factory in resolved.items():
        if factory is None and name not in MODELS:
            raise CellSpecError(f"unknown cell {name!r}; choose from {', '.join(MODELS)}")
        if factory is not None:
            _check_factory(name, factory, settings)
    return resolved


def _check_factory(name: str, factory: Factory, settings: StudySettings) -> None:
    H = settings.hidden_size
    try:
        model = build_model(name, settings, np.random.default_rng(0), factory)
        with no_grad():
            output, _ = model.rnn(Tensor(np.zeros((3, 2, INPUT_SIZE), dtype=DTYPE)))
    except Exception as error:
        raise CellSpecError(
            f"{name}: does not work as a cell of the Cell protocol: {_one_line(error)}"
        ) from None
    if not isinstance(output, Tensor) or output.shape != (3, 2, H):
        shape = getattr(output, "shape", type(output).__name__)
        raise CellSpecError(
            f"{name}: built as {name}({INPUT_SIZE}, {H}), its outputs over 3 steps of a batch "
            f"of 2 have shape {shape}, expected (3, 2, {H}) (output(state) must be the "
            "(batch, hidden_size) h_t)"
        )


def run_study(
    settings: StudySettings,
    progress: bool = True,
    models: Sequence[str] | Mapping[str, Factory | None] = ("rnn", "lstm"),
    jobs: int | None = 1,
) -> StudyResult:
    """Train each model on the same batches and record its gradient flow (see module doc).

    ``models`` holds names of :data:`MODELS`, or maps a name to a factory
    ``factory(input_size, hidden_size)`` returning a cell or a recurrent layer (None for a
    built-in name). ``progress`` shows a bar per model when the output is a terminal.

    ``jobs`` processes work at a time (None: one per core): each model trains in one, copying
    its weights at the record steps, and a process free of training measures those copies.
    The numbers do not depend on ``jobs``: every model draws from its own seeded streams, and
    a copy of the weights measures as the model did. With more than one job the trained
    models come back pickled, so a factory's class must be importable by name (classes from
    :func:`load_cell` are).
    """
    resolved = resolve_models(models, settings)
    jobs = max(1, min(jobs or os.cpu_count() or 1, len(resolved)))
    if jobs == 1:
        with one_blas_thread():
            runs = {
                name: train_model(name, settings, progress=progress, factory=factory)
                for name, factory in resolved.items()
            }
        return StudyResult(settings, runs)
    runs = _train_and_measure_in_processes(settings, progress, list(resolved.items()), jobs)
    return StudyResult(settings, runs)


_PENDING: Any = None
"""What forked processes work on: set before the pool starts, so nothing of it is pickled."""


def _train_and_measure_in_processes(
    settings: StudySettings, progress: bool, models: list[tuple[str, Factory | None]], jobs: int
) -> dict[str, ModelRun]:
    """Train ``models`` on a pool of ``jobs`` forked processes and measure their copies there.

    Every training is a task of the pool; it sends each copy of its weights to this process,
    which adds the measuring of that copy to the same pool. A process whose training is done
    thus measures at once what the others copy while they still train (the quick RNN's
    process measures the LSTM's copies): the study ends about when its slowest model has
    trained. Ctrl-C stops the processes.
    """
    global _PENDING
    context = multiprocessing.get_context("fork")
    copies = context.Queue()
    _PENDING = (settings, progress, models, copies, {})
    # fork: a process starts in milliseconds, with the package and the user's cells imported.
    pool = context.Pool(jobs, initializer=ignore_interrupts)
    try:
        trainings = [pool.apply_async(_train_pending, (index,)) for index in range(len(models))]
        measurings: dict[str, list[Any]] = {name: [] for name, _ in models}
        still_training = len(models)
        while still_training:
            name, snapshot = wait_for(copies.get)
            if snapshot is None:  # the training of ``name`` has ended
                still_training -= 1
            else:
                measurings[name].append(pool.apply_async(_measure_pending, (name, snapshot)))
        runs = {run.name: run for run in (wait_for(task.get) for task in trainings)}
        for name, run in runs.items():
            measured = [wait_for(measuring.get) for measuring in measurings[name]]
            if measured:
                seconds = sum(seconds for _, seconds in measured)
                _add_measurements(run, [record for record, _ in measured], seconds, settings)
                run.seconds += seconds
        pool.close()
    except BaseException:
        pool.terminate()
        raise
    finally:
        pool.join()
        _PENDING = None
    return runs


def _train_pending(index: int) -> ModelRun:
    """Train model ``index`` of ``_PENDING`` (in a forked process), its bar on line ``index``,
    sending its copies to the parent and, even if it fails, then ``(name, None)``."""
    settings, progress, models, copies, _ = _PENDING
    name, factory = models[index]
    try:
        with one_blas_thread():
            return train_model(
                name,
                settings,
                progress=progress,
                factory=factory,
                position=index,
                on_snapshot=lambda snapshot: copies.put((name, snapshot)),
            )
    finally:
        copies.put((name, None))


def _measure_pending(name: str, snapshot: Snapshot) -> tuple[FlowRecord, float]:
    """Measure a copy of model ``name`` of ``_PENDING``, with this process's meter of it."""
    settings, _, models, _, meters = _PENDING
    began = time.perf_counter()
    with one_blas_thread():
        if name not in meters:
            meters[name] = _Meter(name, settings, dict(models)[name])
        record = meters[name].measure(snapshot)
    return record, time.perf_counter() - began


def ignore_interrupts() -> None:
    """Forked workers leave Ctrl-C to the parent, which stops them."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def wait_for(get: Callable[..., Any]) -> Any:
    """``get(timeout=...)`` of a pool's result or a queue, waited for in short slices.

    Ctrl-C reaches a process, not a thread: when the kernel hands it to one of the pool's
    threads, Python runs its handler only when the main thread next runs Python code, and a
    wait without a timeout would keep it blocked until the next result came (a whole run of
    the sweep, or never). Waking every tenth of a second, Ctrl-C stops the work at once.
    """
    while True:
        try:
            return get(timeout=0.1)
        except (multiprocessing.TimeoutError, queue.Empty):
            continue


@contextlib.contextmanager
def one_blas_thread() -> Iterator[None]:
    """Run numpy's matrix products on one thread while the study trains.

    The products here are small ((B, H) by (H, 4H)): OpenBLAS's threads cost more than they
    save, and when the cores are busy a product waits for a second thread — measured up to
    100× slower on 2 cores.
    """
    with threadpool_limits(limits=1, user_api="blas"):
        yield


def train_model(
    name: str,
    settings: StudySettings,
    *,
    progress: bool = False,
    factory: Factory | None = None,
    solved_below: float | None = None,
    position: int | None = None,
    on_snapshot: Callable[[Snapshot], None] | None = None,
) -> ModelRun:
    """Train one model as the study does; return its run.

    With ``solved_below``, training stops at the first evaluation whose test MSE is below it
    (the horizon sweep's "solved"). With diagnostics, the weights are copied at every record
    step and measured on the probe batch (:class:`_Meter`) — at once, or, with
    ``on_snapshot``, by whoever it hands the copies (:class:`Snapshot`) to, such as
    :func:`measure_snapshots` in another process; the numbers are the same. Then the run's
    flow fields stay empty and, without ``solved_below``, the test set is left to the copies.
    """
    start = time.perf_counter()
    label = MODEL_LABELS.get(name, name) if factory is None else name
    model = build_model(name, settings, settings.rng("init"), factory)
    optimizer = Adam(model.parameters(), lr=settings.learning_rate)
    batches = settings.rng("train_batches")
    test_x, test_y = _batch(settings, "test_set")
    measure_here = settings.diagnostics and on_snapshot is None
    meter = _Meter(name, settings, factory) if measure_here else None
    # Handing the copies over, the test set is evaluated on them too, unless a test MSE may
    # stop the training (solved_below): then it is needed at once.
    defer = settings.diagnostics and on_snapshot is not None and solved_below is None
    records: list[FlowRecord] = []
    train_loss: list[float] = []
    grad_norms: list[float] = []
    eval_steps: list[int] = []
    test_mse: list[float] = []
    measuring = 0.0

    def snapshot(step: int, last: bool) -> None:
        nonlocal measuring
        record = last or step % settings.record_every == 0  # the trained model: always
        spectrum = last or step in settings.spectrum_steps
        evaluate = defer and (last or step % settings.eval_every == 0)
        if not settings.diagnostics or not (record or spectrum or evaluate):
            return
        taken = Snapshot(step, model.state_dict(), record, spectrum, last, evaluate)
        if meter is None:
            on_snapshot(taken)
            return
        began = time.perf_counter()
        records.append(meter.measure(taken))
        measuring += time.perf_counter() - began

    def checkpoint(step: int, last: bool) -> bool:
        snapshot(step, last)
        if not defer and (step % settings.eval_every == 0 or last):
            eval_steps.append(step)
            test_mse.append(_test_mse(model, test_x, test_y))
            return solved_below is not None and test_mse[-1] < solved_below
        return False

    bar = _progress_bar(settings.steps, label, progress, position)
    try:
        done = checkpoint(0, last=False)
        step = 0
        while not done and step < settings.steps:
            step += 1
            x, y = adding_problem(settings.batch_size, settings.seq_len, batches, dtype=DTYPE)
            optimizer.zero_grad()
            loss = F.mse_loss(model(Tensor(x)), y)
            loss.backward()
            norm = clip_grad_norm_(model.parameters(), settings.max_grad_norm)
            grad_norms.append(float(norm))
            optimizer.step()
            train_loss.append(loss.item())
            done = checkpoint(step, last=step == settings.steps)
            if bar is not None:
                shown = {"loss": f"{train_loss[-1]:.4f}"}
                if test_mse:
                    shown["test_mse"] = f"{test_mse[-1]:.4f}"
                bar.set_postfix(shown, refresh=False)
                bar.update(1)
        if done and step < settings.steps:  # solved early: the state it stopped in is measured
            snapshot(step, last=True)
    finally:  # also on Ctrl-C, so the bar does not reappear after the message
        if bar is not None:
            bar.close()

    run = ModelRun(
        name=name,
        label=label,
        model=model,
        train_loss=np.array(train_loss),
        eval_steps=np.array(eval_steps),
        test_mse=np.array(test_mse),
        flow_steps=np.zeros(0, dtype=np.int64),
        hidden_ratio=None,
        cell_ratio=None,
        flow_records=None,
        final_flow=None,
        spectra={},
        seconds=time.perf_counter() - start,
        grad_norms=np.array(grad_norms),
    )
    if meter is not None:
        _add_measurements(run, records, measuring, settings)
    return run


@dataclass
class Snapshot:
    """The weights at one training step, and what to measure there."""

    step: int
    state: dict[str, np.ndarray]
    record: bool  # the gradient flow
    spectrum: bool  # the Jacobian-product spectrum
    last: bool  # keep the whole GradientFlow (the trained model's)
    evaluate: bool = False  # the test MSE


@dataclass
class FlowRecord:
    """What the study keeps of one measurement: norms and log-ratios, not the gradients."""

    step: int
    record: bool
    loss: float = math.nan
    hidden_norms: np.ndarray | None = None
    cell_norms: np.ndarray | None = None
    hidden_ratio: np.ndarray | None = None
    cell_ratio: np.ndarray | None = None
    spectrum: np.ndarray | None = None
    flow: GradientFlow | None = None
    test_mse: float | None = None


class _Meter:
    """Measures snapshots of one model on the study's fixed probe batch, loss at step T only.

    It holds a model of the same architecture whose weights each snapshot replaces (writes
    through ``load_state_dict``); ``gradient_flow`` measures a float64 copy of it, as
    :class:`~tinygrad_seq.viz.flow.FlowRecorder` does.
    """

    def __init__(self, name: str, settings: StudySettings, factory: Factory | None) -> None:
        self.model = build_model(name, settings, settings.rng("init"), factory)
        self.probe_x, self.loss_fn = _loss_on(self.model, *_batch(settings, "probe_batch"))
        self.spectrum_size = settings.spectrum_size
        self.test: tuple[Tensor, np.ndarray] | None = None
        self.settings = settings

    def measure(self, snapshot: Snapshot) -> FlowRecord:
        self.model.load_state_dict(snapshot.state)
        found = FlowRecord(snapshot.step, snapshot.record)
        if snapshot.record:
            flow = gradient_flow(self.model.rnn, self.probe_x, self.loss_fn, DTYPE)
            found.loss, found.hidden_norms = flow.loss, flow.hidden_norms
            found.hidden_ratio = flow.log_ratio("hidden")
            if flow.cell_norms is not None:
                found.cell_norms, found.cell_ratio = flow.cell_norms, flow.log_ratio("cell")
            found.flow = flow if snapshot.last else None
        if snapshot.spectrum:
            found.spectrum = _spectrum(self.model, self.probe_x, self.spectrum_size)
        if snapshot.evaluate:
            self.test = self.test or _batch(self.settings, "test_set")
            found.test_mse = _test_mse(self.model, *self.test)
        return found


def measure_snapshots(
    name: str, settings: StudySettings, factory: Factory | None, snapshots: Sequence[Snapshot]
) -> list[FlowRecord]:
    """Measure ``snapshots`` of model ``name`` (see :func:`train_model`'s ``on_snapshot``)."""
    meter = _Meter(name, settings, factory)
    return [meter.measure(snapshot) for snapshot in snapshots]


def _add_measurements(
    run: ModelRun, records: list[FlowRecord], seconds: float, settings: StudySettings
) -> None:
    """Fill ``run``'s gradient-flow fields from its measurements (in any order)."""
    records = sorted(records, key=lambda r: r.step)
    evaluated = [r for r in records if r.test_mse is not None]
    if evaluated:  # evaluated from the copies (train_model with on_snapshot)
        run.eval_steps = np.array([r.step for r in evaluated])
        run.test_mse = np.array([r.test_mse for r in evaluated])
    flows = [r for r in records if r.record]
    cell = flows[0].cell_norms is not None
    run.flow_steps = np.array([r.step for r in flows], dtype=np.int64)
    run.hidden_ratio = np.stack([r.hidden_ratio for r in flows])
    run.cell_ratio = np.stack([r.cell_ratio for r in flows]) if cell else None
    run.flow_records = {
        "every": settings.record_every,
        "steps": run.flow_steps.tolist(),
        "loss": [r.loss for r in flows],
        "hidden": np.stack([r.hidden_norms for r in flows]).tolist(),
        "cell": np.stack([r.cell_norms for r in flows]).tolist() if cell else None,
    }
    run.final_flow = flows[-1].flow
    run.spectra = {r.step: r.spectrum for r in records if r.spectrum is not None}
    run.diagnostic_seconds += seconds


def _progress_bar(total: int, label: str, enabled: bool, position: int | None = None) -> Any:
    """A tqdm bar that shows on a terminal and stays out of logs and files (``disable=None``);
    ``position`` gives bars of parallel processes a line each."""
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(
        total=total,
        desc=f"{label:>8}",
        unit="step",
        leave=True,
        disable=None,
        position=position,
    )


def _batch(settings: StudySettings, stream: str) -> tuple[Tensor, np.ndarray]:
    size = settings.probe_size if stream == "probe_batch" else settings.test_size
    x, y = adding_problem(size, settings.seq_len, settings.rng(stream), dtype=DTYPE)
    return Tensor(x), y


def _loss_on(
    model: AddingModel, x: Tensor, y: np.ndarray
) -> tuple[Tensor, Callable[[Tensor, Any], Tensor]]:
    """The probe input and its loss L = MSE(V·h_T + β_o, y), placed at the last step only."""

    def loss_fn(output: Tensor, final_state: Any) -> Tensor:
        return F.mse_loss(model.head(output[-1]), y)

    return x, loss_fn


@no_grad()
def _test_mse(model: AddingModel, x: Tensor, y: np.ndarray) -> float:
    return float(np.mean((model(x).data - y) ** 2))


def _spectrum(model: AddingModel, probe_x: Tensor, size: int) -> np.ndarray:
    """Singular values of ∂z_T/∂z_{T−k}, geometric mean over the first probe examples.

    All T Jacobians of every example are held at once (T·B·S² floats, S = 2H for the LSTM),
    so a slice of the probe batch keeps this to tens of megabytes (and about a second).
    """
    subset = Tensor(probe_x.data[:, :size])
    return jacobian_product_spectrum(model.rnn, subset, dtype=DTYPE)


def _floats(values: Any) -> list[float | None]:
    return _jsonable(np.asarray(values, dtype=np.float64).reshape(-1))


def _jsonable(value: Any) -> Any:
    """Plain JSON values: arrays become lists, and a non-finite float (an underflowed norm,
    log₁₀ 0 = −∞) becomes None, so that ``summary.json`` is strict JSON."""
    if isinstance(value, dict):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [_jsonable(item) for item in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
