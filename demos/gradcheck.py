"""Check every hand-written gradient against central differences, operation by operation.

    python demos/gradcheck.py                                   # tanh, Bernoulli, beta 0.5
    python demos/gradcheck.py --activation relu --likelihood gaussian-learned --beta 1
    python demos/gradcheck.py --hidden 8,6 --latent 3 -x        # -x: stop at the first failure
    python demos/gradcheck.py --objective iwae --k 5 --sections 2   # one objective, one section

A diagnostic, in the order a bug would propagate, so that the first failing
row names the broken operation:

1. every forward/backward pair on its own (the linear layer, each
   activation, the MLP, the reparameterization, each KL, each likelihood, the
    full-covariance posterior's operations):
   its forward's output against an independent formula, its cache against
   what its backward reads (recomputed here, so a wrong cache is reported at
   the forward that wrote it), its backward against central differences of
   its forward; the linear layer's and the MLP's backward also run twice
   into one reused gradient buffer (out=), as training runs them;
2. one backward pass per objective (objectives.py's ``trace``): elbo with
   k = 1 and k > 1, elbo-mc and iwae with k > 1, wake-sleep; first its
   forward values (z, log p(x|z), the log-weights, the IWAE weights, the
   loss, the bound) against the objective written again, then every
   intermediate gradient against central differences of the loss as a
   function of that intermediate;
3. every parameter tensor of whole models (the VAE under each objective,
   the Autoencoder), and each one's gradients written twice into one
   reused buffer;
4. the optimizers, each update against the textbook formula, without and
   with weight decay, on one buffer and tensor by tensor.
5. two stochastic layers (two_layer_objectives.py): every intermediate of
   one backward pass per objective, as in 2, then every parameter tensor
   under every objective, as in 3.

Each row names the function it checks as it is named in the code, the
largest relative error |a - n| / max(|a| + |n|, floor) (floor 1e-8; in
sections 2 and 3, 1e-4 |loss|, below which central differences cannot
resolve an entry to 1e-6, see loss_floor), the ratio
analytic / numerical where that is one constant (2.00: a factor of 2 too
many; -1.00: a flipped sign; 0.00: a missing term), and PASS or FAIL.
Everything runs in float64 with a fixed seed; eps is held fixed, so the VAE
loss is a deterministic function of its inputs.

Adding a section: write ``check_something(report, args, rng)``, which adds
rows through ``report.forward``, ``report.value``, ``report.backward`` or
``report.guarded`` (``report.subsection`` names a run within it), and
append ``Section(title, check_something)`` to SECTIONS; it is numbered,
run, counted and selectable with --sections like the others.

Exit status: 0 if every row passes, 1 otherwise, 2 for bad flags.
"""

import argparse
import os
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")  # read when numpy loads: docs/benchmarks.md

try:
    import numpyvae  # noqa: F401  (installed, or run from the source tree below)
except ImportError:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
from scipy import stats
from scipy.special import expit, logsumexp

from numpyvae import evaluate, objectives, optim, two_layer_objectives
from numpyvae.ops import full_gaussian, gaussian, layers, likelihoods
from numpyvae.model import mlp
from numpyvae.model.autoencoder import Autoencoder
from numpyvae.model.full_covariance_vae import FullCovarianceVAE
from numpyvae.gradcheck import check_backward, check_parameter_gradients, constant_ratio, relative_error
from numpyvae.model.params import FlatParams
from numpyvae.model.two_layer_vae import TwoLayerVAE
from numpyvae.model.vae import VAE

TOL = 1e-6          # backward rows: max relative error against central differences
FLOOR = 1e-4        # sections 2 and 3: entries below FLOOR x |loss| count in absolute terms
VALUE_TOL = 1e-10   # forward rows, caches and optimizer updates: against a formula evaluated another way
STEP = 1e-5         # central-difference step
SAMPLE_SEED = 7     # of the Generators that draw a sample x ~ p(x|z) twice, by the library and here

LIKELIHOODS = {"bernoulli": ("bernoulli", 1.0), "gaussian": ("gaussian", 0.5),
               "gaussian-learned": ("gaussian", "learned"),
               "gaussian-sigmoid": ("gaussian-sigmoid", "learned")}


@dataclass
class Row:
    """One line of the report."""

    function: str        # as named in the code, e.g. "gaussian.reparameterize_backward"
    quantity: str        # what is compared, e.g. "dlogvar"
    error: float         # max relative error (inf when the check raised)
    ratio: float | None  # analytic / numerical when constant
    passed: bool
    note: str = ""       # the exception, when the check raised
    section: int = 0     # set by Report.add: the section's number
    run: str = ""        # set by Report.add: the run within the section, e.g. "iwae, k 3"


class StopAtFirstFailure(Exception):
    pass


class Report:
    """Collects rows, prints each as it comes, and stops at the first failure if asked."""

    def __init__(self, stream, first_failure):
        self.rows, self.stream, self.first_failure = [], stream, first_failure
        self.current, self.run = 0, ""     # the section and the run within it being checked

    def add(self, row):
        row = replace(row, section=self.current, run=self.run)
        self.rows.append(row)
        ratio = "" if row.ratio is None else f"{row.ratio:.2f}"
        error = "raised" if row.error == np.inf else f"{row.error:.1e}"
        print(f"  {row.function:<57}{row.quantity:<25}{error:>8}{ratio:>7}  "
              f"{'PASS' if row.passed else 'FAIL'}{'  ' + row.note if row.note else ''}",
              file=self.stream)
        if self.first_failure and not row.passed:
            raise StopAtFirstFailure

    def section(self, number, title):
        self.current, self.run = number, ""
        print(f"\n{number}. {title}", file=self.stream)
        print(f"  {'function':<57}{'checks':<25}{'rel err':>8}{'ratio':>7}  result",
              file=self.stream)

    def subsection(self, run):
        """Name a run within the section (e.g. one objective); its rows carry the name."""
        self.run = run
        print(f"  -- {run}", file=self.stream)

    def guarded(self, function, quantity, check):
        """Run check() -> rows; an exception becomes one FAIL row naming it."""
        try:
            rows = check()
        except StopAtFirstFailure:
            raise
        except Exception as e:  # noqa: BLE001 (a broken operation may raise anything)
            rows = [Row(function, quantity, np.inf, None, False,
                        f"{type(e).__name__}: {e}".splitlines()[0][:80])]
        for row in rows:
            self.add(row)

    def value(self, function, quantity, got, expected, tol=VALUE_TOL):
        """A forward value (or update) against the same quantity computed another way."""
        def check():
            value = got()
            error = relative_error(value, expected)
            return [Row(function, quantity, error, constant_ratio(value, expected), error <= tol)]
        self.guarded(function, quantity, check)

    def forward(self, function, forward, inputs, out, cache, quantity="out", variant=""):
        """Two rows for forward(*inputs) -> (out, cache): its output against ``out``,
        and its cache against ``cache``, what its backward reads (its docstring
        says what), computed here another way.  The forward runs on copies of
        the inputs; one that overwrites an input fails the cache row."""
        def check():
            copies = {name: np.array(value, copy=True) for name, value in inputs.items()}
            got_out, got_cache = forward(*copies.values())
            error = relative_error(got_out, out)
            rows = [Row(function, f"{quantity} {variant}".strip(), error,
                        constant_ratio(got_out, out), error <= VALUE_TOL)]
            cache_error, note = compare_caches(got_cache, cache)
            changed = [name for name, value in inputs.items()
                       if not np.array_equal(copies[name], value)]
            if changed:
                cache_error, note = np.inf, f"the forward overwrote its input {changed[0]}"
            rows.append(Row(function, f"cache {variant}".strip(), cache_error, None,
                            cache_error <= VALUE_TOL, note))
            return rows
        self.guarded(function, "forward", check)

    def backward(self, function, forward, backward, inputs, wrt=None, variant="", floor=1e-8):
        """One row per checked input: backward against central differences of forward."""
        def check():
            return [Row(function, f"d{r.name} {variant}".strip(), r.max_rel_error, r.ratio,
                        r.passed)
                    for r in check_backward(forward, backward, inputs, wrt=wrt, tol=TOL, h=STEP,
                                            floor=floor)]
        self.guarded(function, "backward", check)


def cache_leaves(cache):
    """The arrays of a cache (nested tuples and lists of arrays, or None), in order."""
    if isinstance(cache, (tuple, list)):
        return [leaf for part in cache for leaf in cache_leaves(part)]
    return [cache]


def compare_caches(got, expected):
    """(max relative error over the cache's arrays, a note): inf and a note saying
    where when the two differ in structure or shape."""
    got, expected = cache_leaves(got), cache_leaves(expected)
    if len(got) != len(expected):
        return np.inf, f"the cache holds {len(got)} arrays, its backward reads {len(expected)}"
    error = 0.0
    for i, (g, e) in enumerate(zip(got, expected)):
        if (g is None) != (e is None):
            return np.inf, f"cache entry {i} is {'None' if g is None else 'an array'}, expected " \
                           f"{'None' if e is None else 'an array'}"
        if e is None:
            continue
        if np.shape(g) != np.shape(e):
            return np.inf, f"cache entry {i} has shape {np.shape(g)}, expected {np.shape(e)}"
        error = max(error, relative_error(g, e))
    return error, ""


# ------------------------------------------------------- 1. operations --

ACTIVATION_REFERENCE = {   # name -> an independent formula for the forward
    "relu": lambda x: np.where(x > 0, x, 0.0),
    "leaky_relu": lambda x: np.where(x > 0, x, layers.LEAKY_RELU_SLOPE * x),
    "tanh": lambda x: (np.exp(x) - np.exp(-x)) / (np.exp(x) + np.exp(-x)),
    "sigmoid": expit,
    "softplus": lambda x: np.logaddexp(0, x),
}
# name -> what its backward reads as its cache, as its forward's docstring says
# (and its backward's second argument is named): the forward's output, or its input
ACTIVATION_CACHE = {"relu": "out", "leaky_relu": "x", "tanh": "out", "sigmoid": "out",
                    "softplus": "x"}


