"""Check every hand-written gradient against central differences, operation by operation.

    python demos/gradcheck.py                                   # tanh, Bernoulli, beta 0.5
    python demos/gradcheck.py --activation relu --likelihood gaussian-learned --beta 1
    python demos/gradcheck.py --hidden 8,6 --latent 3 -x        # -x: stop at the first failure

A diagnostic, in the order a bug would propagate, so that the first failing
row names the broken operation:

1. every forward/backward pair on its own (the linear layer, each
   activation, the reparameterization, each KL, each likelihood, the
   full-covariance posterior's operations): its
   forward against an independent formula, its backward against central
   differences of its forward;
2. every intermediate gradient of one VAE backward pass (objectives.py's
   ``trace``), each against central differences of the loss as a function
   of that intermediate;
3. every parameter tensor of whole models (the VAE under each objective,
   the Autoencoder, the FullCovarianceVAE under each of its objectives);
4. the optimizers, each update against the textbook formula.

Each row names the function it checks as it is named in the code, the
largest relative error |a - n| / max(|a| + |n|, floor) (floor 1e-8; in
sections 2 and 3, 1e-4 |loss|, below which central differences cannot
resolve an entry to 1e-6, see loss_floor), the ratio
analytic / numerical where that is one constant (2.00: a factor of 2 too
many; -1.00: a flipped sign; 0.00: a missing term), and PASS or FAIL.
Everything runs in float64 with a fixed seed; eps is held fixed, so the VAE
loss is a deterministic function of its inputs.

Exit status: 0 if every row passes, 1 otherwise, 2 for bad flags.
"""

import argparse
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")  # read when numpy loads: docs/benchmarks.md

try:
    import numpyvae  # noqa: F401  (installed, or run from the source tree below)
except ImportError:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
from scipy import stats
from scipy.special import expit, logsumexp

from numpyvae import objectives, optim
from numpyvae.ops import full_gaussian, gaussian, layers, likelihoods
from numpyvae.model import mlp
from numpyvae.model.autoencoder import Autoencoder
from numpyvae.model.full_covariance_vae import FullCovarianceVAE
from numpyvae.gradcheck import check_backward, check_parameter_gradients, constant_ratio, relative_error
from numpyvae.model.params import FlatParams
from numpyvae.model.vae import VAE

TOL = 1e-6          # backward rows: max relative error against central differences
FLOOR = 1e-4        # sections 2 and 3: entries below FLOOR x |loss| count in absolute terms
VALUE_TOL = 1e-10   # forward rows and optimizer updates: against a formula evaluated another way
STEP = 1e-5         # central-difference step

LIKELIHOODS = {"bernoulli": ("bernoulli", 1.0), "gaussian": ("gaussian", 0.5),
               "gaussian-learned": ("gaussian", "learned"),
               "gaussian-sigmoid": ("gaussian-sigmoid", "learned")}


@dataclass
class Row:
    """One line of the report."""

    section: int
    function: str        # as named in the code, e.g. "gaussian.reparameterize_backward"
    quantity: str        # what is compared, e.g. "dlogvar"
    error: float         # max relative error (inf when the check raised)
    ratio: float | None  # analytic / numerical when constant
    passed: bool
    note: str = ""       # the exception, when the check raised


class StopAtFirstFailure(Exception):
    pass


