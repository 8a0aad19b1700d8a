"""The settings of a run (settings.RunConfig): every check, named by its flag."""

import json
import math

import numpy as np
import pytest

from numpyvae.run.fit import start_training
from numpyvae.run.settings import (RunConfig, RunError, SettingTypeError, build_model,
                                   data_output_bias, flag, resume_differences)

NAN, INF = math.nan, math.inf


@pytest.mark.parametrize("changes, message", [
    # not finite
    (dict(lr=INF), "--lr must be a finite number > 0, got inf"),
    (dict(lr=NAN), "--lr must be a finite number > 0, got nan"),
    (dict(beta=INF), "--beta must be a finite number >= 0, got inf"),
    (dict(beta=NAN), "--beta must be a finite number >= 0, got nan"),
    (dict(kl_warmup=INF), "--kl-warmup must be a finite number >= 0, got inf"),
    (dict(weight_decay=NAN), "--weight-decay must be a finite number >= 0, got nan"),
    (dict(init_std=INF), "--init-std must be a finite number > 0, got inf"),
    (dict(likelihood="gaussian", obs_var=INF), "--obs-var must be a finite number > 0, got inf"),
    (dict(likelihood="gaussian", obs_var=NAN), "--obs-var must be a finite number > 0"),
    # out of range
    (dict(lr=0.0), "--lr must be a finite number > 0, got 0.0"),
    (dict(lr=-1e-3), "--lr must be"),
    (dict(beta=-0.5), "--beta must be a finite number >= 0"),
    (dict(kl_warmup=-1), "--kl-warmup must be a finite number >= 0"),
    (dict(weight_decay=-1e-4), "--weight-decay must be a finite number >= 0"),
    (dict(init_std=0.0), "--init-std must be a finite number > 0, got 0.0"),
    (dict(likelihood="gaussian", obs_var=0.0), "--obs-var must be a finite number > 0"),
    (dict(epochs=0), "--epochs must be an integer >= 1, got 0"),
    (dict(batch_size=-5), "--batch-size must be an integer >= 1, got -5"),
    (dict(latent_dim=0), "--latent-dim must be an integer >= 1"),
    (dict(limit=0), "--limit must be an integer >= 1"),
    (dict(eval_k=-1), "--eval-k must be an integer >= 0"),
    (dict(seed=-1), "--seed must be an integer >= 0, got -1"),
    (dict(hidden=()), "--hidden needs at least one layer size"),
    (dict(hidden=(400, 0)), "--hidden sizes must be an integer >= 1, got 0"),
    # unknown choices
    (dict(binarize="sometimes"), "--binarize must be one of ('none', 'dynamic', 'threshold')"),
    (dict(optimizer="rmsprop"), "--optimizer must be one of"),
    (dict(activation="gelu"), "--activation must be one of"),
    (dict(likelihood="poisson"), "--likelihood must be one of ('bernoulli', 'gaussian', 'gaussian-sigmoid')"),
    (dict(dtype="float16"), "--dtype must be one of ('float32', 'float64')"),
    (dict(likelihood="gaussian", obs_var="learn"), "--obs-var must be one of ('learned',)"),
    (dict(output_bias="mean"), "--output-bias must be one of ('zero', 'data')"),
    # settings that do not go together
    (dict(obs_var=-1.0), "--obs-var applies to the Gaussian likelihoods only, not bernoulli"),
    (dict(obs_var="learned"), "--obs-var applies to the Gaussian likelihoods only"),
    (dict(out=""), "--out must be a non-empty path"),
    (dict(likelihood="gaussian", output_bias="data"),
     "--output-bias data sets the logits of --likelihood bernoulli, not gaussian"),
])
def test_a_bad_setting_is_a_run_error_naming_its_flag(changes, message):
    with pytest.raises(RunError) as e:
        RunConfig(**changes)
    assert message in str(e.value)


@pytest.mark.parametrize("changes, message", [
    (dict(epochs=2.5), "--epochs must be an integer, got 2.5"),
    (dict(epochs="10"), "--epochs must be an integer, got '10'"),
    (dict(seed=None), "--seed must be an integer, got None"),
    (dict(lr="0.1"), "--lr must be a number, got '0.1'"),
    (dict(hidden=400), "--hidden must be a sequence of layer sizes"),
    (dict(hidden="400"), "--hidden must be a sequence of layer sizes"),
    (dict(hidden=(400.0,)), "--hidden sizes must be an integer, got 400.0"),
    (dict(out=None), "--out must be a path, got None"),
])
def test_a_setting_of_the_wrong_type_is_also_a_type_error(changes, message):
    with pytest.raises(SettingTypeError) as e:
        RunConfig(**changes)
    assert isinstance(e.value, TypeError) and isinstance(e.value, RunError)
    assert message in str(e.value)


