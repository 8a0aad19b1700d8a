"""The pictures that teach (plots.plot_latent_traversals, plot_interpolation,
plot_kl_per_dimension, plot_rate_distortion, plot_gradient_variance) and demos/pictures.py."""

import struct
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import norm

from demo_helpers import load_demo
from numpyvae import VAE
from numpyvae.evaluate import evaluate_elbo
from idx_writer import write_idx
from numpyvae.data.mnist import FILES
from numpyvae.run.plots import (plot_gradient_variance, plot_interpolation, plot_kl_per_dimension,
                            plot_latent_traversals, plot_rate_distortion, traversal_values)

SHAPE = (4, 5)  # not square: catches a swapped height and width
pictures = load_demo("pictures.py")


def png_size(path):
    """(width, height) of a PNG file, from its IHDR chunk; fails on anything else."""
    data = Path(path).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR", f"{path} is not a PNG"
    assert len(data) > 5000, f"{path} is suspiciously small ({len(data)} bytes)"
    return struct.unpack(">II", data[16:24])


def sane(path, min_side=300, max_side=4000):
    width, height = png_size(path)
    return min_side <= width <= max_side and min_side <= height <= max_side


def recording_decoder(calls):
    """A decode(z) that records its input and returns grey images that depend on z."""
    def decode(z):
        calls.append(z.copy())
        return np.tile(1 / (1 + np.exp(-z[:, :1])), (1, SHAPE[0] * SHAPE[1]))
    return decode


def test_traversal_values_are_prior_quantiles():
    v = traversal_values(5)
    assert np.allclose(norm.cdf(v), [0.02, 0.26, 0.5, 0.74, 0.98]) and v[2] == 0


def test_latent_traversals_sweep_one_dimension_per_row(tmp_path):
    codes = np.random.default_rng(0).standard_normal((2, 3)).astype(np.float32)
    originals = np.random.default_rng(1).random((2, 20))
    calls = []
    path = plot_latent_traversals(tmp_path / "t.png", recording_decoder(calls), codes, originals,
                                  dims=[2, 0], image_shape=SHAPE, n_steps=5)
    assert sane(path)
    assert len(calls) == 2 and all(z.dtype == np.float32 and z.shape == (2 * 5, 3) for z in calls)
    for code, z in zip(codes, calls):
        z = z.reshape(2, 5, 3)                       # (rows = dims, steps, L)
        values = traversal_values(5).astype(np.float32)
        assert np.array_equal(z[0, :, 2], values) and np.all(z[0, :, :2] == code[:2])
        assert np.array_equal(z[1, :, 0], values) and np.all(z[1, :, 1:] == code[1:])


def test_interpolation_goes_from_one_code_to_the_other(tmp_path):
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    calls = []
    path = plot_interpolation(tmp_path / "i.png", recording_decoder(calls), a, b,
                              rng.random((3, 20)), rng.random((3, 20)), SHAPE, n_steps=6,
                              dtype=np.float64)
    assert sane(path)
    (z,) = calls
    z = z.reshape(3, 6, 4)
    assert np.allclose(z[:, 0], a) and np.allclose(z[:, -1], b)
    assert np.allclose(z[:, 3], a + 0.6 * (b - a))


@pytest.mark.parametrize("latent", [3, 50])
def test_kl_per_dimension_and_rate_distortion_plots(tmp_path, latent):
    rng = np.random.default_rng(0)
    variances = np.where(np.arange(latent) % 3 == 0, 1e-5, rng.random(latent) + 0.5)
    variances[1] = 0.0                              # exactly collapsed: log scale must cope
    assert sane(plot_kl_per_dimension(tmp_path / "k.png", rng.random(latent), variances))
    assert sane(plot_rate_distortion(tmp_path / "r.png", [0.5, 1, 4], [30.0, 21.0, 6.0],
                                     [111.0, 121.0, 160.0]))


