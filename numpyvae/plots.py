"""Pictures of a trained VAE and of its training, as PNG files.

    plot_reconstructions   test images beside their reconstructions E[x | z = mu(x)]
    plot_samples           decoded z ~ N(0, I): E[x|z], the means of p(x|z)
    plot_loss_curves       train/test -ELBO per epoch (and per batch), test recon and KL
    plot_latent_scatter    posterior means mu(x) coloured by label (if any): the first two latent
                           dimensions when L = 2, else a PCA projection to 2-D
    plot_manifold          for L = 2, decoded grid of z = Phi^-1(u) over u in (0, 1)^2
                           (Kingma & Welling 2014, Figure 4)
    plot_bound_curves      lower bound vs training samples, AEVB and wake-sleep (K&W Figure 2)
    plot_manifolds         several 2-d manifolds side by side (K&W Figure 4)
    plot_sample_panels     samples of several models side by side (K&W Figure 5)
    plot_run               all of them for a run directory

Images are rows of length H*W (or (n, H, W) arrays) with values in [0, 1].
Drawing uses matplotlib's object-oriented API (``Figure`` + ``savefig``),
which renders with Agg and never touches pyplot's global state or a
display, so it runs headless.
"""

from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import NullFormatter
from scipy.stats import norm

from numpyvae.evaluate import posterior_means

DPI = 120


