"""Why the reparameterization trick: measure the variance of two unbiased gradients.

    python demos/gradient_variance.py --data-dir ../shared/data/mnist          # trains 2 epochs
    python demos/gradient_variance.py --data-dir DIR --model runs/mnist/checkpoint.npz
    python demos/gradient_variance.py --data-dir DIR --out docs/images --overwrite

For each of ``--examples`` test images x, the gradient of the reconstruction
term of the ELBO,

    f(mu, logvar) = E_{z ~ q(z|x)} [ log p(x|z) ],   q(z|x) = N(mu, diag(exp(logvar))),

with respect to the encoder outputs (mu, logvar) is estimated from ``--samples``
draws eps ~ N(0, I), z = mu + exp(logvar / 2) * eps, by three estimators:

    reparameterization   g = d log p(x|z) / d(mu, logvar) at fixed eps
                           = (dz, dz * eps * std / 2),  dz = d log p(x|z) / dz
    score function       g = log p(x|z) * d log q(z|x) / d(mu, logvar) at fixed z
    (REINFORCE)            = log p(x|z) * (eps / std, (eps^2 - 1) / 2)
    score function with  g = (log p(x|z_s) - b_s) * d log q(z_s|x) / d(mu, logvar),
    a baseline             b_s = the mean of log p(x|z) over the other samples

All three have the same expectation (docs/reparameterization.md derives
it); the demo prints their variances, per example and per latent
dimension, and the variance of the resulting minibatch gradient of the
encoder's parameters, and writes a plot (plots.plot_gradient_variance) to
``--out``/gradient_variance.png (default runs/gradient_variance/), never
replacing one that is there unless --overwrite says so.
The model is evaluated in float64.  Without ``--model`` it trains the
default VAE (784-400-20 ReLU, Bernoulli, Adam 1e-3, batch 128) for
``--epochs`` epochs on the training set first.

Exit status: 0 done, 2 bad flags, no data, an --out that is a file, or a plot in the way.
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
sys.path.insert(0, str(Path(__file__).resolve().parent))  # the other demos

import numpy as np

from numpyvae import VAE
from numpyvae.data.binarize import to_unit_interval
from numpyvae.ops.gaussian import (log_density_at_sample_backward, log_density_at_sample_forward,
                               reparameterize_backward)
from numpyvae.objectives import sampled_forward
from numpyvae.run.settings import RunConfig, RunError, build_model, build_optimizer
from numpyvae.trainer import train_epoch
from train_mnist import load_data  # noqa: E402  (demos/train_mnist.py)

ESTIMATORS = ("reparameterization", "score function", "score function + baseline")
PLOT_NAME = "gradient_variance.png"


# ------------------------------------------------------------ estimators --

def float64_copy(model):
    """The same VAE with its parameters in float64 (for exact-enough statistics)."""
    config = model.config()
    config.pop("kind")
    copy = VAE(**{**config, "dtype": np.float64})
    copy.params.flat[...] = model.params.flat
    return copy


def per_sample_gradients(model, x, eps):
    """The ingredients of the three estimators, one row per sample and example.

    model : VAE; x : (N, D) of its dtype; eps : (S, N, L) standard normal draws,
    z_s = mu + std * eps_s (objectives.sampled_forward, the training code's own
    forward pass).  Returns a dict of
      "reparameterization" : (S, N, 2L) d log p(x|z_s) / d[mu, logvar] at fixed eps
      "score" : (S, N, 2L) d log q(z_s|x) / d[mu, logvar] at fixed z
      "logpx" : (S, N) log p(x|z_s)
    """
    fwd = sampled_forward(model, x, eps)
    s, n, latent = eps.shape
    ones = np.ones((s, n), dtype=model.dtype)
    # reparameterization: the backward pass of log p(x|z) itself, eps held fixed
    dout = model.likelihood.log_prob_backward(ones, fwd.lik_cache)             # (S, N, K)
    dz = model.decoder.backward(model.params.zeros_like(), dout.reshape(s * n, -1),
                                fwd.dec_cache).reshape(s, n, latent)
    dmu, dlogvar = reparameterize_backward(dz, fwd.rep_cache)
    # score: the partials of log q(z|x) at fixed z, (z - mu) / var = eps / std and
    # ((z - mu)^2 / var - 1) / 2 = (eps^2 - 1) / 2
    q_cache = log_density_at_sample_forward(fwd.eps, fwd.logvar)[1]
    _, score_mu, score_logvar = log_density_at_sample_backward(ones, q_cache)
    return {"reparameterization": np.concatenate([dmu, dlogvar], axis=-1),
            "score": np.concatenate([score_mu, score_logvar], axis=-1), "logpx": fwd.logpx}


def score_function_estimates(logpx, score):
    """REINFORCE without and with a baseline, from all S samples:

        g_s = log p(x|z_s) * score_s,      g_s = (log p(x|z_s) - b_s) * score_s,
        b_s = (sum_{s' != s} log p(x|z_s')) / (S - 1)   (leave-one-out: independent of z_s)

    logpx : (S, N); score : (S, N, 2L).  Returns the two (S, N, 2L) arrays.
    """
    baseline = (logpx.sum(axis=0) - logpx) / (logpx.shape[0] - 1)
    return logpx[..., None] * score, (logpx - baseline)[..., None] * score


def encoder_gradients(model, x, grads_mu_logvar):
    """The minibatch gradient of the encoder's parameters for each row of ``grads_mu_logvar``.

    grads_mu_logvar : (R, N, 2L), estimates of each example's gradient of
    log p(x|z) w.r.t. (mu, logvar).  The loss is the batch mean of
    -log p(x|z), so the gradient at the encoder output is dh = -g / N, pushed
    through the encoder's backward pass.  Yields R flat (P,) arrays, P the
    number of encoder parameters.
    """
    n = x.shape[0]
    _, enc_cache = model.encoder.forward(model.params, x)
    grads = model.params.zeros_like()
    names = list(model.encoder.param_shapes())
    for g in grads_mu_logvar:
        model.encoder.backward(grads, -g / n, enc_cache, need_dx=False)
        yield np.concatenate([grads[name].ravel() for name in names])


def total_variance(vectors):
    """sum_p Var_r[v_rp] (ddof 1) of a stream of R vectors, by Welford's running update."""
    mean = m2 = None
    for r, v in enumerate(vectors, start=1):
        if mean is None:
            mean, m2 = np.zeros_like(v), np.zeros_like(v)
        delta = v - mean
        mean += delta / r
        m2 += delta * (v - mean)
    return float(m2.sum() / (r - 1))


