"""The objectives of a VAE with two stochastic layers (Burda, Grosse & Salakhutdinov
2016, Table 1's second block): their forward pass, log-weights and hand-written backward.

The model (model/two_layer_vae.py) and its four networks:

    q(z1, z2 | x) = q(z1|x) q(z2|z1)                 p(x, z1, z2) = p(z2) p(z1|z2) p(x|z1)

    q(z1|x)  = N(mu1, diag(exp(logvar1)))            [mu1, logvar1] = encoder(x)                 (N, 2 L1)
    q(z2|z1) = N(mu2, diag(exp(logvar2)))            [mu2, logvar2] = top_encoder(z1)            (kN, 2 L2)
    p(z2)    = N(0, I)
    p(z1|z2) = N(prior_mu, diag(exp(prior_logvar)))  [prior_mu, prior_logvar] = top_decoder(z2)  (kN, 2 L1)
    p(x|z1)  = model.likelihood of decoder(z1)                                                   (kN, K)

Every objective draws k samples per example: the noise eps (k, N, L1 + L2)
is split into eps1 = eps[..., :L1] and eps2 = eps[..., L1:], and

    z1 = mu1 + exp(logvar1 / 2) * eps1     (k, N, L1)   mu1, logvar1 (N, L1) broadcast over the k samples
    z2 = mu2 + exp(logvar2 / 2) * eps2     (k, N, L2)   mu2, logvar2 (k, N, L2): one q(z2|z1) per sample of z1

    log w = log p(x|z1) + log p(z1|z2) + log p(z2) - log q(z1|x) - log q(z2|z1)         (k, N)

The objectives (loss: a batch mean, nats per example; c = 1/(N k)):

    'elbo-mc'  estimator A, every term sampled:
               loss = c sum_nj [ -log p(x|z1) + beta (log q(z1|x) + log q(z2|z1) - log p(z1|z2) - log p(z2)) ]
    'elbo'     the top layer's KL in closed form (the only KL here with one):
               loss = c sum_nj [ -log p(x|z1) + beta (log q(z1|x) - log p(z1|z2) + KL(q(z2|z1_nj) || N(0, I))) ]
    'iwae'     the importance-weighted bound:  loss = -(1/N) sum_n [ logsumexp_j log w_nj - log k ]

The lower layer has no closed-form KL: its "prior" p(z1|z2) is a Gaussian
only given z2, and z2 is drawn from q(z2|z1) at the sampled z1, so
E_q[log q(z1|x) - log p(z1|z2)] is no KL between two fixed Gaussians
(docs/two_stochastic_layers.md, section 2).  Wake-sleep is not offered here.

The backward pass (``backward_through_layers``) runs the chain backwards: the
upstream gradient of each of the six terms (the five log-densities and the
top KL) goes to what it holds; the top layer first (the top decoder to z2,
then z2 to mu2, logvar2 and through the top encoder to z1), then the lower
layer (z1 from the decoder, from log p(z1|z2), from the top encoder and from
log q(z1|x), to mu1, logvar1 and through the encoder).  ``trace``, a dict a
caller may pass, receives every intermediate value and gradient by name (for
demos/gradcheck.py, section 5).
"""

from dataclasses import dataclass

import numpy as np

from numpyvae.objectives import _terms, check_objective, draw_eps
from numpyvae.ops.gaussian import (gaussian_log_density_backward, gaussian_log_density_forward,
                                   kl_standard_normal_backward, kl_standard_normal_forward,
                                   log_density_at_sample_backward, log_density_at_sample_forward,
                                   reparameterize_backward, reparameterize_forward,
                                   standard_normal_log_density_backward,
                                   standard_normal_log_density_forward)
from numpyvae.ops.log_mean_exp import log_mean_exp_backward, log_mean_exp_forward
from numpyvae.util.validate import check_choice, check_vae

OBJECTIVES = ("elbo", "elbo-mc", "iwae")


# ------------------------------------------------------------ the entry point --

