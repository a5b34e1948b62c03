"""The experiments of the course and what only they draw.

- :mod:`tinygrad_seq.lab.study` — the vanishing-gradient study (``python -m tinygrad_seq
  vanishing``): any recurrent cells on the adding problem, their gradient flow over training;
- :mod:`tinygrad_seq.lab.sweep` — the horizon sweep (``python -m tinygrad_seq sweep``): for
  which sequence lengths T each cell solves the adding problem, over seeds;
- :mod:`tinygrad_seq.lab.plots` and :mod:`tinygrad_seq.lab.report` — their matplotlib figures
  and self-contained HTML reports.

The generic drawing tools live in :mod:`tinygrad_seq.viz`, which never imports this package.
"""
