"""The papers' committed values (results/paper_values/): they load, Figure 2 draws them
beside the reproduced curves, and the README's comparison tables are exactly what
reproductions/paper_values.py prints from the committed files (so they cannot drift)."""

import json
import re

import numpy as np
import pytest

import kingma_welling as kw
import paper_values as pv
from numpyvae.run.plots import METHOD_STYLE, bound_curves_figure

README = pv.ROOT / "README.md"
RESULTS = json.loads(pv.KW_RESULTS.read_text())
MNIST_END = round(10 ** 8.4)                    # where the paper's MNIST curves end


def raw_rows():
    return json.loads((pv.PAPER_DIR / pv.KW_FIGURE2).read_text())["rows"]


def readme_block(name):
    """The lines of the README table under <!-- paper_values NAME -->."""
    lines = README.read_text().splitlines()
    start = lines.index(pv.marker(name))
    block = [lines[start]]
    for line in lines[start + 1:]:
        if not line.startswith("|"):
            break
        block.append(line)
    return block


def cells(line):
    return [c.strip() for c in line.strip("|").split("|")]


def test_figure2_values_load():
    curves = pv.kw_figure2()
    assert len(curves) == 18 and len(raw_rows()) == 36      # 9 panels x 2 methods x 2 splits
    for (dataset, method, latent_dim), curve in curves.items():
        assert latent_dim in pv.KW_LATENT_DIMS[dataset] and method in kw.METHODS
        ends = (10 ** 6, 10 ** 7, 10 ** 8) + ((MNIST_END,) if dataset == "mnist" else ())
        assert curve.samples == ends
        assert all(np.isfinite(curve.train + curve.test))
        assert all((v < 0) == (dataset == "mnist") for v in curve.train + curve.test)
    for row in raw_rows():                          # every number of the file is there
        curve = curves[(pv.DATASET_NAMES[row["dataset"]], pv.METHOD_NAMES[row["method"]],
                        row["n_z"])]
        for key, value in row["lower_bound_at"].items():
            assert curve.at(row["split"], int(float(key))) == value
        assert curve.at(row["split"], round(10 ** row["end_log10_samples"])) == row["end"]
    with pytest.raises(KeyError, match="not 3e\\+06"):
        curves[("frey", "aevb", 2)].at("train", 3 * 10 ** 6)


def test_iwae_values_load():
    table = pv.iwae_table1()
    assert len(table) == 12
    assert table[(1, "VAE", 1)] == 86.76 and table[(1, "IWAE", 5)] == 85.54
    assert table[(2, "IWAE", 50)] == 82.90
    assert all(table[(layers, "VAE", 1)] == table[(layers, "IWAE", 1)] for layers in (1, 2))


def test_figure2_draws_the_papers_points():
    """Every point of the paper beside a committed run is drawn: a marker per point,
    train and test, in the panel of its data set and N_z, at the paper's values."""
    fig = bound_curves_figure(kw.figure2_rows(RESULTS["runs"]))
    curves = pv.kw_figure2()
    markers = 0
    for ax in fig.axes:
        if not ax.get_visible() or not ax.get_title():
            continue
        title, latent_dim = re.fullmatch(r"(.+), \$N_z\$ = (\d+)", ax.get_title()).groups()
        dataset = {v: k for k, v in pv.TITLES.items()}[title]
        for line in ax.get_lines():
            label = line.get_label()
            if not label.startswith("paper"):
                assert line.get_marker() in ("None", "", None)   # the curves: lines only
                continue
            method = {v[1]: k for k, v in METHOD_STYLE.items()}[
                re.fullmatch(r"paper, (.+) \((train|test)\)", label).group(1)]
            split = label.rsplit("(", 1)[1].rstrip(")")
            curve = curves[(dataset, method, int(latent_dim))]
            np.testing.assert_array_equal(line.get_xdata(), curve.samples)
            np.testing.assert_array_equal(line.get_ydata(), getattr(curve, split))
            assert line.get_marker() == ("o" if split == "train" else "s")
            markers += len(line.get_xdata())
    # MNIST: 5 panels x 2 methods x 2 splits x 4 points; Frey Face: 4 x 2 x 2 x 3
    assert markers == 5 * 2 * 2 * 4 + 4 * 2 * 2 * 3
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert "paper, AEVB (train)" in legend and "wake-sleep (test)" in legend


