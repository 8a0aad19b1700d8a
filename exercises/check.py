"""Grade the exercises: each backward you wrote against central differences.

    python exercises/check.py                 # every exercise
    python exercises/check.py kl adam         # some of them
    python exercises/check.py --reference     # the same checks on the library's own code
    python exercises/check.py --dir my_copy   # the exercise files of another folder

For each exercise: PASS (every gradient within 1e-6 relative of central
differences, float64), FAIL (with the relative error, the ratio analytic /
numerical when it is one constant, and a hint when the mistake is a common
one: a factor of 2, a flipped sign, a missing 1/N, ...), or TODO (the
backward still raises NotImplementedError).  Adam (exercise 10) has no
numerical side: its steps are compared with the textbook update.  The loss
of exercise 12 is fitted, on random inputs, as a weighted sum of its
reconstruction and KL terms plus a constant, and each weight is named.
Exit status 0 only when every exercise passes, 1 otherwise, 2 for bad
arguments.
"""

import argparse
import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

HERE = Path(__file__).resolve().parent
try:
    import numpyvae  # noqa: F401  (installed, or run from the source tree below)
except ImportError:
    sys.path.insert(0, str(HERE.parent))

import numpy as np

from numpyvae.gradcheck import (TOL, check_backward, constant_ratio, numerical_gradient,
                                relative_error)


@dataclass
class Line:
    """One checked quantity of an exercise."""

    what: str
    error: float
    ratio: float | None
    passed: bool
    hint: str = ""
    against: str = "numerical"   # what ratio = yours / it compares with


def ratio_hint(ratio, batch):
    """What a constant ratio analytic / numerical usually means."""
    if ratio is None:
        return ""

    def near(target):
        return abs(ratio - target) <= 1e-3 * max(1.0, abs(target))
    if near(-1):
        return "the sign is flipped"
    if near(0):
        return "this gradient is zero: a term is missing"
    if near(2):
        return "twice too large: a factor 1/2 is missing"
    if near(0.5):
        return "half the right size: a factor 1/2 too many"
    if batch and near(batch):
        return f"N = {batch} times too large: the 1/N of the batch mean is missing"
    if batch and near(1 / batch):
        return f"1/N = 1/{batch} of the right size: a mean where the formula sums over the batch"
    return f"off by a constant factor {ratio:.3g}"


def recognise(analytic, candidates, ratio, batch):
    """The hint of the first known mistake that ``analytic`` reproduces, else
    what the ratio says."""
    for hint, wrong in candidates:
        if np.shape(wrong) == np.shape(analytic) and relative_error(analytic, wrong) <= TOL:
            return hint
    return ratio_hint(ratio, batch)


def grade_op(forward, backward, inputs, wrt, dout, mistakes=None):
    """Lines for an op's backward: one per input in ``wrt``, via check_backward.

    mistakes: {input name: [(hint, the gradient that mistake gives), ...]}."""
    rows = check_backward(forward, backward, inputs, wrt=wrt, dout=dout, tol=TOL)
    batch = next(iter(inputs.values())).shape[0]
    return [Line(f"d{row.name}", row.max_rel_error, row.ratio, row.passed,
                 "" if row.passed else recognise(row.analytic, (mistakes or {}).get(row.name, ()),
                                                 row.ratio, batch))
            for row in rows]


def away_from_zero(rng, shape, margin=0.1):
    r = rng.standard_normal(shape)
    return np.sign(r) * (np.abs(r) + margin)


# ------------------------------------------------------------ the exercises --

def grade_linear(module, rng):
    x, W, b = rng.standard_normal((4, 5)), rng.standard_normal((5, 3)), rng.standard_normal(3)
    dout = rng.standard_normal((4, 3))
    return grade_op(module.linear_forward, module.linear_backward, {"x": x, "W": W, "b": b},
                    None, dout, {"b": [("db is the sum of dout over the batch, not its mean",
                                        dout.mean(axis=0))]})


def grade_activation(forward_name, backward_name, make_input, mistakes_of):
    def grade(module, rng):
        x = make_input(rng)
        dout = rng.standard_normal(x.shape)
        out = getattr(module, forward_name)(x)[0]
        return grade_op(getattr(module, forward_name), getattr(module, backward_name), {"x": x},
                        None, dout, {"x": mistakes_of(x, out, dout)})
    return grade


def relu_mistakes(x, out, dout):
    return [("the mask is x > 0, i.e. out > 0: out >= 0 is true everywhere", dout),
            ("dx = dout * [out > 0]: the slope is 0 or 1, not out", dout * out)]


def tanh_mistakes(x, out, dout):
    return [("d tanh(x)/dx = 1 - tanh(x)^2 = 1 - out^2: square out", dout * (1 - out)),
            ("1 - x^2 uses the input; the cache holds out = tanh(x): 1 - out^2",
             dout * (1 - x * x)),
            ("the chain rule multiplies by dout", 1 - out * out)]


