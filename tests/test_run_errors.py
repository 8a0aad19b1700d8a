"""Bad input, interruptions and divergence in demos/train_mnist.py, class by class (issue 11).

Every case runs the demo's main(argv) in-process on a tiny synthetic data set
written as IDX files, and asserts the exit status (2: something the user can
fix, 1: divergence, 130: Ctrl-C), the one "error:" line and its words, that
no traceback and no numpy RuntimeWarning reached the user, and that every
file that existed before the run is byte-identical afterwards.
"""

import contextlib
import errno
import json
import shutil
import warnings

import numpy as np
import pytest

from numpyvae import objectives
from numpyvae.util import blas
from numpyvae import evaluate as evaluate_module
from numpyvae.run import fit as run_module
from numpyvae.run.checkpoint import load_checkpoint
from idx_writer import write_idx
from numpyvae.run.rundir import CHECKPOINT, METRICS, RUN_FILES
from numpyvae.util.validate import NonFiniteError
from run_helpers import (TINY_FLAGS, load_demo, quiet_fit, snapshot, tiny_config,
                         write_mnist_dir)


@pytest.fixture(scope="module")
def demo():
    return load_demo()


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return write_mnist_dir(tmp_path_factory.mktemp("data") / "mnist")


@pytest.fixture(scope="module")
def saved_run(tmp_path_factory, demo, data_dir):
    """A directory holding checkpoint.npz and metrics.json after 1 epoch of the TINY_FLAGS run."""
    config = tiny_config(tmp_path_factory.mktemp("saved"), epochs=1, kl_warmup=0.0,
                         batch_size=128, binarize="none", data_dir=str(data_dir))
    quiet_fit(config, demo.load_data("mnist", str(data_dir)))
    return config.out


def strict_json(path):
    def refuse(constant):
        raise ValueError(f"{path} holds {constant}")
    return json.loads(path.read_text(), parse_constant=refuse)


def run_demo(demo, argv, capsys):
    """(exit status, stdout, stderr, RuntimeWarnings) of demo.main(argv)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            code = demo.main(argv)
        except SystemExit as e:      # argparse rejects a flag it cannot parse
            code = e.code
    out, err = capsys.readouterr()
    return code, out, err, [w for w in caught if issubclass(w.category, RuntimeWarning)]


def check_case(demo, capsys, tmp_path, data_dir, argv, code, message):
    """Run the demo; assert the exit status, one error line holding ``message``,
    no traceback or RuntimeWarning, pre-existing files unchanged and, for exit
    status 2, no file written at all.  Returns (stdout, stderr)."""
    before = {**snapshot(tmp_path), **{f"data/{k}": v for k, v in snapshot(data_dir).items()}}
    got, out, err, runtime_warnings = run_demo(demo, argv, capsys)
    after = {**snapshot(tmp_path), **{f"data/{k}": v for k, v in snapshot(data_dir).items()}}
    assert got == code, err
    error_lines = [line for line in err.splitlines() if "error:" in line]
    assert len(error_lines) == 1, err
    assert message in err, err
    assert "Traceback" not in err and not runtime_warnings
    assert {k: after.get(k) for k in before} == before, "a file that was there has changed"
    if code == 2:
        assert set(after) == set(before), f"wrote {set(after) - set(before)}"
        assert "epoch 1/" not in out      # refused before any training
    return out, err


def files(*names, content=b"earlier work"):
    """A setup: these files in --out."""
    def setup(tmp_path, saved_run):
        out = tmp_path / "run"
        out.mkdir(exist_ok=True)
        for name in names:
            (out / name).write_bytes(content)
    return setup


def a_file_at(relative):
    def setup(tmp_path, saved_run):
        (tmp_path / relative).write_text("not a directory")
    return setup


def copy_of_saved_run(tmp_path, saved_run):
    shutil.copytree(saved_run, tmp_path / "run")


def edited_checkpoint(edit):
    """A setup: the saved run, its checkpoint's arrays changed by ``edit``."""
    def setup(tmp_path, saved_run):
        copy_of_saved_run(tmp_path, saved_run)
        path = tmp_path / "run" / CHECKPOINT
        with np.load(path) as f:
            arrays = dict(f)
        edit(arrays)
        np.savez(path, **arrays)
    return setup


