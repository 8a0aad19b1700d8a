"""demos/gradient_variance.py: the reparameterization and score-function gradients of
E_q[log p(x|z)] are each right, agree in expectation, and the demo reports finite variances."""

import numpy as np
import pytest

from demo_helpers import load_demo
from numpyvae import VAE
from numpyvae.ops.gaussian import gaussian_log_density_forward, reparameterize_forward
from numpyvae.gradcheck import numerical_gradient, relative_error

TOL = 1e-7  # float64 central differences
gv = load_demo("gradient_variance.py")


def tiny(likelihood="bernoulli", seed=1):
    model = VAE(6, (5,), 2, likelihood=likelihood, activation="tanh", dtype=np.float64, seed=seed)
    x = np.random.default_rng(0).random((3, 6))
    return model, x


def encoder_outputs(model, x):
    h = model.encoder.forward(model.params, x)[0]
    return h[:, :model.latent_dim].copy(), h[:, model.latent_dim:].copy()


@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
def test_each_sample_is_the_exact_gradient_of_its_own_function(likelihood):
    """reparameterization: d log p(x|mu + std eps)/d(mu, logvar) at fixed eps;
    score: d log q(z|x)/d(mu, logvar) at fixed z; both against central differences."""
    model, x = tiny(likelihood)
    eps = np.random.default_rng(2).standard_normal((1, 3, 2))
    got = gv.per_sample_gradients(model, x, eps)
    mu, logvar = encoder_outputs(model, x)

    def logpx_sum():
        z = reparameterize_forward(mu, logvar, eps[0])[0]
        return np.sum(model.decoder_forward(x, z)[0])

    numeric = np.concatenate([numerical_gradient(logpx_sum, mu),
                              numerical_gradient(logpx_sum, logvar)], axis=1)
    assert relative_error(got["reparameterization"][0], numeric) < TOL

    z = reparameterize_forward(mu, logvar, eps[0])[0]             # held fixed now
    def logq_sum():
        return np.sum(gaussian_log_density_forward(z, mu, logvar)[0])

    numeric = np.concatenate([numerical_gradient(logq_sum, mu),
                              numerical_gradient(logq_sum, logvar)], axis=1)
    assert relative_error(got["score"][0], numeric) < TOL
    assert np.allclose(got["logpx"][0], model.decoder_forward(x, z)[0], rtol=1e-14)


def test_the_leave_one_out_baseline_is_the_mean_of_the_other_samples():
    rng = np.random.default_rng(0)
    logpx, score = rng.standard_normal((5, 2)), rng.standard_normal((5, 2, 4))
    plain, with_baseline = gv.score_function_estimates(logpx, score)
    for s in range(5):
        others = np.delete(logpx, s, axis=0).mean(axis=0)        # (2,)
        assert np.allclose(with_baseline[s], (logpx[s] - others)[:, None] * score[s])
        assert np.allclose(plain[s], logpx[s][:, None] * score[s])


def test_the_three_estimators_agree_in_expectation_and_report_finite_variances():
    model, x = tiny()
    result = gv.measure(model, x, 20000, np.random.default_rng(3))
    # unbiased against each other: the mean difference is within Monte-Carlo error
    # (12 components per estimator; |z| > 5 has probability ~1e-6 for each)
    for name in gv.ESTIMATORS[1:]:
        assert np.max(np.abs(result["diff_z"][name])) < 5, name
    assert np.all(result["diff_z"]["reparameterization"] == 0)
    # and the common expectation is not trivially zero
    assert np.max(np.abs(result["mean"]["reparameterization"])) > 0.05
    for name in gv.ESTIMATORS:
        v = result["variance"][name]
        assert v.shape == (3, 4) and np.all(np.isfinite(v)) and np.all(v > 0)
        assert np.isfinite(result["encoder_variance"][name]) and result["encoder_variance"][name] > 0
    assert result["encoder_signal"] > 0
    # the score function without a baseline is the noisiest, here as on MNIST
    rep, sf = result["variance"]["reparameterization"], result["variance"]["score function"]
    assert np.all(sf > rep)
    text = gv.report(result)
    for name in gv.ESTIMATORS:
        assert name in text
    assert "nan" not in text and "inf" not in text


def test_the_minibatch_variance_is_the_variance_of_the_encoder_gradients():
    model, x = tiny()
    g = np.random.default_rng(4).standard_normal((7, 3, 4))
    vectors = list(gv.encoder_gradients(model, x, g))
    assert len(vectors) == 7 and vectors[0].shape == (sum(model.params[k].size
                                                          for k in model.encoder.param_shapes()),)
    expected = np.var(np.stack(vectors), axis=0, ddof=1).sum()
    assert np.isclose(gv.total_variance(iter(vectors)), expected, rtol=1e-10)
    # the gradient of the encoder is linear in dh = -g / N
    (one,) = gv.encoder_gradients(model, x, g[:1])
    (two,) = gv.encoder_gradients(model, x, 2 * g[:1])
    assert np.allclose(two, 2 * one)


def test_float32_models_are_measured_in_float64():
    model32 = VAE(6, (5,), 2, dtype=np.float32, seed=1)
    copy = gv.float64_copy(model32)
    assert copy.dtype == np.float64 and np.array_equal(copy.params.flat, model32.params.flat)
    result = gv.measure(model32, np.random.default_rng(0).random((2, 6)), 10,
                        np.random.default_rng(0))
    assert result["variance"]["reparameterization"].dtype == np.float64


def test_bad_flags_exit_2(capsys, tmp_path):
    assert gv.main(["--samples", "1"]) == 2
    assert "--samples" in capsys.readouterr().err
    assert gv.main(["--plot", str(tmp_path / "missing" / "p.png")]) == 2
    assert "--plot" in capsys.readouterr().err
    assert gv.main(["--data-dir", str(tmp_path), "--plot", str(tmp_path / "p.png")]) == 2
    assert "--data-dir" in capsys.readouterr().err
    existing = tmp_path / "old.png"
    existing.write_bytes(b"keep me")
    assert gv.main(["--plot", str(existing)]) == 2
    assert "--overwrite" in capsys.readouterr().err and existing.read_bytes() == b"keep me"


def test_demo_on_real_mnist(mnist_dir, tmp_path, capsys):
    plot = tmp_path / "gv.png"
    code = gv.main(["--data-dir", str(mnist_dir), "--limit", "1000", "--epochs", "1",
                    "--examples", "4", "--samples", "30", "--plot", str(plot)])
    out = capsys.readouterr().out
    assert code == 0
    assert "score function + baseline" in out and "tr Cov" in out
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and plot.stat().st_size > 10_000