def sigmoid_mistakes(x, out, dout):
    return [("sigmoid'(x) = sigmoid(x) (1 - sigmoid(x)) = out (1 - out): (1 - out) is missing",
             dout * out),
            ("sigmoid'(x) = out (1 - out): the factor out is missing", dout * (1 - out)),
            ("you wrote s(1+s): sigmoid'(x) = e^-x / (1 + e^-x)^2 = s (1 - s), since "
             "e^-x / (1 + e^-x) = 1 - s (docs/backprop_mlp.md, section 2)", dout * out * (1 + out)),
            ("the cache already holds out = sigmoid(x): do not apply sigmoid again",
             dout * (1 / (1 + np.exp(-out))) * (1 - 1 / (1 + np.exp(-out))))]


def grade_reparameterize(module, rng):
    mu, logvar, eps = (rng.standard_normal((4, 3)), rng.uniform(-1, 1, (4, 3)),
                       rng.standard_normal((4, 3)))
    dz, std = rng.standard_normal((4, 3)), np.exp(logvar / 2)
    return grade_op(module.reparameterize_forward, module.reparameterize_backward,
                    {"mu": mu, "logvar": logvar, "eps": eps}, ("mu", "logvar"), dz,
                    {"logvar": [("d exp(logvar / 2) / dlogvar = exp(logvar / 2) / 2: the 1/2 of "
                                 "the exponent is missing", dz * eps * std),
                                ("z depends on logvar through std = exp(logvar / 2), whose "
                                 "derivative is std / 2: the std is missing", dz * eps / 2),
                                ("std = exp(logvar / 2) is the standard deviation; exp(logvar) "
                                 "is the variance", dz * eps * std ** 2 / 2)],
                     "mu": [("z = mu + ...: dz/dmu = 1, so dmu = dz", dz * std)]})


def grade_kl(module, rng):
    mu, logvar = rng.standard_normal((4, 3)), rng.uniform(-1, 1, (4, 3))
    dkl, var = rng.standard_normal(4), np.exp(logvar)
    return grade_op(module.kl_forward, module.kl_backward, {"mu": mu, "logvar": logvar}, None, dkl,
                    {"mu": [("each example's KL is weighted by its dkl: multiply by dkl[:, None]",
                             mu)],
                     "logvar": [("d/dlogvar [exp(logvar) - logvar] / 2 = (exp(logvar) - 1) / 2: "
                                 "the sign of the 1", dkl[:, None] * (var + 1) / 2),
                                ("the 1/2 in front of the sum is missing",
                                 dkl[:, None] * (var - 1)),
                                ("each example's KL is weighted by its dkl: multiply by dkl[:, None]",
                                 (var - 1) / 2)]})


def grade_bernoulli(module, rng):
    x, logits = (rng.random((4, 6)) < 0.5).astype(float), rng.uniform(-3, 3, (4, 6))
    dlogp, p = rng.standard_normal(4), 1 / (1 + np.exp(-logits))
    return grade_op(module.log_prob_forward, module.log_prob_backward,
                    {"x": x, "logits": logits}, ("logits",), dlogp,
                    {"logits": [("d/dl [x l - softplus(l)] = x - sigmoid(l): the sign is flipped",
                                 dlogp[:, None] * (p - x)),
                                ("multiply by each example's dlogp (dlogp[:, None])", x - p),
                                ("d softplus(l) / dl = sigmoid(l), not softplus(l)",
                                 dlogp[:, None] * (x - np.log1p(np.exp(logits))))]})


def grade_gaussian(module, rng):
    x, mean, logvar = (rng.standard_normal((4, 5)), rng.standard_normal((4, 5)),
                       rng.uniform(-1, 1, (4, 5)))
    dlogp = rng.standard_normal(4)
    d, diff, precision = dlogp[:, None], x - mean, np.exp(-logvar)
    return grade_op(module.log_prob_forward, module.log_prob_backward,
                    {"x": x, "mean": mean, "logvar": logvar}, ("mean", "logvar"), dlogp,
                    {"mean": [("(x - mean) / var: the precision exp(-logvar) is missing", d * diff),
                              ("d/dmean -(x - mean)^2 / 2 = +(x - mean): the sign",
                               -d * diff * precision)],
                     "logvar": [("the 1/2 in front of both terms is missing",
                                 d * (diff ** 2 * precision - 1)),
                                ("d/dlogvar [-logvar / 2] = -1/2: the sign of the 1",
                                 d * (diff ** 2 * precision + 1) / 2)]})


def vae_problem(rng):
    """A small float64 VAE (tanh, Bernoulli), a binary batch x (3, 6) and eps (3, 2)."""
    from numpyvae import VAE
    model = VAE(6, (5,), 2, "bernoulli", activation="tanh", dtype=np.float64, seed=0)
    for name, p in model.params.items():
        if name.endswith(".b"):
            p[...] = rng.uniform(-0.2, 0.2, p.shape)
    x = (rng.random((3, 6)) < 0.5).astype(np.float64)
    return model, x, rng.standard_normal((3, 2))


