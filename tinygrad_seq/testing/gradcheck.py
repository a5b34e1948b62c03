"""Prove a gradient right: compare backward with central differences, and more.

``gradcheck(fn, inputs)`` turns the outputs of ``fn`` into one number with a random,
non-uniform upstream gradient v (one v_k per output),

    L(x) = Σ_k ⟨v_k, out_k(x)⟩,

and compares the analytical gradient ∂L/∂x (from ``ts.grad``) with central differences

    ∂L/∂x_j ≈ [L(x + ε e_j) − L(x − ε e_j)] / 2ε,

in float64, element by element. It also checks what a numerical comparison alone misses:

================  ==========================================================================
check             what it proves (checks run in this order; the first failure is reported)
================  ==========================================================================
``forward``       the outputs are float64 (differences in float32 are accurate to ~1e-3
                  only, so they could prove nothing) and keep their shapes at x ± ε
``mutation``      neither forward nor backward writes into an input or the upstream
                  gradient (they are read-only during the check, as are the arrays a node
                  saved, so numpy stops the faulty line; the inputs are also compared with
                  copies)
``shape``         every gradient has its input's shape; ``dtype``: and its dtype
``aliasing``      no gradient shares memory with another, with the upstream gradient or with
                  an input — from ``ts.grad`` nor in ``.grad`` after ``backward()``
``linearity``     backward is linear in the upstream gradient: v = 0 gives 0, and
                  grad(a·v₁ + b·v₂) = a·grad(v₁) + b·grad(v₂) — catches a backward that
                  ignores or misuses g (returns ones, squares g, adds a constant)
``reentrancy``    two fresh forward+backward runs give bitwise equal gradients
``create_graph``  backward run on Tensors (``create_graph=True``) agrees with backward run
                  on arrays (the default): catches a backward that branches on the type of
                  its arguments; skipped when fn runs a fused kernel, whose backward exists
                  on arrays only
``numerical``     analytical and numerical gradients agree:
                  |analytical − numerical| ≤ atol + rtol·|numerical| for every element
================  ==========================================================================

A failure raises :class:`GradcheckError` whose message stands on its own: the check, the
input, the worst element, both values, the errors, ε and the tolerances. Exceptions that are
not gradient failures (a TypeError in ``fn``) propagate unchanged.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

import tinygrad_seq as ts
from tinygrad_seq.kernels.sequence import DoubleBackwardError
from tinygrad_seq.tensor import Tensor

__all__ = ["GradcheckError", "assert_grads_close", "gradcheck", "gradgradcheck", "numerical_grad"]

# Coefficients of the superposition test: exact in binary, so a·g₁ + b·g₂ adds no rounding.
_LINEAR_A, _LINEAR_B = 0.75, -1.5
# Tolerance, relative to the largest gradient entry, of comparisons that are exact in exact
# arithmetic (superposition, backward on arrays and on Tensors): only rounding may separate
# the sides.
_ROUNDING_RTOL = 1e-8
# Errors below this fraction of the largest entry, but above the one before, smell of float32.
_FLOAT32_RTOL = 1e-5


class GradcheckError(AssertionError):
    """A gradient check failed. ``check`` names which one (see the module docstring).

    ``input`` is the input's name (``"inputs[1]"``), ``index`` the worst element, and
    ``analytical`` / ``numerical`` the two values compared there, when they apply.
    """

    def __init__(
        self,
        message: str,
        check: str,
        input: str | None = None,
        index: tuple[int, ...] | None = None,
        analytical: float | None = None,
        numerical: float | None = None,
    ) -> None:
        super().__init__(message)
        self.check = check
        self.input = input
        self.index = index
        self.analytical = analytical
        self.numerical = numerical


# --------------------------------------------------------------------------- public API


def gradcheck(
    fn: Callable[..., Any],
    inputs: Sequence[Any],
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    raise_exception: bool = True,
    *,
    upstream: Any = None,
    rng: np.random.Generator | int | None = None,
) -> bool:
    """Check the gradients of ``fn`` at ``inputs``; True on success.

    ``fn`` takes the inputs and returns a Tensor or a tuple/list of Tensors (outputs that
    do not require grad are skipped; an output need not depend on every input). ``inputs``
    holds Tensors — those with ``requires_grad=True`` are checked — and anything else, which
    is passed through unchanged; tuples and lists of Tensors are followed (an LSTM state
    ``(h, c)``). Floating inputs are checked on float64 copies (with a warning for other
    dtypes): the caller's tensors are never touched.

    ``upstream`` is v: an array for a single output, or a sequence with one array (or None)
    per output. By default it is drawn from ``rng`` (a Generator, a seed, or None for seed 0,
    so the check is deterministic), with entries in ±[0.5, 1.5] — non-uniform, none near 0.

    On failure raises :class:`GradcheckError`, or returns False if ``raise_exception`` is
    False.
    """
    _warn_lower_precision(inputs, "gradcheck")
    try:
        _run_checks(fn, inputs, eps, atol, rtol, upstream, _as_rng(rng), "gradcheck", None)
    except GradcheckError:
        if raise_exception:
            raise
        return False
    return True


def gradgradcheck(
    fn: Callable[..., Any],
    inputs: Sequence[Any],
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    raise_exception: bool = True,
    *,
    upstream: Any = None,
    rng: np.random.Generator | int | None = None,
) -> bool:
    """Check second derivatives: :func:`gradcheck` of the first-order gradient function.

    That function maps (inputs, v) to ∂⟨v, fn(inputs)⟩/∂inputs, computed by ``ts.grad``
    with ``create_graph=True``. Its derivative with respect to the inputs is a
    Hessian-vector product; with respect to v it is the Jacobian again. It fails when a
    backward is correct in value but not differentiable, e.g. one that turns its Tensor
    arguments into arrays (``np.asarray(x)``), which cuts the graph. ``upstream`` is v (as
    in :func:`gradcheck`); the check's own upstream is drawn from ``rng``. Failures name
    v's entries ``v[k]``.
    """
    rng = _as_rng(rng)
    _warn_lower_precision(inputs, "gradgradcheck")
    probe = _Setup(fn, inputs, "gradgradcheck")
    first = probe.outputs()
    diff = probe.differentiable(first)
    v = _upstream_arrays(upstream, first, diff, rng, "gradgradcheck")
    n = len(inputs)

    def first_order(*args: Any) -> tuple[Tensor, ...]:
        outs = _flat_outputs(fn(*args[:n]), "gradgradcheck")
        wrt = [t for _, t in _tensor_leaves(args[:n]) if t.requires_grad]
        grads = ts.grad(
            [outs[k] for k in diff],
            wrt,
            grad_outputs=[args[n + j] for j in range(len(diff))],
            create_graph=True,
            allow_unused=True,
        )
        return tuple(g for g in grads if g is not None)

    vs = [ts.from_numpy(v[k].copy(), requires_grad=True) for k in diff]
    names = [f"inputs[{i}]" for i in range(n)] + [f"v[{k}]" for k in diff]
    context = (
        "second order: checking (inputs, v) ↦ ∂⟨v, fn(inputs)⟩/∂inputs, built with "
        "create_graph=True; v[k] is the upstream gradient of output k"
    )
    try:
        _run_checks(
            first_order,
            [*inputs, *vs],
            eps,
            atol,
            rtol,
            None,
            rng,
            "gradgradcheck",
            context,
            names=names,
        )
    except GradcheckError:
        if raise_exception:
            raise
        return False
    return True


def numerical_grad(
    fn: Callable[..., Any], inputs: Sequence[Any], upstream: Any, eps: float = 1e-6
) -> tuple[np.ndarray, ...]:
    """Central-difference gradient of L(x) = Σ_k ⟨upstream_k, out_k(x)⟩, in float64.

    ∂L/∂x_j ≈ [L(x + ε e_j) − L(x − ε e_j)] / 2ε for every element of every input that
    requires grad; one float64 array per such input, in order (tuples and lists in
    ``inputs`` are flattened). ``upstream`` is as in :func:`gradcheck`. Costs two calls of
    ``fn`` per element: keep inputs small.
    """
    _warn_lower_precision(inputs, "numerical_grad")
    setup = _Setup(fn, inputs, "numerical_grad")
    first = setup.outputs()
    diff = setup.differentiable(first)
    v = _upstream_arrays(upstream, first, diff, None, "numerical_grad")
    return tuple(est.grad for est in setup.numerical(v, diff, eps, first))


def assert_grads_close(
    actual: Any,
    expected: Any,
    rtol: float = 1e-7,
    atol: float = 1e-10,
    names: Sequence[str] | None = None,
) -> None:
    """Assert |actual − expected| ≤ atol + rtol·|expected| for each pair of gradients.

    ``actual`` and ``expected`` are arrays or Tensors, or sequences of them (None stands for
    "no gradient" and matches None or all zeros). On failure raises :class:`GradcheckError`
    naming every gradient that differs with its worst element, both values, and the absolute
    and relative error (0/0 counts as a relative error of 0, x/0 as inf — never NaN).
    """
    actual_list, expected_list = _as_grad_list(actual), _as_grad_list(expected)
    if len(actual_list) != len(expected_list):
        raise ValueError(
            f"assert_grads_close: {len(actual_list)} actual gradients but "
            f"{len(expected_list)} expected"
        )
    if names is None:
        names = [f"gradient {k}" for k in range(len(actual_list))]
    elif len(names) != len(actual_list):
        raise ValueError(f"assert_grads_close: {len(names)} names for {len(actual_list)} gradients")
    failures = []
    for name, a, e in zip(names, actual_list, expected_list, strict=True):
        if a is None and e is None:
            continue
        if a is None or e is None:
            a = np.zeros_like(e) if a is None else a
            e = np.zeros_like(a) if e is None else e
        if a.shape != e.shape:
            failures.append(f"{name}: actual shape {a.shape} but expected shape {e.shape}")
            continue
        worst = _worst_mismatch(a, e, rtol, atol)
        if worst is not None:
            failures.append(f"{name} (shape {a.shape}): " + _describe(worst, "actual", "expected"))
    if failures:
        raise GradcheckError(
            "gradients differ:\n  "
            + "\n  ".join(failures)
            + f"\n  allowed: |actual - expected| <= atol + rtol*|expected| with atol={atol:g}, "
            f"rtol={rtol:g}",
            check="close",
        )


# --------------------------------------------------------------------------- the checks


def _run_checks(
    fn: Callable[..., Any],
    inputs: Sequence[Any],
    eps: float,
    atol: float,
    rtol: float,
    upstream: Any,
    rng: np.random.Generator,
    caller: str,
    context: str | None,
    names: Sequence[str] | None = None,
) -> None:
    """Run every check in turn; the first failure raises GradcheckError."""
    setup = _Setup(fn, inputs, caller, names=names)
    fail = _Failer(caller, context, eps, atol, rtol)
    with setup.guard_errors(fail, "forward"):
        first = setup.outputs()
    diff = setup.differentiable(first)
    for k in diff:
        if first[k].dtype != np.float64:
            raise fail(
                "forward",
                f"output {k} has dtype {first[k].dtype} although the inputs are float64 copies: "
                "fn converts to a lower precision (an astype, or float32 constants), where "
                "central differences are too inaccurate to prove anything",
            )
    v = _upstream_arrays(upstream, first, diff, rng, caller)

    grads = setup.analytical(v, diff, fail)
    _check_shapes(setup, grads, fail)
    setup.assert_unmutated(fail)
    _check_aliasing(setup, v, diff, grads, fail)
    _check_linearity(setup, v, diff, grads, rng, fail)
    _check_reentrancy(setup, v, diff, grads, fail)
    _check_create_graph(setup, v, diff, grads, fail)
    _check_numerical(setup, v, diff, grads, first, eps, atol, rtol, fail)
    setup.assert_unmutated(fail)


def _check_shapes(setup: _Setup, grads: list[np.ndarray | None], fail: _Failer) -> None:
    """Each gradient has its input's shape and dtype."""
    for i, g in zip(setup.checked, grads, strict=True):
        leaf = setup.leaves[i]
        if g is None:
            continue
        if g.shape != leaf.array.shape:
            raise fail(
                "shape",
                f"the gradient of {leaf.name} has shape {g.shape}, but the input has shape "
                f"{leaf.array.shape}",
                input=leaf.name,
            )
        if g.dtype != leaf.array.dtype:
            raise fail(
                "dtype",
                f"the gradient of {leaf.name} (shape {g.shape}) has dtype {g.dtype}, but the "
                f"input has dtype {leaf.array.dtype}",
                input=leaf.name,
            )


