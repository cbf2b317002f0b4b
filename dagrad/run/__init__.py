"""One training run: the epoch loop (engine), what an epoch did (epochs), evaluation, numerics, the warm-up
before epoch 0, checkpoints and resuming, the run folder and its lock, progress lines, and the collectives
of a run on several processes (distributed)."""
