"""Reproduce Kingma & Welling (2014), Section 5: AEVB against wake-sleep (Figure 2),
learned 2-d manifolds (Figure 4) and samples (Figure 5), on MNIST and Frey Face.

    python reproductions/reproduce_kingma_welling.py --mnist-dir DIR --frey-dir DIR
    python reproductions/reproduce_kingma_welling.py --only frey --samples frey=1e6     # a subset, short
    python reproductions/reproduce_kingma_welling.py --samples mnist=1e8                # resume, go further
    python reproductions/reproduce_kingma_welling.py --figures-only                     # redraw from --out

Trains, one after the other, AEVB and wake-sleep for N_z in {3, 5, 10, 20, 200}
on MNIST and {2, 5, 10, 20} on Frey Face, and AEVB with N_z = 2 on MNIST
(Figures 4 and 5), with the paper's protocol (kingma_welling: one
tanh hidden layer of 500 / 200 units, parameters from N(0, 0.01), Adagrad
with the step size chosen from {0.01, 0.02, 0.1}, minibatches of 100, L = 1,
estimator B, the N(0, I) prior on the parameters).  Each run records the
lower bound per datapoint on the training and the test set at log-spaced
numbers of training samples.  Writes to --out:

    runs/<run>/checkpoint.npz, runs/<run>/record.json    each run, saved as it goes
    results.json                                         every run's record
    figure2_bounds.png, figure4_manifolds.png, figure5_samples.png

Run it again with the same --out and it resumes: finished runs are kept, an
interrupted run continues from its last save (bit for bit), a larger
--samples extends every run.  The paper's curves reach 10^8 samples; the
default budget stops far earlier (the README gives the wall times here).

Exit status: 0 done, 1 training diverged, 2 bad flags or no data, 130 Ctrl-C.
"""

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")  # read when numpy loads: docs/benchmarks.md

try:
    import numpyvae  # noqa: F401  (installed, or run from the source tree below)
except ImportError:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import kingma_welling as kw
from numpyvae.data.binarize import BINARIZE_MODES
from numpyvae.data.datasets import DataUnavailable, load_dataset_noting_warnings
from numpyvae.run.settings import RunError

DEFAULT_SAMPLES = {"mnist": 10 ** 6, "frey": 10 ** 6}
DEFAULTS = kw.Settings()


def samples_budget(text):
    """'1e7' (every data set) or 'mnist=1e7,frey=1e8' -> {dataset: int}; others keep the default."""
    budgets = dict(DEFAULT_SAMPLES)
    try:
        for part in text.split(","):
            name, _, value = part.rpartition("=")
            number = float(value)
            if not (number >= 1 and number == int(number)):
                raise ValueError
            for dataset in ([name] if name else budgets):
                if dataset not in budgets:
                    raise argparse.ArgumentTypeError(
                        f"unknown data set {dataset!r} in {text!r}; use {', '.join(budgets)}")
                budgets[dataset] = int(number)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a whole number of samples like 1e7, or mnist=1e7,frey=1e8; got {text!r}")
    return budgets