def test_figure2_draws_from_results_json_alone(tmp_path):
    """A directory with only results.json (as results/kingma_welling) gets Figure 2."""
    (tmp_path / kw.RESULTS).write_text(pv.KW_RESULTS.read_text())
    assert kw.draw_figures(tmp_path) == [tmp_path / kw.FIGURES["bounds"]]


@pytest.mark.parametrize("samples", [10 ** 6, 10 ** 7])
def test_readme_kw_table_is_the_committed_comparison(samples):
    name = f"kw 1e{round(np.log10(samples))}"
    block = readme_block(name)
    assert "\n".join(block) == pv.kw_comparison_table(RESULTS, samples)
    # and, independently of the code above, each paper cell is the file's value
    paper = {(r["dataset"], r["n_z"], r["method"], r["split"]): r["lower_bound_at"]
             for r in raw_rows()}
    head = cells(block[1])
    rows = [cells(line) for line in block[3:]]
    assert len(rows) == 9
    for row in rows:
        dataset = "MNIST" if row[0] == "MNIST" else "Frey"
        for i in (i for i, h in enumerate(head) if h == "paper"):
            method, split = head[i - 1].split()
            theirs = paper[(dataset, int(row[1]), method, split)][f"1e{name[-1]}"]
            assert float(row[i]) == theirs
            ours, diff = float(row[i - 1]), row[i + 1]
            assert float(diff.strip("*")) == pytest.approx(ours - theirs, abs=0.051)
            precision = pv.READING_PRECISION[pv.DATASET_NAMES[dataset]]
            assert diff.startswith("**") == (abs(float(diff.strip("*"))) > precision)


def test_readme_iwae_table_is_the_committed_values():
    block = readme_block("iwae")
    assert "\n".join(block) == pv.iwae_paper_table()
    nll = json.loads((pv.PAPER_DIR / pv.IWAE_TABLE1).read_text())["nll"]
    for row in (cells(line) for line in block[3:]):
        model, layers = row[0].split(", ")
        layers = "1 stochastic layer" if layers.startswith("1") else "2 stochastic layers"
        assert [float(v) for v in row[1:]] == [nll[layers][model][f"k={k}"] for k in (1, 5, 50)]


def test_command_line(capsys):
    assert pv.main(["kw", "1e7"]) == 0
    assert capsys.readouterr().out.startswith(pv.marker("kw 1e7"))
    assert pv.main(["kw", "1e8"]) == 2                    # only one run reaches 10^8
    assert "no pair of runs" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        pv.main(["kw", "many"])
    assert "expected a number of samples" in capsys.readouterr().err


def test_experiments_table(tmp_path):
    """An investigation run beside the committed run and the paper, its changed settings named."""
    base = RESULTS["runs"]["mnist-aevb-z3"]
    changed = {**base, "settings": {**base["settings"], "init_std": 0.1}, "step_size": 0.02}
    table = pv.experiments_table({"init": changed}, [10 ** 5, 10 ** 6], RESULTS["runs"])
    lines = table.splitlines()
    assert cells(lines[2])[:4] == ["committed run", "mnist-aevb-z3", "(none)", "0.01"]
    assert cells(lines[3])[:4] == ["init", "mnist-aevb-z3", "init_std 0.1", "0.02"]
    assert cells(lines[2])[4:] == [f"{bound_at:.2f}" for bound_at in (
        pv.bound_at(base, "train", 10 ** 5), pv.bound_at(base, "test", 10 ** 5),
        pv.bound_at(base, "train", 10 ** 6), pv.bound_at(base, "test", 10 ** 6))]
    assert cells(lines[4]) == ["paper", "mnist-aevb-z3", "", "", "", "", "-155.3", "-152.9"]
    path = tmp_path / "init" / "results.json"
    path.parent.mkdir()
    path.write_text(json.dumps({"runs": {"mnist-aevb-z3": changed}}))
    assert pv.main(["experiments", "--experiments", str(path)]) == 0
