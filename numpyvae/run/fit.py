"""A training run: settings and data in, a trained, evaluated and plotted VAE in --out.

    fit(config, data, resume=False, overwrite=False)
      1. check --out (rundir.check_out), the data, and that the final evaluation fits in memory
      2. a new model and optimizer (settings.build_*), or those of out/checkpoint.npz (resume)
      3. make --out ready (rundir.prepare_out): nothing is written before this point
      4. every epoch: its learning rate, trainer.train_epoch, the test -ELBO (whatever the
         objective, so that runs compare), one line, checkpoint.npz + metrics.json
      5. the final evaluation (final_evaluation), metrics.json, the pictures (plots.plot_run)

Finiteness.  Everything a run saves is finite: the model, the optimizer and
the evaluation raise validate.NonFiniteError rather than return NaN or inf,
and a run turns that, or parameters that are no longer finite after an
epoch, into divergence, TrainingDiverged: nothing of it is saved, the
checkpoint keeps the last good epoch.  numpy's floating-point warnings are
silenced during a run, these errors speak instead.  Ctrl-C raises
Interrupted, whose message says what the checkpoint on disk holds.

Evaluation draws from its own fixed-seed Generators (``eval_generator``): it
never perturbs training, and every run, whatever its seed, is measured on
the same binarized test set with the same noise.
"""

import math
import sys
import time
import zlib
from pathlib import Path

import numpy as np

from numpyvae.run import report
from numpyvae.data.binarize import binarize
from numpyvae.util.blas import limited_blas_threads
from numpyvae.run.checkpoint import load_checkpoint, save_checkpoint, write_json_atomic
from numpyvae.evaluate import (BATCH_ELEMENTS, active_units, evaluate_bound, evaluate_elbo,
                               importance_weighted_log_likelihood_fast, top_active_units)
from numpyvae.run.progress import Progress
from numpyvae.run.rundir import CHECKPOINT, METRICS, check_out, prepare_out
from numpyvae.run.settings import (RESUMABLE_CHANGES, RunError, build_model, build_optimizer,
                               data_output_bias, flag, resume_differences)
from numpyvae.trainer import TrainingDiverged, learning_rate, train_epoch, train_generator
from numpyvae.util.validate import NonFiniteError

