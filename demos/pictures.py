"""Pictures that teach what a trained VAE has learned, and what beta does.

    python demos/pictures.py --data-dir ../shared/data/mnist                # 29 epochs of training
    python demos/pictures.py --data-dir DIR --run runs/mnist                # a run of train_mnist.py
    python demos/pictures.py --data-dir DIR --limit 5000 --betas 0.5,1,4    # quicker

Writes to --out (default runs/pictures):

    traversals.png         E[x|z] for z = mu(x) of a few test images, one latent dimension at
                           a time swept across the prior's quantiles (the beta-VAE picture)
    interpolation.png      E[x|z] along the line from mu(x_a) to mu(x_b)
    kl_per_dimension.png   the test set's mean KL(q(z_l|x) || N(0, 1)) per dimension l,
                           beside Var_x(mu_l(x)) and the active-unit count
    rate_distortion.png    one short training per beta (--betas): test rate (KL) against
                           distortion (-log p(x|z)); each run is kept in --out/beta_<b>/
                           and can be pictured with --run

The first three picture the model of --run (its checkpoint.npz), or, without
--run, a default VAE trained --epochs epochs here (kept in --out/model/).
Every training is numpyvae.run.fit.fit, as in demos/train_mnist.py.

Exit status: 0 done, 1 a training diverged, 2 bad flags, no data, or files in the way.
"""

import argparse
import io
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

from numpyvae.collapse import kl_per_dimension
from numpyvae.run.checkpoint import load_checkpoint
from numpyvae.evaluate import active_units
from numpyvae.run.fit import eval_inputs, fit
from numpyvae.run.rundir import CHECKPOINT
from numpyvae.run.settings import RunConfig, RunError
from numpyvae.trainer import TrainingDiverged
from collapse import load_run  # noqa: E402  (demos/collapse.py)
from train_mnist import load_data  # noqa: E402  (demos/train_mnist.py)

PICTURES = ("traversals.png", "interpolation.png", "kl_per_dimension.png", "rate_distortion.png")


def one_per_digit(labels, digits):
    """Index of the first test image of each digit in ``digits`` (present ones only)."""
    return [int(np.flatnonzero(labels == d)[0]) for d in digits if np.any(labels == d)]


def model_pictures(out, model, x_test, y_test, image_shape, n_images=3, n_dims=8):
    """traversals.png, interpolation.png and kl_per_dimension.png of ``model``."""
    from numpyvae.run.plots import plot_interpolation, plot_kl_per_dimension, plot_latent_traversals
    kl = kl_per_dimension(model, x_test)
    count, variances = active_units(model, x_test)
    dims = [int(d) for d in np.argsort(-kl)[:min(n_dims, model.latent_dim)]]
    shown = one_per_digit(y_test, range(10))[:n_images] or list(range(min(n_images, len(x_test))))
    codes = model.encode(x_test[shown])[0]
    paths = [plot_latent_traversals(out / PICTURES[0], model.decode, codes, x_test[shown], dims,
                                    image_shape, dim_labels=[f"z{d + 1}, KL {kl[d]:.2f}"
                                                             for d in dims], dtype=model.dtype)]
    pairs = [(a, b) for a, b in ((1, 7), (3, 8), (4, 9), (0, 6), (2, 5))
             if np.any(y_test == a) and np.any(y_test == b)] or [(y_test[0], y_test[-1])]
    ia, ib = one_per_digit(y_test, [a for a, _ in pairs]), one_per_digit(y_test, [b for _, b in pairs])
    paths.append(plot_interpolation(out / PICTURES[1], model.decode, model.encode(x_test[ia])[0],
                                    model.encode(x_test[ib])[0], x_test[ia], x_test[ib],
                                    image_shape, dtype=model.dtype))
    paths.append(plot_kl_per_dimension(out / PICTURES[2], kl, variances))
    print(f"KL per dimension (nats): {' '.join(f'{v:.2f}' for v in kl)}; "
          f"{count} of {model.latent_dim} units active")
    return paths


