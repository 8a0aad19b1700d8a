"""The settings of a training run (RunConfig), every check of them, and what they build.

Each setting is a field of RunConfig and a flag of demos/train_mnist.py
(``batch_size`` is ``--batch-size``).  RunConfig checks every value when it
is made: the right type, finite, in range, a known choice, and settings that
only make sense together; a bad one raises RunError naming the flag, so the
command line and the Python API give the same message.
"""

import os
from dataclasses import asdict, dataclass
from os import PathLike, fspath

import numpy as np

from numpyvae.data.binarize import BINARIZE_MODES
from numpyvae.data.datasets import DATASETS
from numpyvae.ops.layers import ACTIVATIONS
from numpyvae.ops.likelihoods import LIKELIHOODS
from numpyvae.objectives import check_free_bits, check_objective
from numpyvae.optim import SGD, Adagrad, AdagradFast, Adam, AdamFast, SGDFast
from numpyvae.util.validate import check_choice, check_float, check_int, check_positive_int
from numpyvae.model.full_covariance_vae import FullCovarianceVAE
from numpyvae.model.two_layer_vae import TwoLayerVAE
from numpyvae.model.vae import VAE

# name -> (textbook form, fast form); runs train with the fast form unless --textbook
OPTIMIZERS = {"adam": (Adam, AdamFast), "adagrad": (Adagrad, AdagradFast), "sgd": (SGD, SGDFast)}
DTYPES = ("float32", "float64")
POSTERIORS = {"diagonal": VAE, "full": FullCovarianceVAE}   # --posterior: q(z|x)'s covariance
LR_SCHEDULES = ("constant", "iwae")           # see trainer.learning_rate
OUTPUT_BIASES = ("zero", "data")              # --output-bias: see data_output_bias
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
    ``activation``, ``stochastic_layers`` (1: the VAE; 2: TwoLayerVAE, whose
    ``hidden`` and ``latent_dim`` are the lower layer's and ``top_hidden``,
    ``top_latent_dim`` the top one's, default (100, 100) and 50, the IWAE
    paper's; None with one layer), ``likelihood`` (one of likelihoods.LIKELIHOODS; the
    Gaussian's ``obs_var`` is a positive number or 'learned', default 1.0,
    and None for the others), ``dtype``, ``seed`` (weights and training
    noise), ``init_std`` (None: each layer's own initialisation; a number S:
    every parameter, biases included, ~ N(0, S^2), as Kingma & Welling),
    ``output_bias`` (OUTPUT_BIASES: 'zero', each layer's own initialisation;
    'data', the decoder's output biases at the logit of the training set's
    mean pixels, as the IWAE authors' code (data_output_bias); Bernoulli
    likelihood only).  Data: ``binarize`` mode, ``limit`` (first N training examples;
    None = all).  Objective: ``objective`` (one of objectives.OBJECTIVES),
    ``k`` (samples of z per example), ``beta`` (KL weight), ``kl_warmup``
    (epochs of linear warm-up; both only for the ELBO objectives),
    ``free_bits`` (the free-bits lambda, nats per latent dimension; 'elbo' only).
    Optimisation: ``optimizer``, ``lr``, ``lr_schedule`` (LR_SCHEDULES),
    ``adam_eps`` (Adam's eps, default ADAM_EPS, None for the other
    optimizers), ``weight_decay`` (lambda: the optimizer steps on
    g + lambda * theta, as if lambda ||theta||^2 / 2 were added to the loss
    per example; Kingma & Welling's N(0, I) prior on the parameters, shared
    among N_train examples, is lambda = 1 / N_train), ``batch_size`` (a
    batch larger than the data set is the whole data set), ``epochs``.
    ``textbook``: train with the textbook forms throughout (the model's and
    the optimizer's; see EncoderDecoder), not the fast ones: the same
    numbers to rounding, slower, and an edit of a textbook function shows.
    Posterior: ``posterior``, q(z|x)'s covariance (POSTERIORS: 'diagonal'
    or 'full', N(mu, L L^T); 'full' does not train with wake-sleep, free
    bits or two stochastic layers).
    Evaluation: ``eval_k`` importance samples for the final log p(x) (0
    skips it).  Data: ``dataset`` (datasets.DATASETS: 'mnist' or 'frey'), read
    from ``data_dir`` (else the download cache); ``out`` is the run's directory.
    """

    epochs: int = 10
    batch_size: int = 128
    hidden: tuple[int, ...] = (400,)
    latent_dim: int = 20
    activation: str = "relu"
    stochastic_layers: int = 1
    top_hidden: tuple[int, ...] | None = None
    top_latent_dim: int | None = None
    likelihood: str = "bernoulli"
    obs_var: float | str | None = None
    binarize: str = "none"
    objective: str = "elbo"
    k: int = 1
    beta: float = 1.0
    kl_warmup: float = 0.0
    free_bits: float = 0.0
    optimizer: str = "adam"
    lr: float = 1e-3
    lr_schedule: str = "constant"
    adam_eps: float | None = None
    weight_decay: float = 0.0
    init_std: float | None = None
    output_bias: str = "zero"
    seed: int = 0
    dtype: str = "float32"
    textbook: bool = False
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
        for name in ("epochs", "batch_size", "latent_dim"):
            setattr(self, name, check_positive_int(getattr(self, name), flag(name)))
        self.seed = check_int(self.seed, flag("seed"), lo=0)
        if not isinstance(self.textbook, bool):
            raise TypeError(f"{flag('textbook')} must be True or False, got {self.textbook!r}")
        self.eval_k = _eval_k(self.eval_k)
        if self.limit is not None:
            self.limit = check_positive_int(self.limit, flag("limit"))
        self.hidden = _hidden_sizes(self.hidden)
        choices = {"activation": tuple(ACTIVATIONS), "likelihood": LIKELIHOODS,
                   "binarize": BINARIZE_MODES, "optimizer": tuple(OPTIMIZERS), "dtype": DTYPES,
                   "lr_schedule": LR_SCHEDULES, "dataset": DATASETS,
                   "posterior": tuple(POSTERIORS), "output_bias": OUTPUT_BIASES}
        for name, valid in choices.items():
            check_choice(getattr(self, name), flag(name), valid)
        self.obs_var = _obs_var(self.obs_var, self.likelihood)
        self.kl_warmup = check_float(self.kl_warmup, flag("kl_warmup"), lo=0)
        self.lr = check_float(self.lr, flag("lr"), lo=0, lo_open=True)
        self.adam_eps = _adam_eps(self.adam_eps, self.optimizer)
        self.weight_decay = check_float(self.weight_decay, flag("weight_decay"), lo=0)
        if self.init_std is not None:
            self.init_std = check_float(self.init_std, flag("init_std"), lo=0, lo_open=True)
        if self.output_bias == "data" and self.likelihood != "bernoulli":
            raise ValueError("--output-bias data sets the logits of --likelihood bernoulli, "
                             f"not {self.likelihood}: use --output-bias zero")
        self.k, self.beta = check_objective(self.objective, self.k, self.beta, flag)
        self.free_bits = check_free_bits(self.free_bits, self.objective, flag)
        if self.objective in ("iwae", "wake-sleep") and self.kl_warmup:
            raise ValueError(f"--objective {self.objective} has no KL weight to warm up: "
                             "--kl-warmup must be 0")
        self._check_stochastic_layers()
        if self.objective not in POSTERIORS[self.posterior].trainable_objectives:
            raise ValueError(f"--posterior {self.posterior} does not train with --objective "
                             f"{self.objective}")
        if self.posterior != "diagonal" and (self.free_bits or self.stochastic_layers != 1):
            raise ValueError(f"--posterior {self.posterior} is for one stochastic layer without "
                             "free bits (free bits clamp a diagonal posterior's KL per dimension)")
        if self.data_dir is not None:
            self.data_dir = _path(self.data_dir, "data_dir")
        self.out = _path(self.out, "out")

    def _check_stochastic_layers(self):
        """--stochastic-layers 1 or 2, and the top layer's sizes with 2 only."""
        self.stochastic_layers = check_int(self.stochastic_layers, flag("stochastic_layers"), lo=1)
        if self.stochastic_layers not in (1, 2):
            raise ValueError(f"--stochastic-layers must be 1 or 2, got {self.stochastic_layers}")
        if self.stochastic_layers == 1:
            if self.top_hidden is not None or self.top_latent_dim is not None:
                raise ValueError("--top-hidden and --top-latent-dim apply to "
                                 "--stochastic-layers 2 only")
            return
        if self.objective == "wake-sleep":
            raise ValueError("--objective wake-sleep is for one stochastic layer: with "
                             "--stochastic-layers 2 use elbo, elbo-mc or iwae")
        self.top_hidden = _hidden_sizes((100, 100) if self.top_hidden is None else self.top_hidden,
                                        "--top-hidden")
        self.top_latent_dim = check_positive_int(50 if self.top_latent_dim is None
                                                 else self.top_latent_dim, flag("top_latent_dim"))

    def to_dict(self):
        """The settings as JSON types (tuples become lists)."""
        return {**asdict(self), "hidden": list(self.hidden),
                "top_hidden": None if self.top_hidden is None else list(self.top_hidden)}


