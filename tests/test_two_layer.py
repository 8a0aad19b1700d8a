"""Two stochastic layers (model/two_layer_vae.py, two_layer_objectives.py): every
gradient against central differences, log p(x) against quadrature, and the run.

Gradients (float64, central differences, step 1e-5): every parameter tensor
and every intermediate of the backward pass, for each objective and k > 1,
to a max relative error of TOL = 1e-6, entries below FLOOR = 1e-4 x |loss|
compared in absolute terms (demos/gradcheck.py's loss_floor: central
differences cannot resolve them further).  The intermediates are checked by
the demo's section 5 against its independent reference (scipy densities,
each node of the graph an argument).

log p(x): a model with z1 and z2 of one dimension each and 3 pixels, whose
p(x) = int int p(x|z1) p(z1|z2) p(z2) dz1 dz2 is computed on a grid
(trapezoid rule over a box holding p(z1|z2) to 10 standard deviations): the
importance-weighted estimate with k = 50,000 agrees with it within 0.025
nats, about 4 of the estimate's standard errors, for all 8 binary images.
"""

import io

import numpy as np
import pytest
from scipy import stats
from scipy.special import logsumexp

from demo_helpers import load_demo
from numpyvae import TwoLayerVAE, load_model, objectives, two_layer_objectives
from numpyvae.data.binarize import binarize
from numpyvae.evaluate import (evaluate_bound, importance_weighted_log_likelihood,
                               importance_weighted_log_likelihood_fast,
                               top_posterior_means)
from numpyvae.gradcheck import check_parameter_gradients
from numpyvae.optim import Adam
from numpyvae.run.settings import RunConfig, RunError, build_model
from numpyvae.trainer import TrainingStep, train_generator
from run_helpers import quiet_fit, synthetic, tiny_config

TOL = 1e-6            # max relative error of a gradient against central differences
FLOOR = 1e-4          # ... entries below FLOOR x |loss| in absolute terms
QUADRATURE_TOL = 0.025  # nats: the k = 50,000 estimate against quadrature

gradcheck = load_demo("gradcheck.py")


def tiny_model(likelihood="bernoulli", obs_var=1.0, activation="tanh", seed=0):
    """A float64 TwoLayerVAE 5 -> 4 -> z1 (2) -> 3 -> z2 (3) with nonzero biases."""
    model = TwoLayerVAE(5, (4,), 2, likelihood, obs_var, activation, np.float64, seed,
                        top_hidden_dims=(3,), top_latent_dim=3)
    rng = np.random.default_rng(seed + 100)
    for name, p in model.params.items():
        if name.endswith(".b"):
            p[...] = rng.uniform(-0.3, 0.3, p.shape)
    return model


def batch(model, n=3, seed=1):
    rng = np.random.default_rng(seed)
    if model.likelihood.name == "bernoulli":
        return (rng.random((n, model.input_dim)) < 0.5).astype(np.float64)
    return rng.standard_normal((n, model.input_dim))


def noise(model, k, n=3, seed=2):
    eps = np.random.default_rng(seed).standard_normal((k, n, model.noise_dim))
    return eps[0] if k == 1 else eps


# ------------------------------------------------------------------ gradients --

@pytest.mark.parametrize("objective, k, beta", [("elbo", 3, 0.7), ("elbo-mc", 3, 0.7),
                                                ("iwae", 4, 1.0), ("iwae", 1, 1.0)])
@pytest.mark.parametrize("likelihood, obs_var", [("bernoulli", 1.0), ("gaussian", "learned")])
def test_every_parameter_gradient_matches_central_differences(objective, k, beta, likelihood,
                                                               obs_var):
    model = tiny_model(likelihood, obs_var)
    x, eps = batch(model), noise(model, k)

    def loss_and_grads():
        return model.loss_and_grads(x, eps=eps, objective=objective, k=k, beta=beta)
    floor = FLOOR * max(1.0, abs(loss_and_grads()[0]))
    errors = check_parameter_gradients(model.params, loss_and_grads, floor=floor)
    assert set(errors) == set(model.params)
    assert any(name.startswith("top_encoder") for name in errors)
    worst = max(errors, key=lambda name: errors[name][1])
    assert errors[worst][1] <= TOL, f"{worst}: {errors[worst]}"
    assert all(largest > 0 for largest, _ in errors.values())   # every tensor gets a gradient


@pytest.mark.parametrize("objective", ["elbo", "elbo-mc", "iwae"])
@pytest.mark.parametrize("flags", [[], ["--activation", "relu", "--likelihood", "gaussian-learned",
                                        "--hidden", "4,3", "--latent", "3"]],
                         ids=["tanh-bernoulli", "relu-learned-variance-deep"])
