"""What every model here shares: an encoder MLP, a decoder MLP and a likelihood
p(x|z) over one parameter buffer, input checks, decoding, and the model file.

    encoder : x (N, D) -> encoder output (N, E)      E = L (autoencoder) or 2L (VAE: [mu, logvar])
    decoder : z (M, L) -> decoder output (M, K)      the parameters of p(x|z), see likelihoods.py

Subclasses (autoencoder.Autoencoder, vae.VAE) say what the encoder output
means and how the loss is made; the objectives that train a VAE live apart,
in objectives.py.  A model file is one .npz: 'config' (JSON of the
constructor arguments, with the model's ``kind``) and 'param/<name>' arrays;
``load_model`` rebuilds any kind from it.
"""

import inspect
import json
import math
import numbers

import numpy as np

from numpyvae.util.files import load_npz, save_npz_atomic
from numpyvae.ops.layers import ACTIVATIONS
from numpyvae.ops.likelihoods import LIKELIHOODS, make_likelihood
from numpyvae.model.mlp import MLP
from numpyvae.model.params import FlatParams
from numpyvae.util.validate import (NonFiniteError, check_choice, check_int, check_plain_array,
                                    check_positive_int)

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))

# kind -> class, filled in by every subclass as it is defined (see __init_subclass__)
MODEL_KINDS = {}


class EncoderDecoder:
    """input_dim -> hidden_dims -> encoder output; latent_dim -> reversed(hidden_dims) -> p(x|z).

    Parameters
    ----------
    input_dim : int >= 1, D
    hidden_dims : sequence of ints >= 1, hidden layer sizes of the encoder
        (the decoder mirrors them); () for linear networks
    latent_dim : int >= 1, L
    likelihood : one of likelihoods.LIKELIHOODS, 'bernoulli' or 'gaussian'
    obs_var : positive float or 'learned', the Gaussian decoder's variance
        (the other likelihoods have none: leave it at 1.0)
    activation : one of layers.ACTIVATIONS
    dtype : np.float32 (training default) or np.float64 (gradient checks)
    seed : int >= 0, seeds the weight initialisation
    textbook : bool, compute with the textbook forms throughout (layers.ACTIVATIONS,
        linear_backward, BernoulliLikelihood) instead of the fast forms the
        models train with by default: the same numbers to rounding, slower, and
        an edit of a textbook function then changes what the model computes

    A wrong type raises a TypeError, a wrong value a ValueError, naming the
    argument.
    """

    kind = None

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        MODEL_KINDS[cls.kind] = cls

    def __init__(self, input_dim, hidden_dims=(400,), latent_dim=20, likelihood="bernoulli",
                 obs_var=1.0, activation="relu", dtype=np.float32, seed=0, textbook=False):
        try:
            self.dtype = np.dtype(dtype)
        except TypeError:
            raise TypeError(f"dtype must be float32 or float64, got {dtype!r}") from None
        if self.dtype not in FLOAT_DTYPES:
            raise ValueError(f"dtype must be float32 or float64, got {self.dtype}")
        self.input_dim = check_positive_int(input_dim, "input_dim")
        self.latent_dim = check_positive_int(latent_dim, "latent_dim")
        if isinstance(hidden_dims, (str, bytes)) or not hasattr(hidden_dims, "__iter__"):
            raise TypeError(f"hidden_dims must be a sequence of layer sizes such as (400,), "
                            f"got {hidden_dims!r}")
        self.hidden_dims = tuple(check_positive_int(h, "hidden_dims sizes") for h in hidden_dims)
        self.activation = check_choice(activation, "activation", tuple(ACTIVATIONS))
        self.seed = check_int(seed, "seed", lo=0)
        if not isinstance(textbook, (bool, np.bool_)):
            raise TypeError(f"textbook must be True or False, got {textbook!r}")
        self.textbook = bool(textbook)
        check_choice(likelihood, "likelihood", LIKELIHOODS)
        if likelihood == "bernoulli" and not (isinstance(obs_var, numbers.Real) and obs_var == 1):
            raise ValueError(f"obs_var is the variance of a Gaussian likelihood; "
                             f"likelihood='bernoulli' has none, got obs_var={obs_var!r}")
        self.likelihood = make_likelihood(likelihood, obs_var, self.dtype, self.textbook)
        self.encoder = MLP("encoder", (self.input_dim, *self.hidden_dims,
                                       self.encoder_outputs()), activation, self.textbook)
        self.decoder = MLP("decoder", (self.latent_dim, *self.hidden_dims[::-1],
                                       self.likelihood.n_outputs(self.input_dim)), activation,
                           self.textbook)
        self.params = FlatParams({**self.encoder.param_shapes(), **self.decoder.param_shapes()},
                                 self.dtype)
        rng = np.random.default_rng(seed)
        self.encoder.init_params(self.params, rng)
        self.decoder.init_params(self.params, rng)

    def encoder_outputs(self):
        """E, the width of the encoder output."""
        raise NotImplementedError

    def config(self):
        """The constructor arguments and the kind, JSON-serialisable."""
        return {"kind": self.kind, "input_dim": self.input_dim, "hidden_dims": list(self.hidden_dims),
                "latent_dim": self.latent_dim, "likelihood": self.likelihood.name,
                "obs_var": getattr(self.likelihood, "obs_var", 1.0),
                "activation": self.activation, "dtype": self.dtype.name, "seed": self.seed,
                "textbook": self.textbook}

    # ------------------------------------------------------------- checks --

    def check_input(self, x, name="x", width=None, data=True):
        """Raise a ValueError naming the problem unless ``x`` is a finite
        (N, width) array of the model's dtype with N >= 1 (and, for data,
        valid for the likelihood, e.g. in [0, 1] for Bernoulli); a TypeError
        if it is not a plain numpy array of numbers (validate.check_plain_array)."""
        width = self.input_dim if width is None else width
        check_plain_array(x, name)
        if x.ndim != 2 or x.shape[1] != width or x.shape[0] < 1:
            raise ValueError(f"{name} must have shape (N, {width}) with N >= 1, got {x.shape}")
        if x.dtype != self.dtype:
            raise ValueError(f"{name} has dtype {x.dtype} but the model is {self.dtype}; "
                             f"convert it with {name}.astype(np.{self.dtype.name})")
        # min/max propagate NaN, so two reductions also prove every value finite.
        lo, hi = np.min(x), np.max(x)
        if not (np.isfinite(lo) and np.isfinite(hi)):
            raise ValueError(f"{name} contains NaN or inf")
        if data:
            self.likelihood.check_range(float(lo), float(hi))

    # ------------------------------------------------------------ decoder --

    def decoder_forward(self, x, z):
        """log p(x|z) per example: x (N, D), z (N, L) -> logpx (N,), cache."""
        out, dec_cache = self.decoder.forward(self.params, z)
        logpx, lik_cache = self.likelihood.log_prob_forward(x, out)
        return logpx, (dec_cache, lik_cache)

    def decoder_backward(self, dlogpx, cache, grads):
        """dlogpx (N,) -> dz (N, L); writes the decoder's gradients into ``grads``."""
        dec_cache, lik_cache = cache
        dout = self.likelihood.log_prob_backward(dlogpx, lik_cache)
        return self.decoder.backward(grads, dout, dec_cache)

    def decode(self, z):
        """z (N, L) -> mean of p(x|z) (N, D): pixel probabilities for Bernoulli."""
        self.check_input(z, "z", self.latent_dim, data=False)
        return self.likelihood.mean(self.decoder.forward(self.params, z)[0])

    def check_finite(self, x, values, grads=None):
        """Raise validate.NonFiniteError, saying what overflowed and what to do,
        unless every entry of ``values`` (description -> float or array) and
        every gradient in ``grads`` is finite.  The loss functions call it on
        what they computed from the finite input ``x``."""
        bad = [what for what, value in values.items() if not np.all(np.isfinite(value))]
        if grads is not None:
            with np.errstate(over="ignore", invalid="ignore"):   # the square may overflow
                if not math.isfinite(float(np.dot(grads.flat, grads.flat))):
                    bad.append("the gradients")
        if not bad:
            return
        largest = float(np.max(np.abs(x)))
        if largest > 10:
            advice = (f"x holds values as large as {largest:g}: scale the data to about unit "
                      "range (e.g. pixels / 255)")
        else:
            advice = ("with x in a unit range, the weights (diverged?), beta or obs_var are too "
                      "large or too small for the numbers to fit")
        raise NonFiniteError(f"{' and '.join(bad)} overflowed {self.dtype} (NaN or inf) for "
                             f"finite input: {advice}")

    def grad_buffer(self, out=None):
        """A zeroed FlatParams for the gradients, or ``out`` (checked) to write them into."""
        if out is None:
            return self.params.zeros_like()
        if not isinstance(out, FlatParams):
            raise TypeError("out must be a FlatParams with the layout of model.params "
                            f"(e.g. model.params.zeros_like()), got {type(out).__name__}")
        if not self.params.same_layout(out):
            raise ValueError("out must be a FlatParams with the layout of model.params "
                             "(e.g. model.params.zeros_like())")
        return out

    # ------------------------------------------------------- save and load --

    def save(self, path):
        """Write architecture and weights to one .npz file, atomically."""
        save_npz_atomic(path, {"config": json.dumps(self.config()),
                               **{f"param/{k}": v for k, v in self.params.items()}})

    @staticmethod
    def load(path):
        """Rebuild a model written by ``save`` (any kind: autoencoder or VAE)."""
        return load_model(path)


