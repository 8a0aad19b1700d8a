"""Optimizers: every update against the textbook formula computed in a plain
loop, on both code paths (one flat buffer / one tensor at a time), state
save/restore, input checks, and that training actually lowers the loss."""

import re

import numpy as np
import pytest

from numpyvae import SGD, VAE, Adagrad, AdagradFast, Adam, AdamFast, FlatParams, SGDFast
from numpyvae.util.validate import NonFiniteError


# ---------------------------------------------- reference implementations --
# One plain update per parameter array, float64, the formulas as published.

def reference_sgd(p, g, state, t, lr, momentum, weight_decay):
    g = g + weight_decay * p
    v = momentum * state.get("v", 0.0) - lr * g
    state["v"] = v
    return p + v


def reference_adagrad(p, g, state, t, lr, eps, weight_decay):
    g = g + weight_decay * p
    state["G"] = state.get("G", 0.0) + g * g
    return p - lr * g / (np.sqrt(state["G"]) + eps)


def reference_adam(p, g, state, t, lr, b1, b2, eps, weight_decay):
    g = g + weight_decay * p
    state["m"] = b1 * state.get("m", 0.0) + (1 - b1) * g
    state["v"] = b2 * state.get("v", 0.0) + (1 - b2) * g * g
    m_hat = state["m"] / (1 - b1 ** t)
    v_hat = state["v"] / (1 - b2 ** t)
    return p - lr * m_hat / (np.sqrt(v_hat) + eps)


# (optimizer class, its kwargs, reference, reference kwargs)
OPTIMIZERS = {
    "sgd": (SGD, dict(lr=0.1, momentum=0.9), reference_sgd, dict(lr=0.1, momentum=0.9)),
    "sgd-no-momentum": (SGD, dict(lr=0.1, momentum=0.0), reference_sgd, dict(lr=0.1, momentum=0.0)),
    "sgd-fast": (SGDFast, dict(lr=0.1, momentum=0.9), reference_sgd, dict(lr=0.1, momentum=0.9)),
    "adagrad": (Adagrad, dict(lr=0.1, eps=1e-8), reference_adagrad, dict(lr=0.1, eps=1e-8)),
    "adagrad-fast": (AdagradFast, dict(lr=0.1, eps=1e-8), reference_adagrad,
                     dict(lr=0.1, eps=1e-8)),
    "adam": (Adam, dict(lr=0.1, betas=(0.9, 0.999), eps=1e-8), reference_adam,
             dict(lr=0.1, b1=0.9, b2=0.999, eps=1e-8)),
    "adam-eps": (Adam, dict(lr=0.05, betas=(0.8, 0.99), eps=0.1), reference_adam,
                 dict(lr=0.05, b1=0.8, b2=0.99, eps=0.1)),
    "adam-fast": (AdamFast, dict(lr=0.1, betas=(0.9, 0.999), eps=1e-8), reference_adam,
                  dict(lr=0.1, b1=0.9, b2=0.999, eps=1e-8)),
    "adam-fast-eps": (AdamFast, dict(lr=0.05, betas=(0.8, 0.99), eps=0.1), reference_adam,
                      dict(lr=0.05, b1=0.8, b2=0.99, eps=0.1)),
}


def make_params(flat, rng, dtype=np.float64):
    """A model's parameters (a FlatParams: the flat fast path) or the same
    values as a plain dict of arrays (the per-tensor path)."""
    params = VAE(3, (4,), 2, dtype=dtype).params
    params.flat[:] = rng.standard_normal(params.flat.size)
    return params if flat else {k: v.copy() for k, v in params.items()}


def grads_like(params, rng):
    grads = {k: rng.standard_normal(v.shape).astype(v.dtype) for k, v in params.items()}
    if isinstance(params, FlatParams):
        flat = params.zeros_like()
        for k, g in grads.items():
            flat[k][...] = g
        return flat
    return grads


