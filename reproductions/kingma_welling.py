"""Kingma & Welling (2014), Section 5 and Appendix C: the experiments' protocol, as settings.

    data        MNIST (60000 train / 10000 test) and Frey Face (frey.py: 1600 / 365)
    model       one hidden layer of tanh units in encoder and decoder: 500 for MNIST,
                200 for Frey Face; a Bernoulli decoder for MNIST, for Frey Face a Gaussian
                whose means are squashed by a sigmoid, with a learned log-variance
                (likelihoods.SigmoidGaussianLikelihood, 'gaussian-sigmoid')
    init        every parameter, weights and biases, ~ N(0, init_std^2)
    methods     'aevb': estimator B (the closed-form KL), L = 1 sample of z per datapoint;
                'wake-sleep': Hinton et al. (1995) on the same networks (objectives.wake_sleep)
    prior       p(theta) = N(0, I) on the parameters (approximate MAP): per datapoint the
                minimised loss is  -ELBO(x) + ||theta||^2 / (2 N_train),  Adagrad's weight
                decay 1 / N_train (the same for wake-sleep: its gradient, plus theta / N_train)
    optimizer   Adagrad (optim.Adagrad), minibatches of 100; the global step size is chosen
                from {0.01, 0.02, 0.1}: each candidate trains the same initial model on the
                same minibatches for ``select_samples`` training samples, the one with the
                highest training lower bound then is the run (its first samples included)
    measure     the lower bound per datapoint (estimator B, one z per datapoint, the KL in
                closed form; the parameter prior not included) on the training and the test
                set, at log-spaced numbers of training samples evaluated (Figure 2's x-axis;
                a sample is one datapoint of a minibatch, wake-sleep's dreams not counted)

Where the paper is silent, a choice, each a field of ``Settings``:
    init_std = 0.01   N(0, 0.01) read as a standard deviation (so a variance of 1e-4), as
                      in Kingma's later code (anglepy's init_w(std=1e-2)); init_std = 0.1
                      is the other reading
    mnist_binarize    'dynamic': every minibatch a fresh Bernoulli(pixel / 255) draw (the
                      lower bound is then one on a binary data set); 'threshold' and 'none'
                      (grey levels in the Bernoulli cross-entropy) are the alternatives
    frey              pixels / 255 in [0, 1] (Kingma's code divides by 256); the split of frey.py
    select_samples    "the first few iterations": 20000 samples (200 minibatches) per candidate
    evaluation        the training bound over the whole training set; each evaluation draws
                      the same binarization and noise (fixed-seed generators), so the curve
                      moves only with the parameters
    minibatches       a new random order of the training set every epoch, from the seed and
                      the epoch number; N_train mod 100 examples left out of each epoch
                      (none for MNIST and Frey Face)

One run is (dataset, method, N_z): ``RunSpec``.  ``train_run`` trains it to a
budget of training samples, resumably: its directory holds checkpoint.npz
(model, Adagrad state, the Generator's state, samples so far, the record)
and record.json, both rewritten atomically at every evaluation and every
``save_seconds``; a run resumed from them continues bit for bit.

It runs on the harness of demos/train_mnist.py; this module is the protocol
alone.  A candidate step size is a RunConfig (``run_config``: init_std and
weight_decay are settings there); its model, optimizer and Generator come
from run.fit.start_training (settings.build_model, build_optimizer) or, on
resume, run.fit.restore_training; it trains with trainer.train_epoch (the
hooks ``order`` and ``batches`` give the per-epoch order and the stops
between evaluation points) and is saved with run.checkpoint.
"""

import json
import math
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

import paper_values
from numpyvae.data.binarize import BINARIZE_MODES, binarize
from numpyvae.evaluate import elbo_terms
from numpyvae.run.checkpoint import load_checkpoint, save_checkpoint, write_json_atomic
from numpyvae.run.fit import EVAL_SEED, data_summary, restore_training, start_training
from numpyvae.run.progress import Progress, format_seconds
from numpyvae.run.settings import RunConfig, RunError
from numpyvae.trainer import TrainingDiverged, train_epoch
from numpyvae.util.validate import NonFiniteError

