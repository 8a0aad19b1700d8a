"""Argument checks shared by the public functions: each raises an error that
names the argument as the caller wrote it."""

import numpy as np


def check_generator(rng, name="rng"):
    """Raise a ValueError unless ``rng`` is a numpy.random.Generator."""
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"{name} must be a numpy.random.Generator (np.random.default_rng(seed)), "
                         f"got {rng!r}")
    return rng


def check_positive_int(value, name):
    """``value`` as an int if it is an integer >= 1 (not a bool), else a ValueError."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def check_vae(model, what):
    """Raise a ValueError unless ``model`` is a VAE (has an encoder q(z|x)); ``what`` needs it."""
    if getattr(model, "kind", None) != "vae":
        raise ValueError(f"{what} needs a VAE (an encoder q(z|x)), got {type(model).__name__}")
    return model