def test_settings_are_normalised_to_their_json_types(tmp_path):
    config = RunConfig(hidden=[np.int64(200), 200], seed=np.int64(3), lr=np.float32(0.5),
                       likelihood="gaussian", out=tmp_path / "run", eval_k=np.int32(7))
    assert config.hidden == (200, 200) and type(config.hidden[0]) is int
    assert type(config.seed) is int and type(config.lr) is float and type(config.eval_k) is int
    assert config.obs_var == 1.0 and config.out == str(tmp_path / "run")
    assert json.loads(json.dumps(config.to_dict()))["hidden"] == [200, 200]
    assert RunConfig().obs_var is None          # bernoulli has no variance
    assert flag("kl_warmup") == "--kl-warmup"


def test_resume_differences_name_the_flags_and_unknown_saved_settings():
    saved = {**RunConfig().to_dict(), "lr": 0.01, "epochs": 3, "colour": "red"}
    differ = resume_differences(saved, RunConfig())
    assert differ == ["--lr (saved 0.01, now 0.001)",
                      "'colour' (saved 'red', unknown to this version of numpyvae)"]
    assert resume_differences(RunConfig(epochs=50, out="x").to_dict(), RunConfig()) == []


def test_a_model_too_big_for_memory_is_a_run_error_naming_the_flags():
    with pytest.raises(RunError, match="--hidden 1000000000 --latent-dim 20 does not fit"):
        build_model(RunConfig(hidden=(10 ** 9,)), 784)


def test_settings_saved_by_earlier_versions_resume():
    """Runs saved before --objective, --k, --lr-schedule and --adam-eps existed, with
    --obs-var 1.0 saved for a Bernoulli decoder, continue under today's defaults."""
    older = {k: v for k, v in RunConfig().to_dict().items()
             if k not in ("objective", "k", "lr_schedule", "adam_eps", "weight_decay", "init_std",
                          "output_bias")}
    assert resume_differences({**older, "obs_var": 1.0}, RunConfig()) == []
    sgd = {**RunConfig(optimizer="sgd").to_dict(), "adam_eps": 1e-8}
    assert resume_differences(sgd, RunConfig(optimizer="sgd")) == []
    # a setting they did not have still differs when the run now asks for another value
    assert resume_differences(older, RunConfig(objective="iwae", k=5, kl_warmup=0)) == [
        "--objective (saved 'elbo', now 'iwae')", "--k (saved 1, now 5)"]


def test_init_std_draws_every_parameter_from_one_normal():
    """--init-std S: every parameter, biases included, ~ N(0, S^2) from default_rng((seed, 0));
    without it each layer's own initialisation (biases 0)."""
    default = build_model(RunConfig(hidden=(50,), seed=3), 784)
    assert np.all(default.params["decoder.0.b"] == 0)
    drawn = build_model(RunConfig(hidden=(50,), seed=3, init_std=0.01), 784)
    expected = np.random.default_rng((3, 0)).normal(0.0, 0.01, drawn.params.flat.size)
    np.testing.assert_array_equal(drawn.params.flat, expected.astype(np.float32))
    assert drawn.config() == default.config()


def test_output_bias_data_starts_the_decoder_at_the_data_mean_and_changes_nothing_else():
    """--output-bias data: the decoder's last bias is logit(clip(mean pixel, 0.001, 0.999)),
    so that sigmoid(b) is the clipped mean; every other parameter, and the optimizer and
    training noise, are those of --output-bias zero."""
    x = np.array([[0, 255, 51, 255], [0, 255, 153, 0]], dtype=np.uint8)   # means 0, 1, 0.4, 0.5
    bias = data_output_bias(x)
    np.testing.assert_allclose(1 / (1 + np.exp(-bias)), [0.001, 0.999, 0.4, 0.5], rtol=1e-12)
    for layers in (1, 2):
        config = dict(hidden=(6,), latent_dim=3, seed=4, stochastic_layers=layers)
        zero, _, zero_rng = start_training(RunConfig(**config), x)
        data, _, data_rng = start_training(RunConfig(**config, output_bias="data"), x)
        last = "decoder.1.b"
        assert np.all(zero.params[last] == 0)
        np.testing.assert_array_equal(data.params[last], bias.astype(np.float32))
        for name in zero.params:
            if name != last:
                np.testing.assert_array_equal(data.params[name], zero.params[name], err_msg=name)
        assert data_rng.random() == zero_rng.random()
    # a resumed run keeps the biases it started with
    assert resume_differences(RunConfig().to_dict(), RunConfig(output_bias="data")) == [
        "--output-bias (saved 'zero', now 'data')"]


def test_dataset_is_a_setting_by_name():
    assert RunConfig(dataset="frey").dataset == "frey"
    with pytest.raises(RunError, match=r"--dataset must be one of \('mnist', 'frey'\)"):
        RunConfig(dataset="cifar")