def _check_reentrancy(
    setup: _Setup,
    v: list[np.ndarray | None],
    diff: list[int],
    grads: list[np.ndarray | None],
    fail: _Failer,
) -> None:
    """A second fresh forward+backward gives bitwise the same gradients."""
    again = setup.analytical(v, diff, fail)
    for i, g1, g2 in zip(setup.checked, grads, again, strict=True):
        if not _bitwise_equal(g1, g2):
            leaf = setup.leaves[i]
            index = _first_difference(g1, g2)
            raise fail(
                "reentrancy",
                f"two runs of forward+backward with the same inputs and upstream gave "
                f"different gradients for {leaf.name} (shape {leaf.array.shape}): at element "
                f"{index}, {_value(g1, index)} then {_value(g2, index)}. The op is not "
                "deterministic: unseeded randomness, or state kept between calls",
                input=leaf.name,
                index=index,
            )


def _check_create_graph(
    setup: _Setup,
    v: list[np.ndarray | None],
    diff: list[int],
    grads: list[np.ndarray | None],
    fail: _Failer,
) -> None:
    """Backward on Tensors (``create_graph=True``) agrees with backward on arrays.

    The engine calls each op's backward with arrays, or with Tensors (which record it as ops)
    under ``create_graph``. One formula written with operators and numpy functions gives the
    same values both ways, up to rounding; a backward that branches on the type of g or of
    its saved inputs may not.
    """
    try:
        recorded = setup.analytical(v, diff, fail, create_graph=True)
    except DoubleBackwardError:  # fn runs a fused kernel: there is no second path to compare
        return
    for i, g, gr in zip(setup.checked, grads, recorded, strict=True):
        if g is None and gr is None:
            continue
        shape = setup.leaves[i].array.shape
        g, gr = (np.zeros(shape) if a is None else a for a in (g, gr))
        leaf = setup.leaves[i]
        _require_rounding_only(
            fail,
            "create_graph",
            leaf.name,
            (gr, "create_graph=True"),
            (g, "create_graph=False"),
            _rounding_scale(fail, g, gr),
            f"the gradient of {leaf.name} (shape {shape}) computed with create_graph=True "
            "(each op's backward run on Tensors) differs from the one without (backward run "
            "on arrays): a backward must compute the same formula for both, not branch on "
            "the type of its arguments",
        )


