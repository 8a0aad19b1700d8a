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

import json

import numpy as np

from numpyvae.files import load_npz, save_npz_atomic
from numpyvae.likelihoods import make_likelihood
from numpyvae.mlp import MLP
from numpyvae.params import FlatParams

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))

# kind -> class, filled in by every subclass as it is defined (see __init_subclass__)
MODEL_KINDS = {}


class EncoderDecoder:
    """input_dim -> hidden_dims -> encoder output; latent_dim -> reversed(hidden_dims) -> p(x|z).

    Parameters
    ----------
    input_dim : int, D
    hidden_dims : sequence of int, hidden layer sizes of the encoder (the
        decoder mirrors them)
    latent_dim : int, L
    likelihood : 'bernoulli' or 'gaussian'
    obs_var : float or 'learned', the Gaussian decoder's variance
    activation : one of layers.ACTIVATIONS
    dtype : np.float32 (training default) or np.float64 (gradient checks)
    seed : int, seeds the weight initialisation
    """

    kind = None

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        MODEL_KINDS[cls.kind] = cls

    def __init__(self, input_dim, hidden_dims=(400,), latent_dim=20, likelihood="bernoulli",
                 obs_var=1.0, activation="relu", dtype=np.float32, seed=0):
        self.dtype = np.dtype(dtype)
        if self.dtype not in FLOAT_DTYPES:
            raise ValueError(f"dtype must be float32 or float64, got {self.dtype}")
        self.input_dim, self.latent_dim = int(input_dim), int(latent_dim)
        self.hidden_dims = tuple(int(h) for h in hidden_dims)
        self.activation, self.seed = activation, seed
        self.likelihood = make_likelihood(likelihood, obs_var, self.dtype)
        self.encoder = MLP("encoder", (self.input_dim, *self.hidden_dims,
                                       self.encoder_outputs()), activation)
        self.decoder = MLP("decoder", (self.latent_dim, *self.hidden_dims[::-1],
                                       self.likelihood.n_outputs(self.input_dim)), activation)
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
                "activation": self.activation, "dtype": self.dtype.name, "seed": self.seed}

    # ------------------------------------------------------------- checks --

    def check_input(self, x, name="x", width=None, data=True):
        """Raise a ValueError naming the problem unless ``x`` is a finite
        (N, width) array of the model's dtype with N >= 1 (and, for data,
        valid for the likelihood, e.g. in [0, 1] for Bernoulli)."""
        width = self.input_dim if width is None else width
        if not isinstance(x, np.ndarray):
            raise ValueError(f"{name} must be a numpy array, got {type(x).__name__}")
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

    def grad_buffer(self, out=None):
        """A zeroed FlatParams for the gradients, or ``out`` (checked) to write them into."""
        if out is None:
            return self.params.zeros_like()
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
    """Build a model from the arrays of a saved file: 'config' + 'param/<name>'."""
    if "config" not in arrays:
        raise ValueError(f"{source}: not a numpyvae model file (no 'config' entry)")
    config = json.loads(str(arrays["config"]))
    kind = config.pop("kind", None)
    if kind not in MODEL_KINDS:
        raise ValueError(f"{source}: unknown model kind {kind!r}")
    model = MODEL_KINDS[kind](**config)
    for name, p in model.params.items():
        key = f"param/{name}"
        if key not in arrays:
            raise ValueError(f"{source}: missing parameter {name!r}")
        if arrays[key].shape != p.shape:
            raise ValueError(f"{source}: parameter {name!r} has shape {arrays[key].shape}, "
                             f"expected {p.shape}")
        p[...] = arrays[key]
    return model