def vae_errors(module, model, x, eps, beta):
    """{network: (max rel err, ratio)} of vae_backward's gradients against differences."""
    def loss():
        return module.vae_forward(model, x, eps, beta)[0]
    grads = module.vae_backward(model, module.vae_forward(model, x, eps, beta)[1])
    if set(grads) != set(model.params):
        raise ValueError(f"vae_backward must return a gradient for each of {sorted(model.params)}")
    result = {}
    for network in ("decoder", "encoder"):
        names = [n for n in model.params if n.startswith(network)]
        analytic = np.concatenate([np.ravel(grads[n]) for n in names])
        numerical = np.concatenate([numerical_gradient(loss, model.params[n]).ravel()
                                    for n in names])
        result[network] = (relative_error(analytic, numerical), constant_ratio(analytic, numerical))
    return result


def grade_vae_step(module, rng):
    model, x, eps = vae_problem(rng)
    errors = vae_errors(module, model, x, eps, beta=0.5)
    lines = []
    for network, (error, ratio) in errors.items():
        passed, hint = error <= TOL, ""
        if not passed:
            hint = ratio_hint(ratio, x.shape[0])
        if not passed and network == "decoder":
            hint = hint or "the reconstruction path: dL/dlog p(x_n|z_n) = -1/N, then the likelihood's and the decoder's backward"
        if not passed and network == "encoder" and errors["decoder"][0] <= TOL:
            if vae_errors(module, model, x, eps, beta=1.0)["encoder"][0] <= TOL:
                hint = "right for beta = 1 only: the KL path's upstream gradient is beta / N"
            else:
                hint = hint or ("the encoder sees the sum of both paths: [dmu_via_z + dmu_kl, "
                                "dlogvar_via_z + dlogvar_kl], the KL's upstream beta / N")
        lines.append(Line(f"{network} parameters", error, ratio, passed, hint))
    return lines


def textbook_adam(p, g, m, v, t, lr, beta1, beta2, eps, correct_m=True, correct_v=True,
                  eps_inside=False, average=True, v_decay=None, v_correction=None):
    """Adam's step as the paper writes it, or with one of the common mistakes
    (v_decay, v_correction: the beta a mistaken v update or v_hat uses instead of beta2)."""
    v_decay = beta2 if v_decay is None else v_decay
    v_correction = beta2 if v_correction is None else v_correction
    m = beta1 * m + ((1 - beta1) if average else 1) * g
    v = v_decay * v + ((1 - v_decay) if average else 1) * g * g
    m_hat = m / (1 - beta1 ** t) if correct_m else m
    v_hat = v / (1 - v_correction ** t) if correct_v else v
    denominator = np.sqrt(v_hat + eps) if eps_inside else np.sqrt(v_hat) + eps
    return p - lr * m_hat / denominator, m, v


ADAM_MISTAKES = [
    ("m_hat = m / (1 - beta1^t): the bias correction of m is missing", dict(correct_m=False)),
    ("v_hat = v / (1 - beta2^t): the bias correction of v is missing", dict(correct_v=False)),
    ("both bias corrections are missing: m_hat = m / (1 - beta1^t), v_hat = v / (1 - beta2^t)",
     dict(correct_m=False, correct_v=False)),
    ("eps goes outside the square root: sqrt(v_hat) + eps", dict(eps_inside=True)),
    ("m and v are averages: m <- beta1 m + (1 - beta1) g", dict(average=False)),
    ("v is updated with beta1: v <- beta2 v + (1 - beta2) g^2 (beta1 belongs to m, beta2 to v)",
     dict(v_decay="beta1")),
    ("v_hat is corrected with beta1: v_hat = v / (1 - beta2^t), the beta of v's own average",
     dict(v_correction="beta1")),
]


def grade_adam(module, rng):
    """Three steps from m = v = 0, with an eps as large as the gradients (so it matters)."""
    hyper = dict(lr=0.1, beta1=0.9, beta2=0.999, eps=0.3)
    p0, grads = rng.standard_normal((3, 4)), [rng.standard_normal((3, 4)) for _ in range(3)]

    def run(step):
        p, m, v, out = p0.copy(), np.zeros_like(p0), np.zeros_like(p0), []
        for t, g in enumerate(grads, start=1):
            p, m, v = (np.array(a, dtype=np.float64) for a in step(p.copy(), g.copy(), m.copy(),
                                                                   v.copy(), t, **hyper))
            out.append((p, m, v))
        return [np.array(seq) for seq in zip(*out)]
    got, want = run(module.adam_update), run(textbook_adam)
    lines = []
    for name, a, b in zip("pmv", got, want):
        error = relative_error(a, b)
        hint = ""
        if error > TOL:
            for text, mistake in ADAM_MISTAKES:
                mistake = {k: (hyper["beta1"] if v == "beta1" else v) for k, v in mistake.items()}
                wrong = run(lambda *args, mistake=mistake, **kw: textbook_adam(*args, **kw, **mistake))
                if all(relative_error(x, y) <= TOL for x, y in zip(got, wrong)):
                    hint = text
                    break
        lines.append(Line(name, error, constant_ratio(a - p0 if name == "p" else a,
                                                      b - p0 if name == "p" else b),
                          error <= TOL, hint,
                          against="the textbook step" if name == "p" else f"the textbook {name}"))
    return lines