def _check_numerical(
    setup: _Setup,
    v: list[np.ndarray | None],
    diff: list[int],
    grads: list[np.ndarray | None],
    first: list[Any],
    eps: float,
    atol: float,
    rtol: float,
    fail: _Failer,
) -> None:
    """|analytical − numerical| ≤ atol + rtol·|numerical| for every element."""
    estimates = setup.numerical(v, diff, eps, first, fail)
    for i, est, g in zip(setup.checked, estimates, grads, strict=True):
        analytical = np.zeros_like(est.grad) if g is None else g
        worst = _worst_mismatch(analytical, est.grad, rtol, atol)
        if worst is not None:
            leaf = setup.leaves[i]
            raise fail(
                "numerical",
                f"the analytical gradient of {leaf.name} (shape {leaf.array.shape}) differs "
                f"from central differences"
                + (" (backward gave no gradient: the input looked unused)" if g is None else "")
                + "\n  "
                + _describe(worst, "analytical", "numerical")
                + "\n  allowed: |analytical - numerical| <= atol + rtol*|numerical|"
                + est.kink_hint(worst.index, atol, rtol),
                input=leaf.name,
                index=worst.index,
                analytical=worst.actual,
                numerical=worst.expected,
            )


def _check_linearity(
    setup: _Setup,
    v: list[np.ndarray | None],
    diff: list[int],
    grads: list[np.ndarray | None],
    rng: np.random.Generator,
    fail: _Failer,
) -> None:
    """Backward must be linear in the upstream gradient: zero in, zero out; superposition."""
    zero = [None if u is None else np.zeros_like(u) for u in v]
    for i, g in zip(setup.checked, setup.analytical(zero, diff, fail), strict=True):
        if g is not None and np.any(g != 0):
            leaf = setup.leaves[i]
            index = _unravel(np.argmax(np.abs(np.nan_to_num(g, nan=np.inf))), g.shape)
            raise fail(
                "linearity",
                f"a zero upstream gradient gave a nonzero gradient for {leaf.name} (shape "
                f"{leaf.array.shape}): {_value(g, index)} at element {index}. Backward must "
                "multiply by the upstream gradient g, not ignore it or add to it",
                input=leaf.name,
                index=index,
            )
    v2 = [None if u is None else _draw_upstream(u.shape, rng) for u in v]
    mixed = [
        None if u is None else np.asarray(_LINEAR_A * u + _LINEAR_B * w)
        for u, w in zip(v, v2, strict=True)
    ]
    for u in mixed:
        if u is not None:
            u.setflags(write=False)
    grads2 = setup.analytical(v2, diff, fail)
    grads_mixed = setup.analytical(mixed, diff, fail)
    for i, g1, g2, gm in zip(setup.checked, grads, grads2, grads_mixed, strict=True):
        if g1 is None and g2 is None and gm is None:
            continue
        g1, g2, gm = (
            np.zeros(setup.leaves[i].array.shape) if g is None else g for g in (g1, g2, gm)
        )
        leaf = setup.leaves[i]
        _require_rounding_only(
            fail,
            "linearity",
            leaf.name,
            (gm, "grad(a·v₁ + b·v₂)"),
            (_LINEAR_A * g1 + _LINEAR_B * g2, "a·grad(v₁) + b·grad(v₂)"),
            _rounding_scale(fail, _LINEAR_A * g1, _LINEAR_B * g2),
            f"backward is not linear in the upstream gradient for {leaf.name} (shape "
            f"{leaf.array.shape}): grad({_LINEAR_A}·v₁ + {_LINEAR_B}·v₂) ≠ "
            f"{_LINEAR_A}·grad(v₁) + {_LINEAR_B}·grad(v₂)",
        )


