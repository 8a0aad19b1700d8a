"""The IWAE training step at the paper's batch size, next to its matrix products.

    python benchmarks/iwae_step.py --data-dir ../shared/data/mnist [--busy] [--profile]

The IWAE paper's models (Burda et al. 2016): one stochastic layer
784-200-200-50 tanh, and two (784-200-200-100 | 100-100-50), Bernoulli
decoder, dynamic binarization, Adam eps 1e-4, objective 'iwae', float32.
For each (model, batch, k) the script times one full trainer.TrainingStep
(gather, binarize, draw eps, forward, backward, finiteness check, Adam)
and the same step's matrix products replayed alone (matmul_floor.py),
alternately in rounds, and prints the medians and their ratio: the time a
step spends outside the products it cannot avoid.  Timed in the same rounds,
an AdamFast step over the model's parameters followed by the products
("Adam+mm"): a floor for any implementation that keeps these parameters and
updates them with Adam, since Adam's pass over them (7 arrays of the
parameters' size) also pushes the weights out of the cache that the hot
product replay runs from.

--profile adds, per setting, where the time outside the products goes:
cProfile's own time per step of the heaviest functions (the products are
inside linear_forward / linear_backward_fast / the decoder's first layer).
--busy starts a second CPU-bound process (a one-thread matrix-product loop)
for the length of the run, to show the figures beside a busy machine.
Compare ratios from one run; machines here are noisy.
"""

import argparse
import cProfile
import multiprocessing
import os
import pstats
import sys
import time
import warnings
from pathlib import Path

os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")  # read when numpy loads: docs/benchmarks.md

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench import alternate, iwae_step_function, load_data  # noqa: E402
from matmul_floor import training_step_products  # noqa: E402

import numpyvae  # noqa: E402
from numpyvae import AdamFast  # noqa: E402

SETTINGS = (("one layer", 20, 1), ("one layer", 20, 5), ("one layer", 100, 5),
            ("two layers", 20, 1), ("two layers", 20, 5))


def paper_model(layers, library=numpyvae):
    """The paper's model with ``layers`` stochastic layers, built by ``library``
    (numpyvae, or another commit's copy of it: compare_commits.py)."""
    if layers == "one layer":
        return library.VAE(784, (200, 200), 50, activation="tanh", dtype=np.float32, seed=0)
    return library.TwoLayerVAE(784, (200, 200), 100, activation="tanh",
                               top_hidden_dims=(100, 100), top_latent_dim=50,
                               dtype=np.float32, seed=0)


def adam_and_products(model, products, rng):
    """One AdamFast step (eps 1e-4) on a copy of the model's parameters with a
    fixed gradient, then the step's products: the floor described above."""
    params = model.params.copy()
    grads = params.zeros_like()
    grads.flat[:] = rng.standard_normal(grads.flat.size) * 1e-3
    adam = AdamFast(params, lr=1e-4, eps=1e-4)

    def run():
        adam.step(grads, grads_checked=True)
        products()
    return run


def profile(one_step, steps, top):
    profiler = cProfile.Profile()
    profiler.runcall(lambda: [one_step() for _ in range(steps)])
    stats = pstats.Stats(profiler).stats
    rows = sorted(stats.items(), key=lambda kv: -kv[1][2])
    total = sum(v[2] for v in stats.values())
    print(f"      cProfile: {1e3 * total / steps:.2f} ms per step; own time per step:")
    for (filename, line, name), (_, ncalls, tottime, _, _) in rows[:top]:
        where = f"{Path(filename).name}:{line}({name})" if line else name
        print(f"      {1e6 * tottime / steps:8.1f} us {ncalls / steps:5.1f} calls  {where}")


def busy_loop():
    a = np.random.default_rng(1).standard_normal((300, 300))
    while True:
        a = np.tanh(a @ a.T / 300.0)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-dir", help="MNIST IDX files (else random images)")
    p.add_argument("--repeats", type=int, default=500, help="steps timed per setting")
    p.add_argument("--busy", action="store_true", help="a second CPU-bound process beside")
    p.add_argument("--profile", action="store_true", help="per-function own time per step")
    p.add_argument("--top", type=int, default=14, help="functions printed by --profile")
    args = p.parse_args(argv)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the shared file's known md5 note
        x_train = load_data(args.data_dir).x_train
    busy = None
    if args.busy:
        busy = multiprocessing.get_context("spawn").Process(target=busy_loop, daemon=True)
        before = os.environ.get("OPENBLAS_NUM_THREADS")
        os.environ["OPENBLAS_NUM_THREADS"] = "1"    # read by the child's numpy as it loads
        busy.start()
        if before is None:
            del os.environ["OPENBLAS_NUM_THREADS"]
        else:
            os.environ["OPENBLAS_NUM_THREADS"] = before
        time.sleep(1.0)
    print(f"IWAE step, float32, Adam eps 1e-4, dynamic binarization; "
          f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', '(unset)')}; "
          f"{'a busy process beside' if busy else 'no busy process started'}; "
          f"load average {os.getloadavg()[0]:.2f}; medians of {args.repeats} steps in 5 rounds")
    print(f"   {'model':10s} {'batch':>5s} {'k':>3s} {'step ms':>8s} {'matmul ms':>10s} "
          f"{'ratio':>6s} {'outside ms':>10s} {'Adam+mm':>8s} {'its ratio':>8s}")
    try:
        for layers, batch, k in SETTINGS:
            rng = np.random.default_rng(0)
            model = paper_model(layers)
            one_step = iwae_step_function(model, x_train, batch, k, rng)
            products = training_step_products(model, batch, rng, samples=k)
            adam_then_products = adam_and_products(model, products, rng)
            for _ in range(20):
                one_step()
                products()
                adam_then_products()
            step_ms, mm_ms, floor_ms = alternate([one_step, products, adam_then_products],
                                                 args.repeats)
            print(f"   {layers:10s} {batch:5d} {k:3d} {step_ms:8.2f} {mm_ms:10.2f} "
                  f"{step_ms / mm_ms:6.2f} {step_ms - mm_ms:10.2f} {floor_ms:8.2f} "
                  f"{floor_ms / mm_ms:8.2f}", flush=True)
            if args.profile:
                profile(one_step, args.repeats, args.top)
    finally:
        if busy is not None:
            busy.terminate()


if __name__ == "__main__":
    main()