# ------------------------------------- exercise 12: the loss, normalised --

LOSS_SHAPE = {"n": 5, "d": 784, "latent": 20}   # a batch of 5 MNIST-sized examples, 20 latents
TRAINING_SET = 60_000                            # MNIST's N, for the KL weight M / N
LOSS_DRAWS = 40                                  # random inputs to fit the weights on
LOG_2PI = float(np.log(2 * np.pi))


def loss_terms(x, logits, mu, logvar):
    """The batch means (float64) that a VAE loss is built from, right or wrong:

        bernoulli   sum_d [softplus(l_d) - x_d l_d]         -log p(x|z), the right reconstruction
        squared     sum_d (x_d - sigmoid(l_d))^2            a squared error instead
        kl_mu       1/2 sum_l mu_l^2                        the KL's mean part
        kl_var      1/2 sum_l [exp(s_l) - 1 - s_l]          its variance part, s = logvar
        kl_var_std  1/2 sum_l [exp(2 s_l) - 1 - 2 s_l]      the same with std = exp(logvar)
    """
    def mean(per_example):
        return float(np.mean(per_example))
    return {"bernoulli": mean(np.sum(np.logaddexp(0, logits) - x * logits, axis=1)),
            "squared": mean(np.sum((x - 1 / (1 + np.exp(-logits))) ** 2, axis=1)),
            "kl_mu": mean(0.5 * np.sum(mu ** 2, axis=1)),
            "kl_var": mean(0.5 * np.sum(np.exp(logvar) - 1 - logvar, axis=1)),
            "kl_var_std": mean(0.5 * np.sum(np.exp(2 * logvar) - 1 - 2 * logvar, axis=1))}


STD_IS_EXP_LOGVAR = ("you used std = exp(logvar): logvar is log sigma^2, so the variance is "
                     "exp(logvar) and the standard deviation exp(logvar / 2); your KL is that of "
                     "N(mu, exp(2 logvar))")
SQUARED_ERROR = ("your reconstruction is a squared error: that is a Gaussian decoder "
                 "(docs/gaussian_decoder.md); the Bernoulli decoder's -log p(x|z) is the binary "
                 "cross-entropy sum_d [softplus(l_d) - x_d l_d]")

# the forms a loss is fitted to, in order: (reconstruction, KL variance part, what is wrong)
LOSS_FORMS = [("bernoulli", "kl_var", ""),
              ("bernoulli", "kl_var_std", STD_IS_EXP_LOGVAR),
              ("squared", "kl_var", SQUARED_ERROR),
              ("squared", "kl_var_std", SQUARED_ERROR + "; and " + STD_IS_EXP_LOGVAR)]


def loss_inputs(rng, n, d, latent, logit_scale=None):
    """One random (x, logits, mu, logvar) of the given sizes, scales drawn at random too
    so that the terms vary independently; some pixels exactly 0 or 1."""
    x = rng.random((n, d))
    x[rng.random((n, d)) < 0.2], x[rng.random((n, d)) < 0.1] = 0.0, 1.0
    scale = rng.uniform(0.3, 3.0) if logit_scale is None else logit_scale
    logits = scale * rng.standard_normal((n, d))
    mu = rng.uniform(0.1, 2.0) * rng.standard_normal((n, latent))
    logvar = rng.uniform(-2.0, 2.0, (n, latent)) * rng.uniform(0.1, 1.0)
    return x, logits, mu, logvar


def call_loss(vae_loss, inputs):
    """The student's loss on copies of ``inputs``, as a float (or a clear error)."""
    value = np.asarray(vae_loss(*(a.copy() for a in inputs)), dtype=np.float64)
    if value.size != 1:
        raise ValueError(f"vae_loss must return one number, got an array of shape {value.shape}: "
                         "average over the batch")
    return float(value.reshape(()))


def fit_loss(vae_loss, rng):
    """Fit the student's loss as  a * recon + b_mu * kl_mu + b_var * kl_var + c  on random
    inputs, for each of LOSS_FORMS.  Returns (form, {a, b_mu, b_var, c}, relative
    residual of the right form's fit); form is None when no form fits."""
    draws = [loss_inputs(rng, **LOSS_SHAPE) for _ in range(LOSS_DRAWS)]
    values = np.array([call_loss(vae_loss, inputs) for inputs in draws])
    if not np.all(np.isfinite(values)):
        raise ValueError("vae_loss returned NaN or inf for moderate inputs (|logits| < 15, "
                         "|logvar| < 2)")
    terms = [loss_terms(*inputs) for inputs in draws]
    first_residual = None
    for form in LOSS_FORMS:
        recon, kl_var, _ = form
        features = np.array([[t[recon], t["kl_mu"], t[kl_var], 1.0] for t in terms])
        coef = np.linalg.lstsq(features, values, rcond=None)[0]
        residual = np.linalg.norm(features @ coef - values) / max(np.linalg.norm(values), 1e-300)
        first_residual = residual if first_residual is None else first_residual
        if residual <= 1e-9:
            return form, dict(zip(("a", "b_mu", "b_var", "c"), coef)), first_residual
    return None, {}, first_residual