def activation_reference(name, x):
    """(out, the cache its backward reads) for activation ``name``, from the formulas above."""
    out = ACTIVATION_REFERENCE[name](x)
    return out, out if ACTIVATION_CACHE[name] == "out" else x


def check_operations(report, args, rng):
    n, d, h, latent = 4, 5, 3, 3

    def normal(*shape):
        return rng.standard_normal(shape)

    # the linear layer, textbook and fast form; each backward also twice into
    # one pair of gradient buffers (dW, db), as the MLP runs it at every step
    x, W, b = normal(n, d), normal(d, h), normal(h)
    report.forward("layers.linear_forward", layers.linear_forward, {"x": x, "W": W, "b": b},
                   np.einsum("nd,dh->nh", x, W) + b, (x, W))
    for name in ("linear_backward", "linear_backward_fast"):
        backward = getattr(layers, name)
        report.backward(f"layers.{name}", layers.linear_forward,
                        lambda dout, cache, backward=backward: backward(dout, cache),
                        {"x": x, "W": W, "b": b})
        report.backward(f"layers.{name}", layers.linear_forward,
                        lambda dout, cache, backward=backward: twice_into_buffers(backward, dout, cache),
                        {"x": x, "W": W, "b": b}, variant="(out= reused)")

    # every activation: forward and cache against formulas, backward against
    # differences; inputs at least 0.1 from 0, the kink of ReLU and LeakyReLU
    a = normal(n, h)
    a = np.sign(a) * (np.abs(a) + 0.1)
    for name in layers.ACTIVATIONS:
        forms = [f"{name}_forward"] + ([f"{name}_forward_fast"] if hasattr(layers, f"{name}_forward_fast") else [])
        for form in forms:
            report.forward(f"layers.{form}", getattr(layers, form), {"x": a},
                           *activation_reference(name, a))
        report.backward(f"layers.{name}_backward", lambda x, f=f"{name}_forward": getattr(layers, f)(x),
                        lambda dout, cache, name=name: getattr(layers, f"{name}_backward")(dout, cache),
                        {"x": a})

    check_mlp(report, args, rng)

    # the reparameterization
    mu, logvar, eps = normal(n, latent), rng.uniform(-1, 1, (n, latent)), normal(n, latent)
    std = np.sqrt(np.exp(logvar))
    report.forward("gaussian.reparameterize_forward", gaussian.reparameterize_forward,
                   {"mu": mu, "logvar": logvar, "eps": eps}, mu + std * eps, (std, eps), "z")
    report.backward("gaussian.reparameterize_backward",
                    lambda *args: gaussian.reparameterize_forward(*args),
                    lambda dz, cache: gaussian.reparameterize_backward(dz, cache),
                    {"mu": mu, "logvar": logvar, "eps": eps}, wrt=("mu", "logvar"))

    # log-densities at a sample: log p(z) = log N(z; 0, I), and log q(z|x) at
    # z = mu + std * eps, whose backward gives the partials of log N(z; mu, var)
    # with respect to z, mu and logvar as independent variables
    z = mu + np.exp(logvar / 2) * eps
    report.forward("gaussian.standard_normal_log_density_forward",
                   gaussian.standard_normal_log_density_forward, {"z": z},
                   stats.norm.logpdf(z).sum(axis=1), z, "log N(z; 0, I)")
    report.backward("gaussian.standard_normal_log_density_backward",
                    lambda *args: gaussian.standard_normal_log_density_forward(*args),
                    lambda dlogp, cache: gaussian.standard_normal_log_density_backward(dlogp, cache),
                    {"z": z})
    report.forward("gaussian.log_density_at_sample_forward", gaussian.log_density_at_sample_forward,
                   {"eps": eps[None], "logvar": logvar},
                   stats.norm.logpdf(z, mu, std).sum(axis=1)[None], (eps[None], std), "log q(z|x)")
    report.backward("gaussian.log_density_at_sample_backward",
                    lambda z, mu, logvar: gaussian.log_density_at_sample_forward(
                        (z - mu) / np.exp(logvar / 2), logvar),
                    lambda dlogq, cache: gaussian.log_density_at_sample_backward(dlogq, cache),
                    {"z": z, "mu": mu, "logvar": logvar})

    # the KL divergences, forward against the closed form written with variances
    var = np.exp(logvar)
    report.forward("gaussian.kl_standard_normal_forward", gaussian.kl_standard_normal_forward,
                   {"mu": mu, "logvar": logvar},
                   np.sum(np.log(1 / np.sqrt(var)) + (var + mu ** 2) / 2 - 0.5, axis=1), (mu, var),
                   "KL")
    report.backward("gaussian.kl_standard_normal_backward",
                    lambda *args: gaussian.kl_standard_normal_forward(*args),
                    lambda dkl, cache: gaussian.kl_standard_normal_backward(dkl, cache),
                    {"mu": mu, "logvar": logvar})
    mu_p, logvar_p = normal(n, latent), rng.uniform(-1, 1, (n, latent))
    var_p = np.exp(logvar_p)
    report.forward("gaussian.kl_diag_gaussians_forward", gaussian.kl_diag_gaussians_forward,
                   {"mu_q": mu, "logvar_q": logvar, "mu_p": mu_p, "logvar_p": logvar_p},
                   np.sum(np.log(np.sqrt(var_p / var)) + (var + (mu - mu_p) ** 2) / (2 * var_p) - 0.5,
                          axis=1),
                   (mu - mu_p, 1 / var_p, (var + (mu - mu_p) ** 2) / var_p, logvar, logvar_p), "KL")
    report.backward("gaussian.kl_diag_gaussians_backward",
                    lambda *args: gaussian.kl_diag_gaussians_forward(*args),
                    lambda dkl, cache: gaussian.kl_diag_gaussians_backward(dkl, cache),
                    {"mu_q": mu, "logvar_q": logvar, "mu_p": mu_p, "logvar_p": logvar_p})

    # the Gaussian log-density, and every likelihood
    xg, mean, lv = normal(n, d), normal(n, d), rng.uniform(-1, 1, (n, d))
    report.forward("gaussian.gaussian_log_density_forward", gaussian.gaussian_log_density_forward,
                   {"x": xg, "mean": mean, "logvar": lv},
                   stats.norm.logpdf(xg, mean, np.exp(lv / 2)).sum(axis=1), (xg - mean, 1 / np.exp(lv)),
                   "log N")
    report.backward("gaussian.gaussian_log_density_backward",
                    lambda *args: gaussian.gaussian_log_density_forward(*args),
                    lambda dlogp, cache: gaussian.gaussian_log_density_backward(dlogp, cache),
                    {"x": xg, "mean": mean, "logvar": lv}, wrt=("mean", "logvar"))
    xb, logits = (rng.random((n, d)) < 0.5).astype(float), rng.uniform(-3, 3, (n, d))
    caches = {"BernoulliLikelihood": (xb, logits),   # the fast form keeps x - 1/2 and 1 + e^-|l|
              "BernoulliLikelihoodFast": (xb - 0.5, logits, 1 + np.exp(-np.abs(logits)))}
    for cls, cache in caches.items():
        check_likelihood(report, f"likelihoods.{cls}", lambda cls=cls: getattr(likelihoods, cls)(),
                         xb, logits, stats.bernoulli.logpmf(xb, expit(logits)).sum(axis=1),
                         cache, lambda g: (g.random(logits.shape) < expit(logits)).astype(float))
    check_likelihood(report, "likelihoods.GaussianLikelihood", lambda: likelihoods.GaussianLikelihood(0.5),
                     xg, mean, stats.norm.logpdf(xg, mean, np.sqrt(0.5)).sum(axis=1),
                     (xg - mean, np.array(1 / 0.5)),
                     lambda g: mean + np.sqrt(0.5) * g.standard_normal(mean.shape), "(var 0.5)")
    out = np.concatenate([mean, lv], axis=1)
    check_likelihood(report, "likelihoods.GaussianLikelihood",
                     lambda: likelihoods.GaussianLikelihood("learned"), xg, out,
                     stats.norm.logpdf(xg, mean, np.exp(lv / 2)).sum(axis=1),
                     (xg - mean, 1 / np.exp(lv)),
                     lambda g: mean + np.exp(lv / 2) * g.standard_normal(mean.shape), "(learned)")
    xs = rng.random((n, d))        # data in (0, 1) for the Frey Face decoder, means sigmoid(a)
    for obs_var, decoder_out, var, variant in ((0.5, mean, np.array(0.5), "(var 0.5)"),
                                               ("learned", out, np.exp(lv), "(learned)")):
        check_likelihood(report, "likelihoods.SigmoidGaussianLikelihood",
                         lambda obs_var=obs_var: likelihoods.SigmoidGaussianLikelihood(obs_var),
                         xs, decoder_out, stats.norm.logpdf(xs, expit(mean), np.sqrt(var)).sum(axis=1),
                         ((xs - expit(mean), 1 / var), expit(mean)),
                         lambda g, var=var: expit(mean) + np.sqrt(var) * g.standard_normal(mean.shape),
                         variant)

    check_full_covariance_operations(report, rng, n, latent + 1)

def twice_into_buffers(backward, dout, cache):
    """A linear backward run twice into the same (dW, db), as at every training
    step: what it returns the second time must not depend on the first."""
    x, W = cache
    dW, db = np.zeros_like(W), np.zeros(W.shape[1])
    backward(dout, cache, dW, db)
    return backward(dout, cache, dW, db)


def check_likelihood(report, name, make, x, out, expected, expected_cache, expected_sample,
                     variant=""):
    """log_prob_forward against scipy (and its cache), log_prob_backward against
    differences (w.r.t. out), and sample (the sleep phase's dream) against
    expected_sample(rng), the draw its docstring writes, from a Generator seeded alike."""
    report.forward(f"{name}.log_prob_forward", lambda x, out: make().log_prob_forward(x, out),
                   {"x": x, "out": out}, expected, expected_cache, "log p", variant)
    report.value(f"{name}.sample", f"x ~ p(x|z) {variant}".strip(),
                 lambda: make().sample(out, np.random.default_rng(SAMPLE_SEED)),
                 expected_sample(np.random.default_rng(SAMPLE_SEED)))
    report.backward(f"{name}.log_prob_backward", lambda x, out: make().log_prob_forward(x, out),
                    lambda dlogp, cache: make().log_prob_backward(dlogp, cache),
                    {"x": x, "out": out}, wrt=("out",), variant=variant)


