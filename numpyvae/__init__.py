"""numpyvae: a variational autoencoder with every gradient written by hand in NumPy.

The lesson: ops/ (the math, forward/backward pairs: layers, gaussian,
likelihoods), model/ (params, mlp, encoder_decoder, vae, autoencoder),
objectives.py (the losses and their backward passes), optim.py,
gradcheck.py, evaluate.py, trainer.py.  The machinery: run/ (a training
run of demos/train_mnist.py), data/ (the data sets), util/ (checks, files,
BLAS threads).  Start at objectives.py and follow the names it imports.
"""

from numpyvae.model.autoencoder import Autoencoder
from numpyvae.model.encoder_decoder import load_model
from numpyvae.model.full_covariance_vae import FullCovarianceVAE
from numpyvae.optim import SGD, Adagrad, AdagradFast, Adam, AdamFast, SGDFast
from numpyvae.model.params import FlatParams
from numpyvae.model.two_layer_vae import TwoLayerVAE
from numpyvae.model.vae import VAE

__all__ = ["VAE", "FullCovarianceVAE", "TwoLayerVAE", "Autoencoder", "load_model", "Adam",
           "AdamFast", "Adagrad", "AdagradFast", "SGD", "SGDFast", "FlatParams"]
__version__ = "0.1.0"