def close(value, target):
    return abs(value - target) <= 1e-6 * max(abs(target), 1e-3)


def weight_name(weight):
    """'1/784', 'N = 5', ... when ``weight`` is one of the usual factors, else None."""
    n, d, latent = LOSS_SHAPE["n"], LOSS_SHAPE["d"], LOSS_SHAPE["latent"]
    named = [(1, "1"), (-1, "-1"), (0, "0"), (2, "2"), (0.5, "1/2"), (n, f"N = {n}"),
             (1 / n, f"1/N = 1/{n}"), (1 / d, f"1/{d}"), (n / d, f"N/D = {n}/{d}"),
             (1 / latent, f"1/L = 1/{latent}"), (n / TRAINING_SET, f"M/N = {n}/{TRAINING_SET}"),
             (128 / TRAINING_SET, f"M/N = 128/{TRAINING_SET}"), (1 / TRAINING_SET,
                                                                   f"1/{TRAINING_SET}"),
             (1 / 128, "1/128")]
    return next((name for value, name in named if close(weight, value)), None)


RECON_WEIGHT_HINTS = {
    "N = 5": "your reconstruction is a sum over the batch, not a mean",
    "1/784": "your reconstruction is averaged over the 784 pixels: -log p(x|z) sums over the "
             "pixels; only the batch is averaged",
    "N/D = 5/784": "your reconstruction is a mean over pixels and a sum over the batch: "
                   "sum over pixels, average over the batch",
    "-1": "your reconstruction has the wrong sign: the loss holds -log p(x|z) = "
          "sum_d [softplus(l_d) - x_d l_d] >= 0",
    "0": "the reconstruction term is missing",
    "2": "your reconstruction is twice too large",
    "1/2": "your reconstruction is half the right size",
    "1/N = 1/5": "your reconstruction is divided by the batch size on top of the batch mean",
}
KL_WEIGHT_HINTS = {
    "1/784": "your KL is scaled by 1/784: you averaged over pixels (the KL is one number per "
             "example, with no pixels in it)",
    "1/L = 1/20": "your KL is averaged over the 20 latent dimensions: it is their sum",
    "-1": "your KL has the wrong sign: KL >= 0 is added to the loss, "
          "-1/2 sum(1 + logvar - mu^2 - exp(logvar)) with its leading minus",
    "N = 5": "your KL is a sum over the batch, not a mean",
    "1/N = 1/5": "your KL is divided by the batch size on top of the batch mean",
    "1/128": "your KL is divided by 128, a batch size, on top of the batch mean",
    f"M/N = 5/{TRAINING_SET}": f"your KL is weighted by M/N = 5/{TRAINING_SET}, batch over "
                               "training-set size: Kingma & Welling's N/M multiplies both terms "
                               "of a batch sum, it is no KL weight",
    f"M/N = 128/{TRAINING_SET}": f"your KL is weighted by M/N = 128/{TRAINING_SET}, batch over "
                                 "training-set size: Kingma & Welling's N/M multiplies both "
                                 "terms of a batch sum, it is no KL weight",
    f"1/{TRAINING_SET}": "your KL is divided by the training-set size N = 60000",
    "2": "the 1/2 in front of the KL's sum is missing",
    "1/2": "your KL has a factor 1/2 too many",
    "0": "the KL term is missing",
}
WHOLE_LOSS_HINTS = {
    "N = 5": "your loss is a sum over the batch, not a mean: both terms are N = 5 times too "
             "large (the same minimum, but gradients N times too large: Adam hides it, SGD "
             "does not)",
    "1/784": "your loss is averaged over pixels as well: both terms are 1/784 of the right size",
    "-1": "your loss has the wrong sign: it is -ELBO, which training minimises",
}


def weight_line(what, weight, hints, recon_weight):
    """A Line for one fitted weight (right: 1)."""
    weight = 0.0 if abs(weight) < 1e-12 else weight      # a term the loss does not hold
    passed = close(weight, 1.0)
    hint = ""
    if not passed:
        name = weight_name(weight)
        if name == "0" and what.startswith("KL term,"):
            hint = (f"the {what.split(', its ')[1]} of the KL is missing: "
                    "KL = 1/2 sum_l [exp(logvar_l) + mu_l^2 - 1 - logvar_l]")
        else:
            hint = hints.get(name, f"{what} is {weight:.4g} times the right size")
        if what.startswith("KL") and name != "0" and not close(recon_weight, 0):
            hint += f" (an effective beta of {weight / recon_weight:.4g})"
    return Line(what, abs(weight - 1.0), weight, passed, hint, against="the right weight")