# per data set: the paper's architecture and decoder, and Figure 2's latent sizes
DATASETS = {
    "mnist": {"hidden": 500, "likelihood": "bernoulli", "obs_var": None,
              "latent_dims": (3, 5, 10, 20, 200)},
    "frey": {"hidden": 200, "likelihood": "gaussian-sigmoid", "obs_var": "learned",
             "latent_dims": (2, 5, 10, 20)},
}
METHODS = {"aevb": "elbo", "wake-sleep": "wake-sleep"}   # method -> objectives.OBJECTIVES
EXTRA_RUNS = (("mnist", "aevb", 2),)                      # Figures 4 and 5: a 2-d MNIST manifold
CHECKPOINT, RECORD = "checkpoint.npz", "record.json"
PIECE_MINIBATCHES = 100       # train_run checks the time for a save after this many minibatches


class ProtocolError(RunError):
    """Settings, a run name or a run directory that cannot be used; the message says which.
    (The harness's own such errors are its RunError.)"""


class RunDiverged(RuntimeError):
    """A non-finite loss or gradient; the message names the run, the samples and the step size."""


@dataclass(frozen=True)
class RunSpec:
    """One curve of Figure 2: a data set, a method and the latent dimension N_z."""

    dataset: str
    method: str
    latent_dim: int

    @property
    def name(self):
        """'mnist-aevb-z3': the run's directory name."""
        return f"{self.dataset}-{self.method}-z{self.latent_dim}"

    @property
    def label(self):
        return f"{self.dataset} {self.method} N_z={self.latent_dim}"


def all_runs():
    """Every run of the reproduction: Figure 2's (each data set, both methods, its N_z),
    then EXTRA_RUNS."""
    runs = [RunSpec(d, m, z) for d, spec in DATASETS.items() for z in spec["latent_dims"]
            for m in METHODS]
    return runs + [RunSpec(*r) for r in EXTRA_RUNS]


def select_runs(only=None):
    """The runs matching ``only``: None (all), or patterns 'dataset[:method[:N_z]]', any
    part '*', e.g. ['frey', 'mnist:aevb:3', 'mnist:*:20'].  An unknown pattern is an error."""
    runs = all_runs()
    if not only:
        return runs
    chosen = set()
    for pattern in only:
        parts = pattern.split(":")
        matches = [r for r in runs if len(parts) <= 3 and all(
            want in ("*", str(have)) for want, have in zip(parts, (r.dataset, r.method, r.latent_dim)))]
        if not matches:
            raise ProtocolError(
                f"--only {pattern!r} matches no run; patterns are dataset[:method[:N_z]] with "
                f"dataset in {tuple(DATASETS)}, method in {tuple(METHODS)}, e.g. mnist:aevb:3 "
                "or frey or mnist:*:20")
        chosen.update(matches)
    return [r for r in runs if r in chosen]


