"""Machinery: a training run of demos/train_mnist.py.

settings.py    RunConfig (the command line's settings, each checked once), building model and optimizer
fit.py         fit(): train, checkpoint, evaluate, plot one run in --out; start_training and
               restore_training, a run's state new or resumed (reproductions/ start and resume with them)
rundir.py      the output directory: what a run may write, what it must not overwrite
checkpoint.py  checkpoint.npz: model, optimizer and random state, for a bit-identical resume
progress.py    the live progress line
report.py      the lines a run prints
plots.py       the pictures a run writes
"""
