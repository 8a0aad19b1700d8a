"""Check every hand-written gradient against central differences, operation by operation.

    python demos/gradcheck.py                                   # tanh, Bernoulli, beta 0.5
    python demos/gradcheck.py --activation relu --likelihood gaussian-learned --beta 1
    python demos/gradcheck.py --hidden 8,6 --latent 3 -x        # -x: stop at the first failure

A diagnostic, in the order a bug would propagate, so that the first failing
row names the broken operation:

1. every forward/backward pair on its own (the linear layer, each
   activation, the reparameterization, each KL, each likelihood): its
   forward against an independent formula, its backward against central
   differences of its forward;
2. every intermediate gradient of one VAE backward pass (objectives.py's
   ``trace``), each against central differences of the loss as a function
   of that intermediate;
3. every parameter tensor of whole models (the VAE under each objective,
   the Autoencoder);
4. the optimizers, each update against the textbook formula.

Each row names the function it checks as it is named in the code, the
largest relative error |a - n| / max(|a| + |n|, 1e-8), the ratio
analytic / numerical where that is one constant (2.00: a factor of 2 too
many; -1.00: a flipped sign; 0.00: a missing term), and PASS or FAIL.
Everything runs in float64 with a fixed seed; eps is held fixed, so the VAE
loss is a deterministic function of its inputs.

Exit status: 0 if every row passes, 1 otherwise, 2 for bad flags.
"""

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

try:
    import numpyvae  # noqa: F401  (installed, or run from the source tree below)
except ImportError:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
from scipy import stats
from scipy.special import expit

from numpyvae import gaussian, layers, likelihoods, optim
from numpyvae.autoencoder import Autoencoder
from numpyvae.gradcheck import check_backward, check_parameter_gradients, constant_ratio, relative_error
from numpyvae.params import FlatParams
from numpyvae.vae import VAE

TOL = 1e-6          # backward rows: max relative error against central differences
VALUE_TOL = 1e-10   # forward rows and optimizer updates: against a formula evaluated another way
STEP = 1e-5         # central-difference step

LIKELIHOODS = {"bernoulli": ("bernoulli", 1.0), "gaussian": ("gaussian", 0.5),
               "gaussian-learned": ("gaussian", "learned")}


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

    def add(self, row):
        self.rows.append(row)
        ratio = "" if row.ratio is None else f"{row.ratio:.2f}"
        error = "raised" if row.error == np.inf else f"{row.error:.1e}"
        print(f"  {row.function:<54}{row.quantity:<16}{error:>9}{ratio:>7}  "
              f"{'PASS' if row.passed else 'FAIL'}{'  ' + row.note if row.note else ''}",
              file=self.stream)
        if self.first_failure and not row.passed:
            raise StopAtFirstFailure

    def section(self, number, title):
        self.current = number
        print(f"\n{number}. {title}", file=self.stream)
        print(f"  {'function':<54}{'checks':<16}{'rel err':>9}{'ratio':>7}  result",
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
            error = relative_error(got(), expected)
            return [Row(self.current, function, quantity, error,
                        constant_ratio(got(), expected), error <= tol)]
        self.guarded(function, quantity, check)

    def backward(self, function, forward, backward, inputs, wrt=None, variant=""):
        """One row per checked input: backward against central differences of forward."""
        def check():
            return [Row(self.current, function, f"d{r.name} {variant}".strip(), r.max_rel_error,
                        r.ratio, r.passed)
                    for r in check_backward(forward, backward, inputs, wrt=wrt, tol=TOL, h=STEP)]
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

    # the KL divergences (against scipy's entropy of the two densities would need
    # integration; the closed forms are evaluated with the variances instead)
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
    report.value("gaussian.kl_full_gaussians", "KL (diagonal)",
                 lambda: gaussian.kl_full_gaussians(mu, var[..., None] * np.eye(latent),
                                                   mu_p, var_p[..., None] * np.eye(latent)),
                 gaussian.kl_diag_gaussians_forward(mu, logvar, mu_p, logvar_p)[0])

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


def check_likelihood(report, name, make, x, out, expected, variant=""):
    """log_prob_forward against scipy, log_prob_backward against differences (w.r.t. out)."""
    report.value(f"{name}.log_prob_forward", f"log p {variant}".strip(),
                 lambda: make().log_prob_forward(x, out)[0], expected)
    report.backward(f"{name}.log_prob_backward", lambda x, out: make().log_prob_forward(x, out),
                    lambda dlogp, cache: make().log_prob_backward(dlogp, cache),
                    {"x": x, "out": out}, wrt=("out",), variant=variant)


# -------------------------------------------------------- 3. whole models --

def small_model(cls, args, rng):
    """A float64 model of the chosen size with small random nonzero biases.

    Biases start at zero; a ReLU unit that is dead for an example then feeds
    exactly 0 into the next layer, the kink where a central difference
    averages two slopes.  Random biases move pre-activations off it.
    """
    likelihood, obs_var = LIKELIHOODS[args.likelihood]
    model = cls(args.input_dim, args.hidden, args.latent, likelihood, obs_var, args.activation,
                np.float64, args.seed)
    for name, p in model.params.items():
        if name.endswith(".b"):
            p[...] = rng.uniform(0.05, 0.2, p.shape) * rng.choice([-1.0, 1.0], p.shape)
    return model


def model_data(args, rng):
    """A batch x (N, D) valid for the likelihood and eps (N, L)."""
    if args.likelihood == "bernoulli":
        x = (rng.random((args.batch, args.input_dim)) < 0.5).astype(np.float64)
    else:
        x = rng.standard_normal((args.batch, args.input_dim))
    return x, rng.standard_normal((args.batch, args.latent))


def check_models(report, args, rng):
    x, eps = model_data(args, rng)
    vae = small_model(VAE, args, rng)
    ae = small_model(Autoencoder, args, rng)
    runs = [(f"VAE.loss_and_grads (beta {args.beta:g})", vae,
             lambda: vae.loss_and_grads(x, eps=eps, beta=args.beta)),
            ("Autoencoder.loss_and_grads", ae, lambda: ae.loss_and_grads(x))]
    for function, model, loss_and_grads in runs:
        def check(model=model, loss_and_grads=loss_and_grads, function=function):
            return [Row(report.current, function, name, err, None, err <= TOL)
                    for name, (_, err) in check_parameter_gradients(model.params, loss_and_grads,
                                                                    STEP).items()]
        report.guarded(function, "parameters", check)


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

def hidden_sizes(text):
    try:
        sizes = tuple(int(s) for s in text.split(",") if s.strip())
    except ValueError:
        sizes = ()
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"expected positive sizes like 5 or 8,6, got {text!r}")
    return sizes


