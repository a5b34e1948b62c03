"""The vanishing-gradient study: a tanh RNN and an LSTM on the adding problem, side by side.

Both models read a sequence x_1 … x_T of pairs (value, marker) and answer once, from the last
hidden state, with the sum of the two marked values (many-to-one: y = V·h_T + β_o). One
marker lies in the first half of the sequence, so the answer needs information carried over
at least T/2 steps. Trivial answers set the bar:

- predict the mean, 1, always: MSE = Var(U₁ + U₂) = 1/6 ≈ 0.167;
- use only the second (recent) marker perfectly: MSE = Var(U₁) = 1/12 ≈ 0.083.

A test MSE below 1/12 proves the first value crossed at least T/2 steps.

The settings (explained in ``docs/vanishing-gradients.md``): hidden size 32, batch 64, Adam
with learning rate 10⁻², the global gradient norm clipped at 1, float64, weights drawn from
U(±1/√H) as in PyTorch (the tanh RNN's W too — an orthogonal W is the stronger baseline and
flickers), and the LSTM's forget-gate bias set to 1.

While training, a :class:`~tinygrad_seq.viz.flow.FlowRecorder` measures every few steps, on
a fixed probe batch and with the loss at the last step only, the per-step gradient norms
‖∂L/∂h_t‖ (and ‖∂L/∂C_t‖ for the LSTM): the data of the heat maps in
:mod:`tinygrad_seq.viz.plots`. At the start, the middle and the end it also records the
singular values of products of state Jacobians ∂s_T/∂s_{T−k}.

Nothing here draws: :func:`run_study` returns a :class:`StudyResult`, and
:mod:`tinygrad_seq.viz.report` turns it into pictures, ``report.html`` and ``summary.json``.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from . import functional as F
from .autograd import no_grad
from .data import adding_problem
from .nn import LSTM, RNN, Linear, Module
from .nn.utils import clip_grad_norm_
from .optim import Adam
from .tensor import Tensor
from .viz.flow import FlowRecorder, GradientFlow, jacobian_product_spectrum

__all__ = [
    "MODEL_LABELS",
    "MSE_PREDICT_MEAN",
    "MSE_SECOND_MARKER_ONLY",
    "AddingModel",
    "ModelRun",
    "StudyResult",
    "StudySettings",
    "build_model",
    "run_study",
]

MSE_PREDICT_MEAN = 1 / 6
"""Test MSE of always answering 1, the mean of U₁ + U₂: Var(U₁ + U₂) = 2 · 1/12."""
MSE_SECOND_MARKER_ONLY = 1 / 12
"""Test MSE of a model that knows the second marked value exactly and guesses ½ for the first."""

MODEL_LABELS = {"rnn": "tanh RNN", "lstm": "LSTM"}
DTYPE = np.float64  # the note's diagnostics see ratios of 10⁻³⁰ and below; float32 underflows

# Independent random streams, all derived from the one --seed (np.random.default_rng((seed, k))).
SEED_STREAMS = {"init": 0, "train_batches": 1, "probe_batch": 2, "test_set": 3}


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
        if not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed must be a whole number ≥ 0, got {self.seed!r}")

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
    batch of log₁₀(‖∂L/∂h_t‖ / ‖∂L/∂h_T‖) (``GradientFlow.log_ratio``), and ``cell_ratio``
    the same for the LSTM's C_t (None for the RNN). ``flow_records`` is the recorder's own
    ``to_dict()`` (batch-mean norms per record), ``final_flow`` the last record: the trained
    model. ``spectra`` maps a training step to the singular values of ∂z_T/∂z_{T−k}
    (z = s for the RNN, (h, C) for the LSTM), one row per k = 1 … T.
    """

    name: str
    model: AddingModel
    train_loss: np.ndarray
    eval_steps: np.ndarray
    test_mse: np.ndarray
    flow_steps: np.ndarray
    hidden_ratio: np.ndarray
    cell_ratio: np.ndarray | None
    flow_records: dict[str, Any]
    final_flow: GradientFlow
    spectra: dict[int, np.ndarray]
    seconds: float

    @property
    def label(self) -> str:
        return MODEL_LABELS[self.name]

    @property
    def final_test_mse(self) -> float:
        return float(self.test_mse[-1])


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

    def summary(self) -> dict[str, Any]:
        """The numbers of the run as plain JSON types (what ``summary.json`` holds)."""
        models = {}
        for name, run in self.runs.items():
            entry: dict[str, Any] = {
                "label": run.label,
                "test_mse": run.final_test_mse,
                "hidden_norms": _floats(run.final_flow.hidden_norms),
                "train_loss": _floats(run.train_loss),
                "eval_steps": [int(s) for s in run.eval_steps],
                "test_mse_curve": _floats(run.test_mse),
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
        }


class AddingModel(Module):
    """Many-to-one: a one-layer ``RNN`` or ``LSTM`` reads x_1 … x_T, then y = V·h_T + β_o.

    ``rnn`` is the recurrent layer (it runs the fused kernel; gradient-flow measurements run
    a copy through the cells, with the same numbers), ``head`` the linear read-out V, β_o.
    """

    def __init__(self, rnn: RNN | LSTM, head: Linear) -> None:
        super().__init__()
        self.rnn, self.head = rnn, head

    def forward(self, x: Tensor) -> Tensor:
        output, _ = self.rnn(x)
        return self.head(output[-1])  # h_T of the top layer