def _check_aliasing(
    setup: _Setup,
    v: list[np.ndarray | None],
    diff: list[int],
    grads: list[np.ndarray | None],
    fail: _Failer,
) -> None:
    """Gradients own their memory: from ``ts.grad`` and in ``.grad`` after ``backward()``.

    A gradient that shares memory with another one, with the upstream gradient or with an
    input is corrupted by the next in-place update (``p.data -= lr * p.grad.data``).
    """
    for how, found in (("ts.grad", grads), (".grad", setup.leaf_grads(v, diff, fail))):
        others: list[tuple[str, np.ndarray]] = [
            (f"the upstream gradient of output {k}", u) for k, u in enumerate(v) if u is not None
        ]
        others += [(leaf.name, leaf.array) for leaf in setup.leaves]
        for i, g in zip(setup.checked, found, strict=True):
            if g is None:
                continue
            name = setup.leaves[i].name
            for other_name, other in others:
                if np.shares_memory(g, other):
                    raise fail(
                        "aliasing",
                        f"the gradient of {name} (shape {g.shape}, from {how}) shares memory "
                        f"with {other_name}: an in-place update of one changes the other. "
                        "Return a new array from backward",
                        input=name,
                    )
            others.append((f"the gradient of {name}", g))


# --------------------------------------------------------------------------- set-up


