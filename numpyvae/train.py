"""Training a VAE on uint8 images: one epoch (``train_epoch``) and a whole run (``fit``).

As in CS231n's Solver, training lives apart from the model: the model only
computes a loss and its gradients (``VAE.loss_terms_and_grads``); this
module feeds it batches and applies the optimizer.

One step (TrainingStep), on a batch of B examples of the uint8 data set x (N, D):

    idx    = perm[s*B : (s+1)*B]              (B,)     perm = rng.permutation(N), once per epoch
    x_u8   = x[idx]                           (B, D)   uint8, np.take into a preallocated buffer
    xb     = binarize(x_u8, mode, rng)        (B, D)   model dtype, into a preallocated buffer
    beta_t = kl_weight(t, beta, warmup_steps)          t = 0, 1, 2, ... the global step
    (loss, recon, kl), grads = model.loss_terms_and_grads(xb, rng, beta_t, out=grads,
                                                          objective=objective, k=k)
    optimizer.step(grads, grads_are_scratch=True)      one grads FlatParams, reused

The last batch of an epoch holds the N mod B leftover examples (kept, as
PyTorch's DataLoader does by default) in views of the same buffers.  The
data set stays uint8 (47 MB for MNIST, not 188 MB of float32) and a step
allocates nothing beyond what the model itself does.

Randomness.  One Generator drives training, ``default_rng((seed, 1))`` (a
stream apart from the weight initialisation's ``default_rng(seed)``): the
per-epoch permutation, the eps of the reparameterization and, with
binarize 'dynamic', a fresh Bernoulli draw for every batch (so each example
is re-binarized every epoch).  Its state at an epoch's end, with the
parameters and the optimizer's state, is the whole state of training: a
checkpoint holds all three, and a resumed run is bit-identical to one that
never stopped.  Evaluation draws from its own fixed-seed Generators
(``eval_generator``): it never perturbs training, and every run, whatever
its seed, is measured on the same binarized test set with the same noise.

KL warm-up (Bowman et al. 2016, Sønderby et al. 2016) raises the KL
weight linearly from 0 to beta over the first ``kl_warmup`` epochs:

    beta_t = beta * min(1, t / (kl_warmup * steps_per_epoch))

The objective (objectives.py) is the ELBO with the KL in closed form by
default; ``objective`` and ``k`` choose another (estimator A, k samples, the
IWAE bound, wake-sleep).  The learning rate is constant, or follows the IWAE
paper's schedule (Burda et al. 2016, ``lr_schedule='iwae'``):

    lr_e = lr * 10^(-i/7)  in the 3^i epochs of stage i = 0..7 (3280 epochs; later epochs stay at i = 7)

Reported training losses are the objective's, recon + KL (the -ELBO with
beta = 1 for the default), in nats per example: positive, lower is better;
beta_t only shapes the gradients.  Every epoch is evaluated on the test set
with the same -ELBO whatever the objective, so that runs compare.
"""

import math
import sys
import time
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from numpyvae.binarize import BINARIZE_MODES, binarize
from numpyvae.checkpoint import load_checkpoint, save_checkpoint, write_json_atomic
from numpyvae.evaluate import (active_units, evaluate_bound, evaluate_elbo,
                               importance_weighted_log_likelihood)
from numpyvae.objectives import OBJECTIVES
from numpyvae.optim import SGD, Adagrad, Adam
from numpyvae.progress import Progress, format_seconds
from numpyvae.vae import VAE

OPTIMIZERS = {"adam": Adam, "adagrad": Adagrad, "sgd": SGD}
CHECKPOINT, METRICS = "checkpoint.npz", "metrics.json"

# Evaluation's random streams, seeded independently of the run's seed.
EVAL_SEED = 2014
EVAL_STREAMS = ("test_binarize", "elbo", "log_likelihood", "samples", "bound")

LR_SCHEDULES = ("constant", "iwae")

# Config fields that may differ when resuming: they do not change training.
RESUMABLE_CHANGES = ("epochs", "eval_k", "data_dir", "out")


