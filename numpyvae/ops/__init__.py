"""The math, one operation at a time: each a forward/backward pair with a cache.

layers.py       linear, the activations (relu, tanh, sigmoid, softplus), init
gaussian.py     the reparameterization trick, the KL terms, the Gaussian log-density
full_gaussian.py  the same for a full covariance L L^T: factor, z = mu + L eps, log q, the KLs
likelihoods.py  log p(x|z) of the decoders: Bernoulli, Gaussian (fixed, learned variance)
"""
