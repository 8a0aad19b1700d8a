"""Every plot writes a PNG for tiny inputs, with 2-d and higher-dimensional latents."""

import numpy as np
import pytest
from matplotlib.image import imread
from scipy.stats import norm

from numpyvae import VAE
from numpyvae.run.rundir import PLOTS, RUN_FILES
from numpyvae.run.plots import (image_grid, latent_projection, manifold_grid, plot_bound_curves,
                            plot_latent_scatter, plot_loss_curves, plot_manifold, plot_manifolds,
                            plot_reconstructions, plot_run, plot_sample_panels, plot_samples)

SHAPE = (4, 5)  # small, not square: catches a swapped height and width


def is_png(path):
    data = path.read_bytes()
    return len(data) > 1000 and data[:8] == b"\x89PNG\r\n\x1a\n"


def images(n, seed=0):
    return np.random.default_rng(seed).random((n, SHAPE[0] * SHAPE[1]))


def test_image_grid_tiles_row_by_row():
    tiles = np.arange(3)[:, None] * np.ones((3, 20)) / 2  # images of 0, 0.5, 1
    grid = image_grid(tiles, SHAPE, ncols=2, pad=1, background=0.25)
    assert grid.shape == (2 * 4 + 1, 2 * 5 + 1)
    assert grid[0, 0] == 0 and grid[0, 6] == 0.5 and grid[5, 0] == 1
    assert grid[4, 0] == 0.25 and grid[5, 6] == 0.25  # padding, and the empty last tile


def test_reconstructions_samples_and_loss_curves(tmp_path):
    assert is_png(plot_reconstructions(tmp_path / "r.png", images(6), images(6, 1), SHAPE, 3))
    assert is_png(plot_samples(tmp_path / "s.png", images(5), SHAPE, ncols=4))
    assert is_png(plot_loss_curves(tmp_path / "one.png", [300.0], [250.0]))
    assert is_png(plot_loss_curves(tmp_path / "l.png", [300.0, 200.0], [250.0, 190.0],
                                   test_recon=[230.0, 170.0], test_kl=[20.0, 20.0],
                                   batch_losses=[[500.0, 300.0, 250.0], [220.0, 190.0, 185.0]]))


@pytest.mark.parametrize("latent_dim", [1, 2, 5])
def test_latent_scatter(tmp_path, latent_dim):
    means = np.random.default_rng(0).standard_normal((50, latent_dim))
    labels = np.arange(50) % 10
    assert is_png(plot_latent_scatter(tmp_path / "z.png", means, labels))


def test_latent_projection_is_the_identity_in_2d_and_pca_above():
    rng = np.random.default_rng(0)
    means = rng.standard_normal((200, 2))
    points, labels, how = latent_projection(means)
    assert np.array_equal(points, means) and labels == ("z1", "z2")
    wide = np.column_stack([10 * means[:, 0], means[:, 1], 0.01 * rng.standard_normal((200, 3))])
    points, labels, how = latent_projection(wide)
    assert points.shape == (200, 2) and "PCA" in how and labels[0].startswith("PC 1")
    # the first component is the stretched direction, up to sign
    corr = np.corrcoef(points[:, 0], wide[:, 0])[0, 1]
    assert abs(corr) > 0.99


def test_manifold(tmp_path):
    z = manifold_grid(5)
    assert np.allclose(z, norm.ppf([1 / 6, 2 / 6, 3 / 6, 4 / 6, 5 / 6])) and z[2] == 0
    calls = []

    def decode(grid):
        calls.append(grid)
        return np.full((grid.shape[0], 20), 0.5, dtype=grid.dtype)

    assert is_png(plot_manifold(tmp_path / "m.png", decode, SHAPE, n=5))
    (grid,) = calls
    assert grid.shape == (25, 2) and grid.dtype == np.float32
    z32 = z.astype(np.float32)
    assert grid[0, 0] == z32[0] and grid[0, 1] == z32[-1]  # top left: smallest z1, largest z2
    assert grid[1, 0] == z32[1] and grid[5, 1] == z32[-2]  # row-major: z1 varies fastest


@pytest.mark.parametrize("latent_dim", [2, 3])
def test_plot_run(tmp_path, latent_dim):
    model = VAE(20, (8,), latent_dim)
    x = images(30).astype(np.float32)
    epochs = [{"train_loss": 20.0 - e, "test_loss": 19.0 - e, "test_recon": 15.0 - e,
               "test_kl": 4.0, "train_batch_losses": [25.0 - e, 19.0 - e]} for e in range(3)]
    paths = plot_run(tmp_path, model, x, np.arange(30) % 10, epochs, SHAPE,
                     np.random.default_rng(0), n_images=12)
    names = {p.name for p in paths}
    assert {"reconstructions.png", "samples.png", "loss_curves.png",
            "latent_scatter.png"} <= names
    assert ("manifold.png" in names) == (latent_dim == 2)
    assert all(is_png(p) for p in paths)
    # exactly the files of the run directory that --overwrite may remove
    assert {p.name for p in tmp_path.iterdir()} == names <= set(PLOTS.values()) <= set(RUN_FILES)