class _Leaf:
    """One tensor among the inputs: its float64, read-only working copy and a reference."""

    def __init__(self, name: str, tensor: Tensor) -> None:
        self.name = name
        self.requires_grad = tensor.requires_grad
        data = tensor.data
        self.array = data.astype(np.float64) if data.dtype.kind == "f" else data.copy()
        self.array.setflags(write=False)
        self.reference = self.array.copy()


class _Estimate:
    """Central differences of one input, with the losses kept for the kink diagnosis."""

    def __init__(self, shape: tuple[int, ...], center: float) -> None:
        self.grad = np.zeros(shape)
        self.plus = np.zeros(shape)
        self.minus = np.zeros(shape)
        self.step = np.zeros(shape)
        self.center = center

    def kink_hint(self, index: tuple[int, ...], atol: float, rtol: float) -> str:
        """A note when the one-sided differences disagree: x sits on a non-smooth point."""
        h = self.step[index] / 2
        right = (self.plus[index] - self.center) / h
        left = (self.center - self.minus[index]) / h
        if abs(right - left) <= 2 * (atol + rtol * max(abs(right), abs(left))):
            return ""
        return (
            f"\n  hint: the one-sided differences disagree here (right {right:.10g}, left "
            f"{left:.10g}): the input sits within eps of a point where fn is not "
            "differentiable (a kink of relu/abs/clip, a tie in max/min). Move the input "
            "away (strategies.away_from, strategies.separated) rather than loosening the "
            "tolerance"
        )