def measure(model, x, n_samples, rng, chunk=50):
    """The variance comparison for the test images x (N, D).

    Draws eps (n_samples, N, L) from ``rng``, runs the decoder on ``chunk``
    samples of every image at a time, and returns a dict:
      "mean", "variance" : estimator -> (N, 2L) mean and variance (ddof 1) over
          the samples of each example's gradient w.r.t. [mu, logvar]
      "diff_z" : estimator -> (N, 2L), the mean of (estimator - reparameterization)
          in units of its standard error: |z| of a few at most if both are unbiased
      "encoder_variance" : estimator -> the total variance (trace of the covariance)
          of the minibatch gradient of the encoder's parameters, one z per image
      "encoder_signal" : the squared norm of that gradient's expectation (from the
          mean of the reparameterization samples)
      "n_samples", "n_examples", "latent_dim"
    """
    if n_samples < 2:
        raise ValueError(f"n_samples must be at least 2, got {n_samples}")
    model = float64_copy(model) if model.dtype != np.float64 else model
    x = np.asarray(x, dtype=np.float64)
    model.check_input(x)
    n, latent = x.shape[0], model.latent_dim
    eps = rng.standard_normal((n_samples, n, latent))
    parts = [per_sample_gradients(model, x, eps[i:i + chunk]) for i in range(0, n_samples, chunk)]
    reparam, score, logpx = (np.concatenate([part[key] for part in parts])
                             for key in ("reparameterization", "score", "logpx"))
    del parts
    samples = dict(zip(ESTIMATORS, (reparam, *score_function_estimates(logpx, score))))
    reference = samples["reparameterization"]
    result = {"mean": {}, "variance": {}, "diff_z": {}, "encoder_variance": {},
              "n_samples": n_samples, "n_examples": n, "latent_dim": latent}
    for name, g in samples.items():
        result["mean"][name] = g.mean(axis=0)
        result["variance"][name] = g.var(axis=0, ddof=1)
        diff = g - reference
        se = diff.std(axis=0, ddof=1) / np.sqrt(n_samples)
        result["diff_z"][name] = np.divide(diff.mean(axis=0), se, out=np.zeros_like(se),
                                           where=se > 0)
        result["encoder_variance"][name] = total_variance(encoder_gradients(model, x, g))
    (signal,) = encoder_gradients(model, x, result["mean"]["reparameterization"][None])
    result["encoder_signal"] = float(signal @ signal)
    return result


# ---------------------------------------------------------------- report --