def constant_line(weights):
    """A Line for the fitted constant (right: 0), with the usual reasons for one."""
    a, b_var, c = weights["a"], weights["b_var"], weights["c"]
    n, d, latent = LOSS_SHAPE["n"], LOSS_SHAPE["d"], LOSS_SHAPE["latent"]
    scale = d * (abs(a) + 1)
    passed = abs(c) <= 1e-8 * scale
    hint = ""
    if not passed:
        if any(close(c, s * a * d * LOG_2PI / 2) for s in (1, -1)):
            hint = ("a Bernoulli log-likelihood has no log(2 pi): that constant normalises the "
                    "Gaussian density, and a probability of a 0 or 1 needs none")
        elif any(close(c, s * b_var * latent / 2) for s in (1, 2, -1)):
            hint = ("the -1 inside the KL is missing or has the wrong sign: the KL of N(0, I) "
                    "to itself must be 0")
        elif any(close(c, s * n) for s in (1, -1)):
            hint = "a constant 1 per example (a -1 or +1 outside the KL's sum?)"
        else:
            hint = (f"a constant offset of {c:.4g}: the gradients do not see it, but the loss "
                    "is no longer -ELBO in nats")
    return Line("constant", abs(c) / scale, None, passed, hint)


def stability_line(vae_loss, weights, form, rng):
    """The loss at logits of +-40, where 1 - sigmoid(l) is 0 in float64."""
    inputs = loss_inputs(rng, **LOSS_SHAPE, logit_scale=40.0)
    recon, kl_var, _ = form
    terms = loss_terms(*inputs)
    want = (weights["a"] * terms[recon] + weights["b_mu"] * terms["kl_mu"]
            + weights["b_var"] * terms[kl_var] + weights["c"])
    with np.errstate(all="ignore"):
        got = call_loss(vae_loss, inputs)
    error = abs(got - want) / abs(want) if np.isfinite(got) else float("inf")
    passed = error <= 1e-8
    hint = "" if passed else ("at logits of +-40 your reconstruction is wrong or not finite: "
                              "log(sigmoid(l)) and log(1 - sigmoid(l)) reach log(0); write it on "
                              "the logits, softplus(l) - x l, as docs/bernoulli.md does")
    return Line("large logits (|l| ~ 40)", error, None, passed, hint)


def grade_normalisation(module, rng):
    """Fit the weights of the student's loss and name what differs from numpyvae's."""
    form, weights, residual = fit_loss(module.vae_loss, rng)
    if form is None:
        return [Line("form", residual, None, False,
                     "your loss is not a weighted sum of the Bernoulli reconstruction and the KL "
                     "(nor of a squared error, nor of the KL with std = exp(logvar)): compare it "
                     "term by term with the formula at the top of the exercise")]
    lines = []
    if form[2]:
        lines.append(Line("form", residual, None, False, form[2]))
    a, b_mu, b_var = weights["a"], weights["b_mu"], weights["b_var"]
    whole = weight_name(a) if close(a, b_mu) and close(a, b_var) else None
    if whole in WHOLE_LOSS_HINTS:
        lines.append(Line("whole loss", abs(a - 1), a, False, WHOLE_LOSS_HINTS[whole],
                          against="the right loss"))
    else:
        lines.append(weight_line("reconstruction term", a, RECON_WEIGHT_HINTS, a))
        if close(b_mu, b_var):
            lines.append(weight_line("KL term", b_mu, KL_WEIGHT_HINTS, a))
        else:
            lines.append(weight_line("KL term, its mu^2 part", b_mu, KL_WEIGHT_HINTS, a))
            lines.append(weight_line("KL term, its variance part", b_var, KL_WEIGHT_HINTS, a))
    lines.append(constant_line(weights))
    lines.append(stability_line(module.vae_loss, weights, form, rng))
    return lines


def grade_full_covariance_kl(module, rng):
    n, latent = 4, 3
    mu = rng.standard_normal((n, latent))
    factor = np.tril(0.5 * rng.standard_normal((n, latent, latent)), -1)
    factor += np.eye(latent) * rng.uniform(0.5, 1.5, (n, latent))[:, :, None]
    dkl = rng.standard_normal(n)
    w = dkl[:, None, None]
    inv_diag = np.eye(latent) / np.diagonal(factor, axis1=1, axis2=2)[:, :, None]  # diag(1 / L_ii)
    return grade_op(module.kl_forward, module.kl_backward, {"mu": mu, "factor": factor}, None, dkl,
                    {"mu": [("each example's KL is weighted by its dkl: multiply by dkl[:, None]",
                             mu)],
                     "factor": [("the log det term is missing: d/dL_ii [-log L_ii] = -1 / L_ii, "
                                 "on the diagonal", w * factor),
                                ("L^-T has entries above the diagonal, which are not parameters: "
                                 "keep the lower triangle (np.tril)",
                                 w * (factor - np.swapaxes(np.linalg.inv(factor), 1, 2))),
                                ("d tr(L L^T) / dL = 2 L, and the KL has 1/2 in front: L, not 2 L",
                                 w * (2 * factor - inv_diag)),
                                ("each example's KL is weighted by its dkl: multiply by "
                                 "dkl[:, None, None]", factor - inv_diag)]})


