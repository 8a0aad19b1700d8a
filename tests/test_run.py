"""A whole run (run.fit): the demo, resume, divergence, settings that train.

A smoke run of demos/train_mnist.py trains on 2000 real MNIST images; the
rest uses a tiny synthetic data set (8x8 images) so that it takes seconds.
Bad input, class by class, is tested in test_run_errors.py.
"""

import json
import math

import numpy as np
import pytest

from numpyvae import Autoencoder, objectives
from numpyvae.run.checkpoint import load_checkpoint, to_json
from numpyvae.run.rundir import CHECKPOINT, METRICS, PLOTS
from numpyvae.run.settings import RunError
from numpyvae.trainer import TrainingDiverged
from numpyvae.util.validate import NonFiniteError
from run_helpers import load_demo, quiet_fit, synthetic, tiny_config

PNGS = tuple(name for key, name in PLOTS.items() if key != "manifold")


# ------------------------------------------------------------ the demo --

def test_demo_smoke_run_on_real_mnist(mnist_dir, tmp_path, capsys):
    out = tmp_path / "run"
    code = load_demo().main(["--data-dir", str(mnist_dir), "--out", str(out), "--limit", "2000",
                             "--epochs", "1", "--eval-k", "10"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "\r" not in captured.out  # not a terminal: plain lines only
    assert "epoch 1/1" in captured.out and "active units" in captured.out

    metrics = json.loads((out / METRICS).read_text())
    assert set(metrics) >= {"config", "epochs", "final"}
    assert metrics["config"]["limit"] == 2000 and metrics["config"]["hidden"] == [400]
    (epoch,) = metrics["epochs"]
    for key in ("epoch", "train_loss", "test_loss", "test_recon", "test_kl", "seconds",
                "train_recon", "train_kl", "examples_per_sec"):
        assert key in epoch
    assert epoch["epoch"] == 1
    assert 100 < epoch["test_loss"] < 400 and 100 < epoch["train_loss"] < 600
    assert math.isclose(epoch["test_loss"], epoch["test_recon"] + epoch["test_kl"])
    assert epoch["test_kl"] > 0 and epoch["seconds"] > 0
    # 16 batches of 128 (the last one 80): the loss must fall a lot
    batches = epoch["train_batch_losses"]
    assert len(batches) == 16
    assert np.mean(batches[-3:]) < 0.7 * np.mean(batches[:3])

    final = metrics["final"]
    for key in ("test_loss", "test_nll", "eval_k", "active_units", "eval_seconds"):
        assert key in final
    assert final["eval_k"] == 10
    assert final["test_loss"] == epoch["test_loss"]  # same parameters, same evaluation noise
    # the importance-weighted bound is tighter than the ELBO (in expectation)
    assert 0 < final["test_nll"] <= final["test_loss"] + 0.5
    assert 1 <= final["active_units"] <= 20

    for name in PNGS:
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not (out / "manifold.png").exists()  # latent_dim 20
    saved = load_checkpoint(out / CHECKPOINT)
    assert saved.epoch == 1 and saved.metrics["epochs"][0]["test_loss"] == epoch["test_loss"]
    assert Autoencoder.load(out / CHECKPOINT).params.same_layout(saved.model.params)
    assert int(saved.optimizer_state["t"]) == 16


def test_demo_without_data_exits_2_with_a_clear_message(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    code = load_demo().main(["--data-dir", str(empty), "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 2
    assert "error: --data-dir" in err and "train-images-idx3-ubyte.gz" in err
    assert "Traceback" not in err


def test_demo_rejects_bad_flags(tmp_path, capsys):
    demo = load_demo()
    with pytest.raises(SystemExit) as e:
        demo.main(["--hidden", "400,x"])
    assert e.value.code == 2
    assert demo.main(["--batch-size", "0", "--out", str(tmp_path)]) == 2
    assert "--batch-size must be an integer >= 1" in capsys.readouterr().err


def test_demo_parses_model_flags():
    args = load_demo().parser().parse_args(["--hidden", "200,200", "--obs-var", "learned",
                                            "--likelihood", "gaussian"])
    assert args.hidden == (200, 200) and args.obs_var == "learned"
    assert load_demo().parser().parse_args([]).hidden == (400,)


def test_demo_divergence_exits_nonzero_and_keeps_the_last_good_checkpoint(
        tmp_path, monkeypatch, capsys):
    demo = load_demo()
    monkeypatch.setattr(demo, "load_dataset_noting_warnings", lambda name, data_dir: (synthetic(), []))
    ckpt = tmp_path / "run" / CHECKPOINT
    real = objectives.objective_loss_and_grads
    seen = {"calls": 0}

    def nan_at_fifth_step(*args, **kwargs):
        # 300 examples in batches of 128: 3 steps per epoch, so the 5th is epoch 2, step 2
        seen["calls"] += 1
        if seen["calls"] == 4:
            seen["checkpoint"] = ckpt.read_bytes()
        if seen["calls"] == 5:
            raise NonFiniteError("the reconstruction term -log p(x|z) overflowed float32")
        return real(*args, **kwargs)

    monkeypatch.setattr(objectives, "objective_loss_and_grads", nan_at_fifth_step)
    code = demo.main(["--out", str(tmp_path / "run"), "--hidden", "16", "--latent-dim", "3",
                      "--epochs", "3", "--eval-k", "5"])
    err = capsys.readouterr().err
    assert code == 1
    assert "diverged at epoch 2, step 2/3" in err and "--lr" in err
    assert f"{ckpt} holds epoch 1" in err
    assert ckpt.read_bytes() == seen["checkpoint"]  # untouched
    assert load_checkpoint(ckpt).epoch == 1
    assert len(json.loads((tmp_path / "run" / METRICS).read_text())["epochs"]) == 1
    assert not (tmp_path / "run" / "samples.png").exists()


def test_demo_resume_continues_a_run(tmp_path, monkeypatch, capsys):
    demo = load_demo()
    monkeypatch.setattr(demo, "load_dataset_noting_warnings", lambda name, data_dir: (synthetic(), []))
    flags = ["--out", str(tmp_path / "run"), "--hidden", "16", "--latent-dim", "2",
             "--eval-k", "5"]
    assert demo.main(flags + ["--epochs", "1"]) == 0
    assert demo.main(flags + ["--epochs", "2"]) == 2  # a run is there: --resume or --overwrite
    assert "--resume" in capsys.readouterr().err
    assert demo.main(flags + ["--epochs", "2", "--resume"]) == 0
    assert "resuming after epoch 1" in capsys.readouterr().out
    metrics = json.loads((tmp_path / "run" / METRICS).read_text())
    assert [r["epoch"] for r in metrics["epochs"]] == [1, 2]
    assert metrics["resumed_at_epochs"] == [1]
    assert (tmp_path / "run" / "manifold.png").exists()  # latent_dim 2


# ------------------------------------------------------------ resuming --

def test_resumed_run_is_bit_identical_to_an_uninterrupted_one(tmp_path):
    # dynamic binarization and a KL warm-up spanning the interruption: the
    # data noise, eps, shuffling and beta_t must all continue exactly
    data = synthetic()
    whole = quiet_fit(tiny_config(tmp_path / "a"), data)
    quiet_fit(tiny_config(tmp_path / "b", epochs=1), data)
    resumed = quiet_fit(tiny_config(tmp_path / "b"), data, resume=True)

    a = load_checkpoint(tmp_path / "a" / "run" / CHECKPOINT)
    b = load_checkpoint(tmp_path / "b" / "run" / CHECKPOINT)
    assert a.epoch == b.epoch == 3
    assert np.array_equal(a.model.params.flat, b.model.params.flat)
    assert a.optimizer_state.keys() == b.optimizer_state.keys()
    for key in a.optimizer_state:
        assert np.array_equal(a.optimizer_state[key], b.optimizer_state[key])
    assert a.rng_state == b.rng_state
    for ra, rb in zip(whole["epochs"], resumed["epochs"]):
        assert ra["train_batch_losses"] == rb["train_batch_losses"]
        assert ra["test_loss"] == rb["test_loss"]
    assert whole["final"]["test_nll"] == resumed["final"]["test_nll"]


def test_same_seed_same_run_other_seed_other_run(tmp_path):
    data = synthetic()
    runs = [quiet_fit(tiny_config(tmp_path / name, epochs=1, seed=seed), data)
            for name, seed in (("a", 0), ("b", 0), ("c", 1))]
    losses = [r["epochs"][0]["train_batch_losses"] for r in runs]
    assert losses[0] == losses[1] != losses[2]


def test_resume_refuses_a_different_config_naming_the_flags(tmp_path):
    data = synthetic()
    quiet_fit(tiny_config(tmp_path, epochs=1), data)
    with pytest.raises(RunError) as e:
        quiet_fit(tiny_config(tmp_path, lr=0.01, hidden=(8,)), data, resume=True)
    assert "--lr (saved 0.001, now 0.01)" in str(e.value) and "--hidden" in str(e.value)
    assert "--epochs" not in str(e.value).split("Only")[0]
    with pytest.raises(RunError, match="data differ"):
        quiet_fit(tiny_config(tmp_path), synthetic(seed=1), resume=True)
    quiet_fit(tiny_config(tmp_path, epochs=2, eval_k=3), data, resume=True)  # allowed
    with pytest.raises(RunError, match="already trained 2 epochs"):
        quiet_fit(tiny_config(tmp_path, epochs=1), data, resume=True)


def test_a_finished_run_resumed_is_evaluated_again(tmp_path):
    data = synthetic()
    first = quiet_fit(tiny_config(tmp_path, epochs=1, eval_k=2), data)
    again = quiet_fit(tiny_config(tmp_path, epochs=1, eval_k=4), data, resume=True)
    assert again["epochs"] == first["epochs"]
    assert again["final"]["eval_k"] == 4


def test_resume_without_checkpoint_and_overwrite(tmp_path):
    data = synthetic()
    with pytest.raises(RunError, match="nothing to resume"):
        quiet_fit(tiny_config(tmp_path), data, resume=True)
    quiet_fit(tiny_config(tmp_path, epochs=1), data)
    with pytest.raises(RunError, match="already holds a run"):
        quiet_fit(tiny_config(tmp_path, epochs=1), data)
    metrics = quiet_fit(tiny_config(tmp_path, epochs=1, seed=5), data, overwrite=True)
    assert metrics["config"]["seed"] == 5
    (tmp_path / "run" / CHECKPOINT).write_bytes(b"not a zip file")
    with pytest.raises(RunError, match="cannot resume .*not a readable training checkpoint"):
        quiet_fit(tiny_config(tmp_path), data, resume=True)


# ---------------------------------------------------------- the loop --

def test_warmup_betas_follow_the_global_step_across_epochs(tmp_path, monkeypatch):
    # 300 examples, batches of 64: 5 steps per epoch; warm-up over 1.5 epochs = 7.5 steps
    betas = []
    real = objectives.objective_loss_and_grads

    def spy(model, x, eps, rng, objective, beta, **kwargs):
        betas.append(beta)
        return real(model, x, eps, rng, objective, beta, **kwargs)

    monkeypatch.setattr(objectives, "objective_loss_and_grads", spy)
    metrics = quiet_fit(tiny_config(tmp_path, beta=2.0, binarize="none"), synthetic())
    expected = [2.0 * min(1.0, t / 7.5) for t in range(15)]
    assert betas == pytest.approx(expected, abs=1e-12)
    assert [r["beta"] for r in metrics["epochs"]] == pytest.approx([expected[4], expected[9], 2.0])


def test_an_absurd_learning_rate_diverges_cleanly(tmp_path):
    with pytest.raises(TrainingDiverged, match="Lower the learning rate"):
        quiet_fit(tiny_config(tmp_path, optimizer="sgd", lr=1e6, binarize="none"), synthetic())
    assert not (tmp_path / "run" / CHECKPOINT).exists()


@pytest.mark.parametrize("changes", [
    dict(likelihood="gaussian", obs_var="learned"),
    dict(likelihood="gaussian", obs_var=0.5, binarize="threshold"),
    dict(optimizer="adagrad", lr=0.01, activation="tanh", hidden=(8, 8)),
    dict(optimizer="sgd", lr=0.01, dtype="float64", beta=0.5, kl_warmup=0),
], ids=["gaussian-learned", "gaussian-threshold", "adagrad-tanh-deep", "sgd-float64"])
def test_other_settings_train(tmp_path, changes):
    metrics = quiet_fit(tiny_config(tmp_path, epochs=2, **changes), synthetic())
    assert all(math.isfinite(r["test_loss"]) for r in metrics["epochs"])
    assert math.isfinite(metrics["final"]["test_nll"])
    assert load_checkpoint(tmp_path / "run" / CHECKPOINT).model.config()["dtype"] == \
        metrics["config"]["dtype"]


def test_metrics_json_keeps_number_lists_on_one_line():
    obj = {"a": [1.5, -2e-05, 3], "b": {"c": [], "d": ["x"], "e": [[1, 2], [3]]}}
    text = to_json(obj)
    assert json.loads(text) == obj and "[1.5, -2e-05, 3]" in text


def test_demo_trains_on_frey_face_by_name(frey_dir, tmp_path, capsys):
    """--dataset frey: 28x20 faces without labels, through training, evaluation,
    checkpoint and every plot of a run."""
    out = tmp_path / "frey"
    code = load_demo().main(["--dataset", "frey", "--data-dir", str(frey_dir), "--out", str(out),
                             "--likelihood", "gaussian-sigmoid", "--hidden", "20",
                             "--latent-dim", "2", "--epochs", "2", "--eval-k", "5"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "1,600 train / 365 test" in captured.out
    metrics = json.loads((out / METRICS).read_text())
    assert metrics["config"]["dataset"] == "frey"
    assert metrics["data"]["image_shape"] == [28, 20]
    assert math.isfinite(metrics["final"]["test_nll"])
    for name in PLOTS.values():
        assert (out / name).exists(), name      # manifold.png too: latent dim 2


def test_demo_names_the_missing_frey_file(tmp_path, capsys):
    code = load_demo().main(["--dataset", "frey", "--data-dir", str(tmp_path),
                             "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: --data-dir: ") and "frey_rawface.mat" in err
    assert not (tmp_path / "run").exists()


# ------------------------------------------------ the evaluation's cost, told --

def test_the_final_evaluations_cost_is_told_before_training():
    """The default run (784-400-20, 60,000 / 10,000 images, 10 epochs, k = 1):
    per training example 3 * 329,600 - 784 * 400 + 3 * 321,600 = 1,640,000
    multiply-adds (encoder 784*400 + 400*40, decoder 20*400 + 400*784), per
    epoch 60,000 of those and 10,000 * 651,200 for the test -ELBO; the
    evaluation 10,000 * 1000 decoder passes of 321,600: 3.216e12 / 1.04912e12 = 3.07."""
    from numpyvae.run.report import describe, evaluation_notice
    from numpyvae.run.settings import RunConfig, build_model
    info = {"n_train": 60000, "n_test": 10000}
    config = RunConfig()
    model = build_model(config, 784)
    notice = evaluation_notice(config, model, info, done=0)
    assert notice.startswith("final log p(x): --eval-k 1000 decoder passes for each of 10,000 "
                             "test images (10,000,000 in all), about 3.1x the work of the 10 "
                             "epochs of training")
    assert describe(config, model, info, "runs/x", 0).endswith(notice)
    short = RunConfig(limit=5000, epochs=2)       # 2 * (5,000 * 1,640,000 + 10,000 * 651,200)
    assert "about 109x the work of the 2 epochs" in evaluation_notice(
        short, model, {"n_train": 5000, "n_test": 10000}, done=0)
    assert "no training left" in evaluation_notice(config, model, info, done=10)
    assert evaluation_notice(RunConfig(eval_k=0), model, info, done=0) == ""


@pytest.mark.parametrize("optimizer", ["adam", "adagrad", "sgd"])
def test_a_textbook_run_gives_the_fast_runs_numbers_to_rounding(tmp_path, optimizer):
    """--textbook (RunConfig.textbook): the textbook layers, likelihood and optimizer
    throughout; a short run ends where the fast one does, to float32 rounding."""
    lr = {"adam": 1e-3, "adagrad": 0.02, "sgd": 0.01}[optimizer]
    fast = quiet_fit(tiny_config(tmp_path / "fast", optimizer=optimizer, lr=lr), synthetic())
    textbook = quiet_fit(tiny_config(tmp_path / "textbook", optimizer=optimizer, lr=lr,
                                     textbook=True), synthetic())
    assert textbook["config"]["textbook"] and textbook["model"]["textbook"]
    for key in ("test_loss", "test_nll", "test_bound_loss"):
        assert textbook["final"][key] == pytest.approx(fast["final"][key], rel=1e-4), key


def test_resume_refuses_a_change_of_textbook(tmp_path):
    quiet_fit(tiny_config(tmp_path, epochs=1), synthetic())
    with pytest.raises(RunError, match="--textbook"):
        quiet_fit(tiny_config(tmp_path, epochs=2, textbook=True), synthetic(), resume=True)