def mlp_reference(network, params, x):
    """(out, the cache MLP.backward reads) of an MLP, with the formulas above:
    per layer, (its input h, W) for the linear backward and the activation's cache
    (None after the last, linear, layer)."""
    h, cache = x, []
    n_layers = len(network.sizes) - 1
    for i in range(n_layers):
        W, b = network.layer_params(params, i)
        pre = np.einsum("nd,dh->nh", h, W) + b
        if i < n_layers - 1:
            out, act_cache = activation_reference(network.activation, pre)
        else:
            out, act_cache = pre, None
        cache.append(((h, W), act_cache))
        h = out
    return h, cache


def check_mlp(report, args, rng, n=4, sizes=(5, 4, 3, 2)):
    """An MLP of the chosen activation: forward and cache, dx, and dW, db for every
    layer written twice into one reused gradient buffer (as at every training step)."""
    network = mlp.MLP("net", sizes, args.activation)
    params = FlatParams(network.param_shapes(), np.float64)
    network.init_params(params, rng)
    for name, p in params.items():
        if name.endswith(".b"):
            p[...] = rng.uniform(0.05, 0.2, p.shape) * rng.choice([-1.0, 1.0], p.shape)
    x = rng.standard_normal((n, sizes[0]))
    if args.activation in ("relu", "leaky_relu"):
        x = kink_free_input(network, params, x, rng)
    act = f"({args.activation})"
    report.forward("mlp.MLP.forward", lambda x: network.forward(params, x), {"x": x},
                   *mlp_reference(network, params, x), variant=act)
    report.backward("mlp.MLP.backward", lambda x: network.forward(params, x),
                    lambda dout, cache: network.backward(params.zeros_like(), dout, cache), {"x": x},
                    variant=act)
    dout = rng.standard_normal((n, sizes[-1]))
    buffer = params.zeros_like()

    def loss_and_grads():
        out, cache = network.forward(params, x)
        network.backward(buffer, dout, cache)
        network.backward(buffer, dout, cache)
        return np.sum(out * dout), buffer

    def check():
        return [Row("mlp.MLP.backward", f"d{name} (out= reused)", err, None, err <= TOL)
                for name, (_, err) in check_parameter_gradients(params, loss_and_grads, STEP).items()]
    report.guarded("mlp.MLP.backward", "parameters", check)


def kink_free_input(network, params, x, rng):
    """x drawn again until every hidden pre-activation is KINK_MARGIN from 0."""
    for _ in range(1000):
        caches = network.forward(params, x)[1]
        pre = [h @ W + network.layer_params(params, i)[1] for i, ((h, W), _) in enumerate(caches[:-1])]
        if min(np.min(np.abs(p)) for p in pre) >= KINK_MARGIN:
            return x
        x = rng.standard_normal(x.shape)
    raise SystemExit("no input keeps every ReLU input off its kink; try another --seed")


# ------------------------------------------------ 2. one backward pass --

KINK_MARGIN = 1e-3   # |pre-activation| >= this for ReLU/LeakyReLU: a 1e-5 step never crosses 0


def small_model(cls, args, rng, x, eps=None, dream=False):
    """A float64 model of the chosen size, with small random nonzero biases.

    ReLU and LeakyReLU have a kink at 0, where a central difference averages
    two slopes and disagrees with any backward.  So, for those, the biases are
    drawn again until every hidden pre-activation the checks will see (the
    encoder's on x, the decoder's on z for every sample of eps, and with
    ``dream`` those of the sleep phase's dream) is at least KINK_MARGIN from 0.
    """
    likelihood, obs_var = LIKELIHOODS[args.likelihood]
    model = cls(args.input_dim, args.hidden, args.latent, likelihood, obs_var, args.activation,
                np.float64, args.seed)
    return with_small_biases(model, rng, args.activation,
                             lambda: kink_distance(model, x, eps, dream, args.seed))


def with_small_biases(model, rng, activation, distance):
    """``model`` with small random nonzero biases, drawn again (for ReLU and
    LeakyReLU) until distance(), the smallest |pre-activation| the checks
    will see, is at least KINK_MARGIN."""
    for _ in range(1000):
        for name, p in model.params.items():
            if name.endswith(".b"):
                p[...] = rng.uniform(0.05, 0.2, p.shape) * rng.choice([-1.0, 1.0], p.shape)
        if activation not in ("relu", "leaky_relu") or distance() >= KINK_MARGIN:
            return model
    raise SystemExit("no biases keep every ReLU input off its kink; try another --seed")


def kink_distance(model, x, eps, dream, seed):
    """The smallest |pre-activation| of a hidden layer over the inputs the checks use."""
    if model.kind == "autoencoder":
        z = model.encode(x)
    else:                                 # a VAE: z from its posterior, as the objectives draw it
        samples = eps.reshape(-1, x.shape[0], model.latent_dim)
        z = objectives.sampled_forward(model, x, samples).z.reshape(-1, model.latent_dim)
    inputs = [(model.encoder, x), (model.decoder, z)]
    if dream:
        trace = {}
        objectives.loss_and_grads(model, x, objective="wake-sleep", eps=eps, trace=trace,
                                  rng=np.random.default_rng(seed))
        inputs += [(model.encoder, trace["x_dream"]), (model.decoder, trace["z_dream"])]
    return pre_activation_distance(model.params, inputs)


def pre_activation_distance(params, inputs):
    """The smallest |pre-activation| of a hidden layer of each (network, input) of ``inputs``."""
    distance = np.inf
    for network, inp in inputs:
        caches = network.forward(params, inp)[1]
        for i, ((h, W), _) in enumerate(caches[:-1]):            # the hidden layers
            pre = h @ W + params[f"{network.prefix}.{i}.b"]
            distance = min(distance, float(np.min(np.abs(pre))))
    return distance


def model_data(args, rng, k=1):
    """A batch x (N, D) valid for the likelihood, and eps: (N, L) for k = 1, else (k, N, L)."""
    if args.likelihood == "bernoulli":
        x = (rng.random((args.batch, args.input_dim)) < 0.5).astype(np.float64)
    elif args.likelihood == "gaussian-sigmoid":
        x = rng.random((args.batch, args.input_dim))
    else:
        x = rng.standard_normal((args.batch, args.input_dim))
    eps = rng.standard_normal((k, args.batch, args.latent))
    return x, eps[0] if k == 1 else eps


OBJECTIVE_FUNCTIONS = {"elbo": "elbo_closed_form_kl", "elbo-mc": "elbo_sampled_kl", "iwae": "iwae",
                       "wake-sleep": "wake_sleep"}


class ObjectiveReference:
    """The objective written again, independently of objectives.py, as a
    function of any intermediate of the chain (the densities written out):

        loss(z, mu, logvar)  with  log p(x|z) = likelihood(x, decoder(z)),
                                   log p(z) = log N(z; 0, I),  log q(z|x) = log N(z; mu, var),
                                   KL = closed form of KL(N(mu, var) || N(0, I))

    z is an argument of its own, so a derivative with respect to z holds mu
    and logvar fixed, and one with respect to mu at fixed z is the "direct"
    part; z(mu, logvar) = mu + exp(logvar / 2) eps gives the rest.  For
    wake-sleep, ``loss`` is the reported -ELBO (recon + KL), whose gradient
    with respect to log p(x|z) is the wake phase's; ``sleep_loss`` the sleep
    phase's.
    """

    def __init__(self, model, x, eps, objective, beta):
        self.model, self.x, self.eps, self.objective = model, x, eps, objective
        self.beta = beta if objective in ("elbo", "elbo-mc") else 1.0

    # the forward pass, each piece from the one before
    def encoder_out(self, x=None):
        return self.model.encoder.forward(self.model.params, self.x if x is None else x)[0]

    def mu_logvar(self, x=None):
        h = self.encoder_out(x)
        latent = h.shape[1] // 2
        return h[:, :latent], h[:, latent:]

    def z(self, mu, logvar):
        return mu + np.exp(logvar / 2) * self.eps

    def decoder_out(self, z):
        k, n, latent = z.shape
        return self.model.decoder.forward(self.model.params, z.reshape(k * n, latent))[0] \
            .reshape(k, n, -1)

    def logpx(self, decoder_out):
        return self.model.likelihood.log_prob_forward(self.x, decoder_out)[0]

    @staticmethod
    def logpz(z):
        return ObjectiveReference.logq(z, 0.0, 0.0)                               # (k, N)

    @staticmethod
    def logq(z, mu, logvar):
        """log N(z; mu, diag(exp(logvar))) written out (scipy's logpdf, the same
        number, costs 50 us a call here, where it is called thousands of times)."""
        return -0.5 * np.sum((z - mu) ** 2 / np.exp(logvar) + logvar + np.log(2 * np.pi),
                             axis=-1)                                             # (k, N)

    @staticmethod
    def kl(mu, logvar):
        return 0.5 * np.sum(np.exp(logvar) + mu ** 2 - 1 - logvar, axis=-1)      # (N,)

    # the objective from the log-densities
    def from_log_terms(self, logpx, logpz, logq, mu, logvar):
        if self.objective in ("elbo", "wake-sleep"):
            return -np.mean(logpx) + self.beta * np.mean(self.kl(mu, logvar))
        if self.objective == "elbo-mc":
            return np.mean(-logpx + self.beta * (logq - logpz))
        k = logpx.shape[0]
        return -np.mean(logsumexp(logpx + logpz - logq, axis=0) - np.log(k))

    def from_logpx(self, logpx, z, mu, logvar):
        return self.from_log_terms(logpx, self.logpz(z), self.logq(z, mu, logvar), mu, logvar)

    def loss(self, z, mu, logvar):
        return self.from_logpx(self.logpx(self.decoder_out(z)), z, mu, logvar)

    def from_encoder_out(self, h):
        latent = h.shape[1] // 2
        mu, logvar = h[:, :latent], h[:, latent:]
        return self.loss(self.z(mu, logvar), mu, logvar)

    # what loss_and_grads reports, and objectives.bound
    def terms(self):
        """{"loss", "recon", "kl"} as loss_and_grads reports them."""
        mu, logvar = self.mu_logvar()
        z = self.z(mu, logvar)
        logpx, logpz, logq = self.logpx(self.decoder_out(z)), self.logpz(z), self.logq(z, mu, logvar)
        closed_form = self.objective in ("elbo", "wake-sleep")
        kl = np.mean(self.kl(mu, logvar)) if closed_form else np.mean(logq - logpz)
        return {"loss": self.from_log_terms(logpx, logpz, logq, mu, logvar),
                "recon": -np.mean(logpx), "kl": kl}

    def log_weights(self):
        mu, logvar = self.mu_logvar()
        z = self.z(mu, logvar)
        return self.logpx(self.decoder_out(z)) + self.logpz(z) - self.logq(z, mu, logvar)

    def bound(self):
        """The per-example bound objectives.bound gives (beta = 1), (N,)."""
        if self.objective in ("elbo", "wake-sleep"):
            mu, logvar = self.mu_logvar()
            return np.mean(self.logpx(self.decoder_out(self.z(mu, logvar))), axis=0) - self.kl(mu, logvar)
        logw = self.log_weights()
        if self.objective == "elbo-mc":
            return np.mean(logw, axis=0)
        return logsumexp(logw, axis=0) - np.log(logw.shape[0])

    def sleep_loss(self, z_dream, mu, logvar):
        """The sleep phase's -(1/n) sum_n log N(z_n; mu_n, var_n) at the encoder's output."""
        return -np.mean(self.logq(z_dream, mu, logvar))


