"""Shared test helpers: gradient checks, small models, reference formulas.

Every check compares an analytic backward with central differences from
numpyvae.gradcheck, in float64, and measures the gap with
numpyvae.gradcheck.relative_error against one tolerance, TOL.

What central differences can resolve.  With step h = 1e-5 a central
difference of f is accurate to about 1e-16 * |f| / h = 1e-11 * |f| in
absolute terms (float64 rounding of f), plus a truncation error h^2 f'''/6.
relative_error's floor is 1e-8, so an entry whose true value is far below
1e-5 * |f| cannot be checked to 1e-6 relative by *any* correct backward.
The checks are therefore set up so that the numerical reference is accurate:
small models (a loss of a few nats), inputs away from activation kinks and
from stationary points, and, for extreme values, one element at a time
(``elementwise_errors``) so that a huge term elsewhere in a sum does not
drown a small one.  The tolerance itself is never loosened.
"""

import numpy as np
from scipy import stats
from scipy.special import expit

from numpyvae.gradcheck import check_parameter_gradients, numerical_gradient, relative_error
from numpyvae.ops.layers import LEAKY_RELU_SLOPE

TOL = 1e-6            # max relative error, analytic vs numerical, float64
KINK_MARGIN = 1e-3    # |pre-activation| >= this for ReLU/LeakyReLU: a 1e-5 step never crosses 0
ACTIVATIONS = ("relu", "leaky_relu", "tanh", "sigmoid", "softplus")
PIECEWISE_LINEAR = ("relu", "leaky_relu")

# (likelihood, obs_var) of every decoder the models support
DECODERS = (("bernoulli", 1.0), ("gaussian", 0.5), ("gaussian", "learned"),
            ("gaussian-sigmoid", "learned"))
DECODER_IDS = ("bernoulli", "gaussian-fixed", "gaussian-learned", "gaussian-sigmoid")
SEED = 1              # of the small models' weights, data and eps


# ------------------------------------------------------------- data/models --

def make_data(likelihood, n, d, rng, dtype=np.float64):
    """(n, d) data valid for the likelihood: binary for Bernoulli, N(0, 1) for Gaussian."""
    if likelihood == "bernoulli":
        return (rng.random((n, d)) < 0.5).astype(dtype)
    return rng.standard_normal((n, d)).astype(dtype)


def randomize_biases(params, rng, low=0.05, high=0.2):
    """Set every bias to a random value with |b| in [low, high] and a random sign.

    The default init sets biases to zero.  With ReLU, an example whose hidden
    layer is entirely dead then gives a pre-activation of *exactly* 0 in the
    next layer (0 @ W + 0), the kink of the next ReLU, where the +-h of a
    central difference straddles two slopes and the 'numerical gradient' is
    their average.  Nonzero biases move pre-activations off the kink (and
    exercise the bias gradients with nontrivial values).
    """
    for name, p in params.items():
        if name.endswith(".b"):
            p[...] = rng.uniform(low, high, p.shape) * rng.choice([-1.0, 1.0], p.shape)


def mlp_preactivations(params, prefix, n_layers, activation, x):
    """Forward through an MLP's parameters, recomputed here independently of
    the library: returns (output, [hidden pre-activation arrays])."""
    pre, h = [], x
    for i in range(n_layers):
        a = h @ params[f"{prefix}.{i}.W"] + params[f"{prefix}.{i}.b"]
        if i < n_layers - 1:
            pre.append(a)
            h = _activation(activation, a)
    return a, pre


def hidden_preactivations(model, x, eps=None):
    """Every hidden pre-activation (the inputs of the activation functions)
    of the model's encoder and decoder for the batch x.  eps (N, L) is
    needed for a VAE."""
    n_layers = len(model.hidden_dims) + 1
    out, pre_enc = mlp_preactivations(model.params, "encoder", n_layers, model.activation, x)
    if model.kind == "vae":
        latent = model.latent_dim
        z = out[:, :latent] + np.exp(0.5 * out[:, latent:]) * eps
    else:
        z = out
    _, pre_dec = mlp_preactivations(model.params, "decoder", n_layers, model.activation, z)
    return pre_enc + pre_dec


def _activation(name, a):
    return {"relu": lambda: np.maximum(a, 0),
            "leaky_relu": lambda: np.where(a > 0, a, LEAKY_RELU_SLOPE * a),
            "tanh": lambda: np.tanh(a),
            "sigmoid": lambda: expit(a),
            "softplus": lambda: np.logaddexp(0, a)}[name]()


def min_distance_to_kink(model, x, eps=None):
    """Smallest |pre-activation| of a ReLU/LeakyReLU model (inf for smooth activations)."""
    if model.activation not in PIECEWISE_LINEAR:
        return np.inf
    return min(float(np.min(np.abs(a))) for a in hidden_preactivations(model, x, eps))


def assert_away_from_kinks(model, x, eps=None):
    """Fail loudly (rather than report a bogus gradient error) if a central
    difference could straddle a ReLU kink."""
    dist = min_distance_to_kink(model, x, eps)
    assert dist >= KINK_MARGIN, (
        f"a hidden pre-activation is {dist:.2e} from the ReLU kink; central differences "
        "would straddle it, so this example cannot be gradient-checked")


# ------------------------------------------------------------ whole models --

