"""Training objectives: a loss and its gradients, computed by hand from a model's parts.

A VAE (vae.py) supplies three parts and this module combines them:

    model.encoder      x (N, D) -> [mu, logvar] (N, 2L)       q(z|x) = N(mu, diag(exp(logvar)))
    model.decoder      z (M, L) -> decoder output (M, K)
    model.likelihood   log p(x|z) from the decoder output (forward/backward), and a sampler

Every objective draws k samples per example (eps (k, N, L), eps ~ N(0, I)),

    z_j = mu + exp(logvar / 2) * eps_j                                    (k, N, L)
    log w_j = log p(x|z_j) + log p(z_j) - log q(z_j|x)                    (k, N)   the log-weights

and minimises the batch mean of a negative bound on log p(x), in nats per example:

    'elbo'      estimator B (Kingma & Welling 2014, Eq. 10), the KL in closed form:
                loss = mean_n [ -(1/k) sum_j log p(x_n|z_nj) + beta * KL(q(z|x_n) || N(0, I)) ]
    'elbo-mc'   estimator A (Eq. 7), the KL sampled at the same z:
                loss = mean_n (1/k) sum_j [ -log p(x_n|z_nj) + beta * (log q(z_nj|x_n) - log p(z_nj)) ]
    'iwae'      the importance-weighted bound (Burda, Grosse & Salakhutdinov 2016, Eq. 8):
                loss = mean_n [ -log (1/k) sum_j w_nj ]
    'wake-sleep'  not a bound: Hinton et al. (1995)'s two phases (see ``wake_sleep``)

The posterior's own operations (reparameterize, its log-density at the
sample, the closed-form KL to N(0, I), each forward/backward) are looked up on
``model.posterior``, which takes (mu, the encoder outputs after mu): for the
VAE it is ops/gaussian.py, on (mu, logvar), as written above; for
FullCovarianceVAE (q = N(mu, L L^T)) the same five pairs on (mu, [log_diag,
lower]) (full_gaussian.Posterior), and the formulas here hold with its
z = mu + L eps.  The names below (logvar, dlogvar) are the diagonal VAE's;
for another posterior they hold its outputs after mu.

k is the paper's L for the two ELBO estimators (the mean of k one-sample
estimates); with k = 1 the IWAE bound is estimator A with beta = 1.

The backward pass of every sampled objective has the same shape: an
upstream gradient on each log p(x|z_j) goes back through the likelihood and
the decoder to z_j; terms that depend on z directly (log p(z), log q(z|x))
add their gradient there; reparameterize_backward carries dz to mu and
logvar (summed over the k samples); terms that depend on mu and logvar
directly (the closed-form KL, log q's own partials) add theirs; the sum goes
back through the encoder.  ``trace``, a dict a caller may pass, receives
every intermediate value and gradient of that chain by name (for
demos/gradcheck.py), see ``backward_through_samples``.
"""

from dataclasses import dataclass

import numpy as np

from numpyvae.ops import gaussian
from numpyvae.ops.gaussian import (gaussian_log_density_backward, gaussian_log_density_forward,
                               kl_standard_normal_per_dimension_backward,
                               kl_standard_normal_per_dimension_forward,
                               standard_normal_log_density_backward,
                               standard_normal_log_density_forward)
from numpyvae.ops.free_bits import free_bits_backward, free_bits_forward
from numpyvae.ops.layers import log1p_fast
from numpyvae.ops.log_mean_exp import log_mean_exp_backward, log_mean_exp_forward
from numpyvae.ops.likelihoods import BernoulliLikelihood
from numpyvae.util.validate import (check_choice, check_float, check_generator, check_plain_array,
                                    check_positive_int, check_vae)

OBJECTIVES = ("elbo", "elbo-mc", "iwae", "wake-sleep")
ONE_LAYER_KINDS = ("vae", "vae-full-covariance")   # the models these objectives train


# ------------------------------------------------------------ the entry point --

