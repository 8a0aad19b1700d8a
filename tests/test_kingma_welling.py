"""The Kingma & Welling (2014) protocol and reproduction on tiny synthetic data sets:
settings, initialisation, the MAP weight decay, step-size selection, evaluation,
resuming (bit for bit), the results file, the figures and the demo's command line."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import kingma_welling as kw
from numpyvae.run.checkpoint import load_checkpoint
from numpyvae.data.datafiles import ImageDataset
from numpyvae.evaluate import elbo_terms
from numpyvae.data.binarize import binarize
from numpyvae.model.vae import VAE
from numpyvae.optim import Adagrad
from numpyvae.run.fit import start_training
from numpyvae.run.settings import build_model, build_optimizer
from numpyvae.trainer import TrainingStep

ROOT = Path(__file__).resolve().parents[1]
TINY = kw.Settings(hidden=6, select_samples=200, step_sizes=(0.01, 0.05))


def tiny_dataset(name, n_train=300, n_test=100, seed=0):
    """Random uint8 images of the data set's shape: 28 x 28 ('mnist', with labels), 28 x 20."""
    shape = (28, 28) if name == "mnist" else (28, 20)
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (n_train + n_test, shape[0] * shape[1]), dtype=np.uint8)
    x[:, : x.shape[1] // 2] //= 4                  # some structure to learn: a darker half
    y = rng.integers(0, 10, n_train + n_test, dtype=np.uint8) if name == "mnist" else None
    return ImageDataset(x[:n_train], None if y is None else y[:n_train], x[n_train:],
                        None if y is None else y[n_train:], shape)


@pytest.fixture(scope="module")
def frey_data():
    return tiny_dataset("frey")


def params_of(run_dir):
    return load_checkpoint(Path(run_dir) / kw.CHECKPOINT).model.params.flat


def model_of(spec, settings, input_dim, n_train=1000, step_size=0.02):
    """The run's model as the protocol builds it (its RunConfig, settings.build_model)."""
    return build_model(kw.run_config(spec, settings, step_size, n_train), input_dim)


# ------------------------------------------------------------- settings --

def test_runs_and_patterns():
    runs = kw.all_runs()
    assert len(runs) == 2 * 5 + 2 * 4 + 1 and len({r.name for r in runs}) == len(runs)
    assert kw.RunSpec("mnist", "aevb", 2) in runs and runs[0].name == "mnist-aevb-z3"
    assert {r.latent_dim for r in kw.select_runs(["frey"])} == {2, 5, 10, 20}
    assert kw.select_runs(["mnist:aevb:3", "frey:*:20"]) == [
        kw.RunSpec("mnist", "aevb", 3), kw.RunSpec("frey", "aevb", 20),
        kw.RunSpec("frey", "wake-sleep", 20)]
    assert kw.select_runs(None) == runs
    for bad in ("cifar", "mnist:vae", "mnist:aevb:7", "mnist:aevb:3:x"):
        with pytest.raises(kw.ProtocolError, match=f"--only '{bad}' matches no run"):
            kw.select_runs([bad])


@pytest.mark.parametrize("field, value, flag", [
    ("init_std", 0.0, "--init-std"), ("init_std", float("nan"), "--init-std"),
    ("step_sizes", (0.01, -1), "--step-sizes"), ("step_sizes", (), "--step-sizes"),
    ("select_samples", 0, "--select-samples"), ("select_samples", 150, "multiple of --batch-size"),
    ("hidden", 0, "--hidden"), ("points_per_decade", 2.5, "--points-per-decade"),
    ("mnist_binarize", "gray", "--mnist-binarize"),
])
def test_bad_settings_name_the_flag(field, value, flag):
    with pytest.raises(kw.ProtocolError, match=flag):
        kw.Settings(**{field: value})


def test_checkpoint_samples_are_log_spaced_minibatches():
    s = kw.Settings(select_samples=20_000, points_per_decade=4)
    points = kw.checkpoint_samples(10 ** 6, s)
    assert points[0] == 20_000 and points[-1] == 10 ** 6
    assert all(p % 100 == 0 for p in points) and points == sorted(set(points))
    # 10^4.5 = 31623 -> 31700, 10^4.75 = 56234 -> 56300, then 10^5, ...
    assert points[1:4] == [31_700, 56_300, 100_000]
    assert len(points) == 1 + 7                 # 10^4.5 .. 10^6 in quarter decades
    assert kw.checkpoint_samples(150, s) == [200]   # a budget rounds up to whole minibatches


# ---------------------------------------------------- the paper's pieces --

@pytest.mark.parametrize("dataset, hidden, likelihood, width", [
    ("mnist", 500, "bernoulli", 784), ("frey", 200, "gaussian-sigmoid", 2 * 560)])
def test_model_is_the_papers(dataset, hidden, likelihood, width):
    model = model_of(kw.RunSpec(dataset, "aevb", 3), kw.Settings(),
                     784 if dataset == "mnist" else 560)
    assert model.hidden_dims == (hidden,) and model.activation == "tanh"
    assert model.likelihood.name == likelihood and model.decoder.sizes[-1] == width
    assert model.dtype == np.float32
    p = model.params.flat
    # every parameter, biases included, from N(0, 0.01^2)
    assert abs(p.std() - 0.01) < 1e-4 and abs(p.mean()) < 1e-4
    assert np.all(model.params["decoder.0.b"] != 0)
    again = model_of(kw.RunSpec(dataset, "wake-sleep", 3), kw.Settings(), model.input_dim)
    np.testing.assert_array_equal(again.params.flat, p)       # same seed, same start


def test_weight_decay_is_the_gaussian_prior_on_the_parameters(frey_data):
    """Adagrad's step uses g + theta / N_train, the gradient of the per-datapoint loss
    plus ||theta||^2 / (2 N_train) = -log N(theta; 0, I) / N_train + const."""
    spec, n = kw.RunSpec("frey", "aevb", 2), len(frey_data.x_train)
    config = kw.run_config(spec, TINY, 0.02, n)
    model = build_model(config, 560)
    opt = build_optimizer(config, model.params)
    assert isinstance(opt, Adagrad) and opt.lr == 0.02 and opt.weight_decay == 1 / n
    no_prior = kw.run_config(spec, kw.Settings(weight_prior=False), 0.02, n)
    assert build_optimizer(no_prior, model.params).weight_decay == 0
    theta = model.params.flat.astype(np.float64)
    g = np.random.default_rng(0).standard_normal(theta.size).astype(np.float32)
    grads = model.params.zeros_like()
    grads.flat[...] = g

    def map_loss(t):            # the prior's share per datapoint, differentiated numerically
        return np.sum(t * t) / (2 * n)

    h, i = 1e-3, np.arange(0, theta.size, 997)          # every 997th parameter

    def unit(j):
        e = np.zeros(theta.size)
        e[j] = 1
        return e

    numerical = np.array([(map_loss(theta + h * unit(j)) - map_loss(theta - h * unit(j))) / (2 * h)
                          for j in i])
    total = g.astype(np.float64) + theta / n
    np.testing.assert_allclose(total[i] - g[i], numerical, rtol=1e-6)
    opt.step(grads)
    expected = theta - 0.02 * total / (np.sqrt(total ** 2) + opt.eps)   # Adagrad's first step
    np.testing.assert_allclose(model.params.flat, expected, rtol=1e-5, atol=1e-7)


def test_lower_bound_is_the_mean_elbo_with_fixed_noise():
    data = tiny_dataset("mnist", 250, 50)
    model = model_of(kw.RunSpec("mnist", "aevb", 3), TINY, 784)
    bound = kw.lower_bound(model, data.x_train, "dynamic", 0, chunk=100)
    assert bound == kw.lower_bound(model, data.x_train, "dynamic", 0, chunk=100)   # same noise
    assert bound != kw.lower_bound(model, data.x_train, "dynamic", 1, chunk=100)
    rng = np.random.default_rng((kw.EVAL_SEED, 0))   # the same draws, computed another way
    per_example = np.concatenate([
        np.subtract(*elbo_terms(model, binarize(data.x_train[i:i + 100], "dynamic", rng=rng), rng))
        for i in range(0, 250, 100)])
    assert bound == pytest.approx(per_example.mean(), rel=1e-12)
    assert -784 * np.log(2) * 2 < bound < 0


def test_epoch_order_is_a_fixed_permutation():
    a = kw.epoch_order(0, 3, 50)
    assert sorted(a) == list(range(50)) and np.array_equal(a, kw.epoch_order(0, 3, 50))
    assert not np.array_equal(a, kw.epoch_order(0, 4, 50))


# --------------------------------------------------------------- one run --

@pytest.mark.parametrize("method", ["aevb", "wake-sleep"])
def test_a_run_selects_its_step_size_and_records_its_curve(tmp_path, frey_data, method):
    spec = kw.RunSpec("frey", method, 2)
    record = kw.train_run(spec, frey_data, TINY, tmp_path / "run", 1000, stream=open("/dev/null", "w"))
    selection = record["selection"]
    assert set(selection) == {"0.01", "0.05"}
    assert record["step_size"] == float(max(selection, key=selection.get))
    curve = record["curve"]
    assert [p["samples"] for p in curve] == kw.checkpoint_samples(1000, TINY) == [200, 400, 600, 1000]
    assert curve[0]["train"] == selection[f"{record['step_size']:g}"]    # the winner, continued
    assert all(np.isfinite([p["train"], p["test"]]).all() for p in curve)
    assert curve[-1]["train"] > curve[0]["train"]                           # it learns
    on_disk = json.loads((tmp_path / "run" / kw.RECORD).read_text())
    assert on_disk["curve"] == json.loads(json.dumps(curve)) and on_disk["samples"] == 1000
    # the selection is what the candidates reach when trained alone
    config = kw.run_config(spec, TINY, 0.01, len(frey_data.x_train))
    model, optimizer, rng = start_training(config, frey_data.x_train)
    assert kw.train_to(200, config, model, optimizer, rng, frey_data.x_train, 0) == 200
    assert kw.lower_bound(model, frey_data.x_train, "none", 0) == selection["0.01"]


def test_the_protocol_written_out_as_a_plain_loop_gives_the_same_curve(tmp_path):
    """train_run (RunConfig, the harness's build functions, train_epoch in pieces between
    evaluation points) is the protocol of the module docstring, bit for bit: every
    parameter ~ N(0, 0.01^2) from (seed, 0), Adagrad with weight decay 1/N_train, the
    training Generator (seed, 1), minibatch t = batch j of epoch e's order (seed, 2, e),
    (e, j) = divmod(t, N // B), the N mod B last examples of each order left out."""
    data = tiny_dataset("mnist", 250, 50)          # 2 minibatches an epoch, 50 examples left out
    spec = kw.RunSpec("mnist", "wake-sleep", 3)
    settings = kw.Settings(hidden=6, select_samples=200, step_sizes=(0.05,))
    record = kw.train_run(spec, data, settings, tmp_path, 1000, stream=open("/dev/null", "w"))
    points = [p["samples"] for p in record["curve"]]
    assert points == [200, 400, 600, 1000] and record["selection"] == {"0.05": record["curve"][0]["train"]}
    model = VAE(784, (6,), 3, "bernoulli", 1.0, "tanh", np.float32, 0)
    model.params.flat[...] = np.random.default_rng((0, 0)).normal(0.0, 0.01, model.params.flat.size)
    step = TrainingStep(model, Adagrad(model.params, lr=0.05, weight_decay=1 / 250), 100,
                        "dynamic", objective="wake-sleep")
    rng, curve = np.random.default_rng((0, 1)), []
    for t in range(1000 // 100):
        epoch, j = divmod(t, 250 // 100)
        order = np.random.default_rng((0, 2, epoch)).permutation(250)
        step(data.x_train, order[j * 100:(j + 1) * 100], rng)
        if (t + 1) * 100 in points:
            curve.append(((t + 1) * 100, kw.lower_bound(model, data.x_train, "dynamic", 0),
                          kw.lower_bound(model, data.x_test, "dynamic", 1)))
    assert curve == [(p["samples"], p["train"], p["test"]) for p in record["curve"]]


# the last curve point (2000 samples) and the selection of TINY runs, as the protocol's
# own Trainer made them before it ran on the harness (commit 798118e)
BEFORE_THE_HARNESS = {
    ("frey", "aevb", 2): (127.01314385414123, 125.42210665225983, -521.0535799164574),
    ("mnist", "wake-sleep", 3): (-431.5658363365233, -433.60232055559754, -528.6276231954992),
}


@pytest.mark.parametrize("run", sorted(BEFORE_THE_HARNESS))
def test_records_are_those_made_before_the_harness(tmp_path, run):
    """The same numbers as before (bit for bit on the machine that made them; rel 1e-4
    leaves room for another BLAS, while the smallest switch of the protocol, the weight
    prior, moves these bounds by 1e-3)."""
    spec = kw.RunSpec(*run)
    data = tiny_dataset("frey") if spec.dataset == "frey" else tiny_dataset("mnist", 250, 50)
    record = kw.train_run(spec, data, TINY, tmp_path, 2000, stream=open("/dev/null", "w"))
    train, test, selected = BEFORE_THE_HARNESS[run]
    assert record["step_size"] == 0.05 and record["curve"][-1]["samples"] == 2000
    assert record["curve"][-1]["train"] == pytest.approx(train, rel=1e-4)
    assert record["curve"][-1]["test"] == pytest.approx(test, rel=1e-4)
    assert record["selection"]["0.05"] == pytest.approx(selected, rel=1e-4)


def test_a_diverging_candidate_is_out_and_all_diverging_is_an_error(tmp_path, frey_data):
    spec = kw.RunSpec("frey", "aevb", 2)
    settings = kw.Settings(hidden=6, select_samples=200, step_sizes=(0.01, 1e30))
    record = kw.train_run(spec, frey_data, settings, tmp_path / "a", 200,
                          stream=open("/dev/null", "w"))
    assert record["selection"]["1e+30"] is None and record["step_size"] == 0.01
    with pytest.raises(kw.RunDiverged, match="every step size in .* diverged"):
        kw.train_run(spec, frey_data, kw.Settings(hidden=6, select_samples=200,
                                                  step_sizes=(1e30,)),
                     tmp_path / "b", 200, stream=open("/dev/null", "w"))
    assert not (tmp_path / "b" / kw.CHECKPOINT).exists()


def test_resuming_continues_bit_for_bit(tmp_path, frey_data, monkeypatch):
    spec, quiet = kw.RunSpec("frey", "wake-sleep", 2), open("/dev/null", "w")
    straight = kw.train_run(spec, frey_data, TINY, tmp_path / "straight", 2000, stream=quiet)
    # stopped at a smaller budget, then extended
    kw.train_run(spec, frey_data, TINY, tmp_path / "extended", 600, stream=quiet)
    extended = kw.train_run(spec, frey_data, TINY, tmp_path / "extended", 2000, stream=quiet)
    np.testing.assert_array_equal(params_of(tmp_path / "extended"), params_of(tmp_path / "straight"))
    assert extended["curve"][-1]["train"] == straight["curve"][-1]["train"]
    # interrupted mid-way (Ctrl-C after a save), then resumed
    monkeypatch.setattr(kw, "PIECE_MINIBATCHES", 3)
    calls = {"n": 0}
    original = kw.train_to

    def interrupt_on_fifth(target, config, model, optimizer, rng, x_train, samples):
        calls["n"] += 1
        if calls["n"] == 5 and samples > TINY.select_samples:
            raise KeyboardInterrupt
        return original(target, config, model, optimizer, rng, x_train, samples)

    monkeypatch.setattr(kw, "train_to", interrupt_on_fifth)
    with pytest.raises(KeyboardInterrupt):
        kw.train_run(spec, frey_data, TINY, tmp_path / "interrupted", 2000, stream=quiet,
                     save_seconds=0)
    saved = load_checkpoint(tmp_path / "interrupted" / kw.CHECKPOINT)
    assert TINY.select_samples < saved.epoch < 2000                        # a mid-run save
    resumed = kw.train_run(spec, frey_data, TINY, tmp_path / "interrupted", 2000, stream=quiet)
    np.testing.assert_array_equal(params_of(tmp_path / "interrupted"),
                                  params_of(tmp_path / "straight"))
    assert [p["train"] for p in resumed["curve"]] == [p["train"] for p in straight["curve"]]


def test_resume_refuses_other_settings_or_data(tmp_path, frey_data):
    spec, quiet = kw.RunSpec("frey", "aevb", 2), open("/dev/null", "w")
    kw.train_run(spec, frey_data, TINY, tmp_path, 200, stream=quiet)
    other = kw.Settings(hidden=6, select_samples=200, step_sizes=(0.01, 0.05), init_std=0.1)
    with pytest.raises(kw.ProtocolError, match=r"settings differ: init_std \(saved 0.01, now 0.1\)"):
        kw.train_run(spec, frey_data, other, tmp_path, 400, stream=quiet)
    with pytest.raises(kw.ProtocolError, match="trained on other data"):
        kw.train_run(spec, tiny_dataset("frey", seed=1), TINY, tmp_path, 400, stream=quiet)
    (tmp_path / kw.CHECKPOINT).write_bytes(b"truncated")
    with pytest.raises(kw.ProtocolError, match="unreadable .* --overwrite"):
        kw.train_run(spec, frey_data, TINY, tmp_path, 400, stream=quiet)


# ------------------------------------------------------ the whole thing --

def test_reproduce_writes_results_and_the_three_figures(tmp_path):
    data = {"mnist": tiny_dataset("mnist", 200, 100), "frey": tiny_dataset("frey", 200, 100)}
    settings = kw.Settings(hidden=4, select_samples=100, step_sizes=(0.02,))
    runs = kw.select_runs(["frey:*:2", "mnist:aevb:2", "mnist:aevb:5", "mnist:wake-sleep:5"])
    results, paths = kw.reproduce(tmp_path, runs, data, settings, {"mnist": 300, "frey": 400},
                                  stream=open("/dev/null", "w"))
    assert set(results["runs"]) == {r.name for r in runs}
    assert json.loads((tmp_path / kw.RESULTS).read_text())["runs"].keys() == results["runs"].keys()
    assert results["runs"]["frey-aevb-z2"]["samples"] == 400
    assert results["runs"]["mnist-wake-sleep-z5"]["samples"] == 300
    assert sorted(p.name for p in paths) == sorted(kw.FIGURES.values())
    assert all(p.stat().st_size > 1000 for p in paths)
    # again: everything is done, nothing trains, the same results
    again, _ = kw.reproduce(tmp_path, runs, data, settings, {"mnist": 300, "frey": 400},
                            stream=open("/dev/null", "w"))
    assert again == results
    # overwrite starts the chosen runs afresh (the same seed: the same numbers again)
    (tmp_path / "runs" / "frey-aevb-z2" / kw.RECORD).write_text(json.dumps(
        {**results["runs"]["frey-aevb-z2"], "curve": []}))     # a mark that must disappear

    def numbers(record):
        return [(p["samples"], p["train"], p["test"]) for p in record["curve"]]

    kw.reproduce(tmp_path, [kw.RunSpec("frey", "aevb", 2)], data, settings, {"frey": 400},
                 stream=open("/dev/null", "w"), overwrite=True)
    assert numbers(kw.collect_records(tmp_path)["frey-aevb-z2"]) == \
        numbers(results["runs"]["frey-aevb-z2"])


# ------------------------------------------------------------- the demo --

def load_demo():
    spec = importlib.util.spec_from_file_location("reproduce_kingma_welling",
                                                  ROOT / "reproductions" / "reproduce_kingma_welling.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_demo_command_line(tmp_path, capsys, monkeypatch):
    import scipy.io

    faces = np.random.default_rng(0).integers(8, 239, (560, 600), dtype=np.uint8)
    (tmp_path / "frey").mkdir()
    scipy.io.savemat(tmp_path / "frey" / "frey_rawface.mat", {"ff": faces})
    args = ("--frey-dir", "frey", "--only", "frey:aevb:2,frey:wake-sleep:5", "--samples",
            "frey=300", "--hidden", "4", "--select-samples", "100", "--step-sizes", "0.02")
    # once as a script, as a user runs it
    done = subprocess.run([sys.executable, str(ROOT / "reproductions" / "reproduce_kingma_welling.py"),
                           *args], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                          env={"PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg", "PATH": "/usr/bin"})
    assert done.returncode == 0, done.stderr
    assert "[run 1/2] frey aevb N_z=2" in done.stdout and "[run 2/2]" in done.stdout
    assert "md5" in done.stderr                     # the fake file is not the known one
    out = tmp_path / "runs" / "kingma_welling"
    records = json.loads((out / kw.RESULTS).read_text())["runs"]
    assert set(records) == {"frey-aevb-z2", "frey-wake-sleep-z5"}
    assert (out / kw.FIGURES["bounds"]).exists() and (out / kw.FIGURES["manifolds"]).exists()
    # then in this process
    monkeypatch.chdir(tmp_path)
    main = load_demo().main
    assert main(list(args)) == 0 and "frey aevb N_z=2: done (300 samples)" in capsys.readouterr().out
    assert main(["--figures-only"]) == 0
    assert main([*args, "--init-std", "0.1"]) == 2
    assert "settings differ: init_std" in capsys.readouterr().err
    for bad, message in ((("--only", "cifar"), "matches no run"),
                         (("--frey-dir", "nowhere", "--only", "frey"), "no frey data"),
                         (("--figures-only", "--out", "empty"), "holds no runs")):
        assert main(list(bad)) == 2
        assert message in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["--samples", "frey=-3"])
    assert exit_info.value.code == 2 and "expected a whole number" in capsys.readouterr().err