class Report:
    """Collects rows, prints each as it comes, and stops at the first failure if asked."""

    def __init__(self, stream, first_failure):
        self.rows, self.stream, self.first_failure = [], stream, first_failure
        self.current = 0      # the section being run

    def add(self, row):
        self.rows.append(row)
        ratio = "" if row.ratio is None else f"{row.ratio:.2f}"
        error = "raised" if row.error == np.inf else f"{row.error:.1e}"
        print(f"  {row.function:<57}{row.quantity:<19}{error:>8}{ratio:>7}  "
              f"{'PASS' if row.passed else 'FAIL'}{'  ' + row.note if row.note else ''}",
              file=self.stream)
        if self.first_failure and not row.passed:
            raise StopAtFirstFailure

    def section(self, number, title):
        self.current = number
        print(f"\n{number}. {title}", file=self.stream)
        print(f"  {'function':<57}{'checks':<19}{'rel err':>8}{'ratio':>7}  result",
              file=self.stream)

    def guarded(self, function, quantity, check):
        """Run check() -> rows; an exception becomes one FAIL row naming it."""
        try:
            rows = check()
        except StopAtFirstFailure:
            raise
        except Exception as e:  # noqa: BLE001 (a broken operation may raise anything)
            rows = [Row(self.current, function, quantity, np.inf, None, False,
                        f"{type(e).__name__}: {e}".splitlines()[0][:80])]
        for row in rows:
            self.add(row)

    def value(self, function, quantity, got, expected, tol=VALUE_TOL):
        """A forward value (or update) against the same quantity computed another way."""
        def check():
            value = got()
            error = relative_error(value, expected)
            return [Row(self.current, function, quantity, error, constant_ratio(value, expected),
                        error <= tol)]
        self.guarded(function, quantity, check)

    def backward(self, function, forward, backward, inputs, wrt=None, variant="", floor=1e-8):
        """One row per checked input: backward against central differences of forward."""
        def check():
            return [Row(self.current, function, f"d{r.name} {variant}".strip(), r.max_rel_error,
                        r.ratio, r.passed)
                    for r in check_backward(forward, backward, inputs, wrt=wrt, tol=TOL, h=STEP,
                                            floor=floor)]
        self.guarded(function, "backward", check)


# ------------------------------------------------------- 1. operations --

ACTIVATION_REFERENCE = {   # name -> an independent formula for the forward
    "relu": lambda x: np.where(x > 0, x, 0.0),
    "leaky_relu": lambda x: np.where(x > 0, x, layers.LEAKY_RELU_SLOPE * x),
    "tanh": lambda x: (np.exp(x) - np.exp(-x)) / (np.exp(x) + np.exp(-x)),
    "sigmoid": expit,
    "softplus": lambda x: np.logaddexp(0, x),
}