def load_model(path):
    """The model saved at ``path`` by ``save`` (or inside a training checkpoint)."""
    return model_from_arrays(load_npz(path, "numpyvae model file"), source=path)


def model_from_arrays(arrays, source="checkpoint"):
    """Build a model from the arrays of a saved file: 'config' + 'param/<name>'.

    Whatever is wrong with them (a config that is not JSON, a setting this
    version does not know or rejects, a missing or misshapen parameter)
    raises a ValueError that starts with ``source``."""
    if "config" not in arrays:
        raise ValueError(f"{source}: not a numpyvae model file (no 'config' entry)")
    try:
        config = json.loads(str(arrays["config"]))
    except ValueError as e:
        raise ValueError(f"{source}: the model config is not JSON ({e})") from None
    if not isinstance(config, dict):
        raise ValueError(f"{source}: the model config is not a JSON object")
    kind = config.pop("kind", None)
    if not isinstance(kind, str) or kind not in MODEL_KINDS:
        raise ValueError(f"{source}: unknown model kind {kind!r}")
    cls = MODEL_KINDS[kind]
    unknown = sorted(set(config) - set(inspect.signature(cls).parameters))
    if unknown:
        raise ValueError(f"{source}: the model config has settings this version of numpyvae "
                         f"does not know: {', '.join(unknown)}")
    try:
        model = cls(**config)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{source}: the model config is not valid ({e})") from None
    for name, p in model.params.items():
        key = f"param/{name}"
        if key not in arrays:
            raise ValueError(f"{source}: missing parameter {name!r}")
        if arrays[key].shape != p.shape:
            raise ValueError(f"{source}: parameter {name!r} has shape {arrays[key].shape}, "
                             f"expected {p.shape}")
        if arrays[key].dtype.kind != "f":
            raise ValueError(f"{source}: parameter {name!r} holds {arrays[key].dtype}, "
                             "expected floats")
        p[...] = arrays[key]
    return model
