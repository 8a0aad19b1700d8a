"""Free bits (ops/free_bits.py, objectives.elbo_closed_form_kl's free_bits, --free-bits):
the forward, its gradient against central differences in float64 (docs/collapse.md
section 5), the subgradient at the kink, and the option through training and resume."""

import numpy as np
import pytest

from demo_helpers import load_demo
from gradcheck_helpers import TOL, model_grad_errors, small_model
from numpyvae import VAE
from numpyvae.gradcheck import check_backward, numerical_gradient_array
from numpyvae.ops.free_bits import free_bits_backward, free_bits_forward
from numpyvae.ops.gaussian import (kl_standard_normal_forward,
                                   kl_standard_normal_per_dimension_backward,
                                   kl_standard_normal_per_dimension_forward)
from numpyvae.run.settings import RunConfig, RunError, resume_differences

MARGIN = 1e-3   # |m_l - lambda| >= this in the checks: a 1e-5 step never crosses the kink


def per_dimension_kls(seed=0, n=5, latent=4):
    """kl (N, L) > 0 whose column means are 0.1, 0.5, 1.0, 2.0 (and so on, times 1.5)."""
    rng = np.random.default_rng(seed)
    raw = rng.uniform(0.5, 1.5, (n, latent))
    targets = np.array([0.1, 0.5, 1.0, 2.0, 3.0, 4.5][:latent])
    return raw / raw.mean(axis=0) * targets


def test_free_bits_forward_clamps_each_dimension_mean():
    kl = per_dimension_kls()
    out, (above, n) = free_bits_forward(kl, 0.75)
    assert out == pytest.approx(0.75 + 0.75 + 1.0 + 2.0, rel=1e-12)
    assert above.tolist() == [False, False, True, True] and n == 5
    assert free_bits_forward(kl, 0.0)[0] == pytest.approx(kl.mean(axis=0).sum(), rel=1e-12)


@pytest.mark.parametrize("threshold", [0.0, 0.3, 0.75, 1.5, 3.0])
def test_free_bits_backward_matches_central_differences(threshold):
    kl = per_dimension_kls()
    assert np.min(np.abs(kl.mean(axis=0) - threshold)) >= MARGIN
    for dout in (1.0, -2.5):
        (row,) = check_backward(free_bits_forward, free_bits_backward,
                                {"kl": kl, "threshold": threshold}, wrt=["kl"], dout=dout)
        assert row.passed, row


def test_at_the_kink_the_subgradient_zero_is_taken():
    """m_l = lambda exactly: max(lambda, m) has slopes 0 and 1 on its two sides,
    central differences give their average 1/(2N), the backward the subgradient 0."""
    kl = per_dimension_kls()
    threshold = float(kl.mean(axis=0)[1])
    _, cache = free_bits_forward(kl, threshold)
    analytic = free_bits_backward(1.0, cache)
    numerical = numerical_gradient_array(lambda: free_bits_forward(kl, threshold)[0], kl, 1.0)
    n = kl.shape[0]
    assert np.all(analytic[:, 1] == 0)
    np.testing.assert_allclose(numerical[:, 1], 1 / (2 * n), rtol=1e-6)
    np.testing.assert_allclose(analytic[:, 2:], numerical[:, 2:], rtol=1e-6)


def test_per_dimension_kl_sums_to_the_kl_and_its_backward_checks():
    rng = np.random.default_rng(0)
    mu, logvar = rng.standard_normal((4, 3)), rng.uniform(-2, 1, (4, 3))
    kl_dims = kl_standard_normal_per_dimension_forward(mu, logvar)[0]
    np.testing.assert_allclose(kl_dims.sum(axis=1), kl_standard_normal_forward(mu, logvar)[0],
                               rtol=1e-12)
    for row in check_backward(kl_standard_normal_per_dimension_forward,
                              kl_standard_normal_per_dimension_backward,
                              {"mu": mu, "logvar": logvar}):
        assert row.passed, row


def free_bits_model():
    """A small float64 VAE, a batch and eps, with a lambda between its dimensions'
    batch-mean KLs (one clamped, one not), each at least MARGIN from lambda."""
    model, x, eps = small_model(VAE, "bernoulli", 1.0, "tanh", n=4, latent=3)
    mu, logvar = model.encode(x)
    means = np.sort(kl_standard_normal_per_dimension_forward(mu, logvar)[0].mean(axis=0))
    threshold = float((means[0] + means[1]) / 2)
    assert np.min(np.abs(means - threshold)) >= MARGIN
    return model, x, eps, threshold, means