def loss_and_grads(model, x, *, rng=None, beta=1.0, eps=None, out=None, objective="elbo", k=1,
                   trace=None, free_bits=0.0):
    """The loss of ``objective`` (one of OBJECTIVES) on the batch x (N, D) of a
    TwoLayerVAE, and its gradients, every argument checked first (the
    keywords of objectives.loss_and_grads).

    k : samples of (z1, z2) per example; beta : the weight of everything but
    log p(x|z1) ('elbo', 'elbo-mc'; 1 for 'iwae'); the noise from the
    Generator ``rng`` or given as ``eps``: (N, L1 + L2) when k == 1,
    (k, N, L1 + L2) else; out, trace : as objectives.loss_and_grads.

    Returns ``(terms, grads)``: terms = {"loss", "recon", "kl"} (batch means,
    nats per example: recon = -log p(x|z1), kl = the rest of the ELBO, the
    top KL in closed form for 'elbo', sampled otherwise); grads has the layout
    of model.params.  ``free_bits`` must be 0 (it applies to one stochastic layer).
    """
    check_vae(model, f"the two-layer {objective!r} objective", kinds=("two-layer-vae",))
    check_choice(objective, "objective (two stochastic layers)", OBJECTIVES)
    k, beta = check_objective(objective, k, beta)
    model.check_input(x)
    eps = draw_eps(model, x.shape[0], k, rng, eps, width=model.noise_dim)
    return objective_loss_and_grads(model, x, eps, rng, objective, beta, out, trace, free_bits)


def objective_loss_and_grads(model, x, eps, rng, objective, beta, out=None, trace=None,
                             free_bits=0.0):
    """``loss_and_grads`` without the checks, for a caller that made them once
    (trainer.TrainingStep): x (N, D), eps (k, N, L1 + L2).  ``rng`` is unused
    (no objective here dreams) and free bits apply to one stochastic layer only."""
    if free_bits:
        raise ValueError("free bits apply to one stochastic layer, not to a TwoLayerVAE")
    objective_fn = {"elbo": elbo_closed_form_kl, "elbo-mc": elbo_sampled_kl, "iwae": iwae}[objective]
    return objective_fn(model, x, eps, beta=beta, out=out, trace=trace)


# ------------------------------------------------------------ the forward pass --

@dataclass
class TwoLayerPass:
    """The forward pass for k samples per example, with what its backward needs.

    mu1, logvar1                (N, L1)      q(z1|x)
    eps1, z1                    (k, N, L1)   z1 = mu1 + exp(logvar1 / 2) * eps1
    mu2, logvar2, eps2, z2      (k, N, L2)   q(z2|z1) and z2 = mu2 + exp(logvar2 / 2) * eps2
    prior_mu, prior_logvar      (k, N, L1)   p(z1|z2)
    decoder_out                 (k, N, K)    the parameters of p(x|z1)
    logpx, logpz1, logpz2, logq1, logq2, kl2    (k, N)
        log p(x|z1), log p(z1|z2), log p(z2), log q(z1|x), log q(z2|z1), KL(q(z2|z1) || N(0, I))
    caches: of the encoder, the two reparameterizations (rep1, rep2), the top
    encoder, the top decoder, the decoder, the likelihood, log p(z1|z2),
    log q(z1|x), log q(z2|z1) and the top KL, each as its forward returned it.
    """

    mu1: np.ndarray
    logvar1: np.ndarray
    eps1: np.ndarray
    z1: np.ndarray
    mu2: np.ndarray
    logvar2: np.ndarray
    eps2: np.ndarray
    z2: np.ndarray
    prior_mu: np.ndarray
    prior_logvar: np.ndarray
    decoder_out: np.ndarray
    logpx: np.ndarray
    logpz1: np.ndarray
    logpz2: np.ndarray
    logq1: np.ndarray
    logq2: np.ndarray
    kl2: np.ndarray
    enc_cache: list
    rep1_cache: tuple
    top_enc_cache: list
    rep2_cache: tuple
    top_dec_cache: list
    dec_cache: list
    lik_cache: tuple
    pz1_cache: tuple
    q1_cache: tuple
    q2_cache: tuple
    kl2_cache: tuple

    def log_weights(self):
        """log w = log p(x|z1) + log p(z1|z2) + log p(z2) - log q(z1|x) - log q(z2|z1), (k, N)."""
        return self.logpx + self.logpz1 + self.logpz2 - self.logq1 - self.logq2


