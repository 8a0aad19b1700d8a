"""Train a VAE on MNIST (or Frey Face) on the CPU, then evaluate and plot it.

    python demos/train_mnist.py --data-dir DIR               # the PyTorch VAE example's setup
    python demos/train_mnist.py --latent-dim 2 --out runs/z2 # + manifold.png (K&W Figure 4)
    python demos/train_mnist.py --binarize dynamic --optimizer adagrad --lr 0.01 --hidden 500
    python demos/train_mnist.py --resume --epochs 20         # continue runs/mnist to 20 epochs
    python demos/train_mnist.py --objective iwae --k 5       # the IWAE bound (Burda et al. 2016)
    python demos/train_mnist.py --objective iwae --k 5 --stochastic-layers 2 --latent-dim 100
    python demos/train_mnist.py --posterior full --out runs/full   # q(z|x) = N(mu, L L^T)
    python demos/train_mnist.py --dataset frey --likelihood gaussian-sigmoid --out runs/frey

Defaults reproduce the PyTorch VAE example: 784-400-20 ReLU, Bernoulli
decoder on grey levels, Adam lr 1e-3, batch 128, 10 epochs, float32, seed 0.
Writes to --out: metrics.json, checkpoint.npz (every epoch), and
reconstructions.png, samples.png, loss_curves.png, latent_scatter.png
(+ manifold.png when --latent-dim 2).  It never replaces those files of an
earlier run unless --overwrite says so, and --overwrite removes exactly them.
Everything happens in numpyvae.run.fit.fit; this script only turns flags into a
RunConfig (numpyvae.run.settings, which checks them) and errors into messages,
and sets OPENBLAS_THREAD_TIMEOUT=4 (unless the environment sets it) before
numpy loads OpenBLAS: its worker threads then sleep right after each matrix
product instead of spinning on the second core (docs/benchmarks.md).

Exit status: 0 done; 1 training diverged; 2 something to fix (a flag, the
data, --out, a checkpoint that cannot be resumed), with one "error:" line;
130 Ctrl-C.
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

from numpyvae.data.binarize import BINARIZE_MODES
from numpyvae.ops.layers import ACTIVATIONS
from numpyvae.ops.likelihoods import LIKELIHOODS
from numpyvae.data.datasets import DATASETS, DataUnavailable, load_dataset_noting_warnings
from numpyvae.objectives import OBJECTIVES
from numpyvae.run.fit import Interrupted, fit
from numpyvae.run.settings import (DTYPES, LR_SCHEDULES, OPTIMIZERS, OUTPUT_BIASES, POSTERIORS,
                                   RunConfig, RunError)
from numpyvae.trainer import TrainingDiverged

DEFAULTS = RunConfig()


def hidden_sizes(text):
    """'400' -> (400,); '200,200' -> (200, 200).  (RunConfig checks the values.)"""
    try:
        return tuple(int(s) for s in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected sizes like 400 or 200,200, got {text!r}")


def obs_var(text):
    """A number, or 'learned'.  (RunConfig checks that a number is positive.)"""
    if text == "learned":
        return text
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or 'learned', got {text!r}")


def parser():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    model = p.add_argument_group("model")
    model.add_argument("--hidden", type=hidden_sizes, default=",".join(map(str, DEFAULTS.hidden)),
                       help="hidden layer sizes of the encoder, e.g. 400 or 200,200; the "
                            "decoder mirrors them (default: %(default)s)")
    model.add_argument("--latent-dim", type=int, default=DEFAULTS.latent_dim, metavar="L",
                       help="dimension of z (default: %(default)s)")
    model.add_argument("--activation", choices=sorted(ACTIVATIONS), default=DEFAULTS.activation,
                       help="hidden-layer activation (default: %(default)s)")
    model.add_argument("--stochastic-layers", type=int, choices=(1, 2),
                       default=DEFAULTS.stochastic_layers,
                       help="1: the VAE; 2: two stochastic layers (Burda et al. 2016), "
                            "x -> --hidden -> z1 (--latent-dim) -> --top-hidden -> z2 "
                            "(--top-latent-dim) (default: %(default)s)")
    model.add_argument("--top-hidden", type=hidden_sizes, default=None,
                       help="with --stochastic-layers 2: hidden sizes between z1 and z2 "
                            "(default: 100,100)")
    model.add_argument("--top-latent-dim", type=int, default=None, metavar="L2",
                       help="with --stochastic-layers 2: dimension of z2 (default: 50)")
    model.add_argument("--likelihood", choices=LIKELIHOODS, default=DEFAULTS.likelihood,
                       help="the decoder p(x|z) (default: %(default)s)")
    model.add_argument("--obs-var", type=obs_var, default=None, metavar="VAR",
                       help="variance of the gaussian decoder: a number or 'learned' "
                            "(default: 1.0)")
    model.add_argument("--posterior", choices=tuple(POSTERIORS), default=DEFAULTS.posterior,
                       help="q(z|x): diagonal, N(mu, diag(exp(logvar))), or full, N(mu, L L^T) "
                            "with L lower-triangular (docs/full_covariance.md; trains with "
                            "elbo, elbo-mc, iwae) (default: %(default)s)")
    model.add_argument("--dtype", choices=DTYPES, default=DEFAULTS.dtype,
                       help="(default: %(default)s)")
    model.add_argument("--textbook", action="store_true",
                       help="train with the textbook forms throughout (layers, likelihood, "
                            "optimizer) instead of the fast ones: the same numbers to rounding, "
                            "slower; an edit of a textbook function then changes the training")
    model.add_argument("--init-std", type=float, default=DEFAULTS.init_std, metavar="S",
                       help="draw every parameter, biases included, from N(0, S^2), as "
                            "Kingma & Welling (2014) do with S = 0.01 (default: each layer's "
                            "own initialisation)")
    model.add_argument("--output-bias", choices=OUTPUT_BIASES, default=DEFAULTS.output_bias,
                       help="the decoder's output biases at the start: zero, or data, the "
                            "logit of each pixel's mean over the training set (clipped to "
                            "[0.001, 0.999]), as the IWAE authors' code starts them; "
                            "--likelihood bernoulli only (default: %(default)s)")
    train = p.add_argument_group("training")
    train.add_argument("--epochs", type=int, default=DEFAULTS.epochs,
                       help="(default: %(default)s)")
    train.add_argument("--batch-size", type=int, default=DEFAULTS.batch_size,
                       help="(default: %(default)s)")
    train.add_argument("--optimizer", choices=tuple(OPTIMIZERS), default=DEFAULTS.optimizer,
                       help="(default: %(default)s)")
    train.add_argument("--lr", type=float, default=DEFAULTS.lr,
                       help="learning rate (default: %(default)s)")
    train.add_argument("--lr-schedule", choices=LR_SCHEDULES, default=DEFAULTS.lr_schedule,
                       help="constant, or iwae: 3^i epochs at lr * 10^(-i/7), i = 0..7, the "
                            "IWAE paper's 3280 epochs (default: %(default)s)")
    train.add_argument("--adam-eps", type=float, default=None, metavar="EPS",
                       help="Adam's epsilon; the IWAE paper uses 1e-4 (default: 1e-08)")
    train.add_argument("--weight-decay", type=float, default=DEFAULTS.weight_decay, metavar="L",
                       help="step on g + L * theta; L = 1/N_train is Kingma & Welling's N(0, I) "
                            "prior on the parameters (default: %(default)s)")
    train.add_argument("--objective", choices=OBJECTIVES, default=DEFAULTS.objective,
                       help="elbo: the ELBO with the KL in closed form (estimator B); elbo-mc: "
                            "the KL sampled (estimator A); iwae: the importance-weighted bound; "
                            "wake-sleep: the paper's baseline (default: %(default)s)")
    train.add_argument("--k", type=int, default=DEFAULTS.k,
                       help="samples of z per example: the paper's L for elbo and elbo-mc, "
                            "the IWAE bound's k (default: %(default)s)")
    train.add_argument("--beta", type=float, default=DEFAULTS.beta,
                       help="weight of the KL term (default: %(default)s)")
    train.add_argument("--kl-warmup", type=float, default=DEFAULTS.kl_warmup, metavar="N",
                       help="raise the KL weight linearly from 0 to --beta over the first N "
                            "epochs (default: %(default)s)")
    train.add_argument("--free-bits", type=float, default=DEFAULTS.free_bits, metavar="LAMBDA",
                       help="free bits (Kingma et al. 2016): the KL of each latent dimension, "
                            "averaged over the batch, counts as at least LAMBDA nats, so no "
                            "gradient pushes it below; --objective elbo only, 0 for none "
                            "(default: %(default)s)")
    train.add_argument("--seed", type=int, default=DEFAULTS.seed,
                       help="seeds the weights, the shuffling and all training noise "
                            "(default: %(default)s)")
    data = p.add_argument_group("data")
    data.add_argument("--dataset", choices=DATASETS, default=DEFAULTS.dataset,
                      help="mnist (or any MNIST-layout data set in --data-dir: Fashion-MNIST, "
                           "KMNIST), or frey: the Frey Face set of Kingma & Welling, 28x20 "
                           "grey faces without labels, e.g. with --likelihood gaussian-sigmoid "
                           "(default: %(default)s)")
    data.add_argument("--data-dir", default=DEFAULTS.data_dir, metavar="DIR",
                      help="directory holding the data set's files: the four MNIST IDX files, "
                           "or frey_rawface.mat (default: the download cache)")
    data.add_argument("--binarize", choices=BINARIZE_MODES, default=DEFAULTS.binarize,
                      help="none: grey levels x/255; dynamic: a fresh Bernoulli(x/255) draw per "
                           "batch; threshold: x/255 > 0.5 (default: %(default)s)")
    data.add_argument("--limit", type=int, default=DEFAULTS.limit, metavar="N",
                      help="train on the first N training examples only (default: all)")
    run = p.add_argument_group("run")
    run.add_argument("--out", default=DEFAULTS.out, metavar="DIR",
                     help="directory for the run's files (default: %(default)s)")
    run.add_argument("--resume", action="store_true",
                     help="continue the run in --out from its checkpoint (--epochs may grow)")
    run.add_argument("--overwrite", action="store_true",
                     help="replace a run already in --out: removes the files a run writes "
                          "(metrics.json, checkpoint.npz, the PNGs), nothing else")
    run.add_argument("--eval-k", type=int, default=DEFAULTS.eval_k, metavar="K",
                     help="importance samples for the final test log p(x), each a decoder "
                          "pass per test image: the flag that makes the final evaluation "
                          "cheaper (at 1000 it is about 3x the default run's training work; "
                          "the run says its own ratio before training). The literature uses "
                          "5000, 0 skips it (default: %(default)s)")
    return p


def main(argv=None):
    args = vars(parser().parse_args(argv))
    resume, overwrite = args.pop("resume"), args.pop("overwrite")
    try:
        config = RunConfig(**args)
        data = load_data(config.dataset, config.data_dir)
        fit(config, data, resume=resume, overwrite=overwrite)
    except RunError as e:  # bad settings or data, an --out or a checkpoint that does not fit
        print(f"error: {e}", file=sys.stderr)
        return 2
    except TrainingDiverged as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except Interrupted as e:
        print(f"\n{e}", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("\ninterrupted before the run started: nothing was written", file=sys.stderr)
        return 130
    return 0


def load_data(dataset, data_dir):
    """The data set by name, its warnings printed as one line each, its failures as RunError."""
    try:
        data, notes = load_dataset_noting_warnings(dataset, data_dir)
    except DataUnavailable as e:
        if data_dir is None:
            raise RunError(str(e)) from None
        raise RunError(f"--data-dir: {str(e).split(': ', 1)[1]}") from None
    for note in notes:
        print(f"warning: {note}", file=sys.stderr)
    return data


if __name__ == "__main__":
    sys.exit(main())