def _hidden_sizes(hidden, name="--hidden"):
    """--hidden (or ``name``) as a non-empty tuple of positive ints."""
    if isinstance(hidden, (str, bytes)) or not hasattr(hidden, "__iter__"):
        raise TypeError(f"{name} must be a sequence of layer sizes such as (400,), got {hidden!r}")
    sizes = tuple(check_positive_int(h, f"{name} sizes") for h in hidden)
    if not sizes:
        raise ValueError(f"{name} needs at least one layer size, e.g. 400 or 200,200")
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


def _eval_k(eval_k):
    """--eval-k: an int >= 0 (0 skips the final log p(x)) whose largest array fits in memory.

    The importance-weighted estimate keeps eval_k float64 log-weights per
    example (evaluate.importance_weighted_log_likelihood_fast); all else is
    bounded by its chunking.  That table may take half of the machine's RAM.
    """
    eval_k = check_int(eval_k, flag("eval_k"), lo=0)
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):   # no sysconf (Windows): nothing to compare
        return eval_k
    most = memory // 2 // 8
    if eval_k > most:
        raise ValueError(f"--eval-k {eval_k} needs {8 * eval_k / 2**30:,.0f} GiB of log-weights "
                         f"per test example, more than half of this machine's "
                         f"{memory / 2**30:,.0f} GiB: use at most {most:,} (the literature "
                         "uses 5000)")
    return eval_k


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
    --objective, --k, --lr-schedule, --adam-eps, --dataset, --weight-decay,
    --init-std, --textbook, --stochastic-layers, --posterior and --output-bias existed
    trained on MNIST with the ELBO, k = 1, a constant learning rate, Adam's eps 1e-8,
    no weight decay, each layer's own init, the fast forms, one stochastic layer, a
    diagonal posterior and zero output biases; they also saved
    --obs-var 1.0 for a Bernoulli decoder and an --adam-eps for other
    optimizers, which this version records as None (unused).  Runs saved
    before --free-bits trained without free bits (0)."""
    saved = {"objective": "elbo", "k": 1, "lr_schedule": "constant", "dataset": "mnist",
             "weight_decay": 0.0, "init_std": None, "textbook": False, "free_bits": 0.0,
             "stochastic_layers": 1, "top_hidden": None, "top_latent_dim": None,
             "posterior": "diagonal", "output_bias": "zero", **saved}
    if saved.get("optimizer") == "adam":
        saved.setdefault("adam_eps", ADAM_EPS)
    elif saved.get("adam_eps") in (None, ADAM_EPS):
        saved["adam_eps"] = None
    if saved.get("likelihood") == "bernoulli" and saved.get("obs_var") == 1.0:
        saved["obs_var"] = None
    return saved


# -------------------------------------------------------------- building --

def build_model(config, input_dim):
    """The VAE of ``config`` (its --posterior; with --stochastic-layers 2 the
    TwoLayerVAE) for data of ``input_dim`` features (weights seeded by config.seed;
    with ``init_std`` every parameter redrawn from N(0, init_std^2) with
    default_rng((seed, 0))).  ``output_bias`` needs the training set, so it is
    not applied here: run.fit.start_training, which every run starts through,
    applies it."""
    args = (input_dim, config.hidden, config.latent_dim, config.likelihood,
            1.0 if config.obs_var is None else config.obs_var, config.activation,
            np.dtype(config.dtype), config.seed, config.textbook)
    try:
        if config.stochastic_layers == 2:
            model = TwoLayerVAE(*args, top_hidden_dims=config.top_hidden,
                                top_latent_dim=config.top_latent_dim)
        else:
            model = POSTERIORS[config.posterior](*args)
    except MemoryError as e:
        raise RunError(f"the model of --hidden {','.join(map(str, config.hidden))} "
                       f"--latent-dim {config.latent_dim} does not fit in memory ({e})") from None
    if config.init_std is not None:
        init_rng = np.random.default_rng((config.seed, 0))
        model.params.flat[...] = init_rng.normal(0.0, config.init_std, model.params.flat.size)
    return model


def data_output_bias(x_train):
    """The decoder's output biases of --output-bias data: the logit of each pixel's
    mean intensity over the uint8 training set x_train (N, D), clipped to
    [0.001, 0.999] (so that a pixel that is always 0 starts at -6.9, not -inf):

        b_d = log(p_d / (1 - p_d)),   p_d = clip(mean_n x_nd / 255, 0.001, 0.999)

    A decoder whose last hidden layer carries no information yet then outputs
    the factorised Bernoulli model that fits the data best, sigmoid(b_d) = p_d,
    instead of sigmoid(0) = 1/2 for every pixel.  The IWAE authors' released
    code (Burda et al. 2016, github.com/yburda/iwae) starts its Bernoulli
    decoder this way.  Returns (D,) float64."""
    p = np.clip(x_train.mean(axis=0, dtype=np.float64) / 255.0, 0.001, 0.999)
    return np.log(p / (1 - p))


def build_optimizer(config, params):
    """The optimizer of ``config`` over ``params``, its fast form unless config.textbook
    (other hyperparameters at their defaults)."""
    textbook_form, fast_form = OPTIMIZERS[config.optimizer]
    optimizer = textbook_form if config.textbook else fast_form
    if config.optimizer == "adam":
        return optimizer(params, lr=config.lr, eps=config.adam_eps,
                         weight_decay=config.weight_decay)
    return optimizer(params, lr=config.lr, weight_decay=config.weight_decay)