def two_layer_forward(model, x, eps):
    """Both stochastic layers forward: x (N, D), eps (k, N, L1 + L2) -> TwoLayerPass.

    The networks run on k N rows at once (the k samples of every example
    stacked), and their outputs are viewed back as (k, N, .).
    """
    k, n, _ = eps.shape
    l1, l2 = model.latent_dim, model.top_latent_dim
    eps1, eps2 = eps[..., :l1], eps[..., l1:]
    # the lower layer: q(z1|x) and its sample
    h1, enc_cache = model.encoder.forward(model.params, x)                           # (N, 2 L1)
    mu1, logvar1 = h1[:, :l1], h1[:, l1:]
    z1, rep1_cache = reparameterize_forward(mu1, logvar1, eps1)                      # (k, N, L1)
    z1_rows = z1.reshape(k * n, l1)
    # the top layer: q(z2|z1) at every sample of z1, and its sample
    h2, top_enc_cache = model.top_encoder.forward(model.params, z1_rows)            # (kN, 2 L2)
    h2 = h2.reshape(k, n, 2 * l2)
    mu2, logvar2 = h2[..., :l2], h2[..., l2:]
    z2, rep2_cache = reparameterize_forward(mu2, logvar2, eps2)                      # (k, N, L2)
    # the generative side: p(z1|z2) and p(x|z1)
    hp, top_dec_cache = model.top_decoder.forward(model.params, z2.reshape(k * n, l2))  # (kN, 2 L1)
    hp = hp.reshape(k, n, 2 * l1)
    prior_mu, prior_logvar = hp[..., :l1], hp[..., l1:]
    out, dec_cache = model.decoder.forward(model.params, z1_rows)
    out = out.reshape(k, n, -1)                                                      # (k, N, K)
    # the six terms, each (k, N)
    logpx, lik_cache = model.likelihood.log_prob_forward(x, out)          # x broadcasts over k
    logpz1, pz1_cache = gaussian_log_density_forward(z1, prior_mu, prior_logvar)
    logpz2 = standard_normal_log_density_forward(z2)[0]                   # its cache is z2
    logq1, q1_cache = log_density_at_sample_forward(eps1, logvar1)
    logq2, q2_cache = log_density_at_sample_forward(eps2, logvar2)
    kl2, kl2_cache = kl_standard_normal_forward(mu2.reshape(k * n, l2), logvar2.reshape(k * n, l2))
    return TwoLayerPass(mu1, logvar1, eps1, z1, mu2, logvar2, eps2, z2, prior_mu, prior_logvar,
                        out, logpx, logpz1, logpz2, logq1, logq2, kl2.reshape(k, n),
                        enc_cache, rep1_cache, top_enc_cache, rep2_cache, top_dec_cache,
                        dec_cache, lik_cache, pz1_cache, q1_cache, q2_cache, kl2_cache)


def log_weights(model, x, eps):
    """log w (k, N) for x (N, D), eps (k, N, L1 + L2), forward only: what the
    importance-weighted evaluation (evaluate.importance_weighted_log_likelihood)
    runs for this model."""
    return two_layer_forward(model, x, eps).log_weights()


def elbo_terms(model, x, eps):
    """The two-layer ELBO's terms per example, forward only: x (N, D),
    eps (k, N, L1 + L2) ->

        logpx (N,)   (1/k) sum_j log p(x_n|z1_nj)
        rest  (N,)   (1/k) sum_j [ log q(z1_nj|x_n) - log p(z1_nj|z2_nj) ] + KL(q(z2|z1_nj) || N(0, I))

    so that ELBO_n = logpx_n - rest_n (the 'elbo' objective's bound): what
    bound('elbo') and TwoLayerVAE.elbo_terms compute.
    """
    fwd = two_layer_forward(model, x, eps)
    return np.mean(fwd.logpx, axis=0), np.mean(fwd.logq1 - fwd.logpz1 + fwd.kl2, axis=0)


