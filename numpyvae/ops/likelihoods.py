"""Decoders p(x|z): the log-likelihood of the data given the decoder output.

The decoder MLP maps z to an unconstrained output ``out`` (N, K); a
likelihood turns it into a distribution over x (N, D) and gives

    log_prob_forward(x, out)     -> logp (N,), cache      log p(x|z) per example
    log_prob_backward(dlogp, cache) -> dout (N, K)         dL/dout
    mean(out)                    -> E[x|z] (N, D)
    sample(out, rng)             -> x ~ p(x|z) (N, D)    a draw, for wake-sleep's sleep phase

Every log-density is exact (normalised), so -ELBO is a real bound on -log p(x).
BernoulliLikelihoodFast is the fast form of BernoulliLikelihood (the same
numbers in fewer passes; tests/test_fast_forms.py proves they agree), and
the one make_likelihood gives the models.
"""

import numpy as np

from numpyvae.ops.gaussian import gaussian_log_density_backward, gaussian_log_density_forward
from numpyvae.ops.layers import log1p_fast, sigmoid, softplus
from numpyvae.util.validate import check_float


class BernoulliLikelihood:
    """x_d ~ Bernoulli(sigmoid(l_d)) with logits ``out = l`` (K = D):

        log p(x|l) = sum_d [ x_d * l_d - softplus(l_d) ]

    (never ``log(sigmoid(l))``, which is -inf once sigmoid underflows;
    layers.softplus is the stable form).  For grey-level x in [0, 1] this is
    the binary cross-entropy used by the PyTorch VAE example.  The models
    use BernoulliLikelihoodFast, the same numbers in fewer passes, unless
    built with textbook=True.
    """

    name = "bernoulli"

    def n_outputs(self, data_dim):
        return data_dim

    def check_range(self, lo, hi):
        """Data with values in [lo, hi] must lie in [0, 1]."""
        if not (0.0 <= lo and hi <= 1.0):
            raise ValueError(
                f"Bernoulli likelihood needs data in [0, 1], got values in [{lo}, {hi}] "
                "(scale pixels to [0, 1], or use likelihood='gaussian')")

    def log_prob_forward(self, x, logits):
        """x, logits : (..., D) -> logp : (...,), cache (x, logits):

            logp = sum_d [ x_d * l_d - softplus(l_d) ]

        (Where x_d = 1 and l_d >> 0 a term is the difference of two numbers
        near l_d, accurate to eps * l_d absolutely; the fast form's
        rewriting cancels exactly there.)
        """
        return np.sum(x * logits - softplus(logits), axis=-1), (x, logits)

    def log_prob_backward(self, dlogp, cache):
        """dlogp : (...,) -> dlogits (..., D):

            dlogits = dlogp * (x - sigmoid(logits))

        since d/dl [x l - softplus(l)] = x - sigmoid(l).
        """
        x, logits = cache
        return dlogp[..., None] * (x - sigmoid(logits))

    def mean(self, logits):
        """E[x|z] = sigmoid(logits), the pixel probabilities."""
        return sigmoid(logits)

    def sample(self, logits, rng):
        """x_d ~ Bernoulli(sigmoid(l_d)): x_d = [u_d < sigmoid(l_d)], u_d ~ U[0, 1);
        (N, D) of 0s and 1s in the dtype of ``logits``."""
        u = rng.random(logits.shape, dtype=logits.dtype)
        return (u < sigmoid(logits)).astype(logits.dtype)


class BernoulliLikelihoodFast(BernoulliLikelihood):
    """BernoulliLikelihood computed in fewer passes over the data: the same
    log p(x|l) and gradient (to rounding), what the models train with.

    Forward: with max(l, 0) = (l + |l|) / 2 and softplus(l) = max(l, 0) +
    log1p(exp(-|l|)), each term is rewritten exactly as

        x l - softplus(l) = (x - 1/2) l - |l|/2 - log1p(exp(-|l|)),

    computed in place in three temporaries, and the sum over d is the matrix-
    vector product t @ 1 (this runs over k * N * D values in the
    importance-weighted evaluation).  The log1p is layers.log1p_fast, from
    NumPy's vectorized log (its log1p is about 8x slower in float32).

    Backward: with y = exp(-|l|), which the forward computed, sigmoid(l) is
    s = 1 / (1 + y) for l >= 0 and y / (1 + y) = 1 - s for l < 0, so

        x - sigmoid(l) = (x - 1/2) - sign(l) (s - 1/2),      s - 1/2 in [0, 1/2),

    five cheap in-place passes (a reciprocal, a subtraction, copysign, the
    subtraction from x - 1/2, the product with dlogp), no transcendental
    function: the forward caches 1 + y.  Each entry is off by at most about
    2 eps in absolute terms, as 1/2 - tanh(l/2)/2 would be.

    The cache is (x - 1/2 (N, D), logits (..., D), 1 + exp(-|l|) (..., D)).
    """

    def log_prob_forward(self, x, logits):
        centred = x - 0.5
        t = centred * logits          # (x - 1/2) l
        a = np.abs(logits)
        a *= -0.5
        t += a                        # x l - max(l, 0)
        a *= 2
        np.exp(a, out=a)              # y = exp(-|l|)
        log1p_y, one_plus_y = log1p_fast(a)
        t -= log1p_y                  # log1p(exp(-|l|)); 1 + y is cached for the backward
        return t @ np.ones(t.shape[-1], dtype=t.dtype), (centred, logits, one_plus_y)

    def log_prob_backward(self, dlogp, cache):
        centred, logits, one_plus_y = cache
        d = np.divide(1, one_plus_y)  # s = 1 / (1 + exp(-|l|)) = sigmoid(|l|)
        d -= 0.5
        np.copysign(d, logits, out=d)  # sign(l) (s - 1/2) = sigmoid(l) - 1/2
        np.subtract(centred, d, out=d)  # (x - 1/2) - (sigmoid(l) - 1/2)
        d *= dlogp[..., None]
        return d