@dataclass
class Exercise:
    name: str
    file: str
    doc: str
    grade: object           # (module, rng) -> [Line]
    error_hints: tuple = ()  # (text in the error, the hint shown when the code raises it)


SHAPES = ("each gradient has the shape of its input: dx (N, D) = dout (N, H) @ W.T (H, D), "
          "dW (D, H) = x.T (D, N) @ dout (N, H)")
PER_EXAMPLE = ("dkl has shape (N,), one number per example, and mu, logvar (N, L): "
               "dkl[:, None] is (N, 1) and broadcasts over the L dimensions; a bare dkl lines "
               "its N up with the L columns")


EXERCISES = [
    Exercise("linear", "ex01_linear.py", "docs/backprop_mlp.md", grade_linear, (("", SHAPES),)),
    Exercise("relu", "ex02_relu.py", "docs/backprop_mlp.md",
             grade_activation("relu_forward", "relu_backward", lambda r: away_from_zero(r, (4, 6)),
                              relu_mistakes)),
    Exercise("tanh", "ex03_tanh.py", "docs/backprop_mlp.md",
             grade_activation("tanh_forward", "tanh_backward", lambda r: r.uniform(-2, 2, (4, 6)),
                              tanh_mistakes)),
    Exercise("sigmoid", "ex04_sigmoid.py", "docs/backprop_mlp.md",
             grade_activation("sigmoid_forward", "sigmoid_backward",
                              lambda r: r.uniform(-4, 4, (4, 6)), sigmoid_mistakes)),
    Exercise("reparameterize", "ex05_reparameterize.py", "docs/reparameterization.md",
             grade_reparameterize),
    Exercise("kl", "ex06_kl.py", "docs/kl.md", grade_kl,
             (("could not be broadcast", PER_EXAMPLE),)),
    Exercise("bernoulli", "ex07_bernoulli.py", "docs/bernoulli.md", grade_bernoulli),
    Exercise("gaussian", "ex08_gaussian.py", "docs/gaussian_decoder.md", grade_gaussian),
    Exercise("vae_step", "ex09_vae_step.py", "docs/backprop_mlp.md", grade_vae_step),
    Exercise("adam", "ex10_adam.py", "docs/adam.md", grade_adam),
    Exercise("full_covariance", "ex11_full_covariance.py", "docs/full_covariance.md",
             grade_full_covariance_kl),
    Exercise("normalisation", "ex12_normalisation.py", "docs/normalisation.md",
             grade_normalisation),
]


# ------------------------------------------------- the library's own code --

def reference_implementations():
    """Each exercise's functions, as the library implements them (--reference)."""
    from numpyvae import objectives, optim
    from numpyvae.ops import full_gaussian, gaussian, layers
    from numpyvae.ops.likelihoods import BernoulliLikelihood

    def vae_forward(model, x, eps, beta):
        terms, grads = objectives.loss_and_grads(model, x, beta=beta, eps=eps)
        return terms["loss"], grads

    def adam_update(p, g, m, v, t, lr, beta1, beta2, eps):
        params = {"p": p.copy()}
        adam = optim.Adam(params, lr=lr, betas=(beta1, beta2), eps=eps)
        adam.load_state_dict({"t": np.array(t - 1), "m/p": m, "v/p": v})
        adam.step({"p": g})
        return params["p"], adam.state["m"]["p"].copy(), adam.state["v"]["p"].copy()

    bernoulli = BernoulliLikelihood()

    def vae_loss(x, logits, mu, logvar):
        logpx = bernoulli.log_prob_forward(x, logits)[0]
        kl = gaussian.kl_standard_normal_forward(mu, logvar)[0]
        return float(np.mean(-logpx + kl))

    return {
        "linear": SimpleNamespace(linear_forward=layers.linear_forward,
                                  linear_backward=layers.linear_backward),
        **{name: SimpleNamespace(**{f"{name}_forward": getattr(layers, f"{name}_forward"),
                                    f"{name}_backward": getattr(layers, f"{name}_backward")})
           for name in ("relu", "tanh", "sigmoid")},
        "reparameterize": SimpleNamespace(reparameterize_forward=gaussian.reparameterize_forward,
                                          reparameterize_backward=gaussian.reparameterize_backward),
        "kl": SimpleNamespace(kl_forward=gaussian.kl_standard_normal_forward,
                              kl_backward=gaussian.kl_standard_normal_backward),
        "bernoulli": SimpleNamespace(log_prob_forward=bernoulli.log_prob_forward,
                                     log_prob_backward=bernoulli.log_prob_backward),
        "gaussian": SimpleNamespace(log_prob_forward=gaussian.gaussian_log_density_forward,
                                    log_prob_backward=gaussian.gaussian_log_density_backward),
        "vae_step": SimpleNamespace(vae_forward=vae_forward, vae_backward=lambda model, grads: grads),
        "adam": SimpleNamespace(adam_update=adam_update),
        "full_covariance": SimpleNamespace(
            kl_forward=lambda mu, factor: full_gaussian.kl_standard_normal_forward(mu, np.tril(factor)),
            kl_backward=full_gaussian.kl_standard_normal_backward),
        "normalisation": SimpleNamespace(vae_loss=vae_loss),
    }


