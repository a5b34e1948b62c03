"""Inputs that once gave a wrong number without a word: each case here failed before its fix.

Losses whose every target is padding, and padding places whose log-probability is −inf.
References: numpy always, PyTorch when installed.
"""

from __future__ import annotations

import numpy as np
import pytest

import tinygrad_seq as ts
import tinygrad_seq.functional as F

IGNORE = -100
REDUCTIONS = ["mean", "sum", "none"]


def numpy_cross_entropy(logits: np.ndarray, target: np.ndarray, reduction: str):
    """Loss and ∂(Σ loss)/∂logits for (N, C) logits, written out in numpy.

    ∂/∂logits of one place's loss is softmax − onehot(target); ignored places give 0, and
    the mean divides by the number of places counted (0 / 0 = NaN when there are none).
    """
    valid = target != IGNORE
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    picked = log_probs[np.arange(len(target)), np.where(valid, target, 0)]
    losses = np.where(valid, -picked, 0.0)
    onehot = np.eye(logits.shape[1])[np.where(valid, target, 0)]
    grads = np.where(valid[:, None], np.exp(log_probs) - onehot, 0.0)
    count = int(valid.sum())
    if reduction == "none":
        return losses, grads
    if reduction == "sum":
        return losses.sum(), grads
    with np.errstate(invalid="ignore"):
        loss = losses.sum() / count if count else np.float64(np.nan)
    return loss, grads / count if count else np.zeros_like(grads)


def ours(loss_fn, logits: np.ndarray, target: np.ndarray, reduction: str):
    x = ts.tensor(logits, requires_grad=True)
    inputs = F.log_softmax(x, axis=1) if loss_fn is F.nll_loss else x
    loss = loss_fn(inputs, target, reduction=reduction, ignore_index=IGNORE)
    loss.sum().backward()
    return loss.numpy(), x.grad.numpy()


@pytest.mark.parametrize("loss_fn", [F.cross_entropy, F.nll_loss])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_all_targets_ignored_gives_zero_gradients(loss_fn, reduction):
    logits = np.random.default_rng(0).standard_normal((3, 4))
    target = np.full(3, IGNORE)
    loss, grad = ours(loss_fn, logits, target, reduction)
    want_loss, want_grad = numpy_cross_entropy(logits, target, reduction)
    np.testing.assert_array_equal(grad, want_grad)
    assert not np.isnan(grad).any()
    np.testing.assert_array_equal(loss, want_loss)  # NaN for 'mean', as in PyTorch


@pytest.mark.parametrize("loss_fn", [F.cross_entropy, F.nll_loss])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_ignored_place_with_minus_inf_log_probability_counts_nothing(loss_fn, reduction):
    logits = np.array([[-np.inf, 0.0, 1.0], [1.0, 2.0, 0.5], [0.0, -1.0, 3.0]])
    target = np.array([IGNORE, 1, 2])  # the ignored row's stand-in class 0 has log p = −inf
    loss, grad = ours(loss_fn, logits, target, reduction)
    want_loss, want_grad = numpy_cross_entropy(logits, target, reduction)
    assert np.isfinite(loss).all() and np.isfinite(grad).all()
    np.testing.assert_allclose(loss, want_loss, rtol=1e-12)
    np.testing.assert_allclose(grad, want_grad, rtol=1e-12, atol=1e-15)


def test_all_ignored_batch_does_not_move_adam():
    """One all-padding batch used to turn every weight into NaN under Adam."""
    model = ts.nn.Linear(4, 3)
    before = [p.numpy().copy() for p in model.parameters()]
    optimizer = ts.optim.Adam(model.parameters(), lr=0.1)
    loss = F.cross_entropy(model(ts.randn(5, 4)), np.full(5, IGNORE), ignore_index=IGNORE)
    loss.backward()
    optimizer.step()
    assert np.isnan(loss.item())
    for old, p in zip(before, model.parameters(), strict=True):
        np.testing.assert_array_equal(p.numpy(), old)


@pytest.mark.parametrize("loss_fn", ["cross_entropy", "nll_loss"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize(
    "target", [[IGNORE, IGNORE, IGNORE], [IGNORE, 1, 2]], ids=["all-ignored", "some-ignored"]
)
def test_ignore_index_matches_torch(loss_fn, reduction, target):
    torch = pytest.importorskip("torch")
    logits = np.array([[-np.inf, 0.0, 1.0], [1.0, 2.0, 0.5], [0.0, -1.0, 3.0]])
    target = np.array(target)
    loss, grad = ours(getattr(F, loss_fn), logits, target, reduction)
    x = torch.tensor(logits, requires_grad=True)
    inputs = torch.log_softmax(x, dim=1) if loss_fn == "nll_loss" else x
    theirs = getattr(torch.nn.functional, loss_fn)(
        inputs, torch.tensor(target), reduction=reduction, ignore_index=IGNORE
    )
    theirs.sum().backward()
    np.testing.assert_allclose(loss, theirs.detach().numpy(), rtol=1e-12, equal_nan=True)
    np.testing.assert_allclose(grad, x.grad.numpy(), rtol=1e-12, atol=1e-15)