def test_every_intermediate_gradient_matches_central_differences(objective, flags):
    """The demo's section 5 at k = 3: a row per intermediate of the trace, all passing."""
    args = gradcheck.parser().parse_args(["--objective", objective, "--k", "3", *flags])
    report = gradcheck.Report(io.StringIO(), first_failure=False)
    report.section(5, "two stochastic layers")
    gradcheck.check_two_layer_pass(report, args, np.random.default_rng(args.seed), objective, 3)
    failed = [row for row in report.rows if not row.passed]
    assert not failed, failed
    checked = {row.quantity for row in report.rows}
    # every gradient the backward pass stores in the trace has its row
    trace = {}
    model = tiny_model()
    two_layer_objectives.loss_and_grads(model, batch(model), objective=objective, k=3,
                                        eps=noise(model, 3), trace=trace)
    values = set(two_layer_objectives.TwoLayerPass.__dataclass_fields__) | {"logw", "weights"}
    gradients = set(trace) - values
    assert all(name.startswith("d") for name in gradients)
    assert gradients <= checked, gradients - checked
    assert {"d(encoder.1 input)", "d(top_encoder.1 input)", "d(top_decoder.1 input)",
            "d(decoder.1 input)"} <= checked


def test_the_trace_holds_every_intermediate_with_the_documented_shapes():
    model, k, n = tiny_model(), 4, 3
    trace = {}
    two_layer_objectives.loss_and_grads(model, batch(model, n), objective="iwae", k=k,
                                        eps=noise(model, k, n), trace=trace)
    l1, l2, d = model.latent_dim, model.top_latent_dim, model.input_dim
    shapes = {"mu1": (n, l1), "dmu1": (n, l1), "dencoder_out": (n, 2 * l1), "z1": (k, n, l1),
              "dz1": (k, n, l1), "mu2": (k, n, l2), "dlogvar2": (k, n, l2), "z2": (k, n, l2),
              "dtop_encoder_out": (k, n, 2 * l2), "prior_mu": (k, n, l1),
              "dtop_decoder_out": (k, n, 2 * l1), "ddecoder_out": (k, n, d), "logw": (k, n),
              "weights": (k, n), "dkl2": (k, n)}
    for name, shape in shapes.items():
        assert trace[name].shape == shape, name
    np.testing.assert_allclose(trace["weights"].sum(axis=0), 1.0)


# -------------------------------------------------- the objectives' relations --

def test_iwae_with_one_sample_is_estimator_a():
    model = tiny_model()
    x, eps = batch(model), noise(model, 1)
    loss_a, grads_a = model.loss_and_grads(x, eps=eps, objective="elbo-mc")
    loss_i, grads_i = model.loss_and_grads(x, eps=eps, objective="iwae")
    assert loss_a == pytest.approx(loss_i, rel=1e-12)
    np.testing.assert_allclose(grads_a.flat, grads_i.flat, rtol=1e-10, atol=1e-14)


def test_the_closed_form_top_kl_keeps_the_mean_and_lowers_the_variance():
    """'elbo' integrates log q(z2|z1) - log p(z2) over z2 exactly: the same
    expectation as estimator A, and a smaller spread over draws."""
    model = tiny_model()
    x, k = batch(model, 2), 40000
    eps = np.random.default_rng(5).standard_normal((k, 2, model.noise_dim))
    fwd = two_layer_objectives.two_layer_forward(model, x, eps)
    sampled = fwd.log_weights()                                              # (k, N)
    closed = fwd.logpx + fwd.logpz1 - fwd.logq1 - fwd.kl2
    standard_error = np.sqrt((sampled.var(axis=0) + closed.var(axis=0)) / k)
    assert np.all(np.abs(sampled.mean(axis=0) - closed.mean(axis=0)) < 4 * standard_error)
    assert np.all(closed.var(axis=0) < sampled.var(axis=0))
    np.testing.assert_allclose(two_layer_objectives.bound(model, x, "elbo", eps), closed.mean(axis=0))


def test_the_bounds_are_ordered_elbo_below_iwae_below_log_px():
    model = tiny_model()
    x = batch(model, 4)
    rng = np.random.default_rng(3)
    elbo = evaluate_bound(model, x, "elbo-mc", 1, rng) + 0.0
    iwae = evaluate_bound(model, x, "iwae", 50, rng)
    log_px = float(np.mean(importance_weighted_log_likelihood(model, x, 20000, rng)))
    assert elbo < iwae < log_px + 0.01


# ------------------------------------------------------ log p(x) by quadrature --