def bound(model, x, objective, eps):
    """The per-example bound on log p(x) that ``objective`` maximises, forward
    only: x (N, D), eps (k, N, L1 + L2) -> (N,) nats (beta = 1).

        'elbo'      (1/k) sum_j [ log p(x|z1) + log p(z1|z2) - log q(z1|x) - KL(q(z2|z1) || N(0, I)) ]
        'elbo-mc'   (1/k) sum_j log w_j
        'iwae'      log (1/k) sum_j w_j
    """
    if objective == "elbo":
        logpx, rest = elbo_terms(model, x, eps)
        return logpx - rest
    logw = log_weights(model, x, eps)
    if objective == "elbo-mc":
        return np.mean(logw, axis=0)
    return log_mean_exp_forward(logw)[0]          # log (1/k) sum_j w_j, as the iwae objective


# ----------------------------------------------------------- the backward pass --

def backward_through_layers(model, fwd, dlogpx, dlogpz1, dlogpz2, dlogq1, dlogq2, dkl2, grads,
                            trace=None):
    """Backpropagate the upstream gradients of the six terms, each (k, N)
    (dL/dlog p(x|z1), dL/dlog p(z1|z2), dL/dlog p(z2), dL/dlog q(z1|x),
    dL/dlog q(z2|z1), dL/dKL(q(z2|z1) || N(0, I)); 0 for a term the loss does
    not hold), to every parameter, writing into ``grads``.

    The top layer (z2 depends only on z1 and eps2):
        dtop_decoder_out = [dprior_mu, dprior_logvar]       (k, N, 2 L1)   log p(z1|z2) backward
        dz2 = dz2_via_top_decoder + dz2_via_logpz2 + dz2_via_logq2         (k, N, L2)
        dmu2_via_z2, dlogvar2_via_z2 = reparameterize_backward(dz2)        (k, N, L2), no sum:
                                           every sample of z1 has its own q(z2|z1)
        dmu2 = dmu2_via_z2 + dmu2_direct       (direct: log q(z2|z1)'s partials + the KL's)
        dtop_encoder_out = [dmu2, dlogvar2]                 (k, N, 2 L2)
    The lower layer (z1 feeds four consumers):
        dz1 = dz1_via_decoder + dz1_via_logpz1 + dz1_via_top_encoder + dz1_via_logq1   (k, N, L1)
        dmu1_via_z1, dlogvar1_via_z1 = sum_j reparameterize_backward(dz1_j)            (N, L1)
        dmu1 = dmu1_via_z1 + dmu1_direct       (direct: log q(z1|x)'s partials, summed over j)
        dencoder_out = [dmu1, dlogvar1]                     (N, 2 L1), then the encoder backward.
    Every name above is stored in ``trace`` if it is a dict (with the forward values).
    """
    k, n, l1 = fwd.z1.shape
    l2 = fwd.z2.shape[-1]
    # p(x|z1) through the decoder to z1
    ddecoder_out = model.likelihood.log_prob_backward(dlogpx, fwd.lik_cache)                 # (k, N, K)
    dz1_via_decoder = model.decoder.backward(grads, ddecoder_out.reshape(k * n, -1),
                                             fwd.dec_cache).reshape(k, n, l1)
    # log p(z1|z2) = log N(z1; prior_mu, prior_logvar): to z1 (it holds z1 - prior_mu), and
    # to its parameters, then through the top decoder to z2
    dprior_mu, dprior_logvar = gaussian_log_density_backward(dlogpz1, fwd.pz1_cache)          # (k, N, L1)
    dz1_via_logpz1 = -dprior_mu
    dtop_decoder_out = np.concatenate([dprior_mu, dprior_logvar], axis=-1)                  # (k, N, 2 L1)
    dz2_via_top_decoder = model.top_decoder.backward(grads, dtop_decoder_out.reshape(k * n, -1),
                                                     fwd.top_dec_cache).reshape(k, n, l2)
    # log p(z2) and log q(z2|z1) at z2 = mu2 + std2 * eps2
    dz2_via_logpz2 = standard_normal_log_density_backward(dlogpz2, fwd.z2)
    dz2_via_logq2, dmu2_logq2, dlogvar2_logq2 = log_density_at_sample_backward(dlogq2, fwd.q2_cache)
    dz2 = dz2_via_top_decoder + dz2_via_logpz2 + dz2_via_logq2                               # (k, N, L2)
    dmu2_via_z2, dlogvar2_via_z2 = reparameterize_backward(dz2, fwd.rep2_cache)
    dmu2_kl, dlogvar2_kl = kl_standard_normal_backward(dkl2.reshape(k * n), fwd.kl2_cache)  # (kN, L2)
    dmu2_direct = dmu2_logq2 + dmu2_kl.reshape(k, n, l2)
    dlogvar2_direct = dlogvar2_logq2 + dlogvar2_kl.reshape(k, n, l2)
    dmu2, dlogvar2 = dmu2_via_z2 + dmu2_direct, dlogvar2_via_z2 + dlogvar2_direct
    dtop_encoder_out = np.concatenate([dmu2, dlogvar2], axis=-1)                             # (k, N, 2 L2)
    dz1_via_top_encoder = model.top_encoder.backward(grads, dtop_encoder_out.reshape(k * n, -1),
                                                     fwd.top_enc_cache).reshape(k, n, l1)
    # log q(z1|x) at z1 = mu1 + std1 * eps1, and z1's total
    dz1_via_logq1, dmu1_logq1, dlogvar1_logq1 = log_density_at_sample_backward(dlogq1, fwd.q1_cache)
    dz1 = dz1_via_decoder + dz1_via_logpz1 + dz1_via_top_encoder + dz1_via_logq1             # (k, N, L1)
    dmu1_k, dlogvar1_k = reparameterize_backward(dz1, fwd.rep1_cache)                       # (k, N, L1)
    dmu1_via_z1, dlogvar1_via_z1 = dmu1_k.sum(axis=0), dlogvar1_k.sum(axis=0)               # (N, L1)
    dmu1_direct, dlogvar1_direct = dmu1_logq1.sum(axis=0), dlogvar1_logq1.sum(axis=0)
    dmu1, dlogvar1 = dmu1_via_z1 + dmu1_direct, dlogvar1_via_z1 + dlogvar1_direct
    dencoder_out = np.concatenate([dmu1, dlogvar1], axis=1)                                  # (N, 2 L1)
    model.encoder.backward(grads, dencoder_out, fwd.enc_cache, need_dx=False)
    if trace is not None:
        trace.update({name: getattr(fwd, name) for name in (
            "mu1", "logvar1", "eps1", "z1", "mu2", "logvar2", "eps2", "z2", "prior_mu",
            "prior_logvar", "decoder_out", "logpx", "logpz1", "logpz2", "logq1", "logq2", "kl2")})
        trace.update(
            dlogpx=dlogpx, dlogpz1=dlogpz1, dlogpz2=dlogpz2, dlogq1=dlogq1, dlogq2=dlogq2,
            dkl2=dkl2, ddecoder_out=ddecoder_out, dz1_via_decoder=dz1_via_decoder,
            dprior_mu=dprior_mu, dprior_logvar=dprior_logvar, dz1_via_logpz1=dz1_via_logpz1,
            dtop_decoder_out=dtop_decoder_out, dz2_via_top_decoder=dz2_via_top_decoder,
            dz2_via_logpz2=dz2_via_logpz2, dz2_via_logq2=dz2_via_logq2, dz2=dz2,
            dmu2_via_z2=dmu2_via_z2, dlogvar2_via_z2=dlogvar2_via_z2, dmu2_direct=dmu2_direct,
            dlogvar2_direct=dlogvar2_direct, dmu2=dmu2, dlogvar2=dlogvar2,
            dtop_encoder_out=dtop_encoder_out, dz1_via_top_encoder=dz1_via_top_encoder,
            dz1_via_logq1=dz1_via_logq1, dz1=dz1, dmu1_via_z1=dmu1_via_z1,
            dlogvar1_via_z1=dlogvar1_via_z1, dmu1_direct=dmu1_direct,
            dlogvar1_direct=dlogvar1_direct, dmu1=dmu1, dlogvar1=dlogvar1,
            dencoder_out=dencoder_out)