class RunError(ValueError):
    """A run cannot start: bad settings, or an output directory that does
    not fit (a finished run in the way, a checkpoint of another config).
    Messages name settings by their ``demos/train_mnist.py`` flags."""


class TrainingDiverged(RuntimeError):
    """A non-finite loss or gradient; ``epoch`` and ``step`` (1-based) say where."""

    def __init__(self, message, epoch, step):
        super().__init__(message)
        self.epoch, self.step = epoch, step


@dataclass
class RunConfig:
    """Every setting of a run; the defaults are those of the PyTorch VAE example.

    Model: ``hidden`` layer sizes (the decoder mirrors them), ``latent_dim``,
    ``activation``, ``likelihood`` ('bernoulli' or 'gaussian', whose
    ``obs_var`` is a float or 'learned'), ``dtype``, ``seed`` (weights and
    training noise).  Data: ``binarize`` mode, ``limit`` (first N training
    examples; None = all).  Objective: ``objective`` (one of
    objectives.OBJECTIVES), ``k`` (samples of z per example), ``beta`` (KL
    weight), ``kl_warmup`` (epochs of linear warm-up).  Optimisation:
    ``optimizer``, ``lr``, ``lr_schedule`` (LR_SCHEDULES), ``adam_eps``,
    ``batch_size``, ``epochs``.  Evaluation: ``eval_k`` importance samples
    for the final log p(x) (0 skips it).  Recorded only: ``data_dir``;
    ``out`` is the run's directory.
    """

    epochs: int = 10
    batch_size: int = 128
    hidden: tuple[int, ...] = (400,)
    latent_dim: int = 20
    activation: str = "relu"
    likelihood: str = "bernoulli"
    obs_var: float | str = 1.0
    binarize: str = "none"
    objective: str = "elbo"
    k: int = 1
    beta: float = 1.0
    kl_warmup: float = 0.0
    optimizer: str = "adam"
    lr: float = 1e-3
    lr_schedule: str = "constant"
    adam_eps: float = 1e-8
    seed: int = 0
    dtype: str = "float32"
    limit: int | None = None
    eval_k: int = 1000
    data_dir: str | None = None
    out: str = "runs/mnist"

    def __post_init__(self):
        self.hidden = tuple(self.hidden)
        positive = {"epochs": self.epochs, "batch_size": self.batch_size,
                    "latent_dim": self.latent_dim, "lr": self.lr, "k": self.k,
                    "adam_eps": self.adam_eps,
                    **({"limit": self.limit} if self.limit is not None else {})}
        for name, value in positive.items():
            if not value > 0:
                raise RunError(f"--{_flag(name)} must be positive, got {value!r}")
        if not all(h > 0 for h in self.hidden):
            raise RunError(f"--hidden sizes must be positive, got {self.hidden}")
        for name in ("beta", "kl_warmup", "eval_k"):
            if not getattr(self, name) >= 0:
                raise RunError(f"--{_flag(name)} must be >= 0, got {getattr(self, name)!r}")
        choices = {"binarize": BINARIZE_MODES, "optimizer": tuple(OPTIMIZERS),
                   "dtype": ("float32", "float64"), "objective": OBJECTIVES,
                   "lr_schedule": LR_SCHEDULES}
        for name, valid in choices.items():
            value = getattr(self, name)
            if value not in valid:
                raise RunError(f"--{_flag(name)} must be one of {valid}, got {value!r}")
        if self.objective in ("iwae", "wake-sleep") and (self.beta != 1 or self.kl_warmup):
            raise RunError(f"--objective {self.objective} has no KL weight: --beta must be 1 "
                           "and --kl-warmup 0")
        if self.objective == "wake-sleep" and self.k != 1:
            raise RunError(f"--objective wake-sleep draws one z per example: --k must be 1, "
                           f"got {self.k}")
        if self.optimizer != "adam" and self.adam_eps != RunConfig.adam_eps:
            raise RunError(f"--adam-eps is for --optimizer adam, not {self.optimizer}")

    def to_dict(self):
        """The settings as JSON types (tuples become lists)."""
        return {**asdict(self), "hidden": list(self.hidden)}


