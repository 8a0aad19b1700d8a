"""demos/normalisation.py: the effective beta b / a of each normalisation, and the table of
trained runs' rate and distortion read from their metrics.json."""

import json

import pytest

from demo_helpers import load_demo

demo = load_demo("normalisation.py")


def test_each_normalisation_is_the_beta_its_weights_say():
    D, L, M, N = 784, 20, 128, 60_000
    beta = {what: b / a for what, a, b in demo.normalisations(D, L, M, N)}
    assert beta["numpyvae: sum over pixels and latents, mean over the batch"] == 1
    assert beta["Kingma & Welling's estimator (N/M) sum over the batch"] == 1
    assert beta["recon a mean over pixels (BCE reduction='mean'), KL per example"] == pytest.approx(D)
    assert beta["KL divided by the number of pixels D"] == pytest.approx(1 / D)
    assert beta["KL weighted by M/N (kld_weight = batch / training set)"] == pytest.approx(M / N)
    assert beta["KL weighted by M/N, recon a mean over pixels"] == pytest.approx(D * M / N)
    assert beta["both a mean over every element (mean over pixels, over latents)"] == \
        pytest.approx(D / L)


def write_run(folder, beta, kl, recon):
    folder.mkdir()
    final = {"test_kl": kl, "test_recon": recon, "test_loss": kl + recon, "test_nll": recon,
             "eval_k": 100, "active_units": 3, "latent_dim": 20}
    (folder / "metrics.json").write_text(json.dumps(
        {"config": {"beta": beta}, "final": final, "epochs": [{}, {}, {}]}))


def test_the_runs_table_is_sorted_by_beta_and_bad_folders_exit_2(tmp_path, capsys):
    write_run(tmp_path / "big", 784.0, 0.0, 208.0)
    write_run(tmp_path / "one", 1.0, 25.5, 85.75)
    assert demo.main(["--runs", str(tmp_path / "big"), str(tmp_path / "one")]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if str(tmp_path) in line]
    assert [row.split()[0] for row in rows] == ["1", "784"]
    assert rows[0].split()[1:5] == ["3", "25.50", "85.75", "111.25"]
    assert demo.main(["--runs", str(tmp_path / "missing")]) == 2
    assert "metrics.json" in capsys.readouterr().err