def quadrature_log_px(model, x, n_grid):
    """log p(x) = log int int p(x|z1) p(z1|z2) p(z2) dz1 dz2 for L1 = L2 = 1, (N,):
    the trapezoid rule on an n_grid x n_grid grid, z2 in [-9, 9] (p(z2) below
    e^-40 outside), z1 over the range of p(z1|z2) +- 10 standard deviations."""
    z2 = np.linspace(-9.0, 9.0, n_grid)
    prior = model.top_decoder.forward(model.params, z2[:, None])[0]         # (n2, 2)
    prior_mu, prior_std = prior[:, 0], np.exp(prior[:, 1] / 2)
    z1 = np.linspace(np.min(prior_mu - 10 * prior_std), np.max(prior_mu + 10 * prior_std), n_grid)
    out = model.decoder.forward(model.params, z1[:, None])[0]               # (n1, D)
    log_px_given_z1 = stats.bernoulli.logpmf(x[:, None, :], 1 / (1 + np.exp(-out[None]))).sum(-1)
    log_joint_z = (stats.norm.logpdf(z1[None, :], prior_mu[:, None], prior_std[:, None])
                   + stats.norm.logpdf(z2)[:, None])                        # (n2, n1)

    def log_trapezoid_weights(grid):
        w = np.full(grid.size, grid[1] - grid[0])
        w[[0, -1]] /= 2
        return np.log(w)
    log_cell = log_trapezoid_weights(z2)[:, None] + log_trapezoid_weights(z1)[None, :]
    return logsumexp(log_px_given_z1[:, None, :] + (log_joint_z + log_cell)[None], axis=(1, 2))


def one_dimensional_model():
    """3 pixels, z1 and z2 of one dimension each; q far enough from the posterior
    that the ELBO is 0.15 to 1.6 nats below log p(x)."""
    return TwoLayerVAE(3, (4,), 1, top_hidden_dims=(4,), top_latent_dim=1, dtype=np.float64,
                       seed=4)


ALL_IMAGES = np.array([[a, b, c] for a in (0, 1) for b in (0, 1) for c in (0, 1)], float)


def test_the_quadrature_has_converged_and_sums_to_one_over_all_images():
    model = one_dimensional_model()
    coarse, fine = quadrature_log_px(model, ALL_IMAGES, 400), quadrature_log_px(model, ALL_IMAGES, 800)
    np.testing.assert_allclose(coarse, fine, atol=1e-9)
    assert logsumexp(fine) == pytest.approx(0.0, abs=1e-9)       # sum_x p(x) = 1


def test_the_importance_weighted_log_px_agrees_with_quadrature():
    model = one_dimensional_model()
    exact = quadrature_log_px(model, ALL_IMAGES, 800)
    estimate = importance_weighted_log_likelihood_fast(model, ALL_IMAGES, 50000,
                                                       np.random.default_rng(0))
    assert np.max(np.abs(estimate - exact)) < QUADRATURE_TOL
    elbo = evaluate_bound(model, ALL_IMAGES[:1], "elbo-mc", 1000, np.random.default_rng(1))
    assert elbo < exact[0] - 4 * QUADRATURE_TOL          # the test can tell the two apart


def test_the_top_posterior_means_average_mu2_over_q_z1():
    """With a linear top encoder, E_q(z1|x)[mu2(z1)] = mu2(mu1(x)) exactly: the
    Monte Carlo average of 20,000 draws lands within 4 standard errors."""
    model = TwoLayerVAE(5, (4,), 2, dtype=np.float64, seed=1, top_hidden_dims=(),
                        top_latent_dim=3)
    x = batch(model, 4)
    mu1, logvar1 = model.encode(x)
    exact = model.top_encoder.forward(model.params, mu1)[0][:, :3]
    w2 = model.params["top_encoder.0.W"][:, :3]                       # (L1, L2)
    standard_error = np.sqrt(np.exp(logvar1) @ (w2 ** 2) / 20000)      # sd of mu2(z1), / sqrt(S)
    means = top_posterior_means(model, x, np.random.default_rng(0), samples=20000, rows=30000)
    assert np.all(np.abs(means - exact) < 4 * standard_error)
    assert not np.allclose(means, exact, atol=1e-12)                  # it did sample


# -------------------------------------------------------- the model around it --

def test_save_and_load_give_the_same_model(tmp_path):
    model = tiny_model()
    model.save(tmp_path / "m.npz")
    loaded = load_model(tmp_path / "m.npz")
    assert isinstance(loaded, TwoLayerVAE) and loaded.config() == model.config()
    np.testing.assert_array_equal(loaded.params.flat, model.params.flat)


def test_the_lower_networks_start_as_the_one_layer_vaes_of_the_same_seed():
    two = TwoLayerVAE(6, (5,), 3, seed=7, top_hidden_dims=(2,), top_latent_dim=2)
    one = build_model(RunConfig(hidden=(5,), latent_dim=3, activation="tanh", seed=7), 6)
    for name, p in one.params.items():
        np.testing.assert_array_equal(two.params[name], p)