def tail(network, params, start):
    """The layers start, start+1, ... of an MLP as an MLP of their own, with
    a parameter dict that renames layer start + j to j."""
    sizes = network.sizes[start:]
    names = {f"{network.prefix}.{j}.{w}": params[f"{network.prefix}.{start + j}.{w}"]
             for j in range(len(sizes) - 1) for w in "Wb"}
    return mlp.MLP(network.prefix, sizes, network.activation), names


def check_layer_inputs(report, network, params, x_in, dout, loss_of_output, floor):
    """For every layer i >= 1 of an MLP, from the last back: dL/d(its input), from
    MLP.backward on the layers i.. given dout, against central differences of
    loss_of_output(layers i..(input))."""
    caches = network.forward(params, x_in)[1]
    for i in reversed(range(1, len(caches))):
        layer_input = caches[i][0][0]                       # linear_forward's cache: (x, W)
        part, part_params = tail(network, params, i)

        def forward(h, part=part, part_params=part_params):
            out, cache = part.forward(part_params, h)
            return loss_of_output(out), cache

        def backward(_, cache, part=part, part_params=part_params):
            scratch = {name: np.zeros_like(p) for name, p in part_params.items()}
            return part.backward(scratch, dout, cache)
        report.backward("mlp.MLP.backward", forward, backward,
                        {f"({network.prefix}.{i} input)": layer_input}, floor=floor)


def backward_pass_runs(args):
    """(objective, k) of every run of section 2: with --objective all, the ELBO
    with k = 1 and every objective with k = --k (wake-sleep has k = 1)."""
    objectives_run = objectives.OBJECTIVES if args.objective == "all" else (args.objective,)
    runs = [("elbo", 1)] if args.objective == "all" else []
    runs += [(objective, 1 if objective == "wake-sleep" else args.k) for objective in objectives_run]
    return list(dict.fromkeys(runs))


def check_backward_passes(report, args, rng):
    """One backward pass per run of backward_pass_runs, each a subsection."""
    for objective, k in backward_pass_runs(args):
        report.subsection(f"{objective}, k {k}")
        check_backward_pass(report, args, rng, objective, k)


def check_backward_pass(report, args, rng, objective, k):
    """The forward values, then every intermediate gradient, of one backward
    pass of ``objective`` (objectives.py's trace)."""
    x, eps = model_data(args, rng, k)
    model = small_model(VAE, args, rng, x, eps, dream=objective == "wake-sleep")
    beta = args.beta if objective in ("elbo", "elbo-mc") else 1.0
    trace, terms = {}, {}

    def backward_pass():
        sleep_rng = {"rng": np.random.default_rng(args.seed)} if objective == "wake-sleep" else {}
        terms.update(objectives.loss_and_grads(model, x, objective=objective, k=k, beta=beta,
                                               eps=eps, trace=trace, **sleep_rng)[0])
        return []
    report.guarded("objectives.loss_and_grads", "trace", backward_pass)
    if not trace:
        return
    eps = eps.reshape(k, x.shape[0], -1)
    ref = ObjectiveReference(model, x, eps, objective, beta)
    objective_fn = f"objectives.{OBJECTIVE_FUNCTIONS[objective]}"

    def checks():      # a trace that lacks a value, or of the wrong shape, fails a row here
        check_forward_values(report, args, ref, model, trace, terms, objective_fn)
        if objective == "wake-sleep":
            check_wake_sleep_gradients(report, ref, model, trace)
        else:
            check_chain_gradients(report, ref, model, trace, objective_fn)
        return []
    report.guarded(objective_fn, "trace", checks)


def check_forward_values(report, args, ref, model, trace, terms, objective_fn):
    """The pass's forward values against ObjectiveReference: each piece of
    objectives.sampled_forward (mu, logvar, z, the decoder's output, log p(x|z)),
    the log-weights, the sleep phase's dream and loss, the reported terms, the
    IWAE weights, objectives.bound, and for iwae the evaluation's."""
    mu, logvar = ref.mu_logvar()
    z = ref.z(mu, logvar)
    decoder_out = ref.decoder_out(z)
    for name, expected in (("mu", mu), ("logvar", logvar), ("z", z), ("decoder_out", decoder_out),
                           ("logpx", ref.logpx(decoder_out))):
        report.value("objectives.sampled_forward", name, lambda name=name: trace[name], expected)
    if ref.objective in ("elbo-mc", "iwae"):
        report.value("objectives.log_weights", "logw",
                     lambda: objectives.log_weights(model, ref.x, ref.eps)[0], ref.log_weights())
    if ref.objective == "wake-sleep":     # the dream: z ~ N(0, I), then x ~ p(x|z), from one rng
        dream_rng = np.random.default_rng(args.seed)
        z_dream = dream_rng.standard_normal(trace["z_dream"].shape)
        x_dream = model.likelihood.sample(ref.decoder_out(z_dream[None])[0], dream_rng)
        report.value("objectives.sleep_phase", "z_dream", lambda: trace["z_dream"], z_dream)
        report.value("objectives.sleep_phase", "x_dream", lambda: trace["x_dream"], x_dream)
        mu_s, logvar_s = ref.mu_logvar(trace["x_dream"])
        report.value("objectives.sleep_phase", "sleep loss", lambda: trace["sleep_loss"],
                     ref.sleep_loss(trace["z_dream"], mu_s, logvar_s))
    expected_terms = ref.terms()
    for name in ("loss", "recon", "kl"):
        report.value(objective_fn, name, lambda name=name: terms[name], expected_terms[name])
    if ref.objective == "iwae":
        logw = ref.log_weights()
        report.value(objective_fn, "weights", lambda: trace["weights"],
                     np.exp(logw - logsumexp(logw, axis=0)))
    report.value("objectives.bound", "bound", lambda: objectives.bound(model, ref.x, ref.objective, ref.eps),
                 ref.bound())
    if ref.objective == "iwae":
        check_evaluation(report, args, ref, model)


def check_evaluation(report, args, ref, model):
    """The importance-weighted evaluation of log p(x), where the log k of the bound
    matters most: its fast log-weights, its logsumexp, and the estimate itself
    (in one piece, and one sample a piece) against the IWAE bound at the eps
    it draws (example-major, (N, k, L) in C order, as its docstring says)."""
    logw = ref.log_weights()
    report.value("objectives.log_weights_fast", "logw",
                 lambda: objectives.log_weights_fast(model, ref.x, ref.eps), logw)
    report.value("evaluate.logsumexp_fast", "logsumexp_j logw", lambda: evaluate.logsumexp_fast(logw),
                 logsumexp(logw, axis=0))
    k, n, latent = ref.eps.shape
    eps_eval = np.random.default_rng(args.seed).standard_normal((n, k, latent)).transpose(1, 0, 2)
    expected = ObjectiveReference(model, ref.x, eps_eval, "iwae", 1.0).bound()
    report.value("evaluate.importance_weighted_log_likelihood", "log p(x)",
                 lambda: evaluate.importance_weighted_log_likelihood(
                     model, ref.x, k, rng=np.random.default_rng(args.seed)), expected)
    for quantity, batch_elements, workers in (("log p(x)", evaluate.BATCH_ELEMENTS, 1),
                                              ("log p(x), in pieces", 1, 1),
                                              ("log p(x), in pieces, 2 threads", 1, 2)):
        report.value("evaluate.importance_weighted_log_likelihood_fast", quantity,
                     lambda batch_elements=batch_elements, workers=workers:
                     evaluate.importance_weighted_log_likelihood_fast(
                         model, ref.x, k, rng=np.random.default_rng(args.seed),
                         batch_elements=batch_elements, workers=workers), expected)


def gradient_row(report, trace, floor):
    """row(function, name, value, loss_of_value): trace[name] (a gradient dL/dv,
    named 'd' + v) against central differences of loss_of_value(v)."""
    def row(function, name, value, loss_of_value):
        report.backward(function, lambda v: (loss_of_value(v), None),
                        lambda _, __: trace[name], {name[1:]: value}, floor=floor)
    return row