def json_edit(key, change):
    """An edit of the JSON entry ``key`` of a checkpoint."""
    def edit(arrays):
        value = json.loads(str(arrays[key]))
        change(value)
        arrays[key] = json.dumps(value)
    return edit


def no_setup(tmp_path, saved_run):
    pass


OUT = ["--out", "{tmp}/run"]

# (id, extra flags, setup, exit status, words of the message)
CASES = {
    # 1. files lost or left behind: a run never replaces what it did not write
    "files": [
        ("finished-run-without-checkpoint", OUT, files(METRICS, "samples.png", "loss_curves.png"),
         2, "already holds files a run writes (metrics.json, samples.png, loss_curves.png)"),
        ("unrelated-metrics-json", OUT, files(METRICS), 2, "replace them with --overwrite"),
        ("only-a-manifold-png", OUT, files("manifold.png"), 2,
         "already holds files a run writes (manifold.png)"),
        ("a-run-with-checkpoint", OUT, copy_of_saved_run, 2,
         "already holds a run (metrics.json, checkpoint.npz): continue it with --resume"),
        ("resume-and-overwrite", OUT + ["--resume", "--overwrite"], copy_of_saved_run, 2,
         "pass one of them"),
        ("resume-nothing", OUT + ["--resume"], files(METRICS), 2,
         "nothing to resume: {tmp}/run/checkpoint.npz does not exist"),
        ("out-where-no-file-can-be-made", ["--out", "/proc"], no_setup, 2,
         "--out /proc is not writable"),
    ],
    # 2. non-finite numbers
    "non-finite": [
        ("lr-inf", OUT + ["--lr", "inf"], no_setup, 2, "--lr must be a finite number > 0, got inf"),
        ("lr-nan", OUT + ["--lr", "nan"], no_setup, 2, "--lr must be a finite number > 0, got nan"),
        ("lr-negative", OUT + ["--lr", "-1"], no_setup, 2, "--lr must be a finite number > 0"),
        ("beta-inf", OUT + ["--beta", "inf"], no_setup, 2, "--beta must be a finite number >= 0"),
        ("beta-nan", OUT + ["--beta", "nan"], no_setup, 2, "--beta must be a finite number >= 0"),
        ("kl-warmup-inf", OUT + ["--kl-warmup", "inf"], no_setup, 2,
         "--kl-warmup must be a finite number >= 0, got inf"),
        ("obs-var-inf", OUT + ["--likelihood", "gaussian", "--obs-var", "inf"], no_setup, 2,
         "--obs-var must be a finite number > 0, got inf"),
        ("obs-var-nan", OUT + ["--likelihood", "gaussian", "--obs-var", "nan"], no_setup, 2,
         "--obs-var must be a finite number > 0, got nan"),
        ("adam-eps-inf", OUT + ["--adam-eps", "inf"], no_setup, 2,
         "--adam-eps must be a finite number > 0, got inf"),
        ("adam-eps-negative", OUT + ["--adam-eps=-1e-8"], no_setup, 2,
         "--adam-eps must be a finite number > 0"),
        ("diverges-after-updates", OUT + ["--optimizer", "sgd", "--lr", "1e6"], no_setup, 1,
         "Lower the learning rate (--lr 1e+06 now)"),
        ("diverges-before-any-update", OUT + ["--likelihood", "gaussian", "--obs-var", "1e-30"],
         no_setup, 1, "before any update, so the learning rate is not the cause"),
        ("huge-beta-before-any-update", OUT + ["--beta", "1e308"], no_setup, 1,
         "check the settings that shape the loss (--beta 1e+308 now)"),
    ],
    # 3. tracebacks where a message belongs
    "tracebacks": [
        ("out-is-a-file", ["--out", "{tmp}/f"], a_file_at("f"), 2,
         "--out {tmp}/f is a file, not a directory"),
        ("out-under-a-file", ["--out", "{tmp}/f/run"], a_file_at("f"), 2,
         "--out {tmp}/f/run cannot be made: {tmp}/f is a file"),
        ("out-cannot-be-made", ["--out", "/proc/numpyvae-run"], no_setup, 2,
         "--out /proc/numpyvae-run cannot be made"),
        ("eval-k-beyond-memory", OUT + ["--eval-k", "1000000000000"], no_setup, 2,
         "--eval-k 1000000000000 needs"),
        ("model-beyond-memory", OUT + ["--hidden", "1000000000"], no_setup, 2,
         "--hidden 1000000000 --latent-dim 3 does not fit in memory"),
        ("checkpoint-config-unknown-setting", OUT + ["--resume"],
         edited_checkpoint(json_edit("metrics", lambda m: m["config"].update(colour="red"))), 2,
         "cannot resume {tmp}/run/checkpoint.npz: settings differ from the saved run's: "
         "'colour' (saved 'red', unknown to this version of numpyvae)"),
        ("checkpoint-model-config-unknown-setting", OUT + ["--resume"],
         edited_checkpoint(json_edit("config", lambda c: c.update(colour="red"))), 2,
         "cannot resume {tmp}/run/checkpoint.npz: the model config has settings this version "
         "of numpyvae does not know: colour"),
        ("checkpoint-model-of-other-settings", OUT + ["--resume"],
         edited_checkpoint(json_edit("config", lambda c: c.update(activation="tanh"))), 2,
         "cannot resume {tmp}/run/checkpoint.npz: its model"),
        ("checkpoint-metrics-without-data", OUT + ["--resume"],
         edited_checkpoint(json_edit("metrics", lambda m: m.pop("data"))), 2,
         "cannot resume {tmp}/run/checkpoint.npz: its metrics lack a 'data' dict"),
        ("checkpoint-metrics-not-json", OUT + ["--resume"],
         edited_checkpoint(lambda a: a.update(metrics="{epochs: 1")), 2,
         "cannot resume {tmp}/run/checkpoint.npz: the 'metrics' entry is not JSON"),
        ("checkpoint-optimizer-state-wrong-shape", OUT + ["--resume"],
         edited_checkpoint(lambda a: a.update({"optim/m_sum/encoder.0.W": np.zeros(3)})), 2,
         "cannot resume {tmp}/run/checkpoint.npz: its optimizer state is garbled "
         "(optimizer state 'm_sum/encoder.0.W' missing or of the wrong shape)"),
        ("checkpoint-optimizer-step-missing", OUT + ["--resume"],
         edited_checkpoint(lambda a: a.pop("optim/t")), 2,
         "cannot resume {tmp}/run/checkpoint.npz: its optimizer state lacks 't'"),
        ("checkpoint-rng-state-garbled", OUT + ["--resume"],
         edited_checkpoint(json_edit("rng_state", lambda s: s.update(state="x"))), 2,
         "cannot resume {tmp}/run/checkpoint.npz: its random-generator state is garbled"),
        ("checkpoint-rng-of-another-kind", OUT + ["--resume"],
         edited_checkpoint(json_edit("rng_state", lambda s: s.update(bit_generator="MT19937"))),
         2, "its random-generator state is garbled"),
        ("checkpoint-epoch-not-a-number", OUT + ["--resume"],
         edited_checkpoint(lambda a: a.update(epoch=np.array("one"))), 2,
         "cannot resume {tmp}/run/checkpoint.npz: the 'epoch' entry is not a count of epochs"),
        ("checkpoint-epoch-without-records", OUT + ["--resume", "--epochs", "9"],
         edited_checkpoint(lambda a: a.update(epoch=np.array(5))), 2,
         "it holds epoch 5 but the records of 1 epoch only"),
        ("checkpoint-parameters-nan", OUT + ["--resume"],
         edited_checkpoint(lambda a: a["param/decoder.0.b"].fill(np.nan)), 2,
         "cannot resume {tmp}/run/checkpoint.npz: its parameters are not finite"),
        ("checkpoint-parameter-wrong-shape", OUT + ["--resume"],
         edited_checkpoint(lambda a: a.update({"param/decoder.0.b": np.zeros(5, np.float32)})),
         2, "cannot resume {tmp}/run/checkpoint.npz: parameter 'decoder.0.b' has shape (5,)"),
        ("checkpoint-truncated", OUT + ["--resume"],
         lambda t, s: (copy_of_saved_run(t, s), (t / "run" / CHECKPOINT).write_bytes(b"PK\x03")),
         2, "cannot resume {tmp}/run/checkpoint.npz: not a readable training checkpoint"),
        ("resume-with-other-settings", OUT + ["--resume", "--lr", "0.01"], copy_of_saved_run, 2,
         "--lr (saved 0.001, now 0.01)"),
    ],
    # 4. wrong or misleading messages
    "messages": [
        ("hidden-empty", OUT + ["--hidden", ""], no_setup, 2, "argument --hidden: expected sizes"),
        ("hidden-only-commas", OUT + ["--hidden", ",,"], no_setup, 2, "argument --hidden"),
        ("hidden-empty-size", OUT + ["--hidden", "400,,200"], no_setup, 2, "argument --hidden"),
        ("obs-var-with-bernoulli", OUT + ["--obs-var", "-1"], no_setup, 2,
         "--obs-var applies to the Gaussian likelihoods only, not bernoulli"),
        ("obs-var-learned-with-bernoulli", OUT + ["--obs-var", "learned"], no_setup, 2,
         "--obs-var applies to the Gaussian likelihoods only"),
        ("seed-negative", OUT + ["--seed", "-1"], no_setup, 2,
         "--seed must be an integer >= 0, got -1"),
        ("epochs-zero", OUT + ["--epochs", "0"], no_setup, 2, "--epochs must be an integer >= 1"),
        ("limit-zero", OUT + ["--limit", "0"], no_setup, 2, "--limit must be an integer >= 1"),
        ("k-zero", OUT + ["--k", "0"], no_setup, 2, "--k must be an integer >= 1, got 0"),
        ("k-not-an-integer", OUT + ["--k", "2.5"], no_setup, 2, "argument --k: invalid int"),
        ("objective-unknown", OUT + ["--objective", "vae"], no_setup, 2,
         "argument --objective: invalid choice"),
        ("adam-eps-with-sgd", OUT + ["--optimizer", "sgd", "--adam-eps", "1e-8"], no_setup, 2,
         "--adam-eps applies to --optimizer adam only, not sgd"),
        ("output-bias-data-with-gaussian", OUT + ["--likelihood", "gaussian", "--output-bias", "data"],
         no_setup, 2, "--output-bias data sets the logits of --likelihood bernoulli, not gaussian"),
        ("output-bias-unknown", OUT + ["--output-bias", "mean"], no_setup, 2,
         "argument --output-bias: invalid choice"),
        ("iwae-with-beta", OUT + ["--objective", "iwae", "--beta", "2"], no_setup, 2,
         "--objective iwae has no KL weight"),
        ("data-dir-missing", OUT + ["--data-dir", "{tmp}/nowhere"], no_setup, 2,
         "error: --data-dir: {tmp}/nowhere does not exist"),
        ("data-dir-is-a-file", OUT + ["--data-dir", "{tmp}/f"], a_file_at("f"), 2,
         "error: --data-dir: {tmp}/f is a file"),
    ],
}