def small_model(cls, likelihood, obs_var, activation, hidden=(3,), n=2, d=4, latent=2, seed=SEED):
    """A float64 model of class cls (VAE or Autoencoder) with random nonzero
    biases, a batch x (n, d) and, for a VAE, a fixed eps (n, latent) (else
    None), checked to be away from ReLU kinks: (model, x, eps).

    The default size (4 inputs, one hidden layer of 3, 2 latents, 2
    examples) gives a loss of a few nats, which keeps the central-difference
    reference accurate to ~3e-11.
    """
    model = cls(d, hidden, latent, likelihood, obs_var, activation, np.float64, seed)
    rng = np.random.default_rng(seed)
    randomize_biases(model.params, rng)
    x = make_data(likelihood, n, d, rng)
    eps = rng.standard_normal((n, latent)) if model.kind == "vae" else None
    assert_away_from_kinks(model, x, eps)
    return model, x, eps


def loss_fn(model, x, eps=None, beta=1.0):
    """A closure () -> (loss, grads) for a VAE (with fixed eps) or an Autoencoder."""
    if model.kind == "vae":
        return lambda: model.loss_and_grads(x, eps=eps, beta=beta)
    return lambda: model.loss_and_grads(x)


def model_grad_errors(model, compute):
    """Relative error of every parameter tensor's analytic gradient vs central differences.

    compute : () -> (loss, grads), reading model.params.  Returns
    dict name -> max relative error over the entries of that tensor.
    """
    return {name: err for name, (_, err) in check_parameter_gradients(model.params, compute).items()}


def directional_derivatives(model, compute, rng):
    """Per tensor, the derivative of the loss along a random unit direction v:
    the analytic <grad, v> and the central difference d/dt loss(p + t v) at
    t = 0.  One number per tensor that is well scaled even when individual
    entries of the gradient are too small to resolve one by one.  (v has unit
    length, like the steps of an entry-by-entry check: the truncation error
    grows as |v|^3 against a derivative that grows as |v|.)
    Returns dict name -> (analytic, numerical).
    """
    _, grads = compute()
    analytic = {name: np.array(g, copy=True) for name, g in grads.items()}
    result = {}
    for name, p in model.params.items():
        v = rng.standard_normal(p.shape)
        p0, v = p.copy(), v / np.linalg.norm(v)
        t = np.zeros(1)

        def f():
            p[...] = p0 + t[0] * v
            return compute()[0]

        numerical = numerical_gradient(f, t)[0]
        p[...] = p0
        result[name] = (float(np.sum(analytic[name] * v)), float(numerical))
    return result


def directional_errors(model, compute, rng):
    """dict name -> relative error of the directional derivative (see above)."""
    return {name: relative_error(a, n)
            for name, (a, n) in directional_derivatives(model, compute, rng).items()}


# ------------------------------------------------------- elementwise checks --

def elementwise_errors(value, inputs, analytic, wrt, dout):
    """Gradient check of an op made of independent per-element terms, one element at a time.

    value(*inputs) -> the op's output for inputs of shape (N, D): either one
    value per element (N, D), or per-row sums (N,) of per-element terms.
    analytic[k] (N, D) is the op's backward for upstream ``dout`` ((N, D) or
    (N,)), the gradient w.r.t. inputs[wrt[k]].

    For each element, the op is evaluated on 1x1 slices of the inputs and
    differentiated numerically, so the rounding error of the reference is that
    of the element's own term, not of the whole (possibly huge) sum.  That
    this is the same function is itself checked: the batch output must equal
    the (row sums of the) per-element outputs.
    Returns the max relative error.
    """
    inputs = [np.asarray(a, dtype=np.float64) for a in inputs]
    shape = inputs[0].shape
    batch = value(*inputs)
    per_element = np.zeros(shape)
    worst = 0.0
    for idx in np.ndindex(*shape):
        one = [np.full((1, 1), a[idx]) for a in inputs]
        per_element[idx] = np.sum(value(*one))
        weight = dout[idx] if dout.shape == shape else dout[idx[0]]
        for g, k in zip(analytic, wrt):
            numerical = numerical_gradient(lambda: np.sum(value(*one)) * weight, one[k])[0, 0]
            worst = max(worst, relative_error(g[idx], numerical))
    if batch.shape == shape:
        expected, scale = per_element, np.abs(per_element)
    else:
        expected, scale = per_element.sum(axis=1), np.abs(per_element).sum(axis=1)
    assert np.all(np.abs(batch - expected) <= 1e-12 * scale + 1e-300), \
        "the op is not the sum of its per-element terms"
    return worst


# ----------------------------------------------------- reference formulas --

def log_likelihood_by_hand(likelihood, obs_var, x, out):
    """log p(x|z) per example (N,) from the decoder output, with scipy."""
    if likelihood == "bernoulli":
        return stats.bernoulli.logpmf(x, expit(out)).sum(axis=1)
    d = x.shape[1]
    mean = expit(out[:, :d]) if likelihood == "gaussian-sigmoid" else out[:, :d]
    if obs_var == "learned":
        return stats.norm.logpdf(x, mean, np.exp(out[:, d:] / 2)).sum(axis=1)
    return stats.norm.logpdf(x, mean, np.sqrt(obs_var)).sum(axis=1)


def kl_by_hand(mu, logvar):
    """KL(N(mu, diag(exp(logvar))) || N(0, I)) per example, the closed form."""
    return 0.5 * np.sum(np.exp(logvar) + mu ** 2 - 1 - logvar, axis=1)