@pytest.mark.parametrize("weight_decay", [0.0, 0.1])
@pytest.mark.parametrize("flat", [True, False], ids=["flat-buffer", "per-tensor"])
@pytest.mark.parametrize("name", OPTIMIZERS)
def test_updates_match_the_formulas(name, flat, weight_decay):
    cls, kwargs, reference, ref_kwargs = OPTIMIZERS[name]
    rng = np.random.default_rng(0)
    params = make_params(flat, rng)
    expected = {k: v.copy() for k, v in params.items()}
    states = {k: {} for k in params}
    opt = cls(params, weight_decay=weight_decay, **kwargs)
    for t in (1, 2, 3):
        grads = grads_like(params, rng)
        if flat:   # the test must exercise the single-buffer path
            assert isinstance(grads, FlatParams) and params.same_layout(grads)
        opt.step(grads)
        assert opt.t == t
        for k in params:
            expected[k] = reference(expected[k], grads[k], states[k], t,
                                    weight_decay=weight_decay, **ref_kwargs)
            np.testing.assert_allclose(params[k], expected[k], rtol=1e-13, atol=1e-14,
                                       err_msg=f"{name} step {t} {k}")


@pytest.mark.parametrize("cls", [Adam, AdamFast])
def test_first_adam_step_has_size_lr(cls):
    """Bias correction makes m_hat = g and v_hat = g^2 at t = 1, so every
    parameter moves by lr * g / (|g| + eps), about lr, whatever the scale of g
    (without the correction it would be lr * 0.1 g / (0.0316 |g|) = 3.16 lr)."""
    rng = np.random.default_rng(1)
    params = make_params(True, rng)
    before = params.flat.copy()
    grads = grads_like(params, rng)
    grads.flat[:] *= 10.0 ** rng.uniform(-4, 4, grads.flat.size)
    cls(params, lr=0.01, eps=1e-8).step(grads)
    np.testing.assert_allclose(params.flat - before, -0.01 * grads.flat / (np.abs(grads.flat) + 1e-8),
                               rtol=1e-9)


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_flat_and_per_tensor_paths_agree(name):
    cls, kwargs, _, _ = OPTIMIZERS[name]
    rng = np.random.default_rng(2)
    flat_params = make_params(True, rng)
    dict_params = {k: v.copy() for k, v in flat_params.items()}
    opt_flat = cls(flat_params, weight_decay=0.05, **kwargs)
    opt_dict = cls(dict_params, weight_decay=0.05, **kwargs)
    for _ in range(3):
        grads = grads_like(flat_params, rng)
        opt_flat.step(grads)
        opt_dict.step({k: v.copy() for k, v in grads.items()})
    for k in flat_params:
        np.testing.assert_allclose(flat_params[k], dict_params[k], rtol=1e-14, atol=1e-15)


@pytest.mark.parametrize("weight_decay", [0.0, 0.1])
@pytest.mark.parametrize("flat", [True, False], ids=["flat-buffer", "per-tensor"])
@pytest.mark.parametrize("name", OPTIMIZERS)
def test_grads_as_scratch_gives_identical_updates(name, flat, weight_decay):
    """The fast path (grads overwritten as scratch) and the plain path agree
    bit for bit, in float32 as TrainingStep uses it."""
    cls, kwargs, _, _ = OPTIMIZERS[name]
    rng = np.random.default_rng(4)
    plain = make_params(flat, rng, np.float32)
    fast = plain.copy() if flat else {k: v.copy() for k, v in plain.items()}
    opt_plain = cls(plain, weight_decay=weight_decay, **kwargs)
    opt_fast = cls(fast, weight_decay=weight_decay, **kwargs)
    for _ in range(3):
        grads = grads_like(plain, rng)
        scratch = {k: v.copy() for k, v in grads.items()}   # per-tensor copies
        if flat:
            scratch = grads.copy()
        opt_plain.step(grads)
        np.testing.assert_array_equal(np.concatenate([g.ravel() for g in grads.values()]),
                                      np.concatenate([g.ravel() for g in scratch.values()]),
                                      err_msg="the plain path changed grads")
        opt_fast.step(scratch, grads_are_scratch=True)
        overwritten = any(not np.array_equal(scratch[k], grads[k]) for k in grads)
        assert overwritten == (cls.tmp_may_be_g and not weight_decay)   # the fast path ran
    for k in plain:
        np.testing.assert_array_equal(fast[k], plain[k], err_msg=f"{name} {k}")
    fast_state = opt_fast.state_dict()
    for key, value in opt_plain.state_dict().items():
        np.testing.assert_array_equal(fast_state[key], value, err_msg=key)