def table(*classes):
    return [pytest.param(*case[1:], id=f"{cls}:{case[0]}") for cls in classes
            for case in CASES[cls]]


@pytest.mark.parametrize("flags, setup, code, message", table(*CASES))
def test_bad_input_gets_one_clear_error_and_touches_nothing(
        demo, capsys, tmp_path, data_dir, saved_run, flags, setup, code, message):
    setup(tmp_path, saved_run)
    argv = ["--data-dir", str(data_dir), *TINY_FLAGS] + [f.format(tmp=tmp_path) for f in flags]
    check_case(demo, capsys, tmp_path, data_dir, argv, code, message.format(tmp=tmp_path))


def test_idx_files_holding_no_images(demo, capsys, tmp_path, data_dir):
    empty = shutil.copytree(data_dir, tmp_path / "data")
    write_idx(empty / "train-images-idx3-ubyte", np.zeros((0, 8, 8), np.uint8))
    write_idx(empty / "train-labels-idx1-ubyte", np.zeros(0, np.uint8))
    check_case(demo, capsys, tmp_path, data_dir, ["--data-dir", str(empty), *OUT[:1],
                                                  str(tmp_path / "run")],
               2, "train-images-idx3-ubyte holds no pixels: 0 images of 8x8")


# -------------------------------------------- what a run may replace --