class _Setup:
    """The inputs of one check: read-only float64 copies, and runs of ``fn`` on them."""

    def __init__(
        self,
        fn: Callable[..., Any],
        inputs: Sequence[Any],
        caller: str,
        names: Sequence[str] | None = None,
    ) -> None:
        if isinstance(inputs, Tensor) or not isinstance(inputs, Sequence):
            raise TypeError(
                f"{caller}: inputs must be a sequence (a tuple or list) of inputs, got "
                f"{type(inputs).__name__}; write [x] for a single tensor"
            )
        self.fn = fn
        self.caller = caller
        self.inputs = list(inputs)
        self.leaves = [_Leaf(name, t) for name, t in _tensor_leaves(self.inputs, names)]
        self.checked = [i for i, leaf in enumerate(self.leaves) if leaf.requires_grad]
        if not self.checked:
            raise ValueError(
                f"{caller}: no input tensor requires grad, so there is nothing to check; "
                "create the inputs with requires_grad=True"
            )

    def run(self, arrays: Sequence[np.ndarray] | None = None) -> tuple[list[Tensor], list[Any]]:
        """Call fn on fresh leaves built from ``arrays`` (default: the working copies)."""
        arrays = [leaf.array for leaf in self.leaves] if arrays is None else arrays
        tensors = [
            ts.from_numpy(a, requires_grad=leaf.requires_grad)
            for a, leaf in zip(arrays, self.leaves, strict=True)
        ]
        with ts.enable_grad():
            result = self.fn(*_replace_leaves(self.inputs, iter(tensors)))
        return tensors, _flat_outputs(result, self.caller)

    def outputs(self) -> list[Any]:
        return self.run()[1]

    def differentiable(self, outputs: list[Any]) -> list[int]:
        """Positions of the outputs that take part: Tensors that require grad."""
        diff = [k for k, out in enumerate(outputs) if isinstance(out, Tensor) and out.requires_grad]
        if not diff:
            raise ValueError(
                f"{self.caller}: none of fn's {len(outputs)} outputs requires grad, so there "
                "is no gradient to check; does fn detach its result or run under no_grad?"
            )
        return diff

    @contextlib.contextmanager
    def guard_errors(self, fail: _Failer, stage: str) -> Iterator[None]:
        """Turn numpy's refusal to write a read-only array into a ``mutation`` failure, and
        an impossible un-broadcast during backward into a ``shape`` failure."""
        try:
            yield
        except ValueError as error:
            text = str(error)
            if "read-only" in text:
                raise fail(
                    "mutation",
                    f"the {stage} pass wrote into an input or the upstream gradient in place "
                    f"(they are read-only during the check, and so is what a node saved until "
                    f"its backward has run): {text}. Compute a new array instead of modifying "
                    "one",
                ) from error
            if stage == "backward" and text.startswith("sum_to:"):
                raise fail(
                    "shape",
                    f"a backward returned a gradient whose shape cannot be summed back to its "
                    f"input's shape: {text}",
                ) from error
            raise

    def analytical(
        self,
        v: list[np.ndarray | None],
        diff: list[int],
        fail: _Failer,
        create_graph: bool = False,
    ) -> list[np.ndarray | None]:
        """∂L/∂x for each checked input via ``ts.grad`` (None: the input was not used)."""
        with self.guard_errors(fail, "forward"):
            tensors, outs = self.run()
        with self.guard_errors(fail, "backward"):
            grads = ts.grad(
                [outs[k] for k in diff],
                [tensors[i] for i in self.checked],
                grad_outputs=[v[k] for k in diff],
                create_graph=create_graph,
                allow_unused=True,
            )
        return [None if g is None else g.data for g in grads]

    def leaf_grads(
        self, v: list[np.ndarray | None], diff: list[int], fail: _Failer
    ) -> list[np.ndarray | None]:
        """The ``.grad`` of each checked input after ``L.backward()``."""
        with self.guard_errors(fail, "forward"):
            tensors, outs = self.run()
            loss = None
            for k in diff:
                term = (outs[k] * ts.from_numpy(v[k])).sum()
                loss = term if loss is None else loss + term
        with self.guard_errors(fail, "backward"):
            loss.backward()
        return [None if tensors[i].grad is None else tensors[i].grad.data for i in self.checked]

    def loss(
        self,
        arrays: Sequence[np.ndarray],
        v: list[np.ndarray | None],
        diff: list[int],
        first: list[Any],
        fail: _Failer | None,
    ) -> float:
        """L = Σ_k ⟨v_k, out_k⟩ at ``arrays``; the outputs must keep their shapes."""
        guard = self.guard_errors(fail, "forward") if fail is not None else contextlib.nullcontext()
        with guard:
            _, outs = self.run(arrays)
        total = 0.0
        for k in diff:
            out = outs[k]
            if not isinstance(out, Tensor) or out.shape != first[k].shape:
                shape = out.shape if isinstance(out, Tensor) else type(out).__name__
                message = (
                    f"output {k} has shape {first[k].shape} at the inputs but {shape} at a "
                    "perturbed input: the outputs' structure must not depend on the values"
                )
                if fail is None:
                    raise ValueError(f"{self.caller}: {message}")
                raise fail("forward", message)
            total += float(np.sum(v[k] * out.data))
        return total

    def numerical(
        self,
        v: list[np.ndarray | None],
        diff: list[int],
        eps: float,
        first: list[Any],
        fail: _Failer | None = None,
    ) -> list[_Estimate]:
        """Central differences of L for every element of every checked input."""
        base = [leaf.array for leaf in self.leaves]
        center = self.loss(base, v, diff, first, fail)
        estimates = []
        for i in self.checked:
            est = _Estimate(base[i].shape, center)
            for j in np.ndindex(base[i].shape):
                up, down = base[i].copy(), base[i].copy()
                up[j] += eps
                down[j] -= eps
                up.setflags(write=False)
                down.setflags(write=False)
                est.plus[j] = self.loss([*base[:i], up, *base[i + 1 :]], v, diff, first, fail)
                est.minus[j] = self.loss([*base[:i], down, *base[i + 1 :]], v, diff, first, fail)
                # The step actually taken: x ± eps is rounded, so it is not exactly 2·eps.
                est.step[j] = up[j] - down[j]
                est.grad[j] = (est.plus[j] - est.minus[j]) / est.step[j]
            estimates.append(est)
        return estimates

    def assert_unmutated(self, fail: _Failer) -> None:
        for leaf in self.leaves:
            if not np.array_equal(leaf.array, leaf.reference, equal_nan=True):
                raise fail(
                    "mutation",
                    f"{leaf.name} (shape {leaf.array.shape}) was modified during the check "
                    "(its read-only flag was switched off and the array written): forward "
                    "and backward must not change their inputs",
                    input=leaf.name,
                )