def check_chain_gradients(report, ref, model, trace, objective_fn):
    """Every intermediate gradient of backward_through_samples' chain, in the
    order the backward computes them."""
    mu, logvar, z, logpx = trace["mu"], trace["logvar"], trace["z"], trace["logpx"]
    floor = loss_floor(ref.loss(z, mu, logvar))
    row = gradient_row(report, trace, floor)
    check_decoder_gradients(report, ref, model, trace, objective_fn, row, floor)
    direct_fn = objective_fn if ref.objective == "elbo" else "objectives._backward_through_log_weights"
    chain = "objectives.backward_through_samples"
    if trace["dz_direct"] is not None:      # log p(z) and log q(z|x) at fixed log p(x|z)
        row(direct_fn, "dz_direct", z,
            lambda v: ref.from_log_terms(logpx, ref.logpz(v), ref.logq(v, mu, logvar), mu, logvar))
    row(chain, "dz", z, lambda v: ref.loss(v, mu, logvar))
    row(chain, "dmu_via_z", mu, lambda v: ref.loss(ref.z(v, logvar), mu, logvar))
    row(chain, "dlogvar_via_z", logvar, lambda v: ref.loss(ref.z(mu, v), mu, logvar))
    row(direct_fn, "dmu_direct", mu, lambda v: ref.loss(z, v, logvar))
    row(direct_fn, "dlogvar_direct", logvar, lambda v: ref.loss(z, mu, v))
    row(chain, "dmu", mu, lambda v: ref.loss(ref.z(v, logvar), v, logvar))
    row(chain, "dlogvar", logvar, lambda v: ref.loss(ref.z(mu, v), mu, v))
    encoder_out = np.concatenate([mu, logvar], axis=1)
    row(chain, "dencoder_out", encoder_out, ref.from_encoder_out)
    check_layer_inputs(report, model.encoder, model.params, ref.x, trace["dencoder_out"],
                       ref.from_encoder_out, floor)


def check_decoder_gradients(report, ref, model, trace, objective_fn, row, floor):
    """The gradients of the objective on log p(x|z) (and on log p(z), log q(z|x)
    where it weights them), then back through the likelihood and the decoder
    to the decoder's layer inputs."""
    mu, logvar, z, logpx = trace["mu"], trace["logvar"], trace["z"], trace["logpx"]
    logpz, logq = ref.logpz(z), ref.logq(z, mu, logvar)
    row(objective_fn, "dlogpx", logpx, lambda v: ref.from_logpx(v, z, mu, logvar))
    if "dlogpz" in trace:
        row(objective_fn, "dlogpz", logpz, lambda v: ref.from_log_terms(logpx, v, logq, mu, logvar))
        row(objective_fn, "dlogq", logq, lambda v: ref.from_log_terms(logpx, logpz, v, mu, logvar))
    row(f"likelihoods.{type(model.likelihood).__name__}.log_prob_backward", "ddecoder_out",
        trace["decoder_out"], lambda v: ref.from_logpx(ref.logpx(v), z, mu, logvar))
    k, n, latent = z.shape
    check_layer_inputs(report, model.decoder, model.params, z.reshape(k * n, latent),
                       trace["ddecoder_out"].reshape(k * n, -1),
                       lambda out: ref.from_logpx(ref.logpx(out.reshape(k, n, -1)), z, mu, logvar),
                       floor)


def check_wake_sleep_gradients(report, ref, model, trace):
    """The wake phase's gradients down to the decoder's layer inputs, and the
    sleep phase's, on the dream, down to the encoder's."""
    mu, logvar, z, latent = trace["mu"], trace["logvar"], trace["z"], model.latent_dim
    floor = loss_floor(ref.loss(z, mu, logvar))
    check_decoder_gradients(report, ref, model, trace, "objectives.wake_sleep",
                            gradient_row(report, trace, floor), floor)
    z_dream, x_dream = trace["z_dream"], trace["x_dream"]
    mu_s, logvar_s = ref.mu_logvar(x_dream)

    def sleep_loss(encoder_out):
        return ref.sleep_loss(z_dream, encoder_out[:, :latent], encoder_out[:, latent:])
    floor = loss_floor(ref.sleep_loss(z_dream, mu_s, logvar_s))
    row = gradient_row(report, trace, floor)
    row("objectives.sleep_phase", "dmu_sleep", mu_s, lambda v: ref.sleep_loss(z_dream, v, logvar_s))
    row("objectives.sleep_phase", "dlogvar_sleep", logvar_s, lambda v: ref.sleep_loss(z_dream, mu_s, v))
    check_layer_inputs(report, model.encoder, model.params, x_dream,
                       np.concatenate([trace["dmu_sleep"], trace["dlogvar_sleep"]], axis=1),
                       sleep_loss, floor)


# -------------------------------------------------------- 3. whole models --

def loss_floor(loss):
    """relative_error's floor for gradients of a loss of this size.

    Central differences resolve an entry of a gradient only to about
    1e-16 |loss| / STEP = 1e-11 |loss| (the rounding of the loss itself), so
    an entry far below 1e-5 |loss| cannot be checked to TOL relative by any
    correct backward.  Entries below FLOOR |loss| are therefore compared in
    absolute terms, to TOL x FLOOR |loss|; a wrong backward is still caught
    on every entry above that.
    """
    return FLOOR * max(1.0, abs(float(loss)))


def parameter_rows(report, function, model, loss_and_grads, loss, names=None):
    """One row per parameter tensor (all, or those in ``names``): the gradients
    of loss_and_grads against central differences of ``loss``, a forward-only
    reference."""
    names = list(model.params) if names is None else names
    params = {name: model.params[name] for name in names}

    def these_grads():
        value, grads = loss_and_grads()
        return value, {name: grads[name] for name in names}

    def check():
        floor = loss_floor(loss())
        return [Row(function, name, err, None, err <= TOL)
                for name, (_, err) in check_parameter_gradients(params, these_grads, STEP, floor,
                                                                loss).items()]
    report.guarded(function, "parameters", check)


def reused_buffer_row(report, function, model, grads_into, fresh_grads=None):
    """grads_into(out) -> the gradients, written into ``out`` (a FlatParams).
    Written twice into one buffer, as at every training step, they must equal
    fresh_grads() (default grads_into(None): into a new buffer), the gradients
    the parameter rows checked (2.00: accumulated)."""
    def check():
        fresh = np.array((fresh_grads or (lambda: grads_into(None)))().flat, copy=True)
        buffer = model.params.zeros_like()
        grads_into(buffer)
        second = grads_into(buffer).flat
        error = relative_error(second, fresh)
        return [Row(function, "grads (out= reused)", error, constant_ratio(second, fresh),
                    error <= VALUE_TOL)]
    report.guarded(function, "grads (out= reused)", check)


def check_models(report, args, rng):
    """A VAE under every objective, the Autoencoder: every parameter tensor, and
    the gradients written twice into one reused buffer."""
    runs = [("elbo", 2, args.beta), ("elbo-mc", 2, args.beta), ("iwae", 3, 1.0)]   # k = 1: section 2
    for objective, k, beta in runs:
        x, eps = model_data(args, rng, k)
        model = small_model(VAE, args, rng, x, eps)
        function = f"objectives.{OBJECTIVE_FUNCTIONS[objective]} (k {k})"

        ref = ObjectiveReference(model, x, eps.reshape(k, args.batch, -1), objective, beta)

        def grads_into(out, model=model, x=x, eps=eps, objective=objective, k=k, beta=beta):
            return objectives.loss_and_grads(model, x, objective=objective, k=k, beta=beta, eps=eps,
                                             out=out)
        parameter_rows(report, function, model, lambda grads_into=grads_into: _loss(grads_into(None)),
                       lambda ref=ref: ref.terms()["loss"])
        # the public API's path, the gradients written into one reused buffer as
        # trainer.TrainingStep writes them
        reused_buffer_row(report, f"vae.VAE.loss_terms_and_grads ({objective}, k {k})", model,
                          lambda out, model=model, x=x, eps=eps, objective=objective, k=k, beta=beta:
                          model.loss_terms_and_grads(x, beta=beta, eps=eps, out=out,
                                                     objective=objective, k=k)[1],
                          lambda grads_into=grads_into: grads_into(None)[1])
    # wake-sleep descends two losses, one per network: the wake phase's
    # -log p(x|z) (decoder) and the sleep phase's -log q(z|x) of the dream
    # (encoder), which the same seed draws again at every evaluation and which
    # depends on the decoder alone
    x, eps = model_data(args, rng)
    model = small_model(VAE, args, rng, x, eps, dream=True)
    ref = ObjectiveReference(model, x, eps[None], "wake-sleep", 1.0)

    def wake_sleep(out=None, trace=None):
        return objectives.loss_and_grads(model, x, objective="wake-sleep", eps=eps, trace=trace, out=out,
                                         rng=np.random.default_rng(args.seed))
    dream = {}
    wake_sleep(trace=dream)
    parameter_rows(report, "objectives.wake_sleep", model, lambda: _loss(wake_sleep()),
                   lambda: ref.terms()["recon"], [n for n in model.params if n.startswith("decoder")])
    parameter_rows(report, "objectives.sleep_phase", model, lambda: _loss(wake_sleep()),
                   lambda: ref.sleep_loss(dream["z_dream"], *ref.mu_logvar(dream["x_dream"])),
                   [n for n in model.params if n.startswith("encoder")])
    reused_buffer_row(report, "vae.VAE.loss_terms_and_grads (wake-sleep, k 1)", model,
                      lambda out: model.loss_terms_and_grads(x, rng=np.random.default_rng(args.seed), eps=eps,
                                                             out=out, objective="wake-sleep")[1],
                      lambda: wake_sleep()[1])
    x, _ = model_data(args, rng)
    ae = small_model(Autoencoder, args, rng, x)

    def reconstruction_loss():     # -(1/N) sum_n log p(x_n | z_n = encoder(x_n))
        out = ae.decoder.forward(ae.params, ae.encoder.forward(ae.params, x)[0])[0]
        return -np.mean(ae.likelihood.log_prob_forward(x, out)[0])
    parameter_rows(report, "autoencoder.Autoencoder.loss_and_grads", ae, lambda: ae.loss_and_grads(x),
                   reconstruction_loss)
    reused_buffer_row(report, "autoencoder.Autoencoder.loss_and_grads", ae,
                      lambda out: ae.loss_and_grads(x, out=out)[1])
    check_full_covariance_models(report, args, rng)


def _loss(terms_and_grads):
    terms, grads = terms_and_grads
    return terms["loss"], grads



# ---------------------------- 1 and 3 for the full-covariance posterior N(mu, L L^T) --

