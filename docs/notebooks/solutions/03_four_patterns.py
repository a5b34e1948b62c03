"""Solutions to the exercises of 03_four_patterns.ipynb, one `# %%` section each."""

import numpy as np

# %% patterns
answers = {
    "classify one point": "one-to-one",
    "image captioning": "one-to-many",
    "sentiment of a review": "many-to-one",
    "translation": "many-to-many",
    "tagging every word": "many-to-many",
}


# %% last_outputs
def last_outputs(outputs, lengths):
    # sequence b ends at step lengths[b] − 1; integer-array indexing keeps the gradient
    return outputs[lengths - 1, np.arange(len(lengths))]
