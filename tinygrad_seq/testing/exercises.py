"""Graders for the exercises of the course (``docs/notebooks/``).

Each ``check_…`` function takes what the student wrote — a function, a class, a number —
runs it on fresh inputs, compares it with a reference (the library's own layers, autograd,
and :func:`~tinygrad_seq.testing.gradcheck` against central differences) and prints ONE
line: ``✓ name: …`` when it is right, ``✗ name: …`` saying what is wrong when it is not.
It returns True or False, and never raises, so a notebook runs top to bottom even with the
exercises left blank::

    >>> from tinygrad_seq.testing.exercises import check_tanh_backward
    >>> check_tanh_backward(lambda y, g: g * (1 - y**2))
    ✓ tanh_backward: ∂L/∂x = g·(1 − y²) on a (3, 4) batch
    True
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

import tinygrad_seq as ts
from tinygrad_seq import nn
from tinygrad_seq.testing.gradcheck import GradcheckError, gradcheck

__all__ = [
    "PATTERNS",
    "PATTERN_TASKS",
    "check_bptt_grad_W",
    "check_failure_horizon",
    "check_forget_bias",
    "check_grad_w_by_hand",
    "check_last_outputs",
    "check_leaky_cell",
    "check_lstm_step",
    "check_patterns",
    "check_rnn_step",
    "check_sigma_max",
    "check_softsign",
    "check_tanh_backward",
    "gradient_reaching_first_step",
]


class Wrong(Exception):
    """What is wrong with an answer, in one line (raised inside a check, printed by it)."""


def _grade(exercise: str, check: Callable[[], str]) -> bool:
    """Run ``check``; print one line, ✓ with its praise or ✗ with what is wrong."""
    try:
        praise = check()
    except Wrong as wrong:
        print(f"✗ {exercise}: {wrong}")
        return False
    except GradcheckError as error:
        first = str(error).strip().splitlines()[0]
        print(f"✗ {exercise}: {first}")
        return False
    except Exception as error:  # the student's code failed: say how, in one line
        first = (str(error).strip().splitlines() or [""])[0]
        if "read-only" in first:  # numpy's words for `g *= …` on a gradient the engine guards
            first += (
                " (the upstream gradient g and the arrays a node saved are read-only: "
                "compute a new array, g * …, instead of changing one in place, g *= …)"
            )
        print(f"✗ {exercise}: your code raised {type(error).__name__}: {first}")
        return False
    print(f"✓ {exercise}: {praise}")
    return True


def _array(value: Any, what: str, shape: tuple[int, ...]) -> np.ndarray:
    """The answer as a float64 array of ``shape``, or Wrong saying why it is not one."""
    if value is None:
        raise Wrong(f"not written yet: {what} is None")
    array = np.asarray(value.data if isinstance(value, ts.Tensor) else value, dtype=np.float64)
    if array.shape != shape:
        raise Wrong(f"{what} has shape {array.shape}, expected {shape}")
    return array


def _compare(got: np.ndarray, want: np.ndarray, what: str, tolerance: float = 1e-8) -> None:
    """Wrong naming the worst element when ``got`` and ``want`` differ."""
    error = np.abs(got - want)
    if not np.all(error <= tolerance * (1 + np.abs(want))):
        worst = np.unravel_index(np.nanargmax(np.where(np.isnan(error), np.inf, error)), got.shape)
        raise Wrong(
            f"{what} differs from the reference at index {tuple(int(i) for i in worst)}: "
            f"yours {got[worst]:.6g}, expected {want[worst]:.6g}"
        )


def _matches(got: np.ndarray, want: np.ndarray) -> bool:
    return got.shape == want.shape and np.allclose(got, want, rtol=1e-8, atol=1e-10)


def _rng() -> np.random.Generator:
    return np.random.default_rng(2024)


def _tensor(array: np.ndarray, requires_grad: bool = False) -> ts.Tensor:
    return ts.tensor(array, dtype=ts.float64, requires_grad=requires_grad)


# --------------------------------------------------------------------------- 01 backprop


def check_tanh_backward(tanh_backward: Callable[[np.ndarray, np.ndarray], Any]) -> bool:
    """``tanh_backward(y, g)`` with y = tanh(x) and g = ∂L/∂y must return ∂L/∂x."""

    def check() -> str:
        rng = _rng()
        y = np.tanh(rng.normal(size=(3, 4)))
        g = rng.normal(size=(3, 4))
        got = _array(tanh_backward(y.copy(), g.copy()), "tanh_backward(y, g)", y.shape)
        if _matches(got, 1 - y**2):
            raise Wrong("that is ∂y/∂x alone: multiply by the upstream gradient g (chain rule)")
        if _matches(got, g * (1 - np.tanh(y) ** 2)):
            raise Wrong("y is already tanh(x): the derivative is 1 − y², not 1 − tanh(y)²")
        _compare(got, g * (1 - y**2), "∂L/∂x")
        return "∂L/∂x = g·(1 − y²) on a (3, 4) batch"

    return _grade("tanh_backward", check)


def check_grad_w_by_hand(grad_w: Callable[[np.ndarray, np.ndarray], Any]) -> bool:
    """``grad_w(x, w)`` must return ∂L/∂w for L = Σ tanh(x @ w), written with numpy."""

    def check() -> str:
        rng = _rng()
        x, w = rng.normal(size=(2, 3)), rng.normal(size=(3, 4))
        got = _array(grad_w(x.copy(), w.copy()), "grad_w(x, w)", w.shape)
        w_t = _tensor(w, requires_grad=True)
        (_tensor(x) @ w_t).tanh().sum().backward()
        want = w_t.grad.numpy()
        if _matches(got, x.T @ np.ones((2, 4))):
            raise Wrong("tanh's derivative is missing: multiply by (1 − tanh²(x @ w)) first")
        _compare(got, want, "∂L/∂w (compared with autograd)")
        return "∂L/∂w = xᵀ·(1 − tanh²(x·w)) agrees with autograd"

    return _grade("grad_w_by_hand", check)


# --------------------------------------------------------------------------- 02 Elman RNN


def check_rnn_step(rnn_step: Callable[..., Any]) -> bool:
    """``rnn_step(x_t, s_prev, U, W, beta_s)`` must return s_t = tanh(U·x_t + W·s_{t−1} + β_s).

    Rows are examples: x_t (B, D), s_prev (B, H), U (H, D), W (H, H), beta_s (H,).
    """

    def check() -> str:
        rng = _rng()
        B, D, H = 3, 2, 4
        arrays = [rng.normal(size=s) for s in ((B, D), (B, H), (H, D), (H, H), (H,))]
        x, s_prev, U, W, beta = arrays
        got = _array(rnn_step(*[_tensor(a) for a in arrays]), "rnn_step(...)", (B, H))
        cell = nn.RNNCell(D, H).double()
        cell.weight_ih.data[...], cell.weight_hh.data[...] = U, W
        cell.bias_ih.data[...], cell.bias_hh.data[...] = beta, 0.0
        with ts.no_grad():
            want = cell(_tensor(x), _tensor(s_prev)).numpy()
        if _matches(got, np.tanh(x @ U.T + s_prev @ W + beta)):
            raise Wrong("W is applied transposed: with rows as examples W·s is s_prev @ W.T")
        if _matches(got, np.arctanh(np.clip(want, -1 + 1e-12, 1 - 1e-12))):
            raise Wrong("tanh is missing: s_t = tanh(U·x_t + W·s_{t−1} + β_s)")
        _compare(got, want, "s_t (compared with nn.RNNCell)")
        gradcheck(rnn_step, [_tensor(a, requires_grad=True) for a in arrays])
        return "s_t equals nn.RNNCell's, and gradcheck passes for x_t, s_{t−1}, U, W and β_s"

    return _grade("rnn_step", check)


def check_bptt_grad_W(bptt_grad_W: Callable[..., Any]) -> bool:
    """``bptt_grad_W(s, W, delta_T)`` must return ∂L/∂W by backpropagation through time.

    One sequence, column vectors as in the lecture: ``s`` (T + 1, H) holds s_0 … s_T of
    s_t = tanh(U·x_t + W·s_{t−1} + β_s), and L = ⟨delta_T, s_T⟩, so ∂L/∂s_T = delta_T.
    """

    def check() -> str:
        rng = _rng()
        T, D, H = 5, 2, 3
        U, W = rng.normal(size=(H, D)), rng.normal(size=(H, H)) * 0.8
        beta, xs, delta_T = rng.normal(size=H), rng.normal(size=(T, D)), rng.normal(size=H)
        W_t = _tensor(W, requires_grad=True)
        states = [_tensor(np.zeros(H))]
        for t in range(T):
            states.append((_tensor(U) @ _tensor(xs[t]) + W_t @ states[-1] + _tensor(beta)).tanh())
        (states[-1] * _tensor(delta_T)).sum().backward()
        s = np.stack([state.numpy() for state in states])
        got = _array(bptt_grad_W(s.copy(), W.copy(), delta_T.copy()), "bptt_grad_W(...)", W.shape)
        want = W_t.grad.numpy()
        last_term = np.outer(delta_T * (1 - s[T] ** 2), s[T - 1])
        if _matches(got, last_term):
            raise Wrong("only the term of the last step t = T: ∂L/∂W sums over every t = 1 … T")
        if _matches(got, want.T):
            raise Wrong("transposed: each term is (δ_t ⊙ (1 − s_t²))·s_{t−1}ᵀ, an outer product")
        _compare(got, want, "∂L/∂W (compared with autograd)")
        return "∂L/∂W = Σ_t (δ_t ⊙ (1 − s_t²))·s_{t−1}ᵀ agrees with autograd over T = 5 steps"

    return _grade("bptt_grad_W", check)


# --------------------------------------------------------------------------- 03 patterns

PATTERNS = ("one-to-one", "one-to-many", "many-to-one", "many-to-many")
PATTERN_TASKS = {
    "classify one point": "one-to-one",
    "image captioning": "one-to-many",
    "sentiment of a review": "many-to-one",
    "translation": "many-to-many",
    "tagging every word": "many-to-many",
}


def check_patterns(answers: dict[str, Any]) -> bool:
    """``answers`` maps each task of ``PATTERN_TASKS`` to one of ``PATTERNS``."""

    def check() -> str:
        if not isinstance(answers, dict):
            raise Wrong(f"answers must be a dict of task → pattern, got {type(answers).__name__}")
        for task, pattern in PATTERN_TASKS.items():
            answer = answers.get(task)
            if answer is None:
                raise Wrong(f"not written yet: answers[{task!r}] is None")
            if answer not in PATTERNS:
                raise Wrong(f"answers[{task!r}] = {answer!r} is not one of {', '.join(PATTERNS)}")
            if answer != pattern:
                raise Wrong(f"{task!r} is not {answer}: how many inputs, how many outputs?")
        return "every task has its pattern"

    return _grade("patterns", check)


def check_last_outputs(last_outputs: Callable[[ts.Tensor, np.ndarray], Any]) -> bool:
    """``last_outputs(outputs, lengths)`` picks each sequence's output at its own last step.

    ``outputs`` is (T, B, H) for a padded batch, ``lengths`` (B,); the answer is (B, H).
    """

    def check() -> str:
        rng = _rng()
        T, B, H = 6, 4, 3
        outputs, lengths = rng.normal(size=(T, B, H)), np.array([6, 2, 4, 1])
        got = _array(last_outputs(_tensor(outputs), lengths.copy()), "last_outputs(...)", (B, H))
        if _matches(got, outputs[-1]):
            raise Wrong("that is step T of the padded batch: sequence b ends at lengths[b] − 1")
        if _matches(got, outputs[np.minimum(lengths, T - 1), np.arange(B)]):
            raise Wrong("one step too far: sequence b's last output is at index lengths[b] − 1")
        _compare(got, outputs[lengths - 1, np.arange(B)], "the last outputs")
        gradcheck(lambda o: last_outputs(o, lengths.copy()), [_tensor(outputs, True)])
        return "each sequence answers from its own last step, and the gradient flows back"

    return _grade("last_outputs", check)


# --------------------------------------------------------------------------- 04 LSTM


def check_lstm_step(lstm_step: Callable[..., Any]) -> bool:
    """``lstm_step(x_t, h_prev, c_prev, cell)`` must return (h_t, C_t) of ``cell``'s LSTM.

    Use ``cell.weight_ih`` (4H, D), ``cell.weight_hh`` (4H, H) and the two biases, gate order
    i, f, g, o as in ``nn.LSTMCell``.
    """

    def check() -> str:
        rng = _rng()
        B, D, H = 3, 2, 4
        ts.manual_seed(7)
        cell = nn.LSTMCell(D, H).double()
        x, h_prev, c_prev = (rng.normal(size=s) for s in ((B, D), (B, H), (B, H)))
        answer = lstm_step(_tensor(x), _tensor(h_prev), _tensor(c_prev), cell)
        if answer is None:
            raise Wrong("not written yet: lstm_step(...) is None")
        if not isinstance(answer, tuple | list) or len(answer) != 2:
            raise Wrong("lstm_step must return the pair (h_t, c_t)")
        with ts.no_grad():
            h_want, c_want = cell(_tensor(x), (_tensor(h_prev), _tensor(c_prev)))
        c_got = _array(answer[1], "c_t", (B, H))
        _compare(c_got, c_want.numpy(), "C_t = f_t ⊙ C_{t−1} + i_t ⊙ C̃_t (gate order i, f, g, o?)")
        _compare(_array(answer[0], "h_t", (B, H)), h_want.numpy(), "h_t = o_t ⊙ tanh(C_t)")
        inputs = [_tensor(a, requires_grad=True) for a in (x, h_prev, c_prev)]
        gradcheck(lambda x, h, c: lstm_step(x, h, c, cell), inputs)
        return "(h_t, C_t) equal nn.LSTMCell's, and gradcheck passes for x_t, h_{t−1}, C_{t−1}"

    return _grade("lstm_step", check)


def check_forget_bias(open_forget_gate: Callable[[nn.LSTMCell, float], Any]) -> bool:
    """``open_forget_gate(cell, bias)`` must set the forget gate's total bias to ``bias``.

    After it, f_t = σ(bias) for a zero input and state; no other parameter changes.
    """

    def check() -> str:
        H = 5
        ts.manual_seed(3)
        cell = nn.LSTMCell(3, H)
        before = {name: p.numpy().copy() for name, p in cell.named_parameters()}
        open_forget_gate(cell, 3.0)
        if all(np.array_equal(p.numpy(), before[n]) for n, p in cell.named_parameters()):
            raise Wrong("not written yet: no parameter of the cell changed")
        total = cell.bias_ih.numpy() + cell.bias_hh.numpy()
        if np.allclose(total[H : 2 * H], 6.0):
            raise Wrong("bias_ih + bias_hh is 6 on the forget rows: set one to 3, the other to 0")
        for gate, rows in (("input gate i_t", slice(0, H)), ("candidate C̃_t", slice(2 * H, 3 * H))):
            changed = not np.array_equal(cell.bias_ih.numpy()[rows], before["bias_ih"][rows])
            if changed:
                raise Wrong(
                    f"you changed rows {rows.start}:{rows.stop}, the {gate}; the "
                    f"forget gate is rows {H}:{2 * H} (gate order i, f, g, o)"
                )
        if not np.allclose(total[H : 2 * H], 3.0):
            values = ", ".join(f"{v:.3g}" for v in total[H : 2 * H])
            raise Wrong(
                f"the forget rows {H}:{2 * H} of bias_ih + bias_hh are {values}, expected 3 each"
            )
        for name, p in cell.named_parameters():
            keep = np.ones(p.shape[0], bool)
            if name.startswith("bias"):
                keep[H : 2 * H] = False
            if not np.array_equal(p.numpy()[keep], before[name][keep]):
                raise Wrong(f"{name} changed outside the forget rows {H}:{2 * H}")
        return f"f_t = σ(3) ≈ {1 / (1 + np.exp(-3.0)):.3f} at the start, nothing else changed"

    return _grade("forget_bias", check)


# --------------------------------------------------------------------------- 05 vanishing


def check_sigma_max(set_sigma_max: Callable[[np.ndarray, float], Any]) -> bool:
    """``set_sigma_max(W, target)`` must return W rescaled so that σ_max(W) = target."""

    def check() -> str:
        W = _rng().normal(size=(6, 6))
        for target in (0.5, 1.5):
            got = _array(set_sigma_max(W.copy(), target), f"set_sigma_max(W, {target})", W.shape)
            sigma = np.linalg.norm(got, 2)
            radius = np.max(np.abs(np.linalg.eigvals(got)))
            if np.isclose(radius, target) and not np.isclose(sigma, target):
                raise Wrong(
                    "that sets the spectral radius max|λ|; σ_max is the largest "
                    "singular value, np.linalg.norm(W, 2)"
                )
            if not np.isclose(sigma, target, rtol=1e-6):
                raise Wrong(f"σ_max of your W is {sigma:.6g}, expected {target}")
            _compare(got, W * (target / np.linalg.norm(W, 2)), "W (only its scale may change)")
        return "σ_max(W) = 0.5 and 1.5, the same directions"

    return _grade("sigma_max", check)


def gradient_reaching_first_step(seq_len: int, seed: int = 0) -> float:
    """‖∂L/∂s_1‖ / ‖∂L/∂s_T‖ for an untrained tanh RNN (hidden 16) on the adding problem.

    The loss is the squared error at the last step only; the ratio is the geometric mean over
    a batch of 32 sequences (``viz.gradient_flow(...).log_ratio()``), in float64.
    """
    from tinygrad_seq import functional as F
    from tinygrad_seq import viz
    from tinygrad_seq.data import adding_problem

    ts.manual_seed(seed)
    x, y = adding_problem(32, seq_len, np.random.default_rng(seed), dtype=np.float64)
    rnn, head = nn.Recurrent(nn.RNNCell(2, 16)).double(), nn.Linear(16, 1).double()
    flow = viz.gradient_flow(
        rnn, x, lambda outputs, _: F.mse_loss(head(outputs[-1]), y), dtype=np.float64
    )
    return float(10 ** flow.log_ratio()[0])


def check_failure_horizon(T_fail: Any, threshold: float = 1e-6) -> bool:
    """``T_fail``: the smallest T ≥ 2 with ``gradient_reaching_first_step(T) < threshold``."""

    def check() -> str:
        if T_fail is None:
            raise Wrong("not written yet: T_fail is None")
        if not isinstance(T_fail, int | np.integer) or T_fail < 2:
            raise Wrong(f"T_fail must be a whole number ≥ 2, got {T_fail!r}")
        ratio = gradient_reaching_first_step(int(T_fail))
        if ratio >= threshold:
            raise Wrong(f"at T = {T_fail} still {ratio:.1e} of the gradient reaches s_1: go longer")
        shorter = gradient_reaching_first_step(int(T_fail) - 1)
        if shorter < threshold:
            raise Wrong(
                f"already at T = {int(T_fail) - 1} only {shorter:.1e} reaches s_1: "
                "look for the smallest T"
            )
        return f"from T = {T_fail} on, less than {threshold:.0e} of ∂L/∂s_T reaches s_1"

    return _grade("failure_horizon", check)


# --------------------------------------------------------------------------- 06 your own op


def check_softsign(softsign: Callable[[ts.Tensor], ts.Tensor]) -> bool:
    """``softsign(x)`` = x / (1 + |x|) through your Function, whose backward you wrote."""

    def check() -> str:
        x = _tensor(np.array([[-3.0, -0.7, 0.4], [1.2, 2.5, -0.1]]), requires_grad=True)
        y = softsign(x)
        _compare(_array(y, "softsign(x)", x.shape), x.numpy() / (1 + np.abs(x.numpy())), "y")
        (grad,) = ts.grad(y.sum(), [x], allow_unused=True)
        if grad is None:
            raise Wrong("not written yet: backward returned no gradient for x")
        gradcheck(softsign, [x])
        return "∂L/∂x = g / (1 + |x|)² passes gradcheck"

    return _grade("softsign", check)


def check_leaky_cell(cell_class: Callable[[int, int], Any], alpha: float = 0.3) -> bool:
    """``cell_class(input_size, hidden_size)`` with ``weight_ih``, ``weight_hh``, ``bias`` and
    ``alpha``; ``forward(x, s_prev)`` = (1 − α)·s_{t−1} + α·tanh(U·x_t + W·s_{t−1} + β)."""

    def check() -> str:
        rng = _rng()
        B, D, H = 3, 2, 4
        ts.manual_seed(5)
        cell = cell_class(D, H)
        for name in ("weight_ih", "weight_hh", "bias"):
            if not isinstance(getattr(cell, name, None), ts.Tensor):
                raise Wrong(f"the cell has no parameter {name!r}")
        cell.double()
        cell.alpha = alpha
        x, s_prev = rng.normal(size=(B, D)), rng.normal(size=(B, H))
        U, W, beta = (getattr(cell, n).numpy() for n in ("weight_ih", "weight_hh", "bias"))
        want = (1 - alpha) * s_prev + alpha * np.tanh(x @ U.T + s_prev @ W.T + beta)
        answer = cell(_tensor(x), _tensor(s_prev))
        _compare(_array(answer, "cell(x, s_prev)", (B, H)), want, "s_t")
        first = _array(cell(_tensor(x), None), "cell(x, None)", (B, H))
        _compare(first, alpha * np.tanh(x @ U.T + beta), "s_1 from state None (s_0 = 0)")
        gradcheck(lambda x, s: cell(x, s), [_tensor(x, True), _tensor(s_prev, True)])
        outputs, _ = nn.Recurrent(cell)(_tensor(rng.normal(size=(5, B, D))))
        if tuple(outputs.shape) != (5, B, H):
            raise Wrong(
                f"nn.Recurrent over 5 steps gave outputs {outputs.shape}, expected {(5, B, H)}"
            )
        return "s_t matches the formula, gradcheck passes, and nn.Recurrent unrolls it"

    return _grade("leaky_cell", check)