def check_full_covariance_operations(report, rng, n, latent):
    """Section 1's rows for ops/full_gaussian.py and full_gaussian.Posterior: each forward
    against the covariance form (scipy, inv, slogdet), each backward against central
    differences; L's upper triangle is masked (np.tril) in every forward it feeds."""
    rows, cols = np.tril_indices(latent, -1)
    log_diag = rng.uniform(-0.5, 0.5, (n, latent))
    lower = 0.5 * rng.standard_normal((n, rows.size))
    factor = full_gaussian.factor_forward(log_diag, lower)[0]
    expected = np.zeros((n, latent, latent))
    expected[:, rows, cols] = lower
    expected += np.exp(log_diag)[:, :, None] * np.eye(latent)
    report.forward("full_gaussian.factor_forward", full_gaussian.factor_forward,
                   {"log_diag": log_diag, "lower": lower}, expected, np.exp(log_diag), "L")
    report.backward("full_gaussian.factor_backward", full_gaussian.factor_forward,
                    full_gaussian.factor_backward, {"log_diag": log_diag, "lower": lower})

    mu, eps = rng.standard_normal((n, latent)), rng.standard_normal((n, latent))
    cov = factor @ np.swapaxes(factor, 1, 2)
    z = mu + np.einsum("nij,nj->ni", factor, eps)
    report.forward("full_gaussian.reparameterize_forward", full_gaussian.reparameterize_forward,
                   {"mu": mu, "factor": factor, "eps": eps}, z, eps, "z")
    report.backward("full_gaussian.reparameterize_backward",
                    lambda eps, mu, factor: full_gaussian.reparameterize_forward(mu, np.tril(factor), eps),
                    full_gaussian.reparameterize_backward,
                    {"eps": eps, "mu": mu, "factor": factor}, wrt=("mu", "factor"))
    report.forward("full_gaussian.log_density_at_sample_forward",
                   full_gaussian.log_density_at_sample_forward, {"eps": eps[None], "factor": factor},
                   np.array([[stats.multivariate_normal(mu[i], cov[i]).logpdf(z[i])
                              for i in range(n)]]), (eps[None], factor), "log q(z|x)")
    report.backward("full_gaussian.log_density_at_sample_backward",   # z, mu, L independent
                    lambda z, mu, factor: full_gaussian.log_density_at_sample_forward(
                        np.linalg.solve(np.tril(factor), (z - mu)[..., None])[..., 0], np.tril(factor)),
                    full_gaussian.log_density_at_sample_backward,
                    {"z": z, "mu": mu, "factor": factor})

    logdet = np.linalg.slogdet(cov)[1]
    report.forward("full_gaussian.kl_standard_normal_forward",
                   full_gaussian.kl_standard_normal_forward, {"mu": mu, "factor": factor},
                   0.5 * (np.trace(cov, axis1=1, axis2=2) + np.sum(mu * mu, axis=1) - latent - logdet),
                   (mu, factor), "KL")
    report.backward("full_gaussian.kl_standard_normal_backward",
                    lambda mu, factor: full_gaussian.kl_standard_normal_forward(mu, np.tril(factor)),
                    full_gaussian.kl_standard_normal_backward, {"mu": mu, "factor": factor})
    mu_p = rng.standard_normal((n, latent))
    factor_p = full_gaussian.factor_forward(rng.uniform(-0.5, 0.5, (n, latent)),
                                            0.5 * rng.standard_normal((n, rows.size)))[0]
    cov_p = factor_p @ np.swapaxes(factor_p, 1, 2)
    diff, precision_p = mu_p - mu, np.linalg.inv(cov_p)
    report.forward("full_gaussian.kl_full_gaussians_forward",
                   full_gaussian.kl_full_gaussians_forward,
                   {"mu1": mu, "factor1": factor, "mu2": mu_p, "factor2": factor_p},
                   0.5 * (np.trace(precision_p @ cov, axis1=1, axis2=2)
                          + np.einsum("ni,nij,nj->n", diff, precision_p, diff) - latent
                          + np.linalg.slogdet(cov_p)[1] - logdet),
                   (np.linalg.solve(factor_p, factor),                   # A = L2^-1 L1
                    np.linalg.solve(factor_p, (mu - mu_p)[..., None])[..., 0],   # b
                    factor, factor_p), "KL")
    report.backward("full_gaussian.kl_full_gaussians_backward",
                    lambda mu1, factor1, mu2, factor2: full_gaussian.kl_full_gaussians_forward(
                        mu1, np.tril(factor1), mu2, np.tril(factor2)),
                    full_gaussian.kl_full_gaussians_backward,
                    {"mu1": mu, "factor1": factor, "mu2": mu_p, "factor2": factor_p})

    # the posterior the FullCovarianceVAE's objectives call, on the encoder's raw outputs
    post, scale = full_gaussian.Posterior, np.concatenate([log_diag, lower], axis=1)
    name = "full_gaussian.Posterior."
    report.backward(name + "reparameterize_backward",
                    lambda mu, scale: post.reparameterize_forward(mu, scale, eps),
                    post.reparameterize_backward, {"mu": mu, "scale": scale})
    report.backward(name + "log_density_at_sample_backward",
                    lambda z, mu, scale: post.log_density_at_sample_forward(
                        np.linalg.solve(post.factor_forward(scale, latent)[0],
                                        (z - mu)[..., None])[..., 0], scale),
                    post.log_density_at_sample_backward, {"z": z, "mu": mu, "scale": scale})
    report.backward(name + "kl_standard_normal_backward", post.kl_standard_normal_forward,
                    post.kl_standard_normal_backward, {"mu": mu, "scale": scale})


def check_full_covariance_models(report, args, rng):
    """Section 3's rows for the FullCovarianceVAE: every parameter tensor under each objective."""
    for objective, k in (("elbo", 2), ("elbo-mc", 2), ("iwae", 3)):
        beta = 1.0 if objective == "iwae" else args.beta
        x, eps = model_data(args, rng, k)
        model = small_model(FullCovarianceVAE, args, rng, x, eps)
        def grads_into(out, model=model, x=x, eps=eps, objective=objective, k=k, beta=beta):
            return objectives.loss_and_grads(model, x, objective=objective, k=k, beta=beta,
                                             eps=eps, out=out)
        # the loss as a function of the parameters: the objective's own forward pass
        # (its operations are checked one by one against independent formulas in section 1)
        parameter_rows(report, f"objectives.{OBJECTIVE_FUNCTIONS[objective]} (full cov, k {k})",
                       model, lambda grads_into=grads_into: _loss(grads_into(None)),
                       lambda grads_into=grads_into: grads_into(None)[0]["loss"])
        reused_buffer_row(report, f"vae.VAE.loss_terms_and_grads (full cov, {objective}, k {k})",
                          model, lambda out, model=model, x=x, eps=eps, objective=objective, k=k,
                          beta=beta: model.loss_terms_and_grads(x, beta=beta, eps=eps, out=out,
                                                                objective=objective, k=k)[1],
                          lambda grads_into=grads_into: grads_into(None)[1])


# --------------------------------------------------------- 4. optimizers --

def textbook_update(name, p, g, state, t, hyper, weight_decay=0.0):
    """One update of optimizer ``name`` as its paper writes it (float64, no in-place
    tricks), on the gradient of loss + weight_decay / 2 ||p||^2; a fast form
    (``...Fast``) is checked against its textbook update."""
    name = name.removesuffix("Fast")
    g = g + weight_decay * p
    if name == "SGD":
        state["velocity"] = hyper["momentum"] * state.get("velocity", 0.0) - hyper["lr"] * g
        return p + state["velocity"]
    if name == "Adagrad":
        state["G"] = state.get("G", 0.0) + g ** 2
        return p - hyper["lr"] * g / (np.sqrt(state["G"]) + hyper["eps"])
    b1, b2 = hyper["betas"]
    state["m"] = b1 * state.get("m", 0.0) + (1 - b1) * g
    state["v"] = b2 * state.get("v", 0.0) + (1 - b2) * g ** 2
    m_hat, v_hat = state["m"] / (1 - b1 ** t), state["v"] / (1 - b2 ** t)
    return p - hyper["lr"] * m_hat / (np.sqrt(v_hat) + hyper["eps"])


OPTIMIZERS = {   # class name in optim -> hyperparameters; eps as large as |g|, so that
    "SGD": dict(lr=0.1, momentum=0.9),                   # every term of every update matters
    "SGDFast": dict(lr=0.1, momentum=0.9),
    "Adagrad": dict(lr=0.1, eps=0.1),
    "AdagradFast": dict(lr=0.1, eps=0.1),
    "Adam": dict(lr=0.1, betas=(0.8, 0.99), eps=0.1),
    "AdamFast": dict(lr=0.1, betas=(0.8, 0.99), eps=0.1),
}
WEIGHT_DECAY = 0.5   # wd * p as large as g (|p|, |g| ~ 1), so that a wrong sign or a missing term shows
SHAPES = {"W": (3, 2), "b": (2,)}


def parameter_layout(layout, values):
    """The 8 numbers ``values`` as parameters of SHAPES: one buffer (a FlatParams,
    the path training takes) or a plain dict of tensors (updated tensor by tensor)."""
    flat = FlatParams(SHAPES, np.float64, values.copy())
    return flat if layout == "one buffer" else {name: p.copy() for name, p in flat.items()}


def flatten(params):
    return np.concatenate([params[name].ravel() for name in SHAPES])


def check_weight_decay(report, rng):
    """Optimizer._arrays, the one place weight decay is added: the gradient it
    hands every optimizer's update is g + weight_decay * p, on both paths."""
    p, g = rng.standard_normal(8), rng.standard_normal(8)
    for layout in ("one buffer", "per tensor"):
        def decayed(layout=layout):
            params, grads = parameter_layout(layout, p), parameter_layout(layout, g)
            opt = optim.SGD(params, lr=0.1, weight_decay=WEIGHT_DECAY)    # any subclass
            return np.concatenate([g_used.ravel() for _, g_used, *_ in opt._arrays(grads, False)])
        report.value("optim.Optimizer._arrays", f"g + wd p, {layout}", decayed, g + WEIGHT_DECAY * p)