def image_grid(images, image_shape, ncols, pad=1, background=0.35):
    """Tile images (n, H*W) or (n, H, W) into one (rows*(H+pad)-pad, ncols*(W+pad)-pad)
    array, row by row, the tiles separated by ``pad`` pixels of ``background``."""
    h, w = image_shape
    images = np.clip(np.asarray(images, dtype=np.float64).reshape(-1, h, w), 0, 1)
    n = images.shape[0]
    nrows = -(-n // ncols)
    grid = np.full((nrows * (h + pad) - pad, ncols * (w + pad) - pad), background)
    for i, img in enumerate(images):
        r, c = divmod(i, ncols)
        grid[r * (h + pad):r * (h + pad) + h, c * (w + pad):c * (w + pad) + w] = img
    return grid


def _show(ax, grid, title):
    ax.imshow(grid, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.set_title(title)
    ax.set_axis_off()


def _save(fig, path):
    path = Path(path)
    fig.savefig(path, dpi=DPI, bbox_inches="tight")
    return path


def plot_reconstructions(path, originals, reconstructions, image_shape, ncols=8):
    """originals, reconstructions : (n, H*W) in [0, 1], row i reconstructing row i."""
    h, w = image_shape
    fig = Figure(figsize=(10 * w / h, 5.4), layout="constrained")   # two grids, no gap
    left, right = fig.subplots(1, 2)
    _show(left, image_grid(originals, image_shape, ncols), "test images x")
    _show(right, image_grid(reconstructions, image_shape, ncols),
          "reconstructions E[x | z = mu(x)]")
    fig.suptitle("Test images and their reconstructions, in the same places")
    return _save(fig, path)


def plot_samples(path, samples, image_shape, ncols=8):
    """samples : (n, H*W), decoded draws z ~ N(0, I)."""
    fig = Figure(figsize=(5.4, 5.8), layout="constrained")
    _show(fig.subplots(), image_grid(samples, image_shape, ncols),
          "Samples: E[x | z] for z ~ N(0, I)")
    return _save(fig, path)


def plot_loss_curves(path, train_loss, test_loss, test_recon=None, test_kl=None,
                     batch_losses=None):
    """Per-epoch curves, epochs numbered 1..E.

    train_loss, test_loss : (E,) mean -ELBO (nats per example) of each epoch
    test_recon, test_kl : (E,) optional; each drawn in a panel of its own
    batch_losses : list of E sequences, the -ELBO of every batch, drawn
        faintly at fractional epochs (the y-axis is fitted to the epoch
        means, so the first batches of a run may run off its top)
    """
    epochs = np.arange(1, len(train_loss) + 1)
    parts = [(name, values, color) for name, values, color in
             (("test reconstruction -log p(x|z)", test_recon, "tab:green"),
              ("test KL(q(z|x) || p(z))", test_kl, "tab:red")) if values is not None]
    fig = Figure(figsize=(6.5 + 4 * len(parts), 4.4), layout="constrained")
    axes = fig.subplots(1, 1 + len(parts), squeeze=False)[0]
    ax = axes[0]
    if batch_losses is not None:
        xs = np.concatenate([e - 1 + np.arange(1, len(b) + 1) / len(b)
                             for e, b in zip(epochs, batch_losses)])
        ax.plot(xs, np.concatenate(batch_losses), color="tab:blue", alpha=0.25, lw=0.6,
                label="train, per batch")
    ax.plot(epochs, train_loss, "o-", color="tab:blue", label="train (epoch mean)")
    ax.plot(epochs, test_loss, "s-", color="tab:orange", label="test")
    means = np.concatenate([train_loss, test_loss])
    span = max(means.max() - means.min(), 1.0)
    ax.set_ylim(means.min() - 0.3 * span, means.max() + 0.6 * span)
    ax.set_ylabel("-ELBO (nats per example)")
    ax.set_title("Negative ELBO (lower is better)")
    ax.legend()
    for ax, (name, values, color) in zip(axes[1:], parts):
        ax.plot(epochs, values, "s-", color=color)
        ax.set_ylabel("nats per example")
        ax.set_title(name)
    for ax in axes:
        ax.set_xlabel("epoch")
        ax.set_xlim(0 if ax is axes[0] and batch_losses is not None else 0.5, len(epochs) + 0.5)
        ax.grid(alpha=0.3)
    return _save(fig, path)


def latent_projection(means):
    """means (N, L) -> (points (N, 2), axis labels, description).

    L = 2: the latent dimensions themselves.  L > 2: the top two principal
    components, from the SVD of the centred means, U S V^T: points = U[:, :2] S[:2].
    L = 1: the dimension against zeros.
    """
    means = np.asarray(means, dtype=np.float64)
    latent = means.shape[1]
    if latent == 1:
        return np.column_stack([means[:, 0], np.zeros(len(means))]), ("z1", ""), "z1 (L = 1)"
    if latent == 2:
        return means, ("z1", "z2"), "the two latent dimensions"
    centred = means - means.mean(axis=0)
    u, s, _ = np.linalg.svd(centred, full_matrices=False)
    share = s ** 2 / np.sum(s ** 2)
    labels = tuple(f"PC {i + 1} ({100 * share[i]:.0f}% of variance)" for i in range(2))
    return u[:, :2] * s[:2], labels, f"PCA projection of the {latent}-d means"


def plot_latent_scatter(path, means, labels=None):
    """means : (N, L) posterior means mu(x); labels : (N,) integer classes (digits),
    or None for an unlabeled data set (Frey Face): one colour, no legend."""
    points, (xlabel, ylabel), how = latent_projection(means)
    cmap = colormaps["tab10"]
    fig = Figure(figsize=(7.4, 6), layout="constrained")
    ax = fig.subplots()
    order = np.random.default_rng(0).permutation(len(points))  # no class drawn on top
    colors = "tab:blue" if labels is None else cmap(np.asarray(labels)[order] % 10)
    ax.scatter(points[order, 0], points[order, 1], c=colors, s=3, alpha=0.7, linewidths=0)
    if labels is not None:
        handles = [Line2D([], [], ls="", marker="o", color=cmap(c % 10), label=str(c))
                   for c in np.unique(labels)]
        ax.legend(handles=handles, title="digit", loc="center left", bbox_to_anchor=(1.01, 0.5))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(f"Test posterior means E[z|x]: {how}")
    ax.grid(alpha=0.3)
    return _save(fig, path)


def manifold_grid(n):
    """z values (n,) = Phi^-1 of n points equally spaced inside (0, 1)."""
    return norm.ppf(np.linspace(0, 1, n + 2)[1:-1])


def plot_manifold(path, decode, image_shape, n=20, dtype=np.float32):
    """Decode the n x n grid z = (Phi^-1(u1), Phi^-1(u2)) of a 2-d latent space.

    decode : callable z (n*n, 2) of ``dtype`` -> (n*n, H*W) means in [0, 1].
    z1 grows to the right, z2 upwards.
    """
    fig = Figure(figsize=(7.4, 7.6), layout="constrained")
    ax = fig.subplots()
    draw_manifold(ax, decode, image_shape, n, dtype)
    ax.set_title("Learned manifold: E[x|z] on a grid of z\n(Kingma & Welling 2014, Figure 4)")
    return _save(fig, path)


def draw_manifold(ax, decode, image_shape, n=20, dtype=np.float32):
    """Draw plot_manifold's grid of decoded z on the axes ``ax``, with z on the ticks."""
    h, w = image_shape
    values = manifold_grid(n)
    z1, z2 = np.meshgrid(values, values[::-1])                   # row 0 at the top: largest z2
    z = np.column_stack([z1.ravel(), z2.ravel()]).astype(dtype)  # (n*n, 2), row-major
    grid = image_grid(decode(z), image_shape, n, pad=0)
    ax.imshow(grid, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ticks = np.unique(np.linspace(0, n - 1, min(n, 5)).round().astype(int))
    ax.set_xticks(ticks * w + (w - 1) / 2, [f"{values[i]:.2f}" for i in ticks])
    ax.set_yticks(ticks * h + (h - 1) / 2, [f"{values[::-1][i]:.2f}" for i in ticks])
    ax.set_xlabel(r"$z_1 = \Phi^{-1}(u_1)$, $u_1$ equally spaced in (0, 1)")
    ax.set_ylabel(r"$z_2 = \Phi^{-1}(u_2)$")


# ------------------------------------------ Kingma & Welling's figures --

METHOD_STYLE = {"aevb": ("tab:red", "AEVB"), "wake-sleep": ("tab:blue", "wake-sleep")}


def plot_bound_curves(path, rows):
    """Kingma & Welling (2014) Figure 2: the lower bound per datapoint against the
    number of training samples evaluated, a panel per (data set, N_z), log x-axis.

    rows : list of (row label, panels), e.g. [("MNIST", panels), ("Frey Face", panels)];
    panels : list of (N_z, curves); curves : dict method -> (samples (P,), train (P,),
    test (P,)), method a key of METHOD_STYLE (its colour and name).  Train solid,
    test dashed; the panels of a row share their y-axis.
    """
    ncols = max(len(panels) for _, panels in rows)
    fig = Figure(figsize=(3.3 * ncols, 3.1 * len(rows)), layout="constrained")
    axes = fig.subplots(len(rows), ncols, squeeze=False, sharey="row")
    for r, (row_label, panels) in enumerate(rows):
        for c in range(ncols):
            ax = axes[r, c]
            if c >= len(panels):
                ax.set_visible(False)
                continue
            latent_dim, curves = panels[c]
            for method, (samples, train, test) in curves.items():
                color, name = METHOD_STYLE[method]
                ax.plot(samples, train, "-", color=color, label=f"{name} (train)")
                ax.plot(samples, test, "--", color=color, label=f"{name} (test)")
            ax.set_xscale("log")
            ax.xaxis.set_minor_formatter(NullFormatter())       # label the powers of 10 only
            ax.set_title(f"{row_label}, $N_z$ = {latent_dim}")
            ax.grid(alpha=0.3, which="both")
            ax.set_xlabel("# training samples evaluated")
        axes[r, 0].set_ylabel(r"lower bound $\mathcal{L}$ per datapoint")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    for ax in axes.flat:                                  # the legend of the fullest panel
        h, lab = ax.get_legend_handles_labels()
        if len(h) > len(handles):
            handles, labels = h, lab
    fig.legend(handles, labels, loc="outside lower center", ncols=len(labels))
    fig.suptitle("Lower bound against training samples, AEVB and wake-sleep "
                 "(Kingma & Welling 2014, Figure 2)")
    return _save(fig, path)


def plot_manifolds(path, panels, n=20):
    """Kingma & Welling (2014) Figure 4: learned 2-d manifolds side by side.

    panels : list of (title, decode, image_shape, dtype), decode as for plot_manifold.
    """
    fig = Figure(figsize=(6.2 * len(panels), 6.8), layout="constrained")
    for ax, (title, decode, image_shape, dtype) in zip(fig.subplots(1, len(panels),
                                                                    squeeze=False)[0], panels):
        draw_manifold(ax, decode, image_shape, n, dtype)
        ax.set_title(title)
    fig.suptitle("Learned 2-d manifolds: E[x|z] on a grid z = Phi^-1(u) "
                 "(Kingma & Welling 2014, Figure 4)")
    return _save(fig, path)


def plot_sample_panels(path, panels, ncols=10):
    """Kingma & Welling (2014) Figure 5: random samples of several models side by side.

    panels : list of (title, images (n, H*W) in [0, 1], image_shape).
    """
    fig = Figure(figsize=(3.6 * len(panels), 4.0), layout="constrained")
    for ax, (title, images, image_shape) in zip(fig.subplots(1, len(panels),
                                                             squeeze=False)[0], panels):
        _show(ax, image_grid(images, image_shape, ncols), title)
    fig.suptitle("Random samples E[x|z], z ~ N(0, I) (Kingma & Welling 2014, Figure 5)")
    return _save(fig, path)


def plot_run(out_dir, model, x_test, y_test, epochs, image_shape, rng, n_images=64):
    """The PNGs of a run in ``out_dir``; returns their paths.

    model : a trained VAE; x_test : (N, D) test inputs of the model's dtype;
    y_test : (N,) labels, or None (unlabeled); epochs : the per-epoch records of metrics.json
    (train_loss, test_loss, test_recon, test_kl, train_batch_losses);
    rng : np.random.Generator for the samples.  manifold.png only when the
    latent space is 2-d.
    """
    out = Path(out_dir)
    shown = x_test[:n_images]
    paths = [
        plot_reconstructions(out / "reconstructions.png", shown, model.reconstruct(shown),
                             image_shape),
        plot_samples(out / "samples.png", model.sample(n_images, rng),
                     image_shape),
        plot_loss_curves(out / "loss_curves.png",
                         *(np.array([r[k] for r in epochs])
                           for k in ("train_loss", "test_loss", "test_recon", "test_kl")),
                         batch_losses=[r["train_batch_losses"] for r in epochs]),
        plot_latent_scatter(out / "latent_scatter.png", posterior_means(model, x_test), y_test),
    ]
    if model.latent_dim == 2:
        paths.append(plot_manifold(out / "manifold.png", model.decode, image_shape,
                                   dtype=model.dtype))
    return paths