def check_operations(report, rng):
    n, d, h, latent = 4, 5, 3, 3

    def normal(*shape):
        return rng.standard_normal(shape)

    # the linear layer, textbook and fast form
    x, W, b = normal(n, d), normal(d, h), normal(h)
    report.value("layers.linear_forward", "out", lambda: layers.linear_forward(x, W, b)[0],
                 np.einsum("nd,dh->nh", x, W) + b)
    for name in ("linear_backward", "linear_backward_fast"):
        report.backward(f"layers.{name}", lambda *a: layers.linear_forward(*a),
                        lambda dout, cache, name=name: getattr(layers, name)(dout, cache),
                        {"x": x, "W": W, "b": b})

    # every activation: forward against a formula, backward against differences;
    # inputs at least 0.1 from 0, the kink of ReLU and LeakyReLU
    a = normal(n, h)
    a = np.sign(a) * (np.abs(a) + 0.1)
    for name in layers.ACTIVATIONS:
        forms = [f"{name}_forward"] + ([f"{name}_forward_fast"] if hasattr(layers, f"{name}_forward_fast") else [])
        for form in forms:
            report.value(f"layers.{form}", "out",
                         lambda form=form: getattr(layers, form)(a)[0], ACTIVATION_REFERENCE[name](a))
        report.backward(f"layers.{name}_backward", lambda x, f=f"{name}_forward": getattr(layers, f)(x),
                        lambda dout, cache, name=name: getattr(layers, f"{name}_backward")(dout, cache),
                        {"x": a})

    # the reparameterization
    mu, logvar, eps = normal(n, latent), rng.uniform(-1, 1, (n, latent)), normal(n, latent)
    report.value("gaussian.reparameterize_forward", "z",
                 lambda: gaussian.reparameterize_forward(mu, logvar, eps)[0],
                 mu + np.sqrt(np.exp(logvar)) * eps)
    report.backward("gaussian.reparameterize_backward",
                    lambda *args: gaussian.reparameterize_forward(*args),
                    lambda dz, cache: gaussian.reparameterize_backward(dz, cache),
                    {"mu": mu, "logvar": logvar, "eps": eps}, wrt=("mu", "logvar"))

    # log-densities at a sample: log p(z) = log N(z; 0, I), and log q(z|x) at
    # z = mu + std * eps, whose backward gives the partials of log N(z; mu, var)
    # with respect to z, mu and logvar as independent variables
    z = mu + np.exp(logvar / 2) * eps
    report.value("gaussian.standard_normal_log_density_forward", "log N(z; 0, I)",
                 lambda: gaussian.standard_normal_log_density_forward(z)[0],
                 stats.norm.logpdf(z).sum(axis=1))
    report.backward("gaussian.standard_normal_log_density_backward",
                    lambda *args: gaussian.standard_normal_log_density_forward(*args),
                    lambda dlogp, cache: gaussian.standard_normal_log_density_backward(dlogp, cache),
                    {"z": z})
    report.value("gaussian.log_density_at_sample_forward", "log q(z|x)",
                 lambda: gaussian.log_density_at_sample_forward(eps[None], logvar)[0][0],
                 stats.norm.logpdf(z, mu, np.exp(logvar / 2)).sum(axis=1))
    report.backward("gaussian.log_density_at_sample_backward",
                    lambda z, mu, logvar: gaussian.log_density_at_sample_forward(
                        (z - mu) / np.exp(logvar / 2), logvar),
                    lambda dlogq, cache: gaussian.log_density_at_sample_backward(dlogq, cache),
                    {"z": z, "mu": mu, "logvar": logvar})

    # the KL divergences, forward against the closed form written with variances
    var = np.exp(logvar)
    report.value("gaussian.kl_standard_normal_forward", "KL",
                 lambda: gaussian.kl_standard_normal_forward(mu, logvar)[0],
                 np.sum(np.log(1 / np.sqrt(var)) + (var + mu ** 2) / 2 - 0.5, axis=1))
    report.backward("gaussian.kl_standard_normal_backward",
                    lambda *args: gaussian.kl_standard_normal_forward(*args),
                    lambda dkl, cache: gaussian.kl_standard_normal_backward(dkl, cache),
                    {"mu": mu, "logvar": logvar})
    mu_p, logvar_p = normal(n, latent), rng.uniform(-1, 1, (n, latent))
    var_p = np.exp(logvar_p)
    report.value("gaussian.kl_diag_gaussians_forward", "KL",
                 lambda: gaussian.kl_diag_gaussians_forward(mu, logvar, mu_p, logvar_p)[0],
                 np.sum(np.log(np.sqrt(var_p / var)) + (var + (mu - mu_p) ** 2) / (2 * var_p) - 0.5,
                        axis=1))
    report.backward("gaussian.kl_diag_gaussians_backward",
                    lambda *args: gaussian.kl_diag_gaussians_forward(*args),
                    lambda dkl, cache: gaussian.kl_diag_gaussians_backward(dkl, cache),
                    {"mu_q": mu, "logvar_q": logvar, "mu_p": mu_p, "logvar_p": logvar_p})

    # the Gaussian log-density, and every likelihood
    xg, mean, lv = normal(n, d), normal(n, d), rng.uniform(-1, 1, (n, d))
    report.value("gaussian.gaussian_log_density_forward", "log N",
                 lambda: gaussian.gaussian_log_density_forward(xg, mean, lv)[0],
                 stats.norm.logpdf(xg, mean, np.exp(lv / 2)).sum(axis=1))
    report.backward("gaussian.gaussian_log_density_backward",
                    lambda *args: gaussian.gaussian_log_density_forward(*args),
                    lambda dlogp, cache: gaussian.gaussian_log_density_backward(dlogp, cache),
                    {"x": xg, "mean": mean, "logvar": lv}, wrt=("mean", "logvar"))
    xb, logits = (rng.random((n, d)) < 0.5).astype(float), rng.uniform(-3, 3, (n, d))
    for cls in ("BernoulliLikelihood", "BernoulliLikelihoodFast"):
        check_likelihood(report, f"likelihoods.{cls}", lambda cls=cls: getattr(likelihoods, cls)(),
                         xb, logits, stats.bernoulli.logpmf(xb, expit(logits)).sum(axis=1))
    check_likelihood(report, "likelihoods.GaussianLikelihood", lambda: likelihoods.GaussianLikelihood(0.5),
                     xg, mean, stats.norm.logpdf(xg, mean, np.sqrt(0.5)).sum(axis=1), "(var 0.5)")
    out = np.concatenate([mean, lv], axis=1)
    check_likelihood(report, "likelihoods.GaussianLikelihood",
                     lambda: likelihoods.GaussianLikelihood("learned"), xg, out,
                     stats.norm.logpdf(xg, mean, np.exp(lv / 2)).sum(axis=1), "(learned)")
    xs = rng.random((n, d))        # data in (0, 1) for the Frey Face decoder, means sigmoid(a)
    for obs_var, decoder_out, var, variant in ((0.5, mean, 0.5, "(var 0.5)"),
                                               ("learned", out, np.exp(lv), "(learned)")):
        check_likelihood(report, "likelihoods.SigmoidGaussianLikelihood",
                         lambda obs_var=obs_var: likelihoods.SigmoidGaussianLikelihood(obs_var),
                         xs, decoder_out, stats.norm.logpdf(xs, expit(mean), np.sqrt(var)).sum(axis=1),
                         variant)

    check_full_covariance_operations(report, rng, n, latent + 1)

