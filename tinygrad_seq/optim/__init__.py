"""Optimizers and learning-rate schedulers with PyTorch's names, update rules and state dicts.

``SGD``, ``Adam`` (with ``amsgrad``), ``AdamW``, ``RMSprop`` and ``Adagrad`` update the
parameters they were given from their gradients; ``optim.lr_scheduler`` changes the learning
rate of an optimizer's parameter groups as training goes on. A training loop::

    opt = optim.AdamW(model.parameters(), lr=1e-3)
    sched = optim.lr_scheduler.CosineAnnealingLR(opt, T_max=100)
    for x, y in batches:
        opt.zero_grad()
        loss_fn(model(x), y).backward()
        opt.step()           # uses each group's current 'lr'
    sched.step()             # once per epoch, after the optimizer's steps

``state_dict()`` / ``load_state_dict()`` save and restore both (a PyTorch optimizer's
``state_dict()`` loads too). See docs/optim.md for every update rule.
"""

from . import lr_scheduler
from .adagrad import Adagrad
from .adam import Adam, AdamW
from .optimizer import Optimizer
from .rmsprop import RMSprop
from .sgd import SGD

__all__ = ["SGD", "Adagrad", "Adam", "AdamW", "Optimizer", "RMSprop", "lr_scheduler"]
