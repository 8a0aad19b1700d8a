"""benchmarks/iwae_step.py and benchmarks/torch_reference.py run and print what
they promise (random images, a handful of steps: speed is never asserted)."""

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))        # the scripts import each other


def load(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_iwae_step_prints_a_row_per_setting_with_its_profile(capsys):
    iwae_step = load("iwae_step")
    iwae_step.main(["--repeats", "5", "--profile", "--top", "3"])
    out = capsys.readouterr().out
    rows = [line.split() for line in out.splitlines() if line.strip().startswith(("one", "two"))]
    assert [(r[0], int(r[2]), int(r[3])) for r in rows] == [
        (layers.split()[0], batch, k) for layers, batch, k in iwae_step.SETTINGS]
    for r in rows:
        step_ms, matmul_ms, ratio = float(r[4]), float(r[5]), float(r[6])
        floor_ms, floor_ratio = float(r[8]), float(r[9])
        assert step_ms > 0 and matmul_ms > 0 and floor_ms > 0
        assert np.isclose(ratio, step_ms / matmul_ms, rtol=0.02, atol=0.01)
        assert np.isclose(floor_ratio, floor_ms / matmul_ms, rtol=0.02, atol=0.01)
    assert out.count("cProfile:") == len(iwae_step.SETTINGS)


def test_the_products_cover_every_network_of_the_two_layer_model():
    matmul_floor = load("matmul_floor")
    model = load("iwae_step").paper_model("two layers")
    jobs = matmul_floor.training_step_jobs(model, 20, np.random.default_rng(0), samples=5)
    layers = sum(len(net.sizes) - 1 for net in (model.encoder, model.decoder, model.top_encoder,
                                                 model.top_decoder))
    assert len(jobs) == 3 * layers - 1          # forward, dW and dx, but no dx for the data
    encoder_layers = len(model.encoder.sizes) - 1
    assert jobs[0][0].shape == (20, 784)        # the encoder's first product: the N images
    decoder_first = jobs[3 * encoder_layers - 1][0]
    assert decoder_first.shape == (100, 100)    # the decoder's: k N = 100 samples of z1 (100)


def test_torch_reference_says_how_to_get_torch_when_it_is_missing(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)        # import torch raises ImportError
    load("torch_reference").main(["--repeats", "5"])
    assert "pip install torch" in capsys.readouterr().out


def test_compare_commits_times_a_commit_against_the_working_tree(capsys):
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout: compare_commits.py reads the earlier commit with git")
    compare = load("compare_commits")
    compare.main(["HEAD", "--repeats", "5"])
    out = capsys.readouterr().out
    rows = [line.split() for line in out.splitlines() if line.strip().startswith(("one", "two"))]
    assert len(rows) == len(compare.SETTINGS)
    for r in rows:
        then_ms, now_ms, ratio = float(r[4]), float(r[5]), float(r[9])
        assert np.isclose(ratio, then_ms / now_ms, rtol=0.02, atol=0.01)
    assert "numpyvae_then" in sys.modules and sys.modules["numpyvae_then"].__file__ != \
        sys.modules["numpyvae"].__file__
    for name in [m for m in sys.modules if m.startswith("numpyvae_then")]:
        del sys.modules[name]               # the other tests see one numpyvae only