def positive_int(text):
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def nonnegative_float(text):
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}")
    return value


def parser():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--activation", choices=sorted(layers.ACTIVATIONS), default="tanh",
                   help="hidden activation of the models (default: %(default)s)")
    p.add_argument("--likelihood", choices=sorted(LIKELIHOODS), default="bernoulli",
                   help="decoder of the models (default: %(default)s)")
    p.add_argument("--beta", type=nonnegative_float, default=0.5,
                   help="KL weight (default: %(default)s; != 1 so a forgotten beta shows)")
    p.add_argument("--hidden", type=hidden_sizes, default=(5,),
                   help="hidden layer sizes, e.g. 5 or 8,6 (default: 5)")
    p.add_argument("--latent", type=positive_int, default=2, help="latent size (default: 2)")
    p.add_argument("--input-dim", type=positive_int, default=6, help="data size (default: 6)")
    p.add_argument("--batch", type=positive_int, default=3, help="batch size (default: 3)")
    p.add_argument("--seed", type=int, default=0, help="seed of every draw (default: 0)")
    p.add_argument("-x", "--first-failure", action="store_true",
                   help="stop at the first failing row")
    return p


def run(args, stream=sys.stdout):
    """Every check in order; returns the rows (up to the first failure with -x)."""
    rng = np.random.default_rng(args.seed)
    report = Report(stream, args.first_failure)
    sections = [
        ("Operations, each forward/backward pair on its own", lambda: check_operations(report, rng)),
        (f"Whole models, every parameter tensor ({args.activation}, {args.likelihood})",
         lambda: check_models(report, args, rng)),
        ("Optimizers, every update against the textbook formula", lambda: check_optimizers(report, rng)),
    ]
    try:
        for number, (title, check) in enumerate(sections, start=1):
            report.section(number, title)
            check()
    except StopAtFirstFailure:
        print("  (stopped at the first failure: -x)", file=stream)
    return report.rows


def main(argv=None, stream=sys.stdout):
    args = parser().parse_args(argv)
    start = time.perf_counter()
    print("numpyvae gradient check: every backward against central differences, float64", file=stream)
    print(f"  rel err = max |analytic - numerical| / max(|analytic| + |numerical|, 1e-8), "
          f"step {STEP:g}; a backward passes at <= {TOL:g},", file=stream)
    print(f"  a forward value or an optimizer update at <= {VALUE_TOL:g} against a formula "
          "written another way", file=stream)
    print("  ratio = analytic / numerical where that is one constant (2.00: twice too large, "
          "-1.00: sign flipped)", file=stream)
    rows = run(args, stream)
    passed = sum(row.passed for row in rows)
    failed = [row for row in rows if not row.passed]
    print(f"\n{passed} of {len(rows)} passed"
          + (f"; first failure: {failed[0].function} ({failed[0].quantity})" if failed else "")
          + f"; {time.perf_counter() - start:.1f} s", file=stream)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
