"""Pictures of a trained VAE and of its training, as PNG files.

    plot_reconstructions   test images beside their reconstructions E[x | z = mu(x)]
    plot_samples           decoded z ~ N(0, I): E[x|z], the means of p(x|z)
    plot_loss_curves       train/test -ELBO per epoch (and per batch), test recon and KL
    plot_latent_scatter    posterior means mu(x) coloured by label (if any): the first two latent
                           dimensions when L = 2, else a PCA projection to 2-D
    plot_manifold          for L = 2, decoded grid of z = Phi^-1(u) over u in (0, 1)^2
                           (Kingma & Welling 2014, Figure 4)
    plot_bound_curves      lower bound vs training samples, AEVB and wake-sleep, beside the
                           paper's points (K&W Figure 2; bound_curves_figure draws it)
    plot_manifolds         several 2-d manifolds side by side (K&W Figure 4)
    plot_sample_panels     samples of several models side by side (K&W Figure 5)
    plot_run               all of them for a run directory
    plot_aggregate_posterior   for L = 2, q(z) = (1/N) sum_n q(z|x_n) against the prior
    plot_true_posterior    for L = 2, p(z|x) on a grid beside the contours of q(z|x)

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
from numpyvae.run.rundir import PLOTS

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
PAPER_MARKERS = {"train": "o", "test": "s"}      # the paper's points: filled train, open test


def plot_bound_curves(path, rows):
    """Kingma & Welling (2014) Figure 2 (``bound_curves_figure``) as a PNG at ``path``."""
    return _save(bound_curves_figure(rows), path)


def bound_curves_figure(rows):
    """Kingma & Welling (2014) Figure 2: the lower bound per datapoint against the
    number of training samples evaluated, a panel per (data set, N_z), log x-axis,
    the reproduction's curves beside the paper's points.

    rows : list of (row label, panels), e.g. [("MNIST", panels), ("Frey Face", panels)];
    panels : list of (N_z, curves, paper); curves : dict method -> (samples (P,),
    train (P,), test (P,)), method a key of METHOD_STYLE (its colour and name);
    paper : the same for the paper's values (a few points each, may be empty).
    The curves: train solid, test dashed.  The paper's points: markers in the
    method's colour joined by a thin dotted line, train filled circles, test open
    squares.  The panels of a row share their y-axis.  Returns the Figure.
    """
    ncols = max(len(panels) for _, panels in rows)
    fig = Figure(figsize=(3.3 * ncols, 3.3 * len(rows)), layout="constrained")
    axes = fig.subplots(len(rows), ncols, squeeze=False, sharey="row")
    for r, (row_label, panels) in enumerate(rows):
        for c in range(ncols):
            ax = axes[r, c]
            if c >= len(panels):
                ax.set_visible(False)
                continue
            latent_dim, curves, paper = panels[c]
            for method, (samples, train, test) in curves.items():
                color, name = METHOD_STYLE[method]
                ax.plot(samples, train, "-", color=color, label=f"{name} (train)")
                ax.plot(samples, test, "--", color=color, label=f"{name} (test)")
            for method, (samples, train, test) in paper.items():
                color, name = METHOD_STYLE[method]
                for split, values in (("train", train), ("test", test)):
                    ax.plot(samples, values, ":", lw=0.8, color=color,
                            marker=PAPER_MARKERS[split], markersize=5,
                            markerfacecolor=color if split == "train" else "white",
                            label=f"paper, {name} ({split})")
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
    fig.legend(handles, labels, loc="outside lower center", ncols=min(len(labels), 4))
    fig.suptitle("Lower bound against training samples, AEVB and wake-sleep: lines reproduced "
                 "here, markers the paper's values (Kingma & Welling 2014, Figure 2)")
    return fig


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
    """The PNGs of a run in ``out_dir`` (named in rundir.PLOTS); returns their paths.

    model : a trained VAE; x_test : (N, D) test inputs of the model's dtype;
    y_test : (N,) labels, or None (unlabeled); epochs : the per-epoch records of metrics.json
    (train_loss, test_loss, test_recon, test_kl, train_batch_losses);
    rng : np.random.Generator for the samples.  manifold.png only when the
    latent space is 2-d.
    """
    out = Path(out_dir)
    shown = x_test[:n_images]
    paths = [
        plot_reconstructions(out / PLOTS["reconstructions"], shown, model.reconstruct(shown),
                             image_shape),
        plot_samples(out / PLOTS["samples"], model.sample(n_images, rng),
                     image_shape),
        plot_loss_curves(out / PLOTS["loss_curves"],
                         *(np.array([r[k] for r in epochs])
                           for k in ("train_loss", "test_loss", "test_recon", "test_kl")),
                         batch_losses=[r["train_batch_losses"] for r in epochs]),
        plot_latent_scatter(out / PLOTS["latent_scatter"], posterior_means(model, x_test),
                            y_test),
    ]
    if model.latent_dim == 2:
        paths.append(plot_manifold(out / PLOTS["manifold"], model.decode, image_shape,
                                   dtype=model.dtype))
    return paths



# ------------------------------------------------- pictures that teach --
#
#   plot_gradient_variance   per latent dimension, the variance of three unbiased one-sample
#                            estimators of d E_q[log p(x|z)] / d(mu, logvar)
#                            (demos/gradient_variance.py, docs/reparameterization.md)
#   plot_latent_traversals   decode mu(x) with one latent dimension swept over the prior's quantiles
#   plot_interpolation       decode (1 - t) mu(x_a) + t mu(x_b), t from 0 to 1
#   plot_kl_per_dimension    mean KL(q(z_l|x) || N(0, 1)) per latent dimension, beside the
#                            active-unit statistic Var_x(mu_l(x))
#   plot_rate_distortion     a beta sweep: rate (KL) against distortion (-log p(x|z))
#   (the last four: demos/pictures.py)

def plot_gradient_variance(path, result):
    """Bars of the variance of each gradient estimator, per latent dimension, log scale.

    result : the dict of demos/gradient_variance.py's ``measure``: "variance" maps an
    estimator's name to (N, 2L) variances over samples, columns [d/dmu, d/dlogvar];
    the bars are their means over the N images.
    """
    latent = result["latent_dim"]
    names = list(result["variance"])
    fig = Figure(figsize=(min(14.0, max(7.0, 0.5 * latent + 3)), 7.5), layout="constrained")
    axes = fig.subplots(2, 1, sharex=True)
    width = 0.8 / len(names)
    dims = np.arange(1, latent + 1)
    for ax, (label, cols) in zip(axes, ((r"$\mu_l$", slice(0, latent)),
                                        (r"$\log\sigma^2_l$ (logvar)", slice(latent, 2 * latent)))):
        for i, name in enumerate(names):
            ax.bar(dims + (i - (len(names) - 1) / 2) * width,
                   result["variance"][name][:, cols].mean(axis=0), width, label=name)
        ax.set_yscale("log")
        ax.set_title(f"gradient w.r.t. {label}")
        ax.set_ylabel("variance of a one-sample\nestimate (mean over images)")
        ax.grid(axis="y", alpha=0.3)
    axes[1].set_xlabel("latent dimension l")
    axes[1].set_xticks(dims if latent <= 20 else dims[::max(1, latent // 10)])
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center", ncols=len(names))
    fig.suptitle("Variance of three unbiased estimates of the gradient of E_q[log p(x|z)]\n"
                 f"({result['n_samples']} samples of z for each of {result['n_examples']} images)")
    return _save(fig, path)


def traversal_values(n, tail=0.02):
    """n values z = Phi^-1(u), u equally spaced from ``tail`` to 1 - ``tail``: the
    prior N(0, 1)'s quantiles, from about -2 to 2 for the default tail."""
    return norm.ppf(np.linspace(tail, 1 - tail, n))