def beta_sweep(out, data, betas, epochs, limit, overwrite):
    """Train one default VAE per beta (numpyvae.run.fit.fit, runs kept in out/beta_<b>);
    returns the test (rate, distortion) of each: (B,) KL and (B,) -log p(x|z), nats."""
    rates, distortions = [], []
    for beta in betas:
        config = RunConfig(beta=beta, epochs=epochs, limit=limit, eval_k=0,
                           out=str(out / f"beta_{beta:g}"))
        metrics = fit(config, data, overwrite=overwrite, plots=False, stream=io.StringIO())
        final = metrics["final"]
        rates.append(final["test_kl"])
        distortions.append(final["test_recon"])
        print(f"beta {beta:<5g} rate (KL) {final['test_kl']:7.2f}  distortion (-log p(x|z)) "
              f"{final['test_recon']:7.2f}  -ELBO {final['test_loss']:7.2f}  "
              f"active units {final['active_units']}/{final['latent_dim']}", flush=True)
    return np.array(rates), np.array(distortions)


def betas_list(text):
    """'0.5,1,4' -> (0.5, 1.0, 4.0); '' -> () (no sweep)."""
    try:
        values = tuple(float(s) for s in text.split(",") if s.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers like 0.5,1,4, got {text!r}")
    if any(not b > 0 for b in values):
        raise argparse.ArgumentTypeError(f"every beta must be positive, got {text!r}")
    return values


def parser():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-dir", default=None, metavar="DIR",
                   help="directory holding the four MNIST IDX files (default: the download cache)")
    p.add_argument("--run", default=None, metavar="DIR",
                   help="a run directory of demos/train_mnist.py to picture (default: train one)")
    p.add_argument("--epochs", type=int, default=5,
                   help="epochs of the model trained when no --run is given (default: %(default)s)")
    p.add_argument("--betas", type=betas_list, default="0.25,0.5,1,2,4,8",
                   help="the beta sweep; '' skips it (default: %(default)s)")
    p.add_argument("--sweep-epochs", type=int, default=4,
                   help="epochs of each beta's training (default: %(default)s)")
    p.add_argument("--limit", type=int, default=None, metavar="N",
                   help="train on the first N training images only (default: all)")
    p.add_argument("--out", default="runs/pictures", metavar="DIR",
                   help="directory for the pictures and runs (default: %(default)s)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace pictures and runs already in --out")
    return p


def main(argv=None):
    args = parser().parse_args(argv)
    for name in ("epochs", "sweep_epochs", "limit"):
        value = getattr(args, name)
        if value is not None and value < 1:
            print(f"error: --{name.replace('_', '-')} must be positive, got {value}",
                  file=sys.stderr)
            return 2
    out = Path(args.out)
    wanted = PICTURES if args.betas else PICTURES[:3]
    in_the_way = [name for name in wanted if (out / name).exists()]
    if in_the_way and not args.overwrite:
        print(f"error: {out} already holds {', '.join(in_the_way)}; pass --overwrite to replace "
              "them, or choose another --out", file=sys.stderr)
        return 2
    try:
        if args.run:
            model, saved_metrics, saved_epoch = load_run(args.run)
        data = load_data("mnist", args.data_dir)
        out.mkdir(parents=True, exist_ok=True)
        if args.run:
            binarize = saved_metrics["config"]["binarize"]
            print(f"model: {Path(args.run) / CHECKPOINT} ({saved_epoch} epochs)")
        else:
            config = RunConfig(epochs=args.epochs, limit=args.limit, eval_k=0,
                               out=str(out / "model"))
            print(f"training the default VAE for {args.epochs} epochs in {config.out}", flush=True)
            fit(config, data, overwrite=args.overwrite, plots=False, stream=io.StringIO())
            model, binarize = load_checkpoint(out / "model" / CHECKPOINT).model, config.binarize
        if model.kind != "vae" or model.input_dim != data.x_test.shape[1]:
            raise RunError(f"--run {args.run}: not a VAE for {data.x_test.shape[1]}-pixel images")
        x_test = eval_inputs(data.x_test, binarize, model.dtype)
        paths = model_pictures(out, model, x_test, data.y_test, data.image_shape)
        if args.betas:
            from numpyvae.run.plots import plot_rate_distortion
            rates, distortions = beta_sweep(out, data, args.betas, args.sweep_epochs, args.limit,
                                            args.overwrite)
            paths.append(plot_rate_distortion(out / PICTURES[3], args.betas, rates, distortions))
    except RunError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except TrainingDiverged as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"wrote {', '.join(str(p) for p in paths)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