class _Failer:
    """Builds GradcheckErrors that all state the caller, the settings and any context."""

    def __init__(self, caller: str, context: str | None, eps: float, atol: float, rtol: float):
        self.caller = caller
        self.context = context
        self.atol = atol
        self.settings = f"eps={eps:g}, atol={atol:g}, rtol={rtol:g}"

    def __call__(self, check: str, detail: str, **fields: Any) -> GradcheckError:
        message = f"{self.caller} failed the '{check}' check: {detail}\n  settings: {self.settings}"
        if self.context:
            message += f"\n  ({self.context})"
        return GradcheckError(message, check, **fields)


# --------------------------------------------------------------------------- helpers


def _warn_lower_precision(inputs: Sequence[Any], caller: str) -> None:
    """Warn (at the caller's line) that inputs below float64 are checked as float64 copies."""
    if isinstance(inputs, Tensor) or not isinstance(inputs, Sequence):
        return  # _Setup reports the misuse
    cast = [
        f"{name} ({t.dtype}, shape {t.shape})"
        for name, t in _tensor_leaves(inputs)
        if t.requires_grad and t.dtype != np.float64
    ]
    if cast:
        warnings.warn(
            f"{caller}: checking float64 copies of {', '.join(cast)}: central differences in "
            "lower precision are accurate to ~1e-3 only, so the float64 version of fn is "
            "what gets checked",
            stacklevel=3,
        )


def _as_rng(rng: np.random.Generator | int | None) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    return np.random.default_rng(0 if rng is None else rng)


def _tensor_leaves(
    tree: Sequence[Any], names: Sequence[str] | None = None
) -> Iterator[tuple[str, Tensor]]:
    """The Tensors inside ``tree`` (following tuples and lists), each with a readable name."""
    for k, item in enumerate(tree):
        name = names[k] if names is not None else f"inputs[{k}]"
        yield from _leaves_under(item, name)


def _leaves_under(item: Any, name: str) -> Iterator[tuple[str, Tensor]]:
    if isinstance(item, Tensor):
        yield name, item
    elif isinstance(item, tuple | list):
        for k, sub in enumerate(item):
            yield from _leaves_under(sub, f"{name}[{k}]")


def _replace_leaves(item: Any, replacements: Iterator[Tensor]) -> Any:
    """``item`` with its Tensors replaced, in order, by ``replacements``."""
    if isinstance(item, Tensor):
        return next(replacements)
    if isinstance(item, tuple | list):
        return type(item)(_replace_leaves(sub, replacements) for sub in item)
    return item


def _flat_outputs(result: Any, caller: str) -> list[Any]:
    """fn's outputs as a flat list (tuples and lists followed; None kept as a non-output)."""
    if isinstance(result, Tensor) or result is None:
        return [result]
    if isinstance(result, tuple | list):
        return [out for item in result for out in _flat_outputs(item, caller)]
    raise TypeError(
        f"{caller}: fn must return a Tensor or a tuple/list of Tensors, got {type(result).__name__}"
    )