class GaussianLikelihood:
    """x ~ N(mean, diag(var)).

    ``obs_var`` a float: fixed variance, ``out = mean`` (K = D); with
    obs_var = 1 this is the "MSE" decoder, -log p = ||x - mean||^2 / 2 + D/2 log(2 pi).
    ``obs_var = "learned"``: ``out = [mean, logvar]`` (K = 2D), a learned
    per-pixel variance.  log p is gaussian.gaussian_log_density_forward.
    """

    name = "gaussian"

    def __init__(self, obs_var=1.0, dtype=np.float64):
        self.learned = isinstance(obs_var, str) and obs_var == "learned"
        if not self.learned:
            if isinstance(obs_var, str):
                raise ValueError(f"obs_var must be a positive number or 'learned', got {obs_var!r}")
            # a plain float: JSON-serialisable in config()
            obs_var = check_float(obs_var, "obs_var", lo=0, lo_open=True)
            self.fixed_logvar = np.asarray(np.log(obs_var), dtype=dtype)
        self.obs_var = obs_var

    def n_outputs(self, data_dim):
        return 2 * data_dim if self.learned else data_dim

    def check_range(self, lo, hi):
        """Any finite data is valid (finiteness is checked by the model)."""

    def _split(self, out):
        if self.learned:
            half = out.shape[-1] // 2
            return out[..., :half], out[..., half:]
        return out, self.fixed_logvar

    def log_prob_forward(self, x, out):
        """x : (..., D), out : (..., K) -> logp : (...,); the cache is
        gaussian_log_density_forward's, (x - mean, exp(-logvar))."""
        mean, logvar = self._split(out)
        return gaussian_log_density_forward(x, mean, logvar)

    def log_prob_backward(self, dlogp, cache):
        """dout = dmean (fixed variance) or [dmean, dlogvar] (learned), see
        gaussian.gaussian_log_density_backward."""
        dmean, dlogvar = gaussian_log_density_backward(dlogp, cache)
        return np.concatenate([dmean, dlogvar], axis=-1) if self.learned else dmean

    def mean(self, out):
        """E[x|z] = mean, the first D outputs."""
        return self._split(out)[0]

    def sample(self, out, rng):
        """x = mean + exp(logvar / 2) * n,  n ~ N(0, I): (N, D) in the dtype of ``out``."""
        mean, logvar = self._split(out)
        noise = rng.standard_normal(mean.shape, dtype=mean.dtype)
        noise *= np.exp(0.5 * logvar)
        return noise + mean


class SigmoidGaussianLikelihood(GaussianLikelihood):
    """Kingma & Welling's Frey Face decoder (2014, Section 5 and Appendix C.2):
    a Gaussian whose means are squashed into (0, 1) by a sigmoid,

        x ~ N(m, diag(exp(logvar))),   m = sigmoid(a),

    with ``out = [a, logvar]`` (K = 2D) for ``obs_var = "learned"`` (the
    paper's decoder: log sigma^2 is a second linear output of the MLP), or
    ``out = a`` (K = D) and a fixed variance ``obs_var``.  Name
    'gaussian-sigmoid'.  The log-density is gaussian.gaussian_log_density_forward
    at m; the backward chains its dmean through the sigmoid:

        da = dmean * m * (1 - m)        (dlogvar as for the plain Gaussian)

    The cache holds the Gaussian's cache and m (N, D).
    """

    name = "gaussian-sigmoid"

    def log_prob_forward(self, x, out):
        """x : (..., D), out : (..., K) -> logp : (...,); the cache is
        (gaussian_log_density_forward's cache, m)."""
        a, logvar = self._split(out)
        m = sigmoid(a)
        logp, gaussian_cache = gaussian_log_density_forward(x, m, logvar)
        return logp, (gaussian_cache, m)

    def log_prob_backward(self, dlogp, cache):
        """dout = [da, dlogvar] (learned variance) or da (fixed), da = dmean * m * (1 - m)."""
        gaussian_cache, m = cache
        dout = super().log_prob_backward(dlogp, gaussian_cache)  # [dmean, dlogvar] or dmean
        dout[..., :m.shape[-1]] *= m * (1 - m)
        return dout

    def mean(self, out):
        """E[x|z] = m = sigmoid(a)."""
        return sigmoid(self._split(out)[0])

    def sample(self, out, rng):
        """A draw x ~ p(x|z) = m + exp(logvar / 2) * e, e ~ N(0, I), of out's dtype, (..., D)."""
        a, logvar = self._split(out)
        noise = rng.standard_normal(a.shape, dtype=out.dtype)
        noise *= np.exp(0.5 * logvar)
        noise += sigmoid(a)
        return noise


LIKELIHOODS = ("bernoulli", "gaussian", "gaussian-sigmoid")


def make_likelihood(name, obs_var=1.0, dtype=np.float64, textbook=False):
    """One of LIKELIHOODS: 'bernoulli', 'gaussian' or 'gaussian-sigmoid' (the two
    Gaussians with ``obs_var`` a float or 'learned'), in the fast form where there
    is one (BernoulliLikelihoodFast) unless ``textbook``."""
    if name == "bernoulli":
        return BernoulliLikelihood() if textbook else BernoulliLikelihoodFast()
    if name == "gaussian":
        return GaussianLikelihood(obs_var, dtype)
    if name == "gaussian-sigmoid":
        return SigmoidGaussianLikelihood(obs_var, dtype)
    raise ValueError(f"unknown likelihood {name!r}; choose one of {LIKELIHOODS}")
