"""How fast is numpyvae next to the matrix products it cannot avoid?

    python benchmarks/bench.py --data-dir ../shared/data/mnist

Prints, for the default model (784-400-20 ReLU, Bernoulli, Adam):

1. step: median ms of one full training step (trainer.TrainingStep: batch
   gather, conversion or binarization, forward, backward, Adam) at batch
   100 and 128 in float32 and float64, next to the median ms of the same
   step's matrix products alone (benchmarks/matmul_floor.py), the ratio,
   and steps/s.  The two are timed alternately in the same process, so
   both see the same machine.
1c. public API: median ms of one step as the README's loop writes it
   (``xb = x[idx]`` from a float32 data set, ``model.loss_and_grads(xb,
   rng=rng)``, ``AdamFast.step(grads)``), of trainer.TrainingStep and of the
   step's matrix products, the three timed alternately; default model,
   batch 128, float32.
2. epoch: median seconds of a full epoch of the default run (469 steps of
   trainer.train_epoch plus the test-set -ELBO), over --epochs epochs.
3. eval: importance-weighted log-likelihood at k=5000 on --eval-examples
   test images, as the run computes it (one Python thread per BLAS thread,
   each with a one-thread BLAS) and on one Python thread (BLAS on its own
   threads), against the matrix products of the same decoder passes, the
   three timed alternately block by block; scaled linearly to the 10,000
   test images.
5. iwae: median ms of an IWAE training step (objective 'iwae', k = 5 and
   50, batch 100) of the IWAE paper's model (784-200-200-50 tanh,
   Bernoulli, dynamic binarization, Adam), next to its matrix products
   (the decoder's on k * 100 rows), timed alternately; and that model's
   k=5000 evaluation against its decoder products, as in part 3.
4. run: peak RSS (max resident memory) and seconds per epoch of the
   default `demos/train_mnist.py` run, evaluation included, in a child
   process (skip with --skip-run).

Numbers are medians; machines are noisy, so compare ratios from one run.
Without --data-dir, random uint8 images stand in for MNIST (speed only).
"""

import argparse
import importlib
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")  # read when numpy loads: docs/benchmarks.md

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from matmul_floor import decoder_forward_products, training_step_products  # noqa: E402

import numpyvae  # noqa: E402
from numpyvae import VAE, AdamFast  # noqa: E402
from numpyvae.util.blas import blas_threads, limited_blas_threads  # noqa: E402
from numpyvae.evaluate import (BATCH_ELEMENTS, chunk_sizes, evaluate_elbo,  # noqa: E402
                               importance_weighted_log_likelihood_fast)
from numpyvae.data.mnist import load_mnist  # noqa: E402
from numpyvae.run.fit import eval_inputs  # noqa: E402
from numpyvae.trainer import TrainingStep, train_epoch  # noqa: E402


def median_ms(fn, repeats):
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return 1e3 * float(np.median(times))


