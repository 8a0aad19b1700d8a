"""Check every hand-written gradient against central differences.

    python demos/gradcheck.py

For a small float64 VAE with each decoder (Bernoulli, Gaussian with a fixed
variance, Gaussian with a learned per-pixel variance) and for the
deterministic Autoencoder, computes the loss gradient w.r.t. every parameter
tensor twice: with the model's backward pass (loss_and_grads) and with
central differences (numpyvae.gradcheck.numerical_gradient), and prints one
row per tensor with the largest relative error between the two.  eps is held
fixed, so the VAE loss is a deterministic function of the parameters.

Exit status: 0 if every tensor passes, 1 otherwise.  Runs in about a second.
"""

import sys
import time
from pathlib import Path

try:
    import numpyvae  # noqa: F401  (installed, or run from the source tree below)
except ImportError:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from numpyvae import VAE, Autoencoder
from numpyvae.gradcheck import check_parameter_gradients

TOL = 1e-6     # max relative error, float64
H = 1e-5       # central-difference step
N, INPUT_DIM, HIDDEN, LATENT, SEED = 3, 6, (5,), 2, 0

MODELS = [  # (title, class, likelihood, obs_var)
    ("VAE, Bernoulli decoder", VAE, "bernoulli", 1.0),
    ("VAE, Gaussian decoder, obs_var = 0.5", VAE, "gaussian", 0.5),
    ("VAE, Gaussian decoder, learned variance", VAE, "gaussian", "learned"),
    ("Autoencoder, Bernoulli decoder", Autoencoder, "bernoulli", 1.0),
]


def setup(cls, likelihood, obs_var, rng):
    """A small float64 model, a batch x (N, D) and, for a VAE, a fixed eps (N, L)."""
    model = cls(INPUT_DIM, HIDDEN, LATENT, likelihood, obs_var, "relu", np.float64, SEED)
    # Biases start at zero; a ReLU unit that is dead for an example then
    # feeds exactly 0 into the next layer, the kink where a central
    # difference averages two slopes.  Small random biases avoid that.
    for name, p in model.params.items():
        if name.endswith(".b"):
            p[...] = rng.uniform(0.05, 0.2, p.shape) * rng.choice([-1.0, 1.0], p.shape)
    if likelihood == "bernoulli":
        x = (rng.random((N, INPUT_DIM)) < 0.5).astype(np.float64)
    else:
        x = rng.standard_normal((N, INPUT_DIM))
    if cls is VAE:
        eps = rng.standard_normal((N, LATENT))
        return model, lambda: model.loss_and_grads(x, eps=eps, beta=1.0)
    return model, lambda: model.loss_and_grads(x)


def check(model, loss_and_grads):
    """[(name, shape, max |analytic|, max relative error)] for every parameter tensor."""
    return [(name, model.params[name].shape, max_abs, err) for name, (max_abs, err)
            in check_parameter_gradients(model.params, loss_and_grads, H).items()]


def main():
    start = time.perf_counter()
    print("numpyvae gradient check: analytic backward vs central differences, float64")
    print(f"  relative error = |analytic - numerical| / max(|analytic| + |numerical|, 1e-8), "
          f"step h = {H:g}")
    print(f"  a tensor PASSes when its largest relative error is <= {TOL:g}")
    print(f"  models: {INPUT_DIM} inputs -> hidden {HIDDEN} ReLU -> {LATENT} latents, "
          f"batch of {N}, seed {SEED}")
    header = f"  {'tensor':<14}{'shape':>10}{'max |grad|':>14}{'max rel err':>14}  result"
    results = []
    rng = np.random.default_rng(SEED)
    for title, cls, likelihood, obs_var in MODELS:
        model, loss_and_grads = setup(cls, likelihood, obs_var, rng)
        print(f"\n{title}  (loss {loss_and_grads()[0]:.4f} nats)")
        print(header)
        for name, shape, grad_max, err in check(model, loss_and_grads):
            ok = err <= TOL
            results.append((title, name, err, ok))
            print(f"  {name:<14}{str(shape):>10}{grad_max:>14.3e}{err:>14.2e}  "
                  f"{'PASS' if ok else 'FAIL'}")
    n_fail = sum(not ok for *_, ok in results)
    title, name, err, _ = max(results, key=lambda r: r[2])
    print(f"\n{'ALL PASS' if n_fail == 0 else 'FAILED'}: {len(results) - n_fail}/{len(results)} "
          f"tensors in {len(MODELS)} models within {TOL:g}; worst {err:.2e} ({title}: {name}); "
          f"{time.perf_counter() - start:.1f} s")
    return 1 if n_fail else 0


if __name__ == "__main__":
    sys.exit(main())