@pytest.mark.parametrize("weight_decay", [0.0, 0.1])
@pytest.mark.parametrize("block", [1, 5, 7, 64])
@pytest.mark.parametrize("flat", [True, False], ids=["flat-buffer", "per-tensor"])
def test_adam_fast_blocks_do_not_change_the_numbers(flat, block, weight_decay):
    """AdamFast updates BLOCK elements at a time (whole rows of a tensor): any
    block size gives, bit for bit, the update of one block over everything
    (here on a flat buffer, on 2-d and 1-d tensors, and on a 0-d one)."""
    rng = np.random.default_rng(6)
    whole = make_params(flat, rng, np.float32)
    if not flat:
        whole["scalar"] = np.array(0.5, dtype=np.float32)
    blocked = whole.copy() if flat else {k: v.copy() for k, v in whole.items()}
    opt_whole = AdamFast(whole, lr=0.1, weight_decay=weight_decay)
    opt_blocked = AdamFast(blocked, lr=0.1, weight_decay=weight_decay)
    opt_whole.BLOCK, opt_blocked.BLOCK = 10 ** 9, block
    for _ in range(3):
        grads = grads_like(whole, rng)
        opt_whole.step(grads)
        opt_blocked.step(grads.copy() if flat else {k: v.copy() for k, v in grads.items()})
    for k in whole:
        np.testing.assert_array_equal(blocked[k], whole[k], err_msg=k)
    for key, value in opt_whole.state_dict().items():
        np.testing.assert_array_equal(opt_blocked.state_dict()[key], value, err_msg=key)


@pytest.mark.parametrize("flat", [True, False], ids=["flat-buffer", "per-tensor"])
@pytest.mark.parametrize("name", OPTIMIZERS)
def test_state_dict_round_trip_continues_identically(name, flat):
    cls, kwargs, _, _ = OPTIMIZERS[name]
    rng = np.random.default_rng(3)
    params = make_params(flat, rng)
    grads = [grads_like(params, rng) for _ in range(4)]
    opt = cls(params, weight_decay=0.01, **kwargs)
    for g in grads[:2]:
        opt.step(g)
    saved_state = opt.state_dict()
    saved_params = {k: v.copy() for k, v in params.items()}
    assert int(saved_state["t"]) == 2

    params2 = make_params(flat, np.random.default_rng(99))     # different values, overwritten
    for k in params2:
        params2[k][...] = saved_params[k]
    opt2 = cls(params2, weight_decay=0.01, **kwargs)
    opt2.load_state_dict(saved_state)
    for g in grads[2:]:
        opt.step(g)
        opt2.step(g)
    assert opt2.t == opt.t == 4
    for k in params:
        np.testing.assert_array_equal(params2[k], params[k])
    # state_dict returns copies: later steps did not change what was saved
    assert int(saved_state["t"]) == 2
    assert all(not np.shares_memory(v, a) for v in saved_state.values()
               for s in opt.state.values() for a in s.values())


@pytest.mark.parametrize("cls, m, v", [(Adam, "m", "v"), (AdamFast, "m_sum", "v_sum")])
def test_load_state_dict_rejects_missing_or_misshapen_state(cls, m, v):
    params = make_params(True, np.random.default_rng(4))
    state = cls(params).state_dict()
    del state[f"{m}/encoder.0.W"]
    with pytest.raises(ValueError, match=f"{m}/encoder.0.W"):
        cls(params).load_state_dict(state)
    state = cls(params).state_dict()
    state[f"{v}/decoder.1.b"] = np.zeros(4)
    with pytest.raises(ValueError, match=f"{v}/decoder.1.b"):
        cls(params).load_state_dict(state)


# --------------------------------------------------------------- bad input --