def _flag(name):
    return name.replace("_", "-")


# -------------------------------------------------------------- building --

def build_model(config, input_dim):
    """The VAE of ``config`` for data of ``input_dim`` features (weights seeded by config.seed)."""
    try:
        return VAE(input_dim, config.hidden, config.latent_dim, config.likelihood,
                   config.obs_var, config.activation, np.dtype(config.dtype), config.seed)
    except ValueError as e:  # an unknown activation or likelihood, a bad obs_var
        raise RunError(str(e)) from None


def build_optimizer(config, params):
    """The optimizer of ``config`` over ``params`` (other hyperparameters at their defaults)."""
    if config.optimizer == "adam":
        return OPTIMIZERS["adam"](params, lr=config.lr, eps=config.adam_eps)
    return OPTIMIZERS[config.optimizer](params, lr=config.lr)


def learning_rate(epoch, lr, schedule):
    """The learning rate of ``epoch`` (1-based): ``lr``, or under the 'iwae'
    schedule lr * 10^(-i/7) in stage i, which lasts 3^i epochs (i = 0..7)."""
    if schedule == "constant":
        return lr
    stage, last_epoch_of_stage = 0, 1
    while epoch > last_epoch_of_stage and stage < 7:
        stage += 1
        last_epoch_of_stage += 3 ** stage
    return lr * 10 ** (-stage / 7)


def train_generator(seed):
    """The one Generator of training (see the module docstring)."""
    return np.random.default_rng((seed, 1))


def eval_generator(stream):
    """A fresh Generator for one of EVAL_STREAMS: the same draws in every run."""
    return np.random.default_rng((EVAL_SEED, EVAL_STREAMS.index(stream)))


def kl_weight(step, beta, warmup_steps):
    """beta_t = beta * min(1, step / warmup_steps); beta when warmup_steps == 0."""
    if warmup_steps <= 0:
        return beta
    return beta * min(1.0, step / warmup_steps)


def eval_inputs(x_test, mode, dtype):
    """The test set as model input (N, D): binarized once, with a fixed seed for 'dynamic'."""
    return binarize(x_test, mode, rng=eval_generator("test_binarize"), dtype=dtype)


# ------------------------------------------------------------- one step --

class TrainingStep:
    """One optimisation step on a batch of uint8 examples (the five lines of
    the module docstring), with its buffers allocated once:

        x_u8  (B, D) uint8          the gathered batch
        x_in  (B, D) model dtype    the model's input
        grads FlatParams            dL/dparams, written by the model

    A smaller (last) batch uses the first rows of the same buffers.
    """

    def __init__(self, model, optimizer, batch_size, binarize_mode="none", objective="elbo", k=1):
        self.model, self.optimizer, self.binarize_mode = model, optimizer, binarize_mode
        self.objective, self.k = objective, k
        self.x_u8 = np.empty((batch_size, model.input_dim), dtype=np.uint8)
        self.x_in = np.empty((batch_size, model.input_dim), dtype=model.dtype)
        self.grads = model.params.zeros_like()

    def __call__(self, x, idx, rng, beta=1.0):
        """Train on the examples ``x[idx]`` (idx: (m,) ints, m <= B); returns
        the batch means (loss, recon, kl) in nats (loss is the objective's).  Raises NonFinite, before the
        optimizer step, on a non-finite loss or a gradient whose squared norm
        is not finite (Adam's g^2 would overflow to inf)."""
        m = idx.shape[0]
        # mode="clip": with an out= array, the default mode="raise" copies
        # through a temporary; the indices of a permutation never need clipping
        np.take(x, idx, axis=0, out=self.x_u8[:m], mode="clip")
        xb = binarize(self.x_u8[:m], self.binarize_mode, rng=rng, dtype=self.model.dtype,
                      out=self.x_in[:m])
        # overflow and NaN are caught below, with a better message than numpy's warnings
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            (loss, recon, kl), grads = self.model.loss_terms_and_grads(
                xb, rng=rng, beta=beta, out=self.grads, objective=self.objective, k=self.k)
            if not math.isfinite(loss):
                raise NonFinite(f"the loss is {loss} (recon {recon}, KL {kl})")
            # one BLAS pass; inf or NaN if any gradient is, or if g^2 overflows
            grad_sq = float(np.dot(grads.flat, grads.flat))
        if not math.isfinite(grad_sq):
            raise NonFinite(f"the gradient is not finite (squared norm {grad_sq})")
        self.optimizer.step(grads, grads_are_scratch=True)   # grads are recomputed next step
        return loss, recon, kl


