"""The true posterior p(z|x) of a 2-d latent VAE, on a grid, against its q(z|x).

    python demos/train_mnist.py --data-dir ../shared/data/mnist --latent-dim 2 --epochs 3 --out runs/z2
    python demos/true_posterior.py --data-dir ../shared/data/mnist --run runs/z2

For a few test images (the first of each digit in --digits) it computes, with
numpyvae.posterior_grid, log p(x, z) = log p(x|z) + log p(z) on a --points
x --points grid placed where the posterior is, and prints per image

    log p(x) by quadrature (the midpoint rule on the grid; its error estimate),
    log p(x) by importance sampling (evaluate.importance_weighted_log_likelihood, --eval-k),
    the ELBO (--samples draws from q, the KL in closed form; its standard error),
    the gap log p(x) - ELBO = KL(q(z|x) || p(z|x)).

It draws p(z|x) beside the contours of q(z|x), with these numbers in the
titles, into --out (default: <run>/true_posterior.png).  The math:
docs/collapse.md sections 6-7.

Exit status: 0 done, 2 bad flags, a run that is not a 2-d VAE, no data, or a file in the way.
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

from collapse import load_run  # noqa: E402  (demos/collapse.py)
from numpyvae.evaluate import importance_weighted_log_likelihood
from numpyvae.posterior_grid import elbo_by_sampling, posterior_grid
from numpyvae.run.fit import eval_inputs
from numpyvae.run.settings import RunError
from train_mnist import load_data  # noqa: E402  (demos/train_mnist.py)


def digits_list(text):
    """'0,1,7' -> (0, 1, 7)."""
    try:
        return tuple(int(s) for s in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected digits like 0,1,7, got {text!r}")


def parser():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--run", required=True, metavar="DIR",
                   help="a run directory of demos/train_mnist.py with --latent-dim 2")
    p.add_argument("--data-dir", default=None, metavar="DIR",
                   help="directory holding the four MNIST IDX files (default: the download cache)")
    p.add_argument("--digits", type=digits_list, default=(0, 1, 4, 7),
                   help="draw the first test image of each of these digits (default: 0,1,4,7)")
    p.add_argument("--points", type=int, default=201,
                   help="grid points per axis (default: %(default)s)")
    p.add_argument("--eval-k", type=int, default=5000, metavar="K",
                   help="importance samples per image (default: %(default)s)")
    p.add_argument("--samples", type=int, default=10000,
                   help="samples of q for each image's ELBO (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="seeds the samples (default: %(default)s)")
    p.add_argument("--out", default=None, metavar="PNG",
                   help="the picture (default: <run>/true_posterior.png)")
    p.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    return p


def main(argv=None):
    args = parser().parse_args(argv)
    for name in ("points", "eval_k", "samples"):
        if getattr(args, name) < 5:
            print(f"error: --{name.replace('_', '-')} must be at least 5, got "
                  f"{getattr(args, name)}", file=sys.stderr)
            return 2
    out = Path(args.out) if args.out else Path(args.run) / "true_posterior.png"
    try:
        if out.exists() and not args.overwrite:
            raise RunError(f"{out} exists; pass --overwrite to replace it, or choose another --out")
        model, metrics, epochs = load_run(args.run)
        if model.latent_dim != 2:
            raise RunError(f"--run {args.run}: its latent is {model.latent_dim}-d; the grid needs "
                           "a model trained with --latent-dim 2")
        data = load_data("mnist", args.data_dir)
    except RunError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    x_test = eval_inputs(data.x_test, metrics["config"]["binarize"], model.dtype)
    chosen = [int(np.flatnonzero(data.y_test == d)[0]) for d in args.digits
              if np.any(data.y_test == d)]
    rng = np.random.default_rng(args.seed)
    print(f"model: {args.run} ({epochs} epochs); {args.points} x {args.points} grid, "
          f"k = {args.eval_k}, {args.samples} samples for the ELBO; nats\n")
    print("| test image | digit | log p(x), quadrature | log p(x), importance-weighted | "
          "ELBO | gap log p(x) − ELBO = KL(q ‖ p(z\\|x)) |\n|---|---|---|---|---|---|")
    grids, titles = [], []
    for i in chosen:
        grid = posterior_grid(model, x_test[i], args.points)
        iw = float(importance_weighted_log_likelihood(model, x_test[i:i + 1], args.eval_k, rng)[0])
        elbo, se = elbo_by_sampling(model, x_test[i], rng, args.samples)
        gap = grid.log_px - elbo
        print(f"| {i} | {data.y_test[i]} | {grid.log_px:.3f} (± {grid.quadrature_error:.0e}) "
              f"| {iw:.3f} | {elbo:.3f} ± {se:.3f} | {gap:.3f} |", flush=True)
        grids.append(grid)
        titles.append(f"log p(x): grid {grid.log_px:.2f}, IW {iw:.2f}\n"
                      f"ELBO {elbo:.2f}; gap = KL(q || p(z|x)) {gap:.2f}")
    from numpyvae.run.plots import plot_true_posterior
    out.parent.mkdir(parents=True, exist_ok=True)
    path = plot_true_posterior(out, data.x_test[chosen] / 255.0, grids, titles, data.image_shape)
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