def check_likelihood(report, name, make, x, out, expected, variant=""):
    """log_prob_forward against scipy, log_prob_backward against differences (w.r.t. out)."""
    report.value(f"{name}.log_prob_forward", f"log p {variant}".strip(),
                 lambda: make().log_prob_forward(x, out)[0], expected)
    report.backward(f"{name}.log_prob_backward", lambda x, out: make().log_prob_forward(x, out),
                    lambda dlogp, cache: make().log_prob_backward(dlogp, cache),
                    {"x": x, "out": out}, wrt=("out",), variant=variant)


# ------------------------------------------------- 2. one backward pass --

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
    for _ in range(1000):
        for name, p in model.params.items():
            if name.endswith(".b"):
                p[...] = rng.uniform(0.05, 0.2, p.shape) * rng.choice([-1.0, 1.0], p.shape)
        if args.activation not in ("relu", "leaky_relu") or \
                kink_distance(model, x, eps, dream, args.seed) >= KINK_MARGIN:
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
        objectives.loss_and_grads(model, x, "wake-sleep", eps=eps, trace=trace,
                                  rng=np.random.default_rng(seed))
        inputs += [(model.encoder, trace["x_dream"]), (model.decoder, trace["z_dream"])]
    distance = np.inf
    for network, inp in inputs:
        caches = network.forward(model.params, inp)[1]
        for i, ((h, W), _) in enumerate(caches[:-1]):            # the hidden layers
            pre = h @ W + model.params[f"{network.prefix}.{i}.b"]
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


OBJECTIVE_FUNCTIONS = {"elbo": "elbo_closed_form_kl", "elbo-mc": "elbo_sampled_kl", "iwae": "iwae"}


