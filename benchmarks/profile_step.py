"""Where does a training step spend its time?  cProfile over real steps.

    python benchmarks/profile_step.py --data-dir ../shared/data/mnist

Runs --steps training steps of the default model (784-400-20 ReLU,
Bernoulli, Adam, batch 128, float32; trainer.TrainingStep) under cProfile and
prints, per function, its own time per step (tottime / steps, in us): the
matrix products show up inside linear_forward / linear_backward_fast, Adam
in AdamFast._update, the likelihood in BernoulliLikelihoodFast's
log_prob_forward / log_prob_backward.
cProfile adds a little per call, so compare with bench.py for absolute ms.
"""

import argparse
import cProfile
import pstats
import sys
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench import default_model, load_data  # noqa: E402

from numpyvae import AdamFast  # noqa: E402
from numpyvae.trainer import TrainingStep  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-dir", help="MNIST IDX files (else random images)")
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--binarize", default="none", choices=("none", "dynamic", "threshold"))
    p.add_argument("--top", type=int, default=15, help="functions to print")
    args = p.parse_args(argv)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the shared file's known md5 note
        x = load_data(args.data_dir).x_train
    model = default_model(np.float32)
    step = TrainingStep(model, AdamFast(model.params, lr=1e-3), 128, args.binarize)
    rng = np.random.default_rng(0)
    perm = rng.permutation(x.shape[0])
    batches = [perm[i:i + 128] for i in range(0, x.shape[0] - 127, 128)]

    def run(n):
        for s in range(n):
            step(x, batches[s % len(batches)], rng)

    run(100)  # warm up
    profiler = cProfile.Profile()
    profiler.runcall(run, args.steps)
    stats = pstats.Stats(profiler)
    rows = sorted(stats.stats.items(), key=lambda kv: -kv[1][2])  # by tottime
    total = sum(v[2] for _, v in stats.stats.items())
    print(f"{args.steps} steps, {1e3 * total / args.steps:.2f} ms per step under cProfile; "
          f"own time per step:")
    for (filename, line, name), (_, ncalls, tottime, _, _) in rows[:args.top]:
        where = f"{Path(filename).name}:{line}({name})" if line else name
        print(f"  {1e6 * tottime / args.steps:8.1f} us  {ncalls / args.steps:4.1f} calls  {where}")


if __name__ == "__main__":
    main()
