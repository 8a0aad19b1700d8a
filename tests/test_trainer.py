"""One training step and one epoch (trainer.py)."""

import math

import numpy as np
import pytest

from numpyvae import VAE, Adam, FullCovarianceVAE, TwoLayerVAE, objectives
from numpyvae.objectives import loss_and_grads
from numpyvae.trainer import TrainingDiverged, TrainingStep, kl_weight, train_epoch
from run_helpers import synthetic


def test_train_epoch_visits_every_example_once_keeping_the_partial_batch(monkeypatch):
    n, batch = 300, 128
    x = np.zeros((n, 64), dtype=np.uint8)
    x[:, 0], x[:, 1] = np.arange(n) % 256, np.arange(n) // 256  # example i encodes i
    model = VAE(64, (8,), 2)
    seen, sizes = [], []
    real = objectives.objective_loss_and_grads

    def spy(model, xb, *args, **kwargs):
        codes = np.rint(xb[:, 0] * 255) + 256 * np.rint(xb[:, 1] * 255)
        seen.extend(codes.astype(int).tolist())
        sizes.append(xb.shape[0])
        return real(model, xb, *args, **kwargs)

    monkeypatch.setattr(objectives, "objective_loss_and_grads", spy)
    stats = train_epoch(model, Adam(model.params), x, np.random.default_rng(0), batch_size=batch)
    assert sizes == [128, 128, 44] and stats["steps"] == 3
    assert sorted(seen) == list(range(n)) and seen != list(range(n))  # all, once, shuffled
    weights = np.array(sizes) / n
    assert math.isclose(stats["loss"], float(np.dot(weights, stats["batch_losses"])))
    assert math.isclose(stats["loss"], stats["recon"] + stats["kl"])


def test_train_epoch_hooks_a_given_order_and_part_of_an_epoch(monkeypatch):
    """``order`` (a shorter one leaves examples out) and ``batches`` (part of an epoch):
    an epoch trained in two calls is the epoch trained in one, bit for bit."""
    n, batch = 300, 64
    x = np.zeros((n, 64), dtype=np.uint8)
    x[:, 0], x[:, 1] = np.arange(n) % 256, np.arange(n) // 256  # example i encodes i
    order = np.random.default_rng(5).permutation(n)[:4 * batch]  # 44 examples left out

    real = objectives.objective_loss_and_grads

    def train(pieces):
        model, seen = VAE(64, (8,), 2), []

        def spy(model, xb, *args, **kwargs):
            seen.extend((np.rint(xb[:, 0] * 255) + 256 * np.rint(xb[:, 1] * 255)).astype(int))
            return real(model, xb, *args, **kwargs)

        monkeypatch.setattr(objectives, "objective_loss_and_grads", spy)
        optimizer, rng = Adam(model.params), np.random.default_rng(0)
        stats = [train_epoch(model, optimizer, x, rng, batch_size=batch, order=order,
                             batches=b) for b in pieces]
        return model.params.flat, seen, stats

    whole, seen, [stats] = train([None])
    assert seen == order.tolist() and stats["steps"] == 4
    parts, seen_parts, [first, rest] = train([range(0, 1), range(1, 4)])
    np.testing.assert_array_equal(parts, whole)
    assert seen_parts == seen and (first["steps"], rest["steps"]) == (1, 3)
    assert first["batch_losses"] + rest["batch_losses"] == stats["batch_losses"]
    assert math.isclose(rest["loss"], float(np.mean(rest["batch_losses"])))  # its own mean
    with pytest.raises(ValueError, match="batches must name at least one"):
        train([range(2, 2)])


def test_kl_weight_schedule():
    assert kl_weight(0, 1.0, 0) == 1.0 and kl_weight(7, 0.5, 0) == 0.5  # no warm-up
    assert [kl_weight(t, 2.0, 4) for t in range(6)] == [0.0, 0.5, 1.0, 1.5, 2.0, 2.0]


def test_nonfinite_gradient_stops_training(monkeypatch):
    data = synthetic()
    model = VAE(64, (8,), 2)
    real = objectives.objective_loss_and_grads

    def inf_grads(*args, **kwargs):
        terms, grads = real(*args, **kwargs)
        grads["decoder.0.W"][0, 0] = np.inf
        return terms, grads

    monkeypatch.setattr(objectives, "objective_loss_and_grads", inf_grads)
    before = model.params.flat.copy()
    with pytest.raises(TrainingDiverged,
                       match=r"epoch 4, step 1/5: the gradients overflowed float32"):
        train_epoch(model, Adam(model.params), data.x_train, np.random.default_rng(0),
                    batch_size=64, epoch=4)
    assert np.array_equal(model.params.flat, before)  # the bad step was not applied


def arrays_in(tree):
    """Every ndarray inside nested tuples/lists (a forward pass's caches)."""
    if isinstance(tree, np.ndarray):
        return [tree]
    if isinstance(tree, (tuple, list)):
        return [a for t in tree for a in arrays_in(t)]
    return []


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("mode", ["none", "dynamic"])
def test_the_training_path_stays_in_the_model_dtype(dtype, mode):
    """No silent upcast anywhere on the training path: the step's buffers, every
    array cached by the forward pass (activations, eps, z, logits, KL terms),
    the gradients, the optimizer moments and the parameters after a step."""
    data = synthetic()
    model = VAE(64, (16,), 3, activation="tanh", dtype=dtype, seed=0)
    opt = Adam(model.params)
    step = TrainingStep(model, opt, 32, mode)
    rng = np.random.default_rng(0)
    step(data.x_train, np.arange(32), rng)
    trace = {}
    loss_and_grads(model, step.x_in, rng=rng, trace=trace)
    cached = arrays_in(list(trace.values()))
    assert len(cached) > 10
    assert {a.dtype for a in cached if a.dtype.kind == "f"} == {np.dtype(dtype)}
    assert step.x_in.dtype == step.grads.flat.dtype == model.params.flat.dtype == dtype
    assert all(opt.state[s].flat.dtype == dtype for s in opt.state_names)


@pytest.mark.parametrize("model, objective", [
    (FullCovarianceVAE(64, (8,), 2), "wake-sleep"), (TwoLayerVAE(64, (8,), 2), "wake-sleep")])
def test_a_step_refuses_an_objective_its_model_does_not_train(model, objective):
    with pytest.raises(ValueError, match="trains with the objectives"):
        TrainingStep(model, Adam(model.params), 16, objective=objective)
