"""What the full-covariance posterior costs per training step, next to the diagonal one.

    OPENBLAS_NUM_THREADS=1 python benchmarks/full_covariance_step.py --data-dir ../shared/data/mnist

For each objective ('elbo', 'elbo-mc', 'iwae' with k = 5), the median ms of
one trainer.TrainingStep (batch gather, forward, backward, Adam) of the
default 784-400-20 ReLU Bernoulli model with --posterior diagonal and full
(float32, batch 128), the two timed in interleaved rounds in one process so
that load elsewhere on the machine hits both alike, and the ratio.  The
difference is the posterior's own work: a 230-wide encoder output instead of
40, the (N, n, n) factor, and in the sampled objectives the triangular
solves of log q's backward (docs/full_covariance.md).
"""

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")  # read when numpy loads: docs/benchmarks.md

try:
    import numpyvae  # noqa: F401  (installed, or run from the source tree below)
except ImportError:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from numpyvae import AdamFast
from numpyvae.data.mnist import load_mnist
from numpyvae.run.settings import POSTERIORS
from numpyvae.trainer import TrainingStep


def step_function(posterior, objective, k, x_train, batch, seed=0):
    """A callable running one training step of the default model, on the next batch."""
    model = POSTERIORS[posterior](784, (400,), 20, dtype=np.float32, seed=seed)
    step = TrainingStep(model, AdamFast(model.params, lr=1e-3), batch, objective=objective, k=k)
    rng = np.random.default_rng(seed)
    perm = rng.permutation(x_train.shape[0])
    batches = [perm[i:i + batch] for i in range(0, len(perm) - batch + 1, batch)]
    counter = iter(range(10 ** 9))
    return lambda: step(x_train, batches[next(counter) % len(batches)], rng)


def median_ms_alternating(fns, steps, rounds):
    """Median over rounds of each function's mean ms over ``steps`` calls, interleaved."""
    results = [[] for _ in fns]
    for _ in range(rounds):
        for fn, times in zip(fns, results):
            start = time.perf_counter()
            for _ in range(steps):
                fn()
            times.append(1e3 * (time.perf_counter() - start) / steps)
    return [float(np.median(times)) for times in results]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-dir", required=True, help="the four MNIST IDX files")
    p.add_argument("--steps", type=int, default=20, help="steps per round (default: %(default)s)")
    p.add_argument("--rounds", type=int, default=7, help="rounds (default: %(default)s)")
    p.add_argument("--batch", type=int, default=128, help="(default: %(default)s)")
    args = p.parse_args(argv)
    x_train = load_mnist(args.data_dir).x_train
    print(f"training step, 784-400-20 relu, bernoulli, float32, batch {args.batch}: "
          f"median over {args.rounds} rounds of {args.steps} steps, posteriors alternating")
    print(f"  {'objective':<14}{'diagonal ms':>12}{'full ms':>10}{'full / diagonal':>17}")
    for objective, k in (("elbo", 1), ("elbo-mc", 1), ("iwae", 5)):
        fns = [step_function(posterior, objective, k, x_train, args.batch) for posterior in POSTERIORS]
        for fn in fns:          # warm up
            fn()
        diagonal, full = median_ms_alternating(fns, args.steps, args.rounds)
        label = f"{objective} (k {k})"
        print(f"  {label:<14}{diagonal:12.2f}{full:10.2f}{full / diagonal:17.2f}")


if __name__ == "__main__":
    main()