class ObjectiveReference:
    """The objective written again, independently of objectives.py, as a
    function of any intermediate of the chain (scipy for the densities):

        loss(z, mu, logvar)  with  log p(x|z) = likelihood(x, decoder(z)),
                                   log p(z) = log N(z; 0, I),  log q(z|x) = log N(z; mu, var),
                                   KL = closed form of KL(N(mu, var) || N(0, I))

    z is an argument of its own, so a derivative with respect to z holds mu
    and logvar fixed, and one with respect to mu at fixed z is the "direct"
    part; z(mu, logvar) = mu + exp(logvar / 2) eps gives the rest.
    """

    def __init__(self, model, x, eps, objective, beta):
        self.model, self.x, self.eps, self.objective = model, x, eps, objective
        self.beta = beta if objective in ("elbo", "elbo-mc") else 1.0

    def from_logpx(self, logpx, z, mu, logvar):
        logpz = stats.norm.logpdf(z).sum(axis=-1)                               # (k, N)
        logq = stats.norm.logpdf(z, mu, np.exp(logvar / 2)).sum(axis=-1)        # (k, N)
        if self.objective == "elbo":
            kl = 0.5 * np.sum(np.exp(logvar) + mu ** 2 - 1 - logvar, axis=-1)   # (N,)
            return -np.mean(logpx) + self.beta * np.mean(kl)
        if self.objective == "elbo-mc":
            return np.mean(-logpx + self.beta * (logq - logpz))
        k = logpx.shape[0]
        return -np.mean(logsumexp(logpx + logpz - logq, axis=0) - np.log(k))

    def logpx(self, decoder_out):
        return self.model.likelihood.log_prob_forward(self.x, decoder_out)[0]

    def decoder_out(self, z):
        k, n, latent = z.shape
        return self.model.decoder.forward(self.model.params, z.reshape(k * n, latent))[0] \
            .reshape(k, n, -1)

    def loss(self, z, mu, logvar):
        return self.from_logpx(self.logpx(self.decoder_out(z)), z, mu, logvar)

    def z(self, mu, logvar):
        return mu + np.exp(logvar / 2) * self.eps

    def from_encoder_out(self, h):
        latent = h.shape[1] // 2
        mu, logvar = h[:, :latent], h[:, latent:]
        return self.loss(self.z(mu, logvar), mu, logvar)


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


def check_backward_pass(report, args, rng):
    """Every intermediate gradient of one backward pass (objectives.py's trace)."""
    x, eps = model_data(args, rng, args.k)
    model = small_model(VAE, args, rng, x, eps)
    beta = args.beta if args.objective in ("elbo", "elbo-mc") else 1.0
    trace = {}

    def backward_pass():
        objectives.loss_and_grads(model, x, args.objective, args.k, beta, eps=eps, trace=trace)
        return []
    report.guarded("objectives.loss_and_grads", "trace", backward_pass)
    if not trace:
        return
    ref = ObjectiveReference(model, x, trace["eps"], args.objective, beta)
    mu, logvar, z = trace["mu"], trace["logvar"], trace["z"]
    floor = loss_floor(ref.loss(z, mu, logvar))
    objective_fn = f"objectives.{OBJECTIVE_FUNCTIONS[args.objective]}"
    direct_fn = objective_fn if args.objective == "elbo" else "objectives._backward_through_log_weights"
    chain = "objectives.backward_through_samples"

    def row(function, name, value, loss_of_value):
        """trace[name] (a gradient dL/dv, named 'd' + v) against differences of loss_of_value(v)."""
        report.backward(function, lambda v: (loss_of_value(v), None),
                        lambda _, __, name=name: trace[name], {name[1:]: value}, floor=floor)

    row(objective_fn, "dlogpx", trace["logpx"], lambda v: ref.from_logpx(v, z, mu, logvar))
    row(f"likelihoods.{type(model.likelihood).__name__}.log_prob_backward", "ddecoder_out",
        trace["decoder_out"], lambda v: ref.from_logpx(ref.logpx(v), z, mu, logvar))
    k, n, latent = z.shape
    check_layer_inputs(report, model.decoder, model.params, z.reshape(k * n, latent),
                       trace["ddecoder_out"].reshape(k * n, -1),
                       lambda out: ref.from_logpx(ref.logpx(out.reshape(k, n, -1)), z, mu, logvar),
                       floor)
    row(chain, "dz", z, lambda v: ref.loss(v, mu, logvar))
    row("gaussian.reparameterize_backward", "dmu_via_z", mu, lambda v: ref.loss(ref.z(v, logvar), mu, logvar))
    row("gaussian.reparameterize_backward", "dlogvar_via_z", logvar,
        lambda v: ref.loss(ref.z(mu, v), mu, logvar))
    row(direct_fn, "dmu_direct", mu, lambda v: ref.loss(z, v, logvar))
    row(direct_fn, "dlogvar_direct", logvar, lambda v: ref.loss(z, mu, v))
    row(chain, "dmu", mu, lambda v: ref.loss(ref.z(v, logvar), v, logvar))
    row(chain, "dlogvar", logvar, lambda v: ref.loss(ref.z(mu, v), mu, v))
    encoder_out = np.concatenate([mu, logvar], axis=1)
    row(chain, "dencoder_out", encoder_out, ref.from_encoder_out)
    check_layer_inputs(report, model.encoder, model.params, x, trace["dencoder_out"],
                       ref.from_encoder_out, floor)


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


