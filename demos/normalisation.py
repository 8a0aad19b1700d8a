"""How a VAE loss is normalised, and the beta that each normalisation amounts to.

    python demos/normalisation.py                           # the effective beta of each choice
    python demos/normalisation.py --runs runs/beta_*        # + rate and distortion of trained runs

Every way of normalising the loss that is seen in VAE code computes

    loss = a * mean_n recon_n + b * mean_n KL_n,    recon_n = -log p(x_n|z_n) (a sum over pixels),
                                                    KL_n = KL(q(z|x_n) || p(z)) (a sum over latents)

for some constants a and b: the same minimiser as  recon + (b / a) KL,  the
beta-VAE loss with beta = b / a, with its gradients scaled by a.  The first
table gives a, b and b / a for each choice, with D pixels, L latent
dimensions, a batch of M and a training set of N (docs/normalisation.md).
With --runs it reads the metrics.json of runs of demos/train_mnist.py (one
per --beta) and prints the test rate (KL) and distortion (reconstruction) of
each, in nats per example, beside -ELBO and -log p(x).

Exit status: 0 done, 2 a --runs folder without a readable metrics.json.
"""

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")  # as every script (docs/benchmarks.md)

MNIST = {"D": 784, "L": 20, "M": 128, "N": 60_000}


def normalisations(D, L, M, N):
    """[(what the code computes, a, b)]: the weights of mean_n recon_n and mean_n KL_n."""
    return [
        ("numpyvae: sum over pixels and latents, mean over the batch", 1, 1),
        ("both terms summed over the batch too (reduction='sum')", M, M),
        ("Kingma & Welling's estimator (N/M) sum over the batch", N, N),
        ("recon a mean over pixels (BCE reduction='mean'), KL per example", 1 / D, 1),
        ("both a mean over every element (mean over pixels, over latents)", 1 / D, 1 / L),
        ("KL a mean over the latent dimensions", 1, 1 / L),
        ("recon summed over the batch, KL divided by the batch size", M, 1),
        ("KL divided by the number of pixels D", 1, 1 / D),
        ("KL weighted by M/N (kld_weight = batch / training set)", 1, M / N),
        ("KL weighted by M/N, recon a mean over pixels", 1 / D, M / N),
        ("KL divided by the training-set size N", 1, 1 / N),
    ]


def number(value):
    """60,000 for a whole number, else four significant digits."""
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:.4g}"


def beta_table(D, L, M, N):
    """The normalisations as a text table (a string)."""
    lines = [f"D = {D} pixels, L = {L} latent dimensions, batch M = {M}, training set N = {N}:",
             "loss = a * mean_n recon_n + b * mean_n KL_n = a * (recon + beta KL), beta = b / a",
             "",
             f"  {'what the code computes':<66}{'a':>10}{'b':>10}{'beta = b/a':>12}"]
    for what, a, b in normalisations(D, L, M, N):
        lines.append(f"  {what:<66}{number(a):>10}{number(b):>10}{number(b / a):>12}")
    return "\n".join(lines)


def read_run(folder):
    """(beta, final metrics) of a run folder of demos/train_mnist.py; ValueError if unreadable."""
    path = Path(folder) / "metrics.json"
    try:
        metrics = json.loads(path.read_text())
        return float(metrics["config"]["beta"]), metrics["final"], len(metrics["epochs"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ValueError(f"--runs: cannot read {path}: {e}") from None


def runs_table(folders):
    """Rate and distortion of trained runs, sorted by beta (a string)."""
    runs = sorted((read_run(folder) + (str(folder),) for folder in folders), key=lambda r: r[0])
    lines = ["test set, nats per example (reported with beta = 1: recon + KL = -ELBO):",
             "",
             f"  {'beta':>10}{'epochs':>8}{'rate (KL)':>11}{'distortion':>12}{'-ELBO':>9}"
             f"{'-log p(x)':>11}{'k':>6}{'active':>8}  run"]
    for beta, final, epochs, folder in runs:
        nll = final.get("test_nll")
        lines.append(f"  {beta:10.4g}{epochs:8d}{final['test_kl']:11.2f}{final['test_recon']:12.2f}"
                     f"{final['test_loss']:9.2f}"
                     f"{'' if nll is None else format(nll, '.2f'):>11}{final.get('eval_k', 0):>6}"
                     f"{final['active_units']:>5}/{final['latent_dim']:<2}  {folder}")
    return "\n".join(lines)


def parser():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", nargs="+", default=[], metavar="DIR",
                   help="run folders of demos/train_mnist.py to tabulate (default: none)")
    return p


def main(argv=None):
    args = parser().parse_args(argv)
    print(beta_table(**MNIST))
    if args.runs:
        try:
            table = runs_table(args.runs)
        except ValueError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        print()
        print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
