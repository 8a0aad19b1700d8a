"""The settings of a training run (RunConfig), every check of them, and what they build.

Each setting is a field of RunConfig and a flag of demos/train_mnist.py
(``batch_size`` is ``--batch-size``).  RunConfig checks every value when it
is made: the right type, finite, in range, a known choice, and settings that
only make sense together; a bad one raises RunError naming the flag, so the
command line and the Python API give the same message.
"""

from dataclasses import asdict, dataclass
from os import PathLike, fspath

import numpy as np

from numpyvae.data.binarize import BINARIZE_MODES
from numpyvae.data.datasets import DATASETS
from numpyvae.ops.layers import ACTIVATIONS
from numpyvae.ops.likelihoods import LIKELIHOODS
from numpyvae.objectives import OBJECTIVES
from numpyvae.optim import SGD, Adagrad, AdamFast
from numpyvae.util.validate import check_choice, check_float, check_int, check_positive_int
from numpyvae.model.full_covariance_vae import FullCovarianceVAE
from numpyvae.model.vae import VAE

OPTIMIZERS = {"adam": AdamFast, "adagrad": Adagrad, "sgd": SGD}   # AdamFast: Adam's fast form
DTYPES = ("float32", "float64")
POSTERIORS = {"diagonal": VAE, "full": FullCovarianceVAE}   # --posterior: q(z|x)'s covariance
LR_SCHEDULES = ("constant", "iwae")           # see trainer.learning_rate
ADAM_EPS = 1e-8

# Settings that may differ when a run is resumed: they do not change training.
RESUMABLE_CHANGES = ("epochs", "eval_k", "data_dir", "out")


class RunError(ValueError):
    """A run cannot start or go on for a reason the user can fix: a bad
    setting, missing or bad data, an output directory that does not fit, a
    checkpoint that cannot be resumed.  Messages name settings by their
    ``demos/train_mnist.py`` flags (exit status 2)."""


class SettingTypeError(RunError, TypeError):
    """A setting of the wrong Python type (a RunError, and a TypeError for the API)."""


def flag(name):
    """The command-line flag of a RunConfig field: 'batch_size' -> '--batch-size'."""
    return "--" + name.replace("_", "-")


@dataclass
class RunConfig:
    """Every setting of a run; the defaults are those of the PyTorch VAE example.

    Model: ``hidden`` layer sizes (the decoder mirrors them), ``latent_dim``,
    ``activation``, ``likelihood`` (one of likelihoods.LIKELIHOODS; the
    Gaussian's ``obs_var`` is a positive number or 'learned', default 1.0,
    and None for the others), ``dtype``, ``seed`` (weights and training
    noise).  Data: ``binarize`` mode, ``limit`` (first N training examples;
    None = all).  Objective: ``objective`` (one of objectives.OBJECTIVES),
    ``k`` (samples of z per example), ``beta`` (KL weight), ``kl_warmup``
    (epochs of linear warm-up; both only for the ELBO objectives).
    Optimisation: ``optimizer``, ``lr``, ``lr_schedule`` (LR_SCHEDULES),
    ``adam_eps`` (Adam's eps, default ADAM_EPS, None for the other
    optimizers), ``batch_size`` (a batch larger than the data set is the
    whole data set), ``epochs``.
    Posterior: ``posterior``, q(z|x)'s covariance (POSTERIORS: 'diagonal'
    or 'full', N(mu, L L^T); 'full' does not train with wake-sleep).
    Evaluation: ``eval_k`` importance samples for the final log p(x) (0
    skips it).  Data: ``dataset`` (datasets.DATASETS: 'mnist' or 'frey'), read
    from ``data_dir`` (else the download cache); ``out`` is the run's directory.
    """

    epochs: int = 10
    batch_size: int = 128
    hidden: tuple[int, ...] = (400,)
    latent_dim: int = 20
    activation: str = "relu"
    likelihood: str = "bernoulli"
    obs_var: float | str | None = None
    binarize: str = "none"
    objective: str = "elbo"
    k: int = 1
    beta: float = 1.0
    kl_warmup: float = 0.0
    optimizer: str = "adam"
    lr: float = 1e-3
    lr_schedule: str = "constant"
    adam_eps: float | None = None
    seed: int = 0
    dtype: str = "float32"
    limit: int | None = None
    eval_k: int = 1000
    dataset: str = "mnist"
    data_dir: str | None = None
    out: str = "runs/mnist"
    posterior: str = "diagonal"

    def __post_init__(self):
        try:
            self._check()
        except TypeError as e:
            raise SettingTypeError(str(e)) from None
        except ValueError as e:
            raise RunError(str(e)) from None

    def _check(self):
        """Check every field, normalising it to its JSON type (see the class docstring)."""
        for name in ("epochs", "batch_size", "latent_dim", "k"):
            setattr(self, name, check_positive_int(getattr(self, name), flag(name)))
        self.seed = check_int(self.seed, flag("seed"), lo=0)
        self.eval_k = check_int(self.eval_k, flag("eval_k"), lo=0)
        if self.limit is not None:
            self.limit = check_positive_int(self.limit, flag("limit"))
        self.hidden = _hidden_sizes(self.hidden)
        choices = {"activation": tuple(ACTIVATIONS), "likelihood": LIKELIHOODS,
                   "binarize": BINARIZE_MODES, "optimizer": tuple(OPTIMIZERS), "dtype": DTYPES,
                   "objective": OBJECTIVES, "lr_schedule": LR_SCHEDULES, "dataset": DATASETS,
                   "posterior": tuple(POSTERIORS)}
        for name, valid in choices.items():
            check_choice(getattr(self, name), flag(name), valid)
        self.obs_var = _obs_var(self.obs_var, self.likelihood)
        self.beta = check_float(self.beta, flag("beta"), lo=0)
        self.kl_warmup = check_float(self.kl_warmup, flag("kl_warmup"), lo=0)
        self.lr = check_float(self.lr, flag("lr"), lo=0, lo_open=True)
        self.adam_eps = _adam_eps(self.adam_eps, self.optimizer)
        if self.objective in ("iwae", "wake-sleep") and (self.beta != 1 or self.kl_warmup):
            raise ValueError(f"--objective {self.objective} has no KL weight: --beta must be 1 "
                             "and --kl-warmup 0")
        if self.objective == "wake-sleep" and self.k != 1:
            raise ValueError(f"--objective wake-sleep draws one z per example: --k must be 1, "
                             f"got {self.k}")
        if self.objective not in POSTERIORS[self.posterior].trainable_objectives:
            raise ValueError(f"--posterior {self.posterior} does not train with --objective "
                             f"{self.objective}")
        if self.data_dir is not None:
            self.data_dir = _path(self.data_dir, "data_dir")
        self.out = _path(self.out, "out")

    def to_dict(self):
        """The settings as JSON types (tuples become lists)."""
        return {**asdict(self), "hidden": list(self.hidden)}