def test_overwrite_replaces_exactly_a_runs_files(demo, capsys, tmp_path, data_dir):
    """A 2-d run's manifold.png does not outlive an --overwrite by a 3-d run;
    a file no run writes survives, byte for byte."""
    out = tmp_path / "run"
    base = ["--data-dir", str(data_dir), "--out", str(out), "--hidden", "8", "--epochs", "1",
            "--eval-k", "2"]
    assert run_demo(demo, base + ["--latent-dim", "2"], capsys)[0] == 0
    assert (out / "manifold.png").exists()
    (out / "notes.txt").write_text("mine")
    stale = out / f"{CHECKPOINT}.tmp-999999999"      # from a process killed mid-write
    stale.write_bytes(b"half a checkpoint")
    code, _, err, _ = run_demo(demo, base + ["--latent-dim", "3", "--overwrite"], capsys)
    assert code == 0, err
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [name for name in RUN_FILES if name != "manifold.png"] + ["notes.txt"])
    assert (out / "notes.txt").read_text() == "mine"


def test_a_batch_larger_than_the_data_is_the_whole_data_set(demo, capsys, tmp_path, data_dir):
    argv = ["--data-dir", str(data_dir), *TINY_FLAGS, "--out", str(tmp_path / "run"),
            "--batch-size", "1000000000"]
    code, out, err, _ = run_demo(demo, argv, capsys)
    assert code == 0, err
    assert "batch 1000000000 (all 300 examples)" in out
    (record,) = json.loads((tmp_path / "run" / METRICS).read_text())["epochs"]
    assert len(record["train_batch_losses"]) == 1