def loss_and_grads(model, x, *, rng=None, beta=1.0, eps=None, out=None, objective="elbo", k=1,
                   trace=None, free_bits=0.0):
    """The loss of ``objective`` on the batch x (N, D) and its gradients, every
    argument checked first (then ``objective_loss_and_grads``).

    rng, eps : the noise, drawn from the Generator ``rng``, or given as
        ``eps``: (N, L) when k == 1, (k, N, L) when k > 1.  Wake-sleep needs
        ``rng`` for its sleep phase in any case.
    beta : weight of the KL term ('elbo' and 'elbo-mc'; must be 1 for the others)
    out : a FlatParams to write the gradients into (else a new one)
    objective : one of OBJECTIVES;  k : samples of z per example (int >= 1)
    trace : a dict to receive the intermediate values and gradients, or None
    free_bits : lambda >= 0, nats per latent dimension ('elbo' only; 0: none):
        the KL term becomes sum_l max(lambda, batch mean of KL_l), see
        ``elbo_closed_form_kl``

    The arguments are keywords, in the order of VAE.loss_and_grads.
    Returns ``(terms, grads)``: terms = {"loss", "recon", "kl"}, batch means
    in nats per example (loss = the objective; recon = -log p(x|z) averaged
    over the samples; kl = the closed-form KL for 'elbo' and 'wake-sleep',
    the sampled log q - log p(z) for 'elbo-mc' and 'iwae'); grads has the
    layout of model.params.
    """
    check_vae(model, f"the {objective!r} objective", kinds=ONE_LAYER_KINDS)
    k, beta = check_objective(objective, k, beta)
    check_trainable(model, objective)
    free_bits = check_free_bits(free_bits, objective)
    if free_bits and model.posterior is not gaussian:
        raise ValueError("free bits clamp the KL of each latent dimension of a diagonal "
                         f"posterior; {type(model).__name__}'s is not one")
    model.check_input(x)
    if objective == "wake-sleep":
        check_generator(rng)
    eps = draw_eps(model, x.shape[0], k, rng, eps)
    return objective_loss_and_grads(model, x, eps, rng, objective, beta, out, trace, free_bits)


def check_objective(objective, k, beta, name=str):
    """The rules of the objectives' settings, in one place: ``objective`` one of
    OBJECTIVES, k an int >= 1, beta a finite float >= 0; the IWAE bound and
    wake-sleep have no KL weight (beta = 1), wake-sleep draws one z (k = 1).
    Returns (k, beta) normalised; ``name`` turns a setting's name into the one
    an error message shows (run.settings passes its flags)."""
    check_choice(objective, name("objective"), OBJECTIVES)
    k = check_positive_int(k, name("k"))
    beta = check_float(beta, name("beta"), lo=0)
    if objective in ("iwae", "wake-sleep") and beta != 1:
        raise ValueError(f"{name('objective')} {objective} has no KL weight: {name('beta')} "
                         f"must be 1, got {beta!r}")
    if objective == "wake-sleep" and k != 1:
        raise ValueError(f"{name('objective')} wake-sleep draws one z per example and weights "
                         f"nothing: {name('k')} must be 1, got {k}")
    return k, beta


def check_free_bits(free_bits, objective, name=str):
    """free_bits (lambda) a finite float >= 0, and 0 unless ``objective`` is 'elbo'
    (free bits clamp its closed-form KL per dimension); returns it normalised."""
    free_bits = check_float(free_bits, name("free_bits"), lo=0)
    if free_bits and objective != "elbo":
        raise ValueError(f"free bits clamp the closed-form KL of {name('objective')} elbo only, "
                         f"not {objective!r} (got {name('free_bits')} {free_bits!r})")
    return free_bits


def check_trainable(model, objective):
    """ValueError unless ``model`` trains with ``objective`` (its trainable_objectives)."""
    if objective not in model.trainable_objectives:
        raise ValueError(f"{type(model).__name__} trains with the objectives "
                         f"{model.trainable_objectives}, not {objective!r}")


def objective_loss_and_grads(model, x, eps, rng, objective, beta, out=None, trace=None,
                             free_bits=0.0):
    """``loss_and_grads`` without the checks, for a caller that made them once
    (trainer.TrainingStep): x (N, D), eps (k, N, L), rng for wake-sleep's dreams."""
    if objective == "wake-sleep":
        return wake_sleep(model, x, eps, rng, out=out, trace=trace)
    if objective == "elbo":
        return elbo_closed_form_kl(model, x, eps, beta=beta, out=out, trace=trace,
                                   free_bits=free_bits)
    objective_fn = {"elbo-mc": elbo_sampled_kl, "iwae": iwae}[objective]
    return objective_fn(model, x, eps, beta=beta, out=out, trace=trace)