# ------------------------------------------------------------- the objectives --

def elbo_sampled_kl(model, x, eps, beta=1.0, out=None, trace=None):
    """Estimator A: every term of the ELBO at the sampled (z1, z2), x (N, D), eps (k, N, L1 + L2):

        loss = c sum_nj [ -log p(x|z1) + beta (log q(z1|x) + log q(z2|z1) - log p(z1|z2) - log p(z2)) ],

    c = 1/(N k).  Upstream gradients: -c on log p(x|z1), -beta c on both log p
    terms, +beta c on both log q terms (no closed-form KL: dkl2 = 0).
    """
    fwd = two_layer_forward(model, x, eps)
    k, n = fwd.logpx.shape
    c = 1.0 / (n * k)
    rest = fwd.logq1 + fwd.logq2 - fwd.logpz1 - fwd.logpz2
    recon, kl_mean = -float(np.mean(fwd.logpx)), float(np.mean(rest))
    grads = model.grad_buffer(out)
    prior, posterior = np.full((k, n), -beta * c, model.dtype), np.full((k, n), beta * c, model.dtype)
    backward_through_layers(model, fwd, np.full((k, n), -c, model.dtype), prior, prior,
                            posterior, posterior, np.zeros((k, n), model.dtype), grads, trace)
    return _terms(recon + beta * kl_mean, recon, kl_mean), grads