def check_optimizers(report, args, rng, steps=4):
    """Each optimizer over ``steps`` steps, its parameter updates against
    textbook_update's: on one buffer (a FlatParams, the path training takes,
    gradients used as scratch as TrainingStep does), without and with weight
    decay; and tensor by tensor (AdamFast with one row per block), with
    gradients that must come back unchanged (grads_are_scratch=False)."""
    check_weight_decay(report, rng)
    start = rng.standard_normal(8)
    grads = [rng.standard_normal(8) for _ in range(steps)]
    runs = [(f"{steps} updates", "one buffer", 0.0),
            (f"{steps} updates, weight decay", "one buffer", WEIGHT_DECAY),
            (f"{steps} updates, per tensor", "per tensor", 0.0)]
    for name, hyper in OPTIMIZERS.items():
        for quantity, layout, weight_decay in runs:
            def check(name=name, hyper=hyper, quantity=quantity, layout=layout, weight_decay=weight_decay):
                params = parameter_layout(layout, start)
                opt = getattr(optim, name)(params, weight_decay=weight_decay, **hyper)
                scratch = layout == "one buffer"
                if name == "AdamFast" and not scratch:
                    opt.BLOCK = 1              # every row of every tensor a block of its own
                expected, state, got, want, changed = start.copy(), {}, [], [], 0.0
                for t, g in enumerate(grads, start=1):
                    before, step_grads = flatten(params), parameter_layout(layout, g)
                    opt.step(step_grads, grads_are_scratch=scratch)
                    changed = max(changed, relative_error(flatten(step_grads), g))
                    new = textbook_update(name, expected, g, state, t, hyper, weight_decay)
                    got.append(flatten(params) - before)
                    want.append(new - expected)
                    expected = new
                got, want = np.array(got), np.array(want)
                error = relative_error(got, want)
                rows = [Row(f"optim.{name}", quantity, error, constant_ratio(got, want),
                            error <= VALUE_TOL)]
                if not scratch:
                    rows.append(Row(f"optim.{name}", "grads unchanged", changed, None, changed == 0))
                return rows
            report.guarded(f"optim.{name}", quantity, check)


# ------------------------------------------------ 5. two stochastic layers --

class TwoLayerReference:
    """The two-layer objectives written again, independently of
    two_layer_objectives.py (scipy for the densities), as a function of any
    node of the graph:

        encoder_out -> mu1, logvar1 -> z1 = mu1 + exp(logvar1 / 2) eps1
        z1 -> decoder_out -> log p(x|z1);     z1 -> top_encoder_out -> mu2, logvar2
        z2 = mu2 + exp(logvar2 / 2) eps2 -> top_decoder_out -> prior_mu, prior_logvar
        log p(z1|z2) = log N(z1; prior_mu, prior_var),  log p(z2) = log N(z2; 0, I),
        log q(z1|x) = log N(z1; mu1, var1),  log q(z2|z1) = log N(z2; mu2, var2),
        KL2 = KL(N(mu2, var2) || N(0, I))

    ``evaluate(**given)`` computes every node from x and eps unless it is
    given.  A consumer's own copy of a node is the node "<name>_via_<consumer>"
    (z1_via_decoder, z1_via_top_encoder, z1_via_logpz1, z1_via_logq1,
    z2_via_top_decoder, z2_via_logpz2, z2_via_logq2, mu1_via_z1, logvar1_via_z1,
    mu2_via_z2, logvar2_via_z2) or, for the means and log-variances where log q
    (and KL2) read them, "<name>_direct": so the derivative with respect to a
    node is the total derivative backward_through_layers computes at it, and
    that with respect to a copy is one path's share.
    """

    def __init__(self, model, x, eps, objective, beta):
        self.model, self.x, self.objective = model, x, objective
        self.beta = beta if objective in ("elbo", "elbo-mc") else 1.0
        self.eps1, self.eps2 = eps[..., :model.latent_dim], eps[..., model.latent_dim:]

    def network(self, mlp_net, inp):
        """An MLP on (k, N, width) or (N, width) input, its output of the same leading shape."""
        out = mlp_net.forward(self.model.params, inp.reshape(-1, inp.shape[-1]))[0]
        return out.reshape(*inp.shape[:-1], -1)

    def evaluate(self, **given):
        """(loss, nodes): the loss with the ``given`` nodes held at their values, and every node."""
        m, v = self.model, dict(given)

        def node(name, compute):
            if name not in v:
                v[name] = compute()
            return v[name]

        def copy(name, consumer):
            return v.get(f"{name}_{consumer}", v[name])

        def log_normal(z, mu, logvar):
            return stats.norm.logpdf(z, mu, np.exp(logvar / 2)).sum(axis=-1)

        l1, l2 = m.latent_dim, m.top_latent_dim
        h1 = node("encoder_out", lambda: m.encoder.forward(m.params, self.x)[0])
        node("mu1", lambda: h1[:, :l1])
        node("logvar1", lambda: h1[:, l1:])
        node("z1", lambda: copy("mu1", "via_z1") + np.exp(copy("logvar1", "via_z1") / 2) * self.eps1)
        node("decoder_out", lambda: self.network(m.decoder, copy("z1", "via_decoder")))
        node("logpx", lambda: m.likelihood.log_prob_forward(self.x, v["decoder_out"])[0])
        h2 = node("top_encoder_out", lambda: self.network(m.top_encoder, copy("z1", "via_top_encoder")))
        node("mu2", lambda: h2[..., :l2])
        node("logvar2", lambda: h2[..., l2:])
        node("z2", lambda: copy("mu2", "via_z2") + np.exp(copy("logvar2", "via_z2") / 2) * self.eps2)
        hp = node("top_decoder_out", lambda: self.network(m.top_decoder, copy("z2", "via_top_decoder")))
        node("prior_mu", lambda: hp[..., :l1])
        node("prior_logvar", lambda: hp[..., l1:])
        node("logpz1", lambda: log_normal(copy("z1", "via_logpz1"), v["prior_mu"], v["prior_logvar"]))
        node("logpz2", lambda: stats.norm.logpdf(copy("z2", "via_logpz2")).sum(axis=-1))
        mu1, logvar1 = copy("mu1", "direct"), copy("logvar1", "direct")
        node("logq1", lambda: log_normal(copy("z1", "via_logq1"), mu1, logvar1))
        mu2, logvar2 = copy("mu2", "direct"), copy("logvar2", "direct")
        node("logq2", lambda: log_normal(copy("z2", "via_logq2"), mu2, logvar2))
        node("kl2", lambda: 0.5 * np.sum(np.exp(logvar2) + mu2 ** 2 - 1 - logvar2, axis=-1))
        return self.loss_of_terms(v), v

    def loss_of_terms(self, v):
        px, pz1, pz2, q1, q2, kl2 = (v[t] for t in ("logpx", "logpz1", "logpz2", "logq1", "logq2", "kl2"))
        if self.objective == "elbo":
            return np.mean(-px + self.beta * (q1 - pz1 + kl2))
        if self.objective == "elbo-mc":
            return np.mean(-px + self.beta * (q1 + q2 - pz1 - pz2))
        k = px.shape[0]
        return -np.mean(logsumexp(px + pz1 + pz2 - q1 - q2, axis=0) - np.log(k))

    def loss(self, **given):
        return self.evaluate(**given)[0]


def two_layer_model(args, rng, x, eps):
    """A float64 TwoLayerVAE of the chosen lower sizes; the top layer one wider
    (hidden sizes + 1, L2 = L1 + 1), so that a transposed shape cannot pass.

    Every network's output layer is scaled by 1/4: at random weights, the
    log-variances of three Gaussians in a chain (q(z1|x), q(z2|z1), p(z1|z2))
    compound, and a ReLU model can give z2 in the hundreds and a log p(z1|z2)
    of 1e94, whose curvature swamps any central difference.
    """
    likelihood, obs_var = LIKELIHOODS[args.likelihood]
    model = TwoLayerVAE(args.input_dim, args.hidden, args.latent, likelihood, obs_var,
                        args.activation, np.float64, args.seed,
                        top_hidden_dims=tuple(h + 1 for h in args.hidden),
                        top_latent_dim=args.latent + 1)
    for network in (model.encoder, model.decoder, model.top_encoder, model.top_decoder):
        network.layer_params(model.params, -1)[0][...] *= 0.25

    def distance():
        fwd = two_layer_objectives.two_layer_forward(model, x, eps.reshape(-1, x.shape[0], eps.shape[-1]))
        z1, z2 = fwd.z1.reshape(-1, model.latent_dim), fwd.z2.reshape(-1, model.top_latent_dim)
        return pre_activation_distance(model.params, [(model.encoder, x), (model.decoder, z1),
                                                      (model.top_encoder, z1),
                                                      (model.top_decoder, z2)])
    return with_small_biases(model, rng, args.activation, distance)


def two_layer_data(args, rng, k):
    """A batch x (N, D) and eps for two_layer_model: (N, L1 + L2) for k = 1, else (k, N, L1 + L2)."""
    x, _ = model_data(args, rng)
    eps = rng.standard_normal((k, args.batch, 2 * args.latent + 1))
    return x, eps[0] if k == 1 else eps


