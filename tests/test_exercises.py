"""The course's graders (tinygrad_seq.testing.exercises) name the mistake, in one line.

The notebook tests prove every grader on the blank exercise and on the solution; these prove
the hints for the common wrong answers, and that a grader never raises.
"""

from __future__ import annotations

import numpy as np
import pytest

import tinygrad_seq as ts
from tinygrad_seq import nn
from tinygrad_seq.testing import exercises as ex


class NoGradientSoftsign(ts.Function):
    def forward(self, x):
        return x / (1 + np.abs(x))

    def backward(self, g, x):
        return (g / (1 + np.abs(x)),)  # the square forgotten


class InPlaceSoftsign(NoGradientSoftsign):
    def backward(self, g, x):
        g /= (1 + np.abs(x)) ** 2  # a numpy habit: g belongs to the engine
        return (g,)


def open_input_gate(cell, bias):
    cell.bias_ih.data[: cell.hidden_size] = bias  # rows 0…H: the input gate, not f_t


WRONG_ANSWERS = [
    (ex.check_tanh_backward, lambda y, g: 1 - y**2, "multiply by the upstream gradient g"),
    (ex.check_tanh_backward, lambda y, g: g * (1 - np.tanh(y) ** 2), "not 1 − tanh(y)²"),
    (ex.check_tanh_backward, lambda y, g: (g * (1 - y**2)).T, "has shape (4, 3), expected (3, 4)"),
    (ex.check_grad_w_by_hand, lambda x, w: x.T @ np.ones((2, 4)), "tanh's derivative is missing"),
    (
        ex.check_rnn_step,
        lambda x, s, U, W, b: (x @ U.T + s @ W + b).tanh(),
        "W is applied transposed",
    ),
    (ex.check_rnn_step, lambda x, s, U, W, b: x @ U.T + s @ W.T + b, "tanh is missing"),
    (
        ex.check_bptt_grad_W,
        lambda s, W, d: np.outer(d * (1 - s[-1] ** 2), s[-2]),
        "only the term of the last step",
    ),
    (ex.check_patterns, {**ex.PATTERN_TASKS, "translation": "many-to-one"}, "'translation' is"),
    (ex.check_patterns, {**ex.PATTERN_TASKS, "translation": "seq2seq"}, "is not one of"),
    (ex.check_last_outputs, lambda o, lengths: o[-1], "sequence b ends at lengths[b] − 1"),
    (ex.check_last_outputs, lambda o, lengths: ts.tensor(o.numpy()[-1]), "step T of the padded"),
    (ex.check_lstm_step, lambda x, h, c, cell: (h, c), "C_t = f_t ⊙ C_{t−1} + i_t ⊙ C̃_t"),
    (ex.check_lstm_step, lambda x, h, c, cell: h, "must return the pair (h_t, c_t)"),
    (ex.check_forget_bias, open_input_gate, "you changed rows 0:5, the input gate i_t"),
    (
        ex.check_sigma_max,
        lambda W, t: W * t / np.max(np.abs(np.linalg.eigvals(W))),
        "that sets the spectral radius",
    ),
    (ex.check_failure_horizon, 5, "at T = 5 still"),
    (ex.check_failure_horizon, 60, "look for the smallest T"),
    (ex.check_failure_horizon, 2.5, "T_fail must be a whole number"),
    (ex.check_softsign, NoGradientSoftsign.apply, "'numerical' check"),
    (ex.check_softsign, InPlaceSoftsign.apply, "instead of changing one in place, g *= …"),
    (ex.check_leaky_cell, nn.RNNCell, "the cell has no parameter 'bias'"),
    (ex.check_rnn_step, lambda *args: 1 / 0, "your code raised ZeroDivisionError"),
]


@pytest.mark.parametrize(("check", "answer", "hint"), WRONG_ANSWERS)
def test_a_wrong_answer_gets_one_line_naming_the_mistake(check, answer, hint, capsys):
    assert check(answer) is False
    line = capsys.readouterr().out
    assert line.startswith("✗ ") and line.count("\n") == 1, line
    assert hint in line


def test_a_right_answer_gets_one_line_and_true(capsys):
    assert ex.check_tanh_backward(lambda y, g: g * (1 - y**2)) is True
    assert capsys.readouterr().out == "✓ tanh_backward: ∂L/∂x = g·(1 − y²) on a (3, 4) batch\n"


def test_the_failure_horizon_is_where_the_ratio_crosses_the_threshold():
    ratios = [ex.gradient_reaching_first_step(T) for T in (5, 20, 60)]
    assert ratios[0] > ratios[1] > ratios[2] > 0
    assert ratios[0] > 1e-6 > ratios[2]