def parameter_rows(report, function, model, loss_and_grads, names=None):
    """One row per parameter tensor (all, or those in ``names``)."""
    def check():
        floor = loss_floor(loss_and_grads()[0])
        return [Row(report.current, function, name, err, None, err <= TOL)
                for name, (_, err) in check_parameter_gradients(model.params, loss_and_grads,
                                                                STEP, floor).items()
                if names is None or name in names]
    report.guarded(function, "parameters", check)


def check_models(report, args, rng):
    """A VAE under every objective, the Autoencoder: every parameter tensor."""
    runs = [("elbo", 2, args.beta), ("elbo-mc", 2, args.beta), ("iwae", 3, 1.0)]   # k = 1: section 2
    for objective, k, beta in runs:
        x, eps = model_data(args, rng, k)
        model = small_model(VAE, args, rng, x, eps)
        parameter_rows(report, f"objectives.{OBJECTIVE_FUNCTIONS[objective]} (k {k})", model,
                       lambda model=model, x=x, eps=eps, objective=objective, k=k, beta=beta:
                       _loss(objectives.loss_and_grads(model, x, objective, k, beta, eps=eps)))
    # wake-sleep descends two losses, one per network: the wake phase's
    # -log p(x|z) (decoder) and the sleep phase's -log q(z|x) of a dream drawn
    # afresh from the same seed at every evaluation (encoder)
    x, eps = model_data(args, rng)
    model = small_model(VAE, args, rng, x, eps, dream=True)
    for phase, loss_key in (("wake", "recon"), ("sleep", "sleep_loss")):
        def wake_sleep(model=model, x=x, eps=eps, loss_key=loss_key):
            trace = {}
            terms, grads = objectives.loss_and_grads(model, x, "wake-sleep", eps=eps, trace=trace,
                                                     rng=np.random.default_rng(args.seed))
            return {**terms, **trace}[loss_key], grads
        prefix = "decoder" if phase == "wake" else "encoder"
        parameter_rows(report, "objectives.wake_sleep" if phase == "wake" else "objectives.sleep_phase",
                       model, wake_sleep, [n for n in model.params if n.startswith(prefix)])
    x, _ = model_data(args, rng)
    ae = small_model(Autoencoder, args, rng, x)
    parameter_rows(report, "autoencoder.Autoencoder.loss_and_grads", ae, lambda: ae.loss_and_grads(x))
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
    report.value("full_gaussian.factor_forward", "L", lambda: factor, expected)
    report.backward("full_gaussian.factor_backward", full_gaussian.factor_forward,
                    full_gaussian.factor_backward, {"log_diag": log_diag, "lower": lower})

    mu, eps = rng.standard_normal((n, latent)), rng.standard_normal((n, latent))
    cov = factor @ np.swapaxes(factor, 1, 2)
    z = mu + np.einsum("nij,nj->ni", factor, eps)
    report.value("full_gaussian.reparameterize_forward", "z",
                 lambda: full_gaussian.reparameterize_forward(mu, factor, eps)[0], z)
    report.backward("full_gaussian.reparameterize_backward",
                    lambda eps, mu, factor: full_gaussian.reparameterize_forward(mu, np.tril(factor), eps),
                    full_gaussian.reparameterize_backward,
                    {"eps": eps, "mu": mu, "factor": factor}, wrt=("mu", "factor"))
    report.value("full_gaussian.log_density_at_sample_forward", "log q(z|x)",
                 lambda: full_gaussian.log_density_at_sample_forward(eps[None], factor)[0][0],
                 np.array([stats.multivariate_normal(mu[i], cov[i]).logpdf(z[i]) for i in range(n)]))
    report.backward("full_gaussian.log_density_at_sample_backward",   # z, mu, L independent
                    lambda z, mu, factor: full_gaussian.log_density_at_sample_forward(
                        np.linalg.solve(np.tril(factor), (z - mu)[..., None])[..., 0], np.tril(factor)),
                    full_gaussian.log_density_at_sample_backward,
                    {"z": z, "mu": mu, "factor": factor})

    logdet = np.linalg.slogdet(cov)[1]
    report.value("full_gaussian.kl_standard_normal_forward", "KL",
                 lambda: full_gaussian.kl_standard_normal_forward(mu, factor)[0],
                 0.5 * (np.trace(cov, axis1=1, axis2=2) + np.sum(mu * mu, axis=1) - latent - logdet))
    report.backward("full_gaussian.kl_standard_normal_backward",
                    lambda mu, factor: full_gaussian.kl_standard_normal_forward(mu, np.tril(factor)),
                    full_gaussian.kl_standard_normal_backward, {"mu": mu, "factor": factor})
    mu_p = rng.standard_normal((n, latent))
    factor_p = full_gaussian.factor_forward(rng.uniform(-0.5, 0.5, (n, latent)),
                                            0.5 * rng.standard_normal((n, rows.size)))[0]
    cov_p = factor_p @ np.swapaxes(factor_p, 1, 2)
    diff, precision_p = mu_p - mu, np.linalg.inv(cov_p)
    report.value("full_gaussian.kl_full_gaussians_forward", "KL",
                 lambda: full_gaussian.kl_full_gaussians_forward(mu, factor, mu_p, factor_p)[0],
                 0.5 * (np.trace(precision_p @ cov, axis1=1, axis2=2)
                        + np.einsum("ni,nij,nj->n", diff, precision_p, diff) - latent
                        + np.linalg.slogdet(cov_p)[1] - logdet))
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
        parameter_rows(report, f"objectives.{OBJECTIVE_FUNCTIONS[objective]} (full cov, k {k})",
                       model, lambda model=model, x=x, eps=eps, objective=objective, k=k, beta=beta:
                       _loss(objectives.loss_and_grads(model, x, objective, k, beta, eps=eps)))