def _column_ticks(ax, labels, w, pad=1):
    ax.set_axis_on()
    ax.set_xticks([i * (w + pad) + (w - 1) / 2 for i in range(len(labels))], labels)
    ax.set_yticks([])
    ax.tick_params(length=0)
    for side in ax.spines.values():
        side.set_visible(False)


def plot_latent_traversals(path, decode, codes, originals, dims, image_shape, n_steps=9,
                           dim_labels=None, dtype=np.float32):
    """One panel per test image: row r decodes ``codes[m]`` with dimension ``dims[r]``
    replaced by each of traversal_values(n_steps); column 0 is the image itself.

    decode : callable z (n, L) of ``dtype`` -> (n, H*W) means in [0, 1]
    codes : (M, L) posterior means mu(x) of M test images; originals : (M, H*W) those images
    dims : the latent dimensions to sweep (0-based), one row each
    dim_labels : optional row labels, e.g. the dimension's KL; default "z_l"
    """
    codes = np.asarray(codes)
    values = traversal_values(n_steps)
    h, w = image_shape
    labels = dim_labels or [f"z{d + 1}" for d in dims]
    tile = min(0.55, 18.0 / ((n_steps + 1) * len(codes)))       # inches per image
    fig = Figure(figsize=(tile * (n_steps + 1) * len(codes) + 1.5, tile * len(dims) + 1.7),
                 layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(codes)))
    for m, (ax, code) in enumerate(zip(axes, codes)):
        z = np.repeat(code[None, None, :], len(dims), axis=0).repeat(n_steps, axis=1)
        for r, d in enumerate(dims):
            z[r, :, d] = values                                   # (rows, steps, L)
        decoded = decode(z.reshape(-1, codes.shape[1]).astype(dtype)).reshape(len(dims), n_steps, -1)
        tiles = np.concatenate([np.repeat(originals[m][None, None], len(dims), axis=0), decoded],
                               axis=1)
        _show(ax, image_grid(tiles.reshape(-1, h * w), image_shape, n_steps + 1), f"test image {m + 1}")
        _column_ticks(ax, ["x"] + [f"{v:.1f}" for v in values], w)
        ax.set_yticks([r * (h + 1) + (h - 1) / 2 for r in range(len(dims))],
                      labels if m == 0 else [])
        ax.set_xlabel(r"value of the swept $z_l$ (prior quantiles)")
    fig.suptitle(r"Latent traversals: E[x|z] with z = $\mu(x)$ except one dimension $z_l$, "
                 r"swept across $\Phi^{-1}(u)$ from u = 0.02 to 0.98" "\n"
                 "(rows: dimensions by decreasing KL; column x: the test image)")
    return _save(fig, path)