def draw_eps(model, n, k, rng, eps, width=None):
    """The noise as a (k, n, L) array: drawn from ``rng`` (in that C order), or
    ``eps`` checked, (n, L) when k == 1 (returned as a (1, n, L) view), (k, n, L) else.
    L is ``width`` if given (two stochastic layers: L1 + L2), else model.latent_dim."""
    shape = (k, n, model.latent_dim if width is None else width)
    if eps is None:
        if rng is None:
            raise ValueError("pass rng= (a numpy.random.Generator) or eps= (the noise of z)")
        return check_generator(rng).standard_normal(shape, dtype=model.dtype)
    expected = shape[1:] if k == 1 else shape
    if not isinstance(eps, np.ndarray):
        raise TypeError(f"eps must be a numpy array of shape {expected}, got "
                        f"{type(eps).__name__}")
    check_plain_array(eps, "eps")
    if eps.shape != expected:
        raise ValueError(f"eps must be an array of shape {expected} for k={k}, got {eps.shape}")
    if eps.dtype != model.dtype:
        raise ValueError(f"eps has dtype {eps.dtype} but the model is {model.dtype}; "
                         f"convert it with eps.astype(np.{model.dtype.name})")
    if not np.all(np.isfinite(eps)):
        raise ValueError("eps contains NaN or inf")
    return eps.reshape(shape)


def _terms(loss, recon, kl):
    return {"loss": float(loss), "recon": float(recon), "kl": float(kl)}


# ----------------------------------------------------- the shared forward pass --

@dataclass
class SampledPass:
    """The forward pass for k samples per example, with what its backward needs.

    mu, logvar   (N, L)       q(z|x)
    eps, z       (k, N, L)    z = mu + exp(logvar / 2) * eps
    decoder_out  (k, N, K)    the parameters of p(x|z)
    logpx        (k, N)       log p(x|z)
    enc_cache, rep_cache, dec_cache, lik_cache: the caches of the encoder
    MLP, reparameterize_forward, the decoder MLP and the likelihood.
    """

    mu: np.ndarray
    logvar: np.ndarray
    eps: np.ndarray
    z: np.ndarray
    decoder_out: np.ndarray
    logpx: np.ndarray
    enc_cache: list
    rep_cache: tuple
    dec_cache: list
    lik_cache: tuple


def sampled_forward(model, x, eps):
    """Encoder, reparameterization, decoder and log p(x|z): x (N, D), eps (k, N, L)."""
    k, n, latent = eps.shape
    h, enc_cache = model.encoder.forward(model.params, x)                 # (N, 2L)
    mu, logvar = h[:, :latent], h[:, latent:]
    z, rep_cache = model.posterior.reparameterize_forward(mu, logvar, eps)   # (k, N, L)
    out, dec_cache = model.decoder.forward(model.params, z.reshape(k * n, latent))
    out = out.reshape(k, n, -1)                                           # (k, N, K)
    logpx, lik_cache = model.likelihood.log_prob_forward(x, out)          # (k, N); x broadcasts
    return SampledPass(mu, logvar, eps, z, out, logpx, enc_cache, rep_cache, dec_cache, lik_cache)


def log_weights(model, x, eps):
    """log w = log p(x|z) + log p(z) - log q(z|x) for x (N, D), eps (k, N, L).

    Returns ``(logw, parts)``: logw (k, N) in the model's dtype, and parts =
    (fwd, logq, q_cache, logpz, pz_cache) for the backward pass (the IWAE
    objective) or for reporting.  The importance-weighted evaluation
    (evaluate.importance_weighted_log_likelihood) calls this same function.
    """
    fwd = sampled_forward(model, x, eps)
    logq, q_cache = model.posterior.log_density_at_sample_forward(fwd.eps, fwd.logvar)  # (k, N)
    logpz, pz_cache = standard_normal_log_density_forward(fwd.z)          # (k, N)
    logw = fwd.logpx + logpz
    logw -= logq
    return logw, (fwd, logq, q_cache, logpz, pz_cache)