@pytest.mark.parametrize("beta", [1.0, 4.0])
def test_the_free_bits_elbo_gradient_matches_central_differences(beta):
    model, x, eps, threshold, _ = free_bits_model()
    errors = model_grad_errors(model, lambda: model.loss_and_grads(x, eps=eps, beta=beta,
                                                                   free_bits=threshold))
    assert max(errors.values()) < TOL, errors


def test_the_free_bits_loss_and_what_it_reports():
    model, x, eps, threshold, means = free_bits_model()
    (loss, recon, kl), grads = model.loss_terms_and_grads(x, eps=eps, beta=2.0,
                                                          free_bits=threshold)
    (_, recon0, kl0), grads0 = model.loss_terms_and_grads(x, eps=eps, beta=2.0)
    assert recon == pytest.approx(recon0, rel=1e-12) and kl == pytest.approx(kl0, rel=1e-12)
    assert loss == pytest.approx(recon + 2.0 * np.maximum(threshold, means).sum(), rel=1e-12)
    assert not np.allclose(grads.flat, grads0.flat)      # the clamped dimension lost its pull
    # a lambda below every dimension's mean clamps nothing: the ordinary ELBO and gradient
    (loss_low, _, _), grads_low = model.loss_terms_and_grads(x, eps=eps, beta=2.0,
                                                             free_bits=means[0] / 2)
    assert loss_low == pytest.approx(recon0 + 2.0 * kl0, rel=1e-12)
    np.testing.assert_allclose(grads_low.flat, grads0.flat, rtol=1e-10, atol=1e-14)


def test_free_bits_is_refused_where_there_is_no_closed_form_kl():
    model, x, eps, _, _ = free_bits_model()
    with pytest.raises(ValueError, match="free bits clamp the closed-form KL"):
        model.loss_and_grads(x, eps=eps, objective="elbo-mc", free_bits=0.5)
    with pytest.raises(ValueError, match="free_bits"):
        model.loss_and_grads(x, eps=eps, free_bits=-1.0)


def test_free_bits_is_a_setting_and_a_flag_and_resume_refuses_a_change():
    assert RunConfig(free_bits=0.5).free_bits == 0.5
    with pytest.raises(RunError, match="--free-bits must be a finite number >= 0"):
        RunConfig(free_bits=-0.5)
    with pytest.raises(RunError, match="free bits clamp the closed-form KL of --objective elbo only"):
        RunConfig(free_bits=0.5, objective="iwae")
    saved = RunConfig().to_dict()
    assert resume_differences(saved, RunConfig(free_bits=0.5)) == [
        "--free-bits (saved 0.0, now 0.5)"]
    older = {k: v for k, v in saved.items() if k != "free_bits"}   # saved before --free-bits
    assert resume_differences(older, RunConfig()) == []
    args = load_demo("train_mnist.py").parser().parse_args(["--free-bits", "0.25"])
    assert args.free_bits == 0.25


def test_an_epoch_trains_with_free_bits():
    from numpyvae.optim import AdamFast
    from numpyvae.trainer import train_epoch, train_generator
    model = VAE(16, (8,), 3, seed=0)
    x = np.random.default_rng(0).integers(0, 256, (40, 16), dtype=np.uint8)
    stats = train_epoch(model, AdamFast(model.params), x, train_generator(0), batch_size=10,
                        free_bits=2.0)
    # every dimension starts far below 2 nats: the loss counts 3 x 2 nats of KL, more than
    # the KL itself
    assert stats["loss"] > stats["recon"] + stats["kl"]
    assert stats["loss"] == pytest.approx(stats["recon"] + 6.0, rel=1e-5)


def test_a_training_step_checks_free_bits_once():
    from numpyvae.optim import AdamFast
    from numpyvae.trainer import TrainingStep
    model = VAE(16, (8,), 3, seed=0)
    with pytest.raises(ValueError, match="free bits clamp the closed-form KL"):
        TrainingStep(model, AdamFast(model.params), 10, objective="iwae", free_bits=1.0)
    assert TrainingStep(model, AdamFast(model.params), 10, free_bits=1).free_bits == 1.0