def test_gradient_variance_plot(tmp_path):
    rng = np.random.default_rng(0)
    result = {"latent_dim": 3, "n_samples": 10, "n_examples": 2,
              "variance": {name: rng.random((2, 6)) * 10 ** i
                           for i, name in enumerate(("reparameterization", "score function"))}}
    assert sane(plot_gradient_variance(tmp_path / "g.png", result))


# ---------------------------------------------------------- the demo --

def test_kl_per_dimension_sums_to_the_kl_term():
    model = VAE(20, (8,), 4, dtype=np.float64, seed=3)
    x = np.random.default_rng(0).random((7, 20))
    per_dim = pictures.kl_per_dimension(model, x, batch_size=3)
    assert per_dim.shape == (4,) and np.all(per_dim >= 0)
    elbo = evaluate_elbo(model, x, np.random.default_rng(0))
    assert np.isclose(per_dim.sum(), elbo["kl"], rtol=1e-12)
    mu, logvar = model.encode(x)                    # one dimension by the formula
    assert np.isclose(per_dim[2], np.mean(0.5 * (np.exp(logvar[:, 2]) + mu[:, 2] ** 2 - 1
                                                 - logvar[:, 2])))


def test_one_per_digit():
    labels = np.array([3, 1, 3, 0, 1])
    assert pictures.one_per_digit(labels, [0, 1, 2, 3]) == [3, 1, 0]


def write_synthetic_mnist(directory, seed=0):
    """An MNIST-layout data set of 8x8 images: class c is a bright row c % 8, plus noise."""
    rng = np.random.default_rng(seed)
    arrays = []
    for n in (300, 60):
        y = (np.arange(n) % 10).astype(np.uint8)
        x = rng.integers(0, 60, (n, 8, 8))
        x[np.arange(n), y % 8, :] += 190
        arrays += [x.astype(np.uint8), y]
    directory.mkdir()
    for name, a in zip(FILES, arrays):              # train images, train labels, test ...
        write_idx(directory / name, a)
    return directory


def test_demo_on_synthetic_data_then_on_its_own_run(tmp_path, capsys):
    data = write_synthetic_mnist(tmp_path / "data")
    out = tmp_path / "pictures"
    assert pictures.main(["--data-dir", str(data), "--out", str(out), "--epochs", "2",
                          "--betas", "0.5,2", "--sweep-epochs", "1"]) == 0
    printed = capsys.readouterr().out
    assert "beta 0.5" in printed and "beta 2" in printed and "units active" in printed
    for name in pictures.PICTURES:
        assert sane(out / name), name
    assert (out / "model" / "checkpoint.npz").exists() and (out / "beta_2" / "checkpoint.npz").exists()

    # pictures already there: refused, and nothing is replaced
    before = (out / "traversals.png").read_bytes()
    assert pictures.main(["--data-dir", str(data), "--out", str(out), "--betas", ""]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert (out / "traversals.png").read_bytes() == before

    # a saved run pictured in another directory, without a sweep
    again = tmp_path / "again"
    assert pictures.main(["--data-dir", str(data), "--out", str(again), "--run",
                          str(out / "beta_2"), "--betas", ""]) == 0
    assert sorted(p.name for p in again.iterdir()) == sorted(pictures.PICTURES[:3])


def test_demo_bad_flags_exit_2(tmp_path, capsys):
    assert pictures.main(["--run", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    assert "checkpoint.npz" in capsys.readouterr().err
    assert pictures.main(["--epochs", "0"]) == 2
    assert "--epochs" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        pictures.main(["--betas", "1,-2"])
    assert "positive" in capsys.readouterr().err


def test_demo_on_real_mnist(mnist_dir, tmp_path):
    out = tmp_path / "pictures"
    assert pictures.main(["--data-dir", str(mnist_dir), "--out", str(out), "--limit", "1000",
                          "--epochs", "1", "--betas", "1,4", "--sweep-epochs", "1"]) == 0
    for name in pictures.PICTURES:
        assert sane(out / name), name