# Evaluation's random streams, seeded independently of the run's seed.
EVAL_SEED = 2014
EVAL_STREAMS = ("test_binarize", "elbo", "log_likelihood", "samples", "bound", "top_means")


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during a run; the message says what is on disk."""


def eval_generator(stream):
    """A fresh Generator for one of EVAL_STREAMS: the same draws in every run."""
    return np.random.default_rng((EVAL_SEED, EVAL_STREAMS.index(stream)))


def eval_inputs(x_test, mode, dtype):
    """The test set as model input (N, D): binarized once, with a fixed seed for 'dynamic'."""
    return binarize(x_test, mode, rng=eval_generator("test_binarize"), dtype=dtype)


def data_summary(x_train, x_test, image_shape):
    """Sizes and crc32 checksums of the data a run uses (a resumed run must use the same)."""
    return {"n_train": int(x_train.shape[0]), "n_test": int(x_test.shape[0]),
            "image_shape": list(image_shape),
            "crc32_train": zlib.crc32(np.ascontiguousarray(x_train)),
            "crc32_test": zlib.crc32(np.ascontiguousarray(x_test))}


# --------------------------------------------------------------- a run --

def fit(config, data, *, resume=False, overwrite=False, plots=True, stream=None):
    """Train, evaluate and plot one run; returns its metrics (as in metrics.json).

    config : RunConfig; its ``out`` is the run's directory.
    data : an MNIST-like object with uint8 ``x_train`` (N, D), ``x_test``,
        ``y_test`` and ``image_shape`` (see mnist.MNIST).
    resume : continue from ``out/checkpoint.npz``; only RESUMABLE_CHANGES
        may differ from the saved config (``epochs`` may grow).  A finished
        run resumed with the same epochs is evaluated (and plotted) again.
    overwrite : start afresh even if ``out`` holds a run's files (else
        RunError); removes exactly the files a run writes (rundir.RUN_FILES).
    plots : write the PNGs of plots.plot_run at the end.
    stream : where progress and results are printed (default sys.stdout).

    Each epoch appends a record to metrics["epochs"], prints one line and
    then saves the checkpoint and metrics.json, both atomically.  Raises
    RunError (something the user can fix; nothing is written), TrainingDiverged
    (nothing of the failing epoch is saved) or Interrupted (Ctrl-C).
    """
    stream = sys.stdout if stream is None else stream
    out = Path(config.out)
    check_out(out, resume, overwrite)
    _check_data(data)
    x_train = data.x_train[:config.limit]
    info = data_summary(x_train, data.x_test, data.image_shape)
    stage = "the start of the run"
    try:
        with np.errstate(all="ignore"):       # the finiteness checks below speak instead
            x_test = eval_inputs(data.x_test, config.binarize, np.dtype(config.dtype))
            if resume:
                model, optimizer, rng, metrics = _restore(config, info, out / CHECKPOINT)
            else:
                model, optimizer, rng, metrics = _start(config, info, x_train)
            prepare_out(out, overwrite)
            done = len(metrics["epochs"])
            steps = -(-x_train.shape[0] // config.batch_size)
            print(report.describe(config, model, info, out, done), file=stream, flush=True)
            for epoch in range(done + 1, config.epochs + 1):
                stage = f"epoch {epoch}"
                record = _train_one_epoch(config, model, optimizer, rng, x_train, x_test,
                                          epoch, steps, stream)
                metrics["epochs"].append(record)
                print(report.epoch_line(record, config), file=stream, flush=True)
                save_checkpoint(out / CHECKPOINT, model, optimizer, rng, epoch, metrics)
                write_json_atomic(out / METRICS, metrics)
            stage = "the final evaluation"
            metrics["final"] = final_evaluation(model, x_test, config.eval_k, stream,
                                                config.objective, config.k)
            write_json_atomic(out / METRICS, metrics)
            print(report.summary(metrics["final"], len(metrics["epochs"])), file=stream,
                  flush=True)
            if plots:
                stage = "plotting"
                from numpyvae.run.plots import plot_run  # matplotlib only when plotting
                paths = plot_run(out, model, x_test, data.y_test, metrics["epochs"],
                                 data.image_shape, eval_generator("samples"))
                print(f"wrote {', '.join(p.name for p in paths)}, {METRICS} and {CHECKPOINT} "
                      f"in {out}", file=stream, flush=True)
    except TrainingDiverged as e:
        raise TrainingDiverged(report.diverged(e, config, out), e.epoch, e.step,
                               e.before_update) from None
    except KeyboardInterrupt:
        raise Interrupted(report.interrupted(out, stage)) from None
    except OSError as e:   # a write into --out failed: a full disk, a permission changed
        raise RunError(f"writing into --out {out} failed during {stage}: {e}.  "
                       f"{report.on_disk(out)}") from None
    return metrics


def _check_data(data):
    """RunError unless ``data`` holds non-empty uint8 (N, D) sets of one width D = H * W."""
    width = math.prod(data.image_shape)
    for name in ("x_train", "x_test"):
        x = getattr(data, name)
        if not (type(x) is np.ndarray and x.dtype == np.uint8 and x.ndim == 2
                and x.shape[0] >= 1 and x.shape[1] == width):
            raise RunError(f"the data's {name} must be a uint8 array (N, {width}) with N >= 1, "
                           f"got {getattr(x, 'dtype', type(x).__name__)} "
                           f"{getattr(x, 'shape', '')}")


def start_training(config, x_train):
    """(model, optimizer, rng): the state of a new run of ``config`` on the uint8
    training set ``x_train`` (N, D) (settings.build_model for D features, with
    --output-bias data the decoder's output biases from x_train
    (settings.data_output_bias); build_optimizer; trainer.train_generator).
    (fit and the reproductions' protocols start through it.)"""
    model = build_model(config, x_train.shape[1])
    if config.output_bias == "data":
        model.decoder.layer_params(model.params, -1)[1][...] = data_output_bias(x_train)
    return model, build_optimizer(config, model.params), train_generator(config.seed)


def _start(config, info, x_train):
    """(model, optimizer, rng, metrics) of a new run on x_train."""
    model, optimizer, rng = start_training(config, x_train)
    metrics = {"config": config.to_dict(), "data": info,
               "model": {**model.config(), "n_params": int(model.params.flat.size)},
               "epochs": []}
    return model, optimizer, rng, metrics


def _train_one_epoch(config, model, optimizer, rng, x_train, x_test, epoch, steps, stream):
    """Train one epoch and measure the test -ELBO; the epoch's record for metrics.json."""
    progress = Progress(steps, label=f"epoch {epoch}/{config.epochs}", stream=stream)
    optimizer.lr = learning_rate(epoch, config.lr, config.lr_schedule)
    try:
        stats = train_epoch(model, optimizer, x_train, rng, batch_size=config.batch_size,
                            binarize_mode=config.binarize, beta=config.beta,
                            warmup_steps=config.kl_warmup * steps,
                            first_step=(epoch - 1) * steps, epoch=epoch, progress=progress,
                            objective=config.objective, k=config.k,
                            free_bits=config.free_bits)
    finally:
        progress.close()
    eval_start = time.perf_counter()
    if not math.isfinite(float(np.dot(model.params.flat, model.params.flat))):
        raise TrainingDiverged(f"training diverged in epoch {epoch}: the parameters are no "
                               "longer finite", epoch, steps)
    try:
        test = evaluate_elbo(model, x_test, eval_generator("elbo"))
    except NonFiniteError as e:
        raise TrainingDiverged(f"training diverged in epoch {epoch}: on the test set, {e}",
                               epoch, steps) from None
    return {"epoch": epoch, "train_loss": stats["loss"], "train_recon": stats["recon"],
            "train_kl": stats["kl"], "test_loss": test["loss"],
            "test_recon": test["recon"], "test_kl": test["kl"], "beta": stats["beta"],
            "lr": optimizer.lr,
            "seconds": stats["seconds"] + time.perf_counter() - eval_start,
            "train_seconds": stats["seconds"],
            "examples_per_sec": stats["examples_per_sec"],
            "train_batch_losses": stats["batch_losses"]}


# ---------------------------------------------------------------- resume --

def _restore(config, info, path):
    """(model, optimizer, rng, metrics) saved in the checkpoint ``path``, checked to
    continue the run of ``config`` on the data ``info``; RunError
    "cannot resume <path>: <what is wrong>" otherwise."""
    try:
        saved = load_checkpoint(path)
    except (OSError, ValueError) as e:
        raise RunError(f"cannot resume {path}: {_without_prefix(e, path)}") from None

    def refuse(problem):
        return RunError(f"cannot resume {path}: {problem}")

    metrics = saved.metrics
    kinds = {"config": dict, "data": dict, "epochs": list}
    for key, kind in kinds.items():
        if not isinstance(metrics.get(key), kind):
            raise refuse(f"its metrics lack a {key!r} {kind.__name__} (written by another "
                         "version of numpyvae, or edited?)")
    differ = resume_differences(metrics["config"], config)
    if differ:
        may_change = ", ".join(flag(k) for k in RESUMABLE_CHANGES)
        raise refuse(f"settings differ from the saved run's: {'; '.join(differ)}.  Only "
                     f"{may_change} may change; pass the saved values, or --overwrite to start "
                     "afresh.")
    if metrics["data"] != info:
        raise refuse(f"the data differ from the saved run's (saved {metrics['data']}, now {info})")
    if len(metrics["epochs"]) != saved.epoch:
        raise refuse(f"it holds epoch {saved.epoch} but the records of "
                     f"{report.plural(len(metrics['epochs']), 'epoch')} only")
    if saved.epoch > config.epochs:
        raise refuse(f"it has already trained {report.plural(saved.epoch, 'epoch')}, more than "
                     f"--epochs {config.epochs}")
    if saved.model.input_dim != math.prod(info["image_shape"]):
        raise refuse(f"its model {saved.model.config()} is not the model of its settings")
    model, optimizer, rng = restore_training(saved, config, path)
    metrics = {**metrics, "config": config.to_dict(),
               "resumed_at_epochs": metrics.get("resumed_at_epochs", []) + [saved.epoch]}
    metrics.pop("final", None)    # measured again at the end
    return model, optimizer, rng, metrics


def restore_training(saved, config, path):
    """(model, optimizer, rng): the state of training in ``saved`` (a
    checkpoint.Checkpoint read from ``path``), checked to be a state of the run
    of ``config``: the model of its settings, finite parameters, an optimizer
    state that loads, finite, and a Generator state that loads; RunError
    "cannot resume <path>: <what is wrong>" otherwise.  (fit and the
    reproductions' protocols resume through it.)"""

    def refuse(problem):
        return RunError(f"cannot resume {path}: {problem}")

    model = saved.model
    if model.config() != build_model(config, model.input_dim).config():
        raise refuse(f"its model {model.config()} is not the model of its settings")
    if not _all_finite(model.params):
        raise refuse("its parameters are not finite")
    optimizer = build_optimizer(config, model.params)
    try:
        optimizer.load_state_dict(saved.optimizer_state)
    except KeyError as e:
        raise refuse(f"its optimizer state lacks {e}") from None
    except (TypeError, ValueError) as e:
        raise refuse(f"its optimizer state is garbled ({e})") from None
    if optimizer.t < 0 or not all(_all_finite(optimizer.state[s]) for s in optimizer.state):
        raise refuse("its optimizer state is not finite or has a negative step count")
    rng = np.random.default_rng()
    try:
        rng.bit_generator.state = saved.rng_state
    except (KeyError, TypeError, ValueError) as e:
        raise refuse(f"its random-generator state is garbled ({type(e).__name__}: {e})") from None
    return model, optimizer, rng


def _all_finite(params):
    return all(np.isfinite(p).all() for p in params.values())


def _without_prefix(error, path):
    """The message of ``error`` without a leading '<path>: ' (the caller names the path)."""
    return str(error).removeprefix(f"{path}: ")


# ------------------------------------------------------------ evaluation --

def final_evaluation(model, x_test, eval_k, stream=None, objective="elbo", k=1):
    """The end-of-run numbers on the test inputs ``x_test`` (N, D) of the model's dtype.

    test -ELBO (with recon and KL), the negative of the bound the training
    ``objective`` maximises with its ``k`` (test_bound_loss: the -ELBO with k
    samples, or -L_k for 'iwae'), the importance-weighted estimate of
    log p(x) with ``eval_k`` samples (Burda et al. 2016; skipped if 0),
    reported as test_nll = -mean log p(x) (positive nats), and the active
    units (Var_x E_q[z_u] > 0.01; of both layers for a TwoLayerVAE,
    top_active_units).  A progress line runs during the importance sampling, which dominates (k decoder passes per example); it
    runs in as many Python threads as OpenBLAS had threads, each with a
    one-thread BLAS while it lasts (blas.limited_blas_threads; the number
    is recorded as eval_workers), with the numbers of a single thread.
    A number that is not finite (validate.NonFiniteError) is divergence:
    TrainingDiverged, with epoch None.
    """
    try:
        return _final_numbers(model, x_test, eval_k, stream, objective, k)
    except NonFiniteError as e:
        raise TrainingDiverged(f"the final evaluation diverged: {e}", None, None) from None


def _final_numbers(model, x_test, eval_k, stream, objective, k):
    start = time.perf_counter()
    elbo = evaluate_elbo(model, x_test, eval_generator("elbo"))
    count, variances = active_units(model, x_test)
    bound = evaluate_bound(model, x_test, objective, k, eval_generator("bound"))
    result = {"test_loss": elbo["loss"], "test_recon": elbo["recon"], "test_kl": elbo["kl"],
              "objective": objective, "k": k, "test_bound_loss": -bound, "test_nll": None,
              "eval_k": eval_k, "active_units": count, "latent_dim": model.latent_dim,
              "active_unit_variances": variances.tolist()}
    if model.kind == "two-layer-vae":     # the top layer's too: Var_x E_q(z2|x)[z2_u] > 0.01
        top_count, top_variances = top_active_units(model, x_test, eval_generator("top_means"))
        result.update(top_active_units=top_count, top_latent_dim=model.top_latent_dim,
                      top_active_unit_variances=top_variances.tolist())
    iw_start = time.perf_counter()
    if eval_k:
        rng = eval_generator("log_likelihood")
        n = x_test.shape[0]
        # ~1e5 decoder passes per call, for the progress line; the estimate is
        # the same for any chunking (evaluate draws eps in one canonical order)
        chunk = max(1, 100_000 // eval_k)
        progress = Progress(-(-n // chunk), label=f"log p(x), k={eval_k}", step_name="chunk",
                            stream=stream)
        log_px = np.empty(n)
        # the cores the training's products ran on, each now a Python thread
        # with a one-thread BLAS (blas.py; 1 where the BLAS cannot be told),
        # sharing the memory bound of one (evaluate.BATCH_ELEMENTS): as fast,
        # and no larger a peak
        with limited_blas_threads(1) as blas_threads_before:
            workers = blas_threads_before or 1
            for i, i0 in enumerate(range(0, n, chunk)):
                log_px[i0:i0 + chunk] = importance_weighted_log_likelihood_fast(
                    model, x_test[i0:i0 + chunk], eval_k, rng,
                    batch_elements=BATCH_ELEMENTS // workers, workers=workers)
                progress.update(i + 1, examples=min(n, i0 + chunk))
        progress.close()
        result["eval_workers"] = workers
        result["test_nll"] = -float(np.mean(log_px))
    now = time.perf_counter()
    result["iw_seconds"], result["eval_seconds"] = now - iw_start, now - start
    return result