def log_weights_fast(model, x, eps):
    """log_weights' logw (k, N), forward only, in less work (the same numbers to
    rounding; tests/test_fast_forms.py proves it): what the importance-weighted
    evaluation runs, k decoder passes per example.

    For the Bernoulli decoder, whose logits l = h W + b come from its last
    hidden layer h (kN, H), W (H, D), b (D,), and with the rewriting of
    likelihoods.BernoulliLikelihoodFast,

        log p(x|z) = sum_d [x_d l_d - softplus(l_d)]
                   = sum_d (x_d - 1/2) l_d  -  sum_d [|l_d| / 2 + log1p(exp(-|l_d|))]
                   = h . (W (x - 1/2)) + b . (x - 1/2)  -  sum_d [|l_d| / 2 + log1p(exp(-|l_d|))]

    The first sum costs one H-vector per example (W (x - 1/2), (N, H)) and a
    (kN, H) product with it, instead of a pass over the (kN, D) logits; only
    the second touches them, in place (|l|, its row sums, exp(-|l|), layers.log1p_fast,
    row sums).  Any other likelihood: log_weights itself.
    """
    if not isinstance(model.likelihood, BernoulliLikelihood):
        return log_weights(model, x, eps)[0]
    k, n, latent = eps.shape
    h, _ = model.encoder.forward(model.params, x)                          # (N, 2L)
    mu, logvar = h[:, :latent], h[:, latent:]
    z, _ = model.posterior.reparameterize_forward(mu, logvar, eps)         # (k, N, L)
    logits, dec_cache = model.decoder.forward(model.params, z.reshape(k * n, latent))
    hidden = dec_cache[-1][0][0]                 # (kN, H): the output layer's input
    w_out, b_out = model.decoder.layer_params(model.params, -1)
    centred = x - 0.5                                                      # (N, D)
    per_example = centred @ w_out.T                                        # (N, H)
    # logw accumulates log p(x|z) (its two parts), then + log p(z) - log q(z|x)
    logw = np.einsum("knh,nh->kn", hidden.reshape(k, n, -1), per_example)
    logw += centred @ b_out                                               # (k, N)
    ones = np.ones(logits.shape[1], dtype=logits.dtype)
    a = np.abs(logits, out=logits)                                         # (kN, D), in place
    logw -= 0.5 * (a @ ones).reshape(k, n)
    np.negative(a, out=a)
    np.exp(a, out=a)
    log1p_y = log1p_fast(a)[0]                                             # log1p(exp(-|l|))
    logw -= (log1p_y @ ones).reshape(k, n)
    logw += standard_normal_log_density_forward(z)[0]
    logw -= model.posterior.log_density_at_sample_forward(eps, logvar)[0]
    return logw


def elbo_terms(model, x, eps):
    """The ELBO's two terms per example, forward only: x (N, D), eps (k, N, L) ->

        logpx (N,)   (1/k) sum_j log p(x_n|z_nj),   z_nj = mu_n + std_n * eps_nj
        kl    (N,)   KL(q(z|x_n) || N(0, I)), in closed form

    so that ELBO_n = logpx_n - kl_n (estimator B).  The one place the ELBO is
    computed without gradients: bound('elbo'), VAE.elbo_terms and through it
    the run's test -ELBO (evaluate.evaluate_elbo) all call it.
    """
    fwd = sampled_forward(model, x, eps)
    return (np.mean(fwd.logpx, axis=0),
            model.posterior.kl_standard_normal_forward(fwd.mu, fwd.logvar)[0])


def bound(model, x, objective, eps):
    """The per-example bound on log p(x) that ``objective`` maximises, forward
    only: x (N, D), eps (k, N, L) -> (N,) nats (beta = 1).

        'elbo', 'wake-sleep'   (1/k) sum_j log p(x|z_j) - KL(q(z|x) || N(0, I))
        'elbo-mc'              (1/k) sum_j log w_j
        'iwae'                 log (1/k) sum_j w_j
    """
    if objective in ("elbo", "wake-sleep"):
        logpx, kl = elbo_terms(model, x, eps)
        return logpx - kl
    logw = log_weights(model, x, eps)[0]
    if objective == "elbo-mc":
        return np.mean(logw, axis=0)
    return log_mean_exp_forward(logw)[0]          # log (1/k) sum_j w_j, as the iwae objective


# ---------------------------------------------------- the shared backward pass --