def alternate(fns, repeats, rounds=5):
    """Median ms of each function, timed in interleaved rounds so that a
    burst of load elsewhere hits all of them alike."""
    results = [[] for _ in fns]
    for _ in range(rounds):
        for fn, res in zip(fns, results):
            res.append(median_ms(fn, repeats // rounds))
    return [float(np.median(r)) for r in results]


def default_model(dtype):
    return VAE(784, (400,), 20, dtype=dtype, seed=0)


def load_data(data_dir):
    """MNIST from ``data_dir``, else random uint8 images of its shapes (speed only)."""
    if data_dir:
        return load_mnist(data_dir)
    rng = np.random.default_rng(0)
    return SimpleNamespace(x_train=rng.integers(0, 256, (60000, 784), dtype=np.uint8),
                           x_test=rng.integers(0, 256, (10000, 784), dtype=np.uint8))


def bench_step(x_train, repeats, binarize_mode, label):
    print(f"\n{label}. training step (binarize {binarize_mode}), median of {repeats}:")
    print(f"   {'dtype':8s} {'batch':>5s} {'step ms':>8s} {'matmul ms':>10s} {'ratio':>6s} {'steps/s':>8s}")
    rng = np.random.default_rng(0)
    for dtype in (np.float32, np.float64):
        for batch in (100, 128):
            model = default_model(dtype)
            step = TrainingStep(model, AdamFast(model.params, lr=1e-3), batch, binarize_mode)
            perm = rng.permutation(x_train.shape[0])
            batches = [perm[i:i + batch] for i in range(0, len(perm) - batch + 1, batch)]
            counter = iter(range(10 ** 9))

            def one_step():
                step(x_train, batches[next(counter) % len(batches)], rng)

            products = training_step_products(model, batch, rng)
            for _ in range(20):  # warm up both
                one_step()
                products()
            step_ms, mm_ms = alternate([one_step, products], repeats)
            print(f"   {np.dtype(dtype).name:8s} {batch:5d} {step_ms:8.3f} {mm_ms:10.3f} "
                  f"{step_ms / mm_ms:6.2f} {1e3 / step_ms:8.0f}")


def bench_public_step(x_train, repeats, batch=128):
    print(f"\n1c. public API step (model.loss_and_grads + AdamFast.step), default model, "
          f"batch {batch}, float32, median of {repeats}:")
    rng = np.random.default_rng(0)
    x_u8 = x_train[:100 * batch]
    x_float = x_u8.astype(np.float32) / 255        # the data set as a user of the API holds it
    perm = rng.permutation(x_u8.shape[0])
    batches = [perm[i:i + batch] for i in range(0, len(perm), batch)]
    public_model, step_model = default_model(np.float32), default_model(np.float32)
    optimizer = AdamFast(public_model.params, lr=1e-3)
    step = TrainingStep(step_model, AdamFast(step_model.params, lr=1e-3), batch)
    counter = iter(range(10 ** 9))

    def public_step():
        xb = x_float[batches[next(counter) % len(batches)]]
        loss, grads = public_model.loss_and_grads(xb, rng=rng)
        optimizer.step(grads)

    def training_step():
        step(x_u8, batches[next(counter) % len(batches)], rng)

    products = training_step_products(public_model, batch, rng)
    for _ in range(20):  # warm up all three
        public_step()
        training_step()
        products()
    public_ms, step_ms, mm_ms = alternate([public_step, training_step, products], repeats)
    print(f"   public API {public_ms:.3f} ms ({public_ms / mm_ms:.2f}x the products), "
          f"TrainingStep {step_ms:.3f} ms ({step_ms / mm_ms:.2f}x), matrix products "
          f"{mm_ms:.3f} ms; public / TrainingStep {public_ms / step_ms:.3f}")


def bench_epoch(data, n_epochs):
    model = default_model(np.float32)
    opt = AdamFast(model.params, lr=1e-3)
    rng = np.random.default_rng(0)
    x_test = eval_inputs(data.x_test, "none", np.float32)
    seconds = []
    for _ in range(n_epochs):
        t = time.perf_counter()
        train_epoch(model, opt, data.x_train, rng, batch_size=128)
        evaluate_elbo(model, x_test, np.random.default_rng(1))
        seconds.append(time.perf_counter() - t)
    print(f"\n2. epoch of the default run (60,000 examples, batch 128, + test -ELBO): "
          f"median {np.median(seconds):.2f} s over {n_epochs} "
          f"(all: {', '.join(f'{s:.2f}' for s in seconds)})")


def iwae_model(dtype=np.float32):
    """The IWAE paper's one-stochastic-layer model (Burda et al. 2016)."""
    return VAE(784, (200, 200), 50, activation="tanh", dtype=dtype, seed=0)


def iwae_step_function(model, x_train, batch, k, rng, library=numpyvae):
    """One IWAE training step per call (trainer.TrainingStep, Adam eps 1e-4, dynamic
    binarization), cycling through the batches of a random order of x_train.
    ``library``: the package whose TrainingStep and AdamFast run it (another
    commit's, imported under another name, for compare_commits.py)."""
    step_class = importlib.import_module(f"{library.__name__}.trainer").TrainingStep
    step = step_class(model, library.AdamFast(model.params, lr=1e-3, eps=1e-4), batch, "dynamic",
                      objective="iwae", k=k)
    perm = rng.permutation(x_train.shape[0])
    batches = [perm[i:i + batch] for i in range(0, len(perm) - batch + 1, batch)]
    counter = iter(range(10 ** 9))

    def one_step():
        step(x_train, batches[next(counter) % len(batches)], rng)
    return one_step


def bench_eval(data, n_examples, k, model=None, label="3"):
    """The evaluation as the run does it (all threads BLAS would use, each
    with a one-thread BLAS; blas.py), the serial textbook loop (one Python
    thread, BLAS on its default threads) and the matrix products of the same
    decoder passes (on BLAS's threads), the three alternating block by block."""
    model = default_model(np.float32) if model is None else model
    x = eval_inputs(data.x_test[:n_examples], "none", np.float32)
    rng = np.random.default_rng(0)
    workers = blas_threads() or 1
    importance_weighted_log_likelihood_fast(model, x[:2], k, rng)  # warm up
    kc, n_chunk = chunk_sizes(model, k, n_examples, BATCH_ELEMENTS)
    rows = kc * n_chunk
    products = decoder_forward_products(model, rows, rng)
    block = max(n_chunk, 20)            # examples per timed call: enough for every thread
    serial_s = threaded_s = mm_s = 0.0
    for i0 in range(0, n_examples, block):
        xb = x[i0:i0 + block]
        t = time.perf_counter()
        importance_weighted_log_likelihood_fast(model, xb, k, rng)
        serial_s += time.perf_counter() - t
        with limited_blas_threads(1):
            t = time.perf_counter()
            importance_weighted_log_likelihood_fast(model, xb, k, rng, BATCH_ELEMENTS // workers,
                                               workers=workers)
            threaded_s += time.perf_counter() - t
        passes = -(-xb.shape[0] * k // rows)     # decoder passes of ``rows`` rows
        t = time.perf_counter()
        for _ in range(passes):
            products()
        mm_s += (time.perf_counter() - t) * (xb.shape[0] * k / rows) / passes
    scale = 10_000 / n_examples
    print(f"\n{label}. importance-weighted log p(x), k={k}, {n_examples:,} test images "
          f"({n_examples * k:,} decoder passes):")
    print(f"   as the run does it ({workers} threads, one BLAS thread each) {threaded_s:.1f} s, "
          f"one thread (BLAS on {workers}) {serial_s:.1f} s, matrix products {mm_s:.1f} s; "
          f"ratios to the products {threaded_s / mm_s:.2f} and {serial_s / mm_s:.2f}; "
          f"10,000 images: ~{threaded_s * scale:.0f} s against ~{serial_s * scale:.0f} s")


def bench_iwae_step(x_train, repeats, batch=100):
    print(f"\n5. IWAE training step, 784-200-200-50 tanh, batch {batch}, float32, median of "
          f"{repeats}:")
    print(f"   {'k':>4s} {'step ms':>8s} {'matmul ms':>10s} {'ratio':>6s} {'steps/s':>8s}")
    rng = np.random.default_rng(0)
    for k, n_repeats in ((5, repeats), (50, max(5, repeats // 10))):
        model = iwae_model()
        one_step = iwae_step_function(model, x_train, batch, k, rng)
        products = training_step_products(model, batch, rng, samples=k)
        for _ in range(5):
            one_step()
            products()
        step_ms, mm_ms = alternate([one_step, products], n_repeats)
        print(f"   {k:4d} {step_ms:8.2f} {mm_ms:10.2f} {step_ms / mm_ms:6.2f} {1e3 / step_ms:8.0f}")


def bench_run(data_dir, eval_k):
    with tempfile.TemporaryDirectory() as out:
        cmd = [sys.executable, str(ROOT / "demos" / "train_mnist.py"), "--out", out,
               "--eval-k", str(eval_k)] + (["--data-dir", str(data_dir)] if data_dir else [])
        t = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wall = time.perf_counter() - t
        metrics = json.loads((Path(out) / "metrics.json").read_text())
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    per_epoch = [e["seconds"] for e in metrics["epochs"]]
    final = metrics["final"]
    print(f"\n4. default run (demos/train_mnist.py, 10 epochs, eval k={eval_k}): "
          f"peak RSS {peak_mb:.0f} MB, wall {wall:.0f} s")
    print(f"   seconds per epoch: median {np.median(per_epoch):.2f} "
          f"(min {min(per_epoch):.2f}, max {max(per_epoch):.2f}); "
          f"final test -ELBO {final['test_loss']:.2f}, -log p(x) {final['test_nll']:.2f}")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-dir", help="MNIST IDX files (else random images; no run)")
    p.add_argument("--repeats", type=int, default=500, help="steps timed per setting")
    p.add_argument("--epochs", type=int, default=3, help="epochs timed in part 2")
    p.add_argument("--eval-examples", type=int, default=500,
                   help="test images for part 3 (10000 for the whole k=5000 protocol)")
    p.add_argument("--eval-k", type=int, default=5000)
    p.add_argument("--run-eval-k", type=int, default=1000, help="--eval-k of the run in part 4")
    p.add_argument("--skip-run", action="store_true", help="skip part 4")
    p.add_argument("--parts", default="1a,1b,1c,2,3,5,4", help="comma-separated parts to run")
    args = p.parse_args(argv)
    parts = set(args.parts.split(","))

    blas_env = ", ".join(f"{name}={os.environ.get(name, '(unset)')}"
                         for name in ("OPENBLAS_NUM_THREADS", "OPENBLAS_THREAD_TIMEOUT"))
    print(f"numpyvae benchmark: {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} cores, Python {platform.python_version()}, NumPy {np.__version__}; "
          f"{blas_env}; load average {os.getloadavg()[0]:.2f}")
    data = load_data(args.data_dir)
    if "1a" in parts:
        bench_step(data.x_train, args.repeats, "none", "1a")
    if "1b" in parts:
        bench_step(data.x_train, args.repeats // 2, "dynamic", "1b")
    if "1c" in parts:
        bench_public_step(data.x_train, args.repeats)
    if "2" in parts:
        bench_epoch(data, args.epochs)
    if "3" in parts:
        bench_eval(data, args.eval_examples, args.eval_k)
    if "5" in parts:
        bench_iwae_step(data.x_train, max(10, args.repeats // 5))
        bench_eval(data, args.eval_examples, args.eval_k, iwae_model(), label="5b")
    if "4" in parts and args.data_dir and not args.skip_run:
        bench_run(args.data_dir, args.run_eval_k)


if __name__ == "__main__":
    main()