def step_sizes(text):
    try:
        return tuple(float(s) for s in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers like 0.01,0.02,0.1, got {text!r}")


def parser():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    what = p.add_argument_group("what to run")
    what.add_argument("--samples", type=samples_budget, default=DEFAULT_SAMPLES,
                      metavar="N | DATASET=N,...",
                      help="training samples per run: one number for every data set, or "
                           "per data set (default: " + ",".join(
                               f"{k}={v:.0e}" for k, v in DEFAULT_SAMPLES.items()) + ")")
    what.add_argument("--only", metavar="PATTERN,...", type=lambda t: t.split(","),
                      help="run only these: dataset[:method[:N_z]], '*' for any part, e.g. "
                           "frey or mnist:aevb:3,mnist:wake-sleep:3 (default: every run)")
    what.add_argument("--figures-only", action="store_true",
                      help="train nothing: rewrite results.json and the figures from --out "
                           "(its runs, or its results.json alone: then Figure 2 only)")
    data = p.add_argument_group("data")
    data.add_argument("--mnist-dir", metavar="DIR",
                      help="directory holding the four MNIST IDX files (default: the download "
                           "cache, see numpyvae.data.mnist)")
    data.add_argument("--frey-dir", metavar="DIR",
                      help="directory holding frey_rawface.mat (default: the download cache, "
                           "see numpyvae.data.frey)")
    data.add_argument("--mnist-binarize", choices=BINARIZE_MODES, default=DEFAULTS.mnist_binarize,
                      help="MNIST pixels as model input (the paper is silent): a fresh "
                           "Bernoulli(x/255) draw per minibatch, x/255 > 0.5, or grey levels x/255 "
                           "(default: %(default)s)")
    protocol = p.add_argument_group("protocol (kingma_welling)")
    protocol.add_argument("--init-std", type=float, default=DEFAULTS.init_std, metavar="S",
                          help="every parameter ~ N(0, S^2); the paper's N(0, 0.01) read as a "
                               "standard deviation; 0.1 reads it as a variance "
                               "(default: %(default)s)")
    protocol.add_argument("--step-sizes", type=step_sizes,
                          default=",".join(map(str, DEFAULTS.step_sizes)), metavar="LR,...",
                          help="Adagrad's candidate global step sizes (default: %(default)s)")
    protocol.add_argument("--select-samples", type=int, default=DEFAULTS.select_samples,
                          metavar="N", help="training samples per candidate step size; the "
                                            "best training bound wins (default: %(default)s)")
    protocol.add_argument("--no-weight-prior", dest="weight_prior", action="store_false",
                          help="drop the N(0, I) prior on the parameters (Adagrad's weight "
                               "decay 1/N_train)")
    protocol.add_argument("--hidden", type=int, metavar="H",
                          help="hidden units in encoder and decoder for every data set "
                               "(default: the paper's 500 for MNIST, 200 for Frey Face)")
    protocol.add_argument("--points-per-decade", type=int, default=DEFAULTS.points_per_decade,
                          metavar="P", help="evaluations per factor of 10 in training samples "
                                            "(default: %(default)s)")
    protocol.add_argument("--seed", type=int, default=DEFAULTS.seed,
                          help="seeds the initial parameters, the minibatch order and all "
                               "training noise (default: %(default)s)")
    run = p.add_argument_group("output")
    run.add_argument("--out", default="runs/kingma_welling", metavar="DIR",
                     help="directory for the runs, results.json and the figures "
                          "(default: %(default)s)")
    run.add_argument("--overwrite", action="store_true",
                     help="start the selected runs afresh instead of resuming them")
    return p


def main(argv=None):
    p = parser()
    args = p.parse_args(argv)
    try:
        if args.figures_only:
            paths = kw.draw_figures(args.out) if Path(args.out).is_dir() else []
            if not paths:
                raise kw.ProtocolError(f"{args.out} holds no runs to draw")
            if kw.collect_records(args.out):      # else the figure came from results.json
                kw.write_results(args.out)
            print(f"wrote {', '.join(str(path) for path in paths)}")
            return 0
        settings = kw.Settings(init_std=args.init_std, step_sizes=args.step_sizes,
                               select_samples=args.select_samples,
                               mnist_binarize=args.mnist_binarize,
                               weight_prior=args.weight_prior, hidden=args.hidden,
                               points_per_decade=args.points_per_decade, seed=args.seed)
        runs = kw.select_runs(args.only)
        data = {name: load_data(name, args.mnist_dir if name == "mnist" else args.frey_dir)
                for name in dict.fromkeys(r.dataset for r in runs)}
        _, paths = kw.reproduce(args.out, runs, data, settings, args.samples,
                                overwrite=args.overwrite)
    except (RunError, kw.RunDiverged) as e:   # RunError: kw.ProtocolError or the harness's
        print(f"error: {e}", file=sys.stderr)
        return 1 if isinstance(e, kw.RunDiverged) else 2
    except KeyboardInterrupt:
        print(f"\ninterrupted: the runs in {args.out} keep their last save; run the same "
              "command again to continue", file=sys.stderr)
        return 130
    print(f"wrote {Path(args.out) / kw.RESULTS} and {', '.join(str(path) for path in paths)}")
    return 0


def load_data(name, data_dir):
    """The data set, its warnings printed one line each, its absence a ProtocolError."""
    try:
        data, notes = load_dataset_noting_warnings(name, data_dir)
    except DataUnavailable as e:
        raise kw.ProtocolError(str(e)) from None
    for note in notes:
        print(f"warning: {note}", file=sys.stderr)
    return data


if __name__ == "__main__":
    sys.exit(main())