# ------------------------------------------- unlabeled data, 28 x 20 faces --

FREY_SHAPE = (28, 20)


def png_size(path):
    """(height, width) in pixels of a PNG."""
    return imread(path).shape[:2]


@pytest.mark.parametrize("latent_dim", [2, 5])
def test_latent_scatter_without_labels(tmp_path, latent_dim):
    means = np.random.default_rng(0).standard_normal((50, latent_dim))
    unlabeled = plot_latent_scatter(tmp_path / "u.png", means)
    labeled = plot_latent_scatter(tmp_path / "l.png", means, np.arange(50) % 10)
    assert is_png(unlabeled) and is_png(labeled)

    def has_orange(path):                       # tab10's second colour: digit 1
        rgb = imread(path)[..., :3]
        return bool(np.any(np.all(np.abs(rgb - np.array([255, 127, 14]) / 255) < 0.02, axis=-1)))

    assert has_orange(labeled) and not has_orange(unlabeled)   # one colour, no legend


def test_reconstructions_of_portrait_images_fit_their_shape(tmp_path):
    """Two grids of 28 x 20 images: the figure narrows with the images (no gap between)."""
    x = np.random.default_rng(0).random((16, 560))
    faces = plot_reconstructions(tmp_path / "f.png", x, x, FREY_SHAPE)
    digits = plot_reconstructions(tmp_path / "d.png", x[:, :28 * 28 // 2].repeat(2, axis=1),
                                  x[:, :392].repeat(2, axis=1), (28, 28))
    (hf, wf), (hd, wd) = png_size(faces), png_size(digits)
    assert wf / hf < 0.85 * wd / hd


def test_plot_run_on_unlabeled_faces(tmp_path):
    """A Frey Face model: 28 x 20 images, no labels, the sigmoid-Gaussian decoder, L = 2."""
    model = VAE(560, (8,), 2, "gaussian-sigmoid", "learned", "tanh", np.float32, 0)
    x = np.random.default_rng(1).random((30, 560)).astype(np.float32)
    epochs = [{"train_loss": -100.0 - e, "test_loss": -90.0 - e, "test_recon": -120.0 - e,
               "test_kl": 30.0, "train_batch_losses": [-95.0 - e, -99.0 - e]} for e in range(2)]
    paths = plot_run(tmp_path, model, x, None, epochs, FREY_SHAPE, np.random.default_rng(0),
                     n_images=12)
    assert {p.name for p in paths} == {"reconstructions.png", "samples.png", "loss_curves.png",
                                       "latent_scatter.png", "manifold.png"}
    assert all(is_png(p) for p in paths)
    h, w = png_size(tmp_path / "manifold.png")
    assert h > w                                # 20 x 20 tiles of portrait images


def test_kingma_welling_figures(tmp_path):
    """Figure 2 with rows of 5 and 4 panels (one panel without wake-sleep), Figure 4 with
    a square and a portrait manifold, Figure 5 with two sample panels."""
    samples = np.array([2e4, 1e5, 1e6])
    curves = {"aevb": (samples, [-150.0, -120, -100], [-151.0, -122, -103]),
              "wake-sleep": (samples, [-170.0, -140, -125], [-171.0, -141, -126])}
    paper = {"aevb": (np.array([1e6, 1e7]), [-110.0, -100], [-111.0, -101])}
    rows = [("MNIST", [(z, curves, paper) for z in (3, 5, 10, 20, 200)]),
            ("Frey Face", [(2, {"aevb": curves["aevb"]}, {})]
             + [(z, curves, {}) for z in (5, 10, 20)])]
    assert is_png(plot_bound_curves(tmp_path / "f2.png", rows))

    def decode(z):
        return np.full((len(z), 560), 0.5, dtype=z.dtype)

    manifolds = [("Frey Face", decode, FREY_SHAPE, np.float32),
                 ("MNIST", lambda z: np.zeros((len(z), 784), z.dtype), (28, 28), np.float32)]
    assert is_png(plot_manifolds(tmp_path / "f4.png", manifolds, n=5))
    panels = [(f"N_z = {z}", np.random.default_rng(z).random((20, 784)), (28, 28)) for z in (2, 5)]
    assert is_png(plot_sample_panels(tmp_path / "f5.png", panels, ncols=5))