# ------------------------------------------------------------------ main --

def load(path):
    """The exercise file as a module (a new one on every call)."""
    spec = importlib.util.spec_from_file_location(f"exercise_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def grade(exercise, module):
    """(status, lines, note): 'PASS', 'FAIL' or 'TODO'."""
    try:
        lines = exercise.grade(module, np.random.default_rng(EXERCISES.index(exercise)))
    except NotImplementedError:
        return "TODO", [], ""
    except Exception as e:  # noqa: BLE001 (a student's code may raise anything)
        return "FAIL", [], f"{type(e).__name__}: {e}".splitlines()[0][:100]
    return ("PASS" if all(line.passed for line in lines) else "FAIL"), lines, ""


def report(exercise, status, lines, note, stream):
    label = f"{exercise.file:<24}{status:<6}"
    if status == "TODO":
        print(f"  {label}write the TODO in exercises/{exercise.file} (read {exercise.doc})",
              file=stream)
        return
    if status == "PASS":
        worst = max(lines, key=lambda line: line.error)
        print(f"  {label}worst rel err {worst.error:.1e} ({worst.what})", file=stream)
        return
    indent = " " * (2 + len(label))
    print(f"  {label}{note}".rstrip(), file=stream)
    error_hint = next((hint for text, hint in exercise.error_hints if note and text in note), "")
    if error_hint:
        print(f"{indent}  hint: {error_hint}", file=stream)
    for line in lines:
        if line.ratio is None:
            ratio = ""
        elif line.against == "numerical":
            ratio = f", analytic = {line.ratio:.2f} x numerical"
        else:
            ratio = f", yours = {line.ratio:.4g} x {line.against}"
        print(f"{indent}{line.what}: rel err {line.error:.1e}{ratio}  "
              f"{'ok' if line.passed else 'WRONG'}", file=stream)
        if line.hint:
            print(f"{indent}  hint: {line.hint}", file=stream)
    print(f"{indent}read {exercise.doc}", file=stream)


def parser():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("names", nargs="*", metavar="exercise",
                   help=f"exercises to check (default: all): {', '.join(e.name for e in EXERCISES)}")
    p.add_argument("--reference", action="store_true",
                   help="check the library's own implementations instead of the exercise files")
    p.add_argument("--dir", type=Path, default=HERE,
                   help="folder with the exercise files (default: this folder)")
    return p


def main(argv=None, stream=None):
    stream = sys.stdout if stream is None else stream
    p = parser()
    args = p.parse_args(argv)
    known = {e.name: e for e in EXERCISES}
    unknown = [name for name in args.names if name not in known]
    if unknown:
        p.error(f"unknown exercise {', '.join(unknown)}; choose from {', '.join(known)}")
    if not args.reference and not args.dir.is_dir():
        p.error(f"--dir {args.dir} is not a folder")
    chosen = [known[name] for name in args.names] or EXERCISES
    reference = reference_implementations() if args.reference else None
    source = "the library's own implementations" if args.reference else f"the files in {args.dir}"
    print(f"numpyvae exercises: {source}, each gradient against central differences "
          f"(float64, pass at rel err <= {TOL:g}; Adam against the textbook update, the loss "
          "against its right weights)", file=stream)
    counts = {"PASS": 0, "FAIL": 0, "TODO": 0}
    for exercise in chosen:
        note = ""
        if reference is not None:
            module = reference[exercise.name]
        elif not (args.dir / exercise.file).is_file():
            module, note = None, f"{args.dir / exercise.file} is missing"
        else:
            try:
                module = load(args.dir / exercise.file)
            except Exception as e:  # noqa: BLE001 (a syntax error, a bad import, ...)
                module, note = None, f"cannot import it: {type(e).__name__}: {e}".splitlines()[0]
        status, lines, grade_note = ("FAIL", [], note) if module is None else grade(exercise, module)
        counts[status] += 1
        report(exercise, status, lines, grade_note, stream)
    print(f"\n{counts['PASS']} passed, {counts['FAIL']} failed, {counts['TODO']} to do "
          f"(of {len(chosen)})", file=stream)
    return 0 if counts["PASS"] == len(chosen) else 1


if __name__ == "__main__":
    sys.exit(main())
