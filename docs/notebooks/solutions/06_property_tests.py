"""Solutions to the exercises of 06_property_tests.ipynb, one `# %%` section each."""

import numpy as np

import tinygrad_seq as ts
from tinygrad_seq import nn


# %% softsign
class Softsign(ts.Function):
    """y = x / (1 + |x|);  ∂L/∂x = ∂L/∂y / (1 + |x|)²."""

    name = "softsign"

    def forward(self, x):
        return x / (1 + np.abs(x))

    def backward(self, g, x):
        return (g / (1 + np.abs(x)) ** 2,)


def softsign(x):
    return Softsign.apply(x)


# %% leaky_cell
class LeakyRNNCell(nn.Cell):
    """s_t = (1 − α)·s_{t−1} + α·tanh(U·x_t + W·s_{t−1} + β)."""

    def __init__(self, input_size, hidden_size, alpha=0.3):
        super().__init__(input_size, hidden_size)
        bound = 1 / np.sqrt(hidden_size)
        self.weight_ih = nn.Parameter(ts.rand(hidden_size, input_size) * 2 * bound - bound)  # U
        self.weight_hh = nn.Parameter(ts.rand(hidden_size, hidden_size) * 2 * bound - bound)  # W
        self.bias = nn.Parameter(ts.zeros(hidden_size))  # β
        self.alpha = alpha

    def forward(self, x, s_prev=None):
        s_prev = self.check_state(x, s_prev)  # None → zeros (B, H)
        candidate = (x @ self.weight_ih.T + s_prev @ self.weight_hh.T + self.bias).tanh()
        return (1 - self.alpha) * s_prev + self.alpha * candidate
