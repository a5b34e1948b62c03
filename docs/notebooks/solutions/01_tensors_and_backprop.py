"""Solutions to the exercises of 01_tensors_and_backprop.ipynb, one `# %%` section each."""

import numpy as np


# %% tanh_backward
def tanh_backward(y, g):
    return g * (1 - y**2)  # ∂L/∂x = ∂L/∂y · ∂y/∂x, and ∂y/∂x = 1 − tanh²(x) = 1 − y²


# %% grad_w_by_hand
def grad_w_by_hand(x, w):
    y = np.tanh(x @ w)  # forward: a = x·w, y = tanh(a), L = Σ y
    grad_a = 1 - y**2  # ∂L/∂a = ∂L/∂y · (1 − y²), with ∂L/∂y = 1
    return x.T @ grad_a  # ∂L/∂w = xᵀ · ∂L/∂a