def build_model(name: str, settings: StudySettings, rng: np.random.Generator) -> AddingModel:
    """A ``"rnn"`` (tanh) or ``"lstm"`` of ``settings.hidden_size`` with a linear head on h_T.

    Every weight is drawn from ``rng``, from U(±1/√H) as in PyTorch. For the LSTM the
    forget-gate bias is set to ``settings.forget_bias``: PyTorch's layout has two biases whose
    sum β_f enters f_t = σ(U_f·x_t + W_f·h_{t−1} + β_f), so the f block (rows H … 2H−1, gate
    order i, f, g, o) of ``bias_ih_l0`` becomes ``forget_bias`` and that of ``bias_hh_l0`` 0.
    """
    H = settings.hidden_size
    if name == "rnn":
        rnn = RNN(2, H, nonlinearity="tanh", dtype=DTYPE, rng=rng)
    elif name == "lstm":
        rnn = LSTM(2, H, dtype=DTYPE, rng=rng)
        rnn.bias_ih_l0.data[H : 2 * H] = settings.forget_bias
        rnn.bias_hh_l0.data[H : 2 * H] = 0.0
    else:
        raise ValueError(f"build_model: unknown model {name!r}; choose one of {list(MODEL_LABELS)}")
    return AddingModel(rnn, Linear(H, 1, dtype=DTYPE, rng=rng))


def run_study(
    settings: StudySettings, progress: bool = True, models: tuple[str, ...] = ("rnn", "lstm")
) -> StudyResult:
    """Train each model on the same batches and record its gradient flow (see module doc)."""
    with _one_blas_thread():
        runs = {name: _train(name, settings, progress) for name in models}
    return StudyResult(settings, runs)


@contextlib.contextmanager
def _one_blas_thread() -> Iterator[None]:
    """Run numpy's matrix products on one thread while the study trains.

    The products here are small ((B, H) by (H, 4H)): OpenBLAS's threads cost more than they
    save, and when the cores are busy a product waits for a second thread — measured up to
    100× slower on 2 cores.
    """
    with threadpool_limits(limits=1, user_api="blas"):
        yield


def _train(name: str, settings: StudySettings, progress: bool) -> ModelRun:
    start = time.perf_counter()
    model = build_model(name, settings, settings.rng("init"))
    optimizer = Adam(model.parameters(), lr=settings.learning_rate)
    batches = settings.rng("train_batches")
    probe_x, probe_loss = _loss_on(model, *_batch(settings, "probe_batch"))
    test_x, test_y = _batch(settings, "test_set")
    recorder = FlowRecorder(
        model.rnn, probe_x, probe_loss, every=settings.record_every, dtype=DTYPE
    )
    spectra: dict[int, np.ndarray] = {}
    train_loss, eval_steps, test_mse = [], [], []

    def checkpoint(step: int) -> None:
        recorder.step(step, force=step == settings.steps)  # the trained model is always measured
        if step in settings.spectrum_steps:
            spectra[step] = _spectrum(model, probe_x, settings.spectrum_size)
        if step % settings.eval_every == 0 or step == settings.steps:
            eval_steps.append(step)
            test_mse.append(_test_mse(model, test_x, test_y))

    bar = _ProgressBar(settings.steps, MODEL_LABELS[name], progress)
    try:
        checkpoint(0)
        for step in range(1, settings.steps + 1):
            x, y = adding_problem(settings.batch_size, settings.seq_len, batches, dtype=DTYPE)
            optimizer.zero_grad()
            loss = F.mse_loss(model(Tensor(x)), y)
            loss.backward()
            clip_grad_norm_(model.parameters(), settings.max_grad_norm)
            optimizer.step()
            train_loss.append(loss.item())
            checkpoint(step)
            bar.update(train_loss[-1], test_mse[-1])
    finally:  # also on Ctrl-C, so the bar does not reappear after the message
        bar.close()

    flows = recorder.flows
    return ModelRun(
        name=name,
        model=model,
        train_loss=np.array(train_loss),
        eval_steps=np.array(eval_steps),
        test_mse=np.array(test_mse),
        flow_steps=recorder.steps,
        hidden_ratio=np.stack([flow.log_ratio("hidden") for flow in flows]),
        cell_ratio=(
            None
            if flows[0].cell_norms is None
            else np.stack([flow.log_ratio("cell") for flow in flows])
        ),
        flow_records=recorder.to_dict(),
        final_flow=flows[-1],
        spectra=spectra,
        seconds=time.perf_counter() - start,
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


class _ProgressBar:
    """One tqdm bar per model (train loss and latest test MSE in the postfix); without tqdm, a
    line at every evaluation, so a long run is never silent."""

    def __init__(self, total: int, label: str, enabled: bool) -> None:
        self.label, self.total, self.done, self.enabled = label, total, 0, enabled
        self.bar = None
        if enabled:
            try:
                from tqdm import tqdm
            except ImportError:
                print(f"training the {label} (pip install tqdm for a progress bar)", flush=True)
            else:
                self.bar = tqdm(total=total, desc=f"{label:>8}", unit="step", leave=True)

    def update(self, loss: float, test_mse: float) -> None:
        self.done += 1
        if self.bar is not None:
            self.bar.set_postfix(loss=f"{loss:.4f}", test_mse=f"{test_mse:.4f}", refresh=False)
            self.bar.update(1)
        elif self.enabled and (self.done == self.total or self.done % 100 == 0):
            print(
                f"{self.label}: step {self.done}/{self.total}  loss {loss:.4f}  "
                f"test MSE {test_mse:.4f}",
                flush=True,
            )

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