# --------------------------------------------------------- 4. optimizers --

def textbook_update(name, p, g, state, t, hyper):
    """One update of optimizer ``name`` as its paper writes it (float64, no in-place tricks)."""
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
    "Adagrad": dict(lr=0.1, eps=0.1),
    "Adam": dict(lr=0.1, betas=(0.8, 0.99), eps=0.1),
    "AdamFast": dict(lr=0.1, betas=(0.8, 0.99), eps=0.1),
}


def check_optimizers(report, rng, steps=4):
    """Each optimizer over ``steps`` steps on a FlatParams (the one-buffer path
    training takes, gradients used as scratch as TrainingStep does), its
    parameter updates against textbook_update's."""
    shapes = {"W": (3, 2), "b": (2,)}
    start = rng.standard_normal(8)
    grads = [rng.standard_normal(8) for _ in range(steps)]
    for name, hyper in OPTIMIZERS.items():
        def check(name=name, hyper=hyper):
            params = FlatParams(shapes, np.float64, start.copy())
            opt = getattr(optim, name)(params, **hyper)
            expected, state, got, want = start.copy(), {}, [], []
            for t, g in enumerate(grads, start=1):
                before = params.flat.copy()
                opt.step(FlatParams(shapes, np.float64, g.copy()), grads_are_scratch=True)
                new = textbook_update(name, expected, g, state, t, hyper)
                got.append(params.flat - before)
                want.append(new - expected)
                expected = new
            got, want = np.array(got), np.array(want)
            error = relative_error(got, want)
            return [Row(report.current, f"optim.{name}", f"{steps} updates", error,
                        constant_ratio(got, want), error <= VALUE_TOL)]
        report.guarded(f"optim.{name}", "updates", check)