def report(result):
    """The numbers of ``measure`` as a table (a string)."""
    latent = result["latent_dim"]
    rep = result["variance"]["reparameterization"]
    lines = [f"gradient of E_q[log p(x|z)] w.r.t. the encoder outputs, {result['n_examples']} "
             f"test images, {result['n_samples']} samples of z each",
             "",
             "variance of one sample's gradient, summed over the latent dimensions, "
             "mean over images:",
             f"  {'estimator':<28}{'d/dmu':>12}{'d/dlogvar':>12}{'x reparam (mu)':>16}"
             f"{'x reparam (logvar)':>20}"]
    rep_mu, rep_lv = rep[:, :latent].sum(1).mean(), rep[:, latent:].sum(1).mean()
    for name in ESTIMATORS:
        v = result["variance"][name]
        mu_v, lv_v = v[:, :latent].sum(1).mean(), v[:, latent:].sum(1).mean()
        lines.append(f"  {name:<28}{mu_v:12.4g}{lv_v:12.4g}{mu_v / rep_mu:16.4g}"
                     f"{lv_v / rep_lv:20.4g}")
    ratio = result["variance"]["score function"] / rep
    lines += ["",
              "  per image and dimension, score function / reparameterization variance: "
              f"median {np.median(ratio):.3g}, min {ratio.min():.3g}, max {ratio.max():.3g}",
              "  the gradient itself (mean of the reparameterization samples), "
              f"mean |d/dmu| {np.abs(result['mean']['reparameterization'][:, :latent]).mean():.4g}",
              "",
              "unbiasedness: mean of (estimator - reparameterization) in standard errors, "
              "max |z| over all images and dimensions:"]
    for name in ESTIMATORS[1:]:
        z = np.abs(result["diff_z"][name])
        lines.append(f"  {name:<28} max |z| {z.max():.2f} over {z.size} components "
                     f"({np.mean(z > 3) * 100:.1f}% above 3)")
    signal = result["encoder_signal"]
    lines += ["", "minibatch gradient of the encoder's parameters (batch = the images above, "
              f"one z per image), squared norm of its expectation {signal:.4g}:",
              f"  {'estimator':<28}{'tr Cov':>12}{'tr Cov / ||E g||^2':>20}"]
    for name in ESTIMATORS:
        v = result["encoder_variance"][name]
        lines.append(f"  {name:<28}{v:12.4g}{v / signal:20.4g}")
    return "\n".join(lines)


# ------------------------------------------------------------------ main --

def parser():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-dir", default=None, metavar="DIR",
                   help="directory holding the four MNIST IDX files (default: the download cache)")
    p.add_argument("--model", default=None, metavar="FILE",
                   help="a saved VAE (model file or run checkpoint.npz); default: train one")
    p.add_argument("--epochs", type=int, default=2,
                   help="epochs of training when no --model is given (default: %(default)s)")
    p.add_argument("--limit", type=int, default=None, metavar="N",
                   help="train on the first N training images only (default: all)")
    p.add_argument("--examples", type=int, default=100,
                   help="test images to measure on (default: %(default)s)")
    p.add_argument("--samples", type=int, default=1000,
                   help="samples of z per image (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="(default: %(default)s)")
    p.add_argument("--out", default=str(Path("runs") / "gradient_variance"), metavar="DIR",
                   help=f"folder for {PLOT_NAME}, created if missing (default: %(default)s)")
    p.add_argument("--overwrite", action="store_true",
                   help=f"replace {PLOT_NAME} in --out if it is there")
    return p


def main(argv=None):
    args = parser().parse_args(argv)
    for name in ("epochs", "examples", "limit"):
        value = getattr(args, name)
        if value is not None and value < 1:
            print(f"error: --{name} must be positive, got {value}", file=sys.stderr)
            return 2
    if args.samples < 2:
        print(f"error: --samples must be at least 2, got {args.samples}", file=sys.stderr)
        return 2
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        print(f"error: --out {out} is a file, not a folder", file=sys.stderr)
        return 2
    plot_path = out / PLOT_NAME
    if plot_path.exists() and not args.overwrite:
        print(f"error: --out: {plot_path} exists; pass --overwrite to replace it, or another "
              "--out", file=sys.stderr)
        return 2
    try:
        data = load_data("mnist", args.data_dir)
    except RunError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.model:
        try:
            model = VAE.load(args.model)
        except (OSError, ValueError) as e:
            print(f"error: --model: {e}", file=sys.stderr)
            return 2
        if model.kind != "vae" or model.input_dim != data.x_test.shape[1]:
            print(f"error: --model {args.model} is not a VAE for {data.x_test.shape[1]}-pixel "
                  "images", file=sys.stderr)
            return 2
        print(f"model: {args.model}")
    else:
        model = train_default_vae(data.x_train[:args.limit], args.epochs, args.seed)
    x = to_unit_interval(data.x_test[:args.examples], np.float64)
    start = time.perf_counter()
    result = measure(model, x, args.samples, np.random.default_rng((args.seed, 2)))
    print(report(result))
    print(f"\n(measured in {time.perf_counter() - start:.1f} s)")
    from numpyvae.run.plots import plot_gradient_variance  # matplotlib only when plotting
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        print(f"error: --out: cannot create {out}: {e.strerror}", file=sys.stderr)
        return 2
    print(f"wrote {plot_gradient_variance(plot_path, result)}")
    return 0


def train_default_vae(x_train, epochs, seed):
    """The default VAE of demos/train_mnist.py, trained ``epochs`` epochs on grey levels."""
    config = RunConfig(epochs=epochs, seed=seed)
    model = build_model(config, x_train.shape[1])
    optimizer = build_optimizer(config, model.params)
    rng = np.random.default_rng((seed, 1))
    for epoch in range(1, epochs + 1):
        stats = train_epoch(model, optimizer, x_train, rng, batch_size=config.batch_size,
                            epoch=epoch)
        print(f"training the default VAE: epoch {epoch}/{epochs}, train -ELBO "
              f"{stats['loss']:.2f} ({stats['seconds']:.1f} s)")
    return model


if __name__ == "__main__":
    sys.exit(main())
