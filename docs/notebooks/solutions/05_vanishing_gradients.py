"""Solutions to the exercises of 05_vanishing_gradients.ipynb, one `# %%` section each."""

import numpy as np

from tinygrad_seq.testing.exercises import gradient_reaching_first_step


# %% sigma_max
def set_sigma_max(W, target):
    return W * (target / np.linalg.norm(W, 2))  # np.linalg.norm(W, 2) is σ_max(W)


# %% failure_horizon
T_fail = next(T for T in range(2, 200) if gradient_reaching_first_step(T) < 1e-6)