# ------------------------------------------------------------------ main --

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


def parser():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--activation", choices=sorted(layers.ACTIVATIONS), default="tanh",
                   help="hidden activation of the models (default: %(default)s)")
    p.add_argument("--likelihood", choices=sorted(LIKELIHOODS), default="bernoulli",
                   help="decoder of the models (default: %(default)s)")
    p.add_argument("--beta", type=nonnegative_float, default=0.5,
                   help="KL weight (default: %(default)s; != 1 so a forgotten beta shows)")
    p.add_argument("--objective", choices=sorted(OBJECTIVE_FUNCTIONS), default="elbo",
                   help="objective of the backward pass of section 2 (default: %(default)s)")
    p.add_argument("--k", type=positive_int, default=1,
                   help="samples of z per example in section 2 (default: %(default)s)")
    p.add_argument("--hidden", type=hidden_sizes, default=(5,),
                   help="hidden layer sizes, e.g. 5 or 8,6 (default: 5)")
    p.add_argument("--latent", type=positive_int, default=2, help="latent size (default: 2)")
    p.add_argument("--input-dim", type=positive_int, default=6, help="data size (default: 6)")
    p.add_argument("--batch", type=positive_int, default=3, help="batch size (default: 3)")
    p.add_argument("--seed", type=int, default=0, help="seed of every draw (default: 0)")
    p.add_argument("-x", "--first-failure", action="store_true",
                   help="stop at the first failing row")
    return p


def run(args, stream=None):
    """Every check in order; returns the rows (up to the first failure with -x)."""
    stream = sys.stdout if stream is None else stream
    rng = np.random.default_rng(args.seed)
    report = Report(stream, args.first_failure)
    sections = [
        ("Operations, each forward/backward pair on its own", lambda: check_operations(report, rng)),
        (f"One backward pass ({args.objective}, k {args.k}, beta {args.beta:g}, {args.activation}, "
         f"{args.likelihood}): every intermediate\n   gradient against the loss as a function "
         "of that intermediate",
         lambda: check_backward_pass(report, args, rng)),
        (f"Whole models ({args.activation}, {args.likelihood}, beta {args.beta:g}): every "
         "parameter tensor under every objective", lambda: check_models(report, args, rng)),
        ("Optimizers, every update against the textbook formula", lambda: check_optimizers(report, rng)),
    ]
    try:
        for number, (title, check) in enumerate(sections, start=1):
            report.section(number, title)
            check()
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
            f"           a gradient passes at <= {TOL:g}; a forward value or an optimizer update, "
            f"against its formula written",
            f"           another way, at <= {VALUE_TOL:g}",
            "  ratio    analytic / numerical where that is one constant: 2.00 twice too large, "
            "-1.00 sign flipped, 0.00 missing"):
        print(line, file=stream)
    rows = run(args, stream)
    passed = sum(row.passed for row in rows)
    failed = [row for row in rows if not row.passed]
    print(f"\n{passed} of {len(rows)} passed"
          + (f"; first failure: {failed[0].function} ({failed[0].quantity})" if failed else "")
          + f"; {time.perf_counter() - start:.1f} s", file=stream)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
