"""Is each fast form worth keeping?  Textbook against fast, op by op and per training step.

    python benchmarks/fast_forms.py

The library keeps every formula as written (the textbook form) and, beside
it, a tuned form named with ``_fast`` / ``Fast`` where that measurably wins
on the training path (tests/test_fast_forms.py proves the two agree).  This
prints, for the shapes of the default model (784-400-20 ReLU, Bernoulli,
batch 128, float32), the best-of-repeats microseconds of each pair and their
ratio, then the median milliseconds of a whole training step
(trainer.TrainingStep) with all textbook forms against all fast forms, timed
in alternating rounds so both see the same machine.  Also two choices made
inside single functions: the stable sigmoid against two other ways of
writing it, and dynamic binarization's random bytes (binarize.uniform_below_255)
against rng.integers; log1p's fast form, the IWAE bound's log-mean-exp against
scipy's, and AdamFast's block size.  Random data: speed only.
"""

import os
import sys
import time
import timeit
from pathlib import Path

os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")  # read when numpy loads: docs/benchmarks.md

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from numpyvae import VAE, Adam, AdamFast  # noqa: E402
from numpyvae.ops import layers  # noqa: E402
from numpyvae.model import mlp  # noqa: E402
from numpyvae.data.binarize import uniform_below_255  # noqa: E402
from numpyvae.ops.likelihoods import BernoulliLikelihood, BernoulliLikelihoodFast  # noqa: E402
from numpyvae.ops.log_mean_exp import log_mean_exp_forward  # noqa: E402
from scipy.special import expit, logsumexp, softmax  # noqa: E402
from numpyvae.trainer import TrainingStep  # noqa: E402

BATCH, DTYPE = 128, np.float32


def best_us(fn, number=100, repeat=7):
    """Best-of-``repeat`` mean microseconds per call of fn()."""
    return 1e6 * min(timeit.repeat(fn, number=number, repeat=repeat)) / number


def op_pairs(rng):
    """(label, textbook call, fast call) for every fast form, on default-model shapes."""
    def arr(*shape, scale=1.0):
        return (rng.standard_normal(shape) * scale).astype(DTYPE)

    h = arr(BATCH, 400)
    pairs = [("relu_forward (128, 400)", lambda: layers.relu_forward(h),
              lambda: layers.relu_forward_fast(h))]
    for d_out in (400, 40, 784):   # the bias sizes of the four layers (400 twice)
        # the two forms differ only in db; dx and dW are the same matrix products
        dout, db, ones = arr(BATCH, d_out), np.empty(d_out, DTYPE), np.ones(BATCH, DTYPE)
        pairs.append((f"linear_backward's db ({BATCH}, {d_out})",
                      lambda g=dout, b=db: np.sum(g, axis=0, out=b),
                      lambda g=dout, b=db, o=ones: np.matmul(o, g, out=b)))
    logits, x = arr(BATCH, 784, scale=3.0), (rng.random((BATCH, 784)) < 0.3).astype(DTYPE)
    dlogp = np.full(BATCH, -1 / BATCH, DTYPE)
    text, fast = BernoulliLikelihood(), BernoulliLikelihoodFast()
    cache, cache_fast = text.log_prob_forward(x, logits)[1], fast.log_prob_forward(x, logits)[1]
    pairs += [("Bernoulli log_prob_forward (128, 784)", lambda: text.log_prob_forward(x, logits),
               lambda: fast.log_prob_forward(x, logits)),
              ("Bernoulli log_prob_backward (128, 784)", lambda: text.log_prob_backward(dlogp, cache),
               lambda: fast.log_prob_backward(dlogp, cache_fast))]
    params_text = VAE(784, (400,), 20, dtype=DTYPE).params
    params_fast = params_text.copy()
    grads = params_text.zeros_like()
    grads.flat[:] = rng.standard_normal(grads.flat.size)
    adam, adam_fast = Adam(params_text), AdamFast(params_fast)
    pairs.append((f"Adam step ({params_text.flat.size:,} parameters)", lambda: adam.step(grads),
                  lambda: adam_fast.step(grads)))
    return pairs