def check_two_layer_pass(report, args, rng, objective, k):
    """Every intermediate gradient of one two-layer backward pass of ``objective``
    (the trace of two_layer_objectives.backward_through_layers), in backward order."""
    x, eps = two_layer_data(args, rng, k)
    model = two_layer_model(args, rng, x, eps)
    beta = args.beta if objective in ("elbo", "elbo-mc") else 1.0
    trace = {}

    def backward_pass():
        two_layer_objectives.loss_and_grads(model, x, objective=objective, k=k, beta=beta,
                                            eps=eps, trace=trace)
        return []
    report.guarded("two_layer_objectives.loss_and_grads", "trace", backward_pass)
    if not trace:
        return
    ref = TwoLayerReference(model, x, eps.reshape(k, args.batch, -1), objective, beta)
    loss, nodes = ref.evaluate()
    floor = loss_floor(loss)
    objective_fn = f"two_layer_objectives.{OBJECTIVE_FUNCTIONS[objective]}"
    chain = "two_layer_objectives.backward_through_layers"
    gauss = "gaussian.log_density_at_sample_backward"
    kl2_fn = "gaussian.kl_standard_normal_backward" if objective == "elbo" else gauss

    def row(function, name):
        """trace['d' + name] against differences of the loss in the node ``name``."""
        base = name.split("_via_")[0].removesuffix("_direct")
        report.backward(function, lambda v: (ref.loss(**{name: v}), None),
                        lambda _, __: trace["d" + name], {name: nodes[base]}, floor=floor)

    def layer_inputs(network, inp, dout_name, node_name):
        """Every hidden layer's input of one network: inp (..., width) as rows."""
        rows = inp.reshape(-1, inp.shape[-1])
        check_layer_inputs(report, network, model.params, rows,
                           trace[dout_name].reshape(rows.shape[0], -1),
                           lambda out: ref.loss(**{node_name: out.reshape(nodes[node_name].shape)}),
                           floor)

    for term in ("logpx", "logpz1", "logpz2", "logq1", "logq2", "kl2"):
        row(objective_fn, term)
    row(f"likelihoods.{type(model.likelihood).__name__}.log_prob_backward", "decoder_out")
    layer_inputs(model.decoder, nodes["z1"], "ddecoder_out", "decoder_out")
    row("mlp.MLP.backward", "z1_via_decoder")
    row("gaussian.gaussian_log_density_backward", "prior_mu")
    row("gaussian.gaussian_log_density_backward", "prior_logvar")
    row(chain, "z1_via_logpz1")
    row(chain, "top_decoder_out")
    layer_inputs(model.top_decoder, nodes["z2"], "dtop_decoder_out", "top_decoder_out")
    row("mlp.MLP.backward", "z2_via_top_decoder")
    row("gaussian.standard_normal_log_density_backward", "z2_via_logpz2")
    row(gauss, "z2_via_logq2")
    row(chain, "z2")
    row("gaussian.reparameterize_backward", "mu2_via_z2")
    row("gaussian.reparameterize_backward", "logvar2_via_z2")
    row(kl2_fn, "mu2_direct")
    row(kl2_fn, "logvar2_direct")
    row(chain, "mu2")
    row(chain, "logvar2")
    row(chain, "top_encoder_out")
    layer_inputs(model.top_encoder, nodes["z1"], "dtop_encoder_out", "top_encoder_out")
    row("mlp.MLP.backward", "z1_via_top_encoder")
    row(gauss, "z1_via_logq1")
    row(chain, "z1")
    row("gaussian.reparameterize_backward", "mu1_via_z1")
    row("gaussian.reparameterize_backward", "logvar1_via_z1")
    row(gauss, "mu1_direct")
    row(gauss, "logvar1_direct")
    row(chain, "mu1")
    row(chain, "logvar1")
    row(chain, "encoder_out")
    layer_inputs(model.encoder, x, "dencoder_out", "encoder_out")


def check_two_layer_models(report, args, rng):
    """A TwoLayerVAE under every objective, k > 1: every parameter tensor."""
    for objective, k, beta in (("elbo", 2, args.beta), ("elbo-mc", 2, args.beta), ("iwae", 3, 1.0)):
        x, eps = two_layer_data(args, rng, k)
        model = two_layer_model(args, rng, x, eps)
        ref = TwoLayerReference(model, x, eps.reshape(k, args.batch, -1), objective, beta)

        def grads_into(out, model=model, x=x, eps=eps, objective=objective, k=k, beta=beta):
            return two_layer_objectives.loss_and_grads(model, x, objective=objective, k=k,
                                                       beta=beta, eps=eps, out=out)
        parameter_rows(report, f"two_layer_objectives.{OBJECTIVE_FUNCTIONS[objective]} (k {k})",
                       model, lambda grads_into=grads_into: _loss(grads_into(None)),
                       lambda ref=ref: ref.loss())
        reused_buffer_row(report, f"vae.VAE.loss_terms_and_grads (two layers, {objective}, k {k})",
                          model, lambda out, model=model, x=x, eps=eps, objective=objective, k=k,
                          beta=beta: model.loss_terms_and_grads(x, beta=beta, eps=eps, out=out,
                                                                objective=objective, k=k)[1],
                          lambda grads_into=grads_into: grads_into(None)[1])


def check_two_layers(report, args, rng):
    """Section 5: a two-layer backward pass op by op for each objective (k > 1),
    then whole models."""
    objectives_run = two_layer_objectives.OBJECTIVES if args.objective == "all" else (
        (args.objective,) if args.objective in two_layer_objectives.OBJECTIVES else ())
    for objective in objectives_run:
        report.subsection(f"two layers, {objective}, k {args.k}")
        check_two_layer_pass(report, args, rng, objective, args.k)
    report.subsection("two layers, whole models")
    check_two_layer_models(report, args, rng)


# ------------------------------------------------------------------ main --

@dataclass
class Section:
    """One section of the report: its title (formatted with the flags, e.g.
    {activation}) and check(report, args, rng), which adds its rows."""

    title: str
    check: object


SECTIONS = [
    Section("Operations, each forward (output and cache) and backward on its own", check_operations),
    Section("One backward pass per objective ({activation}, {likelihood}, beta {beta:g} where it "
            "applies): its forward\n   values, then every intermediate gradient against the loss "
            "as a function of that intermediate", check_backward_passes),
    Section("Whole models ({activation}, {likelihood}, beta {beta:g}): every parameter tensor under "
            "every objective", check_models),
    Section("Optimizers, every update against the textbook formula", check_optimizers),
    Section("Two stochastic layers ({activation}, {likelihood}, beta {beta:g} where it applies): "
            "every intermediate of one\n   backward pass per objective, then every parameter "
            "tensor under every objective", check_two_layers),
]


def flag_type(convert, valid, expected):
    """An argparse type: convert(text), accepted when valid(value); else an
    error that says what was expected."""
    def parse(text):
        try:
            value = convert(text)
        except ValueError:
            value = None
        if value is None or not valid(value):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return value
    return parse


hidden_sizes = flag_type(lambda text: tuple(int(s) for s in text.split(",") if s.strip()),
                         lambda sizes: len(sizes) > 0 and min(sizes) >= 1,
                         "positive sizes like 5 or 8,6")
positive_int = flag_type(int, lambda value: value >= 1, "a positive integer")
nonnegative_float = flag_type(float, lambda value: value >= 0, "a number >= 0")
section_numbers = flag_type(lambda text: tuple(int(s) for s in text.split(",") if s.strip()),
                            lambda numbers: len(numbers) > 0 and set(numbers) <= set(
                                range(1, len(SECTIONS) + 1)),
                            f"section numbers from 1 to {len(SECTIONS)}, like 2 or 1,4")


def parser():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--activation", choices=sorted(layers.ACTIVATIONS), default="tanh",
                   help="hidden activation of the models (default: %(default)s)")
    p.add_argument("--likelihood", choices=sorted(LIKELIHOODS), default="bernoulli",
                   help="decoder of the models (default: %(default)s)")
    p.add_argument("--beta", type=nonnegative_float, default=0.5,
                   help="KL weight (default: %(default)s; != 1 so a forgotten beta shows)")
    p.add_argument("--objective", choices=["all", *objectives.OBJECTIVES], default="all",
                   help="the objective(s) of the backward passes of section 2 (default: %(default)s: "
                        "elbo with k = 1, then every objective with k = --k)")
    p.add_argument("--k", type=positive_int, default=3,
                   help="samples of z per example in section 2 (default: %(default)s; > 1 so that "
                        "a bug in a sum over the samples or in the IWAE weights shows)")
    p.add_argument("--hidden", type=hidden_sizes, default=(5,),
                   help="hidden layer sizes, e.g. 5 or 8,6 (default: 5)")
    p.add_argument("--latent", type=positive_int, default=2, help="latent size (default: 2)")
    p.add_argument("--input-dim", type=positive_int, default=6, help="data size (default: 6)")
    p.add_argument("--batch", type=positive_int, default=3, help="batch size (default: 3)")
    p.add_argument("--seed", type=int, default=0, help="seed of every draw (default: 0)")
    p.add_argument("--sections", type=section_numbers, default=tuple(range(1, len(SECTIONS) + 1)),
                   help="the sections to run, e.g. 2 or 1,4 (default: all)")
    p.add_argument("-x", "--first-failure", action="store_true",
                   help="stop at the first failing row")
    return p


def run(args, stream=None):
    """Every check in order; returns the rows (up to the first failure with -x)."""
    stream = sys.stdout if stream is None else stream
    report = Report(stream, args.first_failure)
    try:
        for number, section in enumerate(SECTIONS, start=1):
            if number in args.sections:
                report.section(number, section.title.format(**vars(args)))
                section.check(report, args, np.random.default_rng([args.seed, number]))
    except StopAtFirstFailure:
        print("  (stopped at the first failure: -x)", file=stream)
    return report.rows


def main(argv=None, stream=None):
    args = parser().parse_args(argv)
    stream = sys.stdout if stream is None else stream
    start = time.perf_counter()
    for line in (
            f"numpyvae gradient check, float64: every backward against central differences "
            f"(step {STEP:g})",
            "  rel err  max |analytic - numerical| / max(|analytic| + |numerical|, floor), floor "
            f"1e-8 ({FLOOR:g} x |loss| in 2, 3)",
            f"           a gradient passes at <= {TOL:g}; a forward value, a cache or an optimizer "
            f"update, against its",
            f"           formula written another way, at <= {VALUE_TOL:g}",
            "  ratio    analytic / numerical where that is one constant: 2.00 twice too large, "
            "-1.00 sign flipped, 0.00 missing"):
        print(line, file=stream)
    rows = run(args, stream)
    passed = sum(row.passed for row in rows)
    failed = [row for row in rows if not row.passed]
    print(f"\n{passed} of {len(rows)} passed"
          + (f"; first failure: {failed[0].function} ({failed[0].quantity}) in section "
             f"{failed[0].section}{', ' + failed[0].run if failed[0].run else ''}" if failed else "")
          + f"; {time.perf_counter() - start:.1f} s", file=stream)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