def backward_through_samples(model, fwd, dlogpx, dz_direct, dmu_direct, dlogvar_direct, grads,
                             trace=None):
    """Backpropagate to every parameter, writing into ``grads``:

        dlogpx          (k, N)     dL/dlog p(x|z_j), the upstream of the likelihood
        dz_direct       (k, N, L)  dL/dz_j from terms that hold z directly (log p(z), log q), or None
        dmu_direct, dlogvar_direct (N, L)   dL/dmu, dL/dlogvar from terms that hold them directly

    The chain:   ddecoder_out = likelihood backward           (k, N, K)
                 dz = decoder backward + dz_direct             (k, N, L)
                 dmu_via_z, dlogvar_via_z = sum_j reparameterize_backward(dz_j)     (N, L)
                 dmu = dmu_via_z + dmu_direct,  dlogvar = dlogvar_via_z + dlogvar_direct
                 dencoder_out = [dmu, dlogvar]                 (N, 2L), then the encoder backward.
    Every name above is stored in ``trace`` if it is a dict.
    """
    k, n, latent = fwd.z.shape
    ddecoder_out = model.likelihood.log_prob_backward(dlogpx, fwd.lik_cache)     # (k, N, K)
    dz = model.decoder.backward(grads, ddecoder_out.reshape(k * n, -1), fwd.dec_cache)
    dz = dz.reshape(k, n, latent)
    if dz_direct is not None:
        dz += dz_direct
    dmu_k, dlogvar_k = model.posterior.reparameterize_backward(dz, fwd.rep_cache)  # (k, N, L) each
    dmu_via_z, dlogvar_via_z = dmu_k.sum(axis=0), dlogvar_k.sum(axis=0)
    dmu, dlogvar = dmu_via_z + dmu_direct, dlogvar_via_z + dlogvar_direct
    dencoder_out = np.concatenate([dmu, dlogvar], axis=1)
    model.encoder.backward(grads, dencoder_out, fwd.enc_cache, need_dx=False)
    if trace is not None:
        trace.update(mu=fwd.mu, logvar=fwd.logvar, eps=fwd.eps, z=fwd.z,
                     decoder_out=fwd.decoder_out, logpx=fwd.logpx, dlogpx=dlogpx,
                     ddecoder_out=ddecoder_out, dz_direct=dz_direct, dz=dz, dmu_via_z=dmu_via_z,
                     dlogvar_via_z=dlogvar_via_z, dmu_direct=dmu_direct,
                     dlogvar_direct=dlogvar_direct, dmu=dmu, dlogvar=dlogvar,
                     dencoder_out=dencoder_out)


def _backward_through_log_weights(model, parts, dlogpx, dlogpz, dlogq, grads, trace):
    """Upstream gradients on log p(x|z), log p(z), log q(z|x) (each (k, N)) -> grads."""
    fwd, _, q_cache, _, pz_cache = parts
    dz_q, dmu_q, dlogvar_q = model.posterior.log_density_at_sample_backward(dlogq, q_cache)
    dz_direct = dz_q + standard_normal_log_density_backward(dlogpz, pz_cache)
    backward_through_samples(model, fwd, dlogpx, dz_direct, dmu_q.sum(axis=0),
                             dlogvar_q.sum(axis=0), grads, trace)
    if trace is not None:
        trace.update(dlogpz=dlogpz, dlogq=dlogq)


# ------------------------------------------------------------- the objectives --