# ---------------------------------------------------- interruptions --

def interrupt_at_call(monkeypatch, n):
    """Ctrl-C in the n-th training step (300 examples in batches of 128: 3 steps an epoch)."""
    real = objectives.objective_loss_and_grads
    calls = []

    def step(*args, **kwargs):
        calls.append(1)
        if len(calls) == n:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(objectives, "objective_loss_and_grads", step)


@pytest.mark.parametrize("at_call, message", [
    (2, "interrupted during epoch 1: no checkpoint was written, nothing to resume"),
    (5, "interrupted during epoch 2: {out}/checkpoint.npz holds epoch 1; continue with --resume"),
])
def test_ctrl_c_promises_only_what_is_on_disk(demo, capsys, tmp_path, data_dir, monkeypatch,
                                              at_call, message):
    out = tmp_path / "run"
    interrupt_at_call(monkeypatch, at_call)
    code, _, err, _ = run_demo(demo, ["--data-dir", str(data_dir), *TINY_FLAGS, "--epochs", "3",
                                      "--out", str(out)], capsys)
    assert code == 130
    assert message.format(out=out) in err
    saved = sorted(p.name for p in out.iterdir())
    assert saved == ([] if at_call <= 3 else [CHECKPOINT, METRICS])


@pytest.mark.parametrize("function, error, code, message", [
    ("importance_weighted_log_likelihood_fast", KeyboardInterrupt(), 130,
     "interrupted during the final evaluation: {out}/checkpoint.npz holds epoch 1; "
     "continue with --resume"),
    ("save_checkpoint", OSError(errno.ENOSPC, "No space left on device", "checkpoint.npz"), 2,
     "error: writing into --out {out} failed during epoch 1: [Errno 28] No space left on "
     "device: 'checkpoint.npz'.  No checkpoint was written"),
], ids=["ctrl-c-in-the-final-evaluation", "disk-full"])
def test_a_run_stopped_midway_says_what_is_on_disk(demo, capsys, tmp_path, data_dir,
                                                   monkeypatch, function, error, code, message):
    def fail(*args, **kwargs):
        raise error

    monkeypatch.setattr(run_module, function, fail)
    out = tmp_path / "run"
    got, _, err, _ = run_demo(demo, ["--data-dir", str(data_dir), *TINY_FLAGS, "--out",
                                     str(out)], capsys)
    assert got == code and message.format(out=out) in err, err
    assert not (out / METRICS).exists() or "final" not in strict_json(out / METRICS)


