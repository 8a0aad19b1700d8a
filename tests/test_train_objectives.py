"""Training with every objective: the run records objective and k, the final
evaluation reports the objective's own test bound, the IWAE paper's
learning-rate schedule, resume under it, and the settings' checks."""

import json
import re

import numpy as np
import pytest

from numpyvae import VAE
from numpyvae.evaluate import evaluate_bound, evaluate_elbo
from numpyvae.objectives import OBJECTIVES, bound
from numpyvae.run.rundir import CHECKPOINT, METRICS
from numpyvae.run.fit import eval_inputs
from numpyvae.run.settings import RunConfig, RunError
from numpyvae.trainer import learning_rate
from run_helpers import quiet_fit, synthetic, tiny_config


def test_iwae_schedule_has_3280_epochs_in_eight_stages():
    stages = [round(-7 * np.log10(learning_rate(e, 1e-3, "iwae") / 1e-3)) for e in range(1, 3282)]
    assert [stages.count(i) for i in range(8)] == [1, 3, 9, 27, 81, 243, 729, 2187 + 1]
    assert stages == sorted(stages)     # stage i covers epochs 1 + sum_{j<i} 3^j .. sum_{j<=i} 3^j
    assert learning_rate(5, 1e-3, "iwae") == pytest.approx(1e-3 * 10 ** (-2 / 7), rel=1e-15)
    assert learning_rate(4, 1e-3, "iwae") == pytest.approx(1e-3 * 10 ** (-1 / 7), rel=1e-15)
    assert learning_rate(3281, 2.0, "constant") == 2.0


@pytest.mark.parametrize("objective, k", [("elbo", 2), ("elbo-mc", 1), ("iwae", 3),
                                          ("wake-sleep", 1)])
def test_every_objective_trains_and_reports_its_bound(tmp_path, objective, k):
    data = synthetic()
    config = tiny_config(tmp_path, objective=objective, k=k, epochs=2,
                         kl_warmup=0 if objective in ("iwae", "wake-sleep") else 1.5)
    metrics = quiet_fit(config, data)
    saved = json.loads((tmp_path / "run" / METRICS).read_text())
    assert saved["config"]["objective"] == objective and saved["config"]["k"] == k
    final = saved["final"]
    assert (final["objective"], final["k"]) == (objective, k)
    assert np.isfinite(final["test_bound_loss"]) and np.isfinite(final["test_nll"])
    assert metrics["epochs"][-1]["train_loss"] > 0
    if objective == "iwae":   # L_3 is a tighter bound than the ELBO, on average
        assert final["test_bound_loss"] < final["test_loss"]


def test_evaluate_bound_is_the_mean_of_objectives_bound():
    model = VAE(64, (16,), 3, dtype=np.float64, seed=0)
    x = eval_inputs(synthetic().x_test, "threshold", np.float64)
    value = evaluate_bound(model, x, "iwae", 4, np.random.default_rng(1), batch_size=30)
    rng = np.random.default_rng(1)
    chunks = [bound(model, x[i:i + 30], "iwae", rng.standard_normal((4, len(x[i:i + 30]), 3)))
              for i in range(0, len(x), 30)]
    assert value == pytest.approx(np.mean(np.concatenate(chunks)), rel=1e-12)
    # with k = 1 the 'elbo' bound is the ELBO that evaluate_elbo reports, same noise
    elbo = evaluate_bound(model, x, "elbo", 1, np.random.default_rng(2), batch_size=1000)
    assert -elbo == pytest.approx(evaluate_elbo(model, x, np.random.default_rng(2))["loss"],
                                  rel=1e-12)


def test_resume_under_the_iwae_schedule_is_bit_identical(tmp_path):
    data = synthetic()
    changes = dict(objective="iwae", k=2, kl_warmup=0, lr_schedule="iwae", adam_eps=1e-4)
    whole = quiet_fit(tiny_config(tmp_path / "a", epochs=5, **changes), data)
    quiet_fit(tiny_config(tmp_path / "b", epochs=2, **changes), data)
    resumed = quiet_fit(tiny_config(tmp_path / "b", epochs=5, **changes), data, resume=True)
    assert [r["train_loss"] for r in resumed["epochs"]] == [r["train_loss"] for r in whole["epochs"]]
    assert [r["lr"] for r in whole["epochs"]] == [learning_rate(e, 1e-3, "iwae") for e in range(1, 6)]
    a = np.load(tmp_path / "a" / "run" / CHECKPOINT)
    b = np.load(tmp_path / "b" / "run" / CHECKPOINT)
    state = [key for key in a.files if key.startswith(("param/", "optim/"))]
    assert len(state) > 8 and set(state) <= set(b.files)
    for key in state:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


@pytest.mark.parametrize("changes, message", [
    ({"objective": "vae"}, re.escape(f"--objective must be one of {OBJECTIVES}")),
    ({"k": 0}, "--k must be an integer >= 1, got 0"),
    ({"objective": "iwae", "beta": 2.0}, "--objective iwae has no KL weight"),
    ({"objective": "wake-sleep", "kl_warmup": 2.0}, "--objective wake-sleep has no KL weight"),
    ({"objective": "wake-sleep", "k": 5}, "--k must be 1"),
    ({"lr_schedule": "cosine"}, "--lr-schedule must be one of"),
    ({"optimizer": "adagrad", "adam_eps": 1e-4}, "--adam-eps applies to --optimizer adam only"),
    ({"adam_eps": 0.0}, "--adam-eps must be a finite number > 0"),
])
def test_objective_settings_are_checked(changes, message):
    with pytest.raises(RunError, match=message):
        RunConfig(**changes)