def elbo_closed_form_kl(model, x, eps, beta=1.0, out=None, trace=None, free_bits=0.0):
    """Estimator B, averaged over k samples per example:

        loss = (1/N) sum_n [ -(1/k) sum_j log p(x_n|z_nj) + beta * KL_n ],
        KL_n = KL(q(z|x_n) || N(0, I)) = 1/2 sum_l (exp(logvar) + mu^2 - 1 - logvar)

    x (N, D), eps (k, N, L).  Gradients: dL/dlog p(x_n|z_nj) = -1/(N k) for
    the reconstruction, which reaches mu and logvar through z; dL/dKL_n =
    beta/N, whose closed-form gradient reaches them directly
    (dmu_direct = beta/N * mu, dlogvar_direct = beta/N * (exp(logvar) - 1)/2).

    With free bits lambda = ``free_bits`` > 0 (Kingma et al. 2016) the KL
    term is clamped per dimension, beta * sum_l max(lambda, (1/N) sum_n KL_nl)
    (ops/free_bits.py), so dL/dKL_nl = beta/N where dimension l's batch
    mean is above lambda and 0 where it is not; the reported loss is the
    clamped one, the reported kl the batch mean of the true KL.
    """
    fwd = sampled_forward(model, x, eps)
    k, n = fwd.logpx.shape
    recon = -float(np.mean(fwd.logpx))
    grads = model.grad_buffer(out)
    if free_bits:   # a diagonal posterior (loss_and_grads, RunConfig): KL per dimension
        kl_dims, kl_cache = kl_standard_normal_per_dimension_forward(fwd.mu, fwd.logvar)  # (N, L)
        kl_term, free_cache = free_bits_forward(kl_dims, free_bits)
        kl_mean = float(np.mean(np.sum(kl_dims, axis=1)))
        dmu_kl, dlogvar_kl = kl_standard_normal_per_dimension_backward(
            free_bits_backward(beta, free_cache).astype(model.dtype), kl_cache)
    else:
        kl, kl_cache = model.posterior.kl_standard_normal_forward(fwd.mu, fwd.logvar)  # (N,)
        kl_term = kl_mean = float(np.mean(kl))
        dmu_kl, dlogvar_kl = model.posterior.kl_standard_normal_backward(
            np.full(n, beta / n, dtype=model.dtype), kl_cache)
    backward_through_samples(model, fwd, np.full((k, n), -1.0 / (n * k), dtype=model.dtype),
                             None, dmu_kl, dlogvar_kl, grads, trace)
    return _terms(recon + beta * kl_term, recon, kl_mean), grads


def elbo_sampled_kl(model, x, eps, beta=1.0, out=None, trace=None):
    """Estimator A, averaged over k samples per example: the KL term is
    estimated at the sampled z,

        loss = (1/N) sum_n (1/k) sum_j [ -log p(x_n|z_nj) + beta * (log q(z_nj|x_n) - log p(z_nj)) ]

    x (N, D), eps (k, N, L).  With c = 1/(N k): dL/dlog p(x|z) = -c,
    dL/dlog q = beta c, dL/dlog p(z) = -beta c.  log q and log p(z) hold z
    (gradients through z), and log q also holds mu and logvar directly.
    """
    logw, parts = log_weights(model, x, eps)
    fwd, logq, _, logpz, _ = parts
    k, n = logw.shape
    recon, kl_mean = -float(np.mean(fwd.logpx)), float(np.mean(logq - logpz))
    c = 1.0 / (n * k)
    grads = model.grad_buffer(out)
    _backward_through_log_weights(model, parts, np.full((k, n), -c, dtype=model.dtype),
                                  np.full((k, n), -beta * c, dtype=model.dtype),
                                  np.full((k, n), beta * c, dtype=model.dtype), grads, trace)
    return _terms(recon + beta * kl_mean, recon, kl_mean), grads


def iwae(model, x, eps, beta=1.0, out=None, trace=None):
    """The importance-weighted bound (Burda et al. 2016), x (N, D), eps (k, N, L):

        L_k(x_n) = log (1/k) sum_j w_nj = logsumexp_j log w_nj - log k,     loss = -(1/N) sum_n L_k(x_n)

    Its gradient (Burda et al. Eq. 14) weights each sample's log w by its
    normalised importance weight, held constant:

        dL_k / dlog w_nj = w~_nj = w_nj / sum_i w_ni = softmax_j(log w_nj)

    so dL/dlog w_nj = -w~_nj / N, and log w = log p(x|z) + log p(z) - log q(z|x)
    backpropagates as in estimator A.  ops/log_mean_exp.py computes L_k and w~
    with the largest log-weight subtracted first: stable for log-weights of any size.  ``beta``
    must be 1 (the bound has no KL weight).  With k = 1, w~ = 1 and this is
    estimator A.  The terms reported besides the loss are estimator A's parts.
    """
    if beta != 1:
        raise ValueError(f"the IWAE bound has no KL weight: beta must be 1, got {beta!r}")
    logw, parts = log_weights(model, x, eps)
    fwd, logq, _, logpz, _ = parts
    k, n = logw.shape
    bound, weights = log_mean_exp_forward(logw)           # (N,) L_k, (k, N) softmax_j log w
    dlogw = log_mean_exp_backward(np.full(n, -1.0 / n, dtype=model.dtype), weights)
    grads = model.grad_buffer(out)
    _backward_through_log_weights(model, parts, dlogw, dlogw, -dlogw, grads, trace)
    if trace is not None:
        trace.update(logw=logw, weights=weights)
    recon, kl_mean = -float(np.mean(fwd.logpx)), float(np.mean(logq - logpz))
    return _terms(-np.mean(bound), recon, kl_mean), grads