def test_ctrl_c_in_an_evaluation_thread_restores_the_blas_threads(demo, capsys, tmp_path,
                                                                  data_dir, monkeypatch):
    """Ctrl-C while a worker thread computes a piece of log p(x): the run
    exits 130 with its message, and OpenBLAS runs on as many threads as
    before the evaluation set it to one."""
    before = blas.blas_threads()
    seen = []

    def piece(*args):
        # every piece raises, so which thread runs first does not matter: the
        # first piece the run collects is an interrupted one (how many pieces
        # a pool draws ahead is evaluate.in_order's, tested in test_blas_threads)
        seen.append(blas.blas_threads())
        raise KeyboardInterrupt

    monkeypatch.setattr(evaluate_module, "_piece_log_weights", piece)
    monkeypatch.setattr(run_module, "limited_blas_threads", _pretend_two_blas_threads(before))
    monkeypatch.setattr(run_module, "BATCH_ELEMENTS", 2 * 5 * 64)   # a piece per image
    out = tmp_path / "run"
    code, _, err, _ = run_demo(demo, ["--data-dir", str(data_dir), *TINY_FLAGS, "--out", str(out)],
                               capsys)
    assert code == 130 and "interrupted during the final evaluation" in err, err
    # every piece ran with a one-thread BLAS (None: a BLAS that cannot be told)
    assert seen and set(seen) <= {1, None}
    assert blas.blas_threads() == before


def _pretend_two_blas_threads(before):
    """blas.limited_blas_threads that reports two BLAS threads, so that the run
    evaluates in two Python threads on any machine (with a real BLAS the
    count is still set to one and restored)."""
    real = blas.limited_blas_threads

    @contextlib.contextmanager
    def limited(n):
        with real(n):
            yield 2
    return limited


# ------------------------------------------------------- divergence --

@pytest.mark.parametrize("where", ["test-loss", "final-evaluation"])
def test_a_non_finite_test_number_is_divergence_and_never_saved(
        demo, capsys, tmp_path, data_dir, monkeypatch, where):
    """An overflow in the test -ELBO at epoch 2, or in log p(x) at the end: exit 1,
    the checkpoint keeps epoch 1 (byte for byte), metrics.json stays strict JSON."""
    out = tmp_path / "run"
    seen = {}
    overflow = NonFiniteError("the KL term overflowed float32 (NaN or inf) for finite input")
    if where == "test-loss":
        real = run_module.evaluate_elbo

        def evaluate(model, x, rng, *args):
            if (out / CHECKPOINT).exists():
                seen["checkpoint"] = (out / CHECKPOINT).read_bytes()
                raise overflow
            return real(model, x, rng, *args)

        monkeypatch.setattr(run_module, "evaluate_elbo", evaluate)
        epochs, message = "2", "training diverged in epoch 2: on the test set, the KL term"
    else:
        def evaluate(*args, **kwargs):
            raise overflow

        monkeypatch.setattr(run_module, "importance_weighted_log_likelihood_fast", evaluate)
        epochs, message = "1", "the final evaluation diverged: the KL term overflowed"
    code, _, err, warned = run_demo(demo, ["--data-dir", str(data_dir), *TINY_FLAGS, "--epochs",
                                           epochs, "--out", str(out)], capsys)
    assert code == 1 and message in err and not warned
    assert f"{out / CHECKPOINT} holds epoch 1" in err
    metrics = strict_json(out / METRICS)
    assert len(metrics["epochs"]) == 1 and "final" not in metrics
    assert load_checkpoint(out / CHECKPOINT).epoch == 1
    if "checkpoint" in seen:
        assert (out / CHECKPOINT).read_bytes() == seen["checkpoint"]


def test_a_failed_write_is_a_message_saying_what_is_on_disk(
        demo, capsys, tmp_path, data_dir, monkeypatch):
    def disk_full(path, *args):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(run_module, "save_checkpoint", disk_full)
    out = tmp_path / "run"
    code, _, err, _ = run_demo(demo, ["--data-dir", str(data_dir), *TINY_FLAGS, "--out",
                                      str(out)], capsys)
    assert code == 2
    assert f"error: writing into --out {out} failed during epoch 1" in err
    assert "No space left on device" in err and "No checkpoint was written" in err