@dataclass(frozen=True)
class Settings:
    """The protocol's free choices (see the module docstring); messages name the demo's flags.

    hidden : None for the paper's sizes (500 MNIST, 200 Frey Face), else this size for both
    """

    init_std: float = 0.01
    step_sizes: tuple = (0.01, 0.02, 0.1)
    select_samples: int = 20_000
    batch_size: int = 100
    mnist_binarize: str = "dynamic"
    weight_prior: bool = True
    hidden: int | None = None
    points_per_decade: int = 4
    seed: int = 0

    def __post_init__(self):
        object.__setattr__(self, "step_sizes", tuple(float(s) for s in self.step_sizes))
        if not (math.isfinite(self.init_std) and self.init_std > 0):
            raise ProtocolError(f"--init-std must be a positive number, got {self.init_std!r}")
        if not self.step_sizes or not all(math.isfinite(s) and s > 0 for s in self.step_sizes):
            raise ProtocolError(f"--step-sizes must be positive numbers, got {self.step_sizes!r}")
        for flag, value in (("--select-samples", self.select_samples),
                            ("--batch-size", self.batch_size),
                            ("--hidden", 1 if self.hidden is None else self.hidden),
                            ("--points-per-decade", self.points_per_decade)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ProtocolError(f"{flag} must be a positive integer, got {value!r}")
        if self.select_samples % self.batch_size:
            raise ProtocolError(f"--select-samples ({self.select_samples}) must be a multiple "
                                f"of --batch-size ({self.batch_size})")
        if self.mnist_binarize not in BINARIZE_MODES:
            raise ProtocolError(f"--mnist-binarize must be one of {BINARIZE_MODES}, "
                                f"got {self.mnist_binarize!r}")

    def to_dict(self):
        return {**asdict(self), "step_sizes": list(self.step_sizes)}

    def binarize_mode(self, dataset):
        return self.mnist_binarize if dataset == "mnist" else "none"


# ------------------------------------------------------------------ pieces --

def run_config(spec, settings, step_size, n_train):
    """The run of ``spec`` under one step size as the harness's RunConfig (what
    demos/train_mnist.py runs): the paper's tanh network and decoder, float32,
    parameters ~ N(0, init_std^2) (settings.build_model), Adagrad with the step
    size and weight decay 1/N_train (settings.build_optimizer): the gradient of
    the per-datapoint share of -log N(theta; 0, I), ||theta||^2 / (2 N_train)."""
    arch = DATASETS[spec.dataset]
    return RunConfig(hidden=(settings.hidden or arch["hidden"],), latent_dim=spec.latent_dim,
                     activation="tanh", likelihood=arch["likelihood"], obs_var=arch["obs_var"],
                     binarize=settings.binarize_mode(spec.dataset),
                     objective=METHODS[spec.method], optimizer="adagrad", lr=step_size,
                     weight_decay=1.0 / n_train if settings.weight_prior else 0.0,
                     init_std=settings.init_std, batch_size=settings.batch_size,
                     seed=settings.seed, dtype="float32", dataset=spec.dataset)


def checkpoint_samples(budget, settings):
    """The numbers of training samples at which a run is evaluated, up to ``budget``:
    select_samples (where the curve starts), every 10^(j / points_per_decade) above it
    rounded up to whole minibatches, and ``budget`` rounded up to whole minibatches."""
    b, per = settings.batch_size, settings.points_per_decade
    budget = b * math.ceil(budget / b)
    points = {min(settings.select_samples, budget), budget}
    j = 0
    while (s := b * math.ceil(10 ** (j / per) / b)) < budget:
        if s > settings.select_samples:
            points.add(s)
        j += 1
    return sorted(points)


def lower_bound(model, x_u8, binarize_mode, stream, chunk=1000):
    """Mean ELBO per datapoint (estimator B, one z each) of the uint8 data x_u8 (N, D),
    in nats.  Generator default_rng((EVAL_SEED, stream)), fresh at every call: the same
    binarization and noise at every evaluation.  ``chunk`` rows at a time."""
    rng = np.random.default_rng((EVAL_SEED, stream))
    total = 0.0
    for i0 in range(0, x_u8.shape[0], chunk):
        xb = binarize(x_u8[i0:i0 + chunk], binarize_mode, rng=rng, dtype=model.dtype)
        logpx, kl = elbo_terms(model, xb, rng)
        total += float(np.sum(logpx - kl))
    return total / x_u8.shape[0]


def evaluate(model, data, binarize_mode, samples):
    """A curve point, {'samples', 'train', 'test'}: the lower bounds per datapoint now."""
    return {"samples": samples, "train": lower_bound(model, data.x_train, binarize_mode, 0),
            "test": lower_bound(model, data.x_test, binarize_mode, 1)}


def epoch_order(seed, epoch, n):
    """The training set's order in ``epoch`` (0-based): a permutation of n from (seed, 2, epoch)."""
    return np.random.default_rng((seed, 2, epoch)).permutation(n)


def train_to(target, config, model, optimizer, rng, x_train, samples):
    """Train from ``samples`` to ``target`` training samples (multiples of the batch
    size B) with trainer.train_epoch; returns ``target``.  Raises TrainingDiverged.

    Minibatch t = samples / B (0-based) is batch j of epoch e, (e, j) = divmod(t, N // B),
    of the order epoch_order(seed, e, N) cut to whole minibatches (N mod B examples left
    out): train_epoch's hooks ``order`` and ``batches``.  The rng (trainer.train_generator:
    binarization, eps, wake-sleep's dreams), model, optimizer and ``samples`` are the
    whole state of training.
    """
    b, n = config.batch_size, x_train.shape[0]
    steps_per_epoch = n // b
    if steps_per_epoch < 1:
        raise ProtocolError(f"{config.dataset} has {n} training examples, fewer than "
                            f"one minibatch (--batch-size {b})")
    while samples < target:
        epoch, j = divmod(samples // b, steps_per_epoch)
        stop = min(steps_per_epoch, j + (target - samples) // b)
        train_epoch(model, optimizer, x_train, rng, batch_size=b, binarize_mode=config.binarize,
                    beta=config.beta, epoch=epoch + 1, objective=config.objective, k=config.k,
                    order=epoch_order(config.seed, epoch, n)[:steps_per_epoch * b],
                    batches=range(j, stop))
        samples += (stop - j) * b
    return samples


# ---------------------------------------------------------------- one run --

def train_run(spec, data, settings, run_dir, budget, stream=None, save_seconds=60.0):
    """Train ``spec`` on ``data`` (an ImageDataset) to ``budget`` training samples,
    continuing from ``run_dir`` if it holds a checkpoint; returns the run's record:

        run, dataset, method, latent_dim, objective, settings, data (sizes and checksums),
        selection: {step size: training bound after select_samples (None if it diverged)},
        step_size (the chosen one), curve: [{samples, train, test, seconds}], samples,
        seconds (training and evaluation time so far, all step-size candidates included)

    The step-size selection comes first (``select_step_size``); the curve
    starts where it ends, at select_samples, and goes on at the points of
    ``checkpoint_samples``.  The checkpoint (checkpoint.save_checkpoint, its
    epoch the samples so far) and record.json are written after the
    selection, at every evaluation and at least every ``save_seconds``.
    """
    stream = sys.stdout if stream is None else stream
    run_dir = Path(run_dir)
    resumed = _resume(spec, data, settings, run_dir)
    config, model, optimizer, rng, record = resumed or select_step_size(spec, data, settings,
                                                                        stream)
    if resumed is None:
        _save(run_dir, model, optimizer, rng, record)
    samples = first = record["samples"]
    points = [p for p in checkpoint_samples(int(budget), settings) if p > samples]
    if not points:
        print(f"{spec.label}: done ({samples:,} samples)", file=stream, flush=True)
        return record
    b = settings.batch_size
    progress = Progress((points[-1] - first) // b, step_name="minibatch", unit="samples",
                        label=f"{spec.label} (step size {config.lr:g})", stream=stream)
    clock = time.perf_counter()

    def save(point=None):
        nonlocal clock
        now = time.perf_counter()
        record["seconds"] += now - clock
        clock = now
        if point is not None:
            record["curve"].append({**point, "seconds": record["seconds"]})
        record["samples"] = samples
        _save(run_dir, model, optimizer, rng, record)

    try:
        for target in points:
            while samples < target:       # in pieces, to save on time
                samples = train_to(min(target, samples + PIECE_MINIBATCHES * b), config, model,
                                   optimizer, rng, data.x_train, samples)
                progress.update((samples - first) // b, examples=samples - first)
                if time.perf_counter() - clock > save_seconds:
                    save()
            save(evaluate(model, data, config.binarize, samples))
            progress.close()
            print(_point_line(spec, record["curve"][-1]), file=stream, flush=True)
    except (TrainingDiverged, NonFiniteError) as e:
        raise RunDiverged(f"{spec.label}, step size {config.lr:g}: {e}") from None
    finally:
        progress.close()
    return record


def select_step_size(spec, data, settings, stream=None):
    """The paper's choice of Adagrad's global step size, by the training bound.

    Each of settings.step_sizes trains from the same initial parameters on
    the same minibatches and noise for select_samples training samples; the
    highest training lower bound wins (ties: the smaller step size; a
    candidate that diverges is out).  Returns the winner's (config, model,
    optimizer, rng, record), the record's first curve point the winner's,
    at select_samples.
    """
    stream = sys.stdout if stream is None else stream
    start = time.perf_counter()
    best, selection = None, {}
    n_train = data.x_train.shape[0]
    for step_size in settings.step_sizes:
        config = run_config(spec, settings, step_size, n_train)
        model, optimizer, rng = start_training(config, data.x_train)
        try:
            train_to(settings.select_samples, config, model, optimizer, rng, data.x_train, 0)
            bound = lower_bound(model, data.x_train, config.binarize, 0)
        except (TrainingDiverged, NonFiniteError) as e:
            why = e if isinstance(e, TrainingDiverged) else f"the training bound overflowed ({e})"
            print(f"  {spec.label}, step size {step_size:g}: {why}: out of the selection",
                  file=stream, flush=True)
            selection[f"{step_size:g}"] = None
            continue
        selection[f"{step_size:g}"] = bound
        print(f"{spec.label}: step size {step_size:g}: training bound {bound:.2f} after "
              f"{settings.select_samples:,} samples", file=stream, flush=True)
        if best is None or bound > best[0]:
            best = (bound, (config, model, optimizer, rng))
    if best is None:
        raise RunDiverged(f"{spec.label}: every step size in {settings.step_sizes} diverged "
                          "within --select-samples; try smaller --step-sizes or --init-std")
    config, model, optimizer, rng = best[1]
    point = evaluate(model, data, config.binarize, settings.select_samples)
    point["seconds"] = time.perf_counter() - start
    record = {"run": spec.name, "dataset": spec.dataset, "method": spec.method,
              "latent_dim": spec.latent_dim, "objective": METHODS[spec.method],
              "settings": settings.to_dict(),
              "data": data_summary(data.x_train, data.x_test, data.image_shape),
              "selection": selection, "step_size": config.lr, "curve": [point],
              "samples": settings.select_samples, "seconds": point["seconds"]}
    print(_point_line(spec, point), file=stream, flush=True)
    return config, model, optimizer, rng, record


def _resume(spec, data, settings, run_dir):
    """(config, model, optimizer, rng, record) from run_dir's checkpoint (through
    fit.restore_training), or None if there is none."""
    path = run_dir / CHECKPOINT
    if not path.exists():
        return None
    try:
        saved = load_checkpoint(path)
    except (OSError, ValueError, KeyError) as e:
        raise ProtocolError(f"cannot resume {run_dir}: {path.name} is unreadable ({e}); "
                            "remove the directory or pass --overwrite") from None
    record = saved.metrics
    differ = [f"{k} (saved {record['settings'].get(k)!r}, now {v!r})"
              for k, v in settings.to_dict().items() if record["settings"].get(k) != v]
    if differ:
        raise ProtocolError(f"cannot resume {run_dir}: its settings differ: {'; '.join(differ)}. "
                            "Pass the saved settings, --overwrite to start it afresh, or "
                            "another --out")
    if record["data"] != data_summary(data.x_train, data.x_test, data.image_shape):
        raise ProtocolError(f"cannot resume {run_dir}: it was trained on other data "
                            f"({record['data']})")
    config = run_config(spec, settings, record["step_size"], data.x_train.shape[0])
    return (config, *restore_training(saved, config, path), {**record, "samples": saved.epoch})


def _save(run_dir, model, optimizer, rng, record):
    run_dir.mkdir(parents=True, exist_ok=True)
    save_checkpoint(run_dir / CHECKPOINT, model, optimizer, rng, record["samples"], record)
    write_json_atomic(run_dir / RECORD, record)


def _point_line(spec, point):
    return (f"{spec.label}: {point['samples']:9.3g} samples  lower bound train "
            f"{point['train']:9.2f}  test {point['test']:9.2f}  "
            f"({format_seconds(point['seconds'])})")


def load_record(run_dir):
    """The record.json of a run directory, or None if it has none."""
    path = Path(run_dir) / RECORD
    return json.loads(path.read_text()) if path.exists() else None


# ----------------------------------------------------- the whole experiment --

RUNS_DIR, RESULTS = "runs", "results.json"
FIGURES = {"bounds": "figure2_bounds.png", "manifolds": "figure4_manifolds.png",
           "samples": "figure5_samples.png"}
SAMPLE_LATENT_DIMS = (2, 5, 10, 20)                  # Figure 5's MNIST models
DATASET_TITLES = {"mnist": "MNIST", "frey": "Frey Face"}


def reproduce(out_dir, runs, data, settings, budgets, stream=None, overwrite=False):
    """Train ``runs`` (RunSpecs) one after the other, each to ``budgets[dataset]``
    training samples, in ``out_dir``/runs/<run name>/, resuming what is there
    (``overwrite``: start the given runs afresh); after each run rewrite
    out_dir/results.json; at the end draw the figures.  ``data`` maps each
    data set of ``runs`` to its ImageDataset.  Returns (results, figure paths):
    results as in results.json, with every run found in out_dir.
    """
    stream = sys.stdout if stream is None else stream
    out_dir = Path(out_dir)
    results = write_results(out_dir)
    for i, spec in enumerate(runs, 1):
        run_dir = out_dir / RUNS_DIR / spec.name
        if overwrite:
            for name in (CHECKPOINT, RECORD):
                (run_dir / name).unlink(missing_ok=True)
        print(f"[run {i}/{len(runs)}] {spec.label}: to {budgets[spec.dataset]:,} training "
              f"samples in {run_dir}", file=stream, flush=True)
        train_run(spec, data[spec.dataset], settings, run_dir, budgets[spec.dataset], stream)
        results = write_results(out_dir)
    return results, draw_figures(out_dir)


def figure2_rows(records, paper=None):
    """plots.plot_bound_curves's rows from {run name: record}: a panel per (data set, N_z)
    with a run, the paper's points beside the curves (paper_values.kw_figure2, or ``paper``)."""
    paper = paper_values.kw_figure2() if paper is None else paper
    rows = []
    for dataset, spec in DATASETS.items():
        panels = []
        for latent_dim in spec["latent_dims"]:
            curves, reference = {}, {}
            for method in METHODS:
                record = records.get(RunSpec(dataset, method, latent_dim).name)
                if record and record["curve"]:
                    curves[method] = tuple(np.array([p[k] for p in record["curve"]])
                                           for k in ("samples", "train", "test"))
                if method in curves and (points := paper.get((dataset, method, latent_dim))):
                    reference[method] = tuple(np.array(getattr(points, k))
                                              for k in ("samples", "train", "test"))
            if curves:
                panels.append((latent_dim, curves, reference))
        if panels:
            rows.append((DATASET_TITLES[dataset], panels))
    return rows


def _results_records(out_dir):
    """The records of out_dir/results.json, {} if there is none."""
    path = Path(out_dir) / RESULTS
    return json.loads(path.read_text())["runs"] if path.exists() else {}


def collect_records(out_dir):
    """{run name: record} of every run in out_dir/runs that has a record.json, in
    all_runs() order."""
    return {spec.name: record for spec in all_runs()
            if (record := load_record(Path(out_dir) / RUNS_DIR / spec.name)) is not None}


def write_results(out_dir):
    """Write out_dir/results.json, {"paper": ..., "runs": collect_records(out_dir)};
    returns that dict."""
    results = {"paper": "Kingma & Welling (2014), Auto-Encoding Variational Bayes, Section 5",
               "runs": collect_records(out_dir)}
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    write_json_atomic(Path(out_dir) / RESULTS, results)
    return results


def draw_figures(out_dir):
    """Figures 2, 4 and 5 from the runs in out_dir/runs, as far as they exist:
    Figure 2 from every record (from out_dir/results.json when out_dir holds no runs,
    as the committed results/kingma_welling), with the paper's points; Figure 4 from
    the AEVB N_z = 2 models (Frey Face, MNIST); Figure 5 from the MNIST AEVB models of
    SAMPLE_LATENT_DIMS.  Returns the paths written."""
    from numpyvae.run.plots import plot_bound_curves, plot_manifolds, plot_sample_panels

    out_dir = Path(out_dir)
    records = collect_records(out_dir) or _results_records(out_dir)
    paths = []
    if rows := figure2_rows(records):
        paths.append(plot_bound_curves(out_dir / FIGURES["bounds"], rows))

    def model_of(dataset, latent_dim):
        path = out_dir / RUNS_DIR / RunSpec(dataset, "aevb", latent_dim).name / CHECKPOINT
        return load_checkpoint(path).model if path.exists() else None

    manifolds = [(f"{DATASET_TITLES[d]} (AEVB, N_z = 2)", m.decode,
                  tuple(records[RunSpec(d, "aevb", 2).name]["data"]["image_shape"]), m.dtype)
                 for d in ("frey", "mnist") if (m := model_of(d, 2)) is not None]
    if manifolds:
        paths.append(plot_manifolds(out_dir / FIGURES["manifolds"], manifolds))
    rng = np.random.default_rng((EVAL_SEED, 2))
    samples = [(f"MNIST, N_z = {z}", m.sample(100, rng),
                tuple(records[RunSpec("mnist", "aevb", z).name]["data"]["image_shape"]))
               for z in SAMPLE_LATENT_DIMS if (m := model_of("mnist", z)) is not None]
    if samples:
        paths.append(plot_sample_panels(out_dir / FIGURES["samples"], samples))
    return paths