def _hidden_sizes(hidden):
    """--hidden as a non-empty tuple of positive ints."""
    if isinstance(hidden, (str, bytes)) or not hasattr(hidden, "__iter__"):
        raise TypeError(f"--hidden must be a sequence of layer sizes such as (400,), got {hidden!r}")
    sizes = tuple(check_positive_int(h, "--hidden sizes") for h in hidden)
    if not sizes:
        raise ValueError("--hidden needs at least one layer size, e.g. 400 or 200,200")
    return sizes


def _obs_var(obs_var, likelihood):
    """--obs-var: a positive number or 'learned' for the Gaussian decoders (default 1.0 for
    'gaussian', 'learned' for 'gaussian-sigmoid', the paper's Frey Face decoder), else None."""
    if likelihood == "bernoulli":
        if obs_var is not None:
            raise ValueError("--obs-var applies to the Gaussian likelihoods only, not bernoulli")
        return None
    if obs_var is None:
        return 1.0 if likelihood == "gaussian" else "learned"
    if isinstance(obs_var, str):
        return check_choice(obs_var, "--obs-var", ("learned",))
    return check_float(obs_var, "--obs-var", lo=0, lo_open=True)


def _adam_eps(adam_eps, optimizer):
    """--adam-eps: a positive number for --optimizer adam (default ADAM_EPS), else None."""
    if optimizer != "adam":
        if adam_eps is not None:
            raise ValueError(f"--adam-eps applies to --optimizer adam only, not {optimizer}")
        return None
    return ADAM_EPS if adam_eps is None else check_float(adam_eps, "--adam-eps", lo=0,
                                                         lo_open=True)


def _path(value, name):
    if not isinstance(value, (str, PathLike)):
        raise TypeError(f"{flag(name)} must be a path, got {value!r}")
    text = fspath(value)
    if not isinstance(text, str) or not text:
        raise ValueError(f"{flag(name)} must be a non-empty path, got {value!r}")
    return text


def resume_differences(saved, config):
    """The flags whose saved value (``saved``: a run's metrics["config"]) differs
    from ``config``'s, as 'flag (saved X, now Y)' strings; RESUMABLE_CHANGES
    may differ.  A saved setting this version does not know counts as a difference."""
    now = config.to_dict()
    saved = as_this_version(saved)
    differ = [f"{flag(k)} (saved {saved.get(k)!r}, now {now[k]!r})"
              for k in now if k not in RESUMABLE_CHANGES and saved.get(k) != now[k]]
    return differ + [f"{k!r} (saved {saved[k]!r}, unknown to this version of numpyvae)"
                     for k in saved if k not in now]


def as_this_version(saved):
    """A run's saved settings as this version writes them.  Runs saved before
    --objective, --k, --lr-schedule, --adam-eps, --dataset and --posterior existed
    trained on MNIST with the ELBO, k = 1, a constant learning rate, Adam's eps 1e-8
    and a diagonal posterior; they also saved
    --obs-var 1.0 for a Bernoulli decoder and an --adam-eps for other
    optimizers, which this version records as None (unused)."""
    saved = {"objective": "elbo", "k": 1, "lr_schedule": "constant", "dataset": "mnist",
             "posterior": "diagonal", **saved}
    if saved.get("optimizer") == "adam":
        saved.setdefault("adam_eps", ADAM_EPS)
    elif saved.get("adam_eps") in (None, ADAM_EPS):
        saved["adam_eps"] = None
    if saved.get("likelihood") == "bernoulli" and saved.get("obs_var") == 1.0:
        saved["obs_var"] = None
    return saved


# -------------------------------------------------------------- building --

def build_model(config, input_dim):
    """The VAE of ``config`` (its --posterior) for data of ``input_dim`` features (weights
    seeded by config.seed)."""
    try:
        return POSTERIORS[config.posterior](
            input_dim, config.hidden, config.latent_dim, config.likelihood,
            1.0 if config.obs_var is None else config.obs_var, config.activation,
            np.dtype(config.dtype), config.seed)
    except MemoryError as e:
        raise RunError(f"the model of --hidden {','.join(map(str, config.hidden))} "
                       f"--latent-dim {config.latent_dim} does not fit in memory ({e})") from None


def build_optimizer(config, params):
    """The optimizer of ``config`` over ``params`` (other hyperparameters at their defaults)."""
    if config.optimizer == "adam":
        return OPTIMIZERS["adam"](params, lr=config.lr, eps=config.adam_eps)
    return OPTIMIZERS[config.optimizer](params, lr=config.lr)