def test_samples_and_reconstructions_are_pixel_probabilities():
    model = tiny_model()
    for images in (model.sample(4, np.random.default_rng(0)), model.reconstruct(batch(model))):
        assert images.shape[1] == 5 and np.all((images >= 0) & (images <= 1))


@pytest.mark.parametrize("call, error, match", [
    (lambda m, x: m.loss_and_grads(x, rng=np.random.default_rng(0), objective="wake-sleep"),
     ValueError, "two stochastic layers"),
    (lambda m, x: m.loss_and_grads(x, eps=np.zeros((3, 2))), ValueError, r"shape \(3, 5\)"),
    (lambda m, x: m.loss_and_grads(x, eps=np.zeros((3, 3, 5)), k=2), ValueError,
     r"shape \(2, 3, 5\)"),
    (lambda m, x: m.loss_and_grads(x, rng=np.random.default_rng(0), objective="iwae", beta=0.5),
     ValueError, "beta must be 1"),
    (lambda m, x: objectives.loss_and_grads(m, x, rng=np.random.default_rng(0)), TypeError,
     "of kind vae"),
    (lambda m, x: TwoLayerVAE(5, (4,), 2, top_latent_dim=0), ValueError, "top_latent_dim"),
    (lambda m, x: TwoLayerVAE(5, (4,), 2, top_hidden_dims=3), TypeError, "top_hidden_dims"),
])
def test_bad_input_raises_an_error_that_names_it(call, error, match):
    model = tiny_model()
    with pytest.raises(error, match=match):
        call(model, batch(model))


def test_training_steps_lower_the_loss():
    """The trainer's TrainingStep drives the model through loss_terms_and_grads."""
    data = synthetic(n_train=200)
    model = TwoLayerVAE(64, (16,), 4, dtype=np.float32, seed=0, top_hidden_dims=(8,),
                        top_latent_dim=2)
    step = TrainingStep(model, Adam(model.params, lr=3e-3), 50, "dynamic", objective="iwae", k=3)
    rng = train_generator(0)
    x_all = binarize(data.x_train, "threshold", dtype=np.float32)
    before = -evaluate_bound(model, x_all, "iwae", 3, np.random.default_rng(1))
    for _ in range(6):
        for idx in rng.permutation(200).reshape(4, 50):
            step(data.x_train, idx, rng)
    after = -evaluate_bound(model, x_all, "iwae", 3, np.random.default_rng(1))
    assert after < before - 5


# ------------------------------------------------------------------ the run --

def test_a_run_trains_evaluates_and_resumes_only_with_the_same_layers(tmp_path):
    data = synthetic()
    config = tiny_config(tmp_path, stochastic_layers=2, top_hidden=(8,), top_latent_dim=2,
                         objective="iwae", k=2, kl_warmup=0.0, epochs=1)
    metrics = quiet_fit(config, data)
    final = metrics["final"]
    assert metrics["model"]["kind"] == "two-layer-vae" and metrics["model"]["top_latent_dim"] == 2
    assert np.isfinite(final["test_nll"]) and final["test_nll"] <= final["test_bound_loss"] + 1
    assert 0 <= final["top_active_units"] <= final["top_latent_dim"] == 2
    assert len(final["top_active_unit_variances"]) == 2
    resumed = quiet_fit(tiny_config(tmp_path, stochastic_layers=2, top_hidden=(8,),
                                    top_latent_dim=2, objective="iwae", k=2, kl_warmup=0.0,
                                    epochs=2), data, resume=True)
    assert len(resumed["epochs"]) == 2
    for changed in (dict(stochastic_layers=1, top_hidden=None, top_latent_dim=None),
                    dict(stochastic_layers=2, top_hidden=(8,), top_latent_dim=3)):
        with pytest.raises(RunError, match="settings differ"):
            quiet_fit(tiny_config(tmp_path, **{**dict(objective="iwae", k=2, kl_warmup=0.0,
                                                      epochs=3), **changed}), data, resume=True)


@pytest.mark.parametrize("settings, match", [
    (dict(stochastic_layers=3), "--stochastic-layers must be 1 or 2"),
    (dict(top_latent_dim=5), "apply to --stochastic-layers 2 only"),
    (dict(stochastic_layers=2, objective="wake-sleep"), "wake-sleep is for one stochastic layer"),
    (dict(stochastic_layers=2, top_hidden=()), "--top-hidden needs at least one"),
])
def test_bad_layer_settings_name_the_flag(settings, match):
    with pytest.raises(RunError, match=match):
        RunConfig(**settings)


def test_two_layers_default_to_the_papers_top_sizes():
    config = RunConfig(stochastic_layers=2)
    assert (config.top_hidden, config.top_latent_dim) == ((100, 100), 50)
    assert config.to_dict()["top_hidden"] == [100, 100]
