"""demos/collapse.py and demos/true_posterior.py on synthetic MNIST-layout data, and the
two plots they draw (plots.plot_aggregate_posterior, plots.plot_true_posterior)."""

import io
import re

import numpy as np

from demo_helpers import load_demo
from numpyvae.collapse import kl_decomposition
from numpyvae.run.fit import fit
from numpyvae.run.settings import RunConfig
from numpyvae.run.plots import plot_aggregate_posterior
from test_pictures import sane, write_synthetic_mnist

collapse = load_demo("collapse.py")
true_posterior = load_demo("true_posterior.py")


def train(data_dir, out, **settings):
    from numpyvae.data.datasets import load_dataset_noting_warnings
    data, _ = load_dataset_noting_warnings("mnist", str(data_dir))
    fit(RunConfig(epochs=1, eval_k=0, hidden=(16,), out=str(out), **settings), data,
        plots=False, stream=io.StringIO())
    return out


def test_aggregate_posterior_plot(tmp_path):
    rng = np.random.default_rng(0)
    mu, logvar = rng.standard_normal((200, 2)), rng.normal(-1, 0.2, (200, 2))
    path = plot_aggregate_posterior(tmp_path / "a.png", mu, logvar,
                                    kl_decomposition(mu, logvar, rng, 100), points=41)
    assert sane(path)


def test_collapse_table_and_pictures(tmp_path, capsys):
    data = write_synthetic_mnist(tmp_path / "data")
    z2 = train(data, tmp_path / "z2", latent_dim=2)
    free = train(data, tmp_path / "free", latent_dim=3, beta=8, free_bits=0.5)
    out = tmp_path / "collapse"
    assert collapse.main([str(z2), str(free), "--data-dir", str(data), "--samples", "50",
                          "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "log N = 4.09" in printed                  # 60 test images
    rows = [line for line in printed.splitlines() if line.startswith("| z2") or
            line.startswith("| free")]
    assert len(rows) == 2
    assert re.search(r"\| free \(1 epochs\) \| 8 \| 0\.5 \| [\d.]+ \| [\d.]+ \| \d/3 \|", rows[1])
    assert len(rows[0].split("|")[-2].split()) == 2   # the KL of each of 2 dimensions
    assert sane(out / "z2_aggregate_posterior.png")
    # the picture is there: refused without --overwrite
    assert collapse.main([str(z2), "--data-dir", str(data), "--out", str(out)]) == 2
    assert "--overwrite" in capsys.readouterr().err

    png = tmp_path / "posterior.png"
    assert true_posterior.main(["--run", str(z2), "--data-dir", str(data), "--digits", "0,3",
                                "--points", "41", "--eval-k", "200", "--samples", "200",
                                "--out", str(png)]) == 0
    printed = capsys.readouterr().out
    assert len([line for line in printed.splitlines() if re.match(r"\| \d+ \| [03] \|", line)]) == 2
    assert sane(png)


def test_bad_runs_exit_2(tmp_path, capsys):
    assert collapse.main([str(tmp_path)]) == 2
    assert "checkpoint.npz" in capsys.readouterr().err
    data = write_synthetic_mnist(tmp_path / "data")
    z3 = train(data, tmp_path / "z3", latent_dim=3)
    assert true_posterior.main(["--run", str(z3), "--data-dir", str(data),
                                "--out", str(tmp_path / "p.png")]) == 2
    assert "--latent-dim 2" in capsys.readouterr().err