def _draw_upstream(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """Entries in ±[0.5, 1.5]: non-uniform (hides no weighting bug) and none near zero."""
    v = np.asarray(rng.uniform(0.5, 1.5, size=shape) * rng.choice([-1.0, 1.0], size=shape))
    v.setflags(write=False)
    return v


def _upstream_arrays(
    upstream: Any,
    outputs: list[Any],
    diff: list[int],
    rng: np.random.Generator | None,
    caller: str,
) -> list[np.ndarray | None]:
    """One read-only float64 array per differentiable output (None for the others)."""
    if upstream is None:
        if rng is None:
            raise ValueError(f"{caller}: give the upstream gradient, one array per output")
        return [
            _draw_upstream(outputs[k].shape, rng) if k in diff else None
            for k in range(len(outputs))
        ]
    if isinstance(upstream, Tensor | np.ndarray) or np.isscalar(upstream):
        upstream = [upstream]
    upstream = list(upstream)
    if len(upstream) != len(outputs):
        raise ValueError(
            f"{caller}: fn returned {len(outputs)} outputs but upstream has "
            f"{len(upstream)} entries; give one array (or None) per output"
        )
    arrays: list[np.ndarray | None] = []
    for k, u in enumerate(upstream):
        if k not in diff:
            arrays.append(None)
            continue
        if u is None:
            raise ValueError(f"{caller}: output {k} requires grad but its upstream entry is None")
        u = np.array(u.data if isinstance(u, Tensor) else u, dtype=np.float64)
        if u.shape != outputs[k].shape:
            raise ValueError(
                f"{caller}: upstream entry {k} has shape {u.shape} but output {k} has shape "
                f"{outputs[k].shape}"
            )
        u.setflags(write=False)
        arrays.append(u)
    return arrays


def _as_grad_list(grads: Any) -> list[np.ndarray | None]:
    if grads is None or isinstance(grads, Tensor | np.ndarray):
        grads = [grads]
    return [
        None if g is None else np.asarray(g.data if isinstance(g, Tensor) else g) for g in grads
    ]


class _Mismatch:
    """The worst element of a comparison, with its errors."""

    def __init__(self, index: tuple[int, ...], actual: float, expected: float) -> None:
        self.index = index
        self.actual = actual
        self.expected = expected
        self.abs_error = abs(actual - expected)
        self.rel_error = _relative(self.abs_error, abs(expected))


def _relative(abs_error: float, magnitude: float) -> float:
    """abs_error / magnitude, with 0/0 = 0 and x/0 = inf (never NaN)."""
    if magnitude > 0:
        return abs_error / magnitude
    return 0.0 if abs_error == 0 else float("inf")


def _worst_mismatch(
    actual: np.ndarray, expected: np.ndarray, rtol: float, atol: float
) -> _Mismatch | None:
    """The element most over |a − e| ≤ atol + rtol·|e|, or None when all pass.

    NaN anywhere fails. Equal values pass even when the allowance is 0 (or both inf).
    """
    a = np.asarray(actual, dtype=np.float64)
    e = np.asarray(expected, dtype=np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        diff = np.abs(a - e)
        allowed = atol + rtol * np.abs(e)
        bad = ~((a == e) | (diff <= allowed))
        if not np.any(bad):
            return None
        excess = np.where(bad, diff, 0.0)
        excess = np.where(bad & (allowed > 0), excess / np.where(allowed > 0, allowed, 1), excess)
        excess = np.where(bad & (np.isnan(excess) | (allowed <= 0)), np.inf, excess)
    flat = int(np.argmax(excess))
    index = _unravel(flat, a.shape)
    return _Mismatch(index, float(a[index]), float(e[index]))


def _unravel(flat: Any, shape: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(int(i) for i in np.unravel_index(int(flat), shape))


def _describe(m: _Mismatch, actual_name: str, expected_name: str) -> str:
    return (
        f"worst element {m.index}: {actual_name} {m.actual:.10g}, {expected_name} "
        f"{m.expected:.10g}; abs error {m.abs_error:.3e}, rel error {m.rel_error:.3e}"
    )


def _require_rounding_only(
    fail: _Failer,
    check: str,
    input_name: str,
    actual: tuple[np.ndarray, str],
    expected: tuple[np.ndarray, str],
    scale: float,
    detail: str,
) -> None:
    """Raise ``check``'s GradcheckError unless the two arrays, equal in theory, differ by
    rounding only (relative to ``scale``)."""
    worst = _worst_mismatch(actual[0], expected[0], 0.0, _ROUNDING_RTOL * scale)
    if worst is not None:
        raise fail(
            check,
            f"{detail}\n  "
            + _describe(worst, actual[1], expected[1])
            + _rounding_note(worst, scale),
            input=input_name,
            index=worst.index,
        )


def _rounding_scale(fail: _Failer, *grads: np.ndarray) -> float:
    """What rounding is relative to in an exact-in-theory comparison of gradients: their
    largest entry, but at least ``atol``. A gradient that is 0 by cancellation of large
    terms still carries their rounding (softmax's second derivative at x = [0, 0] is 1e-16,
    not 0), and nothing below atol·1e-8 can matter to the numerical check anyway."""
    return max(fail.atol, *(float(np.max(np.abs(g), initial=0.0)) for g in grads))


def _rounding_note(worst: _Mismatch, scale: float) -> str:
    """The allowance of an exact-in-theory comparison, and a hint when float32 explains it."""
    note = (
        f"\n  allowed: rounding only ({_ROUNDING_RTOL:g} of the largest entry or of atol, "
        f"{scale:.3g})"
    )
    if worst.abs_error <= _FLOAT32_RTOL * scale:
        note += (
            "\n  hint: an error this small is float32 rounding: fn (or an op in it) computes "
            "in float32 somewhere; keep every step in float64 for the check"
        )
    return note


def _value(array: np.ndarray, index: tuple[int, ...]) -> str:
    return f"{float(array[index]):.17g}"


def _bitwise_equal(a: np.ndarray | None, b: np.ndarray | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return a.shape == b.shape and a.dtype == b.dtype and a.tobytes() == b.tobytes()


def _first_difference(a: np.ndarray | None, b: np.ndarray | None) -> tuple[int, ...] | None:
    if a is None or b is None or a.shape != b.shape:
        return None
    differs = np.frombuffer(a.tobytes(), np.uint8).reshape(a.size, -1) != np.frombuffer(
        b.tobytes(), np.uint8
    ).reshape(b.size, -1)
    return _unravel(np.argmax(differs.any(axis=1)), a.shape)