def bad_grads(params, kind):
    grads = {k: np.ones_like(v) for k, v in params.items()}
    last = list(params)[-1]                          # the others are fine (and come first)
    if kind == "missing key":
        del grads[last]
    elif kind == "extra key":
        grads["decoder.9.W"] = np.ones(2)
    elif kind == "wrong shape":
        grads[last] = np.ones(grads[last].size + 1)
    return grads


KINDS = [("missing key", "keys"), ("extra key", "keys"), ("wrong shape", "shape")]


@pytest.mark.parametrize("kind, message", KINDS)
@pytest.mark.parametrize("flat", [True, False], ids=["flat-buffer", "per-tensor"])
@pytest.mark.parametrize("name", ["sgd", "adagrad", "adam"])
def test_bad_grads_raise_a_value_error_naming_the_problem(name, flat, kind, message):
    cls, kwargs, _, _ = OPTIMIZERS[name]
    params = make_params(flat, np.random.default_rng(5))
    with pytest.raises(ValueError, match=message):
        cls(params, **kwargs).step(bad_grads(params, kind))


@pytest.mark.parametrize("kind, message", KINDS)
def test_a_rejected_step_leaves_params_and_state_untouched(kind, message):
    """Otherwise catching the error leaves a half-updated model, and a step
    count one too high skews Adam's bias correction for every later step.
    (The check lives in the base class, so Adam stands for all three.)"""
    params = make_params(False, np.random.default_rng(5))
    opt = Adam(params, lr=0.1)
    opt.step(grads_like(params, np.random.default_rng(6)))
    before_params = {k: v.copy() for k, v in params.items()}
    before_state = opt.state_dict()
    with pytest.raises(ValueError, match=message):
        opt.step(bad_grads(params, kind))
    assert opt.t == 1, "the step count advanced"
    for k in params:
        np.testing.assert_array_equal(params[k], before_params[k], err_msg=f"{k} was modified")
    for k, v in opt.state_dict().items():
        np.testing.assert_array_equal(v, before_state[k], err_msg=f"state {k} was modified")


NAN, INF = float("nan"), float("inf")


@pytest.mark.parametrize("cls, kwargs, error, message", [
    (SGD, dict(lr=0), ValueError, "lr must be a finite number > 0, got 0.0"),
    (SGD, dict(lr=-1), ValueError, "lr must be"),
    (Adam, dict(lr=NAN), ValueError, "lr must be a finite number > 0, got nan"),
    (Adam, dict(lr=INF), ValueError, "lr must be a finite number > 0, got inf"),
    (Adagrad, dict(lr="0.01"), TypeError, "lr must be a number, got '0.01'"),
    (SGD, dict(momentum=1.0), ValueError, "momentum"),
    (SGD, dict(momentum=-0.1), ValueError, "momentum"),
    (SGD, dict(momentum=NAN), ValueError, "momentum"),
    (Adam, dict(betas=(1.0, 0.999)), ValueError, "betas"),
    (Adam, dict(betas=(0.9, -0.1)), ValueError, "betas"),
    (Adam, dict(betas=(0.9, INF)), ValueError, "betas"),
    (Adam, dict(eps=-1e-8), ValueError, "eps must be a finite number > 0, got -1e-08"),
    (Adam, dict(eps=INF), ValueError, "eps must be"),
    (Adagrad, dict(eps=0), ValueError, "eps must be a finite number > 0, got 0.0"),
    (Adagrad, dict(eps=NAN), ValueError, "eps must be"),
    (Adagrad, dict(weight_decay=-1e-4), ValueError, "weight_decay must be a finite number >= 0"),
    (SGD, dict(weight_decay=INF), ValueError, "weight_decay must be"),
    (Adam, dict(weight_decay=None), TypeError, "weight_decay must be a number, got None"),
])
def test_bad_hyperparameters_raise_naming_the_argument(cls, kwargs, error, message):
    with pytest.raises(error, match=re.escape(message)):
        cls(make_params(True, np.random.default_rng(7)), **kwargs)


@pytest.mark.parametrize("params", [None, [np.zeros(3)], {}, {"w": np.zeros(3, dtype=int)}],
                         ids=["none", "list", "empty", "int-array"])