class NonFinite(ArithmeticError):
    """A step met a non-finite loss or gradient (train_epoch says where)."""


# ------------------------------------------------------------ one epoch --

def train_epoch(model, optimizer, x, rng, *, batch_size=128, binarize_mode="none", beta=1.0,
                warmup_steps=0, first_step=0, epoch=1, progress=None, objective="elbo", k=1):
    """One pass over the uint8 data set ``x`` (N, D) in a fresh random order.

    Every step is a TrainingStep of ``objective`` with ``k`` samples; ``first_step`` is the global step t of the
    first batch (for the KL warm-up), ``epoch`` only labels errors,
    ``progress`` (a progress.Progress) is updated after every step.  Raises
    TrainingDiverged, before the optimizer step, on a non-finite loss or
    gradient.

    Returns a dict of the epoch's means over examples, in nats:
    ``loss`` (the objective: -ELBO by default), ``recon``, ``kl``;
    ``batch_losses`` (list, the loss of each batch), ``beta`` (the last step's KL weight), ``steps``,
    ``seconds`` and ``examples_per_sec``.
    """
    start = time.perf_counter()
    n = x.shape[0]
    steps = -(-n // batch_size)
    step = TrainingStep(model, optimizer, batch_size, binarize_mode, objective, k)
    perm = rng.permutation(n)
    loss_sum = recon_sum = kl_sum = 0.0
    batch_losses = []
    for s in range(steps):
        idx = perm[s * batch_size:(s + 1) * batch_size]
        beta_t = kl_weight(first_step + s, beta, warmup_steps)
        try:
            loss, recon, kl = step(x, idx, rng, beta_t)
        except NonFinite as e:
            raise TrainingDiverged(f"training diverged at epoch {epoch}, step {s + 1}/{steps}: {e}",
                                   epoch, s + 1) from None
        m = idx.shape[0]
        loss_sum += loss * m
        recon_sum += recon * m
        kl_sum += kl * m
        batch_losses.append(loss)
        if progress is not None:
            seen = s * batch_size + m
            progress.update(s + 1, examples=seen, loss=loss_sum / seen)
    seconds = time.perf_counter() - start
    return {"loss": loss_sum / n, "recon": recon_sum / n, "kl": kl_sum / n,
            "batch_losses": batch_losses, "beta": beta_t, "steps": steps,
            "seconds": seconds, "examples_per_sec": n / seconds}


# ----------------------------------------------------------- evaluation --

def final_evaluation(model, x_test, eval_k, stream=None, objective="elbo", k=1):
    """The end-of-run numbers on the test inputs ``x_test`` (N, D) of the model's dtype.

    test -ELBO (with recon and KL), the negative of the bound the training
    ``objective`` maximises with its ``k`` (test_bound_loss: the -ELBO with k
    samples, or -L_k for 'iwae'), the importance-weighted estimate of
    log p(x) with ``eval_k`` samples (Burda et al. 2016; skipped if 0),
    reported as test_nll = -mean log p(x) (positive nats), and the active
    units (Var_x E_q[z_u] > 0.01).  A progress line runs during the
    importance sampling, which dominates (k decoder passes per example).
    """
    start = time.perf_counter()
    elbo = evaluate_elbo(model, x_test, eval_generator("elbo"))
    count, variances = active_units(model, x_test)
    bound = evaluate_bound(model, x_test, objective, k, eval_generator("bound"))
    result = {"test_loss": elbo["loss"], "test_recon": elbo["recon"], "test_kl": elbo["kl"],
              "objective": objective, "k": k, "test_bound_loss": -bound, "test_nll": None, "eval_k": eval_k, "active_units": count,
              "latent_dim": model.latent_dim, "active_unit_variances": variances.tolist()}
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
        for i, i0 in enumerate(range(0, n, chunk)):
            log_px[i0:i0 + chunk] = importance_weighted_log_likelihood(
                model, x_test[i0:i0 + chunk], eval_k, rng)
            progress.update(i + 1, examples=min(n, i0 + chunk))
        progress.close()
        result["test_nll"] = -float(np.mean(log_px))
    now = time.perf_counter()
    result["iw_seconds"], result["eval_seconds"] = now - iw_start, now - start
    return result


# --------------------------------------------------------------- a run --

def data_summary(x_train, x_test, image_shape):
    """Sizes and crc32 checksums of the data a run uses (a resumed run must use the same)."""
    return {"n_train": int(x_train.shape[0]), "n_test": int(x_test.shape[0]),
            "image_shape": list(image_shape),
            "crc32_train": zlib.crc32(np.ascontiguousarray(x_train)),
            "crc32_test": zlib.crc32(np.ascontiguousarray(x_test))}


def fit(config, data, *, resume=False, overwrite=False, plots=True, stream=None):
    """Train, evaluate and plot one run; returns its metrics (as in metrics.json).

    config : RunConfig; its ``out`` is the run's directory.
    data : an MNIST-like object with uint8 ``x_train`` (N, D), ``x_test``,
        ``y_test`` and ``image_shape`` (see mnist.MNIST).
    resume : continue from ``out/checkpoint.npz``; only RESUMABLE_CHANGES
        may differ from the saved config (``epochs`` may grow).  A finished
        run resumed with the same epochs is evaluated (and plotted) again.
    overwrite : start afresh even if ``out`` holds a run (else RunError).
    plots : write the PNGs of plots.plot_run at the end.
    stream : where progress and results are printed (default sys.stdout).

    Each epoch appends a record to metrics["epochs"], prints one line and
    then saves the checkpoint and metrics.json, both atomically.  On a
    non-finite loss or gradient, TrainingDiverged is raised and nothing of
    that epoch is saved: the checkpoint still holds the last good epoch.
    """
    stream = sys.stdout if stream is None else stream
    out = Path(config.out)
    x_train = data.x_train[:config.limit]
    x_test = eval_inputs(data.x_test, config.binarize, np.dtype(config.dtype))
    info = data_summary(x_train, data.x_test, data.image_shape)
    model, optimizer, rng, metrics = _start_run(config, info, out, resume, overwrite)
    done = len(metrics["epochs"])
    steps = -(-x_train.shape[0] // config.batch_size)
    print(_describe(config, model, info, out, done), file=stream, flush=True)

    for epoch in range(done + 1, config.epochs + 1):
        progress = Progress(steps, label=f"epoch {epoch}/{config.epochs}", stream=stream)
        optimizer.lr = learning_rate(epoch, config.lr, config.lr_schedule)
        try:
            stats = train_epoch(model, optimizer, x_train, rng, batch_size=config.batch_size,
                                binarize_mode=config.binarize, beta=config.beta,
                                warmup_steps=config.kl_warmup * steps,
                                first_step=(epoch - 1) * steps, epoch=epoch, progress=progress,
                                objective=config.objective, k=config.k)
            if not math.isfinite(float(np.dot(model.params.flat, model.params.flat))):
                raise TrainingDiverged(f"training diverged in epoch {epoch}: the parameters "
                                       "are no longer finite", epoch, steps)
        except TrainingDiverged as e:
            raise TrainingDiverged(f"{e}.\n{_kept(out, epoch)}  Lower the learning rate "
                                   f"(--lr {config.lr:g} now) and start again (--overwrite).",
                                   e.epoch, e.step) from None
        finally:
            progress.close()
        eval_start = time.perf_counter()
        test = evaluate_elbo(model, x_test, eval_generator("elbo"))
        record = {"epoch": epoch, "train_loss": stats["loss"], "train_recon": stats["recon"],
                  "train_kl": stats["kl"], "test_loss": test["loss"],
                  "test_recon": test["recon"], "test_kl": test["kl"], "beta": stats["beta"],
                  "lr": optimizer.lr,
                  "seconds": stats["seconds"] + time.perf_counter() - eval_start,
                  "train_seconds": stats["seconds"],
                  "examples_per_sec": stats["examples_per_sec"],
                  "train_batch_losses": stats["batch_losses"]}
        metrics["epochs"].append(record)
        print(_epoch_line(record, config), file=stream, flush=True)
        save_checkpoint(out / CHECKPOINT, model, optimizer, rng, epoch, metrics)
        write_json_atomic(out / METRICS, metrics)

    metrics["final"] = final_evaluation(model, x_test, config.eval_k, stream, config.objective,
                                        config.k)
    write_json_atomic(out / METRICS, metrics)
    print(_summary(metrics["final"], len(metrics["epochs"])), file=stream, flush=True)
    if plots:
        from numpyvae.plots import plot_run  # matplotlib only when plotting
        paths = plot_run(out, model, x_test, data.y_test, metrics["epochs"], data.image_shape,
                         eval_generator("samples"))
        print(f"wrote {', '.join(p.name for p in paths)}, {METRICS} and {CHECKPOINT} in {out}",
              file=stream, flush=True)
    return metrics


def _start_run(config, info, out, resume, overwrite):
    """(model, optimizer, rng, metrics): fresh, or restored from out/checkpoint.npz."""
    path = out / CHECKPOINT
    if resume:
        if not path.exists():
            raise RunError(f"nothing to resume: {path} does not exist")
        try:
            saved = load_checkpoint(path)
        except (OSError, ValueError, KeyError) as e:
            raise RunError(f"cannot resume: {path} is unreadable ({e})") from None
        _check_resumable(saved.metrics, saved.epoch, config, info, out)
        model = saved.model
        optimizer = build_optimizer(config, model.params)
        optimizer.load_state_dict(saved.optimizer_state)
        rng = np.random.default_rng()
        rng.bit_generator.state = saved.rng_state
        metrics = {**saved.metrics, "config": config.to_dict(),
                   "resumed_at_epochs": saved.metrics.get("resumed_at_epochs", []) + [saved.epoch]}
        return model, optimizer, rng, metrics
    if path.exists() and not overwrite:
        raise RunError(f"{out} already holds a run ({path.name}): continue it with --resume "
                       "(--epochs may grow), replace it with --overwrite, or choose another --out")
    model = build_model(config, info["image_shape"][0] * info["image_shape"][1])
    out.mkdir(parents=True, exist_ok=True)
    for name in (CHECKPOINT, METRICS):
        (out / name).unlink(missing_ok=True)
    metrics = {"config": config.to_dict(), "data": info,
               "model": {**model.config(), "n_params": int(model.params.flat.size)},
               "epochs": []}
    return model, build_optimizer(config, model.params), train_generator(config.seed), metrics


def _check_resumable(saved, saved_epoch, config, info, out):
    """RunError unless ``config`` and the data may continue the saved run."""
    now = config.to_dict()
    differ = [f"--{_flag(k)} (saved {saved['config'].get(k)!r}, now {now[k]!r})"
              for k in now if k not in RESUMABLE_CHANGES and saved["config"].get(k) != now[k]]
    if differ:
        may_change = ", ".join("--" + _flag(k) for k in RESUMABLE_CHANGES)
        raise RunError(f"cannot resume {out}: settings differ from the saved run's: "
                       f"{'; '.join(differ)}.  Only {may_change} may change; pass the saved "
                       "values, or --overwrite to start afresh.")
    if saved["data"] != info:
        raise RunError(f"cannot resume {out}: the data differ from the saved run's "
                       f"(saved {saved['data']}, now {info})")
    if saved_epoch > config.epochs:
        raise RunError(f"cannot resume {out} with --epochs {config.epochs}: it has already "
                       f"trained {_plural(saved_epoch, 'epoch')}")


def _kept(out, epoch):
    """What the checkpoint holds after a failure in ``epoch``."""
    if epoch > 1:
        return (f"Nothing of epoch {epoch} was saved: {out / CHECKPOINT} still holds "
                f"epoch {epoch - 1}.")
    return "No checkpoint was written."


# ------------------------------------------------------------- printing --

def _describe(config, model, info, out, done):
    arch = "-".join(str(s) for s in (model.input_dim, *model.hidden_dims, model.latent_dim))
    decoder = config.likelihood
    if config.likelihood == "gaussian":
        decoder += f" (variance {config.obs_var})"
    beta = f"beta {config.beta:g}"
    if config.kl_warmup:
        beta += f" (warm-up over {config.kl_warmup:g} epochs)"
    where = f"resuming after epoch {done}" if done else "training"
    objective = objective_name(config.objective, config.k)
    lr = f"lr {config.lr:g}" + (f" ({config.lr_schedule} schedule)"
                                if config.lr_schedule != "constant" else "")
    return (f"VAE {arch} {config.activation}, {decoder} decoder, binarize {config.binarize}, "
            f"{objective}, {beta}; {config.optimizer} {lr}, batch {config.batch_size}, "
            f"{config.dtype}, seed {config.seed}; {info['n_train']:,} train / "
            f"{info['n_test']:,} test examples\n"
            f"{where}: {_plural(config.epochs, 'epoch')} -> {out}")


def _epoch_line(r, config):
    width = len(str(config.epochs))
    line = (f"epoch {r['epoch']:{width}d}/{config.epochs}  train {r['train_loss']:7.2f}  "
            f"test {r['test_loss']:7.2f} (recon {r['test_recon']:6.2f} + KL {r['test_kl']:5.2f})  "
            f"{r['seconds']:.2f} s  {r['examples_per_sec']:,.0f} ex/s")
    line += f"  beta {r['beta']:.3f}" if config.kl_warmup else ""
    return line + (f"  lr {r['lr']:.2e}" if config.lr_schedule != "constant" else "")


def objective_name(objective, k):
    """How a run names its objective, e.g. 'IWAE bound, k=5'."""
    names = {"elbo": "ELBO (closed-form KL)", "elbo-mc": "ELBO (sampled KL)",
             "iwae": "IWAE bound", "wake-sleep": "wake-sleep"}
    return names[objective] + (f", k={k}" if k != 1 else "")


def _summary(final, epochs):
    lines = [f"final (after {_plural(epochs, 'epoch')}), test set, nats per example:",
             f"  -ELBO          {final['test_loss']:8.2f}   (recon {final['test_recon']:.2f} "
             f"+ KL {final['test_kl']:.2f})"]
    if (final["objective"], final["k"]) not in (("elbo", 1), ("wake-sleep", 1)):
        lines.append(f"  -bound         {final['test_bound_loss']:8.2f}   (the training objective: "
                     f"{objective_name(final['objective'], final['k'])})")
    if final["test_nll"] is not None:
        lines.append(f"  -log p(x)      {final['test_nll']:8.2f}   (importance-weighted, "
                     f"k={final['eval_k']}, {format_seconds(final['iw_seconds'])})")
    lines.append(f"  active units   {final['active_units']:5d}/{final['latent_dim']}"
                 "   (Var_x E[z_u|x] > 0.01)")
    return "\n".join(lines)


def _plural(n, noun):
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"