def plot_interpolation(path, decode, codes_a, codes_b, originals_a, originals_b, image_shape,
                       n_steps=10, dtype=np.float32):
    """Row i decodes z = (1 - t) codes_a[i] + t codes_b[i] for n_steps values of t in [0, 1],
    between the two test images themselves (first and last column).

    decode : callable z (n, L) of ``dtype`` -> (n, H*W); codes_a, codes_b : (M, L) posterior
    means; originals_a, originals_b : (M, H*W) the images they encode.
    """
    codes_a, codes_b = np.asarray(codes_a), np.asarray(codes_b)
    t = np.linspace(0, 1, n_steps)
    z = (1 - t)[None, :, None] * codes_a[:, None, :] + t[None, :, None] * codes_b[:, None, :]
    decoded = decode(z.reshape(-1, codes_a.shape[1]).astype(dtype)).reshape(len(codes_a), n_steps, -1)
    tiles = np.concatenate([np.asarray(originals_a)[:, None], decoded,
                            np.asarray(originals_b)[:, None]], axis=1)
    h, w = image_shape
    fig = Figure(figsize=(0.6 * (n_steps + 2) + 1, 0.62 * len(codes_a) + 1.5), layout="constrained")
    ax = fig.subplots()
    _show(ax, image_grid(tiles.reshape(-1, h * w), image_shape, n_steps + 2),
          r"Interpolation in latent space: E[x|z], z = (1 - t) $\mu(x_a)$ + t $\mu(x_b)$")
    _column_ticks(ax, [r"$x_a$"] + [f"{v:.2f}" for v in t] + [r"$x_b$"], w)
    ax.set_xlabel("t  (first and last column: the two test images)")
    return _save(fig, path)