def other_choices(rng):
    """(title, [(label, call)]) for choices made inside one function."""
    x = (rng.standard_normal((BATCH, 784)) * 3).astype(DTYPE)
    y = np.exp(-np.abs(rng.standard_normal((500, 784)) * 3)).astype(DTYPE)
    logw = (rng.standard_normal((5, 20)) * 10 - 100).astype(DTYPE)

    def where_form():
        e = np.exp(-np.abs(x))
        return np.where(x >= 0, 1, e) / (1 + e)
    return [("stable sigmoid on (128, 784)",
             [("layers.sigmoid", lambda: layers.sigmoid(x)), ("scipy.special.expit", lambda: expit(x)),
              ("np.where(x >= 0, 1, e) / (1 + e)", where_form)]),
            ("log1p(y), y = exp(-|l|) in (0, 1], on the (500, 784) logits of an IWAE step "
             "(batch 100, k = 5)",
             [("np.log1p", lambda: np.log1p(y)), ("layers.log1p_fast", lambda: layers.log1p_fast(y)),
              ("np.log(1 + y) (no correction)", lambda: np.log(1 + y))]),
            ("the IWAE bound's log-mean-exp and weights, (k, N) = (5, 20)",
             [("scipy.special logsumexp + softmax",
               lambda: (logsumexp(logw, axis=0) - np.log(5), softmax(logw, axis=0))),
              ("ops.log_mean_exp.log_mean_exp_forward", lambda: log_mean_exp_forward(logw))]),
            ("AdamFast.step on the IWAE model's 425,284 parameters, by BLOCK",
             [(f"BLOCK = 2**{b}" if b < 24 else "one block", adam_step(b, rng))
              for b in (14, 16, 18, 24)]),
            ("uniform random bytes on {0..254} for a (128, 784) batch",
             [("binarize.uniform_below_255", lambda: uniform_below_255(rng, (BATCH, 784))),
              ("rng.integers(0, 255, dtype=np.uint8)",
               lambda: rng.integers(0, 255, (BATCH, 784), dtype=np.uint8))])]


def adam_step(block, rng):
    """AdamFast.step with BLOCK = 2**block on the IWAE paper's one-layer model."""
    params = VAE(784, (200, 200), 50, activation="tanh", dtype=DTYPE).params
    grads = params.zeros_like()
    grads.flat[:] = rng.standard_normal(grads.flat.size) * 1e-3
    adam = AdamFast(params, lr=1e-4, eps=1e-4)
    adam.BLOCK = 2 ** block
    return lambda: adam.step(grads, grads_checked=True)


def textbook_step(model, step):
    """Turn a TrainingStep built on the fast forms into the all-textbook one
    (but for linear_backward, which step_ms swaps in mlp's namespace)."""
    model.likelihood = BernoulliLikelihood()
    for network in (model.encoder, model.decoder):
        network._act_forward = layers.relu_forward
    step.optimizer = Adam(model.params, lr=1e-3)
    return step


def step_ms(rounds=5, steps=40):
    """Median ms per training step, textbook forms against fast forms, alternating."""
    rng = np.random.default_rng(0)
    data = rng.integers(0, 256, (10 * BATCH, 784), dtype=np.uint8)
    runs = {}
    for name in ("textbook", "fast"):
        model = VAE(784, (400,), 20, dtype=DTYPE, seed=0)
        step = TrainingStep(model, AdamFast(model.params, lr=1e-3), BATCH)
        runs[name] = textbook_step(model, step) if name == "textbook" else step
    times = {name: [] for name in runs}
    backward = {"textbook": layers.linear_backward, "fast": layers.linear_backward_fast}
    for _ in range(rounds):
        for name, step in runs.items():
            mlp.linear_backward_fast = backward[name]      # what MLP.backward calls
            step_rng = np.random.default_rng(1)
            for i in range(steps):
                idx = step_rng.permutation(data.shape[0])[:BATCH]
                t = time.perf_counter()
                step(data, idx, step_rng)
                times[name].append(time.perf_counter() - t)
    mlp.linear_backward_fast = backward["fast"]
    return {name: 1e3 * float(np.median(t)) for name, t in times.items()}


def main():
    rng = np.random.default_rng(0)
    print(f"numpy {np.__version__}, {DTYPE.__name__}, batch {BATCH}; best of 7, microseconds per call")
    print(f"  {'operation':<42}{'textbook':>10}{'fast':>10}{'ratio':>8}")
    for label, textbook, fast in op_pairs(rng):
        t_text, t_fast = best_us(textbook, number=20), best_us(fast, number=20)
        print(f"  {label:<42}{t_text:>10.1f}{t_fast:>10.1f}{t_text / t_fast:>7.1f}x")
    for title, calls in other_choices(rng):
        print(f"\n{title}, microseconds per call")
        for label, fn in calls:
            print(f"  {label:<42}{best_us(fn):>10.1f}")
    ms = step_ms()
    print(f"\ntraining step (784-400-20 ReLU, Bernoulli, Adam), median ms: textbook forms "
          f"{ms['textbook']:.2f}, fast forms {ms['fast']:.2f} ({ms['textbook'] / ms['fast']:.2f}x)")


if __name__ == "__main__":
    main()