def elbo_closed_form_kl(model, x, eps, beta=1.0, out=None, trace=None):
    """The ELBO with the top layer's KL in closed form, x (N, D), eps (k, N, L1 + L2):

        loss = c sum_nj [ -log p(x|z1) + beta (log q(z1|x) - log p(z1|z2) + KL_2(z1)) ],
        KL_2(z1) = KL(q(z2|z1) || N(0, I)) = 1/2 sum_l (exp(logvar2) + mu2^2 - 1 - logvar2)

    at each sampled z1 (c = 1/(N k)): E_q(z2|z1)[log q(z2|z1) - log p(z2)]
    integrated exactly, while z2 is still drawn for log p(z1|z2).
    Upstream gradients: -c on log p(x|z1), -beta c on log p(z1|z2), +beta c
    on log q(z1|x) and on KL_2; log p(z2) and log q(z2|z1) are not in the loss (0).
    """
    fwd = two_layer_forward(model, x, eps)
    k, n = fwd.logpx.shape
    c = 1.0 / (n * k)
    rest = fwd.logq1 - fwd.logpz1 + fwd.kl2
    recon, kl_mean = -float(np.mean(fwd.logpx)), float(np.mean(rest))
    grads = model.grad_buffer(out)
    posterior, zero = np.full((k, n), beta * c, model.dtype), np.zeros((k, n), model.dtype)
    backward_through_layers(model, fwd, np.full((k, n), -c, model.dtype),
                            np.full((k, n), -beta * c, model.dtype), zero, posterior, zero,
                            posterior, grads, trace)
    return _terms(recon + beta * kl_mean, recon, kl_mean), grads


def iwae(model, x, eps, beta=1.0, out=None, trace=None):
    """The importance-weighted bound, x (N, D), eps (k, N, L1 + L2):

        L_k(x_n) = logsumexp_j log w_nj - log k,     loss = -(1/N) sum_n L_k(x_n)

    dL_k / dlog w_nj = w~_nj = softmax_j(log w_nj) (Burda et al. Eq. 14), so
    dloss/dlog w_nj = -w~_nj / N, which every log p term of log w receives
    as it is and every log q term with the sign flipped.  ``beta`` must be 1.
    With k = 1 this is estimator A.  The terms reported besides the loss are
    estimator A's parts.
    """
    if beta != 1:
        raise ValueError(f"the IWAE bound has no KL weight: beta must be 1, got {beta!r}")
    fwd = two_layer_forward(model, x, eps)
    logw = fwd.log_weights()
    k, n = logw.shape
    bound_n, weights = log_mean_exp_forward(logw)         # (N,) L_k, (k, N) softmax_j log w
    dlogw = log_mean_exp_backward(np.full(n, -1.0 / n, dtype=model.dtype), weights)
    grads = model.grad_buffer(out)
    backward_through_layers(model, fwd, dlogw, dlogw, dlogw, -dlogw, -dlogw,
                            np.zeros((k, n), model.dtype), grads, trace)
    if trace is not None:
        trace.update(logw=logw, weights=weights)
    rest = fwd.logq1 + fwd.logq2 - fwd.logpz1 - fwd.logpz2
    recon, kl_mean = -float(np.mean(fwd.logpx)), float(np.mean(rest))
    return _terms(-np.mean(bound_n), recon, kl_mean), grads
