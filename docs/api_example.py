"""dagrad's Python API in one script: train, read back, resume, compare, plot.

The README's "Python API" section quotes this file; tests/api/test_api_example.py runs it as it is."""

import PIL.Image

import dagrad

# Train ERM on the embedded rotated digits (the shipped `demo` config, shortened here): once with every
# epoch trained, once with GradSamp drawing epoch 3 from the last two epochs' difference instead.
# Overrides are dotted keys written with `__`; a config may also be a path, a list of paths or a dict.
full = dagrad.train("demo", out="runs/api-example/full", epochs=6, steps_per_epoch=5, progress=False)
gradsamp = dagrad.train("demo", out="runs/api-example/gradsamp", epochs=6, steps_per_epoch=5,
                        gradsamp__sampler="tensor", progress=False)

# What `dagrad train` prints, and one row per epoch (kind, updates, accuracy per split, energy, FLOPs).
print(f"OOD accuracy {gradsamp.summary['ood_acc']:.3f} for {gradsamp.summary['train_J']:.1f} J of training "
      f"({', '.join(gradsamp.summary['train_sources'])}) against {full.summary['train_J']:.1f} J")
print(gradsamp.epochs[["epoch", "kind", "updates", "ood_acc", "val_acc", "train_J", "cum_J"]])
gradsamp.plot().savefig("runs/api-example/gradsamp.png")

# A run folder reads back the same, finished or still running; an interrupted run continues from its
# folder alone (its config is in its records): dagrad.train(out="runs/api-example/gradsamp", resume=True).
assert dagrad.load_run("runs/api-example/gradsamp").epochs.equals(gradsamp.epochs)

# Compare: the tables of `dagrad report` as DataFrames, its plots as matplotlib Figures.
report = dagrad.report("runs/api-example", selection="last")
print(report.tables["rotated_digits"][["algorithm", "setting", "Avg", "updates (saved)"]])  # cells as printed
print(report.summary[["setting", "acc:Avg", "train_J", "saving_train_pct"]])  # the numbers behind them
report.figures["rotated_digits-pareto"].savefig("runs/api-example/pareto.png")

# The models a run kept (last, the epoch its training-domain validation picks, SWAD's average): rebuilt from
# the records header, in eval mode, with the transform that turns an image into the input they expect.
model, transform = dagrad.load_model("runs/api-example/full", "best")  # also full.model("best")
print(model(transform(PIL.Image.new("RGB", (28, 28)))[None]).softmax(1))

# Bad input raises the CLI's one-line message as an exception (a DagradError), never SystemExit.
try:
    dagrad.train("demo", data__fo=1)
except dagrad.ConfigError as error:
    print(f"ConfigError: {error}")
