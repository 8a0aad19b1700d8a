"""numpyvae: a variational autoencoder with every gradient written by hand in NumPy.

Start at vae.py (the model) and objectives.py (the losses it trains with and
their backward passes), then follow the names they import: gaussian.py
(reparameterization, KL), likelihoods.py (p(x|z)), mlp.py and layers.py
(forward/backward pairs), optim.py, gradcheck.py.
"""

from numpyvae.model.autoencoder import Autoencoder
from numpyvae.model.encoder_decoder import load_model
from numpyvae.model.full_covariance_vae import FullCovarianceVAE
from numpyvae.optim import SGD, Adagrad, Adam, AdamFast
from numpyvae.model.params import FlatParams
from numpyvae.model.vae import VAE

__all__ = ["VAE", "FullCovarianceVAE", "Autoencoder", "load_model", "Adam", "AdamFast", "Adagrad", "SGD", "FlatParams"]
__version__ = "0.1.0"