def plot_kl_per_dimension(path, kl_per_dim, unit_variances, threshold=0.01):
    """Two bar charts over the latent dimensions l = 1..L:

    kl_per_dim : (L,) mean over test images of KL(q(z_l|x) || N(0, 1)), nats
    unit_variances : (L,) A_l = Var_x(mu_l(x)), active iff A_l > threshold
    (Burda et al. 2016; evaluate.active_units)
    """
    kl_per_dim, unit_variances = np.asarray(kl_per_dim), np.asarray(unit_variances)
    latent = kl_per_dim.shape[0]
    active = unit_variances > threshold
    colors = np.where(active, "tab:blue", "tab:gray")
    dims = np.arange(1, latent + 1)
    fig = Figure(figsize=(min(16.0, max(8.0, 0.5 * latent + 4)), 4.4), layout="constrained")
    left, right = fig.subplots(1, 2)
    left.bar(dims, kl_per_dim, color=colors)
    left.set_ylabel("nats per example")
    left.set_title(f"KL(q(z_l|x) || N(0, 1)) per dimension, mean over test images\n"
                   f"(sum {kl_per_dim.sum():.2f} nats = the KL term of the ELBO)")
    right.bar(dims, np.maximum(unit_variances, 1e-12), color=colors)
    right.axhline(threshold, color="tab:red", ls="--", label=f"threshold {threshold:g}")
    right.set_yscale("log")
    floor = max(min(threshold, unit_variances[unit_variances > 0].min(initial=threshold)) / 10, 1e-12)
    right.set_ylim(floor, max(threshold, unit_variances.max()) * 30)   # room for the legend
    right.set_ylabel(r"Var$_x$ of $\mu_l(x)$")
    right.set_title(f"Activity A_l = Var_x(E[z_l|x]): {int(active.sum())} of {latent} units active\n"
                    "(gray: inactive, the posterior ignores x: collapsed to the prior)")
    right.legend(loc="upper right")
    for ax in (left, right):
        ax.set_xlabel("latent dimension l")
        ax.set_xticks(dims if latent <= 25 else dims[::max(1, latent // 10)])
        ax.grid(axis="y", alpha=0.3)
    return _save(fig, path)


def plot_rate_distortion(path, betas, rates, distortions):
    """One point per beta-VAE: rate R = KL(q(z|x) || p(z)) against distortion
    D = -log p(x|z) (test means, nats per example), and the dashed line of constant
    R + D = -ELBO through the point with the lowest -ELBO.  betas, rates,
    distortions : (B,)."""
    betas, rates, distortions = (np.asarray(a, dtype=np.float64) for a in (betas, rates, distortions))
    order = np.argsort(betas)
    fig = Figure(figsize=(7.2, 5.6), layout="constrained")
    ax = fig.subplots()
    ax.plot(rates[order], distortions[order], "-", color="tab:blue", alpha=0.5)
    ax.scatter(rates, distortions, c="tab:blue", zorder=3)
    elbos = rates + distortions
    for b, r, d, e in zip(betas, rates, distortions, elbos):
        ax.annotate(f"beta = {b:g}\n-ELBO {e:.1f}", (r, d), textcoords="offset points",
                    xytext=(6, 4), fontsize=9)
    best = int(np.argmin(elbos))
    lo, hi = ax.get_xlim()
    xs = np.array([max(0.0, lo), hi])
    ax.plot(xs, elbos[best] - xs, ls="--", color="gray", lw=0.9,
            label=f"D + R = {elbos[best]:.1f}, the best -ELBO (beta = {betas[best]:g})")
    ax.set_xlim(lo, hi)
    span = distortions.max() - distortions.min()
    ax.set_ylim(distortions.min() - 0.1 * span - 1, distortions.max() + 0.15 * span + 1)
    ax.legend(loc="upper right")
    ax.set_xlabel("rate: KL(q(z|x) || p(z)), nats per example")
    ax.set_ylabel("distortion: -log p(x|z), nats per example")
    ax.set_title("beta-VAE: rate R against distortion D on the test set\n"
                 "(each point trained on D + beta R; on the dashed line -ELBO = D + R is constant)")
    ax.grid(alpha=0.3)
    return _save(fig, path)


def _prior_circles(ax, radii=(1, 2, 3)):
    """The contours of N(0, I) in 2-d through Mahalanobis radius r: circles |z| = r."""
    t = np.linspace(0, 2 * np.pi, 200)
    for i, r in enumerate(radii):
        ax.plot(r * np.cos(t), r * np.sin(t), color="white", lw=0.9, ls="--",
                label="p(z) = N(0, I): |z| = 1, 2, 3" if i == 0 else None)


def plot_aggregate_posterior(path, mu, logvar, decomposition=None, half_width=5.0, points=201):
    """The aggregate posterior q(z) = (1/N) sum_n N(z; mu_n, diag(exp(logvar_n))) of a
    2-d latent against the prior N(0, I): mu, logvar (N, 2), the posteriors of a data set.

    Left: the density of q(z) on a points x points grid over [-half_width, half_width]^2
    (collapse.aggregate_log_density), the prior's 1, 2, 3 circles over it.  Right:
    its two marginals q(z_l) (sums over the grid's other axis) against N(0, 1).
    ``decomposition``: a collapse.KLDecomposition of the same posteriors, for the title.
    """
    from numpyvae.collapse import aggregate_log_density   # the lesson's estimator
    axis = np.linspace(-half_width, half_width, points)
    grid = np.stack(np.meshgrid(axis, axis, indexing="ij"), axis=-1).reshape(-1, 2)
    density = np.exp(aggregate_log_density(grid, mu, logvar)).reshape(points, points)
    step = axis[1] - axis[0]
    fig = Figure(figsize=(11.5, 5.2), layout="constrained")
    left, right = fig.subplots(1, 2, width_ratios=(1.1, 1))
    image = left.imshow(density.T, origin="lower", extent=(-half_width, half_width) * 2,
                        cmap="viridis", interpolation="nearest")
    fig.colorbar(image, ax=left, shrink=0.85, label="q(z)")
    _prior_circles(left)
    left.set_xlabel("$z_1$")
    left.set_ylabel("$z_2$")
    left.legend(loc="upper right", fontsize=8)
    title = f"aggregate posterior q(z) = (1/N) sum_n q(z|x_n), N = {mu.shape[0]:,}"
    if decomposition is not None:
        d = decomposition
        title += (f"\nKL(q(z) || p(z)) = {d.aggregate_kl:.2f} ± {d.aggregate_kl_se:.2f}, "
                  f"I(x; z) = {d.mutual_information:.2f} ± {d.mi_se:.2f} nats")
    left.set_title(title, fontsize=10)
    for l, color in enumerate(("tab:blue", "tab:orange")):
        marginal = density.sum(axis=1 - l) * step                     # q(z_l) on the axis
        right.plot(axis, marginal, color=color, label=f"q($z_{l + 1}$)")
    right.plot(axis, norm.pdf(axis), color="black", ls="--", label="N(0, 1)")
    right.set_xlabel("z")
    right.set_ylabel("density")
    right.set_title("the marginals of q(z) against the prior's", fontsize=10)
    right.legend()
    right.grid(alpha=0.3)
    return _save(fig, path)


def plot_true_posterior(path, images, grids, titles, image_shape):
    """For each image: the image, and beside it its true posterior p(z|x) on a grid
    (posterior_grid.PosteriorGrid: filled contours) with the contours of q(z|x)
    over it (lines).  Both are drawn at the levels exp(-r^2/2) of their peak,
    r = 1, 2, 3: for a Gaussian the ellipses of 1, 2 and 3 standard deviations.
    images (n, H*W); grids: n PosteriorGrids; titles: n strings (the numbers)."""
    n = len(grids)
    fig = Figure(figsize=(3.3 * n, 6.4), layout="constrained")
    axes = fig.subplots(2, n, squeeze=False, height_ratios=(1, 2.2))
    levels = np.exp(-0.5 * np.array([3.0, 2.0, 1.0]) ** 2)            # relative to the peak
    for i, (image, grid, title) in enumerate(zip(images, grids, titles)):
        _show(axes[0, i], image_grid(np.asarray(image)[None], image_shape, 1), f"test image {i + 1}")
        ax = axes[1, i]
        extent = (grid.z1[0], grid.z1[-1], grid.z2[0], grid.z2[-1])
        posterior = np.exp(grid.log_posterior - grid.log_posterior.max())
        ax.contourf(grid.z1, grid.z2, posterior.T, levels=np.append(levels, 1.0 + 1e-9),
                    cmap="Blues", extend="neither")
        q = np.exp(grid.log_q - grid.log_q.max())
        ax.contour(grid.z1, grid.z2, q.T, levels=levels, colors="tab:red", linewidths=1.0)
        ax.set_xlim(extent[:2])
        ax.set_ylim(extent[2:])
        ax.set_xlabel("$z_1$")
        ax.set_ylabel("$z_2$")
        ax.set_title(title, fontsize=8)
    fig.suptitle("true posterior p(z|x) on a grid (blue, filled) against q(z|x) (red lines): "
                 "1, 2, 3-sigma levels", fontsize=10)
    return _save(fig, path)
