"""Solutions to the exercises of 02_elman_rnn.ipynb, one `# %%` section each."""

import numpy as np


# %% rnn_step
def rnn_step(x_t, s_prev, U, W, beta_s):
    # s_t = tanh(U·x_t + W·s_{t−1} + β_s); rows are examples, so U·x_t is x_t @ U.T
    return (x_t @ U.T + s_prev @ W.T + beta_s).tanh()


# %% bptt_grad_W
def bptt_grad_W(s, W, delta_T):
    T = len(s) - 1
    grad_W = np.zeros_like(W)
    delta = delta_T  # δ_T = ∂L/∂s_T
    for t in range(T, 0, -1):
        grad_a = delta * (1 - s[t] ** 2)  # through tanh: diag(1 − s_t²)·δ_t
        grad_W += np.outer(grad_a, s[t - 1])  # this step's term: (δ_t ⊙ (1 − s_t²))·s_{t−1}ᵀ
        delta = W.T @ grad_a  # δ_{t−1} = Wᵀ·diag(1 − s_t²)·δ_t
    return grad_W