# ------------------------------------------------------------------ wake-sleep --

def wake_sleep(model, x, eps, rng, out=None, trace=None):
    """Wake-sleep (Hinton, Dayan, Frey & Neal 1995) on the VAE's networks, the
    baseline of Kingma & Welling (2014).  Two phases, each updating one network:

    wake  (decoder):  z ~ q(z|x) (eps (1, N, L)), held fixed as data;
                      descend -(1/N) sum_n log p(x_n, z_n) = -(1/N) sum_n [log p(x_n|z_n) + log p(z_n)],
                      whose only decoder-dependent term is log p(x|z).
    sleep (encoder):  a dream (z, x) ~ p(z) p(x|z) (x drawn from the likelihood, not its mean);
                      descend -(1/N) sum_n log q(z_n|x_n).  See ``sleep_phase``.

    Neither direction is the gradient of one function, so there is no loss to
    check it against; its progress is reported with estimator B's -ELBO at
    the wake sample (recon + closed-form KL), as AEVB's is.
    """
    fwd = sampled_forward(model, x, eps)
    k, n = fwd.logpx.shape
    grads = model.grad_buffer(out)
    dlogpx = np.full((k, n), -1.0 / n, dtype=model.dtype)
    ddecoder_out = model.likelihood.log_prob_backward(dlogpx, fwd.lik_cache)
    model.decoder.backward(grads, ddecoder_out.reshape(k * n, -1), fwd.dec_cache, need_dx=False)
    sleep_loss = sleep_phase(model, n, rng, grads, trace)
    recon = -float(np.mean(fwd.logpx))
    kl_mean = float(np.mean(model.posterior.kl_standard_normal_forward(fwd.mu, fwd.logvar)[0]))
    if trace is not None:
        trace.update(mu=fwd.mu, logvar=fwd.logvar, eps=fwd.eps, z=fwd.z,
                     decoder_out=fwd.decoder_out, logpx=fwd.logpx, dlogpx=dlogpx,
                     ddecoder_out=ddecoder_out, sleep_loss=sleep_loss)
    return _terms(recon + kl_mean, recon, kl_mean), grads


def sleep_phase(model, n, rng, grads, trace=None):
    """The sleep phase: dream n pairs from the generative model and fit q(z|x) to them.

        z ~ N(0, I)                 (n, L)       rng.standard_normal
        x ~ p(x|z)                  (n, D)       model.likelihood.sample, from rng
        [mu, logvar] = encoder(x)   (n, 2L)
        loss = -(1/n) sum_n log N(z_n; mu_n, diag(exp(logvar_n)))

    Writes the encoder's gradients into ``grads`` (the decoder's are the
    wake phase's) and returns the loss.  The dream depends only on the
    decoder and rng, so with the same rng state the loss is a deterministic
    function of the encoder's parameters.
    """
    latent = model.latent_dim
    z_dream = rng.standard_normal((n, latent), dtype=model.dtype)
    x_dream = model.likelihood.sample(model.decoder.forward(model.params, z_dream)[0], rng)
    h, enc_cache = model.encoder.forward(model.params, x_dream)
    logq, q_cache = gaussian_log_density_forward(z_dream, h[:, :latent], h[:, latent:])
    dmu, dlogvar = gaussian_log_density_backward(np.full(n, -1.0 / n, dtype=model.dtype), q_cache)
    model.encoder.backward(grads, np.concatenate([dmu, dlogvar], axis=1), enc_cache, need_dx=False)
    if trace is not None:
        trace.update(z_dream=z_dream, x_dream=x_dream, dmu_sleep=dmu, dlogvar_sleep=dlogvar)
    return -float(np.mean(logq))
