"""Posterior collapse, measured: KL per dimension, active units and I(x; z) of trained runs.

    python demos/collapse.py --data-dir ../shared/data/mnist runs/mnist runs/z2 ...
    python demos/collapse.py --data-dir DIR --samples 5000 --out runs/collapse RUN [RUN ...]

For each run directory of demos/train_mnist.py (its checkpoint.npz) it encodes
the test set once and prints one row: beta and free bits (the run's settings),
the test -ELBO, the KL term, the active units, the two parts of the KL term,

    (1/N) sum_n KL(q(z|x_n) || p(z)) = I_q(x; z) + KL(q(z) || p(z))

estimated by numpyvae.collapse.kl_decomposition with their standard errors
(--samples draws z ~ q(z|x_m), the aggregate posterior over all N = 10,000
test images), the leave-one-out estimate of I beside it, and the KL of each
latent dimension, largest first.  For a run with a 2-d latent it also draws
the aggregate posterior against the prior (plots.plot_aggregate_posterior)
into --out/<run>_aggregate_posterior.png.  The math: docs/collapse.md.

Exit status: 0 done, 2 a run or the data cannot be read, or files in the way.
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
sys.path.insert(0, str(Path(__file__).resolve().parent))  # the other demos

import numpy as np

from numpyvae.collapse import measure_collapse
from numpyvae.run.checkpoint import load_checkpoint
from numpyvae.run.fit import eval_inputs
from numpyvae.run.rundir import CHECKPOINT
from numpyvae.run.settings import RunError
from train_mnist import load_data  # noqa: E402  (demos/train_mnist.py)

HEADER = ("| run | β | free bits | test −ELBO | KL | active units | I(x; z) | KL(q(z) ‖ p(z)) "
          "| I, leave-one-out | KL per dimension, largest first |\n|" + "---|" * 10)


def load_run(run):
    """(model, metrics, epochs) of the run directory ``run`` (its checkpoint.npz);
    RunError if it holds none, or not a VAE's."""
    checkpoint = Path(run) / CHECKPOINT
    if not checkpoint.exists():
        raise RunError(f"{run}: no {CHECKPOINT} in it (a run directory of demos/train_mnist.py "
                       "holds one)")
    try:
        saved = load_checkpoint(checkpoint)
    except (OSError, ValueError) as e:
        raise RunError(f"{run}: {e}") from None
    if saved.model.kind != "vae":
        raise RunError(f"{run}: not a VAE")
    return saved.model, saved.metrics, saved.epoch


def table_row(name, config, test_loss, measures):
    """One Markdown row of HEADER, nats per test example."""
    d = measures.decomposition
    per_dim = " ".join(f"{v:.2f}" for v in np.sort(measures.kl_per_dimension)[::-1])
    return (f"| {name} | {config['beta']:g} | {config.get('free_bits', 0.0):g} | {test_loss:.2f} "
            f"| {d.average_kl:.2f} | {measures.active_units}/{len(measures.kl_per_dimension)} "
            f"| {d.mutual_information:.3f} ± {d.mi_se:.3f} "
            f"| {d.aggregate_kl:.2f} ± {d.aggregate_kl_se:.2f} "
            f"| {d.leave_one_out_information:.2f} | {per_dim} |")


def parser():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("runs", nargs="+", metavar="RUN", help="run directories of demos/train_mnist.py")
    p.add_argument("--data-dir", default=None, metavar="DIR",
                   help="directory holding the four MNIST IDX files (default: the download cache)")
    p.add_argument("--samples", type=int, default=2000, metavar="M",
                   help="samples z ~ q(z|x_m), one for each of M test images, in the estimate "
                        "of I(x; z) (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="seeds the samples (default: %(default)s)")
    p.add_argument("--out", default="runs/collapse", metavar="DIR",
                   help="directory for the pictures of 2-d runs (default: %(default)s)")
    p.add_argument("--overwrite", action="store_true", help="replace pictures already in --out")
    return p


def main(argv=None):
    args = parser().parse_args(argv)
    if args.samples < 2:
        print(f"error: --samples must be at least 2, got {args.samples}", file=sys.stderr)
        return 2
    out = Path(args.out)
    try:
        runs = [(Path(run), *load_run(run)) for run in args.runs]
        pictures = [out / f"{run.name}_aggregate_posterior.png" for run, model, _, _ in runs
                    if model.latent_dim == 2]
        in_the_way = [p for p in pictures if p.exists()]
        if in_the_way and not args.overwrite:
            raise RunError(f"{out} already holds {', '.join(p.name for p in in_the_way)}; pass "
                           "--overwrite to replace them, or choose another --out")
        data = load_data("mnist", args.data_dir)
    except RunError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"test set: N = {data.x_test.shape[0]:,} images, the largest I(x; z) is log N = "
          f"{np.log(data.x_test.shape[0]):.2f} nats; {args.samples:,} samples per estimate\n")
    print(HEADER)
    rng = np.random.default_rng(args.seed)
    for run, model, metrics, epochs in runs:
        config = metrics["config"]
        x_test = eval_inputs(data.x_test, config["binarize"], model.dtype)
        measures = measure_collapse(model, x_test, rng, args.samples)
        test_loss = metrics["epochs"][-1]["test_loss"]
        print(table_row(f"{run.name} ({epochs} epochs)", config, test_loss, measures), flush=True)
        if model.latent_dim == 2:
            from numpyvae.run.plots import plot_aggregate_posterior
            out.mkdir(parents=True, exist_ok=True)
            path = plot_aggregate_posterior(out / f"{run.name}_aggregate_posterior.png",
                                            measures.mu, measures.logvar, measures.decomposition)
            print(f"wrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