def test_params_must_be_a_dict_of_float_arrays(params):
    with pytest.raises(TypeError, match="params must be a non-empty dict of plain float arrays"):
        Adam(params)


def test_a_learning_rate_set_later_is_checked_too():
    opt = Adam(make_params(True, np.random.default_rng(7)))
    opt.lr = 1e-4                       # a schedule lowering it
    assert opt.lr == 1e-4
    with pytest.raises(ValueError, match="lr must be"):
        opt.lr = float("inf")
    assert opt.lr == 1e-4


def test_adagrad_with_a_zero_gradient_stays_finite():
    """eps > 0 is what keeps 0 / (sqrt(0) + eps) from being 0/0 = NaN."""
    params = make_params(True, np.random.default_rng(7))
    before = params.flat.copy()
    Adagrad(params, eps=1e-10).step(params.zeros_like())
    np.testing.assert_array_equal(params.flat, before)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf, 1e30], ids=["nan", "inf", "-inf", "huge"])
@pytest.mark.parametrize("flat", [True, False], ids=["flat-buffer", "per-tensor"])
@pytest.mark.parametrize("name", ["sgd", "adagrad", "adam"])
def test_non_finite_gradients_raise_before_anything_changes(name, flat, bad):
    """1e30 is finite in float32, but its square (Adam's v, Adagrad's G) is not."""
    cls, kwargs, _, _ = OPTIMIZERS[name]
    params = make_params(flat, np.random.default_rng(5), dtype=np.float32)
    opt = cls(params, **kwargs)
    opt.step(grads_like(params, np.random.default_rng(6)))
    grads = grads_like(params, np.random.default_rng(7))
    grads["decoder.0.W"][0, 0] = bad
    before_params = {k: v.copy() for k, v in params.items()}
    before_state = opt.state_dict()
    with pytest.raises(NonFiniteError, match="the squared norm of grads is (nan|inf)"):
        opt.step(grads)
    assert opt.t == 1
    for k in params:
        np.testing.assert_array_equal(params[k], before_params[k])
    for k, v in opt.state_dict().items():
        np.testing.assert_array_equal(v, before_state[k])


# ------------------------------------------------------------ training --

def synthetic_binary_data(n=100, d=20, seed=0):
    """Three random 20-bit prototypes, each bit flipped with probability 0.05."""
    rng = np.random.default_rng(seed)
    prototypes = rng.random((3, d)) < 0.5
    x = prototypes[rng.integers(0, 3, n)]
    flips = rng.random((n, d)) < 0.05
    return (x ^ flips).astype(np.float64)


def negative_elbo(model, x, n_draws=20):
    rng = np.random.default_rng(123)
    return float(np.mean([model.loss_and_grads(x, rng=rng)[0] for _ in range(n_draws)]))


@pytest.mark.parametrize("name", ["adam", "sgd", "adagrad"])
def test_training_a_tiny_vae_lowers_the_loss(name):
    """20-d binary data from 3 prototypes.  An untrained model is worse than
    coin flips (20 log 2 = 13.9 nats); the best model pays about log 3 for the
    prototype plus the entropy of the flips, 20 H(0.05) = 4.0 nats.  300
    full-batch steps of a float32 model must at least halve -ELBO and get
    within 3 nats of that optimum."""
    x = synthetic_binary_data().astype(np.float32)
    model = VAE(20, (32,), 4, "bernoulli", activation="relu", dtype=np.float32, seed=0)
    cls, kwargs = {"adam": (Adam, dict(lr=1e-2)), "sgd": (SGD, dict(lr=0.01, momentum=0.9)),
                   "adagrad": (Adagrad, dict(lr=0.1))}[name]
    opt = cls(model.params, **kwargs)
    before = negative_elbo(model, x)
    rng = np.random.default_rng(0)
    for _ in range(300):
        _, grads = model.loss_and_grads(x, rng=rng)
        opt.step(grads)
    after = negative_elbo(model, x)
    assert before > 13.9
    assert after < 0.5 * before and after < np.log(3) + 4.0 + 3.0, (before, after)
